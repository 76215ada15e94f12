"""Does the study recover the truth? Estimates against the synthetic city's truth, and a Monte Carlo (notebook 06).

Two checks, both possible only on synthetic data, where the true effects are known:

* :func:`estimates_vs_truth` -- every headline estimate (the overall effect of
  Callaway-Sant'Anna, Sun-Abraham, Borusyak-Jaravel-Spiess imputation and the static
  TWFE benchmark, :func:`headline_estimates`) next to the true simple ATT of the city
  in the store: the bias and whether the 95% interval covers the truth. One city is one
  draw: an interval misses 5% of the time even when all is well.
* :func:`run_monte_carlo` -- many cities of the same design (new draws of everything),
  each estimated with each estimator (:func:`analysis.grid.montecarlo.monte_carlo`): bias,
  RMSE and 95% coverage with their Monte Carlo standard errors. This is the evidence for
  the choice of the headline estimator: under this city's staggered roll-out with effects
  that grow with exposure and targeting on trends, TWFE is biased and its intervals
  undercover.

On real data (no truth) both checks are skipped and :func:`not_available` says so.

The ``simulation_check`` section of ``results.json`` is ``{"available", "note",
"estimates_vs_truth": [...], "monte_carlo": [...], "monte_carlo_options": {...}}``
(:func:`payload`). :func:`run` is the stage: both checks with the notebook's parameters, their
tables, figures, section and findings (:func:`findings`).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.core.spec import DEFAULT_COVARIATES, Spec
from analysis.estimate import estimate
from analysis.grid.montecarlo import ESTIMATOR_SPECS, monte_carlo, summarise
from analysis.i18n import column_label, t
from analysis.report.figures import themed
from analysis.report.results_json import clean, estimate_record
from analysis.stages.base import StageResult, Truth

__all__ = [
    "ESTIMATORS",
    "MC_COLUMNS",
    "MC_OUTCOMES",
    "N_JOBS",
    "VS_TRUTH_COLUMNS",
    "draw_figures",
    "estimates_vs_truth",
    "estimator_specs",
    "findings",
    "headline_estimates",
    "mc_outcomes",
    "monte_carlo_summary",
    "not_available",
    "payload",
    "plot_estimates_vs_truth",
    "plot_monte_carlo",
    "run",
    "run_monte_carlo",
]

ESTIMATORS: tuple[str, ...] = ("cs", "sa", "bjs", "twfe")
"""Estimators compared, headline first, benchmark last."""
MC_OUTCOMES: tuple[str, ...] = ("income_per_capita",)
"""Outcome of the notebook's Monte Carlo: income, where TWFE's bias is largest. A replication costs
about 0.5 s of CPU per outcome, so one outcome keeps the notebook fast; other outcomes can be passed
to :func:`run_monte_carlo` (or chosen in the notebook through ``outcomes``, see :func:`mc_outcomes`)."""
N_JOBS = 2
"""Worker processes for the Monte Carlo (results do not depend on it)."""
NOMINAL = 0.95

VS_TRUTH_COLUMNS = ("outcome", "estimator", "term", "estimate", "std_error", "conf_low", "conf_high", "truth",
                    "covered", "bias", "relative_bias")
MC_COLUMNS = ("outcome", "estimator", "replications", "mean_truth", "bias", "bias_mc_se", "relative_bias", "rmse",
              "coverage", "coverage_mc_se")



def estimator_specs(control_group: str = "notyet", covariates: Sequence[str] = DEFAULT_COVARIATES) -> dict[str, Spec]:
    """How each estimator is run for its headline number, with the notebook's options.

    Parameters
    ----------
    control_group : {"notyet", "never"}
        Comparison villages of Callaway-Sant'Anna (Sun-Abraham always uses the
        never-treated; imputation and TWFE use every untreated cell).
    covariates : sequence of str
        Baseline covariates of CS, SA and BJS. TWFE, the conventional benchmark, has none.

    Returns
    -------
    dict of str -> analysis.core.spec.Spec
        Estimator -> its specification (``aggregation``: the tidy row of the overall effect), as
        :data:`analysis.grid.montecarlo.ESTIMATOR_SPECS` (which the Monte Carlo uses) with these options.
    """
    specs = {name: ESTIMATOR_SPECS[name] for name in ESTIMATORS}
    for name in ("cs", "bjs"):
        specs[name] = specs[name].replace(control_group=control_group, covariates=covariates)
    specs["sa"] = specs["sa"].replace(covariates=covariates)
    return specs


def headline_estimates(
    panel: pd.DataFrame,
    outcomes: Sequence[str],
    control_group: str = "notyet",
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    cluster: str = "township",
    estimators: Sequence[str] = ESTIMATORS,
) -> pd.DataFrame:
    """Estimate the overall effect of every outcome with every estimator (tidy rows).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    outcomes : sequence of str
        Outcomes.
    control_group, covariates
        See :func:`estimator_specs`.
    cluster : {"township", "county", "village"}
        Clustering level.
    estimators : sequence of str, default :data:`ESTIMATORS`
        Which estimators.

    Returns
    -------
    pandas.DataFrame
        One tidy row (:mod:`analysis.results`) per outcome and estimator: the ``simple``
        ATT (CS, SA, BJS) or the static ``coef`` (TWFE).
    """
    specs = estimator_specs(control_group, covariates)
    rows = []
    for oc in outcomes:
        for name in estimators:
            s = specs[name]
            t = estimate(panel, oc, s.estimator, control_group=s.control_group, covariates=s.covariates,
                         cluster=cluster).tidy()
            rows.append(t[t["aggregation"] == s.aggregation].iloc[[0]])
    return pd.concat(rows, ignore_index=True)


def estimates_vs_truth(estimates: pd.DataFrame, truth_aggregates: pd.DataFrame) -> pd.DataFrame:
    """Put each overall estimate next to the true simple ATT: bias and whether the interval covers it.

    Parameters
    ----------
    estimates : pandas.DataFrame
        :func:`headline_estimates`.
    truth_aggregates : pandas.DataFrame
        :func:`analysis.data.synthetic.truth.load_truth` (rows ``aggregation == "simple"``). TWFE is
        compared with the same truth: it is the number a TWFE user would report as the
        effect.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`VS_TRUTH_COLUMNS`; ``covered`` is ``conf_low <= truth <= conf_high``,
        ``bias = estimate - truth``, ``relative_bias = bias / |truth|``.
    """
    ta = truth_aggregates
    simple = ta[ta["aggregation"] == "simple"].drop_duplicates("outcome").set_index("outcome")["value"]
    out = estimates[["outcome", "estimator", "term", "estimate", "std_error", "conf_low", "conf_high"]].copy()
    out["truth"] = out["outcome"].map(simple).astype(float)
    out["covered"] = ((out["conf_low"] <= out["truth"]) & (out["truth"] <= out["conf_high"])).astype(bool)
    out["bias"] = out["estimate"] - out["truth"]
    out["relative_bias"] = out["bias"] / out["truth"].abs().where(out["truth"] != 0)
    return out[list(VS_TRUTH_COLUMNS)].reset_index(drop=True)


def mc_outcomes(outcomes: Sequence[str]) -> list[str]:
    """Outcomes of the Monte Carlo: those of :data:`MC_OUTCOMES` among ``outcomes``, else the first outcome.

    Parameters
    ----------
    outcomes : sequence of str
        The notebook's outcomes.

    Returns
    -------
    list of str
        The outcomes to simulate.

    Examples
    --------
    >>> mc_outcomes(["projects", "income_per_capita"])
    ['income_per_capita']
    >>> mc_outcomes(["criminal_cases", "projects"])
    ['criminal_cases']
    """
    keep = [o for o in outcomes if o in MC_OUTCOMES]
    return keep or list(outcomes[:1])


def monte_carlo_summary(mc: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE and coverage by outcome and estimator, with Monte Carlo standard errors.

    Parameters
    ----------
    mc : pandas.DataFrame
        Output of :func:`analysis.grid.montecarlo.monte_carlo`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`MC_COLUMNS`: :func:`analysis.grid.montecarlo.summarise` plus
        ``bias_mc_se`` (standard deviation of the errors over ``sqrt(replications)``;
        missing with one replication), rows in the order outcome, then :data:`ESTIMATORS`.
    """
    s = summarise(mc)
    err = (mc["estimate"] - mc["truth"]).groupby([mc["outcome"], mc["estimator"]], sort=False)
    se = (err.std(ddof=1) / np.sqrt(err.size())).rename("bias_mc_se").reset_index()
    s = s.merge(se, on=["outcome", "estimator"], how="left", validate="one_to_one")
    rank = {e: i for i, e in enumerate(ESTIMATORS)}
    order = list(dict.fromkeys(mc["outcome"]))
    s["_o"] = s["outcome"].map({o: i for i, o in enumerate(order)})
    s["_e"] = s["estimator"].map(rank).fillna(len(rank))
    s = s.sort_values(["_o", "_e"], kind="mergesort").drop(columns=["_o", "_e"])
    return s[list(MC_COLUMNS)].reset_index(drop=True)


