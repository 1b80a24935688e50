"""The conditional PGGAN (gan.conditional): G's condition coordinates, the projection
discriminator, training, and the downstream steps on a conditional G's latents."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from test_gan_train import data, outputs, run_phase, tiny  # noqa: F401 (fixture)

from latentage.errors import LatentageError
from latentage.gan import checkpoint as ckpt
from latentage.gan.networks import Discriminator, Generator, label_features, normalised_age

KW = {"max_res": 8, "latent_size": 6, "fmap_base": 32, "fmap_max": 8}


def test_a_conditional_latent_carries_ages_and_sexes_distributed_as_the_training_labels():
    G = Generator(**KW, conditional=True)
    assert G.latent_size == 8 and G.z_size == 6
    ages = np.array([12.0] * 10 + [60.0] * 30 + [200.0] * 60)
    G.set_label_distribution(ages, np.array([1] * 25 + [0] * 75))
    assert float(G.female_fraction) == pytest.approx(0.75)
    z = torch.randn(20000, 8, generator=torch.Generator().manual_seed(0))
    labels = G.split_latent(z)[1]
    assert (labels[:, 0] <= 13).float().mean() == pytest.approx(0.1, abs=0.015)
    assert (labels[:, 0] >= 199).float().mean() == pytest.approx(0.6, abs=0.015)
    assert labels[:, 1].mean() == pytest.approx(0.25, abs=0.015)
    # the first coordinate at 0 is the median age, far out the extremes
    coords = torch.tensor([[0.0, 0.0], [-9.0, 0.0], [9.0, 0.0]])
    assert G.conditions_of(coords)[:, 0].tolist() == pytest.approx([200.0, 12.0, 200.0])


def test_g_of_a_latent_is_g_of_its_noise_and_labels_and_the_labels_matter():
    torch.manual_seed(0)
    G = Generator(**KW, conditional=True).eval()
    z = torch.randn(4, 8)
    noise, labels = G.split_latent(z)
    assert torch.equal(G(z, 8), G(noise, 8, cond=labels))
    young = G(noise, 8, cond=torch.tensor([[24.0, 1.0]] * 4))
    old = G(noise, 8, cond=torch.tensor([[200.0, 1.0]] * 4))
    girl = G(noise, 8, cond=torch.tensor([[24.0, 0.0]] * 4))
    assert not torch.allclose(young, old) and not torch.allclose(young, girl)
    with pytest.raises(ValueError, match="unconditional"):
        Generator(**KW)(torch.randn(2, 6), 8, cond=torch.zeros(2, 2))


def test_the_projection_discriminator_adds_features_dot_label_embedding():
    torch.manual_seed(0)
    kw = {k: v for k, v in KW.items() if k != "latent_size"}
    D = Discriminator(**kw, mbstd_group_size=1, conditional=True)
    plain = Discriminator(**kw, mbstd_group_size=1)
    plain.load_state_dict({k: v for k, v in D.state_dict().items()
                           if not k.startswith("project")})
    x = torch.randn(3, 1, 8, 8)
    cond = torch.tensor([[24.0, 0.0], [120.0, 1.0], [200.0, 1.0]])
    # by hand: the penultimate features h, the label (normalised age, female, male), W
    feats = {}
    D.dense0.register_forward_hook(lambda m, i, o: feats.update(h=torch.nn.functional.leaky_relu(
        o, 0.2)))
    score = D(x, 1.0, cond)
    label = label_features(cond)
    W = D.project.weight * D.project.scale
    expected = plain(x) + (feats["h"] * (label @ W.T)).sum(1, keepdim=True)
    assert torch.allclose(score, expected, atol=1e-5)
    assert normalised_age(torch.tensor(120.0)) == 0.0
    with pytest.raises(ValueError, match="needs the images' labels"):
        D(x)


def test_a_conditional_phase_trains_and_its_generator_keeps_the_label_distribution(data, tmp_path):  # noqa: F811
    s = tiny(conditional=True)
    with pytest.raises(LatentageError, match="needs the training labels"):
        run_phase(4, data, tmp_path / "x", settings=s)
    from latentage.gan.train_phase import Sampling

    labels = data / "labels.parquet"
    run_phase(4, data, tmp_path / "r4", settings=s, sampling=Sampling(labels))
    run_phase(8, data, tmp_path / "r8", prev=tmp_path / "r4" / "checkpoint.pt", settings=s,
              sampling=Sampling(labels, "age", 3.0))
    G, meta = ckpt.load_generator(tmp_path / "r8" / "checkpoint.pt")
    assert G.conditional and G.latent_size == s.latent_size + 2 and meta["resolution"] == 8
    ages = pd.read_parquet(labels).boneage.to_numpy()
    assert float(G.age_quantiles[0]) == pytest.approx(ages.min())
    assert float(G.age_quantiles[-1]) == pytest.approx(ages.max())
    assert torch.isfinite(G(torch.randn(3, G.latent_size), 8)).all()
    for snap in (tmp_path / "r8" / "snapshots").iterdir():
        assert ckpt.load_generator(snap)[0].conditional


def test_the_discriminators_label_is_age_bumps_every_two_years_and_one_hot_sex():
    f = label_features(torch.tensor([[48.0, 1.0], [60.0, 0.0]]))
    assert f.shape == (2, 13)
    # 4 years sits on the third bump (centre 4 y); 5 years between the third and fourth
    assert f[0, :11].tolist() == pytest.approx(
        [math.exp(-0.5 * ((4 - c) / 2) ** 2) for c in range(0, 21, 2)])
    assert f[1, 2].item() == pytest.approx(f[1, 3].item())
    assert f[:, 11:].tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_normalised_age_spans_childhood():
    assert normalised_age(torch.tensor(0.0)) == -2.0
    assert normalised_age(torch.tensor(240.0)) == 2.0
    assert math.isclose(float(normalised_age(torch.tensor(180.0))), 1.0)


def test_downstream_steps_label_a_conditional_generators_latents(tiny_cnn, tmp_path):
    from conftest import TINY_G, quiet

    from latentage.analysis.lasso import lasso
    from latentage.config import build
    from latentage.latent.label_shard import label_shard

    torch.manual_seed(0)
    G = Generator(**TINY_G, conditional=True)
    G.set_label_distribution(np.linspace(12, 216, 40), np.arange(40) % 2)
    ckpt.save_snapshot(tmp_path / "g.pt", G.state_dict(), {"G": {**TINY_G, "conditional": True}},
                       resolution=32, alpha=1.0, kimg=1.0)
    label_shard(generator=tmp_path / "g.pt", cnn=tiny_cnn, labels=tmp_path / "l.parquet",
                z=tmp_path / "z.npy", shard="1-of-1",
                settings=build("latent", {"n": 120, "shards": 1, "batch_size": 40}), seed=2,
                log=quiet)
    z = np.load(tmp_path / "z.npy")
    assert z.shape == (120, TINY_G["latent_size"] + 2)  # z, then the two condition coordinates
    summary = lasso(z=tmp_path / "z.npy", labels=tmp_path / "l.parquet",
                    json_out=tmp_path / "lasso.json", coef=tmp_path / "coef.npy",
                    figure=tmp_path / "lasso.png",
                    settings=build("analysis.lasso", {"folds": 3, "holdout": 0.25,
                                                      "n_alphas": 10}), seed=4, log=quiet)
    assert summary["dim"] == TINY_G["latent_size"] + 2
    assert np.load(tmp_path / "coef.npy").shape[-1] == TINY_G["latent_size"] + 2
