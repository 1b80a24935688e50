"""The attribute_axes step: fit, tables (cosines; edit test) and an edit figure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentage.analysis.axes import directions, edit_test, targets
from latentage.io import atomic_path, save_figure, write_csv, write_json
from latentage.plots import image_cell, pyplot

AXES_STREAM = 0xA8E5


def attribute_axes_step(generator, cnn, z_path, labels_path, out_json, out_npz, out_table,
                        out_png, lam: float, edit_n: int, edit_age_months: float,
                        edit_sex_logit: float, seed: int, batch_size: int = 64,
                        log=print) -> dict:
    from latentage.analysis.models import Models, read_pool

    z, age, male = read_pool(z_path, labels_path)
    y, scale = targets(age, male)
    methods = directions(z.astype(np.float64), y, lam)
    models = Models.load(generator, cnn, batch_size)
    rng = np.random.default_rng(np.random.SeedSequence([seed, AXES_STREAM]))
    z0 = z[np.sort(rng.choice(len(z), min(edit_n, len(z)), replace=False))]
    rows = edit_test(z0, methods, methods["ols"]["W"], scale, models.predict, edit_age_months,
                     edit_sex_logit)
    table = pd.DataFrame(rows)
    write_csv(out_table, table)
    with atomic_path(out_npz, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{f"{m}_{a}": methods[m][a] for m in methods for a in ("age", "sex")},
                     ols_W=methods["ols"]["W"], orthogonal_W=methods["orthogonal"]["W"],
                     target_mean=np.array(scale["mean"]), target_sd=np.array(scale["sd"]))
    summary = {"lambda": lam, "attributes": ["age (months)", "sex (logit of male probability)"],
               "target_scale": scale, "n": len(z), "edit_latents": len(z0),
               "edit_targets": {"age_months": edit_age_months, "sex_logit": edit_sex_logit},
               "cosine_age_sex": {m: methods[m]["cosine"] for m in methods},
               "fit": {m: {"mse": methods[m]["mse"], "ortho_gap": methods[m]["ortho_gap"]}
                       for m in ("ols", "orthogonal")},
               "edits": rows}
    write_json(out_json, summary)
    edit_figure(models, z0[:3], methods, scale, edit_age_months, out_png)
    age_rows = table[table.edited == "age"].set_index("method")
    log("attribute-axes: cos(age, sex) " + ", ".join(
        f"{m} {c:+.3f}" for m, c in summary["cosine_age_sex"].items())
        + f"; ‖WᵀW − I‖ OLS {summary['fit']['ols']['ortho_gap']:.3f} → orthogonal "
        f"{summary['fit']['orthogonal']['ortho_gap']:.3f} (MSE {summary['fit']['ols']['mse']:.4f}"
        f" → {summary['fit']['orthogonal']['mse']:.4f}); age edit of +{edit_age_months:g} months: "
        + ", ".join(f"{m} Δage {r.delta_age_months:+.1f} / |Δp(male)| {r.abs_delta_male_prob:.3f}"
                    for m, r in age_rows.iterrows()))
    return summary


def edit_figure(models, z0, methods, scale, edit_age_months, out_png) -> None:
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
