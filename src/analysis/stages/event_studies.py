"""Event studies (notebook ``03_event_studies``): dynamic effects from four estimators, pre-tests, Goodman-Bacon.

For one outcome, :func:`event_study` estimates the effect by event time ``e = t - g`` (years
since the first secretary's cohort year ``g``) with

* **CS** -- Callaway-Sant'Anna (doubly robust, baseline covariates, not-yet-treated
  comparison villages by default) aggregated by event time, with a **universal base
  period** (every cohort is compared with its year ``g - 2``: the headline leaves the arrival
  year ``g - 1`` out, :mod:`analysis.core.spec`, so ``e = -2`` is CS's reference and ``e = -1``,
  the arrival year, is estimated) and a **sup-t simultaneous band** from the
  multiplier bootstrap (clustered by township), which covers the whole path with 95%
  probability;
* **TWFE** -- the dynamic two-way fixed-effects event study, reference ``e = -1``,
  endpoints binned at ``e <= -TWFE_LEADS`` and ``e >= TWFE_LAGS``, without covariates (the
  naive benchmark, like the static TWFE of the main effects);
* **SA** -- Sun-Abraham interaction-weighted event study (never-treated comparison,
  covariate-by-year terms), reference ``e = -1``;
* **BJS** -- Borusyak-Jaravel-Spiess imputation (covariate-by-year terms) for ``e >= 0``,
  plus the coefficients of its pre-trend regression on the untreated observations
  (``pre e=-k`` rows: leads relative to the earlier, omitted pre-periods; they test
  parallel trends, they are not effects).

The CS **pre-test** is the Wald test that every pre-treatment ATT(g,t) is zero (R ``did``'s
``W``), computed on the varying-base-period ATT(g,t) (R's default; the short differences
``t-1`` to ``t``). The **Goodman-Bacon decomposition** splits the static TWFE coefficient
(no covariates, balanced panel) into its 2x2 comparisons; the weight on "later vs earlier
treated" comparisons -- already-treated villages used as controls -- is the warning sign.

Caveats
-------
* Pre-period estimates of the four estimators are not the same object: CS and SA are
  cumulative differences to ``g - 1``; TWFE pre-period coefficients are contaminated by
  effects at other event times under heterogeneity (Sun & Abraham 2021); BJS pre rows are
  leads in a regression on untreated observations.
* Event times far from 0 rest on few cohorts (with cohorts 2023 and 2024 and a panel from
  2018, ``e = -6`` is cohort 2024 alone and ``e = 1`` cohort 2023 alone), so the
  composition changes along the path.
* Pointwise intervals are not adjusted for multiple testing; use the CS band for
  statements about the whole path.

:func:`run` is the stage: the event study of every outcome of the notebook, their tables and
figures, the ``event_studies`` section of ``results.json`` (:func:`payload`) and the findings
(:func:`findings`). Functions take frames and return frames, figures and dicts; they never open
the store or write files (:func:`analysis.stages.base.save` writes them).
"""

from __future__ import annotations

import functools
import gc
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.core.panel import covariate_columns, covariate_year_interactions
from analysis.core.spec import COHORT, DEFAULT_COVARIATES, TIME, UNIT, Spec, check_draws, check_outcomes
from analysis.i18n import column_label, t
from analysis.inference.small_sample import t_df
from analysis.report.figures import themed
from analysis.report.results_json import estimate_record
from analysis.results import DiDResult
from analysis.stages.base import StageResult, Truth

__all__ = [
    "ESTIMATORS",
    "EventStudy",
    "bacon_summary",
    "bacon_table",
    "bjs_pretrend_periods",
    "draw_figures",
    "event_study",
    "findings",
    "payload",
    "plot_bacon",
    "plot_event_study",
    "run",
    "summary_table",
]

