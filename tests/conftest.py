"""Shared fixtures: one default synthetic city in a temporary store, built once per session."""

import os
from pathlib import Path

import pytest

# Subprocesses (nbval runs, kernels, Monte Carlo workers) get a fixed string-hash seed, as the
# pipeline gives its kernels: see analysis.pipeline.run_study.
os.environ.setdefault("PYTHONHASHSEED", "0")

SEED = 20230601


@pytest.fixture(scope="session")
def city_store(tmp_path_factory) -> Path:
    """Simulate the default city (seed 20230601) and ingest it into a fresh store; return the store path."""
    from analysis.data.synthetic import simulate_to_store

    base = tmp_path_factory.mktemp("city")
    store = base / "study.duckdb"
    simulate_to_store(seed=SEED, first_year=2018, last_year=2024, later_batches=(),
                      out_dir=base / "synthetic", store=store, ingest=True)
    return store
