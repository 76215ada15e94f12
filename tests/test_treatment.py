"""The documented treatment-timing rule (analysis.core.treatment)."""

import pandas as pd
import pytest

from analysis.core.treatment import attach_treatment, derive_treatment, pilot_counties


def _postings(rows):
    return pd.DataFrame(rows, columns=["village_code", "secretary_id", "start_date", "end_date", "unit_type", "batch"])


def test_six_month_rule_boundaries():
    p = _postings([
        ("990101001001", "a", "2023-07-01", None, "law", "city-2023"),      # 184 days = 6.05 months -> 2023
        ("990101001002", "b", "2023-07-03", None, "law", "city-2023"),      # 182 days = 5.98 months -> 2024
        ("990101001003", "c", "2022-12-05", None, "economic", "pilot-2022"),  # December arrival -> 2023
        ("990101001004", "d", "2024-09-01", None, "other", "city-2024"),    # too late in the last year -> never
    ])
    t = derive_treatment(p, 2018, 2024).set_index("village_code")["cohort"].to_dict()
    assert t == {"990101001001": 2023, "990101001002": 2024, "990101001003": 2023, "990101001004": 0}


def test_replacements_are_counted_once_and_bridge_the_year():
    # Two consecutive postings in 2023, each under six months, together ten months.
    p = _postings([
        ("990101001001", "a", "2023-01-01", "2023-05-31", "law", "city-2023"),
        ("990101001001", "b", "2023-06-01", None, "agriculture", "city-2023"),
        # overlapping postings are not double counted: 2 x 4 months overlapping = 4 months
        ("990101001002", "c", "2023-03-01", "2023-06-30", "law", "city-2023"),
        ("990101001002", "d", "2023-03-01", "2023-06-30", "law", "city-2023"),
    ])
    t = derive_treatment(p, 2018, 2024).set_index("village_code")
    assert t.loc["990101001001", "cohort"] == 2023
    assert t.loc["990101001001", "cadre_type"] == "agriculture"  # the longer posting in 2023 (7 vs 5 months)
    assert t.loc["990101001002", "cohort"] == 0


def test_min_months_parameter_changes_the_cohort():
    p = _postings([("990101001001", "a", "2023-09-01", None, "law", "city-2023")])  # 4 months in 2023
    assert derive_treatment(p, 2018, 2024, min_months=6)["cohort"].item() == 2024
    assert derive_treatment(p, 2018, 2024, min_months=3)["cohort"].item() == 2023
    with pytest.raises(ValueError, match="min_months"):
        derive_treatment(p, 2018, 2024, min_months=0)


def test_attach_treatment_adds_event_time_and_does_not_mutate():
    panel = pd.DataFrame({"village_code": ["990101001001"] * 3 + ["990101001002"] * 3,
                          "year": [2022, 2023, 2024] * 2, "y": range(6)})
    p = _postings([("990101001001", "a", "2023-01-10", None, "law", "city-2023")])
    before_panel, before_p = panel.copy(), p.copy()
    t = derive_treatment(p, 2022, 2024)
    out = attach_treatment(panel, t)
    pd.testing.assert_frame_equal(panel, before_panel)
    pd.testing.assert_frame_equal(p, before_p)
    a = out[out["village_code"] == "990101001001"]
    assert a["event_time"].tolist() == [-1, 0, 1]
    assert a["treated"].tolist() == [0, 1, 1]
    b = out[out["village_code"] == "990101001002"]
    assert b["cohort"].eq(0).all() and b["event_time"].isna().all() and b["cadre_type"].eq("none").all()


def test_pilot_counties_is_the_county_of_the_earliest_cohort():
    panel = pd.DataFrame({"village_code": ["a", "a", "b", "c", "d"], "county_code": ["c1", "c1", "c1", "c2", "c3"],
                          "cohort": [2024, 2024, 0, 2023, 2024]})
    assert pilot_counties(panel) == ["c2"]
    with pytest.raises(ValueError, match="no village is treated"):
        pilot_counties(panel.assign(cohort=0))
    with pytest.raises(ValueError, match="no pilot district"):
        pilot_counties(panel.assign(cohort=2023))


def test_attach_treatment_by_lookup_equals_the_left_merge():
    # attach_treatment joins by lookup (no copy of the panel); the reference is the plain left merge
    # it replaced, on a simulated city whose panel is not sorted by village (rows shuffled).
    from analysis.core.treatment import NEVER_TREATED
    from analysis.data.synthetic import simulate_city

    city = simulate_city(seed=3, n_villages=300, n_townships=20)
    panel = city.panel.sample(frac=1.0, random_state=1).reset_index(drop=True)
    before = panel.copy()
    out = attach_treatment(panel, city.treatment)
    ref = panel.merge(city.treatment[["village_code", "cohort", "cadre_type", "batch"]], on="village_code",
                      how="left")
    ref["cohort"] = ref["cohort"].fillna(NEVER_TREATED).astype("int64")
    for c in ("cadre_type", "batch"):
        ref[c] = ref[c].where(ref["cohort"] > 0, "none")
    pd.testing.assert_frame_equal(out[list(ref.columns)], ref)
    pd.testing.assert_frame_equal(panel, before)
    assert (out["cohort"] > 0).any() and (out["cohort"] == 0).any()
