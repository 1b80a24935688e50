"""`latentage --nproc N <step> …`: one process per GPU.

- N GPUs visible to CUDA: the step is re-run as N processes by `torchrun --standalone` (one
  node, NCCL).
- SLURM granted GPUs that CUDA cannot use (fewer visible, or a torch build without the GPU's
  architecture): an error naming the cause — never a silent CPU run on a GPU allocation.
- No GPU granted (a laptop, the CI cluster whose GPUs are fakes: LATENTAGE_FAKE_GPUS=1): one
  process, with a notice. LATENTAGE_CPU_DDP=1 forces N CPU processes (gloo): the
  data-parallel twin the tests use.
"""

from __future__ import annotations

import os
import sys

from latentage.device import DeviceError, granted_gpus, unsupported_arch


def torchrun_argv(nproc: int, step_argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc), "-m", "latentage", "--", *step_argv]


def plan(nproc: int, cuda_devices: int, granted: int, force_cpu: bool,
         inside_torchrun: bool) -> str:
    """'torchrun' or 'single'; raises DeviceError where granted GPUs would go unused."""
    if nproc <= 1 or inside_torchrun:
        return "single"
    if cuda_devices >= nproc:
        return "torchrun"
    if granted:
        raise DeviceError(f"{nproc} GPU processes requested and SLURM granted {granted} GPU(s), "
                          f"but CUDA sees {cuda_devices}: check the job's GPU environment "
                          f"(envs/torch.yaml or the container with --nv) and the driver")
    return "torchrun" if force_cpu else "single"


def maybe_relaunch(nproc: int, step_argv: list[str]) -> None:
    """Replace this process with torchrun when the plan says so; otherwise return."""
    inside = "LOCAL_RANK" in os.environ
    if nproc <= 1 or inside:
        return
    import torch

    devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    force = os.environ.get("LATENTAGE_CPU_DDP") == "1"
    how = plan(nproc, devices, granted_gpus(), force, inside)
    if how == "torchrun":
        problem = unsupported_arch(0) if devices else None
        if problem:
            raise DeviceError(problem)
        argv = torchrun_argv(nproc, step_argv)
        print(f"latentage: launching {nproc} processes: {' '.join(argv)}", file=sys.stderr,
              flush=True)
        os.execv(sys.executable, argv)
    print(f"latentage: NOTICE: {nproc} GPU processes requested but no GPU was granted and CUDA "
          f"sees {devices}; running one process (set LATENTAGE_CPU_DDP=1 for {nproc} CPU "
          f"processes)", file=sys.stderr, flush=True)
