"""CI: did the runs go through sbatch as profiles/slurm asks, and do they match local runs?

--slurm/--local: every job's SLURM log (logs/slurm/rule_<rule>/…/<jobid>.log, or
<jobid>_<task>.log for a job array, kept by the profile) names its job id; sacct must list each
as COMPLETED, with the GPUs (and, for the growth phases, their model) and the CPUs that the
profile (plus the CI overlay) asks for: gpu × cpus_per_gpu for a GPU rule, the rule's threads
for a CPU rule. The label shards must have gone as one job array. Then the two runs' results
must agree: the same data, networks, labels, metrics and analysis numbers.

--timelimit/--timelimit-local: a growth phase with a two-minute runtime was warned by SIGTERM,
saved, and resumed on the rule's retries (two or more SLURM jobs for it), and its final weights
equal an uninterrupted local run's bit for bit.

--srun: the 4² phase ran as two SLURM tasks started by srun and matches the local run.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]


def slurm_jobs(run: Path) -> dict[str, str]:
    """job id (`123`, or `123_4` for task 4 of an array) → rule, from the per-job SLURM logs."""
    jobs = {}
    for log in (run / "logs/slurm").rglob("*.log"):
        rule = next((p.name.removeprefix("rule_") for p in log.parents
                     if p.name.startswith("rule_")), None)
        if rule and re.fullmatch(r"\d+(_\d+)?", log.stem):
            jobs[log.stem] = rule
    return jobs


def sacct(ids) -> dict[str, dict]:
    out = subprocess.run(["sacct", "-X", "-P", "-n", "-j", ",".join(ids), "-o",
                          "JobID,JobName,State,AllocTRES,AllocCPUS,Elapsed"],
                         capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        jobid, name, state, tres, cpus, elapsed = line.split("|")
        rows[jobid] = {"name": name, "state": state, "tres": tres, "cpus": int(cpus),
                       "elapsed": elapsed}
    return rows


def profile(overlay: Path) -> dict:
    """profiles/slurm with a CI overlay on top (an overlay replaces whole top-level keys)."""
    merged = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    merged.update(yaml.safe_load(overlay.read_text()))
    return merged


def rule_threads() -> dict[str, int]:
    """`threads:` of every rule that sets one (Snakemake's default is 1)."""
    threads = {}
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        rule = None
        for line in smk.read_text().splitlines():
            if m := re.match(r"rule (\w+):", line):
                rule = m[1]
            elif rule and (m := re.match(r"\s+threads:\s*(\d+)\s*$", line)):
                threads[rule] = int(m[1])
    return threads


def expected(rule: str, prof: dict, threads: dict[str, int]) -> tuple[int, int, str | None]:
    """GPUs, CPUs and GPU model SLURM should have granted a job of `rule`."""
    res = {**prof.get("default-resources", {}), **prof.get("set-resources", {}).get(rule, {})}
    gpus = int(res.get("gpu", 0))
    if gpus:
        cpus = gpus * int(res["cpus_per_gpu"])
    else:
        cpus = int(prof.get("set-threads", {}).get(rule, threads.get(rule, 1)))
    return gpus, cpus, res.get("gpu_model")


def check_jobs(run: Path, overlay: Path, min_jobs: int) -> tuple[dict[str, str], dict[str, str]]:
    """Print every SLURM job of a run and check its GPUs and CPUs; (job → rule, job → state)."""
    jobs = slurm_jobs(run)
    assert len(jobs) >= min_jobs, f"{run}: too few SLURM jobs: {jobs}"
    acct = sacct(sorted(jobs))
    prof, threads = profile(overlay), rule_threads()
    print(f"{'JobID':>8}  {'rule':<22} {'State':<10} {'Elapsed':<9} {'CPUs':>4}  AllocTRES")
    for jobid in sorted(jobs, key=lambda j: [int(x) for x in j.split("_")]):
        rule, a = jobs[jobid], acct.get(jobid)
        assert a is not None, f"sacct does not know job {jobid} ({rule})"
        print(f"{jobid:>8}  {rule:<22} {a['state']:<10} {a['elapsed']:<9} {a['cpus']:>4}  "
              f"{a['tres']}")
        gpus, cpus, model = expected(rule, prof, threads)
        if gpus:
            assert f"gres/gpu={gpus}" in a["tres"], f"job {jobid} ({rule}): {a['tres']}"
            if model:
                assert f"gres/gpu:{model}={gpus}" in a["tres"], f"job {jobid}: {a['tres']}"
        else:
            assert "gres/gpu" not in a["tres"], f"CPU job {jobid} ({rule}) got GPUs"
        assert a["cpus"] == cpus, f"job {jobid} ({rule}): {a['cpus']} CPUs, profile asks {cpus}"
    return jobs, {j: acct[j]["state"] for j in jobs}


def check_slurm(run: Path) -> None:
    jobs, states = check_jobs(run, REPO / ".ci/slurm/config.yaml", min_jobs=30)
    bad = {j: s for j, s in states.items() if s != "COMPLETED"}
    assert not bad, f"jobs that did not complete: {bad}"
    shards = [j for j, r in jobs.items() if r == "label_shard"]
    assert shards and all("_" in j for j in shards), f"label shards not one job array: {shards}"
    assert len({j.split("_")[0] for j in shards}) == 1, f"label shards in several arrays: {shards}"
    counts = pd.Series(list(jobs.values())).value_counts()
    print("CI: jobs through sbatch per rule: " + ", ".join(f"{r} {n}" for r, n in counts.items()))
    reports = sorted((run / "logs/slurm").glob("efficiency_report_*.csv"))
    assert reports, "no efficiency report in logs/slurm (slurm-efficiency-report)"
    eff = pd.read_csv(reports[-1])
    print(f"CI: efficiency report {reports[-1].name}: {len(eff)} job steps, median CPU "
          f"efficiency {eff['CPU Efficiency (%)'].median():.0f} %")


def check_timelimit(run: Path, local: Path) -> None:
    jobs, states = check_jobs(run, REPO / ".ci/timelimit/config.yaml", min_jobs=4)
    # the plugin names a job's log folder by its wildcards: gan=gan, res=8 → gan_8
    res8 = sorted((j for j in jobs if Path(run, "logs/slurm/rule_train_phase/gan_8", f"{j}.log")
                   .exists()), key=int)
    assert len(res8) >= 2, f"the 8² phase ran as {len(res8)} job(s): no time limit reached"
    assert states[res8[-1]] == "COMPLETED", f"last 8² job {res8[-1]}: {states[res8[-1]]}"
    log = (run / "logs/gan/res8.log").read_text()
    stops = log.count("stopped by SIGTERM")
    resumes = log.count("(resumed at ")
    print(f"CI: the 8² phase took {len(res8)} SLURM jobs ({', '.join(res8)}: "
          f"{', '.join(states[j] for j in res8)}); its log: {stops} stop(s) by SIGTERM, "
          f"{resumes} resume(s)")
    assert stops >= 1 and resumes >= 1, "no SIGTERM stop and resume in logs/gan/res8.log"
    _same_weights(run, local, "results/gan/res8/checkpoint.pt", exact=True)
    print("CI: the resumed 8² phase equals the uninterrupted local run bit for bit")


def check_srun(run: Path, local: Path) -> None:
    jobs, states = check_jobs(run, REPO / ".ci/srun/config.yaml", min_jobs=2)
    bad = {j: s for j, s in states.items() if s != "COMPLETED"}
    assert not bad, f"jobs that did not complete: {bad}"
    log = (run / "logs/gan/res4.log").read_text()
    assert "launching 2 processes: srun --ntasks=2" in log, "the 4² phase did not start srun"
    assert "2 process(es) on cpu" in log, log[-2000:]
    # two ranks sum gradients in another order than one process: float rounding only
    _same_weights(run, local, "results/gan/res4/checkpoint.pt", exact=False)
    print(f"CI: the 4² phase as two srun tasks ({len(jobs)} SLURM jobs) matches the local run")


def _same_weights(a: Path, b: Path, rel: str, exact: bool) -> None:
    wa = torch.load(a / rel, weights_only=True, map_location="cpu")
    wb = torch.load(b / rel, weights_only=True, map_location="cpu")
    for net in ("G", "D", "G_ema"):
        for key in wa[net]:
            x, y = wa[net][key], wb[net][key]
            if exact:
                assert torch.equal(x, y), f"{rel} {net}.{key} differs"
            else:
                close(x, y, f"{rel} {net}.{key}", rtol=1e-4, atol=2e-5)


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
    p.add_argument("--slurm", type=Path)
    p.add_argument("--local", type=Path)
    p.add_argument("--timelimit", type=Path)
    p.add_argument("--timelimit-local", type=Path)
    p.add_argument("--srun", type=Path)
    args = p.parse_args()
    if args.slurm:
        check_slurm(args.slurm)
        compare(args.slurm, args.local)
    if args.timelimit:
        check_timelimit(args.timelimit, args.timelimit_local)
    if args.srun:
        check_srun(args.srun, args.timelimit_local)
    return 0


if __name__ == "__main__":
    sys.exit(main())
