"""Latent analysis on synthetic ground truth: a known linear map z → age (plus noise) and a
synthetic generator/labeller, so every result has a right answer."""

import numpy as np
import pytest

from latentage.analysis.age_walk import (
    build_chain,
    interpolate,
    lasso_path,
    resolve_walk,
    run_walks,
    slerp,
)
from latentage.analysis.atlas import candidates, keep, resolve_atlas, search, steer
from latentage.analysis.attribute_axes import (
    directions,
    edit_test,
    fit_ols,
    fit_unit_columns,
    fits,
    mse,
    ortho_gap,
    targets,
    unit,
)
from latentage.analysis.lasso import fit_lasso
from latentage.config import build
from latentage.errors import InputError


def WalkSettings(**kw):
    return build("analysis.age_walk", kw)

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
    s = WalkSettings(start_age=[60, 72], end_age=190, step=24, tolerance=5, frames=6)
    chain = build_chain(z, age, s, seed=3)
    ages = age[chain]
    assert 60 <= ages[0] <= 72 and ages[-1] >= 190 - 24 - 5
    assert np.all(np.abs(np.diff(ages) - 24) <= 15)
    assert len(set(chain)) == len(chain)
    with pytest.raises(InputError, match="analysis.age_walk.start_age"):
        build_chain(z, age, WalkSettings(start_age=[900, 910]), seed=3)


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
    s = WalkSettings(start_age=[40, 50], end_age=200, step=24, tolerance=5, frames=8)
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


def test_orthogonal_fit_is_orthonormal_and_as_good_as_any_orthonormal_map(synthetic):
    z, (y, _) = synthetic["z"].astype(np.float64), targets(synthetic["age"], synthetic["male"])
    m = directions(z, y, lam=2.0)
    W, b = m["orthogonal"]["W"], m["orthogonal"]["b"]
    assert ortho_gap(W) < 1e-3  # λ = 2 with the mean loss: on the constraint (README)
    # the penalised optimum is at least as good as any orthonormal map: here OLS's columns
    # made orthonormal (Gram-Schmidt) with the intercept refitted
    q, _ = np.linalg.qr(m["ols"]["W"])
    q *= np.sign(np.diag(q.T @ m["ols"]["W"]))
    b_q = y.mean(axis=0) - z.mean(axis=0) @ q
    assert mse(z, y, W, b) <= mse(z, y, q, b_q) + 1e-6
    assert abs(m["projected"]["cosine"]) < 1e-12
    assert abs(m["ols"]["cosine"]) == pytest.approx(0.6, abs=0.05)  # the built-in obliqueness
    W_ols, _ = fit_ols(z, y)
    np.testing.assert_allclose(W_ols, m["ols"]["W"])


def test_unit_length_columns_solve_their_constrained_least_squares(synthetic):
    """Each column has norm 1 and satisfies the optimality condition of min ‖Zw − y‖² with
    ‖w‖ = 1: the gradient C·w − c is parallel to w (a Lagrange multiplier)."""
    z, (y, _) = synthetic["z"].astype(np.float64), targets(synthetic["age"], synthetic["male"])
    W, b = fit_unit_columns(z, y)
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), 1.0, atol=1e-9)
    zc = z - z.mean(axis=0)
    C = zc.T @ zc / len(z)
    for k in range(2):
        grad = C @ W[:, k] - zc.T @ (y[:, k] - y[:, k].mean()) / len(z)
        mu = -grad @ W[:, k]
        np.testing.assert_allclose(grad, -mu * W[:, k], atol=1e-8)
        # better than the OLS direction scaled to unit length
        w = unit(fit_ols(z, y)[0][:, k])
        assert mse(z, y[:, [k]], W[:, [k]], b[[k]]) <= mse(
            z, y[:, [k]], w[:, None], y[:, [k]].mean(0) - z.mean(0) @ w[:, None]) + 1e-12


def test_the_cost_of_orthogonality_is_shown_apart_from_the_cost_of_unit_length(synthetic):
    z, (y, _) = synthetic["z"].astype(np.float64), targets(synthetic["age"], synthetic["male"])
    train, test = np.arange(4800), np.arange(4800, 6000)
    m = directions(z[train], y[train], lam=2.0)
    f = fits(z[train], y[train], z[test], y[test], m)
    train_mse = [f[k]["mse_train"] for k in ("ols", "unit_columns", "orthogonal")]
    assert train_mse == sorted(train_mse)  # each constraint can only cost on the fitted data
    assert f["ols"]["mse_holdout"] is not None and f["orthogonal"]["ortho_gap"] < 1e-3
    np.testing.assert_allclose(f["unit_columns"]["column_norms"], 1.0, atol=1e-9)


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


