"""Write a :class:`~analysis.report.brief.content.Brief` as one self-contained HTML file.

The page is rendered from ``templates/brief.html.j2`` (autoescaped) as polyglot markup:
valid HTML5 that is also well-formed XML, so a strict XML parser can check it. Charts are
embedded as ``data:`` URIs; fonts as ``data:`` URIs of Noto subsets that cover exactly the
characters on the page (see :mod:`analysis.report.brief.fonts`): the file can be mailed
or opened offline and shows no missing glyph on a machine without CJK fonts.
"""

from __future__ import annotations

import base64
import warnings
from functools import cache
from pathlib import Path

import jinja2
from lxml import etree

from analysis.report.brief import fonts as F
from analysis.report.brief.content import TEMPLATES, Brief, Figure, Heading, Paragraph, Table
from analysis.report.brief.text import ui

SIZES = {
    "zh": {"body": 16, "title": 22, "heading": 16, "note": 14, "table": 12, "annex": 9, "line": "1.8",
           "indent": "2em", "indent_list": "2em", "para_gap": "0", "date_right": "4em", "title_weight": "normal",
           "heading_weight": "normal"},
    "en": {"body": 12, "title": 18, "heading": 13, "note": 10.5, "table": 10, "annex": 8, "line": "1.5",
           "indent": "0", "indent_list": "1.5em", "para_gap": "0.6em", "date_right": "0", "title_weight": "bold",
           "heading_weight": "bold"},
}


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
    )


def _png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _blocks(brief: Brief) -> list[dict]:
    out = []
    for b in brief.body:
        if isinstance(b, Heading):
            out.append({"kind": "heading", "text": b.text, "level": b.level})
        elif isinstance(b, Paragraph):
            out.append({"kind": "paragraph", "text": b.text})
        elif isinstance(b, Table):
            out.append({"kind": "table", "header": b.header, "rows": b.rows, "role": b.role})
        elif isinstance(b, Figure):
            if b.path is None:
                out.append({"kind": "missing", "caption": b.caption})
            else:
                out.append({"kind": "figure", "caption": b.caption, "uri": _png_uri(b.path)})
    return out


def _css(lang: str) -> dict[str, str]:
    chains = F.CHAINS[lang]
    return {
        "body": chains["body"].css(F.LATIN_IN_ZH if lang == "zh" else None),
        "title": chains["title"].css(),
        "heading1": chains["heading1"].css(),
        "heading2": chains["heading2"].css(),
    }


def _render(brief: Brief, serif_uri: str, sans_uri: str) -> str:
    return _environment().get_template("brief.html.j2").render(
        brief=_BriefView(brief),
        doc_lang=ui("doc_lang", brief.lang),
        key_heading=ui("key_messages", brief.lang),
        css=_css(brief.lang),
        size=SIZES[brief.lang],
        web_serif=F.WEB_SERIF,
        web_sans=F.WEB_SANS,
        serif_uri=serif_uri,
        sans_uri=sans_uri,
    )


def parse_xhtml(html: str):
    """Parse a page strictly as XML (the brief is polyglot HTML5), without entities or network access.

    Parameters
    ----------
    html : str
        The page.

    Returns
    -------
    lxml.etree._Element
        The ``html`` root element.

    Raises
    ------
    lxml.etree.XMLSyntaxError
        If the page is not well-formed.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    return etree.fromstring(html.encode("utf-8"), parser)


def visible_text(html: str) -> str:
    """Return the text a reader can see on a page: the text of ``<body>`` and every ``alt`` text.

    Parameters
    ----------
    html : str
        The page.

    Returns
    -------
    str
        The text, concatenated.
    """
    body = parse_xhtml(html).find("body")
    if body is None:
        return ""
    alts = [el.get("alt") for el in body.iter() if isinstance(el.tag, str) and el.get("alt")]
    return "".join(body.itertext()) + "".join(alts)


def render_html(brief: Brief) -> str:
    """Render a brief as a self-contained HTML page.

    Parameters
    ----------
    brief : Brief
        Content from :func:`analysis.report.brief.content.compose_brief`.

    Returns
    -------
    str
        The page; deterministic for the same brief and figure files.

    Raises
    ------
    RuntimeError
        If the free CJK fonts are not installed (see :func:`analysis.report.brief.fonts.require_free_fonts`).
    """
    files = F.require_free_fonts()
    # First pass without fonts gives the visible text; the fonts are then subset to it.
    draft = _render(brief, "data:,", "data:,")
    text = visible_text(draft)
    serif = F.subset_font(files["serif"], text)
    sans = F.subset_font(files["sans"], text)
    for name, font in (("serif", serif), ("sans", sans)):
        missing = sorted({c for c in text if not c.isspace()} - F.cmap_chars(font))
        if missing:
            warnings.warn(f"{brief.lang} brief: the {name} font lacks glyphs for {''.join(missing)!r}", stacklevel=2)
    return _render(brief, F.font_data_uri(serif), F.font_data_uri(sans))


class _BriefView:
    """A brief whose body blocks are dicts for the template (``kind`` ...)."""

    def __init__(self, brief: Brief):
        self._brief = brief
        self.body = _blocks(brief)

    def __getattr__(self, name):
        return getattr(self._brief, name)


def write_html(brief: Brief, path: Path) -> Path:
    """Write a brief as a self-contained HTML file (UTF-8).

    Parameters
    ----------
    brief : Brief
        Content.
    path : pathlib.Path
        Output file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.write_bytes(render_html(brief).encode("utf-8"))
    return path
