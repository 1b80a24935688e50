"""The conditional_comparison step (beyond the study): hands of a requested age and sex made two
ways, and how well each way delivers them.

(a) conditional: the conditional PGGAN (gan.conditional, trained beside the main one on the same
    data and schedule) is asked directly: G(z, age, sex), fresh z per hand;
(b) steering: the main, unconditional G steered along the atlas's age axis (OLS age with the OLS
    sex direction projected out), from labelled latents the CNN calls that sex — the atlas's
    own method (analysis/atlas.py), here for every requested age.

Both are read by the same bone-age CNN. Per method and request: MAE of the CNN's age against
the request, sex agreement (CNN male probability on the requested side of 0.5), diversity
(MS-SSIM of consecutive pairs within the request, the PGGAN reference's measure: lower = more
varied), and over all requests the domain FD (bone-age-CNN features) against the real images'
statistics from real_metrics. Both methods give the same number of hands, so their FDs are
equally biased by the sample size (reported with it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from latentage import seeds
from latentage.errors import InputError
from latentage.io import save_figure, write_json, write_parquet
from latentage.metrics.measure import on_real_grid
from latentage.plots import image_cell, pyplot

METHODS = ("conditional", "steering")
SEXES = ("female", "male")


def diversity(images255: torch.Tensor) -> float:
    """Mean MS-SSIM of consecutive pairs (0,1), (2,3), … of one request's hands."""
    from latentage.metrics.ms_ssim import pair_ms_ssim

    n = len(images255) // 2 * 2
    return float(pair_ms_ssim(images255[0:n:2], images255[1:n:2]).mean())


def conditional_samples(G, res: int, years: float, male: bool, n: int, seed: int,
                        device) -> torch.Tensor:
    """n hands of one request from a conditional G (fresh z per request, from the seed)."""
    z = seeds.rng(seed, "conditional.samples", int(round(12 * years)), int(male)) \
        .standard_normal((n, G.z_size), dtype=np.float32)
    cond = torch.tensor([[12.0 * years, float(male)]] * n, device=device)
    with torch.no_grad():
        return G(torch.from_numpy(z).to(device), res, 1.0, cond).float()


def steering_starts(age, male_prob, target: float, male: bool, n: int,
                    log=print) -> np.ndarray:
    """The atlas's candidates (`candidates`: that sex, nearest the age); where fewer than n
    are called that sex, the n most likely of it, with a notice (sex agreement shows it)."""
    from latentage.analysis.atlas import candidates

    called = int(((male_prob >= 0.5) if male else (male_prob < 0.5)).sum())
    if called >= n:
        return candidates(age, male_prob, target, male, n)
    log(f"conditional-comparison: NOTICE: the CNN calls only {called} labelled latents "
        f"{'male' if male else 'female'}; steering starts from the {n} most likely of that sex")
    order = np.argsort(-male_prob if male else male_prob, kind="stable")
    return np.sort(order[:n])


def _read(predictor, images255) -> dict:
    out = predictor(images255, features=True, value_range=(0.0, 255.0))
    return {k: v.float().cpu().numpy() for k, v in out.items()}


