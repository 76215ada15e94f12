"""`make clean` never deletes a store holding ingested data, and removes the store's own lock file.

``make clean`` is ``clean-outputs`` then ``clean-store``. The tests run the real Makefile from a
temporary project folder (its ``.venv`` a link to this environment; ``STUDY_ROOT`` the folder), so
they touch neither the repository's outputs nor its store.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


@pytest.fixture
def project(tmp_path):
    """A project folder for the Makefile: this environment, an outputs/ with a run, an empty data/."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    for name in ("requirements.lock", "pyproject.toml"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "outputs" / "20250101-000000" / "tables").mkdir(parents=True)
    (tmp_path / "outputs" / "latest").symlink_to("20250101-000000")
    (tmp_path / "outputs" / ".gitkeep").write_text("")
    (tmp_path / "data").mkdir()
    return tmp_path


def make(project, *targets):
    env = {**os.environ, "STUDY_ROOT": str(project)}
    env.pop("MAKEFLAGS", None)
    return subprocess.run([MAKE, "--no-print-directory", "-f", str(REPO / "Makefile"), *targets], cwd=project,
                          env=env, capture_output=True, text=True, check=False)


def test_make_clean_keeps_an_ingested_store_until_confirmed(project, store_2025, study):
    store = project / "data" / "study.duckdb"
    shutil.copyfile(store_2025, store)
    (project / "data" / "study.duckdb.lock").write_text("")
    r = make(project, "clean")
    assert r.returncode != 0
    assert "holds data that `study simulate` did not write" in r.stderr and "CONFIRM=yes" in r.stderr
    assert "Traceback" not in r.stderr
    assert store.is_file()  # kept, with its history
    history = study("history", "--store", store, cwd=project)
    assert history.returncode == 0 and "2025年村级统计.xlsx" in history.stdout
    assert sorted(p.name for p in (project / "outputs").iterdir()) == [".gitkeep"]  # outputs were cleaned

    r = make(project, "clean-store", "CONFIRM=yes")
    assert r.returncode == 0, r.stderr
    assert not store.exists() and not (project / "data" / "study.duckdb.lock").exists()


def test_make_clean_removes_a_store_holding_only_the_simulated_city_and_its_lock(project, study):
    r = study("simulate", "--store", project / "data" / "study.duckdb", "--out", project / "data" / "synthetic",
              "--quiet", cwd=project)
    assert r.returncode == 0, r.stderr
    assert study("restore", "1", "--dry-run", "--store", project / "data" / "study.duckdb").returncode == 0
    assert (project / "data" / "study.duckdb.lock").exists()  # the lock file any ingest or restore leaves
    r = make(project, "clean")
    assert r.returncode == 0, r.stderr
    assert "removed" in r.stdout
    assert not any(p.name.startswith("study.duckdb") for p in (project / "data").iterdir())
