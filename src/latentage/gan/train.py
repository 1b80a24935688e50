"""The PGGAN update, shared by `train_phase` and `latentage bench train`.

`TrainState` holds G, D, G_ema, both Adam optimisers and both loss scalers. `train_step` is the
official step (tkarras train.py): G_ema moves towards G together with the D step — from G's
weights before this step's G update, as the official code runs its `Gs_update_op` beside
`D_train_op` — then one D step (WGAN-GP with drift, on reals faded into the new resolution),
then one G step.

Everything a step produces stays on the device: the losses come back as tensors and nothing
waits for the GPU. z and the mixing factors are drawn on the device from a stream keyed by the
step's first global sample index (latentage.seeds), so they do not depend on the number of
processes; each process keeps its strided share. Where a per-GPU cap splits a process's share
into micro-batches, gradients are accumulated, so the global minibatch is the schedule's.

Beyond the study, both off by default: ADA (`gan.augment`: every image D sees goes through the
augmentation pipeline, and p follows r_t after each D step; gan/augment.py) and the conditional
networks (`gan.conditional`: the D step's and the G step's fakes are generated with the labels
of the step's reals, which D also gets; networks.py).

fp16: GradScaler per network (the official dynamic loss scaling: starts at 2**6, doubles every
2,000 clean steps, halves on overflow); a step whose gradients overflow is skipped by the
scaler and counted (`d_skipped`, `g_skipped`), never taken for divergence. The penalty's inner
gradient has its own fixed scale (loss.GP_INNER_SCALE_FP16), so the outer scale cannot overflow it.
"""

from __future__ import annotations

import copy

import torch

from latentage import seeds
from latentage.device import autocast
from latentage.gan import distributed as dist_
from latentage.gan.augment import AdaController, Augment
from latentage.gan.data import fade_reals, to_unit_range
from latentage.gan.loss import GP_INNER_SCALE_FP16, discriminator_loss, generator_loss
from latentage.gan.networks import Discriminator, Generator
from latentage.gan.schedule import Step

LOSS_SCALE_INIT = 64.0  # the official loss_scaling_init (2**6)
STAT_KEYS = ("d_loss", "g_loss", "d_real", "d_fake", "gp", "grad_norm")


def network_kwargs(gan) -> dict:
    """The constructor arguments of G and D for GanSettings (stored in every checkpoint)."""
    return {
        "G": {"max_res": gan.max_res, "latent_size": gan.latent_size,
              "fmap_base": gan.fmap_base, "fmap_max": gan.fmap_max,
              "normalize_latents": gan.normalize_latents,
              "pixelnorm_epsilon": gan.pixelnorm_epsilon, "conditional": gan.conditional},
        "D": {"max_res": gan.max_res, "fmap_base": gan.fmap_base, "fmap_max": gan.fmap_max,
              "mbstd_group_size": gan.mbstd_group_size, "conditional": gan.conditional},
    }


def _adam(params, gan, device) -> torch.optim.Adam:
    kw = {"lr": 1e-3, "betas": (gan.adam_beta1, gan.adam_beta2), "eps": gan.adam_eps}
    try:  # one fused kernel per step; with GradScaler it also skips the host sync
        return torch.optim.Adam(params, fused=True, **kw)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, foreach=device.type == "cuda", **kw)


class TrainState:
    """Networks, optimisers and loss scalers of one training run."""

    def __init__(self, gan, seed: int, device, precision: str):
        self.gan, self.device, self.precision = gan, torch.device(device), precision
        kw = network_kwargs(gan)
        torch.manual_seed(seeds.integer(seed, "gan.init"))  # initial weights follow the seed
        self.G = Generator(**kw["G"]).to(self.device)
        self.D = Discriminator(**kw["D"]).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = _adam(self.G.parameters(), gan, self.device)
        self.opt_D = _adam(self.D.parameters(), gan, self.device)
        fp16 = precision == "fp16"
        self.scaler_G = torch.amp.GradScaler(self.device.type, init_scale=LOSS_SCALE_INIT,
                                             enabled=fp16)
        self.scaler_D = torch.amp.GradScaler(self.device.type, init_scale=LOSS_SCALE_INIT,
                                             enabled=fp16)
        self.augment = self.ada = None
        if gan.augment.enabled:
            self.augment = Augment(gan.augment)
            self.ada = AdaController(gan.augment, self.device)
        self.channels_last = self.device.type == "cuda" and gan.channels_last
        if self.channels_last:
            for net in (self.G, self.D, self.G_ema):
                net.to(memory_format=torch.channels_last)
        # compiled forward passes; the penalty differentiates the eager D twice
        self.G_run, self.D_run = self.G, self.D
        if gan.compile:
            # static shapes: a phase trains one resolution (dynamic ones would break the
            # graph at the per-resolution layer lookup)
            self.G_run = torch.compile(self.G, dynamic=False)
            self.D_run = torch.compile(self.D, dynamic=False)

    def reset_optimizers(self) -> None:
        """Adam state is reset whenever a new level of detail starts (official)."""
        self.opt_G.state.clear()
        self.opt_D.state.clear()

    def set_learning_rates(self, step: Step) -> None:
        for group in self.opt_G.param_groups:
            group["lr"] = step.g_lrate
        for group in self.opt_D.param_groups:
            group["lr"] = step.d_lrate

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(),
                "G_ema": self.G_ema.state_dict(), "opt_G": self.opt_G.state_dict(),
                "opt_D": self.opt_D.state_dict(), "scaler_G": self.scaler_G.state_dict(),
                "scaler_D": self.scaler_D.state_dict(),
                "ada": self.ada.state_dict() if self.ada else None}

    def load_state_dict(self, state: dict, scalers: bool = True) -> None:
        """Weights and optimiser states (CPU tensors from a checkpoint) onto the device."""
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        if scalers and state.get("scaler_G"):
            self.scaler_G.load_state_dict(state["scaler_G"])
            self.scaler_D.load_state_dict(state["scaler_D"])
        if self.ada and state.get("ada"):  # a phase started without ADA begins at initial_p
            self.ada.load_state_dict(state["ada"])


