"""The brief's own charts, drawn from ``results.json`` in the brief's language.

The notebooks draw their charts in one language (the run's ``lang``, default Chinese), so
the brief draws its two kinds of chart itself, once per language, from the numbers in
``results.json`` (never refitting a model):

``02_forest``
    The headline effect of every outcome as a percentage of the untreated mean with its
    95% interval (``main_effects.outcomes[o].pct_of_untreated_mean``), beside the simple
    TWFE benchmark on the same scale (``twfe`` divided by ``untreated_mean``), one panel
    per family of outcomes; the true effect as a black tick where ``truth`` is given
    (simulated data).
``03_event_<outcome>``
    The event study of a headline outcome (``event_studies[o]``): the Callaway-Sant'Anna
    estimates with their band (shaded when ``band`` is ``simultaneous``, whiskers when
    pointwise), TWFE, Sun-Abraham and the imputation estimator (BJS) with 95% whiskers;
    the reference year shaded and marked, a dotted line where treatment starts (between
    the reference year and the first year with a first secretary). The true path is
    drawn only if the section holds one (``event_studies[o].truth``, a list of
    ``{"event_time", "value"}``). The pipeline's ``results.json`` holds no per-year truth
    today (only the overall ``main_effects.outcomes[o].truth``), so the event charts of a
    real run show none.

Each chart is saved with :func:`analysis.report.figures.save_figure` (after
:func:`~analysis.report.figures.setup_fonts`) as ``<run>/brief/figures/<stem>.<lang>.png``
(and ``.svg``, with its text kept as text) and is deterministic: the same results give
the same bytes. Units are in the axis labels: percent of the untreated mean for the
forest chart; the outcome's unit for the event charts (yuan, 万元 for large Chinese
amounts as in the text, percentage points for 0/1 outcomes, counts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypedDict

import matplotlib
from matplotlib.artist import Artist
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.i18n import check_lang, t
from analysis.report.brief import text as T
from analysis.report.figures import save_figure, setup_fonts
from analysis.report.results_json import parse_results
from analysis.report.results_schema import EstimateRecord, Results

FOREST = "02_forest"
EVENT = "03_event_{outcome}"
ESTIMATORS = ("cs", "twfe", "sa", "bjs")
REFERENCE_DEFAULT = -1
"""Reference event time when no record marks it (the project's convention: the year before the posting)."""
class _Style(TypedDict):
    color: str
    marker: str
    offset: float
    """Horizontal shift of the estimator's points on the event-study chart (so they do not overlap)."""


STYLE: dict[str, _Style] = {
    "cs": {"color": "#1f5fa8", "marker": "o", "offset": -0.18},
    "twfe": {"color": "#d0612a", "marker": "s", "offset": -0.06},
    "sa": {"color": "#2a8c55", "marker": "^", "offset": 0.06},
    "bjs": {"color": "#7b4fa0", "marker": "D", "offset": 0.18},
}
WIDTH_IN = 6.6
"""Chart width in inches (the docx shows it 150 mm wide)."""


def _w(key: str, lang: str) -> str:
    """Return a word of the charts: ``brief.chart.<key>``, or an estimator's ``estimator.<key>.chart``."""
    if key in ESTIMATORS:
        return t(f"estimator.{key}.chart", lang)
    return t(f"brief.chart.{key}", lang)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _err(est: list[float], lo: list[float], hi: list[float]) -> list[list[float]]:
    """Whisker lengths below and above each estimate (never negative, should a record be inconsistent)."""
    return [[max(e - a, 0.0) for e, a in zip(est, lo, strict=True)],
            [max(b - e, 0.0) for e, b in zip(est, hi, strict=True)]]


# --------------------------------------------------------------------------------------------------
# Forest chart
# --------------------------------------------------------------------------------------------------


def forest_rows(results: Results | Mapping[str, Any]) -> list[tuple[str, list[dict]]]:
    """Collect the forest chart's numbers from ``main_effects``, grouped by family.

    Parameters
    ----------
    results : Results or mapping
        Parsed ``results.json``.

    Returns
    -------
    list of (str, list of dict)
        Families in the brief's order, each with its outcomes: ``outcome``, ``cs``
        (estimate, low, high, in percent of the untreated mean), ``twfe`` (the same, or
        None) and ``truth`` (percent, or None). Outcomes without a finite headline
        percentage are left out, and so are families left empty.
    """
    from analysis.report.brief.content import families

    me = parse_results(results).main_effects
    if me is None or not me.outcomes:
        return []
    out = []
    for fam, outcomes in families(me):
        rows = []
        for o in outcomes:
            b = me.outcomes[o]
            mean = b.untreated_mean if T.finite(b.untreated_mean) and b.untreated_mean != 0 else None
            pct, head = T.estimate_interval(b.pct_of_untreated_mean), T.estimate_interval(b.headline)
            if pct is not None:
                cs = tuple(100.0 * v for v in pct)
            elif mean is not None and head is not None:
                cs = tuple(100.0 * v / mean for v in head)
            else:
                continue
            tw = T.estimate_interval(b.twfe)
            twfe = tuple(100.0 * v / mean for v in tw) if mean is not None and tw is not None else None
            truth = 100.0 * b.truth / mean if mean is not None and T.finite(b.truth) else None
            rows.append({"outcome": o, "cs": cs, "twfe": twfe, "truth": truth, "fraction": cs[0] / 100.0})
        if rows:
            out.append((fam, rows))
    return out


def _signed_pct(fraction: float, lang: str) -> str:
    return ("+" if fraction >= 0 else "-") + T.fmt_pct(fraction, lang) + "%"


def draw_forest(results: Results | Mapping[str, Any], lang: str) -> Figure | None:
    """Draw the forest chart of the headline effects in ``lang``.

    Parameters
    ----------
    results : Results or mapping
        Parsed ``results.json``.
    lang : {"zh", "en"}
        Language of every label.

    Returns
    -------
    matplotlib.figure.Figure or None
        One panel per family, the headline (circle) above the TWFE benchmark (square) for
        each outcome, each with its 95% interval and the headline value written beside it;
        None if ``main_effects`` holds nothing to draw.
    """
    check_lang(lang)
    groups = forest_rows(results)
    if not groups:
        return None
    setup_fonts()
    sizes = [len(rows) for _, rows in groups]
    has_truth = any(r["truth"] is not None for _, rows in groups for r in rows)
    height = 1.3 + 0.5 * sum(sizes) + 0.45 * len(groups)
    fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
    axes = fig.subplots(len(groups), 1, squeeze=False, gridspec_kw={"height_ratios": sizes})[:, 0]
    cs_st, tw_st = STYLE["cs"], STYLE["twfe"]
    for ax, (fam, rows) in zip(axes, groups, strict=True):
        n = len(rows)
        xs: list[float] = [0.0]
        for i, r in enumerate(rows):
            y = float(n - 1 - i)
            est, lo, hi = r["cs"]
            ax.errorbar([est], [y + 0.16], xerr=_err([est], [lo], [hi]), fmt=cs_st["marker"], color=cs_st["color"],
                        ms=5, capsize=3, lw=1.4)
            ax.annotate(_signed_pct(r["fraction"], lang), (hi, y + 0.16), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=8, color=cs_st["color"])
            xs += [lo, hi]
            if r["twfe"] is not None:
                t_est, t_lo, t_hi = r["twfe"]
                ax.errorbar([t_est], [y - 0.16], xerr=_err([t_est], [t_lo], [t_hi]), fmt=tw_st["marker"],
                            color=tw_st["color"], ms=4.5, capsize=3, lw=1.1)
                xs += [t_lo, t_hi]
            if r["truth"] is not None:
                ax.plot([r["truth"]], [y], marker="|", color="black", ms=14, mew=2, ls="none")
                xs.append(r["truth"])
        ax.axvline(0, color="0.45", lw=0.8, ls="--")
        ax.set_yticks([float(n - 1 - i) for i in range(n)])
        ax.set_yticklabels([_cap(T.outcome_words(r["outcome"], lang)["short"]) for r in rows], fontsize=9.5)
        ax.set_ylim(-0.6, n - 0.4)
        lo, hi = min(xs), max(xs)
        pad = 0.08 * (hi - lo if hi > lo else 1.0)
        ax.set_xlim(lo - pad, hi + 2.5 * pad)
        ax.set_title(T.family_name(fam, lang), loc="left", fontsize=10.5)
        ax.grid(axis="x", color="0.9")
        ax.tick_params(axis="x", labelsize=8.5)
    axes[-1].set_xlabel(_w("forest_x", lang), fontsize=9.5)
    handles = [Line2D([], [], color=cs_st["color"], marker=cs_st["marker"], label=_w("cs", lang)),
               Line2D([], [], color=tw_st["color"], marker=tw_st["marker"], label=_w("twfe", lang))]
    if has_truth:
        handles.append(Line2D([], [], color="black", marker="|", ms=10, mew=2, ls="none", label=_w("truth", lang)))
    handles.append(Line2D([], [], color="0.3", marker="|", ms=0, lw=1.2, label=_w("whisker", lang)))
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False, fontsize=8.5)
    return fig


