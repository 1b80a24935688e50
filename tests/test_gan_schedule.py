"""The schedule against a direct transcription of the official TrainingSchedule."""

import math

import pytest

from latentage.gan.schedule import Schedule, snapshot_name

PRESET = dict(lod_training_kimg=600, lod_transition_kimg=600, total_kimg=12000,
              minibatch_base=16,
              minibatch={4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16},
              lrate=0.001, lrate_dict={256: 0.0015, 512: 0.002, 1024: 0.003})


def official(nimg, resolution_log2=10, num_gpus=4, T=600, F=600):
    """tkarras train.py TrainingSchedule, transcribed for the preset above."""
    kimg = nimg / 1000.0
    phase_dur = T + F
    phase_idx = int(math.floor(kimg / phase_dur))
    phase_kimg = kimg - phase_idx * phase_dur
    lod = resolution_log2 - 2 - phase_idx - max(phase_kimg - T, 0.0) / F
    lod = max(lod, 0.0)
    res = 2 ** (resolution_log2 - int(math.floor(lod)))
    mb = PRESET["minibatch"].get(res, 16)
    mb -= mb % num_gpus
    lr = PRESET["lrate_dict"].get(res, 0.001)
    return lod, res, mb, lr


@pytest.mark.parametrize("kimg", [0, 1, 599.9, 600, 600.1, 900, 1199.9, 1200, 1800, 2400.5,
                                  5000, 8999, 9000, 9600, 10199, 10200, 11000, 11999.9])
def test_matches_official_schedule(kimg):
    s = Schedule(1024, **PRESET)
    nimg = int(round(kimg * 1000))
    step = s(nimg)
    lod, res, mb, lr = official(nimg)
    assert step.lod == pytest.approx(lod, abs=1e-9)
    if step.resolution == 2 * res:
        # the first step of a fade: the official code still names the lower resolution; at
        # alpha 0 both networks compute the same thing, and the step opens the next phase
        assert step.alpha == 0.0 and nimg == int(1000 * Schedule(1024, **PRESET)
                                                 .phase_bounds(step.resolution)[0])
        return
    assert step.resolution == res
    assert step.minibatch == mb and step.g_lrate == lr == step.d_lrate


def test_phase_bounds_and_phase_of():
    s = Schedule(1024, **PRESET)
    assert s.phase_bounds(4) == (0, 600)
    assert s.phase_bounds(8) == (600, 1800)
    assert s.phase_bounds(512) == (7800, 9000)
    assert s.phase_bounds(1024) == (9000, 12000)
    assert [s.phase_of(k) for k in (0, 599, 600, 1799, 1800, 11999)] == [4, 4, 8, 8, 16, 1024]
    # a phase's fade ends after F kimg, then alpha stays 1
    assert s(int(600e3)).alpha == 0 and s(int(900e3)).alpha == pytest.approx(0.5)
    assert s(int(1200e3)).alpha == 1.0


def test_the_minibatch_is_global_and_caps_are_per_gpu():
    """The schedule's minibatch does not depend on the process count; a per-GPU cap is kept
    for the step to split by (gradient accumulation, train.split_minibatch)."""
    s = Schedule(1024, max_minibatch_per_gpu={1024: 2}, **PRESET)
    assert s(0).minibatch == 512 and s(int(11000e3)).minibatch == 16
    assert s.per_gpu_cap(1024) == 2 and s.per_gpu_cap(4) is None


def test_fade_stretch_stays_inside_the_phase():
    s = Schedule(1024, fade_stretch={64: 1.5}, **PRESET)
    start, end = s.phase_bounds(64)
    assert s.fade_kimg(64) == 900
    assert s(int((start + 450) * 1000)).alpha == pytest.approx(0.5)
    assert s.phase_bounds(64) == Schedule(1024, **PRESET).phase_bounds(64)
    huge = Schedule(1024, fade_stretch={64: 10}, **PRESET)
    assert huge.fade_kimg(64) < end - start


def test_snapshot_kimgs_are_known_in_advance_and_cover_each_phase_once():
    s = Schedule(1024, **PRESET)
    allk = [k for r in s.resolutions for k in s.snapshot_kimgs(r, 240)]
    assert allk == [240 * i for i in range(1, 51)]
    assert s.snapshot_kimgs(4, 240) == [240, 480]
    assert snapshot_name(240) == "000240" and snapshot_name(0.5) == "000000.500"
    # a total that is no multiple of the cadence still ends with a snapshot of the final G_ema
    odd = Schedule(1024, **{**PRESET, "total_kimg": 12100})
    assert odd.snapshot_kimgs(1024, 240)[-2:] == [12000, 12100]
    assert odd.snapshot_kimgs(512, 240) == s.snapshot_kimgs(512, 240)


def test_total_kimg_must_cover_the_last_fade():
    with pytest.raises(ValueError, match="total_kimg"):
        Schedule(1024, **{**PRESET, "total_kimg": 9500}).validate()
