"""GAN metrics: the Fréchet distance against pytorch-fid, the Inception loading path (with
weights files these tests generate: random values in pytorch-fid's key layout — never real
FID numbers), IS as the TF reference computes it, SWD against a numpy transcription of the
reference spec, exact nearest neighbours. MS-SSIM: test_metrics_ms_ssim.py; the steps:
test_metrics_steps.py."""

import numpy as np
import pytest
import scipy.ndimage
import torch

from latentage.config import build
from latentage.errors import InputError
from latentage.metrics import inception as inc
from latentage.metrics import swd as swdm
from latentage.metrics.frechet import frechet_distance, frechet_distance_features
from latentage.metrics.inception_score import inception_score
from latentage.metrics.nearest_neighbours import knn
from latentage.metrics.registry import REGISTRY

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


def test_inception_loads_a_local_weights_file_and_takes_logits_without_the_bias(
        inception_file):
    model = inc.load_inception(inception_file, allow_download=False)
    x = torch.rand(3, 1, 40, 40) * 255
    out = model(x)
    assert out["pool"].shape == (3, 2048) and out["logits"].shape == (3, 1008)
    state = torch.load(inception_file, weights_only=True)
    assert state["fc.bias"].abs().max() > 0.1  # the file has a bias; the TF logits do not use it
    torch.testing.assert_close(out["logits"], out["pool"] @ state["fc.weight"].T)
    # the network's own weights are those of the file (pytorch-fid built it from the file)
    for key, value in model.net.state_dict().items():
        if key.startswith("blocks.0.0.conv.weight"):
            torch.testing.assert_close(value, state["Conv2d_1a_3x3.conv.weight"])
    # grayscale is tiled: the same image as three identical channels gives the same features
    assert torch.allclose(model(x.repeat(1, 3, 1, 1))["pool"], out["pool"], atol=1e-5)
    # torch's hub folder is left as it was
    assert "latentage-hub" not in torch.hub.get_dir()


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
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(InputError, match="not pytorch-fid's FID Inception weights"):
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


def test_inception_score_is_the_reference_formula_on_a_known_case():
    """Two splits; in each, half the images are certain of class 0 and half of class 1 (p(y)
    uniform over 2 classes): KL = log 2 per image, IS = 2 exactly. A split that is all class 0
    scores 1. The metric class reads the softmax logits of the set it collected."""
    logits = np.full((40, 1008), -1e4)
    logits[:10, 0] = logits[10:20, 1] = 0.0  # split 1: half class 0, half class 1
    logits[20:40, 0] = 0.0                    # split 2: all class 0
    assert inception_score(logits, splits=2) == pytest.approx((1.5, 0.5))
    metric = REGISTRY["is"](build("metrics", {"is_splits": 2, "n": {"is": 40}}), 0)
    s = metric.new_set()
    metric.feed(s, torch.zeros(40, 1, 8, 8), {"inception": {"logits": torch.from_numpy(logits)}})
    assert metric.value(s) == pytest.approx({"is_mean": 1.5, "is_std": 0.5})


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


def _swd_set(metric, images, role):
    s = metric.new_set(len(images), role=role)
    metric.feed(s, images, {})
    return s


def test_swd_is_near_zero_for_the_same_set_and_grows_where_images_differ():
    rng = np.random.default_rng(3)
    base = scipy.ndimage.gaussian_filter(rng.uniform(0, 255, (40, 1, 64, 64)), (0, 0, 1.5, 1.5))
    imgs = torch.tensor(base, dtype=torch.float32)
    blurred = torch.tensor(scipy.ndimage.gaussian_filter(base, (0, 0, 2.0, 2.0)),
                           dtype=torch.float32)
    metric = REGISTRY["swd"](build("metrics", {"n": {"swd": 40}}), 1)
    real = _swd_set(metric, imgs, 0)
    assert swdm.levels_for(64) == [64, 32, 16] and real.levels == [64, 32, 16]
    reference = metric.reference(real)
    same = metric.compare(reference, real)
    assert all(v == pytest.approx(0.0, abs=1e-6) for v in same.values())
    resampled = metric.compare(reference, _swd_set(metric, imgs, 1))
    blur = metric.compare(reference, _swd_set(metric, blurred, 1))
    assert set(blur) == {"swd_64", "swd_32", "swd_16", "swd_avg"}
    # blurring removes fine detail: the finest level moves most, and far beyond resampling noise
    assert blur["swd_64"] > 3 * resampled["swd_64"]
    assert blur["swd_64"] > blur["swd_16"]
    assert blur["swd_avg"] == pytest.approx(np.mean([blur["swd_64"], blur["swd_32"],
                                                     blur["swd_16"]]))


def test_one_channel_descriptors_tiled_after_normalising_equal_tiled_images():
    """The reference compares grayscale as three identical channels; keeping one channel and
    tiling after the per-channel normalisation gives the same descriptors."""
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.uniform(0, 255, (2, 1, 32, 32)).astype(np.float32))
    n = 2 * swdm.NHOODS_PER_IMAGE
    pos = (torch.from_numpy(rng.integers(3, 29, n)), torch.from_numpy(rng.integers(3, 29, n)))
    one = swdm.descriptors(x, positions=pos).reshape(2, swdm.NHOODS_PER_IMAGE, 49).numpy()
    three = swdm.finalize(swdm.descriptors(x.repeat(1, 3, 1, 1), positions=pos))
    torch.testing.assert_close(swdm._tiled(one), three)


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
