"""The workflow itself: the mini target end to end, and a dry run of the full study config."""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import BIN, snakemake_env
from PIL import Image

WORKFLOW_FILES = ["Snakefile", "config.yaml", "workflow", "envs", "profiles", "tests/mini"]


def _workdir(repo, tmp_path):
    """A copy of the workflow (not results/) in a fresh folder, as a user's clone would be."""
    for name in WORKFLOW_FILES:
        src, dst = repo / name, tmp_path / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy(src, dst)
    return tmp_path


def _snakemake(workdir, *args, timeout=1200):
    proc = subprocess.run([str(BIN / "snakemake"), *args], cwd=workdir, env=snakemake_env(),
                          capture_output=True, text=True, timeout=timeout)
    return proc


@pytest.fixture(scope="module")
def mini_run(repo, tmp_path_factory):
    workdir = _workdir(repo, tmp_path_factory.mktemp("mini"))
    proc = _snakemake(workdir, "--cores", "2", "--configfile", "tests/mini/config.yaml")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    keep = os.environ.get("LATENTAGE_KEEP_MINI")
    if keep:  # CI: .ci/slurm-run compares its SLURM run with this local run (not run twice)
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(workdir, keep, symlinks=True)
    return workdir


@pytest.mark.slow
def test_mini_target_prepares_the_phantom_dataset(mini_run):
    data = mini_run / "results/data"
    summary = json.loads((data / "prepare.json").read_text())
    assert summary["counts"]["train"] == 200 and summary["counts"]["test"] == 40
    for split, n in (("train", 200), ("test", 40)):
        labels = pd.read_parquet(data / split / "labels.parquet")
        assert len(labels) == n
        for r in (4, 8, 16, 32, 64):
            arr = np.load(data / split / f"res{r}.npy", mmap_mode="r")
            assert arr.shape == (n, r, r) and arr.dtype == np.uint8
            assert arr[:8].std() > 5  # real images, not a blank array
    with Image.open(data / "phantom_sheet.png") as im:
        assert im.width > 800
    assert (mini_run / "logs/data/prepare.log").read_text().startswith("prepare:")
    assert (mini_run / "benchmarks/data/prepare.tsv").is_file()


@pytest.mark.slow
def test_mini_target_trains_every_growth_phase(mini_run):
    import torch

    from latentage.gan import checkpoint as ckpt

    kimg = {4: 2, 8: 6, 16: 10, 32: 16}
    for res, end in kimg.items():
        phase = mini_run / f"results/gan/res{res}"
        state = ckpt.load(phase / "checkpoint.pt")
        assert state["resolution"] == res and state["alpha"] == 1.0
        assert abs(state["nimg"] / 1000 - end) < 0.1
        assert not (phase / ".progress").exists()
        assert (phase / "fakes.png").is_file() and any((phase / "ticks").iterdir())
        lines = (phase / "stats.jsonl").read_text().splitlines()
        assert json.loads(lines[-1])["res"] == res
        G, _ = ckpt.load_generator(phase / "checkpoint.pt")
        with torch.no_grad():
            out = G(torch.randn(2, G.latent_size), res)
        assert out.shape == (2, 1, res, res) and torch.isfinite(out).all()
        log = (mini_run / f"logs/gan/res{res}.log").read_text()
        assert "ETA phase" in log and f"phase {res}: done" in log
    snaps = sorted(p.name for r in kimg for p in (mini_run / f"results/gan/res{r}/snapshots").glob("*.pt"))
    assert snaps == [f"{k:06d}.pt" for k in range(2, 17, 2)]
    for fig in ("fig1a_growth.png", "fig1b_samples.png"):
        with Image.open(mini_run / "results/figures" / fig) as im:
            assert im.width > 500 and np.asarray(im.convert("L")).std() > 10
    # the phase checkpoints are protected against accidental deletion
    assert (mini_run / "results/gan/res32/checkpoint.pt").stat().st_mode & 0o222 == 0


