"""Inception Score: exp E[KL(p(y|x) ‖ p(y))] over the 1008-way softmax, in splits (mean ± sd),
as the TF Inception-Score graph computed it."""

from __future__ import annotations

import numpy as np


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


class InceptionScore:
    name = "is"
    needs = "inception"

    def __init__(self, n: int, splits: int = 10, **_):
        self.n, self.splits, self.logits = n, splits, []

    def feed(self, images, inception=None, **_):
        self.logits.append(inception["logits"].double().cpu().numpy())

    def result(self) -> dict:
        mean, sd = inception_score(np.concatenate(self.logits)[: self.n], self.splits)
        return {"is_mean": mean, "is_std": sd}
