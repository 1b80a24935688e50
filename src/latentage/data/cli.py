"""The data steps: phantom, phantom-sheet, prepare (registered by latentage.cli). Data steps
do not need torch."""

from __future__ import annotations

from pathlib import Path

from latentage.config import add_settings_argument


def add_parsers(sub) -> None:
    p = sub.add_parser("phantom", help="write phantom hand radiographs in RSNA format")
    p.add_argument("--images", type=Path, required=True, help="output folder of {id}.png")
    p.add_argument("--labels", type=Path, required=True, help="output CSV id,boneage,male")
    p.add_argument("--truth", type=Path, required=True, help="output CSV of ground truth")
    add_settings_argument(p, "data.phantom")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.set_defaults(func=_phantom)

    p = sub.add_parser("phantom-sheet", help="contact sheet of a phantom set, ordered by age")
    p.add_argument("--images", type=Path, required=True, help="folder of {id}.png")
    p.add_argument("--labels", type=Path, required=True, help="CSV id,boneage,male")
    p.add_argument("--out", type=Path, required=True, help="output PNG")
    p.set_defaults(func=_phantom_sheet)

    p = sub.add_parser("prepare", help="validate, convert, resize and split a labelled folder")
    p.add_argument("--images", type=Path, required=True, help="folder of {id}.png / .jpg")
    p.add_argument("--labels", type=Path, required=True, help="labels CSV")
    for split in ("train", "test"):
        p.add_argument(f"--{split}-images", type=Path, nargs="+", required=True,
                       help=f"output {split} memmaps res4.npy … res{{max_res}}.npy, in that order")
        p.add_argument(f"--{split}-labels", type=Path, required=True,
                       help=f"output {split} labels.parquet")
    p.add_argument("--summary", type=Path, required=True, help="output prepare.json")
    add_settings_argument(p, "data")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.set_defaults(func=_prepare)


def _phantom(args) -> None:
    from latentage.config import from_json
    from latentage.data.phantom import phantom

    phantom(images=args.images, labels=args.labels, truth=args.truth,
            settings=from_json("data.phantom", *args.settings), seed=args.seed,
            workers=args.workers)


def _phantom_sheet(args) -> None:
    from latentage.data.phantom_sheet import phantom_sheet

    phantom_sheet(images=args.images, labels=args.labels, out=args.out)
    print(f"phantom-sheet: wrote {args.out}")


def _prepare(args) -> None:
    from latentage.config import from_json
    from latentage.data.prepare import prepare

    prepare(images=args.images, labels=args.labels, train_images=args.train_images,
            test_images=args.test_images, train_labels=args.train_labels,
            test_labels=args.test_labels, summary=args.summary,
            settings=from_json("data", *args.settings), seed=args.seed, workers=args.workers)
