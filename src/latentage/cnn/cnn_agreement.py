"""The cnn_agreement step: a second reader for the generated hands.

Generated images have no ground truth: the age the study gives a generated hand is what one
CNN, from one training run, reads in it. A second CNN trained from another random start (and,
if asked, another backbone) reads the same hands. Their agreement on generated hands is set
beside their agreement on real test images, where each is also compared with the truth.

What the agreement shows: whether the labels the LASSO and the walk use are a property of the
images or an accident of one training run — if two readers agree on generated hands as well
as on real ones, the age axis found in z is not one network's quirk. What it does not show:
that the ages are right. Both readers learned from the same labels and the same kind of
image, so they can share a bias (say, reading hand size as age), and a hand that is not
anatomically plausible can still be read consistently.

Statistics per image set: mean absolute difference, bias (second − first), Pearson r, Lin's
concordance correlation coefficient, the 95 % limits of agreement (Bland–Altman), and for
sex the share of images both call the same sex and Cohen's κ.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import cohen_kappa_score

from latentage.cnn.data import load_split
from latentage.cnn.predict import BoneAgePredictor
from latentage.device import resolve_precision, select_device
from latentage.errors import InputError
from latentage.gan.checkpoint import load_generator
from latentage.io import save_figure, write_json, write_parquet
from latentage.latent.label_shard import generate_and_label
from latentage.plots import pyplot


def agreement(age_a, age_b, male_a, male_b) -> dict:
    """How closely two readers agree on the same images (ages in months, male probabilities)."""
    a, b = np.asarray(age_a, np.float64), np.asarray(age_b, np.float64)
    diff = b - a
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
    ccc = 2 * np.cov(a, b, ddof=0)[0, 1] / (a.var() + b.var() + (a.mean() - b.mean()) ** 2)
    sa, sb = np.asarray(male_a) > 0.5, np.asarray(male_b) > 0.5
    both_sexes = len(set(sa) | set(sb)) == 2
    return {
        "n": int(len(a)),
        "mean_abs_difference_months": float(np.abs(diff).mean()),
        "bias_months": float(diff.mean()),
        "limits_of_agreement_months": [float(diff.mean() - 1.96 * sd),
                                       float(diff.mean() + 1.96 * sd)],
        "pearson_r": float(np.corrcoef(a, b)[0, 1]),
        "concordance": float(ccc),
        "sex_agreement": float((sa == sb).mean()),
        "sex_kappa": float(cohen_kappa_score(sa, sb)) if both_sexes else None,
    }


def _truth(frame: pd.DataFrame, age: str, prob: str) -> dict:
    err = frame[age] - frame["boneage"]
    return {"mae_months": float(err.abs().mean()), "bias_months": float(err.mean()),
            "sex_accuracy": float(((frame[prob] > 0.5) == frame["male"].astype(bool)).mean())}


def cnn_agreement(*, generator, first, second, labels, z, test_images, test_labels, out_json,
                  table, figure, n: int, batch_size: int = 64, log=print) -> dict:
    """Read the first `n` labelled latents' images (G_ema `generator`; `labels` and `z` from
    gather_labels, whose ages are the first CNN's) and the real test images with both CNNs;
    write the statistics, the per-image table and the figure."""
    device = select_device()
    precision = resolve_precision("auto", device)
    readers = {name: BoneAgePredictor.from_checkpoint(path, device, batch_size)
               for name, path in (("first", first), ("second", second))}
    labelled = pd.read_parquet(labels)
    zs = np.load(z, mmap_mode="r")
    if n > len(labelled) or len(zs) != len(labelled):
        raise InputError(f"{labels} ({len(labelled)} rows) and {z} ({len(zs)} latents) must "
                         f"match and hold at least cnn.second_opinion.n = {n}")
    if not np.array_equal(labelled["idx"].to_numpy()[:n], np.arange(n)):
        raise InputError(f"{labels}: rows are not latents 0…{n - 1} in order (rerun gather_labels)")
    G, meta = load_generator(generator, device)
    res = int(meta["resolution"])
    # generate_and_label bounds memory itself (generation chunks sized by the resolution)
    z_first = torch.from_numpy(np.array(zs[:n])).to(device)
    second = generate_and_label(G, readers["second"], z_first, res, precision)
    gen = labelled.iloc[:n][["idx", "age", "male_prob"]].rename(
        columns={"age": "age_first", "male_prob": "male_prob_first"}).reset_index(drop=True)
    gen["age_second"] = second["age"].float().cpu().numpy()
    gen["male_prob_second"] = second["male_prob"].float().cpu().numpy()
    imgs, real = load_split(test_images, test_labels)
    real = real[["boneage", "male"]].reset_index(drop=True)
    for name, reader in readers.items():
        pred = reader.predict_uint8(imgs)
        real[f"age_{name}"], real[f"male_prob_{name}"] = pred["age"], pred["male_prob"]
    report = {
        "first_backbone": readers["first"].model.meta.backbone,
        "second_backbone": readers["second"].model.meta.backbone,
        "generated": agreement(gen.age_first, gen.age_second, gen.male_prob_first,
                               gen.male_prob_second),
        "real_test": {
            **agreement(real.age_first, real.age_second, real.male_prob_first,
                        real.male_prob_second),
            "first_vs_truth": _truth(real, "age_first", "male_prob_first"),
            "second_vs_truth": _truth(real, "age_second", "male_prob_second"),
        },
    }
    write_json(out_json, report)
    write_parquet(table, gen)
    _figure(gen, real, report, figure)
    g, r = report["generated"], report["real_test"]
    log(f"cnn-agreement: {n} generated hands at {res}²: the two CNNs differ by "
        f"{g['mean_abs_difference_months']:.1f} months on average (concordance "
        f"{g['concordance']:.3f}, sex agreement {g['sex_agreement']:.3f}); on {r['n']} real test "
        f"images by {r['mean_abs_difference_months']:.1f} months (concordance "
        f"{r['concordance']:.3f}), where their MAEs are {r['first_vs_truth']['mae_months']:.1f} "
        f"and {r['second_vs_truth']['mae_months']:.1f} months")
    return report


def _figure(gen: pd.DataFrame, real: pd.DataFrame, report: dict, out_png) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    hi = max(240.0, float(pd.concat([gen.age_first, gen.age_second, real.age_first,
                                     real.age_second]).max()) + 6)
    for ax, frame, key, title in ((axes[0], real, "real_test", "real test images"),
                                  (axes[1], gen, "generated", "generated hands")):
        st = report[key]
        ax.scatter(frame.age_first, frame.age_second, s=6, alpha=0.45,
                   c=np.where(frame.male_prob_first > 0.5, "tab:blue", "tab:red"))
        ax.plot([0, hi], [0, hi], "k--", lw=1)
        ax.set(xlim=(0, hi), ylim=(0, hi), xlabel="first CNN's age (months)",
               ylabel="second CNN's age (months)",
               title=f"{title} (n={st['n']}): mean |Δ| {st['mean_abs_difference_months']:.1f} mo,"
                     f" CCC {st['concordance']:.2f}")
        ax.scatter([], [], c="tab:blue", label="first CNN: male")
        ax.scatter([], [], c="tab:red", label="first CNN: female")
        ax.legend(loc="upper left", fontsize=8)
    ax = axes[2]
    for frame, label, colour in ((real, "real test", "tab:gray"), (gen, "generated", "tab:green")):
        mean = (frame.age_first + frame.age_second) / 2
        ax.scatter(mean, frame.age_second - frame.age_first, s=6, alpha=0.4, c=colour,
                   label=label)
    lo, up = report["generated"]["limits_of_agreement_months"]
    for y in (lo, up):
        ax.axhline(y, color="tab:green", ls=":", lw=1)
    ax.axhline(report["generated"]["bias_months"], color="tab:green", lw=1)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xlabel="mean of the two ages (months)", ylabel="second − first (months)",
           title="Bland–Altman: generated hands' bias and 95 % limits")
    ax.legend(fontsize=8)
    fig.suptitle(f"Two bone-age CNNs read the same images ({report['first_backbone']} and a "
                 f"second {report['second_backbone']} from another random start)")
    fig.tight_layout()
    save_figure(out_png, fig)
    plt.close(fig)
