"""Main effects (notebook ``02_main_effects``): the headline effect of a first secretary on every outcome, by family.

For each outcome of :data:`analysis.data.schema.OUTCOME_FAMILIES` this module puts side by side

* the **headline**: Callaway-Sant'Anna (doubly robust, not-yet-treated comparison villages,
  baseline covariates, standard errors clustered by township) aggregated to the simple ATT,
  i.e. the average effect over all treated village-years weighted by cohort size
  (``aggregate(att_gt(...), "simple")``);
* the **TWFE benchmark**: the static two-way fixed-effects regression without covariates,
  the naive comparison most readers expect (biased under staggered adoption with effects
  that grow with exposure, see :mod:`analysis.estimators.bacon`);
* for count outcomes (:data:`PPML_OUTCOMES`) the **Poisson** (extended TWFE, PPML)
  percentage change, valid under parallel trends in ratios instead of levels;
* the **untreated mean**: the mean outcome of never-treated villages over the
  post-treatment years (the years in which any village is treated), and the headline
  effect as a share of it;
* **Romano-Wolf** adjusted p-values within each family, from a joint multiplier bootstrap
  of the headline estimates' influence functions (same multipliers for every outcome of
  the family, one per township);
* the **truth** of the synthetic city (the ``simple`` aggregate), when the store holds it.

Caveats
-------
* The share of the untreated mean divides by the never-treated villages' mean, which is a
  different population from the treated villages (these were chosen for being weak); it
  is a scale for reading the size of an effect, not the treated villages' proportional
  effect. Its interval treats the mean as fixed.
* Romano-Wolf controls the family-wise error rate within a family, not across families.
* The headline interval and p-value are analytic (influence function, clustered); the
  Romano-Wolf p-values come from the bootstrap, so an unadjusted bootstrap p-value
  (``p_boot``) is reported too: the adjusted p-value is never below it.

:func:`run` is the stage: it estimates everything above with the notebook's parameters and
returns the table, the Romano-Wolf table, the forest plot, the ``main_effects`` section of
``results.json`` (:func:`payload`) and the findings (:func:`findings`). Functions take frames and
return frames, figures and dicts; they never open the store or write files
(:func:`analysis.stages.base.save` writes them).
"""

from __future__ import annotations

import functools
import gc
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from analysis.core.panel import covariate_columns, present_columns
from analysis.core.spec import COHORT, DEFAULT_COVARIATES, TIME, Spec, check_draws, check_outcomes
from analysis.data import schema
from analysis.i18n import column_label, t
from analysis.report.figures import themed
from analysis.report.results_json import estimate_record
from analysis.results import DiDResult
from analysis.stages.base import StageResult, Truth

__all__ = [
    "PPML_OUTCOMES",
    "MainEffects",
    "draw_figures",
    "estimate_main_effects",
    "findings",
    "outcome_unit",
    "payload",
    "plot_forest",
    "post_treatment_years",
    "romano_wolf_table",
    "run",
    "truth_simple",
    "untreated_mean",
]

PPML_OUTCOMES: tuple[str, ...] = ("criminal_cases", "disputes", "petitions", "new_members")
"""Count outcomes that also get the Poisson (PPML) percentage change: the cases family and
new party members (small counts with many zeros)."""

ALPHA = 0.05

TABLE_COLUMNS: tuple[str, ...] = (
    "family", "outcome", "unit", "estimate", "std_error", "conf_low", "conf_high", "p_value", "p_boot",
    "rw_p", "untreated_mean", "effect_pct", "effect_pct_low", "effect_pct_high", "twfe_estimate",
    "twfe_conf_low", "twfe_conf_high", "twfe_p_value", "twfe_pct", "ppml_pct", "ppml_pct_low", "ppml_pct_high",
    "truth", "truth_pct", "n_units", "n_clusters",
)
"""Columns of :attr:`MainEffects.table`. ``estimate`` .. ``p_value``: the headline (CS simple
ATT, in the outcome's unit, analytic clustered inference); ``p_boot``: its unadjusted
bootstrap p-value; ``rw_p``: Romano-Wolf adjusted within the family; ``untreated_mean``:
never-treated villages' mean over the post-treatment years; ``effect_pct*``: headline
and interval as **percent** of it; ``twfe_*``: static TWFE without covariates
(``twfe_pct`` in percent of the untreated mean); ``ppml_pct*``: Poisson percentage change in
**percent** (counts only); ``truth``: the synthetic city's simple ATT (``truth_pct`` in
percent of the untreated mean)."""

