"""Write a :class:`~analysis.report.brief.content.Brief` as a Word document (python-docx).

Layout of the Chinese brief after GB/T 9704-2012: A4, margins top 37 mm, bottom 35 mm,
inside 28 mm, outside 26 mm (type area 156 x 225 mm); title 22 pt (2号) 小标宋, centred;
body 16 pt (3号) 仿宋_GB2312, first line indented two characters, exact line spacing of
28.95 pt (22 lines a page); first-level headings 黑体, second-level headings 楷体_GB2312,
both 16 pt, numbered 一、/（一）; the date right-aligned, four characters from the
margin; page numbers "— 1 —" in 14 pt (4号) Song at the foot; the annex on a new page
under "附件" in 黑体. Fonts and their fallbacks: :mod:`analysis.report.brief.fonts`.

Determinism: the core properties carry fixed dates (the ``meta.date`` of
``results.json``, else 2000-01-01) and the package is re-zipped with fixed entry
timestamps, so two builds give identical bytes.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor
from lxml import etree

from analysis.i18n import t
from analysis.report.brief import fonts as F
from analysis.report.brief.content import Brief, Figure, Heading, Paragraph, Table
from analysis.report.brief.text import ui

FIXED_DATE = date(2000, 1, 1)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_THEME_ATTRS = ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme")
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

SIZES: dict[str, dict[str, float]] = {
    "zh": {"title": 22, "body": 16, "heading": 16, "table": 12, "annex": 9, "note": 14, "caption": 14},
    "en": {"title": 18, "body": 12, "heading": 13, "table": 10, "annex": 8, "note": 10.5, "caption": 10.5},
}


def _set_fonts(rpr, chain: F.FontChain, lang: str) -> None:
    """Name a chain's first font in ``w:rFonts`` of a run-properties element, removing theme fonts."""
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = OxmlElement("w:rFonts")
        rpr.insert(0, rfonts)
    for a in _THEME_ATTRS:
        rfonts.attrib.pop(qn(a), None)
    latin = F.LATIN_IN_ZH if lang == "zh" else chain.first
    east = chain.first if lang == "zh" else F.FREE_SERIF
    rfonts.set(qn("w:ascii"), latin)
    rfonts.set(qn("w:hAnsi"), latin)
    rfonts.set(qn("w:cs"), latin)
    rfonts.set(qn("w:eastAsia"), east)
    if lang == "zh":
        rfonts.set(qn("w:hint"), "eastAsia")


def _style_font(style, chain: F.FontChain, lang: str, size: float, bold: bool = False) -> None:
    style.font.size = Pt(size)
    style.font.bold = bold
    style.font.italic = False
    style.font.color.rgb = RGBColor(0, 0, 0)
    _set_fonts(style.element.get_or_add_rPr(), chain, lang)


def _para_format(style, *, indent_chars: float = 0, size: float = 16, exact: float | None = None,
                 align=WD_ALIGN_PARAGRAPH.JUSTIFY, before: float = 0, after: float = 0) -> None:
    pf = style.paragraph_format
    pf.alignment = align
    pf.first_line_indent = Pt(indent_chars * size) if indent_chars else Pt(0)
    pf.left_indent = Pt(0)
    pf.space_before = Pt(before)
    pf.space_after = Pt(after)
    if exact:
        pf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        pf.line_spacing = Pt(exact)
    else:
        pf.line_spacing_rule = WD_LINE_SPACING.SINGLE
    ppr = style.element.get_or_add_pPr()
    border = ppr.find(qn("w:pBdr"))
    if border is not None:
        ppr.remove(border)


