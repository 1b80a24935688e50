"""The study's age walk (Fig 3b and the "ageing hand" video).

Chain: start from a latent whose hand the CNN puts in the start range (e.g. 3–4 years); then
repeatedly take the nearest latent (L2 in z) of the labelled pool whose predicted age is about
`step` older, until the end age. Interpolate between consecutive chain points (linear or slerp,
`frames` each), render every frame with G_ema, let the CNN age every frame, fit a LOESS trend.
A second walk moves straight along the LASSO direction (z + α·w) over the same age range.
Spearman's ρ between frame index and CNN age says how monotone each walk is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentage.errors import InputError

WALK_STREAM = 0xA6E


@dataclass
class WalkSettings:
    start_age: tuple[float, float] = (36.0, 48.0)  # months
    end_age: float = 216.0
    step: float = 24.0
    tolerance: float = 6.0
    frames: int = 24                              # frames per chain segment
    interpolation: str = "slerp"                  # linear | slerp
    loess_frac: float = 0.3
    fps: int = 12


def build_chain(z: np.ndarray, age: np.ndarray, s: WalkSettings, seed: int) -> list[int]:
    lo, hi = s.start_age
    start = np.flatnonzero((age >= lo) & (age <= hi))
    if not len(start):
        raise InputError(f"no labelled latent is predicted between {lo:g} and {hi:g} months "
                         f"(predicted ages span {age.min():.0f}–{age.max():.0f}); change config "
                         f"key analysis.age_walk.start_age")
    rng = np.random.default_rng(np.random.SeedSequence([seed, WALK_STREAM]))
    chain = [int(rng.choice(start))]
    used = np.zeros(len(z), bool)
    used[chain[0]] = True
    while age[chain[-1]] + s.step <= s.end_age + s.tolerance:
        target = age[chain[-1]] + s.step
        for widen in (1, 2, 3):
            cand = np.flatnonzero((np.abs(age - target) <= s.tolerance * widen) & ~used)
            if len(cand):
                break
        else:
            break
        d = ((z[cand] - z[chain[-1]]) ** 2).sum(axis=1)
        nxt = int(cand[np.argmin(d)])
        chain.append(nxt)
        used[nxt] = True
    if len(chain) < 2:
        raise InputError(f"the age walk found no latent about {s.step:g} months older than "
                         f"{age[chain[0]]:.0f} months; lower analysis.age_walk.step or raise "
                         f"its tolerance")
    return chain


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = np.clip(a @ b / (na * nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if omega < 1e-6:
        return a[None] + t[:, None] * (b - a)[None]
    so = np.sin(omega)
    return (np.sin((1 - t) * omega)[:, None] * a[None] + np.sin(t * omega)[:, None] * b[None]) / so


def interpolate(points: np.ndarray, frames: int, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Latents along the chain (`frames` per segment, the last point included) and, per frame,
    whether it is a chain point."""
    out, key = [], []
    t = np.arange(frames) / frames
    for a, b in zip(points[:-1], points[1:], strict=True):
        seg = slerp(a, b, t) if how == "slerp" else a[None] + t[:, None] * (b - a)[None]
        out.append(seg)
        key += [True] + [False] * (frames - 1)
    out.append(points[-1:])
    key.append(True)
    return np.concatenate(out).astype(np.float32), np.array(key)


def lasso_path(z0: np.ndarray, coef: np.ndarray, intercept: float, ages: np.ndarray) -> np.ndarray:
    """z0 + α_t·w with α_t chosen so the LASSO predicts ages[t]."""
    w = np.asarray(coef, np.float64)
    norm2 = float(w @ w)
    if norm2 == 0:
        raise InputError("the LASSO kept no coefficient: there is no age direction to walk")
    alpha = (ages - (z0 @ w + intercept)) / norm2
    return (z0[None] + alpha[:, None] * w[None]).astype(np.float32)


def loess(x: np.ndarray, y: np.ndarray, frac: float) -> np.ndarray:
    from statsmodels.nonparametric.smoothers_lowess import lowess

    return lowess(y, x, frac=frac, return_sorted=False)


def spearman(y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(np.arange(len(y)), y).statistic)


def run_walks(z, age, coef, intercept, predict, s: WalkSettings, seed: int) -> dict:
    """Both walks: latents, CNN ages, sex probabilities, LOESS, ρ. `predict(z) → (age, male)`."""
    chain = build_chain(z, age, s, seed)
    frames_z, key = interpolate(z[chain], s.frames, s.interpolation)
    f_age, f_male = predict(frames_z)
    lasso_z = lasso_path(z[chain[0]], coef, intercept,
                         np.linspace(age[chain[0]], age[chain[-1]], len(frames_z)))
    l_age, l_male = predict(lasso_z)
    idx = np.arange(len(frames_z), dtype=float)
    return {"chain": chain, "chain_ages": age[chain], "key": key,
            "walks": {"chain": {"z": frames_z, "age": f_age, "male_prob": f_male,
                                "loess": loess(idx, f_age, s.loess_frac), "rho": spearman(f_age)},
                      "lasso": {"z": lasso_z, "age": l_age, "male_prob": l_male,
                                "loess": loess(idx, l_age, s.loess_frac), "rho": spearman(l_age)}}}
