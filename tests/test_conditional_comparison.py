"""The conditional_comparison step on tiny fixtures: a random conditional generator against
steering of the random unconditional one, read by a random CNN. The numbers it reports are
recomputed here from their definitions."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_G, quiet
from test_analysis_steps import pool  # noqa: F401 (fixture)

from latentage.analysis.attribute_axes import attribute_axes
from latentage.analysis.conditional_comparison import (
    conditional_comparison,
    conditional_samples,
    diversity,
    steering_starts,
)
from latentage.cnn.predict import BoneAgePredictor
from latentage.config import build
from latentage.errors import InputError
from latentage.gan import checkpoint as ckpt
from latentage.gan.networks import Generator
from latentage.metrics.frechet import frechet_distance, gaussian_stats
from latentage.metrics.measure import on_real_grid
from latentage.metrics.real_metrics import real_metrics


@pytest.fixture(scope="module")
def inputs(pool, smooth_reals, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("conditional")
    attribute_axes(generator=pool["generator"], cnn=pool["cnn"], z=pool["z"],
                   labels=pool["labels"], json_out=root / "axes.json", npz=root / "axes.npz",
                   table=root / "edits.csv", figure=root / "edits.png",
                   settings=build("analysis.axes", {"edit_n": 8}), seed=3, log=quiet)
    real_metrics(reals=smooth_reals, cnn=pool["cnn"], json_out=root / "real.json",
                 stats_out=root / "real_stats.npz",
                 settings=build("metrics", {"enabled": ["domain_fd"], "n": {"domain_fd": 20},
                                            "batch_size": 8}), seed=1, log=quiet)
    torch.manual_seed(1)
    Gc = Generator(**TINY_G, conditional=True)
    Gc.set_label_distribution(np.linspace(12, 216, 50), np.arange(50) % 2)
    ckpt.save_snapshot(root / "conditional.pt", Gc.state_dict(),
                       {"G": {**TINY_G, "conditional": True}}, resolution=32, alpha=1.0,
                       kimg=2.0)
    return {**pool, "axes": root / "axes.npz", "real_stats": root / "real_stats.npz",
            "conditional": root / "conditional.pt"}


def _run(inputs, root, **over):
    settings = build("analysis.conditional", {"enabled": True, "ages": [4, 12],
                                              "per_request": 4, "steps": 2, **over})
    args = {k: inputs[k] for k in ("generator", "conditional", "cnn", "z", "labels", "axes",
                                   "real_stats")}
    return conditional_comparison(**args, table=root / "c.parquet", summary=root / "c.json",
                                  figure=root / "c.png", samples=root / "s.png",
                                  settings=settings, seed=5, batch_size=16, log=quiet)


def test_the_comparison_reports_what_its_table_and_images_say(inputs, tmp_path):
    report = _run(inputs, tmp_path)
    table = pd.read_parquet(tmp_path / "c.parquet")
    assert len(table) == 2 * 2 * 2 * 4  # methods × ages × sexes × hands
    assert json.loads((tmp_path / "c.json").read_text())["methods"] == report["methods"]
    for method, m in report["methods"].items():
        part = table[table.method == method]
        assert m["mae_months"] == pytest.approx(part.error_months.abs().mean())
        assert m["sex_agreement"] == pytest.approx(part.sex_kept.mean())
        assert (part.error_months == part.age_months - 12 * part.requested_age_years).all()
    # the conditional hands: G asked for the request with the seed's z, read by the CNN
    Gc, _ = ckpt.load_generator(inputs["conditional"])
    predictor = BoneAgePredictor.from_checkpoint(inputs["cnn"], batch_size=16, precision="fp32")
    feats, first = [], None
    for years in (4, 12):
        for male in (False, True):
            images = on_real_grid(conditional_samples(Gc, 32, years, male, 4, 5, "cpu"), 32)
            out = predictor(images, features=True, value_range=(0.0, 255.0))
            feats.append(out["features"].double().numpy())
            rows = table[(table.method == "conditional") & (table.requested_age_years == years)
                         & (table.requested_sex == ("male" if male else "female"))]
            assert rows.age_months.to_numpy() == pytest.approx(out["age"].numpy(), abs=1e-3)
            first = first if first is not None else (images, years)
    with np.load(inputs["real_stats"]) as st:
        fd = frechet_distance(*gaussian_stats(np.concatenate(feats)), st["domain_fd_mu"],
                              st["domain_fd_sigma"])
    assert report["methods"]["conditional"]["domain_fd"] == pytest.approx(fd, rel=1e-6)
    request = next(r for r in report["requests"] if r["method"] == "conditional"
                   and r["requested_age_years"] == 4 and r["requested_sex"] == "female")
    assert request["ms_ssim"] == pytest.approx(diversity(first[0]))
    for png in ("c.png", "s.png"):
        assert (tmp_path / png).stat().st_size > 10_000


def test_steering_starts_from_the_requested_sex_or_the_most_likely_of_it():
    male_prob = np.array([0.1, 0.2, 0.3, 0.45, 0.6])
    age = np.full(5, 100.0)
    girls = steering_starts(age, male_prob, 48, False, 3, log=quiet)
    assert sorted(girls) == [0, 1, 2, 3]  # every girl is a candidate (fewer than 8 · 3)
    notices = []
    boys = steering_starts(age, male_prob, 48, True, 2, log=notices.append)
    assert list(boys) == [3, 4] and "only 1 labelled latents male" in notices[0]


def test_the_conditional_request_reaches_the_generator():
    torch.manual_seed(0)
    G = Generator(**TINY_G, conditional=True).eval()
    a = conditional_samples(G, 32, 4, False, 3, 1, "cpu")
    z = torch.from_numpy(np.random.default_rng(0).standard_normal((3, G.z_size),
                                                                  dtype=np.float32))
    assert a.shape == (3, 1, 32, 32)
    assert not torch.allclose(a, conditional_samples(G, 32, 16, False, 3, 1, "cpu"))
    assert not torch.allclose(a, conditional_samples(G, 32, 4, True, 3, 1, "cpu"))
    assert z.shape == (3, TINY_G["latent_size"])


def test_the_comparison_refuses_swapped_generators(inputs, tmp_path):
    swapped = {**inputs, "generator": inputs["conditional"], "conditional": inputs["generator"]}
    with pytest.raises(InputError, match="main generator is conditional"):
        _run(swapped, tmp_path)
    same = {**inputs, "conditional": inputs["generator"]}
    with pytest.raises(InputError, match="not a conditional generator"):
        _run(same, tmp_path)