_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _single_threaded_workers() -> Iterator[None]:
    """Make worker processes started inside the block use one BLAS thread each (restored after).

    The workers already share the cores between them; a multi-threaded BLAS in each one
    oversubscribes the machine (OpenBLAS threads spin while waiting), which made a
    replication several times slower on a loaded two-core machine. Spawned workers read
    these variables when they start.
    """
    old = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_monte_carlo(
    replications: int,
    seed: int,
    outcomes: Sequence[str] = MC_OUTCOMES,
    estimators: Sequence[str] = ESTIMATORS,
    n_jobs: int = N_JOBS,
    **city_kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate ``replications`` cities of the default design and summarise each estimator's performance.

    Parameters
    ----------
    replications : int
        Number of simulated cities (>= 1).
    seed : int
        Study seed; each city's seed is spawned from it
        (:func:`analysis.grid.montecarlo.replication_seeds`), so the result does not depend on
        ``n_jobs``.
    outcomes : sequence of str
        Outcomes.
    estimators : sequence of str
        Keys of :data:`analysis.grid.montecarlo.ESTIMATOR_SPECS`.
    n_jobs : int, default :data:`N_JOBS`
        Worker processes (each with one BLAS thread); 1 runs in this process.
    **city_kwargs
        Passed to :func:`analysis.data.synthetic.simulate_city` (e.g. ``n_villages``).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The replications (one row per city, outcome and estimator) and
        :func:`monte_carlo_summary`.
    """
    with _single_threaded_workers():
        mc = monte_carlo(replications, seed, outcomes=tuple(outcomes), estimators=tuple(estimators), n_jobs=n_jobs,
                         **city_kwargs)
    return mc, monte_carlo_summary(mc)


def not_available(note: str) -> dict[str, Any]:
    """Build the ``simulation_check`` section when there is no truth (real data).

    Parameters
    ----------
    note : str
        Why (e.g. the reason from :func:`analysis.data.synthetic.truth.truth_status`).

    Returns
    -------
    dict
        ``{"available": False, "note": note, "estimates_vs_truth": [], "monte_carlo": []}``.
    """
    return {"available": False, "note": note, "estimates_vs_truth": [], "monte_carlo": []}


def payload(
    estimates: pd.DataFrame,
    vs_truth: pd.DataFrame,
    mc_summary: pd.DataFrame | None,
    note: str,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the ``simulation_check`` section of ``results.json`` on synthetic data.

    Parameters
    ----------
    estimates : pandas.DataFrame
        :func:`headline_estimates` (for the estimate records).
    vs_truth : pandas.DataFrame
        :func:`estimates_vs_truth`.
    mc_summary : pandas.DataFrame or None
        :func:`monte_carlo_summary` (None or empty if no Monte Carlo was run).
    note : str
        One sentence on what was checked.
    options : dict, optional
        Monte Carlo options (replications, seed, outcomes, estimators), stored as
        ``monte_carlo_options``.

    Returns
    -------
    dict
        ``available`` (True), ``note``, ``estimates_vs_truth`` (per outcome and estimator:
        ``outcome``, the estimate record, ``truth``, ``covered``, ``bias``,
        ``relative_bias``), ``monte_carlo`` (rows of the summary) and
        ``monte_carlo_options``.
    """
    rows = []
    for r in vs_truth.to_dict("records"):
        match = estimates[(estimates["outcome"] == r["outcome"]) & (estimates["estimator"] == r["estimator"])]
        rec = estimate_record(match.iloc[0])
        rows.append({"outcome": r["outcome"], **rec, "truth": r["truth"], "covered": bool(r["covered"]),
                     "bias": r["bias"], "relative_bias": r["relative_bias"]})
    mc = [] if mc_summary is None else [clean(r) for r in mc_summary.to_dict("records")]
    return {"available": True, "note": note, "estimates_vs_truth": clean(rows), "monte_carlo": mc,
            "monte_carlo_options": clean(options or {})}


# ----------------------------------------------------------------------------- figures


@themed
def plot_estimates_vs_truth(table: pd.DataFrame, lang: str = "zh", ncol: int = 3):
    """One panel per outcome: each estimator's estimate and 95% CI, the truth as a dashed line.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`estimates_vs_truth`.
    lang : {"zh", "en"}
        Label language.
    ncol : int, default 3
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        The figure; filled markers cover the truth, hollow ones miss it.
    """
    from matplotlib import pyplot as plt
    from matplotlib.lines import Line2D

    outcomes = list(dict.fromkeys(table["outcome"]))
    ncol = min(ncol, len(outcomes))
    nrow = int(np.ceil(len(outcomes) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.5 * nrow), squeeze=False)
    color = "#1f5f8b"
    for ax, oc in zip(axes.ravel(), outcomes, strict=False):
        d = table[table["outcome"] == oc].reset_index(drop=True)
        x = np.arange(len(d))
        for i, r in d.iterrows():
            ax.errorbar(x[i], r["estimate"], yerr=[[r["estimate"] - r["conf_low"]], [r["conf_high"] - r["estimate"]]],
                        fmt="o", color=color, mfc=color if r["covered"] else "white", capsize=3)
        ax.axhline(float(d["truth"].iloc[0]), color="#c0392b", ls="--", lw=1.2)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_xticks(x, [t(f"estimator.{e}.abbrev", lang) for e in d["estimator"]])
        ax.set_title(column_label(oc, lang), fontsize=10)
        ax.set_ylabel(t("term.effect_per_village", lang, name=column_label(oc, lang)), fontsize=8)
    for ax in axes.ravel()[len(outcomes):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color="#c0392b", ls="--", label=t("term.truth", lang)),
               Line2D([], [], color=color, marker="o", ls="", label=t("simulation_check.figure.covered", lang)),
               Line2D([], [], color=color, marker="o", mfc="white", ls="",
                      label=t("simulation_check.figure.missed", lang))]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(t("simulation_check.figure.title_vs_truth", lang))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


