"""GAN metrics: the Fréchet distance against pytorch-fid, the Inception loading path (with
weights files these tests generate: random values in pytorch-fid's key layout — never real
FID numbers), IS, MS-SSIM against an independent computation, SWD against a numpy transcription
of the reference spec, exact nearest neighbours, and the real/snapshot/gather/figure steps."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage
import torch
from PIL import Image

from latentage.cnn.model import BoneAgeNet, save_model
from latentage.errors import InputError
from latentage.gan import checkpoint as ckpt
from latentage.gan.networks import Generator
from latentage.metrics import inception as inc
from latentage.metrics import swd as swdm
from latentage.metrics.figures import metrics_figures
from latentage.metrics.frechet import frechet_distance, frechet_distance_features
from latentage.metrics.inception_score import inception_score
from latentage.metrics.ms_ssim import WEIGHTS, pair_ms_ssim
from latentage.metrics.neighbours import knn, nearest_neighbours
from latentage.metrics.run import (
    MetricSettings,
    gather_metrics,
    real_metrics,
    snapshot_metrics,
)

# ---------------------------------------------------------------- Fréchet distance


def _random_cov(rng, d, rank=None):
    a = rng.standard_normal((d, rank or 2 * d))
    return a @ a.T / a.shape[1]


@pytest.mark.parametrize("d,rank", [(16, None), (128, None), (96, 40)])
def test_frechet_distance_equals_pytorch_fid(d, rank):
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d) * 0.3
    s1, s2 = _random_cov(rng, d, rank), _random_cov(rng, d, rank)
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = calculate_frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)


def test_frechet_distance_of_a_distribution_with_itself_is_zero_and_grows_with_shift():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 8))
    assert frechet_distance_features(x, x) == pytest.approx(0.0, abs=1e-8)
    # shift every coordinate by 1: distance ≈ ‖Δμ‖² = 8
    assert frechet_distance_features(x, x + 1.0) == pytest.approx(8.0, rel=1e-6)


# ---------------------------------------------------------------- Inception weights


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """Random weights in the FID Inception's exact key layout (torchvision's Inception3 with
    1008 classes and no aux head has the same keys as pytorch-fid's FID variant)."""
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008,
                                          init_weights=False)
    path = tmp_path_factory.mktemp("weights") / inc.FID_WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    return path


def test_inception_loads_a_local_weights_file(inception_file):
    model = inc.load_inception(inception_file, allow_download=False)
    x = torch.rand(3, 1, 40, 40) * 255
    out = model(x)
    assert out["pool"].shape == (3, 2048) and out["logits"].shape == (3, 1008)
    state = torch.load(inception_file, weights_only=True)
    expect = out["pool"] @ state["fc.weight"].T + state["fc.bias"]
    assert torch.allclose(out["logits"], expect, atol=1e-4)
    # grayscale is tiled: the same image as three identical channels gives the same features
    assert torch.allclose(model(x.repeat(1, 3, 1, 1))["pool"], out["pool"], atol=1e-5)


def test_inception_is_found_in_torch_hub_cache(inception_file, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert inc.cache_file() == tmp_path / "hub" / "checkpoints" / inc.FID_WEIGHTS_FILE
    with pytest.raises(inc.MissingWeights) as err:
        inc.load_inception(None, allow_download=False)
    msg = str(err.value)
    assert str(inc.cache_file()) in msg and "metrics.inception_weights" in msg
    assert "pt_inception-2015-12-05" in msg and "metrics.missing_weights: skip" in msg
    inc.cache_file().parent.mkdir(parents=True)
    inc.cache_file().write_bytes(inception_file.read_bytes())
    assert inc.load_inception(None, allow_download=False)(torch.zeros(1, 1, 32, 32))["pool"].shape \
        == (1, 2048)


def test_inception_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(inc.MissingWeights, match="metrics.inception_weights: .*nope.pth"):
        inc.load_inception(tmp_path / "nope.pth", allow_download=False)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not torch")
    with pytest.raises(InputError, match="junk.pth: not a readable weights file"):
        inc.load_inception(junk, allow_download=False)
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, wrong)
    with pytest.raises(InputError, match="do not fit pytorch-fid's network"):
        inc.load_inception(wrong, allow_download=False)


# ---------------------------------------------------------------- Inception Score


