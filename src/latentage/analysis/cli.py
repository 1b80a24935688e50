"""The analysis steps: lasso, age-walk, attribute-axes, atlas, conditional-comparison,
summary."""

from __future__ import annotations

from pathlib import Path

from latentage.config import add_settings_argument


def _pool_args(p, section: str, models: bool = True) -> None:
    if models:
        p.add_argument("--generator", type=Path, required=True, help="final phase checkpoint.pt")
        p.add_argument("--cnn", type=Path, required=True, help="CNN model.pt")
    p.add_argument("--z", type=Path, required=True, help="results/latent/z.npy")
    p.add_argument("--labels", type=Path, required=True, help="results/latent/labels.parquet")
    add_settings_argument(p, section)
    p.add_argument("--seed", type=int, required=True)
    if models:
        p.add_argument("--batch-size", type=int, default=64,
                       help="images rendered and labelled at once (analysis.batch_size)")


def add_parsers(sub) -> None:
    p = sub.add_parser("lasso", help="LASSO (K-fold CV) of CNN age on z; Fig 3a")
    _pool_args(p, "analysis.lasso", models=False)
    p.add_argument("--jobs", type=int, default=1, help="CV folds in parallel")
    p.add_argument("--json", type=Path, required=True, help="output lasso.json")
    p.add_argument("--coef", type=Path, required=True, help="output lasso_coef.npy")
    p.add_argument("--figure", type=Path, required=True, help="output Fig 3a PNG")
    p.set_defaults(func=_lasso)

    p = sub.add_parser("age-walk", help="the ageing-hand walk: frames, MP4/GIF, Fig 3b")
    _pool_args(p, "analysis.age_walk")
    p.add_argument("--lasso-json", type=Path, required=True)
    p.add_argument("--lasso-coef", type=Path, required=True)
    for name, what in (("chain-video", "MP4 of the nearest-latent chain"),
                       ("chain-gif", "GIF of the nearest-latent chain"),
                       ("lasso-video", "MP4 of the walk along the LASSO direction"),
                       ("summary", "walk.json"), ("frames", "frames.parquet"),
                       ("frames-dir", "folder of one PNG per frame"),
                       ("chain-latents", "chain latents .npy"),
                       ("lasso-latents", "LASSO-walk latents .npy"), ("figure", "Fig 3b PNG")):
        p.add_argument(f"--{name}", type=Path, required=True, help=f"output {what}")
    p.set_defaults(func=_walk)

    p = sub.add_parser("attribute-axes", help="orthogonal age/sex directions and edit tests")
    _pool_args(p, "analysis.axes")
    p.add_argument("--json", type=Path, required=True, help="output axes.json")
    p.add_argument("--npz", type=Path, required=True, help="output axes.npz")
    p.add_argument("--table", type=Path, required=True, help="output axes_edits.csv")
    p.add_argument("--figure", type=Path, required=True, help="output PNG")
    p.set_defaults(func=_axes)

    p = sub.add_parser("atlas", help="hands of requested ages and sex, steered along age")
    _pool_args(p, "analysis.atlas")
    p.add_argument("--axes", type=Path, required=True, help="attribute_axes' axes.npz")
    p.add_argument("--table", type=Path, required=True, help="output atlas.csv")
    p.add_argument("--summary", type=Path, required=True, help="output atlas.json")
    p.add_argument("--sheets", type=Path, required=True,
                   help="output folder: one sheet per requested age, atlas_{age}y.png")
    p.add_argument("--figure", type=Path, required=True, help="output PNG")
    p.set_defaults(func=_atlas)

    p = sub.add_parser("conditional-comparison",
                       help="conditional PGGAN vs latent steering for requested ages and sexes")
    _pool_args(p, "analysis.conditional")
    p.add_argument("--conditional", type=Path, required=True,
                   help="the conditional GAN's final phase checkpoint.pt")
    p.add_argument("--axes", type=Path, required=True, help="attribute_axes' axes.npz")
    p.add_argument("--real-stats", type=Path, required=True,
                   help="real_metrics' real_stats.npz (domain FD reference)")
    p.add_argument("--table", type=Path, required=True, help="output: every hand (.parquet)")
    p.add_argument("--summary", type=Path, required=True, help="output comparison.json")
    p.add_argument("--figure", type=Path, required=True, help="output figure PNG")
    p.add_argument("--samples", type=Path, required=True, help="output sample sheet PNG")
    p.set_defaults(func=_conditional)

    p = sub.add_parser("summary", help="the study's four claims with this run's numbers")
    p.add_argument("--cnn-eval", type=Path, required=True, help="results/cnn/eval.json")
    p.add_argument("--labels", type=Path, required=True, help="results/latent/labels.parquet")
    p.add_argument("--lasso", type=Path, required=True, help="results/analysis/lasso.json")
    p.add_argument("--walk", type=Path, required=True, help="age_walk/walk.json")
    p.add_argument("--atlas", type=Path, required=True, help="atlas/atlas.json")
    p.add_argument("--agreement", type=Path, help="results/cnn/agreement.json (optional)")
    p.add_argument("--json", type=Path, required=True, help="output summary.json")
    p.add_argument("--md", type=Path, required=True, help="output summary.md")
    p.set_defaults(func=_summary)


