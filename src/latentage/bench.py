"""`latentage bench <what>`: speed and memory figures, printed (benchmarks, not tests)."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from latentage.errors import LatentageError


def _peak_rss_mb() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(usage, children) / 1024.0


def bench_phantom(size: int, n: int) -> None:
    from latentage.data.phantom import make_phantom

    make_phantom(0, 0, size)  # warm-up
    t0 = time.perf_counter()
    for i in range(n):
        make_phantom(0, i, size)
    dt = time.perf_counter() - t0
    print(f"bench phantom: {n} images at {size}px on one core in {dt:.2f} s = "
          f"{n / dt:.1f} images/s (goal ≥ 50 at 256 px); peak RSS {_peak_rss_mb():.0f} MB")


def bench_prepare(n: int, max_res: int, workers: int) -> None:
    from latentage.config import build, resolutions
    from latentage.data.phantom import phantom
    from latentage.data.prepare import prepare

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        phantom(images=tmp / "img", labels=tmp / "labels.csv", truth=tmp / "truth.csv",
                settings=build("data.phantom", {"n": n, "size": max_res * 2}), seed=0,
                workers=workers, log=lambda *_: None)
        settings = build("data", {"max_res": max_res, "test_size": 0.1, "min_image_size": 0})
        out = {split: [tmp / split / f"res{r}.npy" for r in resolutions(max_res)]
               for split in ("train", "test")}
        t0 = time.perf_counter()
        summary = prepare(images=tmp / "img", labels=tmp / "labels.csv",
                          train_images=out["train"], test_images=out["test"],
                          train_labels=tmp / "train.parquet", test_labels=tmp / "test.parquet",
                          summary=tmp / "prepare.json", settings=settings, seed=0,
                          workers=workers, log=lambda *_: None)
        dt = time.perf_counter() - t0
    print(f"bench prepare: {n} images of {max_res * 2}px → pyramid 4…{max_res} px with "
          f"{workers} worker(s) in {dt:.2f} s = {n / dt:.1f} images/s "
          f"(conversion alone {summary['images_per_second']} images/s); "
          f"peak RSS {_peak_rss_mb():.0f} MB")


def bench_train(resolutions, batch, latent: int, fmap_base: int, fmap_max: int,
                steps: int, precision: str, fade: bool, log=print) -> list[dict]:
    """Time training steps — `latentage.gan.train.train_step`, the step train_phase runs — on
    random reals at each resolution: img/s, s/kimg, peak memory. `batch` is one minibatch for
    every resolution or one per resolution."""
    batches = [batch] if isinstance(batch, int) else list(batch)
    if len(batches) == 1:
        batches *= len(resolutions)
    if len(batches) != len(resolutions):
        raise LatentageError(f"bench train: {len(batches)} minibatch sizes for "
                             f"{len(resolutions)} resolutions (give one, or one per resolution)")
    return [_bench_train_res(res, b, latent, fmap_base, fmap_max, steps, precision, fade, log)
            for res, b in zip(resolutions, batches, strict=True)]


def _save_json(path: Path | None, result) -> None:
    if path is not None:
        from latentage.io import write_json

        write_json(path, result)


def _bench_train_res(res, batch, latent, fmap_base, fmap_max, steps, precision, fade, log):
    import torch

    from latentage.config import build
    from latentage.device import device_name, peak_memory_mb, resolve_precision, select_device
    from latentage.device import synchronize as sync
    from latentage.gan.schedule import Step
    from latentage.gan.train import TrainState, train_step

    device = select_device()
    gan = build("gan", {"max_res": max(res, 8), "latent_size": latent, "fmap_base": fmap_base,
                        "fmap_max": fmap_max, "precision": precision})
    prec = resolve_precision(precision, device)
    state = TrainState(gan, 0, device, prec)
    alpha = 0.5 if fade else 1.0
    step = Step(0.0, res, 1.0 - alpha, alpha, batch, 1e-3, 1e-3, 1.0)
    reals = torch.randint(0, 256, (batch, 1, res, res), dtype=torch.uint8, device=device)
    for i in range(2):  # warm-up (cuDNN autotuning, allocator)
        train_step(state, reals, step, seed=0, nimg=i * batch)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for i in range(steps):
        stats = train_step(state, reals, step, seed=0, nimg=(i + 2) * batch)
    sync(device)
    dt = time.perf_counter() - t0
    rate = steps * batch / dt
    result = {"res": res, "batch": batch, "precision": prec, "device": device_name(device),
              "img_per_s": rate, "s_per_kimg": 1000 / rate,
              "peak_memory_mb": peak_memory_mb(device), "fade": fade,
              "skipped_steps": float(stats["d_skipped"] + stats["g_skipped"])}
    log(f"bench train: res {res:4d} batch {batch:3d} {prec:4s} on {result['device']}: "
        f"{rate:9.1f} img/s  {1000 / rate:9.2f} s/kimg  peak memory "
        f"{result['peak_memory_mb']:.0f} MB (latent {latent}, fmap_base {fmap_base}, fmap_max "
        f"{fmap_max}{', fade' if fade else ''})")
    return result


def bench_label(res, batch, n, latent, fmap_base, fmap_max, backbone, input_size,
                log=print) -> dict:
    """Generate + label throughput of `label_range` (what label_shard runs) with random weights
    at the given sizes (a speed figure: the ages are meaningless)."""
    import torch

    from latentage.cnn.model import BoneAgeNet
    from latentage.cnn.predict import BoneAgePredictor
    from latentage.device import device_name, peak_memory_mb, resolve_precision, select_device
    from latentage.device import synchronize as sync
    from latentage.gan.networks import Generator
    from latentage.latent.label_shard import generate_and_label, label_range, latents

    device = select_device()
    precision = resolve_precision("auto", device)
    G = Generator(res, latent, fmap_base, fmap_max).to(device).eval().requires_grad_(False)
    cnn = BoneAgeNet.build(backbone, input_size, False, None, False, 120.0, 40.0)
    predictor = BoneAgePredictor(cnn.to(device).eval(), device, batch)
    label_range(G, predictor, 0, 0, batch, batch, res, precision=precision)  # warm-up
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    label_range(G, predictor, 0, 0, n, batch, res, precision=precision)
    sync(device)
    dt = time.perf_counter() - t0
    mem = peak_memory_mb(device)
    # where the time goes: drawing latents alone, and G + CNN without the host round trips
    t = time.perf_counter()
    latents(0, 0, n, latent)
    z_s = time.perf_counter() - t
    z = torch.randn(batch, latent, device=device)
    t = time.perf_counter()
    for _ in range(max(n // batch, 1)):
        generate_and_label(G, predictor, z, res, precision)
    sync(device)
    gc_s = time.perf_counter() - t
    result = {"res": res, "batch": batch, "n": n, "backbone": backbone,
              "input_size": input_size, "precision": precision, "device": device_name(device),
              "images_per_s": n / dt, "peak_memory_mb": mem,
              "share_generate_and_label": gc_s / dt, "share_latents": z_s / dt}
    log(f"bench label: {n} latents, G {res}² (latent {latent}, fmap {fmap_base}/{fmap_max}) "
        f"+ {backbone} at {input_size}px (random weights), batch {batch}, {precision} on "
        f"{result['device']}: {n / dt:.1f} images/s, peak memory {mem:.0f} MB; of the time: "
        f"G + CNN {100 * gc_s / dt:.0f} %, drawing latents {100 * z_s / dt:.0f} %")
    return result


def bench_frechet(dim: int, samples: int) -> None:
    """Our Fréchet distance against pytorch-fid's (scipy sqrtm) on the same statistics."""
    import numpy as np
    from pytorch_fid.fid_score import calculate_frechet_distance

    from latentage.metrics.frechet import frechet_distance, gaussian_stats

    rng = np.random.default_rng(0)
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    a = rng.standard_normal((samples, dim)) @ mix
    b = rng.standard_normal((samples, dim)) @ (mix + 0.05 * rng.standard_normal((dim, dim))
                                               / np.sqrt(dim)) + 0.1
    s1, s2 = gaussian_stats(a), gaussian_stats(b)
    t0 = time.perf_counter()
    ours = frechet_distance(*s1, *s2)
    t1 = time.perf_counter()
    ref = calculate_frechet_distance(s1[0], s1[1], s2[0], s2[1])
    t2 = time.perf_counter()
    print(f"bench frechet: {dim}-d covariances from {samples} samples: latentage "
          f"{t1 - t0:.2f} s (goal ≤ 2 s), pytorch-fid {t2 - t1:.2f} s ({(t2 - t1) / (t1 - t0):.0f}× "
          f"slower); FD {ours:.6f} vs {ref:.6f}, relative difference "
          f"{abs(ours - ref) / abs(ref):.1e}")