ESTIMATORS: tuple[str, ...] = ("cs", "twfe", "sa", "bjs")
"""Estimators of the event study, in plotting order."""
TWFE_LEADS = 5
"""TWFE event study: event times ``e <= -TWFE_LEADS`` share one (binned) dummy."""
TWFE_LAGS = 5
"""TWFE event study: event times ``e >= TWFE_LAGS`` share one (binned) dummy."""
BJS_PRETRENDS_MAX = 5
"""Most leads in the BJS pre-trend regression."""
FORBIDDEN = "later vs earlier treated"
"""Goodman-Bacon comparison type that uses already-treated villages as controls."""
ALPHA = 0.05

FRAME_COLUMNS: tuple[str, ...] = (
    "outcome", "estimator", "term", "event_time", "estimate", "std_error", "conf_low", "conf_high",
    "band_low", "band_high", "p_value", "reference", "pre_test_row",
)
"""Columns of :attr:`EventStudy.frame`: ``conf_low``/``conf_high`` are pointwise 95%
intervals for every estimator; ``band_low``/``band_high`` the CS simultaneous (sup-t) band
(missing for the others); ``reference`` marks the normalised rows (``e = -1``; CS: ``e = -2``);
``pre_test_row`` the BJS pre-trend regression leads."""

_STYLE: dict[str, dict[str, Any]] = {
    "cs": {"color": "#1f5fa8", "marker": "o"},
    "twfe": {"color": "#d0612a", "marker": "s"},
    "sa": {"color": "#2a9d5c", "marker": "^"},
    "bjs": {"color": "#8e44ad", "marker": "D"},
}
_OFFSETS = {"cs": -0.27, "twfe": -0.09, "sa": 0.09, "bjs": 0.27}


@dataclass
class EventStudy:
    """Dynamic effects of one outcome from four estimators, with diagnostics.

    Attributes
    ----------
    outcome : str
        Outcome column.
    frame : pandas.DataFrame
        Event-time rows of every estimator, columns :data:`FRAME_COLUMNS`.
    results : dict of str -> DiDResult
        The fits: ``cs`` (event aggregate, universal base period), ``twfe``, ``sa``, ``bjs``, each light
        (:meth:`~analysis.results.DiDResult.light`: rows, covariances and influence functions, no pyfixest fit,
        details or ATT(g,t) result).
    cs_simple : pandas.Series
        The CS simple ATT (tidy row) of the same fit, for reference lines.
    pretest : analysis.estimators.callaway_santanna.PreTest
        CS Wald pre-test on the varying-base-period ATT(g,t).
    bjs_pretest : dict or None
        BJS pre-trend Wald test (``statistic``, ``df``, ``p_value``).
    bacon : analysis.estimators.bacon.BaconDecomposition
        Decomposition of the static TWFE coefficient.
    options : dict
        How everything was estimated.
    """

    outcome: str
    frame: pd.DataFrame
    results: dict[str, DiDResult]
    cs_simple: pd.Series
    pretest: Any
    bjs_pretest: dict[str, Any] | None
    bacon: Any
    options: dict[str, Any] = field(default_factory=dict)


def bjs_pretrend_periods(panel: pd.DataFrame, most: int = BJS_PRETRENDS_MAX) -> int:
    """Return the number of leads for the BJS pre-trend regression.

    Every treated unit's untreated years are all dummied once the number of leads reaches
    the longest pre-period; the leads are then collinear with the unit effects. This uses
    one lead fewer than the longest pre-period of any cohort, at most ``most``.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel with ``year`` and ``cohort``.
    most : int, default :data:`BJS_PRETRENDS_MAX`
        Upper bound.

    Returns
    -------
    int
        Number of leads (0 if no cohort has two pre-periods).

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"year": [2018, 2024, 2018, 2024], "cohort": [2023, 2023, 2024, 2024]})
    >>> bjs_pretrend_periods(p)
    5
    """
    first, last = int(panel[TIME].min()), int(panel[TIME].max())
    g = panel.loc[(panel[COHORT] > first) & (panel[COHORT] <= last), COHORT]
    if g.empty:
        return 0
    return int(max(0, min(most, int(g.max()) - first - 1)))


