"""One growth phase of the PGGAN: fade into `res` (except 4²) then stabilise, as one job.

`train_phase` picks up where the job left off: from `.progress/progress.pt` (a checkpoint
written every `checkpoint_kimg` and when SLURM's SIGTERM/SIGUSR1 arrive), else from phase
R/2's final checkpoint, else (4²) from fresh networks. On CPU with the same settings a stopped
and resumed phase gives bit-identical weights. While it runs, everything lives under
`{out}/.progress/`; outputs appear only when the phase is complete:

    {out}/checkpoint.pt   G, D, G_ema, both Adam states, images seen, schedule position,
                          data order and RNG states, options digest
    {out}/stats.jsonl     one JSON line per tick
    {out}/fakes.png       G_ema on fixed latents at the end; {out}/fakes/ one grid per tick
    {out}/snapshots/      G_ema every `snapshot_kimg`, named by kimg
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import torch

from latentage.errors import LatentageError
from latentage.gan import checkpoint as ckpt
from latentage.gan import distributed as D_
from latentage.gan.data import RealSampler, fade_reals
from latentage.gan.images import save_grid
from latentage.gan.loss import discriminator_loss, generator_loss
from latentage.gan.networks import Discriminator, Generator
from latentage.gan.options import TrainOptions
from latentage.gan.schedule import Schedule, snapshot_name

CHECKPOINT_VERSION = 1


class DivergenceError(LatentageError):
    pass


class Stopped(LatentageError):
    """Training stopped by a signal after saving a progress checkpoint; rerun to resume."""


# ------------------------------------------------------------------------- helpers
def resolve_precision(precision: str, device: torch.device) -> str:
    if device.type != "cuda":
        if precision in ("fp16",):
            raise LatentageError("gan.precision fp16 needs a GPU; use fp32 (or bf16) on CPU")
        return "fp32" if precision == "auto" else precision
    if precision != "auto":
        return precision
    return "bf16" if torch.cuda.is_bf16_supported() and \
        torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"


class _Signals:
    """Turn SIGTERM/SIGUSR1 (SLURM's warnings before a time limit) into a stop request."""

    def __init__(self):
        self.requested = None
        self._old = {}

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


def _peak_memory_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


# ------------------------------------------------------------------------- the state
class PhaseState:
    """Networks, optimisers, progress and random streams: everything a checkpoint holds."""

    def __init__(self, opts: TrainOptions, seed: int, device, data: RealSampler):
        self.opts, self.seed, self.device = opts, seed, device
        kw = opts.network_kwargs()
        torch.manual_seed(seed)  # weight initialisation is part of the seed's contract
        self.G = Generator(**kw["G"]).to(device)
        self.D = Discriminator(**kw["D"]).to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        adam = {"betas": (opts.adam_beta1, opts.adam_beta2), "eps": opts.adam_eps}
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=1e-3, **adam)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=1e-3, **adam)
        self.nimg = 0
        self.prev_lod = -1.0
        self.fade_stretch: dict[int, float] = {}
        self.restores = 0
        self.data = data
        self.noise = torch.Generator(device="cpu").manual_seed(
            int(np.random.SeedSequence([seed, 0x2A7E]).generate_state(1)[0]))

    def state_dict(self, res: int, alpha: float) -> dict:
        return {
            "version": CHECKPOINT_VERSION,
            "networks": self.opts.network_kwargs(),
            "options_digest": self.opts.digest(),
            "seed": self.seed,
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "nimg": self.nimg, "kimg": self.nimg / 1000.0, "prev_lod": self.prev_lod,
            "resolution": res, "alpha": alpha,
            "fade_stretch": {str(k): v for k, v in self.fade_stretch.items()},
            "restores": self.restores,
            "data": self.data.state_dict(),
            "noise_rng": self.noise.get_state(),
        }

    def load_state_dict(self, state: dict, source: Path, full: bool = True) -> None:
        if state.get("networks") != self.opts.network_kwargs():
            raise LatentageError(f"{source}: networks {state.get('networks')} differ from the "
                                 f"configured {self.opts.network_kwargs()}; rerun earlier phases")
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.nimg, self.prev_lod = int(state["nimg"]), float(state["prev_lod"])
        self.data.load_state_dict(state["data"])
        self.noise.set_state(state["noise_rng"])
        if full:  # within-phase state; a new phase starts with none of it
            self.fade_stretch = {int(k): float(v) for k, v in state["fade_stretch"].items()}
            self.restores = int(state["restores"])

    def reset_optimizers(self) -> None:
        self.opt_G.state.clear()
        self.opt_D.state.clear()


