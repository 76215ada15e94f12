"""The truth is used only when the store holds exactly the simulated city."""

import pandas as pd

from analysis.data.ingest import ingest_files
from analysis.data.synthetic import simulate_to_store
from analysis.data.synthetic.truth import load_truth, truth_status


def test_truth_applies_only_to_the_simulated_store(tmp_path):
    sim, store = tmp_path / "synthetic", tmp_path / "s.duckdb"
    simulate_to_store(seed=5, first_year=2018, last_year=2024, later_batches=(),
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
    ingest_files([path], store=store, replace=True)
    ok, why = truth_status(store, sim)
    assert not ok and "other than the synthetic city" in why
    assert load_truth(store, sim) is None


def test_no_truth_on_disk(tmp_path):
    ok, why = truth_status(tmp_path / "s.duckdb", tmp_path / "nothing")
    assert not ok and "no synthetic truth on disk" in why


def test_simulate_refuses_a_store_with_other_data_and_rebuilds_a_synthetic_one(tmp_path):
    import hashlib

    import pytest

    from analysis.data.store import read_postings

    sim, store = tmp_path / "synthetic", tmp_path / "s.duckdb"
    kw = dict(first_year=2018, last_year=2024, later_batches=(), out_dir=sim, store=store)
    simulate_to_store(seed=5, **kw)
    # Another seed into a store holding only the earlier city: rebuilt, no postings of the old city left.
    simulate_to_store(seed=6, **kw)
    new_ids = set(pd.read_csv(sim / "postings.csv")["secretary_id"])
    assert set(read_postings(store)["secretary_id"]) == new_ids
    assert truth_status(store, sim)[0]
    # Once other data is in the store, simulate refuses and leaves it byte-for-byte as it was.
    panel = pd.read_csv(sim / "panel.csv", dtype={"village_code": str, "township_code": str, "county_code": str})
    rev = panel[panel["year"] == 2024].assign(income_per_capita=lambda d: d["income_per_capita"] + 1)
    rev.to_csv(tmp_path / "real_2024.csv", index=False)
    ingest_files([tmp_path / "real_2024.csv"], store=store, replace=True)
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="holds data that `study simulate` did not write"):
        simulate_to_store(seed=7, **kw)
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before
