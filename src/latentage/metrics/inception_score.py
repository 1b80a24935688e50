"""Inception Score: exp E[KL(p(y|x) ‖ p(y))] over the 1008-way softmax, in splits (mean ± sd),
as the TF reference (inception_score.py) computes it: logits = pool3 · W of the softmax layer,
without its bias (torchmetrics' `logits_unbiased` exists for the same reason)."""

from __future__ import annotations

import numpy as np

from latentage.metrics.base import FeatureSet, Metric


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    logits = np.asarray(logits, np.float64)
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    n = len(p)
    if n < splits:
        raise ValueError(f"Inception Score needs at least {splits} images (one per split), got {n}")
    scores = []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-30) - np.log(py + 1e-30))).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


class InceptionScore(Metric):
    name, needs, paired = "is", "inception", False

    def rows(self, images255, features: dict) -> np.ndarray:
        return features["inception"]["logits"].double().cpu().numpy()

    def value(self, s: FeatureSet) -> dict[str, float]:
        mean, sd = inception_score(s.rows(), self.settings.is_splits)
        return {"is_mean": mean, "is_std": sd}
