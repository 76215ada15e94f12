"""Tests of the calibrated synthetic city (analysis.data.synthetic).

Reference numbers come from two places, named at each assertion:
- CONTEXT.md (the municipal report): 3,224 villages, 178 townships, about nine districts,
  a pilot district with 400+ first secretaries from December 2022, 1,458 first secretaries
  = 45.2% of villages by the end of 2023, income 3,313 yuan in 2023, 598 projects,
  18.43 million yuan of funds, 1,835 km of roads, 8,246 activists, 3,877 new members,
  668 teams reorganised;
- the simulator's own design (module docstring): the effects, signs and weights it builds in.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis.core.treatment import attach_treatment, derive_treatment
from analysis.data import schema
from analysis.data.synthetic import (
    Scenario,
    aggregate_truth,
    simulate_city,
    simulate_to_store,
    summarise_city,
    write_city,
)
from analysis.data.synthetic.calibration import EFFECTS, REPORT_INCOME

SEED = 20230601


@pytest.fixture(scope="module")
def city():
    return simulate_city(seed=SEED)


@pytest.fixture(scope="module")
def panel(city):
    return attach_treatment(city.panel, city.treatment)


def _twfe(p: pd.DataFrame, y: str) -> float:
    """Static TWFE coefficient on `treated` (balanced panel: two-way demeaning)."""
    out = []
    for col in (y, "treated"):
        v = p[col].to_numpy(float)
        vi = p.groupby("village_code")[col].transform("mean").to_numpy()
        vt = p.groupby("year")[col].transform("mean").to_numpy()
        out.append(v - vi - vt + v.mean())
    yd, dd = out
    return float((yd * dd).sum() / (dd**2).sum())


# ----------------------------------------------------------------------------- calibration


def test_geography_matches_report(city):
    # CONTEXT.md: 3,224 villages in 178 townships, about nine county-level districts.
    p = city.panel
    assert p["village_code"].nunique() == 3224
    assert p["township_code"].nunique() == 178
    assert p["county_code"].nunique() == 9
    assert set(p["county_code"].str[:2]) == {"99"}  # fictional province prefix


def test_first_batch_is_1458_villages_45_2_percent(city):
    # CONTEXT.md: 1,458 first secretaries = 45.2% of 3,224 villages by the end of 2023;
    # pilot from December 2022 -> cohort 2023, city batch from July 2023 -> cohort 2024.
    cohorts = city.treatment["cohort"]
    assert int((cohorts != 0).sum()) == 1458
    assert round(1458 / 3224, 3) == 0.452
    assert round(int((cohorts != 0).sum()) / city.panel["village_code"].nunique(), 3) == 0.452
    counts = cohorts.value_counts().to_dict()
    assert set(counts) == {2023, 2024}
    assert 400 <= counts[2023] <= 450  # CONTEXT.md: "400+" pilot cadres
    assert counts[2023] + counts[2024] == 1458


def test_pilot_in_one_district_december_2022(city):
    # CONTEXT.md: one county-level district sent its cadres from December 2022.
    t = city.treatment.merge(
        city.postings[["village_code", "start_date", "batch"]], on="village_code"
    )
    pilot = t[t["batch_x"] == "pilot-2022"]
    assert pilot["village_code"].str[:6].nunique() == 1
    assert (pilot["cohort"] == 2023).all()
    first = pilot.sort_values("start_date").drop_duplicates("village_code")
    assert first["start_date"].str.startswith("2022-12-").all()
    # The city batch: after the June 2023 opinions and a week's training, mid-July to September.
    city_batch = (
        t[t["batch_x"] == "city-2023"].sort_values("start_date").drop_duplicates("village_code")
    )
    assert (city_batch["cohort"] == 2024).all()
    assert city_batch["start_date"].between("2023-07-15", "2023-09-30").all()
    assert not set(city_batch["village_code"].str[:6]) & set(pilot["village_code"].str[:6])


def test_income_level_and_growth(city):
    # CONTEXT.md: rural per-capita net income 3,313 yuan in the report year 2023 (within 3%);
    # brief: the city mean grows 8-12% a year.
    m = city.panel.groupby("year")["income_per_capita"].mean()
    assert abs(m[2023] / REPORT_INCOME - 1) < 0.03
    growth = m.pct_change().dropna()
    assert growth.between(0.08, 0.12).all(), growth.round(4).to_dict()
    inc = city.panel.loc[city.panel["year"] == 2023, "income_per_capita"]
    assert inc.mean() > inc.median() and inc.skew() > 0.5  # right-skewed


@pytest.mark.parametrize(
    ("outcome", "report_total", "report_villages"),
    [
        ("projects", 598, 514),  # CONTEXT.md: 598 projects to 514 villages
        ("funds_attracted", 18.43e6, 995),  # 18.43 million yuan to 995 villages
        ("roads_km", 1835, 778),  # 1,835 km in 778 villages
        ("activists", 8246, None),  # 8,246 party activists
        ("new_members", 3877, None),  # 3,877 new members
    ],
)
def test_programme_totals_in_ballpark_of_report(panel, outcome, report_total, report_villages):
    # Among the 1,458 first-batch villages, each programme year's total is within a factor
    # of about 1.5 of the report's figure.
    fb = panel[panel["cohort"].isin([2023, 2024])]
    for year in (2023, 2024):
        f = fb[fb["year"] == year]
        assert 0.6 < f[outcome].sum() / report_total < 1.5, (year, f[outcome].sum())
        if report_villages:
            assert 0.6 < (f[outcome] > 0).sum() / report_villages < 1.5


def test_teams_reorganised_in_ballpark(panel):
    # CONTEXT.md: 668 leadership teams reorganised (over the programme, 2023-2024 here).
    fb = panel[panel["cohort"].isin([2023, 2024]) & panel["year"].isin([2023, 2024])]
    assert 0.6 < fb["team_reorganised"].sum() / 668 < 1.5


def test_case_counts_are_small_with_many_zeros(city):
    p = city.panel
    assert (p["criminal_cases"] == 0).mean() > 0.6
    assert (p["petitions"] == 0).mean() > 0.8
    assert p["disputes"].mean() < 5


# ----------------------------------------------------------------------------- validity


def test_panel_follows_schema(city):
    p = city.panel
    assert list(p.columns) == schema.column_names("panel")
    assert not p.duplicated(list(schema.PANEL_KEY)).any()
    assert p.equals(p.sort_values(list(schema.PANEL_KEY)).reset_index(drop=True))
    assert (p.groupby("year")["village_code"].nunique() == 3224).all()  # balanced
    for c in schema.PANEL_COLUMNS:
        col = p[c.name]
        assert col.notna().all(), c.name
        if c.min is not None:
            assert (col >= c.min).all() and (col <= c.max).all(), c.name
        if c.pattern:
            assert col.str.fullmatch(c.pattern.strip("^$")).all(), c.name
        if c.levels:
            assert set(col) <= set(c.levels), c.name
        if c.kind == "binary":
            assert set(col) <= {0, 1}, c.name
        if c.kind == "int":
            assert pd.api.types.is_integer_dtype(col), c.name
    assert (p["township_code"] == p["village_code"].str[:9]).all()
    assert (p["county_code"] == p["village_code"].str[:6]).all()
    assert p["village_name"].str.fullmatch(r"[\u4e00-\u9fff]+(村|社区)").all()


def test_postings_follow_schema(city):
    q = city.postings
    assert list(q.columns) == schema.column_names("postings")
    assert q["secretary_id"].is_unique
    assert set(q["unit_type"]) == set(schema.UNIT_TYPES)
    assert q["start_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    ended = q["end_date"].notna()
    assert (q.loc[ended, "end_date"] > q.loc[ended, "start_date"]).all()
    assert set(q["village_code"]) <= set(city.panel["village_code"])
    assert set(q["batch"]) == {"pilot-2022", "city-2023"}
    # The sending unit's name agrees with its type (schema.UNIT_TYPES).
    marks = {
        "law": "公安|检察|法院|司法",
        "agriculture": "农业|水产|畜牧",
        "economic": "财政|税务|银行|供电|国有",
    }
    for unit_type, pattern in marks.items():
        names = q.loc[q["unit_type"] == unit_type, "sending_unit"]
        assert names.str.contains(pattern).all(), unit_type


def test_cohorts_come_from_postings_and_match_design(city):
    # The treatment in the city is derive_treatment(postings), and it equals the design.
    again = derive_treatment(city.postings, 2018, 2024)
    pd.testing.assert_frame_equal(again, city.treatment)
    v = city.villages.merge(city.treatment, on="village_code", how="left")
    posted = v["cohort"].notna()
    assert (v.loc[posted, "cohort"] == v.loc[posted, "intended_cohort"]).all()
    assert (v.loc[posted, "cadre_type"] == v.loc[posted, "intended_cadre"]).all()
    assert (v.loc[~posted, "intended_cohort"] == 0).all()


def test_replacements_exercise_the_union_of_postings(city):
    q = city.postings.copy()
    multi = q[q.duplicated("village_code", keep=False)].sort_values(["village_code", "start_date"])
    assert multi["village_code"].nunique() >= 30  # about 5% of 1,458 are replaced
    first = multi.drop_duplicates("village_code", keep="first").set_index("village_code")
    second = multi.drop_duplicates("village_code", keep="last").set_index("village_code")
    assert first["end_date"].notna().all() and second["end_date"].isna().all()
    gap = (pd.to_datetime(second["start_date"]) - pd.to_datetime(first["end_date"])).dt.days
    assert gap.between(-7, 28).all()  # the successor starts within weeks
    assert (first["unit_type"] == second["unit_type"]).all()
    # In the cohort year, villages where neither posting alone gives 6 months but the union does.
    coh = city.treatment.set_index("village_code")["cohort"].reindex(first.index)
    y0 = pd.to_datetime(coh.astype(str) + "-01-01")
    y1 = pd.to_datetime(coh.astype(str) + "-12-31")
    d1 = (
        np.minimum(pd.to_datetime(first["end_date"]), y1)
        - np.maximum(pd.to_datetime(first["start_date"]), y0)
    ).dt.days + 1
    d2 = (y1 - np.maximum(pd.to_datetime(second["start_date"]), y0)).dt.days + 1
    half = 365 / 2
    only_union = (d1 < half) & (d2 < half)
    assert only_union.sum() >= 1
    assert (coh[only_union] > 0).all()


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_different_seed_different(tmp_path):
    a = write_city(simulate_city(seed=7), tmp_path / "a")
    b = write_city(simulate_city(seed=7), tmp_path / "b")
    c = write_city(simulate_city(seed=8), tmp_path / "c")
    assert set(a) == {"panel", "postings", "truth", "truth_aggregates", "params"}
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key
    for key in ("panel", "postings", "truth", "params"):
        assert a[key].read_bytes() != c[key].read_bytes(), key
    raw = a["panel"].read_bytes()
    assert b"\r\n" not in raw and not raw.startswith(b"\xef\xbb\xbf")
    assert not list((tmp_path / "a").glob(".*tmp*"))  # no temporary files left behind
    back = pd.read_csv(
        a["panel"], dtype={"village_code": str, "township_code": str, "county_code": str}
    )
    assert list(back.columns) == schema.column_names("panel")


# ----------------------------------------------------------------------------- truth


def test_truth_signs_and_pre_periods(city):
    t = city.truth
    assert set(t["effect"]) == {"direct"}  # no spillover by default
    assert len(t) == len(schema.OUTCOMES) * 2 * 7  # outcome x cohort x year
    post, pre = t[t["year"] >= t["cohort"]], t[t["year"] < t["cohort"]]
    assert (pre["att"] == 0).all()  # no anticipation by default
    assert (post["att"] != 0).all()
    # Design: income up, cases down (EFFECTS: positive for income, negative for cases).
    for outcome in ("income_per_capita", "collective_income", "projects", "new_members"):
        assert (post.loc[post["outcome"] == outcome, "att"] > 0).all(), outcome
    for outcome in ("criminal_cases", "disputes", "petitions"):
        assert (post.loc[post["outcome"] == outcome, "att"] < 0).all(), outcome
    # Count outcomes: the proportional effect is exp(theta) - 1, within the design's range.
    cases = post[post["outcome"] == "criminal_cases"]
    assert ((cases["att_prop"] < 0) & (cases["att_prop"] > np.exp(2 * -0.6) - 1)).all()
    assert np.allclose(t["y1_mean"] - t["y0_mean"], t["att"])


def test_simple_aggregate_recomputed_from_truth(city):
    t, agg = city.truth, city.truth_aggregates

    def stored(outcome: str, aggregation: str, year: int | None = None) -> float:
        rows = agg[(agg["outcome"] == outcome) & (agg["aggregation"] == aggregation)]
        if year is not None:
            rows = rows[rows["year"] == year]
        return rows["value"].item()

    post = t[t["year"] >= t["cohort"]]
    for outcome, g in post.groupby("outcome"):
        # did::aggte "simple": ATT(g,t) over t >= g weighted by cohort size.
        mine = (g["att"] * g["n_villages"]).sum() / g["n_villages"].sum()
        assert mine == pytest.approx(stored(outcome, "simple"), rel=1e-12)
        # "group_overall": per-cohort mean over post years, weighted by cohort size.
        per_g = g.groupby("cohort").agg(att=("att", "mean"), n=("n_villages", "first"))
        mine = (per_g["att"] * per_g["n"]).sum() / per_g["n"].sum()
        assert mine == pytest.approx(stored(outcome, "group_overall"), rel=1e-12)
        # "calendar" 2024: both cohorts, weighted by size.
        c24 = g[g["year"] == 2024]
        mine = (c24["att"] * c24["n_villages"]).sum() / c24["n_villages"].sum()
        assert mine == pytest.approx(stored(outcome, "calendar", 2024), rel=1e-12)


def test_event_time_effects_grow(city):
    agg = city.truth_aggregates
    ev = agg[(agg["aggregation"] == "event")].set_index(["outcome", "event_time"])["value"]
    assert ev["income_per_capita", 1] > ev["income_per_capita", 0] > 0
    assert ev["criminal_cases", 1] < ev["criminal_cases", 0] < 0
    assert ev["disputes", 1] < ev["disputes", 0] < 0
    assert (ev.loc["income_per_capita"].loc[:-1] == 0).all()
    # team_reorganised is front-loaded by design (profile 0.5^k).
    assert 0 < ev["team_reorganised", 1] < ev["team_reorganised", 0]


def test_effects_differ_by_cadre_type(city):
    agg = city.truth_aggregates
    by = agg[agg["aggregation"] == "cadre_type"].set_index(["outcome", "cadre_type"])["value_prop"]
    # Design (EFFECTS): law cadres cut cases most, agriculture cadres raise income most,
    # economic cadres bring the most funds.
    assert by["criminal_cases"].idxmin() == "law"
    assert by["disputes"].idxmin() == "law"
    assert by["income_per_capita"].idxmax() == "agriculture"
    assert by["funds_attracted"].idxmax() == "economic"
    assert max(EFFECTS["income_per_capita"], key=EFFECTS["income_per_capita"].get) == "agriculture"


# ----------------------------------------------------------------------------- design properties


def test_targeting_picks_weak_villages(panel):
    base = panel[panel["year"] == 2018]
    ever = base["cohort"] > 0
    # CONTEXT.md: low income and many disputes attract a first secretary.
    assert (
        base.loc[ever, "income_per_capita"].mean()
        < 0.85 * base.loc[~ever, "income_per_capita"].mean()
    )
    assert base.loc[ever, "disputes"].mean() > 1.3 * base.loc[~ever, "disputes"].mean()
    assert base.loc[base["distinctive_industry"] == 1, "cohort"].gt(0).mean() > ever.mean()
    # Cadre type follows the problem: law cadres where disputes are many.
    pre = (
        panel[panel["year"] <= 2022]
        .groupby("village_code")
        .agg(
            disputes=("disputes", "mean"), cadre=("cadre_type", "first"), cohort=("cohort", "first")
        )
    )
    treated = pre[pre["cohort"] > 0]
    high = treated["disputes"] >= treated["disputes"].quantile(0.75)
    assert (treated.loc[high, "cadre"] == "law").mean() > 2 * (
        treated.loc[~high, "cadre"] == "law"
    ).mean()


def test_parallel_trends_hold_only_given_covariates(panel):
    # Pre-period (2018 -> 2022) income change, all villages untreated then (no anticipation).
    w = panel[panel["year"].isin([2018, 2022])].pivot(
        index="village_code", columns="year", values="income_per_capita"
    )
    d = (w[2022] - w[2018]).to_numpy()
    v = panel[panel["year"] == 2018].set_index("village_code").loc[w.index]
    treat = (v["cohort"] > 0).to_numpy(float)
    X = np.column_stack(
        [
            np.ones(len(d)),
            treat,
            (v["terrain"] == "plain"),
            (v["terrain"] == "mountain"),
            v["distinctive_industry"],
            v["distance_km"],
        ]
    ).astype(float)
    beta, *_ = np.linalg.lstsq(X, d, rcond=None)
    resid = d - X @ beta
    se = np.sqrt(np.linalg.inv(X.T @ X)[1, 1] * resid.var())
    gap = d[treat == 1].mean() - d[treat == 0].mean()
    se_gap = np.sqrt(d[treat == 1].var() / treat.sum() + d[treat == 0].var() / (1 - treat).sum())
    # Unconditionally the treated trend differently (flatter income trend in yuan) ...
    assert gap < 0 and abs(gap) > 3 * se_gap
    # ... but given terrain, industry and distance the gap vanishes.
    assert abs(beta[1]) < 2 * se
    assert abs(beta[1]) < abs(gap) / 3


def test_twfe_is_attenuated(panel, city):
    # Design: growing effects + staggered timing + unconditional trend gap => TWFE understates.
    truth = city.truth_aggregates.query("aggregation == 'simple'").set_index("outcome")["value"]
    assert _twfe(panel, "income_per_capita") < 0.75 * truth["income_per_capita"]


def test_twfe_attenuates_case_effects_in_a_larger_city():
    big = simulate_city(
        seed=SEED, n_villages=32_240, n_townships=1_780, n_counties=90, first_year=2019
    )
    p = attach_treatment(big.panel, big.treatment)
    truth = big.truth_aggregates.query("aggregation == 'simple'").set_index("outcome")["value"]
    for outcome in ("criminal_cases", "disputes"):
        ratio = _twfe(p, outcome) / truth[outcome]
        assert 0 < ratio < 1, (outcome, ratio)
    # Scaling keeps the report's shares (45.2% by end of 2023; pilot 420/3,224 of villages).
    counts = big.treatment["cohort"].value_counts()
    assert round(counts.sum() / 32_240, 3) == 0.452
    assert counts[2023] == 4200
    assert big.panel["county_code"].nunique() == 90


# ----------------------------------------------------------------------------- options


def test_later_batch(city):
    later = simulate_city(seed=SEED, last_year=2025, later_batches=((2025, 300),))
    counts = later.treatment["cohort"].value_counts()
    assert counts[2025] == 300
    assert counts[2023] + counts[2024] == 1458
    batch = later.postings[later.postings["batch"] == "city-2025"]
    assert (
        batch.sort_values("start_date")
        .drop_duplicates("village_code")["start_date"]
        .between("2025-03-01", "2025-05-31")
        .all()
    )
    assert set(later.truth["cohort"]) == {2023, 2024, 2025}


def test_later_batch_outside_window_is_rejected():
    with pytest.raises(ValueError, match=r"needs last_year >= 2025 \(got last_year=2024\)"):
        simulate_city(later_batches=((2025, 300),))
    with pytest.raises(ValueError, match="after the 2023 city-wide batch"):
        simulate_city(later_batches=((2023, 10),))
    with pytest.raises(ValueError, match="n_counties >= "):
        simulate_city(n_villages=500_000, n_townships=27_600)


def test_spillover_recorded_separately():
    s = simulate_city(seed=SEED, scenario=Scenario(spillover=0.3))
    spill = s.truth[s.truth["effect"] == "spillover"]
    assert len(spill) > 0
    assert (spill.loc[spill["outcome"] == "income_per_capita", "att"] > 0).all()
    assert (spill.loc[spill["outcome"] == "criminal_cases", "att"] < 0).all()
    # Spillover goes to villages without a direct effect: never treated or not yet treated.
    assert (spill["year"] < spill["cohort"]).where(spill["cohort"] > 0, True).all()
    # Direct truth is unchanged by the spillover switch (same seed, same design).
    base = simulate_city(seed=SEED)
    pd.testing.assert_frame_equal(
        s.truth[s.truth["effect"] == "direct"].reset_index(drop=True), base.truth
    )


def test_anticipation_moves_effects_earlier():
    a = simulate_city(seed=SEED, scenario=Scenario(anticipation=1)).truth
    inc = a[a["outcome"] == "income_per_capita"].set_index(["cohort", "event_time"])["att"]
    assert inc[2023, -1] > 0 and inc[2024, -1] > 0
    assert inc[2023, -2] == 0


# ----------------------------------------------------------------------------- functions


def test_functions_do_not_mutate_their_inputs(city, tmp_path):
    cells = city.truth[city.truth["effect"] == "direct"].drop(columns=["effect"])
    before = cells.copy()
    aggregate_truth(cells)
    pd.testing.assert_frame_equal(cells, before)
    frames = {
        k: getattr(city, k).copy() for k in ("panel", "postings", "truth", "truth_aggregates")
    }
    write_city(city, tmp_path)
    summarise_city(city)
    for k, frame in frames.items():
        pd.testing.assert_frame_equal(getattr(city, k), frame)


def test_simulate_to_store(tmp_path):
    store = tmp_path / "study.duckdb"
    report = simulate_to_store(
        seed=SEED,
        first_year=2018,
        last_year=2024,
        later_batches=(),
        out_dir=tmp_path / "syn",
        store=store,
        ingest=True,
    )
    assert "3,224 villages in 178 townships" in report
    assert re.search(r"2023: 420, 2024: 1,038", report)
    assert store.exists()
    assert (tmp_path / "syn" / "truth_aggregates.csv").exists()


@pytest.mark.slow
def test_national_scale():
    # Brief: 500,000 villages x 10 years (bench/bench_simulate.py times it).
    big = simulate_city(
        n_villages=500_000, n_townships=27_600, n_counties=1_400, first_year=2015, last_year=2024
    )
    assert len(big.panel) == 5_000_000
    assert round((big.treatment["cohort"] > 0).sum() / 500_000, 3) == 0.452
