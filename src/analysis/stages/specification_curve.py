"""Specification curve (notebook ``07_specification_curve``): does the headline depend on the analyst's choices.

The stage estimates the overall effect under every combination of a stated set of defensible
choices (:mod:`analysis.grid.specification`) and shows them as a specification curve (Simonsohn,
Simmons & Nelson 2020): the estimates sorted, each with its 95% interval, the headline marked,
and beneath them an indicator panel of the choices each specification made. For each outcome it
reports the share of specifications with the headline's sign, the share whose interval excludes
zero, the median (:func:`analysis.grid.curve.curve_summary`) and the curve's joint test under the
null (:func:`analysis.grid.null_curve.null_test`: the estimated effect removed, townships
resampled, the curve re-estimated ``null_draws`` times, two-sided; measured on no-effect cities it
over-rejects: 9-10% at 5%, so the brief does not cite it).

The study's default grid is a stated subset, so that ``make study`` stays short: the levels of
:data:`STAGE_LEVELS` (every estimator, comparison group, covariate set, anticipation rule and
window; the doubly robust method and township clusters only; timing rules of 3 and 6 months: in the
default city 9 months gives the same cohorts as 6) for the notebook's ``outcomes`` (default: the
headline outcome, income per capita), and the joint test over the Callaway-Sant'Anna points at the
study's timing rule and all years (:func:`null_points`). The full grid (504 specifications per
outcome, every outcome) is ``study grid`` (README, "Specification grid"), on any number of workers.

The panel's treatment timing is re-derived from the postings for each rule (the notebook passes
the postings, :data:`USES_POSTINGS`); the stage never opens the store.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.core.spec import Spec
from analysis.grid.curve import curve_summary
from analysis.grid.null_curve import null_test
from analysis.grid.specification import LEVELS, GridData, GridPlan, GridPoint, grid_points, run_grid
from analysis.i18n import column_label, t
from analysis.report.figures import themed
from analysis.stages.base import StageResult, Truth

__all__ = ["STAGE_LEVELS", "USES_POSTINGS", "curve_table", "draw_figures", "findings", "null_points", "payload",
           "plot_curve", "run"]

USES_POSTINGS = True
"""The notebook passes the postings (``params["postings"]``): the timing rule is a level of the grid."""

STAGE_LEVELS: dict[str, tuple[str, ...]] = {
    "estimator": ("cs", "sa", "bjs"),
    "method": ("dr",),
    "control_group": ("never", "notyet"),
    "covariates": ("none", "baseline", "baseline_party"),
    "cluster": ("township",),
    "anticipation": ("0", "1"),
    "min_months": ("3", "6"),
    "window": ("all", "drop_first"),
}
"""The levels ``make study`` runs: 48 Callaway-Sant'Anna points and 12 each for Sun-Abraham and
imputation, 72 per outcome (module docstring)."""


def null_points(plan: GridPlan, min_months: float) -> list[GridPoint]:
    """Return the points the joint test re-estimates: Callaway-Sant'Anna at the study's rule, all years.

    (Re-estimating every point on every draw multiplies the grid's cost by the draws; the stage keeps
    the test to these points so that ``make study`` stays short.)

    Parameters
    ----------
    plan : GridPlan
        The grid.
    min_months : float
        The study's timing rule.

    Returns
    -------
    list of GridPoint
        The points (12 per outcome in the stage's grid).
    """
    return [p for p in plan.points if p.estimator == "cs" and p.min_months == float(min_months) and p.window == "all"]


def curve_table(grid: pd.DataFrame) -> pd.DataFrame:
    """Return the curve's table: every point, sorted by outcome and estimate, with its rank.

    Parameters
    ----------
    grid : pandas.DataFrame
        :func:`analysis.grid.specification.run_grid` output (not modified).

    Returns
    -------
    pandas.DataFrame
        ``outcome, rank`` (1 = smallest estimate; points without an estimate last), then the grid's columns.
    """
    parts = []
    for _, g in grid.groupby("outcome", sort=False):
        g = g.sort_values(["estimate", "name"], kind="mergesort", na_position="last").copy()
        g.insert(1, "rank", np.arange(1, len(g) + 1))
        parts.append(g)
    return pd.concat(parts, ignore_index=True)


def _label(level: str, value: str, lang: str) -> str:
    return t(f"specification_curve.value.{level}.{value}", lang)


@themed
def plot_curve(table: pd.DataFrame, outcome: str, lang: str = "zh"):
    """Draw one outcome's specification curve with its indicator panel beneath.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`curve_table`.
    outcome : str
        The outcome.
    lang : {"zh", "en"}
        Language of the labels.

    Returns
    -------
    matplotlib.figure.Figure
        Top: estimates sorted with 95% intervals (the headline in red, zero dashed); bottom: a
        dot for each choice a specification made, one row per level value.
    """
    from matplotlib import pyplot as plt

    g = table[(table["outcome"] == outcome) & table["estimate"].notna()].reset_index(drop=True)
    x = np.arange(len(g))
    rows = [(lv, v) for lv in LEVELS for v in dict.fromkeys(g[lv].astype(str)) if v != ""]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 3.2 + 0.22 * len(rows)), sharex=True,
                                  gridspec_kw={"height_ratios": [3, max(2, 0.22 * len(rows))]})
    sig = (g["conf_low"] > 0) | (g["conf_high"] < 0)
    colours = np.where(sig, "#1f4e79", "#9aa9b8")
    ax.vlines(x, g["conf_low"], g["conf_high"], colors=colours, lw=0.8, alpha=0.7)
    ax.scatter(x, g["estimate"], c=colours, s=8, zorder=3, label=t("specification_curve.figure.estimate", lang))
    head = g.index[g["headline"].astype(bool)]
    if len(head):
        ax.scatter(x[head], g.loc[head, "estimate"], c="#c0392b", s=40, zorder=4, marker="D",
                   label=t("specification_curve.figure.headline", lang))
    ax.axhline(0, color="black", lw=0.8, ls="--")
    ax.set_ylabel(t("specification_curve.figure.ylabel", lang, name=column_label(outcome, lang)))
    ax.set_title(t("specification_curve.figure.title", lang, name=column_label(outcome, lang), n=len(g)))
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    for i, (lv, v) in enumerate(rows):
        on = (g[lv].astype(str) == v).to_numpy()
        ax2.scatter(x[on], np.full(on.sum(), i), s=6, c=np.where(sig[on], "#1f4e79", "#9aa9b8"), marker="s")
    ax2.set_yticks(range(len(rows)))
    ax2.set_yticklabels([_label(lv, v, lang) for lv, v in rows], fontsize=7)
    ax2.set_ylim(len(rows) - 0.5, -0.5)
    ax2.set_xlabel(t("specification_curve.figure.xlabel", lang))
    fig.tight_layout()
    return fig


def draw_figures(table: pd.DataFrame, outcomes: Sequence[str], lang: str) -> dict[str, Any]:
    """Draw the stage's figures in one language: ``07_curve_<outcome>`` for each outcome.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`curve_table`.
    outcomes : sequence of str
        Outcomes.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    dict
        File stem -> figure.
    """
    return {f"07_curve_{o}": plot_curve(table, o, lang) for o in outcomes}


def _clean(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def payload(summary: pd.DataFrame, plan: GridPlan, options: Mapping[str, Any]) -> dict[str, Any]:
    """Build the ``specification_curve`` section of ``results.json``.

    Parameters
    ----------
    summary : pandas.DataFrame
        The ``07_curve_summary`` table.
    plan : GridPlan
        The grid.
    options : mapping
        ``null_draws``, ``seed``, ``null_specifications`` (points per outcome in the joint test).

    Returns
    -------
    dict
        ``options`` (levels, points per outcome, skipped combinations, draws, seed) and ``outcomes``:
        outcome -> the summary's row.
    """
    opts = {"levels": {k: [str(v) for v in vals] for k, vals in plan.levels.items()},
            "specifications_per_outcome": len(plan.points) // max(len(plan.outcomes), 1),
            "skipped": plan.skipped, **{k: _clean(v) for k, v in options.items()}}
    outs = {r["outcome"]: {k: _clean(v) for k, v in r.items() if k != "outcome"}
            for r in summary.to_dict("records")}
    return {"options": opts, "outcomes": outs}


def findings(summary: pd.DataFrame, lang: str) -> list[str]:
    """Say, per outcome, how much of the curve agrees with the headline and what the joint test gives.

    Parameters
    ----------
    summary : pandas.DataFrame
        The ``07_curve_summary`` table.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    list of str
        One paragraph per outcome.
    """
    out = []
    for r in summary.itertuples(index=False):
        text = t("specification_curve.finding.outcome", lang, name=column_label(r.outcome, lang),
                 n=int(r.estimated), same=100 * r.share_same_sign, sig=100 * r.share_significant_same_sign,
                 median=r.median, headline=r.headline_estimate)
        if np.isfinite(r.p_median):
            text += t("specification_curve.finding.joint", lang, draws=int(r.null_draws), k=int(r.null_specifications),
                      p_median=r.p_median, p_share=r.p_share_significant)
        out.append(text)
    return out


def run(panel: pd.DataFrame, params: Mapping[str, Any], truth: Truth | None = None) -> StageResult:
    """Run the specification curve of the notebook's outcomes (notebook ``07_specification_curve``).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel of the window (not modified; its treatment columns are re-derived per rule).
    params : mapping
        Validated notebook parameters; uses ``outcomes``, ``postings``, ``first_year``, ``last_year``,
        ``min_months``, ``control_group``, ``covariates``, ``cluster`` (the headline point),
        ``null_draws``, ``seed`` and ``lang``.
    truth : Truth, optional
        Not used (the curve describes the data, not the truth).

    Returns
    -------
    StageResult
        Tables ``07_specification_curve`` and ``07_curve_summary``, figures ``07_curve_<outcome>``,
        the ``specification_curve`` section.
    """
    lang = params["lang"]
    plan = grid_points(params["outcomes"], STAGE_LEVELS)
    data = GridData.make(panel, params["postings"], params["first_year"], params["last_year"], outcomes=plan.outcomes)
    headline = Spec.from_params(params)
    grid = run_grid(plan, data, serial=True, headline=headline, headline_min_months=params["min_months"])
    summary = curve_summary(grid)
    draws = int(params["null_draws"])
    points = null_points(plan, params["min_months"])
    per = len(points) // max(len(plan.outcomes), 1)
    summary["null_specifications"] = per
    summary["null_draws"] = draws
    summary["p_median"] = np.nan
    summary["p_share_significant"] = np.nan
    notes = [plan.describe()]
    if draws > 0 and points:
        tests, _ = null_test(grid, data, points, draws, params["seed"], serial=True)
        p = tests.set_index("outcome")
        summary["p_median"] = summary["outcome"].map(p["p_median"])
        summary["p_share_significant"] = summary["outcome"].map(p["p_share_significant"])
        notes.append(t("specification_curve.note.joint", lang, draws=draws, k=per, smallest=1 / (1 + draws)))
    table = curve_table(grid)
    draw = functools.partial(draw_figures, table, list(plan.outcomes))
    options = {"null_draws": draws, "null_specifications": per, "seed": int(params["seed"])}
    return StageResult("07_specification_curve", "specification_curve",
                       {"07_specification_curve": table, "07_curve_summary": summary}, draw(lang),
                       payload(summary, plan, options), findings(summary, lang), notes, lang, draw)
