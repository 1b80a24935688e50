"""The real_metrics step: what every snapshot is compared with, computed once.

`real_stats.npz` holds each paired metric's reference — the Inception and CNN feature
statistics, the SWD neighbourhoods — of the first n shuffled real training images (n =
metrics.n, or all the images where there are fewer). `real.json` holds the real images' own
values (IS, MS-SSIM) and the real-vs-real floor of each paired metric at the sample sizes the
snapshots use:

- where the training set holds two disjoint sets of n images, the floor is measured between
  them directly ("matched");
- where it does not (FID's 10,000 of RSNA's 12,611), the floor is measured between disjoint
  halves of sizes h = N/2, N/4, N/8 and extrapolated to the snapshots' sizes with the first-order
  finite-sample law of each metric: a Fréchet distance between sets of m1 and m2 samples is
  about d + c·(1/m1 + 1/m2); an SWD between sets of m about d + c/√m. The measured points are
  kept beside the extrapolated value.
"""

from __future__ import annotations

import time

import numpy as np

from latentage.device import select_device
from latentage.errors import InputError
from latentage.io import atomic_path, write_json
from latentage.metrics.base import subset
from latentage.metrics.measure import (
    feed,
    load_models,
    metrics_for,
    read_reals,
    real_batches,
    real_order,
)

# finite-sample exponent of each paired metric's bias (see the module docstring)
BIAS_EXPONENT = {"fid": 1.0, "domain_fd": 1.0, "swd": 0.5}


def _floor(metric, s, n_real: int, total: int) -> dict:
    """Real-vs-real values of `metric` at the sizes a snapshot is measured at."""
    n = metric.n
    if 2 * n <= total:
        values = metric.distance(subset(s, 0, n), subset(s, n, 2 * n))
        return {"matched": True, "n_fake": n, "n_real": n_real, "values": values}
    sizes = [h for h in (total // 2, total // 4, total // 8) if h >= 2]
    points = [metric.distance(subset(s, 0, h), subset(s, h, 2 * h)) for h in sizes]
    p = BIAS_EXPONENT[metric.name]
    values = {}
    for key in points[0]:
        y = np.array([pt[key] for pt in points])
        x = np.array(sizes, float) ** -p
        if len(sizes) >= 2:
            slope, intercept = np.polyfit(x, y, 1)
        else:
            slope, intercept = 0.0, float(y[0])
        # both sets of a point have h samples; a snapshot compares n generated with n_real
        # real (FD: the mean of 1/m1 and 1/m2; SWD: both sets cut to the smaller)
        at = 0.5 * (n ** -p + n_real ** -p) if p == 1.0 else min(n, n_real) ** -p
        values[key] = float(intercept + slope * at)
    return {"matched": False, "n_fake": n, "n_real": n_real, "values": values,
            "points": {"sizes": sizes, "values": points},
            "model": "d + c·(1/m1 + 1/m2)" if p == 1.0 else "d + c/√m"}


def real_metrics(*, reals, cnn, json_out, stats_out, settings, seed: int, log=print) -> dict:
    """The real_metrics step for MetricsSettings `settings`."""
    t0 = time.perf_counter()
    device = select_device()
    images = read_reals(reals)
    total = len(images)
    inception, predictor, skipped = load_models(settings, cnn, device, log)
    metrics = metrics_for(settings, seed, skipped)
    sets = []
    for m in metrics:
        want = (2 * m.n if 2 * m.n <= total else total) if m.paired else min(m.n, total)
        sets.append((m, m.new_set(want)))
    need = max([s.capacity * (2 if m.name == "ms_ssim" else 1) for m, s in sets] + [0])
    order = real_order(total, seed)[:min(need, total)]
    feed(sets, real_batches(images, order, settings.batch_size), inception, predictor, device)
    values, floors, counts, arrays = {}, {}, {}, {"resolution": np.array(images.shape[1])}
    for m, s in sets:
        if not m.paired:
            values.update(m.value(s))
            counts[m.name] = s.n * (2 if m.name == "ms_ssim" else 1)
            continue
        n_real = min(m.n, total)
        for key, value in m.reference(subset(s, 0, n_real)).items():
            arrays[f"{m.name}_{key}"] = value
        floors[m.name] = _floor(m, s, n_real, total)
        values.update(floors[m.name]["values"])
        counts[m.name] = {"reference": n_real, "floor_matched": floors[m.name]["matched"]}
    with atomic_path(stats_out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays, n_reals=total, seed=seed)
    summary = {"reals": str(reals), "resolution": int(images.shape[1]), "n_reals": total,
               "values": values, "floors": floors, "counts": counts, "skipped": skipped,
               "seconds": round(time.perf_counter() - t0, 2)}
    write_json(json_out, summary)
    log(f"real-metrics: {total} real images at {images.shape[1]}²: "
        + ", ".join(f"{k} {v:.4g}" for k, v in values.items() if isinstance(v, float))
        + f" ({summary['seconds']} s)")
    return summary


def load_reference(path) -> dict:
    """real_stats.npz → {metric name: {key: array}} and the resolution."""
    try:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise InputError(f"{path}: unreadable real-image statistics ({exc}); rerun "
                         f"real_metrics") from None
    return arrays
