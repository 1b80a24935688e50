"""Nearest real neighbours of generated hands — the study's over-fitting check.

For K generated images, the k nearest real training images by (a) pixel L2 distance at a chosen
resolution and (b) L2 distance between bone-age-CNN features. Exact search: the real set is
streamed in chunks, distances by ‖q‖² − 2 q·r + ‖r‖² (matrix products, float64 accumulation),
a running top-k per query; memory is bounded by the chunk, whatever the number of reals.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from latentage.errors import InputError
from latentage.io import save_figure, write_parquet
from latentage.plots import image_cell, pyplot

NN_STREAM = 0x2EA4


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


def nearest_neighbours(generator_ckpt, cnn_path, reals_path, real_features_path, real_labels,
                       out_table, out_pixel_png, out_feature_png, queries: int, k: int,
                       res: int, seed: int, log=print) -> pd.DataFrame:
    from latentage.cnn.predict import BoneAgePredictor, default_device
    from latentage.gan.checkpoint import load_generator
    from latentage.gan.images import to_uint8

    t0 = time.perf_counter()
    device = default_device()
    G, meta = load_generator(generator_ckpt, device)
    reals = np.load(reals_path, mmap_mode="r")
    if reals.shape[1] != res:
        raise InputError(f"{reals_path}: images are {reals.shape[1]}², nearest_neighbours.res "
                         f"is {res}")
    feats = np.load(real_features_path, mmap_mode="r")
    labels = pd.read_parquet(real_labels)
    if not len(feats) == len(reals) == len(labels):
        raise InputError(f"{real_features_path} ({len(feats)}), {reals_path} ({len(reals)}) "
                         f"and {real_labels} ({len(labels)}) disagree on the number of images")
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, NN_STREAM])
                                            .generate_state(1)[0]))
    z = torch.randn(queries, G.latent_size, generator=gen).to(device)
    with torch.no_grad():
        fake = G(z, int(meta["resolution"]))
    predictor = BoneAgePredictor.from_checkpoint(cnn_path, device)
    out = predictor(fake, features=True)
    fake_u8 = to_uint8(fake)
    fake_px = downscale(fake_u8, res) if fake_u8.shape[1] > res else fake_u8.astype(np.float32)
    if fake_px.shape[1] != res:
        raise InputError(f"generator makes {fake_u8.shape[1]}² images, smaller than "
                         f"nearest_neighbours.res {res}")
    t1 = time.perf_counter()
    px_i, px_d = knn(fake_px, reals, k)
    t2 = time.perf_counter()
    ft_i, ft_d = knn(out["features"].cpu().numpy(), feats, k)
    t3 = time.perf_counter()
    records = []
    for q in range(queries):
        for by, idx, dist in (("pixel", px_i, px_d), ("cnn_features", ft_i, ft_d)):
            for rank in range(idx.shape[1]):
                j = int(idx[q, rank])
                records.append({"query": q, "by": by, "rank": rank + 1, "real_index": j,
                                "real_id": labels.iloc[j]["id"], "distance": float(dist[q, rank]),
                                "real_age": float(labels.iloc[j]["boneage"]),
                                "query_pred_age": float(out["age"][q])})
    table = pd.DataFrame(records)
    write_parquet(out_table, table)
    for png, idx, dist, title in ((out_pixel_png, px_i, px_d, f"pixel L2 at {res}²"),
                                  (out_feature_png, ft_i, ft_d, "bone-age CNN feature L2")):
        _grid(fake_px, [take_rows(reals, idx[q]) for q in range(queries)], dist,
              out["age"].cpu().numpy(), [labels.boneage.to_numpy()[idx[q]] for q in range(queries)],
              title, png)
    log(f"nearest-neighbours: {queries} generated × {len(reals)} real images, k={k}: pixel search "
        f"{t2 - t1:.2f} s, feature search {t3 - t2:.2f} s, total {time.perf_counter() - t0:.1f} s; "
        f"median nearest distance pixel {np.median(px_d[:, 0]):.1f}, features "
        f"{np.median(ft_d[:, 0]):.2f}")
    return table


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
