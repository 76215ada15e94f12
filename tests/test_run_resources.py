"""A notebook that runs out of memory ends `study run` with one plain line and exit code 2.

The pipeline (:mod:`analysis.pipeline`) watches the kernel's resident memory: a kernel stopped at
``--memory-limit``, a kernel that dies (as when the system kills it for want of memory) and a cell
that raises ``MemoryError`` each give one message naming the notebook, the size of the data, the
memory reached or asked for, and what to do; the run is partial and ``outputs/latest`` does not move.
"""

import json

import nbformat
import pytest

from analysis.pipeline import MemoryWatch, data_size, is_memory_error, resource_failure_message

PARAMS = 'store = "data/study.duckdb"\noutput_dir = "outputs/dev"\nfirst_year = None\nlast_year = None\nseed = 1'


def _one_notebook_study(base, body):
    nbs = base / "notebooks"
    nbs.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "study", "display_name": "Python (study)", "language": "python"}
    nbformat.write(nb, nbs / "00_hungry.ipynb")
    return nbs


def _assert_plain_failure(r, out, run_id):
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr  # one plain line, no traceback
    assert "Traceback" not in r.stderr + r.stdout
    assert "the run is partial and outputs/latest was not moved" in lines[0]
    assert "a shorter window (--first-year)" in lines[0] and "Dask cluster" in lines[0]
    assert not (out / "latest").exists()
    manifest = json.loads((out / run_id / "MANIFEST").read_text())
    assert manifest["complete"] is False
    return lines[0]


@pytest.mark.notebooks
def test_a_stage_over_the_memory_limit_stops_with_a_plain_message_and_exit_2(city_store, study, tmp_path):
    """The real data-audit stage cannot run in 50 MB (a bare kernel holds more): the run stops at its kernel."""
    out = tmp_path / "out"
    r = study("run", "--store", city_store, "--outputs", out, "--run-id", "r", "--memory-limit", "0.05",
              "--jobs", "1", cwd=tmp_path)
    line = _assert_plain_failure(r, out, "r")
    # the default city: 3,224 villages, 2018-2024
    assert line.startswith("error: notebook 00_data_audit ran out of memory on 3,224 villages x 7 years (its kernel "
                           "was stopped at ")
    assert "over the run's memory limit of 0.05 GB" in line
    assert "bootstrap_draws" not in line and "outcomes" not in line  # the data audit takes neither
    assert "00_data_audit" in r.stdout and "failed after" in r.stdout
    assert json.loads((out / "r" / "MANIFEST").read_text())["missing"][0] == "00_data_audit"


@pytest.mark.notebooks
def test_a_kernel_that_dies_and_a_memory_error_are_plain_messages(city_store, study, tmp_path):
    out = tmp_path / "out"
    # a kernel killed from outside (as the system's out-of-memory killer does)
    nbs = _one_notebook_study(tmp_path / "died", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    env = {"STUDY_NOTEBOOKS_DIR": str(nbs)}
    r = study("run", "--store", city_store, "--outputs", out, "--run-id", "died", cwd=tmp_path, env=env)
    line = _assert_plain_failure(r, out, "died")
    assert "notebook 00_hungry ran out of memory on 3,224 villages x 7 years (its kernel died, most likely killed " \
           "by the system for want of memory" in line
    # numpy cannot allocate 10**14 float64 (728 TiB): a MemoryError in a cell, the kernel survives
    nbs = _one_notebook_study(tmp_path / "big", "import numpy as np\nx = np.empty((10**7, 10**7))")
    r = study("run", "--store", city_store, "--outputs", out, "--run-id", "big", cwd=tmp_path,
              env={"STUDY_NOTEBOOKS_DIR": str(nbs)})
    line = _assert_plain_failure(r, out, "big")
    assert "(a cell asked for 728. TiB more and got a MemoryError" in line


def test_the_memory_limit_must_be_positive(study, city_store, tmp_path):
    r = study("run", "--store", city_store, "--outputs", tmp_path / "o", "--memory-limit", "0")
    assert r.returncode == 2 and "--memory-limit must be a positive number of GB, got 0.0" in r.stderr
    assert not (tmp_path / "o").exists()


def test_memory_errors_are_recognised_and_the_data_size_is_said():
    assert is_memory_error("_ArrayMemoryError", "Unable to allocate 3.73 GiB for an array")
    assert is_memory_error("MemoryError") and is_memory_error("OutOfMemoryException", "could not allocate")
    assert not is_memory_error("ValueError", "bad outcome")
    state = {"panel_years": list(range(2015, 2025)), "panel_rows": 5_000_000}
    assert data_size(state) == "500,000 villages x 10 years"
    line = resource_failure_message("02_main_effects", "500,000 villages x 10 years", peak_gb=6.2,
                                    evalue="Unable to allocate 3.73 GiB for an array with shape (999, 500000)",
                                    takes={"bootstrap_draws", "first_year"})
    assert line.startswith("notebook 02_main_effects ran out of memory on 500,000 villages x 10 years (a cell "
                           "asked for 3.73 GiB more and got a MemoryError; the kernel held 6.2 GB). To fit, run it "
                           "with fewer bootstrap draws (-p bootstrap_draws=199), a shorter window (--first-year), "
                           "or on a machine or Dask cluster with more memory")


def test_memory_watch_kills_a_child_over_its_limit_and_leaves_earlier_ones_alone():
    import subprocess
    import sys

    earlier = subprocess.Popen([sys.executable, "-c", "import time\nx = bytearray(300 * 10**6)\n"
                                "x[::4096] = b'1' * len(x[::4096])\ntime.sleep(60)"])
    try:
        code = "import time\nx = bytearray(300 * 10**6)\nx[::4096] = b'1' * len(x[::4096])\ntime.sleep(30)"
        with MemoryWatch(limit_gb=0.2, interval=0.05) as watch:
            child = subprocess.Popen([sys.executable, "-c", code])
            rc = child.wait(timeout=30)
        assert watch.killed and rc != 0
        assert watch.peak_gb > 0.2
        assert earlier.poll() is None  # started before the block: not watched, not killed
    finally:
        earlier.kill()
        earlier.wait()
