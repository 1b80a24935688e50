"""Latent fan-out: per-index latents, shard-count invariance, gather's completeness checks."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import quiet

from latentage.cnn.model import BoneAgeNet, save_model
from latentage.cnn.predict import BoneAgePredictor
from latentage.config import build
from latentage.errors import InputError
from latentage.gan import checkpoint as ckpt
from latentage.gan.networks import Generator
from latentage.latent.gather_labels import gather_labels
from latentage.latent.label_shard import (
    generation_chunk,
    label_range,
    label_shard,
    latent,
    latents,
    parse_scatteritem,
    shard_range,
)

N = 70


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A small random G_ema checkpoint and CNN checkpoint in the real formats."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    kw = {"max_res": 16, "latent_size": 12, "fmap_base": 64, "fmap_max": 16,
          "normalize_latents": True}
    G = Generator(**kw)
    ckpt.save_snapshot(root / "g.pt", G.state_dict(), {"G": kw}, resolution=16, alpha=1.0,
                       kimg=1.0)
    cnn = BoneAgeNet.build("resnet10t", 32, False, None, False, 120.0, 40.0)
    save_model(cnn, root / "cnn.pt")
    return root / "g.pt", root / "cnn.pt"


def _run_shards(models, tmp, shards, batch_size=16):
    g, c = models
    labels, zs = [], []
    settings = build("latent", {"n": N, "shards": shards, "batch_size": batch_size})
    for i in range(1, shards + 1):
        lab, z = tmp / f"{i}-of-{shards}.parquet", tmp / f"{i}-of-{shards}.npy"
        label_shard(generator=g, cnn=c, labels=lab, z=z, shard=f"{i}-of-{shards}",
                    settings=settings, seed=3, log=quiet)
        labels.append(lab)
        zs.append(z)
    gather_labels(shard_labels=labels, shard_z=zs, z=tmp / "z.npy",
                  labels=tmp / "labels.parquet", n=N, log=quiet)
    return pd.read_parquet(tmp / "labels.parquet"), np.load(tmp / "z.npy"), labels, zs


def test_latent_i_is_a_pure_function_of_seed_and_index():
    assert np.array_equal(latent(3, 17, 8), latent(3, 17, 8))
    assert not np.array_equal(latent(3, 17, 8), latent(3, 18, 8))
    assert not np.array_equal(latent(3, 17, 8), latent(4, 17, 8))
    block = latents(3, 10, 20, 8)
    assert np.array_equal(block[7], latent(3, 17, 8)) and block.dtype == np.float32
    z = latents(3, 0, 2000, 8)
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05


def test_truncation_redraws_components_beyond_tau():
    z = latents(3, 0, 500, 16, truncation=0.5)
    assert np.abs(z).max() <= 0.5 and np.abs(z).max() > 0.45
    plain = latent(3, 7, 16)
    kept = np.abs(plain) <= 0.5
    np.testing.assert_array_equal(latent(3, 7, 16, truncation=0.5)[kept], plain[kept])


def test_shard_ranges_cover_every_index_once():
    for shards in (1, 3, 7, 70):
        covered = np.concatenate([np.arange(*shard_range(N, i, shards))
                                  for i in range(1, shards + 1)])
        assert np.array_equal(covered, np.arange(N))
    assert parse_scatteritem("3-of-40") == (3, 40)
    with pytest.raises(InputError, match="i-of-n"):
        parse_scatteritem("3_40")


def test_gathered_result_is_identical_for_1_4_and_7_shards(models, tmp_path):
    runs = {}
    for shards in (1, 4, 7):
        (tmp_path / str(shards)).mkdir()
        runs[shards] = _run_shards(models, tmp_path / str(shards), shards)
    ref_labels, ref_z = runs[1][0], runs[1][1]
    assert list(ref_labels.idx) == list(range(N)) and ref_z.shape == (N, 12)
    for shards in (4, 7):
        pd.testing.assert_frame_equal(runs[shards][0], ref_labels)
        assert np.array_equal(runs[shards][1], ref_z)


def test_labels_equal_a_direct_unsharded_computation(models, tmp_path):
    labels, z, *_ = _run_shards(models, tmp_path, 3)
    g, c = models
    G, _ = ckpt.load_generator(g)
    predictor = BoneAgePredictor.from_checkpoint(c, "cpu", batch_size=N)
    zs = torch.from_numpy(np.stack([latent(3, i, 12) for i in range(N)]))
    with torch.no_grad():
        direct = predictor(G(zs, 16))
    assert np.array_equal(z, zs.numpy())
    np.testing.assert_allclose(labels.age, direct["age"].numpy(), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(labels.male_prob, direct["male_prob"].numpy(), atol=1e-5)
    # batch size does not change the answer either
    frame, _ = label_range(G, BoneAgePredictor.from_checkpoint(c, "cpu", 5), 3, 0, N, 5, 16)
    np.testing.assert_allclose(frame.age, labels.age, rtol=1e-5, atol=1e-3)


def test_generation_is_chunked_by_resolution():
    """G runs on at most 2**24 pixels at once: 16 images at 1024², the whole batch at 64²."""
    assert generation_chunk(1024, 256) == 16 and generation_chunk(512, 256) == 64
    assert generation_chunk(64, 256) == 256 and generation_chunk(2048, 8) == 4


def test_a_shard_of_another_shard_count_is_refused(models, tmp_path):
    g, c = models
    with pytest.raises(InputError, match="shard 1-of-3 is one of 3, but latent.shards is 4"):
        label_shard(generator=g, cnn=c, labels=tmp_path / "l.parquet", z=tmp_path / "z.npy",
                    shard="1-of-3", settings=build("latent", {"n": N, "shards": 4}), seed=3,
                    log=quiet)


def test_gather_names_a_corrupt_missing_or_duplicated_shard(models, tmp_path):
    _, _, labels, zs = _run_shards(models, tmp_path, 4)
    out = {"z": tmp_path / "z_all.npy", "labels": tmp_path / "labels_all.parquet", "n": N,
           "log": quiet}
    # corrupt: a truncated parquet
    bad = labels[2].read_bytes()
    labels[2].write_bytes(bad[: len(bad) // 3])
    with pytest.raises(InputError, match=r"shard 3-of-4: unreadable"):
        gather_labels(shard_labels=labels, shard_z=zs, **out)
    labels[2].write_bytes(bad)
    # z and labels of different lengths
    np.save(zs[1], np.load(zs[1])[:-2])
    with pytest.raises(InputError, match=r"shard 2-of-4: .* latents for 18 labels"):
        gather_labels(shard_labels=labels, shard_z=zs, **out)
    # a missing shard, and a shard given twice
    with pytest.raises(InputError, match=r"missing from the shards"):
        gather_labels(shard_labels=labels[:1] + labels[2:], shard_z=zs[:1] + zs[2:], **out)
    with pytest.raises(InputError, match=r"appears in more than one shard \(1-of-4, 1-of-4"):
        gather_labels(shard_labels=labels[:1] * 2, shard_z=zs[:1] * 2, **out)
    assert not out["z"].exists() and not out["labels"].exists()


def test_latent_age_distribution_step_draws_generated_beside_real(models, tmp_path):
    from PIL import Image

    from latentage.latent.latent_age_distribution import latent_age_distribution

    labels, *_ = _run_shards(models, tmp_path, 2)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        pd.DataFrame({"pred_age": rng.uniform(10, 220, 50),
                      "male_prob": rng.uniform(0, 1, 50)}).to_parquet(tmp_path / f"{split}.pq")
    latent_age_distribution(labels=tmp_path / "labels.parquet",
                            real_predictions={s: tmp_path / f"{s}.pq" for s in ("train", "test")},
                            figure=tmp_path / "fig.png")
    with Image.open(tmp_path / "fig.png") as im:
        assert im.width > 800 and np.asarray(im.convert("L")).std() > 10