def _setup_styles(doc, lang: str) -> None:
    ch = F.CHAINS[lang]
    sz = SIZES[lang]
    line = 28.95 if lang == "zh" else None
    indent = 2 if lang == "zh" else 0
    # document defaults: no theme fonts, language
    defaults = doc.styles.element.find(qn("w:docDefaults"))
    rpr = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr"))
    _set_fonts(rpr, ch["body"], lang)
    lang_el = rpr.find(qn("w:lang"))
    if lang_el is not None:
        lang_el.set(qn("w:val"), "zh-CN" if lang == "zh" else "en-GB")
        lang_el.set(qn("w:eastAsia"), "zh-CN")
    ppr_default = defaults.find(qn("w:pPrDefault")).find(qn("w:pPr"))
    spacing = ppr_default.find(qn("w:spacing"))
    if spacing is not None:
        ppr_default.remove(spacing)

    normal = doc.styles["Normal"]
    _style_font(normal, ch["body"], lang, sz["body"])
    _para_format(normal, indent_chars=indent, size=sz["body"], exact=line, after=0 if lang == "zh" else 6)

    title = doc.styles["Title"]
    _style_font(title, ch["title"], lang, sz["title"], bold=lang == "en")
    _para_format(title, align=WD_ALIGN_PARAGRAPH.CENTER, before=0, after=sz["body"] * (1 if lang == "zh" else 0.5))
    title.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE

    for name, chain_key in (("Heading 1", "heading1"), ("Heading 2", "heading2")):
        st = doc.styles[name]
        _style_font(st, ch[chain_key], lang, sz["heading"], bold=lang == "en")
        _para_format(st, indent_chars=indent, size=sz["body"], exact=line, before=0 if lang == "zh" else 12,
                     after=0 if lang == "zh" else 4)
        st.paragraph_format.keep_with_next = True

    extra = {
        "Brief Note": (ch["body"], sz["note"], 0, WD_ALIGN_PARAGRAPH.LEFT),
        "Brief Key": (ch["body"], sz["body"], indent, WD_ALIGN_PARAGRAPH.JUSTIFY),
        "Brief Table": (ch["body"], sz["table"], 0, WD_ALIGN_PARAGRAPH.LEFT),
        "Brief Annex": (ch["body"], sz["annex"], 0, WD_ALIGN_PARAGRAPH.LEFT),
        "Brief Caption": (ch["body"], sz["caption"], 0, WD_ALIGN_PARAGRAPH.CENTER),
        "Brief Figure": (ch["body"], sz["body"], 0, WD_ALIGN_PARAGRAPH.CENTER),
        "Brief Date": (ch["body"], sz["body"], 0, WD_ALIGN_PARAGRAPH.RIGHT),
        "Brief Annex Label": (ch["heading1"], sz["body"], 0, WD_ALIGN_PARAGRAPH.LEFT),
    }
    for name, (chain, size, ind, align) in extra.items():
        st = doc.styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
        st.base_style = normal
        _style_font(st, chain, lang, size)
        keep_exact = line if name in ("Brief Key", "Brief Date") else None
        _para_format(st, indent_chars=ind, size=size, exact=keep_exact, align=align,
                     after=3 if name in ("Brief Table", "Brief Annex") else (6 if lang == "en" else 0))
    doc.styles["Brief Date"].paragraph_format.right_indent = Pt(4 * sz["body"]) if lang == "zh" else Pt(0)
    doc.styles["Brief Date"].paragraph_format.space_before = Pt(sz["body"])


def _page_setup(doc, lang: str) -> None:
    sec = doc.sections[0]
    sec.orientation = WD_ORIENT.PORTRAIT
    sec.page_width, sec.page_height = Mm(210), Mm(297)
    sec.top_margin, sec.bottom_margin = Mm(37), Mm(35)
    sec.left_margin, sec.right_margin = Mm(28), Mm(26)
    sec.header_distance, sec.footer_distance = Mm(15), Mm(28) if lang == "zh" else Mm(15)
    footer = sec.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    footer.paragraph_format.first_line_indent = Pt(0)
    footer.paragraph_format.line_spacing_rule = WD_LINE_SPACING.SINGLE
    if lang == "zh":
        footer.add_run("— ")
    _page_field(footer)
    if lang == "zh":
        footer.add_run(" —")
    size = Pt(14 if lang == "zh" else 10)
    chain = F.CHAINS[lang]["page"]
    for r in footer._p.iter(qn("w:r")):
        rpr = r.get_or_add_rPr()
        _set_fonts(rpr, chain, lang)
        for tag in ("w:sz", "w:szCs"):
            el = OxmlElement(tag)
            el.set(qn("w:val"), str(int(size.pt * 2)))
            rpr.append(el)


def _page_field(paragraph) -> None:
    """Append a PAGE field (the page number) to a paragraph."""
    fld = OxmlElement("w:fldSimple")
    fld.set(qn("w:instr"), " PAGE ")
    r = OxmlElement("w:r")
    t = OxmlElement("w:t")
    t.text = "1"
    r.append(t)
    fld.append(r)
    paragraph._p.append(fld)


def _font_table(doc, lang: str) -> None:
    """Declare the requested fonts with one alternate each (``w:altName``) in ``word/fontTable.xml``."""
    part = next(p for p in doc.part.package.iter_parts() if str(p.partname) == "/word/fontTable.xml")
    root = etree.fromstring(part.blob)
    present = {f.get(qn("w:name")) for f in root.findall(qn("w:font"))}
    seen: set[str] = set()
    for chain in F.CHAINS[lang].values():
        if chain.first in seen:
            continue
        seen.add(chain.first)
        alt = chain.alternate  # Word reads one name of at most 31 characters
        if chain.first in present:
            font = next(f for f in root.findall(qn("w:font")) if f.get(qn("w:name")) == chain.first)
            for child in list(font):
                font.remove(child)
        else:
            font = etree.SubElement(root, qn("w:font"))
            font.set(qn("w:name"), chain.first)
        for tag, val in (("w:altName", alt), ("w:charset", "86" if chain.cjk else "00"),
                         ("w:family", chain.family), ("w:pitch", "variable")):
            el = etree.SubElement(font, qn(tag))
            el.set(qn("w:val"), val)
    part._blob = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _drop_thumbnail(doc) -> None:
    """Remove the template's generic thumbnail, which does not show this document."""
    rels = doc.part.package.rels
    for rid, rel in list(rels.items()):
        if rel.reltype.endswith("/metadata/thumbnail"):
            rels.pop(rid)