# --------------------------------------------------------------------------------------------------
# Event-study chart
# --------------------------------------------------------------------------------------------------


def _is_reference(rec: EstimateRecord) -> bool:
    if "(ref)" in str(rec.term or ""):
        return True
    return rec.std_error is None and rec.conf_low is None and rec.estimate == 0


def event_series(results: Results | Mapping[str, Any], outcome: str) -> dict | None:
    """Collect the event-study records of one outcome for the chart.

    Parameters
    ----------
    results : Results or mapping
        Parsed ``results.json``.
    outcome : str
        Outcome name.

    Returns
    -------
    dict or None
        ``{estimator: [record, ...]}`` sorted by event time (records with a finite
        ``event_time`` and ``estimate``), plus ``reference`` (event time of the reference
        year) and ``truth`` (list of ``(event_time, value)``, possibly empty); None if the
        section is missing or holds no estimate.
    """
    studies = parse_results(results).event_studies
    es = studies.root.get(outcome) if studies else None
    if es is None:
        return None
    out: dict = {}
    refs: list[float] = []
    for name in ESTIMATORS:
        recs = [r for r in getattr(es, name) if T.finite(r.event_time) and T.finite(r.estimate)]
        recs.sort(key=lambda r: r.event_time)
        refs += [r.event_time for r in recs if _is_reference(r)]
        if recs:
            out[name] = recs
    if not out:
        return None
    if not refs:
        refs = [r.options["ref"] for recs in out.values() for r in recs
                if isinstance(r.options, dict) and T.finite(r.options.get("ref"))]
    out["reference"] = max(set(refs), key=refs.count) if refs else REFERENCE_DEFAULT
    points = [(p.event_time, p.value if "value" in p.model_fields_set else p.truth) for p in es.truth or []]
    out["truth"] = sorted((e, v) for e, v in points if T.finite(e) and T.finite(v))
    return out


