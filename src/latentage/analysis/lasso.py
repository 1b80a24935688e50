"""The lasso step. Is age linearly embedded in z? CNN-predicted age regressed on z with a LASSO whose penalty
is chosen by K-fold cross-validation (scikit-learn's LassoCV), on a training part, checked on a
held-out part — reported as the study did (mean ± sd of |error| in months) with R², the number
of non-zero coefficients, and OLS and ridge beside it."""

from __future__ import annotations

import time

import numpy as np

from latentage import seeds
from latentage.io import atomic_path, save_figure, write_json
from latentage.plots import pyplot


def _errors(y, pred) -> dict:
    err = np.abs(y - pred)
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"n": len(y), "abs_error_mean": float(err.mean()), "abs_error_sd": float(err.std()),
            "median_abs_error": float(np.median(err)), "r2": 1.0 - ss_res / ss_tot}


def split_holdout(n: int, holdout: float, seed: int, stream: str = "lasso") -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices, sorted; the held-out fraction drawn from `stream`."""
    perm = seeds.rng(seed, stream, 0).permutation(n)
    k = int(round(n * holdout))
    return np.sort(perm[k:]), np.sort(perm[:k])


def fit_lasso(z: np.ndarray, age: np.ndarray, folds: int = 10, holdout: float = 0.2,
              seed: int = 0, n_alphas: int = 100, max_iter: int = 5000, jobs: int = 1) -> dict:
    from sklearn.linear_model import LassoCV, LinearRegression, Ridge, RidgeCV
    from sklearn.model_selection import KFold

    train, test = split_holdout(len(z), holdout, seed)
    x = np.asarray(z, np.float64)
    y = np.asarray(age, np.float64)
    t0 = time.perf_counter()
    state = seeds.integer(seed, "lasso", 1) % 2**32
    cv = KFold(folds, shuffle=True, random_state=state)
    lasso = LassoCV(alphas=n_alphas, cv=cv, precompute=True, max_iter=max_iter,
                    n_jobs=jobs, random_state=state)
    lasso.fit(x[train], y[train])
    lasso_seconds = time.perf_counter() - t0
    ols = LinearRegression().fit(x[train], y[train])
    # ridge: α by RidgeCV's efficient leave-one-out on up to 10,000 training latents (on all
    # 160k it takes minutes), then one Cholesky fit on the whole training part
    sub = train[seeds.rng(seed, "lasso", 2).permutation(len(train))[:10000]]
    ridge_alpha = float(RidgeCV(alphas=np.logspace(-3, 4, 30)).fit(x[sub], y[sub]).alpha_)
    ridge = Ridge(alpha=ridge_alpha, solver="cholesky").fit(x[train], y[train])
    out = {"n": len(z), "dim": z.shape[1], "folds": folds, "holdout": holdout,
           "alpha": float(lasso.alpha_), "nonzero": int((lasso.coef_ != 0).sum()),
           "intercept": float(lasso.intercept_), "seconds": round(lasso_seconds, 2)}
    for name, model in (("lasso", lasso), ("ols", ols), ("ridge", ridge)):
        out[name] = {"train": _errors(y[train], model.predict(x[train]))}
        if len(test):
            out[name]["holdout"] = _errors(y[test], model.predict(x[test]))
    out["ridge"]["alpha"] = ridge_alpha
    out["cv_mse_path"] = {"alphas": lasso.alphas_.tolist(),
                          "mse_mean": lasso.mse_path_.mean(axis=1).tolist()}
    return {"summary": out, "coef": lasso.coef_.astype(np.float64), "train": train,
            "test": test, "pred": lasso.predict(x)}


def lasso(*, z, labels, json_out, coef, figure, settings, seed: int, jobs: int = 1,
          log=print) -> dict:
    """The lasso step for LassoSettings `settings` on the labelled latents (`z`, `labels`)."""
    from latentage.analysis.models import read_pool

    zs, age, _ = read_pool(z, labels)
    fit = fit_lasso(zs, age, settings.folds, settings.holdout, seed, settings.n_alphas,
                    settings.max_iter, jobs)
    s = fit["summary"]
    write_json(json_out, s)
    with atomic_path(coef, suffix=".npy") as tmp:
        np.save(tmp, fit["coef"])
    lasso_figure(age, fit["pred"], fit["train"], fit["test"], s, figure)
    folds = settings.folds
    tr, ho = s["lasso"]["train"], s["lasso"].get("holdout", {})
    log(f"lasso: {s['n']} latents × {s['dim']}, α {s['alpha']:.4g} by {folds}-fold CV, "
        f"{s['nonzero']} non-zero coefficients; |error| train {tr['abs_error_mean']:.1f} ± "
        f"{tr['abs_error_sd']:.1f} months (R² {tr['r2']:.3f}), held out "
        f"{ho.get('abs_error_mean', float('nan')):.1f} ± {ho.get('abs_error_sd', float('nan')):.1f}"
        f" (R² {ho.get('r2', float('nan')):.3f}); fit {s['seconds']} s")
    return s


def lasso_figure(age, pred, train, test, summary, out_png) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    lo, hi = float(min(age.min(), pred.min())), float(max(age.max(), pred.max()))
    for ax, idx, name in ((axes[0], train, "train"), (axes[1], test, "holdout")):
        if not len(idx):
            continue
        x, y = age[idx] / 12, pred[idx] / 12
        if len(idx) > 5000:
            hb = ax.hexbin(x, y, gridsize=60, bins="log", cmap="Greys", mincnt=1)
            fig.colorbar(hb, ax=ax, label="latents per cell (log)")
        else:
            ax.scatter(x, y, s=6, alpha=0.5, color="k", lw=0)
        ax.plot([lo / 12, hi / 12], [lo / 12, hi / 12], "r--", lw=1, label="identity")
        e = summary["lasso"][name]
        label = "training" if name == "train" else "held out"
        ax.set_title(f"{label} (n = {e['n']}): |error| {e['abs_error_mean']:.1f} ± "
                     f"{e['abs_error_sd']:.1f} months, R² {e['r2']:.2f}", fontsize=10)
        ax.set_xlabel("CNN-predicted bone age of the generated hand (years)")
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("LASSO-predicted age from z (years)")
    fig.suptitle(f"How much of the CNN's age is linear in z: LASSO on z "
                 f"({summary['nonzero']} of {summary['dim']} coefficients non-zero, "
                 f"α by {summary['folds']}-fold CV)", fontsize=11)
    fig.tight_layout()
    save_figure(out_png, fig)
    plt.close(fig)
