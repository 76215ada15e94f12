"""Robustness checks (analysis.stages.robustness) on the default synthetic city and on a city with spillovers.

Reference values come from the simulator (its design: the pilot district, heavily treated townships, the
spillover truth) or from independent computations in the test (the estimate() dispatcher, twfe(), pandas).
"""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.core.panel import load_analysis_panel
from analysis.core.spec import DEFAULT_COVARIATES, HEADLINE
from analysis.core.treatment import attach_treatment, pilot_counties
from analysis.data.synthetic import Scenario, simulate_city
from analysis.estimate import estimate
from analysis.estimators.twfe import twfe
from analysis.stages import robustness

OUTCOMES = ["income_per_capita", "criminal_cases", "new_members"]
SEED = 20230601
SPECS = ["headline", "control_never", "anticipation_0", "excluding_pilot", "unbalanced_5pct", "no_covariates",
         "cluster_county", "controls_low_share_townships"]


@pytest.fixture(scope="module")
def panel(city_store):
    return load_analysis_panel(city_store, 2018, 2024, 6.0)


@pytest.fixture(scope="module")
def alternatives(panel):
    return robustness.alternative_specifications(panel, OUTCOMES, seed=SEED)


@pytest.fixture(scope="module")
def spill_city():
    city = simulate_city(seed=SEED, scenario=Scenario(spillover=0.5))
    return city, attach_treatment(city.panel, city.treatment)


# ------------------------------------------------------------------ alternative specifications
def test_alternatives_have_every_spec_and_outcome(alternatives):
    assert list(zip(alternatives["outcome"], alternatives["spec"], strict=True)) == [
        (o, s) for o in OUTCOMES for s in SPECS]
    assert alternatives["estimate"].notna().all()
    assert set(robustness.ALTERNATIVE_COLUMNS) <= set(alternatives.columns)
    assert (alternatives.loc[alternatives["spec"] == "headline", "diff_vs_headline"] == 0).all()


def test_notyet_headline_row_equals_the_dispatcher(panel, alternatives):
    # independent computation: the study's estimate() dispatcher (what notebook 02 reports as the headline)
    for o in OUTCOMES:
        for spec, cg in (("headline", "notyet"), ("control_never", "never")):
            ref = estimate(panel, o, "cs", control_group=cg, covariates=DEFAULT_COVARIATES,
                           cluster="township").tidy("simple").iloc[0]
            row = alternatives[(alternatives["outcome"] == o) & (alternatives["spec"] == spec)].iloc[0]
            assert row["control_group"] == cg
            assert row["estimate"] == pytest.approx(ref["estimate"], rel=1e-12)
            assert row["std_error"] == pytest.approx(ref["std_error"], rel=1e-12)


def test_specs_change_what_they_say(panel, alternatives):
    inc = alternatives[alternatives["outcome"] == "income_per_capita"].set_index("spec")
    # clustering by county changes the standard error only
    assert inc.loc["cluster_county", "estimate"] == inc.loc["headline", "estimate"]
    assert inc.loc["cluster_county", "n_clusters"] == panel["county_code"].nunique() == 9
    assert inc.loc["cluster_county", "std_error"] != inc.loc["headline", "std_error"]
    # the unbalanced panel has 5% fewer rows, all villages
    assert inc.loc["unbalanced_5pct", "n_obs"] == len(panel) - round(0.05 * len(panel))
    assert inc.loc["unbalanced_5pct", "n_units"] == panel["village_code"].nunique()
    # without covariates = the unconditional CS, also computed by the dispatcher
    ref = estimate(panel, "income_per_capita", "cs", covariates=()).tidy("simple")["estimate"].iloc[0]
    assert inc.loc["no_covariates", "estimate"] == pytest.approx(ref, rel=1e-12)


def test_excluding_pilot_removes_exactly_the_pilot_county(panel, alternatives):
    city_pilot = ["990101"]  # simulator: the first county is the pilot district (params["pilot_counties"])
    assert pilot_counties(panel) == city_pilot
    v = panel.drop_duplicates("village_code")
    assert set(v.loc[v["cohort"] == 2023, "county_code"]) == set(city_pilot)
    rest = v[~v["county_code"].isin(city_pilot)]
    row = alternatives[(alternatives["spec"] == "excluding_pilot")].iloc[0]
    assert row["n_units"] == len(rest) == len(v) - (v["county_code"] == "990101").sum()
    assert row["n_clusters"] == rest["township_code"].nunique()
    assert "990101" in row["note"]


