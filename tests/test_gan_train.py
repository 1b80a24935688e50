"""Growth-phase training: the shared step, resume, signals, the divergence guard, fp16 and bf16
on the CPU, and equal results for any number of processes."""

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
from conftest import BIN, prepare_folder, quiet

from latentage.config import as_dict, build
from latentage.errors import LatentageError
from latentage.gan import checkpoint as ckpt
from latentage.gan.data import Prefetcher, RealSampler, fade_reals
from latentage.gan.schedule import Schedule, Step, split_minibatch
from latentage.gan.train import TrainState, train_step
from latentage.gan.train_phase import DivergenceError, PhaseOutputs, Stopped, train_phase


def tiny(**over):
    """GanSettings of a tiny network grown 4² → 8² over 0.6 kimg."""
    schedule = dict(lod_training_kimg=0.2, lod_transition_kimg=0.2, total_kimg=0.6,
                    minibatch_base=8, minibatch={}, tick_kimg_base=0.1, tick_kimg={})
    schedule.update(over.pop("schedule", {}))
    base = dict(max_res=8, latent_size=8, fmap_base=64, fmap_max=16, minibatch_repeats=2,
                snapshot_kimg=0.2, checkpoint_kimg=0.1, grid_size=4, ema_beta=0.9,
                schedule=schedule)
    base.update(over)
    return build("gan", base)


def outputs(root):
    return PhaseOutputs(root / "checkpoint.pt", root / "stats.jsonl", root / "fakes.png",
                        root / "ticks", root / "snapshots")


def run_phase(res, data, root, prev=None, settings=None, **kw):
    kw.setdefault("log", quiet)
    return train_phase(res, data=data / f"res{res}.npy", prev=prev, outputs=outputs(root),
                       progress_dir=root / ".progress", settings=settings or tiny(), seed=5,
                       **kw)


@pytest.fixture(scope="module")
def data(phantom_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    prepare_folder(phantom_set, out, 8, test_size=4)
    return out / "train"


@pytest.fixture(scope="module")
def phase4(data, tmp_path_factory):
    root = tmp_path_factory.mktemp("res4")
    run_phase(4, data, root)
    return root / "checkpoint.pt"


def _weights(path):
    state = ckpt.load(path)
    return {k: state[k] for k in ("G", "D", "G_ema")}, state


def _assert_identical(a, b):
    for net in a:
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs"


# ------------------------------------------------------------------------ the step


def test_ema_moves_with_the_d_step_from_g_before_its_update():
    """Official timing: G_ema ← lerp(G_ema, G, 1 − β) with G as it was before the G step."""
    gan = tiny()
    state = TrainState(gan, 1, "cpu", "fp32")
    with torch.no_grad():  # G_ema apart from G, so the update is visible
        for p in state.G_ema.parameters():
            p.add_(0.5)
    ema0 = [p.clone() for p in state.G_ema.parameters()]
    g0 = [p.clone() for p in state.G.parameters()]
    reals = torch.randint(0, 256, (8, 1, 4, 4), dtype=torch.uint8)
    train_step(state, reals, Step(0, 4, 1, 1.0, 8, 1e-3, 1e-3, 1), seed=0, nimg=0)
    for e0, g, e in zip(ema0, g0, state.G_ema.parameters(), strict=True):
        torch.testing.assert_close(e, torch.lerp(e0, g, 1 - gan.ema_beta))
    moved = [p for p, g in zip(state.G.parameters(), g0, strict=True) if not torch.equal(p, g)]
    assert moved  # G did step, and G_ema did not follow the new G


def test_noise_depends_on_the_step_not_on_the_process_count():
    from latentage.gan.train import step_noise

    a = step_noise(3, 1600, 0, 16, 8, "cpu")
    b = step_noise(3, 1600, 0, 16, 8, "cpu")
    c = step_noise(3, 1616, 0, 16, 8, "cpu")
    d = step_noise(3, 1600, 1, 16, 8, "cpu")
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[0], d[0])


def test_split_minibatch_keeps_the_global_minibatch_and_whole_stddev_groups():
    assert split_minibatch(16, 1, None, 4) == 1
    assert split_minibatch(16, 1, 8, 4) == 2  # two micro-batches of 8
    assert split_minibatch(16, 2, 8, 4) == 1
    assert split_minibatch(512, 4, 8, 4) == 16
    with pytest.raises(ValueError, match="does not split evenly over 3 processes"):
        split_minibatch(16, 3, None, 4)
    with pytest.raises(ValueError, match="micro-batch of 2 images .* minibatch-stddev group 4"):
        split_minibatch(16, 2, 2, 4)


