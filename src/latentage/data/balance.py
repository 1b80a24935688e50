"""Age-balanced sampling (`data.balance: age`) for the GAN's and the CNN's training samplers.

72 % of RSNA training images are aged 8–14 years; the study named this as a limit. With
balancing on, an image's sampling weight is the inverse of its yearly bin's frequency, scaled
so that a bin holding exactly its even share (N / number of occupied bins) has weight 1, and
capped at `max_weight` (a year with three images must not be shown as often as a year with
a thousand: the few would be memorised). An "epoch" is then N draws with replacement in
proportion to the weights, from the sampler's seeded stream, so a run is reproducible.
"""

from __future__ import annotations

import numpy as np

from latentage.errors import InputError

BALANCE_MODES = ("none", "age")


def age_weights(ages_months, max_weight: float) -> np.ndarray:
    """Sampling weight of each image: inverse yearly-bin frequency, capped at `max_weight`."""
    ages = np.asarray(ages_months, np.float64)
    if ages.ndim != 1 or not len(ages):
        raise InputError("age balancing needs a non-empty list of ages")
    if not np.isfinite(ages).all() or (ages < 0).any():
        raise InputError("age balancing: ages must be finite and non-negative months")
    if max_weight < 1:
        raise InputError(f"config key data.balance_max_weight: {max_weight} is below 1")
    bins = np.floor(ages / 12.0).astype(np.int64)
    counts = np.bincount(bins)
    share = len(ages) / np.count_nonzero(counts)
    return np.minimum(share / counts[bins], float(max_weight))


def sample_weights(mode: str, ages_months, max_weight: float) -> np.ndarray | None:
    """The weights for `data.balance` = mode: None (uniform: plain shuffled epochs) or
    the age weights."""
    if mode not in BALANCE_MODES:
        raise InputError(f"config key data.balance: {mode!r} is not one of {BALANCE_MODES}")
    return None if mode == "none" else age_weights(ages_months, max_weight)


def epoch_order(rng: np.random.Generator, n: int, weights: np.ndarray | None,
                indices: np.ndarray | None = None) -> np.ndarray:
    """One epoch's order: a permutation of `indices` (default 0…n−1), or, with weights,
    len(indices) draws with replacement in proportion to the weights of those indices."""
    idx = np.arange(n) if indices is None else np.asarray(indices)
    if weights is None:
        return rng.permutation(idx)
    w = np.asarray(weights, np.float64)[idx]
    return idx[rng.choice(len(idx), len(idx), replace=True, p=w / w.sum())]


def yearly_shares(ages_months, weights: np.ndarray | None) -> dict[int, float]:
    """The expected share of each yearly bin in what the sampler shows."""
    ages = np.asarray(ages_months, np.float64)
    w = np.ones(len(ages)) if weights is None else np.asarray(weights, np.float64)
    bins = np.floor(ages / 12.0).astype(np.int64)
    sums = np.bincount(bins, weights=w)
    return {int(b): float(s / w.sum()) for b, s in enumerate(sums) if s > 0}
