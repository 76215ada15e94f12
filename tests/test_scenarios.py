"""Stress scenarios of the synthetic city (analysis.data.synthetic.scenarios).

Each scenario changes what it says and nothing else: the same seed gives the same villages,
postings and draws, so a scenario city is compared with the default city draw for draw. The
expected changes are computed by hand from the scenario's definition (module docstring).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main as cli_main
from analysis.data.synthetic import SCENARIOS, Scenario, get_scenario, simulate_city, write_city
from analysis.data.synthetic.calibration import REPORT_YEAR
from analysis.data.synthetic.scenarios import nonlinear_index

SEED = 20230601
SMALL = dict(n_villages=600, n_townships=40)


@pytest.fixture(scope="module")
def base():
    return simulate_city(seed=SEED, **SMALL)


def _income(city) -> pd.DataFrame:
    return city.panel.set_index(["village_code", "year"])["income_per_capita"]


def test_default_scenario_is_the_calibrated_city(base, tmp_path):
    assert Scenario().is_default and SCENARIOS["default"] == Scenario()
    assert not SCENARIOS["no_effect"].is_default
    same = simulate_city(seed=SEED, scenario="default", **SMALL)
    a, b = write_city(base, tmp_path / "a"), write_city(same, tmp_path / "b")
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key
    assert "scenario" not in json.loads(a["params"].read_text())


def test_every_preset_is_valid_and_recorded(base):
    for name, scn in SCENARIOS.items():
        assert scn.name == name and get_scenario(name) is scn
    city = simulate_city(seed=SEED, scenario="trend_gap", **SMALL)
    assert city.params["scenario"] == SCENARIOS["trend_gap"].as_dict()
    # the postings, hence the cohorts, never depend on the scenario
    pd.testing.assert_frame_equal(city.postings, base.postings)
    with pytest.raises(ValueError, match="unknown scenario 'chaos'"):
        get_scenario("chaos")


@pytest.mark.parametrize(("changes", "message"), [
    ({"township_shock_sd": -0.1}, "township_shock_sd must be in"),
    ({"trend_gap": 0.5}, "trend_gap must be in"),
    ({"effect_scale": True}, "effect_scale must be in"),
    ({"spillover": 2.0}, "spillover must be a share of the direct effect"),
    ({"spillover_share": 0.0}, "spillover_share must be a share of villages"),
    ({"anticipation": 4}, "anticipation must be 0-3 years"),
    ({"partial_exposure": 1}, "partial_exposure must be True or False"),
    ({"cluster": "province"}, "cluster must be one of"),
])
def test_bad_parameters_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        Scenario(**changes)


def test_null_city_has_no_effect_and_the_same_untreated_draws(base):
    null = simulate_city(seed=SEED, scenario="no_effect", **SMALL)
    assert (null.truth["att"] == 0).all()
    assert (null.truth_aggregates["value"] == 0).all()
    # untreated village-years are drawn identically (same streams); treated ones lose their effect
    p0, p1 = base.panel, null.panel
    never = ~p0["village_code"].isin(base.treatment.loc[base.treatment["cohort"] > 0, "village_code"])
    np.testing.assert_array_equal(p0.loc[never, "income_per_capita"], p1.loc[never, "income_per_capita"])
    pd.testing.assert_series_equal(null.truth["y0_mean"], base.truth["y0_mean"])


def test_partial_exposure_puts_months_in_post_of_the_first_year_effect_in_the_arrival_year(base):
    part = simulate_city(seed=SEED, scenario="partial_exposure", **SMALL)
    t0 = base.truth[base.truth["effect"] == "direct"].set_index(["outcome", "cohort", "year"])["att"]
    t1 = part.truth[part.truth["effect"] == "direct"].set_index(["outcome", "cohort", "year"])["att"]
    # from the cohort year on, nothing changes (the estimand is the same)
    post = t0.index.get_level_values("year") >= t0.index.get_level_values("cohort")
    np.testing.assert_array_equal(t0[post].to_numpy(), t1[post].to_numpy())
    # the arrival year of the city batch (July-September 2023, cohort 2024) now has an effect
    inc = t1.loc["income_per_capita"]
    assert inc[(2024, 2023)] > 0 and inc[(2024, 2022)] == 0 and inc[(2023, 2021)] == 0
    # by hand: the index in 2023 is months/12 of the 2024 index (profile 0.45 both years), so with
    # E[Y(1)] = E[Y(0)] exp(theta) the effect is about the share of 2023 in post times the 2024 effect
    start = pd.to_datetime(base.postings.groupby("village_code")["start_date"].min())
    city_batch = start[start.dt.year == 2023]
    share = ((pd.Timestamp("2023-12-31") - city_batch).dt.days + 1) / 365
    ratio = inc[(2024, 2023)] / inc[(2024, 2024)]
    y0 = part.truth.set_index(["outcome", "cohort", "year"])["y0_mean"].loc["income_per_capita"]
    assert ratio == pytest.approx(share.mean() * y0[(2024, 2023)] / y0[(2024, 2024)], rel=0.1)
    # the pilot (December 2022, at most a month) gets at most 1/12 of its first-year effect in 2022
    assert 0 < inc[(2023, 2022)] < inc[(2023, 2023)] / 12 * 1.1


def test_shocks_are_shared_within_township_and_year(base):
    shock = simulate_city(seed=SEED, scenario=Scenario(township_shock_sd=0.1), **SMALL)
    # income is log-normal with the same draws: the log ratio is the township-year shock minus sd^2/2
    lr = np.log(_income(shock) / _income(base)).rename("lr").reset_index()
    lr["township"] = lr["village_code"].str[:9]
    by_cell = lr.groupby(["township", "year"])["lr"]
    assert by_cell.std().max() < 0.01  # only the rounding of the panel to 2 decimals
    cell = by_cell.mean()
    assert cell.std() == pytest.approx(0.1, rel=0.15) and cell.mean() == pytest.approx(-0.005, abs=0.02)
    # county shocks: one draw per county and year, common to its townships
    county = simulate_city(seed=SEED, scenario=Scenario(county_shock_sd=0.1), **SMALL)
    lc = np.log(_income(county) / _income(base)).rename("lc").reset_index()
    lc["county"] = lc["village_code"].str[:6]
    assert lc.groupby(["county", "year"])["lc"].std().max() < 0.01
    # the truth is conditional on the realised shocks: same cells, other values
    assert shock.truth["att"].ne(base.truth["att"]).any()


def test_nonlinear_and_differential_trends_are_what_they_say(base):
    years = np.arange(2018, 2025)
    c = 0.02
    nl = simulate_city(seed=SEED, scenario=Scenario(nonlinear_trend=c), **SMALL)
    gap = simulate_city(seed=SEED, scenario=Scenario(trend_gap=0.01), **SMALL)
    v = base.panel.drop_duplicates("village_code").set_index("village_code")
    q = nonlinear_index(v["distance_km"].to_numpy(), v["distinctive_industry"].to_numpy(),
                        (v["terrain"] == "hill").to_numpy(float), (v["terrain"] == "mountain").to_numpy(float))
    want = pd.DataFrame(c * q[:, None] * (years - REPORT_YEAR)[None, :], index=v.index, columns=years).stack()
    got = np.log(_income(nl) / _income(base))
    assert np.abs(got.to_numpy() - want.reindex(got.index).to_numpy()).max() < 0.01
    idx = base.villages.set_index("village_code")["targeting_index"]
    z = (idx - idx.mean()) / idx.std(ddof=0)
    want = pd.DataFrame(0.01 * z.to_numpy()[:, None] * (years - REPORT_YEAR)[None, :], index=idx.index,
                        columns=years).stack()
    got = np.log(_income(gap) / _income(base))
    assert np.abs(got.to_numpy() - want.reindex(got.index).to_numpy()).max() < 0.01
    # no effect before the cohort year: the violation is in the untreated outcomes, not in the truth
    pre = gap.truth[(gap.truth["year"] < gap.truth["cohort"]) & (gap.truth["effect"] == "direct")]
    assert (pre["att"] == 0).all()


def test_spillover_rule_uses_its_own_threshold(base):
    s = simulate_city(seed=SEED, scenario="spillover_rule", **SMALL)
    v = s.villages
    share = v.groupby("township_code")["intended_cohort"].apply(lambda g: (g > 0).mean())
    heavy = v.groupby("township_code")["heavy_township"].first()
    pd.testing.assert_series_equal(heavy, share >= 0.35, check_names=False)
    assert (heavy & (share < 0.5)).any()  # townships the robustness check's 0.5 rule does not see
    assert (s.truth["effect"] == "spillover").any()


def test_study_simulate_takes_a_scenario(tmp_path, capsys):
    out = tmp_path / "syn"
    assert cli_main(["simulate", "--scenario", "partial_exposure", "--no-ingest", "--out", str(out)]) == 0
    assert "stress scenario 'partial_exposure' (partial_exposure True)" in capsys.readouterr().out
    params = json.loads((out / "params.json").read_text())
    assert params["scenario"]["partial_exposure"] is True
    truth = pd.read_csv(out / "truth.csv")
    cell = truth[(truth["outcome"] == "income_per_capita") & (truth["cohort"] == 2024) & (truth["year"] == 2023)]
    assert cell["att"].iloc[0] > 0
    with pytest.raises(SystemExit):
        cli_main(["simulate", "--scenario", "nope", "--no-ingest", "--out", str(out)])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