def _lasso(args) -> None:
    from latentage.analysis.lasso import lasso
    from latentage.config import from_json

    lasso(z=args.z, labels=args.labels, json_out=args.json, coef=args.coef, figure=args.figure,
          settings=from_json("analysis.lasso", *args.settings), seed=args.seed, jobs=args.jobs)


def _walk(args) -> None:
    from latentage.analysis.age_walk import WalkOutputs, age_walk
    from latentage.config import from_json

    outputs = WalkOutputs(args.chain_video, args.chain_gif, args.lasso_video, args.summary,
                          args.frames, args.frames_dir, args.chain_latents, args.lasso_latents,
                          args.figure)
    age_walk(generator=args.generator, cnn=args.cnn, z=args.z, labels=args.labels,
             lasso_json=args.lasso_json, lasso_coef=args.lasso_coef, outputs=outputs,
             settings=from_json("analysis.age_walk", *args.settings), seed=args.seed,
             batch_size=args.batch_size)


def _axes(args) -> None:
    from latentage.analysis.attribute_axes import attribute_axes
    from latentage.config import from_json

    attribute_axes(generator=args.generator, cnn=args.cnn, z=args.z, labels=args.labels,
                   json_out=args.json, npz=args.npz, table=args.table, figure=args.figure,
                   settings=from_json("analysis.axes", *args.settings), seed=args.seed,
                   batch_size=args.batch_size)


def _atlas(args) -> None:
    from latentage.analysis.atlas import atlas
    from latentage.config import from_json

    atlas(generator=args.generator, cnn=args.cnn, z=args.z, labels=args.labels, axes=args.axes,
          table=args.table, summary=args.summary, sheets=args.sheets, figure=args.figure,
          settings=from_json("analysis.atlas", *args.settings), seed=args.seed,
          batch_size=args.batch_size)


def _conditional(args) -> None:
    from latentage.analysis.conditional_comparison import conditional_comparison
    from latentage.config import from_json

    conditional_comparison(
        generator=args.generator, conditional=args.conditional, cnn=args.cnn, z=args.z,
        labels=args.labels, axes=args.axes, real_stats=args.real_stats, table=args.table,
        summary=args.summary, figure=args.figure, samples=args.samples,
        settings=from_json("analysis.conditional", *args.settings), seed=args.seed,
        batch_size=args.batch_size)


def _summary(args) -> None:
    from latentage.analysis.summary import summary

    summary(cnn_eval=args.cnn_eval, labels=args.labels, lasso=args.lasso, walk=args.walk,
            atlas=args.atlas, agreement=args.agreement, json_out=args.json, md_out=args.md)
