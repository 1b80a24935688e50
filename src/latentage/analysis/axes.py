"""Orthogonal attribute axes (Pham Van et al., "Interpreting the Latent Space of Generative
Adversarial Networks using Supervised Learning").

A linear map W (d × K) from z to K standardised attributes — CNN age and the logit of the CNN's
male probability — fitted with MSE + λ‖WᵀW − I‖_F (Frobenius norm), beside unregularised OLS and
an InterFaceGAN-style age direction projected off the sex direction. Columns of W, normalised,
are editing directions. Reported as the paper's Tables II and III: the cosine between the
attribute directions per method, and an edit test — move z along one direction by a step that
OLS says changes that attribute by a set amount, and measure with the CNN how much the edited
attribute and the other one actually moved.
"""

from __future__ import annotations

import numpy as np
import torch

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


def directions(z: np.ndarray, y: np.ndarray, lam: float) -> dict:
    """Unit age/sex directions per method, with the fits' MSE and ‖WᵀW − I‖."""
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
        if m["W"] is not None:
            m["mse"] = mse(z, y, m["W"], m["b"])
            m["ortho_gap"] = ortho_gap(m["W"])
    return methods


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
