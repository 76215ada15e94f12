r"""Text of bureau cells and headers: Unicode normalisation, units in headers, missing markers.

Every cell is normalised with Unicode NFKC (full-width digits, letters and punctuation
become half-width: ``１２３`` -> ``123``, ``（`` -> ``(``) and stripped of spaces, including
the ideographic space. Headers are compared without spaces, line breaks and ``*``/``※``
markers, in lower case (:func:`normalise_header`); a unit in brackets at the end of a
header (``村集体收入（万元）``) is split off by :func:`split_unit`.

A cell that is empty or equals one of :data:`MISSING_MARKERS` (``—``, ``——``, ``-``,
``--``, ``/``, ``\``, ``无``, ``空``, ``暂无``, ``不详``, ``NA``, ``N/A``, ``#N/A``,
``null``, ``...``) is missing (:func:`missing_mask`).
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

MISSING_MARKERS: tuple[str, ...] = (
    "",
    "—",
    "——",
    "―",
    "–",
    "-",
    "--",
    "/",
    "\\",
    "无",
    "空",
    "暂无",
    "不详",
    "NA",
    "N/A",
    "n/a",
    "#N/A",
    "null",
    "NULL",
    "...",
)
"""Cells (after NFKC normalisation and stripping) that mean "missing" (module docstring)."""


def normalise_text(value: str) -> str:
    """Return a cell's text with NFKC normalisation and surrounding spaces removed.

    Parameters
    ----------
    value : str
        The cell as read.

    Returns
    -------
    str
        Full-width characters made half-width (``１２３`` -> ``123``), stripped.

    Examples
    --------
    >>> normalise_text("　１２，３４５ ")
    '12,345'
    """
    if value.isascii():
        return value.strip()
    return unicodedata.normalize("NFKC", value).strip()


def normalise_header(value: str) -> str:
    r"""Return a header in the form aliases are compared in.

    NFKC, no spaces or line breaks, no ``*`` or ``※`` markers, lower case.

    Parameters
    ----------
    value : str
        A header cell or an alias.

    Returns
    -------
    str
        The normalised header.

    Examples
    --------
    >>> normalise_header("村集体收入\\n（万元）*")
    '村集体收入(万元)'
    """
    text = unicodedata.normalize("NFKC", str(value))
    return re.sub(r"[\s*※]+", "", text).lower()


def split_unit(header: str) -> tuple[str, str | None]:
    """Split a normalised header into its name and the unit in brackets at its end.

    Parameters
    ----------
    header : str
        Output of :func:`normalise_header`.

    Returns
    -------
    tuple of (str, str or None)
        The name and the unit (None if the header has no bracket at its end). A
        ``单位:`` prefix inside the bracket is dropped.

    Examples
    --------
    >>> split_unit("村集体收入(万元)")
    ('村集体收入', '万元')
    >>> split_unit("年份")
    ('年份', None)
    """
    m = re.fullmatch(r"(.+?)[(\[]([^()\[\]]*)[)\]]", header)
    if not m:
        return header, None
    unit = re.sub(r"^单位[:：]?", "", m.group(2))
    return m.group(1), unit


def normalise_series(s: pd.Series) -> tuple[pd.Series, int]:
    """NFKC-normalise and strip a column of cells.

    Parameters
    ----------
    s : pandas.Series
        Cells as read.

    Returns
    -------
    tuple of (pandas.Series, int)
        The normalised text, and the number of cells NFKC changed.
    """
    s = s.astype(object).fillna("").astype(str)
    wide = s.str.contains(r"[^\x00-\x7f]", regex=True).to_numpy(dtype=bool)
    changed = 0
    if wide.any():
        before = s[wide]
        uniq = pd.unique(before.to_numpy(dtype=object))
        table = {u: unicodedata.normalize("NFKC", u) for u in uniq}
        after = before.map(table)
        changed = int((after.str.strip() != before.str.strip()).sum())
        s = s.copy()
        s[wide] = after
    return s.str.strip(), changed


def missing_mask(s: pd.Series) -> np.ndarray:
    """Return which normalised cells are missing (empty or a missing marker).

    Parameters
    ----------
    s : pandas.Series
        Normalised cells.

    Returns
    -------
    numpy.ndarray
        Boolean mask.
    """
    return s.isin(MISSING_MARKERS).to_numpy(dtype=bool)
