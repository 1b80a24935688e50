"""Real images for training: shuffled epochs over a prepared memmap, read ahead on a thread.

`RealSampler` draws global minibatches of indices without replacement within an epoch (or, with
`data.balance: age`, an epoch of weighted draws with replacement: latentage.data.balance);
every process draws the same global minibatch and keeps its strided share, so the order does
not depend on the number of processes. With the labels parquet (same row order) it also hands
out each image's label (bone age in months, male 0/1): the conditional GAN's condition.
`Prefetcher` reads the next share from the memmap into pinned memory on a background thread
while the device trains on the current one; the state it saves is that of the batches handed
out, never of those read ahead, so a resumed run sees the same images.
"""

from __future__ import annotations

import concurrent.futures
from collections import deque
from pathlib import Path

import numpy as np
import torch

from latentage import seeds
from latentage.data.balance import epoch_order, sample_weights
from latentage.errors import InputError


def read_labels(path, n: int) -> np.ndarray:
    """float32 N×2 (bone age months, male 0/1) from a prepared labels parquet of n rows."""
    import pandas as pd

    table = pd.read_parquet(path)
    missing = {"boneage", "male"} - set(table.columns)
    if missing:
        raise InputError(f"{path}: no column(s) {sorted(missing)} (a prepared labels parquet)")
    if len(table) != n:
        raise InputError(f"{path}: {len(table)} rows but the prepared images have {n}: were "
                         f"they prepared together?")
    return np.stack([table.boneage.to_numpy(np.float32),
                     table.male.to_numpy(np.float32)], axis=1)


class RealSampler:
    def __init__(self, path, seed: int, labels=None, balance: str = "none",
                 max_weight: float = 5.0):
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: prepared training images not found (run `prepare`)")
        self.images = np.load(path, mmap_mode="r")
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise InputError(f"{path}: expected uint8 N×R×R, got {self.images.dtype} "
                             f"{self.images.shape}")
        self.labels = None if labels is None else read_labels(labels, len(self.images))
        if balance != "none" and self.labels is None:
            raise InputError(f"data.balance: {balance} needs the labels of {path}")
        self.weights = None if self.labels is None else \
            sample_weights(balance, self.labels[:, 0], max_weight)
        self.rng = seeds.rng(seed, "gan.data")
        self.perm = self._epoch()
        self.pos = 0

    def _epoch(self) -> np.ndarray:
        return epoch_order(self.rng, len(self.images), self.weights)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    def next_indices(self, n: int) -> np.ndarray:
        out = []
        while n > 0:
            if self.pos >= len(self.perm):
                self.perm, self.pos = self._epoch(), 0
            take = self.perm[self.pos:self.pos + n]
            self.pos += len(take)
            n -= len(take)
            out.append(take)
        return np.concatenate(out)

    def read(self, idx: np.ndarray) -> np.ndarray:
        """uint8 N×R×R rows `idx`, read in file order, returned in `idx` order."""
        order = np.argsort(idx)
        arr = np.empty((len(idx), self.resolution, self.resolution), np.uint8)
        arr[order] = self.images[idx[order]]
        return arr

    def share(self, global_n: int, rank: int, world: int) -> np.ndarray:
        """This rank's share of the next global minibatch (uint8 N×R×R)."""
        return self.read(self.next_indices(global_n)[rank::world])

    def conditions(self, idx: np.ndarray) -> np.ndarray | None:
        """Labels of rows `idx` (float32 N×2: age months, male), or None without labels."""
        return None if self.labels is None else self.labels[idx]

    def state_dict(self) -> dict:
        return {"perm": torch.from_numpy(self.perm.astype(np.int64)), "pos": self.pos,
                "rng": _encode(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict) -> None:
        perm = np.asarray(state["perm"].cpu().numpy(), dtype=np.int64)
        if len(perm) != len(self.images):
            raise InputError(f"the checkpoint's data order covers {len(perm)} images but the "
                             f"prepared set has {len(self.images)}: was prepare rerun?")
        self.perm, self.pos = perm, int(state["pos"])
        self.rng.bit_generator.state = _decode(state["rng"])


class Prefetcher:
    """Hands out this rank's share of each global minibatch as uint8 N×1×R×R on `device`
    and its labels (float32 N×2, or None without labels), having read them `depth` batches
    ahead on a background thread (pinned memory on GPUs)."""

    def __init__(self, sampler: RealSampler, rank: int, world: int, device, depth: int = 2):
        self.sampler, self.rank, self.world = sampler, rank, world
        self.device, self.depth = torch.device(device), depth
        self.pin = self.device.type == "cuda"
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prefetch")
        self.pending: deque = deque()  # (global_n, future, sampler state before the read)

    def _read(self, idx: np.ndarray):
        x = torch.from_numpy(self.sampler.read(idx)).unsqueeze(1)
        cond = self.sampler.conditions(idx)
        cond = None if cond is None else torch.from_numpy(np.ascontiguousarray(cond))
        if self.pin:
            x = x.pin_memory()
            cond = None if cond is None else cond.pin_memory()
        return x, cond

    def _enqueue(self, global_n: int) -> None:
        before = self.sampler.state_dict()
        idx = self.sampler.next_indices(global_n)[self.rank::self.world]
        self.pending.append((global_n, self.pool.submit(self._read, idx), before))

    def reset(self) -> None:
        """Forget what was read ahead; the sampler goes back to the last batch handed out."""
        if self.pending:
            self.sampler.load_state_dict(self.pending[0][2])
        for _, future, _ in self.pending:
            future.cancel()
        self.pending.clear()

    def next(self, global_n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pending and self.pending[0][0] != global_n:
            self.reset()
        while len(self.pending) < self.depth:
            self._enqueue(global_n)
        _, future, _ = self.pending.popleft()
        self._enqueue(global_n)
        x, cond = future.result()
        cond = None if cond is None else cond.to(self.device, non_blocking=True)
        return x.to(self.device, non_blocking=True), cond

    def state_dict(self) -> dict:
        """The sampler's state after the last batch handed out."""
        return self.pending[0][2] if self.pending else self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.reset()
        self.sampler.load_state_dict(state)

    def close(self) -> None:
        self.reset()
        self.pool.shutdown(wait=True)


def _encode(state: dict) -> dict:
    """numpy bit-generator state → only str/int leaves as strings (weights_only-safe)."""
    return {k: (_encode(v) if isinstance(v, dict) else str(v)) for k, v in state.items()}


def _decode(state: dict) -> dict:
    out = {}
    for k, v in state.items():
        if isinstance(v, dict):
            out[k] = _decode(v)
        else:
            out[k] = int(v) if v.lstrip("-").isdigit() else v
    return out


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 images → float in [-1, 1]."""
    return x.float().mul_(2.0 / 255.0).sub_(1.0)


def fade_reals(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Blend reals with their 2×-downsampled-and-upsampled version during a fade-in."""
    if alpha >= 1.0:
        return x
    low = torch.nn.functional.avg_pool2d(x, 2)
    low = torch.nn.functional.interpolate(low, scale_factor=2, mode="nearest")
    return torch.lerp(low, x, alpha)
