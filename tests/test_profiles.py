"""profiles/slurm as SLURM will read it: every GPU job gets gpu × cpus_per_gpu CPUs, matching
threads, and the one GPU partition a user sets once; CPU jobs get their threads as CPUs."""

import re

import pytest
import yaml


@pytest.fixture(scope="module")
def profile_text(repo):
    return (repo / "profiles/slurm/config.yaml").read_text()


def _load(text, gpu_partition='"GPU-SENTINEL"'):
    # the site setting a user edits once: the anchor's value
    text = re.sub(r'(&gpu_partition )"[^"]*"', rf"\g<1>{gpu_partition}", text)
    return yaml.safe_load(text)


def _rules(repo):
    text = "".join(p.read_text() for p in (repo / "workflow/rules").glob("*.smk"))
    return set(re.findall(r"^rule (\w+):", text, flags=re.M))


def test_gpu_jobs_get_their_cpus_and_matching_threads(profile_text, repo):
    profile = _load(profile_text)
    assert "cpus_per_task" not in profile["default-resources"], \
        "a default cpus_per_task would win over cpus_per_gpu for every GPU job"
    gpu_rules = {r for r, res in profile["set-resources"].items() if res.get("gpu")}
    assert {"train_phase", "train_cnn", "label_shard", "snapshot_metrics"} <= gpu_rules
    for rule in gpu_rules:
        res = profile["set-resources"][rule]
        assert "cpus_per_task" not in res, rule
        assert profile["set-threads"][rule] == res["gpu"] * res["cpus_per_gpu"], rule
    assert profile["set-threads"]["train_phase"] == 16  # 4 GPUs × 4 CPUs
    assert set(profile["set-resources"]) | set(profile["set-threads"]) <= _rules(repo)


def test_every_gpu_rule_goes_to_the_gpu_partition_set_once(profile_text):
    assert len(re.findall(r"^\s+slurm_partition: &gpu_partition", profile_text, flags=re.M)) == 1
    profile = _load(profile_text)
    for rule, res in profile["set-resources"].items():
        if res.get("gpu"):
            assert res.get("slurm_partition") == "GPU-SENTINEL", rule
        else:
            assert "slurm_partition" not in res, rule  # CPU jobs: the default partition
    assert profile["default-resources"]["slurm_partition"] == ""  # the site's default


def test_growth_phases_are_warned_before_their_time_limit(profile_text):
    phase = _load(profile_text)["set-resources"]["train_phase"]
    m = re.fullmatch(r"--signal=TERM@(\d+)", phase["slurm_extra"])
    assert m and 60 <= int(m.group(1)) < phase["runtime"] * 60


def test_the_shard_count_has_one_source(profile_text):
    profile = _load(profile_text)
    assert "set-scatter" not in profile
    assert profile["slurm-array-jobs"] == "label_shard"