def test_micro_batches_give_the_step_of_one_pass():
    """A per-GPU cap splits the minibatch; the accumulated step equals one pass (same
    minibatch-stddev groups, gradients averaged)."""
    gan = tiny()
    reals = torch.randint(0, 256, (8, 1, 4, 4), dtype=torch.uint8)
    step = Step(0, 4, 1, 1.0, 8, 1e-3, 1e-3, 1)
    states = [TrainState(gan, 1, "cpu", "fp32") for _ in range(2)]
    for state, rounds in zip(states, (1, 2), strict=True):
        for i in range(3):
            train_step(state, reals, step, seed=0, nimg=8 * i, rounds=rounds)
    for a, b in zip(states[0].G.parameters(), states[1].G.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------ the phase


def test_phase_outputs_and_snapshots(data, phase4, tmp_path):
    out = tmp_path / "res8"
    summary = run_phase(8, data, out, phase4)
    assert summary["kimg"] >= 0.6
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == \
        ["000000.400.pt", "000000.600.pt"]
    snap = ckpt.load(out / "snapshots" / "000000.600.pt")
    assert snap["resolution"] == 8 and "G_ema" in snap and "G" not in snap
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert len(stats) >= 3 and {"kimg", "res", "alpha", "d_loss", "g_loss", "gp", "grad_norm",
                                "d_skipped", "img_per_s", "s_per_kimg", "mem_mb"} <= set(stats[0])
    assert stats[0]["alpha"] < 1.0 and stats[-1]["alpha"] == 1.0
    assert (out / "fakes.png").is_file() and len(list((out / "ticks").glob("*.png"))) >= 3
    assert not (out / ".progress").exists()
    # exactly the files the rule names
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "fakes.png", "snapshots",
                                                     "stats.jsonl", "ticks"]
    state = ckpt.load(out / "checkpoint.pt")
    assert state["opt_G"]["state"] and state["resolution"] == 8 and state["nimg"] >= 600


def test_checkpoints_hold_only_cpu_tensors_and_load_into_a_new_state(data, phase4, tmp_path):
    """Checkpoints load onto the CPU (the data order and random states must stay there), and
    only networks and optimiser states move to the device."""
    saved = ckpt.load(phase4)

    def devices(obj):
        if isinstance(obj, torch.Tensor):
            yield obj.device.type
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from devices(v)
    assert set(devices(saved)) == {"cpu"}
    assert isinstance(saved["data"]["perm"], torch.Tensor)
    sampler = RealSampler(data / "res4.npy", 5)
    sampler.load_state_dict(saved["data"])
    assert sampler.pos == int(saved["data"]["pos"])


def test_stop_and_resume_is_bit_identical(data, phase4, tmp_path):
    run_phase(8, data, tmp_path / "a", phase4)
    first = []
    with pytest.raises(Stopped, match="rerun to resume"):
        run_phase(8, data, tmp_path / "b", phase4, _stop_at_kimg=0.33, log=first.append)
    assert (tmp_path / "b/.progress/progress.pt").is_file()
    assert not (tmp_path / "b/checkpoint.pt").exists()
    logs = []
    run_phase(8, data, tmp_path / "b", phase4, log=logs.append)
    assert any("resuming from" in line for line in logs)
    # Snakemake deletes the rule's log before each attempt: the resumed attempt repeats the
    # earlier one's lines (its ticks and its stop), so the final log tells the whole phase
    stop = next(line for line in first if "stopped by a stop request" in line)
    assert logs.index(stop) < logs.index("--- this attempt ---")
    assert [line for line in first if line.startswith("kimg")] == \
        [line for line in logs[:logs.index("--- this attempt ---")] if line.startswith("kimg")]
    assert not (tmp_path / "b/.progress").exists()
    a, sa = _weights(tmp_path / "a/checkpoint.pt")
    b, sb = _weights(tmp_path / "b/checkpoint.pt")
    _assert_identical(a, b)
    assert sa["nimg"] == sb["nimg"]
    for opt in ("opt_G", "opt_D"):
        for k, v in sa[opt]["state"].items():
            assert torch.equal(v["exp_avg_sq"], sb[opt]["state"][k]["exp_avg_sq"])
    for name in ("000000.400.pt", "000000.600.pt"):
        _assert_identical({"G_ema": ckpt.load(tmp_path / "a/snapshots" / name)["G_ema"]},
                          {"G_ema": ckpt.load(tmp_path / "b/snapshots" / name)["G_ema"]})


