"""`latentage gpu-check`: every CUDA path of the workflow in one command, with the figures the
README quotes. About 4 minutes on an H200; prints a table and writes gpu-check.json.

  (a) train_phase grown 4² → 64² with the study's architecture (latent 512, fmap 8192/512), in
      fp32, fp16 (loss scaling) and bf16 where the GPU has it: img/s at 64², peak memory,
      restores (must be 0), skipped fp16 steps;
  (b) a SIGTERM in the middle of a phase, then a rerun that resumes and finishes;
  (c) `bench train` at 256² and 1024² at the study's per-GPU minibatch (16 and 8), fp32 vs AMP;
  (d) one label shard's work at 1024²: the study's G, then the CNN (legacy_xception at 299 px,
      random weights: a throughput figure, the ages mean nothing);
  (e) the domain Fréchet distance of 10,000 and the SWD of 1,000 generated 1024² images (random
      networks; Inception weights are not needed), timed from the GPU.

`--quick` runs the same code at toy sizes (the CPU test in tests/test_gpu_check.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from latentage.errors import LatentageError

STUDY = {"latent_size": 512, "fmap_base": 8192, "fmap_max": 512}
QUICK = {"latent_size": 16, "fmap_base": 64, "fmap_max": 16}


def add_parsers(sub) -> None:
    p = sub.add_parser("gpu-check", help="exercise every CUDA path; print and save the figures")
    p.add_argument("--out", type=Path, default=Path("gpu-check.json"), help="output JSON")
    p.add_argument("--workdir", type=Path, default=Path("gpu-check"),
                   help="scratch folder for the phantom data and the phases")
    p.add_argument("--quick", action="store_true", help="toy sizes (runs on a CPU in seconds)")
    p.add_argument("--allow-cpu", action="store_true", help="run without a GPU (tests)")
    p.set_defaults(func=lambda a: gpu_check(a.out, a.workdir, a.quick, a.allow_cpu))


def _data(workdir: Path, res: int, n: int) -> Path:
    from latentage.config import build, resolutions
    from latentage.data.phantom import phantom
    from latentage.data.prepare import prepare

    raw = workdir / "phantom"
    if not (raw / "labels.csv").exists():
        phantom(images=raw / "images", labels=raw / "labels.csv", truth=raw / "truth.csv",
                settings=build("data.phantom", {"n": n, "size": max(res, 64)}), seed=1,
                log=lambda *_: None)
    out = workdir / "data"
    files = {s: [out / s / f"res{r}.npy" for r in resolutions(res)] for s in ("train", "test")}
    if not files["train"][-1].exists():
        prepare(images=raw / "images", labels=raw / "labels.csv", train_images=files["train"],
                test_images=files["test"], train_labels=out / "train.parquet",
                test_labels=out / "test.parquet", summary=out / "prepare.json",
                settings=build("data", {"max_res": res, "test_size": 8, "min_image_size": 0}),
                seed=1, log=lambda *_: None)
    return out / "train"


def _gan(res: int, precision: str, quick: bool, end_kimg: float):
    """Study architecture, a short schedule: 0.25 kimg (quick: 0.1) for each lower phase's fade
    and stabilisation, then the last phase fades as long and stabilises until `end_kimg`."""
    from latentage.config import build

    lower = 0.1 if quick else 0.25
    phases = res.bit_length() - 3
    last = end_kimg - lower * (2 * phases - 1)
    sched = {"lod_training_kimg": lower, "lod_transition_kimg": lower,
             "total_kimg": end_kimg, "tick_kimg_base": last / 3, "tick_kimg": {},
             "minibatch": {4: 32, 8: 32, 16: 32, 32: 16, 64: 16} if quick else
             {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}}
    return build("gan", {"max_res": res, **(QUICK if quick else STUDY), "precision": precision,
                         "schedule": sched, "snapshot_kimg": end_kimg, "checkpoint_kimg": end_kimg,
                         "grid_size": 4})


def _phases(gan, data: Path, root: Path, upto: int, log) -> dict:
    from latentage.gan.train_phase import PhaseOutputs, train_phase

    prev, summary = None, {}
    for res in [2**k for k in range(2, upto.bit_length())]:
        out = root / f"res{res}"
        outputs = PhaseOutputs(out / "checkpoint.pt", out / "stats.jsonl", out / "fakes.png",
                               out / "ticks", out / "snapshots")
        summary = train_phase(res, data=data / f"res{res}.npy", prev=prev, outputs=outputs,
                              progress_dir=out / ".progress", settings=gan, seed=3,
                              log=lambda *_: None)
        prev = outputs.checkpoint
    stats = [json.loads(line) for line in outputs.stats.read_text().splitlines()]
    last = stats[-1]
    return {"img_per_s": last["img_per_s"], "s_per_kimg": last["s_per_kimg"],
            "peak_memory_mb": max(s["mem_mb"] for s in stats), "restores": summary["restores"],
            "skipped_steps": sum(s.get("d_skipped", 0) + s.get("g_skipped", 0) for s in stats),
            "seconds": summary["seconds"]}


def _precisions(device) -> list[str]:
    import torch

    if device.type != "cuda":
        return ["fp32", "bf16"]
    return ["fp32", "fp16"] + (["bf16"] if torch.cuda.get_device_capability(device)[0] >= 8
                               else [])


def check_training(workdir: Path, device, quick: bool, log) -> dict:
    res = 16 if quick else 64
    data = _data(workdir, res, 64 if quick else 512)
    out = {}
    for precision in _precisions(device):
        gan = _gan(res, precision, quick, 1.0 if quick else 4.0)
        out[precision] = _phases(gan, data, workdir / f"train_{precision}", res, log)
        if out[precision]["restores"]:
            raise LatentageError(f"{precision}: the divergence guard restored "
                                 f"{out[precision]['restores']} time(s)")
        log(f"gpu-check (a): {precision} phase {res}: {out[precision]['img_per_s']:.0f} img/s, "
            f"peak {out[precision]['peak_memory_mb']:.0f} MB, "
            f"{out[precision]['skipped_steps']:.0f} skipped steps")
    return out


def check_resume(workdir: Path, quick: bool, log) -> dict:
    """Phase 64 (16 quick) as a subprocess: SIGTERM after its first tick, then a rerun."""
    from latentage.config import as_dict

    res = 16 if quick else 64
    data = _data(workdir, res, 64 if quick else 512)
    gan = _gan(res, "auto", quick, 3.0 if quick else 12.0)
    prev_root = workdir / "resume"
    _phases(gan, data, prev_root, res // 2, log)
    out = prev_root / f"res{res}"
    cmd = [sys.executable, "-m", "latentage", "train-phase", "--res", str(res),
           "--data", str(data / f"res{res}.npy"),
           "--prev", str(prev_root / f"res{res // 2}/checkpoint.pt"),
           "--checkpoint", str(out / "checkpoint.pt"), "--stats", str(out / "stats.jsonl"),
           "--fakes", str(out / "fakes.png"), "--ticks", str(out / "ticks"),
           "--snapshots", str(out / "snapshots"), "--progress", str(out / ".progress"),
           "--settings", json.dumps(as_dict(gan)), "--seed", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not (out / ".progress/stats.jsonl").exists():
        if proc.poll() is not None or time.time() > deadline:
            raise LatentageError(f"the phase did not reach its first tick: {proc.stdout.read()}")
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    first, _ = proc.communicate(timeout=300)
    if proc.returncode != 2 or "stopped by SIGTERM" not in first:
        raise LatentageError(f"SIGTERM did not save and stop the phase:\n{first[-2000:]}")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode or "resuming from" not in done.stdout:
        raise LatentageError(f"the rerun did not resume and finish:\n{done.stdout[-2000:]}"
                             f"{done.stderr[-2000:]}")
    log("gpu-check (b): SIGTERM saved the phase; the rerun resumed and finished")
    return {"stopped": True, "resumed": True}


def check_bench(quick: bool, log) -> dict:
    from latentage.bench import bench_train

    sizes = STUDY if not quick else QUICK
    out = {}
    for res, batch in ((16, 4), (32, 4)) if quick else ((256, 16), (1024, 8)):
        for precision in ("fp32", "auto"):
            r = bench_train([res], batch, sizes["latent_size"], sizes["fmap_base"],
                            sizes["fmap_max"], 2 if quick else 5, precision, False, log)[0]
            out[f"{res}_{r['precision']}"] = r
    return out


def check_label(quick: bool, log) -> dict:
    from latentage.bench import bench_label

    sizes = STUDY if not quick else QUICK
    if quick:
        return bench_label(32, 8, 16, sizes["latent_size"], sizes["fmap_base"],
                           sizes["fmap_max"], "resnet10t", 32, log)
    return bench_label(1024, 64, 1024, sizes["latent_size"], sizes["fmap_base"],
                       sizes["fmap_max"], "legacy_xception", 299, log)


def check_metrics(device, quick: bool, log) -> dict:
    import torch

    from latentage.cnn.model import BoneAgeNet
    from latentage.cnn.predict import BoneAgePredictor
    from latentage.config import build
    from latentage.device import synchronize
    from latentage.gan.networks import Generator
    from latentage.metrics.domain_fd import DomainFD
    from latentage.metrics.measure import fake_batches, feed
    from latentage.metrics.swd import SWD

    res, n_fd, n_swd = (32, 40, 16) if quick else (1024, 10000, 1000)
    sizes = QUICK if quick else STUDY
    G = Generator(res, **sizes).to(device).eval().requires_grad_(False)
    cnn = BoneAgeNet.build("resnet10t" if quick else "legacy_xception", 32 if quick else 299,
                           False, None, False, 120.0, 40.0)
    predictor = BoneAgePredictor(cnn.to(device).eval(), device, 64)
    settings = build("metrics", {"n": {"domain_fd": n_fd, "swd": n_swd}, "batch_size": 32})
    out = {}
    for metric, n in ((DomainFD(settings, 1), n_fd), (SWD(settings, 1), n_swd)):
        real, fake = metric.new_set(role=0), metric.new_set(role=1)
        t0 = time.perf_counter()
        for s, seed in ((real, 1), (fake, 2)):
            feed([(metric, s)], fake_batches(G, {"resolution": res}, n, res, seed, 32, device),
                 None, predictor, device)
        synchronize(device)
        t1 = time.perf_counter()
        value = metric.compare(metric.reference(real), fake)
        t2 = time.perf_counter()
        out[metric.name] = {"images": n, "generate_and_features_s": t1 - t0,
                            "distance_s": t2 - t1, "values": value}
        log(f"gpu-check (e): {metric.name} of {n} images at {res}²: {t1 - t0:.1f} s generating "
            f"and measuring, {t2 - t1:.2f} s for the distance")
    if device.type == "cuda":
        out["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def gpu_check(out: Path, workdir: Path, quick: bool = False, allow_cpu: bool = False,
              log=print) -> dict:
    from latentage.device import device_name, select_device

    device = select_device()
    if device.type != "cuda" and not allow_cpu:
        raise LatentageError("gpu-check needs a GPU (CUDA sees none); --allow-cpu runs it on "
                             "the CPU, --quick at toy sizes")
    workdir.mkdir(parents=True, exist_ok=True)
    report = {"device": device_name(device), "quick": quick, "sections": {}}
    sections = (("a_training", lambda: check_training(workdir, device, quick, log)),
                ("b_resume", lambda: check_resume(workdir, quick, log)),
                ("c_bench_train", lambda: check_bench(quick, log)),
                ("d_label", lambda: check_label(quick, log)),
                ("e_metrics", lambda: check_metrics(device, quick, log)))
    failed = []
    for name, run in sections:
        t0 = time.perf_counter()
        try:
            result = {"ok": True, **run()}
        except Exception as exc:  # a check that fails is reported and the rest still run
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
            log(f"gpu-check: {name} FAILED: {result['error']}")
        result["seconds"] = round(time.perf_counter() - t0, 1)
        report["sections"][name] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    log(table(report))
    if failed:
        raise LatentageError(f"gpu-check: {', '.join(failed)} failed; see {out}")
    return report


def table(report: dict) -> str:
    """gpu-check.json's figures as the text table gpu-check prints (gpu-validate's report)."""
    s = report["sections"]
    lines = [f"gpu-check on {report['device']}{' (quick sizes)' if report['quick'] else ''}",
             f"{'check':<34} {'figure':>24}"]
    for prec, r in s.get("a_training", {}).items():
        if isinstance(r, dict):
            lines.append(f"{'(a) train_phase ' + prec:<34} {r['img_per_s']:>10.1f} img/s "
                         f"{r['peak_memory_mb']:>8.0f} MB")
    for key, r in s.get("c_bench_train", {}).items():
        if isinstance(r, dict):
            lines.append(f"{'(c) bench train ' + key:<34} {r['img_per_s']:>10.1f} img/s "
                         f"{r['s_per_kimg']:>8.2f} s/kimg {r['peak_memory_mb']:>8.0f} MB")
    d = s.get("d_label", {})
    if "images_per_s" in d:
        lines.append(f"{'(d) label ' + str(d['res']) + '²':<34} {d['images_per_s']:>10.1f} "
                     f"images/s {d['peak_memory_mb']:>8.0f} MB")
    for name in ("domain_fd", "swd"):
        r = s.get("e_metrics", {}).get(name)
        if r:
            lines.append(f"{'(e) ' + name + ' of ' + str(r['images']):<34} "
                         f"{r['generate_and_features_s']:>10.1f} s + {r['distance_s']:.2f} s")
    lines += [f"{name}: {'ok' if r['ok'] else 'FAILED'} ({r['seconds']} s)"
              for name, r in s.items()]
    return "\n".join(lines)
