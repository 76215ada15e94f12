"""A run folder readable without Python: notebooks as HTML, a run ``index.html``, a short summary.

What a reader without Jupyter opens in ``outputs/<run-id>/``:

* ``notebooks/<NN_name>.html`` beside each executed ``.ipynb`` (:func:`notebook_html`): the
  notebook as JupyterLab shows it, figures embedded, one self-contained file that fetches
  nothing from the network (nbconvert's ``lab`` template without its MathJax, Mermaid and
  RequireJS scripts: the notebooks use none of them);
* ``summary.json`` and ``summary.md`` (:func:`run_summary`, :func:`write_summary`): the headline
  estimate of every outcome with its 95% interval and p-values, the estimator and its options,
  the analysis window, the run id, the seed and the data source. Every number is copied from
  ``results.json`` (and the run's ``MANIFEST``), never recomputed;
* ``index.html`` (:func:`write_index`): one plain page, headings in Chinese and English, with the
  headline table and a link to everything in the folder: the brief in both languages, every
  notebook, table (CSV, Markdown, LaTeX) and figure (Chinese, English, SVG), and the records.

:func:`write_run_pages` writes them all; ``study run`` calls it before its last ``MANIFEST`` (so
the pages are hashed there), ``study brief`` rewrites the index (the brief's links go live) and
``study pages`` writes them for an existing run folder.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from analysis.i18n import LANGS, column_label, t
from analysis.report.manifest import read_manifest
from analysis.report.results_json import load_results

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
NOTEBOOK_TEMPLATE = "study_notebook.html.j2"
"""nbconvert template of the notebook pages (in :data:`TEMPLATE_DIR`): JupyterLab's, without scripts."""
SUMMARY_FILES = ("summary.json", "summary.md")


def both(key: str, sep: str = " / ") -> str:
    """Return a heading of the catalogue in English and Chinese side by side.

    Parameters
    ----------
    key : str
        Key under ``pages`` in :mod:`analysis.i18n` (``headline``, ``brief``, ...), or a full key
        (``column.seed``).
    sep : str, default " / "
        Between the two.

    Returns
    -------
    str
        E.g. ``"Headline estimates / 主要估计"``.
    """
    key = key if "." in key else f"pages.{key}"
    return f"{t(key, 'en')}{sep}{t(key, 'zh')}"


class RunPagesError(Exception):
    """A run folder the pages cannot be written for (no ``results.json``); the message says what to do."""


# --------------------------------------------------------------------------------------------------
# notebooks as HTML
# --------------------------------------------------------------------------------------------------


def notebook_html(ipynb: Path, out: Path | None = None) -> Path:
    """Write an executed notebook as one self-contained HTML page beside it.

    Parameters
    ----------
    ipynb : pathlib.Path
        The executed notebook.
    out : pathlib.Path, optional
        The page (default: the notebook's path with ``.html``).

    Returns
    -------
    pathlib.Path
        The page: JupyterLab's light theme with its CSS inlined, figures embedded as base64, no
        ``<script>`` and no file fetched from a CDN.
    """
    import nbformat
    from nbconvert import HTMLExporter

    ipynb = Path(ipynb)
    out = Path(out) if out is not None else ipynb.with_suffix(".html")
    exporter = HTMLExporter(template_name="lab", embed_images=True, extra_template_paths=[str(TEMPLATE_DIR)],
                            template_file=NOTEBOOK_TEMPLATE)
    body, _ = exporter.from_notebook_node(nbformat.read(ipynb, as_version=4))
    out.write_text(body, encoding="utf-8")
    return out


