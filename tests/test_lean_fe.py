"""The memory-lean fixed-effects engine (analysis.estimators.lean_fe) against pyfixest.

Every estimator that fits through analysis.estimators.fixest gets the same estimates and
standard errors from both engines: the reference is pyfixest 0.60 on the same data, in the
same test (the lean engine absorbs the effects exactly, pyfixest iterates to 1e-10, so they
agree to pyfixest's tolerance). Largest relative differences measured on 6 December 2026 (each
entry against its own size, floored at 1e-6 of the largest entry): estimates and standard
errors of every estimator 1.2e-12; coefficients 1e-11; covariance entries 2.4e-9 (the Poisson
ETWFE with covariates: its covariate x year terms, where pyfixest's demeaner stops at 1e-10);
on the ragged panel (singletons, an all-zero unit and year, weights) 2.1e-10 (cluster score
sums). The tolerance asserted is 1e-8. The engine is chosen by size (LEAN_ROWS), tested at the
threshold; the lean path's estimates cover the simulated city's true effects.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.estimators import fixest, lean_fe
from analysis.estimators.fixest import choose_engine, use_engine
from analysis.estimators.imputation import imputation
from analysis.estimators.poisson import ppml
from analysis.estimators.sun_abraham import sun_abraham
from analysis.estimators.twfe import twfe, twfe_event_study

RTOL = 1e-8
COMMON = dict(unit="village_code", time="year", cohort="cohort", cluster="township_code")
COVARIATES = ["distance_km", "terrain", "distinctive_industry"]


@pytest.fixture(scope="module")
def city():
    from analysis.core.panel import covariate_columns, covariate_year_interactions
    from analysis.core.treatment import attach_treatment
    from analysis.data.synthetic import simulate_city

    c = simulate_city()
    df = attach_treatment(c.panel, c.treatment)
    data, covs = covariate_columns(df, COVARIATES)
    reg, trend = covariate_year_interactions(data, covs)
    return c, data, covs, reg, trend


def close(a, b, rtol=RTOL):
    """Relative agreement, entry by entry; NaN (a reference period's empty SE) must match NaN."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    scale = np.maximum(np.abs(b[ok]), np.max(np.abs(b[ok])) * 1e-6)
    diff = np.max(np.abs(a[ok] - b[ok]) / scale) if ok.any() else 0.0
    assert diff <= rtol, diff


def both(fit):
    """Fit once by pyfixest and once by the lean engine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with use_engine("pyfixest"):
            a = fit()
        with use_engine("lean"):
            b = fit()
    return a, b


def same_result(a, b):
    ta, tb = a.tidy(), b.tidy()
    assert list(ta["term"]) == list(tb["term"])
    assert list(ta["n_obs"]) == list(tb["n_obs"]) and list(ta["n_clusters"]) == list(tb["n_clusters"])
    close(tb["estimate"], ta["estimate"])
    close(tb["std_error"], ta["std_error"])
    close(tb["p_value"], ta["p_value"], rtol=1e-6)
    if a.coefficients is not None:
        assert list(a.coefficients.index) == list(b.coefficients.index)
        close(b.coefficients, a.coefficients)
    if a.vcov is not None:
        close(b.vcov, a.vcov)
    if a.pretrend_test is not None:
        close(b.pretrend_test.statistic, a.pretrend_test.statistic)
        close(b.pretrend_test.p_value, a.pretrend_test.p_value, rtol=1e-6)
    if a.ssc is not None:
        sa, sb = a.ssc.as_dict(), b.ssc.as_dict()
        assert {k: v for k, v in sa.items() if k != "factor"} == {k: v for k, v in sb.items() if k != "factor"}
        close(sb["factor"], sa["factor"], rtol=1e-14)


def test_poisson_etwfe_of_stage_02_equals_pyfixest(city):
    _, data, covs, _, _ = city
    a, b = both(lambda: ppml(data, "criminal_cases", covariates=covs, **COMMON))
    assert a.options["n_units_all_zero_dropped"] > 0  # all-zero villages: dropped before either engine
    same_result(a, b)
    assert a.options["engine"].startswith("pyfixest") and b.options["engine"].startswith(lean_fe.ENGINE)


def test_poisson_event_study_and_its_joint_test_equal_pyfixest(city):
    _, data, _, _, _ = city
    same_result(*both(lambda: ppml(data, "disputes", event_study=True, **COMMON)))


def test_sun_abraham_with_trend_covariates_equals_pyfixest(city):
    _, _, _, reg, trend = city
    same_result(*both(lambda: sun_abraham(reg, "collective_income", control="never", ref=-1, covariates=trend,
                                          **COMMON)))


def test_imputation_estimator_and_its_pretrend_regression_equal_the_sparse_path(city):
    # the lean path replaces both the sparse untreated-outcome model and pyfixest's pre-trend fit
    _, _, _, reg, trend = city
    same_result(*both(lambda: imputation(reg, "collective_income", covariates=trend, pretrends=3, **COMMON)))


def test_imputation_without_covariates_equals_the_sparse_path(city):
    # the specification grid's "none" covariate set: the lean untreated-outcome model had no column to
    # subtract and failed on a national city ("operands could not be broadcast")
    _, data, _, _, _ = city
    same_result(*both(lambda: imputation(data, "collective_income", pretrends=2, **COMMON)))


def test_imputation_drops_the_same_collinear_covariate_on_both_paths(city):
    # a village's distance does not change: collinear with the village effects, dropped by both rules
    _, _, covs, reg, trend = city
    a, b = both(lambda: imputation(reg, "projects", covariates=[trend[0], covs[0], trend[1]], **COMMON))
    assert a.options["covariates_dropped"] == b.options["covariates_dropped"] == [covs[0]]
    same_result(a, b)


def test_twfe_and_its_event_study_equal_pyfixest(city):
    _, data, _, _, _ = city
    same_result(*both(lambda: twfe(data, "collective_income", **COMMON)))
    same_result(*both(lambda: twfe_event_study(data, "collective_income", ref=-1, leads=4, lags=4,
                                               bin_endpoints=True, **COMMON)))


@pytest.fixture(scope="module")
def ragged() -> pd.DataFrame:
    """An unbalanced panel: singleton units and years, an all-zero unit and an all-zero year, weights."""
    rng = np.random.default_rng(7)
    n, T = 300, 6
    df = pd.DataFrame({"unit": np.repeat(np.arange(n), T), "time": np.tile(np.arange(2015, 2015 + T), n)})
    df["cl"] = df["unit"] // 10
    a = np.repeat(rng.normal(0, 0.7, n), T)
    df["d1"] = rng.normal(size=len(df))
    df["d2"] = (rng.random(len(df)) < 0.3).astype(float)
    df["y"] = rng.poisson(np.exp(0.5 + a + 0.2 * df["d1"] - 0.3 * df["d2"])).astype(float)
    df = df.sample(frac=0.8, random_state=3).reset_index(drop=True)  # ragged, rows out of order
    single = pd.DataFrame({"unit": [1000, 1001], "time": [2016, 2017], "cl": [5, 6], "d1": [0.3, -1.0],
                           "d2": [1.0, 0.0], "y": [2.0, 1.0]})
    lone_year = pd.DataFrame({"unit": [3, 4], "time": [2030, 2031], "cl": [0, 0], "d1": [0.1, 0.2],
                              "d2": [0.0, 1.0], "y": [1.0, 3.0]})
    df = pd.concat([df, single, lone_year], ignore_index=True)
    df.loc[df["unit"] == 7, "y"] = 0.0  # an all-zero unit
    df.loc[df["time"] == 2020, "y"] = 0.0  # an all-zero year
    df["w"] = rng.uniform(0.5, 2.0, len(df))
    return df


def test_feols_and_fepois_drop_the_same_rows_as_pyfixest(ragged):
    frame = ragged.drop(columns="w")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fit in (lambda e: fixest.fepois(frame, ["d1", "d2"], 1e-10, 1e-10, engine=e),
                    lambda e: fixest.feols(frame, ["d1", "d2"], engine=e),
                    lambda e: fixest.feols(ragged.rename(columns={"d2": "x0"}), ["d1"], engine=e)):
            a, b = fit("pyfixest"), fit("lean")
            assert a.n_obs == b.n_obs < len(frame)
            assert sorted(a.sample.index) == sorted(b.sample.index)
            assert a.names == b.names
            close(b.coefficients, a.coefficients)
            close(b.vcov, a.vcov)
            close(b.cluster_scores, a.cluster_scores)
            assert a.ssc.K == b.ssc.K and a.ssc.G == b.ssc.G
            if a.fitted is not None:
                order = a.sample.index.get_indexer(b.sample.index)
                close(b.fitted, a.fitted[order])
            assert b.model is None and b.engine == lean_fe.ENGINE


def test_a_subsample_given_by_rows_is_fitted_as_its_copy_would_be(ragged):
    # the imputation estimator's pre-trend regression fits the untreated rows this way (no copy of them)
    rows = (ragged["d1"] > -0.8).to_numpy()  # leaves new singletons behind, besides the ragged panel's own
    frame = ragged.rename(columns={"d2": "x0"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copied = fixest.feols(frame.loc[rows], ["d1"], engine="lean")
        taken = fixest.feols(frame, ["d1"], engine="lean", rows=rows)
        reference = fixest.feols(frame, ["d1"], engine="pyfixest", rows=rows)
    assert taken.n_obs == copied.n_obs == reference.n_obs < rows.sum()
    assert list(taken.sample.index) == list(copied.sample.index)
    assert list(taken.sample.columns) == ["unit", "time", "cl"]
    # the same rows in the same order: the same arithmetic, bit for bit
    assert np.array_equal(taken.coefficients.to_numpy(), copied.coefficients.to_numpy())
    assert np.array_equal(taken.vcov, copied.vcov) and np.array_equal(taken.cluster_scores, copied.cluster_scores)
    assert taken.ssc == copied.ssc
    close(taken.coefficients, reference.coefficients)
    close(taken.vcov, reference.vcov)


def test_a_regressor_collinear_with_the_effects_is_dropped_as_pyfixest_drops_it(ragged):
    frame = ragged.drop(columns="w").assign(by_unit=lambda d: d["unit"] % 3 * 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = fixest.feols(frame, ["d1", "by_unit", "d2"], engine="pyfixest")
        b = fixest.feols(frame, ["d1", "by_unit", "d2"], engine="lean")
    assert a.names == b.names == ["d1", "d2"]
    close(b.coefficients, a.coefficients)


def test_the_engine_switches_at_lean_rows(monkeypatch):
    assert choose_engine(lean_fe.LEAN_ROWS - 1) == "pyfixest"
    assert choose_engine(lean_fe.LEAN_ROWS) == "lean"
    assert choose_engine(10, "lean") == "lean" and choose_engine(10**8, "pyfixest") == "pyfixest"
    with use_engine("lean"):
        assert choose_engine(10) == "lean"
        assert choose_engine(10, "pyfixest") == "pyfixest"
    assert choose_engine(10) == "pyfixest"
    with pytest.raises(ValueError, match="engine must be one of"):
        choose_engine(10, "fast")
    # an estimator's fit takes the lean path once its frame reaches the threshold
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"unit": np.repeat(np.arange(50), 4), "time": np.tile(np.arange(4), 50)})
    df["cl"], df["d"], df["y"] = df["unit"] // 5, rng.normal(size=200), rng.normal(size=200)
    monkeypatch.setattr(lean_fe, "LEAN_ROWS", 200)
    assert fixest.feols(df, ["d"]).engine == lean_fe.ENGINE
    assert fixest.feols(df.iloc[:199], ["d"]).engine.startswith("pyfixest")


def test_lean_path_estimates_cover_the_truth(city):
    c, data, covs, _, _ = city
    ta = c.truth_aggregates
    with warnings.catch_warnings(), use_engine("lean"):
        warnings.simplefilter("ignore")
        res = ppml(data, "criminal_cases", covariates=covs, **COMMON)
    t = ta[(ta["outcome"] == "criminal_cases") & (ta["aggregation"] == "simple") & ta["cadre_type"].isna()].iloc[0]
    r = res.tidy("simple").iloc[0]
    rp = res.tidy("simple_pct").iloc[0]
    assert r["conf_low"] <= t["value"] <= r["conf_high"], (r["estimate"], t["value"])
    assert rp["conf_low"] <= t["value_prop"] <= rp["conf_high"], (rp["estimate"], t["value_prop"])


def test_cell_indicators_are_fitted_from_their_codes_as_pyfixest_fits_their_columns(ragged):
    # one-hot cells (code -1: none) next to dense regressors and a covariate, with weights, singletons
    # and a subsample given by rows: the lean engine never makes the 0/1 columns (fixest.Indicators)
    rng = np.random.default_rng(11)
    frame = ragged.rename(columns={"d2": "x0"})
    codes = np.where(rng.random(len(frame)) < 0.6, rng.integers(0, 5, len(frame)), -1)
    ind = fixest.Indicators(codes, ("c0", "c1", "c2", "c3", "c4"))
    frame = frame.assign(y=frame["y"] + np.append([0.5, -1.0, 2.0, 0.0, 1.5], 0.0)[codes])
    rows = (frame["d1"] > -1.0).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kw in ({}, {"rows": rows}):
            a = fixest.feols(frame, ["d1"], engine="pyfixest", indicators=ind, **kw)
            b = fixest.feols(frame, ["d1"], engine="lean", indicators=ind, **kw)
            dense = fixest.feols(frame.assign(**ind.columns()), [*ind.names, "d1"], engine="lean", **kw)
            assert a.names == b.names == dense.names == ["c0", "c1", "c2", "c3", "c4", "d1", "x0"]
            assert a.n_obs == b.n_obs and a.ssc.K == b.ssc.K and a.ssc.G == b.ssc.G
            for fit in (b, dense):
                close(fit.coefficients, a.coefficients)
                close(fit.vcov, a.vcov)
                close(fit.cluster_scores, a.cluster_scores)


def test_a_cell_collinear_with_the_effects_is_dropped_as_pyfixest_drops_its_column():
    # every unit treated, no binned endpoint: the fully dynamic event study is not identified and
    # one event-time dummy is collinear with the unit and year effects (Borusyak et al. 2024)
    rng = np.random.default_rng(3)
    n, T = 120, 6
    df = pd.DataFrame({"id": np.repeat(np.arange(n), T), "t": np.tile(np.arange(1, T + 1), n)})
    df["g"] = np.repeat(rng.choice([3, 4, 5], n), T)
    df["y"] = rng.normal(size=len(df)) + (df["t"] >= df["g"]) * 1.0
    args = dict(unit="id", time="t", cohort="g", cluster="id", ref=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with use_engine("pyfixest"):
            a = twfe_event_study(df, "y", **args)
        with use_engine("lean"):
            b = twfe_event_study(df, "y", **args)
    assert a.details.dropped == b.details.dropped and len(a.details.dropped) == 1
    same_result(a, b)


def test_nested_is_the_count_of_distinct_pairs():
    rng = np.random.default_rng(5)
    for _ in range(50):
        n_fe = int(rng.integers(1, 30))
        fe = rng.integers(0, n_fe, 200)
        fe[:n_fe] = np.arange(n_fe)  # every level present
        cl = rng.integers(0, 8, n_fe)[fe]  # nested by construction
        if rng.random() < 0.5:
            cl = cl.copy()
            cl[rng.integers(0, 200)] += 1  # one row moved to another cluster: not nested, unless its level has one row
        definition = len(np.unique(np.column_stack([fe, cl]), axis=0)) == n_fe
        assert lean_fe._nested(fe, cl, n_fe) == definition


def test_indicator_codes_are_checked():
    with pytest.raises(ValueError, match=r"must lie in -1\.\.1"):
        fixest.Indicators(np.array([0, 2, -1]), ("a", "b"))
    with pytest.raises(ValueError, match="integer"):
        fixest.Indicators(np.array([0.0, 1.0]), ("a", "b"))
    frame = pd.DataFrame({"y": [1.0, 2.0], "unit": [0, 1], "time": [0, 0], "cl": [0, 1]})
    with pytest.raises(ValueError, match="indicator codes have 3 rows, the frame 2"):
        fixest.feols(frame, [], indicators=fixest.Indicators(np.array([0, 1, -1]), ("a", "b")))


def test_the_untreated_model_reads_row_selected_columns_exactly_as_their_copies():
    # imputation passes the untreated rows' covariates as a RowSelection of the frame's columns (the n0 x k
    # copy was 1.3 GB at national size): the fit, its predictions and its weights must be the copies' bit for bit
    rng = np.random.default_rng(3)
    n_unit, n_time = 300, 6
    unit = np.repeat(np.arange(n_unit), n_time)
    time = np.tile(np.arange(n_time), n_unit)
    cols = [rng.normal(size=len(unit)) for _ in range(3)]
    cols.append(cols[0] + cols[1])  # collinear: dropped by the rank rule in both
    y = rng.normal(size=len(unit)) + 0.5 * cols[0]
    untreated = rng.random(len(unit)) < 0.7
    untreated[time == 0] = True  # every unit and period has an untreated row
    untreated[:n_time] = True
    rows0, rows1 = np.flatnonzero(untreated), np.flatnonzero(~untreated)
    copies0 = [x[rows0] for x in cols]
    copies1 = [x[rows1] for x in cols]
    sel0, sel1 = lean_fe.RowSelection(cols, rows0), lean_fe.RowSelection(cols, rows1)
    w1 = rng.random((len(rows1), 4))
    fits = []
    for c0, c1 in ((copies0, copies1), (sel0, sel1)):
        m = lean_fe.UntreatedModel(unit[rows0], time[rows0], c0, y[rows0], rank_tol=1e-9)
        c1 = [c1[j] for j in m.kept] if isinstance(c1, list) else c1.subset(m.kept)
        fits.append((m.kept, m.b, m.a, m.lev, m.predict(unit[rows0], time[rows0], m.columns),
                     m.predict(unit[rows1], time[rows1], c1), m.weights(unit[rows1], time[rows1], c1, w1)))
    (kept_a, *arrays_a), (kept_b, *arrays_b) = fits
    assert kept_a == kept_b and len(kept_a) == 3
    for a, b in zip(arrays_a, arrays_b, strict=True):
        assert np.array_equal(a, b)
    # and the weights are what they claim: Z0 (Z0'Z0)^-1 Z1' w1, from a dense least-squares design
    d0 = np.column_stack([np.eye(n_unit)[unit[rows0]], np.eye(n_time)[time[rows0]][:, 1:],
                          *(copies0[j] for j in kept_a)])
    d1 = np.column_stack([np.eye(n_unit)[unit[rows1]], np.eye(n_time)[time[rows1]][:, 1:],
                          *(copies1[j] for j in kept_a)])
    dense = d0 @ np.linalg.solve(d0.T @ d0, d1.T @ w1)
    assert np.allclose(arrays_b[-1], dense, rtol=1e-8, atol=1e-10)


def test_the_two_way_solve_in_place_gives_the_same_effects_and_leaves_a_callers_sums_alone():
    # effects() solves in its own sums' array (two U x k arrays held, not five); a caller's sums are not written
    rng = np.random.default_rng(5)
    unit, time = np.repeat(np.arange(40), 5), np.tile(np.arange(5), 40)
    proj = lean_fe._TwoWay(lean_fe._Codes(unit, time, None, factorize=False), rng.random(200) + 0.5)
    r_unit, r_time = rng.normal(size=(40, 3)), rng.normal(size=(5, 3))
    kept = r_unit.copy()
    a, lev = proj.solve(r_unit, r_time)
    assert np.array_equal(r_unit, kept)
    a2, lev2 = proj.solve(r_unit.copy(), r_time, overwrite=True)
    assert np.array_equal(a, a2) and np.array_equal(lev, lev2)
    # the normal equations hold: unit sums and year sums (but the base year) of w (x - a - l) are zero
    x = rng.normal(size=(200, 3))
    a3, l3 = proj.effects(list(x.T))
    resid = proj.w[:, None] * (x - a3[unit] - l3[time])
    assert np.allclose([resid[unit == u].sum(0) for u in range(40)], 0, atol=1e-10)
    assert np.allclose([resid[time == t].sum(0) for t in range(1, 5)], 0, atol=1e-10)
