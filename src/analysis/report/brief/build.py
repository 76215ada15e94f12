"""Build the findings brief of a run: ``<run>/brief/brief.{zh,en}.{docx,html}`` from ``results.json``.

:func:`build_brief` is what ``study brief --run RUN --lang zh|en|both [--compare RUN_A]``
calls. It reads the run's ``results.json`` (never refits a model), draws the brief's charts
in each language (:mod:`analysis.report.brief.charts`: the forest chart and the event
study of each headline outcome, into ``<run>/brief/figures/<stem>.<lang>.png``), composes
each language's brief (:func:`~analysis.report.brief.content.compose_brief`) and writes it
as docx and HTML. A chart whose section is missing from ``results.json`` falls back to the
notebook's PNG in ``<run>/figures/`` (``02_forest.png``, ``03_event_<outcome>.png``), and
to a note if that is missing too. With ``compare_to``, the brief also says what changed
since that earlier run (:mod:`analysis.report.brief.changes`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from analysis.i18n import LANGS, check_lang
from analysis.report.brief.charts import draw_charts
from analysis.report.brief.content import compose_brief, headline_outcomes
from analysis.report.brief.docx_writer import FIXED_DATE, write_docx
from analysis.report.brief.html_writer import write_html
from analysis.report.results_json import load_results
from analysis.report.results_schema import Results


def _langs(lang: str) -> tuple[str, ...]:
    if lang == "both":
        return LANGS
    try:
        return (check_lang(lang),)
    except ValueError:
        raise ValueError(f"lang must be 'zh', 'en' or 'both', got {lang!r}") from None


def _run_date(results: Results) -> date:
    raw = results.meta.date if results.meta else None
    try:
        return date.fromisoformat(str(raw)[:10]) if raw else FIXED_DATE
    except ValueError:
        return FIXED_DATE


def build_brief(run_dir: Path, lang: str = "both", compare_to: Path | None = None,
                say: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Write the findings brief of a run in Chinese and/or English, as docx and HTML.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder (``outputs/<run-id>``), holding ``results.json`` and ``figures/``.
    lang : {"both", "zh", "en"}
        Language(s) to build.
    compare_to : pathlib.Path, optional
        An earlier run folder (with its ``results.json``): the brief then has a section,
        after the key messages, on what changed since it (the reasons and the headline
        estimates that moved).
    say : callable, optional
        Receives plain sentences on how the brief was composed (e.g. that it was shortened to
        meet the word limit, in both languages alike); default: nothing is said.

    Returns
    -------
    dict
        ``{"zh_docx": ..., "zh_html": ..., "en_docx": ..., "en_html": ...}`` (the languages
        built), paths under ``<run_dir>/brief/``.

    Raises
    ------
    FileNotFoundError
        If the run (or the earlier run) has no ``results.json``.
    ValueError
        For an unknown ``lang`` or a ``results.json`` without ``main_effects``.
    RuntimeError
        If the free CJK fonts of the lock are not installed.

    Examples
    --------
    >>> paths = build_brief(Path("outputs/latest"))  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['en_docx', 'en_html', 'zh_docx', 'zh_html']
    >>> build_brief(Path("outputs/with2025"), "en", compare_to=Path("outputs/full1"))  # doctest: +SKIP
    """
    langs = _langs(lang)
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    earlier = load_results(Path(compare_to)) if compare_to is not None else None
    figures = run_dir / "figures"
    out = run_dir / "brief"
    out.mkdir(parents=True, exist_ok=True)
    when = _run_date(results)
    paths: dict[str, Path] = {}
    me = results.main_effects
    outcomes = list(headline_outcomes(me).values()) if me is not None and me.outcomes else []
    fig_dir = figures if figures.is_dir() else None
    charts = {code: draw_charts(results, code, out, outcomes) for code in langs}
    briefs = {code: compose_brief(results, code, fig_dir, charts=charts[code], earlier=earlier) for code in langs}
    # Both languages say the same things: the step one needed to meet the word limit is given to the other.
    step = max(b.step for b in briefs.values())
    briefs = {code: b if b.step == step else compose_brief(results, code, fig_dir, charts=charts[code],
                                                            earlier=earlier, start=step)
              for code, b in briefs.items()}
    for code, brief in briefs.items():
        for message in brief.messages:
            if say is not None:
                say(message)
        paths[f"{code}_docx"] = write_docx(brief, out / f"brief.{code}.docx", when)
        paths[f"{code}_html"] = write_html(brief, out / f"brief.{code}.html")
    return paths
