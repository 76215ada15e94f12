"""Tests of the shared estimator inputs and of the pyfixest adapter.

* ``cluster_codes`` is the one check of a cluster column: codes in sorted order, missing
  values and units that change cluster rejected with a message naming the column (and
  the unit), and every estimator that clusters goes through it;
* ``feols`` / ``fepois`` of :mod:`analysis.estimators.fixest` return the numbers pyfixest
  reports through its public API, bit for bit, and the small-sample record matches the
  documented formula computed here by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.estimators.callaway_santanna import att_gt
from analysis.estimators.fixest import feols, fepois, pyfixest_version
from analysis.estimators.heterogeneity import by_group
from analysis.estimators.inputs import as_list, cluster_codes, prepare_panel
from analysis.estimators.twfe import twfe


def _panel(seed: int = 0, n: int = 120, years=range(2018, 2024)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    yrs = np.array(list(years))
    g = rng.choice([0, 2020, 2022], n)
    df = pd.DataFrame({"id": np.repeat(np.arange(n), len(yrs)), "year": np.tile(yrs, n),
                       "g": np.repeat(g, len(yrs)), "town": np.repeat([f"t{i % 17:02d}" for i in range(n)], len(yrs)),
                       "kind": np.repeat(rng.choice(["A", "B"], n), len(yrs))})
    post = (df["g"] > 0) & (df["year"] >= df["g"])
    df["y"] = rng.normal(0, 1, len(df)) + 0.1 * df["id"] + 1.0 * post
    df["count"] = rng.poisson(np.exp(1.0 + 0.2 * post))
    return df


def test_as_list_accepts_none_a_name_or_a_sequence():
    assert as_list(None) == [] and as_list("x") == ["x"] and as_list(("x", "z")) == ["x", "z"]


def test_cluster_codes_number_clusters_in_sorted_order():
    assert cluster_codes(pd.Series(["t2", "t0", "t1", "t0"]), "town").tolist() == [2, 0, 1, 0]
    per_unit = cluster_codes(pd.Series(["t2", "t0", "t2", "t0"]), "town", unit_codes=np.array([0, 1, 0, 1]))
    assert per_unit.tolist() == [1, 0]


def test_cluster_codes_reject_missing_values():
    with pytest.raises(ValueError, match="cluster column 'town' has missing values"):
        cluster_codes(pd.Series(["t1", None]), "town")


def test_cluster_codes_name_the_unit_that_changes_cluster():
    with pytest.raises(ValueError, match="cluster column 'town' varies within unit 'v2'; clusters must be fixed"):
        cluster_codes(pd.Series(["a", "a", "b", "c"]), "town", unit_codes=np.array([0, 0, 1, 1]),
                      unit_ids=np.array(["v1", "v2"]))


def test_every_estimator_that_clusters_uses_the_one_check():
    df = _panel()
    moved = df.assign(town=np.where((df["id"] == 5) & (df["year"] == 2023), "elsewhere", df["town"]))
    missing = df.assign(town=df["town"].where(df.index != 3))
    common = dict(outcome="y", unit="id", time="year", cohort="g", cluster="town")
    for call in (lambda d: att_gt(d, **common), lambda d: by_group(d, by="kind", **common)):
        with pytest.raises(ValueError, match="cluster column 'town' varies within unit 5; clusters must be fixed"):
            call(moved)
        with pytest.raises(ValueError, match="cluster column 'town' has missing values"):
            call(missing)
    with pytest.raises(ValueError, match="cluster column 'town' has missing values"):
        twfe(missing, **common)
    # TWFE allows units that change cluster (the fixed effects are then counted as not nested)
    assert twfe(moved, **common).ssc.unit_fe_nested_in_clusters is False


def test_feols_returns_pyfixest_numbers_bit_for_bit_and_the_documented_ssc():
    panel = prepare_panel(_panel(), "y", "id", "year", "g", cluster="town")
    fit = feols(panel.frame, ["D"])
    tidy = fit.model.tidy()
    assert fit.names == ["D"]
    assert fit.coefficients.to_numpy().tobytes() == tidy["Estimate"].to_numpy().tobytes()
    assert np.sqrt(np.diag(fit.vcov)).tobytes() == tidy["Std. Error"].to_numpy().tobytes()
    n, T, G, k = len(panel.frame), panel.frame["time"].nunique(), panel.frame["cl"].nunique(), 1
    assert (fit.n_obs, fit.ssc.N, fit.ssc.G, fit.ssc.K) == (n, n, G, k + T)
    assert fit.ssc.factor == pytest.approx(G / (G - 1) * (n - 1) / (n - k - T), rel=1e-14)
    assert fit.ssc.unit_fe_nested_in_clusters
    assert fit.ssc.as_dict()["factor"] == fit.ssc.factor
    assert len(fit.sample) == n and fit.fitted is None
    assert pyfixest_version().count(".") >= 1


def test_fepois_returns_fitted_means_on_its_estimation_sample():
    df = _panel().assign(y=lambda d: d["count"])
    panel = prepare_panel(df, "y", "id", "year", "g", cluster="town")
    fit = fepois(panel.frame, ["D"], iwls_tol=1e-10, fixef_tol=1e-10)
    tidy = fit.model.tidy()
    assert fit.coefficients.to_numpy().tobytes() == tidy["Estimate"].to_numpy().tobytes()
    assert np.sqrt(np.diag(fit.vcov)).tobytes() == tidy["Std. Error"].to_numpy().tobytes()
    assert fit.fitted is not None and len(fit.fitted) == len(fit.sample) == fit.n_obs
    # the Poisson score: fitted and observed totals agree on the estimation sample
    assert fit.fitted.sum() == pytest.approx(fit.sample["y"].sum(), rel=1e-8)


def test_callers_frame_is_not_mutated():
    df = _panel()
    before = df.copy()
    cluster_codes(df["town"], "town", unit_codes=pd.factorize(df["id"])[0])
    prepare_panel(df, "y", "id", "year", "g", cluster="town")
    pd.testing.assert_frame_equal(df, before)


def test_a_complete_panel_keeps_its_outcome_and_covariates_without_copying_them():
    # the selection of complete rows copied every column even when it kept them all (the covariate x year
    # terms of notebook 07's widest covariate set are 2.5 GB at national size); a missing value still drops
    # its row, and the caller's frame is never changed
    df = _panel().assign(x=lambda d: np.linspace(0.0, 1.0, len(d)))
    p = prepare_panel(df, "y", "id", "year", "g", cluster="town", covariates=["x"])
    assert np.shares_memory(p.frame["x0"].to_numpy(), df["x"].to_numpy())
    assert np.shares_memory(p.frame["y"].to_numpy(), df["y"].to_numpy())
    before = df.copy()
    p.frame.loc[p.frame.index[0], "x0"] = 99.0
    pd.testing.assert_frame_equal(df, before)
    gap = df.assign(x=df["x"].where(df.index != 5))
    q = prepare_panel(gap, "y", "id", "year", "g", cluster="town", covariates=["x"])
    assert len(q.frame) == len(df) - 1 and 5 not in q.frame.index and q.info["n_dropped_missing"] == 1
