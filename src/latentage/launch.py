"""`latentage --nproc N [--launcher torchrun|srun] <step> …`: one process per GPU.

- torchrun (one node): N GPUs visible to CUDA → the step re-runs as N processes under
  `torchrun --standalone` (NCCL). The single-node default of profiles/slurm.
- srun (one node or several): the step re-runs as N SLURM tasks of the job's allocation, one
  per GPU (`srun --ntasks N --gpus-per-task 1`); each task maps SLURM_PROCID / SLURM_LOCALID /
  SLURM_NTASKS to torch.distributed's rank, local rank and world size, with the first host of
  the node list as the rendezvous (gan/distributed.py). SLURM signals every task itself, so a
  time limit's SIGTERM reaches each rank with no launcher in between.
- SLURM granted GPUs that CUDA cannot use (fewer visible, or a torch build without the GPU's
  architecture): an error naming the cause — never a silent CPU run on a GPU allocation.
- No GPU granted (a laptop, the CI cluster whose GPUs are fakes: LATENTAGE_FAKE_GPUS=1): one
  process, with a notice. LATENTAGE_CPU_DDP=1 forces N CPU processes (gloo): the
  data-parallel twin the tests use, with either launcher.
"""

from __future__ import annotations

import os
import sys

from latentage.device import DeviceError, granted_gpus, unsupported_arch
from latentage.gan.distributed import SRUN_ENV


def torchrun_argv(nproc: int, step_argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc), "-m", "latentage", "--", *step_argv]


def srun_argv(nproc: int, step_argv: list[str], gpus: bool) -> list[str]:
    argv = ["srun", f"--ntasks={nproc}", "--kill-on-bad-exit=1", f"--export=ALL,{SRUN_ENV}=1"]
    if gpus:
        argv.append("--gpus-per-task=1")
    return [*argv, sys.executable, "-m", "latentage", *step_argv]


def plan(nproc: int, cuda_devices: int, granted: int, force_cpu: bool,
         inside: bool, launcher: str = "torchrun") -> str:
    """'torchrun', 'srun' or 'single'; raises DeviceError where granted GPUs would go unused."""
    if nproc <= 1 or inside:
        return "single"
    if launcher == "srun":
        if granted and cuda_devices == 0:
            raise DeviceError(f"{nproc} GPU tasks requested and SLURM granted {granted} GPU(s), "
                              f"but CUDA sees none: check the job's GPU environment")
        return "srun" if granted or force_cpu else "single"
    if cuda_devices >= nproc:
        return "torchrun"
    if granted:
        raise DeviceError(f"{nproc} GPU processes requested and SLURM granted {granted} GPU(s), "
                          f"but CUDA sees {cuda_devices}: check the job's GPU environment "
                          f"(envs/torch.yaml or the container with --nv) and the driver")
    return "torchrun" if force_cpu else "single"


def maybe_relaunch(nproc: int, step_argv: list[str], launcher: str = "torchrun") -> None:
    """Replace this process with torchrun or srun when the plan says so; otherwise return."""
    inside = "LOCAL_RANK" in os.environ or os.environ.get(SRUN_ENV) == "1"
    if nproc <= 1 or inside:
        return
    import torch

    devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    force = os.environ.get("LATENTAGE_CPU_DDP") == "1"
    how = plan(nproc, devices, granted_gpus(), force, inside, launcher)
    if how == "single":
        print(f"latentage: NOTICE: {nproc} GPU processes requested but no GPU was granted and "
              f"CUDA sees {devices}; running one process (set LATENTAGE_CPU_DDP=1 for {nproc} "
              f"CPU processes)", file=sys.stderr, flush=True)
        return
    problem = unsupported_arch(0) if devices else None
    if problem:
        raise DeviceError(problem)
    argv = torchrun_argv(nproc, step_argv) if how == "torchrun" else \
        srun_argv(nproc, step_argv, gpus=devices > 0)
    print(f"latentage: launching {nproc} processes: {' '.join(argv)}", file=sys.stderr,
          flush=True)
    os.execvp(argv[0], argv)
