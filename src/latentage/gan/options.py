"""Every knob of a growth phase, documented; built from the config's `gan` section."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass
class TrainOptions:
    # networks (networks.py)
    max_res: int = 1024  # final resolution of the growing networks
    latent_size: int = 512  # z dimensions (the study: 512; its failed runs: 20, 100)
    fmap_base: int = 8192  # feature maps at stage s: min(fmap_base / 2**s, fmap_max)
    fmap_max: int = 512
    mbstd_group_size: int = 4  # minibatch-stddev group; 0 or 1 disables the layer
    normalize_latents: bool = True  # pixel-normalise z inside G
    # schedule (schedule.py) — the study's preset v2-4gpus by default
    schedule: dict = field(default_factory=dict)
    minibatch_repeats: int = 4  # minibatches between schedule updates (official: 4)
    # loss (loss.py)
    wgan_lambda: float = 10.0
    wgan_target: float = 1.0
    drift: float = 0.001
    # optimiser: Adam(β1, β2, ε), state reset whenever a new level of detail starts
    adam_beta1: float = 0.0
    adam_beta2: float = 0.99
    adam_eps: float = 1e-8
    ema_beta: float = 0.999  # G_ema ← β·G_ema + (1 − β)·G after every step
    # outputs
    snapshot_kimg: float = 240.0  # G_ema snapshot interval (names known to the DAG)
    checkpoint_kimg: float = 100.0  # resumable progress checkpoint interval
    grid_size: int = 16  # images in fakes grids (fixed latents)
    # divergence guard
    max_abs_loss: float = 1.0e4  # |D loss| above this (or NaN/Inf) counts as divergence
    max_restores: int = 3  # restores per phase before giving up with an error
    fade_stretch: float = 1.5  # stretch the current fade by this factor on each restore
    # performance
    precision: str = "auto"  # auto | fp32 | fp16 | bf16 (auto: bf16 on A100/H100, fp16 on V100)
    channels_last: bool = True  # NHWC memory layout on GPUs
    compile: bool = False  # torch.compile the networks

    def __post_init__(self):
        # per-resolution tables arrive with string keys from JSON and int keys from YAML
        self.schedule = {k: ({int(r): v for r, v in t.items()} if isinstance(t, dict) else t)
                         for k, t in self.schedule.items()}

    @classmethod
    def from_settings(cls, settings: dict) -> TrainOptions:
        known = set(cls.__dataclass_fields__)
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown gan settings: {', '.join(sorted(unknown))}")
        return cls(**settings)

    def network_kwargs(self) -> dict:
        return {
            "G": {"max_res": self.max_res, "latent_size": self.latent_size,
                  "fmap_base": self.fmap_base, "fmap_max": self.fmap_max,
                  "normalize_latents": self.normalize_latents},
            "D": {"max_res": self.max_res, "fmap_base": self.fmap_base,
                  "fmap_max": self.fmap_max, "mbstd_group_size": self.mbstd_group_size},
        }

    def digest(self) -> str:
        """Hash of the settings that define the trained weights: not performance knobs, not
        output intervals, not the divergence guard's policy (a fade it stretched is recorded in
        the checkpoint itself), so changing those keeps a phase's progress."""
        d = asdict(self)
        for k in ("checkpoint_kimg", "grid_size", "channels_last", "compile", "max_abs_loss",
                  "max_restores", "fade_stretch"):
            d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
