"""The atlas step: hands of requested bone ages and sex, steered along the age axis.

For each requested age and sex, start from labelled latents the CNN calls that sex, drawn at
random among those whose predicted age is nearest the request (`pick_starts`), then steer
along `projected_age` of attribute_axes — the OLS age direction with the OLS sex direction
projected out, so a step leaves the linear prediction of sex unchanged:
z ← z + (Δ/slope)·u, Δ = target − CNN age, re-measuring after each step and updating the slope
per latent (secant), until |Δ| ≤ tolerance or the step budget is spent. Each hand is the
point of its path the CNN reads nearest the requested age among those it reads as the
requested sex. Every requested-vs-achieved number is kept.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from latentage import seeds
from latentage.errors import InputError
from latentage.io import save_figure, write_csv, write_json
from latentage.plots import image_cell, pyplot

# the tolerance within which the atlas direction must be orthogonal to the sex direction
ORTHOGONAL_TOL = 1e-9


# starts are drawn at random among the NEAREST_POOL × n latents of the sex nearest in age
NEAREST_POOL = 8


def pick_starts(age, male_prob, target: float, male: bool, n: int, seed: int) -> np.ndarray:
    """n labelled latents the CNN calls that sex, at random among the NEAREST_POOL·n of them
    whose predicted age is nearest `target` (months): steering then only has to correct what
    the pool cannot give, so fewer and shorter steps, which keep the hand (and its sex)."""
    ok = np.flatnonzero((male_prob >= 0.5) if male else (male_prob < 0.5))
    if len(ok) < n:
        raise InputError(f"only {len(ok)} labelled latents are predicted "
                         f"{'male' if male else 'female'}; need {n} per age (analysis.atlas.per_age)")
    nearest = ok[np.argsort(np.abs(np.asarray(age)[ok] - target), kind="stable")]
    rng = seeds.rng(seed, "atlas", int(round(target)), int(male))
    return np.sort(rng.choice(nearest[:NEAREST_POOL * n], n, replace=False))


def steer(z0: np.ndarray, u: np.ndarray, slope: float, target: float, predict, steps: int,
          tolerance: float, max_move: float = 6.0, male: bool | None = None) -> dict:
    """Predict-adjust steps along u for a batch z0 towards one target age (months). Each latent
    keeps the point of its path (start included) the CNN reads nearest the target: where the
    CNN's age stops following the axis, further steps make a hand worse, not better. With
    `male` (the requested sex), a point the CNN reads as the other sex is kept only where the
    path has none of the requested sex: u leaves the linear prediction of sex unchanged, the
    CNN's reading of it can still cross 0.5."""
    z = np.array(z0, np.float64)
    age, male_prob = predict(z.astype(np.float32))
    slopes = np.full(len(z), slope, np.float64)
    moved = np.zeros(len(z))

    def score(age, male_prob):  # lower is better: the requested sex first, then the age
        wrong = np.zeros(len(age)) if male is None else ((male_prob >= 0.5) != male)
        return wrong * 1e9 + np.abs(age - target)

    best = {"z": z.copy(), "age": age.copy(), "male_prob": male_prob.copy(),
            "moved": moved.copy()}
    taken = 0
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
        age, male_prob = new_age, new_male
        taken += 1
        better = score(age, male_prob) < score(best["age"], best["male_prob"])
        for key, value in (("z", z), ("age", age), ("male_prob", male_prob), ("moved", moved)):
            best[key][better] = value[better]
    return {"z": best["z"].astype(np.float32), "age": best["age"],
            "male_prob": best["male_prob"], "moved": best["moved"], "steps": taken}


def resolve_atlas(s, age: np.ndarray, male_prob: np.ndarray):
    """AtlasSettings with null ages or sexes taken from what the CNN predicts for generated
    hands: four ages evenly spaced between its 5th and 95th percentiles (whole years where the
    range spans three years or more), and each sex it predicts for at least per_age latents."""
    ages = s.ages
    if ages is None:
        lo, hi = np.percentile(age, [5, 95]) / 12.0
        years = np.linspace(lo, hi, 4)
        ages = tuple(float(v) for v in (np.round(years) if hi - lo >= 3 else np.round(years, 1)))
        ages = tuple(dict.fromkeys(ages))  # rounding may merge two
    sexes = s.sexes
    if sexes is None:
        counts = {"female": int((male_prob < 0.5).sum()), "male": int((male_prob >= 0.5).sum())}
        sexes = tuple(sex for sex, n in counts.items() if n >= s.per_age)
    return replace(s, ages=tuple(ages), sexes=tuple(sexes))


def atlas_direction(axes_npz) -> tuple[np.ndarray, float]:
    """The unit direction the atlas steers along and its OLS slope (months per unit step);
    an error if it is not orthogonal to the OLS sex direction."""
    with np.load(axes_npz) as ax:
        u = ax["projected_age"].astype(np.float64)
        sex = ax["ols_sex"].astype(np.float64)
        W = ax["ols_W"]
        sd = float(ax["target_sd"][0])
    if abs(float(u @ sex)) > ORTHOGONAL_TOL:
        raise InputError(f"{axes_npz}: projected_age is not orthogonal to ols_sex "
                         f"(cosine {float(u @ sex):.3g}); rerun attribute_axes")
    return u, float(W[:, 0] @ u) * sd