def outcome_unit(outcome: str) -> str:
    """Return the measurement unit of an outcome from the data dictionary.

    Parameters
    ----------
    outcome : str
        Canonical outcome name.

    Returns
    -------
    str
        The unit (``"yuan per person per year"``, ``"count per year"``, ...).

    Raises
    ------
    ValueError
        For a name that is not a canonical panel column.

    Examples
    --------
    >>> outcome_unit("roads_km")
    'km per year'
    """
    for c in schema.PANEL_COLUMNS:
        if c.name == outcome:
            return c.unit
    raise ValueError(f"{outcome!r} is not a canonical panel column")


def post_treatment_years(panel: pd.DataFrame) -> list[int]:
    """Return the years in which at least one village is treated.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel with ``year`` and ``cohort`` (0 = never treated).

    Returns
    -------
    list of int
        Sorted years ``t`` with some village of cohort ``0 < g <= t``.
    """
    g = panel[COHORT].to_numpy()
    t = panel[TIME].to_numpy()
    return sorted(int(y) for y in np.unique(t[(g > 0) & (t >= g)]))


def untreated_mean(panel: pd.DataFrame, outcome: str) -> float:
    """Mean outcome of never-treated villages over the post-treatment years.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel with ``year``, ``cohort`` and the outcome.
    outcome : str
        Outcome column.

    Returns
    -------
    float
        Mean over the village-years of cohort 0 in :func:`post_treatment_years`; NaN if
        there are no never-treated villages (or no treated year).
    """
    years = post_treatment_years(panel)
    sel = (panel[COHORT] == 0) & panel[TIME].isin(years)
    if not sel.any():
        return float("nan")
    return float(pd.to_numeric(panel.loc[sel, outcome], errors="coerce").mean())


def truth_simple(truth: pd.DataFrame | None, outcome: str) -> float | None:
    """Return the synthetic city's true simple ATT of an outcome.

    Parameters
    ----------
    truth : pandas.DataFrame or None
        ``truth_aggregates`` from :func:`analysis.data.synthetic.truth.load_truth` (None on real data).
    outcome : str
        Outcome.

    Returns
    -------
    float or None
        The ``simple`` aggregate over all cadre types, or None without a truth.
    """
    if truth is None:
        return None
    sel = (truth["outcome"] == outcome) & (truth["aggregation"] == "simple")
    if "cadre_type" in truth.columns:
        sel &= truth["cadre_type"].isna()
    if not sel.any():
        return None
    return float(truth.loc[sel, "value"].iloc[0])


@dataclass
class MainEffects:
    """Everything the main-effects notebook shows and writes.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per outcome, columns :data:`TABLE_COLUMNS`, families in the order of
        :data:`analysis.data.schema.OUTCOME_FAMILIES`.
    headline, twfe : dict of str -> DiDResult
        Per outcome: the CS simple aggregate (with its influence functions) and
        the static TWFE fit, both light (:meth:`~analysis.results.DiDResult.light`: no
        pyfixest fit, details or ATT(g,t) result kept).
    ppml : dict of str -> DiDResult
        Per count outcome in :data:`PPML_OUTCOMES`: the Poisson fit (light).
    romano_wolf : dict
        Per family: the :class:`~analysis.inference.multiple.MultipleTestingResult` of the CS
        headline; for another headline an object whose ``table`` has the same columns, with
        Holm's p-values and ``p_romano_wolf`` empty.
    families : dict of str -> list of str
        The outcomes analysed per family.
    options : dict
        How everything was estimated (for ``results.json``).
    """

    table: pd.DataFrame
    headline: dict[str, DiDResult]
    twfe: dict[str, DiDResult]
    ppml: dict[str, DiDResult]
    romano_wolf: dict[str, Any]
    families: dict[str, list[str]]
    options: dict[str, Any] = field(default_factory=dict)


def _first(result: DiDResult, aggregation: str) -> pd.Series:
    t = result.tidy(aggregation)
    if t.empty:
        raise ValueError(f"{result.estimator} result for {result.outcome!r} has no {aggregation!r} row")
    return t.iloc[0]


