"""Figures: matplotlib on the Agg backend (cluster nodes have no display), imported only when
a figure is drawn; one way to show a uint8 image in a grid cell."""

from __future__ import annotations


def pyplot():
    """matplotlib.pyplot, headless."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_cell(ax, img, xlabel: str | None = None, fontsize: float = 7) -> None:
    """A grayscale uint8 image in `ax`, pixels as they are (no smoothing), no ticks."""
    ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if xlabel is not None:
        ax.set_xlabel(xlabel, fontsize=fontsize)
