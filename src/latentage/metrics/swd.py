"""Sliced Wasserstein distance over a Laplacian pyramid, as tkarras/progressive_growing_of_gans
metrics/sliced_wasserstein.py specifies it, in torch (runs on the GPU with the generator).

Per level (full resolution down to 16 px): a Laplacian pyramid built with the 5×5 binomial
kernel and mirror padding (cv2.pyrDown/pyrUp), 128 random 7×7 neighbourhoods per image as
descriptors, each channel normalised over all descriptors of the level, then 4 repeats × 128
random unit directions: sort both sets' projections, mean absolute difference; ×1e3. The
average over levels is the headline number. Grayscale is compared as three identical channels,
as the reference's evaluation did, so the numbers are comparable with it; descriptors are kept
in one channel (a third of the memory) and tiled after normalisation, which is the same.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from latentage import seeds
from latentage.metrics.base import FeatureSet, Metric

NHOOD, NHOODS_PER_IMAGE, DIR_REPEATS, DIRS_PER_REPEAT = 7, 128, 4, 128
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
KERNEL = torch.outer(_BINOMIAL, _BINOMIAL) / 256.0


def levels_for(res: int) -> list[int]:
    out = []
    while res >= 16:
        out.append(res)
        res //= 2
    return out


def _conv_mirror(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    w = kernel.to(x).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), w, groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    return _conv_mirror(x, KERNEL)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return _conv_mirror(up, KERNEL * 4.0)


def laplacian_pyramid(x: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    pyramid = [x.float()]
    for _ in range(1, num_levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


def descriptors(level: torch.Tensor, generator: torch.Generator | None = None,
                positions: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """NHOODS_PER_IMAGE random 7×7 neighbourhoods per image: (N·128)×C×7×7.
    `positions` (y, x centres, each N·128 long) replaces the random draw (tests)."""
    n, c, h, w = level.shape
    half = NHOOD // 2
    count = n * NHOODS_PER_IMAGE
    if positions is None:
        x = torch.randint(half, w - half, (count,), generator=generator)
        y = torch.randint(half, h - half, (count,), generator=generator)
    else:
        y, x = positions
    img = torch.arange(count) // NHOODS_PER_IMAGE
    off = torch.arange(-half, half + 1)
    yy = (y[:, None] + off[None, :]).to(level.device)   # count × 7
    xx = (x[:, None] + off[None, :]).to(level.device)
    img = img.to(level.device)
    # level[img, :, yy, xx] → count × 7 × 7 × C
    patches = level.permute(0, 2, 3, 1)[img[:, None, None], yy[:, :, None], xx[:, None, :]]
    return patches.permute(0, 3, 1, 2).contiguous()


def finalize(desc: torch.Tensor) -> torch.Tensor:
    """Each channel normalised over all descriptors of the level, then flattened."""
    desc = desc - desc.mean(dim=(0, 2, 3), keepdim=True)
    desc = desc / desc.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    return desc.reshape(len(desc), -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator | None = None,
                       dirs: list[torch.Tensor] | None = None) -> float:
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    results = []
    for r in range(DIR_REPEATS):
        if dirs is None:
            d = torch.randn(a.shape[1], DIRS_PER_REPEAT, generator=generator, dtype=torch.float64)
            d = d / d.square().sum(dim=0, keepdim=True).sqrt()
        else:
            d = dirs[r]
        d = d.to(a.device, torch.float32)
        pa = torch.sort(a @ d, dim=0).values
        pb = torch.sort(b @ d, dim=0).values
        results.append((pa - pb).abs().mean().item())
    return float(np.mean(results))


def _tiled(desc: np.ndarray) -> torch.Tensor:
    """One image set's descriptors of one level (images × 128 × 49, grayscale) as the
    reference sees them: normalised, then the channel tiled to RGB (normalisation is per
    channel, so tiling after it is the same as tiling the images), flattened to 147 values."""
    d = torch.from_numpy(np.ascontiguousarray(desc)).reshape(-1, 1, NHOOD, NHOOD)
    return finalize(d).reshape(-1, 1, NHOOD * NHOOD).repeat(1, 3, 1).reshape(len(d), -1)


class SWD(Metric):
    """Per image, NHOODS_PER_IMAGE random 7×7 neighbourhoods of every pyramid level."""

    name = "swd"

    def new_set(self, capacity: int | None = None, role: int = 0) -> FeatureSet:
        s = super().new_set(capacity)
        s.levels = []
        s.generator = seeds.torch_generator(self.seed, "metrics.swd", role)
        return s

    def rows(self, images255, features: dict) -> np.ndarray:
        raise NotImplementedError  # feed() needs the set's own random generator

    def feed(self, s: FeatureSet, images255, features: dict) -> None:
        images255 = images255[: s.capacity - s.n]
        if not len(images255):
            return
        levels = levels_for(images255.shape[-1])
        s.levels = levels
        per_level = [descriptors(level, s.generator).reshape(len(images255), NHOODS_PER_IMAGE,
                                                             NHOOD * NHOOD)
                     for level in laplacian_pyramid(images255.float(), len(levels))]
        s.append(torch.stack(per_level, dim=1).cpu().numpy())

    def reference(self, s: FeatureSet) -> dict[str, np.ndarray]:
        return {"desc": s.rows().astype(np.float32), "levels": np.array(s.levels)}

    def compare(self, reference: dict, s: FeatureSet) -> dict[str, float]:
        real, fake = reference["desc"], s.rows()
        levels = [int(r) for r in reference["levels"]]
        if levels != s.levels:
            raise ValueError(f"SWD levels differ: reference {levels}, images {s.levels}")
        m = min(len(real), len(fake))
        generator = seeds.torch_generator(self.seed, "metrics.swd", 99)
        dist = [1e3 * sliced_wasserstein(_tiled(real[:m, i]), _tiled(fake[:m, i]), generator)
                for i in range(len(levels))]
        out = {f"swd_{res}": d for res, d in zip(levels, dist, strict=True)}
        out["swd_avg"] = float(np.mean(dist))
        return out
