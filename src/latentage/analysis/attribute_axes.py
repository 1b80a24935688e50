"""The attribute_axes step: orthogonal attribute axes (Pham Van et al., "Interpreting the Latent
Space of Generative Adversarial Networks using Supervised Learning").

A linear map W (d × K) from z to K standardised attributes — CNN age and the logit of the CNN's
male probability — fitted with MSE + λ‖WᵀW − I‖_F (Frobenius norm), beside unregularised OLS and
an InterFaceGAN-style age direction projected off the sex direction. Columns of W, normalised,
are editing directions. Reported as the paper's Tables II and III: the cosine between the
attribute directions per method, and an edit test — move z along one direction by a step that
OLS says changes that attribute by a set amount, and measure with the CNN how much the edited
attribute and the other one actually moved. Everything is fitted on a training part of the
latents and checked on the held-out rest (MSEs, the edit test).

What the penalty costs. WᵀW = I asks for two things: orthogonal columns and unit-length ones.
Beside OLS and the penalised fit, `fit_unit_columns` gives the best fit whose columns have unit
length but need not be orthogonal, so the held-out MSE separates the cost of the length
constraint (OLS → unit) from the cost of orthogonality (unit → orthogonal). With the mean
squared error the loss is O(1) whatever the number of latents, and the Frobenius norm of the
penalty is not differentiable where WᵀW = I: once λ exceeds the MSE's gain from relaxing the
constraint (about 0.1 to 1 for standardised targets), the penalised optimum sits exactly on it
(an exact penalty), so λ = 2 acts as a hard constraint rather than a trade-off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from latentage.analysis.lasso import split_holdout
from latentage.io import atomic_path, save_figure, write_csv, write_json
from latentage.plots import image_cell, pyplot

ATTRIBUTES = ("age", "sex")


def targets(age: np.ndarray, male_prob: np.ndarray) -> tuple[np.ndarray, dict]:
    logit = np.log(np.clip(male_prob, 1e-4, 1 - 1e-4) / np.clip(1 - male_prob, 1e-4, 1 - 1e-4))
    y = np.stack([age, logit], axis=1).astype(np.float64)
    mean, sd = y.mean(axis=0), y.std(axis=0)
    sd[sd == 0] = 1.0
    return (y - mean) / sd, {"mean": mean.tolist(), "sd": sd.tolist()}


def fit_ols(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([z, np.ones((len(z), 1))], axis=1)
    sol, *_ = np.linalg.lstsq(x, y, rcond=None)
    return sol[:-1], sol[-1]


def fit_orthogonal(z: np.ndarray, y: np.ndarray, lam: float, steps: int = 5000,
                   init: tuple[np.ndarray, np.ndarray] | None = None,
                   eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """min_W,b mean‖zW + b − y‖² + λ‖WᵀW − I‖_F, full batch, L-BFGS, from OLS.

    The norm is not differentiable where WᵀW = I — exactly where a large λ puts the optimum —
    and there L-BFGS stops wherever round-off leaves it (different BLAS thread counts gave
    MSEs 1e-3 apart). The penalty is therefore smoothed, √(‖WᵀW − I‖² + ε²) − ε with ε = 1e-4:
    one well-defined optimum, orthogonal to about ε."""
    W0, b0 = init if init is not None else fit_ols(z, y)
    zt, yt = torch.from_numpy(np.asarray(z, np.float64)), torch.from_numpy(y)
    W = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    eye = torch.eye(y.shape[1], dtype=torch.float64)
    # converge fully (not to a loose stopping point), so the result is a smooth function of
    # the labels: labels equal to 1e-6 give directions equal to about 1e-5
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-13, tolerance_change=1e-16, history_size=50)

    def closure():
        opt.zero_grad()
        gap2 = ((W.T @ W - eye) ** 2).sum()
        loss = ((zt @ W + b - yt) ** 2).mean() + lam * (torch.sqrt(gap2 + eps**2) - eps)
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach().numpy(), b.detach().numpy()


def mse(z, y, W, b) -> float:
    return float(((z @ W + b - y) ** 2).mean())


def ortho_gap(W) -> float:
    return float(np.linalg.norm(W.T @ W - np.eye(W.shape[1])))


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def fit_unit_columns(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """min mean‖zw_k + b_k − y_k‖² with ‖w_k‖ = 1 for each column k: the best fit whose
    directions have unit length (no orthogonality). w(μ) = (C + μI)⁻¹ c with μ > −λ_min(C) set
    so that ‖w(μ)‖ = 1 (a trust-region subproblem, solved on the eigenbasis of C)."""
    zc = z - z.mean(axis=0)
    lam, vecs = np.linalg.eigh(zc.T @ zc / len(z))
    W = np.zeros((z.shape[1], y.shape[1]))
    for k in range(y.shape[1]):
        beta = vecs.T @ (zc.T @ (y[:, k] - y[:, k].mean()) / len(z))

        def norm(mu, beta=beta):
            return float(np.sqrt(((beta / (lam + mu)) ** 2).sum()))

        lo, hi = -lam[0] + 1e-12, max(1.0, float(np.abs(beta).sum()))
        while norm(hi) > 1.0:
            hi *= 2.0
        for _ in range(200):  # norm(mu) falls monotonically from +∞ at lo
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if norm(mid) > 1.0 else (lo, mid)
        W[:, k] = vecs @ (beta / (lam + 0.5 * (lo + hi)))
    b = y.mean(axis=0) - z.mean(axis=0) @ W
    return W, b


def directions(z: np.ndarray, y: np.ndarray, lam: float) -> dict:
    """Unit age/sex directions per method, with the fits (W, b) where a method has one.

    projected: the OLS age direction with the OLS sex direction projected out — moving along
    it leaves the linear prediction of sex unchanged, so the atlas steers along it."""
    W_ols, b_ols = fit_ols(z, y)
    W_orth, b_orth = fit_orthogonal(z, y, lam, init=(W_ols, b_ols))
    age_o, sex_o = unit(W_ols[:, 0]), unit(W_ols[:, 1])
    projected = unit(age_o - (age_o @ sex_o) * sex_o)
    methods = {
        "ols": {"age": age_o, "sex": sex_o, "W": W_ols, "b": b_ols},
        "orthogonal": {"age": unit(W_orth[:, 0]), "sex": unit(W_orth[:, 1]), "W": W_orth,
                       "b": b_orth},
        "projected": {"age": projected, "sex": sex_o, "W": None, "b": None},
    }
    for m in methods.values():
        m["cosine"] = float(m["age"] @ m["sex"])
    return methods


def fits(z_train, y_train, z_test, y_test, methods: dict) -> dict:
    """MSE on training and held-out latents and ‖WᵀW − I‖ of OLS, of the best unit-length
    columns, and of the orthogonality-penalised fit."""
    W_unit, b_unit = fit_unit_columns(z_train, y_train)
    out = {}
    for name, (W, b) in (("ols", (methods["ols"]["W"], methods["ols"]["b"])),
                         ("unit_columns", (W_unit, b_unit)),
                         ("orthogonal", (methods["orthogonal"]["W"], methods["orthogonal"]["b"]))):
        out[name] = {"mse_train": mse(z_train, y_train, W, b),
                     "mse_holdout": mse(z_test, y_test, W, b) if len(z_test) else None,
                     "ortho_gap": ortho_gap(W), "column_norms": np.linalg.norm(W, axis=0).tolist()}
    return out


def edit_test(z0: np.ndarray, methods: dict, W_ols: np.ndarray, scale: dict, predict,
              age_months: float, sex_logit: float) -> list[dict]:
    """For each method and attribute: move every z0 along the unit direction by the step that
    OLS predicts changes the attribute by `age_months` (age) or `sex_logit` (sex); measure the
    CNN's change in both attributes (mean over latents)."""
    base_age, base_male = predict(z0)
    rows = []
    want = {"age": age_months / scale["sd"][0], "sex": sex_logit / scale["sd"][1]}
    for name, m in methods.items():
        for k, attr in enumerate(ATTRIBUTES):
            u = m[attr]
            slope = float(W_ols[:, k] @ u)  # standardised attribute per unit step (OLS)
            if abs(slope) < 1e-9:
                continue
            step = want[attr] / slope
            age1, male1 = predict((z0 + step * u[None]).astype(np.float32))
            rows.append({"method": name, "edited": attr, "step": step,
                         "delta_age_months": float((age1 - base_age).mean()),
                         "abs_delta_age_months": float(np.abs(age1 - base_age).mean()),
                         "delta_male_prob": float((male1 - base_male).mean()),
                         "abs_delta_male_prob": float(np.abs(male1 - base_male).mean())})
    return rows


