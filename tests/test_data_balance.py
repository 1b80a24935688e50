"""Age-balanced sampling (data.balance): the weights, the epochs they give, and the GAN's
sampler with them. Expected weights are worked out by hand in each test."""

import numpy as np
import pandas as pd
import pytest

from latentage import seeds
from latentage.data.balance import age_weights, epoch_order, sample_weights, yearly_shares
from latentage.errors import InputError
from latentage.gan.data import RealSampler

# 10 images: 1 aged 0 y, 3 aged 1 y, 6 aged 2 y → even share 10/3 per occupied bin
AGES = np.array([6.0, 13, 14, 20, 25, 26, 27, 30, 33, 35])


def test_weights_are_inverse_bin_frequency_relative_to_an_even_share():
    w = age_weights(AGES, max_weight=10)
    assert w[0] == pytest.approx(10 / 3 / 1)
    assert w[1:4] == pytest.approx([10 / 3 / 3] * 3)
    assert w[4:] == pytest.approx([10 / 3 / 6] * 6)
    # uncapped, every occupied year gets the same share of what the sampler shows
    assert list(yearly_shares(AGES, w).values()) == pytest.approx([1 / 3] * 3)
    assert yearly_shares(AGES, None) == pytest.approx({0: 0.1, 1: 0.3, 2: 0.6})


def test_the_cap_limits_rare_years():
    w = age_weights(AGES, max_weight=2)
    assert w[0] == 2.0 and w[1] == pytest.approx(10 / 9)
    shares = yearly_shares(AGES, w)
    assert shares[0] == pytest.approx(2 / (2 + 3 * 10 / 9 + 6 * 10 / 18))


def test_bad_input_names_the_key():
    with pytest.raises(InputError, match="data.balance_max_weight"):
        age_weights(AGES, max_weight=0.5)
    with pytest.raises(InputError, match="data.balance"):
        sample_weights("sex", AGES, 5)
    with pytest.raises(InputError, match="non-negative"):
        age_weights(np.array([-1.0, 3.0]), 5)
    assert sample_weights("none", AGES, 5) is None


def test_without_weights_an_epoch_is_the_plain_permutation():
    a, b = seeds.rng(1, "gan.data"), seeds.rng(1, "gan.data")
    assert (epoch_order(a, 10, None) == b.permutation(10)).all()
    idx = np.array([2, 5, 7])
    assert (epoch_order(a, 10, None, idx) == b.permutation(idx)).all()


def test_weighted_epochs_follow_the_weights_and_the_seed():
    w = age_weights(AGES, 10)
    draws = np.concatenate([epoch_order(seeds.rng(3, "gan.data", k), 10, w) for k in range(2000)])
    bins = np.floor(AGES[draws] / 12).astype(int)
    assert np.bincount(bins) / len(bins) == pytest.approx([1 / 3] * 3, abs=0.01)
    again = epoch_order(seeds.rng(3, "gan.data", 0), 10, w)
    assert (again == draws[:10]).all()
    # only the given rows are drawn
    idx = np.array([0, 4, 5])
    assert set(epoch_order(seeds.rng(0, "cnn.order"), 10, w, idx)) <= set(idx)


@pytest.fixture
def labelled_set(tmp_path):
    """20 images, 16 of them aged 10 y and 4 aged 3 y, with their labels parquet."""
    images = np.arange(20, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    np.save(tmp_path / "res4.npy", images)
    ages = np.array([120.0] * 16 + [36.0] * 4)
    pd.DataFrame({"id": np.arange(20), "boneage": ages, "male": np.arange(20) % 2}).to_parquet(
        tmp_path / "labels.parquet")
    return tmp_path


def test_the_gan_sampler_shows_rare_years_as_often_as_common_ones(labelled_set):
    plain = RealSampler(labelled_set / "res4.npy", 1, labelled_set / "labels.parquet")
    balanced = RealSampler(labelled_set / "res4.npy", 1, labelled_set / "labels.parquet",
                           balance="age", max_weight=5)
    seen_plain = np.concatenate([plain.next_indices(20) for _ in range(100)])
    seen = np.concatenate([balanced.next_indices(20) for _ in range(100)])
    assert (seen_plain >= 16).mean() == pytest.approx(0.2)  # every image once per epoch
    assert (seen >= 16).mean() == pytest.approx(0.5, abs=0.03)  # 3 y now half of what D sees
    # the labels come with the rows, and a balanced sampler resumes where it stopped
    assert (balanced.conditions(np.array([0, 19]))[:, 0] == [120, 36]).all()
    state = balanced.state_dict()
    again = RealSampler(labelled_set / "res4.npy", 1, labelled_set / "labels.parquet",
                        balance="age", max_weight=5)
    again.load_state_dict(state)
    assert (again.next_indices(30) == balanced.next_indices(30)).all()


def test_balancing_without_labels_or_with_mismatched_labels_is_an_error(labelled_set):
    with pytest.raises(InputError, match="needs the labels"):
        RealSampler(labelled_set / "res4.npy", 1, balance="age")
    pd.DataFrame({"boneage": [1.0], "male": [0]}).to_parquet(labelled_set / "short.parquet")
    with pytest.raises(InputError, match="1 rows but the prepared images have 20"):
        RealSampler(labelled_set / "res4.npy", 1, labelled_set / "short.parquet")
