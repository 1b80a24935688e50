"""The demo's configuration and its promise check (scripts/check_demo.py). The demo itself runs in
CI (`.ci/run`: `make demo`, then the check), not here: it takes about 10 minutes."""

import copy
import importlib.util
import json

import pytest
import yaml

import latentage.config as lc


@pytest.fixture(scope="module")
def check_demo(repo):
    spec = importlib.util.spec_from_file_location("check_demo", repo / "scripts/check_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_config(repo):
    """config.yaml with demo/config.yaml on top, as `snakemake --configfile demo/config.yaml`."""
    full = yaml.safe_load((repo / "config.yaml").read_text())
    return lc._merge(full, yaml.safe_load((repo / "demo/config.yaml").read_text()))


def test_the_demo_config_is_valid_and_asks_for_what_the_check_expects(demo_config, check_demo):
    lc.validate_config(demo_config)
    lc.check_config(demo_config)
    atlas = demo_config["analysis"]["atlas"]
    assert atlas["ages"] == check_demo.ATLAS_AGES  # years
    assert sorted(atlas["sexes"]) == check_demo.ATLAS_SEXES
    # the CNN reads the GAN's own resolution: a CNN trained on sharper images than G makes
    # reads G's hands as one narrow band of ages
    assert lc.cnn_resolution(demo_config) == lc.gan_max_res(demo_config)


GOOD = {
    "cnn": {"test_mae_months": 10.2},
    "generated": {"age_p5_months": 60.0, "age_p95_months": 170.0, "age_span_p5_p95_years": 110 / 12,
                  "male_share": 0.6},
    "lasso": {"holdout_r2": 0.7},
    "walk": {"start_age_months": 70.0, "end_age_months": 180.0, "spearman_rho": 0.95},
    "atlas": {"ages_years": [4, 8, 12, 16], "sexes": ["female", "male"],
              "max_abs_error_months": 4.0, "sex_kept": 1.0},
}


def test_check_passes_a_run_that_keeps_every_promise(check_demo, tmp_path, capsys):
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(GOOD))
    assert check_demo.main([str(path)]) == 0
    assert "10 of 10 targets met" in capsys.readouterr().out


@pytest.mark.parametrize("section, key, value, target", [
    ("cnn", "test_mae_months", 12.5, "CNN test MAE"),
    ("generated", "age_span_p5_p95_years", 7.9, "span ≥ 8 years"),
    ("generated", "male_share", 1.0, "both sexes"),
    ("lasso", "holdout_r2", 0.45, "LASSO"),
    ("lasso", "holdout_r2", None, "LASSO"),
    ("walk", "start_age_months", 73.0, "walk starts"),
    ("walk", "end_age_months", 167.0, "walk ends"),
    ("walk", "spearman_rho", 0.89, "Spearman"),
    ("atlas", "ages_years", [4, 8, 12], "atlas: 4, 8, 12, 16"),
    ("atlas", "sexes", ["female"], "atlas: 4, 8, 12, 16"),
    ("atlas", "max_abs_error_months", 6.5, "within 6 months"),
    ("atlas", "sex_kept", 0.96, "keeps the requested sex"),
])
def test_check_names_each_missed_promise(check_demo, tmp_path, capsys, section, key, value,
                                         target):
    summary = copy.deepcopy(GOOD)
    summary[section][key] = value
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    assert check_demo.main([str(path)]) == 1
    out = capsys.readouterr().out
    missed = [line for line in out.splitlines() if "MISS" in line]
    assert len(missed) == 1 and target in missed[0]
    assert check_demo.main([str(path), "--report-only"]) == 0


def test_require_fails_only_on_the_named_targets(check_demo, tmp_path, capsys):
    summary = copy.deepcopy(GOOD)
    summary["lasso"]["holdout_r2"] = 0.38  # missed, but not required
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    assert check_demo.main([str(path), "--require", "cnn_mae,walk_end"]) == 0
    assert check_demo.main([str(path), "--require", "cnn_mae,lasso_r2"]) == 1
    assert "required target(s) missed: lasso_r2" in capsys.readouterr().err
    assert check_demo.main([str(path), "--require", "cnn_mea"]) == 2
    assert len(check_demo.KEYS) == len(check_demo.targets(GOOD))
