"""The Dask engine (analysis.grid.engine) and the specification grid (analysis.grid.specification).

Default tier: a small grid on the default city serially and on a 2-worker local cluster (the same
frame, bit for bit), the grid's variant panels against the study's own panel loader, its headline point
against the headline estimate, the engine's resume and refusal of another run's folder, the committed
arrival-year records reproduced byte for byte on two Dask workers, and the bad calls (exit 2, one
message). Heavy tier (``slow``): a real ``dask scheduler`` with two ``dask worker`` processes on
127.0.0.1, a worker killed during a run, and the client killed during a run.
"""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import paths
from analysis.cli import main
from analysis.core.panel import load_analysis_panel
from analysis.core.spec import HEADLINE
from analysis.estimate import estimate
from analysis.grid import specification
from analysis.grid.curve import curve_summary
from analysis.grid.engine import EngineError, RunStats, SchedulerUnreachable, run_tasks
from analysis.grid.specification import (
    GridData,
    GridError,
    cached_variants,
    grid_data,
    grid_points,
    grid_tasks,
    run_grid,
    run_point,
    variant_panel,
)
from analysis.grid.stress import load_meta, run_stress, stress_tasks, write_records

SMALL_LEVELS = {"estimator": ["cs", "bjs"], "method": ["dr"], "covariates": ["none", "baseline"],
                "min_months": ["3", "6"], "anticipation": ["1"], "cluster": ["township"]}
"""16 Callaway-Sant'Anna points (comparison group x covariates x rule x window) and 8 imputation points."""


@pytest.fixture(scope="module")
def data(city_store):
    return grid_data(city_store)


@pytest.fixture(scope="module")
def serial_grid(data):
    plan = grid_points(["income_per_capita"], SMALL_LEVELS)
    return plan, run_grid(plan, data, serial=True)


def test_grid_points_skip_what_does_not_apply_and_bad_levels_fail():
    plan = grid_points(["income_per_capita", "criminal_cases"])
    # 432 Callaway-Sant'Anna points, 36 Sun-Abraham and 36 imputation points per outcome (module docstring)
    assert len(plan.points) == 2 * 504 and plan.skipped == 2 * (1296 - 504)
    assert len({p.name for p in plan.points}) == len(plan.points)
    sa = [p for p in plan.points if p.estimator == "sa"]
    assert {p.method for p in sa} == {""} and {p.anticipation for p in sa} == {None}
    assert {p.spec.control_group for p in sa} == {"never"}
    assert sum(p.is_headline() for p in plan.points) == 2
    small = grid_points(["income_per_capita"], SMALL_LEVELS)
    assert len(small.points) == 24
    with pytest.raises(GridError, match="unknown grid level 'colour'"):
        grid_points(["income_per_capita"], {"colour": ["red"]})
    with pytest.raises(GridError, match="no value 'pam'"):
        grid_points(["income_per_capita"], {"method": ["pam"]})
    with pytest.raises(GridError, match="'window' is empty"):
        grid_points(["income_per_capita"], {"window": []})
    with pytest.raises(GridError, match="no outcome"):
        grid_points([])


def test_points_are_grouped_into_one_task_per_outcome_and_variant(serial_grid, data):
    plan = grid_points(["income_per_capita", "criminal_cases"])
    tasks = grid_tasks(plan.points)
    # 2 outcomes x 3 rules x 2 windows x 3 covariate sets; 24 CS + 2 SA + 2 imputation points each
    assert len(tasks) == 36 and {len(t.points) for t in tasks} == {28}
    assert sorted(p.name for t in tasks for p in t.points) == sorted(p.name for p in plan.points)
    assert all(len({(p.outcome, p.min_months, p.window, p.covariates) for p in t.points}) == 1 for t in tasks)
    assert [t.name for t in grid_tasks(plan.points[::-1])] == [t.name for t in tasks]  # order-free
    split = grid_tasks(plan.points, points_per_task=10)
    assert len(split) == 36 * 3 and sorted(len(t.points) for t in split)[:36] == [8] * 36
    with pytest.raises(GridError, match="at least 1"):
        grid_tasks(plan.points, points_per_task=0)
    # The rows reassembled from the tasks are the points' own results (two points run on their own here).
    small, grid = serial_grid
    for point in (small.points[0], small.points[-1]):
        row = grid[grid["name"] == point.name].drop(columns="headline").reset_index(drop=True)
        pd.testing.assert_frame_equal(row, run_point(point, data).drop(columns="headline"))


