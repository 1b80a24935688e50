"""The progressive schedule: a pure function of images seen (tkarras train.py TrainingSchedule).

With T = lod_training_kimg and F = lod_transition_kimg: 4×4 trains for T kimg; then each
resolution R fades in over F kimg and stabilises for T kimg. One growth *phase* (one Snakemake
job) is "fade into R, then stabilise at R"; the 4×4 phase only stabilises, and the last phase
runs on to total_kimg. A phase's fade may be stretched (the divergence guard does this) inside
the phase's fixed kimg span, so phase boundaries — and snapshot names — never move.

The minibatch is global: it does not depend on the number of processes. `split_minibatch`
says how each process takes its share, in micro-batches where a per-GPU cap applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    kimg: float
    resolution: int
    lod: float  # log2(max_res) - log2(resolution) + (1 - alpha), as in the official code
    alpha: float  # weight of the newest block: 0 → 1 over the fade, 1 when stable
    minibatch: int  # global minibatch (all processes together)
    g_lrate: float
    d_lrate: float
    tick_kimg: float


def _get(table: dict, res: int, default):
    return table.get(res, table.get(str(res), default))


class Schedule:
    def __init__(self, max_res: int, lod_training_kimg: float = 600,
                 lod_transition_kimg: float = 600, total_kimg: float = 12000,
                 minibatch_base: int = 16, minibatch: dict | None = None,
                 max_minibatch_per_gpu: dict | None = None, lrate: float = 0.001,
                 lrate_dict: dict | None = None, tick_kimg_base: float = 160,
                 tick_kimg: dict | None = None, fade_stretch: dict | None = None):
        self.max_res = max_res
        self.T, self.F, self.total_kimg = lod_training_kimg, lod_transition_kimg, total_kimg
        self.minibatch_base, self.minibatch = minibatch_base, minibatch or {}
        self.max_minibatch_per_gpu = max_minibatch_per_gpu or {}
        self.lrate, self.lrate_dict = lrate, lrate_dict or {}
        self.tick_kimg_base, self.tick_kimg = tick_kimg_base, tick_kimg or {}
        self.fade_stretch = {int(k): float(v) for k, v in (fade_stretch or {}).items()}
        self.resolutions = [2**k for k in range(2, int(math.log2(max_res)) + 1)]

    @classmethod
    def from_settings(cls, gan, fade_stretch: dict | None = None) -> Schedule:
        """The schedule of GanSettings (latentage.settings)."""
        from dataclasses import asdict

        return cls(gan.max_res, fade_stretch=fade_stretch, **asdict(gan.schedule))

    # ---------------------------------------------------------------- phases
    def phase_bounds(self, res: int) -> tuple[float, float]:
        """[start, end) kimg of the growth phase of `res`."""
        k = int(math.log2(res))
        if res == 4:
            start, end = 0.0, self.T
        else:
            start = self.T + (k - 3) * (self.T + self.F)
            end = start + self.F + self.T
        if res == self.max_res:
            end = self.total_kimg
        return float(start), float(end)

    def fade_kimg(self, res: int) -> float:
        """Length of the fade into `res` (stretched fades stay inside the phase)."""
        if res == 4:
            return 0.0
        start, end = self.phase_bounds(res)
        return min(self.F * self.fade_stretch.get(res, 1.0), 0.95 * (end - start))

    def phase_of(self, kimg: float) -> int:
        for res in self.resolutions:
            if kimg < self.phase_bounds(res)[1]:
                return res
        return self.max_res

    # ---------------------------------------------------------------- the function
    def __call__(self, nimg: int) -> Step:
        kimg = nimg / 1000.0
        res = self.phase_of(kimg)
        start, _ = self.phase_bounds(res)
        fade = self.fade_kimg(res)
        alpha = 1.0 if fade <= 0 else min(max((kimg - start) / fade, 0.0), 1.0)
        lod = math.log2(self.max_res) - math.log2(res) + (1.0 - alpha)
        mb = int(_get(self.minibatch, res, self.minibatch_base))
        lr = float(_get(self.lrate_dict, res, self.lrate))
        tick = float(_get(self.tick_kimg, res, self.tick_kimg_base))
        return Step(kimg, res, lod, alpha, mb, lr, lr, tick)

    def per_gpu_cap(self, res: int) -> int | None:
        cap = _get(self.max_minibatch_per_gpu, res, None)
        return None if cap is None else int(cap)

    def snapshot_kimgs(self, res: int, every: float) -> list[float]:
        """kimg of the G_ema snapshots taken in phase `res`: multiples of `every` in
        (start, end], and the end of training (as the official code's final snapshot), so
        every snapshot name is known before training and the last one is the final G_ema."""
        start, end = self.phase_bounds(res)
        first = math.floor(start / every) + 1
        kimgs = [round(i * every, 6)
                 for i in range(first, int(math.floor(end / every + 1e-9)) + 1)]
        if res == self.max_res and (not kimgs or kimgs[-1] < end - 1e-6):
            kimgs.append(round(end, 6))
        return kimgs

    def validate(self) -> None:
        last_start, _ = self.phase_bounds(self.max_res)
        if self.total_kimg < last_start + self.F:
            raise ValueError(
                f"total_kimg {self.total_kimg} ends before the fade into {self.max_res}² is done "
                f"(needs ≥ {last_start + self.F})")


def split_minibatch(minibatch: int, world: int, cap: int | None, group: int) -> int:
    """Micro-batches each of `world` processes runs per step so that none exceeds `cap`
    images, with the global minibatch kept (gradients are accumulated).

    Process r takes samples r, r + world, … of the global minibatch and its micro-batch k the
    samples k, k + rounds, … of its share: the minibatch-stddev groups (sample n belongs to
    group n mod M) are then the same as in one pass over the global minibatch, so the result
    does not depend on the number of processes (tests/test_gan_train.py)."""
    if minibatch % world:
        raise ValueError(f"minibatch {minibatch} does not split evenly over {world} processes")
    share = minibatch // world
    rounds = 1 if cap is None else -(-share // cap)
    while share % rounds:
        rounds += 1
    micro = share // rounds
    if group > 1 and micro % group:
        raise ValueError(
            f"a micro-batch of {micro} images (minibatch {minibatch} over {world} process(es) in "
            f"{rounds} round(s), per-GPU cap {cap}) is not a multiple of the minibatch-stddev "
            f"group {group}; choose a minibatch, process count or gan.schedule."
            f"max_minibatch_per_gpu that keeps whole groups")
    return rounds


def snapshot_name(kimg: float) -> str:
    """File stem of a snapshot: whole kimg zero-padded; fractional kimg (tiny runs) keeps
    three decimals."""
    return f"{int(round(kimg)):06d}" if abs(kimg - round(kimg)) < 1e-9 else f"{kimg:010.3f}"
