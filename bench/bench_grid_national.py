"""Benchmark: the specification grid at national size, per worker, and the projected national grid.

Issue 10 asks what one specification costs at national size (500,000 villages x 10 years) in
time and memory per worker, and for a projected wall time of the whole national grid on 1, 8
and 64 workers. A grid worker (:mod:`analysis.grid.engine`) receives the grid's data once
(:func:`analysis.grid.specification.grid_data`), then runs tasks: one task is the points of one
outcome under one (timing rule, window, covariate set) variant
(:func:`analysis.grid.specification.grid_tasks`; 28 points in the default grid: 24
Callaway-Sant'Anna, 2 Sun-Abraham, 2 imputation), and the worker builds each variant's panel once.

This script does exactly what one worker does, in one process with one BLAS thread, on a given
store (``study simulate --villages 500000 --first-year 2015 --out DIR --store DIR/study.duckdb``
makes the national city; ``make study-national`` keeps one in ``data/national/``):

1. reads the grid's data (time, and resident memory after);
2. runs the tasks of ``--outcome`` for each covariate set of ``--covariates`` (default all three)
   under the study's timing rule and every year (``min_months`` 6, window ``all``), point by
   point (:func:`analysis.grid.specification.run_point`), timing each point; the first point of a
   task also pays for building the variant's panel and covariates, which is timed apart;
3. samples the process's resident memory every 20 ms and reports its peak.

The projection (printed with its assumptions): the default grid has ``T`` tasks (198 for the 11
outcomes); a task of covariate set ``c`` is taken to cost what the measured task of ``c`` cost
(the other outcomes, timing rules and windows alike: same estimators on the same number of rows,
give or take a year for ``drop_first``); tasks go to ``W`` workers greedily, longest first, and
each worker also pays the data read once. Wall time = the busiest worker's load. The engine's own
cost (10 ms per specification on the default city, ``bench/bench_grid.py``) is left out: it is
below 0.1% of a national task. Memory per worker is the measured peak; at national size a worker keeps
only the variant it is using (``PREPARED_ROWS`` of :mod:`analysis.grid.specification`), so the peak over
these three tasks is what a worker needs.

Usage::

    .venv/bin/python bench/bench_grid_national.py --store /path/national/study.duckdb [--outcome income_per_capita]
"""

from __future__ import annotations

import argparse
import heapq
import os
import threading
import time

os.environ.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})

import psutil

from analysis.data import schema
from analysis.grid.specification import (
    COVARIATE_SETS,
    DEFAULT_MIN_MONTHS,
    grid_data,
    grid_points,
    grid_tasks,
    run_point,
)

WORKERS = (1, 8, 64)


class Peak:
    """Sample this process's resident memory every 20 ms until stopped; keep the peak (GB)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self.label = ""  # what the process was doing (set by the caller)
        self.at = ""  # the label when the peak was reached
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            rss = self._proc.memory_info().rss / 1e9
            if rss > self.peak:
                self.peak, self.at = rss, self.label

    def stop(self) -> float:
        """Stop sampling and return the peak in GB."""
        self._stop.set()
        self._thread.join()
        return max(self.peak, self._proc.memory_info().rss / 1e9)


def project(task_seconds: list[float], read_seconds: float, workers: int) -> float:
    """Longest-processing-time schedule of the tasks on ``workers`` workers; return the makespan (s)."""
    loads = [read_seconds] * workers
    heapq.heapify(loads)
    for t in sorted(task_seconds, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + t)
    return max(loads)


def main() -> int:
    """Run one worker's tasks on the store and print the per-point costs and the projection."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--outcome", default="income_per_capita")
    parser.add_argument("--covariates", default=",".join(COVARIATE_SETS), help="covariate sets to measure")
    args = parser.parse_args()
    sets = [c for c in args.covariates.split(",") if c]
    peak = Peak()
    print(f"store {args.store}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} CPUs", flush=True)
    t0 = time.perf_counter()
    data = grid_data(args.store)
    read_s = time.perf_counter() - t0
    rss_data = psutil.Process().memory_info().rss / 1e9
    n_villages = data.panel["village_code"].nunique()
    print(f"grid data: {len(data.panel):,} rows ({n_villages:,} villages, {data.first_year}-{data.last_year}); "
          f"read {read_s:.1f} s, resident {rss_data:.2f} GB", flush=True)

    levels = {"covariates": tuple(sets), "min_months": (DEFAULT_MIN_MONTHS,), "window": ("all",)}
    tasks = grid_tasks(grid_points([args.outcome], levels).points)
    per_set: dict[str, float] = {}
    by_estimator: dict[str, list[float]] = {}
    prepare: list[float] = []
    for task in tasks:
        cost = 0.0
        for i, point in enumerate(task.points):
            peak.label = point.name
            t = time.perf_counter()
            row = run_point(point, data)
            dt = time.perf_counter() - t
            if i == 0:
                # the first point also builds the variant's panel and covariates: run it again to
                # time the point alone; the difference is the variant's cost, counted once in the task
                t = time.perf_counter()
                run_point(point, data)
                again = time.perf_counter() - t
                prepare.append(dt - again)
                cost += dt - again
                dt = again
            cost += dt
            by_estimator.setdefault(point.estimator, []).append(dt)
            note = row["note"].iloc[0]
            print(f"  {point.name:70s} {dt:7.1f} s  estimate {row['estimate'].iloc[0]:.4g}"
                  f"{'  ' + note if note else ''}", flush=True)
        per_set[task.points[0].covariates] = cost
        print(f"task {task.name}: {cost:.1f} s (of which building the variant {prepare[-1]:.1f} s); "
              f"resident {psutil.Process().memory_info().rss / 1e9:.2f} GB", flush=True)
    peak_gb = peak.stop()

    print("\nper specification (s): " + "; ".join(
        f"{est} mean {sum(v) / len(v):.1f} (min {min(v):.1f}, max {max(v):.1f}, n={len(v)})"
        for est, v in by_estimator.items()))
    print(f"building a variant (panel + covariates): mean {sum(prepare) / len(prepare):.1f} s over {len(prepare)}")
    print(f"peak resident memory of the worker process: {peak_gb:.2f} GB (during {peak.at or 'the data read'})")

    full = grid_points(list(schema.OUTCOMES))
    full_tasks = grid_tasks(full.points)
    unmeasured = sorted({t.points[0].covariates for t in full_tasks} - set(per_set))
    costs = [per_set.get(t.points[0].covariates, max(per_set.values())) for t in full_tasks]
    print(f"\nprojection for the default national grid: {len(full.points):,} specifications in {len(full_tasks)} "
          f"tasks; a task costs what the measured task of its covariate set cost"
          f"{' (unmeasured sets ' + ', '.join(unmeasured) + ': the dearest measured)' if unmeasured else ''}; "
          "each worker reads the data once; longest tasks first; one core and "
          f"{peak_gb:.1f} GB per worker")
    for w in WORKERS:
        wall = project(costs, read_s, w)
        print(f"  {w:3d} workers: {wall / 3600:6.2f} h ({wall / 60:7.1f} min); memory {w} x {peak_gb:.2f} GB")
    print(f"load average after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
