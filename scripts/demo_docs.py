"""Copy the demo run's figures into docs/ for the README, small (`make docs` runs the demo first).

Each PNG is scaled to at most MAX_WIDTH pixels wide and stored with an adaptive 256-colour
palette (the figures are plots and grayscale hands: no visible loss); the ageing-hand GIF is
copied as the walk wrote it. docs/ must stay under 3 MB; the script says what it wrote and
fails if the budget is exceeded. docs/summary.md is the run's summary (results/summary.md).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image

MAX_WIDTH = 1400
BUDGET = 3 * 1024 * 1024
FIGURES = {  # results file → docs name
    "results/figures/fig1b_samples.png": "fig1b_samples.png",
    "results/figures/fig2a_metrics.png": "fig2a_metrics.png",
    "results/figures/cnn_eval.png": "cnn_eval.png",
    "results/figures/fig3a_lasso.png": "fig3a_lasso.png",
    "results/figures/fig3b_age_walk.png": "fig3b_age_walk.png",
    "results/figures/atlas.png": "atlas.png",
    "results/figures/cnn_agreement.png": "cnn_agreement.png",
}
GIF = ("results/analysis/age_walk/chain_walk.gif", "ageing_hand.gif")


def small_png(src: Path, dst: Path) -> None:
    with Image.open(src) as im:
        im = im.convert("RGB")
        if im.width > MAX_WIDTH:
            im = im.resize((MAX_WIDTH, round(im.height * MAX_WIDTH / im.width)), Image.LANCZOS)
        im.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            dst, optimize=True)


def main(root: Path = Path("."), docs: Path = Path("docs")) -> int:
    docs.mkdir(exist_ok=True)
    missing = [p for p in [*FIGURES, GIF[0], "results/summary.md"] if not (root / p).is_file()]
    if missing:
        print(f"demo-docs: run the demo first (make demo); missing: {', '.join(missing)}",
              file=sys.stderr)
        return 1
    for src, name in FIGURES.items():
        small_png(root / src, docs / name)
    shutil.copyfile(root / GIF[0], docs / GIF[1])
    shutil.copyfile(root / "results/summary.md", docs / "summary.md")
    total = 0
    for path in sorted(docs.iterdir()):
        total += path.stat().st_size
        print(f"demo-docs: {path} {path.stat().st_size / 1024:.0f} KiB")
    print(f"demo-docs: {total / 1024 / 1024:.2f} MiB in {docs}/ (budget 3 MiB)")
    return 0 if total <= BUDGET else 2


if __name__ == "__main__":
    sys.exit(main())
