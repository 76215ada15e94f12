"""Tests of the pre-trend power analysis (``analysis.inference.pretrends``, Roth 2022).

* published numbers: the He & Wang (2017) example of the Stata ``pretrends`` README (exact
  normal critical value) and of the R ``pretrends`` README (critical value 1.96), with the
  coefficients and covariance stored in the Stata package (provenance in
  ``tests/reference/honestdid/README.md``);
* known truth by simulation: the Monte Carlo rejection rate at the computed slope is the
  target power, and the mean of the estimates among draws that pass the pre-test is the
  reported conditional mean (one ``SeedSequence``);
* properties: power increasing in the slope, closed forms in one dimension, results from an
  event study, input validation.
"""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.estimators.callaway_santanna import aggregate, att_gt
from analysis.inference import pretrends
from analysis.inference.pretrends import (
    pretest_pass_mean,
    pretrend_power,
    pretrend_power_from_result,
    pretrends_analysis,
    rejection_probability,
)
from analysis.paths import REFERENCE_DIR

REF = REFERENCE_DIR / "honestdid"
SEED = np.random.SeedSequence(20220305)
DRAW_SEEDS = SEED.spawn(4)


@pytest.fixture(scope="module")
def he_wang():
    t = pd.read_csv(REF / "he_wang_eventstudy.csv")
    b = t["beta"].to_numpy()
    S = t.filter(regex=r"^s\d").to_numpy()
    rel = t["event_time"].to_numpy(float) + 1.0  # reference period -1
    return b, S, rel


@pytest.fixture(scope="module")
def published():
    return pd.read_csv(REF / "he_wang_published.csv")


def _pub(published, source, trend, quantity):
    q = published.query("source == @source and trend == @trend and quantity == @quantity")
    return q["value"].to_numpy(float), q["event_time"].to_numpy(float)


# ----------------------------------------------------------------------------------
# published numbers
# ----------------------------------------------------------------------------------
def test_he_wang_stata(he_wang, published):
    """Stata's bisection and multivariate normal integration are precise: match to ~1e-7."""
    b, S, rel = he_wang
    slope = pretrend_power(S[:3, :3], 0.05, 0.5, rel[:3])
    ref_slope = _pub(published, "stata_readme", "linear_power50", "slope")[0][0]
    assert abs(slope - ref_slope) < 1e-6 * ref_slope
    a = pretrends_analysis(b, S, 3, rel, slope=slope)
    for name, attr in (("power", "power"), ("bayes_factor", "bayes_factor"),
                       ("likelihood_ratio", "likelihood_ratio")):
        assert abs(getattr(a, attr) - _pub(published, "stata_readme", "linear_power50", name)[0][0]) < 1e-6
    mean, _ = _pub(published, "stata_readme", "linear_power50", "mean_after_pretest")
    np.testing.assert_allclose(a.table["mean_after_pretest"], mean, atol=1e-6)  # 7 printed decimals
    q = pretrends_analysis(b, S, 3, rel, delta=0.024 * rel**2)
    for name in ("power", "bayes_factor", "likelihood_ratio"):
        assert abs(getattr(q, name) - _pub(published, "stata_readme", "quadratic", name)[0][0]) < 1e-6


