"""Copy the "Beyond the study" runs' figures into docs/ for the README, small.

    python scripts/beyond_docs.py --conditional RUN --balance-none RUN --balance-age RUN \
        --small-data DIR

RUN folders are workflow runs (README, "Beyond the study", gives the commands): the demo with
demo/conditional.yaml, and the demo's CNN and labelled latents with demo/balance-none.yaml and
demo/balance-age.yaml; DIR is `latentage bench small-data --out DIR`. Besides copies, it draws
docs/balance.png from the two balance runs' results: the CNN's test MAE by year of true age and
the ages the CNN gives generated hands, without and with balancing. docs/ must stay under 3 MB.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from demo_docs import BUDGET, small_png

from latentage.io import save_figure
from latentage.plots import pyplot


def balance_figure(none: Path, age: Path, png: Path) -> dict:
    """MAE by year (test) and generated-age histograms of the two runs; returns the numbers."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    numbers = {}
    for run, label, colour in ((none, "data.balance: none", "tab:grey"),
                               (age, "data.balance: age", "tab:blue")):
        ev = json.loads((run / "results/cnn/eval.json").read_text())["test"]
        years = sorted(int(y) for y in ev["mae_by_year"])
        mae = [ev["mae_by_year"][str(y)]["mae"] for y in years]
        axes[0].plot(years, mae, "o-", color=colour, ms=4,
                     label=f"{label}: test MAE {ev['mae_months']:.1f} months")
        ages = pd.read_parquet(run / "results/latent/labels.parquet").age.to_numpy() / 12
        axes[1].hist(ages, bins=np.arange(0, 20.5, 0.5), color=colour, alpha=0.5,
                     label=f"{label}: P5–P95 {np.percentile(ages, 5):.1f}–"
                           f"{np.percentile(ages, 95):.1f} y")
        numbers[label] = {"test_mae_months": ev["mae_months"],
                          "mae_by_year": dict(zip(years, mae, strict=True)),
                          "generated_p5_p95_years": [float(np.percentile(ages, 5)),
                                                     float(np.percentile(ages, 95))],
                          "generated_share_8_14": float(((ages >= 8) & (ages < 14)).mean())}
    axes[0].set(xlabel="true bone age (years)", ylabel="CNN test MAE (months)",
                title="The CNN's error by year of age")
    axes[1].set(xlabel="CNN bone age of generated hands (years)", ylabel="latents",
                title="Ages of generated hands")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Age-balanced sampling on phantoms with RSNA's age mix (72 % aged 8–14 years)",
                 fontsize=10)
    fig.tight_layout()
    save_figure(png, fig)
    plt.close(fig)
    return numbers


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conditional", type=Path, required=True)
    p.add_argument("--balance-none", type=Path, required=True)
    p.add_argument("--balance-age", type=Path, required=True)
    p.add_argument("--small-data", type=Path, required=True)
    p.add_argument("--docs", type=Path, default=Path("docs"))
    a = p.parse_args(argv)
    a.docs.mkdir(exist_ok=True)
    copies = {a.conditional / "results/figures/conditional_comparison.png":
              "conditional_comparison.png",
              a.conditional / "results/figures/conditional_samples.png": "conditional_samples.png",
              a.balance_none / "results/figures/latent_age_distribution.png":
              "balance_none_ages.png",
              a.balance_age / "results/figures/latent_age_distribution.png":
              "balance_age_ages.png",
              a.small_data / "small_data.png": "small_data.png"}
    missing = [str(src) for src in copies if not src.is_file()]
    if missing:
        print(f"beyond-docs: missing {', '.join(missing)}", file=sys.stderr)
        return 1
    for src, name in copies.items():
        small_png(src, a.docs / name)
    numbers = balance_figure(a.balance_none, a.balance_age, a.docs / "balance_raw.png")
    small_png(a.docs / "balance_raw.png", a.docs / "balance.png")
    (a.docs / "balance_raw.png").unlink()
    print(json.dumps(numbers, indent=1))
    total = sum(f.stat().st_size for f in a.docs.iterdir())
    print(f"beyond-docs: {total / 1024 / 1024:.2f} MiB in {a.docs}/ (budget 3 MiB)")
    return 0 if total <= BUDGET else 2


if __name__ == "__main__":
    sys.exit(main())
