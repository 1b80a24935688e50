"""`latentage <step>`: one subcommand per workflow step; the Snakemake rules only wire paths.

Each family of steps registers its own subcommands (`<family>/cli.py`); heavy imports happen
inside each step, so `latentage --help` stays fast and the data steps do not need torch.
"""

from __future__ import annotations

import argparse
import sys

from latentage import __version__
from latentage.errors import LatentageError


def build_parser() -> argparse.ArgumentParser:
    from latentage import bench, gpu_check
    from latentage.analysis.cli import add_parsers as add_analysis
    from latentage.cnn.cli import add_parsers as add_cnn
    from latentage.data.cli import add_parsers as add_data
    from latentage.gan.cli import add_parsers as add_gan
    from latentage.latent.cli import add_parsers as add_latent
    from latentage.metrics.cli import add_parsers as add_metrics

    parser = argparse.ArgumentParser(prog="latentage", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"latentage {__version__}")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="processes, one per GPU (default 1)")
    parser.add_argument("--launcher", choices=["torchrun", "srun"], default="torchrun",
                        help="how --nproc starts them: torchrun on one node (default), or as "
                             "SLURM tasks of the job's allocation (one node or several)")
    sub = parser.add_subparsers(dest="step", required=True, metavar="<step>")
    for add in (add_data, add_gan, add_cnn, add_latent, add_metrics, add_analysis,
                bench.add_parsers, gpu_check.add_parsers):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        if args.nproc > 1:
            from latentage.launch import maybe_relaunch

            maybe_relaunch(args.nproc, _without_nproc(argv), args.launcher)
        args.func(args)
    except LatentageError as exc:
        print(f"latentage {args.step}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"latentage {args.step}: interrupted", file=sys.stderr)
        return 130
    return 0


def _without_nproc(argv: list[str]) -> list[str]:
    """The step's own arguments: the launch options removed."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--nproc", "--launcher"):
            skip = True
        elif not a.startswith(("--nproc=", "--launcher=")):
            out.append(a)
    return out


if __name__ == "__main__":
    sys.exit(main())