def test_unbalanced_draw_is_deterministic_by_seed(panel):
    before = panel.copy()
    a = robustness.drop_village_years(panel, 0.05, seed=SEED)
    b = robustness.drop_village_years(panel, 0.05, seed=SEED)
    c = robustness.drop_village_years(panel, 0.05, seed=SEED + 1)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(panel) - round(0.05 * len(panel))
    key = ["village_code", "year"]
    assert not a[key].reset_index(drop=True).equals(c[key].reset_index(drop=True))
    # the rows dropped depend on the content, not on the row order
    shuffled = panel.sample(frac=1.0, random_state=3)
    d = robustness.drop_village_years(shuffled, 0.05, seed=SEED)
    assert set(map(tuple, d[key].to_numpy())) == set(map(tuple, a[key].to_numpy()))
    pd.testing.assert_frame_equal(panel, before)


# ------------------------------------------------------------------ spillovers
def test_township_exposure_and_low_share_controls(panel):
    exp = robustness.township_exposure(panel)
    v = panel.drop_duplicates("village_code")
    share = v.groupby("township_code")["cohort"].apply(lambda g: (g > 0).mean())
    assert np.allclose(exp.set_index("township_code")["share"].sort_index(), share.sort_index())
    reduced, info = robustness.low_share_controls(panel)
    high = set(share[share >= 0.5].index)
    never = v[v["cohort"] == 0]
    assert info["never_treated"] == len(never)
    assert info["dropped"] == never["township_code"].isin(high).sum()
    assert info["controls"] == info["never_treated"] - info["dropped"]
    assert info["strict_controls"] == never["township_code"].isin(share[share == 0].index).sum()
    rv = reduced.drop_duplicates("village_code")
    assert (rv["cohort"] > 0).sum() == (v["cohort"] > 0).sum()  # every treated village kept
    assert not rv.loc[rv["cohort"] == 0, "township_code"].isin(high).any()


def test_spillover_detected_when_the_city_has_one(spill_city):
    city, p = spill_city
    res = robustness.spillover_did(p, "income_per_capita")
    r = res.tidy().iloc[0]
    # truth (simulator): spillover cells of never-treated villages; the simple ATT over the
    # exposure cohorts weights every exposed village-year equally, i.e. sum(att * n) / sum(n)
    t = city.truth[(city.truth["outcome"] == "income_per_capita") & (city.truth["effect"] == "spillover")
                   & (city.truth["cohort"] == 0)]
    truth = float((t["att"] * t["n_villages"]).sum() / t["n_villages"].sum())
    assert truth > 0
    assert r["estimate"] > 0 and r["conf_low"] > 0 and r["p_value"] < 0.01
    assert r["conf_low"] <= truth <= r["conf_high"]
    # exposed = never-treated villages of the simulator's "heavy" townships
    vil = city.villages
    never = set(city.panel["village_code"].unique()) - set(city.treatment["village_code"])
    heavy_never = vil[vil["heavy_township"] & vil["village_code"].isin(never)]
    assert res.design.exposed_villages == len(heavy_never)


def test_no_spillover_on_the_default_city(panel):
    for o in OUTCOMES:
        r = robustness.spillover_did(panel, o).tidy().iloc[0]
        assert r["conf_low"] < 0 < r["conf_high"], o


def test_low_share_controls_are_untouched_by_spillover(spill_city, alternatives):
    # Same seed, spillover 0.5 instead of 0: the simulator adds the spillover only to untreated village-years
    # of heavy townships, and no treated village of this city is exposed before its own cohort (the pilot
    # townships have no later cohort). So the estimate with controls from low-share townships only must not
    # move, while the never-treated comparison (which includes exposed villages) is pulled down.
    _, p = spill_city
    spilled = robustness.alternative_specifications(p, ["income_per_capita"], seed=SEED).set_index("spec")
    clean = alternatives[alternatives["outcome"] == "income_per_capita"].set_index("spec")
    spec = "controls_low_share_townships"
    assert spilled.loc[spec, "estimate"] == pytest.approx(clean.loc[spec, "estimate"], rel=1e-9)
    assert spilled.loc["control_never", "estimate"] < clean.loc["control_never", "estimate"] - 5


# ------------------------------------------------------------------ inference
def test_randomisation_p_value_is_deterministic_by_seed(panel):
    a = robustness.randomisation_summary(panel, "new_members", B=199, seed=7)
    b = robustness.randomisation_summary(panel, "new_members", B=199, seed=7)
    assert a == b
    assert a["strata"] == "county_propensity" and 1 / 200 <= a["p_value"] <= 1
    assert robustness.randomisation_summary(panel, "new_members", B=0, seed=7) is None