def attribute_axes(*, generator, cnn, z, labels, json_out, npz, table, figure, settings,
                   seed: int, batch_size: int = 64, log=print) -> dict:
    """The attribute_axes step for AxesSettings `settings`."""
    from latentage.analysis.models import Models, read_pool

    zs, age, male = read_pool(z, labels)
    y, scale = targets(age, male)
    train, test = split_holdout(len(zs), settings.holdout, seed, stream="axes")
    z64 = zs.astype(np.float64)
    methods = directions(z64[train], y[train], settings.ortho_lambda)
    fit = fits(z64[train], y[train], z64[test], y[test], methods)
    models = Models.load(generator, cnn, batch_size)
    z0 = zs[test[:settings.edit_n]]  # latents the axes were not fitted on
    rows = edit_test(z0, methods, methods["ols"]["W"], scale, models.predict,
                     settings.edit_age_months, settings.edit_sex_logit)
    frame = pd.DataFrame(rows)
    write_csv(table, frame)
    with atomic_path(npz, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{f"{m}_{a}": methods[m][a] for m in methods for a in ("age", "sex")},
                     ols_W=methods["ols"]["W"], orthogonal_W=methods["orthogonal"]["W"],
                     target_mean=np.array(scale["mean"]), target_sd=np.array(scale["sd"]))
    summary = {"ortho_lambda": settings.ortho_lambda,
               "attributes": ["age (months)", "sex (logit of male probability)"],
               "target_scale": scale, "n": len(zs), "n_fit": len(train), "n_holdout": len(test),
               "edit_latents": len(z0), "atlas_direction": "projected (age ⊥ OLS sex)",
               "edit_targets": {"age_months": settings.edit_age_months,
                                "sex_logit": settings.edit_sex_logit},
               "cosine_age_sex": {m: methods[m]["cosine"] for m in methods},
               "fit": fit, "edits": rows}
    write_json(json_out, summary)
    edit_figure(models, z0[:3], methods, scale, settings.edit_age_months, figure)
    _log_summary(summary, frame, settings, log)
    return summary