@themed
def plot_monte_carlo(summary: pd.DataFrame, lang: str = "zh"):
    """Relative bias and coverage by estimator (one marker per outcome), with Monte Carlo error bars.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`monte_carlo_summary`.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    matplotlib.figure.Figure
        Left: relative bias in % of the truth (0 = unbiased); right: coverage of the 95%
        interval with the nominal 95% line. Bars are ±1.96 Monte Carlo standard errors.
    """
    from matplotlib import pyplot as plt

    ests = [e for e in ESTIMATORS if e in set(summary["estimator"])]
    outcomes = list(dict.fromkeys(summary["outcome"]))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = ["#1f5f8b", "#c1721b", "#3b8c4a", "#7a4a9a", "#555555"]
    width = 0.6 / max(len(outcomes), 1)
    for j, oc in enumerate(outcomes):
        d = summary[summary["outcome"] == oc].set_index("estimator").reindex(ests)
        x = np.arange(len(ests)) + (j - (len(outcomes) - 1) / 2) * width
        scale = 100 / d["mean_truth"].abs().to_numpy(float)
        a1.errorbar(x, d["bias"].to_numpy(float) * scale, yerr=1.96 * d["bias_mc_se"].to_numpy(float) * scale,
                    fmt="o", capsize=3, color=colors[j % len(colors)], label=column_label(oc, lang))
        cov = 100 * d["coverage"].to_numpy(float)
        half = 196 * d["coverage_mc_se"].to_numpy(float)
        a2.errorbar(x, cov, yerr=[cov - np.clip(cov - half, 0, 100), np.clip(cov + half, 0, 100) - cov],
                    fmt="o", capsize=3, color=colors[j % len(colors)], label=column_label(oc, lang))
    names = [t(f"estimator.{e}.abbrev", lang) for e in ests]
    a1.axhline(0, color="grey", lw=0.8)
    a1.set_xticks(np.arange(len(ests)), names)
    a1.set_ylabel(t("simulation_check.figure.rel_bias", lang))
    a1.set_title(t("simulation_check.figure.rel_bias", lang), fontsize=10)
    a2.axhline(100 * NOMINAL, color="#c0392b", ls="--", lw=1.2, label=t("simulation_check.figure.nominal", lang))
    a2.set_xticks(np.arange(len(ests)), names)
    a2.set_ylim(-2, 102)
    a2.set_ylabel(t("simulation_check.figure.coverage", lang) + " (%)")
    a2.set_title(t("simulation_check.figure.coverage", lang), fontsize=10)
    a2.legend(frameon=False, fontsize=8, loc="lower left")
    r = int(summary["replications"].max())
    fig.suptitle(t("simulation_check.figure.title_mc", lang, replications=r) + t("punct.semicolon", lang)
                 + t("simulation_check.figure.mc_se", lang))
    fig.tight_layout()
    return fig


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:+.1f}%"