def estimate_main_effects(
    panel: pd.DataFrame,
    families: Mapping[str, Sequence[str]] | None = None,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    control_group: str = "notyet",
    cluster: str = "township",
    bootstrap_draws: int = 999,
    seed: int | None = 20230601,
    truth: pd.DataFrame | None = None,
    ppml_outcomes: Sequence[str] = PPML_OUTCOMES,
    estimator: str = "cs",
) -> MainEffects:
    """Estimate the headline effect, the TWFE benchmark and Poisson % change of every outcome.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel from :func:`analysis.core.panel.load_analysis_panel`. Not modified.
    families : mapping of str -> sequence of str, optional
        Outcome families; default :data:`analysis.data.schema.OUTCOME_FAMILIES`. Romano-Wolf
        adjusts within each family.
    covariates : sequence of str
        Canonical baseline covariates of the headline (and of the Poisson model).
    control_group : {"notyet", "never"}, default "notyet"
        Comparison villages of the headline.
    cluster : {"township", "county", "village"}, default "township"
        Clustering of every standard error and of the bootstrap.
    bootstrap_draws : int, default 999
        Multiplier-bootstrap draws of the Romano-Wolf adjustment (>= 1).
    seed : int, optional
        Seed of the bootstrap; each family uses this same seed.
    truth : pandas.DataFrame, optional
        ``truth_aggregates`` of the synthetic city (None on real data).
    ppml_outcomes : sequence of str, default :data:`PPML_OUTCOMES`
        Outcomes that also get the Poisson percentage change.
    estimator : {"cs", "sa", "bjs", "twfe", "ppml"}, default "cs"
        Headline estimator. Romano-Wolf needs the influence functions that only the
        Callaway-Sant'Anna estimator provides; with any other headline the family-wise
        adjustment is Holm's (recorded in the options), and ``p_boot`` is the analytic p-value.

    Returns
    -------
    MainEffects
        The summary table and the underlying fits.

    Raises
    ------
    ValueError
        For an unknown cluster level, an outcome not in the panel, fewer than one
        bootstrap draw, and whatever the estimators reject.

    Notes
    -----
    Estimand of the headline: the average effect on the treated village-years,
    weighted by cohort size, under parallel trends conditional on the baseline
    covariates and overlap, with no effect before the year preceding the cohort year
    (the arrival year is left out of every comparison, :mod:`analysis.core.spec`; see
    :mod:`analysis.estimators.callaway_santanna`). The TWFE benchmark needs, in
    addition, effects that are constant over cohorts and time since treatment.

    Examples
    --------
    >>> from analysis.data.synthetic import simulate_city
    >>> from analysis.core.treatment import attach_treatment
    >>> city = simulate_city(seed=1, n_villages=400, n_townships=24)
    >>> panel = attach_treatment(city.panel, city.treatment)
    >>> me = estimate_main_effects(panel, {"cases": ["disputes"]}, bootstrap_draws=99, seed=1,
    ...                            ppml_outcomes=())
    >>> me.table[["outcome", "rw_p"]].shape
    (1, 2)
    """
    from analysis.estimate import estimate
    from analysis.estimators.callaway_santanna import aggregate, att_gt
    from analysis.estimators.poisson import ppml
    from analysis.estimators.twfe import twfe
    from analysis.inference.multiple import holm, romano_wolf_did

    spec = Spec(estimator, control_group, tuple(covariates), cluster)
    check_draws(bootstrap_draws, 1, "for the Romano-Wolf adjustment")
    fams = {f: list(o) for f, o in (schema.OUTCOME_FAMILIES if families is None else families).items()}
    check_outcomes(panel, [o for os_ in fams.values() for o in os_])
    data, covs = covariate_columns(panel, list(spec.covariates))
    common = spec.columns
    headline: dict[str, DiDResult] = {}
    bench: dict[str, DiDResult] = {}
    pois: dict[str, DiDResult] = {}
    rw: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    head_row = spec.aggregation
    for fam, outcomes in fams.items():
        for oc in outcomes:
            # Every fit is kept light (DiDResult.light): rows, covariances and the headline's own influence
            # functions, not the regression's design matrices, so memory does not grow with the outcomes.
            if estimator == "cs":
                r = att_gt(data, oc, **spec.cs_arguments(covs))
                headline[oc] = aggregate(r, "simple").light()
                del r
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    headline[oc] = estimate(panel, oc, estimator, control_group=control_group,
                                            covariates=covariates, cluster=cluster).light()
            bench[oc] = twfe(data, oc, **common).light()
            if oc in ppml_outcomes:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pois[oc] = ppml(data, oc, covariates=covs or None, event_study=False, **common).light()
            # pyfixest's fit objects refer to each other in cycles, which only the cyclic collector frees:
            # collect now, or the design matrices of several outcomes' fits pile up (9.8 GB at 1M rows)
            gc.collect()
        if estimator == "cs":
            mt = romano_wolf_did({oc: headline[oc] for oc in outcomes}, B=int(bootstrap_draws), seed=seed)
            rw[fam] = mt
            adjusted = "p_romano_wolf"
        else:
            # No influence functions to draw from jointly: Holm's adjustment, stored and labelled as Holm's
            # (p_romano_wolf stays empty; rw_p carries the family-wise adjusted p-value, options say which).
            firsts = [_first(headline[oc], head_row) for oc in outcomes]
            p_un = np.array([float(h["p_value"]) for h in firsts])
            est = np.array([float(h["estimate"]) for h in firsts])
            se = np.array([float(h["std_error"]) for h in firsts])
            rw[fam] = SimpleNamespace(table=pd.DataFrame({
                "hypothesis": list(outcomes), "estimate": est, "std_error": se, "t_stat": est / se,
                "p_unadjusted": p_un, "p_romano_wolf": np.nan, "p_holm": holm(p_un),
                "p_bonferroni": np.minimum(1.0, p_un * len(p_un)), "stepdown_rank": np.nan}))
            adjusted = "p_holm"
        rwt = rw[fam].table.set_index("hypothesis")
        for oc in outcomes:
            h, tw = _first(headline[oc], head_row), _first(bench[oc], "coef")
            um = untreated_mean(panel, oc)
            scale = 100.0 / um if np.isfinite(um) and um != 0 else np.nan
            pp = _first(pois[oc], "simple_pct") if oc in pois else None
            tr = truth_simple(truth, oc)
            rows.append({
                "family": fam, "outcome": oc, "unit": outcome_unit(oc),
                "estimate": h["estimate"], "std_error": h["std_error"], "conf_low": h["conf_low"],
                "conf_high": h["conf_high"], "p_value": h["p_value"],
                "p_boot": float(rwt.loc[oc, "p_unadjusted"]), "rw_p": float(rwt.loc[oc, adjusted]),
                "untreated_mean": um, "effect_pct": h["estimate"] * scale,
                "effect_pct_low": h["conf_low"] * scale, "effect_pct_high": h["conf_high"] * scale,
                "twfe_estimate": tw["estimate"], "twfe_conf_low": tw["conf_low"], "twfe_conf_high": tw["conf_high"],
                "twfe_p_value": tw["p_value"], "twfe_pct": tw["estimate"] * scale,
                "ppml_pct": np.nan if pp is None else 100.0 * pp["estimate"],
                "ppml_pct_low": np.nan if pp is None else 100.0 * pp["conf_low"],
                "ppml_pct_high": np.nan if pp is None else 100.0 * pp["conf_high"],
                "truth": np.nan if tr is None else tr, "truth_pct": np.nan if tr is None else tr * scale,
                "n_units": int(h["n_units"]), "n_clusters": int(h["n_clusters"]),
            })
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    options = {
        "headline": {"estimator": estimator, "method": spec.METHOD if estimator == "cs" else None,
                     "aggregation": head_row,
                     "control_group": control_group, "covariates": list(covariates), "cluster": cluster,
                     "inference": next(iter(headline.values())).options.get("inference") if headline else None,
                     "anticipation": spec.anticipation if estimator == "cs" else 0},
        "twfe": {"estimator": "twfe", "specification": "static, unit and year fixed effects, no covariates",
                 "cluster": cluster},
        "ppml": {"estimator": "ppml", "outcomes": [o for o in ppml_outcomes if o in pois],
                 "specification": "Poisson extended TWFE (Wooldridge 2023), covariates as the headline",
                 "aggregation": "simple_pct"},
        "romano_wolf": ({"within": "family", "bootstrap_draws": int(bootstrap_draws), "seed": seed,
                         "draws": "joint multiplier bootstrap of the headline influence functions"}
                        if estimator == "cs" else
                        {"within": "family", "method": "holm (no influence functions for this headline estimator)"}),
        "untreated_mean": "mean outcome of never-treated villages over the post-treatment years",
        "post_treatment_years": post_treatment_years(panel),
        "pct_scale": "pct_of_untreated_mean and ppml_pct are fractions (0.05 = 5%)",
        "truth": truth is not None,
    }
    return MainEffects(table=table, headline=headline, twfe=bench, ppml=pois, romano_wolf=rw, families=fams,
                       options=options)