def _cli(data, prev, out, settings, res=8):
    return [str(BIN / "latentage"), "train-phase", "--res", str(res),
            "--data", str(data / f"res{res}.npy"), "--prev", str(prev),
            "--checkpoint", str(out / "checkpoint.pt"), "--stats", str(out / "stats.jsonl"),
            "--fakes", str(out / "fakes.png"), "--ticks", str(out / "ticks"),
            "--snapshots", str(out / "snapshots"), "--progress", str(out / ".progress"),
            "--settings", json.dumps(as_dict(settings)), "--seed", "5"]


def test_sigusr1_saves_progress_and_a_rerun_finishes(data, tmp_path):
    settings = tiny(schedule={"total_kimg": 8.0})
    run_phase(4, data, tmp_path / "res4", settings=settings)
    out = tmp_path / "res8"
    cmd = _cli(data, tmp_path / "res4/checkpoint.pt", out, settings)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (out / ".progress/stats.jsonl").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read()
        time.sleep(0.1)
    proc.send_signal(signal.SIGUSR1)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, text
    assert "stopped by SIGUSR1" in text and "rerun to resume" in text
    saved = ckpt.load(out / ".progress/progress.pt")
    assert 0 < saved["nimg"] < 8_000
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resuming from {out / '.progress/progress.pt'}" in done.stdout
    assert ckpt.load(out / "checkpoint.pt")["nimg"] >= 8_000


