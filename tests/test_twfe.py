"""Tests of the TWFE benchmarks (static DiD and event study).

Three kinds of checks:

* agreement with an independent implementation written here in numpy (alternating
  projections + OLS + CRV1 sandwich with the documented small-sample factor), on
  mpdta (tests/reference/mpdta, see its README for provenance) and on seeded
  simulated panels, and with statsmodels OLS on explicit unit and year dummies;
* known truth from a seeded simulation (constant effect recovered; the sign of the
  bias under staggered, growing effects);
* bad calls raise ``ValueError``; the caller's frame is never mutated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.estimators.twfe import twfe, twfe_event_study

MPDTA = Path(__file__).parent / "reference" / "mpdta" / "mpdta.csv"
TOL = 1e-8


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return pd.read_csv(MPDTA)


def simulate(
    seed: int,
    n_units: int = 400,
    years: tuple[int, int] = (2016, 2023),
    cohorts: tuple[int, ...] = (2018, 2020, 2022, 0),
    probs: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25),
    n_towns: int = 40,
    effect=lambda g, e: 1.0,
    unbalanced: float = 0.0,
) -> pd.DataFrame:
    """Village-style panel: unit and year effects, township-year shocks, known effects."""
    rng = np.random.default_rng(seed)
    yrs = np.arange(years[0], years[1] + 1)
    town = rng.integers(0, n_towns, n_units)
    g = rng.choice(np.asarray(cohorts), size=n_units, p=np.asarray(probs))
    df = pd.DataFrame({
        "vid": np.repeat([f"v{i:04d}" for i in range(n_units)], len(yrs)),
        "yr": np.tile(yrs, n_units),
        "town": np.repeat([f"t{t:03d}" for t in town], len(yrs)),
        "g": np.repeat(g, len(yrs)),
    })
    a = np.repeat(rng.normal(0, 1, n_units) - 0.5 * (g > 0), len(yrs))
    lam = 0.3 * (df["yr"].to_numpy() - years[0])
    shock = rng.normal(0, 0.3, (n_towns, len(yrs)))[np.repeat(town, len(yrs)), df["yr"] - years[0]]
    treated = (df["g"] > 0) & (df["yr"] >= df["g"])
    tau = np.array([effect(gg, yy - gg) if d else 0.0 for gg, yy, d in zip(df["g"], df["yr"], treated, strict=True)])
    df["x"] = rng.normal(0, 1, len(df)) + 0.2 * treated
    df["w"] = np.repeat(rng.uniform(0.5, 2.0, n_units), len(yrs))
    df["y"] = a + lam + shock + tau + 0.5 * df["x"] + rng.normal(0, 0.5, len(df))
    df["tau"] = tau
    if unbalanced:
        df = df.loc[rng.uniform(size=len(df)) > unbalanced].reset_index(drop=True)
    return df


# --- independent implementation ----------------------------------------------------------


def within(m: np.ndarray, fe: list[np.ndarray], w: np.ndarray, tol: float = 1e-14) -> np.ndarray:
    """Weighted two-way within transformation by alternating projections."""
    out = np.array(m, dtype=float, copy=True)
    if out.ndim == 1:
        out = out[:, None]
    for _ in range(100_000):
        delta = 0.0
        for f in fe:
            sw = np.bincount(f, weights=w)
            for j in range(out.shape[1]):
                mean = np.bincount(f, weights=w * out[:, j]) / sw
                out[:, j] -= mean[f]
                delta = max(delta, float(np.max(np.abs(mean))))
        if delta < tol:
            return out
    raise RuntimeError("no convergence")


def ols_crv1(y, X, cl, k_total):
    """OLS and CRV1 with c = G/(G-1)*(N-1)/(N-K)."""
    xtx = X.T @ X
    beta = np.linalg.solve(xtx, X.T @ y)
    u = y - X @ beta
    codes = pd.factorize(cl)[0]
    G = codes.max() + 1
    scores = np.column_stack([np.bincount(codes, weights=X[:, j] * u, minlength=G) for j in range(X.shape[1])])
    bread = np.linalg.inv(xtx)
    n = len(y)
    c = G / (G - 1) * (n - 1) / (n - k_total)
    return beta, c * bread @ (scores.T @ scores) @ bread


def manual_twfe(df, y, unit, time, regressors, cluster, weights=None):
    """Independent TWFE: within transform, OLS, CRV1; K counted by the documented rule."""
    u = pd.factorize(df[unit])[0]
    t = pd.factorize(df[time])[0]
    w = np.ones(len(df)) if weights is None else df[weights].to_numpy(float)
    Z = within(np.column_stack([df[y].to_numpy(float), df[regressors].to_numpy(float)]), [u, t], w)
    sw = np.sqrt(w)
    yy, X = Z[:, 0] * sw, Z[:, 1:] * sw[:, None]
    nested = (df.groupby(unit)[cluster].nunique() == 1).all()
    n_u, n_t, k = u.max() + 1, t.max() + 1, len(regressors)
    k_total = k + n_t if nested else k + n_u + n_t - 1
    return ols_crv1(yy, X, df[cluster].to_numpy(), k_total)


def treat_dummy(df, g="g", t="yr"):
    return ((df[g] > 0) & (df[t] >= df[g])).astype(float)


# --- agreement ---------------------------------------------------------------------------


def test_static_matches_numpy_on_mpdta(mpdta):
    res = twfe(mpdta, "lemp", "countyreal", "year", "first.treat")
    row = res.tidy().iloc[0]
    df = mpdta.assign(D=treat_dummy(mpdta, "first.treat", "year"))
    beta, V = manual_twfe(df, "lemp", "countyreal", "year", ["D"], "countyreal")
    assert abs(row["estimate"] - beta[0]) < TOL
    assert abs(row["std_error"] - np.sqrt(V[0, 0])) < TOL
    # published-style check: TWFE on mpdta is -0.0365 (e.g. fixest, Callaway-Sant'Anna)
    assert row["estimate"] == pytest.approx(-0.036549, abs=1e-6)
    assert (row["n_obs"], row["n_units"], row["n_clusters"]) == (2500, 500, 500)
    assert res.options["ssc"]["K"] == 1 + 5  # k regressors + T year effects


@pytest.mark.parametrize("cluster", ["town", "vid"])
def test_static_matches_numpy_simulated(cluster):
    df = simulate(1, effect=lambda g, e: 1.0 + 0.3 * e)
    df["D"] = treat_dummy(df)
    res = twfe(df, "y", "vid", "yr", "g", cluster=cluster, covariates=["x"])
    beta, V = manual_twfe(df, "y", "vid", "yr", ["D", "x"], cluster)
    est = res.tidy().iloc[0]
    assert abs(est["estimate"] - beta[0]) < TOL
    assert abs(est["std_error"] - np.sqrt(V[0, 0])) < TOL
    coefs = res.coefficients
    assert abs(coefs["x0"] - beta[1]) < TOL
    assert est["n_clusters"] == df[cluster].nunique()


def test_static_matches_numpy_weighted_unbalanced():
    df = simulate(2, unbalanced=0.15, effect=lambda g, e: 0.5 + 0.1 * e)
    df["D"] = treat_dummy(df)
    res = twfe(df, "y", "vid", "yr", "g", cluster="town", weights="w")
    beta, V = manual_twfe(df, "y", "vid", "yr", ["D"], "town", weights="w")
    est = res.tidy().iloc[0]
    assert abs(est["estimate"] - beta[0]) < TOL
    assert abs(est["std_error"] - np.sqrt(V[0, 0])) < TOL


def test_nonnested_cluster_counts_all_fixed_effects():
    # Clusters that cut across units: unit effects are not nested, K = k + U + T - 1.
    df = simulate(3, n_units=120)
    df["D"] = treat_dummy(df)
    df["cut"] = (pd.factorize(df["vid"])[0] + df["yr"]) % 9
    res = twfe(df, "y", "vid", "yr", "g", cluster="cut")
    assert res.options["ssc"]["K"] == 1 + 120 + 8 - 1
    assert res.options["ssc"]["unit_fe_nested_in_clusters"] is False
    _, V = manual_twfe(df, "y", "vid", "yr", ["D"], "cut")
    assert abs(res.tidy()["std_error"].iloc[0] - np.sqrt(V[0, 0])) < TOL


def test_static_matches_statsmodels_dummies():
    """Statsmodels' cluster correction counts every dummy: K_full = k + U + T - 1.

    pyfixest's default counts the unit effects nested in the clusters once: K = k + T.
    The two agree when (a) pyfixest is told to count all fixed effects
    (``ssc(k_fixef="full")``), or (b) statsmodels' SE is rescaled by
    sqrt((N - K_full) / (N - K)).
    """
    import pyfixest as pf
    import statsmodels.api as sm

    df = simulate(4, n_units=150, n_towns=25, effect=lambda g, e: 1.0 + 0.2 * e)
    df["D"] = treat_dummy(df)
    dummies = pd.get_dummies(df[["vid", "yr"]].astype(str), drop_first=True, dtype=float)
    X = sm.add_constant(pd.concat([df[["D"]], dummies], axis=1))
    sm_fit = sm.OLS(df["y"], X).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(df["town"])[0]})
    res = twfe(df, "y", "vid", "yr", "g", cluster="town")
    est = res.tidy().iloc[0]
    assert abs(est["estimate"] - sm_fit.params["D"]) < TOL
    n, n_u, n_t = len(df), df["vid"].nunique(), df["yr"].nunique()
    k_full, k_nested = 1 + n_u + n_t - 1, 1 + n_t
    assert res.options["ssc"]["K"] == k_nested
    # (b) rescale statsmodels to the nested count
    assert abs(est["std_error"] - sm_fit.bse["D"] * np.sqrt((n - k_full) / (n - k_nested))) < TOL
    # (a) pyfixest with every fixed effect counted equals statsmodels' default
    full = pf.feols("y ~ D | vid + yr", data=df, vcov={"CRV1": "town"}, ssc=pf.ssc(k_fixef="full"))
    assert abs(float(full.se().iloc[0]) - sm_fit.bse["D"]) < TOL


def test_event_study_matches_numpy(mpdta):
    # fully dynamic on mpdta
    res = twfe_event_study(mpdta, "lemp", "countyreal", "year", "first.treat")
    t = res.tidy("event")
    e = (mpdta["year"] - mpdta["first.treat"]).where(mpdta["first.treat"] > 0)
    evs = [v for v in sorted(e.dropna().unique()) if v != -1]
    df = mpdta.copy()
    cols = []
    for v in evs:
        df[f"d{v}"] = (e == v).astype(float)
        cols.append(f"d{v}")
    beta, V = manual_twfe(df, "lemp", "countyreal", "year", cols, "countyreal")
    got = t.set_index("event_time")
    assert got.loc[-1, "estimate"] == 0 and np.isnan(got.loc[-1, "std_error"])
    assert "(ref)" in got.loc[-1, "term"]
    for j, v in enumerate(evs):
        assert abs(got.loc[int(v), "estimate"] - beta[j]) < TOL
        assert abs(got.loc[int(v), "std_error"] - np.sqrt(V[j, j])) < TOL
    assert list(res.vcov.index) == [int(v) for v in evs]


def test_event_study_binned_matches_numpy():
    df = simulate(5, effect=lambda g, e: 0.5 * (e + 1))
    res = twfe_event_study(df, "y", "vid", "yr", "g", leads=3, lags=2, cluster="town")
    e = (df["yr"] - df["g"]).where(df["g"] > 0).clip(-3, 2)
    evs = [-3, -2, 0, 1, 2]
    work = df.copy()
    for v in evs:
        work[f"d{v}"] = (e == v).astype(float)
    beta, V = manual_twfe(work, "y", "vid", "yr", [f"d{v}" for v in evs], "town")
    got = res.tidy().set_index("event_time")
    assert got.loc[-3, "term"] == "e<=-3" and got.loc[2, "term"] == "e>=2"
    for j, v in enumerate(evs):
        assert abs(got.loc[v, "estimate"] - beta[j]) < TOL
        assert abs(got.loc[v, "std_error"] - np.sqrt(V[j, j])) < TOL
    # bin_endpoints=False drops treated-unit rows outside the window
    res2 = twfe_event_study(df, "y", "vid", "yr", "g", leads=3, lags=2, bin_endpoints=False)
    raw_e = (df["yr"] - df["g"]).where(df["g"] > 0)
    assert res2.tidy()["n_obs"].iloc[0] == int((~((raw_e < -3) | (raw_e > 2))).sum())


# --- known truth -------------------------------------------------------------------------


def test_constant_effect_recovered():
    df = simulate(11, effect=lambda g, e: 2.0)
    row = twfe(df, "y", "vid", "yr", "g", cluster="town", covariates="x").tidy().iloc[0]
    assert row["conf_low"] <= 2.0 <= row["conf_high"]
    assert row["estimate"] == pytest.approx(2.0, abs=0.1)


def test_event_study_constant_effect_flat_pretrends():
    df = simulate(12, effect=lambda g, e: 2.0)
    t = twfe_event_study(df, "y", "vid", "yr", "g", cluster="town").tidy()
    pre = t[(t["event_time"] < -1)]
    post = t[t["event_time"] >= 0]
    assert ((pre["conf_low"] <= 0) & (pre["conf_high"] >= 0)).all()
    assert ((post["conf_low"] <= 2.0) & (post["conf_high"] >= 2.0)).all()


def test_growing_staggered_effects_bias_twfe_down():
    """Effects that grow with time since adoption: early adopters' growing effects are
    differenced out when they serve as controls, so TWFE falls below the ATT."""
    df = simulate(13, cohorts=(2018, 2021, 0), probs=(0.45, 0.45, 0.10), effect=lambda g, e: 0.5 * (e + 1))
    true_att = df.loc[df["tau"] != 0, "tau"].mean()
    row = twfe(df, "y", "vid", "yr", "g", cluster="town").tidy().iloc[0]
    assert row["conf_high"] < true_att
    assert row["estimate"] < 0.75 * true_att


# --- bad calls and mutation --------------------------------------------------------------


def test_caller_frame_not_mutated(mpdta):
    before = mpdta.copy(deep=True)
    twfe(mpdta, "lemp", "countyreal", "year", "first.treat", covariates="lpop")
    twfe_event_study(mpdta, "lemp", "countyreal", "year", "first.treat", leads=2, lags=2)
    pd.testing.assert_frame_equal(mpdta, before)


def test_bad_calls(mpdta):
    with pytest.raises(ValueError, match="columns not in data"):
        twfe(mpdta, "nope", "countyreal", "year", "first.treat")
    with pytest.raises(ValueError, match="no treated observations"):
        twfe(mpdta.assign(g=0), "lemp", "countyreal", "year", "g")
    bad = mpdta.assign(D=treat_dummy(mpdta, "first.treat", "year") * 2)
    with pytest.raises(ValueError, match="binary"):
        twfe(bad, "lemp", "countyreal", "year", "first.treat", treatment="D")
    off = mpdta.assign(D=treat_dummy(mpdta, "first.treat", "year"))
    off.loc[off.index[0], "D"] = 1 - off.loc[off.index[0], "D"]
    with pytest.raises(ValueError, match="disagrees"):
        twfe(off, "lemp", "countyreal", "year", "first.treat", treatment="D")
    vary = mpdta.copy()
    vary.loc[vary.index[0], "first.treat"] = 2005
    with pytest.raises(ValueError, match="varies within"):
        twfe(vary, "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(ValueError, match="duplicate"):
        twfe(pd.concat([mpdta, mpdta.head(3)]), "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(ValueError, match="must be numeric"):
        twfe(mpdta.assign(s="a"), "s", "countyreal", "year", "first.treat")
    with pytest.raises(ValueError, match="negative"):
        twfe(mpdta.assign(g=-mpdta["first.treat"]), "lemp", "countyreal", "year", "g")
    with pytest.raises(ValueError, match="DataFrame"):
        twfe(mpdta.to_dict(), "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(ValueError, match="outside the event window"):
        twfe_event_study(mpdta, "lemp", "countyreal", "year", "first.treat", ref=-6, leads=3)
    with pytest.raises(ValueError, match="binned endpoint"):
        twfe_event_study(mpdta, "lemp", "countyreal", "year", "first.treat", ref=-2, leads=2)
    with pytest.raises(ValueError, match="non-negative integer"):
        twfe_event_study(mpdta, "lemp", "countyreal", "year", "first.treat", lags=1.5)


def test_missing_outcome_rows_dropped_and_counted(mpdta):
    df = mpdta.copy()
    df.loc[df.index[:7], "lemp"] = np.nan
    res = twfe(df, "lemp", "countyreal", "year", "first.treat")
    assert res.options["n_dropped_missing"] == 7
    assert res.tidy()["n_obs"].iloc[0] <= 2500 - 7
