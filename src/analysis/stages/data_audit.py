"""Data audit (notebook ``00_data_audit``): coverage of the panel, the roll-out, outcome distributions, missingness.

:func:`run` is the stage: from the analysis panel it makes the tables and figures of the
notebook, the ``data`` section of ``results.json`` (:func:`payload`) and the audit's key figures
in a sentence (:func:`findings`). Functions take frames and return new frames or figures; they
never open the store or write files (:func:`analysis.stages.base.save` writes them).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.core.panel import Window, present_columns
from analysis.core.treatment import TREATMENT_COLUMNS
from analysis.data import schema
from analysis.i18n import column_label, t
from analysis.report.figures import themed
from analysis.stages.base import StageResult, Truth

REPORT_YEAR = 2023
"""Year of the income figure (the programme report's year; the last year of the window if that is earlier)."""


def coverage(panel: pd.DataFrame) -> pd.DataFrame:
    """Villages, rows and completeness of the outcomes, by year.

    Parameters
    ----------
    panel : pandas.DataFrame
        Canonical panel.

    Returns
    -------
    pandas.DataFrame
        Columns ``year, villages, rows, complete_rows, share_complete``.
    """
    outcomes = [c for c in schema.OUTCOMES if c in panel.columns]
    complete = panel[outcomes].notna().all(axis=1)
    g = pd.DataFrame({"year": panel["year"], "village_code": panel["village_code"], "complete": complete})
    out = (
        g.groupby("year")
        .agg(villages=("village_code", "nunique"), rows=("village_code", "size"), complete_rows=("complete", "sum"))
        .reset_index()
    )
    out["share_complete"] = out["complete_rows"] / out["rows"]
    return out


def rollout_by_cohort(panel: pd.DataFrame) -> pd.DataFrame:
    """Count villages treated in each year, by cohort (a cohort x year table).

    Parameters
    ----------
    panel : pandas.DataFrame
        Panel with ``cohort`` and ``treated`` (see :func:`analysis.core.treatment.attach_treatment`).

    Returns
    -------
    pandas.DataFrame
        One row per cohort (0 = never treated) with the number of villages, and one
        column per year with the number of villages of that cohort treated that year.
    """
    size = panel.groupby("cohort")["village_code"].nunique().rename("villages")
    treated = panel.pivot_table(index="cohort", columns="year", values="treated", aggfunc="sum", fill_value=0)
    treated.columns = [str(c) for c in treated.columns]
    return pd.concat([size, treated], axis=1).reset_index()


def rollout_by_area(panel: pd.DataFrame, level: str = "county_code") -> pd.DataFrame:
    """Villages and treated villages by area (county or township) and cohort.

    Parameters
    ----------
    panel : pandas.DataFrame
        Panel with ``cohort``.
    level : {"county_code", "township_code"}
        Area level.

    Returns
    -------
    pandas.DataFrame
        One row per area: ``villages``, one column ``cohort_<g>`` per treated cohort,
        ``treated`` and ``share_treated``.
    """
    if level not in ("county_code", "township_code"):
        raise ValueError(f"level must be 'county_code' or 'township_code', got {level!r}")
    v = panel.drop_duplicates("village_code")[[level, "village_code", "cohort"]]
    out = v.groupby(level)["village_code"].nunique().rename("villages").to_frame()
    by = v[v["cohort"] > 0].pivot_table(
        index=level, columns="cohort", values="village_code", aggfunc="nunique", fill_value=0
    )
    by.columns = [f"cohort_{c}" for c in by.columns]
    out = out.join(by).fillna(0)
    cohort_cols = [c for c in out.columns if c.startswith("cohort_")]
    out[cohort_cols] = out[cohort_cols].astype("int64")
    out["treated"] = out[cohort_cols].sum(axis=1)
    out["share_treated"] = out["treated"] / out["villages"]
    return out.reset_index()


def township_summary(panel: pd.DataFrame) -> pd.DataFrame:
    """Distribution across townships of the share of villages treated.

    Parameters
    ----------
    panel : pandas.DataFrame
        Panel with ``cohort``.

    Returns
    -------
    pandas.DataFrame
        Quantiles of villages per township and of the treated share, and the number
        of townships with no and with all villages treated.
    """
    t = rollout_by_area(panel, "township_code")
    q = [0.0, 0.25, 0.5, 0.75, 1.0]
    return pd.DataFrame(
        {
            "statistic": ["townships", "no village treated", "all villages treated"]
            + [f"villages per township, q{int(x * 100)}" for x in q]
            + [f"share treated, q{int(x * 100)}" for x in q],
            "value": [len(t), int((t["treated"] == 0).sum()), int((t["treated"] == t["villages"]).sum())]
            + [float(t["villages"].quantile(x)) for x in q]
            + [float(t["share_treated"].quantile(x)) for x in q],
        }
    )


def outcome_summary(panel: pd.DataFrame, outcomes: list[str] | None = None, year: int | None = None) -> pd.DataFrame:
    """Distribution of each outcome: mean, standard deviation, quantiles, zeros, missing.

    Parameters
    ----------
    panel : pandas.DataFrame
        Canonical panel.
    outcomes : list of str, optional
        Outcomes (default: all canonical outcomes present).
    year : int, optional
        Restrict to one year.

    Returns
    -------
    pandas.DataFrame
        One row per outcome.
    """
    outcomes = outcomes or [c for c in schema.OUTCOMES if c in panel.columns]
    d = panel if year is None else panel[panel["year"] == year]
    rows = []
    for c in outcomes:
        x = pd.to_numeric(d[c], errors="coerce").astype(float)
        rows.append(
            {
                "outcome": c,
                "n": int(x.notna().sum()),
                "mean": x.mean(),
                "sd": x.std(),
                "min": x.min(),
                "p25": x.quantile(0.25),
                "median": x.median(),
                "p75": x.quantile(0.75),
                "max": x.max(),
                "share_zero": float((x == 0).mean()),
                "share_missing": float(x.isna().mean()),
                "skewness": float(x.skew()),
            }
        )
    return pd.DataFrame(rows)


def missingness(panel: pd.DataFrame) -> pd.DataFrame:
    """Missing cells per column (count and share), sorted by the canonical order.

    Parameters
    ----------
    panel : pandas.DataFrame
        The panel.

    Returns
    -------
    pandas.DataFrame
        ``column, missing, share_missing``.
    """
    m = panel.isna().sum()
    return pd.DataFrame(
        {
            "column": m.index,
            "missing": m.to_numpy().astype("int64"),
            "share_missing": (m / max(len(panel), 1)).to_numpy(),
        }
    )


@themed
def plot_rollout(panel: pd.DataFrame, lang: str = "zh"):
    """Stacked bars of villages with a first secretary by year and cohort.

    Parameters
    ----------
    panel : pandas.DataFrame
        Panel with ``cohort`` and ``treated``.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    from matplotlib import pyplot as plt

    tab = panel[panel["treated"] == 1].pivot_table(
        index="year", columns="cohort", values="village_code", aggfunc="nunique", fill_value=0
    )
    years = sorted(panel["year"].unique())
    tab = tab.reindex(years, fill_value=0)
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = np.zeros(len(tab))
    for g in tab.columns:
        ax.bar([str(y) for y in tab.index], tab[g].to_numpy(), bottom=bottom,
               label=t("data_audit.figure.cohort_legend", lang, cohort=g))
        bottom += tab[g].to_numpy()
    n = panel["village_code"].nunique()
    ax.set_title(t("data_audit.figure.rollout_title", lang))
    ax.set_xlabel(t("term.year", lang))
    ax.set_ylabel(t("data_audit.figure.rollout_ylabel", lang, n=n))
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


@themed
def plot_outcome_distributions(panel: pd.DataFrame, outcomes: list[str], year: int, lang: str = "zh"):
    """Histograms of outcomes in one year, one panel per outcome, each on its own scale (seaborn).

    Parameters
    ----------
    panel : pandas.DataFrame
        Canonical panel.
    outcomes : list of str
        Outcomes to show.
    year : int
        Year shown.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (a seaborn ``FacetGrid`` of histograms, three panels a row, each binned on its own range).
    """
    import seaborn as sns

    d = panel.loc[panel["year"] == year, list(outcomes)]
    long = d.apply(pd.to_numeric, errors="coerce").melt(var_name="outcome", value_name="value").dropna()
    names = {c: column_label(c, lang) for c in outcomes}
    long["outcome"] = long["outcome"].map(names)
    grid = sns.FacetGrid(long, col="outcome", col_order=[names[c] for c in outcomes], col_wrap=3, height=2.4,
                         aspect=1.4, sharex=False, sharey=False)
    grid.map_dataframe(sns.histplot, x="value", bins=40)
    grid.set_titles("{col_name}", size=9)
    grid.set_axis_labels("", t("term.villages", lang), fontsize=8)
    grid.tick_params(labelsize=7)
    grid.figure.suptitle(t("data_audit.figure.distribution_title", lang, year=year))
    grid.figure.tight_layout()
    return grid.figure


def findings(panel: pd.DataFrame, report_year: int, lang: str = "zh") -> list[str]:
    """State the audit's key figures in one paragraph, computed from the panel.

    Parameters
    ----------
    panel : pandas.DataFrame
        Panel with ``cohort``.
    report_year : int
        Year for the income figure.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    list of str
        The paragraph.
    """
    v = panel.drop_duplicates("village_code")
    n = len(v)
    n_town = v["township_code"].nunique()
    n_county = v["county_code"].nunique()
    cohorts = v.loc[v["cohort"] > 0, "cohort"].value_counts().sort_index()
    treated = int(cohorts.sum())
    inc = panel.loc[panel["year"] == report_year, "income_per_capita"].mean()
    years = f"{panel['year'].min()}-{panel['year'].max()}"
    parts = t("punct.comma", lang).join(t("data_audit.finding.cohort", lang, cohort=g, villages=k)
                                         for g, k in cohorts.items())
    return [t("data_audit.finding.summary", lang, years=years, counties=n_county, townships=n_town, villages=n,
              treated=treated, share=treated / n, cohorts=parts, report_year=report_year, income=inc)]


def year_hashes(panel: pd.DataFrame) -> dict[str, str]:
    """Fingerprint each year's canonical panel rows (sha256 of their sorted CSV text).

    Two runs whose fingerprints differ for a year had different data for that year, which
    is how ``study diff`` tells a revision of earlier data from a new year.

    Parameters
    ----------
    panel : pandas.DataFrame
        Panel with the canonical columns.

    Returns
    -------
    dict
        Year (as text) -> first 16 hex digits of the sha256.
    """
    import hashlib

    cols = [c for c in schema.column_names("panel") if c in panel.columns]
    out = {}
    for year, rows in panel[cols].groupby("year", sort=True):
        text = rows.sort_values("village_code", kind="mergesort").to_csv(index=False, float_format="%.10g")
        out[str(int(year))] = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return out


def payload(panel: pd.DataFrame, report_year: int, truth: Truth, window: Window | None = None) -> dict:
    """Key facts of the data for ``results.json`` (section ``data``).

    Parameters
    ----------
    panel : pandas.DataFrame
        Panel with ``cohort`` and ``cadre_type``.
    report_year : int
        Year of the income figure.
    truth : Truth
        Whether the store holds the synthetic city whose truth is known.
    window : analysis.core.panel.Window, optional
        The analysis window resolved against the store (default: the panel's years, the
        store's years unknown).

    Returns
    -------
    dict
        Villages, townships, counties, years, villages by cohort and by cadre type, the
        treated share, mean income in the report year, a fingerprint of each year's rows,
        ``synthetic`` (the truth applies), ``truth_note`` (why or why not) and ``window``
        (:meth:`analysis.core.panel.Window.record`: the window, the years the store holds and
        whether the window is all of them, ``source = "store"``, or narrowed by the parameters,
        ``"parameters"``; ``"panel"`` with ``store_years`` null when the store was not consulted).
    """
    v = panel.drop_duplicates("village_code")
    treated = v[v["cohort"] > 0]
    if window is not None:
        window_record = window.record()
    else:
        window_record = {"first_year": int(panel["year"].min()), "last_year": int(panel["year"].max()),
                         "store_years": None, "source": "panel"}
    return {
        "first_year": int(panel["year"].min()),
        "last_year": int(panel["year"].max()),
        "villages": len(v),
        "townships": int(v["township_code"].nunique()),
        "counties": int(v["county_code"].nunique()),
        "treated_villages": len(treated),
        "treated_share": float(len(treated) / len(v)),
        "villages_by_cohort": {str(g): int(k) for g, k in treated["cohort"].value_counts().sort_index().items()},
        "villages_by_cadre_type": {
            str(g): int(k) for g, k in treated["cadre_type"].value_counts().sort_index().items()
        },
        "report_year": int(report_year),
        "year_hashes": year_hashes(panel),
        "income_mean_report_year": float(panel.loc[panel["year"] == report_year, "income_per_capita"].mean()),
        "synthetic": truth.available,
        "truth_note": truth.status,
        "window": window_record,
    }


def draw_figures(panel: pd.DataFrame, outcomes: list[str], report_year: int, lang: str) -> dict[str, Any]:
    """Draw the stage's figures in one language: ``00_rollout`` and ``00_outcome_distributions``.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    outcomes : list of str
        Outcomes whose distributions are drawn.
    report_year : int
        Year of the distributions.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    dict
        File stem -> figure (:func:`plot_rollout`, :func:`plot_outcome_distributions`).
    """
    return {
        "00_rollout": plot_rollout(panel, lang=lang),
        "00_outcome_distributions": plot_outcome_distributions(panel, outcomes, report_year, lang=lang),
    }


def run(panel: pd.DataFrame, params: Mapping[str, Any], truth: Truth | None = None) -> StageResult:
    """Audit the data: coverage, roll-out, outcome distributions, missingness (notebook ``00_data_audit``).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (:func:`analysis.core.panel.load_analysis_panel`). Not modified.
    params : mapping
        Validated notebook parameters; uses ``last_year``, ``lang`` and, if given, ``window``
        (the :class:`~analysis.core.panel.Window` that :func:`analysis.stages.notebook.run_notebook`
        resolved, recorded in the payload).
    truth : Truth, optional
        Whether the synthetic city's truth applies (recorded in the payload).

    Returns
    -------
    StageResult
        Tables ``00_coverage``, ``00_rollout_by_cohort``, ``00_rollout_by_county``,
        ``00_rollout_by_township``, ``00_outcome_distributions``, ``00_missingness`` (of the
        canonical columns, before treatment timing is attached); figures ``00_rollout`` and
        ``00_outcome_distributions``; the ``data`` section.
    """
    truth = truth or Truth.unknown()
    lang = params["lang"]
    report_year = min(REPORT_YEAR, params["last_year"])
    outcomes = present_columns(panel, schema.OUTCOMES)
    tables = {
        "00_coverage": coverage(panel),
        "00_rollout_by_cohort": rollout_by_cohort(panel),
        "00_rollout_by_county": rollout_by_area(panel, "county_code"),
        "00_rollout_by_township": township_summary(panel),
        "00_outcome_distributions": outcome_summary(panel, outcomes, year=report_year),
        "00_missingness": missingness(panel.drop(columns=list(TREATMENT_COLUMNS))),
    }
    draw = functools.partial(draw_figures, panel, outcomes, report_year)
    figures = draw(lang)
    data = payload(panel, report_year, truth, params.get("window"))
    return StageResult("00_data_audit", "data", tables, figures, data, findings(panel, report_year, lang),
                       notes=[truth.status], lang=lang, draw=draw)