def step_noise(seed: int, nimg: int, restores: int, minibatch: int, latent_size: int, device):
    """z for the D step, mixing factors, z for the G step: the global minibatch's, on the
    device, a pure function of (seed, first sample index, restores)."""
    gen = seeds.torch_generator(seed, "gan.noise", nimg, restores, device=device)
    z_d = torch.randn(minibatch, latent_size, generator=gen, device=device)
    mixing = torch.rand(minibatch, generator=gen, device=device)
    z_g = torch.randn(minibatch, latent_size, generator=gen, device=device)
    return z_d, mixing, z_g


def _overflowed(params) -> torch.Tensor:
    grads = [p.grad for p in params if p.grad is not None]
    return (~torch.isfinite(torch.nn.utils.get_total_norm(grads))).float()


def _update(net, opt, scaler, ctx) -> torch.Tensor:
    """Average gradients over processes, step (skipped by the scaler on overflow), and say
    whether the step was skipped (0-d tensor; always 0 without loss scaling)."""
    params = list(net.parameters())
    dist_.average_gradients(params, ctx)
    skipped = _overflowed(params) if scaler.is_enabled() else torch.zeros((), device=ctx.device)
    scaler.step(opt)
    scaler.update()
    return skipped


def _augmenter(state: TrainState, seed: int, nimg: int, restores: int):
    """ADA's pipeline at the current p with this step's parameter stream, or None."""
    if state.augment is None:
        return None
    gen = seeds.torch_generator(seed, "gan.augment", nimg, restores, device=state.device)
    p = state.ada.p
    return lambda x: state.augment(x, p, gen)


def _labels(state: TrainState, labels) -> torch.Tensor | None:
    if not state.gan.conditional:
        return None
    if labels is None:
        raise ValueError("a conditional GAN trains on labelled reals (the labels parquet)")
    return labels


def train_step(state: TrainState, reals_u8: torch.Tensor, step: Step, *, seed: int, nimg: int,
               restores: int = 0, ctx: dist_.Dist | None = None, rounds: int = 1,
               labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """One official step on this process's share of the global minibatch.

    reals_u8: this process's share of real images, uint8 N×1×R×R on the device (not yet faded).
    labels: their labels (float N×2: age months, male), needed by a conditional GAN.
    nimg: images shown before this step (keys the noise). rounds: micro-batches per process.
    Returns the step's statistics as 0-d device tensors."""
    ctx = ctx or dist_.Dist(device=state.device)
    gan, G, D = state.gan, state.G, state.D
    device, res = state.device, step.resolution
    alpha = torch.full((), step.alpha, device=device) if step.alpha < 1.0 else 1.0
    z_d, mixing, z_g = step_noise(seed, nimg, restores, step.minibatch, gan.latent_size, device)
    z_d, mixing, z_g = (t[ctx.rank::ctx.world] for t in (z_d, mixing, z_g))
    cond = _labels(state, labels)
    cond_k = (lambda k: None) if cond is None else (lambda k: cond[k::rounds])
    augment = _augmenter(state, seed, nimg, restores)
    reals = fade_reals(to_unit_range(reals_u8), step.alpha)
    if state.channels_last:
        reals = reals.contiguous(memory_format=torch.channels_last)
    inner = GP_INNER_SCALE_FP16 if state.precision == "fp16" else 1.0

    # G_ema follows G with the D step, from G before this step's G update (official)
    with torch.no_grad():
        torch._foreach_lerp_(list(state.G_ema.parameters()), list(G.parameters()),
                             1.0 - gan.ema_beta)

    stats = {k: torch.zeros((), device=device) for k in STAT_KEYS}
    real_scores = []
    state.opt_D.zero_grad(set_to_none=True)
    for k in range(rounds):
        with autocast(device, state.precision):
            with torch.no_grad():
                fakes = state.G_run(z_d[k::rounds], res, alpha, cond_k(k))
            d_loss, parts = discriminator_loss(
                state.D_run, reals[k::rounds], fakes, alpha, mixing[k::rounds],
                wgan_lambda=gan.wgan_lambda, wgan_target=gan.wgan_target, drift=gan.drift,
                gp_scale=res / gan.max_res, inner_scale=inner, D_gp=D, cond=cond_k(k),
                augment=augment)
        state.scaler_D.scale(d_loss / rounds).backward()
        real_scores.append(parts.pop("real_scores"))
        for key, value in {"d_loss": d_loss.detach(), **parts}.items():
            stats[key] += value / rounds
    stats["d_skipped"] = _update(D, state.opt_D, state.scaler_D, ctx)
    if state.ada is not None:  # p follows r_t of this D step (on the augmented reals)
        stats["ada_rt"] = state.ada.update(torch.cat(real_scores), stats["d_fake"],
                                           step.minibatch, ctx)
        stats["ada_p"] = state.ada.p

    D.requires_grad_(False)
    state.opt_G.zero_grad(set_to_none=True)
    for k in range(rounds):
        with autocast(device, state.precision):
            fakes = state.G_run(z_g[k::rounds], res, alpha, cond_k(k))
            g_loss = generator_loss(state.D_run, fakes, alpha, cond=cond_k(k), augment=augment)
        state.scaler_G.scale(g_loss / rounds).backward()
        stats["g_loss"] += g_loss.detach() / rounds
    D.requires_grad_(True)
    stats["g_skipped"] = _update(G, state.opt_G, state.scaler_G, ctx)
    return stats
