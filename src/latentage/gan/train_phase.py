"""One growth phase of the PGGAN as one job: fade into `res` (except 4²), then stabilise.

The loop around `train.train_step`: the schedule, evaluated once per block of
`minibatch_repeats` steps (official); the divergence guard, checked once per block; G_ema
snapshots at fixed kimg (names known to the DAG); a tick (log line, stats line, fakes grid);
progress checkpoints every `checkpoint_kimg` and when SLURM's SIGTERM/SIGUSR1 arrive. While a
phase runs everything lives in its progress folder; the outputs the rule names appear only
when the phase is complete. On CPU a stopped and resumed phase gives bit-identical weights.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from latentage import seeds
from latentage.device import peak_memory_mb, resolve_precision
from latentage.errors import LatentageError
from latentage.gan import checkpoint as ckpt
from latentage.gan import distributed as dist_
from latentage.gan import resume
from latentage.gan.data import Prefetcher, RealSampler
from latentage.gan.images import save_grid
from latentage.gan.resume import settings_digest
from latentage.gan.schedule import Schedule, snapshot_name, split_minibatch
from latentage.gan.train import TrainState, network_kwargs, train_step
from latentage.io import write_json

MIN_LOSS_SCALE = 2.0**-8  # an fp16 loss scale driven this low means the losses themselves blew up
DIVERGED = "diverged.json"  # left in the progress folder by a phase that gave up


class DivergenceError(LatentageError):
    pass


class Stopped(LatentageError):
    """Training stopped by a signal after saving a progress checkpoint; rerun to resume."""


@dataclass(frozen=True)
class PhaseOutputs:
    """The files a growth phase writes, as its rule names them."""
    checkpoint: Path
    stats: Path
    fakes: Path
    ticks: Path       # folder: one G_ema grid per tick, named by kimg
    snapshots: Path   # folder: G_ema snapshots, named by kimg (known to the DAG)


ATTEMPTS_LOG = "attempts.log"


def _silent(message: str) -> None:
    pass


class _AttemptLog:
    """The phase's log, also kept in the progress folder: Snakemake deletes a rule's log
    before each attempt, so a resumed attempt first repeats what the earlier ones wrote (their
    SIGTERM stops, restores, speeds) and the rule's log ends up with the whole phase."""

    def __init__(self, path: Path, log, replay: bool):
        self.path, self._log = path, log
        if replay and path.is_file():
            log(f"--- earlier attempts of this phase (kept in {path}) ---")
            for line in path.read_text().splitlines():
                log(line)
            log("--- this attempt ---")
        elif not replay:
            path.unlink(missing_ok=True)

    def __call__(self, message: str) -> None:
        self._log(message)
        if self.path.parent.is_dir():  # gone once the phase is published
            with self.path.open("a") as f:
                f.write(message + "\n")


