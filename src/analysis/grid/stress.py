r"""Stress-test Monte Carlo: every estimator, test and robustness check under the design's realistic failures.

"Verdicts are estimates too": a test, an interval or a robustness check printed to a reader
has its size or coverage measured by simulation, under the stress scenarios of
:mod:`analysis.data.synthetic.scenarios` (clustered shocks, few clusters, partial exposure in the
arrival year, anticipation, non-linear and differential trends, a spillover rule the check does
not know, no effect at all).

Tasks
-----
One task (:class:`StressTask`) is one (scenario, seed) city: it simulates the city and runs every
outcome, estimator and check on it (:func:`run_stress_task`), returning one record per outcome,
check and method (:data:`RECORD_COLUMNS`). The city seeds are spawned from one
``numpy.random.SeedSequence(seed)`` (:func:`analysis.grid.montecarlo.replication_seeds`) and are
the same in every scenario (common random numbers: two scenarios differ only by what the scenario
changes). The seeds of a task's own draws (randomisation inference, wild bootstrap, HonestDiD's
critical values) are spawned from the city seed. Tasks are independent: :func:`run_stress` runs
them in any order, in one process or on a Dask cluster (:mod:`analysis.grid.engine`: local or
remote), keeps each task's records in a Parquet file of its own (an interrupted run
resumes) and sorts the records by task key before anything is reduced, so the records, and the
summary made from them (:func:`summarise_stress`), do not depend on where or in which order the
tasks ran.

What each task records
----------------------
For every outcome (default :data:`STRESS_OUTCOMES`, the headline outcome of each family):

* ``estimate``: the overall effect of Callaway-Sant'Anna (the headline, :data:`analysis.core.spec.HEADLINE`),
  Sun-Abraham, imputation (BJS), the static TWFE benchmark (:data:`analysis.grid.montecarlo.ESTIMATOR_SPECS`)
  and, for count outcomes, Poisson (PPML, level and ``ppml_pct`` % change), each against the
  city's true simple ATT (``value_prop`` for the % change), clustered at the scenario's level;
* ``pretest``: the joint pre-test of the headline's pre-treatment ATT(g,t)
  (:func:`analysis.estimators.callaway_santanna.pretest`); its null holds when no pre-period
  the test uses has an effect or a trend difference;
* ``randomisation``: randomisation inference of the robustness notebook with its default strata
  (:func:`analysis.stages.robustness.randomisation_summary`: cohorts permuted within county x
  propensity quintile, method ``cs_county_propensity``; sharp null: no effect anywhere);
* ``wild``: the wild cluster bootstrap-t of the static TWFE coefficient
  (:func:`analysis.stages.robustness.wild_summary`), and its CRV1 interval beside it. Its null
  is taken to be the coefficient's own expectation (its mean over the scenario's replications),
  so the rejection rate measures the inference, not the estimator's bias;
* ``spillover``: the spillover check (:func:`analysis.stages.robustness.spillover_did`,
  threshold :data:`analysis.stages.robustness.HIGH_SHARE`); null: no spillover;
* ``heterogeneity``: the Wald test of equal effects across cadre types
  (``estimate(..., by="cadre_type")``); null: equal true effects by cadre type;
* ``honest``: Rambachan-Roth intervals for the average post-period effect of the headline's
  event study (universal base period, :func:`analysis.stages.robustness.event_study`) under
  relative magnitudes with :math:`\bar M = 1` and smoothness with ``M = 0``, and the
  conventional interval, against the true average event-time effect. A violation linear in
  time (``trend_gap``) lies in both sets, so both should cover; without a violation, so
  should the conventional interval.

The checks are called through today's public functions: when those functions change (a
small-sample correction of the pre-test, a wild bootstrap for the headline), rerunning the
driver measures the new versions.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.data.synthetic.scenarios import SCENARIOS, Scenario, get_scenario
from analysis.grid.montecarlo import ESTIMATOR_SPECS, Replication, replication_name, replication_seeds

__all__ = [
    "ALPHA",
    "ARRIVAL_KEPT",
    "CHECKS",
    "RECORD_COLUMNS",
    "STRESS_ESTIMATORS",
    "STRESS_OUTCOMES",
    "SUMMARY_COLUMNS",
    "StressTask",
    "load_meta",
    "load_records",
    "meta_path",
    "run_and_write",
    "run_stress",
    "run_stress_task",
    "stress_frame",
    "stress_tasks",
    "summarise_stress",
    "summary_text",
    "write_records",
]

STRESS_OUTCOMES: tuple[str, ...] = ("income_per_capita", "criminal_cases", "new_members")
"""The headline outcome of each family (income, cases, organisation), as the brief reports them."""
ARRIVAL_KEPT = "cs_arrival_kept"
"""The headline with the arrival year kept (Callaway-Sant'Anna with ``anticipation = 0``: the six-month
coding alone), the alternative of the arrival-year decision (:mod:`analysis.core.spec`)."""
STRESS_ESTIMATORS: tuple[str, ...] = ("cs", ARRIVAL_KEPT, "sa", "bjs", "twfe", "ppml")
"""Estimators of the overall effect: keys of :data:`analysis.grid.montecarlo.ESTIMATOR_SPECS` and
:data:`ARRIVAL_KEPT` (``ppml`` on count outcomes only)."""
CHECKS: tuple[str, ...] = ("pretest", "randomisation", "wild", "spillover", "heterogeneity", "honest")
"""Tests and robustness checks run on every city."""
ALPHA = 0.05
"""Level of every test and one minus the level of every interval."""
DRAWS = 199
"""Draws of randomisation inference and of the wild bootstrap in each city (p-values in steps of 0.005)."""
HONEST_RM = 1.0
r"""Relative-magnitudes bound :math:`\bar M` of the HonestDiD check (a linear violation has :math:`\bar M = 1`)."""
HONEST_SD = 0.0
"""Smoothness bound ``M`` of the HonestDiD check (a linear violation has ``M = 0``)."""

RECORD_COLUMNS: tuple[str, ...] = ("scenario", "replication", "seed", "outcome", "check", "method", "estimate",
                                   "std_error", "conf_low", "conf_high", "p_value", "truth", "null_true", "error")
"""One record per city, outcome, check and method. ``truth``: the true value the estimate or interval
is compared with (missing for tests); ``null_true``: whether the test's null hypothesis holds in that
city (missing for estimators; for ``wild`` the null is set in the summary); ``error``: why the method
gave no number in that city (empty when it did), e.g. a singular covariance with nine clusters."""

SUMMARY_COLUMNS: tuple[str, ...] = ("scenario", "outcome", "check", "method", "replications", "failed", "null_true",
                                    "mean_truth", "mean_estimate", "bias", "bias_mc_se", "relative_bias", "rmse",
                                    "mean_se", "se_ratio", "coverage", "coverage_mc_se", "rejection", "rejection_mc_se",
                                    "verdict")
"""Columns of :func:`summarise_stress`."""

_CHECK_ORDER = ("estimate", *CHECKS)
_METHOD_ORDER = (*STRESS_ESTIMATORS, "ppml_pct", "cs_wald", "cs_county_propensity", "twfe_webb", "twfe_crv1",
                 "cs_high_share", "cadre_type_wald", "original", "rm", "sd")


@dataclass(frozen=True)
class StressTask(Replication):
    """One (scenario, seed) city of the stress Monte Carlo, with everything run on it.

    A :class:`analysis.grid.montecarlo.Replication` (``index``, ``seed``, ``outcomes``,
    ``estimators``, ``city_kwargs``, ``scenario``, ``key``) plus the checks.

    Attributes
    ----------
    outcomes : tuple of str, default :data:`STRESS_OUTCOMES`
        Outcomes.
    estimators : tuple of str, default :data:`STRESS_ESTIMATORS`
        Keys of :data:`analysis.grid.montecarlo.ESTIMATOR_SPECS`.
    scenario : Scenario
        The stress scenario (its ``cluster`` is the clustering level of every estimate and check).
    checks : tuple of str, default :data:`CHECKS`
        Members of :data:`CHECKS`.
    draws : int, default :data:`DRAWS`
        Draws of randomisation inference and of the wild bootstrap.
    """

    outcomes: tuple[str, ...] = STRESS_OUTCOMES
    estimators: tuple[str, ...] = STRESS_ESTIMATORS
    checks: tuple[str, ...] = CHECKS
    draws: int = DRAWS


def stress_tasks(
    replications: int,
    seed: int,
    scenarios: Iterable[Scenario | str] = tuple(SCENARIOS),
    outcomes: Sequence[str] = STRESS_OUTCOMES,
    estimators: Sequence[str] = STRESS_ESTIMATORS,
    checks: Sequence[str] = CHECKS,
    draws: int = DRAWS,
    **city_kwargs: Any,
) -> list[StressTask]:
    """List the independent seeded tasks of a stress Monte Carlo.

    Parameters
    ----------
    replications : int
        Cities per scenario (>= 1).
    seed : int
        Study seed; city seeds are spawned from it, the same in every scenario.
    scenarios : iterable of Scenario or str
        Scenarios or names of :data:`analysis.data.synthetic.scenarios.SCENARIOS` (default: all).
    outcomes, estimators, checks : sequence of str
        What to run on each city (defaults: :data:`STRESS_OUTCOMES`, :data:`STRESS_ESTIMATORS`,
        :data:`CHECKS`).
    draws : int, default :data:`DRAWS`
        Draws of randomisation inference and of the wild bootstrap.
    **city_kwargs
        Passed to :func:`analysis.data.synthetic.simulate_city`.

    Returns
    -------
    list of StressTask
        Scenario-major, then by replication.

    Raises
    ------
    ValueError
        For fewer than one replication, an unknown scenario, estimator or check, or two
        scenarios with the same name.

    Examples
    --------
    >>> tasks = stress_tasks(2, 7, scenarios=("default", "no_effect"))
    >>> [t.key for t in tasks]
    [('default', 0), ('default', 1), ('no_effect', 0), ('no_effect', 1)]
    >>> tasks[0].seed == tasks[2].seed
    True
    """
    if isinstance(replications, bool) or int(replications) < 1:
        raise ValueError(f"replications must be >= 1, got {replications!r}")
    scns = [get_scenario(s) for s in scenarios]
    names = [s.name for s in scns]
    if len(set(names)) != len(names):
        raise ValueError(f"scenario names must be distinct, got {names}")
    bad = [e for e in estimators if e not in ESTIMATOR_SPECS and e != ARRIVAL_KEPT]
    if bad:
        raise ValueError(f"unknown estimator(s) {bad}; choose from {', '.join([*ESTIMATOR_SPECS, ARRIVAL_KEPT])}")
    bad = [c for c in checks if c not in CHECKS]
    if bad:
        raise ValueError(f"unknown check(s) {bad}; choose from {', '.join(CHECKS)}")
    seeds = replication_seeds(seed, int(replications))
    return [StressTask(index=i, seed=sd, outcomes=tuple(outcomes), estimators=tuple(estimators),
                       city_kwargs=dict(city_kwargs), scenario=s, checks=tuple(checks), draws=int(draws))
            for s in scns for i, sd in enumerate(seeds)]


# ----------------------------------------------------------------------------- one city


def _task_seeds(seed: int) -> dict[str, int]:
    """Seeds of a task's own draws, spawned from its city seed."""
    kids = np.random.SeedSequence([seed, 11]).spawn(3)
    return {k: int(c.generate_state(1)[0]) for k, c in zip(("randomisation", "wild", "honest"), kids, strict=True)}


