"""MS-SSIM between consecutive pairs of images (0,1), (2,3), …: lower = more diverse.

pytorch-msssim with the settings of the PGGAN reference (Gaussian window 11, σ 1.5, K1 0.01,
K2 0.03, five scales weighted [0.0448, 0.2856, 0.3001, 0.2363, 0.1333], data range 255).
Five scales of an 11-pixel window need a side above 160 px; smaller images (the mini target's
32²) are upscaled bilinearly to 176 px first, generated and real alike, and the result says so.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
WINDOW, SIGMA, K = 11, 1.5, (0.01, 0.03)
MIN_SIDE = (WINDOW - 1) * 2 ** (len(WEIGHTS) - 1) + 1  # 161
UPSCALE_TO = 176


def pair_ms_ssim(a255: torch.Tensor, b255: torch.Tensor) -> tuple[torch.Tensor, int | None]:
    """MS-SSIM of each pair (N×1×H×W in [0, 255]) and the side it was computed at if upscaled."""
    from pytorch_msssim import ms_ssim

    a, b = a255.float(), b255.float()
    upscaled = None
    if min(a.shape[-2:]) < MIN_SIDE:
        upscaled = UPSCALE_TO
        a = F.interpolate(a, size=(upscaled, upscaled), mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=(upscaled, upscaled), mode="bilinear", align_corners=False)
    value = ms_ssim(a, b, data_range=255, size_average=False, win_size=WINDOW, win_sigma=SIGMA,
                    weights=WEIGHTS, K=K)
    return value, upscaled


class MSSSIM:
    name = "ms_ssim"
    needs = None

    def __init__(self, n: int, **_):
        self.n, self.values, self.carry, self.seen, self.upscaled = n, [], None, 0, None

    def feed(self, images, **_):
        if self.carry is not None:
            images = torch.cat([self.carry, images])
            self.carry = None
        images = images[: self.n - self.seen]
        if len(images) % 2:
            self.carry, images = images[-1:], images[:-1]
        if len(images):
            vals, self.upscaled = pair_ms_ssim(images[0::2], images[1::2])
            self.values.append(vals.double().cpu().numpy())
            self.seen += len(images)

    def result(self) -> dict:
        vals = np.concatenate(self.values)
        out = {"ms_ssim": float(vals.mean()), "ms_ssim_pairs": len(vals)}
        if self.upscaled:
            out["ms_ssim_upscaled_to"] = self.upscaled
        return out
