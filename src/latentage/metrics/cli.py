"""The metric steps: real-metrics, snapshot-metrics, gather-metrics, metrics-figures,
nearest-neighbours."""

from __future__ import annotations

from pathlib import Path

from latentage.config import add_settings_argument


def add_parsers(sub) -> None:
    p = sub.add_parser("real-metrics", help="real-image references and real-vs-real floors")
    p.add_argument("--reals", type=Path, required=True, help="results/data/train/res{R}.npy")
    p.add_argument("--cnn", type=Path, required=True, help="CNN model.pt (domain FD)")
    p.add_argument("--json", type=Path, required=True, help="output real.json")
    p.add_argument("--stats", type=Path, required=True, help="output real_stats.npz")
    add_settings_argument(p, "metrics")
    p.add_argument("--seed", type=int, required=True)
    p.set_defaults(func=_real)

    p = sub.add_parser("snapshot-metrics", help="FID, IS, MS-SSIM, SWD, domain FD of a snapshot")
    p.add_argument("--snapshot", type=Path, required=True, help="G_ema snapshot .pt")
    p.add_argument("--real-stats", type=Path, required=True, help="real_metrics' .npz")
    p.add_argument("--cnn", type=Path, required=True)
    p.add_argument("--json", type=Path, required=True, help="output {kimg}.json")
    add_settings_argument(p, "metrics")
    p.add_argument("--seed", type=int, required=True)
    p.set_defaults(func=_snapshot)

    p = sub.add_parser("gather-metrics", help="snapshot JSONs → metrics.tsv")
    p.add_argument("--snapshots", type=Path, nargs="+", required=True)
    p.add_argument("--table", type=Path, required=True, help="output metrics.tsv")
    p.set_defaults(func=_gather)

    p = sub.add_parser("metrics-figures", help="Fig 2a and Fig 2b")
    p.add_argument("--table", type=Path, required=True, help="metrics.tsv")
    p.add_argument("--real", type=Path, required=True, help="real.json")
    p.add_argument("--fig2a", type=Path, required=True, help="output PNG")
    p.add_argument("--fig2b", type=Path, required=True, help="output PNG")
    p.set_defaults(func=_figures)

    p = sub.add_parser("nearest-neighbours", help="nearest real images of generated ones")
    p.add_argument("--generator", type=Path, required=True)
    p.add_argument("--cnn", type=Path, required=True)
    p.add_argument("--pixel-reals", type=Path, required=True,
                   help="train/res{R}.npy at metrics.nearest_neighbours.res")
    p.add_argument("--feature-reals", type=Path, required=True,
                   help="train/res{R}.npy at the generator's resolution")
    p.add_argument("--real-labels", type=Path, required=True, help="train/labels.parquet")
    p.add_argument("--table", type=Path, required=True, help="output .parquet")
    p.add_argument("--pixel-figure", type=Path, required=True, help="output PNG")
    p.add_argument("--feature-figure", type=Path, required=True, help="output PNG")
    add_settings_argument(p, "metrics.nearest_neighbours")
    p.add_argument("--seed", type=int, required=True)
    p.set_defaults(func=_neighbours)


def _real(args) -> None:
    from latentage.config import from_json
    from latentage.metrics.real_metrics import real_metrics

    real_metrics(reals=args.reals, cnn=args.cnn, json_out=args.json, stats_out=args.stats,
                 settings=from_json("metrics", *args.settings), seed=args.seed)


def _snapshot(args) -> None:
    from latentage.config import from_json
    from latentage.metrics.snapshot_metrics import snapshot_metrics

    snapshot_metrics(snapshot=args.snapshot, real_stats=args.real_stats, cnn=args.cnn,
                     json_out=args.json, settings=from_json("metrics", *args.settings),
                     seed=args.seed)


def _gather(args) -> None:
    from latentage.metrics.gather_metrics import gather_metrics

    gather_metrics(snapshots=args.snapshots, table=args.table)


def _figures(args) -> None:
    from latentage.metrics.metrics_figures import metrics_figures

    metrics_figures(table=args.table, real=args.real, fig2a=args.fig2a, fig2b=args.fig2b)
    print(f"metrics-figures: wrote {args.fig2a} and {args.fig2b}")


def _neighbours(args) -> None:
    from latentage.config import from_json
    from latentage.metrics.nearest_neighbours import nearest_neighbours

    settings = from_json("metrics.nearest_neighbours", *args.settings)
    if settings.res is None:
        import numpy as np

        settings = type(settings)(settings.queries, settings.k,
                                  int(np.load(args.pixel_reals, mmap_mode="r").shape[1]))
    nearest_neighbours(generator=args.generator, cnn=args.cnn, pixel_reals=args.pixel_reals,
                       feature_reals=args.feature_reals, real_labels=args.real_labels,
                       table=args.table, pixel_figure=args.pixel_figure,
                       feature_figure=args.feature_figure, settings=settings, seed=args.seed)
