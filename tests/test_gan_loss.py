"""WGAN-GP with drift on a critic whose gradient is known in closed form."""

import pytest
import torch

from latentage.gan.loss import discriminator_loss, generator_loss


class Linear(torch.nn.Module):
    """D(x) = <w, x>: its input gradient is w for every sample."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x, alpha=1.0):
        return (x * self.w).flatten(1).sum(1, keepdim=True)


def test_gradient_penalty_and_drift_match_the_formula():
    torch.manual_seed(0)
    w = torch.randn(1, 1, 4, 4) * 0.7
    D = Linear(w)
    reals, fakes = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    loss, parts = discriminator_loss(D, reals, fakes, 1.0, torch.rand(6), wgan_lambda=10,
                                     wgan_target=1.0, drift=0.001)
    d_real, d_fake = D(reals).squeeze(1), D(fakes).squeeze(1)
    gp = 10 * (w.norm() - 1) ** 2
    expected = (d_fake - d_real + gp + 0.001 * d_real**2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["gp"].item() == pytest.approx(gp.item(), rel=1e-5)


def test_gradient_penalty_is_differentiable_in_the_critic_weights():
    D = Linear(torch.full((1, 1, 2, 2), 2.0))  # ‖w‖ = 4 → penalty 10·(4 − 1)²
    loss, _ = discriminator_loss(D, torch.zeros(3, 1, 2, 2), torch.zeros(3, 1, 2, 2), 1.0,
                                 torch.rand(3), drift=0.0)
    loss.backward()
    # d/dw of 10·(‖w‖ − 1)² = 20·(‖w‖ − 1)·w/‖w‖ = 20·3·0.5 = 30 per element
    torch.testing.assert_close(D.w.grad, torch.full((1, 1, 2, 2), 30.0))


def test_generator_loss_is_minus_the_mean_critic_score():
    D = Linear(torch.ones(1, 1, 2, 2))
    fakes = torch.ones(4, 1, 2, 2) * torch.arange(4.0).view(4, 1, 1, 1)
    assert generator_loss(D, fakes, 1.0).item() == pytest.approx(-6.0)


def _official_full_resolution_penalty(D, reals, fakes, alpha, mixing, max_res, lam=10.0,
                                      target=1.0):
    """The official computation, written out: G's output and the reals are nearest-upscaled to
    max_res; D average-pools its input back to the active resolution R; the penalty takes the
    gradient with respect to the max_res image."""
    f = max_res // reals.shape[-1]
    up = torch.nn.functional.interpolate
    reals_full = up(reals, scale_factor=f, mode="nearest")
    fakes_full = up(fakes, scale_factor=f, mode="nearest")
    mixed = torch.lerp(reals_full, fakes_full, mixing.view(-1, 1, 1, 1)).requires_grad_(True)
    scores = D(torch.nn.functional.avg_pool2d(mixed, f), alpha)
    (grads,) = torch.autograd.grad(scores.sum(), mixed)
    norms = grads.flatten(1).norm(dim=1)
    return (lam * (norms - target) ** 2 / target**2).mean()


@pytest.mark.parametrize("res, alpha", [(4, 1.0), (8, 0.3), (16, 1.0), (32, 0.7)])
def test_gradient_penalty_is_taken_at_the_official_full_resolution_scale(res, alpha):
    """On a small PGGAN critic (max_res 32), stable and during fades: gp_scale = R/max_res
    gives exactly the official penalty; without it (the gradient at R) it is far off."""
    from latentage.gan.networks import Discriminator

    torch.manual_seed(res)
    D = Discriminator(max_res=32, fmap_base=64, fmap_max=16)
    reals, fakes = torch.randn(8, 1, res, res), torch.randn(8, 1, res, res)
    mixing = torch.rand(8)
    expected = _official_full_resolution_penalty(D, reals, fakes, alpha, mixing, 32)
    _, parts = discriminator_loss(D, reals, fakes, alpha, mixing, gp_scale=res / 32)
    assert parts["gp"].item() == pytest.approx(expected.item(), rel=1e-4)
    if res < 32:
        _, at_r = discriminator_loss(D, reals, fakes, alpha, mixing)
        assert abs(at_r["gp"].item() - expected.item()) > 0.05 * expected.item()
