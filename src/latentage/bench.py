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


def run(args) -> None:
    if args.what == "phantom":
        bench_phantom(args.size, args.n)
    elif args.what == "prepare":
        bench_prepare(args.n, args.max_res, args.workers)
