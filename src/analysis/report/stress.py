"""The stress-test Monte Carlo for readers: its two tables, its figure and its findings (notebook 06).

Everything here renders the summary of :func:`analysis.grid.stress.summarise_stress`, which is
made from the records alone; nothing is estimated here. :func:`stress_tables` splits it into
the estimators' table (bias, RMSE, standard-error ratio and coverage, with Monte Carlo standard
errors) and the checks' table (rejection rates under true and false nulls, HonestDiD coverage,
each with its verdict); :func:`plot_stress` draws both against their nominal levels;
:func:`stress_findings` says in one sentence per scenario which verdicts printed by the study
hold under it and which do not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.grid.stress import ARRIVAL_KEPT
from analysis.i18n import column_label, has, lookup, t
from analysis.report.figures import themed

__all__ = [
    "ARRIVAL_COLUMNS",
    "CHECK_COLUMNS",
    "ESTIMATOR_COLUMNS",
    "arrival_markdown",
    "arrival_table",
    "plot_stress",
    "stress_findings",
    "stress_label",
    "stress_payload",
    "stress_tables",
]

ESTIMATOR_COLUMNS = ("scenario", "outcome", "estimator", "replications", "failed", "mean_truth", "bias", "bias_mc_se",
                     "relative_bias", "rmse", "mean_se", "se_ratio", "coverage", "coverage_mc_se", "verdict")
"""Columns of the estimators' table."""
CHECK_COLUMNS = ("scenario", "outcome", "check", "method", "replications", "failed", "null_true", "rate",
                 "rate_mc_se", "rate_kind", "verdict")
"""Columns of the checks' table: ``rate`` is a rejection rate (``rate_kind`` ``size`` or ``power``) or,
for HonestDiD, a coverage (``coverage``)."""

def stress_label(key: str, lang: str = "zh") -> str:
    """Name a stress scenario, estimator or check for readers (``simulation_check.stress.*`` of the catalogue).

    Parameters
    ----------
    key : str
        A scenario name (:data:`analysis.data.synthetic.scenarios.SCENARIOS`), an estimator
        (``method`` of an ``estimate`` row) or a check key (``pretest``, ``wild``, ``honest_sd``, ...).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The label (an estimator without a stress label: its ``estimator.<key>.abbrev``); the key
        itself if the catalogue has none.

    Examples
    --------
    >>> stress_label("partial_exposure", "en"), stress_label("cs_arrival_kept", "en")
    ('partial exposure in arrival year', 'CS (arrival year kept)')
    """
    for group in ("scenario", "method"):
        if has(f"simulation_check.stress.{group}.{key}"):
            return t(f"simulation_check.stress.{group}.{key}", lang)
    return lookup(f"estimator.{key}.abbrev", lang, key)


_CHECK_KEY = {("wild", "twfe_webb"): "wild", ("wild", "twfe_crv1"): "wild_crv1",
              ("honest", "original"): "honest_original", ("honest", "rm"): "honest_rm", ("honest", "sd"): "honest_sd"}


def _check_key(check: str, method: str) -> str:
    return _CHECK_KEY.get((check, method), check)


