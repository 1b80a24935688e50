"""`latentage --nproc N <step> …`: one process per GPU through torchrun where N GPUs are there.

A SLURM job granted N GPUs runs N processes (torchrun --standalone, NCCL). Where CUDA sees
fewer devices than requested — a CPU machine, a test cluster advertising GPUs it does not
have — the step runs as one process and says so in its log; the training is then the same
single-process run a laptop does (with the global minibatch the schedule gives one process).
LATENTAGE_CPU_DDP=1 forces the N-process launch on CPU (gloo), the data-parallel twin used to
test the distributed path without GPUs.
"""

from __future__ import annotations

import os
import sys


def torchrun_argv(nproc: int, step_argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc), "-m", "latentage", "--", *step_argv]


def plan(nproc: int, cuda_devices: int, force_cpu: bool, inside_torchrun: bool) -> str:
    """'torchrun' or 'single', with the reason kept simple enough to test."""
    if nproc <= 1 or inside_torchrun:
        return "single"
    if cuda_devices >= nproc or force_cpu:
        return "torchrun"
    return "single"


def maybe_relaunch(nproc: int, step_argv: list[str]) -> None:
    """Replace this process with torchrun when the plan says so; otherwise return."""
    inside = "LOCAL_RANK" in os.environ
    if nproc <= 1 or inside:
        return
    import torch

    devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    force = os.environ.get("LATENTAGE_CPU_DDP") == "1"
    if plan(nproc, devices, force, inside) == "torchrun":
        argv = torchrun_argv(nproc, step_argv)
        print(f"latentage: launching {nproc} processes: {' '.join(argv)}", file=sys.stderr,
              flush=True)
        os.execv(sys.executable, argv)
    print(f"latentage: NOTICE: {nproc} GPU processes requested but CUDA sees {devices} "
          f"device(s); running one process (set LATENTAGE_CPU_DDP=1 for {nproc} CPU processes)",
          file=sys.stderr, flush=True)
