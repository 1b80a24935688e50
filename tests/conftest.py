import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def phantom_set(tmp_path_factory):
    """A small phantom folder in RSNA format, shared by the data tests."""
    from latentage.data.phantom_dataset import write_phantom_dataset

    root = tmp_path_factory.mktemp("phantom")
    write_phantom_dataset(root / "images", root / "labels.csv", root / "truth.csv", n=60,
                          size=96, seed=3, log=lambda *_: None)
    return root


@pytest.fixture
def phantom_copy(phantom_set, tmp_path):
    """A private, writable copy of the small phantom folder."""
    dst = tmp_path / "raw"
    shutil.copytree(phantom_set, dst)
    return dst


BIN = Path(sys.executable).parent  # the venv running pytest: snakemake, latentage, ...


def snakemake_env() -> dict:
    """Environment for running snakemake in a subprocess with the venv's tools on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env
