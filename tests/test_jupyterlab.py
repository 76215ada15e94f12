"""The notebooks open and run in JupyterLab: their kernel, and parameters that resolve against the project root.

JupyterLab (``make lab``, serving the repository root) and ``jupyter nbconvert --execute`` start a
notebook's kernel in the notebook's own folder, ``notebooks/``. The notebooks' paths
(``store = "data/study.duckdb"``, ...) are read from the project root wherever the kernel starts,
so both commands of the issue run: ``jupyter nbconvert --execute 00_data_audit.ipynb`` from
``notebooks/`` and ``jupyter nbconvert --execute notebooks/00_data_audit.ipynb`` from the root.

The project root is made a temporary folder (``STUDY_ROOT``) holding the test city's store, so
the run reads no store of the developer's and writes nothing into the repository.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.kernel import KERNEL_ENV, KERNEL_NAME

REPO = Path(__file__).resolve().parents[1]
JUPYTER = Path(sys.executable).parent / "jupyter"


def test_the_notebooks_use_the_project_kernel_which_carries_the_reproducibility_settings():
    r = subprocess.run([str(JUPYTER), "kernelspec", "list", "--json"], capture_output=True, text=True, check=True)
    spec = json.loads(r.stdout)["kernelspecs"][KERNEL_NAME]
    assert Path(spec["resource_dir"]).is_relative_to(sys.prefix)  # installed in the environment, no root needed
    kernel = spec["spec"]
    assert kernel["env"] == KERNEL_ENV == {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1",
                                           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                           "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
    assert Path(kernel["argv"][0]) == Path(sys.executable)
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == KERNEL_NAME, path.name


@pytest.fixture(scope="module")
def project(city_store, tmp_path_factory):
    """A project root whose data/ holds the test city (store and synthetic files)."""
    root = tmp_path_factory.mktemp("project")
    (root / "data").mkdir()
    (root / "data" / "study.duckdb").symlink_to(city_store)
    (root / "data" / "synthetic").symlink_to(city_store.parent / "synthetic")
    return root


@pytest.mark.notebooks
@pytest.mark.parametrize(("cwd", "notebook"), [
    ("notebooks", "00_data_audit.ipynb"),
    # the kernel starts in notebooks/ again (nbconvert, like JupyterLab, starts it in the notebook's folder):
    # the same check through the other command, in the heavy tier
    pytest.param(".", "notebooks/00_data_audit.ipynb", marks=pytest.mark.slow),
], ids=["from-notebooks-folder", "from-jupyterlab-root"])
def test_a_notebook_runs_under_nbconvert_wherever_it_is_started(project, tmp_path, cwd, notebook):
    env = {**os.environ, "STUDY_ROOT": str(project)}
    r = subprocess.run([str(JUPYTER), "nbconvert", "--to", "notebook", "--execute", notebook,
                        "--output-dir", str(tmp_path), "--output", "executed"],
                       cwd=REPO / cwd, env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ParameterError" not in r.stderr
    executed = json.loads((tmp_path / "executed.ipynb").read_text())
    printed = "".join(o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", []))
                      for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "Analysis window 2018-2024: every year the store holds." in printed  # the resolved years, shown
    assert (project / "outputs" / "dev" / "tables" / "00_coverage.csv").is_file()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_the_notebooks_with_the_project_kernel():
    import signal
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as sock:  # a free port on the loopback address
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = f"LAB_ARGS=--no-browser --ip=127.0.0.1 --port={port} --port-retries=0 --allow-root"
    proc = subprocess.Popen(["make", "--no-print-directory", "lab", args],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        url, deadline = None, time.monotonic() + 90
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            found = re.search(r"(http://127\.0\.0\.1:\d+)/lab/tree/notebooks\?token=(\w+)", line)
            if found:
                url = found.groups()
        assert url is not None, "JupyterLab did not start on notebooks/"
        base, token = url

        def get(path):
            for _ in range(60):  # the address is printed a moment before the server accepts connections
                try:
                    with urllib.request.urlopen(f"{base}{path}?token={token}", timeout=30) as response:
                        return json.loads(response.read())
                except urllib.error.URLError:
                    time.sleep(0.5)
            raise AssertionError(f"JupyterLab did not answer at {base}")

        specs = get("/api/kernelspecs")
        assert specs["default"] == KERNEL_NAME and KERNEL_NAME in specs["kernelspecs"]
        assert specs["kernelspecs"][KERNEL_NAME]["spec"]["env"]["PYTHONHASHSEED"] == "0"
        names = {item["name"] for item in get("/api/contents/notebooks")["content"]}
        assert "00_data_audit.ipynb" in names
    finally:
        # Stop JupyterLab (make's child, in the group this test started), then let make reap it and exit.
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                pid, _, rest = stat.read_text().partition(" (")
                pgid = int(rest.rsplit(") ", 1)[1].split()[2])
            except (OSError, IndexError, ValueError):
                continue
            if pgid == proc.pid and int(pid) != proc.pid:
                os.kill(int(pid), signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_two_kernels_started_at_once_in_one_folder_get_sockets_of_their_own(tmp_path, monkeypatch):
    # Two `study run` in one project (or the test suite's two workers) start kernels in the same working
    # folder at the same time; jupyter_client's default IPC path, `kernel-ipc-<n>` relative to that folder,
    # let both take the same socket files ("Invalid Signature", "Kernel didn't respond in 60 seconds").
    import asyncio
    import glob

    from analysis.kernel import kernel_manager_class

    monkeypatch.chdir(tmp_path)

    async def start_two():
        kms = [kernel_manager_class(tmp_path / "kernels.log")(kernel_name=KERNEL_NAME) for _ in range(2)]
        await asyncio.gather(*(km.start_kernel(cwd=str(tmp_path)) for km in kms))
        try:
            for km in kms:
                kc = km.client()
                kc.start_channels()
                try:
                    await kc.wait_for_ready(timeout=60)
                finally:
                    kc.stop_channels()
            return [km.ip for km in kms]
        finally:
            await asyncio.gather(*(km.shutdown_kernel(now=True) for km in kms))

    ips = asyncio.run(start_two())
    assert ips[0] != ips[1] and all(os.path.isabs(ip) for ip in ips)
    assert not list(tmp_path.glob("kernel-ipc*"))  # nothing in the working folder
    assert not [f for ip in ips for f in glob.glob(ip + "-*")]  # sockets removed at shutdown
