"""Real images for training: shuffled epochs over a prepared memmap, state kept for resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latentage.errors import InputError


class RealSampler:
    """Draws global minibatches of indices without replacement within an epoch.

    Every rank draws the same global minibatch; each keeps its strided share, so the result
    does not depend on the number of ranks."""

    def __init__(self, path, seed: int):
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: prepared training images not found (run `prepare`)")
        self.images = np.load(path, mmap_mode="r")
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise InputError(f"{path}: expected uint8 N×R×R, got {self.images.dtype} "
                             f"{self.images.shape}")
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0xDA7A]))
        self.perm = self.rng.permutation(len(self.images))
        self.pos = 0

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    def next_indices(self, n: int) -> np.ndarray:
        out = []
        while n > 0:
            if self.pos >= len(self.perm):
                self.perm, self.pos = self.rng.permutation(len(self.images)), 0
            take = self.perm[self.pos:self.pos + n]
            self.pos += len(take)
            n -= len(take)
            out.append(take)
        return np.concatenate(out)

    def batch(self, global_n: int, rank: int, world: int, device) -> torch.Tensor:
        """This rank's share of the next global minibatch, float in [-1, 1], N×1×R×R."""
        idx = self.next_indices(global_n)[rank::world]
        order = np.argsort(idx)  # sorted reads from the memmap, original order restored
        arr = np.empty((len(idx), self.resolution, self.resolution), np.uint8)
        arr[order] = self.images[idx[order]]
        x = torch.from_numpy(arr).to(device, non_blocking=True).unsqueeze(1)
        return x.float().mul_(2.0 / 255.0).sub_(1.0)

    def state_dict(self) -> dict:
        return {"perm": torch.from_numpy(self.perm.astype(np.int64)), "pos": self.pos,
                "rng": _encode(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict) -> None:
        perm = state["perm"].numpy()
        if len(perm) != len(self.images):
            raise InputError(f"the checkpoint's data order covers {len(perm)} images but the "
                             f"prepared set has {len(self.images)}: was prepare rerun?")
        self.perm, self.pos = perm, int(state["pos"])
        self.rng.bit_generator.state = _decode(state["rng"])


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


def fade_reals(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Blend reals with their 2×-downsampled-and-upsampled version during a fade-in."""
    if alpha >= 1.0:
        return x
    low = torch.nn.functional.avg_pool2d(x, 2)
    low = torch.nn.functional.interpolate(low, scale_factor=2, mode="nearest")
    return torch.lerp(low, x, alpha)