def test_sigterm_to_every_process_of_a_torchrun_phase_saves_and_a_rerun_resumes(data, tmp_path):
    """What SLURM's --signal=TERM@300 does to a multi-GPU growth phase: SIGTERM to every
    process of the job step (torchrun and both ranks; here gloo on the CPU). The ranks agree to
    stop, rank 0 saves, torchrun exits non-zero (Snakemake's retry), and a rerun resumes."""
    settings = tiny(schedule={"total_kimg": 8.0})
    run_phase(4, data, tmp_path / "res4", settings=settings)
    out = tmp_path / "res8"
    cmd = _cli(data, tmp_path / "res4/checkpoint.pt", out, settings)
    cmd = [cmd[0], "--nproc", "2", *cmd[1:]]
    env = {**os.environ, "LATENTAGE_CPU_DDP": "1", "CUDA_VISIBLE_DEVICES": "",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    deadline = time.time() + 180
    while not (out / ".progress/stats.jsonl").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, text
    assert "launching 2 processes" in text and "stopped by SIGTERM" in text, text
    saved = ckpt.load(out / ".progress/progress.pt")
    assert 0 < saved["nimg"] < 8_000
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming from" in done.stdout + done.stderr
    assert ckpt.load(out / "checkpoint.pt")["nimg"] >= 8_000


def test_huge_learning_rate_is_restored_then_stops_with_a_clear_error(data, tmp_path):
    settings = tiny(schedule={"lrate_dict": {8: 1.0e6}}, max_restores=2, fade_stretch=1.5)
    run_phase(4, data, tmp_path / "res4", settings=settings)
    logs = []
    with pytest.raises(DivergenceError, match=r"phase 8: training diverged .* restored 2 times"):
        run_phase(8, data, tmp_path / "res8", tmp_path / "res4/checkpoint.pt",
                  settings=settings, log=logs.append)
    restores = [line for line in logs if "DIVERGED" in line]
    assert len(restores) == 2
    assert "fade into 8 now 0.3 kimg" in restores[0]  # stretched by 1.5
    assert "fade into 8 now 0.38 kimg" in restores[1]  # 0.45 capped at 95 % of the phase
    assert not (tmp_path / "res8/checkpoint.pt").exists()
    # a retry of the job stops at once instead of training into the same wall again ...
    logs.clear()
    with pytest.raises(DivergenceError, match="diverged before with these gan settings"):
        run_phase(8, data, tmp_path / "res8", tmp_path / "res4/checkpoint.pt",
                  settings=settings, log=logs.append)
    assert logs == []
    # ... until the settings change (here the learning rate)
    fixed = tiny(schedule={"lrate_dict": {8: 1.0e-3}}, max_restores=2)
    with pytest.raises(LatentageError, match="trained with other gan settings"):
        run_phase(8, data, tmp_path / "res8", tmp_path / "res4/checkpoint.pt", settings=fixed)


def _flaky_loss(monkeypatch, bad_call: int):
    from latentage.gan import loss as loss_module

    real = loss_module.discriminator_loss
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        loss, parts = real(*args, **kw)
        return (loss * float("nan") if calls["n"] == bad_call else loss), parts

    monkeypatch.setattr("latentage.gan.train.discriminator_loss", flaky)


def test_a_transient_divergence_is_restored_and_training_completes(data, phase4, tmp_path,
                                                                   monkeypatch):
    _flaky_loss(monkeypatch, 30)
    logs = []
    summary = run_phase(8, data, tmp_path, phase4, log=logs.append)
    assert summary["restores"] == 1
    assert sum("DIVERGED" in line for line in logs) == 1
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert all(torch.isfinite(t).all() for t in state["G"].values())


def test_a_restore_rewinds_snapshots_and_ticks(data, tmp_path, monkeypatch):
    """A divergence after a snapshot but before the next progress checkpoint: the snapshot
    and the stats lines of the rewound stretch are retaken, once each."""
    settings = tiny(checkpoint_kimg=0.6, snapshot_kimg=0.05,
                    schedule={"tick_kimg_base": 0.05})
    run_phase(4, data, tmp_path / "clean", settings=settings)
    # phase 4: 0.2 kimg of 8-image steps; the 20th step (at 0.16 kimg, after three snapshots
    # and three ticks) fails, and there is no progress checkpoint yet to go back to
    _flaky_loss(monkeypatch, 20)
    logs = []
    summary = run_phase(4, data, tmp_path, settings=settings, log=logs.append)
    assert summary["restores"] == 1
    assert any("restored the phase's initial state (kimg 0.000)" in line for line in logs)
    kimgs = [json.loads(line)["kimg"] for line in (tmp_path / "stats.jsonl").read_text()
             .splitlines()]
    assert kimgs == sorted(set(kimgs)), kimgs  # no duplicated, no stale ticks
    snaps = sorted(p.name for p in (tmp_path / "snapshots").iterdir())
    assert snaps == ["000000.050.pt", "000000.100.pt", "000000.150.pt", "000000.200.pt"]
    # retaken after the restore: the rewound run trained on other noise, so its first
    # snapshot is not the one the clean run (identical up to the failure) took
    first = ckpt.load(tmp_path / "snapshots/000000.050.pt")["G_ema"]
    clean = ckpt.load(tmp_path / "clean/snapshots/000000.050.pt")["G_ema"]
    assert any(not torch.equal(first[k], clean[k]) for k in first)


def test_progress_from_other_settings_is_discarded(data, phase4, tmp_path):
    with pytest.raises(Stopped):
        run_phase(8, data, tmp_path, phase4, _stop_at_kimg=0.3)
    logs = []
    with pytest.raises(LatentageError, match="trained with other gan settings"):
        run_phase(8, data, tmp_path, phase4, settings=tiny(wgan_lambda=5.0), log=logs.append)
    assert any("written with other settings; starting over" in line for line in logs)


def test_speed_settings_keep_the_progress(data, phase4, tmp_path):
    with pytest.raises(Stopped):
        run_phase(8, data, tmp_path, phase4, _stop_at_kimg=0.3)
    logs = []
    run_phase(8, data, tmp_path, phase4, settings=tiny(checkpoint_kimg=0.2, grid_size=2),
              log=logs.append)
    assert any("resuming from" in line for line in logs)


def test_total_kimg_only_moves_the_last_phase_end(data, phase4, tmp_path):
    """gan.schedule.total_kimg is not part of the settings digest: phase 4² (trained to 0.6
    kimg in all) seeds a last phase that runs to 0.8; a last phase stopped under 0.6 resumes
    under 0.8 and ends with the weights of an uninterrupted 0.8 run; progress past a shortened
    end is discarded."""
    longer = tiny(schedule={"total_kimg": 0.8})
    run_phase(8, data, tmp_path / "straight", phase4, settings=longer)
    with pytest.raises(Stopped):
        run_phase(8, data, tmp_path / "extended", phase4, _stop_at_kimg=0.3)
    logs = []
    run_phase(8, data, tmp_path / "extended", phase4, settings=longer, log=logs.append)
    assert any("resuming from" in line for line in logs)
    a, sa = _weights(tmp_path / "straight/checkpoint.pt")
    b, sb = _weights(tmp_path / "extended/checkpoint.pt")
    _assert_identical(a, b)
    assert sa["nimg"] == sb["nimg"] >= 800
    assert sorted(p.name for p in (tmp_path / "extended/snapshots").iterdir()) == \
        ["000000.400.pt", "000000.600.pt", "000000.800.pt"]
    with pytest.raises(Stopped):
        run_phase(8, data, tmp_path / "shortened", phase4, settings=longer, _stop_at_kimg=0.5)
    logs = []
    run_phase(8, data, tmp_path / "shortened", phase4, settings=tiny(schedule={"total_kimg": 0.45}),
              log=logs.append)
    assert any("past the phase's end 0.45 (gan.schedule.total_kimg); starting over" in line
               for line in logs)
    assert 450 <= ckpt.load(tmp_path / "shortened/checkpoint.pt")["nimg"] < 500


# ------------------------------------------------------------------------ precision


def test_fp16_on_the_cpu_runs_without_restores_and_resumes(data, tmp_path):
    """fp16 autocast with loss scaling (GradScaler on the CPU): no restore, the scaler state in
    the progress checkpoint, and a resume that finishes."""
    settings = tiny(precision="fp16", schedule={"total_kimg": 1.2})
    run_phase(4, data, tmp_path / "res4", settings=settings)
    with pytest.raises(Stopped):
        run_phase(8, data, tmp_path / "res8", tmp_path / "res4/checkpoint.pt",
                  settings=settings, _stop_at_kimg=0.5)
    saved = ckpt.load(tmp_path / "res8/.progress/progress.pt")
    assert saved["scaler_D"]["scale"] > 0 and saved["restores"] == 0
    logs = []
    summary = run_phase(8, data, tmp_path / "res8", tmp_path / "res4/checkpoint.pt",
                        settings=settings, log=logs.append)
    assert summary["restores"] == 0 and any("resuming from" in line for line in logs)
    stats = [json.loads(line) for line in (tmp_path / "res8/stats.jsonl").read_text().splitlines()]
    assert all("loss_scale_d" in s for s in stats)
    state = ckpt.load(tmp_path / "res8/checkpoint.pt")
    assert all(torch.isfinite(t).all() for t in state["G_ema"].values())


def test_bf16_autocast_path_runs_on_cpu(data, tmp_path):
    summary = run_phase(4, data, tmp_path, settings=tiny(precision="bf16"))
    assert summary["kimg"] >= 0.2
    state = ckpt.load(tmp_path / "checkpoint.pt")
    assert all(torch.isfinite(t).all() for t in state["G_ema"].values())


def test_pixel_norm_keeps_the_autocast_dtype():
    from latentage.gan.layers import pixel_norm

    x = torch.randn(2, 8, 4, 4).to(torch.bfloat16) * 300  # x² overflows in half precision
    y = pixel_norm(x)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()


# ------------------------------------------------------------------------ processes


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, data_path, out, settings_dict):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from pathlib import Path

    run_phase(4, Path(data_path), Path(out), settings=build("gan", settings_dict))
    torch.distributed.destroy_process_group()