@pytest.mark.slow
def test_mini_target_trains_and_evaluates_the_cnn(mini_run):
    cnn = mini_run / "results/cnn"
    report = json.loads((cnn / "eval.json").read_text())
    assert report["backbone"] == "resnet10t" and report["train"]["n"] == 200
    assert report["test"]["n"] == 40 and report["test"]["mae_months"] > 0
    for split, n in (("train", 200), ("test", 40)):
        pred = pd.read_parquet(cnn / f"predictions_{split}.parquet")
        assert len(pred) == n and {"pred_age", "male_prob"} <= set(pred.columns)
    assert (mini_run / "logs/cnn/train_cnn.log").read_text().count("val MAE") >= 1
    with Image.open(mini_run / "results/figures/cnn_eval.png") as im:
        assert im.width > 1000


@pytest.mark.slow
def test_mini_target_compares_a_conditional_gan_with_steering(mini_run):
    from latentage.gan.checkpoint import load_generator

    G, _ = load_generator(mini_run / "results/gan_conditional/res32/checkpoint.pt")
    main, _ = load_generator(mini_run / "results/gan/res32/checkpoint.pt")
    assert G.conditional and not main.conditional
    report = json.loads((mini_run / "results/analysis/conditional/comparison.json").read_text())
    table = pd.read_parquet(mini_run / "results/analysis/conditional/comparison.parquet")
    assert set(report["methods"]) == {"conditional", "steering"}
    assert len(table) == 2 * 3 * 2 * 2  # methods × ages × sexes × hands
    for method, values in report["methods"].items():
        part = table[table.method == method]
        assert values["mae_months"] == pytest.approx(part.error_months.abs().mean())
    for png in ("conditional_comparison.png", "conditional_samples.png"):
        with Image.open(mini_run / "results/figures" / png) as im:
            assert im.width > 600


@pytest.mark.slow
def test_mini_target_has_a_second_opinion_and_a_summary_of_the_claims(mini_run):
    ev = json.loads((mini_run / "results/cnn/eval.json").read_text())
    assert ev["labels"] == "true age (phantom ground truth)"
    agreement = json.loads((mini_run / "results/cnn/agreement.json").read_text())
    table = pd.read_parquet(mini_run / "results/cnn/agreement.parquet")
    labels = pd.read_parquet(mini_run / "results/latent/labels.parquet")
    assert agreement["generated"]["n"] == len(table) == 2000
    np.testing.assert_allclose(table.age_first, labels.age)
    assert not np.allclose(table.age_first, table.age_second)  # another random start
    summary = json.loads((mini_run / "results/summary.json").read_text())
    lasso = json.loads((mini_run / "results/analysis/lasso.json").read_text())
    walk = json.loads((mini_run / "results/analysis/age_walk/walk.json").read_text())
    assert summary["cnn"]["test_mae_months"] == ev["test"]["mae_months"]
    assert summary["lasso"]["holdout_r2"] == lasso["lasso"]["holdout"]["r2"]
    assert summary["walk"]["spearman_rho"] == walk["spearman_rho"]["chain"]
    assert summary["generated"]["age_p95_months"] == pytest.approx(
        float(np.percentile(labels.age, 95)))
    assert summary["second_opinion"]["generated_concordance"] == \
        agreement["generated"]["concordance"]
    text = (mini_run / "results/summary.md").read_text()
    assert f"{ev['test']['mae_months']:.1f} months" in text and "A second CNN" in text


@pytest.mark.slow
def test_mini_target_fans_out_and_gathers_latent_labels(mini_run):
    latent = mini_run / "results/latent"
    z = np.load(latent / "z.npy")
    labels = pd.read_parquet(latent / "labels.parquet")
    assert z.shape == (2000, 32) and z.dtype == np.float32
    assert list(labels.idx) == list(range(2000))
    assert sorted(p.name for p in (latent / "shards").glob("*.parquet")) == \
        [f"{i}-of-4.parquet" for i in range(1, 5)]
    from latentage.latent.label_shard import latent as draw

    assert np.array_equal(z[1234], draw(7, 1234, 32))  # seed 7 of the mini config
    assert (mini_run / "results/figures/latent_age_distribution.png").is_file()


