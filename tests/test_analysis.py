"""Latent analysis on synthetic ground truth: a known linear map z → age (plus noise) and a
synthetic generator/labeller, so every result has a right answer."""

import numpy as np
import pytest

from latentage.analysis.atlas import pick_starts, steer
from latentage.analysis.axes import directions, edit_test, fit_ols, ortho_gap, targets
from latentage.analysis.lasso import fit_lasso
from latentage.analysis.walk import (
    WalkSettings,
    build_chain,
    interpolate,
    lasso_path,
    run_walks,
    slerp,
)
from latentage.errors import InputError

D = 32


@pytest.fixture(scope="module")
def synthetic():
    """z ~ N(0, I); age = 120 + 40·(z·w_age) + noise on 8 active dimensions; sex logit from an
    oblique direction (cos 0.6 with age), as the CNN's labels of generated hands might be."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6000, D)).astype(np.float32)
    w_age = np.zeros(D)
    w_age[:8] = rng.standard_normal(8)
    w_age /= np.linalg.norm(w_age)
    other = np.zeros(D)
    other[8:16] = rng.standard_normal(8)
    other /= np.linalg.norm(other)
    w_sex = 0.6 * w_age + 0.8 * other

    def label(zz):
        zz = np.asarray(zz, np.float64)
        age = 120 + 40 * zz @ w_age
        male = 1 / (1 + np.exp(-2.0 * zz @ w_sex))
        return age, male

    age, male = label(z)
    age_noisy = age + rng.normal(0, 4, len(z))
    return {"z": z, "age": age_noisy, "male": male, "w_age": w_age, "w_sex": w_sex,
            "label": label}


def test_lasso_recovers_the_direction_and_reports_honest_errors(synthetic):
    fit = fit_lasso(synthetic["z"], synthetic["age"], folds=5, holdout=0.2, seed=1, n_alphas=30)
    s, coef = fit["summary"], fit["coef"]
    cos = coef @ synthetic["w_age"] / np.linalg.norm(coef)
    assert cos >= 0.99
    # noise sd 4 months → mean |error| ≈ 4·√(2/π) ≈ 3.2 on both parts, R² ≈ 0.99
    for part in ("train", "holdout"):
        e = s["lasso"][part]
        assert e["abs_error_mean"] == pytest.approx(3.19, abs=0.3)
        assert e["r2"] > 0.98
    assert s["lasso"]["holdout"]["n"] == 1200 and s["lasso"]["train"]["n"] == 4800
    assert s["nonzero"] < D  # the 24 inactive dimensions are mostly dropped
    assert s["ols"]["holdout"]["abs_error_mean"] == pytest.approx(
        s["lasso"]["holdout"]["abs_error_mean"], rel=0.1)
    again = fit_lasso(synthetic["z"], synthetic["age"], folds=5, holdout=0.2, seed=1, n_alphas=30)
    assert np.array_equal(again["coef"], coef)  # one seed, the same fit


def test_chain_walk_climbs_in_age_steps_and_stays_near(synthetic):
    z, age = synthetic["z"], synthetic["label"](synthetic["z"])[0]
    s = WalkSettings(start_age=(60, 72), end_age=190, step=24, tolerance=5, frames=6)
    chain = build_chain(z, age, s, seed=3)
    ages = age[chain]
    assert 60 <= ages[0] <= 72 and ages[-1] >= 190 - 24 - 5
    assert np.all(np.abs(np.diff(ages) - 24) <= 15)
    assert len(set(chain)) == len(chain)
    with pytest.raises(InputError, match="analysis.age_walk.start_age"):
        build_chain(z, age, WalkSettings(start_age=(900, 910)), seed=3)


def test_interpolation_keeps_chain_points_and_slerp_keeps_the_norm():
    rng = np.random.default_rng(1)
    pts = rng.standard_normal((3, 64)).astype(np.float32)
    frames, key = interpolate(pts, 5, "slerp")
    assert len(frames) == 2 * 5 + 1 and key.sum() == 3
    assert np.allclose(frames[key], pts, atol=1e-5)
    mid = slerp(pts[0], pts[1], np.array([0.5]))[0]
    assert np.linalg.norm(mid) == pytest.approx(
        (np.linalg.norm(pts[0]) + np.linalg.norm(pts[1])) / 2, rel=0.15)
    lin, _ = interpolate(pts, 4, "linear")
    assert np.allclose(lin[2], (pts[0] + pts[1]) / 2, atol=1e-6)


def test_both_walks_are_monotone_on_a_monotone_generator_and_labeller(synthetic):
    z, label = synthetic["z"], synthetic["label"]
    age = label(z)[0]
    fit = fit_lasso(z, age, folds=3, holdout=0.0, seed=0, n_alphas=20)
    s = WalkSettings(start_age=(40, 50), end_age=200, step=24, tolerance=5, frames=8)
    out = run_walks(z, age, fit["coef"], fit["summary"]["intercept"], label, s, seed=0)
    lasso_walk = out["walks"]["lasso"]
    assert lasso_walk["rho"] > 0.999  # straight along the true direction: strictly older
    assert np.all(np.diff(lasso_walk["age"]) > 0)
    chain_walk = out["walks"]["chain"]
    assert chain_walk["rho"] > 0.95
    assert chain_walk["loess"][-1] - chain_walk["loess"][0] > 100
    # the LASSO path hits its requested ages (the labeller is the linear map itself)
    zs = lasso_path(z[0], fit["coef"], fit["summary"]["intercept"], np.array([50.0, 150.0]))
    assert np.allclose(label(zs)[0], [50, 150], atol=1.0)


def test_orthogonal_axes_lower_the_gap_and_keep_mse(synthetic):
    y, scale = targets(synthetic["age"], synthetic["male"])
    m = directions(synthetic["z"].astype(np.float64), y, lam=2.0)
    assert m["orthogonal"]["ortho_gap"] < m["ols"]["ortho_gap"]
    # the attributes are truly correlated (cos 0.6), so orthogonality costs some fit — on
    # standardised targets, less than 0.15 of the variance (R² stays above 0.85)
    assert m["orthogonal"]["mse"] - m["ols"]["mse"] < 0.15
    assert abs(m["ols"]["cosine"]) == pytest.approx(0.6, abs=0.05)  # the built-in obliqueness
    assert abs(m["projected"]["cosine"]) < 1e-8
    assert abs(m["orthogonal"]["cosine"]) < abs(m["ols"]["cosine"])
    W, _ = fit_ols(synthetic["z"].astype(np.float64), y)
    assert ortho_gap(W) == pytest.approx(m["ols"]["ortho_gap"])


def test_edit_test_shows_projected_age_edits_keep_sex(synthetic):
    y, scale = targets(synthetic["age"], synthetic["male"])
    m = directions(synthetic["z"].astype(np.float64), y, lam=2.0)
    rows = edit_test(synthetic["z"][:300], m, m["ols"]["W"], scale, synthetic["label"],
                     age_months=24, sex_logit=2.0)
    by = {(r["method"], r["edited"]): r for r in rows}
    for method in ("ols", "orthogonal", "projected"):
        assert by[(method, "age")]["delta_age_months"] > 10
    # moving along plain OLS age drags sex along; the projected direction does not
    assert by[("ols", "age")]["abs_delta_male_prob"] > 3 * by[("projected", "age")][
        "abs_delta_male_prob"]
    assert by[("projected", "age")]["delta_age_months"] == pytest.approx(24, abs=4)


def test_atlas_steering_hits_requested_ages_and_keeps_sex(synthetic):
    z, label = synthetic["z"], synthetic["label"]
    age, male = label(z)
    y, scale = targets(age, male)
    m = directions(z.astype(np.float64), y, lam=2.0)
    u = m["projected"]["age"]
    slope = float(m["ols"]["W"][:, 0] @ u) * scale["sd"][0] * 0.5  # a poor first guess
    for target, is_male in ((30.0, False), (200.0, True)):
        start = pick_starts(age, male, target, is_male, 6, seed=0)
        assert np.all((male[start] >= 0.5) == is_male)
        res = steer(z[start], u, slope, target, label, steps=6, tolerance=1.0)
        assert np.all(np.abs(res["age"] - target) <= 1.0)
        assert np.all((res["male_prob"] >= 0.5) == is_male)
    with pytest.raises(InputError, match="analysis.atlas.per_age"):
        pick_starts(age, male, 100.0, True, 10**6, seed=0)