def test_outcomes_tested_together_get_the_draws_each_gets_alone(panel):
    # the stage draws the assignments once for all outcomes (randomisation_summaries): each record,
    # draws included, must be the one-outcome test's, bit for bit
    from analysis.inference.randomisation import randomisation_inference, randomisation_inference_outcomes

    outcomes = ["income_per_capita", "new_members"]
    together = robustness.randomisation_summaries(panel, outcomes, B=199, seed=7)
    for o in outcomes:
        assert together[o] == robustness.randomisation_summary(panel, o, B=199, seed=7)
    many = randomisation_inference_outcomes(panel, outcomes, "village_code", "year", "cohort", strata="county_code",
                                            B=150, seed=3, n_jobs=2)
    for o in outcomes:
        one = randomisation_inference(panel, o, "village_code", "year", "cohort", strata="county_code", B=150, seed=3)
        assert np.array_equal(many[o].draws, one.draws) and many[o].p_value == one.p_value
        assert many[o].options == one.options
    # an outcome that cannot be tested keeps its note; the others their results
    broken = robustness.randomisation_summaries(panel.assign(empty=np.nan), ["new_members", "empty"], B=99, seed=7)
    assert broken["new_members"] == robustness.randomisation_summary(panel, "new_members", B=99, seed=7)
    assert broken["empty"]["available"] is False
    assert robustness.randomisation_summaries(panel, outcomes, B=0) == {o: None for o in outcomes}


def test_randomisation_strata_keep_county_and_propensity(panel):
    from analysis.inference.randomisation import propensity_strata

    st = propensity_strata(panel)
    v = panel.drop_duplicates("village_code").set_index("village_code")
    assert st.index.equals(v.index.sort_values())
    # every stratum lies inside one county, and each county is cut into 5 bins of nearly equal size
    county = st.str.split(":").str[0]
    assert (county == v.loc[st.index, "county_code"].astype(str)).all()
    sizes = st.value_counts()
    per_county = sizes.groupby(sizes.index.str.split(":").str[0])
    assert (per_county.size() == 5).all() and (per_county.max() - per_county.min() <= 1).all()
    # bins are ordered by the score: the top bin of each county has a higher mean score than the bottom one
    from analysis.estimators.propensity import fit_propensity

    score = fit_propensity(panel, DEFAULT_COVARIATES, outcomes=()).scores.set_index("village_code")["pscore"]
    by_bin = score.groupby(st.reindex(score.index).str.split(":").str[1]).mean()
    assert by_bin["4"] > by_bin["0"]
    by_county = robustness.randomisation_summary(panel, "new_members", B=199, seed=7, strata="county")
    default = robustness.randomisation_summary(panel, "new_members", B=199, seed=7)
    assert by_county["n_strata"] == 9 and default["n_strata"] == 45
    # same statistic, another permutation distribution (the draws keep more of the targeting)
    assert by_county["observed"] == default["observed"] and by_county["draws_sd"] != default["draws_sd"]
    with pytest.raises(ValueError, match="strata must be one of"):
        robustness.randomisation_summary(panel, "new_members", B=9, seed=7, strata="township")
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        propensity_strata(panel, bins=0)


def test_wild_summary_matches_twfe(panel):
    w = robustness.wild_summary(panel, "criminal_cases", B=199, seed=1)
    ref = twfe(panel, "criminal_cases", "village_code", "year", "cohort", cluster="township_code").tidy().iloc[0]
    assert w["estimate"] == pytest.approx(ref["estimate"], rel=1e-8)
    assert w["crv1_conf_low"] == pytest.approx(ref["conf_low"], rel=1e-6)
    assert w["crv1_conf_high"] == pytest.approx(ref["conf_high"], rel=1e-6)
    assert w["weights"] == "webb" and w["B"] == 199 and w["n_clusters"] == 178
    assert w["conf_low"] < w["estimate"] < w["conf_high"]
    assert w == robustness.wild_summary(panel, "criminal_cases", B=199, seed=1)


@pytest.fixture(scope="module")
def honest_new_members(panel):
    es = robustness.event_study(panel, "new_members")
    return es, robustness.honest_analysis(es, seed=SEED)


