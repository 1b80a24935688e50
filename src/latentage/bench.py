"""`latentage bench <what>`: speed and memory figures, printed (benchmarks, not tests)."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path


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
    from latentage.data.phantom_dataset import write_phantom_dataset
    from latentage.data.prepare import prepare

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_phantom_dataset(tmp / "img", tmp / "labels.csv", tmp / "truth.csv", n=n,
                              size=max_res * 2, seed=0, workers=workers, log=lambda *_: None)
        t0 = time.perf_counter()
        summary = prepare(tmp / "img", tmp / "labels.csv", tmp / "out", max_res=max_res,
                          test_size=0.1, seed=0, workers=workers, log=lambda *_: None)
        dt = time.perf_counter() - t0
    print(f"bench prepare: {n} images of {max_res * 2}px → pyramid 4…{max_res} px with "
          f"{workers} worker(s) in {dt:.2f} s = {n / dt:.1f} images/s "
          f"(conversion alone {summary['images_per_second']} images/s); "
          f"peak RSS {_peak_rss_mb():.0f} MB")


def bench_train(resolutions, batch: int, latent: int, fmap_base: int, fmap_max: int,
                steps: int, precision: str, fade: bool) -> None:
    """Time full training steps (D with gradient penalty, then G, then EMA) on random reals."""
    for res in resolutions:
        _bench_train_res(res, batch, latent, fmap_base, fmap_max, steps, precision, fade)


def _bench_train_res(res, batch, latent, fmap_base, fmap_max, steps, precision, fade):
    import torch

    from latentage.gan.loss import discriminator_loss, generator_loss
    from latentage.gan.networks import Discriminator, Generator
    from latentage.gan.train import resolve_precision

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    prec = resolve_precision(precision, device)
    amp = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(prec)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({torch.get_num_threads()} threads)"
    G = Generator(res, latent, fmap_base, fmap_max).to(device)
    D = Discriminator(res, fmap_base, fmap_max).to(device)
    if device.type == "cuda":
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats(device)
    opt_g = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.0, 0.99), eps=1e-8)
    opt_d = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.0, 0.99), eps=1e-8)
    scaler = torch.amp.GradScaler(device.type, enabled=prec == "fp16")
    ema = [p.detach().clone() for p in G.parameters()]
    alpha = 0.5 if fade else 1.0
    reals = torch.rand(batch, 1, res, res, device=device) * 2 - 1

    def step():
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            with torch.no_grad():
                fakes = G(torch.randn(batch, latent, device=device), res, alpha)
            d_loss, _ = discriminator_loss(
                D, reals, fakes, alpha, torch.rand(batch, device=device),
                grad_scale=scaler.get_scale() if scaler.is_enabled() else 1.0)
        opt_d.zero_grad(set_to_none=True)
        scaler.scale(d_loss).backward()
        scaler.step(opt_d)
        D.requires_grad_(False)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            fakes = G(torch.randn(batch, latent, device=device), res, alpha)
            g_loss = generator_loss(D, fakes, alpha)
        opt_g.zero_grad(set_to_none=True)
        scaler.scale(g_loss).backward()
        scaler.step(opt_g)
        scaler.update()
        D.requires_grad_(True)
        with torch.no_grad():
            torch._foreach_lerp_(ema, list(G.parameters()), 0.001)

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        mem = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        mem = _peak_rss_mb()
    dt = time.perf_counter() - t0
    rate = steps * batch / dt
    print(f"bench train: res {res:4d} batch {batch:3d} {prec:4s} on {name}: "
          f"{rate:9.1f} img/s  {1000 / rate:9.2f} s/kimg  peak memory {mem:.0f} MB "
          f"(latent {latent}, fmap_base {fmap_base}, fmap_max {fmap_max}"
          f"{', fade' if fade else ''})")


def bench_label(res, batch, n, latent, fmap_base, fmap_max, backbone, input_size) -> None:
    """Generate + label throughput with random weights at the given sizes (speed only)."""
    import torch

    from latentage.cnn.model import BoneAgeNet
    from latentage.cnn.predict import BoneAgePredictor, default_device
    from latentage.gan.networks import Generator
    from latentage.latent.label import label_range

    device = default_device()
    G = Generator(res, latent, fmap_base, fmap_max).to(device).eval()
    cnn = BoneAgeNet.build(backbone, input_size, False, None, False, 120.0, 40.0)
    predictor = BoneAgePredictor(cnn.to(device).eval(), device, batch)
    label_range(G, predictor, 0, 0, batch, batch, res)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    label_range(G, predictor, 0, 0, n, batch, res)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    # where the time goes: G alone, CNN alone, latents alone
    z = torch.randn(batch, latent, device=device)
    with torch.no_grad():
        t = time.perf_counter()
        for _ in range(max(n // batch, 1)):
            images = G(z, res)
        if device.type == "cuda":
            torch.cuda.synchronize()
        g_s = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(max(n // batch, 1)):
            predictor(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
        c_s = time.perf_counter() - t
    from latentage.latent.label import latents

    t = time.perf_counter()
    latents(0, 0, n, latent)
    z_s = time.perf_counter() - t
    mem = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" \
        else _peak_rss_mb()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({torch.get_num_threads()} threads)"
    print(f"bench label: {n} latents, G {res}² (latent {latent}, fmap {fmap_base}/{fmap_max}) "
          f"+ {backbone} at {input_size}px, batch {batch} on {name}: {n / dt:.1f} images/s, "
          f"peak memory {mem:.0f} MB; of the time: G {100 * g_s / dt:.0f} %, CNN incl. resize "
          f"{100 * c_s / dt:.0f} %, drawing latents {100 * z_s / dt:.0f} %")


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


def run(args) -> None:
    if args.what == "phantom":
        bench_phantom(args.size, args.n)
    elif args.what == "prepare":
        bench_prepare(args.n, args.max_res, args.workers)
    elif args.what == "label":
        bench_label(args.res, args.batch, args.n, args.latent, args.fmap_base, args.fmap_max,
                    args.backbone, args.input_size)
    elif args.what == "lasso":
        bench_lasso(args.n, args.dim, args.folds, args.jobs)
    elif args.what == "frechet":
        bench_frechet(args.dim, args.samples)
    elif args.what == "neighbours":
        bench_neighbours(args.n_real, args.res, args.queries, args.k)
    elif args.what == "train":
        bench_train(args.res, args.batch, args.latent, args.fmap_base, args.fmap_max,
                    args.steps, args.precision, args.fade)
