"""Read an RSNA-format labels CSV and image folder, and say exactly what is wrong with them.

Every problem names the CSV line or the image file. With ``on_bad='skip'`` row-level problems
become skips with a reason (reported in prepare.json); an empty or unreadable CSV, or missing
columns, are always errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from latentage.errors import InputError

# Header names seen in the RSNA 2017 distribution (training / validation / test CSVs).
ID_ALIASES = ("id", "Image ID", "Case ID", "image_id")
AGE_ALIASES = ("boneage", "Bone Age (months)", "bone_age", "boneage_months")
SEX_ALIASES = ("male", "Sex", "sex", "is_male")
MAX_AGE_MONTHS = 300.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

_TRUE = {"true", "t", "1", "m", "male", "yes", "y"}
_FALSE = {"false", "f", "0", "female", "no", "n"}


@dataclass
class Record:
    line: int  # line in the CSV (header = 1)
    id: str
    boneage: float
    male: bool
    path: Path


@dataclass
class Skip:
    line: int | None
    id: str | None
    file: str | None
    reason: str

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _pick(columns, wanted: str | None, aliases, what: str, csv_path) -> str:
    if wanted:
        if wanted not in columns:
            raise InputError(f"{csv_path}: no column {wanted!r} for {what} "
                             f"(columns: {', '.join(map(str, columns))})")
        return wanted
    for name in aliases:
        if name in columns:
            return name
    raise InputError(f"{csv_path}: no {what} column; expected one of {', '.join(aliases)} "
                     f"(found: {', '.join(map(str, columns))}); set it under data.rsna in "
                     f"config.yaml")


def parse_sex(value) -> bool | None:
    """True for male, False for female, None if it cannot be read."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _find_image(images_dir: Path, image_id: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for cand in (images_dir / f"{image_id}{suffix}", images_dir / f"{image_id}{suffix.upper()}"):
            if cand.is_file():
                return cand
    return None


def _read_csv(csv_path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError(f"{csv_path}: the CSV is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{csv_path}: cannot parse as CSV ({exc})") from None
    if frame.empty:
        raise InputError(f"{csv_path}: the CSV has a header but no rows")
    return frame


def _check_row(image_id: str, raw_age: str, raw_sex, seen: dict) -> tuple[float, bool] | str:
    """(age, male) of a CSV row, or why the row is bad."""
    if not image_id:
        return "empty image id"
    if image_id in seen:
        return f"duplicate id (first on line {seen[image_id]})"
    try:
        age = float(raw_age)
    except ValueError:
        return f"bone age {raw_age!r} is not a number"
    if not math.isfinite(age) or age < 0:
        return f"bone age {raw_age!r} is negative or not finite"
    if age > MAX_AGE_MONTHS:
        return f"bone age {raw_age} months is absurd (> {MAX_AGE_MONTHS:.0f})"
    male = parse_sex(raw_sex)
    if male is None:
        return f"sex flag {raw_sex!r} is neither male nor female (True/False, 1/0, M/F)"
    return age, male


def read_labels(csv_path, images_dir, id_column=None, age_column=None, sex_column=None,
                on_bad: str = "error"):
    """Validated records, skips, and the number of images without a CSV row."""
    csv_path, images_dir = Path(csv_path), Path(images_dir)
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: labels CSV not found")
    if not images_dir.is_dir():
        raise InputError(f"{images_dir}: image folder not found")
    frame = _read_csv(csv_path)
    cols = list(frame.columns)
    id_col = _pick(cols, id_column, ID_ALIASES, "image id", csv_path)
    age_col = _pick(cols, age_column, AGE_ALIASES, "bone age", csv_path)
    sex_col = _pick(cols, sex_column, SEX_ALIASES, "sex", csv_path)
    records, skips, seen = [], [], {}
    for i, row in enumerate(frame.itertuples(index=False)):
        line = i + 2
        row = dict(zip(cols, row, strict=True))
        image_id = str(row[id_col]).strip()
        checked = _check_row(image_id, str(row[age_col]).strip(), row[sex_col], seen)
        path = _find_image(images_dir, image_id) if not isinstance(checked, str) else None
        if not isinstance(checked, str) and path is None:
            checked = f"no image {image_id}.png/.jpg in {images_dir}"
        if isinstance(checked, str):
            where = f"{csv_path} line {line}" + (f" (id {image_id})" if image_id else "")
            if on_bad != "skip":
                raise InputError(f"{where}: {checked}")
            skips.append(Skip(line, image_id or None, None, checked))
        else:
            records.append(Record(line, image_id, *checked, path))
        if image_id and image_id not in seen:
            seen[image_id] = line
    listed = {r.path.name for r in records} | {s.file for s in skips if s.file}
    on_disk = [p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    unlisted = sum(1 for p in on_disk if p.name not in listed and p.stem not in seen)
    return records, skips, unlisted


def load_grayscale(path: Path, min_size: int) -> np.ndarray:
    """Any PNG/JPEG mode and bit depth → 8-bit grayscale array; InputError if unusable."""
    try:
        with Image.open(path) as im:
            im.load()
            arr = _to_uint8_gray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: unreadable or truncated image ({exc})") from None
    if min(arr.shape) < min_size:
        raise InputError(f"{path}: image is {arr.shape[1]}×{arr.shape[0]} px, below the "
                         f"minimum side of {min_size} px (data.min_image_size)")
    return arr


def _to_uint8_gray(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = float(a.max()) if a.size else 0.0
        if mode == "F":
            lo = float(a.min())
            return np.rint((a - lo) / max(top - lo, 1e-12) * 255).astype(np.uint8)
        # scale by the bit depth actually used (12-bit data in a 16-bit container is common)
        bits = max(8, math.ceil(math.log2(top + 1))) if top > 0 else 8
        return np.rint(np.clip(a, 0, None) / (2**bits - 1) * 255).astype(np.uint8)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (0, 0, 0, 255))
        im = Image.alpha_composite(bg, im)
    if mode != "L":
        im = im.convert("L")
    return np.asarray(im, dtype=np.uint8)