def conditional_comparison(*, generator, conditional, cnn, z, labels, axes, real_stats, table,
                           summary, figure, samples, settings, seed: int, batch_size: int = 64,
                           log=print) -> dict:
    """The step for ConditionalSettings `settings`."""
    from latentage.analysis.atlas import atlas_direction, keep, search
    from latentage.analysis.models import Models, read_pool
    from latentage.cnn.predict import BoneAgePredictor
    from latentage.gan.checkpoint import load_generator
    from latentage.metrics.frechet import frechet_distance, gaussian_stats
    from latentage.metrics.real_metrics import load_reference

    models = Models.load(generator, cnn, batch_size)
    if getattr(models.G, "conditional", False):
        raise InputError(f"{generator}: the main generator is conditional; the comparison steers "
                         f"an unconditional one (set gan.conditional: false)")
    Gc, meta_c = load_generator(conditional, models.device)
    if not getattr(Gc, "conditional", False):
        raise InputError(f"{conditional}: not a conditional generator (gan.conditional: true)")
    reference = load_reference(real_stats)
    if "domain_fd_mu" not in reference:
        raise InputError(f"{real_stats}: no domain_fd statistics (enable domain_fd in "
                         f"metrics.enabled)")
    out_res = int(reference["resolution"])
    # fp32 features, as the real statistics were computed
    predictor = BoneAgePredictor.from_checkpoint(cnn, models.device, batch_size, precision="fp32")
    zs, age, male_prob = read_pool(z, labels)
    u, slope = atlas_direction(axes)
    n = settings.per_request
    rows, requests, feats, sheet = [], [], {m: [] for m in METHODS}, {}
    for years in settings.ages:
        target = 12.0 * years
        for sex in SEXES:
            is_male = sex == "male"
            made = {"conditional": conditional_samples(Gc, int(meta_c["resolution"]), years,
                                                       is_male, n, seed, models.device)}
            pool = steering_starts(age, male_prob, target, is_male, n, log)
            steered = keep(search(zs[pool], u, slope, target, models.predict, settings.steps,
                                  settings.tolerance, male=is_male),
                           pool, n, target, settings.tolerance, is_male, seed)
            made["steering"] = models.render(steered["z"])
            for method, images in made.items():
                images255 = on_real_grid(images, out_res)
                read = _read(predictor, images255)
                feats[method].append(read["features"])
                kept = (read["male_prob"] >= 0.5) == is_male
                err = read["age"] - target
                sheet[(method, sex, years)] = (images255[0, 0].cpu().numpy(),
                                               float(read["age"][0]))
                rows += [{"method": method, "requested_age_years": years,
                          "requested_sex": sex, "index": i, "age_months": float(a),
                          "error_months": float(e), "male_prob": float(p), "sex_kept": bool(k)}
                         for i, (a, e, p, k) in enumerate(zip(read["age"], err,
                                                              read["male_prob"], kept,
                                                              strict=True))]
                requests.append({"method": method, "requested_age_years": years,
                                 "requested_sex": sex, "mae_months": float(np.abs(err).mean()),
                                 "mean_age_months": float(read["age"].mean()),
                                 "sd_age_months": float(read["age"].std()),
                                 "sex_agreement": float(kept.mean()),
                                 "ms_ssim": diversity(images255)})
    frame, per_request = pd.DataFrame(rows), pd.DataFrame(requests)
    write_parquet(table, frame)
    report = {"ages_years": list(settings.ages), "sexes": list(SEXES), "hands_per_request": n,
              "hands_per_method": int(len(frame) // len(METHODS)),
              "steering": {"steps": settings.steps, "tolerance_months": settings.tolerance},
              "conditional_kimg": float(meta_c.get("kimg", 0)), "methods": {},
              "requests": per_request.to_dict(orient="records")}
    for method in METHODS:
        part, req = frame[frame.method == method], per_request[per_request.method == method]
        mu, sigma = gaussian_stats(np.concatenate(feats[method]).astype(np.float64))
        report["methods"][method] = {
            "mae_months": float(part.error_months.abs().mean()),
            "median_abs_error_months": float(part.error_months.abs().median()),
            "sex_agreement": float(part.sex_kept.mean()),
            "ms_ssim": float(req.ms_ssim.mean()),
            "domain_fd": float(frechet_distance(mu, sigma, reference["domain_fd_mu"],
                                                reference["domain_fd_sigma"]))}
    write_json(summary, report)
    _figure(per_request, report, figure)
    _samples(sheet, settings.ages, samples)
    for method, m in report["methods"].items():
        log(f"conditional-comparison: {method:11s} MAE {m['mae_months']:.1f} months, sex "
            f"agreement {100 * m['sex_agreement']:.0f} %, MS-SSIM {m['ms_ssim']:.3f}, domain FD "
            f"{m['domain_fd']:.2f} ({report['hands_per_method']} hands)")
    return report


def _figure(per_request: pd.DataFrame, report: dict, png) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2))
    colours = {"conditional": "tab:blue", "steering": "tab:orange"}
    styles = {"female": "o--", "male": "s-"}
    ages = sorted(per_request.requested_age_years.unique())
    for method in METHODS:
        for sex in SEXES:
            part = per_request[(per_request.method == method)
                               & (per_request.requested_sex == sex)].sort_values(
                "requested_age_years")
            label = f"{method}, {sex}"
            x = part.requested_age_years
            axes[0].errorbar(x, part.mean_age_months / 12, yerr=part.sd_age_months / 12,
                             fmt=styles[sex], color=colours[method], ms=4, capsize=2,
                             label=label, alpha=0.85)
            axes[1].plot(x, part.mae_months, styles[sex], color=colours[method], ms=4,
                         label=label)
            axes[2].plot(x, part.ms_ssim, styles[sex], color=colours[method], ms=4, label=label)
    axes[0].plot([ages[0], ages[-1]], [ages[0], ages[-1]], color="grey", lw=1,
                 label="requested = read")
    axes[0].set(xlabel="requested bone age (years)", ylabel="CNN bone age (years, mean ± SD)",
                title="Age the CNN reads")
    axes[1].set(xlabel="requested bone age (years)", ylabel="|CNN age − request| (months)",
                title="Error against the request")
    axes[2].set(xlabel="requested bone age (years)", ylabel="MS-SSIM within request",
                title="Diversity (lower = more varied)")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    m = report["methods"]
    fig.suptitle("Conditional PGGAN vs latent steering of the unconditional PGGAN — "
                 + "; ".join(f"{k}: MAE {v['mae_months']:.1f} mo, sex {100 * v['sex_agreement']:.0f} %,"
                             f" FD {v['domain_fd']:.1f}" for k, v in m.items()), fontsize=9)
    fig.tight_layout()
    save_figure(png, fig)
    plt.close(fig)


def _samples(sheet: dict, ages, png) -> None:
    """The first hand of each request: one row per method and sex, one column per age."""
    plt = pyplot()
    rows = [(m, s) for m in METHODS for s in SEXES]
    fig, axes = plt.subplots(len(rows), len(ages), figsize=(1.1 * len(ages), 1.3 * len(rows) + 0.5),
                             squeeze=False)
    for r, (method, sex) in enumerate(rows):
        for c, years in enumerate(ages):
            image, read = sheet[(method, sex, years)]
            ax = axes[r][c]
            image_cell(ax, image, f"{read / 12:.1f}", fontsize=6)
            if r == 0:
                ax.set_title(f"{years:g} y", fontsize=7)
            if c == 0:
                ax.set_ylabel(f"{method}\n{sex}", fontsize=7)
    fig.suptitle("Requested age (columns) and sex; the number under each hand is the CNN's age "
                 "in years", fontsize=9)
    fig.tight_layout()
    save_figure(png, fig)
    plt.close(fig)
