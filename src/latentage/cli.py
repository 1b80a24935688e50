"""`latentage <step>`: one subcommand per workflow step; the Snakemake rules only wire paths.

Heavy imports happen inside each step so `latentage --help` stays fast and the data steps do
not need torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from latentage import __version__
from latentage.errors import LatentageError


def _phantom(args) -> None:
    from latentage.data.phantom_dataset import write_phantom_dataset

    write_phantom_dataset(args.images, args.labels, args.truth, n=args.n, size=args.size,
                          seed=args.seed, workers=args.workers)


def _phantom_sheet(args) -> None:
    from latentage.data.phantom_dataset import contact_sheet

    contact_sheet(args.images, args.labels, args.out, n=args.n)
    print(f"phantom-sheet: wrote {args.out}")


def _prepare(args) -> None:
    from latentage.data.prepare import prepare

    prepare(args.images, args.labels, args.out, max_res=args.max_res, test_size=args.test_size,
            seed=args.seed, min_image_size=args.min_image_size, on_bad_image=args.on_bad_image,
            columns={"id": args.id_column, "age": args.age_column, "sex": args.sex_column},
            workers=args.workers)


def _bench(args) -> None:
    from latentage import bench

    bench.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentage", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"latentage {__version__}")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="processes, one per GPU, via torchrun when N GPUs are visible "
                             "(default 1)")
    sub = parser.add_subparsers(dest="step", required=True, metavar="<step>")

    p = sub.add_parser("phantom", help="write phantom hand radiographs in RSNA format")
    p.add_argument("--images", type=Path, required=True, help="output folder of {id}.png")
    p.add_argument("--labels", type=Path, required=True, help="output CSV id,boneage,male")
    p.add_argument("--truth", type=Path, required=True, help="output CSV of ground truth")
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--size", type=int, default=256, help="side in pixels (default 256)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.set_defaults(func=_phantom)

    p = sub.add_parser("phantom-sheet", help="contact sheet of a phantom set, ordered by age")
    p.add_argument("--images", type=Path, required=True, help="folder of {id}.png")
    p.add_argument("--labels", type=Path, required=True, help="CSV id,boneage,male")
    p.add_argument("--out", type=Path, required=True, help="output PNG")
    p.add_argument("--n", type=int, default=30, help="images on the sheet (default 30)")
    p.set_defaults(func=_phantom_sheet)

    p = sub.add_parser("prepare", help="validate, convert, resize and split a labelled folder")
    p.add_argument("--images", type=Path, required=True, help="folder of {id}.png / .jpg")
    p.add_argument("--labels", type=Path, required=True, help="labels CSV")
    p.add_argument("--out", type=Path, required=True, help="output folder (results/data)")
    p.add_argument("--max-res", type=int, required=True, help="largest side, a power of two")
    p.add_argument("--test-size", type=float, required=True,
                   help="test images: a count (≥ 1) or a fraction (< 1)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--min-image-size", type=int, default=0, help="smallest usable side (px)")
    p.add_argument("--on-bad-image", choices=["error", "skip"], default="error")
    p.add_argument("--id-column", help="CSV column of image ids (default: auto)")
    p.add_argument("--age-column", help="CSV column of bone age in months (default: auto)")
    p.add_argument("--sex-column", help="CSV column of sex (default: auto)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.set_defaults(func=_prepare)

    from latentage.analysis.cli import add_parsers as add_analysis
    from latentage.cnn.cli import add_parsers as add_cnn
    from latentage.gan.cli import add_parsers as add_gan
    from latentage.latent.cli import add_parsers as add_latent
    from latentage.metrics.cli import add_parsers as add_metrics

    add_gan(sub)
    add_cnn(sub)
    add_latent(sub)
    add_metrics(sub)
    add_analysis(sub)

    p = sub.add_parser("bench", help="print speed and memory figures of a step")
    bsub = p.add_subparsers(dest="what", required=True, metavar="<what>")
    b = bsub.add_parser("phantom", help="phantom images/s on one core")
    b.add_argument("--size", type=int, default=256)
    b.add_argument("--n", type=int, default=200)
    b = bsub.add_parser("prepare", help="prepare images/s (phantom input)")
    b.add_argument("--n", type=int, default=1000)
    b.add_argument("--max-res", type=int, default=256)
    b.add_argument("--workers", type=int, default=2)
    b = bsub.add_parser("train", help="PGGAN training steps: img/s, s/kimg, peak memory")
    b.add_argument("--res", type=int, nargs="+", default=[64], help="resolution(s)")
    b.add_argument("--batch", type=int, default=16, help="minibatch (per process)")
    b.add_argument("--latent", type=int, default=512)
    b.add_argument("--fmap-base", type=int, default=8192)
    b.add_argument("--fmap-max", type=int, default=512)
    b.add_argument("--steps", type=int, default=5, help="timed D+G steps after 2 warm-up")
    b.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    b.add_argument("--fade", action="store_true", help="time a fade step (alpha 0.5)")
    b = bsub.add_parser("label", help="generate + label images/s and peak memory")
    b.add_argument("--res", type=int, default=64, help="generator resolution")
    b.add_argument("--batch", type=int, default=64)
    b.add_argument("--n", type=int, default=512, help="latents to label")
    b.add_argument("--latent", type=int, default=512)
    b.add_argument("--fmap-base", type=int, default=8192)
    b.add_argument("--fmap-max", type=int, default=512)
    b.add_argument("--backbone", default="legacy_xception")
    b.add_argument("--input-size", type=int, default=299)
    b = bsub.add_parser("lasso", help="LassoCV on n × dim latents")
    b.add_argument("--n", type=int, default=200000)
    b.add_argument("--dim", type=int, default=512)
    b.add_argument("--folds", type=int, default=10)
    b.add_argument("--jobs", type=int, default=2)
    b = bsub.add_parser("frechet", help="Fréchet distance: latentage vs pytorch-fid")
    b.add_argument("--dim", type=int, default=2048)
    b.add_argument("--samples", type=int, default=10000)
    b = bsub.add_parser("neighbours", help="exact nearest-neighbour search over real images")
    b.add_argument("--n-real", type=int, default=12611)
    b.add_argument("--res", type=int, default=256)
    b.add_argument("--queries", type=int, default=8)
    b.add_argument("--k", type=int, default=5)
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.nproc > 1:
        from latentage.launch import maybe_relaunch

        maybe_relaunch(args.nproc, _without_nproc(argv))
    try:
        args.func(args)
    except LatentageError as exc:
        print(f"latentage {args.step}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"latentage {args.step}: interrupted", file=sys.stderr)
        return 130
    return 0


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


if __name__ == "__main__":
    sys.exit(main())