def payload(me: MainEffects) -> dict[str, Any]:
    """Build the ``main_effects`` section of ``results.json``.

    Parameters
    ----------
    me : MainEffects
        Output of :func:`estimate_main_effects`.

    Returns
    -------
    dict
        ``{"families", "options", "outcomes": {outcome: {"family", "unit", "headline",
        "twfe", "untreated_mean", "pct_of_untreated_mean", "romano_wolf_p", "ppml_pct",
        "truth"}}}``; ``pct_of_untreated_mean`` is a fraction (0.05 = 5%), like the
        ``ppml_pct`` record.
    """
    outcomes: dict[str, Any] = {}
    for r in me.table.itertuples(index=False):
        um = r.untreated_mean
        ok = np.isfinite(um) and um != 0
        pct = {k: (v / um if ok else None) for k, v in
               (("estimate", r.estimate), ("conf_low", r.conf_low), ("conf_high", r.conf_high))}
        outcomes[r.outcome] = {
            "family": r.family,
            "unit": r.unit,
            "headline": estimate_record(_first(me.headline[r.outcome], "simple")),
            "twfe": estimate_record(_first(me.twfe[r.outcome], "coef")),
            "untreated_mean": um,
            "pct_of_untreated_mean": pct,
            "romano_wolf_p": r.rw_p,
            "ppml_pct": (estimate_record(_first(me.ppml[r.outcome], "simple_pct"))
                         if r.outcome in me.ppml else None),
            "truth": None if pd.isna(r.truth) else float(r.truth),
        }
    return {"families": me.families, "options": me.options, "outcomes": outcomes}


