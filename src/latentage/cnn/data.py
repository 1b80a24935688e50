"""Prepared radiographs for the CNN, and augmentation that keeps anatomy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from latentage.errors import InputError


def load_split(images_npy, labels_parquet):
    """(memmap N×R×R uint8, labels frame) with matching row counts."""
    images_npy, labels_parquet = Path(images_npy), Path(labels_parquet)
    if not images_npy.is_file():
        raise InputError(f"{images_npy}: prepared images not found (run `prepare`)")
    images = np.load(images_npy, mmap_mode="r")
    labels = pd.read_parquet(labels_parquet)
    if len(images) != len(labels):
        raise InputError(f"{images_npy} has {len(images)} images but {labels_parquet} has "
                         f"{len(labels)} rows: rerun `prepare`")
    return images, labels


def to_tensor01(batch_uint8: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(batch_uint8)).to(device).unsqueeze(1).float() \
        .div_(255.0)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each image of x (N×1×H×W) blurred by a Gaussian of its own σ (pixels; σ → 0 leaves it
    as it is), edges replicated (no dark rim): kornia's gaussian_blur2d, its kernel 3σ_max
    wide either side."""
    from kornia.filters import gaussian_blur2d

    side = 2 * max(1, math.ceil(3.0 * float(sigma.max()))) + 1
    s = sigma.clamp_min(1e-3)
    return gaussian_blur2d(x, (side, side), torch.stack([s, s], dim=1), border_type="replicate")


def augment(x: torch.Tensor, gen: torch.Generator, rotate: float, scale: float, shift: float,
            brightness: float, contrast: float, hflip: bool, noise: float = 0.0,
            blur: float = 0.0) -> torch.Tensor:
    """Random small rotation (deg), scale, shift (fraction of the side), brightness and
    contrast; horizontal flips only when asked (a left hand flipped is a right hand); a
    Gaussian blur of a σ (pixels) drawn per image from [0, blur]; additive Gaussian pixel noise
    of an sd drawn per image from [0, noise]. Blur and noise draw last, and only when on: the
    other transforms draw the same numbers either way."""
    n = x.shape[0]

    def u(lo=-1.0, hi=1.0):
        return torch.rand(n, generator=gen) * (hi - lo) + lo

    theta = u() * math.radians(rotate)
    s = 1.0 + u() * scale
    tx, ty = u() * shift * 2, u() * shift * 2
    cos, sin = torch.cos(theta) / s, torch.sin(theta) / s
    mat = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    if hflip:
        flip = (torch.rand(n, generator=gen) < 0.5).float() * -2 + 1
        mat[:, 0, 0] *= flip
        mat[:, 1, 0] *= flip
    grid = F.affine_grid(mat.to(x.device, x.dtype), list(x.shape), align_corners=False)
    # border padding: the background continues, no black wedges
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    c = (1.0 + u() * contrast).to(x.device).view(n, 1, 1, 1)
    b = (u() * brightness).to(x.device).view(n, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * c + mean + b
    if blur > 0:
        out = gaussian_blur(out, u(0.0, blur).to(x.device, x.dtype))
    if noise > 0:
        sd = u(0.0, noise).to(x.device, x.dtype).view(n, 1, 1, 1)
        out = out + sd * torch.randn(tuple(x.shape), generator=gen).to(x.device, x.dtype)
    return out.clamp_(0.0, 1.0)
