"""The gather_labels step: every shard in index order; a missing, duplicated or corrupt shard
is an error naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from latentage.errors import InputError
from latentage.io import atomic_path, write_parquet


def gather_labels(*, shard_labels, shard_z, z, labels, n: int, log=print) -> None:
    """Concatenate shards in index order into `z` (.npy) and `labels` (.parquet); every index
    exactly once, shapes consistent."""
    frames, parts, dim = [], [], None
    for lab_path, z_path in zip(shard_labels, shard_z, strict=True):
        lab_path, z_path = Path(lab_path), Path(z_path)
        try:
            frame = pd.read_parquet(lab_path)
            part = np.load(z_path)
        except Exception as exc:
            raise InputError(f"shard {lab_path.stem}: unreadable ({exc}); delete "
                             f"{lab_path} and {z_path} and rerun") from None
        if list(frame.columns) != ["idx", "age", "male_prob"]:
            raise InputError(f"shard {lab_path}: columns {list(frame.columns)}, expected "
                             f"idx, age, male_prob")
        if part.ndim != 2 or len(part) != len(frame):
            raise InputError(f"shard {lab_path.stem}: {z_path} holds {part.shape} latents for "
                             f"{len(frame)} labels")
        if dim is not None and part.shape[1] != dim:
            raise InputError(f"shard {lab_path.stem}: latent size {part.shape[1]}, others {dim}")
        if not np.isfinite(frame[["age", "male_prob"]].to_numpy()).all():
            raise InputError(f"shard {lab_path.stem}: non-finite labels in {lab_path}")
        dim = part.shape[1]
        frames.append(frame.assign(_shard=lab_path.stem))
        parts.append(part)
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
    z_all = np.concatenate(parts)[order]
    with atomic_path(z, suffix=".npy") as tmp:
        np.save(tmp, z_all.astype(np.float32))
    write_parquet(labels, table.drop(columns="_shard").iloc[order].reset_index(drop=True))
    log(f"gather-labels: {n} latents of {dim} dimensions from {len(frames)} shards")
