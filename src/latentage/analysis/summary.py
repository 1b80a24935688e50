"""The summary step: the study's four claims, each with this run's numbers.

1. A CNN ages hands: its MAE on held-out real (or phantom) images, per yearly bin.
2. The GAN's hands are hands of all ages and both sexes: the spread of the CNN's ages of
   generated hands and the share it calls male (and, with a second CNN, how well two readers
   agree on them).
3. CNN age is linear in z: the LASSO's held-out R² and error.
4. Walking the age axis ages the hand: where the walk starts and ends and the rank correlation
   of frame and age; the atlas's error against the requested ages and whether sex was kept.

results/summary.json holds the numbers; results/summary.md says them in sentences, beside the
study's own (STUDY: MAE 8.8 months on held-out radiographs).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from latentage.io import atomic_path, write_json


def _read(path) -> dict:
    return json.loads(Path(path).read_text())


def summarise(*, cnn_eval, labels, lasso, walk, atlas, agreement=None) -> dict:
    ev, la, wa, at = _read(cnn_eval), _read(lasso), _read(walk), _read(atlas)
    gen = pd.read_parquet(labels)
    test = ev["test"]
    p5, p50, p95 = np.percentile(gen["age"], [5, 50, 95])
    chain = wa["age_range"]["chain"]
    chain_ages = wa["chain_ages"]
    out = {
        "cnn": {"labels": ev.get("labels"), "backbone": ev["backbone"],
                "test_mae_months": test["mae_months"], "train_mae_months": ev["train"]["mae_months"],
                "test_sex_auc": test.get("sex_auc"),
                "test_mae_by_year": {y: b["mae"] for y, b in test["mae_by_year"].items()},
                "test_n": test["n"]},
        "generated": {"n": int(len(gen)), "age_p5_months": float(p5),
                      "age_median_months": float(p50), "age_p95_months": float(p95),
                      "age_span_p5_p95_years": float((p95 - p5) / 12),
                      "male_share": float((gen["male_prob"] > 0.5).mean())},
        "lasso": {"holdout_r2": la["lasso"].get("holdout", {}).get("r2"),
                  "holdout_abs_error_months": la["lasso"].get("holdout", {}).get(
                      "abs_error_mean"),
                  "nonzero": la["nonzero"], "dim": la["dim"]},
        "walk": {"start_age_months": float(chain_ages[0]), "end_age_months": float(chain_ages[-1]),
                 "frame_age_range_months": chain,
                 "spearman_rho": wa["spearman_rho"]["chain"],
                 "spearman_rho_lasso_direction": wa["spearman_rho"]["lasso"]},
        "atlas": {"ages_years": at["ages_years"], "sexes": at["sexes"],
                  "max_abs_error_months": at["abs_error_months"]["max"],
                  "mean_abs_error_months": at["abs_error_months"]["mean"],
                  "sex_kept": at["sex_kept"]},
    }
    if agreement is not None:
        ag = _read(agreement)
        out["second_opinion"] = {
            "backbone": ag["second_backbone"],
            "generated_mean_abs_difference_months": ag["generated"]["mean_abs_difference_months"],
            "generated_concordance": ag["generated"]["concordance"],
            "generated_sex_agreement": ag["generated"]["sex_agreement"],
            "real_mean_abs_difference_months": ag["real_test"]["mean_abs_difference_months"],
            "real_concordance": ag["real_test"]["concordance"],
            "second_test_mae_months": ag["real_test"]["second_vs_truth"]["mae_months"]}
    return out


def markdown(s: dict) -> str:
    c, g, la, w, a = s["cnn"], s["generated"], s["lasso"], s["walk"], s["atlas"]
    truth = "true ages" if c["labels"] and "true" in c["labels"] else "labels"
    auc = "–" if c["test_sex_auc"] is None else f"{c['test_sex_auc']:.2f}"
    lines = [
        "# What this run shows",
        "",
        f"1. **The CNN's ages (the study: it ages hands).** {c['backbone']} is off by "
        f"{c['test_mae_months']:.1f} months on average on {c['test_n']} held-out images "
        f"({truth}; train {c['train_mae_months']:.1f}); "
        f"sex AUC {auc}. The study: 8.8 months on held-out radiographs.",
        f"2. **Generated hands (the study: hands of all ages).** The CNN reads the {g['n']} "
        f"generated hands as "
        f"{g['age_p5_months'] / 12:.1f} to {g['age_p95_months'] / 12:.1f} years (5th–95th "
        f"percentile, a span of {g['age_span_p5_p95_years']:.1f} years); it calls "
        f"{100 * g['male_share']:.0f} % of them boys.",
    ]
    if "second_opinion" in s:
        lines.append(_second_opinion(s["second_opinion"]))
    r2 = "–" if la["holdout_r2"] is None else f"{la['holdout_r2']:.2f}"
    lines += [
        f"3. **Age in z (the study: linear).** A LASSO on the {la['dim']}-d latents predicts the CNN's age "
        f"of held-out latents with R² {r2} ({la['nonzero']} non-zero coefficients).",
        f"4. **The walk and the atlas (the study: walking the age axis ages the hand).** The walk runs from "
        f"{w['start_age_months'] / 12:.1f} to {w['end_age_months'] / 12:.1f} years (Spearman ρ "
        f"of frame and CNN age {w['spearman_rho']:.2f}). The atlas asked for "
        f"{', '.join(f'{x:g}' for x in a['ages_years'])} years, {' and '.join(a['sexes'])}: "
        f"the CNN reads its hands {a['mean_abs_error_months']:.1f} months from the request on "
        f"average (at most {a['max_abs_error_months']:.1f}) and as the requested sex in "
        f"{100 * a['sex_kept']:.0f} %.",
        "",
    ]
    return "\n".join(lines)


def _second_opinion(so: dict) -> str:
    """The second reader's agreement in words: whether generated hands are read as
    consistently as real ones (within 1.5× the real disagreement) or not."""
    gen, real = so["generated_mean_abs_difference_months"], so["real_mean_abs_difference_months"]
    text = (f"   A second CNN ({so['backbone']}, another random start; test MAE "
            f"{so['second_test_mae_months']:.1f} months) reads the same hands {gen:.1f} months "
            f"apart on average (concordance {so['generated_concordance']:.2f}, same sex for "
            f"{100 * so['generated_sex_agreement']:.0f} %), against {real:.1f} months "
            f"(concordance {so['real_concordance']:.2f}) on real test images: ")
    if gen <= 1.5 * real:
        return text + ("generated hands are read about as consistently as real ones, so their "
                       "ages are not one training run's accident (both CNNs can still share a "
                       "bias).")
    return text + (f"the two readers disagree {gen / real:.1f}× as much on generated hands as on "
                   f"real ones, so a generated hand's age depends on which CNN reads it; treat "
                   f"the labels below as one reader's.")


def summary(*, cnn_eval, labels, lasso, walk, atlas, agreement, json_out, md_out,
            log=print) -> dict:
    s = summarise(cnn_eval=cnn_eval, labels=labels, lasso=lasso, walk=walk, atlas=atlas,
                  agreement=agreement)
    write_json(json_out, s)
    text = markdown(s)
    with atomic_path(md_out, suffix=".md") as tmp:
        Path(tmp).write_text(text)
    log(text)
    return s
