"""Run folders that cannot lie, through the command line as a user runs it (from outside the repository).

The study's rules for a run folder (:mod:`analysis.pipeline`): ``outputs/latest`` moves only on a
complete run; ``--only`` writes its folder but never moves ``latest`` and says so; a run folder
holds one parameter set and one version of the data (adding a notebook with other parameters, or
after an ingest, is refused); the MANIFEST records every notebook's parameters and whether the run
is complete; a used run name needs ``--force``, which replaces the folder; ``study brief`` refuses
a partial run and writes nothing.

Most tests run a two-notebook study (``STUDY_NOTEBOOKS_DIR``: notebooks that only write a results
section), so the pipeline's rules are checked in seconds; one runs the real ``00_data_audit``.
"""

import json
import shutil

import nbformat
import pytest

PARAMS = 'store = "data/study.duckdb"\noutput_dir = "outputs/dev"\nfirst_year = None\nlast_year = None\nseed = 1'
BODY = ("import json, pathlib\n"
        "folder = pathlib.Path(output_dir) / 'results'\n"
        "folder.mkdir(parents=True, exist_ok=True)\n"
        "(folder / '{section}.json').write_text(json.dumps({{}}))")
SECTION = {"00_first": "event_studies", "01_second": "robustness"}
"""The results section each mini notebook writes: empty, so that it follows results.json's schema."""


@pytest.fixture(scope="module")
def mini(tmp_path_factory, city_store):
    """A two-notebook study, its outputs folder, and the environment that points `study` at them."""
    base = tmp_path_factory.mktemp("mini")
    nbs = base / "notebooks"
    nbs.mkdir()
    for name in ("00_first", "01_second"):
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell(PARAMS)
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(BODY.format(section=SECTION[name]))]
        nb.metadata["kernelspec"] = {"name": "study", "display_name": "Python (study)", "language": "python"}
        nbformat.write(nb, nbs / f"{name}.ipynb")
    outputs = base / "outputs"
    env = {"STUDY_NOTEBOOKS_DIR": str(nbs), "STUDY_OUTPUTS_DIR": str(outputs), "STUDY_STORE": str(city_store)}
    return {"base": base, "outputs": outputs, "env": env}


def manifest(run):
    return json.loads((run / "MANIFEST").read_text())