def notebook_title(ipynb: Path) -> str:
    """Return a notebook's title: the first heading of its first Markdown cell (else its name).

    Parameters
    ----------
    ipynb : pathlib.Path
        The notebook.

    Returns
    -------
    str
        E.g. ``"02 · Main effects / 主要效应"``.
    """
    try:
        cells = json.loads(Path(ipynb).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return Path(ipynb).stem
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            source = "".join(cell.get("source", []))
            for line in source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return Path(ipynb).stem


# --------------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------------


def run_summary(run_dir: Path) -> dict[str, Any]:
    """Collect the headline numbers of a run from its ``results.json`` and ``MANIFEST``.

    Nothing is recomputed: each estimate, interval and p-value is the value ``results.json``
    holds, as are the window, the data's description and the specification; the seed and the
    store come from the ``MANIFEST`` (the seed from ``results.json``'s ``meta`` without one).

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.

    Returns
    -------
    dict
        ``run``, ``complete`` (None without a MANIFEST), ``seed``, ``window`` (first and last year,
        the store's years, ``source``), ``data`` (synthetic or not, villages, treated villages,
        townships, the store and its last ingest), ``specification`` (the headline's options),
        ``estimates`` (one record per outcome, in the brief's order of families: ``outcome``, ``label``
        in zh and en, ``family``, ``family_headline``, ``unit``, ``estimate``, ``conf_low``,
        ``conf_high``, ``conf_level``, ``p_value``, ``romano_wolf_p``, ``pct_of_untreated_mean``,
        ``estimator``, ``control_group``, ``n_obs``, ``n_clusters``), ``missing`` (why there are
        no estimates, or None) and ``source``.

    Raises
    ------
    RunPagesError
        If the folder has no ``results.json``.
    """
    from analysis.report.brief.content import families, headline_outcomes

    run_dir = Path(run_dir)
    try:
        results = load_results(run_dir)
    except FileNotFoundError:
        raise RunPagesError(f"the run folder {run_dir} has no results.json: it is written when the notebooks of "
                            "`study run` finish (the first one writes its section); run the study into it, or "
                            "choose a run that has one (`study pages --run NAME`)") from None
    manifest = read_manifest(run_dir)
    data = results.data
    window = data.window if data is not None else None
    store = manifest.get("inputs", {}).get("store", {})
    out: dict[str, Any] = {
        "run": run_dir.name,
        "complete": manifest.get("complete") if manifest else None,
        "seed": manifest.get("seed", results.meta.seed if results.meta is not None else None),
        "window": window.model_dump() if window is not None else _window_of_parameters(data, manifest),
        "data": None if data is None else {
            "synthetic": data.synthetic, "villages": data.villages, "treated_villages": data.treated_villages,
            "townships": data.townships, "note": data.truth_note, "store": store.get("path"),
            "last_ingest": manifest.get("store_state", {}).get("last_ingest")},
        "specification": None,
        "estimates": [],
        "missing": None,
        "source": "results.json (values copied, not recomputed)",
    }
    me = results.main_effects
    if me is None or not me.outcomes:
        out["missing"] = ("results.json has no main_effects section: notebook 02_main_effects has not run into "
                          "this folder")
        return out
    headline = me.options.headline
    out["specification"] = headline.model_dump() if headline is not None else None
    heads = set(headline_outcomes(me).values())
    order = [o for _, os in families(me) for o in os if o in me.outcomes] or list(me.outcomes)
    for o in order:
        block = me.outcomes[o]
        h = block.headline
        if h is None:
            continue
        alpha = h.options.get("alpha") if isinstance(h.options, dict) else None
        pct = block.pct_of_untreated_mean
        out["estimates"].append({
            "outcome": o, "label": {lang: column_label(o, lang) for lang in LANGS}, "family": block.family,
            "family_headline": o in heads, "unit": block.unit,
            "estimate": h.estimate, "conf_low": h.conf_low, "conf_high": h.conf_high,
            "conf_level": round(1 - alpha, 10) if isinstance(alpha, int | float) else None,
            "p_value": h.p_value, "romano_wolf_p": block.romano_wolf_p,
            "pct_of_untreated_mean": pct.model_dump() if pct is not None else None,
            "estimator": h.estimator, "control_group": h.control_group, "n_obs": h.n_obs, "n_clusters": h.n_clusters,
        })
    return out


def _window_of_parameters(data: Any, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the window without ``data.window``: the data section's years, else the run's parameters."""
    if data is not None and data.first_year is not None:
        return {"first_year": data.first_year, "last_year": data.last_year, "source": "results.json data"}
    years = {(p.get("first_year"), p.get("last_year")) for p in manifest.get("parameters", {}).values()
             if p.get("first_year") is not None}
    if len(years) != 1:
        return None
    first, last = years.pop()
    return {"first_year": first, "last_year": last, "source": "MANIFEST parameters"}


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2g}"


def _pct(value: Any) -> str:
    return "–" if not isinstance(value, int | float) else f"{100 * value:.3g}%"


def _interval(low: Any, high: Any) -> str:
    return f"[{_num(low)}, {_num(high)}]"


def _window_text(summary: Mapping[str, Any]) -> str:
    w = summary.get("window") or {}
    if not w.get("first_year"):
        return "–"
    years = f"{w['first_year']}–{w['last_year']}"
    if w.get("source") == "store":
        years += f" ({both('every_year')})"
    elif w.get("store_years"):
        years += f" (the store holds {min(w['store_years'])}–{max(w['store_years'])})"
    return years


def _data_text(summary: Mapping[str, Any]) -> str:
    d = summary.get("data")
    if not d:
        return "–"
    kind = both("synthetic") if d.get("synthetic") else both("ingested")
    parts = [kind, f"{_num(d.get('villages'), 6)} villages, {_num(d.get('treated_villages'), 6)} with a first "
                   f"secretary, {_num(d.get('townships'), 6)} townships"]
    if d.get("store"):
        parts.append(f"store {d['store']}" + (f" (last ingest {d['last_ingest']})" if d.get("last_ingest") else ""))
    return "; ".join(parts)


def _spec_text(summary: Mapping[str, Any]) -> str:
    s = summary.get("specification") or {}
    if not s:
        return "–"
    bits = [f"{s.get('estimator')}" + (f" ({s['method']})" if s.get("method") else ""),
            f"aggregation {s.get('aggregation')}", f"comparison villages {s.get('control_group')}",
            f"covariates {', '.join(s.get('covariates') or []) or 'none'}", f"clustered by {s.get('cluster')}"]
    if s.get("inference"):
        bits.append(f"inference: {s['inference']}")
    return "; ".join(bits)


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """Lay out a run summary (:func:`run_summary`) as Markdown, headings in Chinese and English.

    Parameters
    ----------
    summary : mapping
        The summary.

    Returns
    -------
    str
        A short document: the run, window, data, estimator and seed, then one table row per outcome.
    """
    lines = [f"# {t('pages.run', 'en')} {summary['run']} · {t('pages.summary', 'zh')}", "",
             f"- {both('window')}: {_window_text(summary)}",
             f"- {both('data')}: {_data_text(summary)}",
             f"- {both('estimator')}: {_spec_text(summary)}",
             f"- {both('column.seed')}: {summary.get('seed') if summary.get('seed') is not None else '–'}",
             f"- {both('source')}: {summary['source']}", ""]
    if summary.get("complete") is False:
        lines += [f"**{both('partial')}**: not every notebook ran into this folder.", ""]
    lines += [f"## {both('headline')}", ""]
    if not summary["estimates"]:
        lines += [f"None: {summary.get('missing')}.", ""]
        return "\n".join(lines)
    lines += [f"| outcome | {t('brief.annex_head.outcome', 'zh')} | family | estimate | 95% interval | p | "
              "Romano-Wolf p | % of untreated mean | unit |",
              "|---|---|---|---:|---|---:|---:|---:|---|"]
    for e in summary["estimates"]:
        pct = e.get("pct_of_untreated_mean") or {}
        name = e["label"]["en"] + (" (family headline)" if e["family_headline"] else "")
        lines.append(f"| {name} | {e['label']['zh']} | {e['family']} | {_num(e['estimate'])} | "
                     f"{_interval(e['conf_low'], e['conf_high'])} | {_num(e['p_value'], 2)} | "
                     f"{_num(e['romano_wolf_p'], 2)} | {_pct(pct.get('estimate'))} | {e['unit']} |")
    lines += ["", "Effects are averages over the treated village-years (the simple ATT); intervals are pointwise 95%; "
              "the Romano-Wolf p-value is adjusted within each family. Everything else is in `results.json`, "
              "`tables/` and the brief.", ""]
    return "\n".join(lines)


def write_summary(run_dir: Path) -> dict[str, Path]:
    """Write ``summary.json`` and ``summary.md`` into a run folder.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.

    Returns
    -------
    dict
        ``{"json": path, "md": path}``.

    Raises
    ------
    RunPagesError
        If the folder has no ``results.json``.
    """
    run_dir = Path(run_dir)
    summary = run_summary(run_dir)
    paths = {"json": run_dir / "summary.json", "md": run_dir / "summary.md"}
    paths["json"].write_text(json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["md"].write_text(summary_markdown(summary), encoding="utf-8")
    return paths


# --------------------------------------------------------------------------------------------------
# index.html
# --------------------------------------------------------------------------------------------------

CSS = """
body { font-family: "Noto Sans SC", "PingFang SC", "Microsoft YaHei", system-ui, sans-serif; max-width: 72em;
       margin: 2em auto; padding: 0 1em; line-height: 1.5; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.92em; } td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; }
th { background: #f4f4f4; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.missing { color: #888; } code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _a(run_dir: Path, rel: str, text: str | None = None) -> str:
    """Link to ``rel`` if the file exists, else show the name greyed out."""
    label = html.escape(text or rel)
    if (Path(run_dir) / rel).is_file():
        return f'<a href="{html.escape(rel)}">{label}</a>'
    return f'<span class="missing">{label}</span>'


def _stems(folder: Path, patterns: Iterable[str]) -> list[str]:
    return sorted({p.stem for pattern in patterns for p in folder.glob(pattern) if p.is_file()})


def _index_body(run_dir: Path, summary: Mapping[str, Any] | None, problem: str | None) -> list[str]:
    run = run_dir.name
    h: list[str] = [f"<h1>{t('pages.run', 'en')} {html.escape(run)} · {t('pages.run', 'zh')}</h1>"]
    manifest = read_manifest(run_dir)
    if manifest:
        state = (f"{both('complete')}: every notebook ran with one set of parameters" if manifest.get("complete")
                 else f"{both('partial')}: missing {', '.join(manifest.get('missing', []))}")
        h.append(f"<p>{html.escape(state)}</p>")
    if summary is not None:
        items = [(both("window"), _window_text(summary)), (both("data"), _data_text(summary)),
                 (both("estimator"), _spec_text(summary)),
                 (both("column.seed"), str(summary.get("seed") if summary.get("seed") is not None else "–"))]
        h.append("<ul>" + "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in items) + "</ul>")

    h.append(f"<h2>{both('headline', ' · ')}</h2>")
    if summary is None:
        h.append(f"<p class=\"missing\">{html.escape(problem or '')}</p>")
    elif not summary["estimates"]:
        h.append(f"<p class=\"missing\">{html.escape(str(summary.get('missing')))}</p>")
    else:
        head = ("outcome", t("brief.annex_head.outcome", "zh"), "estimate", "95% interval", "p", "Romano-Wolf p",
                "% of untreated mean", "unit")
        rows = ["<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"]
        for e in summary["estimates"]:
            pct = e.get("pct_of_untreated_mean") or {}
            name = e["label"]["en"] + (" ★" if e["family_headline"] else "")
            cells = [(name, ""), (e["label"]["zh"], ""), (_num(e["estimate"]), "n"),
                     (_interval(e["conf_low"], e["conf_high"]), "n"), (_num(e["p_value"], 2), "n"),
                     (_num(e["romano_wolf_p"], 2), "n"), (_pct(pct.get("estimate")), "n"), (e["unit"] or "", "")]
            rows.append("<tr>" + "".join(f'<td class="{c}">{html.escape(v)}</td>' if c else f"<td>{html.escape(v)}</td>"
                                         for v, c in cells) + "</tr>")
        h.append("<table>" + "".join(rows) + "</table>")
        h.append(f"<p>★ {both('family_headline')}. Every number is copied from "
                 f"{_a(run_dir, 'results.json')} ({_a(run_dir, 'summary.md')}, {_a(run_dir, 'summary.json')}).</p>")

    h.append(f"<h2>{both('brief', ' · ')}</h2><ul>")
    for lang in LANGS:
        h.append(f"<li>{t('pages.language', lang)}: {_a(run_dir, f'brief/brief.{lang}.html', 'HTML')} · "
                 f"{_a(run_dir, f'brief/brief.{lang}.docx', 'Word (docx)')}</li>")
    h.append("</ul>")
    if not (run_dir / "brief").is_dir():
        h.append(f"<p class=\"missing\">{both('not_written')}: <code>study brief --run {html.escape(run)}</code> "
                 "(<code>make study</code> writes it).</p>")

    h.append(f"<h2>{both('notebooks', ' · ')}</h2><ul>")
    for ipynb in sorted((run_dir / "notebooks").glob("*.ipynb")):
        rel = f"notebooks/{ipynb.stem}"
        h.append(f"<li>{_a(run_dir, rel + '.html', notebook_title(ipynb))} "
                 f"({_a(run_dir, rel + '.html', 'HTML')} · {_a(run_dir, rel + '.ipynb', 'ipynb')})</li>")
    h.append("</ul>")

    h.append(f"<h2>{both('tables', ' · ')}</h2>")
    tables = _stems(run_dir / "tables", ("*.csv", "*.md", "*.tex"))
    links = {s: " · ".join(_a(run_dir, f"tables/{s}.{ext}", ext.upper()) for ext in ("csv", "md", "tex"))
             for s in tables}
    h.append("<ul>" + "".join(f"<li>{html.escape(s)}: {links[s]}</li>" for s in tables) + "</ul>" if tables
             else '<p class="missing">none</p>')
    h.append("<p>CSV: tidy, raw column names; Markdown and LaTeX: readable headings in the run's language.</p>")

    h.append(f"<h2>{both('figures', ' · ')}</h2>")
    figures = _stems(run_dir / "figures", ("*.png", "*.svg", "zh/*.png", "en/*.png"))
    names = {lang: t("pages.language", lang) for lang in LANGS}
    links = {s: " · ".join([*(_a(run_dir, f"figures/{lang}/{s}.png", f"{names[lang]} PNG") for lang in LANGS),
                            _a(run_dir, f"figures/{s}.svg", "SVG")]) for s in figures}
    h.append("<ul>" + "".join(f"<li>{html.escape(s)}: {links[s]}</li>" for s in figures) + "</ul>" if figures
             else '<p class="missing">none</p>')
    h.append("<p>SVG (and <code>figures/&lt;name&gt;.png</code>) in the run's language (parameter "
             "<code>lang</code>).</p>")

    h.append(f"<h2>{both('records', ' · ')}</h2><ul>")
    records = [("results.json", "every headline number with its interval, estimator and options"),
               ("summary.json", "the headline estimates, short"), ("summary.md", "the same, as a table"),
               ("MANIFEST", "sha256 of every input and output, parameters, versions, seed"),
               ("kernels.log", "what the kernels printed outside the notebooks")]
    h += [f"<li>{_a(run_dir, rel)}: {html.escape(what)}</li>" for rel, what in records if (run_dir / rel).is_file()]
    h += [f"<li>{_a(run_dir, 'results/' + p.name)}</li>" for p in sorted((run_dir / "results").glob("*.json"))]
    h.append("</ul>")
    return h


def write_index(run_dir: Path) -> Path:
    """Write the run's ``index.html``: one plain, self-contained page linking everything in the folder.

    A run without ``results.json`` still gets its page (the notebooks and files it holds), with
    the reason in place of the headline table; a brief not yet written is shown greyed out with
    the command that writes it.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.

    Returns
    -------
    pathlib.Path
        ``run_dir / "index.html"``.
    """
    run_dir = Path(run_dir)
    try:
        summary, problem = run_summary(run_dir), None
    except RunPagesError as exc:
        summary, problem = None, str(exc)
    body = "\n".join(_index_body(run_dir, summary, problem))
    title = f"{t('pages.run', 'en')} {html.escape(run_dir.name)} · {t('pages.run', 'zh')}"
    page = (f'<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
    path = run_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_run_pages(run_dir: Path, notebooks: Iterable[str] | None = None) -> list[Path]:
    """Write the readable pages of a run: notebook HTML, ``summary.json``/``.md``, ``index.html``.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.
    notebooks : iterable of str, optional
        Stems of the notebooks to convert (those a ``study run`` just executed); every notebook
        of the folder whose HTML is missing is converted too. None: every notebook.

    Returns
    -------
    list of pathlib.Path
        The files written. The summary is skipped (and the index says why) when the folder has
        no ``results.json``.
    """
    run_dir = Path(run_dir)
    wanted = None if notebooks is None else set(notebooks)
    written = [notebook_html(nb) for nb in sorted((run_dir / "notebooks").glob("*.ipynb"))
               if wanted is None or nb.stem in wanted or not nb.with_suffix(".html").is_file()]
    if (run_dir / "results.json").is_file():
        written += write_summary(run_dir).values()
    written.append(write_index(run_dir))
    return written
