"""Preparation: pad, resize to every resolution, split, write memmaps and labels."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import prepare_folder

from latentage.config import build
from latentage.data.prepare import pad_to_square, prepare, pyramid, stratified_test_split
from latentage.errors import InputError


def test_pad_to_square_uses_the_background_level_and_centres():
    img = np.full((20, 10), 17, np.uint8)
    img[5:15, 2:8] = 200
    out = pad_to_square(img)
    assert out.shape == (20, 20)
    assert np.all(out[:, :5] == 17) and np.all(out[:, 15:] == 17)
    assert np.array_equal(out[:, 5:15], img)


@pytest.mark.parametrize("shape", [(300, 200), (128, 128), (97, 301)])
def test_pyramid_levels_shapes_dtype_and_exact_means(shape):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    levels = pyramid(img, 64)
    assert [lv.shape for lv in levels] == [(r, r) for r in (64, 32, 16, 8, 4)]
    assert all(lv.dtype == np.uint8 for lv in levels)
    # each lower level is the 2×2 mean of the one above (within rounding of the upper level)
    for hi, lo in zip(levels, levels[1:], strict=False):
        mean = hi.astype(float).reshape(lo.shape[0], 2, lo.shape[1], 2).mean(axis=(1, 3))
        assert np.abs(mean - lo).max() <= 1.0


def test_pyramid_antialiases_a_fine_grating():
    img = np.zeros((512, 512), np.uint8)
    img[:, ::2] = 255  # one-pixel stripes: must average to grey, not alias into bands
    top = pyramid(img, 64)[0].astype(float)
    assert abs(top.mean() - 127.5) < 3 and top.std() < 4


def test_split_is_stratified_and_deterministic():
    rng = np.random.default_rng(1)
    ages = rng.uniform(0, 228, 2000)
    a = stratified_test_split(ages, 200, seed=5)
    b = stratified_test_split(ages, 200, seed=5)
    c = stratified_test_split(ages, 200, seed=6)
    assert a.sum() == 200 and np.array_equal(a, b) and not np.array_equal(a, c)
    bins = np.floor(ages / 12).astype(int)
    for k in np.unique(bins):
        share = a[bins == k].mean()
        assert abs(share - 0.1) <= 1.0 / (bins == k).sum() + 1e-9
    assert stratified_test_split(ages, 0.25, seed=5).sum() == 500
    with pytest.raises(InputError, match="test_size"):
        stratified_test_split(ages[:5], 5, seed=0)


def test_prepare_writes_memmaps_labels_and_summary(phantom_set, tmp_path):
    out = tmp_path / "data"
    summary = prepare_folder(phantom_set, out, 64, test_size=12, seed=4, min_image_size=64)
    src = pd.read_csv(phantom_set / "labels.csv").astype({"id": str}).set_index("id")
    assert summary["counts"] == {"train": 48, "test": 12, "csv_rows_ok": 60, "used": 60,
                                 "skipped": 0, "images_without_csv_row": 0}
    from PIL import Image

    seen = set()
    for split, n in (("train", 48), ("test", 12)):
        labels = pd.read_parquet(out / split / "labels.parquet")
        assert list(labels.columns) == ["id", "boneage", "male"] and len(labels) == n
        seen |= set(labels.id)
        assert np.allclose(labels.boneage, src.loc[labels.id, "boneage"])
        assert list(labels.male) == list(src.loc[labels.id, "male"])
        for r in (4, 8, 16, 32, 64):
            arr = np.load(out / split / f"res{r}.npy", mmap_mode="r")
            assert arr.shape == (n, r, r) and arr.dtype == np.uint8
        # row i of every memmap is the image of labels row i
        arr = np.load(out / split / "res64.npy", mmap_mode="r")
        first = np.asarray(Image.open(phantom_set / "images" / f"{labels.id[0]}.png"))
        assert np.abs(pyramid(first, 64)[0].astype(int) - arr[0]).max() == 0
    assert len(seen) == 60
    on_disk = json.loads((out / "prepare.json").read_text())
    assert on_disk["resolutions"] == [4, 8, 16, 32, 64]
    # the step wrote exactly the files it was given (its staging folder is gone)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["prepare.json"] + [f"{s}/{f}" for s in ("test", "train") for f in
                                          ["labels.parquet"] + [f"res{r}.npy" for r in
                                                                (16, 32, 4, 64, 8)]]


def test_prepare_refuses_a_wrong_number_of_output_files(phantom_set, tmp_path):
    with pytest.raises(InputError, match="--train-images names 2 files but data.max_res 16 "
                                         "needs 3"):
        prepare(images=phantom_set / "images", labels=phantom_set / "labels.csv",
                train_images=[tmp_path / "a.npy", tmp_path / "b.npy"],
                test_images=[tmp_path / f"t{i}.npy" for i in range(3)],
                train_labels=tmp_path / "a.parquet", test_labels=tmp_path / "b.parquet",
                summary=tmp_path / "s.json", settings=build("data", {"max_res": 16}), seed=0)


def test_prepare_is_deterministic(phantom_set, tmp_path):
    for name in ("a", "b"):
        prepare_folder(phantom_set, tmp_path / name, 16, test_size=0.2, seed=9)
    for split in ("train", "test"):
        assert (tmp_path / "a" / split / "res16.npy").read_bytes() == \
            (tmp_path / "b" / split / "res16.npy").read_bytes()
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / split / "labels.parquet"),
                                      pd.read_parquet(tmp_path / "b" / split / "labels.parquet"))
