"""Tests of the study's small-sample convention (analysis.inference.small_sample).

* The rule itself: G/(G-1), t(G-1), the asymptotic alternative, the HTZ degrees of freedom.
* One convention for every estimator: on one clustered panel, TWFE, Sun-Abraham, BJS,
  Poisson and Callaway-Sant'Anna report intervals with the t(G-1) critical value, and their
  standard errors relate to the ``asymptotic`` ones by the documented factor.
* A reference implementation: TWFE's default interval equals pyfixest's own (fixest's
  default: CRV1 with its factor, t(G-1)).
* Size of the joint tests where the answer is known exactly (Hotelling's F for i.i.d. normal
  clusters), and the ordering of the three tests' p-values. Their size on the synthetic city
  is measured in ``tests/test_calibration.py``.
"""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import analysis.inference.small_sample as ss
from analysis.estimators.callaway_santanna import aggregate, att_gt
from analysis.estimators.imputation import imputation
from analysis.estimators.poisson import ppml
from analysis.estimators.sun_abraham import sun_abraham
from analysis.estimators.twfe import twfe, twfe_event_study
from analysis.inference.small_sample import (
    cluster_factor,
    effective_clusters,
    intervals,
    joint_test,
    regression_vcov,
    t_df,
)

G_TOWNS = 20


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """200 units in 20 towns, 6 years, two cohorts treated by town, count outcome."""
    rng = np.random.default_rng(11)
    n, T = 200, 6
    unit = np.repeat(np.arange(n), T)
    yr = np.tile(np.arange(2018, 2018 + T), n)
    town = unit // (n // G_TOWNS)
    g_town = rng.choice([0, 2021, 2022], size=G_TOWNS, p=[0.4, 0.3, 0.3])
    g = g_town[town]
    post = (g > 0) & (yr >= g)
    a = np.repeat(rng.normal(1.0, 0.5, n), T)
    shock = np.repeat(rng.normal(0, 0.2, G_TOWNS), n // G_TOWNS * T)
    y = rng.poisson(np.exp(a + 0.05 * (yr - 2018) + 0.3 * post + shock))
    return pd.DataFrame({"id": unit, "yr": yr, "town": town, "g": g, "y": y.astype(float)})


def _crit(t: pd.DataFrame) -> np.ndarray:
    ok = t["std_error"].notna() & (t["std_error"] > 0)
    return ((t.loc[ok, "conf_high"] - t.loc[ok, "estimate"]) / t.loc[ok, "std_error"]).to_numpy()


def test_rule_basics():
    assert cluster_factor(9) == 9 / 8 and cluster_factor(9, "asymptotic") == 1.0
    assert t_df(9) == 8 and np.isinf(t_df(9, "asymptotic")) and np.isinf(t_df(1))
    _, hi, p = intervals(np.array([1.0]), np.array([0.5]), df=8)
    assert hi[0] - 1.0 == pytest.approx(0.5 * stats.t.ppf(0.975, 8))
    assert p[0] == pytest.approx(2 * stats.t.sf(2.0, 8))
    lo_n, _, p_n = intervals(1.0, 0.5)
    assert float(lo_n) == pytest.approx(1.0 - 0.5 * stats.norm.ppf(0.975)) and float(p_n) < p[0]
    np.testing.assert_array_equal(regression_vcov(np.eye(2) * 3.0, 1.5, "asymptotic"), np.eye(2) * 2.0)
    np.testing.assert_array_equal(regression_vcov(np.eye(2) * 3.0, 1.5), np.eye(2) * 3.0)
    with pytest.raises(ValueError, match="small_sample must be one of"):
        cluster_factor(9, "cr2")


COMMON = dict(outcome="y", unit="id", time="yr", cohort="g", cluster="town")
# estimator, its keyword arguments, whether its standard error is an influence-function one
# (G/(G-1) alone) rather than a pyfixest fit's (pyfixest's whole factor)
ESTIMATORS = {
    "twfe": (twfe, {}, False),
    "sa": (sun_abraham, {}, False),
    "bjs": (imputation, {"pretrends": 2}, True),
    "ppml": (ppml, {}, False),
    "cs": (att_gt, {"control_group": "notyet"}, True),
}


@pytest.fixture(scope="module")
def fits(panel):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (fun, kw, _) in ESTIMATORS.items():
            out[name] = (fun(panel, **COMMON, **kw), fun(panel, **COMMON, **kw, small_sample="asymptotic"))
        out["twfe_es"] = (twfe_event_study(panel, **COMMON), None)
        out["cs_event"] = (aggregate(out["cs"][0], "event"), None)
        out["cs_simple"] = (aggregate(out["cs"][0], "simple", wild_below=0), None)
    return out


def test_every_estimator_uses_t_with_g_minus_one(fits):
    t_crit = stats.t.ppf(0.975, G_TOWNS - 1)
    for name, (res, _) in fits.items():
        t = res.tidy()
        assert (t["n_clusters"] == G_TOWNS).all() or name == "cs", name  # att_gt rows count a cell's clusters
        np.testing.assert_allclose(_crit(t), t_crit, rtol=1e-10, err_msg=name)
        assert res.options["small_sample"] == "cr1_t" and res.options["t_df"] == G_TOWNS - 1, name
        z = t["estimate"] / t["std_error"]
        ok = z.notna() & (t["std_error"] > 0)
        np.testing.assert_allclose(t.loc[ok, "p_value"], 2 * stats.t.sf(np.abs(z[ok]), G_TOWNS - 1), rtol=1e-9)


def test_factor_relates_the_two_rules(fits):
    f = G_TOWNS / (G_TOWNS - 1)
    for name, (_, _, influence) in ESTIMATORS.items():
        new, old = fits[name]
        tn, to = new.tidy(), old.tidy()
        ratio = tn["std_error"] / to["std_error"]
        want = np.full(len(tn), f if influence else old.ssc.factor)
        if name == "bjs":  # its pre-trend rows come from a pyfixest regression
            want[tn["term"].str.startswith("pre").to_numpy()] = old.options["pretrend_ssc"]["factor"]
        ok = ratio.notna().to_numpy()
        np.testing.assert_allclose(ratio[ok] ** 2, want[ok], rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(_crit(to), stats.norm.ppf(0.975), rtol=1e-10, err_msg=name)
        assert old.options["small_sample"] == "asymptotic"


def test_twfe_interval_equals_pyfixest_own(panel):
    res = twfe(panel, "y", "id", "yr", "g", cluster="town")
    row = res.tidy().iloc[0]
    ref = res.fit.tidy().loc["D"]
    assert row["std_error"] == pytest.approx(float(ref["Std. Error"]), rel=1e-12)
    assert row["conf_low"] == pytest.approx(float(ref["2.5%"]), rel=1e-10)
    assert row["conf_high"] == pytest.approx(float(ref["97.5%"]), rel=1e-10)
    assert row["p_value"] == pytest.approx(float(ref["Pr(>|t|)"]), rel=1e-8, abs=1e-14)


def test_effective_clusters_equal_clusters_for_iid_normal_and_fall_with_unequal_ones():
    rng = np.random.default_rng(0)
    etas = [effective_clusters(rng.normal(size=(100, 4))) for _ in range(200)]
    assert 90 < np.median(etas) <= 99
    scale = np.where(np.arange(100) < 10, 10.0, 1.0)[:, None]  # 10 clusters carry most variance
    etas_u = [effective_clusters(rng.normal(size=(100, 4)) * scale) for _ in range(200)]
    assert np.median(etas_u) < 30
    assert np.isnan(effective_clusters(np.ones((3, 4))))


def test_hotelling_is_exact_for_iid_normal_clusters():
    rng = np.random.default_rng(1)
    G, k, reps = 25, 4, 1500
    rej = {"hotelling": 0, "htz": 0}
    wald = np.empty(reps)
    for r in range(reps):
        z = rng.normal(size=(G, k))
        theta = z.mean(0)
        s = z - theta  # centred cluster scores of the mean, scale 1/G
        V = s.T @ s / G**2 * G / (G - 1)
        for test in rej:
            jt = joint_test(theta, V, s, test=test)
            rej[test] += jt.p_value <= 0.05
        wald[r] = jt.wald * G / (G - 1)  # without the factor: R's W
    rate = {k_: v / reps for k_, v in rej.items()}
    mc = np.sqrt(0.05 * 0.95 / reps)
    assert abs(rate["hotelling"] - 0.05) < 3 * mc, rate
    assert abs(rate["htz"] - 0.05) < 4 * mc, rate
    assert np.mean(stats.chi2.sf(wald, k) <= 0.05) > 0.08  # the chi-square test over-rejects with 25 clusters


def test_htz_is_never_less_conservative_than_hotelling_nor_hotelling_than_chi2():
    """Same W; F(k, eta - k + 1) with eta <= G - 1 has the heavier tail, chi-square the lightest."""
    rng = np.random.default_rng(2)
    G, k = 40, 5
    sd = np.where(np.arange(G) < 8, 4.0, 1.0)[:, None]
    for _ in range(200):
        z = rng.standard_t(4, size=(G, k)) * sd + 0.2
        theta = z.mean(0)
        s = z - theta
        V1 = s.T @ s / G**2 * G / (G - 1)
        p = {t: joint_test(theta, V1 if t != "wald_chi2" else s.T @ s / G**2, s, test=t).p_value
             for t in ("htz", "hotelling", "wald_chi2")}
        assert p["htz"] >= p["hotelling"] - 1e-12 >= p["wald_chi2"] - 2e-12, p


def test_joint_test_fields_and_errors():
    s = np.random.default_rng(3).normal(size=(30, 2))
    V = s.T @ s / 900
    jt = joint_test([0.1, 0.2], V, s, test="wald_chi2")
    assert jt.statistic == jt.wald and np.isinf(jt.df_denominator) and jt.df == 2
    assert jt.p_value == pytest.approx(stats.chi2.sf(jt.wald, 2))
    h = joint_test([0.1, 0.2], V, s, test="hotelling")
    assert h.df_denominator == 30 - 2 and h.effective_clusters == effective_clusters(s)  # a diagnostic
    with pytest.raises(ValueError, match="test must be one of"):
        joint_test([0.1, 0.2], V, s, test="f")
    with pytest.raises(ValueError, match="needs the cluster sums"):
        joint_test([0.1, 0.2], V, None, test="htz", n_clusters=30)
    with pytest.raises(ValueError, match="vcov must be 3x3"):
        joint_test([0.1, 0.2, 0.3], V, s)
    with pytest.warns(UserWarning, match="singular"):
        assert np.isnan(joint_test([0.1, 0.2], np.zeros((2, 2)), s).p_value)


def test_doctests():
    failures, tried = doctest.testmod(ss)
    assert tried > 0 and failures == 0
