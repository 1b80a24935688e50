"""Images and features for the metric steps.

Real images are read from the prepared memmap in one shuffled order; generated images come
from a fixed set of latents (the same for every snapshot), at the snapshot's resolution and
fade, nearest-upscaled to the final resolution — as the reference evaluated a growing network —
and rounded to the uint8 grid. Both reach every metric as floats in [0, 255], N×1×R×R, and the
features a metric needs are computed once per batch for all metrics together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from latentage import seeds
from latentage.errors import InputError
from latentage.metrics.inception import MissingWeights, load_inception
from latentage.metrics.nearest_neighbours import take_rows
from latentage.metrics.registry import REGISTRY


def read_reals(path) -> np.ndarray:
    path = Path(path)
    try:
        reals = np.load(path, mmap_mode="r")
    except Exception as exc:
        raise InputError(f"{path}: not a prepared image array ({exc})") from None
    if reals.ndim != 3 or reals.dtype != np.uint8:
        raise InputError(f"{path}: expected uint8 N×R×R images, got {reals.dtype} {reals.shape}")
    return reals


def real_order(n: int, seed: int) -> np.ndarray:
    return seeds.rng(seed, "metrics.reals").permutation(n)


def real_batches(reals: np.ndarray, order: np.ndarray, batch: int):
    for lo in range(0, len(order), batch):
        yield torch.from_numpy(take_rows(reals, order[lo:lo + batch])).unsqueeze(1).float()


def on_real_grid(images: torch.Tensor, out_res: int) -> torch.Tensor:
    """G's images ([-1, 1]) as the metrics see reals: nearest-upscaled to out_res and rounded
    to the uint8 grid, floats in [0, 255]."""
    if images.shape[-1] != out_res:
        images = F.interpolate(images, scale_factor=out_res // images.shape[-1], mode="nearest")
    return images.clamp(-1, 1).add(1).mul(127.5).round()


def fake_batches(G, meta: dict, n: int, out_res: int, seed: int, batch: int, device):
    """Generated images of a snapshot, nearest-upscaled to out_res, rounded to the uint8 grid:
    N×1×out_res×out_res floats in [0, 255]."""
    z_all = seeds.rng(seed, "metrics.fakes").standard_normal((n, G.latent_size),
                                                             dtype=np.float32)
    res, alpha = int(meta["resolution"]), float(meta.get("alpha", 1.0))
    for lo in range(0, n, batch):
        z = torch.from_numpy(z_all[lo:lo + batch]).to(device)
        with torch.no_grad():
            img = G(z, res, alpha).float()
        yield on_real_grid(img, out_res)


def metrics_for(settings, seed: int, skipped=()) -> list:
    return [REGISTRY[name](settings, seed) for name in settings.enabled if name not in skipped]


def load_models(settings, cnn_path, device, log):
    """Inception (if a metric needs it and its weights are there), the CNN predictor, and the
    metrics skipped for want of weights (with the reason)."""
    needs = {REGISTRY[m].needs for m in settings.enabled}
    inception, skipped = None, {}
    if "inception" in needs:
        try:
            inception = load_inception(settings.inception_weights, settings.allow_download,
                                       device)
        except MissingWeights as exc:
            if settings.missing_weights != "skip":
                raise
            skipped = {m: str(exc) for m in settings.enabled if REGISTRY[m].needs == "inception"}
            log(f"metrics: NOTICE: {', '.join(skipped).upper()} skipped — {exc}")
    predictor = None
    if "cnn" in needs:
        from latentage.cnn.predict import BoneAgePredictor

        # features for metrics in full precision, as the real statistics were computed
        predictor = BoneAgePredictor.from_checkpoint(cnn_path, device, settings.batch_size,
                                                     precision="fp32")
    return inception, predictor, skipped


def feed(sets: list, batches, inception, predictor, device) -> int:
    """Feed each batch to every (metric, set) pair that still wants images; features are
    computed once per batch, for as many images as any set still wants. Returns images read."""
    seen = 0
    for batch in batches:
        wanting = [(m, s) for m, s in sets if not s.full]
        if not wanting:
            break
        batch = batch.to(device)
        features = {}
        for kind, model in (("inception", inception), ("cnn", predictor)):
            k = max([_wants(m, s) for m, s in wanting if m.needs == kind], default=0)
            if k and model is not None:
                part = batch[:k]
                features[kind] = model(part) if kind == "inception" else \
                    model(part, features=True, value_range=(0.0, 255.0))["features"]
        for m, s in wanting:
            m.feed(s, batch, features)
        seen += len(batch)
    return seen


def _wants(metric, s) -> int:
    return max(0, s.capacity - s.n)
