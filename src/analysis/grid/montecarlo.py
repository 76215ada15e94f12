"""Monte Carlo of bias and coverage under this city's design: the evidence for the estimator choice.

Each replication simulates a fresh synthetic city (same design, new draws), estimates the
effect with each estimator, and records the estimate, its 95% interval and the truth the
simulator wrote. Replications are a list of independent seeded tasks
(:func:`replication_tasks`, each run by :func:`run_replication`), each city seeded from one
``numpy.random.SeedSequence(seed).spawn(replications)``, so the results are identical
whether they run in one process or spread over workers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.core.spec import HEADLINE, Spec
from analysis.data.synthetic.scenarios import Scenario

ESTIMATOR_SPECS: dict[str, Spec] = {
    "cs": HEADLINE,
    "sa": HEADLINE.replace(estimator="sa", control_group="never"),
    "bjs": HEADLINE.replace(estimator="bjs"),
    "twfe": HEADLINE.replace(estimator="twfe", covariates=()),
    "ppml": HEADLINE.replace(estimator="ppml"),
}
"""How each estimator is run for its overall effect: the headline's choices, except that Sun-Abraham
compares with the never-treated villages and TWFE, the conventional benchmark, has no covariates
(Poisson: its level effect, the ``simple`` row)."""


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


@dataclass(frozen=True)
class Replication:
    """One Monte Carlo task: simulate a city from its own seed and estimate every outcome with every estimator.

    Attributes
    ----------
    index : int
        Replication number (0-based).
    seed : int
        Seed of the city (:func:`replication_seeds`).
    outcomes : tuple of str
        Outcomes to estimate.
    estimators : tuple of str
        Keys of :data:`ESTIMATOR_SPECS`.
    city_kwargs : dict
        Passed to :func:`analysis.data.synthetic.simulate_city`.
    scenario : analysis.data.synthetic.Scenario
        Stress scenario of the city (default: the calibrated city). The stress-test Monte Carlo's
        tasks (:class:`analysis.grid.stress.StressTask`) extend this one with the checks run on
        the city.
    """

    index: int
    seed: int
    outcomes: tuple[str, ...]
    estimators: tuple[str, ...]
    city_kwargs: dict[str, Any] = field(default_factory=dict)
    scenario: Scenario = field(default_factory=Scenario)

    @property
    def key(self) -> tuple[str, int]:
        """The task's key: scenario name and replication number (results are sorted by it)."""
        return self.scenario.name, self.index


def replication_tasks(
    replications: int,
    seed: int,
    outcomes: Sequence[str] = ("income_per_capita",),
    estimators: Sequence[str] = ("cs", "twfe"),
    **city_kwargs: Any,
) -> list[Replication]:
    """List the independent seeded tasks of a Monte Carlo.

    Parameters
    ----------
    replications : int
        Number of simulated cities (>= 1).
    seed : int
        Study seed; each task's seed is spawned from it (:func:`replication_seeds`).
    outcomes : sequence of str
        Outcomes to estimate.
    estimators : sequence of str
        Keys of :data:`ESTIMATOR_SPECS`.
    **city_kwargs
        Passed to :func:`analysis.data.synthetic.simulate_city` (e.g. ``n_villages``).

    Returns
    -------
    list of Replication
        One task per replication; running them in any order or place gives the same rows.

    Raises
    ------
    ValueError
        For fewer than one replication or an unknown estimator.
    """
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications}")
    bad = [e for e in estimators if e not in ESTIMATOR_SPECS]
    if bad:
        raise ValueError(f"unknown estimator(s) {bad}; choose from {', '.join(ESTIMATOR_SPECS)}")
    return [Replication(i, s, tuple(outcomes), tuple(estimators), dict(city_kwargs))
            for i, s in enumerate(replication_seeds(seed, replications))]


def run_replication(task: Replication) -> list[dict]:
    """Run one Monte Carlo task.

    Parameters
    ----------
    task : Replication
        The task.

    Returns
    -------
    list of dict
        One row per outcome and estimator: ``replication, seed, outcome, estimator, estimate,
        std_error, conf_low, conf_high, truth`` (the city's true simple ATT).
    """
    from analysis.core.treatment import attach_treatment
    from analysis.data.synthetic import simulate_city
    from analysis.estimate import estimate

    rep, city_seed, outcomes, estimators = task.index, task.seed, task.outcomes, task.estimators
    city = simulate_city(seed=city_seed, scenario=task.scenario, **task.city_kwargs)
    panel = attach_treatment(city.panel, city.treatment)
    ta = city.truth_aggregates
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for oc in outcomes:
            truth = float(ta[(ta["outcome"] == oc) & (ta["aggregation"] == "simple")]["value"].iloc[0])
            for name in estimators:
                spec = ESTIMATOR_SPECS[name]
                r = estimate(panel, oc, spec.estimator, control_group=spec.control_group,
                             covariates=spec.covariates, cluster=spec.cluster).tidy()
                row = r[r["aggregation"] == spec.aggregation].iloc[0]
                rows.append({"replication": rep, "seed": city_seed, "outcome": oc, "estimator": name,
                             "estimate": row["estimate"], "std_error": row["std_error"],
                             "conf_low": row["conf_low"], "conf_high": row["conf_high"], "truth": truth})
    return rows


def replication_frame(task: Replication, shared: object = None) -> pd.DataFrame:
    """Run one Monte Carlo task as an engine task (:func:`analysis.grid.engine.run_tasks`).

    Parameters
    ----------
    task : Replication
        The task.
    shared : object, optional
        Unused (each task simulates its own city).

    Returns
    -------
    pandas.DataFrame
        :func:`run_replication`'s rows.
    """
    return pd.DataFrame(run_replication(task))


def replication_name(task: Replication) -> str:
    """Return a Monte Carlo task's unique name (its key and the name of its results file).

    Parameters
    ----------
    task : Replication
        The task.

    Returns
    -------
    str
        ``<scenario>-<replication>-<seed>``.
    """
    return f"{task.scenario.name}-{task.index:05d}-{task.seed}"


def monte_carlo(
    replications: int,
    seed: int,
    outcomes: Sequence[str] = ("income_per_capita",),
    estimators: Sequence[str] = ("cs", "twfe"),
    n_jobs: int = 1,
    scheduler: str | None = None,
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
        Worker processes: 1 runs in this process, more a local Dask cluster of that many
        (:mod:`analysis.grid.engine`); the results do not depend on it.
    scheduler : str, optional
        Address of an existing Dask scheduler to run on instead.
    **city_kwargs
        Passed to :func:`analysis.data.synthetic.simulate_city` (e.g. ``n_villages``).

    Returns
    -------
    pandas.DataFrame
        One row per replication, outcome and estimator.
    """
    tasks = replication_tasks(replications, seed, outcomes, estimators, **city_kwargs)
    if n_jobs > 1 or scheduler:
        from analysis.grid.engine import run_tasks

        frames = run_tasks(tasks, replication_frame, name=replication_name, workers=n_jobs, scheduler=scheduler,
                           description="monte-carlo")
        return pd.DataFrame([r for f in frames for r in f.to_dict("records")])
    return pd.DataFrame([r for t in tasks for r in run_replication(t)])


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
