"""FID: Fréchet distance between Inception pool3 features of generated and real images."""

from __future__ import annotations

import numpy as np

from latentage.metrics.frechet import frechet_distance, gaussian_stats


class FrechetMetric:
    """Accumulates one kind of features and measures their Fréchet distance to the real
    statistics `{stats}_mu`, `{stats}_sigma`."""

    name = needs = stats = ""

    def __init__(self, n: int, real_stats: dict | None = None, **_):
        self.n, self.real, self.feats = n, real_stats, []

    def feed(self, images, **features):
        feats = features[self.needs]
        feats = feats["pool"] if isinstance(feats, dict) else feats
        self.feats.append(feats.double().cpu().numpy())

    def result(self) -> dict:
        mu, sigma = gaussian_stats(np.concatenate(self.feats)[: self.n])
        return {self.name: frechet_distance(mu, sigma, self.real[f"{self.stats}_mu"],
                                            self.real[f"{self.stats}_sigma"])}


class FID(FrechetMetric):
    name, needs, stats = "fid", "inception", "inception"