def findings(vs_truth: pd.DataFrame | None, mc_summary: pd.DataFrame | None, lang: str = "zh") -> list[str]:
    """Compute sentences: how close each estimator came to the truth, and what the Monte Carlo shows.

    Parameters
    ----------
    vs_truth : pandas.DataFrame or None
        :func:`estimates_vs_truth` (None: no truth).
    mc_summary : pandas.DataFrame or None
        :func:`monte_carlo_summary` (None: not run).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    list of str
        One sentence per estimator on this city, then one per outcome and estimator of
        the Monte Carlo.
    """
    out = []
    if vs_truth is not None and not vs_truth.empty:
        n_oc = vs_truth["outcome"].nunique()
        for e, d in vs_truth.groupby("estimator", sort=False):
            k = int(d["covered"].sum())
            mab = float(d["relative_bias"].abs().mean())
            out.append(t("simulation_check.finding.city", lang, estimator=t(f"estimator.{e}.simulation", lang), n=n_oc,
                         k=k, bias=100 * mab))
    if mc_summary is not None and not mc_summary.empty:
        for r in mc_summary.to_dict("records"):
            cov, cse = 100 * r["coverage"], 100 * r["coverage_mc_se"]
            rb = r["relative_bias"]
            rb_se = r["bias_mc_se"] / abs(r["mean_truth"]) if r["mean_truth"] else np.nan
            out.append(t("simulation_check.finding.monte_carlo", lang, replications=r["replications"],
                         outcome=column_label(r["outcome"], lang),
                         estimator=t(f"estimator.{r['estimator']}.simulation", lang),
                         relative_bias=_pct(rb), se=100 * rb_se, rmse=r["rmse"], coverage=cov, half_width=1.96 * cse))
    return out


