"""Image grids of generator output ([-1, 1], N×1×R×R) as PNG."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from latentage.io import atomic_path


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """N×1×R×R in [-1, 1] → N×R×R uint8."""
    x = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round()
    return x.squeeze(1).to(torch.uint8).cpu().numpy()


def grid(images: np.ndarray, columns: int | None = None, min_tile: int = 64) -> np.ndarray:
    n, r, _ = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    scale = max(1, math.ceil(min_tile / r))  # tiny resolutions shown with nearest upscaling
    tile = r * scale
    out = np.zeros((rows * tile, columns * tile), np.uint8)
    for i, img in enumerate(images):
        y, x = divmod(i, columns)
        out[y * tile:(y + 1) * tile, x * tile:(x + 1) * tile] = np.kron(
            img, np.ones((scale, scale), np.uint8))
    return out


def save_grid(images: torch.Tensor, path, columns: int | None = None) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(grid(to_uint8(images), columns)).save(tmp, format="png")