def _core_properties(doc, brief: Brief, when: date) -> None:
    cp = doc.core_properties
    stamp = datetime(when.year, when.month, when.day, tzinfo=UTC)
    cp.title = brief.title
    cp.subject = brief.annex_title
    cp.author = "analysis (first-secretary study)"
    cp.last_modified_by = "analysis"
    cp.comments = ""
    cp.keywords = ""
    cp.category = ""
    cp.language = "zh-CN" if brief.lang == "zh" else "en-GB"
    cp.revision = 1
    cp.created = stamp
    cp.modified = stamp
    cp.last_printed = stamp


def _cell_text(cell, text: str, style_id: str, bold: bool = False) -> None:
    p = cell.paragraphs[0]
    p._p.style = style_id  # by id: python-docx's lookup by name is slow for large tables
    run = p.add_run(text)
    if bold:
        run.bold = True


def _repeat_header(row) -> None:
    tr_pr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    tr_pr.append(el)


def _table(doc, table: Table, style: str) -> None:
    style_id = doc.styles[style].style_id
    t = doc.add_table(rows=1, cols=len(table.header))
    t.style = doc.styles["Table Grid"]
    t.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, text in zip(t.rows[0].cells, table.header, strict=True):
        _cell_text(cell, text, style_id, bold=True)
    _repeat_header(t.rows[0])
    for row in table.rows:
        cells = t.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            _cell_text(cell, text, style_id)


def render_docx(brief: Brief, when: date | None = None) -> bytes:
    """Render a brief as a .docx package.

    Parameters
    ----------
    brief : Brief
        Content from :func:`analysis.report.brief.content.compose_brief`.
    when : datetime.date, optional
        Date stamped into the core properties (default :data:`FIXED_DATE`).

    Returns
    -------
    bytes
        The document, deterministic for the same brief and date.
    """
    lang = brief.lang
    doc = Document()
    _setup_styles(doc, lang)
    _page_setup(doc, lang)
    _font_table(doc, lang)
    _drop_thumbnail(doc)
    _core_properties(doc, brief, when or FIXED_DATE)

    doc.add_paragraph(brief.title, style="Title")
    for note in brief.notes:
        doc.add_paragraph(note, style="Brief Note")
    doc.add_paragraph(ui("key_messages", lang), style="Heading 1")
    for i, msg in enumerate(brief.key_messages, start=1):
        doc.add_paragraph(t("brief.numbering.key_message", lang, number=i, text=msg), style="Brief Key")
    for block in brief.body:
        if isinstance(block, Heading):
            doc.add_paragraph(block.text, style="Heading 1" if block.level == 1 else "Heading 2")
        elif isinstance(block, Paragraph):
            doc.add_paragraph(block.text, style="Normal")
        elif isinstance(block, Table):
            _table(doc, block, "Brief Table")
        elif isinstance(block, Figure):
            if block.path is not None:
                p = doc.add_paragraph(style="Brief Figure")
                p.add_run().add_picture(str(block.path), width=Mm(150))
                doc.add_paragraph(block.caption, style="Brief Caption")
            else:
                doc.add_paragraph(block.caption, style="Brief Note")
    if brief.date:
        doc.add_paragraph(brief.date, style="Brief Date")

    label = doc.add_paragraph(brief.annex_label, style="Brief Annex Label")
    label.paragraph_format.page_break_before = True
    doc.add_paragraph(brief.annex_title, style="Title")
    _table(doc, brief.annex, "Brief Annex")
    doc.add_paragraph(brief.annex_note, style="Brief Note")

    buf = io.BytesIO()
    doc.save(buf)
    return _normalise_zip(buf.getvalue())


def _normalise_zip(data: bytes) -> bytes:
    """Re-zip a package with fixed entry timestamps and attributes (byte-identical rebuilds)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zi.create_system = 0
            dst.writestr(zi, src.read(info.filename))
    return out.getvalue()


def write_docx(brief: Brief, path: Path, when: date | None = None) -> Path:
    """Write a brief as a .docx file.

    Parameters
    ----------
    brief : Brief
        Content.
    path : pathlib.Path
        Output file.
    when : datetime.date, optional
        Date for the core properties (default :data:`FIXED_DATE`).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.write_bytes(render_docx(brief, when))
    return path
