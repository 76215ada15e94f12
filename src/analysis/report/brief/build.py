"""Build the findings brief of a run: ``<run>/brief/brief.{zh,en}.{docx,html}`` from ``results.json``.

:func:`build_brief` is what ``study brief --run RUN --lang zh|en|both`` calls. It reads the
run's ``results.json`` (never refits a model) and the charts in ``<run>/figures/``
(``02_forest.png`` and ``03_event_<outcome>.png`` of each headline outcome; a chart that
is missing is replaced by a note), composes each language's brief
(:func:`~analysis.report.brief.content.compose_brief`) and writes it as docx and HTML.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from analysis.report.brief.content import compose_brief
from analysis.report.brief.docx_writer import FIXED_DATE, write_docx
from analysis.report.brief.html_writer import write_html
from analysis.report.brief.text import LANGS, check_lang
from analysis.report.results_json import read_results


def _langs(lang: str) -> tuple[str, ...]:
    if lang == "both":
        return LANGS
    try:
        return (check_lang(lang),)
    except ValueError:
        raise ValueError(f"lang must be 'zh', 'en' or 'both', got {lang!r}") from None


def _run_date(results: dict) -> date:
    raw = (results.get("meta") or {}).get("date")
    try:
        return date.fromisoformat(str(raw)[:10]) if raw else FIXED_DATE
    except ValueError:
        return FIXED_DATE


def build_brief(run_dir: Path, lang: str = "both") -> dict[str, Path]:
    """Write the findings brief of a run in Chinese and/or English, as docx and HTML.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder (``outputs/<run-id>``), holding ``results.json`` and ``figures/``.
    lang : {"both", "zh", "en"}
        Language(s) to build.

    Returns
    -------
    dict
        ``{"zh_docx": ..., "zh_html": ..., "en_docx": ..., "en_html": ...}`` (the languages
        built), paths under ``<run_dir>/brief/``.

    Raises
    ------
    FileNotFoundError
        If the run has no ``results.json``.
    ValueError
        For an unknown ``lang`` or a ``results.json`` without ``main_effects``.
    RuntimeError
        If the free CJK fonts of the lock are not installed.

    Examples
    --------
    >>> paths = build_brief(Path("outputs/latest"))  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['en_docx', 'en_html', 'zh_docx', 'zh_html']
    """
    langs = _langs(lang)
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    figures = run_dir / "figures"
    out = run_dir / "brief"
    out.mkdir(parents=True, exist_ok=True)
    when = _run_date(results)
    paths: dict[str, Path] = {}
    for code in langs:
        brief = compose_brief(results, code, figures if figures.is_dir() else None)
        paths[f"{code}_docx"] = write_docx(brief, out / f"brief.{code}.docx", when)
        paths[f"{code}_html"] = write_html(brief, out / f"brief.{code}.html")
    return paths
