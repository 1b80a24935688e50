"""PGGAN building blocks (Karras et al. 2018, §4 and Appendix A).

Equalized learning rate: weights are stored as N(0, 1) and scaled at run time by He's
constant gain / sqrt(fan_in), so Adam sees every weight on the same scale. The fused
up-/down-scaling convolutions compute exactly nearest-upsample → conv3×3 and
conv3×3 → 2×2 average pool (tests/test_gan_networks.py checks both), in one strided op.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


class EqualizedConv2d(nn.Module):
    """k×k convolution with 'same' padding; `resample` = None | 'up' | 'down' (fused)."""

    def __init__(self, cin: int, cout: int, kernel: int, gain: float = SQRT2,
                 resample: str | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = gain / math.sqrt(cin * kernel * kernel)
        self.resample = resample
        self.pad = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale
        if self.resample is None:
            return F.conv2d(x, w, self.bias, padding=self.pad)
        # pad the 3×3 kernel to 5×5 and add its four 1-pixel shifts: a 4×4 kernel
        w = F.pad(w, (1, 1, 1, 1))
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
        if self.resample == "down":
            return F.conv2d(x, w * 0.25, self.bias, stride=2, padding=1)
        # transposed convolution takes (in, out, kH, kW) and correlates with the flipped
        # kernel; flipping makes it exactly nearest-upsample → conv3×3
        return F.conv_transpose2d(x, w.flip([2, 3]).transpose(0, 1), self.bias, stride=2,
                                  padding=1)


class EqualizedLinear(nn.Module):
    """Dense layer. With `bias_size` ≠ cout the bias is left to the caller (the generator's
    first layer adds one bias per channel after reshaping to 4×4, as the official code)."""

    def __init__(self, cin: int, cout: int, gain: float = SQRT2, bias_size: int | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout if bias_size is None else bias_size))
        self.scale = gain / math.sqrt(cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias if self.bias.numel() == self.weight.shape[0] else None
        return F.linear(x, self.weight * self.scale, bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit RMS (over channels, dim 1).

    The mean of squares is taken in float32 (in half precision it overflows above |x| ≈ 256),
    and the result keeps x's dtype, so under autocast the next layer gets half precision."""
    scale = torch.rsqrt(x.float().pow(2).mean(dim=1, keepdim=True) + eps)
    return x * scale.to(x.dtype)


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def upscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def downscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    return x if factor == 1 else F.avg_pool2d(x, factor)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append the mean (over features and pixels) of the per-group standard deviation.

    Grouping as in the official layer: the batch is viewed as [G, M, …], so sample n belongs
    to group n mod M; the variance is biased (mean of squares), in float32."""
    n, c, h, w = x.shape
    g = math.gcd(min(group_size, n), n)  # the official layer requires n % g == 0
    y = x.float().reshape(g, -1, c, h, w)
    y = y - y.mean(dim=0, keepdim=True)
    y = torch.sqrt(y.pow(2).mean(dim=0) + 1e-8)
    y = y.mean(dim=(1, 2, 3)).to(x.dtype)  # [M]
    y = y.reshape(1, -1, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, y], dim=1)
