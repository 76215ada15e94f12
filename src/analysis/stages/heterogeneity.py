r"""Who gains most: effects by cadre type, by cohort (batch) and by baseline weakness (notebook 04).

The report sends law-enforcement cadres (公检法司) to villages with poor public order,
agriculture cadres to villages with a distinctive industry and cadres of financially
strong units to economically weak villages, in a pilot batch (cohort 2023) and a
city-wide batch (cohort 2024). This module turns those claims into estimates with the
Callaway-Sant'Anna heterogeneity estimators of :mod:`analysis.estimators.heterogeneity`
and puts them into tables, figures, sentences and the ``heterogeneity`` section of
``results.json``:

* :func:`subgroup_effects` -- the simple ATT within each level of a unit-level variable
  (``cadre_type``, or the baseline split of :func:`add_weakness`), with the Wald test
  that all levels have the same effect;
* :func:`cohort_effects` and :func:`cohort_e0_effects` -- the cohort ATTs
  :math:`\theta(g)` (mean over the cohort's post years) and, comparable across cohorts,
  the first-year effects :math:`ATT(g, g)`;
* :func:`contrast` -- one level against all other treated villages (``law`` against the
  other cadre types on cases, ``agriculture`` against the others on income): the
  difference, its standard error from the joint influence-function covariance and a
  plain statement (:func:`contrast_statement`).

:func:`run` is the stage: every dimension and contrast for the notebook's outcomes, with their
tables, figures, the ``heterogeneity`` section (:func:`payload`) and the findings (:func:`findings`).

Caveats
-------
Cadre types and batches are not randomly assigned: a difference between cadre types
mixes the effect of the cadre with that of the villages it was sent to. A cohort's
:math:`\theta(g)` averages over the exposure years the cohort is observed for (the 2024
cohort only at e = 0), so only the first-year effects compare like with like. p-values
are pointwise, not adjusted for the many comparisons made here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.core.panel import covariate_columns
from analysis.core.spec import COHORT, TIME, UNIT, cluster_column
from analysis.data import schema
from analysis.estimators.callaway_santanna import aggregate
from analysis.estimators.heterogeneity import baseline_split, by_cohort, by_group, equality_test
from analysis.i18n import column_label, lookup, t
from analysis.inference.small_sample import intervals, t_df
from analysis.report.figures import PALETTE, themed
from analysis.report.results_json import clean, estimate_record
from analysis.results import DiDResult, EqualityTest, make_tidy
from analysis.stages.base import StageResult, Truth

__all__ = [
    "CONTRASTS",
    "DIMENSIONS",
    "WEAKNESS_COLUMN",
    "add_weakness",
    "cohort_batches",
    "cohort_e0_effects",
    "cohort_effects",
    "contrast",
    "contrast_statement",
    "contrasts",
    "draw_figures",
    "findings",
    "payload",
    "plot_levels",
    "pre_treatment_means",
    "run",
    "subgroup_effects",
    "subgroup_table",
    "truth_levels",
]

WEAKNESS_COLUMN = "baseline_weakness"
"""Column added by :func:`add_weakness`: ``weak`` below the median first-year income, else ``strong``."""
WEAKNESS_VARIABLE = "income_per_capita"
WEAKNESS_LABELS = ("weak", "strong")
OTHERS = "others"
"""Level name of "all other treated villages" in a contrast."""

DIMENSIONS = ("cadre_type", "cohort", "cohort_e0", "baseline_weakness")
"""Heterogeneity dimensions, in the order of the notebook and of ``results.json``."""

CONTRASTS: tuple[tuple[str, str, str, int], ...] = (
    ("cadre_type", "law", "criminal_cases", -1),
    ("cadre_type", "law", "disputes", -1),
    ("cadre_type", "agriculture", "income_per_capita", +1),
)
"""The questions of the report as contrasts: (by, level, outcome, direction the programme hopes for).

