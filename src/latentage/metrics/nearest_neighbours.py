"""The nearest_neighbours step: nearest real training images of generated hands — the study's
over-fitting check.

For K generated images, the k nearest real training images by (a) pixel L2 distance at a chosen
resolution and (b) L2 distance between bone-age-CNN features, computed for generated and real
images alike: uint8 images at the generator's resolution, resized by the CNN — so a memorised
training image would be found first (tests check that a real image finds itself). Exact
search: the real set is streamed in chunks, distances by ‖q‖² − 2 q·r + ‖r‖² (matrix products,
float64 accumulation), a running top-k per query; memory is bounded by the chunk, whatever the
number of reals.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from latentage import seeds
from latentage.device import select_device
from latentage.errors import InputError
from latentage.io import save_figure, write_parquet
from latentage.plots import image_cell, pyplot


def knn(queries: np.ndarray, base: np.ndarray, k: int, chunk: int = 1024,
        transform=None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and L2 distances (ascending) of the k nearest rows of `base` for each query.
    `base` may be a memmap of any shape N×…; rows are flattened (after `transform`)."""
    q = torch.from_numpy(np.asarray(queries, np.float64).reshape(len(queries), -1))
    k = min(k, len(base))
    best_d = torch.full((len(q), k), float("inf"), dtype=torch.float64)
    best_i = torch.zeros((len(q), k), dtype=torch.int64)
    q_sq = (q * q).sum(1, keepdim=True)
    for lo in range(0, len(base), chunk):
        rows = np.asarray(base[lo:lo + chunk])
        if transform is not None:
            rows = transform(rows)
        r = torch.from_numpy(rows.reshape(len(rows), -1).astype(np.float64))
        if r.shape[1] != q.shape[1]:
            raise InputError(f"real rows have {r.shape[1]} values, queries {q.shape[1]}")
        d2 = (q_sq - 2.0 * q @ r.T + (r * r).sum(1)[None, :]).clamp_(min=0.0)
        cand_d = torch.cat([best_d, d2], dim=1)
        cand_i = torch.cat([best_i, torch.arange(lo, lo + len(r)).expand(len(q), -1)], dim=1)
        best_d, pos = torch.topk(cand_d, k, dim=1, largest=False, sorted=True)
        best_i = torch.gather(cand_i, 1, pos)
    return best_i.numpy(), best_d.sqrt().numpy()


def downscale(images: np.ndarray, res: int) -> np.ndarray:
    """uint8 N×R×R → float N×res×res by exact 2×2 means (as the prepared pyramid)."""
    x = torch.from_numpy(np.asarray(images, np.float32))[:, None]
    while x.shape[-1] > res:
        x = F.avg_pool2d(x, 2)
    return x[:, 0].numpy()


def search(queries_u8: np.ndarray, pixel_reals: np.ndarray, feature_reals: np.ndarray,
           predictor, k: int) -> dict:
    """The k nearest real images of each query (uint8 Q×R×R at the resolution of
    `feature_reals`) by pixel L2 at the resolution of `pixel_reals` and by CNN-feature L2.
    Queries and reals reach the CNN alike: uint8 at the same resolution, resized by the CNN."""
    res = pixel_reals.shape[1]
    if queries_u8.shape[1] != feature_reals.shape[1]:
        raise InputError(f"queries are {queries_u8.shape[1]}², the real images for features "
                         f"{feature_reals.shape[1]}²")
    if queries_u8.shape[1] < res:
        raise InputError(f"queries are {queries_u8.shape[1]}², smaller than the pixel search "
                         f"resolution {res}")
    # queries go down the pyramid as the reals did in `prepare`: 2×2 means, rounded
    query_px = np.rint(downscale(queries_u8, res)) if queries_u8.shape[1] > res else \
        queries_u8.astype(np.float32)
    t0 = time.perf_counter()
    px_i, px_d = knn(query_px, pixel_reals, k)
    t1 = time.perf_counter()
    q = predictor.predict_uint8(queries_u8, features=True)
    real_feats = predictor.predict_uint8(feature_reals, features=True)["features"]
    ft_i, ft_d = knn(q["features"], real_feats, k)
    return {"pixel": (px_i, px_d), "cnn_features": (ft_i, ft_d), "query_px": query_px,
            "query_age": q["age"], "seconds": {"pixel": t1 - t0,
                                               "features": time.perf_counter() - t1}}


