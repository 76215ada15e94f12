"""Tests of analysis.stages.targeting on the default synthetic city.

Reference values come from two places:

* the simulator's design (``analysis.data.synthetic`` module docstrings): villages are chosen
  with weights ``exp(1.0 z_order - 1.1 z_income + ...)``, so treated villages are poorer and
  have more disputes at baseline; the untreated income trend ``K(X) kappa_i s_t`` depends on
  the covariates (flatter in mountain, remote villages, which targeting favours) and on a
  factor ``kappa_i`` independent of targeting, so unconditional pre-trends differ and the
  gap shrinks given the covariates (conditional parallel trends); the pilot district is
  the only county with cohort 2023;
* independent computations in the tests (numpy means and variances, a direct least-squares
  fit, a statsmodels logit on a design built here from the raw panel).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.core.treatment import attach_treatment, pilot_counties
from analysis.data.synthetic import simulate_city
from analysis.report.results_json import write_section
from analysis.stages import targeting as tg

COVS = ["distance_km", "terrain", "distinctive_industry"]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    city = simulate_city()
    return attach_treatment(city.panel, city.treatment)


@pytest.fixture(scope="module")
def base(panel) -> pd.DataFrame:
    """Baseline-year rows, one per village, with the ever-treated flag."""
    b = panel[panel["year"] == panel["year"].min()].set_index("village_code").sort_index()
    return b.assign(ever=(b["cohort"] > 0).astype(int))


@pytest.fixture(scope="module")
def balance(panel) -> pd.DataFrame:
    return tg.baseline_balance(panel)


@pytest.fixture(scope="module")
def gaps(panel) -> pd.DataFrame:
    return tg.pretrend_gaps(panel, covariates=COVS)


def _smd(a: np.ndarray, b: np.ndarray) -> float:
    return (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)


# ----------------------------------------------------------------------------- baseline balance


@pytest.mark.parametrize(("variable", "group"), [("income_per_capita", "treated"), ("disputes", "law"),
                                                 ("distance_km", "economic"), ("terrain_mountain", "treated")])
def test_standardised_difference_equals_independent_computation(balance, base, variable, group):
    if variable == "terrain_mountain":
        x = (base["terrain"] == "mountain").astype(float)
    else:
        x = base[variable].astype(float)
    never = x[base["cohort"] == 0].to_numpy()
    members = base["cohort"] > 0 if group == "treated" else (base["cohort"] > 0) & (base["cadre_type"] == group)
    row = balance[(balance["variable"] == variable) & (balance["group"] == group)].iloc[0]
    assert row["std_diff"] == pytest.approx(_smd(x[members].to_numpy(), never), rel=1e-12)
    assert row["mean"] == pytest.approx(x[members].mean(), rel=1e-12)
    assert row["mean_reference"] == pytest.approx(never.mean(), rel=1e-12)
    assert row["villages"] == members.sum() and row["villages_reference"] == len(never)


def test_balance_covers_every_group_and_variable(balance):
    assert list(dict.fromkeys(balance["group"])) == ["treated", "law", "agriculture", "economic", "other"]
    assert (balance["reference"] == "never").all()
    assert {"terrain_plain", "terrain_hill", "terrain_mountain", "income_per_capita", "petitions"} <= set(
        balance["variable"])
    wide = tg.std_diff_matrix(balance)
    assert wide.shape == (balance["variable"].nunique(), 3 + 5)
    row = balance[(balance["variable"] == "disputes") & (balance["group"] == "law")].iloc[0]
    assert wide.set_index("variable").loc["disputes", "std_diff_law"] == row["std_diff"]


def test_treated_villages_are_poorer_and_more_dispute_prone(balance):
    # Simulator design: selection index -1.1 z_income + 1.0 z_order; law cadres go to z_order > 0.7.
    b = balance.set_index(["variable", "group"])
    assert b.loc[("income_per_capita", "treated"), "mean"] < b.loc[("income_per_capita", "treated"), "mean_reference"]
    assert b.loc[("income_per_capita", "treated"), "std_diff"] < -0.2
    assert b.loc[("disputes", "treated"), "std_diff"] > 0.2
    assert b.loc[("disputes", "law"), "std_diff"] > b.loc[("disputes", "economic"), "std_diff"]
    assert b.loc[("distinctive_industry", "agriculture"), "std_diff"] > 1.0


def test_standardised_difference_edge_cases():
    assert np.isnan(tg.standardised_difference([1.0, 1.0], [1.0, 1.0]))
    assert np.isnan(tg.standardised_difference([1.0], [0.0, 1.0]))
    assert tg.standardised_difference([1.0, 2.0, 3.0, np.nan], [0.0, 1.0, 2.0]) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- pre-trends


def test_pre_period_is_the_years_before_the_first_cohort(panel):
    assert tg.pre_period_years(panel) == [2018, 2019, 2020, 2021, 2022]
    with pytest.raises(ValueError, match="at least two pre-treatment years"):
        tg.pre_period_years(panel[panel["year"] >= 2022])


def test_village_changes_equal_endpoint_slope(panel):
    ch = tg.village_changes(panel, ["income_per_capita"])
    wide = panel.pivot(index="village_code", columns="year", values="income_per_capita")
    expected = (wide[2022] - wide[2018]) / 4
    pd.testing.assert_series_equal(ch["income_per_capita"], expected, check_names=False, rtol=1e-10)


def test_pretrend_paths_are_group_means(panel):
    paths = tg.pretrend_paths(panel, ["disputes"])
    assert set(paths["group"]) == {"never", "treated", "law", "agriculture", "economic", "other"}
    d = panel[(panel["cohort"] > 0) & (panel["year"] == 2021)]["disputes"].mean()
    d0 = panel[(panel["cohort"] > 0) & (panel["year"] == 2018)]["disputes"].mean()
    row = paths[(paths["group"] == "treated") & (paths["year"] == 2021)].iloc[0]
    assert row["mean"] == pytest.approx(d) and row["index"] == pytest.approx(100 * d / d0)
    assert set(paths.loc[paths["year"] == 2018, "index"]) == {100.0}


def test_unconditional_income_pretrend_gap_is_nonzero_and_equals_difference_of_means(panel, gaps):
    wide = panel.pivot(index="village_code", columns="year", values="income_per_capita")
    change = (wide[2022] - wide[2018]) / 4
    ever = panel.drop_duplicates("village_code").set_index("village_code")["cohort"].reindex(change.index) > 0
    row = gaps[(gaps["outcome"] == "income_per_capita") & (gaps["group"] == "treated")
               & (gaps["comparison"] == "unconditional")].iloc[0]
    assert row["estimate"] == pytest.approx(change[ever].mean() - change[~ever].mean(), rel=1e-9)
    # Simulator: targeting favours mountain, remote villages whose income trend is flatter.
    assert row["estimate"] < 0 and abs(row["estimate"]) > 3 * row["std_error"]
    assert row["n_units"] == 3224 and row["n_clusters"] == 178


def test_conditional_income_pretrend_gap_is_smaller_and_matches_least_squares(panel, gaps, base):
    u, c = (gaps[(gaps["outcome"] == "income_per_capita") & (gaps["group"] == "treated")
                 & (gaps["comparison"] == k)].iloc[0] for k in ("unconditional", "conditional"))
    # Conditional parallel trends hold in the simulator: the gap shrinks given the covariates.
    assert abs(c["estimate"]) < 0.5 * abs(u["estimate"])
    assert abs(c["estimate"]) < 2 * c["std_error"]
    wide = panel.pivot(index="village_code", columns="year", values="income_per_capita")
    y = ((wide[2022] - wide[2018]) / 4).reindex(base.index).to_numpy()
    X = np.column_stack([np.ones(len(base)), base["ever"], base["distance_km"], base["terrain"] == "hill",
                         base["terrain"] == "mountain", base["distinctive_industry"]]).astype(float)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    assert c["estimate"] == pytest.approx(beta[1], rel=1e-8)


def test_gap_rows_per_group_and_no_covariates(panel):
    g = tg.pretrend_gaps(panel, ["disputes"], covariates=[], cluster="county")
    assert set(g["comparison"]) == {"unconditional"}
    assert list(g["group"]) == ["treated", "law", "agriculture", "economic", "other"]
    assert (g["n_clusters"] == 9).all()


# ----------------------------------------------------------------------------- propensity


@pytest.fixture(scope="module")
def propensity(panel):
    return tg.fit_propensity(panel, COVS)


def test_propensity_equals_independent_statsmodels_logit(propensity, base):
    X = pd.DataFrame({
        "const": 1.0,
        "base_distance_km": base["distance_km"],
        "base_terrain_hill": (base["terrain"] == "hill").astype(float),
        "base_terrain_mountain": (base["terrain"] == "mountain").astype(float),
        "base_distinctive_industry": base["distinctive_industry"].astype(float),
        "base_log_income_per_capita": np.log1p(base["income_per_capita"]),
        "base_disputes": base["disputes"].astype(float),
        "base_criminal_cases": base["criminal_cases"].astype(float),
    })
    ref = sm.Logit(base["ever"].astype(float), X).fit(disp=0)
    coef = propensity.coefficients.set_index("term")
    assert list(coef.index) == list(X.columns)
    np.testing.assert_allclose(coef["estimate"], ref.params[X.columns], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(coef["std_error"], ref.bse[X.columns], rtol=1e-6)
    np.testing.assert_allclose(coef["odds_ratio"], np.exp(ref.params[X.columns]), rtol=1e-6)
    scores = propensity.scores.set_index("village_code")["pscore"].reindex(base.index)
    np.testing.assert_allclose(scores, ref.predict(X), rtol=1e-6)


def test_propensity_scores_in_unit_interval_and_selection_signs(propensity):
    p = propensity.scores["pscore"]
    assert ((p > 0) & (p < 1)).all() and len(p) == 3224
    coef = propensity.coefficients.set_index("term")["estimate"]
    # Simulator: poorer, more disorderly, mountain villages are more likely to be chosen.
    assert coef["base_log_income_per_capita"] < 0 and coef["base_disputes"] > 0
    assert coef["base_terrain_mountain"] > coef["base_terrain_hill"] > 0


def test_overlap_summary_matches_scores(propensity):
    ov = tg.overlap_summary(propensity.scores).set_index("group")
    s = propensity.scores
    t, n = s.loc[s["ever_treated"] == 1, "pscore"], s.loc[s["ever_treated"] == 0, "pscore"]
    assert ov.loc["treated", "share_above_high"] == pytest.approx((t > 0.95).mean())
    assert ov.loc["never", "share_below_low"] == pytest.approx((n < 0.05).mean())
    assert ov.loc["treated", "min"] == t.min() and ov.loc["never", "max"] == n.max()
    assert ov.loc["treated", "share_outside_support"] == pytest.approx((t > n.max()).mean())
    assert ov.loc["treated", "median"] > ov.loc["never", "median"]


# ----------------------------------------------------------------------------- pilot


def test_pilot_is_the_only_county_with_cohort_2023(panel):
    expected = sorted(panel.loc[panel["cohort"] == 2023, "county_code"].unique())
    assert len(expected) == 1
    assert pilot_counties(panel) == expected == ["990101"]
    res = tg.pilot_comparison(panel, covariates=COVS)
    s = res["summary"].set_index("region")
    assert s.loc["pilot", "cohort_2023"] == 420 and s.loc["rest", "cohort_2023"] == 0
    v = panel.drop_duplicates("village_code")
    in_pilot = v["county_code"] == "990101"
    assert s.loc["pilot", "share_treated"] == pytest.approx((v.loc[in_pilot, "cohort"] > 0).mean())
    assert s.loc["rest", "villages"] == (~in_pilot).sum()
    assert set(res["gaps"]["group"]) == {"pilot"} and set(res["paths"]["group"]) == {"pilot", "rest"}


def test_pilot_counties_fails_when_first_cohort_is_everywhere(panel):
    p = panel.assign(cohort=np.where(panel["cohort"] > 0, 2023, 0))
    with pytest.raises(ValueError, match="no pilot district"):
        pilot_counties(p)


# ----------------------------------------------------------------------------- summary, findings, hygiene


def test_summary_and_findings(panel, balance, gaps, propensity, tmp_path):
    ov = tg.overlap_summary(propensity.scores)
    pilot = tg.pilot_comparison(panel, covariates=COVS)
    s = tg.payload(balance, gaps, propensity, ov, pilot, baseline=2018, pre_years=[2018, 2022],
                   covariates=COVS, cluster="township")
    gap = s["pretrend_gap"]["income_per_capita"]
    assert abs(gap["conditional"]["estimate"]) < abs(gap["unconditional"]["estimate"])
    assert s["pilot"]["counties"] == ["990101"]
    assert s["std_diff"]["income_per_capita"]["treated"] == pytest.approx(
        balance.set_index(["variable", "group"]).loc[("income_per_capita", "treated"), "std_diff"])
    a = write_section(tmp_path / "a", "targeting", s).read_bytes()
    b = write_section(tmp_path / "b", "targeting", s).read_bytes()
    assert a == b and "pretrend_gap" in json.loads(a)
    inc = s["baseline_means"]["income_per_capita"]
    for lang, word in (("en", "poorer"), ("zh", "更穷")):
        text = "\n".join(tg.findings(s, lang))
        assert word in text and f"{inc['treated']:,.0f}" in text and len(text.splitlines()) == 4


def test_plots_return_figures(panel, balance, propensity):
    from matplotlib import pyplot as plt

    from analysis.report.figures import setup_fonts

    setup_fonts()
    for fig in (tg.plot_balance(balance, 2018, "en"), tg.plot_pretrend_paths(tg.pretrend_paths(panel), lang="zh"),
                tg.plot_propensity(propensity.scores, "en")):
        assert fig.axes[0].get_title() and fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel()
        plt.close(fig)


def test_functions_do_not_mutate_the_panel(panel):
    before = panel.copy(deep=True)
    tg.baseline_balance(panel)
    tg.pretrend_paths(panel)
    tg.pretrend_gaps(panel)
    tg.village_changes(panel)
    tg.fit_propensity(panel)
    tg.pilot_comparison(panel)
    tg.village_groups(panel)
    pd.testing.assert_frame_equal(panel, before)


@pytest.mark.parametrize("call", [
    lambda p: tg.pretrend_gaps(p, ["income"]),
    lambda p: tg.pretrend_paths(p, ["income_per_capita", "nope"]),
    lambda p: tg.baseline_balance(p, outcomes=["nope"]),
    lambda p: tg.village_changes(p, ["nope"]),
    lambda p: tg.pilot_comparison(p, ["nope"]),
    lambda p: tg.fit_propensity(p, outcomes=["nope"]),
])
def test_unknown_outcome_raises_clear_error(panel, call):
    with pytest.raises(ValueError, match=r"unknown outcome\(s\) .*choose from income_per_capita"):
        call(panel)


def test_other_bad_arguments_raise(panel):
    with pytest.raises(ValueError, match="unknown covariate"):
        tg.pretrend_gaps(panel, covariates=["altitude"])
    with pytest.raises(ValueError, match="cluster must be one of"):
        tg.pretrend_gaps(panel, cluster="province")
    with pytest.raises(ValueError, match="by must be"):
        tg.pretrend_paths(panel, by="batch")
    with pytest.raises(ValueError, match="load_analysis_panel"):
        tg.baseline_balance(panel.drop(columns="cohort"))
    with pytest.raises(ValueError, match="no village is treated"):
        tg.baseline_balance(panel.assign(cohort=0))