def _simple_truth(truth_aggregates: pd.DataFrame, outcome: str, aggregation: str, column: str = "value") -> float:
    ta = truth_aggregates
    rows = ta[(ta["outcome"] == outcome) & (ta["aggregation"] == aggregation) & ta["cadre_type"].isna()]
    return float(rows[column].iloc[0]) if len(rows) else float("nan")


def pretest_null(cells: pd.DataFrame, outcome: str, scenario: Scenario) -> bool:
    """Whether the headline pre-test's null holds in a city: no effect and no trend gap before the cohort year.

    The pre-test (:func:`analysis.estimators.callaway_santanna.pretest`) uses every cell
    ``t < g``, with the varying base period ``t - 1``, also when the arrival year is left out of
    the effect's comparisons (with ``anticipation = 1`` the cell ``g - 1`` is the placebo from
    ``g - 2`` to the arrival year). Its null fails if a direct effect falls before the cohort year
    (anticipation, partial exposure in the arrival year), if spillovers reach villages before
    their cohort, or if untreated trends differ with targeting (``trend_gap``). Non-linear
    covariate trends keep conditional parallel trends, so the null holds (a rejection there is
    the price of the misspecified linear adjustment).

    Parameters
    ----------
    cells : pandas.DataFrame
        The city's truth cells (``SyntheticCity.truth``).
    outcome : str
        Outcome.
    scenario : Scenario
        The city's scenario.

    Returns
    -------
    bool
        Whether the null holds.
    """
    c = cells[cells["outcome"] == outcome]
    direct = c[c["effect"] == "direct"]
    pre = direct[direct["year"] < direct["cohort"]]
    spill = c[c["effect"] == "spillover"]
    return bool((pre["att"] == 0).all() and (spill["att"] == 0).all() and scenario.trend_gap == 0)


