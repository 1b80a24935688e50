"""ADA (gan.augment): the augmentation pipeline and the adaptive controller of p, alone and in
training (p rises when D memorises a tiny set, and stays near 0 on a larger one)."""

import json

import numpy as np
import pytest
import torch
from conftest import quiet
from test_gan_train import outputs, tiny

from latentage.config import build
from latentage.gan import distributed as dist_
from latentage.gan.augment import AdaController, Augment
from latentage.gan.train_phase import train_phase


def pipeline(**over):
    return Augment(build("gan.augment", {"enabled": True, **over}))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def smooth(n=6, size=16):
    x = torch.linspace(-1, 1, size)
    base = (x[None, :] * x[:, None]).expand(n, 1, size, size)
    return (base + 0.3 * torch.randn(n, 1, size, size, generator=gen(1))).clamp(-1, 1)


def test_p_zero_leaves_every_image_as_it_is():
    x = smooth()
    assert torch.allclose(pipeline()(x, torch.tensor(0.0), gen()), x, atol=1e-5)


def test_without_strengths_p_one_changes_nothing_so_there_is_no_flip_or_other_transform():
    x = smooth()
    neutral = pipeline(translate=0, scale_std=0, rotate=0, brightness_std=0, contrast_std=0)
    assert torch.allclose(neutral(x, torch.tensor(1.0), gen()), x, atol=1e-5)


def test_translation_moves_by_whole_pixels():
    x = smooth(n=8)
    y = pipeline(translate=0.25, scale_std=0, rotate=0, brightness_std=0, contrast_std=0)(
        x, torch.tensor(1.0), gen(2))
    shifted = 0
    for a, b in zip(x[:, 0], y[:, 0], strict=True):
        found = [(dx, dy) for dx in range(-4, 5) for dy in range(-4, 5)
                 if torch.allclose(b[4:-4, 4:-4], torch.roll(a, (dy, dx), (0, 1))[4:-4, 4:-4],
                                   atol=1e-4)]
        assert found, "not an integer translation"
        shifted += found[0] != (0, 0)
    assert shifted >= 4


def test_brightness_and_contrast_act_about_the_image_mean():
    x = smooth()
    y = pipeline(translate=0, scale_std=0, rotate=0, brightness_std=0, contrast_std=1.0)(
        x, torch.tensor(1.0), gen(3))
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-5)
    ratio = (y - y.mean(dim=(2, 3), keepdim=True)).std(dim=(1, 2, 3)) / \
        (x - x.mean(dim=(2, 3), keepdim=True)).std(dim=(1, 2, 3))
    assert not torch.allclose(ratio, torch.ones_like(ratio), atol=0.05)
    z = pipeline(translate=0, scale_std=0, rotate=0, brightness_std=0.5, contrast_std=0)(
        x, torch.tensor(1.0), gen(3))
    offsets = (z - x).flatten(1)
    assert torch.allclose(offsets, offsets[:, :1].expand_as(offsets), atol=1e-5)


def test_gradients_reach_the_generator_through_the_pipeline_and_draws_follow_the_stream():
    x = smooth().requires_grad_(True)
    y = pipeline()(x, torch.tensor(0.8), gen(4))
    y.square().sum().backward()
    assert x.grad.abs().sum() > 0
    again = pipeline()(x.detach(), torch.tensor(0.8), gen(4))
    assert torch.equal(again, y.detach())


