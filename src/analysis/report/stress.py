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

from analysis.report.labels import Labels, label

__all__ = ["CHECK_COLUMNS", "ESTIMATOR_COLUMNS", "LABELS", "plot_stress", "stress_findings", "stress_payload",
           "stress_tables"]

ESTIMATOR_COLUMNS = ("scenario", "outcome", "estimator", "replications", "failed", "mean_truth", "bias", "bias_mc_se",
                     "relative_bias", "rmse", "se_ratio", "coverage", "coverage_mc_se", "verdict")
"""Columns of the estimators' table."""
CHECK_COLUMNS = ("scenario", "outcome", "check", "method", "replications", "failed", "null_true", "rate",
                 "rate_mc_se", "rate_kind", "verdict")
"""Columns of the checks' table: ``rate`` is a rejection rate (``rate_kind`` ``size`` or ``power``) or,
for HonestDiD, a coverage (``coverage``)."""

LABELS = Labels({
    "cs": ("CS（主估计）", "CS (headline)"),
    "sa": ("SA", "SA"),
    "bjs": ("BJS", "BJS"),
    "twfe": ("TWFE", "TWFE"),
    "ppml": ("PPML（水平）", "PPML (level)"),
    "ppml_pct": ("PPML（%）", "PPML (%)"),
    "pretest": ("预趋势检验", "pre-test"),
    "randomisation": ("随机化推断", "randomisation inference"),
    "wild": ("野聚类自助法（TWFE）", "wild bootstrap (TWFE)"),
    "wild_crv1": ("聚类稳健（TWFE）", "CRV1 (TWFE)"),
    "spillover": ("溢出检验", "spillover check"),
    "heterogeneity": ("干部类型同质性检验", "equal effects by cadre type"),
    "honest_original": ("常规区间（平均效应）", "conventional CI (average effect)"),
    "honest_rm": ("HonestDiD 相对幅度 M̄=1", "HonestDiD RM, M̄=1"),
    "honest_sd": ("HonestDiD 平滑 M=0", "HonestDiD SD, M=0"),
    "coverage_title": ("各估计量95%区间的覆盖率", "Coverage of the 95% interval, by estimator"),
    "rate_title": ("检验的拒绝率（原假设成立时应为5%）与 HonestDiD 覆盖率",
                   "Tests: rejection rate (5% when the null holds); HonestDiD: coverage"),
    "null_true": ("原假设成立（实心）", "null true (filled)"),
    "null_false": ("原假设不成立：检验功效（空心）", "null false: power (hollow)"),
    "suptitle": ("压力测试：每种情形{r}个模拟城市；误差线为±1.96蒙特卡洛标准误",
                 "Stress test: {r} simulated cities per scenario; bars ±1.96 Monte Carlo SE"),
    "default": ("默认城市", "default city"),
    "no_effect": ("无效应", "no effect"),
    "clustered_shocks": ("乡镇/区县-年冲击", "township/county-year shocks"),
    "few_clusters": ("同上，9个区县聚类", "same, 9 county clusters"),
    "partial_exposure": ("到任当年部分效应", "partial exposure in arrival year"),
    "anticipation": ("提前一年的效应", "effects one year early"),
    "nonlinear_trends": ("协变量非线性趋势", "non-linear covariate trends"),
    "trend_gap": ("与选点相关的趋势差异", "trends differ with targeting"),
    "spillover_rule": ("溢出规则（35%）不同于检验（50%）", "spillover rule (35%) unlike the check's (50%)"),
})
"""Labels of the estimators, checks and scenarios (else :func:`analysis.report.labels.label`)."""

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
                        label=LABELS(name, lang))
        a1.axhline(95, color="#c0392b", ls="--", lw=1)
        a1.set_ylim(-2, 102)
        a1.set_ylabel(label(oc, lang) + "\n" + ("覆盖率 (%)" if lang == "zh" else "coverage (%)"), fontsize=8)
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
                                color=col, mfc=face, label=LABELS(key, lang) if face == col or not size.any() else None)
        a2.axhline(5, color="#c0392b", ls="--", lw=1)
        a2.axhline(95, color="#c0392b", ls=":", lw=0.8)
        a2.set_ylim(-2, 102)
        for ax in (a1, a2):
            ax.set_xticks(x0, [LABELS(s, lang) for s in scenarios] if i == len(outcomes) - 1 else [""] * len(x0),
                          rotation=30, ha="right", fontsize=7)
            ax.grid(axis="y", color="0.92")
        if i == 0:
            a1.set_title(LABELS("coverage_title", lang), fontsize=10)
            a2.set_title(LABELS("rate_title", lang), fontsize=10)
            a1.legend(fontsize=7, ncol=3, frameon=False, loc="lower left")
            a2.legend(fontsize=7, ncol=2, frameon=False, loc="center left")
    r = int(summary["replications"].max()) if len(summary) else 0
    fig.suptitle(LABELS("suptitle", lang, r=r), fontsize=11)
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
    zh = lang == "zh"
    for scn, d in summary.groupby("scenario", sort=False):
        head = d[(d["check"] == "estimate") & (d["method"] == "cs")]
        parts = []
        for r in head.itertuples():
            parts.append(f"{label(r.outcome, lang)} {_pct(r.relative_bias) if np.isfinite(r.relative_bias) else 'n/a'}"
                         f"{'偏差，覆盖率' if zh else ' bias, coverage '}{_pct(r.coverage)}")
        bad = d[d["verdict"].astype(str).str.startswith(("over-rejects", "undercovers")) & (d["check"] != "estimate")]
        bad_names = list(dict.fromkeys(LABELS(_check_key(r.check, r.method), lang) for r in bad.itertuples()))
        n = int(d["replications"].max())
        if zh:
            s = f"压力测试“{LABELS(scn, 'zh')}”（{n}个城市）：主估计 " + "；".join(parts) + "。"
            s += ("未守住名义水平或覆盖率的检验：" + "、".join(bad_names) + "。") if bad_names else \
                "各检验均守住名义水平。"
        else:
            s = f"Stress test '{LABELS(scn, 'en')}' ({n} cities): headline " + "; ".join(parts) + ". "
            s += ("Checks that miss their size or coverage: " + ", ".join(bad_names) + ".") if bad_names else \
                "Every check holds its size."
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