@pytest.mark.slow
def test_mini_target_measures_every_snapshot_and_the_reals(mini_run):
    metrics = mini_run / "results/metrics"
    real = json.loads((metrics / "real.json").read_text())
    # offline: FID and IS are skipped with the reason, never computed with stand-in weights
    assert set(real["skipped"]) == {"fid", "is"} and "fid" not in real["values"]
    assert "pt_inception-2015-12-05-6726825d.pth" in real["skipped"]["fid"]
    assert {"ms_ssim", "swd_32", "swd_16", "swd_avg", "domain_fd"} <= set(real["values"])
    # 200 reals: SWD's 100 fit twice (a measured floor), domain FD's 160 do not (extrapolated)
    assert real["floors"]["swd"]["matched"] and not real["floors"]["domain_fd"]["matched"]
    table = pd.read_csv(metrics / "metrics.tsv", sep="\t")
    assert list(table.kimg) == list(range(2, 17, 2))
    assert list(table.resolution) == [4, 8, 8, 16, 16, 32, 32, 32]
    assert table[["ms_ssim", "swd_avg", "domain_fd"]].notna().all().all()
    assert (table.skipped == "fid,is").all()
    log = (mini_run / "logs/metrics/snapshot_metrics_000016.log").read_text()
    assert "NOTICE: FID, IS skipped" in log
    assert (mini_run / "benchmarks/metrics/snapshot_metrics_000016.tsv").is_file()
    nn = pd.read_parquet(metrics / "nearest_neighbours.parquet")
    assert len(nn) == 6 * 4 * 2 and set(nn.by) == {"pixel", "cnn_features"}
    assert (nn.groupby(["query", "by"]).distance.apply(lambda d: d.is_monotonic_increasing)).all()
    for fig in ("fig2a_metrics.png", "fig2b_swd.png", "nn_pixel.png", "nn_features.png"):
        with Image.open(mini_run / "results/figures" / fig) as im:
            assert im.width > 600 and np.asarray(im.convert("L")).std() > 10


@pytest.mark.slow
def test_mini_target_analyses_the_latent_space(mini_run):
    analysis = mini_run / "results/analysis"
    lasso = json.loads((analysis / "lasso.json").read_text())
    assert lasso["n"] == 2000 and lasso["folds"] == 5
    assert lasso["lasso"]["holdout"]["n"] == 400 and lasso["lasso"]["holdout"]["r2"] > 0.3
    assert np.load(analysis / "lasso_coef.npy").shape == (32,)
    walk = json.loads((analysis / "age_walk/walk.json").read_text())
    assert len(walk["chain"]) >= 2 and walk["frames"] == 4 * (len(walk["chain"]) - 1) + 1
    assert set(walk["spearman_rho"]) == {"chain", "lasso"}
    for video in ("chain_walk.mp4", "chain_walk.gif", "lasso_walk.mp4"):
        assert (analysis / "age_walk" / video).stat().st_size > 1000
    import imageio.v3 as iio

    frames = iio.imread(analysis / "age_walk/chain_walk.gif")
    assert len(frames) == walk["frames"]
    assert len(list((analysis / "age_walk/frames").glob("chain_*.png"))) == walk["frames"]
    axes = json.loads((analysis / "axes.json").read_text())
    assert abs(axes["cosine_age_sex"]["projected"]) < 1e-9
    assert axes["fit"]["orthogonal"]["ortho_gap"] < 1e-3
    assert axes["n_fit"] == 1600 and axes["n_holdout"] == 400 and axes["edit_latents"] == 64
    edits = pd.read_csv(analysis / "axes_edits.csv")
    assert set(edits.method) == {"ols", "orthogonal", "projected"}
    atlas = pd.read_csv(analysis / "atlas/atlas.csv")
    summary = json.loads((analysis / "atlas/atlas.json").read_text())
    ages = summary["ages_years"]  # chosen inside the range the CNN predicts (config: null)
    assert len(atlas) == len(ages) * len(summary["sexes"]) * 3
    assert sorted(p.name for p in (analysis / "atlas/sheets").glob("*.png")) == \
        sorted(f"atlas_{a:g}y.png" for a in ages)
    assert summary["abs_error_months"]["mean"] <= summary["start_abs_error_months"]
    for fig in ("fig3a_lasso.png", "fig3b_age_walk.png", "attribute_edits.png", "atlas.png"):
        with Image.open(mini_run / "results/figures" / fig) as im:
            assert im.width > 500


