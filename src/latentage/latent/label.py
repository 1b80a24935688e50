"""Generate and label latents in shards; gather the shards and check they are complete.

Latent i is drawn from its own seed sequence (seed, i), so a shard's content depends only on
which indices it covers: any shard count gives the same gathered table. z is stored as
sampled; PGGAN pixel-normalises z inside G (normalize_latents), so G sees z/‖z‖·√d while the
LASSO and the walks use z as sampled. Optional truncation (BigGAN's trick: components beyond
±τ are redrawn) is off by default, as in the study.

A shard streams batches: G_ema → CNN on the device; no image leaves the device or reaches
disk, and memory stays bounded whatever the shard size.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latentage.cnn.predict import BoneAgePredictor, default_device
from latentage.errors import InputError
from latentage.gan.checkpoint import load_generator
from latentage.io import atomic_path, write_parquet

LATENT_STREAM = 0x1A7E47


def latent(seed: int, index: int, dim: int, truncation: float | None = None) -> np.ndarray:
    """z_index, float32 (dim,), a pure function of (seed, index)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, LATENT_STREAM, index]))
    z = rng.standard_normal(dim, dtype=np.float32)
    if truncation is not None:
        bad = np.abs(z) > truncation
        while bad.any():
            z[bad] = rng.standard_normal(int(bad.sum()), dtype=np.float32)
            bad = np.abs(z) > truncation
    return z


def latents(seed: int, start: int, stop: int, dim: int, truncation=None) -> np.ndarray:
    return np.stack([latent(seed, i, dim, truncation) for i in range(start, stop)]) \
        if stop > start else np.zeros((0, dim), np.float32)


def shard_range(n: int, shard: int, shards: int) -> tuple[int, int]:
    """[start, stop) of shard `shard` (1-based) of `shards` over n indices."""
    if not 1 <= shard <= shards:
        raise InputError(f"shard {shard} of {shards} does not exist")
    return (shard - 1) * n // shards, shard * n // shards


def parse_scatteritem(item: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)-of-(\d+)", item)
    if not m:
        raise InputError(f"shard name {item!r} is not of the form i-of-n")
    return int(m.group(1)), int(m.group(2))


def label_range(G, predictor: BoneAgePredictor, seed: int, start: int, stop: int,
                batch_size: int, resolution: int, truncation=None, log=None):
    """Labels (DataFrame idx, age, male_prob) and z (float32 N×d) for indices [start, stop)."""
    device = predictor.device
    dim = G.latent_size
    zs = np.zeros((stop - start, dim), np.float32)
    ages = np.zeros(stop - start, np.float32)
    probs = np.zeros(stop - start, np.float32)
    t0 = time.perf_counter()
    with torch.no_grad():
        for lo in range(start, stop, batch_size):
            hi = min(lo + batch_size, stop)
            z = latents(seed, lo, hi, dim, truncation)
            images = G(torch.from_numpy(z).to(device), resolution)
            out = predictor(images)
            zs[lo - start:hi - start] = z
            ages[lo - start:hi - start] = out["age"].float().cpu().numpy()
            probs[lo - start:hi - start] = out["male_prob"].float().cpu().numpy()
            if log and ((hi - start) // batch_size) % 20 == 0:
                rate = (hi - start) / (time.perf_counter() - t0)
                log(f"label: {hi - start}/{stop - start} latents, {rate:.1f} images/s")
    frame = pd.DataFrame({"idx": np.arange(start, stop, dtype=np.int64), "age": ages,
                          "male_prob": probs})
    return frame, zs


def label_shard(generator_ckpt, cnn_ckpt, out_labels, out_z, n: int, shard: int, shards: int,
                seed: int, batch_size: int, truncation=None, log=print) -> dict:
    device = default_device()
    G, meta = load_generator(generator_ckpt, device)
    predictor = BoneAgePredictor.from_checkpoint(cnn_ckpt, device, batch_size)
    start, stop = shard_range(n, shard, shards)
    t0 = time.perf_counter()
    frame, zs = label_range(G, predictor, seed, start, stop, batch_size,
                            int(meta["resolution"]), truncation, log)
    dt = time.perf_counter() - t0
    write_parquet(out_labels, frame)
    with atomic_path(out_z, suffix=".npy") as tmp:
        np.save(tmp, zs)
    log(f"label-shard {shard}/{shards}: latents {start}…{stop - 1} at "
        f"{meta['resolution']}² in {dt:.1f} s ({(stop - start) / max(dt, 1e-9):.1f} images/s); "
        f"predicted age {frame.age.mean():.1f} ± {frame.age.std():.1f} months")
    return {"start": start, "stop": stop, "seconds": dt}


def gather(shard_labels, shard_z, out_z, out_labels, n: int, log=print) -> None:
    """Concatenate shards in index order; every index exactly once, shapes consistent."""
    frames, zs, dim = [], [], None
    for lab_path, z_path in zip(shard_labels, shard_z, strict=True):
        lab_path, z_path = Path(lab_path), Path(z_path)
        try:
            frame = pd.read_parquet(lab_path)
            z = np.load(z_path)
        except Exception as exc:
            raise InputError(f"shard {lab_path.stem}: unreadable ({exc}); delete "
                             f"{lab_path} and {z_path} and rerun") from None
        if list(frame.columns) != ["idx", "age", "male_prob"]:
            raise InputError(f"shard {lab_path}: columns {list(frame.columns)}, expected "
                             f"idx, age, male_prob")
        if z.ndim != 2 or len(z) != len(frame):
            raise InputError(f"shard {lab_path.stem}: {z_path} holds {z.shape} latents for "
                             f"{len(frame)} labels")
        if dim is not None and z.shape[1] != dim:
            raise InputError(f"shard {lab_path.stem}: latent size {z.shape[1]}, others {dim}")
        if not np.isfinite(frame[["age", "male_prob"]].to_numpy()).all():
            raise InputError(f"shard {lab_path.stem}: non-finite labels in {lab_path}")
        dim = z.shape[1]
        frame = frame.assign(_shard=lab_path.stem)
        frames.append(frame)
        zs.append(z)
    table = pd.concat(frames, ignore_index=True)
    dup = table[table.idx.duplicated(keep=False)]
    if len(dup):
        first = dup.iloc[0]
        raise InputError(f"latent {first.idx} appears in more than one shard "
                         f"({', '.join(sorted(dup[dup.idx == first.idx]._shard))})")
    missing = np.setdiff1d(np.arange(n), table.idx.to_numpy())
    if len(missing) or len(table) != n:
        raise InputError(f"{len(missing)} of {n} latents missing from the shards (first: "
                         f"{missing[:5].tolist()}); latent.n or the shard count changed?")
    order = np.argsort(table.idx.to_numpy(), kind="stable")
    z_all = np.concatenate(zs)[order]
    with atomic_path(out_z, suffix=".npy") as tmp:
        np.save(tmp, z_all.astype(np.float32))
    write_parquet(out_labels, table.drop(columns="_shard").iloc[order].reset_index(drop=True))
    log(f"gather-labels: {n} latents of {dim} dimensions from {len(frames)} shards")
