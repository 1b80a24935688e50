"""The atlas step: per requested age and sex, steered hands; sheets, CSV, summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from latentage.analysis.atlas import pick_starts, steer
from latentage.io import save_figure, write_csv, write_json
from latentage.plots import image_cell, pyplot


def atlas_step(generator, cnn, z_path, labels_path, axes_npz, out_dir, out_png, ages_years,
               sexes, per_age: int, steps: int, tolerance: float, seed: int,
               batch_size: int = 64, log=print) -> dict:
    from latentage.analysis.models import Models, read_pool
    from latentage.gan.images import to_uint8

    z, age, male = read_pool(z_path, labels_path)
    with np.load(axes_npz) as ax:
        u = ax["orthogonal_age"].astype(np.float64)
        W = ax["ols_W"]
        sd = float(ax["target_sd"][0])
    slope = float(W[:, 0] @ u) * sd  # months per unit step, OLS estimate
    models = Models.load(generator, cnn, batch_size)
    out_dir = Path(out_dir)
    rows, sheets = [], {}
    for years in ages_years:
        target = 12.0 * years
        for sex in sexes:
            is_male = sex == "male"
            start = pick_starts(age, male, target, is_male, per_age, seed)
            res = steer(z[start], u, slope, target, models.predict, steps, tolerance)
            images = to_uint8(models.render(res["z"]))
            sheets[(years, sex)] = (images, res)
            for i, j in enumerate(start):
                rows.append({"requested_age_years": years, "requested_sex": sex, "index": i,
                             "start_latent": int(j), "start_age_months": float(age[j]),
                             "achieved_age_months": float(res["age"][i]),
                             "error_months": float(res["age"][i] - target),
                             "male_prob": float(res["male_prob"][i]),
                             "sex_kept": bool((res["male_prob"][i] >= 0.5) == is_male),
                             "moved": float(res["moved"][i]), "steps": res["steps"]})
    table = pd.DataFrame(rows)
    write_csv(out_dir / "atlas.csv", table)
    for years in ages_years:
        _sheet([(sex, *sheets[(years, sex)]) for sex in sexes], f"{years:g} years",
               out_dir / f"atlas_{years:g}y.png")
    _overview(ages_years, sexes, sheets, out_png)
    err = table.error_months.abs()
    summary = {"ages_years": list(ages_years), "sexes": list(sexes), "per_age": per_age,
               "tolerance_months": tolerance, "steps": steps,
               "abs_error_months": {"mean": float(err.mean()), "median": float(err.median()),
                                    "max": float(err.max())},
               "within_tolerance": float((err <= tolerance).mean()),
               "sex_kept": float(table.sex_kept.mean()),
               "start_abs_error_months": float((table.start_age_months
                                                - 12 * table.requested_age_years).abs().mean())}
    write_json(out_dir / "atlas.json", summary)
    log(f"atlas: {len(table)} hands for ages {', '.join(f'{a:g}' for a in ages_years)} y × "
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