def bench_neighbours(n_real: int, res: int, queries: int, k: int) -> None:
    """Exact pixel nearest-neighbour search over a memmap of n_real images."""
    import numpy as np

    from latentage.metrics.neighbours import knn

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reals.npy"
        reals = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8,
                                          shape=(n_real, res, res))
        rng = np.random.default_rng(0)
        for lo in range(0, n_real, 1000):
            reals[lo:lo + 1000] = rng.integers(0, 256, (min(1000, n_real - lo), res, res),
                                               dtype=np.uint8)
        reals.flush()
        del reals
        base = np.load(path, mmap_mode="r")
        q = rng.uniform(0, 255, (queries, res, res))
        t0 = time.perf_counter()
        knn(q, base, k)
        dt = time.perf_counter() - t0
    print(f"bench neighbours: {queries} queries × {n_real} real images at {res}² ({res * res} "
          f"values), k={k}, exact: {dt:.2f} s ({n_real / dt:.0f} real images/s); peak RSS "
          f"{_peak_rss_mb():.0f} MB")


def bench_lasso(n: int, dim: int, folds: int, jobs: int) -> None:
    """LassoCV (K-fold, Gram precomputed, warm-started path) on n × dim synthetic latents."""
    import numpy as np

    from latentage.analysis.lasso import fit_lasso

    rng = np.random.default_rng(0)
    z = rng.standard_normal((n, dim), dtype=np.float32)
    w = np.zeros(dim)
    w[: dim // 4] = rng.standard_normal(dim // 4)
    age = 130 + 30 * z @ (w / np.linalg.norm(w)) + rng.normal(0, 10, n)
    t0 = time.perf_counter()
    fit = fit_lasso(z, age, folds=folds, holdout=0.2, seed=0, jobs=jobs)
    dt = time.perf_counter() - t0
    s = fit["summary"]
    print(f"bench lasso: {n} × {dim}, {folds}-fold LassoCV (100 penalties) with {jobs} job(s): "
          f"{s['seconds']:.1f} s for the CV fit, {dt:.1f} s with OLS/ridge and errors (goal ≤ 60 s);"
          f" held-out |error| {s['lasso']['holdout']['abs_error_mean']:.2f} months; peak RSS "
          f"{_peak_rss_mb():.0f} MB")


def _network_args(b) -> None:
    """G's (and D's) size; the defaults are the study's architecture."""
    b.add_argument("--latent", type=int, default=512)
    b.add_argument("--fmap-base", type=int, default=8192)
    b.add_argument("--fmap-max", type=int, default=512)


def add_parsers(sub) -> None:
    p = sub.add_parser("bench", help="print speed and memory figures of a step")
    bsub = p.add_subparsers(dest="what", required=True, metavar="<what>")
    b = bsub.add_parser("phantom", help="phantom images/s on one core")
    b.add_argument("--size", type=int, default=256)
    b.add_argument("--n", type=int, default=200)
    b.set_defaults(func=lambda a: bench_phantom(a.size, a.n))
    b = bsub.add_parser("prepare", help="prepare images/s (phantom input)")
    b.add_argument("--n", type=int, default=1000)
    b.add_argument("--max-res", type=int, default=256)
    b.add_argument("--workers", type=int, default=2)
    b.set_defaults(func=lambda a: bench_prepare(a.n, a.max_res, a.workers))
    b = bsub.add_parser("train", help="PGGAN training steps: img/s, s/kimg, peak memory")
    b.add_argument("--res", type=int, nargs="+", default=[64], help="resolution(s)")
    b.add_argument("--batch", type=int, nargs="+", default=[16],
                   help="minibatch per process: one for all resolutions, or one per --res")
    _network_args(b)
    b.add_argument("--steps", type=int, default=5, help="timed steps after 2 warm-up")
    b.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    b.add_argument("--fade", action="store_true", help="time a fade step (alpha 0.5)")
    b.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    b.set_defaults(func=lambda a: _save_json(a.json, bench_train(
        a.res, a.batch, a.latent, a.fmap_base, a.fmap_max, a.steps, a.precision, a.fade)))
    b = bsub.add_parser("label", help="generate + label images/s and peak memory")
    b.add_argument("--res", type=int, default=64, help="generator resolution")
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--n", type=int, default=512, help="latents to label")
    _network_args(b)
    b.add_argument("--backbone", default="legacy_xception")
    b.add_argument("--input-size", type=int, default=299)
    b.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    b.set_defaults(func=lambda a: _save_json(a.json, bench_label(
        a.res, a.batch, a.n, a.latent, a.fmap_base, a.fmap_max, a.backbone, a.input_size)))
    b = bsub.add_parser("lasso", help="LassoCV on n × dim latents")
    b.add_argument("--n", type=int, default=200000)
    b.add_argument("--dim", type=int, default=512)
    b.add_argument("--folds", type=int, default=10)
    b.add_argument("--jobs", type=int, default=2)
    b.set_defaults(func=lambda a: bench_lasso(a.n, a.dim, a.folds, a.jobs))
    b = bsub.add_parser("frechet", help="Fréchet distance: latentage vs pytorch-fid")
    b.add_argument("--dim", type=int, default=2048)
    b.add_argument("--samples", type=int, default=10000)
    b.set_defaults(func=lambda a: bench_frechet(a.dim, a.samples))
    b = bsub.add_parser("neighbours", help="exact nearest-neighbour search over real images")
    b.add_argument("--n-real", type=int, default=12611)
    b.add_argument("--res", type=int, default=256)
    b.add_argument("--queries", type=int, default=8)
    b.add_argument("--k", type=int, default=5)
    b.set_defaults(func=lambda a: bench_neighbours(a.n_real, a.res, a.queries, a.k))
    b = bsub.add_parser("small-data", help="the phantom GAN on few vs many images, with and "
                                           "without ADA: SWD and domain FD at the end")
    b.add_argument("--out", type=Path, required=True, help="working folder (kept; resumes)")
    b.add_argument("--sizes", type=int, nargs="+", default=[200, 2000],
                   help="training-set sizes (the first n prepared training images)")
    b.add_argument("--test", type=int, default=1000, help="held-out phantoms")
    b.add_argument("--max-res", type=int, default=32)
    b.add_argument("--kimg", type=float, default=4.0, help="kimg per fade and per stable phase")
    b.add_argument("--final-kimg", type=float, default=16.0,
                   help="kimg of the last phase after its fade")
    b.add_argument("--ada-speed-kimg", type=float, default=5.0,
                   help="gan.augment.speed_kimg of the ADA runs (scaled to the short run)")
    b.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    b.add_argument("--seed", type=int, default=7)
    b.set_defaults(func=_small_data)


def _small_data(a) -> None:
    from latentage.bench_small_data import bench_small_data

    bench_small_data(a.out, tuple(a.sizes), a.test, a.max_res, a.kimg, a.final_kimg,
                     a.ada_speed_kimg, a.jobs, a.seed)
