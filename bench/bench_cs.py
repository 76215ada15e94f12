"""Benchmark Callaway-Sant'Anna on a national-scale panel: ours against diff-diff.

Generates a seeded staggered panel (default 500,000 units x 10 years, one covariate,
townships of ~180 units), then times, each in a fresh subprocess so peak memory is
measured separately:

* ``ours``: ``att_gt`` (doubly robust, one covariate, never-treated comparison, analytic
  SEs) + ``aggregate(kind="simple")``;
* ``ours-boot``: the same with township-clustered analytic SEs, then (timed separately)
  a 999-draw township-clustered multiplier bootstrap of the ATT(g,t), the event study
  with a township-clustered bootstrap, and a 999-draw unit-level bootstrap;
* ``diff-diff``: ``diff_diff.CallawaySantAnna`` with the same options, if installed.

Peak RSS is the maximum resident set size seen by a psutil sampler thread (every 5 ms)
during the timed call; ``rss_before`` is the RSS after the data are generated.

Usage::

    .venv/bin/python bench/bench_cs.py                 # all contenders
    .venv/bin/python bench/bench_cs.py --units 50000   # smaller
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import psutil

YEARS = np.arange(2015, 2025)
COHORTS = np.array([0, 2017, 2019, 2021, 2023])
COHORT_P = np.array([0.4, 0.15, 0.15, 0.15, 0.15])


def make_panel(n_units: int, seed: int = 20230601) -> pd.DataFrame:
    """Return a balanced long panel with a covariate-dependent trend and known effects."""
    rng = np.random.default_rng(seed)
    T = len(YEARS)
    x = rng.normal(size=n_units)
    # treatment more likely for low x (weak villages are targeted)
    logits = np.column_stack([np.zeros(n_units)] + [-0.5 * x] * (len(COHORTS) - 1))
    logits += np.log(COHORT_P)
    u = rng.random(n_units)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    g = COHORTS[(u[:, None] > np.cumsum(p, axis=1)).sum(axis=1)]
    township = np.arange(n_units) // 180
    alpha = rng.normal(size=n_units)
    yr = np.tile(YEARS, n_units)
    gg = np.repeat(g, T)
    xx = np.repeat(x, T)
    e = yr - gg
    treated = (gg > 0) & (e >= 0)
    y = (np.repeat(alpha, T) + 0.1 * (yr - YEARS[0]) + 0.05 * xx * (yr - YEARS[0])
         + np.where(treated, 1.0 + 0.1 * e, 0.0) + rng.normal(size=n_units * T))
    return pd.DataFrame({
        "unit": np.repeat(np.arange(n_units), T), "year": yr, "y": y, "x": xx,
        "cohort": gg, "township": np.repeat(township, T),
    })


class PeakRSS:
    """Context manager sampling the process RSS in a thread; ``peak`` in bytes."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self):
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def run_one(which: str, n_units: int, draws: int) -> dict:
    """Run one contender in this process and return its figures."""
    df = make_panel(n_units)
    rss0 = psutil.Process().memory_info().rss
    out = {"contender": which, "units": n_units, "rows": len(df),
           "rss_before_mb": round(rss0 / 2**20)}
    if which in ("ours", "ours-boot"):
        from analysis.estimators.callaway_santanna import aggregate, att_gt

        with PeakRSS() as mem:
            t0 = time.perf_counter()
            res = att_gt(df, "y", "unit", "year", "cohort", covariates=["x"], method="dr",
                         cluster="township" if which == "ours-boot" else None)
            simple = aggregate(res, "simple")
            out["seconds"] = round(time.perf_counter() - t0, 2)
        out["peak_rss_mb"] = round(mem.peak / 2**20)
        out["simple_att"] = float(simple.table.estimate.iloc[0])
        out["simple_se"] = float(simple.table.std_error.iloc[0])
        if which == "ours-boot":
            from analysis.inference.multiplier import multiplier_bootstrap

            with PeakRSS() as mem:
                t0 = time.perf_counter()
                inf = res.influence
                ok = np.isfinite(res.analytic_se)
                boot = multiplier_bootstrap(inf[:, ok], n_draws=draws, seed=1,
                                            clusters=res.clusters)
                out["bootstrap_seconds"] = round(time.perf_counter() - t0, 2)
                t0 = time.perf_counter()
                es = aggregate(res, "event", bootstrap=draws, seed=2)
                out["event_bootstrap_seconds"] = round(time.perf_counter() - t0, 2)
            out["bootstrap_peak_rss_mb"] = round(mem.peak / 2**20)
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                multiplier_bootstrap(inf[:, ok], n_draws=draws, seed=1)
                out["unit_bootstrap_seconds"] = round(time.perf_counter() - t0, 2)
            out["unit_bootstrap_peak_rss_mb"] = round(mem.peak / 2**20)
            out["n_clusters"] = boot.n_clusters
            out["sup_t_event"] = round(float(es.crit_value), 3)
    else:
        import warnings

        from diff_diff import CallawaySantAnna

        warnings.simplefilter("ignore")
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            r = CallawaySantAnna(estimation_method="dr").fit(
                df, outcome="y", unit="unit", time="year", first_treat="cohort",
                covariates=["x"])
            out["seconds"] = round(time.perf_counter() - t0, 2)
        out["peak_rss_mb"] = round(mem.peak / 2**20)
        out["simple_att"] = float(r.overall_att)
        out["simple_se"] = float(r.overall_se)
    return out


def main(argv=None) -> None:
    """Run every contender in its own subprocess and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=500_000)
    ap.add_argument("--draws", type=int, default=999)
    ap.add_argument("--only", choices=["ours", "ours-boot", "diff-diff"])
    args = ap.parse_args(argv)
    if args.only:
        print(json.dumps(run_one(args.only, args.units, args.draws)))
        return
    contenders = ["ours", "ours-boot"]
    try:
        import diff_diff  # noqa: F401

        contenders.append("diff-diff")
    except ImportError:
        print("diff-diff not installed: skipping it")
    print(f"panel: {args.units:,} units x {len(YEARS)} years, DR with one covariate, "
          f"{psutil.cpu_count()} CPUs")
    for c in contenders:
        proc = subprocess.run(
            [sys.executable, __file__, "--only", c, "--units", str(args.units),
             "--draws", str(args.draws)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode:
            print(c, "failed:", proc.stderr[-2000:])
            continue
        print(json.dumps(json.loads(proc.stdout.strip().splitlines()[-1])))


if __name__ == "__main__":
    main()
