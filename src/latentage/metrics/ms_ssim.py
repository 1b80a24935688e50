"""MS-SSIM between consecutive pairs of images (0,1), (2,3), …: lower = more diverse.

The PGGAN reference's definition (tkarras metrics/ms_ssim.py, from TensorFlow's compression
model): Gaussian window 11, σ 1.5, K1 0.01, K2 0.03, data range 255, five scales weighted
[0.0448, 0.2856, 0.3001, 0.2363, 0.1333], 2×2 block means between scales, 'valid' filtering,
negative values clipped to zero. At every scale the window shrinks to min(11, H, W) pixels and
σ with it, so images of any size are measured as they are — never upscaled (a 32² image has
scales 32, 16, 8, 4, 2 with windows 11, 11, 8, 4, 2). pytorch-msssim cannot shrink the window
(it asserts a side above 160 px), hence this implementation, tested against numbers from the
reference code (tests/test_metrics_ms_ssim.py).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from latentage.metrics.base import FeatureSet, Metric

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW, SIGMA, K1, K2, MAX_VAL = 11, 1.5, 0.01, 0.03, 255.0


def _window_1d(size: int, sigma: float, device) -> torch.Tensor:
    """The 1-D factor of the reference's 2-D Gaussian (fspecial: centred, normalised)."""
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """'valid' filtering with the separable window g ⊗ g (N×1×H×W)."""
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    return F.conv2d(x, g.view(1, 1, -1, 1))


def _ssim_cs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and contrast-structure term per pair at one scale."""
    h, w = a.shape[-2:]
    size = min(WINDOW, h, w)
    g = _window_1d(size, size * SIGMA / WINDOW, a.device)
    mu1, mu2 = _filter(a, g), _filter(b, g)
    s11 = _filter(a * a, g) - mu1 * mu1
    s22 = _filter(b * b, g) - mu2 * mu2
    s12 = _filter(a * b, g) - mu1 * mu2
    c1, c2 = (K1 * MAX_VAL) ** 2, (K2 * MAX_VAL) ** 2
    v1, v2 = 2.0 * s12 + c2, s11 + s22 + c2
    ssim = ((2.0 * mu1 * mu2 + c1) * v1) / ((mu1 * mu1 + mu2 * mu2 + c1) * v2)
    return ssim.mean(dim=(1, 2, 3)), (v1 / v2).mean(dim=(1, 2, 3))


def _downsample(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2]
            + x[..., 1::2, 1::2]) * 0.25


def pair_ms_ssim(a255: torch.Tensor, b255: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of each pair (a[i], b[i]); N×1×H×W in [0, 255], float64 arithmetic."""
    a, b = a255.double(), b255.double()
    ssim, cs = [], []
    for level in range(len(WEIGHTS)):
        s, c = _ssim_cs(a, b)
        ssim.append(s)
        cs.append(c)
        if level < len(WEIGHTS) - 1:
            a, b = _downsample(a), _downsample(b)
    w = torch.tensor(WEIGHTS, dtype=torch.float64, device=a.device)
    mcs = torch.stack(cs[:-1]).clamp(min=0.0)
    last = ssim[-1].clamp(min=0.0)
    return (mcs ** w[:-1, None]).prod(dim=0) * last ** w[-1]


class MSSSIM(Metric):
    """Collects one MS-SSIM value per consecutive pair (n images → n // 2 pairs)."""

    name, paired = "ms_ssim", False

    def new_set(self, capacity: int | None = None, role: int = 0) -> FeatureSet:
        s = FeatureSet((self.n if capacity is None else capacity) // 2)
        s.carry = None
        return s

    def feed(self, s: FeatureSet, images255, features: dict) -> None:
        if s.full:
            return
        if s.carry is not None:
            images255 = torch.cat([s.carry.to(images255.device), images255])
            s.carry = None
        images255 = images255[: 2 * (s.capacity - s.n) + 1]
        if len(images255) % 2:
            s.carry, images255 = images255[-1:], images255[:-1]
        if len(images255):
            s.append(pair_ms_ssim(images255[0::2], images255[1::2]).cpu().numpy())

    def value(self, s: FeatureSet) -> dict[str, float]:
        vals = s.rows()
        return {"ms_ssim": float(np.mean(vals)), "ms_ssim_pairs": int(len(vals))}
