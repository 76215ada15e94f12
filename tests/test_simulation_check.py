"""Tests of analysis.stages.simulation_check (notebook 06).

* estimates against the truth: ``covered`` and ``bias`` checked by hand on made-up rows
  (bounds included) and against an independent computation on the default city, where
  the simulator's truth says CS covers the income effect and TWFE, attenuated by design
  (analysis.data.synthetic.outcomes, "Built-in TWFE bias"), does not;
* the Monte Carlo table is deterministic by seed (small cities), and its Monte Carlo SE
  of the bias is the standard deviation of the errors over sqrt(replications);
* the truth path works from a store built with simulate_to_store (load_truth), and the
  real-data path (no truth) gives the "not available" section;
* the caller's frames are never mutated.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.data.synthetic.truth import load_truth
from analysis.report.results_json import write_section
from analysis.stages import simulation_check as sc

SMALL = {"n_villages": 400, "n_townships": 24}


@pytest.fixture(scope="module")
def city():
    from analysis.data.synthetic import simulate_city

    return simulate_city()  # seed 20230601, the default city


@pytest.fixture(scope="module")
def panel(city):
    from analysis.core.treatment import attach_treatment

    return attach_treatment(city.panel, city.treatment)


@pytest.fixture(scope="module")
def estimates(panel):
    return sc.headline_estimates(panel, ["income_per_capita"])


def test_covered_and_bias_on_made_up_rows():
    est = pd.DataFrame({"outcome": ["y", "y", "y", "z"], "estimator": ["cs", "sa", "twfe", "cs"],
                        "term": "ATT", "estimate": [2.5, 1.0, 5.0, -1.0], "std_error": 1.0,
                        "conf_low": [1.0, 0.0, 4.5, -2.0], "conf_high": [3.0, 2.0, 6.0, 0.0]})
    truth = pd.DataFrame({"outcome": ["y", "z", "z"], "aggregation": ["simple", "simple", "event"],
                          "value": [2.0, 0.0, 9.0]})
    t = sc.estimates_vs_truth(est, truth)
    assert t.columns.tolist() == list(sc.VS_TRUTH_COLUMNS)
    assert t["covered"].tolist() == [True, True, False, True]  # 2 in [0, 2] and 0 in [-2, 0]: bounds count
    assert t["bias"].tolist() == [0.5, -1.0, 3.0, -1.0]
    assert t["relative_bias"].iloc[:3].tolist() == [0.25, -0.5, 1.5]
    assert np.isnan(t["relative_bias"].iloc[3])  # truth 0: no relative bias


def test_estimates_against_the_city_truth(estimates, city):
    t = sc.estimates_vs_truth(estimates, city.truth_aggregates)
    assert t[["outcome", "estimator"]].values.tolist() == [
        ["income_per_capita", e] for e in sc.ESTIMATORS]
    ta = city.truth_aggregates
    for r in t.to_dict("records"):
        truth = ta[(ta["outcome"] == r["outcome"]) & (ta["aggregation"] == "simple")]["value"].iloc[0]
        assert r["truth"] == truth
        assert r["covered"] == bool(r["conf_low"] <= truth <= r["conf_high"])
        assert r["bias"] == pytest.approx(r["estimate"] - truth)
    inc = t[t["outcome"] == "income_per_capita"].set_index("estimator")
    assert inc.loc["cs", "covered"] and inc.loc["sa", "covered"] and inc.loc["bjs", "covered"]
    assert not inc.loc["twfe", "covered"] and inc.loc["twfe", "relative_bias"] < -0.3
    assert estimates.loc[estimates["estimator"] == "twfe", "aggregation"].eq("coef").all()
    assert estimates.loc[estimates["estimator"] != "twfe", "aggregation"].eq("simple").all()


def test_estimator_specs_follow_the_notebook_options():
    s = sc.estimator_specs("never", ["terrain"])
    assert s["cs"].control_group == "never" and s["cs"].covariates == ("terrain",)
    assert s["sa"].control_group == "never" and s["bjs"].covariates == ("terrain",)
    assert s["twfe"].covariates == () and s["twfe"].aggregation == "coef"


def test_monte_carlo_is_deterministic_by_seed():
    kw = dict(outcomes=("income_per_capita",), estimators=("cs", "twfe"), n_jobs=1, **SMALL)
    mc1, s1 = sc.run_monte_carlo(3, 11, **kw)
    mc2, s2 = sc.run_monte_carlo(3, 11, **kw)
    pd.testing.assert_frame_equal(mc1, mc2)
    pd.testing.assert_frame_equal(s1, s2)
    mc3, _ = sc.run_monte_carlo(3, 12, **kw)
    assert not np.allclose(mc1["estimate"], mc3["estimate"])
    assert s1.columns.tolist() == list(sc.MC_COLUMNS)
    assert s1["estimator"].tolist() == ["cs", "twfe"] and (s1["replications"] == 3).all()
    # Monte Carlo SE of the bias: sd of the errors / sqrt(R), computed here
    for r in s1.to_dict("records"):
        err = mc1.loc[mc1["estimator"] == r["estimator"], "estimate"] - mc1.loc[mc1["estimator"] == r["estimator"],
                                                                                  "truth"]
        assert r["bias"] == pytest.approx(err.mean())
        assert r["bias_mc_se"] == pytest.approx(np.std(err.to_numpy(), ddof=1) / np.sqrt(3))
        cover = ((mc1["conf_low"] <= mc1["truth"]) & (mc1["truth"] <= mc1["conf_high"]))[
            mc1["estimator"] == r["estimator"]]
        assert r["coverage"] == pytest.approx(cover.mean())


def test_mc_outcomes():
    assert sc.mc_outcomes(["criminal_cases", "income_per_capita", "disputes"]) == ["income_per_capita"]
    assert sc.mc_outcomes(["disputes", "projects"]) == ["disputes"]


def test_truth_path_from_a_simulated_store(city_store, estimates, tmp_path):
    truth = load_truth(city_store, city_store.parent / "synthetic")
    assert truth is not None
    vs = sc.estimates_vs_truth(estimates, truth)
    mc = pd.DataFrame({"outcome": "income_per_capita", "estimator": ["cs", "cs"], "estimate": [1.0, 3.0],
                       "std_error": 1.0, "conf_low": [0.0, 2.5], "conf_high": [2.0, 4.0], "truth": 2.0,
                       "replication": [0, 1], "seed": [1, 2]})
    payload = sc.payload(estimates, vs, sc.monte_carlo_summary(mc), "checked", {"replications": 2})
    doc = json.loads(write_section(tmp_path, "simulation_check", payload).read_text())
    assert doc["available"] is True and doc["note"] == "checked"
    assert len(doc["estimates_vs_truth"]) == len(vs)
    first = doc["estimates_vs_truth"][0]
    assert first["outcome"] == "income_per_capita" and first["estimator"] == "cs" and first["term"] == "ATT"
    assert first["covered"] is bool(vs["covered"].iloc[0])
    assert first["truth"] == pytest.approx(vs["truth"].iloc[0], rel=1e-9)
    assert doc["monte_carlo"][0]["coverage"] == 0.5 and doc["monte_carlo_options"] == {"replications": 2}


def test_real_data_path_is_not_available(city_store, tmp_path):
    assert load_truth(city_store, tmp_path / "no_truth_here") is None
    doc = json.loads(write_section(tmp_path, "simulation_check", sc.not_available("no truth: real data"))
                     .read_text())
    assert doc == {"available": False, "note": "no truth: real data", "estimates_vs_truth": [], "monte_carlo": []}
    assert sc.findings(None, None) == []


def test_findings_count_coverage(estimates, city):
    vs = sc.estimates_vs_truth(estimates, city.truth_aggregates)
    lines = sc.findings(vs, None, "en")
    assert len(lines) == len(sc.ESTIMATORS)
    k = int(vs.loc[vs["estimator"] == "twfe", "covered"].sum())
    assert f"TWFE (static, benchmark) covers the truth for {k} of 1 outcomes" in lines[-1]


def test_callers_frames_are_not_mutated(panel, estimates, city):
    p0, e0, t0 = panel.copy(deep=True), estimates.copy(deep=True), city.truth_aggregates.copy(deep=True)
    sc.headline_estimates(panel, ["projects"], estimators=("cs",))
    vs = sc.estimates_vs_truth(estimates, city.truth_aggregates)
    v0 = vs.copy(deep=True)
    sc.payload(estimates, vs, None, "x")
    pd.testing.assert_frame_equal(panel, p0)
    pd.testing.assert_frame_equal(estimates, e0)
    pd.testing.assert_frame_equal(city.truth_aggregates, t0)
    pd.testing.assert_frame_equal(vs, v0)
