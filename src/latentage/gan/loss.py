"""WGAN-GP losses with the drift term (loss.py of the official code: G_wgan_acgan /
D_wgangp_acgan without labels). Per-sample losses are averaged over the minibatch."""

from __future__ import annotations

import torch


def generator_loss(D, fakes: torch.Tensor, alpha: float) -> torch.Tensor:
    return -D(fakes, alpha).float().mean()


def discriminator_loss(D, reals: torch.Tensor, fakes: torch.Tensor, alpha: float,
                       mixing: torch.Tensor, wgan_lambda: float = 10.0,
                       wgan_target: float = 1.0, drift: float = 0.001,
                       grad_scale: float = 1.0) -> tuple[torch.Tensor, dict]:
    """D(fake) − D(real) + λ·(‖∇D(mix)‖ − target)²/target² + drift·D(real)².

    `mixing` holds one uniform [0, 1) factor per sample. `grad_scale` is the fp16 loss scale
    applied to the inner gradient (and removed again) so it does not underflow."""
    real_scores = D(reals, alpha).float()
    fake_scores = D(fakes, alpha).float()
    # under autocast the fakes come out in half precision while the reals are float32
    fakes_ = fakes.detach().to(reals.dtype)
    mixed = torch.lerp(reals.detach(), fakes_, mixing.view(-1, 1, 1, 1).to(reals.dtype))
    mixed.requires_grad_(True)
    mixed_scores = D(mixed, alpha).float()
    (grads,) = torch.autograd.grad(mixed_scores.sum() * grad_scale, mixed, create_graph=True)
    norms = (grads.float() / grad_scale).flatten(1).norm(dim=1)
    penalty = (norms - wgan_target).pow(2) * (wgan_lambda / wgan_target**2)
    loss = fake_scores.squeeze(1) - real_scores.squeeze(1) + penalty
    loss = loss + drift * real_scores.squeeze(1).pow(2)
    parts = {
        "d_real": real_scores.mean().detach(),
        "d_fake": fake_scores.mean().detach(),
        "gp": penalty.mean().detach(),
    }
    return loss.mean(), parts