def draw_figures(vs_truth: pd.DataFrame | None, mc_summary: pd.DataFrame | None, lang: str) -> dict[str, Any]:
    """Draw the stage's figures in one language, those that were made.

    Parameters
    ----------
    vs_truth : pandas.DataFrame or None
        Estimates against the truth (:func:`estimates_vs_truth`); None: no known truth, no figure.
    mc_summary : pandas.DataFrame or None
        Monte Carlo summary; None: not run, no figure.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    dict
        ``06_estimates_vs_truth`` and ``06_monte_carlo`` -> figure, for those given.
    """
    figures: dict[str, Any] = {}
    if vs_truth is not None:
        figures["06_estimates_vs_truth"] = plot_estimates_vs_truth(vs_truth, lang)
    if mc_summary is not None:
        figures["06_monte_carlo"] = plot_monte_carlo(mc_summary, lang)
    return figures


def run(panel: pd.DataFrame, params: Mapping[str, Any], truth: Truth | None = None) -> StageResult:
    """Compare every estimator with the known truth, on this city and by Monte Carlo (notebook ``06``).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (:func:`analysis.core.panel.load_analysis_panel`). Not modified.
    params : mapping
        Validated notebook parameters; uses ``outcomes``, ``control_group``, ``covariates``,
        ``cluster``, ``replications`` (0 skips the Monte Carlo), ``seed`` and ``lang``.
    truth : Truth, optional
        The synthetic city's truth; without it both checks are skipped and the section says why.

    Returns
    -------
    StageResult
        Tables ``06_estimates_vs_truth`` and ``06_monte_carlo`` (empty when skipped), figures
        ``06_estimates_vs_truth`` and ``06_monte_carlo`` (when made), the ``simulation_check`` section.
    """
    truth = truth or Truth.unknown()
    lang, seed, replications = params["lang"], params["seed"], params["replications"]
    drawn: dict[str, pd.DataFrame] = {}
    notes = [truth.status]
    if truth.aggregates is not None:
        estimates = headline_estimates(panel, params["outcomes"], control_group=params["control_group"],
                                       covariates=params["covariates"], cluster=params["cluster"])
        vs_truth = estimates_vs_truth(estimates, truth.aggregates)
        drawn["vs_truth"] = vs_truth
    else:
        estimates, vs_truth = None, pd.DataFrame(columns=list(VS_TRUTH_COLUMNS))
        notes.append(t("simulation_check.note.no_truth", lang))
    mc_options = {"replications": replications, "seed": seed, "outcomes": mc_outcomes(params["outcomes"]),
                  "estimators": list(ESTIMATORS), "design": "default synthetic city (analysis.data.simulate)"}
    if truth.aggregates is not None and replications > 0:
        _, mc_summary = run_monte_carlo(replications, seed, mc_options["outcomes"])
        drawn["mc_summary"] = mc_summary
    else:
        mc_summary = pd.DataFrame(columns=list(MC_COLUMNS))
    tables = {"06_estimates_vs_truth": vs_truth, "06_monte_carlo": mc_summary}
    draw = functools.partial(draw_figures, drawn.get("vs_truth"), drawn.get("mc_summary"))
    figures = draw(lang)
    if estimates is not None:
        note = (f"Estimates on the synthetic city compared with its known truth ({truth.status}); Monte Carlo over "
                f"{replications} simulated cities of the same design, seed {seed}.")
        section = payload(estimates, vs_truth, mc_summary, note, mc_options)
        found = findings(vs_truth, mc_summary, lang)
    else:
        section = not_available(f"no known truth: {truth.status}")
        found = [t("simulation_check.finding.no_truth", lang, status=truth.status)]
    return StageResult("06_simulation_check", "simulation_check", tables, figures, section, found, notes, lang, draw)
