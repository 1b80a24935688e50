"""Checkpoints: plain state dicts (no pickled code), written atomically, loaded weights_only.

Every checkpoint is loaded onto the CPU; only the networks (and optimiser states) are moved to
the device afterwards. The data order and the random states inside a progress checkpoint must
stay CPU tensors, and a checkpoint written on one device must load on any other.
"""

from __future__ import annotations

from pathlib import Path

import torch

from latentage.errors import InputError
from latentage.gan.networks import Generator
from latentage.io import atomic_path


def save(path, state: dict) -> None:
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def load(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise InputError(f"{path}: not a readable latentage checkpoint ({exc})") from None


def save_snapshot(path, G_ema_state: dict, networks: dict, resolution: int, alpha: float,
                  kimg: float, **extra) -> None:
    """A G_ema snapshot as `load_generator` reads it: network settings, weights and where in
    the growth schedule it was taken."""
    cpu = {k: v.detach().cpu() for k, v in G_ema_state.items()}
    save(path, {"networks": networks, "G_ema": cpu, "resolution": resolution,
                "alpha": alpha, "kimg": kimg, **extra})


def load_generator(path, device="cpu") -> tuple[Generator, dict]:
    """G_ema from a phase checkpoint or a snapshot, in eval mode, with its metadata."""
    state = load(path)
    if "G_ema" not in state or "networks" not in state:
        raise InputError(f"{path}: no G_ema in this checkpoint")
    G = Generator(**state["networks"]["G"])
    G.load_state_dict(state["G_ema"])
    G.to(device).eval().requires_grad_(False)
    return G, {k: state[k] for k in ("resolution", "alpha", "kimg") if k in state}
