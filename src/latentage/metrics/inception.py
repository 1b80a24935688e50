"""pytorch-fid's InceptionV3 with the FID weights, from a local file, the cache or a download.

The network is pytorch-fid's own (`pytorch_fid.inception.InceptionV3`, the TF-FID graph ported
to PyTorch); only where its weights come from is ours: `metrics.inception_weights` (a local
file) → torch's hub cache (`$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth`,
where pytorch-fid's own download lands) → pytorch-fid's download URL if
`metrics.allow_download`. Offline with none of these, `MissingWeights` says which file to put
where. The same weights file holds the 1008-way classifier used for the Inception Score.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F

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


def load_state(weights: str | Path | None, allow_download: bool) -> dict:
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise MissingWeights(_missing(f"config key metrics.inception_weights: {path} does "
                                          f"not exist"))
        return _read(path, "metrics.inception_weights")
    cached = cache_file()
    if cached.is_file():
        return _read(cached, "cached Inception weights")
    if not allow_download:
        raise MissingWeights(_missing("metrics.allow_download is false"))
    try:
        return torch.hub.load_state_dict_from_url(_url(), progress=False, map_location="cpu")
    except Exception as exc:  # no network, blocked host
        raise MissingWeights(_missing(f"download failed: {exc}")) from None


class InceptionFeatures(torch.nn.Module):
    """2048-d pool3 features (for FID) and 1008-way logits (for IS) of uint8-range images."""

    def __init__(self, state: dict):
        super().__init__()
        import pytorch_fid.inception as pfi

        # pytorch-fid builds its network and then loads the weights from its URL; hand it ours
        with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
            try:
                self.net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]],
                                           resize_input=True, normalize_input=True)
            except RuntimeError as exc:
                raise InputError(f"Inception weights do not fit pytorch-fid's network: {exc}") \
                    from None
        self.fc = torch.nn.Linear(2048, 1008)
        self.fc.load_state_dict({"weight": state["fc.weight"], "bias": state["fc.bias"]})
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images255: torch.Tensor) -> dict:
        """images255: N×C×H×W in [0, 255]; grayscale is tiled to three channels."""
        x = images255.float() / 255.0
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        pool = self.net(x)[0].flatten(1)
        return {"pool": pool, "logits": self.fc(F.dropout(pool, training=False))}


def load_inception(weights=None, allow_download: bool = True, device="cpu") -> InceptionFeatures:
    return InceptionFeatures(load_state(weights, allow_download)).to(device)
