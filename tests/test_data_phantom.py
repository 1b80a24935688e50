"""Phantom radiographs: determinism, label statistics, and an age signal in the pixels."""

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.morphology import disk, white_tophat

from latentage.config import build
from latentage.data import hand_model as H
from latentage.data.phantom import make_phantom, phantom
from latentage.data.phantom_sheet import phantom_sheet


def test_same_seed_and_index_give_the_same_image():
    a, age_a, male_a, truth_a = make_phantom(11, 5, 128)
    b, age_b, male_b, truth_b = make_phantom(11, 5, 128)
    assert np.array_equal(a, b) and (age_a, male_a) == (age_b, male_b) and truth_a == truth_b
    c, *_ = make_phantom(11, 6, 128)
    d, *_ = make_phantom(12, 5, 128)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_index_does_not_depend_on_how_many_were_made(tmp_path):
    phantom(images=tmp_path / "a", labels=tmp_path / "a.csv", truth=tmp_path / "ta.csv",
            settings=build("data.phantom", {"n": 6, "size": 64}), seed=1, log=lambda *_: None)
    phantom(images=tmp_path / "b", labels=tmp_path / "b.csv", truth=tmp_path / "tb.csv",
            settings=build("data.phantom", {"n": 3, "size": 64}), seed=1, workers=2,
            log=lambda *_: None)
    for i in (1, 2, 3):
        assert (tmp_path / "a" / f"{i}.png").read_bytes() == (tmp_path / "b" / f"{i}.png").read_bytes()


def test_labels_follow_the_rsna_distribution():
    rng = np.random.default_rng(0)
    draws = [H.sample_label(rng) for _ in range(4000)]
    ages = np.array([a for a, _ in draws])
    male = np.array([m for _, m in draws])
    assert ages.min() >= 1 and ages.max() <= 228
    assert 120 <= ages.mean() <= 135  # RSNA: 127.3
    assert 0.5 <= male.mean() <= 0.58  # RSNA: 54.2 %
    assert ages[male].mean() > ages[~male].mean() + 10  # RSNA: 135 vs 118
    assert 0.6 <= np.mean((ages >= 96) & (ages < 180)) <= 0.8  # most between 8 and 14 y


def test_uniform_age_mix_fills_every_year_and_keeps_the_rest_of_the_phantom():
    rng = np.random.default_rng(0)
    ages = np.array([H.sample_label(rng, "uniform")[0] for _ in range(4000)])
    # every year of bone age 0-19 about equally common (each 5 %; RSNA has 0.1 % below 1 year
    # and 0.6 % above 17); the sex factor (×1.06 boys, ×0.93 girls) blurs the bins' edges
    counts = np.bincount((ages // 12).astype(int), minlength=20)[:19]
    assert counts[1:18].min() >= 0.035 * 4000 and counts.max() <= 0.065 * 4000
    assert np.mean(ages < 72) == pytest.approx(6 / 20, abs=0.03)
    # the same random stream: sex, and everything drawn after the label, are unchanged
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert H.sample_label(a, "rsna")[1] == H.sample_label(b, "uniform")[1]
    assert a.random() == b.random()
    with pytest.raises(ValueError, match="unknown phantom age mix 'flat'"):
        H.sample_label(rng, "flat")
    rsna, uniform = make_phantom(3, 9, 64), make_phantom(3, 9, 64, ages="uniform")
    assert rsna[3]["rotation"] == uniform[3]["rotation"]


def test_written_dataset_is_rsna_format(phantom_set):
    labels = pd.read_csv(phantom_set / "labels.csv")
    assert list(labels.columns) == ["id", "boneage", "male"]
    assert labels.id.is_unique and len(labels) == 60
    assert set(labels.male.unique()) <= {True, False}
    for image_id in labels.id:
        assert (phantom_set / "images" / f"{image_id}.png").is_file()
    truth = pd.read_csv(phantom_set / "truth.csv")
    assert {"maturity_years", "n_carpals", "rotation", "scale_px"} <= set(truth.columns)


def test_carpal_count_and_fusion_follow_the_timeline():
    rng = np.random.default_rng(0)
    newborn = H.build_hand(1, True, rng).truth
    twelve_boy = H.build_hand(12 * 12, True, rng).truth
    adult = H.build_hand(18 * 12, True, rng).truth
    assert newborn["n_carpals"] == 0
    assert twelve_boy["n_carpals"] == 8
    assert newborn["phalanx_fusion_mean"] == 0 and adult["phalanx_fusion_mean"] > 0.9
    # girls are ahead at the same bone age
    girl = H.build_hand(7 * 12, False, rng).truth
    boy = H.build_hand(7 * 12, True, rng).truth
    assert girl["n_carpals"] >= boy["n_carpals"]
    assert girl["maturity_years"] > boy["maturity_years"]


def _measure(image, truth, size):
    """Bright bone area (px) in the whole image and bright blobs in the carpal region."""
    img = image.astype(np.float32) / 255.0
    spread = np.percentile(img, 99.5) - np.percentile(img, 1)
    tophat = white_tophat(img, disk(max(3, size // 28)))
    bone = tophat > 0.12 * spread
    # carpal region in the hand frame, below the metacarpal bases
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    t = np.radians(truth["rotation"])
    dx, dy = (xs - truth["wrist_x"]) / truth["scale_px"], (ys - truth["wrist_y"]) / truth["scale_px"]
    hx = np.cos(t) * dx - np.sin(t) * dy
    hy = -(np.sin(t) * dx + np.cos(t) * dy)
    region = (hx > -0.12) & (hx < 0.12) & (hy > 0.02) & (hy < 0.14)
    carpal_tophat = np.where(region, tophat, 0)
    thr = max(threshold_otsu(tophat[region]), 0.12 * spread)
    labels, n = ndimage.label(carpal_tophat > thr)
    sizes = np.bincount(labels.ravel())[1:]
    blobs = int(np.sum(sizes >= 4))
    return int(bone.sum()), blobs


@pytest.mark.parametrize("male", [True, False])
def test_measured_bone_area_and_carpal_blobs_rise_with_age(male):
    size = 256
    groups = {"1-2 y": (12, 24), "5-7 y": (60, 84), "10-12 y": (120, 144), "15-18 y": (180, 216)}
    means = {}
    for name, (lo, hi) in groups.items():
        areas, blobs = [], []
        for i, age in enumerate(np.linspace(lo, hi, 12)):
            image, _, _, truth = make_phantom(99, i, size, boneage=age, male=male)
            area, n = _measure(image, truth, size)
            areas.append(area)
            blobs.append(n)
        means[name] = (np.mean(areas), np.mean(blobs))
    areas = [a for a, _ in means.values()]
    blobs = [b for _, b in means.values()]
    assert all(np.diff(areas) > 0), means
    assert blobs[0] < blobs[1] < blobs[2], means
    assert blobs[0] <= 2.5 and blobs[2] >= 4, means


def test_phantom_sheet_is_a_real_png(phantom_set, tmp_path):
    out = tmp_path / "sheet.png"
    phantom_sheet(images=phantom_set / "images", labels=phantom_set / "labels.csv", out=out, n=12)
    from PIL import Image

    with Image.open(out) as im:
        assert im.width > 600 and im.height > 300
        assert np.asarray(im.convert("L")).std() > 20