def _frame_rows(result: DiDResult, estimator: str, band: bool = False) -> pd.DataFrame:
    t = result.tidy("event")
    t = t[t["event_time"].notna()].copy()
    # pointwise intervals with the study's t(G-1) critical values (analysis.inference.small_sample)
    z = stats.t.ppf(1 - ALPHA / 2, [t_df(int(g)) for g in t["n_clusters"]])
    out = pd.DataFrame({
        "outcome": result.outcome, "estimator": estimator, "term": t["term"].astype(str),
        "event_time": t["event_time"].astype("int64"), "estimate": t["estimate"], "std_error": t["std_error"],
    })
    if band:
        out["conf_low"] = t["estimate"] - z * t["std_error"]
        out["conf_high"] = t["estimate"] + z * t["std_error"]
        sim = t["band"] == "simultaneous"
        out["band_low"] = t["conf_low"].where(sim)
        out["band_high"] = t["conf_high"].where(sim)
    else:
        out["conf_low"], out["conf_high"] = t["conf_low"], t["conf_high"]
        out["band_low"] = out["band_high"] = np.nan
    out["p_value"] = t["p_value"]
    out["pre_test_row"] = out["term"].str.startswith("pre ")
    out["reference"] = (out["event_time"] < 0) & (out["estimate"] == 0) & out["std_error"].isna() & ~out["pre_test_row"]
    return out[list(FRAME_COLUMNS)]


