"""The gather_metrics step: every snapshot's metrics in one table, in training order."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from latentage.errors import InputError
from latentage.io import atomic_path


def gather_metrics(*, snapshots, table, log=print) -> pd.DataFrame:
    rows = []
    for path in snapshots:
        try:
            s = json.loads(Path(path).read_text())
            row = {"kimg": s["kimg"], "resolution": s["resolution"], "alpha": s["alpha"]}
        except Exception as exc:
            raise InputError(f"{path}: not a snapshot-metrics result ({exc}); delete it and "
                             f"rerun") from None
        row.update(s["values"])
        row["skipped"] = ",".join(sorted(s.get("skipped", {})))
        rows.append(row)
    if not rows:
        raise InputError("no snapshot metrics to gather")
    frame = pd.DataFrame(rows).sort_values("kimg").reset_index(drop=True)
    with atomic_path(table, suffix=".tsv") as tmp:
        frame.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    log(f"gather-metrics: {len(frame)} snapshots, columns {', '.join(frame.columns)}")
    return frame