def romano_wolf_table(me: MainEffects) -> pd.DataFrame:
    """Return the Romano-Wolf adjustment of every family in one frame.

    Parameters
    ----------
    me : MainEffects
        Output of :func:`estimate_main_effects`.

    Returns
    -------
    pandas.DataFrame
        Columns ``family, outcome, estimate, std_error, t_stat, p_unadjusted,
        p_romano_wolf, p_holm, p_bonferroni, stepdown_rank`` (``p_unadjusted`` is the
        bootstrap p-value; Holm and Bonferroni are applied to it within the family).
    """
    parts = []
    for fam, mt in me.romano_wolf.items():
        t = mt.table.rename(columns={"hypothesis": "outcome"})
        t.insert(0, "family", fam)
        parts.append(t)
    cols = ["family", "outcome", "estimate", "std_error", "t_stat", "p_unadjusted", "p_romano_wolf", "p_holm",
            "p_bonferroni", "stepdown_rank"]
    return pd.concat(parts, ignore_index=True)[cols]


@themed
def plot_forest(table: pd.DataFrame, lang: str = "zh"):
    """Forest plot: CS and TWFE effects as % of the untreated mean, grouped by family.

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`MainEffects.table`.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per family (own x range), two markers with 95% intervals per outcome
        (CS above, TWFE below), the truth as a black tick where known, and the CS value
        written beside its interval.
    """
    from matplotlib import pyplot as plt

    fams = list(dict.fromkeys(table["family"]))
    sizes = [int((table["family"] == f).sum()) for f in fams]
    fig, axes = plt.subplots(len(fams), 1, figsize=(10, 1.0 + 0.62 * sum(sizes) + 0.5 * len(fams)),
                             gridspec_kw={"height_ratios": sizes}, squeeze=False)
    has_truth = table["truth_pct"].notna().any()
    c_cs, c_tw = "#1f5fa8", "#d0612a"
    for ax, fam in zip(axes[:, 0], fams, strict=True):
        d = table[table["family"] == fam].reset_index(drop=True)
        y = np.arange(len(d))[::-1].astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            tw_lo = 100.0 * d["twfe_conf_low"] / d["untreated_mean"]
            tw_hi = 100.0 * d["twfe_conf_high"] / d["untreated_mean"]
        for yy, r, lo_, hi_ in zip(y, d.itertuples(index=False), tw_lo, tw_hi, strict=True):
            ax.errorbar(r.effect_pct, yy + 0.17, xerr=[[r.effect_pct - r.effect_pct_low],
                                                       [r.effect_pct_high - r.effect_pct]],
                        fmt="o", color=c_cs, ms=5, capsize=3, lw=1.4)
            ax.errorbar(r.twfe_pct, yy - 0.17, xerr=[[r.twfe_pct - lo_], [hi_ - r.twfe_pct]],
                        fmt="s", color=c_tw, ms=4.5, capsize=3, lw=1.2)
            if np.isfinite(r.truth_pct):
                ax.plot([r.truth_pct], [yy], marker="|", color="black", ms=16, mew=2, ls="none")
            if np.isfinite(r.effect_pct_high):
                ax.annotate(f"{r.effect_pct:+.1f}%", (r.effect_pct_high, yy + 0.17), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=8, color=c_cs)
        ax.axvline(0, color="0.4", lw=0.8, ls="--")
        ax.set_yticks(y)
        ax.set_yticklabels([column_label(o, lang) for o in d["outcome"]], fontsize=9)
        ax.set_ylim(-0.6, len(d) - 0.4)
        ax.set_title(t(f"family.{fam}.label", lang), loc="left", fontsize=10.5)
        both = np.r_[d["effect_pct_low"], d["effect_pct_high"], tw_lo, tw_hi, d["truth_pct"], 0.0]
        both = both[np.isfinite(both)]
        lo, hi = float(both.min()), float(both.max())
        pad = 0.12 * (hi - lo if hi > lo else 1.0)
        ax.set_xlim(lo - pad, hi + 2 * pad)
        ax.grid(axis="x", color="0.9")
        ax.tick_params(axis="x", labelsize=8)
    axes[-1, 0].set_xlabel(t("main_effects.figure.xlabel", lang))
    handles = [
        plt.Line2D([], [], color=c_cs, marker="o", ls="-", label=t("estimator.cs.forest", lang)),
        plt.Line2D([], [], color=c_tw, marker="s", ls="-", label=t("estimator.twfe.forest", lang)),
    ]
    if has_truth:
        handles.append(plt.Line2D([], [], color="black", marker="|", ms=12, mew=2, ls="none",
                                  label=t("term.truth", lang)))
    fig.suptitle(t("main_effects.figure.title", lang), fontsize=12)
    fig.legend(handles=handles, loc="lower center", ncol=1, frameon=False, fontsize=8.5,
               bbox_to_anchor=(0.5, -0.01 - 0.025 * len(handles)))
    fig.tight_layout()
    return fig


