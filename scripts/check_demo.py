"""Check a demo run's results/summary.json against the numbers the demo promises (issue 17).

    python scripts/check_demo.py [results/summary.json] [--report-only]

Prints one line per target with the measured value and exits 1 when any is missed (CI runs it
after `make demo`); `--report-only` prints the same and exits 0 (`make demo` uses it, so a run
on another CPU that misses a target by a hair still shows its results).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ATLAS_AGES = [4.0, 8.0, 12.0, 16.0]
ATLAS_SEXES = ["female", "male"]


def targets(s: dict) -> list[tuple[str, str, bool]]:
    """(what, measured, met) for each promise of the demo."""
    c, g, la, w, a = s["cnn"], s["generated"], s["lasso"], s["walk"], s["atlas"]
    r2 = la["holdout_r2"]
    male = g["male_share"]
    return [
        ("CNN test MAE ≤ 12 months", f"{c['test_mae_months']:.1f} months",
         c["test_mae_months"] <= 12),
        ("CNN ages of generated hands span ≥ 8 years (5th–95th percentile)",
         f"{g['age_p5_months'] / 12:.1f}–{g['age_p95_months'] / 12:.1f} years "
         f"({g['age_span_p5_p95_years']:.1f})", g["age_span_p5_p95_years"] >= 8),
        ("both sexes among generated hands (each ≥ 5 %)", f"{100 * male:.0f} % male",
         0.05 <= male <= 0.95),
        ("LASSO held-out R² ≥ 0.5", "–" if r2 is None else f"{r2:.2f}",
         r2 is not None and r2 >= 0.5),
        ("walk starts ≤ 6 years", f"{w['start_age_months'] / 12:.1f} years",
         w["start_age_months"] <= 72),
        ("walk ends ≥ 14 years", f"{w['end_age_months'] / 12:.1f} years",
         w["end_age_months"] >= 168),
        ("walk Spearman ρ ≥ 0.9", f"{w['spearman_rho']:.3f}", w["spearman_rho"] >= 0.9),
        ("atlas: 4, 8, 12, 16 years for girls and boys",
         f"{a['ages_years']} × {a['sexes']}",
         [float(x) for x in a["ages_years"]] == ATLAS_AGES and sorted(a["sexes"]) == ATLAS_SEXES),
        ("atlas within 6 months of each request", f"max {a['max_abs_error_months']:.1f} months",
         a["max_abs_error_months"] <= 6),
        ("atlas keeps the requested sex", f"{100 * a['sex_kept']:.0f} %", a["sex_kept"] == 1),
    ]


def main(argv: list[str]) -> int:
    report_only = "--report-only" in argv
    paths = [a for a in argv if not a.startswith("--")]
    path = Path(paths[0] if paths else "results/summary.json")
    if not path.is_file():
        print(f"check-demo: {path} not found (run `make demo` first)", file=sys.stderr)
        return 1
    rows = targets(json.loads(path.read_text()))
    width = max(len(what) for what, _, _ in rows)
    for what, measured, met in rows:
        print(f"check-demo: {'ok  ' if met else 'MISS'}  {what:<{width}}  {measured}")
    missed = sum(not met for _, _, met in rows)
    print(f"check-demo: {len(rows) - missed} of {len(rows)} targets met ({path})")
    return 0 if report_only or not missed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