def test_he_wang_r(he_wang, published):
    """R uses the critical value 1.96, uniroot (tolerance 1.2e-4 in the slope) and pmvnorm
    (absolute error 1e-3); its printed numbers are reproduced within those tolerances."""
    b, S, rel = he_wang
    slope_r = _pub(published, "r_readme", "linear_power50", "slope")[0][0]
    slope = pretrend_power(S[:3, :3], 0.05, 0.5, rel[:3], threshold=1.96)
    assert abs(slope - slope_r) < 1.3e-4
    a = pretrends_analysis(b, S, 3, rel, slope=slope_r, threshold=1.96)  # at R's slope
    assert abs(a.power - _pub(published, "r_readme", "linear_power50", "power")[0][0]) < 1e-3
    assert abs(a.bayes_factor - _pub(published, "r_readme", "linear_power50", "bayes_factor")[0][0]) < 2e-3
    lr = _pub(published, "r_readme", "linear_power50", "likelihood_ratio")[0][0]
    assert abs(a.likelihood_ratio - lr) < 1e-6
    mean, _ = _pub(published, "r_readme", "linear_power50", "mean_after_pretest")
    np.testing.assert_allclose(a.table["mean_after_pretest"], mean, atol=1e-4)
    q = pretrends_analysis(b, S, 3, rel, delta=0.024 * rel**2, threshold=1.96)
    assert abs(q.power - _pub(published, "r_readme", "quadratic", "power")[0][0]) < 1e-3
    assert abs(q.likelihood_ratio - _pub(published, "r_readme", "quadratic", "likelihood_ratio")[0][0]) < 1e-6


# ----------------------------------------------------------------------------------
# simulation
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("test", ["individual", "wald"])
@pytest.mark.parametrize("power", [0.5, 0.8])
def test_monte_carlo_rejection_rate(he_wang, test, power):
    _, S, rel = he_wang
    Spre, t = S[:3, :3], rel[:3]
    slope = pretrend_power(Spre, 0.05, power, t, test=test)
    n = 200_000
    rng = np.random.default_rng(DRAW_SEEDS[0 if test == "individual" else 1])
    draws = rng.multivariate_normal(slope * t, Spre, size=n)
    if test == "individual":
        reject = np.any(np.abs(draws) > stats.norm.ppf(0.975) * np.sqrt(np.diag(Spre)), axis=1)
    else:
        reject = np.einsum("ij,jk,ik->i", draws, np.linalg.inv(Spre), draws) > stats.chi2.ppf(0.95, 3)
    assert abs(reject.mean() - power) < 4 * np.sqrt(power * (1 - power) / n)


@pytest.mark.parametrize("test", ["individual", "wald"])
def test_monte_carlo_mean_after_pretest(he_wang, test):
    """The bias of every coefficient given that the pre-test is passed (no treatment effect)."""
    b, S, rel = he_wang
    slope = pretrend_power(S[:3, :3], 0.05, 0.5, rel[:3], test=test)
    a = pretrends_analysis(b, S, 3, rel, slope=slope, test=test)
    n = 200_000
    rng = np.random.default_rng(DRAW_SEEDS[2 if test == "individual" else 3])
    draws = rng.multivariate_normal(slope * rel, S, size=n)
    pre = draws[:, :3]
    if test == "individual":
        passed = np.all(np.abs(pre) <= stats.norm.ppf(0.975) * np.sqrt(np.diag(S[:3, :3])), axis=1)
    else:
        passed = np.einsum("ij,jk,ik->i", pre, np.linalg.inv(S[:3, :3]), pre) <= stats.chi2.ppf(0.95, 3)
    assert abs(passed.mean() - (1 - a.power)) < 4 * np.sqrt(0.25 / n)
    mc_mean = draws[passed].mean(axis=0)
    mc_se = draws[passed].std(axis=0) / np.sqrt(passed.sum())
    assert np.all(np.abs(mc_mean - a.table["mean_after_pretest"].to_numpy()) < 4 * mc_se)
    # the trend itself is the unconditional bias
    np.testing.assert_allclose(a.table["delta"], slope * rel)


# ----------------------------------------------------------------------------------
# properties and closed forms
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("test", ["individual", "wald"])
def test_power_increases_with_slope(he_wang, test):
    _, S, rel = he_wang
    p = [rejection_probability(g * rel[:3], S[:3, :3], test=test) for g in np.linspace(0, 0.15, 12)]
    assert np.all(np.diff(p) > 0)
    size = rejection_probability(np.zeros(3), S[:3, :3], test=test)
    assert p[0] == pytest.approx(size)
    if test == "wald":
        assert size == pytest.approx(0.05, abs=1e-12)
    else:
        assert 0.05 < size < 0.15  # several individual tests: size above alpha
    # the sign of the slope does not matter
    assert rejection_probability(-0.05 * rel[:3], S[:3, :3], test=test) == pytest.approx(
        rejection_probability(0.05 * rel[:3], S[:3, :3], test=test), abs=1e-6)


