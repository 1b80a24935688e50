"""MS-SSIM against numbers from the PGGAN reference code, at sizes where its filter shrinks.

How the expected numbers were made: tkarras/progressive_growing_of_gans at commit 2504c3f
(metrics/ms_ssim.py, whose only change was `scipy.ndimage.filters` → `scipy.ndimage` for
SciPy 1.17), run with numpy 2.4.6 / SciPy 1.17.1 on the images `pairs(res, seed)` below makes,
one pair at a time: `msssim(a[i][None, :, :, None], b[i][None, :, :, None])`. The reference
computes in float32 with FFT convolutions; we compute in float64, so values agree to ~5e-6.
"""

import numpy as np
import pytest
import torch

from latentage.config import build
from latentage.metrics.ms_ssim import pair_ms_ssim
from latentage.metrics.registry import REGISTRY

# (res, seed) → the reference's MS-SSIM of pairs 0 (noisy copy), 1 (unrelated), 2 (shifted)
REFERENCE = {
    (16, 3): [0.9409645, 0.0, 0.62484114],
    (32, 1): [0.89398425, 0.0, 0.55006593],
    (64, 2): [0.92718992, 0.089743168, 0.81703778],
    (256, 4): [0.86871193, 0.084966333, 0.90368809],
}


def pairs(res, seed):
    """Deterministic test images (numpy only): smooth patterns with noise; pair 0 is an image
    and its noisy copy, pair 1 two unrelated images, pair 2 an image and itself shifted."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:res, 0:res] / res

    def pattern():
        f, ph = rng.uniform(1, 4, 2), rng.uniform(0, 6.3, 2)
        return 127.5 + 70 * np.sin(2 * np.pi * (f[0] * x + ph[0])) * \
            np.cos(2 * np.pi * (f[1] * y + ph[1]))

    a0 = pattern() + rng.normal(0, 15, (res, res))
    b0 = a0 + rng.normal(0, 25, (res, res))
    a1, b1 = pattern() + rng.normal(0, 15, (res, res)), pattern() + rng.normal(0, 15, (res, res))
    a2 = pattern() + rng.normal(0, 10, (res, res))
    b2 = np.roll(a2, 2, axis=1)
    a = np.clip(np.rint(np.stack([a0, a1, a2])), 0, 255).astype(np.uint8)
    b = np.clip(np.rint(np.stack([b0, b1, b2])), 0, 255).astype(np.uint8)
    return a, b


@pytest.mark.parametrize("res, seed", sorted(REFERENCE))
def test_ms_ssim_equals_the_reference_code(res, seed):
    a, b = pairs(res, seed)
    ours = pair_ms_ssim(torch.from_numpy(a)[:, None].float(), torch.from_numpy(b)[:, None].float())
    np.testing.assert_allclose(ours.numpy(), REFERENCE[(res, seed)], atol=2e-5)


def test_small_images_are_not_upscaled():
    """Upscaling 32² images to 176 px (what pytorch-msssim needs) gives other numbers."""
    a, b = pairs(32, 1)
    ta, tb = (torch.from_numpy(v)[:, None].float() for v in (a, b))
    up = [torch.nn.functional.interpolate(t, size=(176, 176), mode="bilinear",
                                          align_corners=False) for t in (ta, tb)]
    assert abs(pair_ms_ssim(*up)[2].item() - REFERENCE[(32, 1)][2]) > 0.05
    assert pair_ms_ssim(ta, ta).numpy() == pytest.approx(1.0)


def test_the_metric_pairs_consecutive_images_across_batches():
    """n images → n // 2 consecutive pairs, the same whatever the batches (an odd batch
    carries its last image over)."""
    a, b = pairs(32, 1)
    images = torch.from_numpy(np.stack([a[0], b[0], a[1], b[1], a[2], b[2]]))[:, None].float()
    metric = REGISTRY["ms_ssim"](build("metrics", {"n": {"ms_ssim": 6}}), 0)
    s = metric.new_set()
    for chunk in (images[:3], images[3:5], images[5:]):
        metric.feed(s, chunk, {})
    value = metric.value(s)
    assert value["ms_ssim_pairs"] == 3
    assert value["ms_ssim"] == pytest.approx(np.mean(REFERENCE[(32, 1)]), abs=2e-5)
