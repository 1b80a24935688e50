"""FID: Fréchet distance between Inception pool3 features of generated and real images."""

from __future__ import annotations

import numpy as np

from latentage.metrics.frechet import frechet_distance, gaussian_stats


class FID:
    name = "fid"
    needs = "inception"

    def __init__(self, n: int, real_stats: dict | None = None, **_):
        self.n, self.real, self.feats = n, real_stats, []

    def feed(self, images, inception=None, **_):
        self.feats.append(inception["pool"].double().cpu().numpy())

    def features(self) -> np.ndarray:
        return np.concatenate(self.feats)[: self.n]

    def result(self) -> dict:
        mu, sigma = gaussian_stats(self.features())
        return {"fid": frechet_distance(mu, sigma, self.real["inception_mu"],
                                        self.real["inception_sigma"])}