def draw_figures(table: pd.DataFrame, lang: str) -> dict[str, Any]:
    """Draw the stage's figure in one language: ``02_forest`` (:func:`plot_forest`).

    Parameters
    ----------
    table : pandas.DataFrame
        The main-effects table.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    dict
        File stem -> figure.
    """
    return {"02_forest": plot_forest(table, lang=lang)}


def _names(outcomes: Sequence[str], lang: str) -> str:
    return t("punct.enum", lang).join(column_label(o, lang) for o in outcomes)


def findings(table: pd.DataFrame, lang: str = "zh", alpha: float = ALPHA, adjustment: str = "romano_wolf") -> list[str]:
    """State, in sentences computed from the table, what the main effects show.

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`MainEffects.table`.
    lang : {"zh", "en"}
        Language.
    alpha : float, default 0.05
        Level of the family-wise tests.
    adjustment : {"romano_wolf", "holm"}, default "romano_wolf"
        The family-wise adjustment ``rw_p`` holds, named in the sentences.

    Returns
    -------
    list of str
        Per family, which effects are distinguishable from zero after the family-wise
        adjustment (``adjustment``: ``"romano_wolf"``, or ``"holm"`` for a headline estimator
        without influence functions) and which are not; how TWFE differs from the headline; and (when the truth
        is known) how often the headline interval covers it.
    """
    lines: list[str] = []
    for fam in dict.fromkeys(table["family"]):
        d = table[table["family"] == fam]
        sig = d[d["rw_p"] <= alpha]
        non = d[d["rw_p"] > alpha]
        holm = adjustment != "romano_wolf"
        effect = "main_effects.finding.effect_holm" if holm else "main_effects.finding.effect"
        parts = [t(effect, lang, name=column_label(r.outcome, lang), pct=r.effect_pct, p=r.rw_p)
                 for r in sig.itertuples()]
        key = "main_effects.finding.family_holm" if holm else "main_effects.finding.family"
        s = t(key, lang, family=t(f"family.{fam}.label", lang), k=len(sig), n=len(d), alpha=alpha)
        s += (t("punct.colon", lang) + t("punct.semicolon", lang).join(parts)) if parts else ""
        s += (t("main_effects.finding.not_distinguishable", lang, names=_names(non["outcome"], lang)) if len(non)
              else t("punct.period", lang))
        lines.append(s)
    same = np.sign(table["twfe_estimate"]) == np.sign(table["estimate"])
    smaller = same & (table["twfe_estimate"].abs() < table["estimate"].abs())
    flipped = table.loc[~same, "outcome"].tolist()
    ratio = (table["twfe_estimate"] / table["estimate"]).where(same)
    worst = table.assign(r=ratio).dropna(subset=["r"]).sort_values("r", kind="mergesort").head(2)
    s = t("main_effects.finding.twfe", lang, same=int(same.sum()), n=len(table), smaller=int(smaller.sum()))
    if len(worst):
        gaps = [t("main_effects.finding.gap", lang, name=column_label(r.outcome, lang), twfe=r.twfe_estimate,
                  cs=r.estimate, ratio=r.r) for r in worst.itertuples()]
        s += t("main_effects.finding.largest_gaps", lang, gaps=t("punct.semicolon", lang).join(gaps))
    s += (t("main_effects.finding.opposite_sign", lang, names=_names(flipped, lang)) if flipped
          else t("punct.period", lang))
    lines.append(s)
    tr = table.dropna(subset=["truth"])
    if len(tr):
        cs_cov = int(((tr["conf_low"] <= tr["truth"]) & (tr["truth"] <= tr["conf_high"])).sum())
        tw_cov = int(((tr["twfe_conf_low"] <= tr["truth"]) & (tr["truth"] <= tr["twfe_conf_high"])).sum())
        lines.append(t("main_effects.finding.truth", lang, cs=cs_cov, twfe=tw_cov, n=len(tr)))
    return lines


