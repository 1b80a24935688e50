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

Conditional networks (`gan.conditional`, beyond the study). G takes (z, age, sex): normalised
age (AGE_CENTRE/AGE_SCALE) and a learned sex embedding are concatenated with z before the pixel
norm. D is a projection discriminator (Miyato & Koyama 2018): its score is the unconditional
score plus the inner product of its penultimate features with a linear embedding of the label.
The label D embeds is the one-hot sex and the age as Gaussian bumps centred every
AGE_BUMP_YEARS (σ the same): a bare age scalar would let D reward age-related features only in
proportion to age, bumps let it score every age band in its own way (a 46-kimg demo run with
the scalar: G's hands moved from 7.4 to 8.8 years as the request went from 2 to 16).
Projection rather than the official code's AC-GAN label head: it changes only what the critic
scores, so the WGAN-GP loss, penalty and drift stay exactly as they are, and it has no
auxiliary classification loss to pull G towards easily recognised, less varied hands
(the comparison rule measures that variety).

Everything downstream draws a latent of `G.latent_size` columns and calls G(z). For a
conditional G that latent is z followed by two condition coordinates, standard normal like z:
the first goes through the training set's age quantiles (Φ, then the inverse empirical CDF),
the second through its female fraction, so latents drawn as usual come with ages and sexes
distributed as in the training data. G(z, cond=labels) asks for ages and sexes directly.
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


AGE_CENTRE, AGE_SCALE = 10.0, 5.0  # normalised age = (years − 10) / 5: 0 y → −2, 20 y → 2
SEX_EMBED = 4  # size of G's sex embedding
AGE_BUMP_YEARS = 2.0  # D's age encoding: Gaussian bumps at 0, 2, …, 20 years, σ 2 years
AGE_BUMPS = 11
QUANTILES = 257  # age quantiles a conditional G keeps from its training labels


def normalised_age(months: torch.Tensor) -> torch.Tensor:
    return (months / 12.0 - AGE_CENTRE) / AGE_SCALE


def label_features(cond: torch.Tensor) -> torch.Tensor:
    """What the projection discriminator embeds: age bumps, then one-hot sex (N×(AGE_BUMPS+2))."""
    years = cond[:, :1].float() / 12.0
    centres = torch.arange(AGE_BUMPS, device=cond.device, dtype=torch.float32) * AGE_BUMP_YEARS
    bumps = torch.exp(-0.5 * ((years - centres) / AGE_BUMP_YEARS) ** 2)
    male = cond[:, 1:2].float()
    return torch.cat([bumps, 1.0 - male, male], dim=1)


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


class Generator(nn.Module):
    def __init__(self, max_res: int = 1024, latent_size: int = 512, fmap_base: int = 8192,
                 fmap_max: int = 512, channels: int = 1, normalize_latents: bool = True,
                 pixelnorm_epsilon: float = 1e-8, conditional: bool = False):
        super().__init__()
        self.max_res, self.z_size, self.conditional = max_res, latent_size, conditional
        # the size of the latent G is called with (a conditional G's carries its condition)
        self.latent_size = latent_size + (2 if conditional else 0)
        self.normalize_latents, self.eps = normalize_latents, pixelnorm_epsilon
        top = _level(max_res)
        f = lambda s: nf(s, fmap_base, fmap_max)  # noqa: E731
        extra = 0
        if conditional:
            extra = 1 + SEX_EMBED
            self.sex_embed = nn.Embedding(2, SEX_EMBED)
            # the training labels' distribution (set_label_distribution; saved with G)
            self.register_buffer("age_quantiles", torch.linspace(0.0, 228.0, QUANTILES))
            self.register_buffer("female_fraction", torch.tensor(0.5))
        self.dense = EqualizedLinear(latent_size + extra, f(1) * 16, gain=math.sqrt(2) / 4,
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

    @torch.no_grad()
    def set_label_distribution(self, ages_months, male) -> None:
        """Keep the training labels' age quantiles and female fraction (conditional G)."""
        ages = torch.as_tensor(ages_months, dtype=torch.float64)
        grid = torch.linspace(0.0, 1.0, QUANTILES, dtype=torch.float64)
        self.age_quantiles.copy_(torch.quantile(ages, grid).float())
        self.female_fraction.fill_(1.0 - float(torch.as_tensor(male, dtype=torch.float64).mean()))

    def conditions_of(self, coords: torch.Tensor) -> torch.Tensor:
        """Two standard-normal condition coordinates → labels (age months, male 0/1)."""
        u = _std_normal_cdf(coords[:, 0].float()).clamp(0.0, 1.0) * (QUANTILES - 1)
        lo = u.floor().clamp(max=QUANTILES - 2)
        q = self.age_quantiles
        age = torch.lerp(q[lo.long()], q[lo.long() + 1], u - lo)
        male = (_std_normal_cdf(coords[:, 1].float()) >= self.female_fraction).float()
        return torch.stack([age, male], dim=1)

    def split_latent(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A conditional G's latent → (z, labels)."""
        return z[:, :self.z_size], self.conditions_of(z[:, self.z_size:])

    def _input(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if not self.conditional:
            if cond is not None:
                raise ValueError("labels given to an unconditional generator")
            return z
        if cond is None:
            z, cond = self.split_latent(z)
        age = normalised_age(cond[:, :1].float()).to(z.dtype)
        sex = self.sex_embed(cond[:, 1].round().long().clamp(0, 1)).to(z.dtype)
        return torch.cat([z, age, sex], dim=1)

    def forward(self, z: torch.Tensor, resolution: int | None = None,
                alpha: float | torch.Tensor = 1.0, cond: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Images of z at `resolution`. A conditional G takes its latent (z and the two
        condition coordinates), or z with `cond` (N×2: age months, male 0/1)."""
        resolution = resolution or self.max_res
        z = self._input(z, cond)
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
                 channels: int = 1, mbstd_group_size: int = 4, conditional: bool = False):
        super().__init__()
        self.max_res, self.mbstd_group_size = max_res, mbstd_group_size
        self.conditional = conditional
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
        if conditional:  # projection: label features (label_features) → feature space
            self.project = EqualizedLinear(AGE_BUMPS + 2, f(0), gain=1.0, bias_size=0)

    def forward(self, img: torch.Tensor, alpha: float | torch.Tensor = 1.0,
                cond: torch.Tensor | None = None) -> torch.Tensor:
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
        score = self.dense1(x)
        if self.conditional:
            if cond is None:
                raise ValueError("a conditional discriminator needs the images' labels")
            label = label_features(cond).to(x.dtype)
            score = score + (x * self.project(label)).sum(dim=1, keepdim=True)
        return score


def fading(alpha) -> bool:
    return isinstance(alpha, torch.Tensor) or alpha < 1.0


def blend(old: torch.Tensor, new: torch.Tensor, alpha) -> torch.Tensor:
    """The fade-in: old + alpha·(new − old), in the wider of the two dtypes: under CUDA
    autocast one path can come out in float32 and the other in half precision, and lerp
    takes one dtype (measured on an H200: "expected dtype float for `end` but got Half")."""
    dtype = torch.promote_types(old.dtype, new.dtype)
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.to(dtype)
    return torch.lerp(old.to(dtype), new.to(dtype), alpha)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
