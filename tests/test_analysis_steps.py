"""The analysis steps (lasso, age_walk, attribute_axes, atlas) end to end on tiny fixtures: a
random 32² generator and a random CNN label a pool of latents, as label_shard would."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import quiet
from PIL import Image

from latentage.analysis.age_walk import WalkOutputs, age_walk
from latentage.analysis.atlas import atlas, atlas_direction
from latentage.analysis.attribute_axes import attribute_axes
from latentage.analysis.lasso import fit_lasso, lasso, split_holdout
from latentage.config import build
from latentage.errors import InputError
from latentage.latent.gather_labels import gather_labels
from latentage.latent.label_shard import label_shard


@pytest.fixture(scope="module")
def pool(tiny_generator, tiny_cnn, tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    settings = build("latent", {"n": 400, "shards": 1, "batch_size": 100})
    label_shard(generator=tiny_generator / "000002.pt", cnn=tiny_cnn, labels=root / "s.parquet",
                z=root / "s.npy", shard="1-of-1", settings=settings, seed=2, log=quiet)
    gather_labels(shard_labels=[root / "s.parquet"], shard_z=[root / "s.npy"],
                  z=root / "z.npy", labels=root / "labels.parquet", n=400, log=quiet)
    return {"z": root / "z.npy", "labels": root / "labels.parquet",
            "generator": tiny_generator / "000002.pt", "cnn": tiny_cnn}


@pytest.fixture(scope="module")
def lasso_out(pool, tmp_path_factory):
    root = tmp_path_factory.mktemp("lasso")
    settings = build("analysis.lasso", {"folds": 3, "holdout": 0.25, "n_alphas": 10})
    summary = lasso(z=pool["z"], labels=pool["labels"], json_out=root / "lasso.json",
                    coef=root / "coef.npy", figure=root / "fig.png", settings=settings, seed=4,
                    log=quiet)
    return root, summary


def test_lasso_step_writes_the_fit_it_reports(pool, lasso_out):
    root, summary = lasso_out
    z = np.load(pool["z"])
    age = pd.read_parquet(pool["labels"]).age.to_numpy(np.float64)
    fit = fit_lasso(z, age, 3, 0.25, 4, 10)
    assert json.loads((root / "lasso.json").read_text())["alpha"] == fit["summary"]["alpha"]
    np.testing.assert_array_equal(np.load(root / "coef.npy"), fit["coef"])
    assert summary["lasso"]["holdout"]["n"] == 100
    train, test = split_holdout(400, 0.25, 4)
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 400
    with Image.open(root / "fig.png") as im:
        assert im.width > 500


def test_age_walk_step_writes_every_output(pool, lasso_out, tmp_path):
    root, _ = lasso_out
    out = WalkOutputs(tmp_path / "chain.mp4", tmp_path / "chain.gif", tmp_path / "lasso.mp4",
                      tmp_path / "walk.json", tmp_path / "frames.parquet", tmp_path / "frames",
                      tmp_path / "chain.npy", tmp_path / "lasso.npy", tmp_path / "fig.png")
    summary = age_walk(generator=pool["generator"], cnn=pool["cnn"], z=pool["z"],
                       labels=pool["labels"], lasso_json=root / "lasso.json",
                       lasso_coef=root / "coef.npy", outputs=out,
                       settings=build("analysis.age_walk", {"frames": 3, "fps": 4}), seed=1,
                       batch_size=16, log=quiet)
    n_frames = 3 * (len(summary["chain"]) - 1) + 1
    assert summary["frames"] == n_frames and len(summary["chain"]) >= 2
    age = pd.read_parquet(pool["labels"]).age.to_numpy()
    chain_ages = age[summary["chain"]]
    assert np.all(np.diff(chain_ages) > 0)  # every link is older
    assert summary["settings"]["end_age"] == pytest.approx(np.percentile(age, 95))
    frames = pd.read_parquet(out.frames)
    assert len(frames) == 2 * n_frames and set(frames.walk) == {"chain", "lasso"}
    assert len(list(out.frames_dir.glob("chain_*.png"))) == n_frames
    assert np.load(out.chain_latents).shape == (n_frames, 8)
    import imageio.v3 as iio

    assert len(iio.imread(out.chain_gif)) == n_frames
    assert out.chain_video.stat().st_size > 1000 and out.lasso_video.stat().st_size > 1000


def test_attribute_axes_step_fits_on_some_latents_and_edits_others(pool, tmp_path):
    settings = build("analysis.axes", {"edit_n": 20, "holdout": 0.25})
    summary = attribute_axes(generator=pool["generator"], cnn=pool["cnn"], z=pool["z"],
                             labels=pool["labels"], json_out=tmp_path / "axes.json",
                             npz=tmp_path / "axes.npz", table=tmp_path / "edits.csv",
                             figure=tmp_path / "edits.png", settings=settings, seed=3,
                             log=quiet)
    assert (summary["n_fit"], summary["n_holdout"], summary["edit_latents"]) == (300, 100, 20)
    assert set(summary["fit"]) == {"ols", "unit_columns", "orthogonal"}
    assert all(f["mse_holdout"] is not None for f in summary["fit"].values())
    u, _ = atlas_direction(tmp_path / "axes.npz")
    with np.load(tmp_path / "axes.npz") as ax:
        assert abs(u @ ax["ols_sex"]) < 1e-12 and np.linalg.norm(u) == pytest.approx(1)
    edits = pd.read_csv(tmp_path / "edits.csv")
    assert set(edits.method) == {"ols", "orthogonal", "projected"}


def test_the_atlas_refuses_a_direction_that_is_not_orthogonal_to_sex(pool, tmp_path):
    d = np.zeros(8)
    d[0] = 1.0
    np.savez(tmp_path / "bad.npz", projected_age=d, ols_sex=d, ols_W=np.ones((8, 2)),
             target_sd=np.ones(2))
    with pytest.raises(InputError, match="not orthogonal to ols_sex"):
        atlas_direction(tmp_path / "bad.npz")


def test_atlas_step_steers_to_ages_inside_the_predicted_range(pool, tmp_path):
    attribute_axes(generator=pool["generator"], cnn=pool["cnn"], z=pool["z"],
                   labels=pool["labels"], json_out=tmp_path / "axes.json",
                   npz=tmp_path / "axes.npz", table=tmp_path / "edits.csv",
                   figure=tmp_path / "edits.png", settings=build("analysis.axes", {"edit_n": 8}),
                   seed=3, log=quiet)
    summary = atlas(generator=pool["generator"], cnn=pool["cnn"], z=pool["z"],
                    labels=pool["labels"], axes=tmp_path / "axes.npz",
                    table=tmp_path / "atlas.csv", summary=tmp_path / "atlas.json",
                    sheets=tmp_path / "sheets", figure=tmp_path / "atlas.png",
                    settings=build("analysis.atlas", {"per_age": 2, "steps": 3}), seed=5,
                    batch_size=16, log=quiet)
    table = pd.read_csv(tmp_path / "atlas.csv")
    n_ages, n_sexes = len(summary["ages_years"]), len(summary["sexes"])
    assert len(table) == n_ages * n_sexes * 2
    assert sorted(p.name for p in (tmp_path / "sheets").iterdir()) == \
        sorted(f"atlas_{a:g}y.png" for a in summary["ages_years"])
    assert summary["abs_error_months"]["mean"] == pytest.approx(table.error_months.abs().mean())


def _summary(gen_diff, real_diff):
    return {
        "cnn": {"labels": "true age (phantom ground truth)", "backbone": "resnet10t",
                "test_mae_months": 11.6, "train_mae_months": 9.3, "test_sex_auc": 0.79,
                "test_n": 500},
        "generated": {"n": 4000, "age_p5_months": 48.0, "age_p95_months": 137.0,
                      "age_span_p5_p95_years": 89 / 12, "male_share": 0.9},
        "second_opinion": {"backbone": "resnet10t", "second_test_mae_months": 12.0,
                           "generated_mean_abs_difference_months": gen_diff,
                           "generated_concordance": 0.5, "generated_sex_agreement": 0.88,
                           "real_mean_abs_difference_months": real_diff,
                           "real_concordance": 0.95},
        "lasso": {"dim": 32, "holdout_r2": 0.38, "nonzero": 32},
        "walk": {"start_age_months": 64.0, "end_age_months": 179.0, "spearman_rho": 0.87},
        "atlas": {"ages_years": [4, 8, 12, 16], "sexes": ["female", "male"],
                  "mean_abs_error_months": 33.5, "max_abs_error_months": 86.4, "sex_kept": 0.58},
    }


def test_summary_words_follow_the_numbers():
    from latentage.analysis.summary import markdown

    agree = markdown(_summary(gen_diff=12.0, real_diff=9.6))
    assert "about as consistently as real ones" in agree
    disagree = markdown(_summary(gen_diff=19.4, real_diff=9.6))
    assert "disagree 2.0× as much on generated hands" in disagree
    assert "not one training run's accident" not in disagree
    # the atlas sentence reports the miss, it does not claim the ages were reached
    assert "86.4" in disagree and "33.5 months from the request" in disagree
    assert "58 %" in disagree
