"""The GAN's steps: train-phase and gan-figures (registered by latentage.cli)."""

from __future__ import annotations

from pathlib import Path

from latentage.config import add_balance_arguments, add_settings_argument


def add_parsers(sub) -> None:
    p = sub.add_parser("train-phase", help="train one PGGAN growth phase (fade in, stabilise)")
    p.add_argument("--res", type=int, required=True, help="the phase's resolution")
    p.add_argument("--data", type=Path, required=True, help="prepared train/res{R}.npy")
    p.add_argument("--prev", type=Path, help="checkpoint.pt of phase R/2 (not for 4)")
    p.add_argument("--labels", type=Path,
                   help="prepared train labels.parquet (needed by gan.conditional and "
                        "--balance age)")
    add_balance_arguments(p)
    p.add_argument("--checkpoint", type=Path, required=True, help="output: the phase checkpoint")
    p.add_argument("--stats", type=Path, required=True, help="output: stats.jsonl, a line a tick")
    p.add_argument("--fakes", type=Path, required=True, help="output: final G_ema grid PNG")
    p.add_argument("--ticks", type=Path, required=True, help="output folder: a grid per tick")
    p.add_argument("--snapshots", type=Path, required=True,
                   help="output folder: G_ema snapshots {kimg}.pt")
    p.add_argument("--progress", type=Path, required=True,
                   help="folder for the resumable progress while the phase runs")
    add_settings_argument(p, "gan")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--dry-run", action="store_true",
                   help="print the settings and this phase's schedule, then stop")
    p.set_defaults(func=_train_phase)

    p = sub.add_parser("gan-figures", help="Fig 1a (growth) and Fig 1b (final samples)")
    p.add_argument("--checkpoints", type=Path, nargs="+", required=True,
                   help="phase checkpoints, lowest resolution first")
    p.add_argument("--growth", type=Path, required=True, help="output Fig 1a PNG")
    p.add_argument("--samples", type=Path, required=True, help="output Fig 1b PNG")
    p.add_argument("--seed", type=int, required=True)
    p.set_defaults(func=_gan_figures)


def describe_phase(res: int, gan, log=print) -> None:
    """Every setting and the schedule at the phase's start, end of fade and end."""
    from latentage.config import as_dict
    from latentage.gan.resume import settings_digest
    from latentage.gan.schedule import Schedule

    sched = Schedule.from_settings(gan)
    start, end = sched.phase_bounds(res)
    log(f"train-phase {res}: settings (digest {settings_digest(gan)})")
    for key, value in as_dict(gan).items():
        log(f"  {key:20s} {value}")
    for label, kimg in (("start", start), ("end of fade", start + sched.fade_kimg(res)),
                        ("end", end)):
        step = sched(int(round(kimg * 1000)) - (1 if label == "end" else 0))
        log(f"  schedule at {label:11s} kimg {kimg:9.3f}: res {step.resolution} alpha "
            f"{step.alpha:.3f} minibatch {step.minibatch} lr {step.g_lrate}")
    log(f"  snapshots at kimg {', '.join(f'{k:g}' for k in sched.snapshot_kimgs(res, gan.snapshot_kimg))}")


def _train_phase(args) -> None:
    from latentage.config import from_json
    from latentage.gan.distributed import launch_rank
    from latentage.gan.train_phase import PhaseOutputs, Sampling, train_phase

    gan = from_json("gan", *args.settings)
    if gan.max_res is None:
        from latentage.errors import ConfigError

        raise ConfigError("config key gan.max_res: give the final resolution in --settings (the "
                          "workflow fills it in from data.max_res)")
    if launch_rank() == 0:  # one process per GPU: the first one speaks for all
        describe_phase(args.res, gan)
    if args.dry_run:
        return
    outputs = PhaseOutputs(args.checkpoint, args.stats, args.fakes, args.ticks, args.snapshots)
    sampling = Sampling(args.labels, args.balance, args.balance_max_weight)
    train_phase(args.res, data=args.data, prev=args.prev, outputs=outputs,
                progress_dir=args.progress, settings=gan, seed=args.seed, sampling=sampling)


def _gan_figures(args) -> None:
    from latentage.gan.gan_figures import gan_figures

    gan_figures(args.checkpoints, growth=args.growth, samples=args.samples, seed=args.seed)
    print(f"gan-figures: wrote {args.growth} and {args.samples}")
