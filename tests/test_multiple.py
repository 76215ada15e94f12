"""Tests of multiple-testing adjustments (analysis.inference.multiple).

* Properties of the Romano-Wolf stepdown: adjusted >= unadjusted, monotone in the
  stepdown order, equal to the unadjusted p-values for perfectly correlated statistics,
  close to Holm-Šidák for independent ones, FWER near 5% under a global null.
* Agreement with pyfixest 0.60: exactly with its stepdown routine on the same bootstrap
  draws; within Monte Carlo tolerance with ``pf.rwolf`` (a different bootstrap: its own
  Rademacher draws) against our wild bootstrap t-statistics.
* Holm / Bonferroni / Šidák / Holm-Šidák against statsmodels' ``multipletests``.
* The Callaway-Sant'Anna path: influence functions of several outcomes on the default
  synthetic city, the same multipliers for all outcomes.
"""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

import analysis.inference.multiple as mt
from analysis.core.treatment import attach_treatment
from analysis.data.synthetic import simulate_city
from analysis.estimators.callaway_santanna import aggregate, att_gt
from analysis.inference.multiplier import multiplier_bootstrap
from analysis.inference.wild import wild_cluster_bootstrap


def _normal_p(t):
    return 2 * stats.norm.sf(np.abs(np.asarray(t, dtype=float)))


def test_properties_on_random_draws():
    rng = np.random.default_rng(1)
    for _ in range(20):
        k = rng.integers(2, 8)
        L = rng.normal(size=(k, k))
        boot = rng.normal(size=(999, k)) @ L
        boot /= boot.std(axis=0)
        t = rng.normal(size=k) * 2.5
        res = mt.romano_wolf(t, boot)
        tab = res.table
        assert np.all(tab["p_romano_wolf"] >= tab["p_unadjusted"] - 1e-15)
        assert np.all((tab["p_romano_wolf"] > 0) & (tab["p_romano_wolf"] <= 1))
        ordered = tab.sort_values("stepdown_rank")
        assert np.all(np.diff(ordered["p_romano_wolf"]) >= 0)
        assert np.all(np.diff(np.abs(ordered["t_stat"])) <= 0)
        # the first step is the single-step max-t p-value
        first = ordered.iloc[0]
        expect = (1 + np.sum(np.abs(boot).max(axis=1) >= abs(first["t_stat"]))) / 1000
        assert first["p_romano_wolf"] == expect
        assert np.all(tab["p_holm"] >= tab["p_unadjusted"]) and np.all(tab["p_bonferroni"] >= tab["p_holm"])


def test_perfectly_correlated_equals_unadjusted():
    z = np.random.default_rng(2).normal(size=(4999, 1))
    res = mt.romano_wolf([2.5, -1.9, 0.4, 3.3], np.hstack([z, -z, 2 * z / 2, z]))
    np.testing.assert_array_equal(res.table["p_romano_wolf"], res.table["p_unadjusted"])


def test_independent_close_to_holm_sidak():
    # independent N(0, 1) statistics, B = 50,000: RW should match Holm-Šidák on the normal p-values
    # up to Monte Carlo error (measured max difference 0.0021; tolerance 0.006) and be a little
    # below Holm (Bonferroni-based).
    rng = np.random.default_rng(3)
    t = np.array([3.1, 2.6, 2.2, 1.4, 0.3])
    res = mt.romano_wolf(t, rng.normal(size=(50_000, 5)))
    hs = mt.holm_sidak(_normal_p(t))
    assert np.max(np.abs(res.table["p_romano_wolf"] - hs)) < 0.006
    assert np.all(res.table["p_romano_wolf"] <= mt.holm(_normal_p(t)) + 0.006)
    np.testing.assert_allclose(res.table["p_unadjusted"], _normal_p(t), atol=0.006)


