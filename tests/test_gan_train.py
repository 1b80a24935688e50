"""Growth-phase training: resume, signals, divergence guard, multi-process equivalence."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp
from conftest import BIN

from latentage.data.prepare import prepare
from latentage.errors import LatentageError
from latentage.gan import checkpoint as ckpt
from latentage.gan import loss as loss_module
from latentage.gan.data import RealSampler, fade_reals
from latentage.gan.options import TrainOptions
from latentage.gan.train import DivergenceError, Stopped, train_phase


def tiny_options(**over) -> TrainOptions:
    schedule = dict(lod_training_kimg=0.2, lod_transition_kimg=0.2, total_kimg=0.6,
                    minibatch_base=8, tick_kimg_base=0.1)
    schedule.update(over.pop("schedule", {}))
    base = dict(max_res=8, latent_size=8, fmap_base=64, fmap_max=16, minibatch_repeats=2,
                snapshot_kimg=0.2, checkpoint_kimg=0.1, grid_size=4, ema_beta=0.9,
                schedule=schedule)
    base.update(over)
    return TrainOptions(**base)


@pytest.fixture(scope="module")
def data(phantom_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    prepare(phantom_set / "images", phantom_set / "labels.csv", out, max_res=8, test_size=4,
            seed=0, log=lambda *_: None)
    return out / "train"


@pytest.fixture(scope="module")
def phase4(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("res4")
    train_phase(4, data / "res4.npy", out, options=tiny_options(), seed=5, log=lambda *_: None)
    return out / "checkpoint.pt"


def _weights(path):
    state = ckpt.load(path)
    return {k: state[k] for k in ("G", "D", "G_ema")}, state


def _assert_identical(a, b):
    for net in a:
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs"


def test_phase_outputs_and_snapshots(data, phase4, tmp_path):
    out = tmp_path / "res8"
    summary = train_phase(8, data / "res8.npy", out, phase4, options=tiny_options(), seed=5,
                          log=lambda *_: None)
    assert summary["kimg"] >= 0.6
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == \
        ["000000.400.pt", "000000.600.pt"]
    snap = ckpt.load(out / "snapshots" / "000000.600.pt")
    assert snap["resolution"] == 8 and "G_ema" in snap and "G" not in snap
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert len(stats) >= 3 and {"kimg", "res", "alpha", "d_loss", "g_loss", "img_per_s",
                                "s_per_kimg", "mem_mb"} <= set(stats[0])
    assert stats[0]["alpha"] < 1.0 and stats[-1]["alpha"] == 1.0
    assert (out / "fakes.png").is_file() and len(list((out / "fakes").glob("*.png"))) >= 3
    assert not (out / ".progress").exists()
    state = ckpt.load(out / "checkpoint.pt")
    assert state["opt_G"]["state"] and state["resolution"] == 8 and state["nimg"] >= 600


def test_stop_and_resume_is_bit_identical(data, phase4, tmp_path):
    opts = tiny_options()
    train_phase(8, data / "res8.npy", tmp_path / "a", phase4, options=opts, seed=5,
                log=lambda *_: None)
    with pytest.raises(Stopped, match="rerun to resume"):
        train_phase(8, data / "res8.npy", tmp_path / "b", phase4, options=opts, seed=5,
                    log=lambda *_: None, _stop_at_kimg=0.33)
    assert (tmp_path / "b/.progress/progress.pt").is_file()
    assert not (tmp_path / "b/checkpoint.pt").exists()
    logs = []
    train_phase(8, data / "res8.npy", tmp_path / "b", phase4, options=opts, seed=5,
                log=logs.append)
    assert any("resuming from" in line for line in logs)
    a, sa = _weights(tmp_path / "a/checkpoint.pt")
    b, sb = _weights(tmp_path / "b/checkpoint.pt")
    _assert_identical(a, b)
    assert sa["nimg"] == sb["nimg"]
    for opt in ("opt_G", "opt_D"):
        for k, v in sa[opt]["state"].items():
            assert torch.equal(v["exp_avg_sq"], sb[opt]["state"][k]["exp_avg_sq"])
    # snapshots taken before and after the stop are the same too
    for name in ("000000.400.pt", "000000.600.pt"):
        _assert_identical({"G_ema": ckpt.load(tmp_path / "a/snapshots" / name)["G_ema"]},
                          {"G_ema": ckpt.load(tmp_path / "b/snapshots" / name)["G_ema"]})


def test_sigusr1_saves_progress_and_a_rerun_finishes(data, tmp_path):
    opts = tiny_options(schedule={"total_kimg": 8.0})
    train_phase(4, data / "res4.npy", tmp_path / "res4", options=opts, seed=5,
                log=lambda *_: None)
    settings = json.dumps(opts.__dict__)
    out_dir = tmp_path / "res8"
    cmd = [str(BIN / "latentage"), "train-phase", "--res", "8", "--data", str(data / "res8.npy"),
           "--prev", str(tmp_path / "res4/checkpoint.pt"), "--out", str(out_dir),
           "--settings", settings, "--seed", "5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (out_dir / ".progress/stats.jsonl").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read()
        time.sleep(0.1)
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    assert "stopped by SIGUSR1" in out and "rerun to resume" in out
    saved = ckpt.load(out_dir / ".progress/progress.pt")
    assert 0 < saved["nimg"] < 8_000
    # resume and finish with the same settings (other settings would discard the progress)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resuming from {out_dir / '.progress/progress.pt'}" in done.stdout
    assert ckpt.load(out_dir / "checkpoint.pt")["nimg"] >= 8_000


def test_huge_learning_rate_is_restored_then_stops_with_a_clear_error(data, tmp_path):
    # a learning rate of 1e6 at 8² only: phase 4 trains normally, phase 8 diverges
    opts = tiny_options(schedule={"lrate_dict": {8: 1.0e6}}, max_restores=2, fade_stretch=1.5)
    train_phase(4, data / "res4.npy", tmp_path / "res4", options=opts, seed=5,
                log=lambda *_: None)
    logs = []
    with pytest.raises(DivergenceError, match=r"phase 8: training diverged .* restored 2 times"):
        train_phase(8, data / "res8.npy", tmp_path / "res8", tmp_path / "res4/checkpoint.pt",
                    options=opts, seed=5, log=logs.append)
    restores = [line for line in logs if "DIVERGED" in line]
    assert len(restores) == 2
    assert "fade into 8 now 0.3 kimg" in restores[0]  # stretched by 1.5
    assert "fade into 8 now 0.38 kimg" in restores[1]  # 0.45 capped at 95 % of the phase
    assert not (tmp_path / "res8/checkpoint.pt").exists()


def test_a_transient_divergence_is_restored_and_training_completes(data, phase4, tmp_path,
                                                                   monkeypatch):
    real = loss_module.discriminator_loss
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        loss, parts = real(*args, **kw)
        return (loss * float("nan") if calls["n"] == 30 else loss), parts

    monkeypatch.setattr("latentage.gan.train.discriminator_loss", flaky)
    logs = []
    summary = train_phase(8, data / "res8.npy", tmp_path, phase4, options=tiny_options(),
                          seed=5, log=logs.append)
    assert summary["restores"] == 1
    assert sum("DIVERGED" in line for line in logs) == 1
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert all(torch.isfinite(t).all() for t in state["G"].values())


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, data_path, out, opts_dict):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    train_phase(4, data_path, out, options=TrainOptions(**opts_dict), seed=5,
                log=lambda *_: None)
    torch.distributed.destroy_process_group()


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(data, tmp_path):
    opts = tiny_options(schedule={"total_kimg": 0.6, "lod_training_kimg": 0.2},
                        snapshot_kimg=0.1)
    # phase 4 only, 0.2 kimg with a global minibatch of 8 (4 per process)
    torch.set_num_threads(1)
    train_phase(4, data / "res4.npy", tmp_path / "one", options=opts, seed=5,
                log=lambda *_: None)
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker,
                         args=(r, 2, port, str(data / "res4.npy"), str(tmp_path / "two"),
                               opts.__dict__)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    one, s1 = _weights(tmp_path / "one/checkpoint.pt")
    two, s2 = _weights(tmp_path / "two/checkpoint.pt")
    assert s1["nimg"] == s2["nimg"]
    for net in one:
        for name in one[net]:
            torch.testing.assert_close(one[net][name], two[net][name], atol=2e-5, rtol=1e-4,
                                       msg=f"{net}.{name}")


def test_bf16_autocast_path_runs_on_cpu(data, tmp_path):
    summary = train_phase(4, data / "res4.npy", tmp_path, options=tiny_options(precision="bf16"),
                          seed=5, log=lambda *_: None)
    assert summary["kimg"] >= 0.2
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert all(torch.isfinite(t).all() for t in state["G_ema"].values())


def test_progress_from_other_settings_is_discarded(data, phase4, tmp_path):
    with pytest.raises(Stopped):
        train_phase(8, data / "res8.npy", tmp_path, phase4, options=tiny_options(), seed=5,
                    log=lambda *_: None, _stop_at_kimg=0.3)
    logs = []
    with pytest.raises(LatentageError, match="trained with other gan settings"):
        train_phase(8, data / "res8.npy", tmp_path, phase4,
                    options=tiny_options(wgan_lambda=5.0), seed=5, log=logs.append)
    assert any("written with other settings; starting over" in line for line in logs)


def test_sampler_shares_are_strided_slices_of_one_global_draw(data):
    a, b, c = (RealSampler(data / "res8.npy", 1) for _ in range(3))
    whole = a.batch(8, 0, 1, "cpu")
    torch.testing.assert_close(b.batch(8, 0, 2, "cpu"), whole[0::2])
    torch.testing.assert_close(c.batch(8, 1, 2, "cpu"), whole[1::2])
    assert whole.min() >= -1 and whole.max() <= 1


def test_fade_reals_blends_towards_the_lower_resolution():
    x = torch.randn(2, 1, 8, 8)
    low = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(x, 2), scale_factor=2)
    torch.testing.assert_close(fade_reals(x, 0.0), low)
    torch.testing.assert_close(fade_reals(x, 1.0), x)


def test_dry_run_prints_options_and_schedule(tmp_path):
    settings = json.dumps(tiny_options().__dict__)
    out = subprocess.run([sys.executable, "-m", "latentage", "train-phase", "--res", "8",
                          "--data", "x.npy", "--out", str(tmp_path), "--settings", settings,
                          "--seed", "1", "--dry-run"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "wgan_lambda" in out.stdout and "schedule at end of fade" in out.stdout
    assert json.loads((tmp_path / "options.json").read_text())["kimg"] == [0.2, 0.6]
    bad = subprocess.run([sys.executable, "-m", "latentage", "train-phase", "--res", "8",
                          "--data", "x.npy", "--out", str(tmp_path), "--settings",
                          '{"lattent_size": 3}', "--seed", "1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown gan settings: lattent_size" in bad.stderr
