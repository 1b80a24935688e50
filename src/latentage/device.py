"""Where a step runs and in what precision: one policy for every step.

`select_device` picks CUDA when torch sees a GPU and the CPU otherwise, but refuses to fall
back silently when SLURM granted GPUs the process cannot use (CUDA sees fewer, or the torch
build lacks the GPU's architecture, e.g. a CUDA 13 build on a V100): a day of a GPU allocation
spent training on one CPU core is worse than a clear error. Laptops and the CI cluster (whose
node advertises GPUs it does not have: LATENTAGE_FAKE_GPUS=1) are not granted real GPUs and
run on the CPU with a notice.

`resolve_precision` is the one precision policy: fp16 (with loss scaling when training) on
V100-class GPUs (compute capability 7.x), bf16 on A100/H100 and newer, fp32 on the CPU.
"""

from __future__ import annotations

import contextlib
import os
import sys

import torch

from latentage.errors import LatentageError

FAKE_GPUS_ENV = "LATENTAGE_FAKE_GPUS"


class DeviceError(LatentageError):
    """GPUs were granted but cannot be used."""


def granted_gpus(env=None) -> int:
    """GPUs SLURM granted this job (0 outside SLURM, or where the GPUs are known fakes)."""
    env = os.environ if env is None else env
    if env.get(FAKE_GPUS_ENV) == "1" or "SLURM_JOB_ID" not in env:
        return 0
    for key in ("SLURM_GPUS_ON_NODE", "SLURM_STEP_GPUS", "SLURM_JOB_GPUS",
                "CUDA_VISIBLE_DEVICES"):
        value = env.get(key, "").strip()
        if not value or value.upper() in ("NODEVFILES", "NONE"):
            continue
        if key == "SLURM_GPUS_ON_NODE":
            return int(value) if value.isdigit() else 0
        return len([v for v in value.split(",") if v.strip()])
    return 0


def unsupported_arch(device_index: int = 0) -> str | None:
    """Why this torch build cannot run on GPU `device_index`, or None."""
    major, minor = torch.cuda.get_device_capability(device_index)
    arch = f"sm_{major}{minor}"
    built = torch.cuda.get_arch_list()
    if not built or arch in built:
        return None
    # a build with PTX for an older architecture can JIT-compile for a newer GPU
    if any(a.startswith("compute_") and int(a.split("_")[1]) <= major * 10 + minor for a in built):
        return None
    name = torch.cuda.get_device_name(device_index)
    return (f"GPU {device_index} is a {name} ({arch}), but this torch {torch.__version__} was "
            f"built for {', '.join(built)} only. Install a torch built for {arch}: the workflow's "
            f"envs/torch.yaml (conda-forge pytorch with a CUDA 12 runtime: sm_70 V100 through "
            f"sm_90 H100) or the container in containers/ (README, 'Running on a SLURM cluster')")


def select_device(local_rank: int = 0, env=None, log=None) -> torch.device:
    """The device of this process; an error where granted GPUs cannot be used."""
    granted = granted_gpus(env)
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if granted and visible == 0:
        raise DeviceError(
            f"SLURM granted {granted} GPU(s) but torch {torch.__version__} sees none "
            f"(torch.cuda.is_available() is False; CUDA build {torch.version.cuda}); check that "
            f"the job runs the workflow's GPU environment (envs/torch.yaml or the container with "
            f"--apptainer-args --nv) and that the driver supports CUDA {torch.version.cuda}. "
            f"Set {FAKE_GPUS_ENV}=1 only on a test cluster whose GPUs are not real")
    if visible == 0:
        return torch.device("cpu")
    # one GPU visible per process (srun binds a GPU to each task): that one; else one per rank
    index = 0 if visible == 1 else local_rank
    if index >= visible:
        raise DeviceError(f"process {local_rank} needs GPU {local_rank} but CUDA sees {visible}")
    problem = unsupported_arch(index)
    if problem:
        raise DeviceError(problem)
    device = torch.device("cuda", index)
    torch.cuda.set_device(device)
    return device


def resolve_precision(precision: str, device) -> str:
    """fp32 | fp16 | bf16 for `precision` (auto | fp32 | fp16 | bf16) on `device`."""
    device = torch.device(device)
    if precision not in ("auto", "fp32", "fp16", "bf16"):
        raise LatentageError(f"unknown precision {precision!r} (auto, fp32, fp16, bf16)")
    if device.type != "cuda":
        return "fp32" if precision == "auto" else precision
    major = torch.cuda.get_device_capability(device)[0]
    if precision == "auto":
        return "bf16" if major >= 8 else "fp16"
    if precision == "bf16" and major < 8:
        # V100s emulate bf16 (torch.cuda.is_bf16_supported() says True) at a fraction of fp16's
        # speed; asked for explicitly it still runs, with a word in the log
        print(f"latentage: NOTICE: bf16 on compute capability {major}.x is emulated and slow; "
              f"fp16 is the fast choice there", file=sys.stderr)
    return precision


AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def autocast(device, precision: str):
    """Autocast context for a resolved precision (a no-op for fp32)."""
    dtype = AMP_DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def device_name(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def peak_memory_mb(device) -> float:
    """Peak GPU memory allocated by torch on a GPU, peak resident memory on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
