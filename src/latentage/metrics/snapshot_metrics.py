"""The snapshot_metrics step: every enabled metric of one G_ema snapshot, against the real
images' references from real_metrics."""

from __future__ import annotations

import time
from pathlib import Path

from latentage.device import select_device
from latentage.errors import InputError
from latentage.io import write_json
from latentage.metrics.measure import fake_batches, feed, load_models, metrics_for
from latentage.metrics.real_metrics import load_reference


def snapshot_metrics(*, snapshot, real_stats, cnn, json_out, settings, seed: int,
                     log=print) -> dict:
    """Measure G_ema `snapshot` for MetricsSettings `settings`; write `json_out`."""
    from latentage.gan.checkpoint import load_generator

    t0 = time.perf_counter()
    device = select_device()
    G, meta = load_generator(snapshot, device)
    arrays = load_reference(real_stats)
    out_res = int(arrays["resolution"])
    if int(meta["resolution"]) > out_res:
        raise InputError(f"{snapshot}: {meta['resolution']}² snapshot but the real statistics in "
                         f"{real_stats} are of {out_res}² images")
    inception, predictor, skipped = load_models(settings, cnn, device, log)
    metrics = metrics_for(settings, seed, skipped)
    references = {}
    for m in metrics:
        if m.paired:
            references[m.name] = {k.removeprefix(f"{m.name}_"): v for k, v in arrays.items()
                                  if k.startswith(f"{m.name}_")}
            if not references[m.name]:
                raise InputError(f"{real_stats}: no reference for {m.name} (real_metrics ran "
                                 f"without it); rerun real_metrics")
    sets = [(m, m.new_set(role=1)) for m in metrics]
    n = max([m.n for m in metrics] + [0])
    t1 = time.perf_counter()
    feed(sets, fake_batches(G, meta, n, out_res, seed, settings.batch_size, device), inception,
         predictor, device)
    t2 = time.perf_counter()
    values = {}
    for m, s in sets:
        values.update(m.compare(references[m.name], s) if m.paired else m.value(s))
    summary = {"snapshot": str(snapshot), "kimg": float(meta["kimg"]),
               "resolution": int(meta["resolution"]), "alpha": float(meta.get("alpha", 1.0)),
               "evaluated_at": out_res, "images": {m.name: m.n for m in metrics},
               "values": values, "skipped": skipped,
               "seconds": {"setup": round(t1 - t0, 2), "generate_and_features": round(t2 - t1, 2),
                           "total": round(time.perf_counter() - t0, 2)},
               "device": str(device)}
    write_json(json_out, summary)
    log(f"snapshot-metrics: {Path(snapshot).name} ({meta['resolution']}², {meta['kimg']:g} kimg): "
        + ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        + f" in {summary['seconds']['total']} s on {device}")
    return summary
