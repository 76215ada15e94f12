"""Monte Carlo of bias and coverage under this city's design: the evidence for the estimator choice.

Each replication simulates a fresh synthetic city (same design, new draws), estimates the
effect with each estimator, and records the estimate, its 95% interval and the truth the
simulator wrote. Replications are independent tasks, each seeded from one
``numpy.random.SeedSequence(seed).spawn(replications)``, so the results are identical
whether they run in one process or spread over workers.
"""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from analysis.panel import DEFAULT_COVARIATES

ESTIMATOR_SPECS: dict[str, dict] = {
    "cs": {"estimator": "cs", "control_group": "notyet", "covariates": DEFAULT_COVARIATES, "row": "simple"},
    "sa": {"estimator": "sa", "control_group": "never", "covariates": DEFAULT_COVARIATES, "row": "simple"},
    "bjs": {"estimator": "bjs", "control_group": "notyet", "covariates": DEFAULT_COVARIATES, "row": "simple"},
    "twfe": {"estimator": "twfe", "control_group": "notyet", "covariates": (), "row": "coef"},
}


def replication_seeds(seed: int, replications: int) -> list[int]:
    """Derive one city seed per replication from the study seed.

    Parameters
    ----------
    seed : int
        The study seed.
    replications : int
        Number of replications.

    Returns
    -------
    list of int
        Independent 63-bit seeds, one per replication.
    """
    children = np.random.SeedSequence(seed).spawn(replications)
    return [int(c.generate_state(2, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


def _one(args) -> list[dict]:
    rep, city_seed, outcomes, estimators, city_kwargs = args
    from analysis.data.synthetic import simulate_city
    from analysis.estimate import estimate
    from analysis.treatment import attach_treatment

    city = simulate_city(seed=city_seed, **city_kwargs)
    panel = attach_treatment(city.panel, city.treatment)
    ta = city.truth_aggregates
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for oc in outcomes:
            truth = float(ta[(ta["outcome"] == oc) & (ta["aggregation"] == "simple")]["value"].iloc[0])
            for name in estimators:
                spec = ESTIMATOR_SPECS[name]
                r = estimate(panel, oc, spec["estimator"], control_group=spec["control_group"],
                             covariates=spec["covariates"]).tidy()
                row = r[r["aggregation"] == spec["row"]].iloc[0]
                rows.append({"replication": rep, "seed": city_seed, "outcome": oc, "estimator": name,
                             "estimate": row["estimate"], "std_error": row["std_error"],
                             "conf_low": row["conf_low"], "conf_high": row["conf_high"], "truth": truth})
    return rows


def monte_carlo(
    replications: int,
    seed: int,
    outcomes: Sequence[str] = ("income_per_capita",),
    estimators: Sequence[str] = ("cs", "twfe"),
    n_jobs: int = 1,
    **city_kwargs,
) -> pd.DataFrame:
    """Simulate ``replications`` cities and estimate each outcome with each estimator.

    Parameters
    ----------
    replications : int
        Number of simulated cities.
    seed : int
        Study seed; replication seeds are spawned from it.
    outcomes : sequence of str
        Outcomes to estimate.
    estimators : sequence of str
        Keys of :data:`ESTIMATOR_SPECS`.
    n_jobs : int, default 1
        Worker processes (results do not depend on it).
    **city_kwargs
        Passed to :func:`analysis.data.synthetic.simulate_city` (e.g. ``n_villages``).

    Returns
    -------
    pandas.DataFrame
        One row per replication, outcome and estimator.
    """
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications}")
    bad = [e for e in estimators if e not in ESTIMATOR_SPECS]
    if bad:
        raise ValueError(f"unknown estimator(s) {bad}; choose from {', '.join(ESTIMATOR_SPECS)}")
    tasks = [(i, s, list(outcomes), list(estimators), city_kwargs)
             for i, s in enumerate(replication_seeds(seed, replications))]
    if n_jobs > 1:
        # spawn, not fork: a forked child inherits locked thread pools (BLAS, DuckDB) and can hang.
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
            chunks = list(ex.map(_one, tasks))
    else:
        chunks = [_one(t) for t in tasks]
    return pd.DataFrame([r for chunk in chunks for r in chunk])


def summarise(mc: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE and 95%-interval coverage by outcome and estimator.

    Parameters
    ----------
    mc : pandas.DataFrame
        Output of :func:`monte_carlo`.

    Returns
    -------
    pandas.DataFrame
        ``outcome, estimator, replications, mean_truth, bias, relative_bias, rmse, coverage,
        coverage_mc_se`` (the Monte Carlo standard error of the coverage).
    """
    d = mc.assign(err=mc["estimate"] - mc["truth"],
                  cover=(mc["conf_low"] <= mc["truth"]) & (mc["truth"] <= mc["conf_high"]))
    g = d.groupby(["outcome", "estimator"], sort=False)
    out = g.agg(replications=("err", "size"), mean_truth=("truth", "mean"), bias=("err", "mean"),
                rmse=("err", lambda x: float(np.sqrt(np.mean(np.square(x))))), coverage=("cover", "mean"))
    out["relative_bias"] = out["bias"] / out["mean_truth"].abs()
    out["coverage_mc_se"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / out["replications"])
    return out.reset_index()[["outcome", "estimator", "replications", "mean_truth", "bias", "relative_bias",
                              "rmse", "coverage", "coverage_mc_se"]]
