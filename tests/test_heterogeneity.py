"""Tests of the subgroup and cohort heterogeneity estimators and their equality tests.

* known truth: subgroup effects recovered on seeded simulations; the equality test
  rejects when effects differ and has about its nominal size when they do not; the
  by-cadre-type income effects of the synthetic city cover ``truth_aggregates``;
* internal consistency: one subgroup reproduces ``aggregate(att_gt(...), "simple")``
  exactly; the joint covariance from stacked influence functions equals a direct
  computation (the variance of the difference of two subgroup ATTs that share their
  never-treated comparison units, where the control term cancels);
* bad calls raise ``ValueError``; the caller's frame is never mutated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.estimators.callaway_santanna import aggregate, att_gt
from analysis.estimators.heterogeneity import baseline_split, by_cohort, by_group, equality_test

SEED = 20230601


def simulate(
    seed: int,
    n: int = 400,
    years: tuple[int, int] = (2018, 2023),
    cohorts: tuple[int, ...] = (2020, 2022, 0),
    probs: tuple[float, ...] = (0.3, 0.3, 0.4),
    effect: dict[str, float] | None = None,
    n_towns: int = 40,
) -> pd.DataFrame:
    """Linear panel: unit and year effects, township-year shocks, constant effects by subgroup."""
    effect = {"A": 2.0, "B": 0.0} if effect is None else effect
    rng = np.random.default_rng(seed)
    yrs = np.arange(years[0], years[1] + 1)
    T = len(yrs)
    g = rng.choice(np.asarray(cohorts), n, p=np.asarray(probs))
    kind = rng.choice(np.array(sorted(effect)), n)
    town = rng.integers(0, n_towns, n)
    df = pd.DataFrame({"vid": np.repeat(np.arange(n), T), "yr": np.tile(yrs, n), "g": np.repeat(g, T),
                       "kind": np.repeat(np.where(g > 0, kind, "none"), T), "town": np.repeat(town, T)})
    post = (df["g"] > 0) & (df["yr"] >= df["g"])
    tau = df["kind"].map(effect).fillna(0.0).to_numpy() * post
    shock = rng.normal(0, 0.3, (n_towns, T))[np.repeat(town, T), df["yr"] - years[0]]
    df["y"] = (np.repeat(rng.normal(0, 1, n), T) + 0.2 * (df["yr"] - years[0]) + shock + tau
               + rng.normal(0, 1, len(df)))
    df["base"] = np.repeat(rng.normal(0, 1, n), T)
    return df


def rows(res) -> pd.DataFrame:
    return res.tidy("group_by").set_index("term")


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return simulate(SEED)


def test_known_truth_and_rejection(panel):
    res = by_group(panel, "y", "vid", "yr", "g", by="kind", cluster="town")
    t = rows(res)
    assert list(t.index) == ["kind=A", "kind=B"]
    for term, truth in (("kind=A", 2.0), ("kind=B", 0.0)):
        assert t.loc[term, "conf_low"] <= truth <= t.loc[term, "conf_high"], t.loc[term, "estimate"]
    test = res.equality_test
    assert test.df == 1 and test.p_value < 1e-6
    trow = res.tidy("equality_test").iloc[0]
    assert trow["estimate"] == pytest.approx(test.statistic)
    assert trow["p_value"] == pytest.approx(test.p_value)
    assert np.isnan(trow["std_error"])
    # with one restriction the Wald statistic is the squared z of the difference
    V = res.vcov.to_numpy()
    d = t.loc["kind=A", "estimate"] - t.loc["kind=B", "estimate"]
    assert test.statistic == pytest.approx(d**2 / (V[0, 0] + V[1, 1] - 2 * V[0, 1]), rel=1e-12)


@pytest.mark.parametrize("control_group", ["notyet", "never"])
@pytest.mark.parametrize("cluster", [None, "town"])
def test_single_level_equals_simple_aggregation(panel, control_group, cluster):
    df = panel.assign(one="all")
    res = by_group(df, "y", "vid", "yr", "g", by="one", control_group=control_group, cluster=cluster)
    ref = aggregate(att_gt(panel, "y", "vid", "yr", "g", control_group=control_group, cluster=cluster)).tidy()
    r = rows(res).iloc[0]
    assert abs(r["estimate"] - ref["estimate"].iloc[0]) < 1e-10
    assert abs(r["std_error"] - ref["std_error"].iloc[0]) < 1e-10
    assert np.isnan(res.equality_test.statistic)


@pytest.mark.parametrize("cluster", [None, "town"])
def test_joint_covariance_matches_direct_computation(cluster):
    # One cohort, never-treated controls, no covariates: theta_A - theta_B is the
    # difference of the two subgroups' mean outcome changes (the control term cancels),
    # so Var(theta_A - theta_B) = Var(mean_A w) + Var(mean_B w) with
    # w_i = mean over post years of (y_it - y_i,g-1).
    df = simulate(7, n=300, cohorts=(2021, 0), probs=(0.6, 0.4))
    res = by_group(df, "y", "vid", "yr", "g", by="kind", control_group="never", cluster=cluster,
                   small_sample="asymptotic")  # the textbook covariance, no G/(G-1)
    V = res.vcov.to_numpy()
    wide = df.pivot(index="vid", columns="yr", values="y")
    w = wide[[2021, 2022, 2023]].mean(axis=1) - wide[2020]
    kind = df.groupby("vid")["kind"].first()
    N = len(wide)
    psi = np.zeros(N)
    for k, sign in (("A", 1.0), ("B", -1.0)):
        m = (kind == k).to_numpy()
        psi[m] = sign * (N / m.sum()) * (w[m] - w[m].mean())
    if cluster is not None:
        town = df.groupby("vid")["town"].first().to_numpy()
        psi = np.bincount(pd.factorize(town)[0], weights=psi)
    direct = np.sum(psi**2) / N**2
    var_diff = V[0, 0] + V[1, 1] - 2 * V[0, 1]
    assert var_diff == pytest.approx(direct, rel=1e-10)
    # the shared controls make the two estimates positively correlated: the naive sum
    # of variances overstates the variance of the difference
    assert V[0, 1] > 0
    assert V[0, 0] + V[1, 1] > 1.2 * var_diff


def test_notyet_keeps_other_levels_as_comparisons():
    # A unit of level B treated in 2022 is a not-yet-treated comparison for level A's
    # 2020 cohort in 2020-2021: A's ATT(2020, 2020) must equal the pooled att_gt cell
    # computed on the data without B's 2020 cohort.
    df = simulate(3, n=300)
    res = by_group(df, "y", "vid", "yr", "g", by="kind", control_group="notyet")
    cells = res.cells
    a = cells[(cells["level"] == "A") & (cells["cohort"] == 2020) & (cells["year"] == 2020)].iloc[0]
    sub = df[~((df["g"] == 2020) & (df["kind"] == "B"))]
    ref = att_gt(sub, "y", "vid", "yr", "g", control_group="notyet").tidy().query("cohort == 2020 and year == 2020")
    assert a["estimate"] == pytest.approx(ref["estimate"].iloc[0], abs=1e-12)
    assert a["n_units_run"] == sub["vid"].nunique()


def _monte_carlo(reps: int, first_seed: int, effect: dict[str, float], **kw):
    p, diffs, var_if = [], [], []
    for s in range(reps):
        df = simulate(first_seed + s, n=300, effect=effect)
        res = by_group(df, "y", "vid", "yr", "g", by="kind", cluster="town", **kw)
        t = rows(res)
        V = res.vcov.to_numpy()
        p.append(res.equality_test.p_value)
        diffs.append(t["estimate"].iloc[0] - t["estimate"].iloc[1])
        var_if.append(V[0, 0] + V[1, 1] - 2 * V[0, 1])
    return np.mean(np.array(p) < 0.05), np.var(diffs) / np.mean(var_if)


def test_equal_effects_rejection_rate_near_five_percent():
    # 100 seeded replications, two subgroups with the same effect, 40 township clusters.
    rate, ratio = _monte_carlo(100, 5000, {"A": 1.0, "B": 1.0})
    assert 0.01 <= rate <= 0.11, rate  # binomial(100, 0.05): 95% of draws in [1, 10]
    # the stacked-influence-function variance of the difference matches its Monte Carlo variance
    assert 0.75 < ratio < 1.35, ratio


@pytest.mark.slow
def test_equal_effects_rejection_rate_three_levels_with_covariate():
    rate, ratio = _monte_carlo(400, 9000, {"A": 1.0, "B": 1.0, "C": 1.0}, covariates="base")
    assert 0.025 <= rate <= 0.085, rate
    assert 0.85 < ratio < 1.2, ratio


def test_by_cohort_matches_group_aggregation(panel):
    res = by_cohort(panel, "y", "vid", "yr", "g", cluster="town", small_sample="asymptotic")
    ref = aggregate(att_gt(panel, "y", "vid", "yr", "g", control_group="notyet", cluster="town",
                           small_sample="asymptotic"), "group")
    t = res.tidy()
    g = t[t["aggregation"] == "group"].reset_index(drop=True)
    r = ref.tidy()
    np.testing.assert_allclose(g["estimate"], r["estimate"], atol=1e-12)
    np.testing.assert_allclose(g["std_error"], r["std_error"], atol=1e-12)
    psi = ref.influence[:, :2]
    town = panel.groupby("vid")["town"].first().to_numpy()
    sums = np.column_stack([np.bincount(pd.factorize(town, sort=True)[0], weights=psi[:, j]) for j in range(2)])
    V = sums.T @ sums / psi.shape[0] ** 2
    d = r["estimate"].iloc[0] - r["estimate"].iloc[1]
    W = d**2 / (V[0, 0] + V[1, 1] - 2 * V[0, 1])
    assert res.equality_test.statistic == pytest.approx(W, rel=1e-10)
    assert res.equality_test.levels == [2020, 2022]
    assert t["aggregation"].iloc[-1] == "equality_test"


def test_equality_test_function():
    r = equality_test([1.0, 1.0, 1.0], np.eye(3))
    assert r["statistic"] == 0.0 and r["df"] == 2 and r["p_value"] == 1.0
    r = equality_test([0.0, 3.0], np.diag([1.0, 1.0]))
    assert r["statistic"] == pytest.approx(4.5)
    assert np.isnan(equality_test([1.0], [[1.0]])["statistic"])


# --- synthetic city -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def city():
    from analysis.core.treatment import attach_treatment
    from analysis.data.synthetic import simulate_city

    c = simulate_city()
    df = attach_treatment(c.panel, c.treatment)
    df["mountain"] = (df["terrain"] == "mountain").astype(int)
    df["hill"] = (df["terrain"] == "hill").astype(int)
    return c, df


def test_city_income_by_cadre_type_covers_truth(city):
    c, df = city
    covs = ["distance_km", "distinctive_industry", "mountain", "hill"]
    res = by_group(df, "income_per_capita", "village_code", "year", "cohort", by="cadre_type",
                   covariates=covs, cluster="township_code")
    ta = c.truth_aggregates
    truth = ta[(ta["outcome"] == "income_per_capita") & (ta["aggregation"] == "cadre_type")]
    truth = truth.set_index("cadre_type")["value"]
    t = rows(res)
    assert sorted(t.index) == sorted(f"cadre_type={k}" for k in truth.index)
    for k, v in truth.items():
        r = t.loc[f"cadre_type={k}"]
        assert r["conf_low"] <= v <= r["conf_high"], (k, r["estimate"], v)
    assert res.equality_test.df == 3


def test_city_by_cohort_covers_truth(city):
    c, df = city
    covs = ["distance_km", "distinctive_industry", "mountain", "hill"]
    res = by_cohort(df, "income_per_capita", "village_code", "year", "cohort", covariates=covs,
                    cluster="township_code")
    ta = c.truth_aggregates
    truth = ta[(ta["outcome"] == "income_per_capita") & (ta["aggregation"] == "group")].set_index("cohort")["value"]
    t = res.tidy("group").dropna(subset=["cohort"]).set_index("cohort")
    for g, v in truth.items():
        assert t.loc[g, "conf_low"] <= v <= t.loc[g, "conf_high"], (g, t.loc[g, "estimate"], v)


# --- baseline split -------------------------------------------------------------------------


def test_baseline_split_labels_and_use_as_by():
    df = simulate(5, n=400, effect={"A": 0.0, "B": 0.0})
    lab = baseline_split(df, "base", 2018, unit="vid", time="yr", labels=("weak", "strong"))
    assert lab.name == "base_2018_split"
    assert lab.index.equals(df.index)
    assert (lab.groupby(df["vid"]).nunique() == 1).all()
    b = df.loc[df["yr"] == 2018].set_index("vid")["base"]
    assert (lab.groupby(df["vid"]).first() == np.where(b < b.median(), "weak", "strong")).all()
    # heterogeneous effect by baseline: 2 for weak, 0 for strong
    post = (df["g"] > 0) & (df["yr"] >= df["g"])
    df2 = df.assign(split=lab, y=df["y"] + 2.0 * post * (lab == "weak"))
    res = by_group(df2, "y", "vid", "yr", "g", by="split", cluster="town")
    t = rows(res)
    assert t.loc["split=weak", "conf_low"] <= 2.0 <= t.loc["split=weak", "conf_high"]
    assert t.loc["split=strong", "conf_low"] <= 0.0 <= t.loc["split=strong", "conf_high"]
    q = baseline_split(df, "base", 2018, quantile=0.25, unit="vid", time="yr")
    assert (q.groupby(df["vid"]).first() == "low").mean() == pytest.approx(0.25, abs=0.01)


def test_baseline_split_errors_and_missing():
    df = simulate(5, n=50)
    with pytest.raises(ValueError, match="baseline year"):
        baseline_split(df, "base", 1999, unit="vid", time="yr")
    with pytest.raises(ValueError, match="quantile"):
        baseline_split(df, "base", 2018, quantile=1.5, unit="vid", time="yr")
    with pytest.raises(ValueError, match="'kind'"):
        baseline_split(df, "kind", 2018, unit="vid", time="yr")
    with pytest.raises(ValueError, match="'nope'"):
        baseline_split(df, "nope", 2018, unit="vid", time="yr")
    short = df[~((df["vid"] == 0) & (df["yr"] == 2018))]
    lab = baseline_split(short, "base", 2018, unit="vid", time="yr")
    assert lab[short["vid"] == 0].isna().all()


# --- bad calls, no mutation ---------------------------------------------------------------


def test_errors(panel):
    with pytest.raises(ValueError, match="'nope'"):
        by_group(panel, "y", "vid", "yr", "g", by="nope")
    bad = panel.copy()
    bad.loc[(bad["vid"] == bad.loc[bad["g"] > 0, "vid"].iloc[0]) & (bad["yr"] == 2018), "kind"] = "C"
    with pytest.raises(ValueError, match="varies within treated unit"):
        by_group(bad, "y", "vid", "yr", "g", by="kind")
    miss = panel.copy()
    miss.loc[miss["g"] > 0, "kind"] = None
    with pytest.raises(ValueError, match="missing for treated unit"):
        by_group(miss, "y", "vid", "yr", "g", by="kind")
    with pytest.raises(ValueError, match="nothing is treated"):
        by_group(panel.assign(g=0), "y", "vid", "yr", "g", by="kind")
    with pytest.raises(ValueError, match="alpha"):
        by_group(panel, "y", "vid", "yr", "g", by="kind", alpha=0)


def test_no_mutation(panel):
    df = panel.copy()
    before = df.copy(deep=True)
    by_group(df, "y", "vid", "yr", "g", by="kind", cluster="town", covariates="base")
    by_cohort(df, "y", "vid", "yr", "g", cluster="town")
    baseline_split(df, "base", 2018, unit="vid", time="yr")
    pd.testing.assert_frame_equal(df, before)


def test_docstring_examples_run():
    import doctest

    import analysis.estimators.heterogeneity as mod

    failures, tried = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