def event_scale(outcome: str, values: Iterable[float], lang: str, unit_hint: str | None = None) -> tuple[float, str]:
    """Choose the factor and unit of an outcome's event chart, as the text writes that outcome.

    Parameters
    ----------
    outcome : str
        Outcome name.
    values : iterable of float
        The values drawn (outcome units).
    lang : {"zh", "en"}
        Language.
    unit_hint : str, optional
        ``main_effects.outcomes[o].unit`` (for outcomes the brief does not know).

    Returns
    -------
    (float, str)
        Factor to multiply by and the unit: percentage points for 0/1 outcomes, 元/万元
        or yuan/million yuan for money, the count's unit otherwise.
    """
    w = T.outcome_words(outcome, lang, unit_hint)
    if w["kind"] == "binary":
        return 100.0, w["unit"]
    if w["kind"] == "money":
        div, unit = T.money_scale([v for v in values if T.finite(v)], lang)
        return 1.0 / div, unit
    return 1.0, w["unit"]


def draw_event(results: Results | Mapping[str, Any], outcome: str, lang: str) -> Figure | None:
    """Draw the event-study chart of one outcome in ``lang``.

    Parameters
    ----------
    results : Results or mapping
        Parsed ``results.json``.
    outcome : str
        Outcome name (a key of ``event_studies``).
    lang : {"zh", "en"}
        Language of every label.

    Returns
    -------
    matplotlib.figure.Figure or None
        The chart; None if ``event_studies`` has no estimates for the outcome.
    """
    check_lang(lang)
    results = parse_results(results)
    s = event_series(results, outcome)
    if s is None:
        return None
    setup_fonts()
    block = results.main_effects.outcomes.get(outcome) if results.main_effects else None
    unit_hint = block.unit if block else None
    values = [v for name in ESTIMATORS for r in s.get(name, []) for v in (r.estimate, r.conf_low, r.conf_high)
              if T.finite(v)] + [v for _, v in s["truth"]]
    factor, unit = event_scale(outcome, values, lang, unit_hint)
    words = T.outcome_words(outcome, lang, unit_hint)

    fig = Figure(figsize=(WIDTH_IN, 4.8), layout="constrained")
    ax = fig.subplots()
    ref = s["reference"]
    ax.axvspan(ref - 0.42, ref + 0.42, color="0.88", lw=0, zorder=0)
    ax.axhline(0, color="0.45", lw=0.8, zorder=1)
    ax.axvline(-0.5, color="0.2", lw=1.0, ls=":", zorder=1)
    handles: list[Artist | BarContainer] = []
    cs = s.get("cs", [])
    band = [r for r in cs if r.band == "simultaneous" and T.finite(r.conf_low) and T.finite(r.conf_high)]
    if band:
        # one shaded bar per event time: the band is not interpolated across years (or the reference year)
        bars = ax.bar([r.event_time + STYLE["cs"]["offset"] for r in band],
                      [(r.conf_high - r.conf_low) * factor for r in band],
                      bottom=[r.conf_low * factor for r in band], width=0.3, color=STYLE["cs"]["color"],
                      alpha=0.18, lw=0, zorder=2, label=_w("band", lang))
        handles.append(bars)
    for name in ESTIMATORS:
        recs = s.get(name, [])
        if not recs:
            continue
        st = STYLE[name]
        whisk = [r for r in recs if T.finite(r.conf_low) and T.finite(r.conf_high) and not _is_reference(r)
                 and not (name == "cs" and r.band == "simultaneous")]
        bare = [r for r in recs if r not in whisk and not _is_reference(r)]
        refs = [r for r in recs if _is_reference(r)]
        if whisk:
            ax.errorbar([r.event_time + st["offset"] for r in whisk], [r.estimate * factor for r in whisk],
                        yerr=_err([r.estimate * factor for r in whisk], [r.conf_low * factor for r in whisk],
                                  [r.conf_high * factor for r in whisk]),
                        fmt=st["marker"], color=st["color"], ms=4.5, capsize=2.5, lw=1.1, zorder=3)
        if bare:
            ax.plot([r.event_time + st["offset"] for r in bare], [r.estimate * factor for r in bare],
                    st["marker"], color=st["color"], ms=4.5, zorder=3)
        if refs:
            ax.plot([r.event_time + st["offset"] for r in refs], [r.estimate * factor for r in refs],
                    st["marker"], mfc="white", mec=st["color"], ms=4.5, zorder=3)
        handles.append(Line2D([], [], color=st["color"], marker=st["marker"], ms=4.5, label=_w(name, lang)))
    if s["truth"]:
        line = ax.plot([t for t, _ in s["truth"]], [v * factor for _, v in s["truth"]], color="black", ls="--",
                       lw=1, marker="x", ms=5, label=_w("truth_path", lang), zorder=4)
        handles.append(line[0])
    handles.append(Line2D([], [], color="0.3", marker="|", ms=0, lw=1.1, label=_w("whisker", lang)))
    times = sorted({int(r.event_time) for name in ESTIMATORS for r in s.get(name, [])} | {int(ref)})
    ax.set_xticks(times)
    ax.set_xlim(min(times) - 0.6, max(times) + 0.6)
    ax.tick_params(labelsize=8.5)
    drawn = [v * factor for v in values] + [0.0]
    low, high = min(drawn), max(drawn)
    pad = 0.08 * (high - low if high > low else 1.0)
    low, high = low - pad, high + 1.5 * pad
    ax.text(ref, high - 0.02 * (high - low), _w("ref", lang), ha="center", va="top", fontsize=8, color="0.3")
    ax.text(-0.45, low + 0.02 * (high - low), _w("start", lang), ha="left", va="bottom", fontsize=8, color="0.2")
    ax.set_ylim(low, high)
    per = words["per"].strip()
    per = _w("per_sep", lang) + per if per else ""
    ax.set_xlabel(_w("event_x", lang), fontsize=9.5)
    ax.set_ylabel(_w("event_y", lang).format(name=words["short"], unit=unit, per=per), fontsize=9.5)
    ax.grid(axis="y", color="0.92")
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False, fontsize=8.5)
    return fig


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def save_chart(fig: Figure, stem: str, lang: str, brief_dir: Path) -> Path:
    """Save a chart as ``<brief_dir>/figures/<stem>.<lang>.png`` (and ``.svg`` with text as text).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The chart.
    stem : str
        File stem, e.g. ``02_forest``.
    lang : {"zh", "en"}
        Language (part of the file name).
    brief_dir : pathlib.Path
        The run's ``brief/`` folder.

    Returns
    -------
    pathlib.Path
        The PNG file.
    """
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        paths = save_figure(fig, f"{stem}.{lang}", brief_dir)
    return paths["png"]


def draw_charts(results: Results | Mapping[str, Any], lang: str, brief_dir: Path,
                outcomes: Iterable[str]) -> dict[str, Path]:
    """Draw and save the brief's charts in one language.

    Parameters
    ----------
    results : Results or mapping
        Parsed ``results.json``.
    lang : {"zh", "en"}
        Language.
    brief_dir : pathlib.Path
        The run's ``brief/`` folder; charts go to its ``figures/``.
    outcomes : iterable of str
        Outcomes that get an event-study chart (the headline outcome of each family).

    Returns
    -------
    dict
        ``{stem: png path}`` for the charts drawn (``02_forest``, ``03_event_<outcome>``);
        a chart whose section is missing from ``results.json`` is left out (the brief then
        falls back to the notebook's PNG).
    """
    results = parse_results(results)
    out: dict[str, Path] = {}
    jobs: list[tuple[str, Callable[[], Figure | None]]] = [(FOREST, lambda: draw_forest(results, lang))]
    jobs += [(EVENT.format(outcome=o), partial(draw_event, results, o, lang)) for o in outcomes]
    for stem, draw in jobs:
        fig = draw()
        if fig is not None:
            out[stem] = save_chart(fig, stem, lang, brief_dir)
    return out