def _log_summary(summary, frame, settings, log) -> None:
    fit = summary["fit"]
    age_rows = frame[frame.edited == "age"].set_index("method")
    log("attribute-axes: cos(age, sex) " + ", ".join(
        f"{m} {c:+.3f}" for m, c in summary["cosine_age_sex"].items())
        + "; held-out MSE OLS {:.4f}, unit-length columns {:.4f}, orthogonal {:.4f} (‖WᵀW − I‖ "
          "{:.3f} → {:.2g}); age edit of +{:g} months: ".format(
              fit["ols"]["mse_holdout"], fit["unit_columns"]["mse_holdout"],
              fit["orthogonal"]["mse_holdout"], fit["ols"]["ortho_gap"],
              fit["orthogonal"]["ortho_gap"], settings.edit_age_months)
        + ", ".join(f"{m} Δage {r.delta_age_months:+.1f} / |Δp(male)| {r.abs_delta_male_prob:.3f}"
                    for m, r in age_rows.iterrows()))


def edit_figure(models, z0, methods, scale, edit_age_months, out_png) -> None:
    """Age edits of a few held-out latents along each method's age direction."""
    plt = pyplot()

    from latentage.gan.images import to_uint8

    steps = np.linspace(-1.5, 1.5, 7)
    names = list(methods)
    fig, axes = plt.subplots(len(names) * len(z0), len(steps),
                             figsize=(1.55 * len(steps), 1.8 * len(names) * len(z0) + 0.6),
                             squeeze=False)
    W = methods["ols"]["W"]
    for mi, name in enumerate(names):
        u = methods[name]["age"]
        per_unit = float(W[:, 0] @ u) * scale["sd"][0]  # months per unit step (OLS)
        for zi, z in enumerate(z0):
            zs = np.stack([z + s * edit_age_months / per_unit * u for s in steps]).astype(np.float32)
            rendered = models.render(zs)
            age, male = models.label(rendered)
            imgs = to_uint8(rendered)
            for c in range(len(steps)):
                ax = axes[mi * len(z0) + zi][c]
                image_cell(ax, imgs[c], f"{age[c] / 12:.1f} y, p♂ {male[c]:.2f}")
                if c == 0:
                    ax.set_ylabel(name, fontsize=8)
    fig.suptitle(f"Age edits along each method's age direction (columns: "
                 f"{steps[0] * edit_age_months:+.0f} … {steps[-1] * edit_age_months:+.0f} months by "
                 f"OLS; labels: CNN age and male probability)", fontsize=9)
    fig.tight_layout()
    save_figure(out_png, fig)
    plt.close(fig)
