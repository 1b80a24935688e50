"""Train the bone-age CNN: two heads, AdamW with a one-cycle or cosine schedule, a validation
split carved from train for early stopping, AMP on GPU, deterministic on CPU."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from latentage.cnn.data import augment, load_split, to_tensor01
from latentage.cnn.model import BoneAgeNet, save_model
from latentage.cnn.predict import BoneAgePredictor, amp_dtype, default_device
from latentage.data.prepare import stratified_test_split
from latentage.errors import ConfigError
from latentage.io import atomic_path


@dataclass
class CnnOptions:
    backbone: str = "legacy_xception"  # a timm model name (the study: Keras Xception)
    pretrained: bool = True  # ImageNet weights (cnn.weights / cache / download)
    weights: str | None = None  # local weights file
    allow_download: bool = True  # let timm download weights when none are found locally
    input_size: int = 299
    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_schedule: str = "onecycle"  # onecycle | cosine
    loss: str = "l1"  # l1 | huber, on normalised age
    sex_weight: float = 0.5  # weight of the sex head's BCE loss
    val_fraction: float = 0.1
    patience: int = 8  # epochs without a better validation MAE before stopping
    augment: dict = field(default_factory=lambda: {
        "rotate": 10.0, "scale": 0.1, "shift": 0.05, "brightness": 0.1, "contrast": 0.15,
        "hflip": False})
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    workers_threads: int = 0  # torch CPU threads (0 = torch default)

    @classmethod
    def from_settings(cls, settings: dict) -> CnnOptions:
        unknown = set(settings) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown cnn settings: {', '.join(sorted(unknown))}")
        return cls(**settings)


def _loss(opts: CnnOptions, age_pred, age_true, sex_logit, male):
    age = F.l1_loss(age_pred, age_true) if opts.loss == "l1" else \
        F.huber_loss(age_pred, age_true, delta=0.5)
    sex = F.binary_cross_entropy_with_logits(sex_logit, male)
    return age + opts.sex_weight * sex, age, sex


def train_cnn(images_npy, labels_parquet, out_model, history_jsonl, options: CnnOptions,
              seed: int, log=print) -> dict:
    opts = options
    device = default_device()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
        if opts.workers_threads:
            torch.set_num_threads(opts.workers_threads)
    torch.manual_seed(seed)
    images, labels = load_split(images_npy, labels_parquet)
    ages = labels["boneage"].to_numpy(np.float32)
    male = labels["male"].to_numpy(np.float32)
    is_val = stratified_test_split(ages, opts.val_fraction, seed + 1)
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    age_mean, age_sd = float(ages[train_idx].mean()), float(ages[train_idx].std() + 1e-6)
    model = BoneAgeNet.build(opts.backbone, opts.input_size, opts.pretrained, opts.weights,
                             opts.allow_download, age_mean, age_sd).to(device)
    amp = amp_dtype(opts.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    opt = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / opts.batch_size)
    total = steps_per_epoch * opts.epochs
    if opts.lr_schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=opts.lr, total_steps=total,
                                                    pct_start=0.2)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    gen = torch.Generator().manual_seed(seed + 2)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC44]))
    validator = BoneAgePredictor(model, device, opts.batch_size * 2, opts.precision)
    log(f"train-cnn: {opts.backbone} ({'ImageNet' if opts.pretrained else 'random'} init, "
        f"{model.meta.feature_dim}-d features) at {opts.input_size}px from "
        f"{images.shape[-1]}px images; {len(train_idx)} train / {len(val_idx)} validation; "
        f"{opts.epochs} epochs of {steps_per_epoch} steps on {device}")

    best = {"val_mae": math.inf, "epoch": 0, "state": None}
    history = []
    with atomic_path(history_jsonl, suffix=".jsonl") as hist_tmp:
        for epoch in range(1, opts.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            order = rng.permutation(train_idx)
            sums = np.zeros(3)
            for start in range(0, len(order), opts.batch_size):
                idx = np.sort(order[start:start + opts.batch_size])
                x = augment(to_tensor01(images[idx], device), gen, **opts.augment)
                y = torch.from_numpy((ages[idx] - age_mean) / age_sd).to(device)
                s = torch.from_numpy(male[idx]).to(device)
                with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                    a_pred, s_logit, _ = model(model.prepare(x))
                loss, la, ls = _loss(opts, a_pred.float(), y, s_logit.float(), s)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                sched.step()
                sums += [loss.item() * len(idx), la.item() * len(idx), ls.item() * len(idx)]
            val = validator.predict_uint8(images[val_idx])
            val_mae = float(np.abs(val["age"] - ages[val_idx]).mean())
            val_acc = float(((val["male_prob"] > 0.5) == (male[val_idx] > 0.5)).mean())
            rec = {"epoch": epoch, "loss": sums[0] / len(order),
                   "train_mae_months": sums[1] / len(order) * age_sd,
                   "val_mae_months": val_mae, "val_sex_accuracy": val_acc,
                   "lr": sched.get_last_lr()[0], "seconds": time.perf_counter() - t0}
            history.append(rec)
            with open(hist_tmp, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
            better = val_mae < best["val_mae"] - 1e-6
            if better:
                best = {"val_mae": val_mae, "epoch": epoch,
                        "state": copy.deepcopy(model.state_dict())}
            log(f"epoch {epoch:3d}/{opts.epochs}  loss {rec['loss']:.4f}  train MAE "
                f"{rec['train_mae_months']:6.2f}  val MAE {val_mae:6.2f} months  val sex acc "
                f"{val_acc:.3f}  {rec['seconds']:.1f} s{'  *' if better else ''}")
            if epoch - best["epoch"] >= opts.patience:
                log(f"train-cnn: early stop, no better validation MAE for {opts.patience} epochs")
                break
    model.load_state_dict(best["state"])
    save_model(model, out_model, {"options": asdict(opts), "seed": seed,
                                  "best_epoch": best["epoch"], "val_mae": best["val_mae"]})
    log(f"train-cnn: best validation MAE {best['val_mae']:.2f} months at epoch "
        f"{best['epoch']}; wrote {out_model}")
    return {"best_epoch": best["epoch"], "val_mae": best["val_mae"], "history": history}
