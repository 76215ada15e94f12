"""Who got a first secretary, and why naive comparisons mislead (notebook ``01_targeting``).

The programme sent first secretaries to weak villages on purpose (``CONTEXT.md``):
poor public order, many disputes, a weak economic base, a distinctive industry. This
module documents that selection in four steps, each a function that takes the analysis
panel (:func:`analysis.core.panel.load_analysis_panel`) and returns new frames:

1. **Baseline balance** (:func:`baseline_balance`): means of outcomes and covariates in
   the first year of the window, treated (ever treated within the window) against
   never-treated villages, overall and by cadre type, with standardised differences.
2. **Pre-period trends** (:func:`pretrend_paths`, :func:`pretrend_gaps`): mean outcome
   paths over the years before the first cohort, and the gap in average yearly change
   between treated and never-treated villages, unconditionally and given baseline
   covariates. DiD needs parallel *trends*, not equal levels: a level gap is harmless, a
   trend gap is not, unless conditioning on covariates removes it (conditional parallel
   trends, which the covariate-adjusted estimators of notebooks 02-05 rely on).
3. **Propensity of selection** (:func:`fit_propensity`, :func:`overlap_summary`): a logit
   of ever-treated on baseline covariates and baseline outcomes, and the overlap of the
   scores it implies (doubly robust DiD needs treated villages to have comparable
   untreated ones).
4. **The pilot district against the rest** (:func:`pilot_comparison`).

:func:`run` is the stage: it runs the four steps with the notebook's parameters and returns
their tables, figures, the ``targeting`` section of ``results.json`` (:func:`payload`) and the
findings in four sentences (:func:`findings`).

Definitions used throughout
---------------------------
*Treated* means ever treated within the window (``cohort > 0``); *untreated* or
*never* means ``cohort == 0``. The *baseline year* is the first year of the panel. The
*pre-period* is every panel year before the first cohort (the earliest year in which any
village is treated); in the default city that is 2018-2022, before the pilot cohort 2023.

Caveats
-------
Pre-period differences are descriptive. A village's *average yearly change* is the mean
of its first differences over consecutive pre-period years; gaps are OLS coefficients of
that change on a group indicator (one row per village), with standard errors clustered
by township (statsmodels' CR1 small-sample factor) and t(G-1) critical values, the study's
convention (:mod:`analysis.inference.small_sample`). They ignore multiple testing. The
conditional gap assumes the trend is linear in the covariates.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from analysis.core.panel import present_columns
from analysis.core.spec import (
    COHORT,
    DEFAULT_COVARIATES,
    TIME,
    UNIT,
    check_covariates,
    check_outcomes,
    cluster_column,
)
from analysis.core.treatment import pilot_counties
from analysis.data import schema
from analysis.estimators.propensity import (
    NEVER,
    PropensityModel,
    baseline_values,
    baseline_year,
    check_assignment,
    fit_propensity,
    village_covariates,
    village_groups,
)
from analysis.i18n import column_label, lookup, t
from analysis.inference.small_sample import intervals, t_df
from analysis.report.figures import PALETTE, themed
from analysis.stages.base import StageResult, Truth

PRETREND_OUTCOMES: tuple[str, ...] = ("income_per_capita", "criminal_cases", "disputes")
"""Outcomes whose pre-period trends are compared by default (the notebook's ``outcomes``)."""

CADRE_GROUPS: tuple[str, ...] = ("treated", *schema.UNIT_TYPES)
"""Groups compared with never-treated villages: all treated villages, then each cadre type."""

OVERLAP_LOW, OVERLAP_HIGH = 0.05, 0.95
"""Propensity-score bounds of the overlap statistics."""
SMALL_DIFFERENCE = 0.1
"""Conventional threshold of a negligible standardised difference (Austin 2009)."""



def group_label(group: str, lang: str = "zh") -> str:
    """Label a group of villages compared here (all treated, a cadre type, never treated, pilot, rest).

    Parameters
    ----------
    group : str
        ``"treated"``, a cadre type of :data:`analysis.data.schema.UNIT_TYPES`, ``"never"``, ``"pilot"``
        or ``"rest"``.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The label (the group's name if unknown).
    """
    if group in schema.UNIT_TYPES:
        return t(f"cadre.{group}.group", lang)
    return lookup(f"group.{group}.label", lang, group)


def variable_label(variable: str, lang: str = "zh") -> str:
    """Label a baseline variable: an outcome, a covariate or a terrain share (``terrain_hill``).

    Parameters
    ----------
    variable : str
        Variable of :func:`baseline_balance`.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The label (the name if unknown).
    """
    level = variable.removeprefix("terrain_")
    if level != variable and level in schema.TERRAIN_LEVELS:
        return t(f"covariate.terrain.levels.{level}.share", lang)
    return column_label(variable, lang)


# ----------------------------------------------------------------------------- checks and frames


def pre_period_years(panel: pd.DataFrame) -> list[int]:
    """Return the pre-period: the panel years before the first cohort.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel with ``cohort``.

    Returns
    -------
    list of int
        Sorted years before the earliest treated cohort.

    Raises
    ------
    ValueError
        If no village is treated, or fewer than two years precede the first cohort (no
        change can be computed).
    """
    check_assignment(panel)
    first = int(panel.loc[panel[COHORT] > 0, COHORT].min())
    years = sorted(int(y) for y in panel[TIME].unique() if y < first)
    if len(years) < 2:
        raise ValueError(
            f"the first cohort is {first} and the panel has {len(years)} year(s) before it: "
            "pre-period trends need at least two pre-treatment years (choose an earlier first_year)"
        )
    return years


def standardised_difference(x: Sequence[float], reference: Sequence[float]) -> float:
    """Standardised difference of means: ``(mean(x) - mean(ref)) / sqrt((var(x) + var(ref)) / 2)``.

    The pooled SD is the root of the average of the two sample variances (``ddof=1``),
    as in Austin (2009); missing values are dropped. Differences above 0.1 in absolute
    value are conventionally called imbalanced.

    Parameters
    ----------
    x, reference : array_like
        Values in the group and in the reference group.

    Returns
    -------
    float
        The standardised difference; NaN if both groups are constant.

    Examples
    --------
    >>> round(standardised_difference([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]), 3)
    1.0
    """
    a = pd.Series(x, dtype=float).dropna().to_numpy()
    b = pd.Series(reference, dtype=float).dropna().to_numpy()
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2.0)
    if pooled == 0:
        return float("nan")
    return float((a.mean() - b.mean()) / pooled)


