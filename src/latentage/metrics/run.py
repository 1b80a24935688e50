"""The two metric steps: `real_metrics` (real-image statistics and real-vs-real reference
values) and `snapshot_metrics` (one G_ema snapshot against those statistics), and the gather.

Images flow in batches through every enabled metric; each takes the first n images it needs
(`metrics.n`), so a snapshot job generates max(n) images once. Generated images come from a
fixed set of latents (the same for every snapshot), at the snapshot's resolution and fade,
upscaled (nearest) to the final resolution — as the reference evaluated a growing network — and
compared with the real images at that resolution. Real statistics are files (rule outputs),
never hidden caches.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from latentage.errors import InputError
from latentage.io import atomic_path, write_json
from latentage.metrics import REGISTRY
from latentage.metrics.frechet import frechet_distance_features, gaussian_stats
from latentage.metrics.inception import MissingWeights, load_inception
from latentage.metrics.inception_score import inception_score
from latentage.metrics.ms_ssim import MSSSIM
from latentage.metrics.neighbours import take_rows
from latentage.metrics.swd import PyramidDescriptors, swd

REAL_STREAM, FAKE_STREAM = 0x4EA1, 0xFA4E


@dataclass
class MetricSettings:
    enabled: list[str] = field(default_factory=lambda: list(REGISTRY))
    n: dict = field(default_factory=lambda: {"fid": 10000, "is": 5000, "ms_ssim": 5000,
                                             "swd": 1000, "domain_fd": 10000})
    is_splits: int = 10
    batch_size: int = 64
    inception_weights: str | None = None
    allow_download: bool = True
    missing_weights: str = "error"  # error | skip

    @classmethod
    def from_json(cls, text: str) -> MetricSettings:
        raw = json.loads(text)
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(f"unknown metrics settings: {', '.join(unknown)}")
        for name in known.get("enabled", []):
            if name not in REGISTRY:
                raise InputError(f"config key metrics.enabled: unknown metric {name!r} "
                                 f"(known: {', '.join(REGISTRY)})")
        return cls(**known)

    def count(self, name: str) -> int:
        return int(self.n[name])


def _device():
    from latentage.cnn.predict import default_device

    return default_device()


def _load_models(settings: MetricSettings, cnn_path, device, log):
    """Inception (if a metric needs it and its weights are there) and the CNN predictor."""
    needs = {REGISTRY[m].needs for m in settings.enabled}
    inception, skipped = None, {}
    if "inception" in needs:
        try:
            inception = load_inception(settings.inception_weights, settings.allow_download, device)
        except MissingWeights as exc:
            if settings.missing_weights != "skip":
                raise
            for m in settings.enabled:
                if REGISTRY[m].needs == "inception":
                    skipped[m] = str(exc)
            log(f"metrics: NOTICE: {', '.join(skipped).upper()} skipped — {exc}")
    predictor = None
    if "cnn" in needs:
        from latentage.cnn.predict import BoneAgePredictor

        predictor = BoneAgePredictor.from_checkpoint(cnn_path, device, settings.batch_size)
    return inception, predictor, skipped


def _run(metrics: dict, batches, inception, predictor, device) -> None:
    """Feed each batch to every metric that still needs images (features computed once)."""
    seen = 0
    for batch in batches:
        want = {name: max(0, m.n - seen) for name, m in metrics.items()}
        if not any(want.values()):
            break
        batch = batch.to(device)
        feats = {}
        for kind, model in (("inception", inception), ("cnn", predictor)):
            k = max([w for name, w in want.items() if metrics[name].needs == kind], default=0)
            if k and model is not None:
                part = batch[:k]
                feats[kind] = (model(part) if kind == "inception" else
                               model(part, features=True, value_range=(0.0, 255.0))["features"])
        for name, m in metrics.items():
            if want[name]:
                m.feed(batch[:want[name]], **{kind: _slice(f, want[name]) for kind, f in
                                              feats.items() if kind == m.needs})
        seen += len(batch)


def _slice(feat, k):
    return {key: v[:k] for key, v in feat.items()} if isinstance(feat, dict) else feat[:k]


def _read_reals(path) -> np.ndarray:
    path = Path(path)
    try:
        reals = np.load(path, mmap_mode="r")
    except Exception as exc:
        raise InputError(f"{path}: not a prepared image array ({exc})") from None
    if reals.ndim != 3 or reals.dtype != np.uint8:
        raise InputError(f"{path}: expected uint8 N×R×R images, got {reals.dtype} {reals.shape}")
    return reals


def real_order(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(np.random.SeedSequence([seed, REAL_STREAM])).permutation(n)


def real_batches(reals: np.ndarray, order: np.ndarray, batch: int):
    for lo in range(0, len(order), batch):
        yield torch.from_numpy(take_rows(reals, order[lo:lo + batch])).unsqueeze(1).float()


def fake_batches(G, meta: dict, n: int, out_res: int, seed: int, batch: int, device):
    """Generated images of the snapshot (its resolution and fade), nearest-upscaled to
    out_res, rounded to the uint8 grid: N×1×out_res×out_res floats in [0, 255]."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, FAKE_STREAM]))
    res, alpha = int(meta["resolution"]), float(meta.get("alpha", 1.0))
    for lo in range(0, n, batch):
        z = torch.from_numpy(rng.standard_normal((min(batch, n - lo), G.latent_size),
                                                 dtype=np.float32)).to(device)
        with torch.no_grad():
            img = G(z, res, alpha).float()
        if res != out_res:
            img = F.interpolate(img, scale_factor=out_res // res, mode="nearest")
        yield img.clamp(-1, 1).add(1).mul(127.5).round()


def real_metrics(reals_path, cnn_path, out_json, out_stats, settings: MetricSettings, seed: int,
                 log=print) -> dict:
    """Real-image statistics for the snapshot jobs and the real-vs-real reference values:
    FID and domain FD of two disjoint halves, IS and MS-SSIM of reals, SWD real-vs-real."""
    t0 = time.perf_counter()
    device = _device()
    reals = _read_reals(reals_path)
    inception, predictor, skipped = _load_models(settings, cnn_path, device, log)
    order = real_order(len(reals), seed)
    want = {m: settings.count(m) for m in settings.enabled}
    n_used = min(len(reals), max([want.get("fid", 0), want.get("domain_fd", 0),
                                  want.get("is", 0), want.get("ms_ssim", 0),
                                  2 * want.get("swd", 0)] + [0]))
    inc_pool, inc_logits, cnn_feats = [], [], []
    swd_a = swd_b = None
    if "swd" in settings.enabled:
        half = min(settings.count("swd"), len(reals) // 2)
        swd_a = PyramidDescriptors(half, reals.shape[1], seed + 11)
        swd_b = PyramidDescriptors(half, reals.shape[1], seed + 12)
    ms = MSSSIM(settings.count("ms_ssim")) if "ms_ssim" in settings.enabled else None
    seen = 0
    for batch in real_batches(reals, order[:n_used], settings.batch_size):
        batch = batch.to(device)
        if inception is not None:
            out = inception(batch)
            inc_pool.append(out["pool"].double().cpu().numpy())
            inc_logits.append(out["logits"].double().cpu().numpy())
        if predictor is not None:
            cnn_feats.append(predictor(batch, features=True, value_range=(0.0, 255.0))
                             ["features"].double().cpu().numpy())
        if ms is not None:
            ms.feed(batch)
        if swd_a is not None:  # the first `half` shuffled reals vs the next `half`
            lo = max(0, min(len(batch), swd_a.n - seen))
            swd_a.feed(batch[:lo])
            swd_b.feed(batch[lo:])
        seen += len(batch)
    values, counts, stats = {}, {}, {}

    def floor_fd(name, feats, key):
        feats = np.concatenate(feats)
        k = min(settings.count(name), len(feats))
        stats[f"{key}_mu"], stats[f"{key}_sigma"] = gaussian_stats(feats[:k])
        h = k // 2
        values[name] = frechet_distance_features(feats[:h], feats[h:2 * h])
        counts[name] = {"statistics": k, "halves": h}

    if "fid" in settings.enabled and inception is not None:
        floor_fd("fid", inc_pool, "inception")
    if "domain_fd" in settings.enabled:
        floor_fd("domain_fd", cnn_feats, "cnn")
    if "is" in settings.enabled and inception is not None:
        k = min(settings.count("is"), seen)
        values["is_mean"], values["is_std"] = inception_score(
            np.concatenate(inc_logits)[:k], settings.is_splits)
        counts["is"] = k
    if ms is not None:
        values.update(ms.result())
        counts["ms_ssim"] = ms.seen
    if swd_a is not None:
        values.update(swd(swd_a.finalized(), swd_b.finalized(), swd_a.levels, seed + 13))
        counts["swd"] = {"halves": swd_a.seen}
    with atomic_path(out_stats, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **stats, n_reals=len(reals), seed=seed)
    summary = {"reals": str(reals_path), "resolution": int(reals.shape[1]), "n_reals": len(reals),
               "values": values, "counts": counts, "skipped": skipped,
               "seconds": round(time.perf_counter() - t0, 2)}
    write_json(out_json, summary)
    log(f"real-metrics: {len(reals)} real images at {reals.shape[1]}²: "
        + ", ".join(f"{k} {v:.4g}" for k, v in values.items()) + f" ({summary['seconds']} s)")
    return summary


def load_real_stats(path) -> dict:
    path = Path(path)
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:
        raise InputError(f"{path}: unreadable real-image statistics ({exc}); rerun "
                         f"real_metrics") from None


def snapshot_metrics(snapshot, reals_path, real_stats_path, cnn_path, out_json,
                     settings: MetricSettings, seed: int, log=print) -> dict:
    from latentage.gan.checkpoint import load_generator

    t0 = time.perf_counter()
    device = _device()
    G, meta = load_generator(snapshot, device)
    reals = _read_reals(reals_path)
    out_res = int(reals.shape[1])
    if int(meta["resolution"]) > out_res:
        raise InputError(f"{snapshot}: {meta['resolution']}² snapshot but the real images in "
                         f"{reals_path} are {out_res}²")
    real_stats = load_real_stats(real_stats_path)
    inception, predictor, skipped = _load_models(settings, cnn_path, device, log)
    metrics = {}
    for name in settings.enabled:
        if name in skipped:
            continue
        cls = REGISTRY[name]
        stats = getattr(cls, "stats", "")
        if stats and f"{stats}_mu" not in real_stats:
            raise InputError(f"{real_stats_path}: no {stats} statistics for {name} (real_metrics "
                             f"ran without them); rerun real_metrics")
        kw = {"real_stats": real_stats, "res": out_res, "seed": seed, "splits": settings.is_splits}
        if name == "swd":
            real = PyramidDescriptors(settings.count("swd"), out_res, seed + 11)
            order = real_order(len(reals), seed)[: settings.count("swd")]
            for batch in real_batches(reals, order, settings.batch_size):
                real.feed(batch.to(device))
            kw["real_swd"] = real
        metrics[name] = cls(settings.count(name), **kw)
    n = max((m.n for m in metrics.values()), default=0)
    t1 = time.perf_counter()
    _run(metrics, fake_batches(G, meta, n, out_res, seed, settings.batch_size, device),
         inception, predictor, device)
    t2 = time.perf_counter()
    values = {}
    for m in metrics.values():
        values.update(m.result())
    summary = {"snapshot": str(snapshot), "kimg": float(meta["kimg"]),
               "resolution": int(meta["resolution"]), "alpha": float(meta.get("alpha", 1.0)),
               "evaluated_at": out_res, "images": {k: m.n for k, m in metrics.items()},
               "values": values, "skipped": skipped,
               "seconds": {"setup": round(t1 - t0, 2), "generate_and_features": round(t2 - t1, 2),
                           "total": round(time.perf_counter() - t0, 2)},
               "device": str(device)}
    write_json(out_json, summary)
    log(f"snapshot-metrics: {Path(snapshot).name} ({meta['resolution']}², {meta['kimg']:g} kimg): "
        + ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        + f" in {summary['seconds']['total']} s on {device}")
    return summary


def gather_metrics(snapshot_jsons, out_tsv, log=print) -> pd.DataFrame:
    rows = []
    for path in snapshot_jsons:
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
    table = pd.DataFrame(rows).sort_values("kimg").reset_index(drop=True)
    with atomic_path(out_tsv, suffix=".tsv") as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    log(f"gather-metrics: {len(table)} snapshots, columns {', '.join(table.columns)}")
    return table
