"""`latentage --nproc N`: torchrun where N GPUs are visible, one process (with a notice)
where they are not, N CPU processes (gloo twin) on request."""

import os
import subprocess

from conftest import BIN

from latentage.cli import _without_nproc
from latentage.launch import plan, torchrun_argv


def test_plan():
    assert plan(4, cuda_devices=4, force_cpu=False, inside_torchrun=False) == "torchrun"
    assert plan(4, cuda_devices=8, force_cpu=False, inside_torchrun=False) == "torchrun"
    assert plan(4, cuda_devices=0, force_cpu=False, inside_torchrun=False) == "single"
    assert plan(4, cuda_devices=2, force_cpu=False, inside_torchrun=False) == "single"
    assert plan(4, cuda_devices=0, force_cpu=True, inside_torchrun=False) == "torchrun"
    assert plan(4, cuda_devices=4, force_cpu=False, inside_torchrun=True) == "single"
    assert plan(1, cuda_devices=4, force_cpu=False, inside_torchrun=False) == "single"


def test_relaunch_argv_drops_nproc_and_keeps_the_step():
    argv = ["--nproc", "4", "train-phase", "--res", "8", "--nproc=2"]
    assert _without_nproc(argv) == ["train-phase", "--res", "8"]
    cmd = torchrun_argv(4, ["train-phase", "--res", "8"])
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
                       "-m", "latentage", "--", "train-phase", "--res", "8"]


def _run(env_extra):
    env = dict(os.environ, **env_extra)
    env.pop("LOCAL_RANK", None)
    return subprocess.run([str(BIN / "latentage"), "--nproc", "2", "bench", "phantom", "--n", "2",
                           "--size", "64"], capture_output=True, text=True, env=env, timeout=300)


def test_without_gpus_one_process_runs_and_says_why():
    proc = _run({"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr
    assert "2 GPU processes requested but CUDA sees 0 device(s); running one process" in proc.stderr
    assert proc.stdout.count("bench phantom:") == 1


def test_cpu_ddp_twin_launches_n_processes():
    proc = _run({"CUDA_VISIBLE_DEVICES": "", "LATENTAGE_CPU_DDP": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "launching 2 processes" in proc.stderr
    assert proc.stdout.count("bench phantom:") == 2
