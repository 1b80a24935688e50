"""The GAN's CLI steps: train-phase and gan-figures (registered by latentage.cli)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("train-phase", help="train one PGGAN growth phase (fade in, stabilise)")
    p.add_argument("--res", type=int, required=True, help="the phase's resolution")
    p.add_argument("--data", type=Path, required=True, help="prepared res{R}.npy of train")
    p.add_argument("--prev", type=Path, help="checkpoint.pt of phase R/2 (not for 4)")
    p.add_argument("--out", type=Path, required=True, help="phase folder results/gan/res{R}")
    p.add_argument("--settings", required=True,
                   help="the config's gan section as JSON (keys of TrainOptions)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--dry-run", action="store_true",
                   help="print the options and this phase's schedule, write options.json, stop")
    p.set_defaults(func=_train_phase)

    p = sub.add_parser("gan-figures", help="Fig 1a (growth) and Fig 1b (final samples)")
    p.add_argument("--checkpoints", type=Path, nargs="+", required=True,
                   help="phase checkpoints, lowest resolution first")
    p.add_argument("--growth", type=Path, required=True, help="output Fig 1a PNG")
    p.add_argument("--samples", type=Path, required=True, help="output Fig 1b PNG")
    p.add_argument("--seed", type=int, required=True)
    p.set_defaults(func=_gan_figures)


def _train_phase(args) -> None:
    from latentage.gan.options import TrainOptions
    from latentage.gan.schedule import Schedule
    from latentage.io import write_json

    try:
        opts = TrainOptions.from_settings(json.loads(args.settings))
    except (ValueError, TypeError) as exc:
        from latentage.errors import ConfigError

        raise ConfigError(f"--settings: {exc}") from None
    sched = Schedule(opts.max_res, **opts.schedule)
    start, end = sched.phase_bounds(args.res)
    summary = {"res": args.res, "kimg": [start, end], "seed": args.seed,
               "options": asdict(opts), "options_digest": opts.digest(),
               "snapshots": sched.snapshot_kimgs(args.res, opts.snapshot_kimg)}
    print(f"train-phase {args.res}: options")
    for key, value in asdict(opts).items():
        print(f"  {key:20s} {value}")
    for label, kimg in (("start", start), ("end of fade", start + sched.fade_kimg(args.res)),
                        ("end", end)):
        step = sched(int(round(kimg * 1000)) - (1 if label == "end" else 0))
        print(f"  schedule at {label:11s} kimg {kimg:9.3f}: res {step.resolution} alpha "
              f"{step.alpha:.3f} minibatch {step.minibatch} lr {step.g_lrate}")
    write_json(args.out / "options.json", summary)
    if args.dry_run:
        return
    from latentage.gan.train import train_phase

    train_phase(args.res, args.data, args.out, args.prev, options=opts, seed=args.seed)


def _gan_figures(args) -> None:
    from latentage.gan.figures import growth_figure, samples_figure

    growth_figure(args.checkpoints, args.growth, args.seed)
    samples_figure(args.checkpoints[-1], args.samples, args.seed)
    print(f"gan-figures: wrote {args.growth} and {args.samples}")
