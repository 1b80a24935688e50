"""The whole DAG on a labelled folder in RSNA's format with the variation real archives have:
sizes from 90 to 230 px, portrait and landscape, 8-bit, RGB and 16-bit PNGs, film borders
bright and dark, `True`/`False` sex flags — with no analysis setting tuned to it (the walk's
and atlas's ages and sexes, and the nearest-neighbour resolution, all from their defaults).

The images are phantoms (the only labelled hands this machine has) dressed as scans."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from test_workflow import _snakemake, _workdir

from latentage.data.phantom import make_phantom


def _scan(image: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A phantom dressed as a scanned film: a border, another size and aspect, another mode."""
    level = int(rng.choice([8, 235]))                       # dark or bright film edge
    top, bottom, left, right = rng.integers(0, 24, 4)
    framed = np.pad(image, ((top, bottom), (left, right)), constant_values=level)
    scale = rng.uniform(0.7, 1.6)
    w, h = framed.shape[1], framed.shape[0]
    size = (max(int(w * scale * rng.uniform(0.85, 1.15)), 64), max(int(h * scale), 64))
    out = Image.fromarray(framed).resize(size, Image.BILINEAR)
    kind = rng.integers(3)
    if kind == 1:
        return out.convert("RGB")
    if kind == 2:
        return Image.fromarray(np.asarray(out, np.uint16) * 257)  # 16-bit grayscale
    return out


@pytest.fixture(scope="module")
def real_folder_run(repo, tmp_path_factory):
    workdir = _workdir(repo, tmp_path_factory.mktemp("real_folder"))
    images = workdir / "resources/scans"
    images.mkdir(parents=True)
    rng = np.random.default_rng(3)
    rows, modes, sizes = [], set(), set()
    for i in range(360):
        image, age, male, _ = make_phantom(11, i, 128)
        scan = _scan(image, rng)
        modes.add(scan.mode)
        sizes.add(scan.size)
        scan.save(images / f"{5000 + i}.png")
        rows.append({"id": 5000 + i, "boneage": int(age), "male": bool(male)})
    assert {"L", "RGB", "I;16"} <= modes and len(sizes) > 100
    pd.DataFrame(rows).to_csv(workdir / "resources/scans.csv", index=False)
    config = {
        "seed": 3,
        "data": {"source": "rsna", "rsna": {"images": "resources/scans",
                                            "labels": "resources/scans.csv"},
                 "max_res": 32, "test_size": 40, "min_image_size": 64},
        "gan": {"latent_size": 16, "fmap_base": 128, "fmap_max": 32, "ema_beta": 0.9,
                "schedule": {"lod_training_kimg": 1, "lod_transition_kimg": 1,
                             "total_kimg": 7, "minibatch_base": 16,
                             "minibatch": {4: 16, 8: 16, 16: 16, 32: 16},
                             "tick_kimg_base": 1},
                "snapshot_kimg": 3, "checkpoint_kimg": 3},
        "cnn": {"backbone": "resnet10t", "pretrained": False, "input_size": 32, "epochs": 3,
                "batch_size": 32, "lr": 0.003, "second_opinion": {"n": 200}},
        "latent": {"n": 400, "shards": 2, "batch_size": 100},
        "metrics": {"n": {"fid": 40, "is": 40, "ms_ssim": 40, "swd": 40, "domain_fd": 40},
                    "batch_size": 20, "allow_download": False, "missing_weights": "skip"},
        "analysis": {"batch_size": 50, "lasso": {"folds": 3, "n_alphas": 10},
                     "age_walk": {"frames": 2}, "atlas": {"per_age": 2, "steps": 2}},
    }
    (workdir / "scans.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = _snakemake(workdir, "--cores", "2", "--configfile", "scans.yaml")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return workdir


@pytest.mark.slow
def test_a_real_looking_folder_runs_the_whole_dag_untuned(real_folder_run):
    run = real_folder_run
    prep = json.loads((run / "results/data/prepare.json").read_text())
    assert {k: prep["counts"][k] for k in ("train", "test", "used", "skipped")} == {
        "train": 320, "test": 40, "used": 360, "skipped": 0}
    train = np.load(run / "results/data/train/res32.npy")
    assert train.shape == (320, 32, 32) and train.dtype == np.uint8
    ev = json.loads((run / "results/cnn/eval.json").read_text())
    assert ev["labels"] == "a rater's reading (bone-age labels)"
    labels = pd.read_parquet(run / "results/latent/labels.parquet")
    p2, p5, p7, p95 = np.percentile(labels.age, [2.5, 5, 7.5, 95])
    # the walk's and the atlas's ages come from what the CNN predicts for generated hands (the
    # config.yaml underneath leaves them null)
    walk = json.loads((run / "results/analysis/age_walk/walk.json").read_text())
    assert walk["settings"]["start_age"] == pytest.approx([p2, p7], rel=1e-5)
    assert walk["settings"]["end_age"] == pytest.approx(p95, rel=1e-5)
    atlas = json.loads((run / "results/analysis/atlas/atlas.json").read_text())
    assert all(p5 / 12 - 0.05 <= a <= p95 / 12 + 0.05 for a in atlas["ages_years"])
    sexes = set(np.where(labels.male_prob > 0.5, "male", "female"))
    assert set(atlas["sexes"]) <= sexes
    # the nearest-neighbour resolution follows the GAN's final resolution (32², not 256)
    nn = pd.read_parquet(run / "results/metrics/nearest_neighbours.parquet")
    assert len(nn) > 0
    summary = json.loads((run / "results/summary.json").read_text())
    assert summary["generated"]["n"] == 400 and summary["second_opinion"]["backbone"]
