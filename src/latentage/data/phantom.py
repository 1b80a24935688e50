"""The phantom step: hand radiographs with known ground truth, written in RSNA format.

Every image is a pure function of (seed, index): its label is drawn like the RSNA training
labels (hand_model.sample_label), its anatomy from the label (hand_model.build_hand), and its
exposure, framing and pose independently of both (radiograph.sample_nuisance).
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import time
from functools import partial
from pathlib import Path

import pandas as pd
from PIL import Image

from latentage import seeds
from latentage.data.hand_model import build_hand, sample_label
from latentage.data.radiograph import render, sample_nuisance, scale_px
from latentage.io import write_csv


def make_phantom(seed: int, index: int, size: int = 256, boneage: float | None = None,
                 male: bool | None = None, ages: str = "rsna"):
    """Image (uint8 size×size), bone age (months), male, ground-truth record.

    `boneage`/`male` override the sampled label (the nuisance stays that of (seed, index));
    `ages` is the age mix labels are drawn from (hand_model.sample_label)."""
    rng = seeds.rng(seed, "phantom", index)
    drawn_age, drawn_male = sample_label(rng, ages)
    boneage = drawn_age if boneage is None else float(boneage)
    male = drawn_male if male is None else bool(male)
    model = build_hand(boneage, male, rng)
    nz = sample_nuisance(rng)
    image = render(model, nz, size, rng)
    scale = scale_px(model, nz, size)
    truth = {
        **model.truth,
        "rotation": nz.rotation,
        "wrist_x": nz.cx * size,
        "wrist_y": nz.cy * size,
        "scale_px": scale,
        "background": nz.background,
        "gamma": nz.gamma,
        "noise": nz.noise,
        "has_frame": nz.frame is not None,
    }
    return image, boneage, male, truth


def _one(index: int, seed: int, size: int, ages: str, out_dir: Path) -> dict:
    image, boneage, male, truth = make_phantom(seed, index, size, ages=ages)
    image_id = index + 1
    Image.fromarray(image).save(out_dir / f"{image_id}.png", compress_level=1)
    return {"id": image_id, "boneage": boneage, "male": male, **truth}


def phantom(*, images, labels, truth, settings, seed: int, workers: int = 1,
            log=print) -> pd.DataFrame:
    """Images `{id}.png` in `images`, `labels` (CSV id,boneage,male) and the full ground
    truth per image in `truth` (CSV), for PhantomSettings `settings` (n, size). The folder
    appears complete or not at all."""
    n, size = settings.n, settings.size
    images_dir = Path(images)
    tmp_dir = images_dir.with_name(f".{images_dir.name}.partial")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    t0 = time.perf_counter()
    job = partial(_one, seed=seed, size=size, ages=settings.ages, out_dir=tmp_dir)
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            rows = list(pool.imap(job, range(n), chunksize=16))
    else:
        rows = [job(i) for i in range(n)]
    elapsed = time.perf_counter() - t0
    shutil.rmtree(images_dir, ignore_errors=True)
    tmp_dir.rename(images_dir)
    table = pd.DataFrame(rows)
    label_table = table[["id", "boneage", "male"]].copy()
    label_table["boneage"] = label_table["boneage"].astype(int)
    write_csv(labels, label_table)
    write_csv(truth, table)
    log(f"phantom: {n} images of {size}px in {elapsed:.1f} s "
        f"({n / max(elapsed, 1e-9):.1f} images/s, {workers} worker(s)); "
        f"bone age {label_table.boneage.mean():.1f} ± {label_table.boneage.std():.1f} months, "
        f"{100 * label_table.male.mean():.1f} % male")
    return table
