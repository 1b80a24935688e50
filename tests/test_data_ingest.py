"""Ingest: every kind of bad input gives an error naming the row or file, or a recorded skip."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import prepare_folder
from PIL import Image

from latentage.data.ingest import load_grayscale, parse_sex, read_labels
from latentage.errors import InputError


def _labels(raw):
    return pd.read_csv(raw / "labels.csv")


def _write(raw, frame):
    frame.to_csv(raw / "labels.csv", index=False)


def _prepare(raw, tmp_path, **kw):
    kw.setdefault("on_bad_image", "error")
    return prepare_folder(raw, tmp_path / "out", 32, test_size=10, min_image_size=64, **kw)


def _expect_error_then_skip(raw, tmp_path, match):
    """The bad input stops the run with a message matching `match`; with skip it is left
    out and recorded in prepare.json with the same reason."""
    with pytest.raises(InputError, match=match):
        _prepare(raw, tmp_path)
    summary = _prepare(raw, tmp_path, on_bad_image="skip")
    skipped = summary["skipped"]
    assert len(skipped) == 1, skipped
    entry = skipped[0]
    described = f"line {entry['line']} (id {entry.get('id')}): {entry['reason']}"
    assert re.search(match, described), described
    on_disk = json.loads((tmp_path / "out" / "prepare.json").read_text())
    assert on_disk["counts"]["skipped"] == 1
    assert summary["counts"]["train"] + summary["counts"]["test"] == summary["counts"]["used"]
    return summary


def test_clean_folder_prepares_without_skips(phantom_copy, tmp_path):
    summary = _prepare(phantom_copy, tmp_path)
    assert summary["counts"]["used"] == 60 and summary["skipped"] == []


def test_truncated_image(phantom_copy, tmp_path):
    image_id = _labels(phantom_copy).id[4]
    path = phantom_copy / "images" / f"{image_id}.png"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    summary = _expect_error_then_skip(phantom_copy, tmp_path, rf"{image_id}\.png.*truncated")
    assert summary["skipped"][0]["id"] == str(image_id)


def test_corrupt_image(phantom_copy, tmp_path):
    image_id = _labels(phantom_copy).id[7]
    (phantom_copy / "images" / f"{image_id}.png").write_bytes(b"this is not a png at all")
    _expect_error_then_skip(phantom_copy, tmp_path, rf"{image_id}\.png.*unreadable")


def test_csv_row_without_image(phantom_copy, tmp_path):
    image_id = _labels(phantom_copy).id[3]
    (phantom_copy / "images" / f"{image_id}.png").unlink()
    _expect_error_then_skip(phantom_copy, tmp_path, rf"line 5 \(id {image_id}\): no image")


def test_duplicate_id(phantom_copy, tmp_path):
    frame = _labels(phantom_copy)
    frame = pd.concat([frame, frame.iloc[[2]]], ignore_index=True)
    _write(phantom_copy, frame)
    _expect_error_then_skip(phantom_copy, tmp_path, r"line 62 .*duplicate id \(first on line 4\)")


@pytest.mark.parametrize("age, match", [
    ("twelve", r"line 3 .*bone age 'twelve' is not a number"),
    ("-4", r"line 3 .*negative"),
    ("412", r"line 3 .*412 months is absurd"),
])
def test_bad_age(phantom_copy, tmp_path, age, match):
    frame = _labels(phantom_copy).astype({"boneage": str})
    frame.loc[1, "boneage"] = age
    _write(phantom_copy, frame)
    _expect_error_then_skip(phantom_copy, tmp_path, match)


def test_unparsable_sex(phantom_copy, tmp_path):
    frame = _labels(phantom_copy).astype({"male": str})
    frame.loc[9, "male"] = "maybe"
    _write(phantom_copy, frame)
    _expect_error_then_skip(phantom_copy, tmp_path, r"line 11 .*sex flag 'maybe'")


def test_image_below_minimum_size(phantom_copy, tmp_path):
    image_id = _labels(phantom_copy).id[0]
    Image.new("L", (40, 90), 30).save(phantom_copy / "images" / f"{image_id}.png")
    _expect_error_then_skip(phantom_copy, tmp_path, rf"{image_id}\.png.*40×90 px, below the minimum")


@pytest.mark.parametrize("content", ["", "id,boneage,male\n"])
def test_empty_csv_is_always_an_error(phantom_copy, tmp_path, content):
    (phantom_copy / "labels.csv").write_text(content)
    for mode in ("error", "skip"):
        with pytest.raises(InputError, match=r"labels\.csv: the CSV (is empty|has a header but no rows)"):
            _prepare(phantom_copy, tmp_path, on_bad_image=mode)


def test_missing_column_names_the_file_and_columns(phantom_copy, tmp_path):
    _write(phantom_copy, _labels(phantom_copy).rename(columns={"boneage": "age_in_months"}))
    with pytest.raises(InputError, match=r"labels\.csv: no bone age column.*age_in_months"):
        _prepare(phantom_copy, tmp_path)
    summary = _prepare(phantom_copy, tmp_path, rsna={"age_column": "age_in_months"})
    assert summary["counts"]["used"] == 60


def test_images_without_csv_row_are_ignored_and_counted(phantom_copy, tmp_path):
    Image.new("L", (100, 100), 10).save(phantom_copy / "images" / "99999.png")
    summary = _prepare(phantom_copy, tmp_path)
    assert summary["counts"]["images_without_csv_row"] == 1
    assert summary["counts"]["used"] == 60


def test_rsna_validation_headers_are_recognised(phantom_copy, tmp_path):
    frame = _labels(phantom_copy)
    frame = pd.DataFrame({"Image ID": frame.id, "Sex": np.where(frame.male, "M", "F"),
                          "Bone Age (months)": frame.boneage})
    _write(phantom_copy, frame)
    records, skips, _ = read_labels(phantom_copy / "labels.csv", phantom_copy / "images")
    assert len(records) == 60 and not skips
    assert [r.male for r in records] == list(frame["Sex"] == "M")


@pytest.mark.parametrize("value, expected", [
    ("True", True), ("false", False), ("1", True), ("0", False), ("M", True), ("F", False),
    ("male", True), ("Female", False), (True, True), ("", None), ("x", None),
])
def test_parse_sex(value, expected):
    assert parse_sex(value) is expected


def _gray_palette_image(indices):
    pal = Image.new("P", (indices.shape[1], indices.shape[0]))
    pal.putpalette([c for i in range(256) for c in (255 - i,) * 3])
    pal.frombytes(indices.tobytes())
    return pal


def test_every_mode_and_bit_depth_becomes_8bit_gray(tmp_path):
    base = (np.arange(80 * 90).reshape(80, 90) % 251).astype(np.uint8)
    cases = {
        "gray8.png": Image.fromarray(base),
        "rgb.png": Image.fromarray(np.stack([base] * 3, -1)),
        "palette.png": _gray_palette_image(base),
        "rgba.png": Image.fromarray(np.dstack([base] * 3 + [np.full_like(base, 255)])),
        "gray16.png": Image.fromarray(base.astype(np.uint16) * 257),
        "gray12in16.png": Image.fromarray(base.astype(np.uint16) * 16),
        "jpeg.jpg": Image.fromarray(base),
        "bilevel.png": Image.fromarray(base > 128),
    }
    for name, im in cases.items():
        im.save(tmp_path / name, quality=95) if name.endswith(".jpg") else im.save(tmp_path / name)
        arr = load_grayscale(tmp_path / name, min_size=64)
        assert arr.dtype == np.uint8 and arr.shape == (80, 90), name
        if name in ("gray8.png", "rgb.png", "rgba.png", "gray16.png"):
            assert np.array_equal(arr, base), name
        elif name == "gray12in16.png":  # scaled by the bit depth in use, not by 65535
            assert abs(int(arr.max()) - 250) <= 2, arr.max()
        elif name == "palette.png":
            assert np.array_equal(arr, 255 - base)  # the palette maps index i to gray 255 - i
        elif name == "jpeg.jpg":
            assert np.abs(arr.astype(int) - base).mean() < 6
        else:
            assert set(np.unique(arr)) <= {0, 255}