def run_stress_task(task: StressTask) -> list[dict]:
    """Simulate one city of a scenario and run every outcome, estimator and check on it.

    Parameters
    ----------
    task : StressTask
        The task.

    Returns
    -------
    list of dict
        Records with the keys :data:`RECORD_COLUMNS` (module docstring), in a fixed order.
    """
    from analysis.core.panel import covariate_columns
    from analysis.core.spec import HEADLINE, TIME, UNIT
    from analysis.core.treatment import attach_treatment
    from analysis.data import schema
    from analysis.data.synthetic import simulate_city
    from analysis.estimate import estimate
    from analysis.estimators.callaway_santanna import aggregate, att_gt, pretest
    from analysis.estimators.twfe import twfe
    from analysis.inference.event_study import event_study_inputs
    from analysis.inference.honest import honest_bounds
    from analysis.stages import robustness

    scn = task.scenario
    city = simulate_city(seed=task.seed, scenario=scn, **task.city_kwargs)
    panel = attach_treatment(city.panel, city.treatment)
    head = HEADLINE.replace(cluster=scn.cluster)
    cl = head.cluster_column
    data, covs = covariate_columns(panel, list(head.covariates))
    ta, cells = city.truth_aggregates, city.truth
    seeds = _task_seeds(task.seed)
    no_effect = bool((cells["att"] == 0).all())
    rows: list[dict] = []

    def add(outcome: str, check: str, method: str, row: dict | pd.Series | None = None, **values) -> None:
        rec: dict[str, Any] = {"scenario": scn.name, "replication": task.index, "seed": task.seed, "outcome": outcome,
               "check": check, "method": method}
        for k in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
            rec[k] = float(row[k]) if row is not None and k in row and row[k] is not None else np.nan
        rec.update({"truth": np.nan, "null_true": np.nan, "error": ""})
        rec.update(values)
        if not rec["error"] and check != "estimate" and check != "honest" and not np.isfinite(rec["p_value"]):
            rec["error"] = "no p-value (singular covariance)"
        rows.append(rec)

    def attempt(outcome: str, check: str, methods: Sequence[str], run) -> None:
        """Run one check; if it fails, record why (the Monte Carlo counts failures, it does not stop)."""
        n = len(rows)
        try:
            run()
        except (ValueError, np.linalg.LinAlgError) as err:
            del rows[n:]
            for m in methods:
                add(outcome, check, m, error=f"{type(err).__name__}: {err}"[:300])

    def pretest_row(oc: str, r) -> None:
        pt = pretest(r)
        add(oc, "pretest", "cs_wald", {"estimate": pt.statistic, "p_value": pt.p_value},
            null_true=pretest_null(cells, oc, scn))

    def estimators(oc: str, truth: float, r) -> None:
        for name in task.estimators:
            if name == "cs":
                if r is not None:
                    attempt(oc, "estimate", ["cs"],
                            lambda: add(oc, "estimate", "cs", aggregate(r, "simple").tidy().iloc[0], truth=truth))
            elif name == ARRIVAL_KEPT:
                attempt(oc, "estimate", [name], lambda: add(oc, "estimate", ARRIVAL_KEPT, aggregate(
                    att_gt(data, oc, **head.replace(anticipation=0).cs_arguments(covs)), "simple").tidy().iloc[0],
                    truth=truth))
            elif name == "twfe":
                attempt(oc, "estimate", ["twfe"], lambda: add(
                    oc, "estimate", "twfe", twfe(data, oc, UNIT, TIME, "cohort", cluster=cl).tidy("coef").iloc[0],
                    truth=truth))
            elif name == "ppml":
                if oc in schema.COUNT_OUTCOMES:
                    attempt(oc, "estimate", ["ppml", "ppml_pct"], lambda: ppml(oc, truth))
            else:
                attempt(oc, "estimate", [name], lambda name=name: other(oc, name, truth))

    def ppml(oc: str, truth: float) -> None:
        spec = ESTIMATOR_SPECS["ppml"].replace(cluster=scn.cluster)
        t = estimate(panel, oc, "ppml", control_group=spec.control_group, covariates=spec.covariates,
                     cluster=spec.cluster).tidy()
        add(oc, "estimate", "ppml", t[t["aggregation"] == "simple"].iloc[0], truth=truth)
        add(oc, "estimate", "ppml_pct", t[t["aggregation"] == "simple_pct"].iloc[0],
            truth=_simple_truth(ta, oc, "simple", "value_prop"))

    def other(oc: str, name: str, truth: float) -> None:
        spec = ESTIMATOR_SPECS[name].replace(cluster=scn.cluster)
        t = estimate(panel, oc, spec.estimator, control_group=spec.control_group, covariates=spec.covariates,
                     cluster=spec.cluster).tidy()
        add(oc, "estimate", name, t[t["aggregation"] == spec.aggregation].iloc[0], truth=truth)

    def randomisation(oc: str) -> None:
        ri = robustness.randomisation_summary(panel, oc, B=task.draws, seed=seeds["randomisation"],
                                              control_group=head.control_group)
        if ri is None:
            raise ValueError("randomisation inference not available")
        if not ri.get("available", True):
            raise ValueError(ri.get("note", "randomisation inference not available"))
        add(oc, "randomisation", "cs_county_propensity", {"estimate": ri["observed"], "p_value": ri["p_value"]},
            null_true=no_effect)

    def wild(oc: str) -> None:
        w = robustness.wild_summary(panel, oc, cluster=scn.cluster, B=task.draws, seed=seeds["wild"])
        if w is None:
            raise ValueError("wild bootstrap not available")
        add(oc, "wild", "twfe_webb", w, null_true=True)
        add(oc, "wild", "twfe_crv1", {"estimate": w["estimate"], "std_error": w["std_error"],
                                      "conf_low": w["crv1_conf_low"], "conf_high": w["crv1_conf_high"],
                                      "p_value": w["crv1_p_value"]}, null_true=True)

    def spillover(oc: str) -> None:
        sp = robustness.spillover_did(panel, oc, covariates=head.covariates, cluster=scn.cluster)
        spill = cells[(cells["outcome"] == oc) & (cells["effect"] == "spillover")]
        add(oc, "spillover", "cs_high_share", sp.tidy().iloc[0], null_true=bool((spill["att"] == 0).all()))

    def heterogeneity(oc: str) -> None:
        het = estimate(panel, oc, "cs", control_group=head.control_group, covariates=head.covariates,
                       cluster=scn.cluster, by="cadre_type").tidy("equality_test").iloc[0]
        by_cadre = ta[(ta["outcome"] == oc) & (ta["aggregation"] == "cadre_type")]["value"]
        add(oc, "heterogeneity", "cadre_type_wald", het, null_true=bool(np.ptp(by_cadre.to_numpy(float)) == 0))

    def honest(oc: str) -> None:
        es = robustness.event_study(panel, oc, control_group=head.control_group, covariates=head.covariates,
                                    cluster=scn.cluster)
        inp = event_study_inputs(es)
        K = int(np.sum(inp.event_times < inp.reference))
        T = len(inp.event_times) - K
        post = inp.event_times[K:] >= 0
        lv = np.where(post, 1.0 / post.sum(), 0.0)
        avg = _simple_truth(ta, oc, "event_overall")
        est = float(lv @ inp.betahat[K:])
        for method, m in (("rm", HONEST_RM), ("sd", HONEST_SD)):
            b = honest_bounds(inp.betahat, inp.sigma, K, T, method, [m], lv, ALPHA, seed=seeds["honest"])
            if method == "rm":
                o = b[b["method"] == "original"].iloc[0]
                add(oc, "honest", "original", {"estimate": est, "conf_low": o["lb"], "conf_high": o["ub"]}, truth=avg)
            o = b[b["method"] == method].iloc[0]
            add(oc, "honest", method, {"estimate": est, "conf_low": o["lb"], "conf_high": o["ub"]}, truth=avg)

    checks = {"randomisation": (["cs_county_propensity"], randomisation), "wild": (["twfe_webb", "twfe_crv1"], wild),
              "spillover": (["cs_high_share"], spillover), "heterogeneity": (["cadre_type_wald"], heterogeneity),
              "honest": (["original", "rm", "sd"], honest)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for oc in task.outcomes:
            truth = _simple_truth(ta, oc, "simple")
            # The headline from its own att_gt (reused by the pre-test); the others as the study runs them.
            try:
                r = att_gt(data, oc, **head.cs_arguments(covs))
            except (ValueError, np.linalg.LinAlgError) as err:
                r, why = None, f"{type(err).__name__}: {err}"[:300]
            if r is None and "cs" in task.estimators:
                add(oc, "estimate", "cs", error=why)
            estimators(oc, truth, r)
            if "pretest" in task.checks:
                if r is None:
                    add(oc, "pretest", "cs_wald", error=why)
                else:
                    attempt(oc, "pretest", ["cs_wald"], lambda oc=oc, r=r: pretest_row(oc, r))
            for name in CHECKS:
                if name in task.checks and name in checks:
                    methods, fn = checks[name]
                    attempt(oc, name, methods, lambda fn=fn, oc=oc: fn(oc))
    return rows


# ----------------------------------------------------------------------------- many cities


def _sort(records: pd.DataFrame, scenario_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Sort records by task key (scenario, replication), then outcome, check and method."""
    if records.empty:
        return records.reindex(columns=list(RECORD_COLUMNS))
    from analysis.data import schema

    scen = list(scenario_order or [])
    scen += [s for s in SCENARIOS if s not in scen]
    scen += sorted(set(records["scenario"]) - set(scen))
    rank = {
        "scenario": {s: i for i, s in enumerate(scen)},
        "outcome": {o: i for i, o in enumerate(schema.OUTCOMES)},
        "check": {c: i for i, c in enumerate(_CHECK_ORDER)},
        "method": {m: i for i, m in enumerate(_METHOD_ORDER)},
    }
    keys = {f"_{k}": records[k].map(v).fillna(len(v)) for k, v in rank.items()}
    out = records.assign(**keys).sort_values(["_scenario", "replication", "_outcome", "_check", "_method"],
                                             kind="mergesort")
    return out.drop(columns=list(keys))[list(RECORD_COLUMNS)].reset_index(drop=True)


def _read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read records: only empty fields are missing (a scenario or error text is never taken for NaN)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""],
                       dtype={"scenario": str, "outcome": str, "check": str, "method": str, "error": str})


def stress_frame(task: StressTask, shared: object = None) -> pd.DataFrame:
    """Run one stress task as an engine task (:func:`analysis.grid.engine.run_tasks`): its records as a frame.

    ``null_true`` (true, false or missing) is stored as a number (1, 0, NaN) so that the frame has one
    type per column and goes to Parquet as it is; :func:`run_stress` turns it back.

    Parameters
    ----------
    task : StressTask
        The task.
    shared : object, optional
        Unused (each task simulates its own city).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RECORD_COLUMNS`.
    """
    frame = pd.DataFrame(run_stress_task(task), columns=list(RECORD_COLUMNS))
    frame["null_true"] = pd.to_numeric(frame["null_true"].map({True: 1.0, False: 0.0}), errors="coerce")
    frame["error"] = frame["error"].fillna("").astype(str)
    return frame


def run_stress(tasks: Sequence[StressTask], n_jobs: int = 1, cache_dir: str | os.PathLike | None = None,
               progress: bool = False, scheduler: str | None = None) -> pd.DataFrame:
    """Run stress tasks and return their records, sorted by task key.

    Parameters
    ----------
    tasks : sequence of StressTask
        From :func:`stress_tasks`.
    n_jobs : int, default 1
        Worker processes: 1 runs in this process, more a local Dask cluster of that many
        (:mod:`analysis.grid.engine`, one BLAS thread each); the records do not depend on it.
    cache_dir : str or path-like, optional
        Folder of one Parquet file per finished task: tasks whose file exists are read, not rerun,
        so an interrupted run resumes (the file name holds the scenario, replication and seed; the
        folder's ``run.json`` holds the outcomes, estimators, checks, draws and city options, and a
        folder made with other ones is refused).
    progress : bool, default False
        Show a progress bar.
    scheduler : str, optional
        Address of an existing Dask scheduler to run on (default: the environment's
        ``DASK_SCHEDULER_ADDRESS`` when ``n_jobs > 1``, else a local cluster).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RECORD_COLUMNS`, sorted by scenario (in the order of ``tasks``),
        replication, outcome, check and method.
    """
    from analysis.grid.engine import run_tasks

    # Replication-major order: an interrupted run has done the same number of cities in every scenario.
    rank = {name: i for i, name in enumerate(dict.fromkeys(t.scenario.name for t in tasks))}
    order = sorted(range(len(tasks)), key=lambda i: (tasks[i].index, rank[tasks[i].scenario.name]))
    fingerprint = ({"kind": "stress", "outcomes": list(tasks[0].outcomes), "estimators": list(tasks[0].estimators),
                    "checks": list(tasks[0].checks), "draws": tasks[0].draws, "city": tasks[0].city_kwargs}
                   if tasks else {})
    frames = run_tasks([tasks[i] for i in order], stress_frame, name=replication_name, results_dir=cache_dir,
                       fingerprint=fingerprint, workers=n_jobs, scheduler=scheduler,
                       serial=n_jobs <= 1 and not scheduler, progress=progress, description="stress")
    by_task = dict(zip(order, frames, strict=True))
    names = list(dict.fromkeys(t.scenario.name for t in tasks))
    chunks = [by_task[i] for i in range(len(tasks))]
    if not chunks:
        return pd.DataFrame(columns=list(RECORD_COLUMNS))
    records = pd.concat(chunks, ignore_index=True)
    nt = records["null_true"].astype(float).to_numpy()
    records["null_true"] = pd.Series([np.nan if np.isnan(v) else bool(v == 1) for v in nt], index=records.index,
                                     dtype=object)
    records["error"] = records["error"].fillna("").astype(str)
    return _sort(records, names)


def write_records(records: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write stress records as CSV (gzip if the name ends in ``.gz``), floats to 10 significant digits.

    Parameters
    ----------
    records : pandas.DataFrame
        :func:`run_stress` output.
    path : str or path-like
        File.

    Returns
    -------
    pathlib.Path
        The file.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    compression = {"method": "gzip", "mtime": 0} if p.suffix == ".gz" else None
    records[list(RECORD_COLUMNS)].to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n",
                                         compression=compression)
    os.replace(tmp, p)
    return p


def load_records(path: str | os.PathLike) -> pd.DataFrame:
    """Read stress records written by :func:`write_records`.

    Parameters
    ----------
    path : str or path-like
        File.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RECORD_COLUMNS`.
    """
    d = _read_csv(path)
    missing = [c for c in RECORD_COLUMNS if c not in d.columns]
    if missing:
        raise ValueError(f"{path} is not a file of stress records: columns {missing} are missing")
    d = d[list(RECORD_COLUMNS)].copy()
    d["error"] = d["error"].fillna("").astype(str)
    return d


# ----------------------------------------------------------------------------- summary


def _mc_se(p: float, n: int) -> float:
    return float(np.sqrt(p * (1 - p) / n)) if n > 0 and np.isfinite(p) else float("nan")


def _verdict(kind: str, value: float, mc_se: float, null_true: float, n: int) -> str:
    if not np.isfinite(value) or n == 0:
        return ""
    tol = 2 * max(mc_se, np.sqrt(ALPHA * (1 - ALPHA) / n))
    if kind == "coverage":
        return "covers" if value >= 1 - ALPHA - tol else "undercovers"
    if null_true == 1:
        return "holds its size" if value <= ALPHA + tol else "over-rejects"
    if null_true == 0:
        return f"power {100 * value:.0f}%"
    return ""


def summarise_stress(records: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE and coverage of every estimator; rejection rates of every test; HonestDiD coverage.

    Made from the records alone (:func:`run_stress` or :func:`load_records`), so a rerun of the
    driver regenerates it.

    Parameters
    ----------
    records : pandas.DataFrame
        Stress records (:data:`RECORD_COLUMNS`). Not modified.

    Returns
    -------
    pandas.DataFrame
        One row per scenario, outcome, check and method (:data:`SUMMARY_COLUMNS`), in the
        records' order:

        * estimators (``check == "estimate"``): ``mean_truth``, ``mean_estimate``, ``bias``
          (mean of estimate - truth) with ``bias_mc_se``, ``relative_bias`` (bias / |mean
          truth|), ``rmse``, ``mean_se`` (mean standard error; ``bias / mean_se`` is the bias in
          standard errors), ``se_ratio`` (mean standard error / standard deviation of the
          estimates: 1 when the standard errors are right), ``coverage`` of the 95% interval with
          ``coverage_mc_se``;
        * tests (``pretest``, ``randomisation``, ``spillover``, ``heterogeneity``): ``rejection``
          (share of p-values below :data:`ALPHA`) with ``rejection_mc_se``; ``null_true`` is the
          share of cities whose null holds (1: the rate is the size; 0: the power);
        * ``wild``: the rejection rate of the null that the TWFE coefficient equals its mean over
          the scenario's cities (its expectation), for the wild bootstrap-t and the CRV1 interval;
        * ``honest``: ``coverage`` of the true average post-period effect by the conventional
          (``original``), relative-magnitudes (``rm``) and smoothness (``sd``) intervals.

        ``failed``: cities in which the method gave no number (``error`` in the records; the
        other statistics are over the rest). ``verdict``: "covers"/"undercovers" (coverage within
        2 Monte Carlo SEs of 95%), "holds its size"/"over-rejects" (rejection under a true null
        within 2 MC SEs of 5%), or the power; and the number of cities without a result.

    Examples
    --------
    >>> rec = pd.DataFrame({"scenario": "s", "replication": [0, 1], "seed": [1, 2], "outcome": "y",
    ...                     "check": "estimate", "method": "cs", "estimate": [1.0, 3.0], "std_error": 1.0,
    ...                     "conf_low": [0.0, 2.5], "conf_high": [2.0, 4.0], "p_value": 0.01,
    ...                     "truth": 2.0, "null_true": float("nan"), "error": ""})
    >>> s = summarise_stress(rec).iloc[0]
    >>> float(s["bias"]), float(s["rmse"]), float(s["coverage"])
    (0.0, 1.0, 0.5)
    """
    if records.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    d = records.copy()
    d["error"] = d["error"].fillna("").astype(str) if "error" in d.columns else ""
    keys = ["scenario", "outcome", "check", "method"]
    # The wild bootstrap's null: the coefficient's expectation, its mean over the scenario's cities.
    wild = (d["check"] == "wild") & (d["error"] == "")
    if wild.any():
        d.loc[wild, "truth"] = d[wild].groupby(["scenario", "outcome"])["estimate"].transform("mean")
    rows = []
    for key, g_all in d.groupby(keys, sort=False):
        g = g_all[g_all["error"] == ""]
        n = len(g)
        check = key[2]
        err = g["estimate"] - g["truth"]
        covered = (g["conf_low"] <= g["truth"]) & (g["truth"] <= g["conf_high"])
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row.update({"replications": n, "failed": len(g_all) - n,
                    "mean_estimate": float(g["estimate"].mean()) if n else float("nan"),
                    "null_true": float(g["null_true"].astype(float).mean()) if n else float("nan")})
        if check in ("estimate", "honest", "wild"):
            row["mean_truth"] = float(g["truth"].mean()) if n else float("nan")
            cov = float(covered.mean()) if n else float("nan")
            if check == "wild":
                row["rejection"] = 1 - cov
                row["rejection_mc_se"] = _mc_se(cov, n)
                row["null_true"] = 1.0
            else:
                row["coverage"], row["coverage_mc_se"] = cov, _mc_se(cov, n)
            if check == "estimate" and n:
                row["bias"] = float(err.mean())
                row["bias_mc_se"] = float(err.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
                row["relative_bias"] = row["bias"] / abs(row["mean_truth"]) if row["mean_truth"] else float("nan")
                row["rmse"] = float(np.sqrt(np.mean(np.square(err))))
                row["mean_se"] = float(g["std_error"].mean())
                sd = float(g["estimate"].std(ddof=1)) if n > 1 else float("nan")
                row["se_ratio"] = float(g["std_error"].mean()) / sd if sd and np.isfinite(sd) else float("nan")
        else:
            rej = float((g["p_value"] < ALPHA).mean()) if n else float("nan")
            row["rejection"], row["rejection_mc_se"] = rej, _mc_se(rej, n)
        if "coverage" in row:
            row["verdict"] = _verdict("coverage", row["coverage"], row["coverage_mc_se"], np.nan, n)
        else:
            row["verdict"] = _verdict("rejection", row["rejection"], row["rejection_mc_se"], row["null_true"], n)
        if row["failed"]:
            row["verdict"] = (row["verdict"] + "; " if row["verdict"] else "") + f"no result in {row['failed']} cities"
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=list(SUMMARY_COLUMNS))


# ----------------------------------------------------------------------------- the driver


def run_and_write(
    replications: int,
    seed: int,
    out: str | os.PathLike,
    scenarios: Iterable[Scenario | str] = tuple(SCENARIOS),
    outcomes: Sequence[str] = STRESS_OUTCOMES,
    n_jobs: int = 1,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    estimators: Sequence[str] = STRESS_ESTIMATORS,
    checks: Sequence[str] = CHECKS,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Run the stress Monte Carlo, write its records and return their summary (what ``study stress`` does).

    Parameters
    ----------
    replications : int
        Cities per scenario.
    seed : int
        Study seed.
    out : str or path-like
        Records file (:func:`write_records`).
    scenarios : iterable of Scenario or str
        Scenarios (default: every preset).
    outcomes : sequence of str
        Outcomes (default :data:`STRESS_OUTCOMES`).
    n_jobs : int, default 1
        Worker processes.
    cache_dir : str or path-like, optional
        Per-task records (resume an interrupted run), see :func:`run_stress`.
    progress : bool, default False
        Print one line per finished city.
    estimators, checks : sequence of str
        What to run on each city (defaults: :data:`STRESS_ESTIMATORS`, :data:`CHECKS`); the
        arrival-year Monte Carlo runs only ``("cs", ARRIVAL_KEPT)`` and no check.
    scheduler : str, optional
        Address of an existing Dask scheduler (see :func:`run_stress`).

    Returns
    -------
    pandas.DataFrame
        :func:`summarise_stress` of the records written.
    """
    tasks = stress_tasks(replications, seed, scenarios=scenarios, outcomes=outcomes, estimators=estimators,
                         checks=checks)
    records = run_stress(tasks, n_jobs=n_jobs, cache_dir=cache_dir, progress=progress, scheduler=scheduler)
    write_records(records, out)
    names = list(dict.fromkeys(t.scenario.name for t in tasks))
    command = (f"study stress --replications {int(replications)} --seed {int(seed)} --scenarios {','.join(names)} "
               f"--outcomes {','.join(outcomes)} --estimators {','.join(estimators)} "
               f"--checks {','.join(checks) or 'none'}")
    meta = {"seed": int(seed), "replications": int(replications), "scenarios": names, "outcomes": list(outcomes),
            "estimators": list(estimators), "checks": list(checks), "command": command}
    meta_path(out).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return summarise_stress(load_records(out))


def meta_path(records: str | os.PathLike) -> Path:
    """Return the file beside a records file that says how the records were made.

    Parameters
    ----------
    records : str or path-like
        Records file (``stress_records.csv.gz``).

    Returns
    -------
    pathlib.Path
        ``stress_records.json`` beside it: seed, replications, scenarios, outcomes, estimators,
        checks and the ``study stress`` command (written by :func:`run_and_write`).
    """
    p = Path(records)
    return p.with_name(p.name.split(".")[0] + ".json")


def load_meta(records: str | os.PathLike) -> dict[str, Any]:
    """Read how a records file was made (:func:`meta_path`); empty if the file is not there.

    Parameters
    ----------
    records : str or path-like
        Records file.

    Returns
    -------
    dict
        Keys ``seed``, ``replications``, ``scenarios``, ``outcomes``, ``estimators``, ``checks``,
        ``command``; empty when no metadata was written.
    """
    p = meta_path(records)
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def summary_text(summary: pd.DataFrame) -> str:
    """Plain-text table of a stress summary (rates in %, three significant digits).

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`summarise_stress`.

    Returns
    -------
    str
        One line per row.
    """
    cols = ["scenario", "outcome", "check", "method", "replications", "relative_bias", "coverage", "rejection",
            "verdict"]
    t = summary[cols].copy()
    for c in ("relative_bias", "coverage", "rejection"):
        t[c] = (100 * t[c]).round(1)
    with pd.option_context("display.width", 250, "display.max_rows", 2000, "display.max_colwidth", 60):
        return t.to_string(index=False)
