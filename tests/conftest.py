import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv running pytest: snakemake, latentage, ...


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def quiet(*_):
    """A log function that drops everything (steps take `log=`)."""


@pytest.fixture(scope="session")
def phantom_set(tmp_path_factory):
    """A small phantom folder in RSNA format, shared by the data tests."""
    from latentage.config import build
    from latentage.data.phantom import phantom

    root = tmp_path_factory.mktemp("phantom")
    phantom(images=root / "images", labels=root / "labels.csv", truth=root / "truth.csv",
            settings=build("data.phantom", {"n": 60, "size": 96}), seed=3, log=quiet)
    return root


@pytest.fixture
def phantom_copy(phantom_set, tmp_path):
    """A private, writable copy of the small phantom folder."""
    dst = tmp_path / "raw"
    shutil.copytree(phantom_set, dst)
    return dst


def prepare_folder(raw: Path, out: Path, max_res: int, test_size=4, seed: int = 0, **data):
    """`prepare` of a labelled folder into out/{split}/res{R}.npy and out/{split}/labels.parquet;
    returns the summary."""
    from latentage.config import build, resolutions
    from latentage.data.prepare import prepare

    settings = build("data", {"max_res": max_res, "test_size": test_size, "min_image_size": 0,
                              **data})
    files = {s: [out / s / f"res{r}.npy" for r in resolutions(max_res)] for s in ("train", "test")}
    return prepare(images=raw / "images", labels=raw / "labels.csv", train_images=files["train"],
                   test_images=files["test"], train_labels=out / "train" / "labels.parquet",
                   test_labels=out / "test" / "labels.parquet", summary=out / "prepare.json",
                   settings=settings, seed=seed, log=quiet)


TINY_G = {"max_res": 32, "latent_size": 8, "fmap_base": 32, "fmap_max": 8,
          "normalize_latents": True}


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory) -> Path:
    """G_ema snapshots of a tiny random generator (32², latent 8): 000001.pt at 16² and
    000002.pt at 32², in one snapshots/ folder; returns the folder."""
    import torch

    from latentage.gan import checkpoint as ckpt
    from latentage.gan.networks import Generator

    root = tmp_path_factory.mktemp("generator") / "snapshots"
    root.mkdir()
    torch.manual_seed(0)
    G = Generator(**TINY_G)
    for kimg, res in ((1.0, 16), (2.0, 32)):
        ckpt.save_snapshot(root / f"{int(kimg):06d}.pt", G.state_dict(), {"G": TINY_G},
                           resolution=res, alpha=1.0, kimg=kimg)
    return root


@pytest.fixture(scope="session")
def tiny_cnn(tmp_path_factory) -> Path:
    """An untrained resnet10t bone-age CNN checkpoint (input 32 px)."""
    import torch

    from latentage.cnn.model import BoneAgeNet, save_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cnn") / "model.pt"
    save_model(BoneAgeNet.build("resnet10t", 32, False, None, False, 120.0, 40.0), path)
    return path


@pytest.fixture(scope="session")
def smooth_reals(tmp_path_factory) -> Path:
    """40 smooth random 32² uint8 images (a stand-in for prepared real images)."""
    import scipy.ndimage

    path = tmp_path_factory.mktemp("reals") / "res32.npy"
    rng = np.random.default_rng(0)
    reals = scipy.ndimage.gaussian_filter(rng.uniform(0, 255, (40, 32, 32)), (0, 1, 1))
    np.save(path, reals.astype(np.uint8))
    return path


@pytest.fixture(scope="session")
def inception_file(tmp_path_factory):
    """Random weights in the FID Inception's exact key layout (torchvision's Inception3 with
    1008 classes and no aux head has the same keys as pytorch-fid's FID variant)."""
    import torch
    import torchvision

    from latentage.metrics import inception as inc

    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008,
                                          init_weights=False)
    state = net.state_dict()
    state["fc.bias"] = torch.randn(1008)  # a bias the IS logits must not use
    path = tmp_path_factory.mktemp("weights") / inc.FID_WEIGHTS_FILE
    torch.save(state, path)
    return path


def snakemake_env() -> dict:
    """Environment for running snakemake in a subprocess with the venv's tools on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env
