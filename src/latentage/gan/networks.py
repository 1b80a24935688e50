"""PGGAN generator and discriminator for grayscale images (networks.py of the official code).

Both networks hold every resolution's layers from 4×4 up to `max_res` and are evaluated at a
level of detail given by (resolution, alpha): the generator returns images at `resolution`,
blending in the newest block with weight `alpha` during a fade; the discriminator takes
images at `resolution` and blends its newest block the same way. The official code always
works at full size with nearest up- and 2×2 average down-scaling around the active
resolution; working at the active resolution is the same computation and much cheaper (the
gradient penalty keeps the official full-resolution scale: loss.py).

`alpha` is a float, or a 0-d tensor on the device (compiled training passes one, so a changing
fade does not recompile); a tensor always takes the fade path.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from latentage.gan.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    downscale2d,
    leaky,
    minibatch_stddev,
    pixel_norm,
    upscale2d,
)


def nf(stage: int, fmap_base: int, fmap_max: int) -> int:
    """Feature maps at a stage: min(fmap_base / 2**stage, fmap_max)."""
    return min(int(fmap_base / (2.0**stage)), fmap_max)


def _level(res: int) -> int:
    return int(math.log2(res))


class Generator(nn.Module):
    def __init__(self, max_res: int = 1024, latent_size: int = 512, fmap_base: int = 8192,
                 fmap_max: int = 512, channels: int = 1, normalize_latents: bool = True,
                 pixelnorm_epsilon: float = 1e-8):
        super().__init__()
        self.max_res, self.latent_size = max_res, latent_size
        self.normalize_latents, self.eps = normalize_latents, pixelnorm_epsilon
        top = _level(max_res)
        f = lambda s: nf(s, fmap_base, fmap_max)  # noqa: E731
        self.dense = EqualizedLinear(latent_size, f(1) * 16, gain=math.sqrt(2) / 4,
                                     bias_size=f(1))
        self.conv4 = EqualizedConv2d(f(1), f(1), 3)
        self.blocks = nn.ModuleDict()
        self.to_rgb = nn.ModuleDict({"4": EqualizedConv2d(f(1), channels, 1, gain=1.0)})
        for lv in range(3, top + 1):
            self.blocks[str(2**lv)] = nn.ModuleList([
                EqualizedConv2d(f(lv - 2), f(lv - 1), 3, resample="up"),
                EqualizedConv2d(f(lv - 1), f(lv - 1), 3),
            ])
            self.to_rgb[str(2**lv)] = EqualizedConv2d(f(lv - 1), channels, 1, gain=1.0)

    def _act(self, x):
        return pixel_norm(leaky(x), self.eps)

    def forward(self, z: torch.Tensor, resolution: int | None = None,
                alpha: float | torch.Tensor = 1.0) -> torch.Tensor:
        resolution = resolution or self.max_res
        x = pixel_norm(z, self.eps) if self.normalize_latents else z
        x = self.dense(x).view(z.shape[0], -1, 4, 4)
        x = self._act(x + self.dense.bias.view(1, -1, 1, 1))
        x = self._act(self.conv4(x))
        if resolution == 4:
            return self.to_rgb["4"](x)
        prev = x
        for lv in range(3, _level(resolution) + 1):
            prev = x
            up, conv = self.blocks[str(2**lv)]
            x = self._act(conv(self._act(up(x))))
        img = self.to_rgb[str(resolution)](x)
        if fading(alpha):
            old = upscale2d(self.to_rgb[str(resolution // 2)](prev))
            img = blend(old, img, alpha)
        return img


class Discriminator(nn.Module):
    def __init__(self, max_res: int = 1024, fmap_base: int = 8192, fmap_max: int = 512,
                 channels: int = 1, mbstd_group_size: int = 4):
        super().__init__()
        self.max_res, self.mbstd_group_size = max_res, mbstd_group_size
        top = _level(max_res)
        f = lambda s: nf(s, fmap_base, fmap_max)  # noqa: E731
        self.from_rgb = nn.ModuleDict()
        self.blocks = nn.ModuleDict()
        for lv in range(2, top + 1):
            self.from_rgb[str(2**lv)] = EqualizedConv2d(channels, f(lv - 1), 1)
        for lv in range(3, top + 1):
            self.blocks[str(2**lv)] = nn.ModuleList([
                EqualizedConv2d(f(lv - 1), f(lv - 1), 3),
                EqualizedConv2d(f(lv - 1), f(lv - 2), 3, resample="down"),
            ])
        extra = 1 if mbstd_group_size > 1 else 0
        self.conv4 = EqualizedConv2d(f(1) + extra, f(1), 3)
        self.dense0 = EqualizedLinear(f(1) * 16, f(0))
        self.dense1 = EqualizedLinear(f(0), 1, gain=1.0)

    def forward(self, img: torch.Tensor, alpha: float | torch.Tensor = 1.0) -> torch.Tensor:
        resolution = img.shape[-1]
        x = leaky(self.from_rgb[str(resolution)](img))
        for lv in range(_level(resolution), 2, -1):
            res = 2**lv
            conv, down = self.blocks[str(res)]
            x = leaky(down(leaky(conv(x))))
            if res == resolution and fading(alpha):
                old = leaky(self.from_rgb[str(res // 2)](downscale2d(img)))
                x = blend(old, x, alpha)
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size)
        x = leaky(self.conv4(x))
        x = leaky(self.dense0(x.flatten(1)))
        return self.dense1(x)


def fading(alpha) -> bool:
    return isinstance(alpha, torch.Tensor) or alpha < 1.0


def blend(old: torch.Tensor, new: torch.Tensor, alpha) -> torch.Tensor:
    """The fade-in: old + alpha·(new − old)."""
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.to(new.dtype)
    return torch.lerp(old, new, alpha)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
