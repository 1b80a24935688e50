"""The train_cnn step: two heads, AdamW with a one-cycle or cosine schedule, a validation split
carved from train for early stopping, AMP on GPUs (the one precision policy of
latentage.device), deterministic on the CPU."""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from latentage import seeds
from latentage.cnn.data import augment, load_split, to_tensor01
from latentage.cnn.model import BoneAgeNet, save_model
from latentage.cnn.predict import BoneAgePredictor
from latentage.config import as_dict
from latentage.data.balance import epoch_order, sample_weights
from latentage.data.prepare import stratified_test_split
from latentage.device import autocast, resolve_precision, select_device
from latentage.io import atomic_path


def _loss(settings, age_pred, age_true, sex_logit, male):
    age = F.l1_loss(age_pred, age_true) if settings.loss == "l1" else \
        F.huber_loss(age_pred, age_true, delta=0.5)
    sex = F.binary_cross_entropy_with_logits(sex_logit, male)
    return age + settings.sex_weight * sex, age, sex


@dataclass
class _Run:
    """What one training run works with."""
    settings: object
    model: BoneAgeNet
    device: torch.device
    precision: str
    images: np.ndarray
    ages: np.ndarray
    male: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    opt: torch.optim.Optimizer = None
    sched: object = None
    scaler: torch.amp.GradScaler = None
    best: dict = field(default_factory=lambda: {"val_mae": math.inf, "epoch": 0, "state": None})


def _setup(images, labels, settings, seed, threads) -> _Run:
    device = select_device()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
        if threads:  # what the job was given, never more than the cores this process sees
            torch.set_num_threads(min(threads, len(os.sched_getaffinity(0))))
    torch.manual_seed(seeds.integer(seed, "cnn.init"))
    imgs, table = load_split(images, labels)
    ages = table["boneage"].to_numpy(np.float32)
    male = table["male"].to_numpy(np.float32)
    is_val = stratified_test_split(ages, settings.val_fraction, seed, stream="cnn.validation")
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    age_mean, age_sd = float(ages[train_idx].mean()), float(ages[train_idx].std() + 1e-6)
    model = BoneAgeNet.build(settings.backbone, settings.input_size, settings.pretrained,
                             settings.weights, settings.allow_download, age_mean,
                             age_sd).to(device)
    run = _Run(settings, model, device, resolve_precision(settings.precision, device), imgs,
               ages, male, train_idx, val_idx)
    run.opt = torch.optim.AdamW(model.parameters(), lr=settings.lr,
                                weight_decay=settings.weight_decay)
    total = math.ceil(len(train_idx) / settings.batch_size) * settings.epochs
    if settings.lr_schedule == "onecycle":
        run.sched = torch.optim.lr_scheduler.OneCycleLR(run.opt, max_lr=settings.lr,
                                                        total_steps=total, pct_start=0.2)
    else:
        run.sched = torch.optim.lr_scheduler.CosineAnnealingLR(run.opt, T_max=total)
    run.scaler = torch.amp.GradScaler(device.type, enabled=run.precision == "fp16")
    return run


def _epoch(run: _Run, order: np.ndarray, gen: torch.Generator) -> np.ndarray:
    """One pass over `order`; returns summed (loss, age loss, sex loss) × images."""
    s, model = run.settings, run.model
    model.train()
    sums = torch.zeros(3, device=run.device)
    for start in range(0, len(order), s.batch_size):
        idx = np.sort(order[start:start + s.batch_size])
        x = augment(to_tensor01(run.images[idx], run.device), gen, **as_dict(s.augment))
        y = torch.from_numpy((run.ages[idx] - model.meta.age_mean) / model.meta.age_sd)
        sex = torch.from_numpy(run.male[idx]).to(run.device)
        with autocast(run.device, run.precision):
            a_pred, s_logit, _ = model(model.prepare(x))
        loss, la, ls = _loss(s, a_pred.float(), y.to(run.device), s_logit.float(), sex)
        run.opt.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.opt)
        run.scaler.update()
        run.sched.step()
        sums += torch.stack([loss.detach(), la.detach(), ls.detach()]) * len(idx)
    return sums.cpu().numpy()


def train_cnn(*, images, labels, model, history, settings, seed: int, threads: int = 0,
              balance: str = "none", balance_max_weight: float = 5.0, log=print) -> dict:
    """Train CnnSettings `settings` on prepared `images` (.npy) and `labels` (.parquet); write
    the best epoch's `model` and one `history` line per epoch. `balance` (data.balance): age =
    each epoch draws the training images in proportion to inverse yearly-bin frequency."""
    s = settings
    run = _setup(images, labels, s, seed, threads)
    # one weight per training row, from the training rows' bins alone
    weights = sample_weights(balance, run.ages[run.train_idx], balance_max_weight)
    gen = seeds.torch_generator(seed, "cnn.augment")
    order_rng = seeds.rng(seed, "cnn.order")
    validator = BoneAgePredictor(run.model, run.device, s.batch_size * 2, s.precision)
    log(f"train-cnn: {s.backbone} ({'ImageNet' if s.pretrained else 'random'} init, "
        f"{run.model.meta.feature_dim}-d features) at {s.input_size}px from "
        f"{run.images.shape[-1]}px images; {len(run.train_idx)} train / {len(run.val_idx)} "
        f"validation; {s.epochs} epochs on {run.device} ({run.precision})"
        + ("; age-balanced sampling" if weights is not None else ""))
    records = []
    with atomic_path(history, suffix=".jsonl") as hist_tmp:
        for epoch in range(1, s.epochs + 1):
            t0 = time.perf_counter()
            order = run.train_idx[epoch_order(order_rng, len(run.train_idx), weights)]
            sums = _epoch(run, order, gen)
            val = validator.predict_uint8(run.images[run.val_idx])
            val_mae = float(np.abs(val["age"] - run.ages[run.val_idx]).mean())
            val_acc = float(((val["male_prob"] > 0.5) == (run.male[run.val_idx] > 0.5)).mean())
            rec = {"epoch": epoch, "loss": float(sums[0]) / len(order),
                   "train_mae_months": float(sums[1]) / len(order) * run.model.meta.age_sd,
                   "val_mae_months": val_mae, "val_sex_accuracy": val_acc,
                   "lr": run.sched.get_last_lr()[0], "seconds": time.perf_counter() - t0}
            records.append(rec)
            with open(hist_tmp, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
            better = val_mae < run.best["val_mae"] - 1e-6
            if better:
                run.best = {"val_mae": val_mae, "epoch": epoch,
                            "state": copy.deepcopy(run.model.state_dict())}
            log(f"epoch {epoch:3d}/{s.epochs}  loss {rec['loss']:.4f}  train MAE "
                f"{rec['train_mae_months']:6.2f}  val MAE {val_mae:6.2f} months  val sex acc "
                f"{val_acc:.3f}  {rec['seconds']:.1f} s{'  *' if better else ''}")
            if epoch - run.best["epoch"] >= s.patience:
                log(f"train-cnn: early stop, no better validation MAE for {s.patience} epochs")
                break
    run.model.load_state_dict(run.best["state"])
    save_model(run.model, model, {"options": as_dict(s), "seed": seed,
                                  "best_epoch": run.best["epoch"], "val_mae": run.best["val_mae"]})
    log(f"train-cnn: best validation MAE {run.best['val_mae']:.2f} months at epoch "
        f"{run.best['epoch']}; wrote {model}")
    return {"best_epoch": run.best["epoch"], "val_mae": run.best["val_mae"], "history": records}
