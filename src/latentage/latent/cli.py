"""The fan-out's CLI steps: label-shard, gather-labels, latent-figure."""

from __future__ import annotations

from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("label-shard", help="generate and CNN-label one shard of latents")
    p.add_argument("--generator", type=Path, required=True, help="final phase checkpoint.pt")
    p.add_argument("--cnn", type=Path, required=True, help="CNN model.pt")
    p.add_argument("--shard", required=True, help="i-of-n (Snakemake's scatteritem)")
    p.add_argument("--n", type=int, required=True, help="total number of latents")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--truncation", type=float, help="redraw |z_j| > τ (off by default)")
    p.add_argument("--out-labels", type=Path, required=True)
    p.add_argument("--out-z", type=Path, required=True)
    p.set_defaults(func=_label_shard)

    p = sub.add_parser("gather-labels", help="gather shards into z.npy and labels.parquet")
    p.add_argument("--labels", type=Path, nargs="+", required=True, help="shard parquets")
    p.add_argument("--z", type=Path, nargs="+", required=True, help="shard z .npy, same order")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--out-z", type=Path, required=True)
    p.add_argument("--out-labels", type=Path, required=True)
    p.set_defaults(func=_gather)

    p = sub.add_parser("latent-figure", help="predicted-age distributions, generated vs real")
    p.add_argument("--labels", type=Path, required=True, help="gathered labels.parquet")
    p.add_argument("--real", type=Path, nargs="+", required=True,
                   help="CNN predictions_{split}.parquet of real images")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_figure)


def _label_shard(args) -> None:
    from latentage.latent.label import label_shard, parse_scatteritem

    shard, shards = parse_scatteritem(args.shard)
    label_shard(args.generator, args.cnn, args.out_labels, args.out_z, args.n, shard, shards,
                args.seed, args.batch_size, args.truncation)


def _gather(args) -> None:
    from latentage.latent.label import gather

    gather(args.labels, args.z, args.out_z, args.out_labels, args.n)


def _figure(args) -> None:
    from latentage.latent.figures import age_distribution_figure

    real = {p.stem.removeprefix("predictions_"): p for p in args.real}
    age_distribution_figure(args.labels, real, args.out)
    print(f"latent-figure: wrote {args.out}")
