"""Backbones from timm, with ImageNet weights from a local file, the usual cache, or a download.

Offline machines cannot download weights. `create_backbone` looks, in order, at the file named
in config (`cnn.weights`), then at timm's own cache locations (TORCH_HOME for URL weights, the
Hugging Face cache for hub weights), then — only if `allow_download` — lets timm download as on
any networked cluster. When nothing works it says which file to put where.

Grayscale input: timm adapts the first convolution of a 3-channel checkpoint to one channel by
summing its RGB filters (timm.models.adapt_input_conv), so no channel is silently dropped.
"""

from __future__ import annotations

import os
from pathlib import Path

import timm
import torch

from latentage.errors import InputError


def expected_cache_file(name: str) -> Path | None:
    """Where timm's URL download would cache this backbone's ImageNet weights."""
    cfg = timm.get_pretrained_cfg(name)
    if cfg is None or not cfg.url:
        return None
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub"
    return hub / "checkpoints" / Path(cfg.url).name


def _hf_cached(name: str) -> bool:
    cfg = timm.get_pretrained_cfg(name)
    if cfg is None or not cfg.hf_hub_id:
        return False
    try:
        from huggingface_hub import try_to_load_from_cache

        for fname in ("model.safetensors", "pytorch_model.bin"):
            hit = try_to_load_from_cache(cfg.hf_hub_id, fname)
            if isinstance(hit, str):
                return True
    except ImportError:
        pass
    return False


def create_backbone(name: str, pretrained: bool, weights: str | None = None,
                    allow_download: bool = True, in_chans: int = 1) -> torch.nn.Module:
    """A timm feature extractor (global-pooled, no classifier) for `in_chans` inputs."""
    if name not in timm.list_models() and name not in timm.list_models(pretrained=True):
        raise InputError(f"config key cnn.backbone: {name!r} is not a timm model")
    kw = {"num_classes": 0, "in_chans": in_chans}
    if not pretrained:
        return timm.create_model(name, pretrained=False, **kw)
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise InputError(f"config key cnn.weights: {path} does not exist; put the ImageNet "
                             f"weights of {name} there, or set cnn.pretrained: false")
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)},
                                 **kw)
    cached = expected_cache_file(name)
    if cached is not None and cached.is_file():
        return timm.create_model(name, pretrained=True,
                                 pretrained_cfg_overlay={"file": str(cached)}, **kw)
    if _hf_cached(name) or allow_download:
        try:
            return timm.create_model(name, pretrained=True, **kw)
        except Exception as exc:  # no network, blocked host, interrupted download
            raise InputError(_missing(name, cached, f"download failed: {exc}")) from None
    raise InputError(_missing(name, cached, "downloads are off (cnn.allow_download: false)"))


def _missing(name: str, cached: Path | None, why: str) -> str:
    cfg = timm.get_pretrained_cfg(name)
    source = (cfg.url or f"https://huggingface.co/{cfg.hf_hub_id}") if cfg else "timm"
    where = f"{cached}" if cached else "resources/weights/" + name + ".pth"
    return (f"ImageNet weights for cnn.backbone {name!r} are not available ({why}). Download "
            f"{source} on a machine with network and either copy it to {where} or set "
            f"cnn.weights to its path (e.g. resources/weights/{Path(source).name}); or set "
            f"cnn.pretrained: false to train from scratch.")