def test_inception_score_extremes():
    assert inception_score(np.zeros((100, 1008)), splits=10) == pytest.approx((1.0, 0.0))
    # confident, evenly spread over 5 classes in every split → IS = 5
    logits = np.full((100, 1008), -50.0)
    logits[np.arange(100), np.arange(100) % 5] = 50.0
    mean, sd = inception_score(logits, splits=10)
    assert mean == pytest.approx(5.0, rel=1e-6) and sd == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 10 images"):
        inception_score(np.zeros((5, 1008)))


# ---------------------------------------------------------------- MS-SSIM


def _ms_ssim_reference(a, b):
    """Independent numpy/scipy computation of the same definition: Gaussian window 11, σ 1.5
    ('valid' filtering), K1 0.01, K2 0.03, L 255, 2×2 average pooling between five scales,
    contrast-structure at the first four, full SSIM at the last, weighted geometric mean."""
    x = np.arange(11) - 5
    g = np.exp(-(x**2) / (2 * 1.5**2))
    g /= g.sum()
    win = np.outer(g, g)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filt(img):
        return scipy.signal.correlate2d(img, win, mode="valid")

    vals = []
    a, b = a.astype(np.float64), b.astype(np.float64)
    for level in range(5):
        mu1, mu2 = filt(a), filt(b)
        s11, s22, s12 = filt(a * a) - mu1**2, filt(b * b) - mu2**2, filt(a * b) - mu1 * mu2
        cs = (2 * s12 + c2) / (s11 + s22 + c2)
        ssim = (2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1) * cs
        vals.append(max(cs.mean(), 0.0) if level < 4 else max(ssim.mean(), 0.0))
        if level < 4:
            h, w = a.shape
            a = a[: h - h % 2, : w - w % 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            b = b[: h - h % 2, : w - w % 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return float(np.prod(np.array(vals) ** np.array(WEIGHTS)))


def test_ms_ssim_matches_an_independent_computation():
    import scipy.signal  # noqa: F401

    rng = np.random.default_rng(1)
    base = scipy.ndimage.gaussian_filter(rng.uniform(0, 255, (192, 192)), 3)
    a = np.stack([base, rng.uniform(0, 255, (192, 192))])
    b = np.stack([np.clip(base + rng.normal(0, 8, base.shape), 0, 255),
                  scipy.ndimage.gaussian_filter(rng.uniform(0, 255, (192, 192)), 2)])
    ours, upscaled = pair_ms_ssim(torch.tensor(a)[:, None], torch.tensor(b)[:, None])
    assert upscaled is None
    for i in range(2):
        assert ours[i].item() == pytest.approx(_ms_ssim_reference(a[i], b[i]), abs=1e-4)
    assert ours[0] > 0.5 > ours[1]  # a noisy copy is similar, unrelated textures are not
    same, _ = pair_ms_ssim(torch.tensor(a)[:, None], torch.tensor(a)[:, None])
    assert torch.allclose(same, torch.ones(2, dtype=same.dtype), atol=1e-5)


def test_ms_ssim_of_small_images_is_upscaled_and_says_so():
    x = torch.rand(4, 1, 32, 32) * 255
    vals, upscaled = pair_ms_ssim(x[0::2], x[1::2])
    assert upscaled == 176 and vals.shape == (2,)


# ---------------------------------------------------------------- SWD

_G = np.float32([[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, 36, 24, 6], [4, 16, 24, 16, 4],
                 [1, 4, 6, 4, 1]]) / 256.0


def _np_pyramid(x, levels):
    """Plain numpy transcription of the reference's Laplacian pyramid (scipy, mode='mirror')."""
    def down(m):
        return scipy.ndimage.convolve(m, _G[None, None], mode="mirror")[:, :, ::2, ::2]

    def up(m):
        s = m.shape
        r = np.zeros((s[0], s[1], s[2] * 2, s[3] * 2), m.dtype)
        r[:, :, ::2, ::2] = m
        return scipy.ndimage.convolve(r, _G[None, None] * 4.0, mode="mirror")

    pyr = [np.float32(x)]
    for _ in range(1, levels):
        pyr.append(down(pyr[-1]))
        pyr[-2] -= up(pyr[-1])
    return pyr


def _np_swd(a, b, dirs):
    out = []
    for d in dirs:
        pa, pb = np.sort(a @ d, axis=0), np.sort(b @ d, axis=0)
        out.append(np.abs(pa - pb).mean())
    return float(np.mean(out))


def test_swd_pieces_match_a_numpy_transcription_of_the_reference():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 255, (3, 3, 64, 64)).astype(np.float32)
    ours = swdm.laplacian_pyramid(torch.from_numpy(x), 3)
    ref = _np_pyramid(x, 3)
    for o, r in zip(ours, ref, strict=True):
        assert o.shape == r.shape and np.allclose(o.numpy(), r, atol=1e-3)
    # descriptors at given centres: the same 7×7×C neighbourhoods as numpy's fancy indexing
    n = 3 * swdm.NHOODS_PER_IMAGE
    y, xx = rng.integers(3, 61, n), rng.integers(3, 61, n)
    desc = swdm.descriptors(torch.from_numpy(x), positions=(torch.tensor(y), torch.tensor(xx)))
    img = np.arange(n) // swdm.NHOODS_PER_IMAGE
    for j in (0, 200, n - 1):
        np.testing.assert_array_equal(desc[j].numpy(),
                                      x[img[j], :, y[j] - 3:y[j] + 4, xx[j] - 3:xx[j] + 4])
    # per-channel normalisation and the sliced distance itself
    a = swdm.finalize(desc[: n // 2])
    b = swdm.finalize(desc[n // 2: 2 * (n // 2)])
    raw = desc.numpy()[: n // 2]
    ref_a = (raw - raw.mean(axis=(0, 2, 3), keepdims=True)) / raw.std(axis=(0, 2, 3), keepdims=True)
    assert np.allclose(a.numpy(), ref_a.reshape(len(raw), -1), atol=1e-4)
    dirs = [rng.standard_normal((a.shape[1], swdm.DIRS_PER_REPEAT)) for _ in range(4)]
    dirs = [torch.from_numpy(d / np.sqrt((d**2).sum(0, keepdims=True))) for d in dirs]
    ours = swdm.sliced_wasserstein(a, b, dirs=dirs)
    assert ours == pytest.approx(_np_swd(a.numpy(), b.numpy(), [d.numpy() for d in dirs]),
                                 rel=1e-4)


def _descriptors(images, seed):
    acc = swdm.PyramidDescriptors(len(images), images.shape[-1], seed)
    acc.feed(images)
    return acc


def test_swd_is_near_zero_for_the_same_set_and_grows_where_images_differ():
    rng = np.random.default_rng(3)
    base = scipy.ndimage.gaussian_filter(rng.uniform(0, 255, (40, 1, 64, 64)), (0, 0, 1.5, 1.5))
    imgs = torch.tensor(base, dtype=torch.float32)
    blurred = torch.tensor(scipy.ndimage.gaussian_filter(base, (0, 0, 2.0, 2.0)),
                           dtype=torch.float32)
    real = _descriptors(imgs, 1)
    assert swdm.levels_for(64) == [64, 32, 16]
    same = swdm.swd(real.finalized(), real.finalized(), real.levels, 0)
    assert all(v == pytest.approx(0.0, abs=1e-6) for v in same.values())
    resampled = swdm.swd(real.finalized(), _descriptors(imgs, 2).finalized(), real.levels, 0)
    blur = swdm.swd(real.finalized(), _descriptors(blurred, 2).finalized(), real.levels, 0)
    assert set(blur) == {"swd_64", "swd_32", "swd_16", "swd_avg"}
    # blurring removes fine detail: the finest level moves most, and far beyond resampling noise
    assert blur["swd_64"] > 3 * resampled["swd_64"]
    assert blur["swd_64"] > blur["swd_16"]
    assert blur["swd_avg"] == pytest.approx(np.mean([blur["swd_64"], blur["swd_32"],
                                                     blur["swd_16"]]))


def test_swd_whole_pipeline_agrees_with_numpy_on_the_same_draws():
    """Same neighbourhood centres and directions: torch and the numpy transcription agree."""
    rng = np.random.default_rng(4)
    a_img = rng.uniform(0, 255, (6, 1, 32, 32)).astype(np.float32)
    b_img = np.clip(a_img + rng.normal(0, 30, a_img.shape), 0, 255).astype(np.float32)
    n = 6 * swdm.NHOODS_PER_IMAGE
    results = []
    for use_torch in (True, False):
        r = np.random.default_rng(5)
        per_level = []
        for imgs in (a_img, b_img):
            x = np.tile(imgs, (1, 3, 1, 1))
            pyr = (swdm.laplacian_pyramid(torch.from_numpy(x), 2) if use_torch
                   else [torch.from_numpy(p) for p in _np_pyramid(x, 2)])
            descs = []
            for level in pyr:
                s = level.shape[-1]
                y, xx = r.integers(3, s - 3, n), r.integers(3, s - 3, n)
                d = swdm.descriptors(level, positions=(torch.tensor(y), torch.tensor(xx)))
                descs.append(swdm.finalize(d))
            per_level.append(descs)
        dirs = [torch.from_numpy(r.standard_normal((147, 128))) for _ in range(4)]
        dirs = [d / d.square().sum(0, keepdim=True).sqrt() for d in dirs]
        if use_torch:
            results.append([swdm.sliced_wasserstein(a, b, dirs=dirs) for a, b in
                            zip(*per_level, strict=True)])
        else:
            results.append([_np_swd(a.numpy(), b.numpy(), [d.numpy() for d in dirs])
                            for a, b in zip(*per_level, strict=True)])
    assert np.allclose(results[0], results[1], rtol=1e-3)


# ---------------------------------------------------------------- nearest neighbours


def test_knn_is_exact_and_chunking_does_not_matter():
    rng = np.random.default_rng(6)
    base = rng.integers(0, 256, (257, 8, 8), dtype=np.uint8)
    queries = np.concatenate([base[[5, 100]].astype(np.float32),
                              rng.uniform(0, 255, (3, 8, 8))])
    brute = np.sqrt(((queries.reshape(5, 1, -1) - base.reshape(1, 257, -1).astype(np.float64))
                     ** 2).sum(-1))
    for chunk in (16, 1000):
        idx, dist = knn(queries, base, 4, chunk=chunk)
        np.testing.assert_array_equal(idx, np.argsort(brute, axis=1, kind="stable")[:, :4])
        assert np.allclose(dist, np.sort(brute, axis=1)[:, :4])
    assert idx[0, 0] == 5 and idx[1, 0] == 100 and dist[0, 0] == pytest.approx(0, abs=1e-6)


# ---------------------------------------------------------------- the steps


@pytest.fixture(scope="module")
def step_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("metric_steps")
    torch.manual_seed(0)
    kw = {"max_res": 32, "latent_size": 8, "fmap_base": 32, "fmap_max": 8,
          "normalize_latents": True}
    G = Generator(**kw)
    (root / "snapshots").mkdir()
    for kimg, res in ((1.0, 16), (2.0, 32)):
        ckpt.save_snapshot(root / "snapshots" / f"{int(kimg):06d}.pt", G.state_dict(),
                           {"G": kw}, resolution=res, alpha=1.0, kimg=kimg)
    rng = np.random.default_rng(0)
    reals = scipy.ndimage.gaussian_filter(rng.uniform(0, 255, (40, 32, 32)), (0, 1, 1))
    np.save(root / "reals.npy", reals.astype(np.uint8))
    save_model(BoneAgeNet.build("resnet10t", 32, False, None, False, 120.0, 40.0),
               root / "cnn.pt")
    return root


def _settings(**kw):
    base = {"n": {"fid": 12, "is": 10, "ms_ssim": 8, "swd": 6, "domain_fd": 12},
            "is_splits": 2, "batch_size": 8, "allow_download": False}
    base.update(kw)
    return MetricSettings.from_json(json.dumps(base))


def test_metric_steps_with_generated_inception_weights(step_inputs, inception_file):
    root = step_inputs
    s = _settings(inception_weights=str(inception_file))
    real = real_metrics(root / "reals.npy", root / "cnn.pt", root / "real.json",
                        root / "real_stats.npz", s, seed=1, log=lambda *_: None)
    assert set(real["values"]) >= {"fid", "is_mean", "is_std", "ms_ssim", "swd_32", "swd_16",
                                   "swd_avg", "domain_fd"} and not real["skipped"]
    assert real["counts"]["fid"] == {"statistics": 12, "halves": 6}
    with np.load(root / "real_stats.npz") as st:
        assert st["inception_mu"].shape == (2048,) and st["cnn_sigma"].shape == (512, 512)
    out = snapshot_metrics(root / "snapshots/000001.pt", root / "reals.npy",
                           root / "real_stats.npz", root / "cnn.pt", root / "s1.json", s, seed=1,
                           log=lambda *_: None)
    assert out["resolution"] == 16 and out["evaluated_at"] == 32
    assert out["images"] == {"fid": 12, "is": 10, "ms_ssim": 8, "swd": 6, "domain_fd": 12}
    v = out["values"]
    assert v["fid"] > 0 and v["domain_fd"] > 0 and 0 <= v["ms_ssim"] <= 1
    assert v["swd_avg"] > 0 and v["is_mean"] >= 1
    again = snapshot_metrics(root / "snapshots/000001.pt", root / "reals.npy",
                             root / "real_stats.npz", root / "cnn.pt", root / "s1b.json", s,
                             seed=1, log=lambda *_: None)
    assert again["values"] == v  # one seed, the same numbers


def test_metric_steps_skip_fid_and_is_without_weights(step_inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    root = step_inputs
    with pytest.raises(inc.MissingWeights):
        real_metrics(root / "reals.npy", root / "cnn.pt", tmp_path / "r.json",
                     tmp_path / "r.npz", _settings(), seed=1, log=lambda *_: None)
    assert not (tmp_path / "r.json").exists()
    logged = []
    s = _settings(missing_weights="skip")
    real = real_metrics(root / "reals.npy", root / "cnn.pt", tmp_path / "r.json",
                        tmp_path / "r.npz", s, seed=1, log=logged.append)
    assert set(real["skipped"]) == {"fid", "is"} and "fid" not in real["values"]
    assert any("NOTICE: FID, IS skipped" in line for line in logged)
    jsons = []
    for k in (1, 2):
        jsons.append(tmp_path / f"{k}.json")
        out = snapshot_metrics(root / f"snapshots/00000{k}.pt", root / "reals.npy",
                               tmp_path / "r.npz", root / "cnn.pt", jsons[-1], s, seed=1,
                               log=lambda *_: None)
        assert "fid" not in out["values"] and set(out["skipped"]) == {"fid", "is"}
    table = gather_metrics(jsons[::-1], tmp_path / "metrics.tsv", log=lambda *_: None)
    assert list(table.kimg) == [1.0, 2.0] and list(table.resolution) == [16, 32]
    assert (table.skipped == "fid,is").all()
    read = pd.read_csv(tmp_path / "metrics.tsv", sep="\t")
    assert {"ms_ssim", "swd_32", "swd_16", "swd_avg", "domain_fd"} <= set(read.columns)
    metrics_figures(tmp_path / "metrics.tsv", tmp_path / "r.json", tmp_path / "a.png",
                    tmp_path / "b.png")
    for png in ("a.png", "b.png"):
        with Image.open(tmp_path / png) as im:
            assert im.width > 600 and np.asarray(im.convert("L")).std() > 10


def test_gather_rejects_a_broken_snapshot_file(tmp_path):
    bad = tmp_path / "000002.json"
    bad.write_text("{")
    with pytest.raises(InputError, match="000002.json: not a snapshot-metrics result"):
        gather_metrics([bad], tmp_path / "m.tsv")


def test_settings_name_unknown_metrics():
    with pytest.raises(InputError, match="metrics.enabled: unknown metric 'kid'"):
        MetricSettings.from_json(json.dumps({"enabled": ["fid", "kid"]}))


def test_nearest_neighbours_step_writes_table_and_grids(step_inputs, tmp_path):
    """The whole step on a generator snapshot and a CNN: the table, both grids, and a clear
    error when the feature file and the images disagree."""
    from latentage.cnn.predict import BoneAgePredictor

    root = step_inputs
    reals = np.load(root / "reals.npy")
    feats = BoneAgePredictor.from_checkpoint(root / "cnn.pt").predict_uint8(
        reals, features=True)["features"]
    np.save(tmp_path / "feats.npy", feats)
    np.save(tmp_path / "feats_short.npy", feats[:-1])
    rng = np.random.default_rng(3)
    pd.DataFrame({"id": [f"r{i}" for i in range(len(reals))],
                  "boneage": rng.uniform(12, 200, len(reals))}).to_parquet(
        tmp_path / "labels.parquet")

    def run(feature_file):
        return nearest_neighbours(root / "snapshots/000002.pt", root / "cnn.pt",
                                  root / "reals.npy", tmp_path / feature_file,
                                  tmp_path / "labels.parquet", tmp_path / "nn.parquet",
                                  tmp_path / "px.png", tmp_path / "ft.png", queries=3, k=2,
                                  res=32, seed=1, log=lambda *_: None)

    with pytest.raises(InputError, match="feats_short.npy.*disagree on the number of images"):
        run("feats_short.npy")
    table = run("feats.npy")
    assert len(table) == 3 * 2 * 2 and set(table["by"]) == {"pixel", "cnn_features"}
    for _, group in table.groupby(["query", "by"]):
        assert list(group["rank"]) == [1, 2] and group["distance"].is_monotonic_increasing
    # indices point into the real set (knn itself is checked against brute force above)
    assert table.real_index.between(0, len(reals) - 1).all()
    for png in ("px.png", "ft.png"):
        with Image.open(tmp_path / png) as im:
            assert im.size[0] > 200 and im.size[1] > 200
    assert pd.read_parquet(tmp_path / "nn.parquet").equals(table)
