"""Fonts of the brief: the fonts an official document requests, and the free fallback that always works.

The Chinese brief follows GB/T 9704-2012 (党政机关公文格式): title in 2号 (22 pt) 小标宋,
body in 3号 (16 pt) 仿宋_GB2312, first-level headings in 黑体, second-level headings in
楷体_GB2312; Latin letters and digits in Times New Roman. Those fonts are commercial or
Windows fonts that a Linux machine (or a reader's phone) may lack, so every role has a
fallback chain that ends in a free CJK font the project installs itself through the
lock: Noto Serif SC / Noto Sans SC (SIL Open Font License) from the PyPI package
``pylopdf-fonts-zh-cn`` (see :func:`analysis.report.figures.font_files`).

Fallback chains (first installed font wins; the last is the free font)
-------------------------------------------------------------------------
* title: 方正小标宋简体 -> 方正小标宋_GBK -> 宋体 (SimSun) -> Songti SC -> Noto Serif SC
* body: 仿宋_GB2312 -> 仿宋 (FangSong) -> STFangsong -> Noto Serif SC
* first-level headings: 黑体 (SimHei) -> STHeiti -> Noto Sans SC
* second-level headings: 楷体_GB2312 -> 楷体 (KaiTi) -> STKaiti -> Noto Serif SC
* page numbers (docx footer): 宋体 (SimSun) -> Songti SC -> Noto Serif SC
* English brief: Times New Roman -> Times -> Noto Serif SC (body); Arial -> Helvetica ->
  Noto Sans SC (title, headings)

How each format applies the chain
---------------------------------
* **docx**: each style names the first font of its chain in ``w:rFonts`` (``w:eastAsia``
  for Chinese text, ``w:ascii``/``w:hAnsi`` for Latin text, with ``w:hint="eastAsia"`` so
  that quotation marks and other shared characters use the Chinese font), and
  ``word/fontTable.xml`` declares every requested font with the second font of its chain
  as ``w:altName`` (仿宋_GB2312 -> 仿宋, 方正小标宋简体 -> 宋体, ...), charset 86 (GB2312)
  and a font family class. ISO/IEC 29500 allows a comma-separated list of alternates, but
  Word reads the value as a single name of at most 31 characters ([MS-OE376]), so only one
  is given; beyond it, Word and LibreOffice substitute by charset and family, which picks
  Noto Serif SC where that is the installed Chinese serif font. Fonts are not embedded:
  Word embeds only fonts with TrueType outlines, and the Noto files are CFF-flavoured.
* **HTML**: the CSS ``font-family`` of each role lists the chain, ending with an
  ``@font-face`` family whose source is a subset of the Noto font (only the characters of
  that page), embedded as a ``data:`` URI. The page therefore renders with no missing
  glyph on a machine without any CJK font, and the HTML file is self-contained.
  :func:`subset_font` is deterministic (the font's timestamps are kept), so two builds give
  identical bytes.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FREE_SERIF = "Noto Serif SC"
FREE_SANS = "Noto Sans SC"
WEB_SERIF = "Brief Noto Serif SC"
"""CSS family of the embedded serif subset (named apart from a system Noto Serif SC)."""
WEB_SANS = "Brief Noto Sans SC"
LATIN_IN_ZH = "Times New Roman"


@dataclass(frozen=True)
class FontChain:
    """A role's fonts: the requested ones in order, and the free fallback (``serif`` or ``sans``)."""

    requested: tuple[str, ...]
    free: str
    cjk: bool = True
    family: str = "roman"
    docx_alt: str | None = None

    @property
    def first(self) -> str:
        """The font a docx names in ``w:rFonts``."""
        return self.requested[0]

    @property
    def alternate(self) -> str:
        """The one alternate a docx declares (``w:altName``): ``docx_alt``, else the second font."""
        return self.docx_alt or (self.requested[1:] or (self.free_name,))[0]

    @property
    def free_name(self) -> str:
        """Family name of the free fallback font."""
        return FREE_SERIF if self.free == "serif" else FREE_SANS

    def css(self, latin_first: str | None = None) -> str:
        """Return the CSS ``font-family`` value (requested fonts, embedded subset, generic family)."""
        names = ([latin_first] if latin_first else []) + list(self.requested)
        web = WEB_SERIF if self.free == "serif" else WEB_SANS
        generic = "serif" if self.free == "serif" else "sans-serif"
        return ", ".join(f'"{n}"' for n in [*names, web]) + f", {generic}"


