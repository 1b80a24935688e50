"""PGGAN networks: parity with the official parameter counts and layer semantics."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentage.gan.layers import EqualizedConv2d, minibatch_stddev, pixel_norm
from latentage.gan.networks import Discriminator, Generator, count_parameters, nf


def test_parameter_counts_equal_the_official_network_at_1024():
    # as logged by the study's official TF run: 1024², latent 512, fmap 8192/512, 1 channel
    assert count_parameters(Generator(1024, 512, 8192, 512)) == 23_074_009
    assert count_parameters(Discriminator(1024, 8192, 512)) == 23_082_161


def test_feature_maps_per_stage():
    assert [nf(s, 8192, 512) for s in range(10)] == [512] * 5 + [256, 128, 64, 32, 16]


def test_equalized_learning_rate_scales_unit_weights_by_he_constant():
    conv = EqualizedConv2d(64, 32, 3)
    assert abs(conv.weight.std().item() - 1.0) < 0.05
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(64 * 9))


def test_fused_upscale_conv_equals_nearest_upsample_then_conv():
    torch.manual_seed(0)
    conv = EqualizedConv2d(5, 7, 3, resample="up")
    x = torch.randn(2, 5, 6, 6)
    fused = conv(x)
    ref = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), conv.weight * conv.scale,
                   conv.bias, padding=1)
    assert fused.shape == (2, 7, 12, 12)
    torch.testing.assert_close(fused, ref, atol=1e-5, rtol=1e-5)


def test_fused_conv_downscale_equals_conv_then_average_pool():
    torch.manual_seed(1)
    conv = EqualizedConv2d(5, 7, 3, resample="down")
    x = torch.randn(2, 5, 8, 8)
    ref = F.avg_pool2d(F.conv2d(x, conv.weight * conv.scale, None, padding=1), 2)
    ref = ref + conv.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(conv(x), ref, atol=1e-5, rtol=1e-5)


def _official_mbstd(x: np.ndarray, group: int) -> np.ndarray:
    """A numpy transcription of the official layer's reshape-based grouping."""
    n, c, h, w = x.shape
    g = min(group, n)
    y = x.reshape(g, -1, c, h, w)
    y = y - y.mean(axis=0, keepdims=True)
    y = np.sqrt((y**2).mean(axis=0) + 1e-8)
    y = y.mean(axis=(1, 2, 3))
    y = np.tile(y.reshape(1, -1, 1, 1), (g, 1, h, w)).reshape(n, 1, h, w)
    return np.concatenate([x, y], axis=1)


@pytest.mark.parametrize("n", [4, 8, 12])
def test_minibatch_stddev_matches_the_official_grouping(n):
    x = torch.randn(n, 3, 4, 4, dtype=torch.float64)
    out = minibatch_stddev(x, 4)
    # the official layer computes in float32, so does ours
    np.testing.assert_allclose(out.numpy(), _official_mbstd(x.numpy(), 4), rtol=1e-6)
    # sample n belongs to group n mod M: samples 0 and M share a statistic
    m = n // 4
    assert torch.equal(out[0, 3], out[m, 3])


def test_pixel_norm_gives_unit_rms_per_pixel():
    y = pixel_norm(torch.randn(3, 16, 5, 5) * 7)
    torch.testing.assert_close(y.pow(2).mean(1), torch.ones(3, 5, 5), atol=1e-5, rtol=0)


def _nets():
    torch.manual_seed(3)
    return Generator(32, 16, 128, 32), Discriminator(32, 128, 32)


def test_generator_fade_blends_upsampled_previous_output():
    G, _ = _nets()
    z = torch.randn(4, 16)
    with torch.no_grad():
        old = F.interpolate(G(z, 8, 1.0), scale_factor=2, mode="nearest")
        new = G(z, 16, 1.0)
        torch.testing.assert_close(G(z, 16, 0.0), old)
        torch.testing.assert_close(G(z, 16, 0.25), torch.lerp(old, new, 0.25))


def test_discriminator_fade_starts_from_the_lower_resolution_path():
    _, D = _nets()
    img = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(D(img, 0.0), D(F.avg_pool2d(img, 2), 1.0))
        assert not torch.allclose(D(img, 0.5), D(img, 1.0))


def test_latents_are_pixel_normalised_so_scale_does_not_matter():
    G, _ = _nets()
    z = torch.randn(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(G(z, 8), G(3 * z, 8), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.25, torch.tensor(0.25)])
def test_fade_blend_takes_paths_of_different_precision(alpha):
    """Under CUDA autocast one fade path can leave in float32 and the other in half precision
    (on an H200 every fp16/bf16 phase with a fade stopped with "expected dtype float for `end`
    but got dtype c10::Half"); the blend computes in the wider dtype."""
    from latentage.gan.networks import blend

    old = torch.linspace(-1, 1, 8)
    for half in (torch.float16, torch.bfloat16):
        new = torch.linspace(1, -1, 8).to(half)
        for a, b in ((old, new), (new, old)):
            out = blend(a, b, alpha)
            assert out.dtype == torch.float32
            assert torch.allclose(out, a.float() + 0.25 * (b.float() - a.float()))