def test_unset_walk_and_atlas_ages_come_from_what_the_cnn_predicts():
    rng = np.random.default_rng(0)
    age = rng.uniform(100, 160, 5000)
    male = rng.uniform(0, 1, 5000) ** 3  # mostly predicted female
    s = resolve_walk(WalkSettings(), age)
    assert s.start_age[0] == pytest.approx(np.percentile(age, 2.5))
    assert s.end_age == pytest.approx(np.percentile(age, 95))
    assert s.step == pytest.approx((s.end_age - np.mean(s.start_age)) / 6)
    assert s.tolerance == pytest.approx(s.step / 4)
    explicit = resolve_walk(WalkSettings(start_age=[36, 48], end_age=216, step=24,
                                         tolerance=6), age)
    assert (explicit.start_age, explicit.end_age, explicit.step) == ((36, 48), 216, 24)
    a = resolve_atlas(build("analysis.atlas", {"per_age": 4}), age, male)
    lo, hi = np.percentile(age, [5, 95]) / 12
    assert len(a.ages) == 4 and lo - 0.5 <= min(a.ages) and max(a.ages) <= hi + 0.5
    assert a.sexes == ("female", "male")
    only = resolve_atlas(build("analysis.atlas", {"per_age": 4}), age, np.zeros(5000))
    assert only.sexes == ("female",)
    assert resolve_atlas(build("analysis.atlas", {"ages": [2, 4]}), age, male).ages == (2, 4)


def test_atlas_steering_hits_requested_ages_and_keeps_sex(synthetic):
    z, label = synthetic["z"], synthetic["label"]
    age, male = label(z)
    y, scale = targets(age, male)
    m = directions(z.astype(np.float64), y, lam=2.0)
    u = m["projected"]["age"]
    slope = float(m["ols"]["W"][:, 0] @ u) * scale["sd"][0] * 0.5  # a poor first guess
    for target, is_male in ((30.0, False), (200.0, True)):
        pool = candidates(age, male, target, is_male, 6)
        assert np.all((male[pool] >= 0.5) == is_male)
        res = steer(z[pool], u, slope, target, label, steps=6, tolerance=1.0)
        assert np.all(np.abs(res["age"] - target) <= 1.0)
        assert np.all((res["male_prob"] >= 0.5) == is_male)
        kept = keep(search(z[pool], u, slope, target, label, steps=6, tolerance=1.0,
                           male=is_male), pool, 6, target, 1.0, is_male, seed=0)
        assert len(set(kept["start"])) == 6 and set(kept["start"]) <= set(pool)
        assert np.all(np.abs(kept["age"] - target) <= 1.0)
        assert np.all((kept["male_prob"] >= 0.5) == is_male)
        assert np.allclose(label(kept["z"])[0], kept["age"], atol=1e-3)
    with pytest.raises(InputError, match="analysis.atlas.per_age"):
        candidates(age, male, 100.0, True, 10**6)


def test_search_finds_what_a_walk_from_the_start_misses():
    """A reader whose age rises both ways from t = 0 (100 + 10·|t| months) and who reads girls
    only at t ≤ 0: asked for a 140-month girl from t = 0, the walk steps to t = 4 (140 months,
    read as a boy) and stops there, within the tolerance, so it keeps its start (100 months);
    the scan of the line finds t = −4 (140 months, a girl). Asked for a boy, both reach t = 4."""
    u = np.array([1.0, 0.0])

    def reader(z):
        t = z[:, 0].astype(np.float64)
        return 100.0 + 10.0 * np.abs(t), np.where(t <= 0.0, 0.2, 0.9)

    z0 = np.array([[0.0, 1.0]], np.float32)
    walked = steer(z0, u, 10.0, 140.0, reader, steps=6, tolerance=1.0, male=False)
    assert np.allclose(walked["age"], [100.0]) and np.allclose(walked["moved"], [0.0])
    found = search(z0, u, 10.0, 140.0, reader, steps=6, tolerance=1.0, male=False)
    assert np.allclose(found["age"], [140.0]) and np.allclose(found["male_prob"], [0.2])
    assert np.allclose(found["z"], [[-4.0, 1.0]]) and np.allclose(found["moved"], [-4.0])
    boy = search(z0, u, 10.0, 140.0, reader, steps=6, tolerance=1.0, male=True)
    assert np.allclose(boy["z"], [[4.0, 1.0]]) and np.allclose(boy["male_prob"], [0.9])


