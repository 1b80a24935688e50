"""Where steps run: `latentage --nproc N` (torchrun where N GPUs are visible, an error where
SLURM granted GPUs CUDA cannot use, one process with a notice where none were granted, N CPU
processes on request), and one device and precision policy for every step."""

import os
import subprocess

import pytest
import torch
from conftest import BIN

from latentage import device as dev
from latentage.cli import _without_nproc
from latentage.launch import plan, srun_argv, torchrun_argv


def test_plan():
    kw = {"granted": 0, "force_cpu": False, "inside": False}
    assert plan(4, cuda_devices=4, **kw) == "torchrun"
    assert plan(4, cuda_devices=8, **kw) == "torchrun"
    assert plan(4, cuda_devices=0, **kw) == "single"
    assert plan(4, cuda_devices=0, **{**kw, "force_cpu": True}) == "torchrun"
    assert plan(4, cuda_devices=4, **{**kw, "inside": True}) == "single"
    assert plan(1, cuda_devices=4, **kw) == "single"


def test_plan_srun():
    kw = {"force_cpu": False, "inside": False, "launcher": "srun"}
    assert plan(4, cuda_devices=1, granted=4, **kw) == "srun"    # one GPU visible per task
    assert plan(4, cuda_devices=0, granted=0, **kw) == "single"
    assert plan(4, cuda_devices=0, granted=0, **{**kw, "force_cpu": True}) == "srun"
    assert plan(4, cuda_devices=1, granted=4, **{**kw, "inside": True}) == "single"
    with pytest.raises(dev.DeviceError, match="SLURM granted 4 GPU.*CUDA sees none"):
        plan(4, cuda_devices=0, granted=4, **kw)


def test_srun_argv_starts_one_task_per_gpu():
    cmd = srun_argv(4, ["train-phase", "--res", "8"], gpus=True)
    assert cmd[:5] == ["srun", "--ntasks=4", "--kill-on-bad-exit=1",
                       "--export=ALL,LATENTAGE_SRUN=1", "--gpus-per-task=1"]
    assert cmd[-4:] == ["latentage", "train-phase", "--res", "8"]
    assert "--gpus-per-task=1" not in srun_argv(2, ["x"], gpus=False)


def test_granted_gpus_that_cuda_cannot_see_are_an_error():
    with pytest.raises(dev.DeviceError, match="SLURM granted 4 GPU.*CUDA sees 2"):
        plan(4, cuda_devices=2, granted=4, force_cpu=False, inside=False)
    with pytest.raises(dev.DeviceError, match="CUDA sees 0"):
        plan(4, cuda_devices=0, granted=4, force_cpu=True, inside=False)


