"""Domain Fréchet distance: the FID formula on the bone-age CNN's penultimate features.

An Inception trained on ImageNet knows little about hands; the CNN that reads bone age does.
The real statistics come from the same CNN on the real training images.
"""

from __future__ import annotations

import numpy as np

from latentage.metrics.frechet import frechet_distance, gaussian_stats


class DomainFD:
    name = "domain_fd"
    needs = "cnn"

    def __init__(self, n: int, real_stats: dict | None = None, **_):
        self.n, self.real, self.feats = n, real_stats, []

    def feed(self, images, cnn=None, **_):
        self.feats.append(cnn.double().cpu().numpy())

    def features(self) -> np.ndarray:
        return np.concatenate(self.feats)[: self.n]

    def result(self) -> dict:
        mu, sigma = gaussian_stats(self.features())
        return {"domain_fd": frechet_distance(mu, sigma, self.real["cnn_mu"],
                                              self.real["cnn_sigma"])}