def test_keep_draws_among_the_hits_else_takes_the_best():
    """Of searched candidates: with n within the tolerance as the requested sex, n of those at
    random (following the seed); with fewer, the n best — the requested sex before the age."""
    res = {"z": np.arange(6, dtype=np.float32)[:, None],
           "age": np.array([120.0, 99.0, 150.0, 100.5, 101.0, 100.0]),
           "male_prob": np.array([0.9, 0.9, 0.9, 0.9, 0.2, 0.8]),
           "moved": np.zeros(6), "steps": 3}
    pool = np.array([10, 11, 12, 13, 14, 15])
    hits = {11, 13, 15}  # within 1 month of 100 and read as boys (14 is a girl)
    drawn = [tuple(keep(res, pool, 2, 100.0, 1.0, True, seed)["start"]) for seed in range(8)]
    assert all(set(d) <= hits and len(set(d)) == 2 for d in drawn)
    assert len(set(drawn)) > 1
    assert drawn[3] == tuple(keep(res, pool, 2, 100.0, 1.0, True, 3)["start"])
    best = keep(res, pool, 5, 100.0, 1.0, True, seed=0)
    assert list(best["start"]) == [15, 13, 11, 10, 12]  # the girl (14) last, though at 101
    assert np.allclose(best["age"], [100.0, 100.5, 99.0, 120.0, 150.0]) and best["steps"] == 3
    girls = keep(res, pool, 2, 100.0, 1.0, False, seed=0)
    assert list(girls["start"]) == [14, 15]


def test_steering_keeps_a_point_of_the_requested_sex():
    """A reader whose sex flips past t = 3 on the axis: steering a boy from t = 0 (100 months)
    to 150 months reaches the age at t = 5, read as a girl; asked for a boy, the latent keeps
    its start instead (the only point of its path read as a boy); not asked, the nearest age."""
    u = np.array([1.0, 0.0])

    def reader(z):
        t = z[:, 0].astype(np.float64)
        return 100.0 + 10.0 * t, np.where(t < 3.0, 0.9, 0.2)

    z0 = np.array([[0.0, 0.0]], np.float32)
    res = steer(z0, u, 10.0, 150.0, reader, steps=6, tolerance=1.0)
    assert np.allclose(res["z"], [[5.0, 0.0]]) and np.allclose(res["male_prob"], [0.2])
    res = steer(z0, u, 10.0, 150.0, reader, steps=6, tolerance=1.0, male=True)
    assert np.allclose(res["z"], [[0.0, 0.0]]) and np.allclose(res["age"], [100.0])
    assert np.allclose(res["male_prob"], [0.9]) and np.allclose(res["moved"], [0.0])
    # asked for a girl, the same path's girl point is kept
    res = steer(z0, u, 10.0, 150.0, reader, steps=6, tolerance=1.0, male=False)
    assert np.allclose(res["z"], [[5.0, 0.0]])


def test_atlas_candidates_are_the_nearest_in_age_of_the_requested_sex():
    """NEAREST_POOL·n latents of the requested sex, nearest the age first."""
    from latentage.analysis.atlas import NEAREST_POOL

    rng = np.random.default_rng(0)
    age = rng.uniform(0, 240, 4000)
    male = rng.uniform(0, 1, 4000)
    for target, is_male in ((48.0, False), (150.0, True)):
        pool = candidates(age, male, target, is_male, 5)
        assert len(set(pool)) == NEAREST_POOL * 5 and np.all((male[pool] >= 0.5) == is_male)
        gaps = np.abs(age[pool] - target)
        assert np.all(np.diff(gaps) >= 0)
        of_sex = np.flatnonzero((male >= 0.5) == is_male)
        assert gaps[-1] == np.sort(np.abs(age[of_sex] - target))[NEAREST_POOL * 5 - 1]


def test_steering_keeps_the_point_nearest_the_target_where_the_reader_turns_back():
    """A reader whose age follows the axis up to 150 months (t = 5) and falls beyond it: a
    request of 200 months cannot be met; each latent keeps the point of its path read nearest
    200 months, not where its last step ended (there the reader says 100 months or less)."""
    u = np.array([1.0, 0.0])

    def reader(z):
        t = z[:, 0].astype(np.float64)
        age = np.where(t <= 5.0, 100.0 + 10.0 * t, 150.0 - 20.0 * (t - 5.0))
        return age, np.full(len(z), 0.9)

    z0 = np.array([[0.0, 0.0], [4.0, 1.0]], np.float32)
    res = steer(z0, u, 10.0, 200.0, reader, steps=6, tolerance=1.0)
    # path of the first: t = 0 → 6 (130 months) → 12 → …; of the second: t = 4 (140) → 10 → …
    assert np.allclose(res["age"], [130.0, 140.0])
    assert np.allclose(res["z"], [[6.0, 0.0], [4.0, 1.0]])
    assert np.allclose(res["moved"], [6.0, 0.0])
    assert res["steps"] == 6
    assert np.all(reader(res["z"])[0] == res["age"])  # the kept age is that of the kept z
    # a reachable target still ends within the tolerance, at its last step
    res = steer(z0, u, 10.0, 130.0, reader, steps=6, tolerance=1.0)
    assert np.all(np.abs(res["age"] - 130.0) <= 1.0)