def atlas(*, generator, cnn, z, labels, axes, table, summary, sheets, figure, settings,
          seed: int, batch_size: int = 64, log=print) -> dict:
    """The atlas step for AtlasSettings `settings`; `sheets` is a folder that receives one
    PNG per requested age, atlas_{age}y.png."""
    from latentage.analysis.models import Models, read_pool
    from latentage.gan.images import to_uint8

    zs, age, male = read_pool(z, labels)
    settings = resolve_atlas(settings, age, male)
    ages_years, sexes = settings.ages, settings.sexes
    per_age, steps, tolerance = settings.per_age, settings.steps, settings.tolerance
    if not sexes:
        raise InputError(f"the CNN predicts neither sex for {per_age} of the {len(age)} "
                         f"labelled latents (analysis.atlas.per_age)")
    u, slope = atlas_direction(axes)
    models = Models.load(generator, cnn, batch_size)
    rows, grids = [], {}
    for years in ages_years:
        target = 12.0 * years
        for sex in sexes:
            is_male = sex == "male"
            start = pick_starts(age, male, target, is_male, per_age, seed)
            res = steer(zs[start], u, slope, target, models.predict, steps, tolerance,
                        male=is_male)
            images = to_uint8(models.render(res["z"]))
            grids[(years, sex)] = (images, res)
            for i, j in enumerate(start):
                rows.append({"requested_age_years": years, "requested_sex": sex, "index": i,
                             "start_latent": int(j), "start_age_months": float(age[j]),
                             "achieved_age_months": float(res["age"][i]),
                             "error_months": float(res["age"][i] - target),
                             "male_prob": float(res["male_prob"][i]),
                             "sex_kept": bool((res["male_prob"][i] >= 0.5) == is_male),
                             "moved": float(res["moved"][i]), "steps": res["steps"]})
    frame = pd.DataFrame(rows)
    write_csv(table, frame)
    Path(sheets).mkdir(parents=True, exist_ok=True)
    for years in ages_years:
        _sheet([(sex, *grids[(years, sex)]) for sex in sexes], f"{years:g} years",
               Path(sheets) / f"atlas_{years:g}y.png")
    _overview(ages_years, sexes, grids, figure)
    err = frame.error_months.abs()
    report = {"ages_years": list(ages_years), "sexes": list(sexes), "per_age": per_age,
              "tolerance_months": tolerance, "steps": steps,
              "direction": "projected_age (OLS age with the OLS sex direction projected out)",
              "abs_error_months": {"mean": float(err.mean()), "median": float(err.median()),
                                   "max": float(err.max())},
              "within_tolerance": float((err <= tolerance).mean()),
              "sex_kept": float(frame.sex_kept.mean()),
              "start_abs_error_months": float((frame.start_age_months
                                               - 12 * frame.requested_age_years).abs().mean())}
    write_json(summary, report)
    summary = report
    log(f"atlas: {len(frame)} hands for ages {', '.join(f'{a:g}' for a in ages_years)} y × "
        f"{', '.join(sexes)}: |achieved − requested| {summary['abs_error_months']['mean']:.1f} "
        f"months mean (from {summary['start_abs_error_months']:.1f} before steering), "
        f"{100 * summary['within_tolerance']:.0f} % within ±{tolerance:g}, sex kept "
        f"{100 * summary['sex_kept']:.0f} %")
    return summary


def _sheet(groups, title, png) -> None:
    plt = pyplot()
    n = len(groups[0][1])
    fig, axes = plt.subplots(len(groups), n, figsize=(1.9 * n, 2.1 * len(groups) + 0.4),
                             squeeze=False)
    for r, (sex, images, res) in enumerate(groups):
        for c in range(n):
            ax = axes[r][c]
            image_cell(ax, images[c],
                       f"CNN {res['age'][c] / 12:.1f} y, p♂ {res['male_prob'][c]:.2f}")
            if c == 0:
                ax.set_ylabel(sex, fontsize=9)
    fig.suptitle(f"Atlas: requested bone age {title}", fontsize=10)
    fig.tight_layout()
    save_figure(png, fig)
    plt.close(fig)


def _overview(ages_years, sexes, sheets, png) -> None:
    plt = pyplot()
    cols = len(ages_years)
    fig, axes = plt.subplots(len(sexes), cols, figsize=(1.7 * cols, 2.0 * len(sexes) + 0.5),
                             squeeze=False)
    for r, sex in enumerate(sexes):
        for c, years in enumerate(ages_years):
            images, res = sheets[(years, sex)]
            ax = axes[r][c]
            image_cell(ax, images[0], f"CNN {res['age'][0] / 12:.1f} y")
            if r == 0:
                ax.set_title(f"{years:g} y", fontsize=8)
            if c == 0:
                ax.set_ylabel(sex, fontsize=9)
    fig.suptitle("Age-steered atlas (first hand per age; all in results/analysis/atlas/)",
                 fontsize=10)
    fig.tight_layout()
    save_figure(png, fig)
    plt.close(fig)
