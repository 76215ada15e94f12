"""Measure the size of the specification curve's joint test (analysis.grid.null_curve) by simulation.

"Verdicts are estimates too": the joint test that notebook 07 prints is run on cities simulated with no
effect at all (the ``no_effect`` stress scenario of :mod:`analysis.data.synthetic.scenarios`: the default
city's design and targeting, every true effect zero). Each city is one seeded task of the Dask engine
(seeds from :func:`analysis.grid.montecarlo.replication_seeds`): it simulates the city, estimates the
curve of notebook 07's joint test (income per capita; the 12 Callaway-Sant'Anna specifications at the
6-month rule and all years: comparison group x covariate set x anticipation) and runs the joint test
with ``--draws`` draws, its seed spawned from the city's. The rejection rate at 5% (p <= 0.05) of the
median and of the share-significant statistic is the test's size under this design; its Monte Carlo
standard error is printed beside it. The same draws also give the first version's one-sided p-values
(statistics in the headline's direction, :func:`analysis.grid.null_curve.curve_statistics`), printed
as ``*_one_sided`` for comparison.

Usage::

    .venv/bin/python bench/size_null_curve.py --cities 100 --draws 19 --workers 2 --out outputs/size-null-curve \
        --records data/montecarlo/null_curve_size.csv
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

from analysis.grid.engine import RunStats, run_tasks
from analysis.grid.montecarlo import replication_seeds

LEVELS = {"estimator": ["cs"], "method": ["dr"], "cluster": ["township"], "min_months": ["6"], "window": ["all"]}


def one_city(task: tuple[int, int, int], shared: object = None) -> pd.DataFrame:
    """Simulate one no-effect city and run the curve's joint test on it (an engine task)."""
    from analysis.data.synthetic import get_scenario, simulate_city
    from analysis.grid.null_curve import curve_statistics, null_test
    from analysis.grid.specification import GridData, grid_points, run_grid

    index, seed, draws = task
    city = simulate_city(seed=seed, scenario=get_scenario("no_effect"))
    years = city.panel["year"]
    data = GridData.make(city.panel, city.postings, int(years.min()), int(years.max()))
    plan = grid_points(["income_per_capita"], LEVELS)
    grid = run_grid(plan, data, serial=True)
    tests, dist = null_test(grid, data, plan.points, draws, seed, serial=True)
    r = tests.iloc[0]
    # The first version's one-sided test on the same draws: statistics in the headline's direction.
    head = float(grid.loc[grid["headline"], "estimate"].iloc[0])
    direction = 1.0 if head >= 0 else -1.0
    med, share = curve_statistics(grid["estimate"].to_numpy(float), grid["conf_low"].to_numpy(float),
                                  grid["conf_high"].to_numpy(float), direction)
    d_med = direction * dist["median"].to_numpy(float)
    d_share = dist["share_positive" if direction > 0 else "share_negative"].to_numpy(float)
    b = len(dist)
    return pd.DataFrame([{"city": index, "seed": seed, "specifications": int(r["specifications"]),
                          "median": r["median"], "share_significant": r["share_significant"],
                          "p_median": r["p_median"], "p_share_significant": r["p_share_significant"],
                          "p_median_one_sided": (1 + np.sum(d_med >= med)) / (1 + b),
                          "p_share_one_sided": (1 + np.sum(d_share >= share)) / (1 + b)}])


P_COLUMNS = ("p_median", "p_share_significant", "p_median_one_sided", "p_share_one_sided")
"""The two-sided p-values of the joint test, and the first version's one-sided ones on the same draws."""


def rejection_rates(cities: pd.DataFrame, alpha: float = 0.05) -> dict[str, tuple[float, float, int]]:
    """Return each p-value's rejection rate at ``alpha`` over the cities, its Monte Carlo SE and the city count."""
    n = len(cities)
    out = {}
    for col in P_COLUMNS:
        rate = float((cities[col] <= alpha + 1e-12).mean())
        out[col] = (rate, float(np.sqrt(rate * (1 - rate) / n)), n)
    return out


def main() -> None:
    """Run the simulation and print the rejection rates."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cities", type=int, default=100)
    ap.add_argument("--draws", type=int, default=19)
    ap.add_argument("--seed", type=int, default=20230601)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="outputs/size-null-curve")
    ap.add_argument("--records", default=None,
                    help="also write the per-city p-values to this CSV (data/montecarlo/null_curve_size.csv)")
    args = ap.parse_args()
    print("load before:", os.getloadavg())
    tasks = [(i, s, args.draws) for i, s in enumerate(replication_seeds(args.seed, args.cities))]
    stats = RunStats()
    frames = run_tasks(tasks, one_city, name=lambda t: f"city{t[0]:05d}-{t[1]}", results_dir=args.out,
                       fingerprint={"draws": args.draws, "levels": LEVELS, "test": "two-sided and one-sided"},
                       workers=args.workers, progress=True, stats=stats)
    d = pd.concat(frames, ignore_index=True)
    if args.records:
        d.to_csv(args.records, index=False, float_format="%.10g")
    for col, (rate, se, n) in rejection_rates(d).items():
        print(f"{col}: rejection at 5% {100 * rate:.1f}% of {n} no-effect cities "
              f"(Monte Carlo SE {100 * se:.1f} points)")
    print(f"{stats.seconds:.0f} s on {stats.workers} workers; load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
