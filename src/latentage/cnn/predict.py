"""The CNN as the labelling stage calls it: generated batches in memory, on the device.

    predictor = BoneAgePredictor.from_checkpoint("results/cnn/model.pt", device)
    out = predictor(G_ema(z, res))          # generator output: N×1×R×R in [-1, 1]
    out["age"], out["male_prob"]            # months, probability of male; tensors on device
    predictor(images, features=True)["features"]

Images are resized to the CNN's input size on the device (anti-aliased when shrinking),
processed in chunks of `batch_size`, under autocast on GPUs (latentage.device's precision
policy: bf16 on A100/H100, fp16 on V100, fp32 on the CPU).
"""

from __future__ import annotations

import numpy as np
import torch

from latentage.cnn.model import BoneAgeNet, load_model
from latentage.device import autocast, resolve_precision


class BoneAgePredictor:
    def __init__(self, model: BoneAgeNet, device, batch_size: int = 64,
                 precision: str = "auto"):
        self.model = model.to(device)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.precision = resolve_precision(precision, self.device)

    @classmethod
    def from_checkpoint(cls, path, device="cpu", batch_size: int = 64, expect=None,
                        precision: str = "auto") -> BoneAgePredictor:
        return cls(load_model(path, device, expect), device, batch_size, precision)

    @property
    def feature_dim(self) -> int:
        return self.model.meta.feature_dim

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, features: bool = False,
                 value_range: tuple[float, float] = (-1.0, 1.0)) -> dict:
        lo, hi = value_range
        was_training = self.model.training
        self.model.eval()
        ages, probs, feats = [], [], []
        for chunk in images.split(self.batch_size):
            x = chunk.to(self.device, non_blocking=True).float()
            x = ((x - lo) / (hi - lo)).clamp_(0.0, 1.0)
            with autocast(self.device, self.precision):
                a, s, f = self.model(self.model.prepare(x))
            ages.append(self.model.months(a.float()))
            probs.append(torch.sigmoid(s.float()))
            if features:
                feats.append(f.float())
        self.model.train(was_training)
        out = {"age": torch.cat(ages), "male_prob": torch.cat(probs)}
        if features:
            out["features"] = torch.cat(feats)
        return out

    def predict_uint8(self, images: np.ndarray, features: bool = False) -> dict:
        """The same for uint8 N×R×R arrays (e.g. prepared memmaps), read chunk by chunk;
        returns numpy arrays."""
        parts = []
        for start in range(0, len(images), self.batch_size):
            chunk = torch.from_numpy(np.array(images[start:start + self.batch_size]))
            parts.append(self(chunk.unsqueeze(1), features, value_range=(0.0, 255.0)))
        return {k: torch.cat([p[k] for p in parts]).cpu().numpy() for k in parts[0]}
