"""pytorch-fid's InceptionV3 with the FID weights, from a local file, the cache or a download.

The network is pytorch-fid's own (`pytorch_fid.inception.InceptionV3`, the TF-FID graph ported
to PyTorch); only where its weights come from is ours: `metrics.inception_weights` (a local
file) → torch's hub cache (`$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth`,
where pytorch-fid's own download lands) → pytorch-fid's download URL if
`metrics.allow_download`. Offline with none of these, `MissingWeights` says which file to put
where. The same weights file holds the 1008-way classifier used for the Inception Score.

pytorch-fid builds its network and takes the weights from torch's hub cache (downloading them
there if absent). A weights file elsewhere is handed to it the way torch itself finds cached
weights: a private hub folder (torch.hub.set_dir) whose checkpoints/ links to the file, for the
moment of construction.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import torch

from latentage.errors import InputError

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"


class MissingWeights(InputError):
    """The Inception weights are not available (offline, no local file)."""


def cache_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def _url() -> str:
    from pytorch_fid.inception import FID_WEIGHTS_URL

    return FID_WEIGHTS_URL


def _missing(why: str) -> str:
    return (f"FID/IS Inception weights are not available ({why}). On a machine with network, "
            f"download {_url()} and copy it to {cache_file()} (torch's hub cache; set TORCH_HOME "
            f"to move it), or set config key metrics.inception_weights to its path; or set "
            f"metrics.missing_weights: skip to leave FID and IS out.")


def _read(path: Path, what: str) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{what} {path}: not a readable weights file ({exc})") from None


@contextlib.contextmanager
def _hub_holding(path: Path):
    """torch's hub folder pointed, for a moment, at one holding `path` as the FID weights."""
    # torch keeps an explicitly set folder in torch.hub._hub_dir (None: follow $TORCH_HOME);
    # it is put back as it was, so TORCH_HOME keeps working afterwards
    previous = getattr(torch.hub, "_hub_dir", None)
    with tempfile.TemporaryDirectory(prefix="latentage-hub-") as hub:
        (Path(hub) / "checkpoints").mkdir()
        os.symlink(Path(path).resolve(), Path(hub) / "checkpoints" / FID_WEIGHTS_FILE)
        torch.hub.set_dir(hub)
        try:
            yield
        finally:
            torch.hub._hub_dir = previous


def weights_file(weights: str | Path | None, allow_download: bool) -> Path:
    """The FID weights file to use: the configured one, else torch's cache, else downloaded
    there (if allowed)."""
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise MissingWeights(_missing(f"config key metrics.inception_weights: {path} does "
                                          f"not exist"))
        return path
    cached = cache_file()
    if cached.is_file():
        return cached
    if not allow_download:
        raise MissingWeights(_missing("metrics.allow_download is false"))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(_url(), str(cached), progress=False)
    except Exception as exc:  # no network, blocked host
        raise MissingWeights(_missing(f"download failed: {exc}")) from None
    return cached


class InceptionFeatures(torch.nn.Module):
    """2048-d pool3 features (for FID) and 1008-way logits (for IS) of uint8-range images."""

    def __init__(self, path: Path):
        super().__init__()
        import pytorch_fid.inception as pfi

        state = _read(path, "Inception weights")
        if "fc.weight" not in state:
            raise InputError(f"{path}: not pytorch-fid's FID Inception weights (no fc.weight)")
        try:
            with _hub_holding(path):
                self.net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]],
                                           resize_input=True, normalize_input=True)
        except (RuntimeError, KeyError) as exc:
            raise InputError(f"{path}: Inception weights do not fit pytorch-fid's network: "
                             f"{exc}") from None
        # the TF graph's logits are pool3 · W, without the softmax layer's bias
        self.register_buffer("fc_weight", state["fc.weight"].float())
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images255: torch.Tensor) -> dict:
        """images255: N×C×H×W in [0, 255]; grayscale is tiled to three channels."""
        x = images255.float() / 255.0
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        pool = self.net(x)[0].flatten(1)
        return {"pool": pool, "logits": pool @ self.fc_weight.T}


def load_inception(weights=None, allow_download: bool = True, device="cpu") -> InceptionFeatures:
    return InceptionFeatures(weights_file(weights, allow_download)).to(device)
