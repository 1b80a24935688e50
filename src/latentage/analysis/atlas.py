"""The atlas step: hands of requested bone ages and sex, steered along the age axis.

For each requested age and sex, the candidates are the NEAREST_POOL × n labelled latents the
CNN calls that sex whose predicted age is nearest the request (`candidates`). Each is searched
along `projected_age` of attribute_axes — the OLS age direction with the OLS sex direction
projected out, so a step leaves the linear prediction of sex unchanged (`search`): first a scan
of SCAN_POINTS points of its line z + t·u, |t| ≤ SCAN_REACH, then predict-adjust steps from the
best of them, z ← z + (Δ/slope)·u, Δ = target − CNN age, re-measuring after each step and
updating the slope per latent (secant), until |Δ| ≤ tolerance or the step budget is spent.
A candidate's result is the point of its search the CNN reads nearest the requested age among
those it reads as the requested sex. The n hands kept (`keep`) are drawn at random among the
candidates that ended within the tolerance as the requested sex where there are n of them,
else the n nearest. Every requested-vs-achieved number is kept.

Why a scan: the CNN's age along the axis need not be monotone, and its reading of sex can
flip along it (both seen on the demo's GAN); a secant walk from the start alone stops at the
first turn. Why candidates: which latents can reach an age as a given sex is only known by
trying (on the demo, 3 of the 24 latents nearest 16 years that the CNN read as girls reached
16 years as girls; starting from 3 drawn at random, the atlas missed by up to 48 months).
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


# each hand kept is chosen among NEAREST_POOL candidates: the latents of the sex nearest in age
NEAREST_POOL = 8
# the scan of each candidate's line: t = −SCAN_REACH … SCAN_REACH (prior sd units along the unit
# axis) at SCAN_POINTS points, t = 0 (the candidate itself) among them
SCAN_REACH = 6.0
SCAN_POINTS = 25


def candidates(age, male_prob, target: float, male: bool, n: int) -> np.ndarray:
    """The NEAREST_POOL·n labelled latents the CNN calls that sex whose predicted age is
    nearest `target` (months), nearest first (fewer where fewer are of that sex)."""
    ok = np.flatnonzero((male_prob >= 0.5) if male else (male_prob < 0.5))
    if len(ok) < n:
        raise InputError(f"only {len(ok)} labelled latents are predicted "
                         f"{'male' if male else 'female'}; need {n} per age (analysis.atlas.per_age)")
    nearest = ok[np.argsort(np.abs(np.asarray(age)[ok] - target), kind="stable")]
    return nearest[:NEAREST_POOL * n]


def _score(age, male_prob, target: float, male: bool | None) -> np.ndarray:
    """Lower is better: the requested sex first, then the distance to the target age."""
    wrong = np.zeros(len(age)) if male is None else ((np.asarray(male_prob) >= 0.5) != male)
    return wrong * 1e9 + np.abs(np.asarray(age) - target)


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
        better = _score(age, male_prob, target, male) < \
            _score(best["age"], best["male_prob"], target, male)
        for key, value in (("z", z), ("age", age), ("male_prob", male_prob), ("moved", moved)):
            best[key][better] = value[better]
    return {"z": best["z"].astype(np.float32), "age": best["age"],
            "male_prob": best["male_prob"], "moved": best["moved"], "steps": taken}


def search(z0: np.ndarray, u: np.ndarray, slope: float, target: float, predict, steps: int,
           tolerance: float, male: bool | None = None) -> dict:
    """For each latent of z0: scan its line z0 + t·u at SCAN_POINTS offsets |t| ≤ SCAN_REACH,
    then `steer` from the scan's best point (the requested sex first, then the age nearest the
    target); the result is the best point of both, `moved` its offset t from z0."""
    z0 = np.asarray(z0, np.float64)
    offset = np.zeros(len(z0))
    best = np.full(len(z0), np.inf)
    for t in np.linspace(-SCAN_REACH, SCAN_REACH, SCAN_POINTS):
        age, male_prob = predict((z0 + t * u[None]).astype(np.float32))
        score = _score(age, male_prob, target, male)
        better = score < best
        best[better], offset[better] = score[better], t
    res = steer(z0 + offset[:, None] * u[None], u, slope, target, predict, steps, tolerance,
                male=male)
    res["moved"] = res["moved"] + offset
    return res


def keep(res: dict, pool: np.ndarray, n: int, target: float, tolerance: float,
         male: bool | None, seed: int) -> dict:
    """n of the searched candidates `pool` (`search`'s result `res`): at random among those that
    ended within `tolerance` of the target as the requested sex, where there are n; else the n
    best (the requested sex first, then the age; ties to the candidate nearer in age). Adds
    "start", the pool latents kept, in the order kept."""
    score = _score(res["age"], res["male_prob"], target, male)
    hit = np.flatnonzero(score <= tolerance)
    if len(hit) >= n:
        rng = seeds.rng(seed, "atlas", int(round(target)), -1 if male is None else int(male))
        chosen = np.sort(rng.choice(hit, n, replace=False))
    else:
        chosen = np.argsort(score, kind="stable")[:n]
    out = {k: (v[chosen] if isinstance(v, np.ndarray) else v) for k, v in res.items()}
    out["start"] = np.asarray(pool)[chosen]
    return out


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
            pool = candidates(age, male, target, is_male, per_age)
            res = keep(search(zs[pool], u, slope, target, models.predict, steps, tolerance,
                              male=is_male), pool, per_age, target, tolerance, is_male, seed)
            start = res["start"]
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
              "candidates_per_hand": NEAREST_POOL,
              "scan": {"reach": SCAN_REACH, "points": SCAN_POINTS},
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
