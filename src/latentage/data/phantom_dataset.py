"""Write a phantom dataset in RSNA format, and its contact sheet."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from latentage.data.phantom import make_phantom
from latentage.io import atomic_path, write_csv
from latentage.plots import pyplot


def _one(index: int, seed: int, size: int, out_dir: Path) -> dict:
    image, boneage, male, truth = make_phantom(seed, index, size)
    image_id = index + 1
    Image.fromarray(image).save(out_dir / f"{image_id}.png", compress_level=1)
    return {"id": image_id, "boneage": boneage, "male": male, **truth}


def write_phantom_dataset(images_dir, labels_csv, truth_csv, n: int, size: int, seed: int,
                          workers: int = 1, log=print) -> pd.DataFrame:
    """Images `{id}.png` in `images_dir`, `labels_csv` (id,boneage,male) and the full ground
    truth per image in `truth_csv`. The folder appears complete or not at all."""
    images_dir = Path(images_dir)
    tmp_dir = images_dir.with_name(f".{images_dir.name}.partial")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    t0 = time.perf_counter()
    job = partial(_one, seed=seed, size=size, out_dir=tmp_dir)
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            rows = list(pool.imap(job, range(n), chunksize=16))
    else:
        rows = [job(i) for i in range(n)]
    elapsed = time.perf_counter() - t0
    shutil.rmtree(images_dir, ignore_errors=True)
    tmp_dir.rename(images_dir)
    truth = pd.DataFrame(rows)
    labels = truth[["id", "boneage", "male"]].copy()
    labels["boneage"] = labels["boneage"].astype(int)
    write_csv(labels_csv, labels)
    write_csv(truth_csv, truth)
    log(f"phantom: {n} images of {size}px in {elapsed:.1f} s "
        f"({n / max(elapsed, 1e-9):.1f} images/s, {workers} worker(s)); "
        f"bone age {labels.boneage.mean():.1f} ± {labels.boneage.std():.1f} months, "
        f"{100 * labels.male.mean():.1f} % male")
    return truth


def contact_sheet(images_dir, labels_csv, out_png, n: int = 30, columns: int = 6) -> None:
    """A grid of phantoms spanning the age range, each titled with its age and sex."""
    plt = pyplot()

    labels = pd.read_csv(labels_csv).sort_values("boneage").reset_index(drop=True)
    n = min(n, len(labels))
    picks = labels.iloc[np.linspace(0, len(labels) - 1, n).round().astype(int)]
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.45 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, (_, row) in zip(np.ravel(axes), picks.iterrows(), strict=False):
        img = np.asarray(Image.open(Path(images_dir) / f"{row.id}.png"))
        ax.imshow(img, cmap="gray", vmin=0, vmax=255)
        sex = "M" if bool(row.male) else "F"
        ax.set_title(f"{row.boneage / 12:.1f} y ({row.boneage:.0f} mo), {sex}", fontsize=9)
    fig.suptitle("Phantom hand radiographs, ordered by bone age", fontsize=12)
    fig.tight_layout()
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)

