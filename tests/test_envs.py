"""The software of the rules: envs/*.yaml are real, pinned, used by every rule, agree with
pyproject.toml and containers/latentage.def, and build from Snakemake's copy (the package comes
in by a post-deploy script, never a relative path). Conda and Apptainer cannot run here, so
these tests check what Snakemake and Apptainer would read."""

import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml

# the cluster's torch: the CUDA 12.6 build (sm_50 … sm_90: V100 to H100), from PyTorch's index
CLUSTER_TORCH = {"torch": "2.11.0+cu126", "torchvision": "0.26.0+cu126"}
CU126_INDEX = "https://download.pytorch.org/whl/cu126"


def _pins(requirements):
    out = {}
    for req in requirements:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", req.strip())
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


@pytest.fixture(scope="module")
def project_pins(repo):
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    unpinned = [r for r in reqs if "==" not in r]
    assert not unpinned, f"unpinned in pyproject: {unpinned}"
    return _pins(reqs)


def _env(path):
    spec = yaml.safe_load(path.read_text())
    deps = spec["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    return spec, deps, pip


def test_envs_parse_pin_and_agree_with_pyproject(repo, project_pins):
    envs = sorted((repo / "envs").glob("*.yaml"))
    assert [e.name for e in envs] == ["data.yaml", "torch.yaml"]
    for env in envs:
        spec, deps, pip = _env(env)
        assert "python=3.11" in deps, env.name
        conda = [d for d in deps if isinstance(d, str)]
        assert all("=" in d for d in conda if d != "python=3.11"), f"{env.name}: {conda}"
        # built from Snakemake's copy in .snakemake/conda/: no path relative to envs/
        assert not any(p.startswith((".", "-e", "/")) for p in pip), f"{env.name}: {pip}"
        pins = _pins(p for p in pip if not p.startswith("--"))
        loose = [p for p in pip if not p.startswith("--") and "==" not in p]
        assert not loose, f"{env.name}: unpinned {loose}"
        for name, version in pins.items():
            want = CLUSTER_TORCH.get(name, project_pins.get(name))
            assert want == version, f"{env.name}: {name}=={version}, expected {want}"
    _, _, pip = _env(repo / "envs/torch.yaml")
    assert f"--extra-index-url {CU126_INDEX}" in pip
    assert {n: v for n, v in _pins(pip).items() if n in CLUSTER_TORCH} == CLUSTER_TORCH


def test_every_rule_has_conda_and_log(repo):
    for smk in (repo / "workflow/rules").glob("*.smk"):
        text = smk.read_text()
        rules = re.split(r"\n(?=rule \w+:)", text)[1:]
        for block in rules:
            name = re.match(r"rule (\w+):", block).group(1)
            assert "conda:" in block, f"{smk.name}: rule {name} lacks conda:"
            assert "log:" in block, f"{smk.name}: rule {name} lacks log:"
            env = re.search(r'conda:\s*\n\s*"([^"]+)"', block).group(1)
            assert (smk.parent / env).resolve().is_file(), f"{name}: {env} missing"


def _post_deploy(repo, tmp_path, cwd, env_name="torch"):
    """Run an env's post-deploy script the way Snakemake does — its content copied beside the
    env's copy in .snakemake/conda/, run from the working directory — with a `python` that
    records what it is asked to do instead of installing."""
    conda_dir = tmp_path / "conda"
    conda_dir.mkdir(exist_ok=True)
    shutil.copy(repo / "envs" / f"{env_name}.yaml", conda_dir / "0a1b2c.yaml")
    script = conda_dir / "0a1b2c.post-deploy.sh"
    shutil.copy(repo / "envs" / f"{env_name}.post-deploy.sh", script)  # follows the link
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    (fake_bin / "python").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\n')
    (fake_bin / "python").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "LATENTAGE_SOURCE"}
    env["PATH"] = f"{fake_bin}:{env['PATH']}"
    proc = subprocess.run(["bash", str(script)], cwd=cwd, env=env, capture_output=True,
                          text=True)
    calls = (tmp_path / "calls").read_text() if (tmp_path / "calls").exists() else ""
    return proc, calls


@pytest.mark.parametrize("env_name", ["data", "torch"])
def test_post_deploy_installs_the_workflows_own_source_from_snakemakes_copy(repo, tmp_path,
                                                                           env_name):
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("pyproject.toml", "envs", "workflow"):
        (shutil.copytree if (repo / name).is_dir() else shutil.copy)(repo / name, clone / name)
    proc, calls = _post_deploy(repo, tmp_path, clone, env_name)
    assert proc.returncode == 0, proc.stderr
    assert f"-m pip install --no-deps --no-build-isolation --editable {clone}" in calls
    # from a folder below the workflow (snakemake --directory results/run1): found upwards
    (clone / "results/run1").mkdir(parents=True)
    (tmp_path / "calls").unlink()
    proc, calls = _post_deploy(repo, tmp_path, clone / "results/run1", env_name)
    assert proc.returncode == 0 and f"--editable {clone}" in calls
    # nowhere near a workflow: a clear message, nothing installed
    (tmp_path / "calls").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc, calls = _post_deploy(repo, tmp_path, elsewhere, env_name)
    assert proc.returncode != 0 and "LATENTAGE_SOURCE" in proc.stderr and calls == ""


def test_the_data_env_runs_its_steps_without_torch(phantom_set, tmp_path):
    """data.yaml has no torch: its steps must not import it."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from latentage.cli import main\n"
            f"sys.exit(main(['phantom-sheet', '--images', '{phantom_set / 'images'}', "
            f"'--labels', '{phantom_set / 'labels.csv'}', '--out', '{tmp_path / 's.png'}']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "s.png").stat().st_size > 10_000


def _def_sections(text):
    header, sections, current = {}, {}, None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.fullmatch(r"%(\w+)\s*", line)
        if m:
            current = m.group(1)
            sections[current] = []
        elif current is None:
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
        else:
            sections[current].append(line.strip())
    return header, sections


def test_the_container_definition_parses_and_pins_what_the_envs_pin(repo, project_pins):
    header, sections = _def_sections((repo / "containers/latentage.def").read_text())
    assert header == {"Bootstrap": "docker", "From": "python:3.11-slim-bookworm"}
    assert {"files", "post", "environment", "runscript", "test", "labels"} <= set(sections)
    for line in sections["files"]:  # copied from the repository root at build time
        src, dst = line.split()
        assert (repo / src).exists() and dst.startswith("/opt/latentage"), line
    post = " ".join(sections["post"]).replace("\\", " ")
    assert CU126_INDEX in post
    assert {n: v for n, v in _pins(post.split()).items() if n in CLUSTER_TORCH} == CLUSTER_TORCH
    assert '"/opt/latentage[torch,analysis]"' in post  # the other pins come from pyproject
    assert _pins(post.split())["pip"] == "26.3"


def test_the_snakefile_names_the_container_for_sdm_apptainer(repo):
    text = (repo / "Snakefile").read_text()
    assert re.search(r'^container: "containers/latentage\.sif"$', text, flags=re.M)
    assert "containers/*.sif" in (repo / ".gitignore").read_text()