# ------------------------------------------------------------------------- the loop
def train_phase(res: int, data_path, out_dir, prev_checkpoint=None, *, options: TrainOptions,
                seed: int, log=print, _stop_at_kimg: float | None = None) -> dict:
    """Train phase `res`; returns a summary. Raises Stopped after a signal (progress saved),
    DivergenceError after too many restores."""
    ctx = D_.init()
    out_dir = Path(out_dir)
    progress_dir = out_dir / ".progress"
    progress_file = progress_dir / "progress.pt"
    opts = options
    device = ctx.device
    precision = resolve_precision(opts.precision, device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)

    def sched_now():
        return Schedule(opts.max_res, num_gpus=ctx.world, fade_stretch=state.fade_stretch,
                        **opts.schedule)

    data = RealSampler(data_path, seed)
    if data.resolution != res:
        raise LatentageError(f"{data_path}: images are {data.resolution}² but phase {res} "
                             f"needs {res}²")
    state = PhaseState(opts, seed, device, data)
    schedule = sched_now()
    schedule.validate()
    start_kimg, end_kimg = schedule.phase_bounds(res)
    end_nimg = int(round(end_kimg * 1000))

    # ---- where to start from
    resumed = False
    if progress_file.is_file():
        saved = ckpt.load(progress_file, device)
        if saved.get("options_digest") == opts.digest() and saved.get("resolution") == res:
            state.load_state_dict(saved, progress_file)
            resumed = True
            log(f"phase {res}: resuming from {progress_file} at kimg {state.nimg / 1000:.3f}")
        else:
            log(f"phase {res}: {progress_file} was written with other settings; starting over")
    D_.barrier(ctx)  # every rank has read (or skipped) the progress file before it goes
    if not resumed:
        if ctx.is_main:
            shutil.rmtree(progress_dir, ignore_errors=True)
        if res != 4:
            if prev_checkpoint is None:
                raise LatentageError(f"phase {res} needs phase {res // 2}'s checkpoint")
            saved = ckpt.load(prev_checkpoint, device)
            if saved.get("options_digest") != opts.digest():
                raise LatentageError(f"{prev_checkpoint} was trained with other gan settings; "
                                     f"rerun phase {res // 2} (snakemake does this on its own)")
            state.load_state_dict(saved, Path(prev_checkpoint), full=False)
            if abs(state.nimg / 1000 - start_kimg) > 1.0:
                raise LatentageError(f"{prev_checkpoint} ends at kimg {state.nimg / 1000:.1f}, "
                                     f"but phase {res} starts at {start_kimg}")
        else:
            state.nimg = 0
    if ctx.is_main:
        for sub in ("snapshots", "fakes"):
            (progress_dir / sub).mkdir(parents=True, exist_ok=True)
    D_.barrier(ctx)

    # fixed latents for the fakes grids, the same in every phase
    grid_z = torch.randn(opts.grid_size, opts.latent_size,
                         generator=torch.Generator().manual_seed(seed + 1)).to(device)
    snapshots = [k for k in schedule.snapshot_kimgs(res, opts.snapshot_kimg)
                 if k * 1000 > state.nimg]
    next_ckpt = (math.floor(state.nimg / 1000 / opts.checkpoint_kimg) + 1) * opts.checkpoint_kimg
    last_good = progress_file if resumed else (Path(prev_checkpoint) if res != 4 else None)
    initial_state = None if last_good else copy.deepcopy(state.state_dict(res, 0.0))

    amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    scaler_G = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    scaler_D = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    G, Dn = state.G, state.D
    if device.type == "cuda" and opts.channels_last:
        G.to(memory_format=torch.channels_last)
        Dn.to(memory_format=torch.channels_last)
    G_run, D_run = (torch.compile(G), torch.compile(Dn)) if opts.compile else (G, Dn)

    def autocast():
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=amp_dtype)

    def noise(n, *shape):
        # the same global draw on every rank; each keeps its strided share
        return torch.randn(n, *shape, generator=state.noise)[ctx.rank::ctx.world].to(device)

    def uniform(n):
        return torch.rand(n, generator=state.noise)[ctx.rank::ctx.world].to(device)

    def save_progress(step):
        if ctx.is_main:
            ckpt.save(progress_file, state.state_dict(res, step.alpha))
        D_.barrier(ctx)

    def write_tick(step, tick_stats):
        if not ctx.is_main:
            return
        with open(progress_dir / "stats.jsonl", "a") as fh:
            fh.write(json.dumps(tick_stats) + "\n")
        with torch.no_grad():
            fakes = state.G_ema(grid_z, step.resolution, step.alpha).float()
        save_grid(fakes, progress_dir / "fakes" / f"{snapshot_name(state.nimg / 1000)}.png")

    log(f"phase {res}: kimg {start_kimg:g} → {end_kimg:g} ({'resumed' if resumed else 'start'} "
        f"at {state.nimg / 1000:.3f}); {ctx.world} process(es) on {device}, {precision}; "
        f"snapshots at {', '.join(f'{k:g}' for k in snapshots) or 'none'}")

    t_start = time.perf_counter()
    nimg_start = state.nimg
    tick_t, tick_nimg = t_start, state.nimg
    tick_sums, tick_steps = {}, 0
    step = sched_now()(state.nimg)
    with _Signals() as signals:
        while state.nimg < end_nimg:
            step = sched_now()(state.nimg)
            if math.floor(step.lod) != math.floor(state.prev_lod) or \
                    math.ceil(step.lod) != math.ceil(state.prev_lod):
                state.reset_optimizers()
            state.prev_lod = step.lod
            for group in state.opt_G.param_groups:
                group["lr"] = step.g_lrate
            for group in state.opt_D.param_groups:
                group["lr"] = step.d_lrate
            diverged = None
            for _ in range(opts.minibatch_repeats):
                # ---- discriminator
                reals = fade_reals(data.batch(step.minibatch, ctx.rank, ctx.world, device),
                                   step.alpha)
                z = noise(step.minibatch, opts.latent_size)
                mixing = uniform(step.minibatch)
                if device.type == "cuda" and opts.channels_last:
                    reals = reals.contiguous(memory_format=torch.channels_last)
                with autocast():
                    with torch.no_grad():
                        fakes = G_run(z, step.resolution, step.alpha)
                    d_loss, parts = discriminator_loss(
                        D_run, reals, fakes, step.alpha, mixing, opts.wgan_lambda,
                        opts.wgan_target, opts.drift,
                        grad_scale=scaler_D.get_scale() if scaler_D.is_enabled() else 1.0)
                state.opt_D.zero_grad(set_to_none=True)
                scaler_D.scale(d_loss).backward()
                D_.average_gradients(Dn.parameters(), ctx)
                scaler_D.step(state.opt_D)
                scaler_D.update()
                state.nimg += step.minibatch
                # ---- generator
                z = noise(step.minibatch, opts.latent_size)
                Dn.requires_grad_(False)
                with autocast():
                    g_loss = generator_loss(D_run, G_run(z, step.resolution, step.alpha),
                                            step.alpha)
                state.opt_G.zero_grad(set_to_none=True)
                scaler_G.scale(g_loss).backward()
                Dn.requires_grad_(True)
                D_.average_gradients(G.parameters(), ctx)
                scaler_G.step(state.opt_G)
                scaler_G.update()
                with torch.no_grad():
                    torch._foreach_lerp_(list(state.G_ema.parameters()), list(G.parameters()),
                                         1.0 - opts.ema_beta)
                vals = {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), **parts}
                for k, v in vals.items():
                    tick_sums[k] = tick_sums.get(k, 0.0) + v
                tick_steps += 1
                dl = float(d_loss.detach())
                if not math.isfinite(dl) or not math.isfinite(float(g_loss.detach())) or \
                        abs(dl) > opts.max_abs_loss:
                    diverged = f"D loss {dl:.4g}, G loss {float(g_loss.detach()):.4g}"
                    break
                if state.nimg >= end_nimg:
                    break

            # ---- divergence guard (every rank takes the same decision)
            if D_.any_rank(diverged is not None, ctx):
                state.restores += 1
                if state.restores > opts.max_restores:
                    raise DivergenceError(
                        f"phase {res}: training diverged at kimg {state.nimg / 1000:.3f} "
                        f"({diverged}) and was already restored {opts.max_restores} times "
                        f"(gan.max_restores); lower gan.schedule.lrate, lengthen "
                        f"gan.schedule.lod_transition_kimg, or check the data")
                restores, stretch = state.restores, dict(state.fade_stretch)
                if step.alpha < 1.0:
                    stretch[res] = stretch.get(res, 1.0) * opts.fade_stretch
                source = last_good or "the phase's initial state"
                saved = ckpt.load(last_good, device) if last_good else initial_state
                state.load_state_dict(saved, Path(str(source)), full=last_good == progress_file)
                state.restores, state.fade_stretch = restores, stretch
                # a different noise stream, so the same weights do not meet the same batch
                state.noise.manual_seed(int(np.random.SeedSequence(
                    [seed, 0x2A7E, res, restores]).generate_state(1)[0]))
                tick_sums, tick_steps = {}, 0
                log(f"phase {res}: DIVERGED at kimg {step.kimg:.3f} ({diverged}); restored "
                    f"{source} (kimg {state.nimg / 1000:.3f}), restore {restores}/"
                    f"{opts.max_restores}, fade into {res} now "
                    f"{sched_now().fade_kimg(res):g} kimg")
                continue

            kimg = state.nimg / 1000.0
            # ---- snapshots of G_ema (names fixed in advance)
            while snapshots and kimg >= snapshots[0] - 1e-9:
                if ctx.is_main:
                    ckpt.save_snapshot(
                        progress_dir / "snapshots" / f"{snapshot_name(snapshots[0])}.pt",
                        state.G_ema.state_dict(), opts.network_kwargs(), step.resolution,
                        step.alpha, snapshots[0], nimg=state.nimg)
                snapshots.pop(0)

            # ---- tick: a log line, a stats line, a fakes grid
            done = state.nimg >= end_nimg
            if state.nimg >= tick_nimg + step.tick_kimg * 1000 or done:
                now = time.perf_counter()
                means = D_.average_scalars({k: float(v) / max(tick_steps, 1)
                                            for k, v in tick_sums.items()}, ctx)
                dt, dn = now - tick_t, state.nimg - tick_nimg
                rate = dn / max(dt, 1e-9)
                eta = (end_nimg - state.nimg) / max((state.nimg - nimg_start)
                                                    / max(now - t_start, 1e-9), 1e-9)
                stats = {"kimg": round(kimg, 3), "res": step.resolution,
                         "alpha": round(step.alpha, 4), "lod": round(step.lod, 4),
                         "minibatch": step.minibatch, "lr": step.g_lrate,
                         **{k: round(v, 5) for k, v in means.items()},
                         "img_per_s": round(rate, 2), "s_per_kimg": round(1000 / max(rate, 1e-9), 3),
                         "mem_mb": round(_peak_memory_mb(device), 1),
                         "elapsed_s": round(now - t_start, 2)}
                log(f"kimg {kimg:9.3f}  res {step.resolution:4d}  alpha {step.alpha:5.3f}  "
                    f"mb {step.minibatch:4d}  D {means.get('d_loss', 0):8.4f}  "
                    f"G {means.get('g_loss', 0):8.4f}  {rate:8.1f} img/s  "
                    f"{stats['s_per_kimg']:8.2f} s/kimg  mem {stats['mem_mb']:.0f} MB  "
                    f"ETA phase {_fmt_time(eta)}")
                write_tick(step, stats)
                tick_t, tick_nimg, tick_sums, tick_steps = now, state.nimg, {}, 0

            # ---- progress checkpoints: periodic, on signals, on request (tests)
            stop = D_.any_rank(signals.requested is not None or (
                _stop_at_kimg is not None and kimg >= _stop_at_kimg), ctx)
            if (kimg >= next_ckpt and not done) or (stop and not done):
                save_progress(step)
                last_good = progress_file
                next_ckpt = (math.floor(kimg / opts.checkpoint_kimg) + 1) * opts.checkpoint_kimg
            if stop and not done:
                why = signals.requested or "a stop request"
                log(f"phase {res}: stopped by {why} at kimg {kimg:.3f}; progress saved to "
                    f"{progress_file}; rerun to resume")
                raise Stopped(f"phase {res} stopped by {why} at kimg {kimg:.3f}; rerun to resume")

    # ---- the phase is complete: publish outputs atomically, then drop .progress
    final = state.state_dict(res, step.alpha)
    if ctx.is_main:
        ckpt.save(out_dir / "checkpoint.pt", final)
        with torch.no_grad():
            fakes = state.G_ema(grid_z, res, 1.0).float()
        save_grid(fakes, out_dir / "fakes.png")
        for sub in ("snapshots", "fakes"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
            (progress_dir / sub).rename(out_dir / sub)
        stats_src = progress_dir / "stats.jsonl"
        if stats_src.exists():
            stats_src.replace(out_dir / "stats.jsonl")
        else:
            (out_dir / "stats.jsonl").write_text("")
        shutil.rmtree(progress_dir, ignore_errors=True)
    D_.barrier(ctx)
    elapsed = time.perf_counter() - t_start
    log(f"phase {res}: done at kimg {state.nimg / 1000:.3f} in {_fmt_time(elapsed)} "
        f"({state.restores} restore(s))")
    return {"res": res, "kimg": state.nimg / 1000, "seconds": elapsed, "restores": state.restores}
