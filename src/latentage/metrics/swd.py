"""Sliced Wasserstein distance over a Laplacian pyramid, as tkarras/progressive_growing_of_gans
metrics/sliced_wasserstein.py specifies it, in torch (runs on the GPU with the generator).

Per level (full resolution down to 16 px): a Laplacian pyramid built with the 5×5 binomial
kernel and mirror padding (cv2.pyrDown/pyrUp), 128 random 7×7 neighbourhoods per image as
descriptors, each channel normalised over all descriptors of the level, then 4 repeats × 128
random unit directions: sort both sets' projections, mean absolute difference; ×1e3. The
average over levels is the headline number. Grayscale is tiled to three channels first, as
the reference's evaluation did, so the numbers are comparable with it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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


class PyramidDescriptors:
    """Accumulates the descriptors of up to n images, level by level."""

    def __init__(self, n: int, res: int, seed: int):
        self.n, self.seen = n, 0
        self.levels = levels_for(res)
        self.desc: list[list[torch.Tensor]] = [[] for _ in self.levels]
        self.generator = torch.Generator().manual_seed(seed)

    def feed(self, images255: torch.Tensor) -> None:
        images255 = images255[: self.n - self.seen]
        if not len(images255):
            return
        x = images255.float()
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        for i, level in enumerate(laplacian_pyramid(x, len(self.levels))):
            self.desc[i].append(descriptors(level, self.generator).cpu())
        self.seen += len(images255)

    def finalized(self, images: int | None = None) -> list[torch.Tensor]:
        """Normalised descriptors of the first `images` images (default: all fed) per level."""
        if not self.seen:
            raise ValueError("no images were fed to the SWD")
        rows = (images or self.seen) * NHOODS_PER_IMAGE
        return [finalize(torch.cat(d)[:rows]) for d in self.desc]


def swd(real: list[torch.Tensor], fake: list[torch.Tensor], levels: list[int],
        seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    dist = [1e3 * sliced_wasserstein(a, b, generator) for a, b in zip(real, fake, strict=True)]
    out = {f"swd_{res}": d for res, d in zip(levels, dist, strict=True)}
    out["swd_avg"] = float(np.mean(dist))
    return out


class SWD:
    name = "swd"
    needs = None

    def __init__(self, n: int, res: int, seed: int, real_swd: PyramidDescriptors | None = None,
                 **_):
        self.n, self.acc = n, PyramidDescriptors(n, res, seed + 1)
        self.real, self.seed = real_swd, seed

    def feed(self, images, **_):
        self.acc.feed(images)

    def result(self) -> dict:
        m = min(self.real.seen, self.acc.seen)
        return swd(self.real.finalized(m), self.acc.finalized(m), self.acc.levels, self.seed + 2)