def nearest_neighbours(*, generator, cnn, pixel_reals, feature_reals, real_labels, table,
                       pixel_figure, feature_figure, settings, seed: int, log=print) -> pd.DataFrame:
    """The nearest_neighbours step for NeighbourSettings `settings` (queries, k, res):
    `pixel_reals` are the training images at settings.res, `feature_reals` at the generator's
    resolution."""
    from latentage.cnn.predict import BoneAgePredictor
    from latentage.gan.checkpoint import load_generator
    from latentage.gan.images import to_uint8

    t0 = time.perf_counter()
    device = select_device()
    G, meta = load_generator(generator, device)
    px_reals = np.load(pixel_reals, mmap_mode="r")
    ft_reals = np.load(feature_reals, mmap_mode="r")
    labels = pd.read_parquet(real_labels)
    if px_reals.shape[1] != settings.res:
        raise InputError(f"{pixel_reals}: images are {px_reals.shape[1]}², "
                         f"metrics.nearest_neighbours.res is {settings.res}")
    if not len(px_reals) == len(ft_reals) == len(labels):
        raise InputError(f"{pixel_reals} ({len(px_reals)}), {feature_reals} ({len(ft_reals)}) "
                         f"and {real_labels} ({len(labels)}) disagree on the number of images")
    z = torch.randn(settings.queries, G.latent_size,
                    generator=seeds.torch_generator(seed, "neighbours")).to(device)
    with torch.no_grad():
        fake_u8 = to_uint8(G(z, int(meta["resolution"])))
    predictor = BoneAgePredictor.from_checkpoint(cnn, device, precision="fp32")
    found = search(fake_u8, px_reals, ft_reals, predictor, settings.k)
    frame = _table(found, labels, settings.queries)
    write_parquet(table, frame)
    for png, by, title in ((pixel_figure, "pixel", f"pixel L2 at {settings.res}²"),
                           (feature_figure, "cnn_features", "bone-age CNN feature L2")):
        idx, dist = found[by]
        _grid(found["query_px"], [take_rows(px_reals, idx[q]) for q in range(settings.queries)],
              dist, found["query_age"],
              [labels.boneage.to_numpy()[idx[q]] for q in range(settings.queries)], title, png)
    px_d, ft_d = found["pixel"][1], found["cnn_features"][1]
    log(f"nearest-neighbours: {settings.queries} generated × {len(px_reals)} real images, "
        f"k={settings.k}: pixel search {found['seconds']['pixel']:.2f} s, feature search "
        f"{found['seconds']['features']:.2f} s, total {time.perf_counter() - t0:.1f} s; median "
        f"nearest distance pixel {np.median(px_d[:, 0]):.1f}, features {np.median(ft_d[:, 0]):.2f}")
    return frame


def _table(found: dict, labels: pd.DataFrame, queries: int) -> pd.DataFrame:
    records = []
    for q in range(queries):
        for by in ("pixel", "cnn_features"):
            idx, dist = found[by]
            for rank in range(idx.shape[1]):
                j = int(idx[q, rank])
                records.append({"query": q, "by": by, "rank": rank + 1, "real_index": j,
                                "real_id": labels.iloc[j]["id"], "distance": float(dist[q, rank]),
                                "real_age": float(labels.iloc[j]["boneage"]),
                                "query_pred_age": float(found["query_age"][q])})
    return pd.DataFrame(records)


def take_rows(array, idx) -> np.ndarray:
    """array[idx] for a memmap (read in file order, returned in idx order)."""
    order = np.argsort(idx)
    out = np.empty((len(idx),) + array.shape[1:], array.dtype)
    out[order] = array[np.asarray(idx)[order]]
    return out


def _grid(fakes, neighbours, dist, fake_age, real_age, title, png) -> None:
    plt = pyplot()

    rows, k = len(fakes), len(neighbours[0])
    fig, axes = plt.subplots(rows, k + 1, figsize=(1.6 * (k + 1), 1.75 * rows + 0.5), squeeze=False)
    for r in range(rows):
        cells = [(fakes[r], f"generated\nCNN {fake_age[r] / 12:.1f} y")]
        cells += [(neighbours[r][c], f"d={dist[r, c]:.3g}\n{real_age[r][c] / 12:.1f} y")
                  for c in range(k)]
        for c, (img, label) in enumerate(cells):
            ax = axes[r][c]
            image_cell(ax, img, label)
            if c == 0:
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:red")
                    spine.set_linewidth(2)
    fig.suptitle(f"Nearest real training images of generated hands by {title} "
                 f"(red: generated; ages are bone age)", fontsize=10)
    fig.tight_layout()
    save_figure(png, fig)
    plt.close(fig)