def test_honest_analysis(honest_new_members):
    es, h = honest_new_members
    t = es.tidy("event").set_index("term")
    # universal base period: the reference is the year before the arrival year left out by the headline
    ref = f"e={-1 - HEADLINE.anticipation}"
    assert HEADLINE.anticipation == 1
    assert t.loc[ref, "estimate"] == 0 and np.isnan(t.loc[ref, "std_error"])
    assert np.isfinite(t.loc["e=-1", "std_error"])  # the arrival year is estimated, not assumed away
    assert set(h.bounds["target"]) == {"e=0", "average"}
    # the original interval of e=0 is the event study's estimate and standard error with HonestDiD's
    # normal critical value (its robust intervals are normal-based too); the event study's own
    # interval uses t(G-1) (analysis.inference.small_sample) and is wider
    lo, hi = h.original("e=0")
    z = stats.norm.ppf(0.975)
    est, se = t.loc["e=0", "estimate"], t.loc["e=0", "std_error"]
    assert lo == pytest.approx(est - z * se, rel=1e-10) and hi == pytest.approx(est + z * se, rel=1e-10)
    assert t.loc["e=0", "conf_low"] < lo and hi < t.loc["e=0", "conf_high"]
    assert h.estimates["average"] == pytest.approx(t.loc["overall (mean of e>=0)", "estimate"])
    # smoothness grid in multiples of the mean pre-period SE
    pre_se = t.loc[[f"e={e}" for e in range(-6, -1)], "std_error"].mean()
    assert h.sd_unit == pytest.approx(pre_se)
    sd = h.bounds[(h.bounds["method"] == "sd") & (h.bounds["target"] == "average")]
    assert np.allclose(sd["M"], np.array(robustness.SD_MULTIPLES) * pre_se)
    # intervals widen with M, and the breakdown value separates excluding from including zero
    rm = h.bounds[(h.bounds["method"] == "rm") & (h.bounds["target"] == "average")].sort_values("M")
    assert (np.diff(rm["ub"] - rm["lb"]) > 0).all()
    bd, _ = h.breakdown_of("average", "rm")
    for m, lb, ub in zip(rm["M"], rm["lb"], rm["ub"], strict=True):
        if m < bd - 0.01:
            assert lb > 0 or ub < 0
        if m > bd + 0.01:
            assert lb <= 0 <= ub


def test_honest_rejects_varying_base_period(panel):
    from analysis.estimators.callaway_santanna import aggregate, att_gt

    es = aggregate(att_gt(panel, "new_members", "village_code", "year", "cohort"), "event")
    with pytest.raises(ValueError, match="universal"):
        robustness.honest_analysis(es)


def test_pretrend_power_summary(honest_new_members):
    es, _ = honest_new_members
    pw = robustness.pretrend_power_summary(es)
    assert 0 < pw["slope_50"] < pw["slope_80"]
    # a linear trend through the reference period e=r (r = -2: the headline leaves the arrival year out)
    # biases e by slope * (e - r)
    r = -1 - HEADLINE.anticipation
    assert r == -2
    assert pw["bias_80"]["e=0"] == pytest.approx(-r * pw["slope_80"])
    assert pw["bias_80"]["e=1"] == pytest.approx((1 - r) * pw["slope_80"])
    assert pw["avg_bias_80"] == pytest.approx((0.5 - r) * pw["slope_80"])
    assert pw["bias_share_80"] == pytest.approx(pw["avg_bias_80"] / abs(pw["average_effect"]))


# ------------------------------------------------------------------ summary, results.json, no mutation
def test_summary_payload_and_no_mutation(panel, alternatives, honest_new_members):
    before = panel.copy()
    o = "new_members"
    _, h = honest_new_members
    power = {o: robustness.pretrend_power_summary(honest_new_members[0])}
    wild = {o: robustness.wild_summary(panel, o, B=99, seed=1)}
    ri = {o: robustness.randomisation_summary(panel, o, B=99, seed=1)}
    spill = {o: robustness.spillover_did(panel, o)}
    _, info = robustness.low_share_controls(panel)
    alt = alternatives[alternatives["outcome"] == o]
    checks = dict(alternatives=alt, honest={o: h}, power=power, wild=wild, randomisation=ri, spillover=spill)
    table = robustness.summary_table([o], lang="en", **checks)
    assert list(table.columns) == ["outcome", "check", "estimate", "conf_low", "conf_high", "p_value", "meaning"]
    assert {"headline", "honest_rm", "honest_sd", "pretrend_power", "wild_bootstrap", "randomisation",
            "spillover", *SPECS} == set(table["check"])
    payload = robustness.payload([o], low_share_info=info, **checks)
    entry = payload[o]
    assert set(entry) >= {"honest", "pretrend_power", "wild", "randomisation", "alternatives", "spillover"}
    assert set(entry["alternatives"]) == set(SPECS)
    assert entry["honest"]["target"] == "average" and {"M", "lb", "ub"} <= set(entry["honest"]["rm"][0])
    assert entry["honest"]["breakdown_rm"] == pytest.approx(h.breakdown_of("average", "rm")[0])
    text = json.dumps(payload, sort_keys=True)
    assert text == json.dumps(robustness.payload([o], low_share_info=info, **checks), sort_keys=True)
    for lang in ("zh", "en"):
        (para,) = robustness.findings([o], low_share_info=info, lang=lang, **checks)
        assert f"{h.breakdown_of('average', 'rm')[0]:.2f}"[:3] in para
    pd.testing.assert_frame_equal(panel, before)