CHAINS: dict[str, dict[str, FontChain]] = {
    "zh": {
        "title": FontChain(("方正小标宋简体", "方正小标宋_GBK", "宋体", "SimSun", "Songti SC"), "serif",
                           docx_alt="宋体"),
        "body": FontChain(("仿宋_GB2312", "仿宋", "FangSong", "STFangsong"), "serif", family="modern"),
        "heading1": FontChain(("黑体", "SimHei", "STHeiti"), "sans", family="modern"),
        "heading2": FontChain(("楷体_GB2312", "楷体", "KaiTi", "STKaiti"), "serif", family="modern"),
        "page": FontChain(("宋体", "SimSun", "Songti SC"), "serif"),
    },
    "en": {
        "title": FontChain(("Arial", "Helvetica"), "sans", cjk=False, family="swiss"),
        "body": FontChain(("Times New Roman", "Times"), "serif", cjk=False, family="roman"),
        "heading1": FontChain(("Arial", "Helvetica"), "sans", cjk=False, family="swiss"),
        "heading2": FontChain(("Arial", "Helvetica"), "sans", cjk=False, family="swiss"),
        "page": FontChain(("Times New Roman", "Times"), "serif", cjk=False, family="roman"),
    },
}
"""The fallback chain of every role of the brief, by language (see the module docstring)."""


def free_font_files() -> dict[str, Path]:
    """Return the installed free fonts by kind.

    Returns
    -------
    dict
        ``{"serif": NotoSerifSC-Regular.otf, "sans": NotoSansSC-Regular.otf}`` (whichever exist).
    """
    from analysis.report.figures import font_files

    out: dict[str, Path] = {}
    for f in font_files():
        if "Serif" in f.name:
            out.setdefault("serif", f)
        elif "Sans" in f.name:
            out.setdefault("sans", f)
    return out


def require_free_fonts() -> dict[str, Path]:
    """Return the free fonts, or fail with how to install them.

    Returns
    -------
    dict
        As :func:`free_font_files`, with both ``serif`` and ``sans``.

    Raises
    ------
    RuntimeError
        If either font is missing.
    """
    files = free_font_files()
    missing = {"serif", "sans"} - set(files)
    if missing:
        raise RuntimeError(
            f"free CJK font(s) {sorted(missing)} not found: install the project's lock "
            "(pip install -r requirements.lock), which brings Noto Serif SC and Noto Sans SC from PyPI "
            "(package pylopdf-fonts-zh-cn)"
        )
    return files


@lru_cache(maxsize=32)
def _subset_cached(path: str, chars: str) -> bytes:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    opts = subset.Options()
    opts.name_IDs = ["*"]
    opts.name_languages = ["*"]
    opts.notdef_outline = True
    opts.layout_features = ["*"]
    opts.hinting = False
    with TTFont(path, recalcTimestamp=False, lazy=True) as font:
        sub = subset.Subsetter(opts)
        sub.populate(text=chars)
        sub.subset(font)
        buf = io.BytesIO()
        font.save(buf)
    return buf.getvalue()


def subset_font(path: Path, text: str) -> bytes:
    """Subset an OpenType font to the characters of ``text`` (plus printable ASCII).

    Parameters
    ----------
    path : pathlib.Path
        Font file.
    text : str
        Text the subset must render.

    Returns
    -------
    bytes
        The subset font (OpenType, same outline format as the source). Deterministic:
        the same font and characters give the same bytes.
    """
    chars = set(text) | {chr(c) for c in range(0x20, 0x7F)}
    chars = {c for c in chars if not c.isspace() or c == " "}
    return _subset_cached(str(path), "".join(sorted(chars)))


def font_data_uri(font: bytes) -> str:
    """Encode a font as a CSS ``data:`` URI.

    Parameters
    ----------
    font : bytes
        OpenType font.

    Returns
    -------
    str
        ``data:font/otf;base64,...``.
    """
    return "data:font/otf;base64," + base64.b64encode(font).decode("ascii")


def cmap_chars(font: bytes | Path) -> set[str]:
    """Return the characters a font maps to a glyph (its best Unicode cmap).

    Parameters
    ----------
    font : bytes or pathlib.Path
        Font data or file.

    Returns
    -------
    set of str
        Covered characters.
    """
    from fontTools.ttLib import TTFont

    with TTFont(io.BytesIO(font) if isinstance(font, bytes) else str(font), lazy=True) as f:
        return {chr(c) for c in f.getBestCmap()}
