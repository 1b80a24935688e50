"""An age-steered atlas: hands of requested bone ages and sex.

For each requested age and sex, start from random labelled latents the CNN calls that sex (any
age), then steer along the age direction orthogonal to sex (from attribute_axes): z ← z + (Δ/slope)·u,
Δ = target − CNN age, re-measuring after each step and updating the slope per latent (secant),
until |Δ| ≤ tolerance or the step budget is spent. Every requested-vs-achieved number is kept.
"""

from __future__ import annotations

import numpy as np

from latentage.errors import InputError

ATLAS_STREAM = 0xA71A5


def pick_starts(age, male_prob, target: float, male: bool, n: int, seed: int) -> np.ndarray:
    ok = np.flatnonzero((male_prob >= 0.5) if male else (male_prob < 0.5))
    if len(ok) < n:
        raise InputError(f"only {len(ok)} labelled latents are predicted "
                         f"{'male' if male else 'female'}; need {n} per age (analysis.atlas.per_age)")
    rng = np.random.default_rng(np.random.SeedSequence([seed, ATLAS_STREAM, int(target), male]))
    return np.sort(rng.choice(ok, n, replace=False))


def steer(z0: np.ndarray, u: np.ndarray, slope: float, target: float, predict, steps: int,
          tolerance: float, max_move: float = 6.0) -> dict:
    """Predict-adjust steps along u for a batch z0 towards one target age (months)."""
    z = np.array(z0, np.float64)
    age, male = predict(z.astype(np.float32))
    slopes = np.full(len(z), slope, np.float64)
    moved = np.zeros(len(z))
    history = [age.copy()]
    for _ in range(steps):
        err = target - age
        todo = np.abs(err) > tolerance
        if not todo.any():
            break
        delta = np.clip(err / slopes, -max_move, max_move) * todo
        z += delta[:, None] * u[None]
        moved += delta
        new_age, new_male = predict(z.astype(np.float32))
        change = new_age - age
        ok = todo & (np.abs(delta) > 1e-6) & (change / np.where(delta == 0, 1, delta) > 1e-3)
        slopes[ok] = (change / np.where(delta == 0, 1, delta))[ok]
        age, male = new_age, new_male
        history.append(age.copy())
    return {"z": z.astype(np.float32), "age": age, "male_prob": male, "moved": moved,
            "steps": len(history) - 1}