def test_fwer_under_global_null():
    # Equicorrelated (rho = 0.6) normal statistics, all nulls true, exact bootstrap distribution
    # (draws from the true law), 600 replications: family-wise rejection at 5% measured 0.055 for
    # RW, 0.173 unadjusted, 0.04 for Holm. Tolerance: RW in [0.025, 0.08] (MC s.e. 0.9 points); the
    # unadjusted tests reject at least one true null far more often.
    rng = np.random.default_rng(4)
    k, rho = 6, 0.6
    C = np.full((k, k), rho) + (1 - rho) * np.eye(k)
    L = np.linalg.cholesky(C)
    any_rw = any_un = any_holm = 0
    for _ in range(600):
        t = L @ rng.normal(size=k)
        boot = rng.normal(size=(499, k)) @ L.T
        tab = mt.romano_wolf(t, boot).table
        any_rw += (tab["p_romano_wolf"] <= 0.05).any()
        any_un += (tab["p_unadjusted"] <= 0.05).any()
        any_holm += (tab["p_holm"] <= 0.05).any()
    assert 0.025 <= any_rw / 600 <= 0.08, any_rw / 600
    assert any_un / 600 > 0.10 and any_holm <= any_rw + 15


def test_identical_to_pyfixest_stepdown_on_same_draws():
    from pyfixest.estimation.post_estimation.multcomp import _get_rwolf_pval

    rng = np.random.default_rng(5)
    for k in (2, 3, 7):
        boot = rng.normal(size=(999, k)) @ rng.normal(size=(k, k))
        t = rng.normal(size=k) * 3
        ours = mt.romano_wolf(t, boot).table["p_romano_wolf"].to_numpy()
        theirs = _get_rwolf_pval(t.copy(), boot.copy())
        np.testing.assert_array_equal(ours, theirs)


def _panel_three_outcomes(seed=6, G=20, per=5, T=6):
    rng = np.random.default_rng(seed)
    n = G * per
    unit = np.repeat(np.arange(n), T)
    yr = np.tile(np.arange(2018, 2018 + T), n)
    cl = unit // per
    g_cl = np.where(rng.random(G) < 0.5, rng.choice([2021, 2022], size=G), 0)
    g = g_cl[cl]
    D = ((g > 0) & (yr >= g)).astype(float)
    common = rng.normal(size=(G, T))[cl, yr - 2018]  # correlates the outcomes within cluster-years
    df = pd.DataFrame({"u": unit, "t": yr, "c": cl, "g": g, "D": D})
    for name, eff in (("y1", 1.5), ("y2", 0.6), ("y3", 0.0)):
        df[name] = rng.normal(size=n)[unit] + common + rng.normal(size=(G, T))[cl, yr - 2018] \
            + rng.normal(size=n * T) + eff * D
    return df