@pytest.mark.parametrize("env, granted", [
    ({}, 0),                                                      # a laptop
    ({"SLURM_JOB_ID": "7"}, 0),                                   # a CPU job
    ({"SLURM_JOB_ID": "7", "SLURM_GPUS_ON_NODE": "4"}, 4),
    ({"SLURM_JOB_ID": "7", "SLURM_JOB_GPUS": "0,1"}, 2),
    ({"SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "3"}, 1),
    ({"CUDA_VISIBLE_DEVICES": "0,1"}, 0),                         # not a SLURM grant
    ({"SLURM_JOB_ID": "7", "SLURM_GPUS_ON_NODE": "4", dev.FAKE_GPUS_ENV: "1"}, 0),  # CI cluster
])
def test_granted_gpus_from_the_slurm_environment(env, granted):
    assert dev.granted_gpus(env) == granted


def test_a_granted_gpu_without_cuda_stops_a_one_gpu_step(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(dev.DeviceError, match="SLURM granted 1 GPU.*sees none"):
        dev.select_device(env={"SLURM_JOB_ID": "1", "SLURM_GPUS_ON_NODE": "1"})
    assert dev.select_device(env={}).type == "cpu"


def test_a_torch_build_without_the_gpus_architecture_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla V100-SXM2-32GB")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_80", "sm_90", "sm_100"])
    problem = dev.unsupported_arch(0)
    assert "Tesla V100" in problem and "sm_70" in problem and "envs/torch.yaml" in problem
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_70", "sm_80"])
    assert dev.unsupported_arch(0) is None
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_60", "compute_60"])
    assert dev.unsupported_arch(0) is None  # PTX JIT-compiles for newer GPUs


def test_one_precision_policy(monkeypatch):
    assert dev.resolve_precision("auto", "cpu") == "fp32"
    assert dev.resolve_precision("bf16", "cpu") == "bf16"
    for capability, expected in (((7, 0), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None, c=capability: c)
        assert dev.resolve_precision("auto", torch.device("cuda", 0)) == expected
    with pytest.raises(Exception, match="unknown precision"):
        dev.resolve_precision("fp8", "cpu")


def test_relaunch_argv_drops_nproc_and_keeps_the_step():
    argv = ["--nproc", "4", "train-phase", "--res", "8", "--nproc=2"]
    assert _without_nproc(argv) == ["train-phase", "--res", "8"]
    cmd = torchrun_argv(4, ["train-phase", "--res", "8"])
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
                       "-m", "latentage", "--", "train-phase", "--res", "8"]


def _run(env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(env_extra)
    env.pop("LOCAL_RANK", None)
    return subprocess.run([str(BIN / "latentage"), "--nproc", "2", "bench", "phantom", "--n", "2",
                           "--size", "64"], capture_output=True, text=True, env=env, timeout=300)


def test_without_gpus_one_process_runs_and_says_why():
    proc = _run({"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr
    assert "2 GPU processes requested but no GPU was granted and CUDA sees 0" in proc.stderr
    assert proc.stdout.count("bench phantom:") == 1


def test_granted_gpus_cuda_cannot_see_stop_the_step():
    proc = _run({"CUDA_VISIBLE_DEVICES": "", "SLURM_JOB_ID": "1", "SLURM_GPUS_ON_NODE": "2"})
    assert proc.returncode == 2
    assert "SLURM granted 2 GPU(s), but CUDA sees 0" in proc.stderr
    assert "bench phantom:" not in proc.stdout


def test_cpu_ddp_twin_launches_n_processes():
    proc = _run({"CUDA_VISIBLE_DEVICES": "", "LATENTAGE_CPU_DDP": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "launching 2 processes" in proc.stderr
    assert proc.stdout.count("bench phantom:") == 2


def test_slurm_tasks_map_to_torch_distributed_ranks():
    from latentage.gan.distributed import SRUN_ENV, launch_rank, slurm_tasks

    env = {SRUN_ENV: "1", "SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
           "SLURM_JOB_ID": "123456", "SLURM_STEP_NODELIST": "gpu07"}
    assert slurm_tasks(env) == {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8",
                                "MASTER_ADDR": "gpu07", "MASTER_PORT": str(29500 + 3456)}
    assert slurm_tasks({**env, SRUN_ENV: "0"}) is None          # an ordinary SLURM job
    assert slurm_tasks({**env, "SLURM_NTASKS": "1"}) is None    # one task: nothing to join
    assert slurm_tasks({**env, "WORLD_SIZE": "8"}) is None      # torchrun set it up already
    assert launch_rank(env) == 5 and launch_rank({"RANK": "3"}) == 3 and launch_rank({}) == 0


@pytest.mark.parametrize("nodelist, host", [
    ("gpu07", "gpu07"), ("a1,b2", "a1"), ("gpu[03-05,07],cpu1", "gpu03"),
    ("node[12,14]", "node12"), ("n[1-4]", "n1"),
])
def test_first_host_of_a_node_list_without_scontrol(monkeypatch, nodelist, host):
    import shutil

    from latentage.gan.distributed import first_host

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert first_host(nodelist) == host


def test_process_group_backend_follows_the_device_unless_overridden():
    """NCCL on GPUs, gloo on the CPU; LATENTAGE_DIST_BACKEND=gloo lets ranks share one GPU
    (NCCL refuses that), nccl on the CPU is an error naming the variable."""
    from latentage.gan.distributed import backend

    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert backend(cpu, {}) == "gloo" and backend(gpu, {}) == "nccl"
    assert backend(gpu, {"LATENTAGE_DIST_BACKEND": "gloo"}) == "gloo"
    assert backend(gpu, {"LATENTAGE_DIST_BACKEND": " NCCL "}) == "nccl"
    with pytest.raises(dev.LatentageError, match="LATENTAGE_DIST_BACKEND=nccl needs a GPU"):
        backend(cpu, {"LATENTAGE_DIST_BACKEND": "nccl"})
    with pytest.raises(dev.LatentageError, match="'mpi': use nccl or gloo"):
        backend(cpu, {"LATENTAGE_DIST_BACKEND": "mpi"})