def test_results_do_not_depend_on_the_process_count(data, tmp_path):
    """Two gloo processes, one process, and one process capped to half the minibatch per step
    (gradient accumulation) train the same networks."""
    settings = tiny(schedule={"total_kimg": 0.6, "lod_training_kimg": 0.2}, snapshot_kimg=0.1)
    capped = tiny(schedule={"total_kimg": 0.6, "lod_training_kimg": 0.2,
                            "max_minibatch_per_gpu": {4: 4}}, snapshot_kimg=0.1)
    torch.set_num_threads(1)
    run_phase(4, data, tmp_path / "one", settings=settings)
    run_phase(4, data, tmp_path / "capped", settings=capped)
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, str(data), str(tmp_path / "two"),
                                                   as_dict(settings))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    one, s1 = _weights(tmp_path / "one/checkpoint.pt")
    for other in ("two", "capped"):
        nets, s2 = _weights(tmp_path / other / "checkpoint.pt")
        assert s1["nimg"] == s2["nimg"]
        for net in one:
            for name in one[net]:
                torch.testing.assert_close(one[net][name], nets[net][name], atol=2e-5,
                                           rtol=1e-4, msg=f"{other}: {net}.{name}")


# ------------------------------------------------------------------------ data


def test_sampler_shares_are_strided_slices_of_one_global_draw(data):
    a, b, c = (RealSampler(data / "res8.npy", 1) for _ in range(3))
    whole = a.share(8, 0, 1)
    assert (b.share(8, 0, 2) == whole[0::2]).all() and (c.share(8, 1, 2) == whole[1::2]).all()


