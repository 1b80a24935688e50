"""Validate, convert and split a labelled radiograph folder into multi-resolution memmaps.

Output (DESIGN.md §4), every file named by the caller: per split, uint8 N×R×R memmaps for
R = 4 … max_res and a labels parquet (id, boneage, male) in the same row order; and a summary
JSON with counts and every skipped row with its reason.

Memory stays bounded: images are decoded, padded and resized one at a time (optionally in a
worker pool) and written straight into memmaps; nothing holds the dataset as floats.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from latentage import seeds
from latentage.config import resolutions
from latentage.data.ingest import Skip, load_grayscale, read_labels
from latentage.errors import InputError
from latentage.io import atomic_path, write_json, write_parquet


def pad_to_square(img: np.ndarray) -> np.ndarray:
    """Centre the image on a square canvas filled with its background level (border median)."""
    h, w = img.shape
    if h == w:
        return img
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    fill = np.uint8(np.median(border))
    side = max(h, w)
    out = np.full((side, side), fill, np.uint8)
    y, x = (side - h) // 2, (side - w) // 2
    out[y:y + h, x:x + w] = img
    return out


def pyramid(img: np.ndarray, max_res: int) -> list[np.ndarray]:
    """uint8 images at max_res, max_res/2, … 4 (largest first).

    The top level is an anti-aliased Lanczos resize of the padded square; each lower level is
    the exact 2×2 mean of the one above (as PGGAN's dataset tool builds its levels, so the
    fade-in of reals during training is consistent with the stored lower resolutions)."""
    square = pad_to_square(img)
    top = Image.fromarray(square).resize((max_res, max_res), Image.LANCZOS, reducing_gap=3.0)
    level = np.asarray(top, dtype=np.float32)
    out = [np.rint(level).astype(np.uint8)]
    while level.shape[0] > 4:
        level = 0.25 * (level[0::2, 0::2] + level[0::2, 1::2] + level[1::2, 0::2]
                        + level[1::2, 1::2])
        out.append(np.clip(np.rint(level), 0, 255).astype(np.uint8))
    return out


def _process(path: Path, max_res: int, min_size: int):
    try:
        return pyramid(load_grayscale(path, min_size), max_res), None
    except InputError as exc:
        return None, str(exc)


def stratified_test_split(ages_months: np.ndarray, test_size: float, seed: int,
                          stream: str = "split") -> np.ndarray:
    """Boolean mask of test rows: the test share of every yearly age bin is as equal as
    rounding allows (largest remainders), members drawn at random with `seed`."""
    n = len(ages_months)
    n_test = int(round(test_size * n)) if test_size < 1 else int(test_size)
    if not 0 < n_test < n:
        raise InputError(f"data.test_size {test_size} leaves {n_test} of {n} images for test; "
                         f"need at least one image in each split")
    bins = np.floor(ages_months / 12.0).astype(int)
    labels, counts = np.unique(bins, return_counts=True)
    quota = counts * n_test / n
    take = np.floor(quota).astype(int)
    remainder = n_test - take.sum()
    order = np.argsort(-(quota - take), kind="stable")
    take[order[:remainder]] += 1
    rng = seeds.rng(seed, stream)
    mask = np.zeros(n, bool)
    for label, k in zip(labels, take, strict=True):
        members = np.flatnonzero(bins == label)
        mask[rng.choice(members, size=k, replace=False)] = True
    return mask


def prepare(*, images, labels, train_images, test_images, train_labels, test_labels, summary,
            settings, seed: int, workers: int = 1, log=print) -> dict:
    """The prepare step for DataSettings `settings`: `train_images` and `test_images` list the
    memmaps to write, lowest resolution first (4 … max_res)."""
    res_list = resolutions(settings.max_res)
    outputs = {"train": [Path(p) for p in train_images], "test": [Path(p) for p in test_images]}
    for split, paths in outputs.items():
        if len(paths) != len(res_list):
            raise InputError(f"--{split}-images names {len(paths)} files but data.max_res "
                             f"{settings.max_res} needs {len(res_list)} ({', '.join(map(str, res_list))})")
    rsna = settings.rsna
    t0 = time.perf_counter()
    records, skips, unlisted = read_labels(labels, images, rsna.id_column, rsna.age_column,
                                           rsna.sex_column, on_bad=settings.on_bad_image)
    log(f"prepare: {len(records)} labelled images to convert, {len(skips)} CSV rows skipped, "
        f"{unlisted} images without a CSV row ignored")
    Path(summary).parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".prepare-staging.", dir=Path(summary).parent))
    try:
        stage, kept = _convert(records, skips, staging, res_list, settings, labels, workers, log)
        convert_s = time.perf_counter() - t0
        is_test = stratified_test_split(np.array([r.boneage for r in kept]),
                                        settings.test_size, seed)
        counts = {}
        for split, mask, label_path in (("train", ~is_test, train_labels),
                                        ("test", is_test, test_labels)):
            counts[split] = _write_split(stage, kept, np.flatnonzero(mask), res_list,
                                         outputs[split], label_path)
        del stage
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    ages = np.array([r.boneage for r in kept])
    elapsed = time.perf_counter() - t0
    report = {
        "images_dir": str(images), "labels_csv": str(labels), "max_res": settings.max_res,
        "resolutions": res_list, "seed": seed,
        "counts": {**counts, "csv_rows_ok": len(records), "used": len(kept),
                   "skipped": len(skips), "images_without_csv_row": unlisted},
        "boneage_months": {
            split: {"mean": float(ages[m].mean()), "sd": float(ages[m].std()),
                    "min": float(ages[m].min()), "max": float(ages[m].max())}
            for split, m in (("train", ~is_test), ("test", is_test))},
        "male_fraction": float(np.mean([r.male for r in kept])),
        "skipped": [s.as_dict() for s in skips],
        "seconds": round(elapsed, 2),
        "images_per_second": round(len(records) / max(convert_s, 1e-9), 1),
    }
    write_json(summary, report)
    log(f"prepare: {counts['train']} train / {counts['test']} test images at "
        f"{res_list[0]}…{settings.max_res} px in {elapsed:.1f} s "
        f"({report['images_per_second']} images/s); {len(skips)} skipped")
    return report


def _convert(records, skips, staging, res_list, settings, labels_csv, workers, log):
    """Decode every image once into staging memmaps (rows in CSV order)."""
    stage = {r: np.lib.format.open_memmap(staging / f"res{r}.npy", mode="w+", dtype=np.uint8,
                                          shape=(max(len(records), 1), r, r)) for r in res_list}
    job = partial(_process, max_res=settings.max_res, min_size=settings.min_image_size)
    kept = []
    pool = mp.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(job, [r.path for r in records], chunksize=4) if pool else \
            map(job, [r.path for r in records])
        for rec, (levels, error) in zip(records, results, strict=True):
            if error is not None:
                if settings.on_bad_image != "skip":
                    raise InputError(f"{labels_csv} line {rec.line} (id {rec.id}): {error}")
                skips.append(Skip(rec.line, rec.id, rec.path.name, error))
                continue
            for r, level in zip(reversed(res_list), levels, strict=True):
                stage[r][len(kept)] = level
            kept.append(rec)
            if len(kept) % 1000 == 0:
                log(f"prepare: {len(kept)}/{len(records)} images converted")
    finally:
        if pool:
            pool.terminate()
    if len(kept) < 2:
        raise InputError(f"{labels_csv}: only {len(kept)} usable image(s) after validation")
    return stage, kept


def _write_split(stage, kept, idx, res_list, paths, labels_path) -> int:
    """Copy one split's rows from staging into its memmaps; write its labels."""
    for r, path in zip(res_list, paths, strict=True):
        with atomic_path(path, suffix=".npy") as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                            shape=(len(idx), r, r))
            for start in range(0, len(idx), 512):
                arr[start:start + 512] = stage[r][idx[start:start + 512]]
            arr.flush()
            del arr
    frame = pd.DataFrame({"id": [kept[i].id for i in idx],
                          "boneage": np.array([kept[i].boneage for i in idx], np.float32),
                          "male": [kept[i].male for i in idx]})
    write_parquet(labels_path, frame)
    return int(len(idx))