class _Signals:
    """Turn SIGTERM/SIGUSR1 (SLURM's warnings before a time limit) into a stop request."""

    def __init__(self):
        self.requested, self._old = None, {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            with contextlib.suppress(ValueError):  # not the main thread
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


@dataclass(frozen=True)
class Sampling:
    """What the real-image sampler reads besides the images: the labels parquet (same row
    order; the conditional GAN's labels and the balance weights' ages) and `data.balance`."""
    labels: Path | None = None
    balance: str = "none"
    max_weight: float = 5.0


def train_phase(res: int, *, data, prev, outputs: PhaseOutputs, progress_dir, settings, seed: int,
                sampling: Sampling = Sampling(), log=print,
                _stop_at_kimg: float | None = None) -> dict:
    """Train phase `res` of GanSettings `settings`; returns a summary. Raises Stopped after a
    signal (progress saved) and DivergenceError after too many restores."""
    refuse_after_divergence(Path(progress_dir), settings, res)
    run = PhaseRun(res, data, prev, outputs, Path(progress_dir), settings, seed, log, sampling)
    try:
        return run.run(_stop_at_kimg)
    except DivergenceError as exc:
        if run.ctx.is_main:  # a retry of the job must not train into the same wall again
            write_json(Path(progress_dir) / DIVERGED, {"settings_digest": settings_digest(settings),
                                                      "error": str(exc)})
        raise
    finally:
        run.data.close()


def refuse_after_divergence(progress_dir: Path, gan, res: int) -> None:
    """Stop at once where this phase already diverged with these settings (a job retry after
    a DivergenceError); other settings, or deleting the progress folder, start it over."""
    marker = progress_dir / DIVERGED
    if marker.is_file():
        saved = json.loads(marker.read_text())
        if saved.get("settings_digest") == settings_digest(gan):
            raise DivergenceError(f"phase {res} diverged before with these gan settings "
                                  f"({saved.get('error', '')}); change them (the progress is "
                                  f"then discarded) or delete {progress_dir} to try again")


class PhaseRun:
    def __init__(self, res, data, prev, outputs, progress_dir, gan, seed, log,
                 sampling: Sampling = Sampling()):
        if gan.max_res is None:
            raise LatentageError("config key gan.max_res must be resolved (the workflow sets it "
                                 "from data.max_res)")
        self.res, self.out, self.dir, self.gan, self.seed, self.log = \
            res, outputs, progress_dir, gan, seed, log
        self.file = progress_dir / "progress.pt"
        self.ctx = dist_.init()
        if not self.ctx.is_main:  # the first process logs for all (errors still reach stderr)
            self.log = log = _silent
        self.precision = resolve_precision(gan.precision, self.ctx.device)
        if self.ctx.device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        if gan.conditional and sampling.labels is None:
            raise LatentageError("gan.conditional: true needs the training labels (--labels)")
        sampler = RealSampler(data, seed, sampling.labels, sampling.balance, sampling.max_weight)
        if sampler.resolution != res:
            raise LatentageError(f"{data}: images are {sampler.resolution}² but phase {res} "
                                 f"needs {res}²")
        self.data = Prefetcher(sampler, self.ctx.rank, self.ctx.world, self.ctx.device)
        self.state = TrainState(gan, seed, self.ctx.device, self.precision)
        if gan.conditional:  # the latent's condition coordinates follow the training labels
            for G in (self.state.G, self.state.G_ema):
                G.set_label_distribution(sampler.labels[:, 0], sampler.labels[:, 1])
        self.progress = resume.Progress()
        self.schedule().validate()
        self.start_kimg, self.end_kimg = self.schedule().phase_bounds(res)
        self.end_nimg = int(round(self.end_kimg * 1000))
        self.resumed = resume.start(res, self.file, prev, self.state, self.progress, self.data,
                                    gan, (self.start_kimg, self.end_kimg), log)
        dist_.barrier(self.ctx)  # every rank has read the progress file before it may go
        if not self.resumed and self.ctx.is_main:
            shutil.rmtree(progress_dir, ignore_errors=True)
        if self.ctx.is_main:
            for sub in ("snapshots", "ticks"):
                (progress_dir / sub).mkdir(parents=True, exist_ok=True)
            self.log = log = _AttemptLog(progress_dir / ATTEMPTS_LOG, log, replay=self.resumed)
        dist_.barrier(self.ctx)
        self.last_good = self.file if self.resumed else (Path(prev) if res != 4 else None)
        self.initial = None if self.last_good else copy.deepcopy(self._state_dict(0.0))
        self.grid_z = torch.randn(gan.grid_size, self.state.G.latent_size,
                                  generator=seeds.torch_generator(seed, "gan.grid"))
        self.grid_z = self.grid_z.to(self.ctx.device)
        self._rewind_cadence()

    # ------------------------------------------------------------------ helpers
    def schedule(self) -> Schedule:
        return Schedule.from_settings(self.gan, fade_stretch=self.progress.fade_stretch)

    def _state_dict(self, alpha: float) -> dict:
        return resume.phase_state(self.state, self.progress, self.data.state_dict(), self.gan,
                                  self.seed, self.res, alpha)

    def _rewind_cadence(self) -> None:
        """Snapshots still to take, the next progress checkpoint and tick, from the images
        seen (at the start and after a restore)."""
        nimg, every = self.progress.nimg, self.gan.checkpoint_kimg
        self.pending = [k for k in self.schedule().snapshot_kimgs(self.res, self.gan.snapshot_kimg)
                        if k * 1000 > nimg]
        self.next_ckpt = (math.floor(nimg / 1000 / every) + 1) * every
        self.tick_nimg, self.tick_t = nimg, time.perf_counter()
        self.sums, self.counts = {}, {}

    # ------------------------------------------------------------------ the loop
    def run(self, stop_at_kimg=None) -> dict:
        log, res = self.log, self.res
        log(f"phase {res}: kimg {self.start_kimg:g} → {self.end_kimg:g} "
            f"({'resumed' if self.resumed else 'start'} at {self.progress.nimg / 1000:.3f}); "
            f"{self.ctx.world} process(es) on {self.ctx.device}, {self.precision}; snapshots at "
            f"{', '.join(f'{k:g}' for k in self.pending) or 'none'}")
        self.t_start, self.nimg_start = time.perf_counter(), self.progress.nimg
        self.tick_t = self.t_start
        step = self.schedule()(self.progress.nimg)
        with _Signals() as signals:
            while self.progress.nimg < self.end_nimg:
                step = self.schedule()(self.progress.nimg)
                self._new_level(step)
                if self._guard(step, self._block(step)):
                    continue
                self._take_snapshots(step)
                done = self.progress.nimg >= self.end_nimg
                if self.progress.nimg >= self.tick_nimg + step.tick_kimg * 1000 or done:
                    self._tick(step)
                kimg = self.progress.nimg / 1000
                stop = dist_.any_rank(signals.requested is not None or (
                    stop_at_kimg is not None and kimg >= stop_at_kimg), self.ctx)
                if not done and (kimg >= self.next_ckpt or stop):
                    self._save_progress(step)
                if stop and not done:
                    why = signals.requested or "a stop request"
                    log(f"phase {res}: stopped by {why} at kimg {kimg:.3f}; progress saved to "
                        f"{self.file}; rerun to resume")
                    raise Stopped(f"phase {res} stopped by {why} at kimg {kimg:.3f}; rerun to "
                                  f"resume")
        self._publish(step)
        elapsed = time.perf_counter() - self.t_start
        log(f"phase {res}: done at kimg {self.progress.nimg / 1000:.3f} in {_fmt_time(elapsed)} "
            f"({self.progress.restores} restore(s))")
        return {"res": res, "kimg": self.progress.nimg / 1000, "seconds": elapsed,
                "restores": self.progress.restores}

    def _new_level(self, step) -> None:
        prev = self.progress.prev_lod
        if math.floor(step.lod) != math.floor(prev) or math.ceil(step.lod) != math.ceil(prev):
            self.state.reset_optimizers()
        self.progress.prev_lod = step.lod
        self.state.set_learning_rates(step)

    def _block(self, step) -> dict:
        """minibatch_repeats steps (fewer at the phase's end); per-step stats stay on the
        device, summed; `bad` flags a loss the guard must act on."""
        rounds = split_minibatch(step.minibatch, self.ctx.world,
                                 self.schedule().per_gpu_cap(step.resolution),
                                 self.gan.mbstd_group_size)
        block = {"bad": torch.zeros((), dtype=torch.bool, device=self.ctx.device)}
        for _ in range(self.gan.minibatch_repeats):
            reals, labels = self.data.next(step.minibatch)
            stats = train_step(self.state, reals, step, seed=self.seed,
                               nimg=self.progress.nimg, restores=self.progress.restores,
                               ctx=self.ctx, rounds=rounds, labels=labels)
            self.progress.nimg += step.minibatch
            self._accumulate(stats)
            block["bad"] |= self._bad(stats)
            block["last"] = stats
            if self.progress.nimg >= self.end_nimg:
                break
        return block

    def _bad(self, stats) -> torch.Tensor:
        d, g, limit = stats["d_loss"], stats["g_loss"], self.gan.max_abs_loss
        too_big = (torch.isfinite(d) & (d.abs() > limit)) | (torch.isfinite(g) & (g.abs() > limit))
        if self.precision == "fp16":  # non-finite losses are overflow: skipped, not divergence
            return too_big
        return too_big | ~torch.isfinite(d) | ~torch.isfinite(g)

    def _accumulate(self, stats) -> None:
        ok_d, ok_g = 1 - stats["d_skipped"], 1 - stats["g_skipped"]
        for key, value in stats.items():
            if key.endswith("_skipped"):
                self.sums[key] = self.sums.get(key, 0) + value
                continue
            ok = ok_g if key == "g_loss" else ok_d
            value = torch.where(ok > 0, value, torch.zeros_like(value))
            self.sums[key] = self.sums.get(key, 0) + value
            self.counts[key] = self.counts.get(key, 0) + ok

    # ------------------------------------------------------------------ divergence guard
    def _guard(self, step, block) -> bool:
        """True when the block diverged and the phase was rewound to the last good state."""
        collapsed = self.precision == "fp16" and min(
            self.state.scaler_D.get_scale(), self.state.scaler_G.get_scale()) < MIN_LOSS_SCALE
        if not dist_.any_rank(block["bad"] | collapsed, self.ctx):
            return False
        last = block["last"]
        why = f"D loss {float(last['d_loss']):.4g}, G loss {float(last['g_loss']):.4g}" + \
            (", fp16 loss scale collapsed" if collapsed else "")
        progress = self.progress
        progress.restores += 1
        if progress.restores > self.gan.max_restores:
            raise DivergenceError(
                f"phase {self.res}: training diverged at kimg {progress.nimg / 1000:.3f} ({why}) "
                f"and was already restored {self.gan.max_restores} times (gan.max_restores); "
                f"lower gan.schedule.lrate, lengthen gan.schedule.lod_transition_kimg, or check "
                f"the data")
        self._restore(step, why)
        return True

    def _restore(self, step, why: str) -> None:
        progress = self.progress
        restores, stretch = progress.restores, dict(progress.fade_stretch)
        if step.alpha < 1.0:
            stretch[self.res] = stretch.get(self.res, 1.0) * self.gan.fade_stretch
        source = self.last_good or "the phase's initial state"
        saved = ckpt.load(self.last_good) if self.last_good else self.initial
        resume.load_into(saved, Path(str(source)), self.state, progress, self.data, self.gan,
                         full=self.last_good == self.file)
        # restores change the noise stream (train.step_noise), so the same weights do not meet
        # the same batch again
        progress.restores, progress.fade_stretch = restores, stretch
        self._forget_after(progress.nimg)
        self._rewind_cadence()
        self.log(f"phase {self.res}: DIVERGED at kimg {step.kimg:.3f} ({why}); restored "
                 f"{source} (kimg {progress.nimg / 1000:.3f}), restore {restores}/"
                 f"{self.gan.max_restores}, fade into {self.res} now "
                 f"{self.schedule().fade_kimg(self.res):g} kimg")

    def _forget_after(self, nimg: int) -> None:
        """Snapshots and stats lines of the rewound stretch are dropped (they are retaken)."""
        if self.ctx.is_main:
            for k in self.schedule().snapshot_kimgs(self.res, self.gan.snapshot_kimg):
                if k * 1000 > nimg:
                    (self.dir / "snapshots" / f"{snapshot_name(k)}.pt").unlink(missing_ok=True)
            stats = self.dir / "stats.jsonl"
            if stats.exists():
                keep = [line for line in stats.read_text().splitlines()
                        if json.loads(line)["kimg"] * 1000 <= nimg + 1e-6]
                stats.write_text("".join(line + "\n" for line in keep))
        dist_.barrier(self.ctx)

    # ------------------------------------------------------------------ cadence
    def _take_snapshots(self, step) -> None:
        kimg = self.progress.nimg / 1000
        while self.pending and kimg >= self.pending[0] - 1e-9:
            if self.ctx.is_main:
                ckpt.save_snapshot(self.dir / "snapshots" / f"{snapshot_name(self.pending[0])}.pt",
                                   self.state.G_ema.state_dict(), network_kwargs(self.gan),
                                   step.resolution, step.alpha, self.pending[0],
                                   nimg=self.progress.nimg)
            self.pending.pop(0)

    def _tick(self, step) -> None:
        now, nimg = time.perf_counter(), self.progress.nimg
        means = {k: v / max(float(self.counts[k]), 1.0) if k in self.counts else v
                 for k, v in self.sums.items()}
        means = dist_.average_scalars(means, self.ctx)
        rate = (nimg - self.tick_nimg) / max(now - self.tick_t, 1e-9)
        eta = (self.end_nimg - nimg) / max((nimg - self.nimg_start)
                                           / max(now - self.t_start, 1e-9), 1e-9)
        stats = {"kimg": round(nimg / 1000, 3), "res": step.resolution,
                 "alpha": round(step.alpha, 4), "lod": round(step.lod, 4),
                 "minibatch": step.minibatch, "lr": step.g_lrate,
                 **{k: round(v, 5) for k, v in means.items()},
                 "img_per_s": round(rate, 2), "s_per_kimg": round(1000 / max(rate, 1e-9), 3),
                 "mem_mb": round(peak_memory_mb(self.ctx.device), 1),
                 "elapsed_s": round(now - self.t_start, 2)}
        if self.state.ada is not None:  # p now (its mean over the tick would lag)
            stats["ada_p"] = round(float(self.state.ada.p), 5)
        if self.precision == "fp16":
            stats["loss_scale_d"] = self.state.scaler_D.get_scale()
            stats["loss_scale_g"] = self.state.scaler_G.get_scale()
        self.log(f"kimg {nimg / 1000:9.3f}  res {step.resolution:4d}  alpha {step.alpha:5.3f}  "
                 f"mb {step.minibatch:4d}  D {means.get('d_loss', 0):8.4f}  "
                 f"G {means.get('g_loss', 0):8.4f}  {rate:8.1f} img/s  "
                 f"{stats['s_per_kimg']:8.2f} s/kimg  mem {stats['mem_mb']:.0f} MB  "
                 + (f"ADA p {stats['ada_p']:.3f} r_t {stats.get('ada_rt', 0):.3f}  "
                    if "ada_p" in stats else "")
                 + f"ETA phase {_fmt_time(eta)}")
        if self.ctx.is_main:
            with open(self.dir / "stats.jsonl", "a") as fh:
                fh.write(json.dumps(stats) + "\n")
            with torch.no_grad():
                fakes = self.state.G_ema(self.grid_z, step.resolution, step.alpha).float()
            save_grid(fakes, self.dir / "ticks" / f"{snapshot_name(nimg / 1000)}.png")
        self.tick_nimg, self.tick_t, self.sums, self.counts = nimg, now, {}, {}

    def _save_progress(self, step) -> None:
        if self.ctx.is_main:
            ckpt.save(self.file, self._state_dict(step.alpha))
        dist_.barrier(self.ctx)
        self.last_good = self.file
        kimg = self.progress.nimg / 1000
        self.next_ckpt = (math.floor(kimg / self.gan.checkpoint_kimg) + 1) * self.gan.checkpoint_kimg

    def _publish(self, step) -> None:
        """The phase is complete: write the outputs its rule names, then drop the progress."""
        out = self.out
        if self.ctx.is_main:
            ckpt.save(out.checkpoint, self._state_dict(step.alpha))
            with torch.no_grad():
                fakes = self.state.G_ema(self.grid_z, self.res, 1.0).float()
            save_grid(fakes, out.fakes)
            for src, dst in ((self.dir / "snapshots", out.snapshots), (self.dir / "ticks", out.ticks)):
                shutil.rmtree(dst, ignore_errors=True)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(src), str(dst))
            stats = self.dir / "stats.jsonl"
            out.stats.parent.mkdir(parents=True, exist_ok=True)
            if stats.exists():
                shutil.move(str(stats), str(out.stats))
            else:
                out.stats.write_text("")
            shutil.rmtree(self.dir, ignore_errors=True)
        dist_.barrier(self.ctx)