def run(panel: pd.DataFrame, params: Mapping[str, Any], truth: Truth | None = None) -> StageResult:
    """Estimate the main effects on every outcome family (notebook ``02_main_effects``).

    Outcomes the data do not hold (:func:`analysis.core.panel.present_columns`) are left out of
    their family, and a family with none left is skipped.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (:func:`analysis.core.panel.load_analysis_panel`). Not modified.
    params : mapping
        Validated notebook parameters; uses ``covariates``, ``control_group``, ``estimator``,
        ``cluster``, ``bootstrap_draws``, ``seed`` and ``lang``.
    truth : Truth, optional
        The synthetic city's truth, put beside the estimates when available.

    Returns
    -------
    StageResult
        Tables ``02_main_effects`` and ``02_romano_wolf``, figure ``02_forest``, the
        ``main_effects`` section.
    """
    truth = truth or Truth.unknown()
    lang = params["lang"]
    families = {f: kept for f, os_ in schema.OUTCOME_FAMILIES.items() if (kept := present_columns(panel, os_))}
    me = estimate_main_effects(panel, covariates=params["covariates"], control_group=params["control_group"],
                               estimator=params["estimator"], cluster=params["cluster"],
                               bootstrap_draws=params["bootstrap_draws"], seed=params["seed"],
                               truth=truth.aggregates, families=families)
    tables = {"02_main_effects": me.table, "02_romano_wolf": romano_wolf_table(me)}
    draw = functools.partial(draw_figures, me.table)
    figures = draw(lang)
    found = findings(me.table, lang=lang,
                     adjustment="romano_wolf" if me.options["headline"]["estimator"] == "cs" else "holm")
    if truth.aggregates is None:
        found.append(t("main_effects.finding.no_truth", lang))
    notes = [truth.status, f"post-treatment years: {post_treatment_years(panel)}"]
    return StageResult("02_main_effects", "main_effects", tables, figures, payload(me), found, notes, lang, draw)
