"""Tests of analysis.stages.heterogeneity (notebook 04) on the default synthetic city.

* contrasts: the difference equals the difference of the two subgroup estimates, the
  level's estimate equals its estimate in the by-cadre results, and the standard error
  equals an independent computation from the stacked influence functions (summed within
  townships with pandas); the report's three questions are answered with intervals that
  cover the simulator's true differences (truth_others weighted by post-treatment
  village-years counted independently from the treatment table);
* first-year cohort effects equal the ATT(g,g) cells of att_gt, with the equality test
  recomputed from the cells' influence functions;
* the weakness split, the pre-treatment means and the truth merge against independent
  computations; the results.json payload; no mutation of the caller's frame.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.core.panel import covariate_columns
from analysis.core.spec import DEFAULT_COVARIATES
from analysis.estimators.heterogeneity import by_group
from analysis.stages import heterogeneity as hr
from analysis.stages.base import Truth

COV = list(DEFAULT_COVARIATES)
OUTCOMES = ["income_per_capita", "criminal_cases"]


@pytest.fixture(scope="module")
def city():
    from analysis.data.synthetic import simulate_city

    return simulate_city()  # seed 20230601, the default city (3,224 villages, 2018-2024)


@pytest.fixture(scope="module")
def panel(city):
    from analysis.core.treatment import attach_treatment

    return attach_treatment(city.panel, city.treatment)


@pytest.fixture(scope="module")
def cadre(panel):
    return hr.subgroup_effects(panel, OUTCOMES, "cadre_type", covariates=COV)


def _township_se(psi: np.ndarray, unit_ids, panel: pd.DataFrame) -> float:
    """Clustered SE of an influence function on units, summed within townships with pandas."""
    town = panel.groupby("village_code")["township_code"].first().reindex(unit_ids).to_numpy()
    sums = pd.Series(psi).groupby(town).sum()
    return float(np.sqrt((sums**2).sum()) / len(psi))


def test_contrast_difference_and_joint_standard_error(panel, cadre):
    r = hr.contrast(panel, "criminal_cases", "cadre_type", "law", covariates=COV)
    assert r["difference"] == pytest.approx(r["estimate_level"] - r["estimate_others"], abs=1e-12)
    # the level's estimate is the one of the four-level by-cadre results (same runs)
    law = cadre["criminal_cases"].tidy("group_by").set_index("term").loc["cadre_type=law"]
    assert r["estimate_level"] == pytest.approx(law["estimate"], abs=1e-10)
    assert r["std_error_level"] == pytest.approx(law["std_error"], rel=1e-10)
    # independent: rebuild the two-group split here and sum the difference's influence function by township
    data, covs = covariate_columns(panel, COV)
    data["split"] = np.where(data["cadre_type"] == "law", "law", "rest")
    res = by_group(data, "criminal_cases", "village_code", "year", "cohort", by="split", covariates=covs,
                   cluster="township_code")
    psi = res.influence
    # the study's small-sample convention (analysis.inference.small_sample): G/(G-1) and t(G-1)
    G = panel["township_code"].nunique()
    se = _township_se(psi[:, 0] - psi[:, 1], res.unit_ids, panel) * np.sqrt(G / (G - 1))
    assert r["std_error"] == pytest.approx(se, rel=1e-10)
    crit = stats.t.ppf(0.975, G - 1)
    lo, hi = r["difference"] - crit * se, r["difference"] + crit * se
    assert (r["conf_low"], r["conf_high"]) == pytest.approx((lo, hi), rel=1e-8)
    # with one restriction the Wald test of by_group is the squared z of the difference
    assert res.equality_test.statistic == pytest.approx((r["difference"] / se) ** 2, rel=1e-10)
    # the contrast's p-value is the t(G-1) one of its interval; the equality test's is chi-square(1)
    assert r["p_value"] == pytest.approx(2 * stats.t.sf(abs(r["difference"] / se), G - 1), rel=1e-8)
    assert res.equality_test.p_value == pytest.approx(stats.chi2.sf((r["difference"] / se) ** 2, 1), rel=1e-8)
    # the shared comparison villages matter: ignoring the covariance gives another SE
    naive = np.hypot(r["std_error_level"], r["std_error_others"])
    assert abs(naive - r["std_error"]) > 0.01 * r["std_error"]
    assert r["n_treated_level"] + r["n_treated_others"] == panel.loc[panel["cohort"] > 0, "village_code"].nunique()


def test_contrasts_answer_the_reports_questions_against_the_truth(panel, city):
    con = hr.contrasts(panel, ["income_per_capita", "criminal_cases", "disputes"], covariates=COV,
                       truth_aggregates=city.truth_aggregates)
    assert list(zip(con["level"], con["outcome"], strict=True)) == [
        ("law", "criminal_cases"), ("law", "disputes"), ("agriculture", "income_per_capita")]
    ta = city.truth_aggregates
    per_type = ta[ta["aggregation"] == "cadre_type"].set_index(["outcome", "cadre_type"])["value"]
    # weights of the simple ATT: post-treatment village-years, counted from the treatment table
    tr = city.treatment
    years = 2024 - tr["cohort"] + 1
    w = years.groupby(tr["cadre_type"]).sum()
    for r in con.to_dict("records"):
        others = [c for c in w.index if c != r["level"]]
        t_oth = sum(per_type[(r["outcome"], c)] * w[c] for c in others) / w[others].sum()
        assert r["truth_level"] == pytest.approx(per_type[(r["outcome"], r["level"])], rel=1e-12)
        assert r["truth_others"] == pytest.approx(t_oth, rel=1e-10)
        # the simulator builds in exactly these differences (EFFECTS); the default city recovers them
        assert np.sign(r["truth_difference"]) == r["direction"]
        assert r["conf_low"] <= r["truth_difference"] <= r["conf_high"], r
        assert hr.contrast_statement(r, "en").startswith("Yes:")
        assert hr.contrast_statement(r, "zh").startswith("是：")


def test_contrast_statement_wording():
    base = {"level": "law", "outcome": "criminal_cases", "direction": -1, "estimate_level": -0.1,
            "estimate_others": 0.0, "p_value": 0.5, "truth_difference": float("nan")}
    unclear = hr.contrast_statement({**base, "difference": -0.1, "conf_low": -0.3, "conf_high": 0.1}, "en")
    worse = hr.contrast_statement({**base, "difference": 0.2, "conf_low": 0.1, "conf_high": 0.3}, "en")
    assert unclear.startswith("Not clear") and "-0.30 to 0.10," in unclear
    assert worse.startswith("No, the opposite") and "true difference" not in worse
    assert hr.contrast_statement({**base, "difference": 0.2, "conf_low": 0.1, "conf_high": 0.3}, "zh").startswith("否")


def test_contrast_rejects_absent_level(panel):
    with pytest.raises(ValueError, match="no treated village"):
        hr.contrast(panel, "criminal_cases", "cadre_type", "navy")


def test_cohort_first_year_effects_are_the_att_gg_cells(panel, city):
    coh = hr.cohort_effects(panel, ["income_per_capita"], covariates=COV)
    e0 = hr.cohort_e0_effects(coh)["income_per_capita"]
    att = coh["income_per_capita"].att_gt
    cells = att.tidy()
    gg = cells[cells["cohort"] == cells["year"]].set_index("cohort")
    rows = e0.tidy("group_e0").set_index("cohort")
    assert rows.index.tolist() == [2023, 2024]
    np.testing.assert_allclose(rows["estimate"], gg.loc[rows.index, "estimate"], atol=1e-10)
    np.testing.assert_allclose(rows["std_error"], gg.loc[rows.index, "std_error"], rtol=1e-10)
    # the equality test from the two cells' influence functions, clustered by township here
    c = att.cells
    idx = [int(np.flatnonzero((c["cohort"] == g) & (c["year"] == g))[0]) for g in (2023, 2024)]
    psi = np.asarray(att.influence)[:, idx]
    town = panel.groupby("village_code")["township_code"].first().reindex(att.unit_ids).to_numpy()
    sums = pd.DataFrame(psi).groupby(town).sum().to_numpy()
    G = len(sums)
    V = sums.T @ sums / psi.shape[0] ** 2 * G / (G - 1)  # the study's G/(G-1) (analysis.inference.small_sample)
    d = rows["estimate"].iloc[0] - rows["estimate"].iloc[1]
    assert e0.equality_test.statistic == pytest.approx(d**2 / (V[0, 0] + V[1, 1] - 2 * V[0, 1]),
                                                                  rel=1e-10)
    # the 2024 cohort is observed only at e = 0: its theta(g) is its ATT(g,g)
    th = coh["income_per_capita"].tidy("group").dropna(subset=["cohort"]).set_index("cohort")
    assert th.loc[2024, "estimate"] == pytest.approx(rows.loc[2024, "estimate"], abs=1e-12)
    # the table: truth from the simulator's cells (ATT(g,g)) and aggregates (theta(g)); post years
    truth = hr.truth_levels(city.truth_aggregates, city.truth)
    tab = hr.subgroup_table(hr.cohort_e0_effects(coh), "cohort_e0", truth, hr.cohort_batches(panel), 2024)
    cells_truth = city.truth[(city.truth["effect"] == "direct") & (city.truth["outcome"] == "income_per_capita")]
    for r in tab.to_dict("records"):
        g = int(r["level"])
        ref = cells_truth[(cells_truth["cohort"] == g) & (cells_truth["year"] == g)]["att"].iloc[0]
        assert r["truth"] == pytest.approx(ref) and r["post_years"] == 1
    assert tab["batch"].tolist() == ["pilot-2022", "city-2023"]
    tab_g = hr.subgroup_table(coh, "cohort", truth, last_year=2024)
    assert tab_g["post_years"].tolist() == [2, 1]


def test_subgroup_table_truth_order_and_pre_means(panel, cadre, city):
    truth = hr.truth_levels(city.truth_aggregates)
    pre = hr.pre_treatment_means(panel, "cadre_type", OUTCOMES)
    tab = hr.subgroup_table(cadre, "cadre_type", truth, pre_means=pre)
    inc = tab[tab["outcome"] == "income_per_capita"].set_index("level")
    assert inc.index.tolist() == ["law", "agriculture", "economic", "other"]
    ta = city.truth_aggregates
    ref = ta[(ta["aggregation"] == "cadre_type") & (ta["outcome"] == "income_per_capita")].set_index("cadre_type")
    np.testing.assert_allclose(inc["truth"], ref.loc[inc.index, "value"])
    assert (inc["equality_p"] == cadre["income_per_capita"].equality_test.p_value).all()
    # pre-treatment mean: law villages' income in the year before their own cohort
    law = panel[(panel["cadre_type"] == "law") & (panel["year"] == panel["cohort"] - 1)]
    assert inc.loc["law", "pre_mean"] == pytest.approx(law["income_per_capita"].mean())
    assert inc.loc["law", "pct_of_pre"] == pytest.approx(100 * inc.loc["law", "estimate"] / inc.loc["law", "pre_mean"])
    # the agriculture cadres' income effect is the largest, as the simulator's EFFECTS say
    assert inc["estimate"].idxmax() == "agriculture"


def test_weakness_split_is_the_first_year_median(panel):
    out = hr.add_weakness(panel, 2018)
    base = panel[panel["year"] == 2018].set_index("village_code")["income_per_capita"]
    weak = set(base.index[base < base.median()])
    got = out.drop_duplicates("village_code").set_index("village_code")[hr.WEAKNESS_COLUMN]
    assert set(got.index[got == "weak"]) == weak
    assert set(got.unique()) == {"weak", "strong"}


def test_payload_shape(panel, cadre, city):
    truth = hr.truth_levels(city.truth_aggregates)
    con = hr.contrasts(panel, ["criminal_cases"], covariates=COV, truth_aggregates=city.truth_aggregates)
    pl = hr.payload({"cadre_type": cadre}, truth, con)
    doc = json.loads(json.dumps(pl))
    sec = doc["cadre_type"]["criminal_cases"]
    assert list(sec["levels"]) == ["law", "agriculture", "economic", "other"]
    t = cadre["criminal_cases"].tidy("group_by").set_index("term")
    assert sec["levels"]["law"]["estimate"] == pytest.approx(t.loc["cadre_type=law", "estimate"], rel=1e-9)
    assert sec["equality_p"] == pytest.approx(cadre["criminal_cases"].equality_test.p_value, rel=1e-9)
    assert sec["truth"]["law"] == pytest.approx(float(truth.query(
        "dimension == 'cadre_type' and outcome == 'criminal_cases' and level == 'law'")["truth"].iloc[0]), rel=1e-9)
    assert doc["contrasts"][0]["level"] == "law" and doc["contrasts"][0]["outcome"] == "criminal_cases"


def test_no_truth_gives_empty_truth_columns(cadre):
    truth = hr.truth_levels(None)
    assert truth.empty
    tab = hr.subgroup_table(cadre, "cadre_type", truth)
    assert tab["truth"].isna().all()


def test_truth_cells_only_for_the_simulated_store(city_store, tmp_path):
    cells = Truth.load(city_store, city_store.parent / "synthetic").cells
    assert cells is not None and {"outcome", "effect", "cohort", "year", "att"} <= set(cells.columns)
    assert Truth.load(city_store, tmp_path).cells is None  # no truth files: real data


def test_overlap_failure_falls_back_to_no_covariates_and_says_so():
    # A later batch in 2025 (seed 7) leaves the agriculture cadres' cohort-2023 villages (chosen for their
    # distinctive industry) without comparable never-treated villages in 2025: the propensity score fails.
    from analysis.core.treatment import attach_treatment
    from analysis.data.synthetic import simulate_city

    c = simulate_city(seed=7, last_year=2025, later_batches=((2025, 300),))
    p = attach_treatment(c.panel, c.treatment)
    res = hr.subgroup_effects(p, ["income_per_capita"], "cadre_type", covariates=COV)["income_per_capita"]
    assert res.note.startswith("without covariates") and "overlap" in res.note
    ref = hr.subgroup_effects(p, ["income_per_capita"], "cadre_type", covariates=())["income_per_capita"]
    pd.testing.assert_frame_equal(res.tidy(), ref.tidy())
    assert ref.note == ""
    tab = hr.subgroup_table({"income_per_capita": res}, "cadre_type")
    assert (tab["note"] == res.note).all()
    assert "without covariates" in hr.findings({"cadre_type": tab}, hr.contrasts(p, [], covariates=COV), "en")[-1]


def test_callers_frame_is_not_mutated(panel):
    before = panel.copy(deep=True)
    hr.add_weakness(panel, 2018)
    hr.pre_treatment_means(panel, "cadre_type", ["income_per_capita"])
    hr.contrast(panel, "income_per_capita", "cadre_type", "agriculture", covariates=COV)
    hr.subgroup_effects(panel, ["projects"], "cadre_type")
    pd.testing.assert_frame_equal(panel, before)
