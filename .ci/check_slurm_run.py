"""CI: did the SLURM run go through sbatch as profiles/slurm asks, and does it match a local run?

Every job's SLURM log (logs/slurm/rule_<rule>/…/<jobid>.log, kept by the profile) names its
job id; sacct must list each as COMPLETED, with 4 GPUs (gres/gpu=4, type v100) on every
growth phase and one GPU on the labelling and metric jobs. Then the two runs' results must
agree: the same data, networks, labels, metrics and analysis numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

GPU_RULES = {"train_phase": 4, "train_cnn": 1, "label_shard": 1, "snapshot_metrics": 1,
             "real_metrics": 1}


def slurm_jobs(run: Path) -> dict[str, str]:
    """job id → rule, from the per-job SLURM logs."""
    jobs = {}
    for log in (run / "logs/slurm").rglob("*.log"):
        rule = next((p.name.removeprefix("rule_") for p in log.parents
                     if p.name.startswith("rule_")), None)
        if rule and log.stem.isdigit():
            jobs[log.stem] = rule
    return jobs


def sacct(ids) -> dict[str, dict]:
    out = subprocess.run(["sacct", "-X", "-P", "-n", "-j", ",".join(ids), "-o",
                          "JobID,JobName,State,AllocTRES,Elapsed"],
                         capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        jobid, name, state, tres, elapsed = line.split("|")
        rows[jobid] = {"name": name, "state": state, "tres": tres, "elapsed": elapsed}
    return rows


def check_slurm(run: Path) -> None:
    jobs = slurm_jobs(run)
    rules = sorted(set(jobs.values()))
    assert "train_phase" in rules and len(jobs) >= 30, f"too few SLURM jobs: {jobs}"
    acct = sacct(sorted(jobs))
    print(f"{'JobID':>6}  {'rule':<24} {'State':<10} {'Elapsed':<9} AllocTRES")
    for jobid in sorted(jobs, key=int):
        a = acct.get(jobid)
        assert a is not None, f"sacct does not know job {jobid} ({jobs[jobid]})"
        print(f"{jobid:>6}  {jobs[jobid]:<24} {a['state']:<10} {a['elapsed']:<9} {a['tres']}")
        assert a["state"] == "COMPLETED", f"job {jobid} ({jobs[jobid]}): {a['state']}"
        want = GPU_RULES.get(jobs[jobid], 0)
        if want:
            assert f"gres/gpu={want}" in a["tres"], f"job {jobid} ({jobs[jobid]}): {a['tres']}"
        if jobs[jobid] == "train_phase":
            assert "gres/gpu:v100=4" in a["tres"], a["tres"]
    counts = pd.Series(list(jobs.values())).value_counts()
    print("CI: jobs through sbatch per rule: " + ", ".join(f"{r} {n}" for r, n in counts.items()))
    reports = sorted((run / "logs/slurm").glob("efficiency_report_*.csv"))
    assert reports, "no efficiency report in logs/slurm (slurm-efficiency-report)"
    eff = pd.read_csv(reports[-1])
    print(f"CI: efficiency report {reports[-1].name}: {len(eff)} job steps, median CPU "
          f"efficiency {eff['CPU Efficiency (%)'].median():.0f} %")


def close(a, b, what: str, rtol=1e-4, atol=1e-6) -> None:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    if not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
        worst = np.nanmax(np.abs(a - b))
        raise AssertionError(f"{what}: SLURM and local runs differ (max |Δ| {worst:.3g})")


def compare(slurm: Path, local: Path) -> None:
    for path in sorted((local / "results/data").rglob("*.npy")):
        rel = path.relative_to(local)
        assert np.array_equal(np.load(path), np.load(slurm / rel)), f"{rel} differs"
    for path in sorted((local / "results/gan").glob("res*/checkpoint.pt")):
        rel = path.relative_to(local)
        a = torch.load(path, weights_only=True)["G_ema"]
        b = torch.load(slurm / rel, weights_only=True)["G_ema"]
        for key in a:
            close(a[key], b[key], f"{rel} G_ema.{key}")
    la = pd.read_parquet(local / "results/latent/labels.parquet")
    lb = pd.read_parquet(slurm / "results/latent/labels.parquet")
    close(la[["age", "male_prob"]], lb[["age", "male_prob"]], "latent labels")
    ma = pd.read_csv(local / "results/metrics/metrics.tsv", sep="\t")
    mb = pd.read_csv(slurm / "results/metrics/metrics.tsv", sep="\t")
    num = ma.select_dtypes("number").columns
    close(ma[num], mb[num], "metrics.tsv")
    # Both runs label in latent.shards shards with the same batches; the iterative fits
    # downstream (LassoCV, L-BFGS axes, steering) may still round differently on another
    # process layout (~1e-4 relative), and CNN ages measured after edits by ~1e-3 months.
    for name in ("lasso.json", "axes.json", "atlas/atlas.json"):
        a = json.loads((local / "results/analysis" / name).read_text())
        b = json.loads((slurm / "results/analysis" / name).read_text())
        close(_numbers(a, skip={"seconds"}), _numbers(b, skip={"seconds"}), name, rtol=1e-3,
              atol=1e-2)
    print("CI: SLURM results match the local run (data, G_ema, labels, metrics, analysis)")


def _numbers(obj, skip) -> list[float]:
    if isinstance(obj, dict):
        return [x for k, v in obj.items() if k not in skip for x in _numbers(v, skip)]
    if isinstance(obj, list):
        return [x for v in obj for x in _numbers(v, skip)]
    if isinstance(obj, bool) or not isinstance(obj, int | float):
        return []
    return [float(obj)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slurm", type=Path, required=True)
    p.add_argument("--local", type=Path, required=True)
    args = p.parse_args()
    check_slurm(args.slurm)
    compare(args.slurm, args.local)
    return 0


if __name__ == "__main__":
    sys.exit(main())
