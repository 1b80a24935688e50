"""The fan-out's steps: label-shard, gather-labels, latent-age-distribution."""

from __future__ import annotations

from pathlib import Path

from latentage.config import add_settings_argument


def add_parsers(sub) -> None:
    p = sub.add_parser("label-shard", help="generate and CNN-label one shard of latents")
    p.add_argument("--generator", type=Path, required=True, help="final phase checkpoint.pt")
    p.add_argument("--cnn", type=Path, required=True, help="CNN model.pt")
    p.add_argument("--shard", required=True, help="i-of-n (Snakemake's scatteritem)")
    p.add_argument("--labels", type=Path, required=True, help="output shard labels .parquet")
    p.add_argument("--z", type=Path, required=True, help="output shard latents .npy")
    add_settings_argument(p, "latent")
    p.add_argument("--seed", type=int, required=True)
    p.set_defaults(func=_label_shard)

    p = sub.add_parser("gather-labels", help="gather shards into z.npy and labels.parquet")
    p.add_argument("--shard-labels", type=Path, nargs="+", required=True, help="shard parquets")
    p.add_argument("--shard-z", type=Path, nargs="+", required=True,
                   help="shard latents .npy, in the same order")
    p.add_argument("--n", type=int, required=True, help="latents in all (latent.n)")
    p.add_argument("--z", type=Path, required=True, help="output z.npy")
    p.add_argument("--labels", type=Path, required=True, help="output labels.parquet")
    p.set_defaults(func=_gather_labels)

    p = sub.add_parser("latent-age-distribution",
                       help="predicted-age distributions, generated vs real")
    p.add_argument("--labels", type=Path, required=True, help="gathered labels.parquet")
    p.add_argument("--train-predictions", type=Path, required=True,
                   help="the CNN's predictions of the real training images")
    p.add_argument("--test-predictions", type=Path, required=True,
                   help="the CNN's predictions of the real test images")
    p.add_argument("--figure", type=Path, required=True, help="output PNG")
    p.set_defaults(func=_latent_age_distribution)


def _label_shard(args) -> None:
    from latentage.config import from_json
    from latentage.latent.label_shard import label_shard

    label_shard(generator=args.generator, cnn=args.cnn, labels=args.labels, z=args.z,
                shard=args.shard, settings=from_json("latent", *args.settings), seed=args.seed)


def _gather_labels(args) -> None:
    from latentage.latent.gather_labels import gather_labels

    gather_labels(shard_labels=args.shard_labels, shard_z=args.shard_z, z=args.z,
                  labels=args.labels, n=args.n)


def _latent_age_distribution(args) -> None:
    from latentage.latent.latent_age_distribution import latent_age_distribution

    latent_age_distribution(labels=args.labels,
                            real_predictions={"train": args.train_predictions,
                                              "test": args.test_predictions},
                            figure=args.figure)
    print(f"latent-age-distribution: wrote {args.figure}")