def test_variant_panels_are_the_study_panel_under_each_rule_and_window(data, city_store):
    # The grid applies the timing rule and the window as load_analysis_panel does (reused, not rebuilt).
    for mm, window, first in ((3.0, "all", None), (9.0, "drop_first", 2019)):
        pd.testing.assert_frame_equal(variant_panel(data, mm, window),
                                      load_analysis_panel(city_store, first, None, mm))


def test_the_whole_window_shares_the_panel_instead_of_copying_it(data):
    # a boolean selection that keeps every row copied the national panel (1.3 GB) for the grid's data
    # and again for each whole-window variant; the values are those of the selection
    income = data.panel["income_per_capita"].to_numpy()
    variant = variant_panel(data, 6.0, "all")
    assert np.shares_memory(variant["income_per_capita"].to_numpy(), income)
    again = GridData.make(data.panel, data.postings, data.first_year, data.last_year)
    assert np.shares_memory(again.panel["income_per_capita"].to_numpy(), income)
    assert again.token == data.token
    later = variant_panel(data, 6.0, "drop_first")
    assert (later["year"] > data.first_year).all() and len(later) < len(data.panel)


def test_a_worker_keeps_only_the_variant_in_use_when_variants_are_large(serial_grid, data, monkeypatch):
    # At national size a variant panel holds 4.5-5M rows (1.3 GB): a worker keeps at most PREPARED_ROWS rows of
    # them. With the budget set to one variant of the default city the worker keeps one variant's panel, and the
    # estimates are still the serial grid's; with the default budget every variant used stays.
    small, grid = serial_grid
    by_variant = {}
    for p in small.points:
        by_variant.setdefault((p.min_months, p.window, p.covariates), p)
    points = list(by_variant.values())[:4]
    used = {(p.min_months, p.window) for p in points}
    assert len(used) >= 2
    for budget in (len(data.panel), specification.PREPARED_ROWS):
        monkeypatch.setattr(specification, "PREPARED_ROWS", budget)
        for p in points:
            row = run_point(p, data).drop(columns="headline")
            ref = grid[grid["name"] == p.name].drop(columns="headline").reset_index(drop=True)
            pd.testing.assert_frame_equal(row, ref)
            assert (p.min_months, p.window) in {(mm, w) for mm, w, _ in cached_variants()}
        kept = {(mm, w) for mm, w, _ in cached_variants()}
        assert kept == ({(points[-1].min_months, points[-1].window)} if budget == len(data.panel) else used | kept)
        assert used <= kept or budget == len(data.panel)


def test_grid_on_two_local_workers_equals_the_serial_grid(serial_grid, data, city_store):
    plan, one = serial_grid
    stats = RunStats()
    two = run_grid(plan, data, workers=2, stats=stats)
    # 8 tasks: one per (covariate set, rule, window) variant, each its 2 CS points and 1 imputation point
    assert stats.workers == 2 and stats.where == "local cluster" and stats.ran == 8
    pd.testing.assert_frame_equal(one, two)  # bit for bit: same order, same floats
    assert (one["note"] == "").all() and one["estimate"].notna().all()
    # The headline point is the study's headline estimate.
    head = one[one["headline"]]
    assert len(head) == 1
    t = estimate(load_analysis_panel(city_store), "income_per_capita", "cs",
                 covariates=HEADLINE.covariates).tidy()
    ref = t[t["aggregation"] == "simple"].iloc[0]
    assert head["estimate"].iloc[0] == ref["estimate"] and head["std_error"].iloc[0] == ref["std_error"]
    s = curve_summary(one).iloc[0]
    assert s["specifications"] == 24 and s["headline_estimate"] == ref["estimate"]
    assert s["median"] == np.median(one["estimate"])


def _square(task: int, shared: int) -> pd.DataFrame:
    return pd.DataFrame({"task": [task], "value": [task * task + shared]})


def _fail(task: int, shared: int) -> pd.DataFrame:
    raise AssertionError("a finished task was run again")


