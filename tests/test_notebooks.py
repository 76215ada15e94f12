"""Every notebook runs under nbval with small parameters against a freshly simulated store.

Each notebook is first parameterised by papermill (``prepare_only``: parameters injected,
nothing executed), then executed cell by cell by nbval (``--nbval-lax``: a cell that raises
fails the test). Then the pipeline runs the notebooks end to end and the run folder is checked.
"""

import json
import subprocess
import sys

import papermill as pm
import pytest

from analysis.pipeline import list_notebooks, run_study

pytestmark = pytest.mark.notebooks

NOTEBOOKS = list_notebooks()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_under_nbval(nb, city_store, tmp_path):
    prepared = tmp_path / nb.name
    pm.execute_notebook(str(nb), str(prepared), parameters={"store": str(city_store), "output_dir": str(tmp_path)},
                        prepare_only=True, kernel_name="python3")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                        str(prepared)], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert (tmp_path / "tables").is_dir() and any((tmp_path / "tables").iterdir())


def test_pipeline_writes_run_folder_and_latest(city_store, tmp_path):
    run = run_study(store=city_store, outputs=tmp_path, run_id="r1", only="00_data_audit")
    assert (tmp_path / "latest").resolve() == run.resolve()
    executed = json.loads((run / "notebooks" / "00_data_audit.ipynb").read_text())
    assert executed["metadata"]["papermill"]["parameters"]["store"] == str(city_store)
    manifest = json.loads((run / "MANIFEST").read_text())
    assert "tables/00_rollout_by_cohort.csv" in manifest["outputs"]
    assert "figures/00_rollout.png" in manifest["outputs"]
    roll = (run / "tables" / "00_rollout_by_cohort.csv").read_text().splitlines()
    # Calibration (CONTEXT.md): pilot cohort 2023 and city-wide cohort 2024 together 1,458 villages.
    header = roll[0].split(",")
    sizes = {int(r.split(",")[0]): int(r.split(",")[header.index("villages")]) for r in roll[1:]}
    assert sizes[2023] + sizes[2024] == 1458 and sum(sizes.values()) == 3224