``-1``: the level is claimed to *reduce* the outcome more than other cadres do; ``+1``: to
*raise* it more."""

_SHORT = {"cohort": "θ(g) ", "cohort_e0": "ATT(g,g) "}


# ----------------------------------------------------------------------------- estimation


def _design(panel: pd.DataFrame, covariates: Sequence[str], cluster: str) -> tuple[pd.DataFrame, list[str], str]:
    cl = cluster_column(cluster)
    data, covs = covariate_columns(panel, list(covariates))
    return data, covs, cl


def _equality(outcome: str, res: DiDResult) -> EqualityTest:
    if res.equality_test is None:
        raise ValueError(f"{outcome}: the effects by subgroup lack their test of equality")
    return res.equality_test


def _fit(fit, covs: list[str]) -> DiDResult:
    """Run ``fit(covariates)``; if the propensity score cannot be fitted, run it without covariates and say so.

    Small subgroups chosen by the same traits as the covariates (agriculture cadres go to
    villages with a distinctive industry) can leave a cohort-period cell with no
    comparable untreated villages (overlap failure), or with a covariate that does not vary
    among the subgroup's villages (a singular design). The estimate without covariates then relies on
    unconditional parallel trends; ``note`` records the switch and why.
    """
    try:
        return fit(covs or None)
    except ValueError as err:
        if not covs or not ("overlap" in str(err) or "singular" in str(err)):
            raise
        res = fit(None)
        res.note = f"without covariates (unconditional parallel trends): {err}"
        return res


def add_weakness(panel: pd.DataFrame, year: int, variable: str = WEAKNESS_VARIABLE) -> pd.DataFrame:
    """Add the column ``baseline_weakness``: ``weak`` if the village's ``variable`` in ``year`` is below the median.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    year : int
        Baseline year (the first year of the window, before any treatment).
    variable : str, default "income_per_capita"
        Baseline variable.

    Returns
    -------
    pandas.DataFrame
        A copy with :data:`WEAKNESS_COLUMN` (median over all villages observed in ``year``;
        see :func:`analysis.estimators.heterogeneity.baseline_split`).
    """
    out = panel.copy(deep=False)  # copy-on-write: one column is added
    out[WEAKNESS_COLUMN] = baseline_split(panel, variable, year, unit=UNIT, time=TIME,
                                          labels=WEAKNESS_LABELS).to_numpy()
    return out


def subgroup_effects(
    panel: pd.DataFrame,
    outcomes: Sequence[str],
    by: str,
    control_group: str = "notyet",
    covariates: Sequence[str] = (),
    cluster: str = "township",
) -> dict[str, DiDResult]:
    """Estimate the simple ATT of each level of ``by`` for every outcome, and test that all levels are equal.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (:func:`analysis.core.panel.load_analysis_panel`), with the column ``by``.
        Not modified.
    outcomes : sequence of str
        Outcomes.
    by : str
        Unit-level column (``cadre_type``, :data:`WEAKNESS_COLUMN`).
    control_group : {"notyet", "never"}
        Comparison villages (shared by all levels).
    covariates : sequence of str
        Canonical baseline covariates (doubly robust DiD).
    cluster : {"township", "county", "village"}
        Clustering level.

    Returns
    -------
    dict
        Outcome -> :class:`~analysis.results.DiDResult` of
        :func:`analysis.estimators.heterogeneity.by_group`. If a subgroup's propensity
        score fails overlap with the covariates, that outcome is estimated without them
        and ``note`` says so (empty otherwise).
    """
    data, covs, cl = _design(panel, covariates, cluster)
    return {oc: _fit(lambda c, oc=oc: by_group(data, oc, UNIT, TIME, COHORT, by=by, covariates=c,
                                               control_group=control_group, cluster=cl), covs)
            for oc in outcomes}


def cohort_effects(
    panel: pd.DataFrame,
    outcomes: Sequence[str],
    control_group: str = "notyet",
    covariates: Sequence[str] = (),
    cluster: str = "township",
) -> dict[str, DiDResult]:
    r"""Cohort ATTs :math:`\theta(g)` (mean over each cohort's post years) with the equality test.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    outcomes : sequence of str
        Outcomes.
    control_group : {"notyet", "never"}
        Comparison villages.
    covariates : sequence of str
        Canonical baseline covariates.
    cluster : {"township", "county", "village"}
        Clustering level.

    Returns
    -------
    dict
        Outcome -> result of :func:`analysis.estimators.heterogeneity.by_cohort` (its
        ``att_gt`` feeds :func:`cohort_e0_effects`); ``note`` as in
        :func:`subgroup_effects`.
    """
    data, covs, cl = _design(panel, covariates, cluster)
    return {oc: _fit(lambda c, oc=oc: by_cohort(data, oc, UNIT, TIME, COHORT, covariates=c,
                                                control_group=control_group, cluster=cl), covs)
            for oc in outcomes}


def cohort_e0_effects(cohort_results: Mapping[str, DiDResult], alpha: float = 0.05) -> dict[str, DiDResult]:
    r"""First-year effects :math:`ATT(g, g)` of every cohort, with a Wald test that they are equal.

    Cohorts observed for different numbers of post years have :math:`\theta(g)` averaged
    over different exposures; the effect in the first year of exposure is observed for
    every cohort and compares like with like. The rows are
    ``aggregate(att_gt, "group", max_e=0)`` of the cohort result's ATT(g,t); the joint
    covariance comes from the same per-unit influence functions (clustered as the
    ATT(g,t)).

    Parameters
    ----------
    cohort_results : mapping
        Outcome -> output of :func:`cohort_effects`.
    alpha : float, default 0.05
        One minus the confidence level.

    Returns
    -------
    dict
        Outcome -> :class:`~analysis.results.DiDResult` with one row per cohort
        (aggregation ``group_e0``, term ``"g=2023, e=0"``) and an ``equality_test`` row
        (``estimate`` = Wald statistic); also ``equality_test``, ``vcov``.
    """
    out = {}
    for oc, res in cohort_results.items():
        if res.att_gt is None:
            raise ValueError(f"{oc}: the cohort effects lack their ATT(g,t) result (pass by_cohort's output, "
                             "not a light copy)")
        agg = aggregate(res.att_gt, "group", max_e=0)
        t = agg.tidy()
        is_g = t["cohort"].notna().to_numpy()
        V = np.asarray(agg.vcov)[np.ix_(is_g, is_g)]
        rows = t.loc[is_g].copy()
        lo, hi, p = intervals(rows["estimate"], rows["std_error"], alpha, df=t_df(int(rows["n_clusters"].iloc[0])))
        rows["conf_low"], rows["conf_high"], rows["p_value"] = lo, hi, p
        rows["aggregation"] = "group_e0"
        rows["term"] = [f"g={int(g)}, e=0" for g in rows["cohort"]]
        rows["event_time"] = 0
        test = {**equality_test(rows["estimate"].to_numpy(float), V), "levels": [int(g) for g in rows["cohort"]]}
        first = rows.iloc[0]
        trow = {"outcome": oc, "estimator": first["estimator"], "control_group": first["control_group"],
                "aggregation": "equality_test", "term": f"H0: equal first-year effects across cohorts "
                f"(chi2, df={test['df']})", "estimate": test["statistic"], "p_value": test["p_value"],
                "band": "pointwise", "n_obs": first["n_obs"], "n_units": first["n_units"],
                "n_clusters": first["n_clusters"], "options": first["options"]}
        table = make_tidy(pd.concat([rows, make_tidy([trow])], ignore_index=True))
        labels = rows["term"].tolist()
        out[oc] = DiDResult(table, res.estimator, oc, agg.options, equality_test=EqualityTest(**test),
                            vcov=pd.DataFrame(V, index=labels, columns=labels), note=res.note)
    return out


def cohort_batches(panel: pd.DataFrame) -> dict[int, str]:
    """Batch label(s) of each cohort's villages, e.g. ``{2023: "pilot-2022", 2024: "city-2023"}``.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel with ``cohort`` and ``batch``.

    Returns
    -------
    dict
        Cohort -> batch labels joined by ``"+"`` (sorted), for treated cohorts.
    """
    v = panel.loc[panel[COHORT] > 0, [UNIT, COHORT, "batch"]].drop_duplicates(UNIT)
    return {int(g): "+".join(sorted(map(str, b.unique()))) for g, b in v.groupby(COHORT)["batch"]}


def pre_treatment_means(panel: pd.DataFrame, by: str, outcomes: Sequence[str]) -> pd.DataFrame:
    """Mean outcome of each level's treated villages in the year before their cohort, for scale.

    An effect in yuan or cases means little without the level it acts on: weak villages
    have less income, so the same proportional effect gives them fewer yuan.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel with ``by`` (use ``cohort`` for the cohort dimensions). Not modified.
    by : str
        Unit-level column.
    outcomes : sequence of str
        Outcomes.

    Returns
    -------
    pandas.DataFrame
        ``outcome, level, pre_mean`` (levels as strings; cohorts as ``"2023"``).
    """
    pre = panel[(panel[COHORT] > 0) & (panel[TIME] == panel[COHORT] - 1)]
    lev = pre[by].map(lambda v: str(int(v)) if by == COHORT else str(v))
    rows = [pd.DataFrame({"outcome": oc, "level": m.index, "pre_mean": m.to_numpy(float)})
            for oc in outcomes for m in [pre[oc].groupby(lev).mean()]]
    return pd.concat(rows, ignore_index=True)


# ----------------------------------------------------------------------------- truth


def truth_levels(truth_aggregates: pd.DataFrame | None, truth_cells: pd.DataFrame | None = None) -> pd.DataFrame:
    """Collect the true subgroup effects of the synthetic city, by dimension, outcome and level.

    Parameters
    ----------
    truth_aggregates : pandas.DataFrame or None
        :func:`analysis.data.synthetic.truth.load_truth` (rows ``cadre_type`` and ``group`` are used).
    truth_cells : pandas.DataFrame, optional
        ``truth.csv`` (:attr:`analysis.stages.base.Truth.cells`), for the first-year truths ``ATT(g, g)``
        (``cohort_e0``).

    Returns
    -------
    pandas.DataFrame
        ``dimension, outcome, level, truth`` (empty without truth). No truth exists for
        the baseline split.
    """
    parts = []
    if truth_aggregates is not None:
        ta = truth_aggregates
        c = ta[ta["aggregation"] == "cadre_type"]
        parts.append(pd.DataFrame({"dimension": "cadre_type", "outcome": c["outcome"],
                                   "level": c["cadre_type"].astype(str), "truth": c["value"].astype(float)}))
        g = ta[ta["aggregation"] == "group"]
        parts.append(pd.DataFrame({"dimension": "cohort", "outcome": g["outcome"],
                                   "level": g["cohort"].astype("int64").astype(str),
                                   "truth": g["value"].astype(float)}))
    if truth_cells is not None:
        tc = truth_cells
        e0 = tc[(tc["effect"] == "direct") & (tc["cohort"] > 0) & (tc["year"] == tc["cohort"])]
        parts.append(pd.DataFrame({"dimension": "cohort_e0", "outcome": e0["outcome"],
                                   "level": e0["cohort"].astype("int64").astype(str),
                                   "truth": e0["att"].astype(float)}))
    if not parts:
        return pd.DataFrame({"dimension": pd.Series(dtype=object), "outcome": pd.Series(dtype=object),
                             "level": pd.Series(dtype=object), "truth": pd.Series(dtype=float)})
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- tables


def _level_rows(res: DiDResult) -> pd.DataFrame:
    """Tidy rows of the levels of a heterogeneity result, with a ``level`` column."""
    t = res.tidy()
    t = t[t["aggregation"].isin(["group_by", "group", "group_e0"]) & ~t["term"].str.startswith("overall")]
    t = t[(t["aggregation"] == "group_by") | t["cohort"].notna()].copy()
    t["level"] = [str(tm).split("=", 1)[1] if a == "group_by" else str(int(g))
                  for tm, a, g in zip(t["term"], t["aggregation"], t["cohort"], strict=True)]
    return t.reset_index(drop=True)


def _level_order(dimension: str, levels: Sequence[str]) -> list[str]:
    if dimension == "cadre_type":
        rank = {c: i for i, c in enumerate(schema.UNIT_TYPES)}
    elif dimension == "baseline_weakness":
        rank = {c: i for i, c in enumerate(WEAKNESS_LABELS)}
    else:
        rank = {}
    return sorted(levels, key=lambda s: (rank.get(s, len(rank)), s))


def subgroup_table(
    results: Mapping[str, DiDResult],
    dimension: str,
    truth: pd.DataFrame | None = None,
    batches: Mapping[int, str] | None = None,
    last_year: int | None = None,
    pre_means: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per outcome and level: estimate, interval, the equality test and the truth.

    Parameters
    ----------
    results : mapping
        Outcome -> result of :func:`subgroup_effects`, :func:`cohort_effects` or
        :func:`cohort_e0_effects`.
    dimension : str
        One of :data:`DIMENSIONS` (names the rows and picks the truth).
    truth : pandas.DataFrame, optional
        :func:`truth_levels`; the ``truth`` column is empty without it.
    batches : mapping, optional
        :func:`cohort_batches`, for the ``batch`` column of cohort rows.
    last_year : int, optional
        Last year of the window, for the ``post_years`` column of cohort rows (years of
        exposure the estimate averages over; 1 for first-year effects).
    pre_means : pandas.DataFrame, optional
        :func:`pre_treatment_means` for ``pre_mean`` and ``pct_of_pre`` (the estimate in
        % of the level's pre-treatment mean).

    Returns
    -------
    pandas.DataFrame
        ``dimension, outcome, level, batch, post_years, estimate, std_error, conf_low,
        conf_high, p_value, n_units, equality_stat, equality_df, equality_p, note, pre_mean,
        pct_of_pre, truth`` (``note``: non-empty if the outcome was estimated without
        covariates, see :func:`subgroup_effects`).
    """
    frames = []
    for oc, res in results.items():
        t = _level_rows(res)
        t = t.set_index("level").loc[_level_order(dimension, t["level"].tolist())].reset_index()
        test = _equality(oc, res)
        is_cohort = dimension in ("cohort", "cohort_e0")
        post = ([1] * len(t) if dimension == "cohort_e0" else
                [last_year - int(lv) + 1 for lv in t["level"]] if is_cohort and last_year is not None
                else [pd.NA] * len(t))
        frames.append(pd.DataFrame({
            "dimension": dimension, "outcome": oc, "level": t["level"],
            "batch": [(batches or {}).get(int(lv), "") if is_cohort else "" for lv in t["level"]],
            "post_years": pd.array(post, dtype="Int64"),
            "estimate": t["estimate"], "std_error": t["std_error"], "conf_low": t["conf_low"],
            "conf_high": t["conf_high"], "p_value": t["p_value"], "n_units": t["n_units"],
            "equality_stat": float(test.statistic), "equality_df": int(test.df),
            "equality_p": float(test.p_value), "note": res.note,
        }))
    out = pd.concat(frames, ignore_index=True)
    if pre_means is not None:
        out = out.merge(pre_means, on=["outcome", "level"], how="left", validate="one_to_one")
    else:
        out["pre_mean"] = np.nan
    out["pct_of_pre"] = 100 * out["estimate"] / out["pre_mean"].where(out["pre_mean"] != 0)
    if truth is not None and not truth.empty:
        tr = truth[truth["dimension"] == dimension][["outcome", "level", "truth"]]
        out = out.merge(tr, on=["outcome", "level"], how="left", validate="one_to_one")
    else:
        out["truth"] = np.nan
    return out


# ----------------------------------------------------------------------------- contrasts


def contrast(
    panel: pd.DataFrame,
    outcome: str,
    by: str,
    level: str,
    control_group: str = "notyet",
    covariates: Sequence[str] = (),
    cluster: str = "township",
    truth_aggregates: pd.DataFrame | None = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    r"""Effect in villages of one level minus the effect in all other treated villages, with its interval.

    The treated villages are split into ``level`` and ``others`` and
    :func:`analysis.estimators.heterogeneity.by_group` estimates both simple ATTs with
    shared comparison villages. The difference
    :math:`\hat\theta_{level} - \hat\theta_{others}` has variance
    :math:`V_{11} + V_{22} - 2V_{12}` from their joint (clustered) influence-function
    covariance, so the correlation through the shared comparison villages is accounted
    for. :math:`\hat\theta_{level}` equals the level's estimate in the by-level results
    (same runs), and :math:`\theta_{others}` is the simple ATT over all other treated
    village-years.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel with column ``by``. Not modified.
    outcome : str
        Outcome.
    by : str
        Unit-level column (``cadre_type``).
    level : str
        The level compared with all others (``law``).
    control_group, covariates, cluster
        As :func:`subgroup_effects`.
    truth_aggregates : pandas.DataFrame, optional
        Synthetic truth (``by == "cadre_type"`` only): fills ``truth_level``,
        ``truth_others`` (the per-type truths weighted by their treated post-treatment
        village-years, the weights of the simple ATT) and ``truth_difference``.
    alpha : float, default 0.05
        One minus the confidence level.

    Returns
    -------
    dict
        ``by, level, outcome, estimate_level, std_error_level, estimate_others,
        std_error_others, difference, std_error, conf_low, conf_high, p_value,
        n_treated_level, n_treated_others, truth_level, truth_others, truth_difference,
        note`` (``note`` as in :func:`subgroup_effects`).

    Raises
    ------
    ValueError
        If ``level`` has no treated village, or no other level does.
    """
    treated = panel[COHORT] > 0
    lev = panel.loc[treated, by].astype(str)
    if not (lev == level).any():
        raise ValueError(f"no treated village has {by} = {level!r}; levels: {sorted(lev.unique())}")
    if (lev == level).all():
        raise ValueError(f"every treated village has {by} = {level!r}: nothing to compare with")
    col = f"{by}__{level}_vs_others"
    data = panel.copy(deep=False)
    data[col] = np.where(data[by].astype(str) == level, level, OTHERS)
    res = subgroup_effects(data, [outcome], col, control_group=control_group, covariates=covariates,
                           cluster=cluster)[outcome]
    t = res.tidy("group_by").set_index("term")
    names = [f"{col}={level}", f"{col}={OTHERS}"]
    if not isinstance(res.vcov, pd.DataFrame):
        raise RuntimeError("internal error: subgroup effects without their labelled covariance")
    V = res.vcov.loc[names, names].to_numpy()
    a = np.array([1.0, -1.0])
    est = t.loc[names, "estimate"].to_numpy(float)
    diff = float(a @ est)
    se = float(np.sqrt(a @ V @ a))
    lo, hi, p = intervals(diff, se, alpha, df=t_df(int(t["n_clusters"].iloc[0])))
    v = panel.loc[treated, [UNIT, by]].drop_duplicates(UNIT)
    out = {"by": by, "level": level, "outcome": outcome,
           "estimate_level": est[0], "std_error_level": float(np.sqrt(V[0, 0])),
           "estimate_others": est[1], "std_error_others": float(np.sqrt(V[1, 1])),
           "difference": diff, "std_error": se, "conf_low": float(lo), "conf_high": float(hi), "p_value": float(p),
           "n_treated_level": int((v[by].astype(str) == level).sum()),
           "n_treated_others": int((v[by].astype(str) != level).sum()),
           "truth_level": np.nan, "truth_others": np.nan, "truth_difference": np.nan,
           "note": res.note}
    if truth_aggregates is not None and by == "cadre_type":
        ta = truth_aggregates
        tr = ta[(ta["aggregation"] == "cadre_type") & (ta["outcome"] == outcome)].set_index("cadre_type")["value"]
        post = panel[treated & (panel[TIME] >= panel[COHORT])]
        w = post.groupby(post[by].astype(str)).size()
        others = [s for s in w.index if s != level]
        if level in tr.index and all(s in tr.index for s in others):
            out["truth_level"] = float(tr[level])
            out["truth_others"] = float(np.average(tr[others].to_numpy(float), weights=w[others].to_numpy(float)))
            out["truth_difference"] = out["truth_level"] - out["truth_others"]
    return out


def contrasts(
    panel: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    specs: Sequence[tuple[str, str, str, int]] = CONTRASTS,
    control_group: str = "notyet",
    covariates: Sequence[str] = (),
    cluster: str = "township",
    truth_aggregates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Run :func:`contrast` for each question in ``specs`` (restricted to ``outcomes`` if given).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    outcomes : sequence of str, optional
        Keep only the contrasts on these outcomes (default: all of ``specs``).
    specs : sequence of (by, level, outcome, direction)
        Default :data:`CONTRASTS`.
    control_group, covariates, cluster, truth_aggregates
        As :func:`contrast`.

    Returns
    -------
    pandas.DataFrame
        One row per contrast: the columns of :func:`contrast` and ``direction``.
    """
    rows = []
    for by, level, oc, direction in specs:
        if outcomes is not None and oc not in outcomes:
            continue
        r = contrast(panel, oc, by, level, control_group=control_group, covariates=covariates, cluster=cluster,
                     truth_aggregates=truth_aggregates)
        rows.append({**r, "direction": direction})
    cols = ["by", "level", "outcome", "direction", "estimate_level", "std_error_level", "estimate_others",
            "std_error_others", "difference", "std_error", "conf_low", "conf_high", "p_value", "n_treated_level",
            "n_treated_others", "truth_level", "truth_others", "truth_difference", "note"]
    return pd.DataFrame(rows, columns=cols)


def level_label(level: str, lang: str = "zh") -> str:
    """Label a subgroup level: a cadre type, ``weak``/``strong``, or the level itself (a cohort).

    Parameters
    ----------
    level : str
        Level as in the tables and ``results.json``.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The label.
    """
    if level in schema.UNIT_TYPES:
        return t(f"cadre.{level}.label", lang)
    if level in WEAKNESS_LABELS:
        return t(f"weakness.{level}.label", lang)
    return level


def _num(x: float) -> str:
    a = abs(x)
    return f"{x:,.0f}" if a >= 100 else f"{x:,.1f}" if a >= 10 else f"{x:.2f}" if a >= 0.1 else f"{x:.3f}"


def contrast_statement(row: Mapping[str, Any], lang: str = "zh") -> str:
    """State a contrast in one plain sentence: is the level's effect larger in the hoped-for direction.

    Parameters
    ----------
    row : mapping
        A row of :func:`contrasts`.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The sentence, with the two effects, the difference, its 95% interval and p-value
        (and the true difference when known).

    Examples
    --------
    >>> r = {"level": "law", "outcome": "criminal_cases", "direction": -1, "estimate_level": -0.2,
    ...      "estimate_others": -0.05, "difference": -0.15, "conf_low": -0.25, "conf_high": -0.05,
    ...      "p_value": 0.004, "truth_difference": float("nan")}
    >>> contrast_statement(r, "en")[:60]
    'Yes: with a Law enforcement cadre the effect on Criminal cas'
    """
    d, lo, hi, sign = row["difference"], row["conf_low"], row["conf_high"], row["direction"]
    clear = lo > 0 or hi < 0
    better = clear and np.sign(d) == sign
    worse = clear and np.sign(d) == -sign
    oc, lv = row["outcome"], row["level"]
    truth = row.get("truth_difference")
    verdict = "better" if better else "worse" if worse else "unclear"
    head = t(f"heterogeneity.finding.{verdict}", lang, level=level_label(lv, lang), outcome=column_label(oc, lang),
             verb=t("heterogeneity.finding.reduce" if sign < 0 else "heterogeneity.finding.raise", lang))
    s = t("heterogeneity.finding.contrast", lang, head=head, level=_num(row["estimate_level"]),
          others=_num(row["estimate_others"]), difference=_num(d), low=_num(lo), high=_num(hi), p=row["p_value"])
    if truth is not None and np.isfinite(truth):
        s += t("heterogeneity.finding.true_difference", lang, truth=_num(truth))
    if row.get("note"):
        s += t("heterogeneity.finding.without_covariates", lang)
    return s + t("punct.period", lang)


# ----------------------------------------------------------------------------- results.json


def payload(
    results: Mapping[str, Mapping[str, DiDResult]],
    truth: pd.DataFrame | None = None,
    contrast_table: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Build the ``heterogeneity`` section of ``results.json``.

    Parameters
    ----------
    results : mapping
        Dimension (:data:`DIMENSIONS`) -> outcome -> result.
    truth : pandas.DataFrame, optional
        :func:`truth_levels`.
    contrast_table : pandas.DataFrame, optional
        :func:`contrasts`.

    Returns
    -------
    dict
        ``{dimension: {outcome: {"levels": {level: estimate record}, "equality_p": float,
        "truth": {level: float or None}}}, "contrasts": [row, ...]}``; levels are cadre
        types, cohorts (``"2023"``) or ``weak``/``strong``. An outcome estimated without
        covariates also has ``"note"``.
    """
    out: dict[str, Any] = {}
    for dim, by_outcome in results.items():
        sec = {}
        for oc, res in by_outcome.items():
            t = _level_rows(res)
            order = _level_order(dim, t["level"].tolist())
            recs = {r["level"]: estimate_record(r.drop(labels=["level"])) for _, r in t.iterrows()}
            tr = {}
            if truth is not None and not truth.empty:
                sel = truth[(truth["dimension"] == dim) & (truth["outcome"] == oc)]
                tr = dict(zip(sel["level"], sel["truth"], strict=True))
            sec[oc] = {"levels": {lv: recs[lv] for lv in order},
                       "equality_p": _equality(oc, res).p_value,
                       "truth": {lv: tr.get(lv) for lv in order}}
            if res.note:
                sec[oc]["note"] = res.note
        out[dim] = sec
    if contrast_table is not None:
        out["contrasts"] = [clean(r) for r in contrast_table.to_dict("records")]
    return out


# ----------------------------------------------------------------------------- figures and findings


@themed
def plot_levels(table: pd.DataFrame, dimensions: Sequence[str], title: str, lang: str = "zh", ncol: int = 3):
    """One panel per outcome (a seaborn ``FacetGrid``): estimate and 95% CI of each level, true values overlaid.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :func:`subgroup_table` (one or more dimensions, e.g. ``cohort`` and
        ``cohort_e0`` side by side).
    dimensions : sequence of str
        Dimensions to draw, one series each (in this order).
    title : str
        Figure title.
    lang : {"zh", "en"}
        Label language.
    ncol : int, default 3
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    import seaborn as sns

    outcomes = list(dict.fromkeys(table["outcome"]))
    grid = sns.FacetGrid(table, col="outcome", col_order=outcomes, col_wrap=min(ncol, len(outcomes)), height=3.4,
                         aspect=4.0 / 3.4, sharex=False, sharey=False)
    width = 0.7 / max(len(dimensions), 1)
    colors = sns.color_palette(PALETTE)
    for oc, ax in grid.axes_dict.items():
        sub = table[table["outcome"] == oc]
        levels = list(dict.fromkeys(sub["level"]))
        for j, dim in enumerate(dimensions):
            d = sub[sub["dimension"] == dim].set_index("level").reindex(levels)
            x = np.arange(len(levels)) + (j - (len(dimensions) - 1) / 2) * width
            ok = d["estimate"].notna().to_numpy()
            yerr = np.vstack([d["estimate"] - d["conf_low"], d["conf_high"] - d["estimate"]])[:, ok]
            ax.errorbar(x[ok], d["estimate"].to_numpy()[ok], yerr=yerr, fmt="o", color=colors[j % len(colors)],
                        capsize=3, label=(t(f"dimension.{dim}.label", lang) if len(dimensions) > 1
                                          else t("heterogeneity.figure.estimate_ci", lang)))
            tr = d["truth"].to_numpy(float)
            if np.isfinite(tr).any():
                ax.scatter(x, tr, marker="x", color="#c0392b", s=45, zorder=3,
                           label=t("term.truth", lang) if j == 0 else None)
        ax.axhline(0, color="grey", lw=0.8)
        names = []
        paren = t("punct.paren_open", lang)
        for lv in levels:
            b = sub.loc[sub["level"] == lv, "batch"].iloc[0]
            names.append(f"{lv}\n{lookup(f'batch.{b}.label', lang, b)}" if b else
                         level_label(lv, lang).replace(paren, "\n" + paren.strip()))
        ax.set_xticks(np.arange(len(levels)), names, fontsize=8)
        p = sub.groupby("dimension", sort=False)["equality_p"].first()
        ax.set_title(column_label(oc, lang) + "\n" + "; ".join(
            f"{_SHORT.get(dim, '')}{t('heterogeneity.figure.equality_p', lang)} = {p[dim]:.3g}" for dim in dimensions
            if dim in p.index), fontsize=9)
        ax.set_ylabel(t("term.effect_per_village", lang, name=column_label(oc, lang)), fontsize=8)
        ax.set_xlabel("")
    handles, labels = grid.axes.ravel()[0].get_legend_handles_labels()
    grid.figure.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False,
                       bbox_to_anchor=(0.5, -0.02))
    grid.figure.suptitle(title)
    grid.figure.tight_layout(rect=(0, 0.05, 1, 1))
    return grid.figure


def findings(
    tables: Mapping[str, pd.DataFrame],
    contrast_table: pd.DataFrame,
    lang: str = "zh",
) -> list[str]:
    """Compute the sentences that answer the notebook's questions.

    Parameters
    ----------
    tables : mapping
        Dimension -> :func:`subgroup_table` (``cadre_type``, ``cohort``, ``cohort_e0``,
        ``baseline_weakness``; missing ones are skipped).
    contrast_table : pandas.DataFrame
        :func:`contrasts`.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    list of str
        One sentence per contrast, then per dimension and outcome.
    """
    out = [contrast_statement(r, lang) for r in contrast_table.to_dict("records")]
    out.append(t("heterogeneity.finding.percent_note", lang))
    for dim in ("cohort_e0", "cohort", "baseline_weakness", "cadre_type"):
        table = tables.get(dim)
        if table is None:
            continue
        for oc, sub in table.groupby("outcome", sort=False):
            p = float(sub["equality_p"].iloc[0])
            pct = sub["pct_of_pre"] if "pct_of_pre" in sub else pd.Series(np.nan, index=sub.index)
            parts = [f"{level_label(lv, lang) if dim in ('cadre_type', 'baseline_weakness') else lv} {_num(e)} "
                     f"[{_num(lo)}, {_num(hi)}]" + (f" ({pc:+.1f}%)" if np.isfinite(pc) else "")
                     for lv, e, lo, hi, pc in zip(sub["level"], sub["estimate"], sub["conf_low"],
                                                  sub["conf_high"], pct.to_numpy(float), strict=True)]
            caveat = ""
            if "note" in sub and sub["note"].iloc[0]:
                caveat = t("heterogeneity.finding.without_covariates", lang)
            verdict = t("heterogeneity.finding.significant" if p < 0.05 else "heterogeneity.finding.not_significant",
                        lang)
            out.append(t("heterogeneity.finding.levels", lang, outcome=column_label(oc, lang),
                         what=t(f"dimension.{dim}.finding", lang), caveat=caveat,
                         levels=t("punct.semicolon", lang).join(parts), p=p, verdict=verdict))
    return out


def draw_figures(tab_cadre: pd.DataFrame, tab_cohort: pd.DataFrame, tab_weak: pd.DataFrame,
                 lang: str) -> dict[str, Any]:
    """Draw the stage's figures in one language: effects by cadre type, by batch, by baseline weakness.

    Parameters
    ----------
    tab_cadre, tab_cohort, tab_weak : pandas.DataFrame
        The subgroup tables (:func:`subgroup_table`) of the three dimensions.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    dict
        ``04_cadre_type``, ``04_cohort``, ``04_baseline_weakness`` -> figure (:func:`plot_levels`).
    """
    return {
        "04_cadre_type": plot_levels(tab_cadre, ["cadre_type"], t("heterogeneity.figure.title_cadre_type", lang), lang),
        "04_cohort": plot_levels(tab_cohort, ["cohort", "cohort_e0"], t("heterogeneity.figure.title_cohort", lang),
                                 lang),
        "04_baseline_weakness": plot_levels(tab_weak, ["baseline_weakness"],
                                            t("heterogeneity.figure.title_baseline_weakness", lang), lang),
    }


def run(panel: pd.DataFrame, params: Mapping[str, Any], truth: Truth | None = None) -> StageResult:
    """Estimate effects by cadre type, cohort and baseline weakness, and the report's contrasts (notebook 04).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (:func:`analysis.core.panel.load_analysis_panel`). Not modified.
    params : mapping
        Validated notebook parameters; uses ``outcomes``, ``control_group``, ``covariates``,
        ``cluster``, ``first_year`` (the baseline year of the weakness split), ``last_year`` and
        ``lang``.
    truth : Truth, optional
        The synthetic city's truth (aggregates and cell truths), beside the estimates when available.

    Returns
    -------
    StageResult
        Tables ``04_cadre_type``, ``04_contrasts``, ``04_cohort``, ``04_baseline_weakness``;
        figures ``04_cadre_type``, ``04_cohort``, ``04_baseline_weakness``; the ``heterogeneity``
        section.
    """
    truth = truth or Truth.unknown()
    lang, outcomes = params["lang"], params["outcomes"]
    opts = dict(control_group=params["control_group"], covariates=params["covariates"], cluster=params["cluster"])
    levels_truth = truth_levels(truth.aggregates, truth.cells)
    batches = cohort_batches(panel)
    cadre = subgroup_effects(panel, outcomes, "cadre_type", **opts)
    tab_cadre = subgroup_table(cadre, "cadre_type", levels_truth,
                               pre_means=pre_treatment_means(panel, "cadre_type", outcomes))
    con = contrasts(panel, outcomes, truth_aggregates=truth.aggregates, **opts)
    cohort = cohort_effects(panel, outcomes, **opts)
    cohort_e0 = cohort_e0_effects(cohort)
    pre_cohort = pre_treatment_means(panel, COHORT, outcomes)
    tab_cohort = pd.concat([subgroup_table(cohort, "cohort", levels_truth, batches, params["last_year"], pre_cohort),
                            subgroup_table(cohort_e0, "cohort_e0", levels_truth, batches, params["last_year"],
                                           pre_cohort)],
                           ignore_index=True)
    panel_w = add_weakness(panel, params["first_year"])
    weak = subgroup_effects(panel_w, outcomes, WEAKNESS_COLUMN, **opts)
    tab_weak = subgroup_table(weak, "baseline_weakness", levels_truth,
                              pre_means=pre_treatment_means(panel_w, WEAKNESS_COLUMN, outcomes))
    tables = {"04_cadre_type": tab_cadre, "04_contrasts": con, "04_cohort": tab_cohort,
              "04_baseline_weakness": tab_weak}
    draw = functools.partial(draw_figures, tab_cadre, tab_cohort, tab_weak)
    figures = draw(lang)
    results = {"cadre_type": cadre, "cohort": cohort, "cohort_e0": cohort_e0, "baseline_weakness": weak}
    by_dimension = {"cadre_type": tab_cadre, "cohort": tab_cohort[tab_cohort["dimension"] == "cohort"],
                    "cohort_e0": tab_cohort[tab_cohort["dimension"] == "cohort_e0"], "baseline_weakness": tab_weak}
    found = findings(by_dimension, con, lang)
    if truth.aggregates is None:
        found.append(t("heterogeneity.finding.no_truth", lang))
    return StageResult("04_heterogeneity", "heterogeneity", tables, figures, payload(results, levels_truth, con),
                       found, notes=[truth.status, f"cohorts (batches): {batches}"], lang=lang, draw=draw)
