"""envs/*.yaml are real, pinned, used by every rule, and agree with pyproject.toml."""

import re
import tomllib

import pytest
import yaml


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


def test_envs_parse_pin_and_agree_with_pyproject(repo, project_pins):
    envs = sorted((repo / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        deps = spec["dependencies"]
        assert "python=3.11" in deps, env.name
        pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
        assert any(p.startswith("..") for p in pip), f"{env.name} must pip-install this package"
        pins = _pins(p for p in pip if not p.startswith(".."))
        assert pins, env.name
        for name, version in pins.items():
            assert project_pins.get(name) == version, f"{env.name}: {name}=={version} vs pyproject"
        loose = [p for p in pip if not p.startswith("..") and "==" not in p]
        assert not loose, f"{env.name}: unpinned {loose}"


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
