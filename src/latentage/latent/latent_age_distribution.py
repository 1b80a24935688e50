"""The latent_age_distribution step: predicted age and sex of generated hands beside those of
the real images (the study saw them agree)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentage.io import save_figure
from latentage.plots import pyplot


def latent_age_distribution(*, labels, real_predictions: dict, figure) -> None:
    """`labels`: the gathered latent labels; `real_predictions`: split name → the CNN's
    predictions of the real images of that split."""
    plt = pyplot()

    gen = pd.read_parquet(labels)
    real = {name: pd.read_parquet(path) for name, path in real_predictions.items()}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    hi = max([gen.age.max()] + [f.pred_age.max() for f in real.values()] + [228])
    bins = np.linspace(0, hi + 6, 40)
    ax = axes[0]
    ax.hist(gen.age, bins=bins, density=True, alpha=0.45, color="tab:purple",
            label=f"generated (n={len(gen):,})")
    for (name, f), color in zip(real.items(), ("tab:blue", "tab:orange"), strict=False):
        ax.hist(f.pred_age, bins=bins, density=True, histtype="step", lw=2, color=color,
                label=f"real {name} (n={len(f):,})")
    ax.set(xlabel="CNN-predicted bone age (months)", ylabel="density",
           title="Predicted age: generated vs real hands")
    ax.legend(fontsize=8)
    ax = axes[1]
    pbins = np.linspace(0, 1, 26)
    ax.hist(gen.male_prob, bins=pbins, density=True, alpha=0.45, color="tab:purple",
            label="generated")
    for (name, f), color in zip(real.items(), ("tab:blue", "tab:orange"), strict=False):
        ax.hist(f.male_prob, bins=pbins, density=True, histtype="step", lw=2, color=color,
                label=f"real {name}")
    ax.set(xlabel="CNN probability of male", ylabel="density", title="Predicted sex")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(figure, fig)
    plt.close(fig)
