"""The truth is used only when the store holds exactly the simulated city."""

import pandas as pd

from analysis.data.ingest import ingest_files
from analysis.data.simulate import simulate_to_store
from analysis.truth import load_truth, truth_status


def test_truth_applies_only_to_the_simulated_store(tmp_path):
    sim, store = tmp_path / "synthetic", tmp_path / "s.duckdb"
    simulate_to_store(seed=5, first_year=2018, last_year=2024, later_batches=(), spillover=0.0,
                      out_dir=sim, store=store, ingest=True)
    ok, why = truth_status(store, sim)
    assert ok, why
    truth = load_truth(store, sim)
    assert set(truth["aggregation"]) >= {"simple", "event", "group", "cadre_type"}

    # Re-ingest 2024 from a modified copy (a "real" revision): the truth no longer applies.
    panel = pd.read_csv(sim / "panel.csv", dtype={"village_code": str, "township_code": str, "county_code": str})
    rev = panel[panel["year"] == 2024].copy()
    rev["income_per_capita"] = rev["income_per_capita"] * 1.01
    path = tmp_path / "panel_2024_revised.csv"
    rev.to_csv(path, index=False)
    ingest_files([path], store=store)
    ok, why = truth_status(store, sim)
    assert not ok and "other than the synthetic city" in why
    assert load_truth(store, sim) is None


def test_no_truth_on_disk(tmp_path):
    ok, why = truth_status(tmp_path / "s.duckdb", tmp_path / "nothing")
    assert not ok and "no synthetic truth on disk" in why