def event_study(
    panel: pd.DataFrame,
    outcome: str,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    control_group: str = "notyet",
    cluster: str = "township",
    bootstrap_draws: int = 999,
    seed: int | None = 20230601,
    twfe_leads: int = TWFE_LEADS,
    twfe_lags: int = TWFE_LAGS,
) -> EventStudy:
    """Estimate the event study of one outcome with CS, TWFE, Sun-Abraham and BJS.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel from :func:`analysis.core.panel.load_analysis_panel`. Not modified.
    outcome : str
        Outcome column.
    covariates : sequence of str
        Canonical baseline covariates (CS: propensity score and outcome regression; SA and
        BJS: covariate-by-year terms; not used by TWFE, the naive benchmark).
    control_group : {"notyet", "never"}, default "notyet"
        CS comparison villages (SA always uses the never treated, TWFE and BJS every
        untreated observation).
    cluster : {"township", "county", "village"}, default "township"
        Clustering of standard errors and of the bootstrap.
    bootstrap_draws : int, default 999
        Multiplier-bootstrap draws of the CS band (0 = analytic pointwise intervals only,
        no band).
    seed : int, optional
        Bootstrap seed.
    twfe_leads, twfe_lags : int
        TWFE endpoint bins (``e <= -twfe_leads``, ``e >= twfe_lags``).

    Returns
    -------
    EventStudy
        Frame of event-time rows, fits, pre-tests and the Bacon decomposition.

    Raises
    ------
    ValueError
        For an unknown cluster level or outcome, and whatever the estimators reject.

    Examples
    --------
    >>> from analysis.data.synthetic import simulate_city
    >>> from analysis.core.treatment import attach_treatment
    >>> city = simulate_city(seed=1, n_villages=400, n_townships=24)
    >>> es = event_study(attach_treatment(city.panel, city.treatment), "disputes", bootstrap_draws=99, seed=1)
    >>> sorted(es.frame["estimator"].unique())
    ['bjs', 'cs', 'sa', 'twfe']
    """
    from analysis.estimators.bacon import bacon_decomposition
    from analysis.estimators.callaway_santanna import aggregate, att_gt, pretest
    from analysis.estimators.imputation import imputation
    from analysis.estimators.sun_abraham import sun_abraham
    from analysis.estimators.twfe import twfe_event_study

    spec = Spec("cs", control_group, tuple(covariates), cluster)
    check_outcomes(panel, outcome)
    check_draws(bootstrap_draws)
    data, covs = covariate_columns(panel, list(spec.covariates))
    reg, trend = covariate_year_interactions(data, covs)
    common = spec.columns
    cs_args = spec.cs_arguments(covs)
    r_uni = att_gt(data, outcome, base_period="universal", **cs_args)
    cs = aggregate(r_uni, "event", bootstrap=int(bootstrap_draws), seed=seed).light()
    cs_simple = aggregate(r_uni, "simple").tidy().iloc[0]
    del r_uni  # the ATT(g,t) influence functions of every cell are not needed by the regressions below
    pre = pretest(att_gt(data, outcome, base_period="varying", **cs_args))
    # each fit kept light (DiDResult.light) as soon as it is made: the stage reads rows, not the regressions'
    # design matrices, and holds one event study per outcome
    tw = twfe_event_study(data, outcome, ref=-1, leads=twfe_leads, lags=twfe_lags, bin_endpoints=True,
                          **common).light()
    sa = sun_abraham(reg, outcome, control="never", ref=-1, covariates=trend or None, **common).light()
    k = bjs_pretrend_periods(panel)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*collinear.*")
        bjs = imputation(reg, outcome, covariates=trend or None, pretrends=k, **common).light()
    dec = bacon_decomposition(panel, outcome, UNIT, TIME, COHORT)
    results = {"cs": cs, "twfe": tw, "sa": sa, "bjs": bjs}
    del data, reg
    gc.collect()  # pyfixest's fits hold their design matrices in reference cycles: free them before the next outcome
    frame = pd.concat([_frame_rows(cs, "cs", band=True), _frame_rows(tw, "twfe"), _frame_rows(sa, "sa"),
                       _frame_rows(bjs, "bjs")], ignore_index=True)
    options = {
        "cs": {"method": spec.METHOD, "control_group": control_group, "covariates": list(covariates),
               "base_period": "universal", "anticipation": spec.anticipation,
               "bootstrap_draws": int(bootstrap_draws), "seed": seed,
               "band": "sup-t simultaneous" if bootstrap_draws else "none (pointwise only)"},
        "pretest": ("CS joint test of all pre-treatment ATT(g,t) = 0, varying base period, clustered Wald "
                    f"statistic; test {pre.test!r}"
                    + (f", p-value from a restricted wild cluster score bootstrap ({pre.B} draws)"
                       if pre.test == "wild" else "")),
        "twfe": {"ref": -1, "bins": [-twfe_leads, twfe_lags], "covariates": []},
        "sa": {"control": "never", "ref": -1, "covariates": list(covariates)},
        "bjs": {"pretrends": k, "covariates": list(covariates)},
        "cluster": cluster,
    }
    return EventStudy(outcome=outcome, frame=frame, results=results, cs_simple=cs_simple, pretest=pre,
                      bjs_pretest=bjs.pretrend_test.as_dict() if bjs.pretrend_test is not None else None,
                      bacon=dec, options=options)


def bacon_table(dec, outcome: str | None = None) -> pd.DataFrame:
    """Return the 2x2 comparisons of a Goodman-Bacon decomposition with their contributions.

    Parameters
    ----------
    dec : analysis.estimators.bacon.BaconDecomposition
        The decomposition.
    outcome : str, optional
        Outcome name for the first column (default ``dec.outcome``).

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome, type, treated, control, periods, n_treated, n_control, weight,
        estimate, contribution`` (``weight * estimate``; the contributions sum to the TWFE
        coefficient), ``forbidden`` (already-treated villages as controls).
    """
    t = dec.tidy()
    t.insert(0, "outcome", outcome or dec.outcome)
    t["contribution"] = t["weight"] * t["estimate"]
    t["forbidden"] = t["type"] == FORBIDDEN
    return t[["outcome", "type", "treated", "control", "periods", "n_treated", "n_control", "weight", "estimate",
              "contribution", "forbidden"]]


