"""FID: the Fréchet distance between Inception pool3 features of generated and real images
(pytorch-fid's network and weights, latentage.metrics.inception)."""

from __future__ import annotations

import numpy as np

from latentage.metrics.base import FeatureSet, Metric
from latentage.metrics.frechet import frechet_distance, gaussian_stats


class FrechetMetric(Metric):
    """Collects one kind of features; the reference is their mean and covariance."""

    feature = ""  # key of the features dict: "pool" of the Inception outputs, or the CNN's

    def rows(self, images255, features: dict) -> np.ndarray:
        feats = features[self.needs]
        feats = feats[self.feature] if isinstance(feats, dict) else feats
        return feats.double().cpu().numpy()

    def reference(self, s: FeatureSet) -> dict[str, np.ndarray]:
        mu, sigma = gaussian_stats(s.rows())
        return {"mu": mu, "sigma": sigma, "n": np.array(s.n)}

    def compare(self, reference: dict, s: FeatureSet) -> dict[str, float]:
        mu, sigma = gaussian_stats(s.rows())
        return {self.name: frechet_distance(mu, sigma, reference["mu"], reference["sigma"])}


class FID(FrechetMetric):
    name, needs, feature = "fid", "inception", "pool"