def test_one_pre_period_closed_forms():
    """One pre-period, t = -1, variance 4: power(g) = P(|N(-g, 4)| > 2 z)."""
    z = stats.norm.ppf(0.975)
    for p in (0.5, 0.8):
        g = pretrend_power([[4.0]], 0.05, p)
        assert stats.norm.sf(z - g / 2) + stats.norm.cdf(-z - g / 2) == pytest.approx(p, abs=1e-10)
        assert pretrend_power([[4.0]], 0.05, p, test="wald") == pytest.approx(g, rel=1e-9)
    # truncated normal mean in one dimension
    m = pretest_pass_mean([-1.0], [[4.0]])
    a, bb = (-2 * z + 1) / 2, (2 * z + 1) / 2
    assert m[0] == pytest.approx(stats.truncnorm.mean(a, bb, loc=-1.0, scale=2.0), abs=1e-9)
    assert pretest_pass_mean([-1.0], [[4.0]], test="wald")[0] == pytest.approx(m[0], abs=1e-9)


def test_slope_80_exceeds_slope_50(he_wang):
    _, S, rel = he_wang
    for test in ("individual", "wald"):
        assert pretrend_power(S[:3, :3], power=0.8, t=rel[:3], test=test) > pretrend_power(
            S[:3, :3], power=0.5, t=rel[:3], test=test)


def test_from_event_study_result():
    mpdta = pd.read_csv(REFERENCE_DIR / "mpdta" / "mpdta.csv")
    es = aggregate(att_gt(mpdta, "lemp", "countyreal", "year", "first.treat",
                          base_period="universal"), "event")
    before = es.table.copy()
    out = pretrend_power_from_result(es)
    pd.testing.assert_frame_equal(es.table, before)
    assert list(out.columns) == ["power", "test", "slope", "event_time", "bias", "bias_given_pass"]
    s50 = out.query("power == 0.5")["slope"].iloc[0]
    s80 = out.query("power == 0.8")["slope"].iloc[0]
    assert 0 < s50 < s80
    # event times -4..3 with reference -1: post coefficient e has t = e + 1
    np.testing.assert_allclose(out["bias"], out["slope"] * (out["event_time"] + 1))
    V = es.vcov[:3, :3]
    assert s50 == pytest.approx(pretrend_power(V, 0.05, 0.5, [-3, -2, -1]), rel=1e-10)


# ----------------------------------------------------------------------------------
# input validation
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: pretrend_power(np.ones((2, 3))), "square"),
        (lambda: pretrend_power([[1.0, 2.0], [2.0, 1.0]]), "positive definite"),
        (lambda: pretrend_power([[1.0, 0.2], [0.3, 1.0]]), "symmetric"),
        (lambda: pretrend_power(np.eye(2), power=0.01), "not above the size"),
        (lambda: pretrend_power(np.eye(2), power=1.0), "power must be"),
        (lambda: pretrend_power(np.eye(2), t=[-1.0]), "one finite entry per pre-period"),
        (lambda: pretrend_power(np.eye(2), t=[-1.0, 0.0]), "cannot be 0"),
        (lambda: pretrend_power(np.eye(2), test="joint"), "test must be one of"),
        (lambda: pretrend_power(np.eye(2), alpha=0.0), "alpha"),
        (lambda: rejection_probability([0.0], np.eye(2)), "delta_pre must have 2"),
        (lambda: pretrends_analysis([0.0, 1.0], np.eye(2), 1), "exactly one of delta and slope"),
        (lambda: pretrends_analysis([0.0, 1.0], np.eye(3), 1, slope=0.1), "sigma must be 2x2"),
        (lambda: pretrends_analysis([0.0, 1.0], np.eye(2), 3, slope=0.1), "num_pre"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_doctests():
    failed, _ = doctest.testmod(pretrends, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failed == 0
