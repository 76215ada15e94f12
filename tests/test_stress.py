"""The stress-test Monte Carlo (analysis.grid.stress) and its view (analysis.report.stress).

Default tier: the machinery on a small city and two replications (seeded tasks, common city seeds
across scenarios, resumable cache, determinism, the summary's arithmetic and the null flags).
The committed arrival-year records (``data/montecarlo/arrival_records.csv.gz``; README, "The
arrival year"): the README and notebook 02 quote them through the code, the decision's criteria,
and one city recomputed. The committed stress records (``data/montecarlo/stress_records.csv.gz``,
made by ``study stress``; README, "Stress test"): the README quotes them, and the bands they meet.
Heavy tier (``slow``): the first city of every stress scenario recomputed (stale records), and every
city of the arrival-year records re-measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import paths
from analysis.core.spec import DEFAULT_COVARIATES
from analysis.core.treatment import attach_treatment
from analysis.data.synthetic import get_scenario, simulate_city
from analysis.estimate import estimate
from analysis.grid.montecarlo import replication_seeds
from analysis.grid.stress import (
    ARRIVAL_KEPT,
    RECORD_COLUMNS,
    SUMMARY_COLUMNS,
    load_meta,
    load_records,
    run_and_write,
    run_stress,
    run_stress_task,
    stress_tasks,
    summarise_stress,
    write_records,
)
from analysis.report.stress import arrival_markdown, arrival_table, plot_stress, stress_findings, stress_tables

SMALL = dict(n_villages=1000, n_townships=60)


def test_tasks_are_one_city_per_scenario_and_seed():
    tasks = stress_tasks(3, 7, scenarios=("default", "partial_exposure"))
    assert [t.key for t in tasks] == [("default", i) for i in range(3)] + [("partial_exposure", i) for i in range(3)]
    # common random numbers: the same city seeds in every scenario, spawned from the study seed
    assert [t.seed for t in tasks[:3]] == [t.seed for t in tasks[3:]] == replication_seeds(7, 3)
    assert tasks[3].scenario.partial_exposure and not tasks[0].scenario.partial_exposure
    assert [t.seed for t in stress_tasks(5, 7, scenarios=("default",))][:3] == replication_seeds(7, 3)
    with pytest.raises(ValueError, match="replications"):
        stress_tasks(0, 7)
    with pytest.raises(ValueError, match="unknown check"):
        stress_tasks(1, 7, checks=("astrology",))
    with pytest.raises(ValueError, match="unknown scenario"):
        stress_tasks(1, 7, scenarios=("tsunami",))


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    cache = tmp_path_factory.mktemp("stress-cache")
    tasks = stress_tasks(2, 11, scenarios=("default", "no_effect"), outcomes=("income_per_capita",),
                         estimators=("cs", "twfe"), draws=49, **SMALL)
    return tasks, cache, run_stress(tasks, cache_dir=cache)


def test_records_have_every_check_and_flag_the_nulls(small_run):
    tasks, _, rec = small_run
    assert list(rec.columns) == list(RECORD_COLUMNS)
    assert list(dict.fromkeys(zip(rec["scenario"], rec["replication"], strict=True))) == [t.key for t in tasks]
    one = rec[(rec["scenario"] == "default") & (rec["replication"] == 0)]
    assert list(zip(one["check"], one["method"], strict=True)) == [
        ("estimate", "cs"), ("estimate", "twfe"), ("pretest", "cs_wald"), ("randomisation", "cs_county_propensity"),
        ("wild", "twfe_webb"), ("wild", "twfe_crv1"), ("spillover", "cs_high_share"),
        ("heterogeneity", "cadre_type_wald"), ("honest", "original"), ("honest", "rm"), ("honest", "sd")]
    flags = rec.groupby(["scenario", "check"])["null_true"].first()
    # no effect anywhere: the sharp null of randomisation inference and equal cadre effects hold
    assert flags["no_effect", "randomisation"] == 1 and flags["default", "randomisation"] == 0
    assert flags["no_effect", "heterogeneity"] == 1 and flags["default", "heterogeneity"] == 0
    assert flags["default", "pretest"] == 1 and flags["default", "spillover"] == 1
    est = rec[rec["check"] == "estimate"]
    assert (est.loc[est["scenario"] == "no_effect", "truth"] == 0).all() and (est.loc[est["scenario"] == "default",
                                                                               "truth"] > 0).all()


def test_the_run_resumes_from_its_cache_and_each_city_is_reproducible(small_run):
    tasks, cache, rec = small_run
    assert len(list(cache.glob("*.parquet"))) == len(tasks)  # one file per task (Parquet since the Dask engine)
    shuffled = [tasks[1], tasks[3], tasks[0], tasks[2]]  # read back in another order: the same records
    again = run_stress(shuffled, cache_dir=cache)
    pd.testing.assert_frame_equal(again, rec)
    fresh = pd.DataFrame(run_stress_task(tasks[1]))  # recomputed without the cache: the same numbers
    cached = rec[(rec["scenario"] == "default") & (rec["replication"] == 1)].reset_index(drop=True)
    pd.testing.assert_frame_equal(fresh.reset_index(drop=True), cached, check_dtype=False)


def test_records_file_round_trip_and_summary(small_run, tmp_path):
    _, _, rec = small_run
    path = write_records(rec, tmp_path / "stress.csv.gz")
    back = load_records(path)
    pd.testing.assert_frame_equal(back[["scenario", "replication", "check", "method"]],
                                  rec[["scenario", "replication", "check", "method"]])
    np.testing.assert_allclose(back["estimate"], rec["estimate"], rtol=1e-9)
    s = summarise_stress(back)
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    assert (s["replications"] + s["failed"] == 2).all()
    est, chk = stress_tables(s)
    assert set(est["estimator"]) == {"cs", "twfe"} and set(chk["rate_kind"]) <= {"size", "power", "coverage"}
    assert len(stress_findings(s, "en")) == 2 and len(stress_findings(s, "zh")) == 2
    plot_stress(s, "en")


def test_summary_arithmetic_on_made_up_records():
    base = {"scenario": "s", "seed": 1, "outcome": "y", "std_error": 1.0, "null_true": np.nan, "error": ""}
    rec = pd.DataFrame([
        # an estimator: errors -1 and +1, one interval covers
        {**base, "replication": 0, "check": "estimate", "method": "cs", "estimate": 1.0, "conf_low": 0.0,
         "conf_high": 1.5, "p_value": 0.1, "truth": 2.0},
        {**base, "replication": 1, "check": "estimate", "method": "cs", "estimate": 3.0, "conf_low": 1.0,
         "conf_high": 5.0, "p_value": 0.1, "truth": 2.0},
        # a test under a true null: one rejection of two, one city without a p-value
        {**base, "replication": 0, "check": "pretest", "method": "cs_wald", "p_value": 0.01, "null_true": 1.0},
        {**base, "replication": 1, "check": "pretest", "method": "cs_wald", "p_value": 0.5, "null_true": 1.0},
        {**base, "replication": 2, "check": "pretest", "method": "cs_wald", "p_value": np.nan, "null_true": 1.0,
         "error": "no p-value (singular covariance)"},
        # the wild bootstrap's null is the coefficient's mean over the cities (here 2.0): one miss
        {**base, "replication": 0, "check": "wild", "method": "twfe_webb", "estimate": 1.0, "conf_low": 0.5,
         "conf_high": 1.5, "p_value": 0.0, "null_true": 1.0},
        {**base, "replication": 1, "check": "wild", "method": "twfe_webb", "estimate": 3.0, "conf_low": 1.0,
         "conf_high": 4.0, "p_value": 0.0, "null_true": 1.0},
    ])
    s = summarise_stress(rec).set_index("check")
    e = s.loc["estimate"]
    assert (e["bias"], e["rmse"], e["coverage"], e["relative_bias"]) == (0.0, 1.0, 0.5, 0.0)
    assert e["se_ratio"] == pytest.approx(1 / np.std([1.0, 3.0], ddof=1))
    assert e["mean_se"] == 1.0
    assert e["verdict"] == "covers"  # within 2 Monte Carlo SEs of 95% with two cities
    p = s.loc["pretest"]
    assert (p["replications"], p["failed"], p["rejection"]) == (2, 1, 0.5)
    assert p["verdict"] == "holds its size; no result in 1 cities"
    w = s.loc["wild"]
    assert w["mean_truth"] == 2.0 and w["rejection"] == 0.5 and w["null_true"] == 1.0


def test_the_arrival_year_kept_is_the_headline_with_anticipation_0_and_the_run_says_how_it_was_made(tmp_path):
    # The arrival-year Monte Carlo's alternative is `study estimate --anticipation 0`, nothing else.
    out = tmp_path / "arrival_records.csv.gz"
    s = run_and_write(1, 11, out, scenarios=("partial_exposure",), outcomes=("income_per_capita",),
                      estimators=("cs", ARRIVAL_KEPT), checks=())
    assert s["method"].tolist() == ["cs", ARRIVAL_KEPT]
    rec = load_records(out).set_index("method")
    city = simulate_city(seed=replication_seeds(11, 1)[0], scenario=get_scenario("partial_exposure"))
    panel = attach_treatment(city.panel, city.treatment)
    for method, a in (("cs", 1), (ARRIVAL_KEPT, 0)):
        row = estimate(panel, "income_per_capita", "cs", covariates=DEFAULT_COVARIATES,
                       anticipation=a).tidy().iloc[0]
        assert rec.loc[method, "estimate"] == pytest.approx(row["estimate"], rel=1e-9)
        assert rec.loc[method, "std_error"] == pytest.approx(row["std_error"], rel=1e-9)
    assert s.set_index("method").loc["cs", "mean_se"] == pytest.approx(rec.loc["cs", "std_error"], rel=1e-9)
    assert rec.loc["cs", "estimate"] != pytest.approx(rec.loc[ARRIVAL_KEPT, "estimate"], rel=1e-3)
    assert load_meta(out) == {
        "seed": 11, "replications": 1, "scenarios": ["partial_exposure"], "outcomes": ["income_per_capita"],
        "estimators": ["cs", ARRIVAL_KEPT], "checks": [],
        "command": "study stress --replications 1 --seed 11 --scenarios partial_exposure --outcomes "
                   "income_per_capita --estimators cs,cs_arrival_kept --checks none"}


# ----------------------------------------------------------------------------- heavy tier


def _summary() -> pd.DataFrame:
    if not paths.STRESS_RECORDS.is_file():
        pytest.fail(f"{paths.STRESS_RECORDS} is missing: run `study stress` (README, 'Stress test')")
    return summarise_stress(load_records(paths.STRESS_RECORDS)).set_index(["scenario", "outcome", "check", "method"])


@pytest.mark.slow
def test_committed_records_are_what_the_code_produces():
    # Recompute the first city of every scenario: a changed estimator or check makes the records stale
    # (rerun `study stress`, README), and this test says so.
    rec = load_records(paths.STRESS_RECORDS)
    meta = load_meta(paths.STRESS_RECORDS)
    tasks = stress_tasks(1, meta["seed"], scenarios=meta["scenarios"], outcomes=meta["outcomes"],
                         estimators=meta["estimators"], checks=meta["checks"])
    for t in tasks:
        fresh = run_stress([t])  # sorted as the records are (by outcome in schema order, check, method)
        old = rec[(rec["scenario"] == t.scenario.name) & (rec["replication"] == 0)].reset_index(drop=True)
        assert list(zip(fresh["outcome"], fresh["check"], fresh["method"], strict=True)) == list(
            zip(old["outcome"], old["check"], old["method"], strict=True))
        num = ["estimate", "std_error", "conf_low", "conf_high", "p_value", "truth"]
        np.testing.assert_allclose(fresh[num].to_numpy(float), old[num].to_numpy(float), rtol=1e-8, atol=1e-12,
                                   err_msg=f"{t.scenario.name}: records are stale, rerun `study stress`")


def test_readme_quotes_the_measured_stress_test():
    readme = " ".join((paths.ROOT / "README.md").read_text(encoding="utf-8").split())
    meta = load_meta(paths.STRESS_RECORDS)
    assert f"study stress --replications {meta['replications']} --seed {meta['seed']}" in readme
    for sentence in stress_findings(summarise_stress(load_records(paths.STRESS_RECORDS)), "en"):
        assert "- " + " ".join(sentence.split()) in readme


def test_stress_bands():
    # What the committed records show, within their Monte Carlo error: the `verdict`
    # allows two Monte Carlo SEs (at least those of the nominal level), as notebook 06 prints it.
    s = _summary()

    def verdict(*key: str) -> str:
        return str(s.loc[key, "verdict"])

    for oc in ("income_per_capita", "criminal_cases", "new_members"):
        # The headline covers where its assumptions hold, including the arrival-year failures it leaves out.
        for scn in ("default", "no_effect", "partial_exposure", "anticipation", "nonlinear_trends"):
            assert verdict(scn, oc, "estimate", "cs") == "covers", (scn, oc)
        # Every test holds its size on the default city.
        for check, method in (("pretest", "cs_wald"), ("spillover", "cs_high_share"), ("wild", "twfe_webb")):
            assert verdict("default", oc, check, method).startswith("holds its size"), (oc, check)
    # TWFE is biased by design where effects exist.
    assert s.loc[("default", "income_per_capita", "estimate", "twfe"), "relative_bias"] < -0.3
    # Keeping the arrival year under partial exposure is biased towards zero; the headline is not.
    pe = ("partial_exposure", "income_per_capita", "estimate")
    assert s.loc[(*pe, "cs_arrival_kept"), "relative_bias"] < -0.1 < s.loc[(*pe, "cs"), "relative_bias"] < 0.1
    # A violation of parallel trends the scenario sets: the conventional interval misses, HonestDiD's
    # smoothness interval at M = 0 (linear violations allowed) covers.
    assert verdict("trend_gap", "income_per_capita", "honest", "sd") == "covers"
    assert verdict("trend_gap", "income_per_capita", "honest", "original") == "undercovers"
    # The failures the outputs name: the pre-test with county-year shocks and township clusters; with nine county
    # clusters and nine pre-period cells it gives no result (a clustered covariance of rank at most G - 1).
    assert verdict("clustered_shocks", "income_per_capita", "pretest", "cs_wald") == "over-rejects"
    for oc in ("income_per_capita", "criminal_cases", "new_members"):
        assert verdict("few_clusters", oc, "pretest", "cs_wald").startswith("no result in"), oc
        # Randomisation inference within county x propensity quintile (the study's default) holds its size where
        # there is no effect at all (within county alone it rejected 37% for income: analysis.grid.checks).
        assert verdict("no_effect", oc, "randomisation", "cs_county_propensity") == "holds its size", oc


def _arrival_summary() -> pd.DataFrame:
    return summarise_stress(load_records(paths.ARRIVAL_RECORDS))


def test_readme_and_notebook_02_quote_the_measured_arrival_year():
    # Every number of the arrival-year table comes from the committed records, through the code.
    table = arrival_markdown(_arrival_summary())
    meta = load_meta(paths.ARRIVAL_RECORDS)
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert table in readme
    assert f"study stress --replications {meta['replications']} --seed {meta['seed']}" in readme
    nb = (paths.ROOT / "notebooks" / "02_main_effects.py").read_text(encoding="utf-8")
    assert "\n".join("# " + line for line in table.splitlines()) in nb
    assert f"{meta['replications']} simulated cities" in nb


def test_the_arrival_year_decision_as_measured():
    # Under partial exposure the headline (arrival year left out) is unbiased and covers; keeping the year is
    # biased towards zero by about a standard error for income. On the default city both are unbiased.
    a = arrival_table(_arrival_summary()).set_index(["scenario", "outcome", "arrival_year"])
    n = int(a["replications"].min())
    assert n >= 400
    for oc in ("income_per_capita", "criminal_cases", "new_members"):
        head = a.loc[("partial_exposure", oc, "left out")]
        assert abs(head["bias_se"]) < 0.1 + 2 * head["bias_se_mc_se"], oc
        assert head["coverage"] >= 0.93 - 2 * head["coverage_mc_se"], oc
        for rule in ("left out", "kept"):
            assert abs(a.loc[("default", oc, rule), "bias_se"]) < 0.1 + 2 * a.loc[("default", oc, rule),
                                                                                      "bias_se_mc_se"], (oc, rule)
    kept = a.loc[("partial_exposure", "income_per_capita", "kept")]
    assert kept["bias_se"] < -0.8 and kept["coverage"] < 0.88


def test_a_city_of_the_committed_arrival_records_is_what_the_code_produces():
    meta = load_meta(paths.ARRIVAL_RECORDS)
    rec = load_records(paths.ARRIVAL_RECORDS)
    tasks = stress_tasks(1, meta["seed"], scenarios=meta["scenarios"], outcomes=meta["outcomes"],
                         estimators=meta["estimators"], checks=meta["checks"])
    fresh = run_stress(tasks)
    old = rec[rec["replication"] == 0].reset_index(drop=True)
    num = ["estimate", "std_error", "conf_low", "conf_high", "truth"]
    np.testing.assert_allclose(fresh[num].to_numpy(float), old[num].to_numpy(float), rtol=1e-8,
                               err_msg="arrival records are stale: rerun the command in the README")


@pytest.mark.slow
def test_arrival_year_records_remeasured():
    # Re-measure every city of the committed arrival-year records (README, "The arrival year").
    meta = load_meta(paths.ARRIVAL_RECORDS)
    tasks = stress_tasks(meta["replications"], meta["seed"], scenarios=meta["scenarios"], outcomes=meta["outcomes"],
                         estimators=meta["estimators"], checks=meta["checks"])
    fresh = run_stress(tasks, n_jobs=2)
    old = load_records(paths.ARRIVAL_RECORDS)
    assert list(zip(fresh["scenario"], fresh["replication"], fresh["method"], strict=True)) == list(
        zip(old["scenario"], old["replication"], old["method"], strict=True))
    num = ["estimate", "std_error", "conf_low", "conf_high", "truth"]
    np.testing.assert_allclose(fresh[num].to_numpy(float), old[num].to_numpy(float), rtol=1e-8)