def bacon_summary(dec) -> dict[str, Any]:
    """Summarise a Goodman-Bacon decomposition by comparison type.

    Parameters
    ----------
    dec : analysis.estimators.bacon.BaconDecomposition
        The decomposition.

    Returns
    -------
    dict
        ``twfe`` (the coefficient, = sum of weight x estimate), ``weights_by_type`` and
        ``estimates_by_type`` (weight-averaged 2x2 estimate within the type) keyed by type,
        and ``forbidden_weight`` (weight on "later vs earlier treated", 0 if absent).
    """
    by = dec.by_type()
    return {
        "twfe": float(dec.total),
        "weights_by_type": {str(k): float(v) for k, v in by["weight"].items()},
        "estimates_by_type": {str(k): float(v) for k, v in by["estimate"].items()},
        "forbidden_weight": float(by["weight"].get(FORBIDDEN, 0.0)),
    }


def summary_table(studies: Mapping[str, EventStudy]) -> pd.DataFrame:
    """One row per outcome: pre-tests, the CS path's end points, TWFE and its decomposition.

    Parameters
    ----------
    studies : mapping of str -> EventStudy
        Outcome -> event study.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome, cs_pretest_stat, cs_pretest_df, cs_pretest_p, bjs_pretest_p,
        cs_e0, cs_e_last, e_last, cs_band_excludes_zero_post, cs_simple, twfe_static,
        forbidden_weight, forbidden_estimate``.
    """
    rows = []
    for oc, es in studies.items():
        f = es.frame[es.frame["estimator"] == "cs"]
        post = f[f["event_time"] >= 0]
        last = post.loc[post["event_time"].idxmax()] if len(post) else None
        e0 = post.loc[post["event_time"] == 0, "estimate"]
        excl = bool(((post["band_low"] > 0) | (post["band_high"] < 0)).any()) if len(post) else False
        b = bacon_summary(es.bacon)
        rows.append({
            "outcome": oc, "cs_pretest_stat": es.pretest.statistic, "cs_pretest_df": es.pretest.df,
            "cs_pretest_p": es.pretest.p_value,
            "bjs_pretest_p": np.nan if not es.bjs_pretest else es.bjs_pretest["p_value"],
            "cs_e0": float(e0.iloc[0]) if len(e0) else np.nan,
            "cs_e_last": np.nan if last is None else float(last["estimate"]),
            "e_last": np.nan if last is None else int(last["event_time"]),
            "cs_band_excludes_zero_post": excl, "cs_simple": float(es.cs_simple["estimate"]),
            "twfe_static": b["twfe"], "forbidden_weight": b["forbidden_weight"],
            "forbidden_estimate": b["estimates_by_type"].get(FORBIDDEN, np.nan),
        })
    return pd.DataFrame(rows)


def payload(studies: Mapping[str, EventStudy]) -> dict[str, Any]:
    """Build the ``event_studies`` section of ``results.json``.

    Parameters
    ----------
    studies : mapping of str -> EventStudy
        Outcome -> event study.

    Returns
    -------
    dict
        ``{outcome: {"cs", "twfe", "sa", "bjs": [records by event time], "pretest_p",
        "bacon": {"twfe", "weights_by_type", "estimates_by_type"}}}``. CS records carry the
        simultaneous band in ``conf_low``/``conf_high`` (``band == "simultaneous"``); BJS
        records include its pre-trend leads (terms ``"pre e=-k"``).
    """
    out: dict[str, Any] = {}
    for oc, es in studies.items():
        entry: dict[str, Any] = {}
        for name in ESTIMATORS:
            t = es.results[name].tidy("event")
            t = t[t["event_time"].notna()]
            entry[name] = [estimate_record(r) for _, r in t.iterrows()]
        entry["pretest_p"] = es.pretest.p_value
        b = bacon_summary(es.bacon)
        entry["bacon"] = {k: b[k] for k in ("twfe", "weights_by_type", "estimates_by_type")}
        out[oc] = entry
    return out


