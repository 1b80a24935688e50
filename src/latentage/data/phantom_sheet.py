"""The phantom_sheet step: a contact sheet of phantoms ordered by age, for a person to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from latentage.io import save_figure
from latentage.plots import pyplot


def phantom_sheet(*, images, labels, out, n: int = 30, columns: int = 6) -> None:
    """A grid of phantoms spanning the age range, each titled with its age and sex."""
    plt = pyplot()

    table = pd.read_csv(labels).sort_values("boneage").reset_index(drop=True)
    n = min(n, len(table))
    picks = table.iloc[np.linspace(0, len(table) - 1, n).round().astype(int)]
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.45 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, (_, row) in zip(np.ravel(axes), picks.iterrows(), strict=False):
        img = np.asarray(Image.open(Path(images) / f"{row.id}.png"))
        ax.imshow(img, cmap="gray", vmin=0, vmax=255)
        sex = "M" if bool(row.male) else "F"
        ax.set_title(f"{row.boneage / 12:.1f} y ({row.boneage:.0f} mo), {sex}", fontsize=9)
    fig.suptitle("Phantom hand radiographs, ordered by bone age", fontsize=12)
    fig.tight_layout()
    save_figure(out, fig, dpi=110)
    plt.close(fig)