@pytest.mark.slow
def test_deleting_one_shard_reruns_only_that_shard_and_what_follows(mini_run):
    shard = "results/latent/shards/3-of-4.parquet"
    before = pd.read_parquet(mini_run / shard)
    (mini_run / shard).unlink()
    # asking for the shard plans that one job only ...
    proc = _snakemake(mini_run, shard, "-n", "--configfile", "tests/mini/config.yaml")
    assert _job_counts(proc) == {"label_shard": 1, "total": 1}, proc.stdout
    assert "scatteritem=3-of-4" in proc.stdout
    proc = _snakemake(mini_run, shard, "--cores", "2", "--configfile", "tests/mini/config.yaml")
    assert proc.returncode == 0, proc.stderr[-2000:]
    pd.testing.assert_frame_equal(pd.read_parquet(mini_run / shard), before)
    # the shard came back identical (per-index latents), so Snakemake's checksum of it matches
    # and the gather is not rerun; a shard whose content changed reruns the gather and what
    # depends on it, nothing else
    proc = _snakemake(mini_run, "-n", "--configfile", "tests/mini/config.yaml")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    original = (mini_run / shard).read_bytes()
    before.assign(age=before.age + 1).to_parquet(mini_run / shard, index=False)
    try:
        proc = _snakemake(mini_run, "-n", "--configfile", "tests/mini/config.yaml")
        assert _job_counts(proc) == {"gather_labels": 1, "latent_age_distribution": 1,
                                     "lasso": 1, "age_walk": 1, "attribute_axes": 1, "atlas": 1,
                                     "cnn_agreement": 1, "conditional_comparison": 1,
                                     "summary": 1, "all": 1, "total": 10}, proc.stdout
    finally:
        (mini_run / shard).write_bytes(original)
    proc = _snakemake(mini_run, "-n", "--configfile", "tests/mini/config.yaml")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_editing_one_config_value_reruns_only_what_depends_on_it(mini_run):
    import yaml

    cfg = yaml.safe_load((mini_run / "tests/mini/config.yaml").read_text())
    cfg["cnn"]["epochs"] += 1
    # keep the key order: Snakemake compares params by their repr
    (mini_run / "edited.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = _snakemake(mini_run, "-n", "--configfile", "edited.yaml")
    # the CNNs (the second opinion is trained with the same settings) and everything they
    # label or measure; no data preparation, no GAN phase (neither GAN's)
    assert _job_counts(proc) == {"train_cnn": 1, "evaluate_cnn": 1, "label_shard": 4,
                                 "gather_labels": 1, "latent_age_distribution": 1,
                                 "real_metrics": 1, "snapshot_metrics": 8, "gather_metrics": 1,
                                 "metrics_figures": 1, "nearest_neighbours": 1, "lasso": 1,
                                 "age_walk": 1, "attribute_axes": 1, "atlas": 1,
                                 "train_second_cnn": 1, "cnn_agreement": 1,
                                 "conditional_comparison": 1, "summary": 1,
                                 "all": 1, "total": 29}, proc.stdout
    assert "params" in proc.stdout.lower()


@pytest.mark.slow
def test_editing_total_kimg_reruns_only_the_last_growth_phase(mini_run):
    """Training longer (or shorter) moves only where the last phase ends: the phases below it
    are not planned again (each would be days on the full study), only the last one of each
    GAN and what reads it. The last phase restarts from its predecessor's checkpoint, which
    train_phase accepts under the new total (tests/test_gan_train.py)."""
    import yaml

    cfg = yaml.safe_load((mini_run / "tests/mini/config.yaml").read_text())
    cfg["gan"]["schedule"]["total_kimg"] += 2
    (mini_run / "longer.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = _snakemake(mini_run, "-n", "--configfile", "longer.yaml")
    assert _job_counts(proc)["train_phase"] == 2, proc.stdout
    phases = re.findall(r"rule train_phase:.*?wildcards: (gan=\w+, res=\d+)", proc.stdout,
                        flags=re.S)
    assert sorted(phases) == ["gan=gan, res=32", "gan=gan_conditional, res=32"], proc.stdout


SPEED_EDITS = {
    "gan.checkpoint_kimg": 1, "gan.precision": "bf16", "gan.channels_last": False,
    "gan.compile": True, "gan.grid_size": 4, "gan.max_abs_loss": 1.0e5, "gan.max_restores": 9,
    "gan.fade_stretch": 2.0, "gan.schedule.max_minibatch_per_gpu": {32: 8},
    "cnn.precision": "fp16", "cnn.allow_download": True, "latent.batch_size": 7,
    "metrics.batch_size": 8, "metrics.allow_download": True, "analysis.batch_size": 5,
}


def _speed_edited(mini_run, keys) -> str:
    """A copy of the mini config with `keys` set to their SPEED_EDITS value; its file name."""
    import yaml

    cfg = yaml.safe_load((mini_run / "tests/mini/config.yaml").read_text())
    for key in keys:
        section, rest = key.split(".", 1)
        node = cfg.setdefault(section, {})
        parts = rest.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = SPEED_EDITS[key]
    name = f"speed_{len(keys)}_{keys[0].replace('.', '_')}.yaml"
    (mini_run / name).write_text(yaml.safe_dump(cfg, sort_keys=False))
    return name


def _nothing_to_do(mini_run, name) -> bool:
    proc = _snakemake(mini_run, "-n", "--configfile", name)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_editing_the_speed_settings_reruns_nothing(mini_run):
    """Keys that change only speed or cadence are not in any rule's params (they reach the
    step as the `speed` resource): editing them leaves every output up to date. All are edited
    in one dry run (a key that reached any rule's params would change them); only if that
    plans a job is each key tried alone, to name the ones at fault."""
    from latentage.config import RUNTIME_KEYS

    assert set(SPEED_EDITS) == {f"{s}.{k}" for s, keys in RUNTIME_KEYS.items() for k in keys}
    keys = sorted(SPEED_EDITS)
    if _nothing_to_do(mini_run, _speed_edited(mini_run, keys)):
        return
    at_fault = [key for key in keys if not _nothing_to_do(mini_run, _speed_edited(mini_run, [key]))]
    pytest.fail(f"editing these speed settings reruns jobs: {at_fault or 'only all together'}")


@pytest.mark.slow
def test_editing_the_lasso_folds_reruns_the_lasso_and_its_figure_only(mini_run):
    import yaml

    cfg = yaml.safe_load((mini_run / "tests/mini/config.yaml").read_text())
    cfg["analysis"]["lasso"]["folds"] = 4
    (mini_run / "folds.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = _snakemake(mini_run, "-n", "--configfile", "folds.yaml")
    # the walk reads the LASSO's direction, so it follows; training and labelling do not
    assert _job_counts(proc) == {"lasso": 1, "age_walk": 1, "summary": 1, "all": 1,
                                 "total": 4}, proc.stdout
    proc = _snakemake(mini_run, "--cores", "2", "--configfile", "folds.yaml")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((mini_run / "results/analysis/lasso.json").read_text())["folds"] == 4
    proc = _snakemake(mini_run, "--cores", "2", "--configfile", "tests/mini/config.yaml")
    assert proc.returncode == 0, proc.stderr[-2000:]


def _job_counts(proc) -> dict:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    table = (proc.stdout + proc.stderr).split("Job stats:")[-1].split("Reasons:")[0]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.mark.slow
def test_report_contains_every_reported_figure(mini_run):
    import zipfile

    proc = _snakemake(mini_run, "--report", "report.zip", "--configfile",
                      "tests/mini/config.yaml")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rules = "".join(p.read_text() for p in (mini_run / "workflow/rules").glob("*.smk"))
    reported = {m.split("/")[-1] for m in re.findall(r'report\(\s*"([^"]+)"', rules)}
    assert len(reported) >= 5
    with zipfile.ZipFile(mini_run / "report.zip") as zf:
        names = {n.split("/")[-1] for n in zf.namelist()}
        html = zf.read("report/report.html").decode()
    assert reported <= names, reported - names
    assert "latentage" in html
    # every category, and the workflow description (workflow.rst)
    for category in set(re.findall(r'category="([^"]+)"', rules)):
        assert category in html, category
    assert "phantom" in html.lower()


def test_every_config_key_a_caption_reads_exists_and_is_never_null(repo):
    """Jinja renders a missing key or an index into null as nothing: each one a caption reads
    must be a schema key whose default is not null, without indexing."""
    from latentage.config import subschema

    for rst in (repo / "workflow/report").glob("*.rst"):
        for expr in re.findall(r"\{\{(.*?)\}\}", rst.read_text()):
            for path in re.findall(r'snakemake\.config((?:\["\w+"\])+)(\[\d+\])?', expr):
                keys = re.findall(r'"(\w+)"', path[0])
                assert not path[1], f"{rst.name}: {expr.strip()} indexes into a list"
                node = subschema(".".join(keys))
                allowed_null = " or " in expr  # an explicit fallback
                assert node.get("default") is not None or allowed_null, \
                    f"{rst.name}: {'.'.join(keys)} may be null"


@pytest.mark.slow
def test_mini_target_is_up_to_date_after_a_run(mini_run):
    proc = _snakemake(mini_run, "-n", "--configfile", "tests/mini/config.yaml")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.fixture
def fake_rsna(repo, tmp_path):
    """The full config's layout with a handful of RSNA-format images."""
    workdir = _workdir(repo, tmp_path)
    images = workdir / "resources/rsna/boneage-training-dataset"
    images.mkdir(parents=True)
    rows = []
    for i in range(1377, 1387):
        Image.new("L", (300, 380), 40).save(images / f"{i}.png")
        rows.append({"id": i, "boneage": 100 + i % 50, "male": i % 2 == 0})
    pd.DataFrame(rows).to_csv(workdir / "resources/rsna/boneage-training-dataset.csv", index=False)
    return workdir


def test_full_config_plans_against_a_fake_rsna_folder(fake_rsna):
    proc = _snakemake(fake_rsna, "-n", "--quiet", "rules")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "prepare" in out and "phantom" not in out.replace("phantom_sheet", "")


def test_full_config_under_the_slurm_profile_plans_four_gpu_growth_phases(fake_rsna):
    proc = _snakemake(fake_rsna, "-n", "--profile", "profiles/slurm")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    jobs = out.split("\nrule ")
    phases = [j for j in jobs if j.startswith("train_phase:")]
    assert sorted(int(re.search(r"wildcards: gan=gan, res=(\d+)", j).group(1))
                  for j in phases) == \
        [4, 8, 16, 32, 64, 128, 256, 512, 1024]
    for job in phases:
        assert "gpu=4" in job and "gpu_model=v100" in job
        assert "latentage --nproc 4 train-phase" in job
    assert re.search(r"train_phase\s+9", out)
    counts = _job_counts(proc)
    # 12,000 kimg / 240 kimg per snapshot; 40 label shards
    assert counts["snapshot_metrics"] == 50 and counts["label_shard"] == 40
    assert counts["lasso"] == counts["age_walk"] == counts["atlas"] == 1
    for rule in ("label_shard", "snapshot_metrics", "train_cnn", "real_metrics"):
        one = [j for j in jobs if j.startswith(f"{rule}:")]
        assert one and all("gpu=1" in j for j in one), rule
    prepare = next(j for j in jobs if j.startswith("prepare:"))
    assert "--workers 8" in prepare and "gpu=" not in prepare


def test_full_config_without_data_names_the_missing_file(repo, tmp_path):
    workdir = _workdir(repo, tmp_path)
    proc = _snakemake(workdir, "-n")
    assert proc.returncode != 0
    assert "resources/rsna/boneage-training-dataset" in proc.stdout + proc.stderr


def test_bad_config_fails_at_parse_time_naming_the_key(repo, tmp_path):
    workdir = _workdir(repo, tmp_path)
    (workdir / "bad.yaml").write_text("data:\n  max_res: 1000\n")
    proc = _snakemake(workdir, "-n", "--configfile", "bad.yaml")
    assert proc.returncode != 0
    assert "config key data.max_res: 1000 is not one of" in proc.stdout + proc.stderr
