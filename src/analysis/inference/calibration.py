r"""Calibration by simulation: the size of the pre-tests and the coverage of the headline interval.

The study prints verdicts (a pre-test that does or does not reject, an interval that does
or does not include zero); this module measures how often those verdicts are right on
the synthetic city, where the truth is known (:mod:`analysis.data.synthetic`). It is the
evidence behind the defaults of :mod:`analysis.inference.small_sample` and
:func:`analysis.estimators.callaway_santanna.pretest`.

What one replication does (:func:`replication`)
-----------------------------------------------
Simulate a fresh city with :func:`analysis.data.synthetic.simulate_city` (seed from the
task), attach the cohorts derived from the postings, expand the headline covariates
(``distance_km``, ``terrain``, ``distinctive_industry``) and, for each outcome,

* **pre-test size** (``kind == "pretest"``): estimate the ATT(g,t) as the headline does
  (doubly robust, not-yet-treated comparison, varying base period, township clusters)
  and run every pre-test of :data:`~analysis.estimators.callaway_santanna.PRETESTS`. The
  simulator has no pre-treatment effect and conditional parallel trends hold, so every
  rejection is a false one. One record per outcome and test: its p-value, statistic and
  the estimated effective number of clusters;
* **BJS pre-test size** (``kind == "bjs_pretest"``, with ``bjs_leads > 0``): the
  imputation estimator's pre-trend regression with ``bjs_leads`` leads and the headline
  covariates interacted with the years, township clusters, as in the event-study stage;
  every joint test of :data:`~analysis.inference.small_sample.JOINT_TESTS` from the fit's
  Wald statistic (its default ``hotelling``, ``htz`` and the chi-square test it replaced);
* **why the chi-square pre-test over-rejects** (``kind == "pretest_diagnostic"``, with
  ``diagnostics=True``): the pre-period estimates, the diagonal of their clustered and of
  their unclustered covariance, and the chi-square p-value with the unclustered one; from
  these :func:`summarise` computes the rejection rate with the Monte Carlo covariance of
  the estimates, with the unclustered covariance, and the bias and noise (coefficient of
  variation) of the clustered variances;
* **coverage** (``kind == "coverage"``): the headline simple ATT and its 95% interval,
  clustered by each level in ``clusters``, by each inference method of
  :data:`METHODS`, and whether the interval covers the simulator's true simple ATT.

Every record carries the task's seed. One replication of the default city costs about
1.5 s on one core: the design is simulated once and shared by every outcome, every
standard error is analytic, and the wild bootstraps reuse the estimate's influence
functions (no re-estimation).

Replications as tasks
---------------------
:func:`tasks` returns a list of independent, picklable callables, each
``functools.partial(replication, seed=...)`` with a seed spawned from one
``numpy.random.SeedSequence`` (:func:`analysis.grid.montecarlo.replication_seeds`), so the
list can be mapped serially (:func:`run`), by a process pool, or on Dask with the same
records. :func:`summarise` turns the records into rejection rates and coverages with
their Monte Carlo standard errors :math:`\sqrt{r(1-r)/R}`.

Measured (``make test-slow``, ``tests/test_calibration.py``; also in the README)
----------------------------------------------------------------------------------
500 default cities (3,224 villages in 178 townships and 9 counties, 9 pre-period cells),
measured with the arrival year kept (``anticipation=0``; the README's tables are the
headline's, ``anticipation=1``, this module's default), seeds from
``SeedSequence(20230601)``; rates in %, Monte Carlo standard errors 0.6-1.5 points.

Pre-test size at 5% (income / criminal cases / collective income / team reorganisation):
Callaway-Sant'Anna ``wild`` (default) 6.4 / 4.6 / 5.8 / 3.4, ``wald_chi2`` (the old default)
10.6 / 11.2 / 8.8 / 7.0; BJS pre-trend test ``hotelling`` (default) 5.6 / 6.4 / 4.2 / 3.2,
``wald_chi2`` 6.2 / 8.2 / 6.0 / 4.2.

Coverage of the headline 95% interval (income / criminal cases / collective income): with 9
county clusters, ``asymptotic`` (old) 96.0 / 87.6 / 91.0, ``cr1_t`` 98.4 / 92.8 / 96.0,
``headline`` (the wild score bootstrap, enumerated) 98.2 / 97.4 / 98.2; with 178 townships
the headline (``cr1_t``) 97.0 / 94.2 / 97.0 (old 96.8 / 94.0 / 97.0).

One replication costs about 2.4 s on one core (the heavy tier's 500 about 20 minutes).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CLUSTERS",
    "COVERAGE_OUTCOMES",
    "METHODS",
    "PRETEST_OUTCOMES",
    "replication",
    "run",
    "summarise",
    "tasks",
]

PRETEST_OUTCOMES: tuple[str, ...] = ("income_per_capita", "criminal_cases", "collective_income", "team_reorganised")
"""One outcome per family (income, cases, collective economy) and the binary team reorganisation."""
COVERAGE_OUTCOMES: tuple[str, ...] = ("income_per_capita", "criminal_cases", "collective_income")
"""Outcomes whose headline interval coverage is measured."""
CLUSTERS: tuple[str, ...] = ("county", "township")
"""Cluster levels of the coverage records (9 counties, 178 townships in the default city)."""
METHODS: dict[str, dict[str, Any]] = {
    "asymptotic": {"small_sample": "asymptotic", "wild_below": 0},
    "cr1_t": {"small_sample": "cr1_t", "wild_below": 0},
    "headline": {"small_sample": "cr1_t"},
    "wild_rademacher": {"small_sample": "cr1_t", "wild_below": 10**9, "wild_weights": "rademacher"},
    "wild_webb": {"small_sample": "cr1_t", "wild_below": 10**9, "wild_weights": "webb"},
}
"""Inference methods of the coverage records: ``asymptotic`` (the old convention: no
factor, normal critical values), ``cr1_t`` (G/(G-1) and t(G-1)), ``headline`` (the study's
default, which switches to the wild bootstrap below
:data:`~analysis.inference.small_sample.WILD_BELOW` clusters), and the wild score
bootstrap with Rademacher or Webb weights at every cluster level."""


def replication(
    seed: int,
    pretest_outcomes: Sequence[str] = PRETEST_OUTCOMES,
    coverage_outcomes: Sequence[str] = COVERAGE_OUTCOMES,
    clusters: Sequence[str] = CLUSTERS,
    methods: Sequence[str] = tuple(METHODS),
    pretests: Sequence[str] | None = None,
    wild_draws: int = 999,
    city: dict[str, Any] | None = None,
    bjs_leads: int = 0,
    diagnostics: bool = False,
    anticipation: int | None = None,
) -> list[dict[str, Any]]:
    """Simulate one city and record the pre-tests and headline intervals on it.

    Parameters
    ----------
    seed : int
        Seed of the city (and of the sampled bootstrap draws).
    pretest_outcomes : sequence of str
        Outcomes whose pre-tests are recorded (township clusters).
    coverage_outcomes : sequence of str
        Outcomes whose headline intervals are recorded.
    clusters : sequence of {"county", "township", "village"}
        Cluster levels of the coverage records.
    methods : sequence of str
        Keys of :data:`METHODS`.
    pretests : sequence of str, optional
        Pre-tests to run; default every one of
        :data:`~analysis.estimators.callaway_santanna.PRETESTS`.
    wild_draws : int, default 999
        Draws of the sampled wild bootstraps (pre-test and intervals).
    city : dict, optional
        Keyword arguments of :func:`analysis.data.synthetic.simulate_city` besides the seed
        (e.g. ``n_villages``, ``n_townships``).
    bjs_leads : int, default 0
        Leads of the BJS pre-trend regression (0 = no BJS records; the event-study stage
        uses 5 on the default city), for the ``pretest_outcomes``.
    diagnostics : bool, default False
        Also record the ``pretest_diagnostic`` rows (module docstring).
    anticipation : int, optional
        Callaway-Sant'Anna's ``anticipation`` (default: the headline's,
        :data:`analysis.core.spec.HEADLINE`, 1: the arrival year left out); 0 gives the
        specification the README's tables were first measured with.

    Returns
    -------
    list of dict
        Records with ``seed``, ``kind`` (``"pretest"``, ``"bjs_pretest"`` or ``"coverage"``),
        ``outcome`` and, for pre-tests: ``test, p_value, statistic, df, effective_clusters,
        n_clusters``; for
        coverage: ``cluster, method, inference, estimate, std_error, conf_low, conf_high,
        truth, covered, n_clusters``.

    Raises
    ------
    ValueError
        For an unknown method, cluster level or outcome.
    """
    from analysis.core.panel import covariate_columns, covariate_year_interactions
    from analysis.core.spec import CLUSTER_COLUMNS, COHORT, DEFAULT_COVARIATES, HEADLINE, TIME, UNIT
    from analysis.core.treatment import attach_treatment
    from analysis.data.synthetic import simulate_city
    from analysis.estimators.callaway_santanna import PRETESTS, aggregate, att_gt, pretest
    from analysis.estimators.imputation import imputation
    from analysis.inference.small_sample import JOINT_TESTS, WILD_BELOW, wald_p_value

    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; choose from {', '.join(METHODS)}")
    bad = [c for c in clusters if c not in CLUSTER_COLUMNS]
    if bad:
        raise ValueError(f"unknown cluster level(s) {bad}; choose from {', '.join(CLUSTER_COLUMNS)}")
    tests = tuple(PRETESTS if pretests is None else pretests)
    ant = HEADLINE.anticipation if anticipation is None else int(anticipation)
    c = simulate_city(seed=int(seed), **(city or {}))
    data, covs = covariate_columns(attach_treatment(c.panel, c.treatment), list(DEFAULT_COVARIATES))
    reg, trend = covariate_year_interactions(data, covs) if bjs_leads else (None, None)
    ta = c.truth_aggregates
    records: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for oc in dict.fromkeys([*pretest_outcomes, *coverage_outcomes]):
            if oc not in data.columns:
                raise ValueError(f"outcome {oc!r} is not in the simulated panel")
            levels = dict.fromkeys([*(["township"] if oc in pretest_outcomes else []), *clusters])
            fits = {level: att_gt(data, oc, UNIT, TIME, COHORT, covariates=covs, control_group="notyet",
                                  method="dr", cluster=CLUSTER_COLUMNS[level], anticipation=ant) for level in levels}
            if oc in pretest_outcomes:
                r = fits["township"]
                for test in tests:
                    pt = pretest(r, test=test, B=wild_draws, seed=int(seed))
                    records.append({"seed": int(seed), "kind": "pretest", "outcome": oc, "test": test,
                                    "p_value": pt.p_value, "statistic": pt.statistic, "df": pt.df,
                                    "effective_clusters": pt.effective_clusters, "n_clusters": pt.n_clusters})
                if diagnostics:
                    records.append(_diagnostic(r, int(seed), oc))
                if bjs_leads:
                    bt = imputation(reg, oc, UNIT, TIME, COHORT, cluster=CLUSTER_COLUMNS["township"],
                                    covariates=trend or None, pretrends=int(bjs_leads)).pretrend_test
                    if bt is None:
                        raise RuntimeError(f"the BJS pre-trend regression of {oc!r} returned no test")
                    for test in JOINT_TESTS:
                        stat, _, p = wald_p_value(bt.wald, bt.df, bt.n_clusters, bt.effective_clusters, test)
                        records.append({"seed": int(seed), "kind": "bjs_pretest", "outcome": oc, "test": test,
                                        "p_value": p, "statistic": stat, "df": bt.df,
                                        "effective_clusters": bt.effective_clusters, "n_clusters": bt.n_clusters})
            if oc not in coverage_outcomes:
                continue
            truth = float(ta.loc[(ta["outcome"] == oc) & (ta["aggregation"] == "simple"), "value"].iloc[0])
            for level in clusters:
                done: dict[tuple, Any] = {}  # methods that resolve to the same inference share one result
                for m in methods:
                    opts = METHODS[m]
                    wild = fits[level].n_clusters < opts.get("wild_below", WILD_BELOW)
                    key = (opts["small_sample"], wild, opts.get("wild_weights", "rademacher") if wild else None)
                    if key not in done:
                        done[key] = aggregate(fits[level], "simple", seed=int(seed), wild_draws=wild_draws, **opts)
                    res = done[key]
                    row = res.table.iloc[0]
                    records.append({
                        "seed": int(seed), "kind": "coverage", "outcome": oc, "cluster": level, "method": m,
                        "inference": res.options["inference"], "estimate": row["estimate"],
                        "std_error": row["std_error"], "conf_low": row["conf_low"], "conf_high": row["conf_high"],
                        "truth": truth, "covered": bool(row["conf_low"] <= truth <= row["conf_high"]),
                        "n_clusters": int(row["n_clusters"]),
                    })
    return records


def _diagnostic(result, seed: int, outcome: str) -> dict[str, Any]:
    """Pre-period estimates and the diagonals of their clustered and unclustered covariances."""
    from scipy import stats

    cells = result.cells
    pre = np.flatnonzero((cells["cohort"].to_numpy() > cells["year"].to_numpy())
                         & np.isfinite(np.asarray(result.analytic_se)))
    psi = np.asarray(result.influence)[:, pre]
    n = psi.shape[0]
    theta = cells["estimate"].to_numpy(float)[pre]
    sums = np.column_stack([np.bincount(result.clusters, weights=psi[:, j]) for j in range(pre.size)])
    v_cl = sums.T @ sums / n**2
    v_unit = psi.T @ psi / n**2
    w_unit = float(theta @ np.linalg.solve(v_unit, theta))
    return {"seed": seed, "kind": "pretest_diagnostic", "outcome": outcome, "test": "wald_chi2_unclustered",
            "p_value": float(stats.chi2.sf(w_unit, pre.size)), "statistic": w_unit, "df": int(pre.size),
            "theta": theta.tolist(), "var_clustered": np.diag(v_cl).tolist(),
            "var_unclustered": np.diag(v_unit).tolist(), "n_clusters": int(sums.shape[0])}


def _diagnostic_summary(diag: pd.DataFrame, levels: Sequence[float]) -> pd.DataFrame:
    """Per outcome: rejection rates with the Monte Carlo and unclustered covariances; variance bias and noise."""
    from scipy import stats

    rows = []
    for oc, g in diag.groupby("outcome", sort=False):
        th = np.array(g["theta"].tolist())
        vc = np.array(g["var_clustered"].tolist())
        k = th.shape[1]
        sigma = np.cov(th.T)
        # The Monte Carlo covariance of k cells needs more than k replications (else it is singular).
        w_mc = (np.einsum("ri,ij,rj->r", th, np.linalg.inv(sigma), th) if len(th) > k
                else np.full(len(th), np.nan))
        ratio = vc.mean(axis=0) / np.diag(sigma)
        cv = vc.std(axis=0) / vc.mean(axis=0)
        for a in levels:
            rows.append({"outcome": oc, "level": float(a), "replications": len(g),
                         "rejection_mc_covariance": (float(np.mean(stats.chi2.sf(w_mc, k) <= a)) if len(th) > k
                                                     else float("nan")),
                         "rejection_unclustered": float(np.mean(g["p_value"] <= a)),
                         "variance_ratio_min": float(ratio.min()), "variance_ratio_max": float(ratio.max()),
                         "variance_cv_min": float(cv.min()), "variance_cv_max": float(cv.max())})
    return pd.DataFrame(rows)


def tasks(replications: int, seed: int, **kwargs: Any) -> list[Callable[[], list[dict[str, Any]]]]:
    """Return the replications as independent, picklable tasks.

    Parameters
    ----------
    replications : int
        Number of simulated cities.
    seed : int
        Root seed; the city seeds are ``analysis.grid.montecarlo.replication_seeds(seed, replications)``.
    **kwargs
        Passed to :func:`replication`.

    Returns
    -------
    list of callable
        ``functools.partial(replication, seed=s, **kwargs)``, one per city, in seed order.

    Raises
    ------
    ValueError
        If ``replications`` is not positive.

    Examples
    --------
    >>> ts = tasks(3, seed=1)
    >>> len(ts), ts[0].func.__name__
    (3, 'replication')
    """
    from analysis.grid.montecarlo import replication_seeds

    if isinstance(replications, bool) or int(replications) < 1:
        raise ValueError(f"replications must be a positive integer, got {replications!r}")
    return [functools.partial(replication, seed=s, **kwargs) for s in replication_seeds(seed, int(replications))]


def run(task_list: Sequence[Callable[[], list[dict[str, Any]]]]) -> pd.DataFrame:
    """Run the tasks serially and stack their records.

    Parameters
    ----------
    task_list : sequence of callable
        Output of :func:`tasks` (or any callables returning lists of records).

    Returns
    -------
    pandas.DataFrame
        One row per record, in task order.
    """
    return pd.DataFrame([rec for t in task_list for rec in t()])


def summarise(records: pd.DataFrame, levels: Sequence[float] = (0.05, 0.10)) -> dict[str, pd.DataFrame]:
    """Rejection rates of the pre-tests and coverage of the intervals, with Monte Carlo errors.

    Parameters
    ----------
    records : pandas.DataFrame
        Output of :func:`run`.
    levels : sequence of float, default (0.05, 0.10)
        Nominal levels of the pre-tests.

    Returns
    -------
    dict of pandas.DataFrame
        ``"pretest"`` (and ``"bjs_pretest"``): one row per outcome, test and level with
        ``replications``, ``rejection_rate`` and ``mc_se``; ``"coverage"``: one row per outcome, cluster level
        and method with ``replications``, ``coverage``, ``mc_se``, ``mean_width``,
        ``mean_std_error`` and ``sd_estimate`` (the Monte Carlo standard deviation of the
        estimate); ``"pretest_diagnostic"``: one row per outcome and level with the
        chi-square rejection rates with the Monte Carlo covariance of the pre-period
        estimates and with their unclustered covariance, and the range over cells of the
        mean clustered variance over the Monte Carlo variance and of its coefficient of
        variation. Empty frames for kinds absent from ``records``.

    Examples
    --------
    >>> rec = pd.DataFrame({"kind": "pretest", "outcome": "y", "test": "htz", "p_value": [0.01, 0.5]})
    >>> summarise(rec)["pretest"][["level", "rejection_rate"]].values.tolist()
    [[0.05, 0.5], [0.1, 0.5]]
    """
    out: dict[str, pd.DataFrame] = {"pretest": pd.DataFrame(), "bjs_pretest": pd.DataFrame(),
                                    "pretest_diagnostic": pd.DataFrame(), "coverage": pd.DataFrame()}
    kind = records.get("kind", pd.Series(dtype=object))
    diag = records[kind == "pretest_diagnostic"]
    if len(diag):
        out["pretest_diagnostic"] = _diagnostic_summary(diag, levels)
    for name in ("pretest", "bjs_pretest"):
        pre = records[kind == name]
        if not len(pre):
            continue
        rows = []
        for (oc, test), g in pre.groupby(["outcome", "test"], sort=False):
            p = g["p_value"].to_numpy(float)
            p = p[np.isfinite(p)]
            for a in levels:
                r = float(np.mean(p <= a)) if p.size else float("nan")
                rows.append({"outcome": oc, "test": test, "level": float(a), "replications": int(p.size),
                             "rejection_rate": r, "mc_se": float(np.sqrt(r * (1 - r) / max(p.size, 1)))})
        out[name] = pd.DataFrame(rows)
    cov = records[kind == "coverage"]
    if len(cov):
        d = cov.assign(width=cov["conf_high"] - cov["conf_low"])
        g = d.groupby(["outcome", "cluster", "method"], sort=False)
        t = g.agg(replications=("covered", "size"), coverage=("covered", "mean"), mean_width=("width", "mean"),
                  mean_std_error=("std_error", "mean"), sd_estimate=("estimate", "std"),
                  n_clusters=("n_clusters", "first")).reset_index()
        t["coverage"] = t["coverage"].astype(float)
        t["mc_se"] = np.sqrt(t["coverage"] * (1 - t["coverage"]) / t["replications"])
        out["coverage"] = t[["outcome", "cluster", "method", "n_clusters", "replications", "coverage", "mc_se",
                             "mean_width", "mean_std_error", "sd_estimate"]]
    return out