def _balance(values: pd.DataFrame, labels: pd.Series, groups: Sequence[str], reference: str,
             members: dict[str, pd.Series]) -> pd.DataFrame:
    ref = values.loc[labels.index[labels == reference]]
    rows = []
    for g in groups:
        sub = values.loc[members[g][members[g]].index]
        for var in values.columns:
            x, r = sub[var].dropna(), ref[var].dropna()
            rows.append({
                "variable": var, "group": g, "reference": reference,
                "villages": len(x), "mean": x.mean(), "sd": x.std(),
                "villages_reference": len(r), "mean_reference": r.mean(), "sd_reference": r.std(),
                "difference": x.mean() - r.mean(), "std_diff": standardised_difference(x, r),
            })
    return pd.DataFrame(rows)


def baseline_balance(
    panel: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    covariates: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Baseline means of treated and never-treated villages, overall and by cadre type.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel.
    outcomes : sequence of str, optional
        Outcomes (default: every canonical outcome).
    covariates : sequence of str, optional
        Covariates (default: every canonical covariate); ``terrain`` becomes the shares
        ``terrain_plain``, ``terrain_hill``, ``terrain_mountain``.

    Returns
    -------
    pandas.DataFrame
        One row per variable and group (``treated`` = every ever-treated village, then
        each cadre type), all against ``reference = "never"``: ``villages, mean, sd,
        villages_reference, mean_reference, sd_reference, difference, std_diff``
        (:func:`standardised_difference`). Values are those of the baseline year.

    Raises
    ------
    ValueError
        For an unknown outcome or covariate.
    """
    outcomes = check_outcomes(panel, schema.OUTCOMES if outcomes is None else outcomes)
    covariates = check_covariates(schema.COVARIATES if covariates is None else covariates)
    v = village_groups(panel).set_index(UNIT)
    values = baseline_values(panel, [*outcomes, *covariates]).reindex(v.index)
    members = {"treated": v["ever_treated"] == 1, **{g: v["group"] == g for g in schema.UNIT_TYPES}}
    groups = [g for g in CADRE_GROUPS if members[g].any()]
    return _balance(values, v["group"], groups, NEVER, members)


def std_diff_matrix(balance: pd.DataFrame) -> pd.DataFrame:
    """Reshape a balance table to one row per variable and one std-difference column per group.

    Parameters
    ----------
    balance : pandas.DataFrame
        Output of :func:`baseline_balance`.

    Returns
    -------
    pandas.DataFrame
        ``variable, mean_never, mean_treated`` and ``std_diff_<group>`` for each group,
        variables in the order of the balance table.
    """
    order = list(dict.fromkeys(balance["variable"]))
    groups = list(dict.fromkeys(balance["group"]))
    b = balance.set_index(["variable", "group"])
    out = pd.DataFrame({"variable": order})
    out["mean_never"] = [b.loc[(v, groups[0]), "mean_reference"] for v in order]
    out["mean_treated"] = [b.loc[(v, groups[0]), "mean"] for v in order]
    for g in groups:
        out[f"std_diff_{g}"] = [b.loc[(v, g), "std_diff"] for v in order]
    return out


# ----------------------------------------------------------------------------- pre-period trends


def pretrend_paths(panel: pd.DataFrame, outcomes: Sequence[str] = PRETREND_OUTCOMES, by: str = "cadre_type"
                   ) -> pd.DataFrame:
    """Mean outcome by pre-period year and group, and its index (first pre-period year = 100).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel.
    outcomes : sequence of str, default income, criminal cases, disputes
        Outcomes.
    by : {"cadre_type", "pilot"}
        ``cadre_type``: groups ``never``, ``treated`` and each cadre type; ``pilot``:
        ``pilot`` and ``rest`` (:func:`analysis.core.treatment.pilot_counties`).

    Returns
    -------
    pandas.DataFrame
        ``outcome, group, year, villages, mean, index``.

    Raises
    ------
    ValueError
        For an unknown outcome or grouping, or a pre-period shorter than two years.
    """
    outcomes = check_outcomes(panel, outcomes)
    years = pre_period_years(panel)
    v = village_groups(panel).set_index(UNIT)
    members = _members(v, by)
    pre = panel.loc[panel[TIME].isin(years), [UNIT, TIME, *outcomes]]
    rows = []
    for o in outcomes:
        for g, m in members.items():
            d = pre[pre[UNIT].isin(m[m].index)]
            agg = d.groupby(TIME)[o].agg(["count", "mean"]).reindex(years)
            base = agg["mean"].iloc[0]
            for y, r in agg.iterrows():
                rows.append({"outcome": o, "group": g, "year": int(y), "villages": int(r["count"]),
                             "mean": float(r["mean"]), "index": float(100.0 * r["mean"] / base) if base else np.nan})
    return pd.DataFrame(rows)


def pretrend_index(paths: pd.DataFrame) -> pd.DataFrame:
    """Reshape pre-period paths to one row per outcome and year, one index column per group.

    Parameters
    ----------
    paths : pandas.DataFrame
        Output of :func:`pretrend_paths`.

    Returns
    -------
    pandas.DataFrame
        ``outcome, year`` and the ``index`` (first pre-period year = 100) of each group.
    """
    table = paths.pivot_table(index=["outcome", "year"], columns="group", values="index", sort=False)
    return table.reset_index()


def _members(v: pd.DataFrame, by: str) -> dict[str, pd.Series]:
    if by == "cadre_type":
        out = {NEVER: v["group"] == NEVER, "treated": v["ever_treated"] == 1}
        out.update({g: v["group"] == g for g in schema.UNIT_TYPES if (v["group"] == g).any()})
        return out
    if by == "pilot":
        return {"pilot": v["pilot"] == 1, "rest": v["pilot"] == 0}
    raise ValueError(f"by must be 'cadre_type' or 'pilot', got {by!r}")


def village_changes(panel: pd.DataFrame, outcomes: Sequence[str] = PRETREND_OUTCOMES) -> pd.DataFrame:
    """Each village's average yearly change of each outcome over the pre-period.

    The average of the village's first differences between consecutive pre-period years
    (``y_t - y_{t-1}``); with a complete panel it equals ``(y_last - y_first) / (T - 1)``.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel.
    outcomes : sequence of str
        Outcomes.

    Returns
    -------
    pandas.DataFrame
        One row per village (index ``village_code``), one column per outcome (NaN if the
        village has no pair of consecutive pre-period years with the outcome observed).
    """
    outcomes = check_outcomes(panel, outcomes)
    years = pre_period_years(panel)
    pre = panel.loc[panel[TIME].isin(years), [UNIT, TIME, *outcomes]].sort_values([UNIT, TIME], kind="mergesort")
    consecutive = (pre[UNIT] == pre[UNIT].shift()).to_numpy() & (pre[TIME].diff() == 1).to_numpy()
    diff = pre[outcomes].astype(float).diff()
    diff[~consecutive] = np.nan
    diff[UNIT] = pre[UNIT].to_numpy()
    return diff.groupby(UNIT, sort=True)[outcomes].mean()


def _ols_gap(y: np.ndarray, d: np.ndarray, x: np.ndarray | None, clusters: np.ndarray) -> dict:
    """OLS of y on [1, d, x]; the coefficient on d with township-clustered inference."""
    cols = [np.ones(len(y)), d] + ([] if x is None else [x[:, j] for j in range(x.shape[1])])
    X = np.column_stack(cols)
    groups = pd.factorize(clusters)[0]
    fit = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": groups})
    est, se = float(fit.params[1]), float(fit.bse[1])
    n_clusters = int(groups.max() + 1)
    lo, hi, p = intervals(est, se, df=t_df(n_clusters))
    return {"estimate": est, "std_error": se, "conf_low": float(lo), "conf_high": float(hi),
            "p_value": float(p) if se > 0 else np.nan, "n_units": len(y), "n_clusters": n_clusters}


def _gaps(changes: pd.DataFrame, v: pd.DataFrame, members: dict[str, pd.Series], reference: str,
          covs: pd.DataFrame, cov_names: list[str], cluster_col: str) -> pd.DataFrame:
    rows = []
    ref = members[reference]
    for o in changes.columns:
        for g, m in members.items():
            if g == reference:
                continue
            keep = (m | ref) & changes[o].notna() & covs[cov_names].notna().all(axis=1)
            y = changes.loc[keep, o].to_numpy(float)
            d = m[keep].to_numpy(float)
            cl = v.loc[keep, cluster_col].to_numpy()
            base = {"outcome": o, "group": g, "reference": reference,
                    "mean_change": float(y[d == 1].mean()), "mean_change_reference": float(y[d == 0].mean())}
            for kind, x in (("unconditional", None), ("conditional", covs.loc[keep, cov_names].to_numpy(float))):
                if kind == "conditional" and not cov_names:
                    continue
                rows.append({**base, "comparison": kind, **_ols_gap(y, d, x, cl)})
    return pd.DataFrame(rows)


def pretrend_gaps(
    panel: pd.DataFrame,
    outcomes: Sequence[str] = PRETREND_OUTCOMES,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    cluster: str = "township",
    by: str = "cadre_type",
) -> pd.DataFrame:
    """Gap in average yearly pre-period change between groups, unconditional and given covariates.

    For each outcome and group, the OLS regression (one row per village, the group's
    villages and the reference villages)::

        change_i = a + gap * D_i [+ X_i' b] + e_i

    where ``change_i`` is the village's average yearly change (:func:`village_changes`),
    ``D_i`` the group indicator and ``X_i`` the baseline covariates
    (:func:`analysis.core.panel.covariate_columns`). ``gap`` without ``X`` is the raw
    difference of mean changes: a test of unconditional parallel pre-trends. With ``X``
    it asks whether villages with the same covariates trended alike (conditional
    parallel trends, assuming the trend is linear in ``X``).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel.
    outcomes : sequence of str, default income, criminal cases, disputes
        Outcomes.
    covariates : sequence of str, default distance, terrain, industry
        Canonical covariates for the conditional gap (empty: unconditional only).
    cluster : {"township", "county", "village"}, default "township"
        Clustering level of the standard errors.
    by : {"cadre_type", "pilot"}
        ``cadre_type``: ``treated`` and each cadre type against ``never``; ``pilot``:
        ``pilot`` against ``rest``.

    Returns
    -------
    pandas.DataFrame
        ``outcome, group, reference, mean_change, mean_change_reference, comparison``
        (``unconditional`` / ``conditional``), ``estimate, std_error, conf_low,
        conf_high, p_value, n_units, n_clusters``.

    Raises
    ------
    ValueError
        For an unknown outcome, covariate, grouping or cluster level.
    """
    outcomes = check_outcomes(panel, outcomes)
    covariates = check_covariates(covariates)
    cluster_col = cluster_column(cluster)
    v = village_groups(panel).set_index(UNIT)
    members = _members(v, by)
    reference = NEVER if by == "cadre_type" else "rest"
    changes = village_changes(panel, outcomes).reindex(v.index)
    pre = panel[panel[TIME].isin(pre_period_years(panel))]
    covs, names = village_covariates(pre, covariates, v.index)
    return _gaps(changes, v, members, reference, covs, names, cluster_col)


# ----------------------------------------------------------------------------- propensity


def overlap_summary(scores: pd.DataFrame, low: float = OVERLAP_LOW, high: float = OVERLAP_HIGH) -> pd.DataFrame:
    """Distribution of propensity scores by group and the share near 0 and 1.

    Parameters
    ----------
    scores : pandas.DataFrame
        ``PropensityModel.scores`` (``ever_treated``, ``pscore``).
    low, high : float, default 0.05, 0.95
        Bounds: a treated village with a score above ``high`` has few comparable
        untreated villages, an untreated one below ``low`` few comparable treated ones.

    Returns
    -------
    pandas.DataFrame
        One row per group (``treated``, ``never``): ``villages, min, p05, median, p95,
        max, share_below_low, share_above_high, share_outside_support`` (treated: above
        the untreated maximum; never: below the treated minimum).
    """
    p, d = scores["pscore"].to_numpy(float), scores["ever_treated"].to_numpy() == 1
    rows = []
    for g, m, outside in (("treated", d, p[d] > p[~d].max()), (NEVER, ~d, p[~d] < p[d].min())):
        x = p[m]
        rows.append({"group": g, "villages": int(m.sum()), "min": x.min(), "p05": np.quantile(x, 0.05),
                     "median": np.median(x), "p95": np.quantile(x, 0.95), "max": x.max(),
                     "share_below_low": float((x < low).mean()), "share_above_high": float((x > high).mean()),
                     "share_outside_support": float(outside.mean()), "low": low, "high": high})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- pilot district


def pilot_summary(panel: pd.DataFrame) -> pd.DataFrame:
    """Villages, treated share and cohorts of the pilot counties and of the rest.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel.

    Returns
    -------
    pandas.DataFrame
        One row per region (``pilot``, ``rest``): ``counties, villages, treated,
        share_treated`` and one ``cohort_<g>`` count per treated cohort.
    """
    v = village_groups(panel)
    cohorts = sorted(int(g) for g in v.loc[v[COHORT] > 0, COHORT].unique())
    rows = []
    for region, m in (("pilot", v["pilot"] == 1), ("rest", v["pilot"] == 0)):
        s = v[m]
        row = {"region": region, "counties": int(s["county_code"].nunique()), "villages": len(s),
               "treated": int(s["ever_treated"].sum()), "share_treated": float(s["ever_treated"].mean())}
        row.update({f"cohort_{g}": int((s[COHORT] == g).sum()) for g in cohorts})
        rows.append(row)
    return pd.DataFrame(rows)


def pilot_comparison(
    panel: pd.DataFrame,
    outcomes: Sequence[str] = PRETREND_OUTCOMES,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    cluster: str = "township",
) -> dict:
    """Compare the pilot district with the other districts: levels, treated share, pre-trends.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel.
    outcomes : sequence of str
        Outcomes of the pre-trend comparison (the baseline table uses every outcome).
    covariates : sequence of str
        Covariates of the conditional pre-trend gap.
    cluster : {"township", "county", "village"}
        Clustering level.

    Returns
    -------
    dict
        ``counties`` (list of the pilot county codes, :func:`analysis.core.treatment.pilot_counties`),
        ``summary`` (:func:`pilot_summary`), ``balance`` (every outcome and covariate
        at baseline, all villages of the pilot counties against all of the rest),
        ``paths`` (:func:`pretrend_paths` with ``by="pilot"``) and ``gaps``
        (:func:`pretrend_gaps` with ``by="pilot"``).
    """
    outcomes = check_outcomes(panel, outcomes)
    v = village_groups(panel).set_index(UNIT)
    values = baseline_values(panel, present_columns(panel, [*schema.OUTCOMES, *schema.COVARIATES])).reindex(v.index)
    members = _members(v, "pilot")
    region = pd.Series(np.where(v["pilot"] == 1, "pilot", "rest"), index=v.index)
    balance = _balance(values, region, ["pilot"], "rest", members)
    return {
        "counties": pilot_counties(panel),
        "summary": pilot_summary(panel),
        "balance": balance,
        "paths": pretrend_paths(panel, outcomes, by="pilot"),
        "gaps": pretrend_gaps(panel, outcomes, covariates, cluster, by="pilot"),
    }


# ----------------------------------------------------------------------------- figures


@themed
def plot_balance(balance: pd.DataFrame, year: int, lang: str = "zh"):
    """Dot plot of standardised differences from the reference group, by group (seaborn ``stripplot``).

    Parameters
    ----------
    balance : pandas.DataFrame
        Output of :func:`baseline_balance` (or the ``balance`` of :func:`pilot_comparison`).
    year : int
        Baseline year (for the title).
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    matplotlib.figure.Figure
        One row per variable, one dot per group (the first group, all treated villages, in black);
        a solid line at 0 and dashed lines at +-0.1.
    """
    import seaborn as sns
    from matplotlib import pyplot as plt

    variables = list(dict.fromkeys(balance["variable"]))
    groups = list(dict.fromkeys(balance["group"]))
    frame = pd.DataFrame({"std_diff": balance["std_diff"].to_numpy(float),
                          "variable": [variable_label(v, lang) for v in balance["variable"]],
                          "group": [group_label(g, lang) for g in balance["group"]]})
    names = [group_label(g, lang) for g in groups]
    palette = dict(zip(names, ["black", *sns.color_palette(PALETTE, len(names) - 1)], strict=True))
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(variables) + 1.6))
    sns.stripplot(frame, x="std_diff", y="variable", hue="group", order=[variable_label(v, lang) for v in variables],
                  hue_order=names, palette=palette, dodge=len(names) > 1, jitter=False, size=5, ax=ax, zorder=3)
    ax.axvline(0, color="grey", lw=0.8)
    for x in (-SMALL_DIFFERENCE, SMALL_DIFFERENCE):
        ax.axvline(x, color="grey", lw=0.8, ls="--")
    ax.tick_params(axis="y", labelsize=8)
    ax.set_ylabel(t("targeting.figure.variable", lang))
    ref = balance["reference"].iloc[0]
    ax.set_xlabel(t("targeting.figure.std_diff_reference", lang, reference=group_label(ref, lang)))
    title = "targeting.figure.balance_title" if ref == NEVER else "targeting.figure.pilot_balance_title"
    ax.set_title(t(title, lang, year=year))
    ax.legend(frameon=False, fontsize=8, loc="best", title=None)
    fig.tight_layout()
    return fig


@themed
def plot_pretrend_paths(paths: pd.DataFrame, groups: Sequence[str] = (NEVER, "treated"), lang: str = "zh"):
    """Pre-period mean paths indexed to the first pre-period year, one panel per outcome (seaborn ``relplot``).

    Parameters
    ----------
    paths : pandas.DataFrame
        Output of :func:`pretrend_paths`.
    groups : sequence of str, default ("never", "treated")
        Groups drawn.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    matplotlib.figure.Figure
        The figure: never-treated (or the other districts) grey and dashed, treated villages (or the
        pilot district) solid, the index 100 marked.
    """
    import seaborn as sns

    outcomes = list(dict.fromkeys(paths["outcome"]))
    first = int(paths["year"].min())
    styles = {NEVER: ("grey", (4, 2)), "rest": ("grey", (4, 2)), "treated": ("black", ""), "pilot": ("#c44e52", "")}
    extra = iter(sns.color_palette(PALETTE))
    names = {g: group_label(g, lang) for g in groups}
    palette = {names[g]: styles[g][0] if g in styles else next(extra) for g in groups}
    dashes = {names[g]: styles[g][1] if g in styles else (1, 1) for g in groups}
    data = paths[paths["group"].isin(list(groups))].assign(
        group=lambda d: d["group"].map(names), outcome=lambda d: d["outcome"].map(lambda o: column_label(o, lang)))
    grid = sns.relplot(data, x="year", y="index", hue="group", style="group", hue_order=list(names.values()),
                       palette=palette, dashes=dashes, markers=["o"] * len(groups), kind="line", col="outcome",
                       col_order=[column_label(o, lang) for o in outcomes], height=3.4, aspect=3.6 / 3.4,
                       facet_kws={"sharey": False}, markersize=4)
    for ax in grid.axes.ravel():
        ax.axhline(100, color="grey", lw=0.6)
        ax.set_xticks(sorted(data["year"].unique()))
        ax.tick_params(labelsize=7)
    grid.set_titles("{col_name}", size=9)
    grid.set_axis_labels(t("term.year", lang), t("targeting.figure.index", lang, year=first))
    sns.move_legend(grid, "lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(groups), title=None, frameon=False)
    who = t("punct.versus", lang).join(names.values())
    grid.figure.suptitle(t("targeting.figure.paths_title", lang, year=first) + t("punct.colon", lang) + who)
    grid.figure.tight_layout(rect=(0, 0.08, 1, 1))
    return grid.figure


@themed
def plot_propensity(scores: pd.DataFrame, lang: str = "zh", bins: int = 40):
    """Densities of the propensity scores of treated and never-treated villages (seaborn ``histplot``).

    Parameters
    ----------
    scores : pandas.DataFrame
        ``PropensityModel.scores``.
    lang : {"zh", "en"}
        Label language.
    bins : int, default 40
        Bins on [0, 1].

    Returns
    -------
    matplotlib.figure.Figure
        The figure (each group's histogram normalised on its own), with dashed lines at 0.05 and 0.95.
    """
    import seaborn as sns
    from matplotlib import pyplot as plt

    treated = scores["ever_treated"].to_numpy() == 1
    names = {g: f"{group_label(g, lang)} (n={int(m.sum())})" for g, m in (("treated", treated), (NEVER, ~treated))}
    frame = pd.DataFrame({"pscore": scores["pscore"].to_numpy(float),
                          "group": np.where(treated, names["treated"], names[NEVER])})
    fig, ax = plt.subplots(figsize=(7, 3.8))
    sns.histplot(frame, x="pscore", hue="group", hue_order=[names["treated"], names[NEVER]],
                 palette=["#c44e52", "#4c72b0"], bins=np.linspace(0, 1, bins + 1), stat="density", common_norm=False,
                 element="step", alpha=0.45, ax=ax)
    for x in (OVERLAP_LOW, OVERLAP_HIGH):
        ax.axvline(x, color="grey", ls="--", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_xlabel(t("targeting.figure.pscore", lang))
    ax.set_ylabel(t("targeting.figure.density", lang))
    ax.set_title(t("targeting.figure.pscore_title", lang))
    sns.move_legend(ax, "upper center", frameon=False, fontsize=8, title=None)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- results and findings


def _record(row: pd.Series, covariates: Sequence[str], cluster: str) -> dict:
    keys = ("estimate", "std_error", "conf_low", "conf_high", "p_value", "n_units", "n_clusters")
    out = {k: row[k] for k in keys}
    out.update({"term": f"{row['group']} - {row['reference']}", "estimator": "ols_change",
                "options": {"covariates": list(covariates) if row["comparison"] == "conditional" else [],
                            "cluster": cluster, "unit": "village average yearly pre-period change"}})
    return out


def payload(
    balance: pd.DataFrame,
    gaps: pd.DataFrame,
    propensity: PropensityModel,
    overlap: pd.DataFrame,
    pilot: dict[str, pd.DataFrame],
    *,
    baseline: int,
    pre_years: Sequence[int],
    covariates: Sequence[str],
    cluster: str,
) -> dict:
    """Collect the key numbers for the ``targeting`` section of ``results.json``.

    Parameters
    ----------
    balance : pandas.DataFrame
        :func:`baseline_balance`.
    gaps : pandas.DataFrame
        :func:`pretrend_gaps` (``by="cadre_type"``).
    propensity : PropensityModel
        :func:`fit_propensity`.
    overlap : pandas.DataFrame
        :func:`overlap_summary`.
    pilot : dict
        :func:`pilot_comparison`.
    baseline : int
        Baseline year.
    pre_years : sequence of int
        Pre-period years.
    covariates : sequence of str
        Covariates of the conditional gaps and the propensity model.
    cluster : str
        Clustering level.

    Returns
    -------
    dict
        ``options``, ``baseline_means`` and ``std_diff`` (income, disputes, criminal
        cases; every group), ``pretrend_gap`` (outcome -> unconditional / conditional
        records for all treated villages, plus ``mean_change_treated`` and
        ``mean_change_never``), ``overlap`` and ``pilot``.
    """
    key_vars = [v for v in ("income_per_capita", "disputes", "criminal_cases") if v in set(balance["variable"])]
    b = balance.set_index(["variable", "group"])
    groups = list(dict.fromkeys(balance["group"]))
    std_diff = {v: {g: b.loc[(v, g), "std_diff"] for g in groups} for v in key_vars}
    means = {v: {"treated": b.loc[(v, "treated"), "mean"], NEVER: b.loc[(v, "treated"), "mean_reference"]}
             for v in key_vars}
    pre = {}
    for o, s in gaps[gaps["group"] == "treated"].groupby("outcome", sort=False):
        rec = {r["comparison"]: _record(r, covariates, cluster) for _, r in s.iterrows()}
        rec["mean_change_treated"] = s["mean_change"].iloc[0]
        rec["mean_change_never"] = s["mean_change_reference"].iloc[0]
        pre[o] = rec
    ov = overlap.set_index("group")
    overlap_out = {
        "share_treated_above_high": ov.loc["treated", "share_above_high"],
        "share_never_below_low": ov.loc[NEVER, "share_below_low"],
        "share_treated_outside_support": ov.loc["treated", "share_outside_support"],
        "share_never_outside_support": ov.loc[NEVER, "share_outside_support"],
        "low": OVERLAP_LOW, "high": OVERLAP_HIGH,
        "by_group": {g: {k: ov.loc[g, k] for k in ("villages", "min", "median", "max")} for g in ov.index},
        "n_obs": propensity.n_obs, "pseudo_r2": propensity.pseudo_r2, "terms": propensity.terms,
    }
    ps = pilot["summary"].set_index("region")
    pb = pilot["balance"].set_index("variable")
    pilot_gaps = {}
    for o, s in pilot["gaps"].groupby("outcome", sort=False):
        pilot_gaps[o] = {r["comparison"]: _record(r, covariates, cluster) for _, r in s.iterrows()}
    pilot_out = {
        "counties": list(pilot["counties"]),
        "villages": {r: ps.loc[r, "villages"] for r in ps.index},
        "share_treated": {r: ps.loc[r, "share_treated"] for r in ps.index},
        "std_diff": {v: pb.loc[v, "std_diff"] for v in key_vars if v in pb.index},
        "pretrend_gap": pilot_gaps,
    }
    return {
        "options": {"baseline_year": baseline, "pre_years": list(pre_years), "covariates": list(covariates),
                    "cluster": cluster, "reference_group": NEVER, "std_diff": "difference / sqrt((var1 + var0) / 2)"},
        "baseline_means": means,
        "std_diff": std_diff,
        "pretrend_gap": pre,
        "overlap": overlap_out,
        "pilot": pilot_out,
    }


def _short(name: str, lang: str) -> str:
    """Name of a variable inside the findings sentences (figures use the full labels)."""
    return lookup(f"outcome.{name}.short", lang, lookup(f"covariate.{name}.short", lang, variable_label(name, lang)))


def _fmt(x: float, outcome: str, signed: bool = False) -> str:
    digits = 0 if outcome in ("income_per_capita", "collective_income", "funds_attracted") else 3
    return f"{x:{'+' if signed else ''},.{digits}f}"


def findings(summary: dict, lang: str = "zh") -> list[str]:
    """State the targeting findings in four sentences, computed from :func:`payload`.

    Parameters
    ----------
    summary : dict
        Output of :func:`payload`.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    list of str
        Baseline levels, pre-trends, overlap and the pilot district, one sentence each.
    """
    opt = summary["options"]
    year, pre = opt["baseline_year"], opt["pre_years"]
    means, sd = summary["baseline_means"], summary["std_diff"]
    # 1. Baseline levels.
    parts = [t("targeting.finding.baseline_part", lang, name=_short(v, lang), treated=_fmt(means[v]["treated"], v),
               never=_fmt(means[v][NEVER], v), std_diff=sd[v]["treated"]) for v in means]
    inc = means.get("income_per_capita")
    dis = means.get("disputes")
    traits = []
    if inc is not None:
        traits.append(t("targeting.finding.poorer" if inc["treated"] < inc[NEVER] else "targeting.finding.richer",
                        lang))
    if dis is not None:
        traits.append(t("targeting.finding.more_disputes" if dis["treated"] > dis[NEVER]
                        else "targeting.finding.fewer_disputes", lang))
    s1 = t("targeting.finding.baseline", lang, year=year, traits=t("punct.pair", lang).join(traits),
           parts=t("punct.semicolon", lang).join(parts))
    # 2. Pre-trends.
    covs = t("punct.enum", lang).join(_short(c, lang) for c in opt["covariates"])
    parts = []
    for o, rec in summary["pretrend_gap"].items():
        u, c = rec["unconditional"], rec.get("conditional")
        p = t("targeting.finding.gap_unconditional", lang, name=_short(o, lang), estimate=_fmt(u["estimate"], o, True),
              se=_fmt(u["std_error"], o))
        if c:
            p += t("targeting.finding.gap_conditional", lang, estimate=_fmt(c["estimate"], o, True),
                   se=_fmt(c["std_error"], o))
        parts.append(p)
    s2 = t("targeting.finding.pretrends", lang, first=pre[0], last=pre[-1],
           parts=t("punct.semicolon", lang).join(parts), covariates=covs)
    # 3. Overlap.
    ov = summary["overlap"]
    bt, bn = ov["by_group"]["treated"], ov["by_group"][NEVER]
    s3 = t("targeting.finding.overlap", lang, treated_min=bt["min"], treated_max=bt["max"], never_min=bn["min"],
           never_max=bn["max"], above=ov["share_treated_above_high"], high=ov["high"],
           below=ov["share_never_below_low"], low=ov["low"])
    # 4. Pilot.
    pl = summary["pilot"]
    st = pl["share_treated"]
    extra = ""
    g = pl["pretrend_gap"].get("income_per_capita", {}).get("unconditional")
    d_inc = pl["std_diff"].get("income_per_capita")
    if d_inc is not None:
        extra += t("targeting.finding.pilot_std_diff", lang, std_diff=d_inc)
    if g:
        extra += t("targeting.finding.pilot_gap", lang, estimate=_fmt(g["estimate"], "income_per_capita", True),
                   se=g["std_error"])
    s4 = t("targeting.finding.pilot", lang, counties=t("punct.enum", lang).join(pl["counties"]), pilot=st["pilot"],
           rest=st["rest"], extra=extra)
    return [s1, s2, s3, s4]


def draw_figures(balance: pd.DataFrame, base_year: int, paths_pre: pd.DataFrame, scores: pd.DataFrame,
                 pilot_paths: pd.DataFrame, lang: str) -> dict[str, Any]:
    """Draw the stage's figures in one language.

    Parameters
    ----------
    balance : pandas.DataFrame
        Baseline balance (:func:`baseline_balance`).
    base_year : int
        Baseline year.
    paths_pre : pandas.DataFrame
        Pre-treatment paths (:func:`pretrend_paths`).
    scores : pandas.DataFrame
        Propensity scores (:func:`fit_propensity`).
    pilot_paths : pandas.DataFrame
        Pre-treatment paths of the pilot counties against the rest (:func:`pilot_comparison`).
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    dict
        ``01_baseline_std_diff``, ``01_pretrend_paths``, ``01_propensity_overlap``,
        ``01_pilot_pretrend_paths`` -> figure.
    """
    return {
        "01_baseline_std_diff": plot_balance(balance, base_year, lang=lang),
        "01_pretrend_paths": plot_pretrend_paths(paths_pre, lang=lang),
        "01_propensity_overlap": plot_propensity(scores, lang=lang),
        "01_pilot_pretrend_paths": plot_pretrend_paths(pilot_paths, groups=("rest", "pilot"), lang=lang),
    }


def run(panel: pd.DataFrame, params: Mapping[str, Any], truth: Truth | None = None) -> StageResult:
    """Describe who got a first secretary and why naive comparisons mislead (notebook ``01_targeting``).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (:func:`analysis.core.panel.load_analysis_panel`). Not modified.
    params : mapping
        Validated notebook parameters; uses ``outcomes``, ``covariates``, ``cluster`` and ``lang``.
    truth : Truth, optional
        Not used (selection is described from the data alone).

    Returns
    -------
    StageResult
        Tables ``01_baseline_balance``, ``01_baseline_std_diff``, ``01_pretrend_paths``,
        ``01_pretrend_index``, ``01_pretrend_gaps``, ``01_propensity_logit``,
        ``01_propensity_overlap``, ``01_pilot_summary``, ``01_pilot_balance``, ``01_pilot_paths``,
        ``01_pilot_gaps``; figures ``01_baseline_std_diff``, ``01_pretrend_paths``,
        ``01_propensity_overlap``, ``01_pilot_pretrend_paths``; the ``targeting`` section.
    """
    outcomes, covariates, cluster, lang = params["outcomes"], params["covariates"], params["cluster"], params["lang"]
    base_year, pre_years = baseline_year(panel), pre_period_years(panel)
    balance = baseline_balance(panel, present_columns(panel, schema.OUTCOMES),
                               present_columns(panel, schema.COVARIATES))
    paths_pre = pretrend_paths(panel, outcomes)
    gaps = pretrend_gaps(panel, outcomes, covariates, cluster=cluster)
    ps = fit_propensity(panel, covariates)
    overlap = overlap_summary(ps.scores)
    pilot = pilot_comparison(panel, outcomes, covariates, cluster=cluster)
    summary = payload(balance, gaps, ps, overlap, pilot, baseline=base_year, pre_years=pre_years,
                      covariates=covariates, cluster=cluster)
    tables = {
        "01_baseline_balance": balance,
        "01_baseline_std_diff": std_diff_matrix(balance),
        "01_pretrend_paths": paths_pre,
        "01_pretrend_index": pretrend_index(paths_pre),
        "01_pretrend_gaps": gaps,
        "01_propensity_logit": ps.coefficients,
        "01_propensity_overlap": overlap,
        **{f"01_pilot_{name}": pilot[name] for name in ("summary", "balance", "paths", "gaps")},
    }
    draw = functools.partial(draw_figures, balance, base_year, paths_pre, ps.scores, pilot["paths"])
    figures = draw(lang)
    notes = [f"baseline year {base_year}; pre-period {pre_years[0]}-{pre_years[-1]}; "
             f"pilot counties {pilot['counties']}",
             f"propensity model: villages {ps.n_obs}, McFadden pseudo R2 {ps.pseudo_r2:.3f}"]
    return StageResult("01_targeting", "targeting", tables, figures, summary, findings(summary, lang), notes, lang,
                       draw)
