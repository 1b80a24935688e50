"""Data-parallel training across processes (torchrun): NCCL on GPUs, gloo on CPU.

Gradients are averaged with one flattened all_reduce per step rather than by wrapping the
networks in DistributedDataParallel: the gradient penalty differentiates D twice, which DDP's
reducer does not support, and an explicit average is exactly equivalent."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init() -> Dist:
    """Join the process group torchrun set up (env RANK/WORLD_SIZE), or run alone."""
    from latentage.device import select_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = select_device(local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    return Dist(rank, world, local_rank, device)


def average_gradients(params, ctx: Dist) -> None:
    if not ctx.active:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def average_scalars(values: dict, ctx: Dist) -> dict:
    """Means over processes of named scalars (floats or 0-d tensors): one all-reduce, one sync."""
    keys = sorted(values)
    t = torch.stack([torch.as_tensor(values[k], dtype=torch.float64, device=ctx.device)
                     for k in keys]) if keys else torch.zeros(0, dtype=torch.float64)
    if ctx.active and keys:
        dist.all_reduce(t)
        t /= ctx.world
    return dict(zip(keys, t.tolist(), strict=True))


def any_rank(flag, ctx: Dist) -> bool:
    """True where any process says so (a bool or a 0-d tensor on the device)."""
    t = torch.as_tensor(flag, dtype=torch.float32, device=ctx.device).reshape(1)
    if ctx.active:
        dist.all_reduce(t)
    return bool(t.item() > 0)


def barrier(ctx: Dist) -> None:
    if ctx.active:
        dist.barrier()
