"""`latentage bench small-data`: does ADA help the PGGAN on a hospital-sized dataset?

The same phantom GAN is trained on the first n training images for each n in `sizes` (200 and
2,000 by default), with and without ADA (gan.augment), on the same schedule; at the end each
final G_ema is measured against the same held-out real images with the same bone-age CNN (SWD
per level and its average, domain FD). Everything runs through the steps the workflow ships:
phantom, prepare, train_cnn, real_metrics, train_phase, snapshot_metrics. The runs are
independent and go `jobs` at a time, one thread each. Printed: a table; written:
`small_data.json` and `small_data.png` (ADA's p over training, SWD and domain FD per run).

On 2 CPU cores the defaults (32², 44 kimg, latent 32, fmap_base 256) take about a quarter of
an hour; measured figures are in the README ("Beyond the study").
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _gan_settings(max_res: int, kimg: float, final_kimg: float, ada: bool, speed_kimg: float):
    from latentage.config import build, resolutions

    res = resolutions(max_res)
    total = kimg * (2 * len(res) - 2) + (final_kimg - kimg)
    return build("gan", {
        "max_res": max_res, "latent_size": 32, "fmap_base": 256, "fmap_max": 64,
        "ema_beta": 0.99, "snapshot_kimg": total, "checkpoint_kimg": total, "grid_size": 16,
        "schedule": {"lod_training_kimg": kimg, "lod_transition_kimg": kimg,
                     "total_kimg": total, "minibatch_base": 16,
                     "minibatch": {r: (32 if r <= 8 else 16) for r in res},
                     "tick_kimg_base": 2.0, "tick_kimg": {r: 2.0 for r in res}},
        "augment": {"enabled": ada, "speed_kimg": speed_kimg}})


def _subset(src: Path, dst: Path, n: int, max_res: int) -> None:
    """The first n prepared training images (every resolution) and their labels."""
    from latentage.config import resolutions

    dst.mkdir(parents=True, exist_ok=True)
    for r in resolutions(max_res):
        np.save(dst / f"res{r}.npy", np.load(src / f"res{r}.npy", mmap_mode="r")[:n])
    pd.read_parquet(src / "labels.parquet").iloc[:n].to_parquet(dst / "labels.parquet")


def _train_run(data: str, root: str, gan, seed: int) -> dict:
    """All phases of one run (in a worker process, one thread); returns its final stats."""
    import torch

    from latentage.config import resolutions
    from latentage.gan.train_phase import PhaseOutputs, Sampling, train_phase

    torch.set_num_threads(1)
    data, root = Path(data), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    prev, t0 = None, time.perf_counter()
    for res in resolutions(gan.max_res):
        out = root / f"res{res}"
        outputs = PhaseOutputs(out / "checkpoint.pt", out / "stats.jsonl", out / "fakes.png",
                               out / "ticks", out / "snapshots")
        if not outputs.checkpoint.is_file():
            with open(root / "train.log", "a") as log:
                train_phase(res, data=data / f"res{res}.npy", prev=prev, outputs=outputs,
                            progress_dir=out / ".progress", settings=gan, seed=seed,
                            sampling=Sampling(data / "labels.parquet"),
                            log=lambda m, log=log: (log.write(m + "\n"), log.flush()))
        prev = outputs.checkpoint
    last = [json.loads(line) for line in (root / f"res{gan.max_res}" / "stats.jsonl")
            .read_text().splitlines()][-1]
    return {"seconds": time.perf_counter() - t0, "checkpoint": str(prev), "last_tick": last}


def _prepare_data(out: Path, n_train: int, n_test: int, max_res: int, seed: int, log) -> Path:
    from latentage.config import build, resolutions
    from latentage.data.phantom import phantom
    from latentage.data.prepare import prepare

    raw, data = out / "phantom", out / "data"
    if not (data / "prepare.json").is_file():
        phantom(images=raw / "images", labels=raw / "labels.csv", truth=raw / "truth.csv",
                settings=build("data.phantom", {"n": n_train + n_test, "size": max(64, 2 * max_res),
                                                "ages": "uniform"}),
                seed=seed, workers=2, log=log)
        files = {s: [data / s / f"res{r}.npy" for r in resolutions(max_res)]
                 for s in ("train", "test")}
        prepare(images=raw / "images", labels=raw / "labels.csv", train_images=files["train"],
                test_images=files["test"], train_labels=data / "train" / "labels.parquet",
                test_labels=data / "test" / "labels.parquet", summary=data / "prepare.json",
                settings=build("data", {"max_res": max_res, "test_size": n_test,
                                        "min_image_size": 0}),
                seed=seed, workers=2, log=log)
    return data


def _cnn_and_reals(out: Path, data: Path, max_res: int, n_test: int, seed: int, log):
    from latentage.cnn.train_cnn import train_cnn
    from latentage.config import build
    from latentage.metrics.real_metrics import real_metrics

    cnn = out / "cnn" / "model.pt"
    if not cnn.is_file():
        train_cnn(images=data / "train" / f"res{max_res}.npy",
                  labels=data / "train" / "labels.parquet", model=cnn,
                  history=out / "cnn" / "history.jsonl",
                  settings=build("cnn", {"backbone": "resnet10t", "pretrained": False,
                                         "input_size": 64, "epochs": 8, "batch_size": 32,
                                         "lr": 0.003, "patience": 8, "precision": "bf16",
                                         "augment": {"rotate": 0, "scale": 0, "shift": 0,
                                                     "brightness": 0, "contrast": 0}}),
                  seed=seed, threads=2, log=log)
    metrics = build("metrics", {"enabled": ["swd", "domain_fd"], "batch_size": 100,
                                "n": {"swd": n_test // 2, "domain_fd": n_test // 2}})
    stats = out / "reals" / "real_stats.npz"
    if not stats.is_file():
        real_metrics(reals=data / "test" / f"res{max_res}.npy", cnn=cnn,
                     json_out=out / "reals" / "real.json", stats_out=stats, settings=metrics,
                     seed=seed, log=log)
    return cnn, stats, metrics


def bench_small_data(out, sizes=(200, 2000), n_test: int = 1000, max_res: int = 32,
                     kimg: float = 4.0, final_kimg: float = 16.0, speed_kimg: float = 5.0,
                     jobs: int = 2, seed: int = 7, log=print) -> pd.DataFrame:
    from latentage.metrics.snapshot_metrics import snapshot_metrics

    if max_res < 16:
        from latentage.errors import ConfigError

        raise ConfigError(f"bench small-data --max-res {max_res}: SWD needs 16² or more")
    out = Path(out)
    t0 = time.perf_counter()
    data = _prepare_data(out, max(sizes), n_test, max_res, seed, log)
    cnn, stats, metrics = _cnn_and_reals(out, data, max_res, n_test, seed, log)
    t_setup = time.perf_counter() - t0
    runs = {}
    for n in sizes:
        _subset(data / "train", out / f"train{n}", n, max_res)
        for ada in (False, True):
            runs[(n, ada)] = (str(out / f"train{n}"), str(out / "runs" / f"n{n}_ada{int(ada)}"),
                              _gan_settings(max_res, kimg, final_kimg, ada, speed_kimg), seed)
    log(f"bench small-data: {len(runs)} runs ({', '.join(f'n={n} ADA {a}' for n, a in runs)}), "
        f"{jobs} at a time; logs in {out / 'runs'}")
    with cf.ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = {key: pool.submit(_train_run, *args) for key, args in runs.items()}
        done = {key: f.result() for key, f in futures.items()}
    rows = []
    for (n, ada), res in done.items():
        m = snapshot_metrics(snapshot=res["checkpoint"], real_stats=stats, cnn=cnn,
                             json_out=Path(runs[(n, ada)][1]) / "metrics.json", settings=metrics,
                             seed=seed, log=lambda *_: None)
        tick = res["last_tick"]
        rows.append({"train_images": n, "ada": ada, "final_p": tick.get("ada_p", 0.0),
                     "final_rt": tick.get("ada_rt", 0.0) if ada else None, **{k: round(v, 3) for k, v in
                                                        m["values"].items()},
                     "train_seconds": round(res["seconds"], 1)})
    table = pd.DataFrame(rows)
    summary = {"sizes": list(sizes), "held_out_reals": n_test, "max_res": max_res,
               "kimg_per_phase": kimg, "final_phase_kimg": final_kimg,
               "ada_speed_kimg": speed_kimg, "setup_seconds": round(t_setup, 1),
               "total_seconds": round(time.perf_counter() - t0, 1),
               "runs": [{k: (None if isinstance(v, float) and v != v else v)
                         for k, v in row.items()} for row in table.to_dict(orient="records")]}
    (out / "small_data.json").write_text(json.dumps(summary, indent=2))
    _figure(table, {key: Path(args[1]) for key, args in runs.items()}, summary,
            out / "small_data.png")
    log(table.to_string(index=False))
    log(f"bench small-data: {summary['total_seconds']:.0f} s in all (setup {t_setup:.0f} s); "
        f"SWD ×10³ and domain FD against {n_test // 2} held-out phantoms")
    return table



def _figure(table: pd.DataFrame, roots: dict, summary: dict, png: Path) -> None:
    from latentage.io import save_figure
    from latentage.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    colours = {n: c for n, c in zip(sorted({n for n, _ in roots}), ("tab:red", "tab:blue",
                                                                     "tab:green", "tab:purple"),
                                    strict=False)}
    for (n, ada), root in sorted(roots.items()):
        if not ada:
            continue
        ticks = [json.loads(line) for stats in sorted(root.glob("res*/stats.jsonl"),
                                                      key=lambda p: int(p.parent.name[3:]))
                 for line in stats.read_text().splitlines()]
        kimg = [t["kimg"] for t in ticks]
        axes[0].plot(kimg, [t["ada_p"] for t in ticks], "-", color=colours[n],
                     label=f"{n} images: p")
        axes[0].plot(kimg, [t["ada_rt"] for t in ticks], ":", color=colours[n],
                     label=f"{n} images: r_t")
    axes[0].axhline(0.6, color="grey", lw=0.8, ls="--", label="r_t target")
    axes[0].set(xlabel="kimg", ylabel="p, r_t", title="ADA: augmentation probability p")
    axes[0].legend(fontsize=7)
    labels = [f"{r.train_images}\n{'ADA' if r.ada else 'no ADA'}" for r in table.itertuples()]
    bar_colours = [colours[r.train_images] for r in table.itertuples()]
    hatches = ["//" if r.ada else "" for r in table.itertuples()]
    for ax, key, title in ((axes[1], "swd_avg", "SWD ×10³ (average over levels)"),
                           (axes[2], "domain_fd", "domain FD (bone-age CNN features)")):
        bars = ax.bar(range(len(table)), table[key], color=bar_colours, alpha=0.7)
        for bar, hatch in zip(bars, hatches, strict=True):
            bar.set_hatch(hatch)
        ax.set_xticks(range(len(table)), labels, fontsize=8)
        ax.set(title=title, ylabel=key)
        for i, v in enumerate(table[key]):
            ax.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"Small data: the phantom PGGAN at {summary['max_res']}² on few vs many "
                 f"images, with and without ADA (lower SWD and FD are better; against "
                 f"{summary['held_out_reals'] // 2} held-out phantoms)", fontsize=9)
    fig.tight_layout()
    save_figure(png, fig)
    plt.close(fig)
