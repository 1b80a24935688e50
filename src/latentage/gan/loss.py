"""WGAN-GP losses with the drift term (loss.py of the official code: G_wgan_acgan and
D_wgangp_acgan without labels). Per-sample losses are averaged over the minibatch.

The gradient penalty at the official scale. The official G and D always work at full
resolution: G's output and the reals are nearest-upscaled to max_res, and D average-pools them
back down to the active resolution R inside. The penalty's gradient is therefore taken with
respect to the max_res image, and average pooling divides it: ‖∇_max_res‖ = ‖∇_R‖ · R/max_res.
Our networks work at R (the same computation, much cheaper), so the norm is multiplied by
`gp_scale` = R/max_res before it meets the target — during fades too (tests/test_gan_loss.py
compares with an explicit full-resolution computation).
"""

from __future__ import annotations

import torch

# Loss scale of the penalty's inner gradient in fp16 (the official loss_scaling_init, 2**6):
# fixed, so a grown outer loss scale (GradScaler's) cannot overflow it. bf16 and fp32 need none.
GP_INNER_SCALE_FP16 = 64.0


def _critic(D, alpha, cond):
    """D as the losses call it: with the labels for a conditional D."""
    if cond is None:
        return lambda x: D(x, alpha).float()
    return lambda x: D(x, alpha, cond).float()


def generator_loss(D, fakes: torch.Tensor, alpha, *, cond=None, augment=None) -> torch.Tensor:
    """−D(fake); `augment` (ADA: gan/augment.py) is applied to what D sees."""
    fakes = fakes if augment is None else augment(fakes)
    return -_critic(D, alpha, cond)(fakes).mean()


def discriminator_loss(D, reals: torch.Tensor, fakes: torch.Tensor, alpha, mixing: torch.Tensor,
                       *, wgan_lambda: float = 10.0, wgan_target: float = 1.0,
                       drift: float = 0.001, gp_scale: float = 1.0, inner_scale: float = 1.0,
                       D_gp=None, cond=None, augment=None) -> tuple[torch.Tensor, dict]:
    """D(fake) − D(real) + λ·(‖∇D(mix)‖·gp_scale − target)²/target² + drift·D(real)².

    `mixing` holds one uniform [0, 1) factor per sample. `inner_scale` multiplies the inner
    gradient (and is divided out again) so that it does not underflow in half precision.
    `D_gp` is the network the penalty differentiates twice (the eager D where D is compiled).
    `cond`: the labels of a conditional D (the fakes were generated with the reals' labels, so
    every mixture has them too). `augment`: ADA's pipeline, applied to reals and fakes alike
    before D; the penalty is taken at mixtures of the augmented images. The parts include
    `real_scores` (per image) for ADA's r_t."""
    D_gp = D if D_gp is None else D_gp
    if augment is not None:
        reals, fakes = augment(reals), augment(fakes)
    real_scores = _critic(D, alpha, cond)(reals)
    fake_scores = _critic(D, alpha, cond)(fakes)
    # under autocast the fakes come out in half precision while the reals are float32
    fakes_ = fakes.detach().to(reals.dtype)
    mixed = torch.lerp(reals.detach(), fakes_, mixing.view(-1, 1, 1, 1).to(reals.dtype))
    mixed.requires_grad_(True)
    mixed_scores = _critic(D_gp, alpha, cond)(mixed)
    (grads,) = torch.autograd.grad(mixed_scores.sum() * inner_scale, mixed, create_graph=True)
    norms = (grads.float() / inner_scale).flatten(1).norm(dim=1) * gp_scale
    penalty = (norms - wgan_target).pow(2) * (wgan_lambda / wgan_target**2)
    loss = fake_scores.squeeze(1) - real_scores.squeeze(1) + penalty
    loss = loss + drift * real_scores.squeeze(1).pow(2)
    parts = {
        "d_real": real_scores.mean().detach(),
        "d_fake": fake_scores.mean().detach(),
        "gp": penalty.mean().detach(),
        "grad_norm": norms.mean().detach(),
        "real_scores": real_scores.detach().squeeze(1),
    }
    return loss.mean(), parts
