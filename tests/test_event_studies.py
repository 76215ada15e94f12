"""Event studies (analysis.stages.event_studies) on the default synthetic city.

Reference values: CS rows and the pre-test are recomputed independently with ``att_gt``,
``aggregate`` and ``pretest``; the Bacon identity is checked against the static TWFE from
``analysis.estimators.twfe.twfe``; the truth is ``SyntheticCity.truth_aggregates``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.core.panel import covariate_columns
from analysis.core.spec import DEFAULT_COVARIATES
from analysis.core.treatment import attach_treatment
from analysis.data.synthetic import simulate_city
from analysis.estimators.callaway_santanna import aggregate, att_gt, pretest
from analysis.estimators.twfe import twfe
from analysis.report.results_json import clean
from analysis.report.tables import save_table
from analysis.stages import event_studies as E

SEED = 20230601
OUTCOME = "criminal_cases"


@pytest.fixture(scope="module")
def city():
    c = simulate_city(seed=SEED)
    return c, attach_treatment(c.panel, c.treatment)


@pytest.fixture(scope="module")
def run(city):
    _, panel = city
    before = panel.copy(deep=True)
    es = E.event_study(panel, OUTCOME, bootstrap_draws=199, seed=SEED)
    return es, panel, before


def test_frame_has_all_four_estimators(run):
    es, _, _ = run
    f = es.frame
    assert list(f.columns) == list(E.FRAME_COLUMNS)
    assert list(dict.fromkeys(f["estimator"])) == list(E.ESTIMATORS)
    for est in E.ESTIMATORS:
        d = f[f["estimator"] == est]
        assert {0, 1} <= set(d["event_time"]), est
        assert d.loc[d["event_time"] >= 0, "std_error"].notna().all(), est
    # normalised reference period e = -1; for CS e = -2: the headline leaves the arrival year out (issue 11)
    for est, e_ref in (("cs", -2), ("twfe", -1), ("sa", -1)):
        ref = f[(f["estimator"] == est) & f["reference"]]
        assert ref["event_time"].tolist() == [e_ref] and ref["estimate"].tolist() == [0.0], est
    assert sorted(f.loc[f["estimator"] == "cs", "event_time"]) == list(range(-6, 2))


def test_cs_rows_equal_independent_estimate_with_wider_band(run):
    es, panel, _ = run
    data, covs = covariate_columns(panel, list(DEFAULT_COVARIATES))
    r = att_gt(data, OUTCOME, "village_code", "year", "cohort", covariates=covs, control_group="notyet",
               method="dr", cluster="township_code", base_period="universal", anticipation=1)
    ref = aggregate(r, "event").tidy("event").dropna(subset=["event_time"])
    cs = es.frame[es.frame["estimator"] == "cs"]
    assert np.allclose(cs["estimate"].to_numpy(), ref["estimate"].to_numpy(), rtol=1e-12, atol=0)
    post = cs[cs["std_error"].notna()]
    assert (post["band_high"] - post["band_low"] > post["conf_high"] - post["conf_low"]).all()
    assert es.cs_simple["estimate"] == pytest.approx(aggregate(r, "simple").tidy().iloc[0]["estimate"], rel=1e-12)
    assert es.results["cs"].tidy("event")["band"].eq("simultaneous").sum() == len(post)


def test_pretest_is_cs_wald_on_varying_base(run):
    es, panel, _ = run
    data, covs = covariate_columns(panel, list(DEFAULT_COVARIATES))
    ref = pretest(att_gt(data, OUTCOME, "village_code", "year", "cohort", covariates=covs, control_group="notyet",
                         method="dr", cluster="township_code", anticipation=1))
    assert es.pretest.p_value == pytest.approx(ref.p_value, rel=1e-12)
    assert es.pretest.df == 9 and 0 <= es.pretest.p_value <= 1


def test_twfe_binned_and_bjs_pretrend_rows(run):
    es, panel, _ = run
    tw = es.frame[es.frame["estimator"] == "twfe"]
    assert tw["event_time"].min() == -E.TWFE_LEADS and "e<=-5" in tw["term"].tolist()
    bjs = es.frame[es.frame["estimator"] == "bjs"]
    assert sorted(bjs.loc[bjs["pre_test_row"], "event_time"]) == [-5, -4, -3, -2, -1]
    assert E.bjs_pretrend_periods(panel) == 5
    assert 0 <= es.bjs_pretest["p_value"] <= 1 and es.bjs_pretest["df"] == 5


def test_bacon_weights_sum_to_one_and_reproduce_twfe(run):
    es, panel, _ = run
    tab = E.bacon_table(es.bacon)
    ref = twfe(panel, OUTCOME, "village_code", "year", "cohort").tidy("coef").iloc[0]["estimate"]
    assert tab["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert tab["contribution"].sum() == pytest.approx(ref, rel=1e-9)
    s = E.bacon_summary(es.bacon)
    assert s["twfe"] == pytest.approx(ref, rel=1e-9)
    assert sum(s["weights_by_type"].values()) == pytest.approx(1.0, abs=1e-12)
    assert s["forbidden_weight"] == pytest.approx(tab.loc[tab["forbidden"], "weight"].sum(), abs=0)
    assert 0 < s["forbidden_weight"] < 0.1  # two cohorts one year apart: little forbidden weight
    assert set(tab["type"]) == set(s["weights_by_type"])


def test_cs_path_covers_the_truth(run, city):
    es, _, _ = run
    ta = city[0].truth_aggregates
    tr = ta[(ta["outcome"] == OUTCOME) & (ta["aggregation"] == "event") & ta["cadre_type"].isna()]
    cs = es.frame[es.frame["estimator"] == "cs"].set_index("event_time")
    for e in (0, 1):
        truth = float(tr.loc[tr["event_time"] == e, "value"].iloc[0])
        assert cs.loc[e, "conf_low"] <= truth <= cs.loc[e, "conf_high"], e
        assert cs.loc[e, "band_low"] <= truth <= cs.loc[e, "band_high"], e


def test_payload(run):
    es, _, _ = run
    pay = E.payload({OUTCOME: es})
    assert set(pay) == {OUTCOME}
    entry = pay[OUTCOME]
    assert set(entry) == {"cs", "twfe", "sa", "bjs", "pretest_p", "bacon"}
    assert set(entry["bacon"]) == {"twfe", "weights_by_type", "estimates_by_type"}
    for est in E.ESTIMATORS:
        assert len(entry[est]) == int((es.frame["estimator"] == est).sum())
        assert all(r["estimator"] == est and r["event_time"] is not None for r in entry[est])
    assert entry["pretest_p"] == pytest.approx(es.pretest.p_value, rel=1e-12)
    json.dumps(clean(pay))


def test_deterministic_with_seed(run, city, tmp_path):
    es, panel, _ = run
    again = E.event_study(panel, OUTCOME, bootstrap_draws=199, seed=SEED)
    a = save_table(es.frame, "03_event_studies", tmp_path / "a")["csv"].read_bytes()
    b = save_table(again.frame, "03_event_studies", tmp_path / "b")["csv"].read_bytes()
    assert a == b
    ja = json.dumps(clean(E.payload({OUTCOME: es})), sort_keys=True)
    jb = json.dumps(clean(E.payload({OUTCOME: again})), sort_keys=True)
    assert ja == jb


def test_caller_frame_not_mutated(run):
    _, panel, before = run
    pd.testing.assert_frame_equal(panel, before)


def test_figures_summary_and_findings(run):
    from matplotlib import pyplot as plt

    from analysis.report.figures import setup_fonts

    setup_fonts()
    es, _, _ = run
    for lang in ("en", "zh"):
        fig = E.plot_event_study(es, lang)
        plt.close(fig)
        fig = E.plot_bacon(es.bacon, lang, cs_att=float(es.cs_simple["estimate"]))
        plt.close(fig)
    tab = E.summary_table({OUTCOME: es})
    assert tab.loc[0, "cs_pretest_p"] == es.pretest.p_value
    assert tab.loc[0, "e_last"] == 1
    text = "\n".join(E.findings({OUTCOME: es}, "en"))
    assert "pre-test" in text and "forbidden" in text
    assert "预趋势" in "\n".join(E.findings({OUTCOME: es}, "zh"))


def test_bad_arguments(city):
    _, panel = city
    with pytest.raises(ValueError, match="cluster"):
        E.event_study(panel, OUTCOME, cluster="province")
    with pytest.raises(ValueError, match="not in the panel"):
        E.event_study(panel, "no_such_outcome")


def test_fits_are_kept_light(run):
    """One event study per outcome is held by the stage: its fits keep rows and covariances, not design matrices."""
    es = run[0]
    for r in es.results.values():
        assert r.fit is None and r.details is None and r.att_gt is None
    assert es.results["cs"].bootstrap is not None  # the band's draws are kept
