"""Check a demo run's results/summary.json against the numbers the demo promises (issue 17).

    python scripts/check_demo.py [results/summary.json] [--report-only | --require KEY,...]

Prints one line per target (its key, whether it is met, the measured value) and exits 1 when
any is missed; `--report-only` prints the same and exits 0 (`make demo` uses it);
`--require KEY,...` exits 1 only when one of the named targets is missed (CI: the targets the
demo meets today must stay met while the others are worked on).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ATLAS_AGES = [4.0, 8.0, 12.0, 16.0]
ATLAS_SEXES = ["female", "male"]


KEYS = ["cnn_mae", "age_span", "both_sexes", "lasso_r2", "walk_start", "walk_end", "walk_rho",
        "atlas_asked", "atlas_error", "atlas_sex"]


def targets(s: dict) -> list[tuple[str, str, bool]]:
    """(what, measured, met) for each promise of the demo, in the order of KEYS."""
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", nargs="?", type=Path, default=Path("results/summary.json"))
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--require", type=lambda text: text.split(","), default=None)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.require or []) - set(KEYS))
    if unknown:
        print(f"check-demo: unknown target(s) {', '.join(unknown)} (known: {', '.join(KEYS)})",
              file=sys.stderr)
        return 2
    if not args.summary.is_file():
        print(f"check-demo: {args.summary} not found (run `make demo` first)", file=sys.stderr)
        return 1
    rows = dict(zip(KEYS, targets(json.loads(args.summary.read_text())), strict=True))
    width = max(len(what) for what, _, _ in rows.values())
    for key, (what, measured, met) in rows.items():
        print(f"check-demo: {'ok  ' if met else 'MISS'}  {key:<11}  {what:<{width}}  {measured}")
    missed = [key for key, (_, _, met) in rows.items() if not met]
    print(f"check-demo: {len(rows) - len(missed)} of {len(rows)} targets met ({args.summary})")
    if args.report_only:
        return 0
    failing = [k for k in missed if args.require is None or k in args.require]
    if failing:
        print(f"check-demo: required target(s) missed: {', '.join(failing)}", file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
