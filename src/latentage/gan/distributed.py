"""Data-parallel training across processes: NCCL on GPUs, gloo on CPU. Processes come from
torchrun (one node) or from srun (one SLURM task per GPU, any number of nodes).

Gradients are averaged with one flattened all_reduce per step rather than by wrapping the
networks in DistributedDataParallel: the gradient penalty differentiates D twice, which DDP's
reducer does not support, and an explicit average is exactly equivalent."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist

from latentage.errors import LatentageError

# set by `latentage --nproc N --launcher srun` for the tasks it starts
SRUN_ENV = "LATENTAGE_SRUN"
# nccl | gloo: overrides the backend (default: NCCL on GPUs, gloo on the CPU). gloo on CUDA
# tensors lets two ranks share one GPU, which NCCL refuses (scripts/gpu-validate.sh's twin)
BACKEND_ENV = "LATENTAGE_DIST_BACKEND"


def backend(device: torch.device, env=None) -> str:
    """The process group's backend for this process's device."""
    env = os.environ if env is None else env
    chosen = env.get(BACKEND_ENV, "").strip().lower()
    if not chosen:
        return "nccl" if device.type == "cuda" else "gloo"
    if chosen not in ("nccl", "gloo"):
        raise LatentageError(f"{BACKEND_ENV}={chosen!r}: use nccl or gloo")
    if chosen == "nccl" and device.type != "cuda":
        raise LatentageError(f"{BACKEND_ENV}=nccl needs a GPU; this process runs on the CPU")
    return chosen


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


def slurm_tasks(env=None) -> dict | None:
    """torch.distributed's rank, local rank, world size and rendezvous for processes started as
    SLURM tasks (`srun`, one task per GPU, one or more nodes), or None outside such a step."""
    env = os.environ if env is None else env
    ntasks = int(env.get("SLURM_NTASKS", env.get("SLURM_NPROCS", "1")) or 1)
    if env.get(SRUN_ENV) != "1" or ntasks <= 1 or "WORLD_SIZE" in env:
        return None
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST", "localhost")
    return {"RANK": env["SLURM_PROCID"], "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
            "WORLD_SIZE": str(ntasks), "MASTER_ADDR": first_host(nodes),
            "MASTER_PORT": str(29500 + int(env.get("SLURM_JOB_ID", "0")) % 20000)}


def launch_rank(env=None) -> int:
    """This process's rank as its launcher (torchrun or srun) set it, before init()."""
    env = os.environ if env is None else env
    tasks = slurm_tasks(env)
    return int(tasks["RANK"] if tasks else env.get("RANK", "0"))


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: "gpu[03-05,07],cpu1" → "gpu03" (scontrol's
    answer where it is there)."""
    import shutil
    import subprocess

    if shutil.which("scontrol"):
        try:
            out = subprocess.run(["scontrol", "show", "hostnames", nodelist],
                                 capture_output=True, text=True, timeout=30).stdout.split()
            if out:
                return out[0]
        except (OSError, subprocess.SubprocessError):
            pass
    prefix, bracket, rest = nodelist.partition("[")
    if not bracket or "," in prefix:  # the first host has no range: "cpu1,gpu[03]" → "cpu1"
        return nodelist.split(",")[0]
    return prefix + re.split(r"[-,\]]", rest)[0]


def init() -> Dist:
    """Join the process group torchrun (RANK/WORLD_SIZE) or srun (SLURM_PROCID/NTASKS) set
    up, or run alone."""
    from latentage.device import select_device

    tasks = slurm_tasks()
    if tasks:
        os.environ.update(tasks)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = select_device(local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend(device))
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


def average_tensor(t: torch.Tensor, ctx: Dist) -> torch.Tensor:
    """The mean over processes of a device tensor (no host sync; itself on one process)."""
    if not ctx.active:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / ctx.world