def test_engine_resumes_from_its_files_and_refuses_another_runs_folder(tmp_path):
    tasks = list(range(6))
    first = run_tasks(tasks, _square, name=lambda t: f"t{t}", shared=1, results_dir=tmp_path, fingerprint={"a": 1},
                      serial=True)
    assert len(list(tmp_path.glob("*.parquet"))) == 6
    (tmp_path / "t3.parquet").unlink()  # as if the run had been killed before task 3 finished
    stats = RunStats()
    again = run_tasks(tasks[::-1], lambda t, s: _fail(t, s) if t != 3 else _square(t, s), name=lambda t: f"t{t}",
                      shared=1, results_dir=tmp_path, fingerprint={"a": 1}, serial=True, stats=stats)
    assert stats.resumed == 5 and stats.ran == 1
    pd.testing.assert_frame_equal(pd.concat(again[::-1], ignore_index=True), pd.concat(first, ignore_index=True))
    with pytest.raises(EngineError, match="other options"):
        run_tasks(tasks, _square, name=str, results_dir=tmp_path, fingerprint={"a": 2}, serial=True)
    with pytest.raises(EngineError, match="unique"):
        run_tasks([1, 1], _square, name=str, serial=True)


def test_committed_arrival_records_come_out_byte_for_byte_on_two_dask_workers(tmp_path):
    # data/montecarlo/arrival_records.csv.gz was made by the code before the Dask engine: its first city of
    # each scenario, rerun on a 2-worker local cluster, writes the same CSV lines.
    meta = load_meta(paths.ARRIVAL_RECORDS)
    tasks = stress_tasks(1, meta["seed"], scenarios=meta["scenarios"], outcomes=meta["outcomes"],
                         estimators=meta["estimators"], checks=meta["checks"])
    fresh = run_stress(tasks, n_jobs=2, cache_dir=tmp_path / "tasks")
    out = write_records(fresh, tmp_path / "fresh.csv")
    lines = out.read_text(encoding="utf-8").splitlines()
    with gzip.open(paths.ARRIVAL_RECORDS, "rt", encoding="utf-8") as fh:
        committed = [line.rstrip("\n") for line in fh]
    header, rows = committed[0], committed[1:]
    first_city = [r for r in rows if r.split(",")[1] == "0"]
    assert lines[0] == header and sorted(lines[1:]) == sorted(first_city) and len(first_city) == 2 * 3 * 2