def stress_tables(summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the stress summary into the estimators' table and the checks' table.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`analysis.grid.stress.summarise_stress`. Not modified.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        Estimators (:data:`ESTIMATOR_COLUMNS`, ``estimator`` = the method) and checks
        (:data:`CHECK_COLUMNS`), in the summary's order.

    Examples
    --------
    >>> s = pd.DataFrame({"scenario": ["d", "d"], "outcome": "y", "check": ["estimate", "pretest"],
    ...                   "method": ["cs", "cs_wald"], "replications": 10, "failed": 0, "null_true": [np.nan, 1.0],
    ...                   "coverage": [0.9, np.nan], "rejection": [np.nan, 0.1]})
    >>> est, chk = stress_tables(s)
    >>> est["estimator"].tolist(), chk[["rate", "rate_kind"]].values.tolist()
    (['cs'], [[0.1, 'size']])
    """
    s = summary
    est = s[s["check"] == "estimate"].rename(columns={"method": "estimator"})
    est = est.reindex(columns=list(ESTIMATOR_COLUMNS)).reset_index(drop=True)
    chk = s[s["check"] != "estimate"].copy()
    honest = chk["check"] == "honest"
    chk["rate"] = np.where(honest, chk.get("coverage"), chk.get("rejection"))
    chk["rate_mc_se"] = np.where(honest, chk.get("coverage_mc_se"), chk.get("rejection_mc_se"))
    chk["rate_kind"] = np.where(honest, "coverage", np.where(chk["null_true"] >= 1, "size",
                                                             np.where(chk["null_true"] <= 0, "power", "mixed")))
    return est, chk.reindex(columns=list(CHECK_COLUMNS)).reset_index(drop=True)


@themed
def plot_stress(summary: pd.DataFrame, lang: str = "zh"):
    """Coverage of every estimator and rejection rate of every check, by scenario, with Monte Carlo error bars.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`analysis.grid.stress.summarise_stress`.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    matplotlib.figure.Figure
        One row per outcome: left, the coverage of each estimator's 95% interval (nominal 95%
        dashed); right, the rejection rate of each test (filled where its null holds: the size,
        nominal 5% dashed; hollow where it does not: the power) and the coverage of the HonestDiD
        intervals (diamonds, against 95%).
    """
    from matplotlib import pyplot as plt

    est, chk = stress_tables(summary)
    scenarios = list(dict.fromkeys(summary["scenario"]))
    outcomes = list(dict.fromkeys(summary["outcome"]))
    fig, axes = plt.subplots(len(outcomes), 2, figsize=(13, 3.4 * len(outcomes) + 1.2), squeeze=False)
    x0 = np.arange(len(scenarios))
    palette = ["#1f5f8b", "#c1721b", "#3b8c4a", "#7a4a9a", "#555555", "#b03a2e", "#17a2b8", "#8c564b", "#e377c2"]
    for i, oc in enumerate(outcomes):
        a1, a2 = axes[i]
        d = est[est["outcome"] == oc]
        names = list(dict.fromkeys(d["estimator"]))
        for j, name in enumerate(names):
            e = d[d["estimator"] == name].set_index("scenario").reindex(scenarios)
            x = x0 + (j - (len(names) - 1) / 2) * 0.8 / max(len(names), 1)
            cov, half = 100 * e["coverage"].to_numpy(float), 196 * e["coverage_mc_se"].to_numpy(float)
            a1.errorbar(x, cov, yerr=half, fmt="o", ms=4, capsize=2, color=palette[j % len(palette)],
                        label=stress_label(name, lang))
        a1.axhline(95, color="#c0392b", ls="--", lw=1)
        a1.set_ylim(-2, 102)
        a1.set_ylabel(t("simulation_check.stress.figure.coverage_axis", lang, outcome=column_label(oc, lang)),
                      fontsize=8)
        c = chk[chk["outcome"] == oc]
        keys = list(dict.fromkeys(_check_key(r.check, r.method) for r in c.itertuples()))
        for j, key in enumerate(keys):
            rows = c[[_check_key(r.check, r.method) == key for r in c.itertuples()]].set_index("scenario")
            rows = rows.reindex(scenarios)
            x = x0 + (j - (len(keys) - 1) / 2) * 0.8 / max(len(keys), 1)
            rate, half = 100 * rows["rate"].to_numpy(float), 196 * rows["rate_mc_se"].to_numpy(float)
            col = palette[j % len(palette)]
            coverage = key.startswith("honest")
            size = rows["rate_kind"].to_numpy() == "size"
            for mask, face in ((size | coverage, col), (~size & ~coverage, "white")):
                if mask.any():
                    a2.errorbar(x[mask], rate[mask], yerr=half[mask], fmt="D" if coverage else "o", ms=4, capsize=2,
                                color=col, mfc=face,
                                label=stress_label(key, lang) if face == col or not size.any() else None)
        a2.axhline(5, color="#c0392b", ls="--", lw=1)
        a2.axhline(95, color="#c0392b", ls=":", lw=0.8)
        a2.set_ylim(-2, 102)
        for ax in (a1, a2):
            ax.set_xticks(x0, [stress_label(s, lang) for s in scenarios] if i == len(outcomes) - 1 else [""] * len(x0),
                          rotation=30, ha="right", fontsize=7)
            ax.grid(axis="y", color="0.92")
        if i == 0:
            a1.set_title(t("simulation_check.stress.figure.coverage_title", lang), fontsize=10)
            a2.set_title(t("simulation_check.stress.figure.rate_title", lang), fontsize=10)
            a1.legend(fontsize=7, ncol=3, frameon=False, loc="lower left")
            a2.legend(fontsize=7, ncol=2, frameon=False, loc="center left")
    r = int(summary["replications"].max()) if len(summary) else 0
    fig.suptitle(t("simulation_check.stress.figure.suptitle", lang, r=r), fontsize=11)
    fig.tight_layout()
    return fig


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.0f}%"


def stress_findings(summary: pd.DataFrame, lang: str = "zh") -> list[str]:
    """One sentence per scenario: the headline's bias and coverage, and the checks that fail their size.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`analysis.grid.stress.summarise_stress`.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    list of str
        Sentences, in the summary's scenario order.
    """
    out = []
    key = "simulation_check.stress.finding."
    for scn, d in summary.groupby("scenario", sort=False):
        head = d[(d["check"] == "estimate") & (d["method"] == "cs")]
        parts = [t(key + "headline_part", lang, outcome=column_label(r.outcome, lang), bias=_pct(r.relative_bias),
                   coverage=_pct(r.coverage)) for r in head.itertuples()]
        bad = d[d["verdict"].astype(str).str.startswith(("over-rejects", "undercovers")) & (d["check"] != "estimate")]
        bad_names = list(dict.fromkeys(stress_label(_check_key(r.check, r.method), lang) for r in bad.itertuples()))
        s = t(key + "scenario", lang, scenario=stress_label(str(scn), lang), n=int(d["replications"].max()),
              parts=t("punct.semicolon", lang).join(parts))
        s += (t(key + "bad", lang, names=t("punct.enum", lang).join(bad_names)) if bad_names
              else t(key + "all_hold", lang))
        out.append(s)
    return out


def stress_payload(summary: pd.DataFrame, options: dict[str, Any]) -> dict[str, Any]:
    """Build the ``stress_test`` entry of the ``simulation_check`` section of ``results.json``.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`analysis.grid.stress.summarise_stress`.
    options : dict
        Where the records come from (file, replications, seed).

    Returns
    -------
    dict
        ``options`` and ``summary`` (one record per row).
    """
    from analysis.report.results_json import clean

    return {"options": clean(options), "summary": [clean(r) for r in summary.to_dict("records")]}


ARRIVAL_COLUMNS = ("scenario", "outcome", "arrival_year", "replications", "mean_truth", "bias", "bias_mc_se",
                   "bias_se", "bias_se_mc_se", "coverage", "coverage_mc_se")
"""Columns of :func:`arrival_table`."""


def arrival_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Tabulate the arrival-year decision's evidence: the headline with the arrival year left out and kept.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`analysis.grid.stress.summarise_stress` of records with the estimators ``cs`` (the
        headline, arrival year left out) and :data:`analysis.grid.stress.ARRIVAL_KEPT`.

    Returns
    -------
    pandas.DataFrame
        :data:`ARRIVAL_COLUMNS`, one row per scenario, outcome and rule (``arrival_year``:
        ``"left out"`` for the headline, ``"kept"``), in the summary's order: the bias with its
        Monte Carlo SE, the bias in standard errors (``bias_se`` = bias / mean SE, its MC SE
        ``bias_mc_se / mean_se``) and the coverage of the 95% interval with its MC SE.
    """
    rule = {"cs": "left out", ARRIVAL_KEPT: "kept"}
    d = summary[(summary["check"] == "estimate") & summary["method"].isin(list(rule))].copy()
    d["arrival_year"] = d["method"].map(rule)
    d["bias_se"] = d["bias"] / d["mean_se"]
    d["bias_se_mc_se"] = d["bias_mc_se"] / d["mean_se"]
    return d.reindex(columns=list(ARRIVAL_COLUMNS)).reset_index(drop=True)


def arrival_markdown(summary: pd.DataFrame) -> str:
    """Write the arrival-year table as Markdown, as the README and notebook 02 quote it.

    Parameters
    ----------
    summary : pandas.DataFrame
        As :func:`arrival_table`.

    Returns
    -------
    str
        A Markdown table (no trailing newline), scenarios and outcomes by their names in the code:
        bias (MC SE), bias / SE (MC SE), coverage % (MC SE), cities.
    """
    a = arrival_table(summary)
    head = "| scenario | outcome | arrival year | bias (MC SE) | bias / SE (MC SE) | coverage % (MC SE) | cities |"
    lines = [head, "|" + "---|" * 7]
    for r in a.itertuples():
        lines.append(f"| {r.scenario} | {r.outcome} | {r.arrival_year} | "
                     f"{r.bias:.3g} ({r.bias_mc_se:.2g}) | {r.bias_se:.2f} ({r.bias_se_mc_se:.2f}) | "
                     f"{100 * r.coverage:.1f} ({100 * r.coverage_mc_se:.1f}) | {r.replications} |")
    return "\n".join(lines)
