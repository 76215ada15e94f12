"""Tests of the Goodman-Bacon decomposition.

The defining identity: the weights sum to one and the weighted sum of the 2x2
estimates equals the TWFE coefficient (from pyfixest via ``twfe``) to 1e-10, on mpdta
(tests/reference/mpdta, provenance in its README) and on seeded simulated panels.
Each 2x2 estimate is also checked against a TWFE regression on the two groups and
the window of the comparison.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.estimators.bacon import TYPES, bacon_decomposition
from analysis.estimators.twfe import twfe

MPDTA = Path(__file__).parent / "reference" / "mpdta" / "mpdta.csv"


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return pd.read_csv(MPDTA)


def simulate(seed: int, cohorts, n_units: int = 300, years=(2015, 2023)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    yrs = np.arange(years[0], years[1] + 1)
    g = rng.choice(np.asarray(cohorts), size=n_units)
    df = pd.DataFrame({
        "vid": np.repeat(np.arange(n_units), len(yrs)),
        "yr": np.tile(yrs, n_units),
        "g": np.repeat(g, len(yrs)),
    })
    treated = (df["g"] > 0) & (df["yr"] >= df["g"])
    e = (df["yr"] - df["g"]).where(treated, 0)
    df["y"] = (np.repeat(rng.normal(0, 1, n_units), len(yrs)) + 0.2 * (df["yr"] - years[0])
               + treated * (1.0 + 0.4 * e + 0.001 * df["g"]) + rng.normal(0, 1, len(df)))
    return df


def check_identity(dec, direct):
    assert dec.table["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (dec.table["weight"] >= 0).all()
    assert abs(dec.total - direct) < 1e-10
    assert abs(dec.twfe_estimate - direct) < 1e-10


def test_identity_mpdta(mpdta):
    dec = bacon_decomposition(mpdta, "lemp", "countyreal", "year", "first.treat")
    direct = twfe(mpdta, "lemp", "countyreal", "year", "first.treat").tidy()["estimate"].iloc[0]
    check_identity(dec, direct)
    assert len(dec.table) == 3 + 3 + 3  # 3 vs never, 3 pairs x 2 directions
    assert set(dec.table["type"]) == set(TYPES)
    by = dec.by_type()
    assert by["weight"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("seed", "cohorts"),
    [
        (1, (2017, 2019, 2021, 0)),  # with never treated
        (2, (2016, 2018, 2020, 2023)),  # no never treated
        (3, (2010, 2017, 2020, 0, 2030)),  # always treated and treated after the window
    ],
)
def test_identity_simulated(seed, cohorts):
    df = simulate(seed, cohorts)
    dec = bacon_decomposition(df, "y", "vid", "yr", "g")
    direct = twfe(df, "y", "vid", "yr", "g").tidy()["estimate"].iloc[0]
    check_identity(dec, direct)


def test_each_2x2_is_a_two_group_twfe():
    df = simulate(4, (2017, 2020, 0))
    dec = bacon_decomposition(df, "y", "vid", "yr", "g")
    for r in dec.table.itertuples():
        lo, hi = (int(x) for x in r.periods.split("-"))
        sub = df[df["g"].isin([r.treated, r.control]) & df["yr"].between(lo, hi)]
        if r.type == "later vs earlier treated":
            # the already-treated control is constant D = 1 in the window: recode it as never
            # treated for the regression (its D is absorbed by its unit effects anyway)
            sub = sub.assign(g=np.where(sub["g"] == r.control, 0, sub["g"]))
        est = twfe(sub, "y", "vid", "yr", "g").tidy()["estimate"].iloc[0]
        assert abs(est - r.estimate) < 1e-10


def test_forbidden_comparisons_carry_the_bias():
    # Growing effects: later-vs-earlier comparisons subtract the early cohort's growth.
    df = simulate(5, (2017, 2020, 0))
    by = bacon_decomposition(df, "y", "vid", "yr", "g").by_type()
    assert by.loc["later vs earlier treated", "estimate"] < by.loc["treated vs never treated", "estimate"]


def test_not_mutated_and_bad_calls(mpdta):
    before = mpdta.copy(deep=True)
    bacon_decomposition(mpdta, "lemp", "countyreal", "year", "first.treat")
    pd.testing.assert_frame_equal(mpdta, before)
    with pytest.raises(ValueError, match="balanced"):
        bacon_decomposition(mpdta.iloc[1:], "lemp", "countyreal", "year", "first.treat")
    na = mpdta.copy()
    na.loc[na.index[3], "lemp"] = np.nan
    with pytest.raises(ValueError, match="balanced"):
        bacon_decomposition(na, "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(ValueError, match="columns not in data"):
        bacon_decomposition(mpdta, "lemp", "county", "year", "first.treat")
    with pytest.raises(ValueError, match="no treated"):
        bacon_decomposition(mpdta.assign(g=0), "lemp", "countyreal", "year", "g")
