"""What every metric shares: one accumulator type for real and generated images.

A metric turns each batch of images (uint8-range floats, N×1×R×R) and the features it needs
(Inception or bone-age CNN) into per-image rows — features, logits, SWD neighbourhoods — that a
`FeatureSet` collects up to its capacity (stylegan2-ada's FeatureStats is the model). The same
set type holds the reals and the fakes; the reals' sets are computed once, in `real_metrics`,
and what the snapshots compare against is saved from them (`reference`). Disjoint row ranges of
one real set give the real-vs-real floors.

A paired metric (FID, SWD, domain FD) compares two sets (`compare` with a saved reference,
`distance` between two sets); an unpaired one (IS, MS-SSIM) measures one set (`value`).
"""

from __future__ import annotations

import numpy as np


class FeatureSet:
    """Per-image rows of up to `capacity` images, in the order they were fed."""

    def __init__(self, capacity: int):
        self.capacity, self.parts, self.n = int(capacity), [], 0

    @property
    def full(self) -> bool:
        return self.n >= self.capacity

    def append(self, rows) -> None:
        rows = np.asarray(rows)[: self.capacity - self.n]
        if len(rows):
            self.parts.append(rows)
            self.n += len(rows)

    def rows(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        if not self.parts:
            raise ValueError("no images were fed to this set")
        return np.concatenate(self.parts)[lo:hi]


class Metric:
    name = ""
    needs: str | None = None  # "inception" | "cnn" | None
    paired = True

    def __init__(self, settings, seed: int):
        self.settings, self.seed = settings, seed
        self.n = int(settings.n[self.name])

    def new_set(self, capacity: int | None = None, role: int = 0) -> FeatureSet:
        """An empty set; `role` tells real (0) from generated (1) sets where a metric draws
        random numbers per set (SWD's neighbourhoods)."""
        return FeatureSet(self.n if capacity is None else capacity)

    def feed(self, s: FeatureSet, images255, features: dict) -> None:
        if not s.full:
            s.append(self.rows(images255, features))

    def rows(self, images255, features: dict) -> np.ndarray:
        raise NotImplementedError

    # paired metrics
    def reference(self, s: FeatureSet) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def compare(self, reference: dict, s: FeatureSet) -> dict[str, float]:
        raise NotImplementedError

    def distance(self, a: FeatureSet, b: FeatureSet) -> dict[str, float]:
        return self.compare(self.reference(a), b)

    # unpaired metrics
    def value(self, s: FeatureSet) -> dict[str, float]:
        raise NotImplementedError


def subset(s: FeatureSet, lo: int, hi: int) -> FeatureSet:
    """Rows [lo, hi) of a set as a set of its own (disjoint real sets for the floors)."""
    out = FeatureSet(hi - lo)
    out.__dict__.update({k: v for k, v in s.__dict__.items()
                         if k not in ("capacity", "parts", "n")})  # e.g. SWD's levels
    out.append(s.rows(lo, hi))
    return out