@themed
def plot_event_study(es: EventStudy, lang: str = "zh", truth: pd.DataFrame | None = None):
    """Plot the four event studies of one outcome side by side.

    Parameters
    ----------
    es : EventStudy
        Output of :func:`event_study`.
    lang : {"zh", "en"}
        Label language.
    truth : pandas.DataFrame, optional
        ``truth_aggregates`` of the synthetic city; its ``event`` rows are drawn as a line.

    Returns
    -------
    matplotlib.figure.Figure
        Offset markers with 95% pointwise whiskers per estimator, the CS simultaneous band
        shaded, the reference period ``e = -1`` marked and a dashed line where treatment
        starts (between ``e = -1`` and ``e = 0``).
    """
    from matplotlib import pyplot as plt

    name = column_label(es.outcome, lang)
    fig, ax = plt.subplots(figsize=(9, 5))
    f = es.frame
    cs = f[(f["estimator"] == "cs") & f["band_low"].notna()].sort_values("event_time")
    if len(cs):
        x = cs["event_time"].to_numpy(float) + _OFFSETS["cs"]
        ax.fill_between(x, cs["band_low"], cs["band_high"], color=_STYLE["cs"]["color"], alpha=0.15, lw=0,
                        label=t("event_studies.figure.band", lang))
    for est in ESTIMATORS:
        d = f[f["estimator"] == est].sort_values("event_time")
        x = d["event_time"].to_numpy(float) + _OFFSETS[est]
        st = _STYLE[est]
        est_ok = d["std_error"].notna()
        ax.errorbar(x[est_ok], d.loc[est_ok, "estimate"],
                    yerr=[d.loc[est_ok, "estimate"] - d.loc[est_ok, "conf_low"],
                          d.loc[est_ok, "conf_high"] - d.loc[est_ok, "estimate"]],
                    fmt=st["marker"], color=st["color"], ms=5, capsize=2.5, lw=1.2,
                    label=t(f"estimator.{est}.event_study", lang))
        ref = d["reference"].to_numpy()
        if ref.any():
            ax.plot(x[ref], d.loc[ref, "estimate"], st["marker"], mfc="white", mec=st["color"], ms=5)
    if truth is not None:
        tr = truth[(truth["outcome"] == es.outcome) & (truth["aggregation"] == "event")]
        if "cadre_type" in tr.columns:
            tr = tr[tr["cadre_type"].isna()]
        tr = tr[tr["event_time"].isin(f["event_time"].unique())].sort_values("event_time")
        if len(tr):
            ax.plot(tr["event_time"].astype(float), tr["value"], color="black", ls="--", lw=1, marker="x", ms=6,
                    label=t("term.truth", lang))
    ax.axhline(0, color="0.4", lw=0.8)
    ax.axvline(-0.5, color="0.2", lw=1, ls=":", label=t("event_studies.figure.start", lang))
    ax.axvspan(-1.45, -0.55, color="0.85", alpha=0.5, lw=0)
    ymin, ymax = ax.get_ylim()
    ax.text(-1.0, ymax - 0.03 * (ymax - ymin), t("event_studies.figure.ref", lang), ha="center", va="top", fontsize=7,
            color="0.3")
    ticks = sorted(int(e) for e in f["event_time"].unique())
    binned = f.loc[(f["estimator"] == "twfe") & f["term"].str.contains("<=|>=", regex=True), ["event_time", "term"]]
    bins = {int(r.event_time): r.term.replace("e", "TWFE ", 1) for r in binned.itertuples()}
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{e}\n({bins[e]})" if e in bins else str(e) for e in ticks])
    ax.set_xlabel(t("event_studies.figure.xlabel", lang))
    ax.set_ylabel(t("event_studies.figure.ylabel", lang, name=name[:1].lower() + name[1:]))
    ax.set_title(t("event_studies.figure.title", lang, name=name), fontsize=11)
    ax.grid(axis="y", color="0.92")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, frameon=False, loc="lower center", ncol=3)
    fig.tight_layout(rect=(0, 0.02 + 0.04 * ((len(labels) + 2) // 3), 1, 1))
    return fig


@themed
def plot_bacon(dec, lang: str = "zh", cs_att: float | None = None):
    """Scatter of the Goodman-Bacon 2x2 comparisons: weight against estimate, by type.

    Parameters
    ----------
    dec : analysis.estimators.bacon.BaconDecomposition
        The decomposition.
    lang : {"zh", "en"}
        Label language.
    cs_att : float, optional
        The CS simple ATT, drawn as a reference line.

    Returns
    -------
    matplotlib.figure.Figure
        One point per comparison (labelled treated vs control cohort), the TWFE estimate
        (their weighted average) as a dashed line.
    """
    from matplotlib import pyplot as plt

    from analysis.estimators.bacon import TYPES

    name = column_label(dec.outcome, lang)
    tab = dec.tidy()
    fig, ax = plt.subplots(figsize=(8, 5))
    styles = dict(zip(TYPES, [("#1f5fa8", "o"), ("#2a9d5c", "^"), ("#c0392b", "X")], strict=True))
    for typ in TYPES:
        d = tab[tab["type"] == typ]
        if d.empty:
            continue
        c, m = styles[typ]
        ax.scatter(d["weight"], d["estimate"], color=c, marker=m, s=70, label=t(f"bacon.{typ}.label", lang), zorder=3)
        for r in d.itertuples():
            ctrl = t("group.never.bacon", lang) if r.control == 0 else str(r.control)
            ax.annotate(f"{r.treated} vs {ctrl}", (r.weight, r.estimate), xytext=(6, 4),
                        textcoords="offset points", fontsize=8)
    ax.axhline(dec.total, color="#d0612a", ls="--", lw=1.2,
               label=f"{t('event_studies.figure.twfe_line', lang)} ({dec.total:.3g})")
    if cs_att is not None and np.isfinite(cs_att):
        ax.axhline(cs_att, color="#1f5fa8", ls=":", lw=1.2,
                   label=f"{t('event_studies.figure.cs_line', lang)} ({cs_att:.3g})")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlim(0, max(1.0, float(tab["weight"].max()) * 1.15) if float(tab["weight"].max()) > 0.85 else
                float(tab["weight"].max()) * 1.25)
    ax.set_xlabel(t("event_studies.figure.bacon_x", lang))
    ax.set_ylabel(t("event_studies.figure.bacon_y", lang, name=name))
    ax.set_title(t("event_studies.figure.bacon_title", lang, name=name), fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="best")
    ax.grid(color="0.93")
    fig.tight_layout()
    return fig


def findings(studies: Mapping[str, EventStudy], lang: str = "zh", alpha: float = ALPHA) -> list[str]:
    """State, in computed sentences, what the event studies and decompositions show.

    Parameters
    ----------
    studies : mapping of str -> EventStudy
        Outcome -> event study.
    lang : {"zh", "en"}
        Language.
    alpha : float, default 0.05
        Level of the pre-tests.

    Returns
    -------
    list of str
        One paragraph per outcome: the CS path after treatment and whether its band excludes zero, the
        pre-test verdicts, how TWFE compares and the weight on forbidden comparisons.
    """
    tab = summary_table(studies)
    lines = []
    for r in tab.itertuples(index=False):
        es = studies[r.outcome]
        b = bacon_summary(es.bacon)
        w = b["weights_by_type"]
        e = b["estimates_by_type"]
        never = "treated vs never treated"
        tw_pre = es.frame[(es.frame["estimator"] == "twfe") & (es.frame["event_time"] < -1)]
        tw_pre_sig = int((tw_pre["p_value"] < alpha).sum())
        pre_ok = r.cs_pretest_p >= alpha
        parts = [
            t("event_studies.finding.path", lang, name=column_label(r.outcome, lang), e0=r.cs_e0, last=r.cs_e_last,
              e_last=r.e_last),
            t("event_studies.finding.band_excludes_zero" if r.cs_band_excludes_zero_post
              else "event_studies.finding.band_includes_zero", lang),
            t("event_studies.finding.pretest", lang, p=r.cs_pretest_p,
              verdict=t("event_studies.finding.not_rejected" if pre_ok else "event_studies.finding.rejected", lang)),
            t("event_studies.finding.bjs_pretest", lang, p=r.bjs_pretest_p) if np.isfinite(r.bjs_pretest_p) else "",
            t("event_studies.finding.twfe_pre", lang, k=tw_pre_sig, n=len(tw_pre), alpha=alpha),
            t("event_studies.finding.static", lang, twfe=r.twfe_static, cs=r.cs_simple, weight=r.forbidden_weight),
            (t("event_studies.finding.forbidden_estimate", lang, estimate=r.forbidden_estimate)
             if np.isfinite(r.forbidden_estimate) else ""),
            (t("event_studies.finding.never_weight", lang, weight=w[never], estimate=e[never]) if never in w
             else t("punct.period", lang)),
        ]
        s = "".join(parts)
        lines.append(s)
    return lines


def draw_figures(studies: Mapping[str, Any], truth: pd.DataFrame | None, lang: str) -> dict[str, Any]:
    """Draw the stage's figures in one language: ``03_event_<outcome>``, then ``03_bacon_<outcome>``.

    Parameters
    ----------
    studies : mapping
        Outcome -> its event study (:func:`event_study`).
    truth : pandas.DataFrame or None
        The synthetic city's truth aggregates, drawn in the event studies when given.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    dict
        File stem -> figure (:func:`plot_event_study`, :func:`plot_bacon`).
    """
    figures = {f"03_event_{oc}": plot_event_study(s, lang=lang, truth=truth) for oc, s in studies.items()}
    figures.update({f"03_bacon_{oc}": plot_bacon(s.bacon, lang=lang, cs_att=float(s.cs_simple["estimate"]))
                    for oc, s in studies.items()})
    return figures


def run(panel: pd.DataFrame, params: Mapping[str, Any], truth: Truth | None = None) -> StageResult:
    """Estimate the event study of every outcome with four estimators (notebook ``03_event_studies``).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (:func:`analysis.core.panel.load_analysis_panel`). Not modified.
    params : mapping
        Validated notebook parameters; uses ``outcomes``, ``covariates``, ``control_group``,
        ``cluster``, ``bootstrap_draws``, ``seed`` and ``lang``.
    truth : Truth, optional
        The synthetic city's truth, drawn in the figures when available.

    Returns
    -------
    StageResult
        Tables ``03_event_studies``, ``03_summary``, ``03_bacon``; figures ``03_event_<outcome>``
        then ``03_bacon_<outcome>``; the ``event_studies`` section.
    """
    truth = truth or Truth.unknown()
    lang = params["lang"]
    studies = {oc: event_study(panel, oc, covariates=params["covariates"], control_group=params["control_group"],
                               cluster=params["cluster"], bootstrap_draws=params["bootstrap_draws"],
                               seed=params["seed"])
               for oc in params["outcomes"]}
    tables = {
        "03_event_studies": pd.concat([s.frame for s in studies.values()], ignore_index=True),
        "03_summary": summary_table(studies),
        "03_bacon": pd.concat([bacon_table(s.bacon) for s in studies.values()], ignore_index=True),
    }
    draw = functools.partial(draw_figures, studies, truth.aggregates)
    figures = draw(lang)
    found = findings(studies, lang=lang)
    if truth.aggregates is None:
        found.append(t("event_studies.finding.no_truth", lang))
    return StageResult("03_event_studies", "event_studies", tables, figures, payload(studies), found,
                       notes=[truth.status], lang=lang, draw=draw)