def test_prefetcher_hands_out_what_the_sampler_reads_and_saves_only_what_it_handed_out(data):
    plain, ahead = RealSampler(data / "res8.npy", 1), RealSampler(data / "res8.npy", 1)
    pre = Prefetcher(ahead, 0, 1, "cpu", depth=3)
    try:
        for _ in range(5):
            assert torch.equal(pre.next(8)[0][:, 0], torch.from_numpy(plain.share(8, 0, 1)))
        state = pre.state_dict()  # after 5 batches, although 8 were read
        resumed = RealSampler(data / "res8.npy", 1)
        resumed.load_state_dict(state)
        assert (resumed.share(8, 0, 1) == plain.share(8, 0, 1)).all()
        # a different minibatch size drops what was read ahead and reads on from batch 5
        again = RealSampler(data / "res8.npy", 1)
        again.load_state_dict(state)
        assert torch.equal(pre.next(4)[0][:, 0], torch.from_numpy(again.share(4, 0, 1)))
    finally:
        pre.close()


def test_fade_reals_blends_towards_the_lower_resolution():
    x = torch.randn(2, 1, 8, 8)
    low = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(x, 2), scale_factor=2)
    torch.testing.assert_close(fade_reals(x, 0.0), low)
    torch.testing.assert_close(fade_reals(x, 1.0), x)


# ------------------------------------------------------------------------ the CLI


def test_dry_run_prints_settings_and_schedule_and_writes_nothing(tmp_path):
    cmd = [sys.executable, "-m", "latentage", "train-phase", "--res", "8", "--data", "x.npy",
           "--checkpoint", str(tmp_path / "c.pt"), "--stats", str(tmp_path / "s.jsonl"),
           "--fakes", str(tmp_path / "f.png"), "--ticks", str(tmp_path / "t"),
           "--snapshots", str(tmp_path / "s"), "--progress", str(tmp_path / "p"), "--seed", "1"]
    out = subprocess.run(cmd + ["--settings", json.dumps(as_dict(tiny())), "--dry-run"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "wgan_lambda" in out.stdout and "schedule at end of fade" in out.stdout
    assert "snapshots at kimg 0.4, 0.6" in out.stdout
    assert list(tmp_path.iterdir()) == []
    bad = subprocess.run(cmd + ["--settings", '{"lattent_size": 3, "max_res": 8}'],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown config key gan.lattent_size" in bad.stderr


def test_schedule_of_the_settings_is_the_official_one():
    s = Schedule.from_settings(tiny())
    assert s.phase_bounds(8) == (0.2, 0.6) and s(300).alpha == pytest.approx(0.5)


@pytest.mark.slow
def test_compile_trains_through_a_fade_without_recompiling_each_step(data, tmp_path):
    """gan.compile: the forward passes compiled (alpha a device tensor, so a changing fade
    does not recompile), the penalty's double backward eager."""
    from torch._dynamo.utils import counters

    settings = tiny(compile=True, schedule={"lod_training_kimg": 0.05,
                                            "lod_transition_kimg": 0.2, "total_kimg": 0.3})
    run_phase(4, data, tmp_path / "res4", settings=settings)
    counters.clear()
    summary = run_phase(8, data, tmp_path / "res8", tmp_path / "res4/checkpoint.pt",
                        settings=settings)
    assert summary["restores"] == 0
    # 25 fade steps, each with its own alpha: a handful of graphs (G and D, fading and
    # stable, with and without gradients), not one per step
    assert 0 < counters["stats"]["unique_graphs"] <= 16, dict(counters["stats"])
    state = ckpt.load(tmp_path / "res8/checkpoint.pt")
    assert all(torch.isfinite(t).all() for t in state["G"].values())
