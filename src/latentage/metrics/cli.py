"""The metric CLI steps: real-metrics, snapshot-metrics, gather-metrics, metrics-figures,
nearest-neighbours."""

from __future__ import annotations

from pathlib import Path


def add_parsers(sub) -> None:
    p = sub.add_parser("real-metrics", help="real-image statistics and real-vs-real values")
    p.add_argument("--reals", type=Path, required=True, help="results/data/train/res{R}.npy")
    p.add_argument("--cnn", type=Path, required=True, help="CNN model.pt (domain FD)")
    p.add_argument("--settings", required=True, help="the metrics config section as JSON")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out-json", type=Path, required=True)
    p.add_argument("--out-stats", type=Path, required=True, help="real statistics .npz")
    p.set_defaults(func=_real)

    p = sub.add_parser("snapshot-metrics", help="FID, IS, MS-SSIM, SWD, domain FD of a snapshot")
    p.add_argument("--snapshot", type=Path, required=True, help="G_ema snapshot .pt")
    p.add_argument("--reals", type=Path, required=True)
    p.add_argument("--real-stats", type=Path, required=True, help="real_metrics' .npz")
    p.add_argument("--cnn", type=Path, required=True)
    p.add_argument("--settings", required=True, help="the metrics config section as JSON")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_snapshot)

    p = sub.add_parser("gather-metrics", help="snapshot JSONs → metrics.tsv")
    p.add_argument("--snapshots", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=_gather)

    p = sub.add_parser("metrics-figures", help="Fig 2a and Fig 2b")
    p.add_argument("--table", type=Path, required=True, help="metrics.tsv")
    p.add_argument("--real", type=Path, required=True, help="real.json")
    p.add_argument("--out-a", type=Path, required=True)
    p.add_argument("--out-b", type=Path, required=True)
    p.set_defaults(func=_figures)

    p = sub.add_parser("nearest-neighbours", help="nearest real images of generated ones")
    p.add_argument("--generator", type=Path, required=True)
    p.add_argument("--cnn", type=Path, required=True)
    p.add_argument("--reals", type=Path, required=True, help="train/res{R}.npy at --res")
    p.add_argument("--real-features", type=Path, required=True, help="features_train.npy")
    p.add_argument("--real-labels", type=Path, required=True, help="train/labels.parquet")
    p.add_argument("--queries", type=int, default=8)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--res", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out-table", type=Path, required=True)
    p.add_argument("--out-pixel", type=Path, required=True)
    p.add_argument("--out-features", type=Path, required=True)
    p.set_defaults(func=_neighbours)


def _real(args) -> None:
    from latentage.metrics.run import MetricSettings, real_metrics

    real_metrics(args.reals, args.cnn, args.out_json, args.out_stats,
                 MetricSettings.from_json(args.settings), args.seed)


def _snapshot(args) -> None:
    from latentage.metrics.run import MetricSettings, snapshot_metrics

    snapshot_metrics(args.snapshot, args.reals, args.real_stats, args.cnn, args.out,
                     MetricSettings.from_json(args.settings), args.seed)


def _gather(args) -> None:
    from latentage.metrics.run import gather_metrics

    gather_metrics(args.snapshots, args.out)


def _figures(args) -> None:
    from latentage.metrics.figures import metrics_figures

    metrics_figures(args.table, args.real, args.out_a, args.out_b)
    print(f"metrics-figures: wrote {args.out_a} and {args.out_b}")


def _neighbours(args) -> None:
    from latentage.metrics.neighbours import nearest_neighbours

    nearest_neighbours(args.generator, args.cnn, args.reals, args.real_features, args.real_labels,
                       args.out_table, args.out_pixel, args.out_features, args.queries, args.k,
                       args.res, args.seed)