def test_bad_calls_exit_2_with_one_message(city_store, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDY_DASK_CONNECT_TIMEOUT", "1")
    out = str(tmp_path / "g")
    cases = [
        (["grid", "--store", str(city_store), "--level", "colour=red", "--out", out], "unknown grid level 'colour'"),
        (["grid", "--store", str(city_store), "--level", "estimator=", "--out", out], "'estimator' is empty"),
        (["grid", "--store", str(city_store), "--outcomes", "happiness", "--out", out], "unknown outcome"),
        (["grid", "--store", str(tmp_path / "none.duckdb"), "--out", out], "does not exist"),
        (["grid", "--store", str(city_store), "--outcomes", "income_per_capita", "--level", "estimator=bjs",
          "--scheduler", "tcp://127.0.0.1:9", "--out", out], "no Dask scheduler answers at tcp://127.0.0.1:9"),
        (["grid", "--store", str(city_store), "--workers", "0", "--out", out], "--workers must be at least 1"),
        (["grid", "--store", str(city_store), "--null-draws", "-1", "--out", out], "--null-draws must be at least 0"),
        (["grid", "--store", str(city_store), "--outcomes", "income_per_capita", "--level", "estimator=bjs",
          "--level", "min_months=6", "--level", "window=all", "--level", "covariates=none", "--level",
          "cluster=township", "--serial", "--null-draws", "2", "--out", out], "--null-points cs has no point"),
        (["montecarlo", "--replications", "0", "--out", out], "replications must be >= 1"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
        assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
        if "--scheduler" in argv:  # no progress bar before the run can start
            assert "%|" not in err, err
    with pytest.raises(SchedulerUnreachable):
        run_tasks([1], _square, name=str, scheduler="tcp://127.0.0.1:9")


# ----------------------------------------------------------------------------- heavy tier


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.mark.slow
def test_a_real_scheduler_and_two_workers_give_the_serial_grid(serial_grid, city_store, tmp_path, study):
    _, one = serial_grid
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [subprocess.Popen([_bin("dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0", "--no-show"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        time.sleep(2)
        procs += [subprocess.Popen([_bin("dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                    "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) for _ in range(2)]
        from distributed import Client

        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        levels = [f"--level={k}={','.join(v)}" for k, v in SMALL_LEVELS.items()]
        r = study("grid", "--store", city_store, "--outcomes", "income_per_capita", *levels, "--scheduler", address,
                  "--out", tmp_path / "g")
        assert r.returncode == 0, r.stderr
        assert f"{address}, 2 workers" in r.stdout, r.stdout.splitlines()[:3]
        got = pd.read_csv(tmp_path / "g" / "grid.csv", keep_default_na=False, na_values=[""],
                          dtype={"anticipation": str, "min_months": str, "method": str, "control_group": str})
        ref = one.copy()
        for c in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
            np.testing.assert_array_equal(got[c].to_numpy(float), ref[c].to_numpy(float))  # CSV keeps 17 digits
        assert list(got["name"]) == list(ref["name"])
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _sleepy(task: int, shared: int) -> pd.DataFrame:
    time.sleep(0.4)
    return _square(task, shared)


@pytest.mark.slow
def test_a_worker_killed_during_a_run_the_run_still_completes(tmp_path):
    import psutil

    killed: list[int] = []

    def killer() -> None:
        deadline = time.time() + 60
        while time.time() < deadline and len(list(tmp_path.glob("*.parquet"))) < 4:
            time.sleep(0.05)
        workers = [c for c in psutil.Process().children(recursive=True)
                   if "spawn_main" in " ".join(c.cmdline())]
        if workers:
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(workers[0].pid)

    th = threading.Thread(target=killer)
    th.start()
    frames = run_tasks(list(range(24)), _sleepy, name=lambda t: f"t{t:02d}", shared=1, results_dir=tmp_path,
                       workers=2)
    th.join()
    assert killed, "no worker process was found to kill"
    assert [int(f["task"].iloc[0]) for f in frames] == list(range(24))
    assert [int(f["value"].iloc[0]) for f in frames] == [t * t + 1 for t in range(24)]


@pytest.mark.slow
def test_the_client_killed_a_rerun_resumes_from_finished_files_with_the_same_result(serial_grid, city_store,
                                                                                   tmp_path):
    _, one = serial_grid
    levels = [f"--level={k}={','.join(v)}" for k, v in SMALL_LEVELS.items()]
    cmd = [sys.executable, "-m", "analysis", "grid", "--store", str(city_store), "--outcomes", "income_per_capita",
           *levels, "--workers", "2", "--out", str(tmp_path / "g")]
    tasks = tmp_path / "g" / "tasks"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(tasks.glob("*.parquet"))) < 3 and proc.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its local cluster, by the group of the PID we started
        proc.wait()
    done = len(list(tasks.glob("*.parquet")))
    assert 0 < done < 8, done  # 8 tasks of 3 points (grid_tasks)
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"24 specifications in 8 tasks ({done} tasks read from" in r.stdout
    got = pd.read_csv(tmp_path / "g" / "grid.csv")
    np.testing.assert_array_equal(got["estimate"].to_numpy(float), one["estimate"].to_numpy(float))


def test_grid_data_narrowed_to_its_outcomes_gives_the_same_points(data):
    # notebook 07 keeps only its outcomes and the columns a point reads (a variant panel is half the size at
    # national scale): every estimator and covariate set must estimate exactly what it does on the whole panel
    narrow = GridData.make(data.panel, data.postings, data.first_year, data.last_year, outcomes=["income_per_capita"])
    assert set(narrow.panel.columns) == set(specification.GRID_COLUMNS_READ) | {"income_per_capita"}
    assert "collective_income" in data.panel.columns and narrow.token != data.token
    plan = grid_points(["income_per_capita"], {"estimator": ["cs", "sa", "bjs"], "method": ["dr"],
                                               "covariates": ["none", "baseline_party"], "min_months": ["6"],
                                               "anticipation": ["1"], "cluster": ["township", "county"],
                                               "window": ["all"], "control_group": ["notyet"]})
    for p in plan.points:
        whole, part = run_point(p, data), run_point(p, narrow)
        assert whole["note"].iloc[0] == "" and np.isfinite(whole["estimate"].iloc[0]), p.name
        pd.testing.assert_frame_equal(whole, part, check_exact=True)
