"""Benchmark the specification grid on the Dask engine: 1 and 2 workers, overhead per task, worker memory.

Data: the default city's store (``make study`` or ``study simulate`` writes ``data/study.duckdb``), read
once (:func:`analysis.grid.specification.grid_data`). Measured in this one script:

* the grid (default levels, 504 specifications per outcome; ``--outcomes``, default every outcome)
  serially in this process, and on a local Dask cluster of 1 and of 2 workers (one process, one thread,
  one BLAS thread each); wall time of each including the cluster's start and close; the speedup of
  2 workers over 1; the three results are checked equal (bit for bit);
* the engine's overhead: wall time on 1 worker - serial wall time, per task (one per outcome and
  (timing rule, window, covariate set) variant: :func:`analysis.grid.specification.grid_tasks`) and per
  specification;
* the peak resident memory of every worker process (sampled every 50 ms with psutil over the whole
  2-worker run; the largest is reported) against the target of 3 GB;
* the machine's load average before and after.

Usage::

    .venv/bin/python bench/bench_grid.py                       # every outcome (about 15 minutes on 2 cores)
    .venv/bin/python bench/bench_grid.py --outcomes income_per_capita,criminal_cases,new_members
"""

from __future__ import annotations

import argparse
import os
import threading
import time

os.environ.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})

import pandas as pd
import psutil

from analysis import paths
from analysis.data import schema
from analysis.grid.engine import RunStats
from analysis.grid.specification import grid_data, grid_points, run_grid


class WorkerPeak:
    """Sample the RSS of this process's worker children (Dask's spawned processes) until stopped."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            for c in me.children(recursive=True):
                try:
                    if "spawn_main" in " ".join(c.cmdline()):
                        self.peak = max(self.peak, c.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(0.05)

    def __enter__(self) -> WorkerPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    """Run the benchmark and print its numbers."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outcomes", default=",".join(schema.OUTCOMES))
    ap.add_argument("--store", default=str(paths.DEFAULT_STORE))
    args = ap.parse_args()
    print("load before:", os.getloadavg())
    data = grid_data(args.store)
    plan = grid_points([o.strip() for o in args.outcomes.split(",") if o.strip()])
    print(plan.describe())
    results: dict[str, pd.DataFrame] = {}
    times: dict[str, float] = {}
    ntasks: dict[str, int] = {}
    for label, kw in (("serial", {"serial": True}), ("1 worker", {"workers": 1}), ("2 workers", {"workers": 2})):
        stats = RunStats()
        with WorkerPeak() as peak:
            results[label] = run_grid(plan, data, stats=stats, **kw)
        times[label], ntasks[label] = stats.seconds, stats.tasks
        extra = f", peak worker RSS {peak.peak / 2**30:.2f} GiB" if label != "serial" else ""
        print(f"{label}: {stats.seconds:.1f} s for {stats.tasks} tasks{extra}", flush=True)
    for label in ("1 worker", "2 workers"):
        pd.testing.assert_frame_equal(results["serial"], results[label])
    n, extra = len(plan.points), times["1 worker"] - times["serial"]
    print(f"identical results: yes; speedup 2 workers / 1 worker: {times['1 worker'] / times['2 workers']:.2f}x, "
          f"over serial: {times['serial'] / times['2 workers']:.2f}x; engine overhead (1 worker - serial): "
          f"{extra:.1f} s, {1000 * extra / ntasks['1 worker']:.1f} ms per task ({ntasks['1 worker']} tasks), "
          f"{1000 * extra / n:.1f} ms per specification")
    print("load after:", os.getloadavg())


if __name__ == "__main__":
    main()
