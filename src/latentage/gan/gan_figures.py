"""Fig 1a: one generated hand per resolution across training (fixed latents), and Fig 1b:
a grid of final samples — the study's Fig 1a/1b, from the phase checkpoints."""

from __future__ import annotations

import numpy as np
import torch

from latentage import seeds
from latentage.gan.checkpoint import load_generator
from latentage.gan.images import to_uint8
from latentage.io import save_figure
from latentage.plots import image_cell, pyplot


def _latents(n: int, latent_size: int, seed: int, key: int) -> torch.Tensor:
    return torch.randn(n, latent_size, generator=seeds.torch_generator(seed, "figures", key))


def gan_figures(checkpoints, *, growth, samples, seed: int) -> None:
    """The gan_figures step: Fig 1a from every phase checkpoint, Fig 1b from the last."""
    growth_figure(checkpoints, growth, seed)
    samples_figure(checkpoints[-1], samples, seed)


def growth_figure(checkpoints, out_png, seed: int, rows: int = 3) -> None:
    plt = pyplot()
    cols = len(checkpoints)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 1.9 * rows + 0.4), squeeze=False)
    z = None
    for c, path in enumerate(checkpoints):
        G, meta = load_generator(path)
        z = _latents(rows, G.latent_size, seed, 0) if z is None else z
        res = int(meta["resolution"])
        with torch.no_grad():
            imgs = to_uint8(G(z, res, 1.0))
        for r in range(rows):
            ax = axes[r][c]
            image_cell(ax, imgs[r])
            if r == 0:
                ax.set_title(f"{res}×{res}\n{meta['kimg']:g} kimg", fontsize=9)
    fig.suptitle("Generated hands as the PGGAN grows (same latents, G_ema at the end of each "
                 "phase)", fontsize=10)
    fig.tight_layout()
    save_figure(out_png, fig)
    plt.close(fig)


def samples_figure(checkpoint, out_png, seed: int, n: int = 16) -> None:
    plt = pyplot()
    G, meta = load_generator(checkpoint)
    res = int(meta["resolution"])
    with torch.no_grad():
        imgs = to_uint8(G(_latents(n, G.latent_size, seed, 1), res, 1.0))
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows + 0.3), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img in zip(axes.ravel(), imgs, strict=False):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255)
    fig.suptitle(f"Samples of the final generator (G_ema, {res}×{res}, {meta['kimg']:g} kimg)",
                 fontsize=10)
    fig.tight_layout()
    save_figure(out_png, fig)
    plt.close(fig)
