"""The analysis CLI steps: lasso, age-walk, attribute-axes, atlas."""

from __future__ import annotations

from pathlib import Path


def _pool_args(p, models: bool = True) -> None:
    if models:
        p.add_argument("--generator", type=Path, required=True, help="final phase checkpoint.pt")
        p.add_argument("--cnn", type=Path, required=True, help="CNN model.pt")
    p.add_argument("--z", type=Path, required=True, help="results/latent/z.npy")
    p.add_argument("--labels", type=Path, required=True, help="results/latent/labels.parquet")
    p.add_argument("--seed", type=int, required=True)
    if models:
        p.add_argument("--batch-size", type=int, default=64)


def add_parsers(sub) -> None:
    p = sub.add_parser("lasso", help="LASSO (K-fold CV) of CNN age on z; Fig 3a")
    _pool_args(p, models=False)
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--holdout", type=float, default=0.2)
    p.add_argument("--n-alphas", type=int, default=100)
    p.add_argument("--max-iter", type=int, default=5000)
    p.add_argument("--jobs", type=int, default=1, help="CV folds in parallel")
    p.add_argument("--out-json", type=Path, required=True)
    p.add_argument("--out-coef", type=Path, required=True)
    p.add_argument("--figure", type=Path, required=True)
    p.set_defaults(func=_lasso)

    p = sub.add_parser("age-walk", help="the ageing-hand walk: frames, MP4/GIF, Fig 3b")
    _pool_args(p)
    p.add_argument("--lasso-json", type=Path, required=True)
    p.add_argument("--lasso-coef", type=Path, required=True)
    p.add_argument("--start-age", type=float, nargs=2, required=True, metavar=("LO", "HI"),
                   help="months")
    p.add_argument("--end-age", type=float, required=True)
    p.add_argument("--step", type=float, required=True)
    p.add_argument("--tolerance", type=float, required=True)
    p.add_argument("--frames", type=int, required=True, help="frames per chain segment")
    p.add_argument("--interpolation", choices=["linear", "slerp"], default="slerp")
    p.add_argument("--loess-frac", type=float, default=0.3)
    p.add_argument("--fps", type=int, default=12)
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--figure", type=Path, required=True)
    p.set_defaults(func=_walk)

    p = sub.add_parser("attribute-axes", help="orthogonal age/sex directions and edit tests")
    _pool_args(p)
    p.add_argument("--lam", type=float, default=2.0, help="λ of ‖WᵀW − I‖")
    p.add_argument("--edit-n", type=int, default=256)
    p.add_argument("--edit-age-months", type=float, default=24.0)
    p.add_argument("--edit-sex-logit", type=float, default=2.0)
    p.add_argument("--out-json", type=Path, required=True)
    p.add_argument("--out-npz", type=Path, required=True)
    p.add_argument("--out-table", type=Path, required=True)
    p.add_argument("--figure", type=Path, required=True)
    p.set_defaults(func=_axes)

    p = sub.add_parser("atlas", help="hands of requested ages and sex, steered along age")
    _pool_args(p)
    p.add_argument("--axes", type=Path, required=True, help="attribute_axes' axes.npz")
    p.add_argument("--ages", type=float, nargs="+", required=True, help="years")
    p.add_argument("--sexes", nargs="+", choices=["female", "male"], default=["female", "male"])
    p.add_argument("--per-age", type=int, default=4)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--tolerance", type=float, default=3.0, help="months")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--figure", type=Path, required=True)
    p.set_defaults(func=_atlas)


def _lasso(args) -> None:
    from latentage.analysis.lasso import lasso_step

    lasso_step(args.z, args.labels, args.out_json, args.out_coef, args.figure, args.folds,
               args.holdout, args.seed, args.n_alphas, args.max_iter, args.jobs)


def _walk(args) -> None:
    from latentage.analysis.walk import WalkSettings
    from latentage.analysis.walk_step import age_walk_step

    s = WalkSettings(tuple(args.start_age), args.end_age, args.step, args.tolerance, args.frames,
                     args.interpolation, args.loess_frac, args.fps)
    age_walk_step(args.generator, args.cnn, args.z, args.labels, args.lasso_json,
                  args.lasso_coef, args.out_dir, args.figure, s, args.seed, args.batch_size)


def _axes(args) -> None:
    from latentage.analysis.axes_step import attribute_axes_step

    attribute_axes_step(args.generator, args.cnn, args.z, args.labels, args.out_json,
                        args.out_npz, args.out_table, args.figure, args.lam, args.edit_n,
                        args.edit_age_months, args.edit_sex_logit, args.seed, args.batch_size)


def _atlas(args) -> None:
    from latentage.analysis.atlas_step import atlas_step

    atlas_step(args.generator, args.cnn, args.z, args.labels, args.axes, args.out_dir,
               args.figure, args.ages, args.sexes, args.per_age, args.steps, args.tolerance,
               args.seed, args.batch_size)
