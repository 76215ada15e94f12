"""Baseline covariates (analysis.core.panel.covariate_columns): each village's value in its first observed year.

Checked on a hand-made panel whose rows are in no particular order and whose villages enter in different
years, with covariates that change over time, so a value from any other year (or another village) shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.core.panel import covariate_columns


def _panel() -> pd.DataFrame:
    rows = []
    # village "b" first observed in 2018, the others in 2016; values change every year
    for v, first, terrain in (("a", 2016, "plain"), ("b", 2018, "hill"), ("c", 2016, "mountain"), ("d", 2016, "hill")):
        for y in range(first, 2021):
            rows.append({"village_code": v, "year": y, "distance_km": 10.0 * (ord(v) - 96) + (y - 2016),
                         "terrain": terrain if y == first else "plain",
                         "distinctive_industry": int((ord(v) + y) % 2 == 0)})
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=4).reset_index(drop=True)
    frame["village_code"] = frame["village_code"].astype("str")
    return frame


def test_each_village_gets_its_first_observed_year_in_every_row_whatever_the_row_order():
    panel = _panel()
    out, names = covariate_columns(panel, ["distance_km", "terrain", "distinctive_industry"])
    assert names == ["base_distance_km", "base_terrain_hill", "base_terrain_mountain", "base_distinctive_industry"]
    assert list(panel.columns) == list(out.columns[: len(panel.columns)])  # the caller's columns, untouched
    expected = {"a": (10.0, 0.0, 0.0, 0.0), "b": (22.0, 1.0, 0.0, 1.0), "c": (30.0, 0.0, 1.0, 0.0),
                "d": (40.0, 1.0, 0.0, 1.0)}
    for v, values in expected.items():
        got = out.loc[out["village_code"] == v, names].drop_duplicates()
        assert len(got) == 1 and tuple(got.iloc[0]) == values, v
    assert np.array_equal(out["distance_km"], panel["distance_km"])


def test_a_covariate_that_does_not_vary_across_villages_at_baseline_is_refused():
    panel = _panel()
    panel["distinctive_industry"] = np.where(panel["year"] == 2016, 1, panel["distinctive_industry"])
    panel.loc[(panel["village_code"] == "b") & (panel["year"] == 2018), "distinctive_industry"] = 1
    with pytest.raises(ValueError, match="'distinctive_industry' has no variation across villages"):
        covariate_columns(panel, ["distinctive_industry"])
