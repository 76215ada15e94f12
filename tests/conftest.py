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


def _study(*args, cwd=None, env=None, check=False):
    """Run the `study` command as a user would: `python -m analysis ARGS` in a subprocess."""
    import subprocess
    import sys

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "analysis", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=full_env, check=check)


@pytest.fixture(scope="session")
def study():
    """The `study` command line: ``study(*args, cwd=None, env=None)`` -> CompletedProcess (text)."""
    return _study


@pytest.fixture(scope="session")
def store_2025(city_store, tmp_path_factory) -> Path:
    """A copy of the default city's store into which the worked example's 2025 files were ingested."""
    import shutil

    from analysis import paths

    base = tmp_path_factory.mktemp("with2025")
    store = base / "study.duckdb"
    shutil.copyfile(city_store, store)
    examples = paths.DATA_DIR / "examples"
    r = _study("ingest", examples / "2025年村级统计.xlsx", examples / "2025年第二批第一书记名单.xlsx", "--mapping-dir",
               "--store", store, cwd=base)
    assert r.returncode == 0, r.stderr
    return store
