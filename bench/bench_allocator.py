"""Benchmark: the kernels' allocator settings against glibc's defaults, on national-size fits.

Every notebook kernel runs with :data:`analysis.kernel.ALLOCATOR_ENV` (large arrays from the heap, kept
for reuse once freed). This script measures what that buys and what it costs. It runs the same work
twice, each in its own process (the variables are read when a process starts): once with glibc's
defaults (every block above 32 MB mapped on its own and returned when freed) and once with the
kernels' settings. The work is Callaway-Sant'Anna, doubly robust, not-yet-treated comparisons, one
period of anticipation and township clusters (notebook 07's null draws), on a synthetic balanced panel of
``--units`` units x 9 periods (default 500,000: the national city's 4.5 million rows), fitted
``--fits`` times alternately with four covariates and without.

Per setting it prints the wall, user and system time of each fit, the minor page faults, and the
process's peak resident memory; then the ratios (kernels' settings / defaults) of the total wall time,
of the system time and of the peak memory, and the largest difference between the two runs'
estimates (the same arithmetic on the same data: expected 0). The machine's load is printed before
and after: on a shared machine read times as upper bounds.

Run: ``.venv/bin/python bench/bench_allocator.py [--units 500000] [--fits 6]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

GLIBC_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")


def panel(units: int, seed: int = 1):
    """Return a balanced synthetic panel: staggered cohorts 2018-2022 and never treated, 9 periods."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    years = np.arange(2016, 2025)
    cohort = rng.choice([0, 2018, 2019, 2020, 2021, 2022], size=units, p=[0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    town = rng.integers(0, max(units // 18, 2), size=units)
    x = rng.normal(size=(units, 4))
    unit_effect = rng.normal(size=units) + x @ np.array([0.5, -0.2, 0.1, 0.3])
    u = np.repeat(np.arange(units), len(years))
    t = np.tile(years, units)
    g = cohort[u]
    y = unit_effect[u] + 0.1 * (t - 2016) + np.where((g > 0) & (t >= g), 1.0, 0.0) + rng.normal(size=len(u))
    frame = pd.DataFrame({"unit": u, "year": t, "cohort": g, "township": town[u], "y": y})
    for j in range(4):
        frame[f"x{j}"] = x[u, j]
    return frame


def child(units: int, fits: int) -> dict:
    """Fit ``fits`` times in this process; return the timings, faults, peak memory and estimates."""
    from analysis.estimators.callaway_santanna import aggregate, att_gt

    data = panel(units)
    rows = []
    for i in range(fits):
        covs = [f"x{j}" for j in range(4)] if i % 2 == 0 else None
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        res = aggregate(att_gt(data, "y", unit="unit", time="year", cohort="cohort", covariates=covs,
                               control_group="notyet", anticipation=1, cluster="township"), "simple")
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        rows.append({"covariates": 0 if covs is None else len(covs), "wall": wall,
                     "user": r1.ru_utime - r0.ru_utime, "system": r1.ru_stime - r0.ru_stime,
                     "faults": r1.ru_minflt - r0.ru_minflt, "estimate": float(res.tidy()["estimate"].iloc[0])})
    return {"fits": rows, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9}


def run_setting(label: str, env: dict[str, str], units: int, fits: int) -> dict:
    """Run :func:`child` in a fresh process with ``env`` and print its fits."""
    out = subprocess.run([sys.executable, __file__, "--child", "--units", str(units), "--fits", str(fits)],
                         env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{label}: peak {result['peak_gb']:.2f} GB")
    for r in result["fits"]:
        print(f"  k={r['covariates']}  wall {r['wall']:5.2f} s  user {r['user']:5.2f} s  system {r['system']:5.2f} s"
              f"  faults {r['faults']:7d}  ATT {r['estimate']:.12f}")
    return result


def main() -> None:
    """Run both settings and print the ratios."""
    from analysis.kernel import ALLOCATOR_ENV

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=500_000)
    ap.add_argument("--fits", type=int, default=6)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.units, args.fits)))
        return
    base = {k: v for k, v in os.environ.items() if k not in GLIBC_VARIABLES}
    base.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0"})
    print(f"{args.units:,} units x 9 periods, {args.fits} fits; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    default = run_setting("glibc defaults", base, args.units, args.fits)
    tuned = run_setting("kernels' settings (" + " ".join(f"{k}={v}" for k, v in ALLOCATOR_ENV.items()) + ")",
                        {**base, **ALLOCATOR_ENV}, args.units, args.fits)

    def total(res: dict, key: str) -> float:
        return sum(r[key] for r in res["fits"])

    diff = max(abs(a["estimate"] - b["estimate"]) for a, b in zip(default["fits"], tuned["fits"], strict=True))
    print(f"kernels' settings / defaults: wall {total(tuned, 'wall') / total(default, 'wall'):.2f}"
          f" ({total(tuned, 'wall'):.1f} s / {total(default, 'wall'):.1f} s), system time "
          f"{total(tuned, 'system'):.1f} s / {total(default, 'system'):.1f} s, peak memory "
          f"{tuned['peak_gb'] / default['peak_gb']:.2f} ({tuned['peak_gb']:.2f} / {default['peak_gb']:.2f} GB); "
          f"largest difference of the estimates {diff:.1e}")
    print(f"load average now {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
