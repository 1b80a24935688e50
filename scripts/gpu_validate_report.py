"""The tables of scripts/gpu-validate.sh's run: OUTDIR/report.md and OUTDIR/report.json.

Reads what the parts left (any may be missing: a part that failed or ran out of time is
reported as such): OUTDIR/parts.tsv; in WORK (GPU_VALIDATE_WORK) bench-train.json,
bench-train-b16.json, bench-label.json, gpu-check.json, twin/twin.json, and from the scaled
DAG (WORK/dag) its benchmarks/**.tsv (wall time per job), results/gan/res*/stats.jsonl (the GAN's img/s
and peak memory per phase) and results/summary.json.

    python scripts/gpu_validate_report.py --out OUTDIR --work WORK
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def _json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def parts(out: Path) -> list[dict]:
    path = out / "parts.tsv"
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def rule_times(dag: Path) -> list[dict]:
    """Wall seconds and peak RSS of every job of the DAG, from Snakemake's benchmark files."""
    rows = []
    for path in sorted((dag / "benchmarks").rglob("*.tsv")):
        with path.open() as f:
            first = next(csv.DictReader(f, delimiter="\t"), None)
        if first:
            rows.append({"job": str(path.relative_to(dag / "benchmarks").with_suffix("")),
                         "seconds": float(first["s"]), "max_rss_mb": float(first["max_rss"])})
    return rows


def gan_phases(dag: Path) -> list[dict]:
    """Per growth phase: kimg, img/s of its last tick, peak GPU memory, from stats.jsonl."""
    rows = []
    phases = sorted((dag / "results/gan").glob("res*/stats.jsonl"),
                    key=lambda p: int(p.parent.name[3:]))
    for path in phases:
        stats = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if stats:
            rows.append({"res": stats[-1]["res"], "kimg": stats[-1]["kimg"],
                         "minibatch": stats[-1]["minibatch"],
                         "img_per_s_last_tick": stats[-1]["img_per_s"],
                         "img_per_s_mean": sum(s["img_per_s"] for s in stats) / len(stats),
                         "peak_memory_mb": max(s["mem_mb"] for s in stats),
                         "skipped_steps": sum(s.get("d_skipped", 0) + s.get("g_skipped", 0)
                                              for s in stats)})
    return rows


def markdown(report: dict) -> str:
    lines = [f"# gpu-validate on {report.get('device') or 'unknown device'}", "",
             "| part | status | exit | seconds |", "|---|---|---|---|"]
    lines += [f"| {p['part']} | {p['status']} | {p['exit']} | {p['seconds']} |"
              for p in report["parts"]]
    bench = report.get("bench_train") or []
    if bench:
        lines += ["", "## bench train (the study's network and per-GPU minibatch; --quick: toy)", "",
                  "| res | batch | precision | img/s | s/kimg | peak memory (MB) | skipped |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['res']} | {r['batch']} | {r['precision']} | {r['img_per_s']:.1f} | "
                  f"{r['s_per_kimg']:.2f} | {r['peak_memory_mb']:.0f} | "
                  f"{r['skipped_steps']:.0f} |" for r in bench]
    b16 = report.get("bench_train_b16") or []
    if b16:
        lines += ["", "## bench train at batch 16, fp32 (the CPU table's shape)", ""]
        lines += [f"- res {r['res']}: {r['img_per_s']:.1f} img/s, {r['peak_memory_mb']:.0f} MB"
                  for r in b16]
    label = report.get("bench_label")
    if label:
        lines += ["", "## bench label", "",
                  f"- G {label['res']}² + {label['backbone']} at {label['input_size']} px, batch "
                  f"{label['batch']}, {label['precision']}: {label['images_per_s']:.1f} images/s, "
                  f"peak {label['peak_memory_mb']:.0f} MB"]
    check = report.get("gpu_check")
    if check:
        from latentage.gpu_check import table

        lines += ["", "## gpu-check", "", "```", table(check), "```"]
        lines += [f"- {name} failed: {sec['error']}" for name, sec in check["sections"].items()
                  if not sec.get("ok")]
    phases = report.get("gan_phases") or []
    if phases:
        lines += ["", "## the scaled DAG's GAN phases", "",
                  "| res | kimg at end | minibatch | img/s (last tick) | img/s (mean of ticks) "
                  "| peak memory (MB) | skipped |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['res']} | {r['kimg']} | {r['minibatch']} | "
                  f"{r['img_per_s_last_tick']:.1f} | {r['img_per_s_mean']:.1f} | "
                  f"{r['peak_memory_mb']:.0f} | {r['skipped_steps']:.0f} |" for r in phases]
    jobs = report.get("rule_times") or []
    if jobs:
        lines += ["", "## the scaled DAG's jobs (wall seconds, Snakemake benchmarks)", "",
                  "| job | seconds | peak RSS (MB) |", "|---|---|---|"]
        lines += [f"| {r['job']} | {r['seconds']:.1f} | {r['max_rss_mb']:.0f} |"
                  for r in sorted(jobs, key=lambda r: -r["seconds"])]
    summary = report.get("summary")
    if summary:
        lines += ["", "## the scaled DAG's results (results/summary.json)", "", "```",
                  json.dumps(summary, indent=1)[:4000], "```"]
    twin = report.get("twin")
    if twin:
        lines += ["", "## twin: 2 processes on one device (gloo) vs 1 process, fp32", ""]
        lines += [f"- {net}: max |Δ| {w['max_abs_diff']:.3g} (largest |weight| "
                  f"{w['max_abs_weight']:.3g})" for net, w in twin["weights"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True, help="GPU_VALIDATE_WORK")
    a = p.parse_args()
    dag = a.work / "dag"
    check = _json(a.work / "gpu-check.json")
    bench = _json(a.work / "bench-train.json")
    report = {"device": (check or {}).get("device") or (bench or [{}])[0].get("device"),
              "parts": parts(a.out), "bench_train": bench, "gpu_check": check,
              "bench_train_b16": _json(a.work / "bench-train-b16.json"),
              "bench_label": _json(a.work / "bench-label.json"),
              "gan_phases": gan_phases(dag), "rule_times": rule_times(dag),
              "summary": _json(dag / "results/summary.json"),
              "twin": _json(a.work / "twin/twin.json")}
    (a.out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    text = markdown(report)
    (a.out / "report.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