def test_latest_moves_only_on_a_complete_run_and_a_run_name_is_used_once(mini, study):
    out, env, cwd = mini["outputs"], mini["env"], mini["base"]
    r = study("run", "--run-id", "full", "--jobs", "1", cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    assert "[1/2] 00_first" in r.stdout and "[2/2] 01_second" in r.stdout and " s\n" in r.stdout
    assert "Analysis window 2018-2024: every year the store holds." in r.stdout
    assert (out / "latest").resolve() == (out / "full").resolve()
    m = manifest(out / "full")
    assert m["complete"] is True and m["missing"] == []
    assert sorted(m["parameters"]) == ["00_first", "01_second"]  # every notebook's parameters, not the last one's
    assert m["parameters"]["01_second"]["last_year"] == 2024 and m["seed"] == 1

    # --only writes its folder, says the run is partial, and leaves latest alone
    r = study("run", "--only", "00_first", "--run-id", "part", cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    assert "is partial" in r.stdout and "01_second" in r.stdout and "latest was not moved" in r.stdout
    assert (out / "latest").resolve() == (out / "full").resolve()
    m = manifest(out / "part")
    assert m["complete"] is False and m["missing"] == ["01_second"] and list(m["parameters"]) == ["00_first"]

    # a brief of the partial run says so and writes nothing
    r = study("brief", "--run", "part", cwd=cwd, env=env)
    assert r.returncode == 2
    assert "is partial: it holds 1 of 2 notebooks (00_first); missing 01_second" in r.stderr
    assert "nothing was written" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "part" / "brief").exists()

    # the partial run's folder holds one parameter set: other parameters are refused, with the differences
    r = study("run", "--only", "01_second", "--run-id", "part", "-p", "seed=2", "--first-year", "2019",
              cwd=cwd, env=env)
    assert r.returncode == 2 and "holds a run with other parameters" in r.stderr
    assert "seed 1 there, 2 now (every notebook)" in r.stderr and "first_year 2018 there, 2019 now" in r.stderr
    assert not (out / "part" / "notebooks" / "01_second.ipynb").exists()

    # a used run name needs --force, which replaces the folder (nothing of the earlier run survives)
    (out / "full" / "stray.txt").write_text("from an earlier run")
    r = study("run", "--run-id", "full", cwd=cwd, env=env)
    assert r.returncode == 2 and "already exists" in r.stderr and "--force" in r.stderr
    assert (out / "full" / "stray.txt").exists()
    r = study("run", "--run-id", "full", "--force", "-p", "seed=3", cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    assert not (out / "full" / "stray.txt").exists()
    assert manifest(out / "full")["seed"] == 3 and (out / "latest").resolve() == (out / "full").resolve()


@pytest.mark.slow
def test_a_run_folder_never_mixes_two_versions_of_the_data(mini, study, city_store, tmp_path):
    """The issue's case: a 2025 year ingested, then one notebook rerun into the 2018-2024 run folder."""
    from analysis import paths

    store = tmp_path / "study.duckdb"
    shutil.copyfile(city_store, store)
    env, cwd = {**mini["env"], "STUDY_STORE": str(store)}, mini["base"]
    assert study("run", "--only", "00_first", "--run-id", "before", cwd=cwd, env=env).returncode == 0
    # the same parameters and data complete the partial run (latest is left to full runs)
    r = study("run", "--only", "01_second", "--run-id", "before", cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    assert manifest(mini["outputs"] / "before")["complete"] is True
    ex = paths.DATA_DIR / "examples"
    r = study("ingest", ex / "2025年村级统计.xlsx", ex / "2025年第二批第一书记名单.xlsx", "--mapping-dir",
              "--store", store, cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    r = study("run", "--only", "01_second", "--run-id", "before", cwd=cwd, env=env)
    assert r.returncode == 2 and "last_year 2024 there, 2025 now" in r.stderr
    r = study("run", "--only", "01_second", "--run-id", "before", "--last-year", "2024", cwd=cwd, env=env)
    assert r.returncode == 2 and "the store changed since the run folder" in r.stderr


def _study_of(base, bodies):
    """Notebooks named after ``bodies``' keys, each a parameters cell and that body; their folder."""
    nbs = base / "notebooks"
    nbs.mkdir(parents=True)
    for name, body in bodies.items():
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell(PARAMS)
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(body)]
        nb.metadata["kernelspec"] = {"name": "study", "display_name": "Python (study)", "language": "python"}
        nbformat.write(nb, nbs / f"{name}.ipynb")
    return nbs


# each notebook says it started and waits for the other: it finishes only if both run at the same time
MEET = ("import pathlib, time\n"
        "here = pathlib.Path({here!r})\n"
        "(here / '{me}').touch()\n"
        "deadline = time.time() + 60\n"
        "while not (here / '{other}').exists():\n"
        "    assert time.time() < deadline, 'the other notebook never started'\n"
        "    time.sleep(0.1)\n") + BODY


def test_with_jobs_2_two_notebooks_run_at_once_into_one_complete_run(study, city_store, tmp_path):
    bodies = {"00_first": MEET.format(here=str(tmp_path), me="a", other="b", section=SECTION["00_first"]),
              "01_second": MEET.format(here=str(tmp_path), me="b", other="a", section=SECTION["01_second"])}
    env = {"STUDY_NOTEBOOKS_DIR": str(_study_of(tmp_path / "s", bodies)), "STUDY_STORE": str(city_store)}
    r = study("run", "--jobs", "2", "--outputs", tmp_path / "out", "--run-id", "two", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 notebooks at a time (--jobs 2)" in r.stdout
    assert "started 00_first" in r.stdout and "started 01_second" in r.stdout
    assert "[1/2]" in r.stdout and "[2/2]" in r.stdout
    m = manifest(tmp_path / "out" / "two")
    assert m["complete"] is True and sorted(m["notebooks"]) == ["00_first", "01_second"]
    assert (tmp_path / "out" / "latest").resolve() == (tmp_path / "out" / "two").resolve()


def test_with_jobs_2_a_notebook_over_the_memory_limit_is_a_plain_message_and_the_other_finishes(
        study, city_store, tmp_path):
    hungry = ("import time\nx = bytearray(600 * 10**6)\nx[::4096] = b'1' * len(x[::4096])\ntime.sleep(60)")
    bodies = {"00_first": hungry, "01_second": BODY.format(section=SECTION["01_second"])}
    env = {"STUDY_NOTEBOOKS_DIR": str(_study_of(tmp_path / "s", bodies)), "STUDY_STORE": str(city_store)}
    out = tmp_path / "out"
    r = study("run", "--jobs", "2", "--memory-limit", "0.4", "--outputs", out, "--run-id", "r", cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr + r.stdout, r.stderr
    assert lines[0].startswith("error: notebook 00_first ran out of memory on 3,224 villages x 7 years (its kernel was "
                               "stopped at ")
    assert "the run is partial and outputs/latest was not moved" in lines[0]
    m = manifest(out / "r")
    assert m["complete"] is False and m["missing"] == ["00_first"] and list(m["notebooks"]) == ["01_second"]
    assert not (out / "latest").exists()


def test_ctrl_c_stops_every_notebook_and_kernel_with_one_plain_line(city_store, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    # each notebook writes its kernel's pid, then works for a minute
    slow = "import os, pathlib, time\npathlib.Path({here!r}, '{me}.pid').write_text(str(os.getpid()))\ntime.sleep(60)"
    bodies = {name: slow.format(here=str(tmp_path), me=name) for name in ("00_first", "01_second")}
    env = {**os.environ, "STUDY_NOTEBOOKS_DIR": str(_study_of(tmp_path / "s", bodies)), "STUDY_STORE": str(city_store)}
    out = tmp_path / "out"
    # a terminal's Ctrl-C: SIGINT to the command's process group. The command starts with SIGINT at its
    # default, as from a terminal (a test runner's worker may ignore it, and an ignored signal is inherited).
    proc = subprocess.Popen([sys.executable, "-m", "analysis", "run", "--jobs", "2", "--outputs", str(out),
                             "--run-id", "r"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        pids = [tmp_path / f"{name}.pid" for name in bodies]
        deadline = time.time() + 60
        while not all(p.is_file() and p.read_text() for p in pids) and time.time() < deadline:
            time.sleep(0.2)
        assert all(p.is_file() for p in pids), "the two notebooks did not start"
        kernels = [int(p.read_text()) for p in pids]
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines == ["interrupted: `study run` was stopped (Ctrl-C) before it finished; nothing after that point "
                     "was done"], stderr
    time.sleep(1)
    assert not [k for k in kernels if psutil.pid_exists(k) and psutil.Process(k).status() != psutil.STATUS_ZOMBIE]
    assert not (out / "r" / "MANIFEST").is_file()  # no notebook finished, so none is recorded as run
    assert not (out / "latest").exists()


def test_jobs_must_be_a_positive_whole_number(study, city_store, tmp_path):
    r = study("run", "--store", city_store, "--outputs", tmp_path / "o", "--jobs", "0")
    assert r.returncode == 2 and "--jobs must be a whole number of notebooks at a time, 1 or more, got 0" in r.stderr
    assert not (tmp_path / "o").exists()


def test_a_year_beyond_the_data_is_refused_before_any_work(mini, study):
    out, env, cwd = mini["outputs"], mini["env"], mini["base"]
    r = study("run", "--last-year", "2027", "--run-id", "beyond", cwd=cwd, env=env)
    assert r.returncode == 2
    assert "last_year = 2027 is outside the data" in r.stderr and "holds the years 2018-2024" in r.stderr
    assert not (out / "beyond").exists()


@pytest.mark.notebooks
def test_after_ingesting_2025_a_run_without_flags_analyses_through_2025(store_2025, study, tmp_path):
    """The real data-audit notebook, run from a folder outside the repository on a store holding 2018-2025."""
    r = study("run", "--only", "00_data_audit", "--store", store_2025, "--outputs", tmp_path / "out",
              "--run-id", "r", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Analysis window 2018-2025: every year the store holds." in r.stdout
    run = tmp_path / "out" / "r"
    data = json.loads((run / "results.json").read_text())["data"]
    assert data["window"] == {"first_year": 2018, "last_year": 2025, "store_years": list(range(2018, 2026)),
                              "source": "store"}
    assert data["last_year"] == 2025 and data["villages_by_cohort"]["2025"] == 300
    executed = json.loads((run / "notebooks" / "00_data_audit.ipynb").read_text())
    injected = executed["metadata"]["papermill"]["parameters"]
    assert (injected["first_year"], injected["last_year"]) == (2018, 2025)  # the notebook shows the resolved years
    assert "Traceback" not in r.stderr and "without encryption" not in r.stderr + r.stdout
    assert "[IPKernelApp]" not in r.stderr + r.stdout  # what the kernel prints goes to the run's kernels.log