def test_agrees_with_pyfixest_rwolf_within_monte_carlo():
    pytest.importorskip("wildboottest")
    import pyfixest as pf

    df = _panel_three_outcomes()
    outcomes = ["y1", "y2", "y3"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [pf.feols(f"{y} ~ D | u + t", data=df, vcov={"CRV1": "c"}) for y in outcomes]
        theirs = pf.rwolf(fits, "D", reps=1999, seed=11).loc["RW Pr(>|t|)"].to_numpy(float)
    # ours: the same WCR Rademacher bootstrap with the same seed for every outcome, so that every
    # outcome sees the same weights (joint draws); different random numbers from pyfixest's
    boots = [wild_cluster_bootstrap(df, y, "u", "t", "g", cluster="c", B=1999, seed=11, conf_int=False)
             for y in outcomes]
    ours = mt.romano_wolf([b.t_stat for b in boots], np.column_stack([b.t_boot for b in boots]),
                          names=outcomes).table["p_romano_wolf"].to_numpy()
    # Measured: ours [0.0285, 0.083, 0.454] vs pyfixest [0.0285, 0.067, 0.4715]. Tolerance:
    # 4 MC standard errors of a p-value from 1,999 draws (sqrt(p(1-p)/B) <= 0.011) -> 0.045.
    np.testing.assert_allclose(ours, theirs, atol=0.045)


@pytest.fixture(scope="module")
def city_results():
    c = simulate_city()
    panel = attach_treatment(c.panel, c.treatment)
    out = {}
    for y in ("income_per_capita", "collective_income", "criminal_cases", "disputes", "petitions"):
        res = att_gt(panel, y, "village_code", "year", "cohort", control_group="notyet",
                     cluster="township_code")
        out[y] = aggregate(res, "simple")
    return out


def test_cs_outcome_family_on_city(city_results):
    res = mt.romano_wolf_did(city_results, B=1999, seed=20230601)
    tab = res.table.set_index("hypothesis")
    assert list(tab.index) == list(city_results)
    for y, r in city_results.items():
        row = r.tidy().iloc[0]
        assert abs(tab.loc[y, "estimate"] - row["estimate"]) < 1e-12
        assert abs(tab.loc[y, "std_error"] - row["std_error"]) < 1e-12  # clustered analytic SE
        # unadjusted bootstrap p vs the normal p of the analytic SE: Monte Carlo agreement
        assert abs(tab.loc[y, "p_unadjusted"] - row["p_value"]) < 0.03
    assert np.all(tab["p_romano_wolf"] >= tab["p_unadjusted"])
    assert np.all(tab["p_romano_wolf"] <= tab["p_holm"] + 0.01)
    assert res.options["n_clusters"] == 178 and res.B == 1999
    # the draws are the multiplier bootstrap of analysis.inference.multiplier, jointly for all outcomes
    psi = np.column_stack([np.asarray(r.influence)[:, 0] for r in city_results.values()])
    mb = multiplier_bootstrap(psi, n_draws=1999, seed=20230601, clusters=next(iter(city_results.values()))
                              .clusters)
    np.testing.assert_allclose(res.boot_t * tab["std_error"].to_numpy(), mb.draws, rtol=1e-12, atol=0)
    # deterministic
    again = mt.romano_wolf_did(city_results, B=1999, seed=20230601)
    pd.testing.assert_frame_equal(res.table, again.table)


def test_multi_row_results_and_errors(city_results):
    c = simulate_city(seed=1, n_villages=400, n_townships=24)
    small = attach_treatment(c.panel, c.treatment)
    ev = aggregate(att_gt(small, "income_per_capita", "village_code", "year", "cohort",
                          cluster="township_code"), "event")
    res = mt.romano_wolf_did({"income": ev}, B=499, seed=1)
    assert all(h.startswith("income: ") for h in res.table["hypothesis"])
    assert len(res.table) == len(ev.tidy())
    with pytest.raises(ValueError, match="different units"):
        mt.romano_wolf_did({"a": ev, "b": next(iter(city_results.values()))})
    with pytest.raises(ValueError, match="influence"):
        mt.romano_wolf_did([ev.tidy()])
    with pytest.raises(ValueError, match="empty"):
        mt.romano_wolf_did([])
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        mt.romano_wolf([1.0, 2.0], np.zeros((10, 3)))
    with pytest.raises(ValueError, match="finite"):
        mt.romano_wolf([np.nan, 2.0], np.zeros((10, 2)))
    with pytest.raises(ValueError, match="distinct"):
        mt.romano_wolf([1.0, 2.0], np.zeros((10, 2)), names=["a", "a"])
    with pytest.raises(ValueError, match="influence must be"):
        mt.romano_wolf_influence([1.0, 2.0], np.zeros((10, 3)))
    with pytest.raises(ValueError, match="zero standard error"):
        mt.romano_wolf_influence([1.0], np.zeros((10, 1)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mt.holm([0.2, 1.3])


def test_simple_adjustments_match_statsmodels():
    rng = np.random.default_rng(7)
    for _ in range(10):
        p = rng.random(6) ** 3
        for ours, method in ((mt.holm, "holm"), (mt.bonferroni, "bonferroni"), (mt.sidak, "sidak"),
                             (mt.holm_sidak, "holm-sidak")):
            np.testing.assert_allclose(ours(p), multipletests(p, method=method)[1], rtol=1e-12, atol=1e-15)


def test_inputs_not_modified():
    t = np.array([2.0, 1.0])
    boot = np.random.default_rng(0).normal(size=(99, 2))
    t0, b0 = t.copy(), boot.copy()
    mt.romano_wolf(t, boot)
    mt.romano_wolf_influence([0.1, 0.2], boot, B=9, seed=1)
    assert np.array_equal(t, t0) and np.array_equal(boot, b0)


def test_docstring_examples():
    failures, tried = doctest.testmod(mt, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