def test_the_controller_moves_p_by_images_over_speed_and_clamps():
    s = build("gan.augment", {"enabled": True, "speed_kimg": 1.0, "target": 0.6})
    ctx = dist_.Dist(device=torch.device("cpu"))
    ada = AdaController(s, "cpu")
    # reals 1, 2, 3, −1 (mean 1.25), fakes' mean −1.25: the midpoint is 0, r_t = 0.5 < 0.6
    rt = ada.update(torch.tensor([1.0, 2.0, 3.0, -1.0]), torch.tensor(-1.25), 100, ctx)
    assert float(rt) == 0.5 and float(ada.p) == 0.0  # clamped at 0
    # the same shifted by −9 (a WGAN critic's offset): the same r_t
    rt = ada.update(torch.tensor([-8.0, -7.0, -6.0, -10.0]), torch.tensor(-10.25), 100, ctx)
    assert float(rt) == 0.5
    for _ in range(3):  # every real above the midpoint: r_t 1 > 0.6, +100/1000 each
        ada.update(torch.tensor([-5.0, -5.1, -4.9, -5.0]), torch.tensor(-9.0), 100, ctx)
    assert float(ada.p) == pytest.approx(0.3)
    ada.update(torch.tensor([-5.0, -9.0, -9.5, -8.0]), torch.tensor(-7.0), 50, ctx)  # r_t −0.5
    assert float(ada.p) == pytest.approx(0.25)
    other = AdaController(s, "cpu")
    other.load_state_dict(ada.state_dict())
    assert float(other.p) == pytest.approx(0.25)


def _train(images, root, **augment):
    """A tiny 4² phase with ADA, on `images` (uint8 N×4×4); returns the stats lines."""
    np.save(root / "res4.npy", images)
    s = tiny(augment={"enabled": True, "speed_kimg": 0.5, **augment},
             schedule={"total_kimg": 9.0, "lod_training_kimg": 3.0, "lod_transition_kimg": 3.0,
                       "minibatch_base": 16, "tick_kimg_base": 0.5},
             snapshot_kimg=3.0, checkpoint_kimg=3.0)
    train_phase(4, data=root / "res4.npy", prev=None, outputs=outputs(root / "out"),
                progress_dir=root / ".progress", settings=s, seed=3, log=quiet)
    return [json.loads(line) for line in (root / "out" / "stats.jsonl").read_text().splitlines()]


def test_p_rises_when_d_memorises_a_tiny_set_and_stays_low_on_a_large_one(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "tiny").mkdir()
    (tmp_path / "large").mkdir()
    tiny_set = rng.integers(0, 256, (2, 4, 4), dtype=np.uint8)
    large_set = rng.integers(0, 256, (4000, 4, 4), dtype=np.uint8)
    small = _train(tiny_set, tmp_path / "tiny")
    large = _train(large_set, tmp_path / "large")
    assert all("ada_p" in s and "ada_rt" in s for s in small + large)
    mean = lambda runs, key: np.mean([s[key] for s in runs])  # noqa: E731
    # D memorises 2 images: r_t climbs past the target and p with it (falling back while the
    # augmentation, or G's collapse onto the two, keeps D from telling them apart); on 4,000
    # images D separates reals from fakes less, and p ends where it started
    assert max(s["ada_p"] for s in small) == 1.0 and small[-1]["ada_p"] > 0.3
    assert large[-1]["ada_p"] == 0.0
    assert mean(small, "ada_p") > 1.5 * mean(large, "ada_p")
    assert mean(small, "ada_rt") > mean(large, "ada_rt") + 0.2


def test_an_ada_phase_stopped_and_resumed_keeps_p_and_equals_an_uninterrupted_one(tmp_path):
    from test_gan_train import Stopped, _assert_identical, _weights

    from latentage import seeds

    rng = seeds.rng(0, "phantom")
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "d" / "res4.npy", rng.integers(0, 256, (3, 4, 4), dtype=np.uint8))
    s = tiny(augment={"enabled": True, "speed_kimg": 0.2},
             schedule={"total_kimg": 1.8, "lod_training_kimg": 0.6, "lod_transition_kimg": 0.6})

    def run(root, **kw):
        train_phase(4, data=tmp_path / "d" / "res4.npy", prev=None, outputs=outputs(root),
                    progress_dir=root / ".progress", settings=s, seed=3, log=quiet, **kw)

    run(tmp_path / "a")
    with pytest.raises(Stopped):
        run(tmp_path / "b", _stop_at_kimg=0.3)
    run(tmp_path / "b")
    a, sa = _weights(tmp_path / "a" / "checkpoint.pt")
    b, sb = _weights(tmp_path / "b" / "checkpoint.pt")
    _assert_identical(a, b)
    assert float(sa["ada"]["p"]) == float(sb["ada"]["p"]) > 0.0  # 3 images: p moved, and kept
