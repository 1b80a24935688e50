"""The evaluate_cnn step: the bone-age CNN evaluated as the study did.

eval.json: MAE and median absolute error per split, MAE per yearly age bin, sex accuracy and
AUC; per-image predictions per split; a figure of predicted against true age and of the error
by age bin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from latentage.cnn.data import load_split
from latentage.cnn.predict import BoneAgePredictor
from latentage.device import select_device
from latentage.io import save_figure, write_json, write_parquet
from latentage.plots import pyplot


def _summary(frame: pd.DataFrame) -> dict:
    err = (frame["pred_age"] - frame["boneage"]).abs()
    years = np.floor(frame["boneage"] / 12).astype(int)
    by_bin = {int(y): {"n": int((years == y).sum()), "mae": float(err[years == y].mean())}
              for y in sorted(years.unique())}
    male = frame["male"].astype(bool)
    out = {"n": int(len(frame)), "mae_months": float(err.mean()),
           "median_ae_months": float(err.median()),
           "bias_months": float((frame["pred_age"] - frame["boneage"]).mean()),
           "mae_by_year": by_bin,
           "sex_accuracy": float(((frame["male_prob"] > 0.5) == male).mean())}
    out["sex_auc"] = float(roc_auc_score(male, frame["male_prob"])) if male.nunique() == 2 \
        else None
    return out


def evaluate_cnn(*, model, train_images, test_images, train_labels, test_labels, eval_json,
                 train_predictions, test_predictions, figure, settings, batch_size: int = 64,
                 labels_are_truth: bool = False, log=print) -> dict:
    """Evaluate the CNN `model` on both splits (prepared memmaps at the resolution the CNN
    reads); CnnSettings `settings` must describe the same backbone and input size.
    `labels_are_truth`: the labels are the true ages (phantoms: the errors are against ground
    truth), not a rater's reading (RSNA: the errors include the raters' own)."""
    device = select_device()
    expect = {"backbone": settings.backbone, "input_size": settings.input_size}
    predictor = BoneAgePredictor.from_checkpoint(model, device, batch_size, expect,
                                                 settings.precision)
    net = predictor.model
    results, frames = {}, {}
    for split, images, labels, out in (("train", train_images, train_labels, train_predictions),
                                       ("test", test_images, test_labels, test_predictions)):
        imgs, table = load_split(images, labels)
        pred = predictor.predict_uint8(imgs)
        frame = table.copy()
        frame["pred_age"] = pred["age"]
        frame["male_prob"] = pred["male_prob"]
        write_parquet(out, frame)
        results[split] = _summary(frame)
        frames[split] = frame
        log(f"evaluate-cnn: {split}: MAE {results[split]['mae_months']:.2f} months (median "
            f"{results[split]['median_ae_months']:.2f}), sex accuracy "
            f"{results[split]['sex_accuracy']:.3f}, AUC {results[split]['sex_auc']}")
    trained = net.train_summary
    report = {"labels": "true age (phantom ground truth)" if labels_are_truth else
              "a rater's reading (bone-age labels)",
              "backbone": net.meta.backbone, "input_size": net.meta.input_size,
              "feature_dim": net.meta.feature_dim, "best_epoch": trained.get("best_epoch"),
              "val_mae_months": trained.get("val_mae"), **results}
    write_json(eval_json, report)
    _figure(frames, results, figure, net.meta.backbone, labels_are_truth)
    return report


def _figure(frames: dict, results: dict, out_png, backbone: str, truth: bool = False) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    lim = [0, max(240, float(max(f[["boneage", "pred_age"]].max().max() for f in
                                 frames.values())) + 6)]
    for ax, split in zip(axes[:2], ("train", "test"), strict=True):
        f, r = frames[split], results[split]
        ax.scatter(f["boneage"], f["pred_age"], s=6, alpha=0.5,
                   c=np.where(f["male"], "tab:blue", "tab:red"))
        ax.plot(lim, lim, "k--", lw=1)
        ax.set(xlim=lim, ylim=lim, ylabel="CNN prediction (months)",
               xlabel="true bone age of the phantom (months)" if truth else "bone age (months)",
               title=f"{split} (n={r['n']}): MAE {r['mae_months']:.1f}, median "
                     f"{r['median_ae_months']:.1f} months;\nsex AUC "
                     f"{'–' if r['sex_auc'] is None else format(r['sex_auc'], '.2f')}")
        ax.scatter([], [], c="tab:blue", label="male")
        ax.scatter([], [], c="tab:red", label="female")
        ax.legend(loc="upper left", fontsize=8)
    ax = axes[2]
    for split, marker in (("train", "o-"), ("test", "s-")):
        bins = results[split]["mae_by_year"]
        years = sorted(bins)
        ax.plot(years, [bins[y]["mae"] for y in years], marker, label=split)
    ax.set(xlabel="bone age (years, bin start)", ylabel="mean absolute error (months)",
           title="error by age bin")
    ax.legend()
    fig.suptitle(f"Bone-age CNN ({backbone})")
    fig.tight_layout()
    save_figure(out_png, fig)
    plt.close(fig)
