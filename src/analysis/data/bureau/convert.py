r"""Bureau cells into canonical values: codes, years, text, categories and dates.

Every converter takes a column of normalised cells (:mod:`analysis.data.bureau.text`),
returns the canonical values and the cells it reported, and records the rules it applied
in a :class:`~analysis.data.bureau.cells.CellLog`. Numbers are in
:mod:`analysis.data.bureau.numbers`.

Codes
    Spaces inside a code are removed. ``110101001001.0`` (a code stored as a number)
    is recoverable: the ``.0`` is dropped and the report notes the rows.
    ``1.10101E+11`` (scientific notation, as Excel shows and exports long numbers) has
    lost its last digits: the rows are refused and named. A code in scientific
    notation that still has all its digits (``9.90101001001E+11``) is converted.
Years
    ``2023``, ``2023年``, ``2023年度`` and ``2023.0`` are the year 2023.
Categories
    The words of the column's ``values`` in the mapping become canonical levels
    (``山区`` -> ``mountain``); canonical levels are accepted in any case.
Dates
    ``2023-07-15``, ``2023/7/15``, ``2023.7.15``, ``2023年7月15日``, ``20230715``, Excel
    date cells and Excel serial numbers (``45122``, from 1954 to 2119). A date without
    a day (``2023年7月``) is refused: the six-month rule of :mod:`analysis.core.treatment`
    needs the day. In the end-date column of a postings list the words of ``in_post``
    (``至今``, ``在岗``...) mean "still in post".
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data.bureau.cells import CellLog
from analysis.data.bureau.mappings import ColumnMap
from analysis.data.bureau.text import missing_mask
from analysis.data.problems import message

YEAR_CELL = re.compile(r"^(\d{4})(?:\.0+)?(?:年度?)?$")
"""A year cell: ``2023``, ``2023.0``, ``2023年``, ``2023年度``."""
_CODE_FLOAT = re.compile(r"^(\d+)\.0+$")
_CODE_SCI = re.compile(r"^(\d)(?:\.(\d+))?[eE]\+?(\d+)$")
_DATE_YMD = re.compile(
    r"^(\d{4})\s*[年./-]\s*(\d{1,2})\s*[月./-]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DATE_SERIAL = re.compile(r"^(\d{5})(?:\.0+)?$")
_DATE_MONTH = re.compile(r"^(\d{4})\s*[年./-]\s*(\d{1,2})\s*月?$")
_EXCEL_EPOCH = dt.date(1899, 12, 30)


def convert_code(log: CellLog, col: str, s: pd.Series, shown: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """Read a code column: spaces removed, ``.0`` dropped, scientific notation recovered or refused.

    Parameters
    ----------
    log : CellLog
        Where problems and notes go.
    col : str
        Canonical column.
    s : pandas.Series
        Normalised cells.
    shown : numpy.ndarray
        The cells as written (for problems).

    Returns
    -------
    tuple of (pandas.Series, numpy.ndarray)
        The values as text (``""`` = missing), and the cells reported as problems.
    """
    reported = np.zeros(len(s), dtype=bool)
    s = s.where(~pd.Series(missing_mask(s), index=s.index), "")
    spaced = s.str.contains(r"\s", regex=True).to_numpy(dtype=bool)
    if spaced.any():
        s = s.str.replace(r"\s+", "", regex=True)
        log.note("ingest.bureau.code_spaces", column=col, count=int(spaced.sum()))
    floaty = s.str.fullmatch(_CODE_FLOAT.pattern).fillna(False).to_numpy(dtype=bool)
    if floaty.any():
        s = s.str.replace(r"\.0+$", "", regex=True)
        log.note("ingest.bureau.code_float", column=col, count=int(floaty.sum()), rows=log.where(floaty))
    sci = s.str.fullmatch(_CODE_SCI.pattern).fillna(False).to_numpy(dtype=bool)
    if sci.any():
        out = s.to_numpy(dtype=object).copy()
        lost = np.zeros(len(s), dtype=bool)
        fixed = np.zeros(len(s), dtype=bool)
        for i in np.flatnonzero(sci):
            m = _CODE_SCI.fullmatch(out[i])
            assert m is not None  # sci marks the values this pattern matches
            lead, frac, exp = m.group(1), m.group(2) or "", int(m.group(3))
            if len(frac.rstrip("0")) <= exp and len(lead + frac) >= exp + 1:
                out[i] = (lead + frac + "0" * (exp - len(frac)))[: exp + 1]
                fixed[i] = True
            else:
                lost[i] = True
        s = pd.Series(out, index=s.index, dtype=object)
        if fixed.any():
            log.note("ingest.bureau.code_scientific", column=col, count=int(fixed.sum()), rows=log.where(fixed))
        if lost.any():
            log.cells(col, lost, shown, **message("ingest.bureau.code_digits_lost"))
            reported |= lost
            s = s.where(~pd.Series(lost, index=s.index), "")
    return s.astype(object), reported


def convert_year(log: CellLog, col: str, s: pd.Series, shown: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """Read a year column: ``2023``, ``2023年``, ``2023年度`` and ``2023.0`` are 2023.

    Parameters
    ----------
    log : CellLog
        Where problems and notes go.
    col : str
        Canonical column.
    s : pandas.Series
        Normalised cells.
    shown : numpy.ndarray
        The cells as written (for problems).

    Returns
    -------
    tuple of (pandas.Series, numpy.ndarray)
        The values as four-digit text (``""`` = missing or wrong), and the cells reported as problems.
    """
    missing = missing_mask(s)
    m = s.str.extract(YEAR_CELL.pattern, expand=False)
    ok = m.notna().to_numpy(dtype=bool)
    bad = ~ok & ~missing
    log.cells(col, bad, shown, **message("ingest.bureau.not_a_year"))
    suffixed = ok & ~s.str.fullmatch(r"\d{4}").fillna(False).to_numpy(dtype=bool)
    if suffixed.any():
        log.note("ingest.bureau.year_suffix", column=col, count=int(suffixed.sum()))
    out = m.where(pd.Series(ok, index=s.index), "").astype(object)
    return out.fillna(""), bad


def convert_text(log: CellLog, col: str, s: pd.Series, shown: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    """Read a text column: missing markers become empty.

    Parameters
    ----------
    log : CellLog
        Where problems and notes go.
    col : str
        Canonical column.
    s : pandas.Series
        Normalised cells.
    shown : numpy.ndarray
        The cells as written (for problems).

    Returns
    -------
    tuple of (pandas.Series, numpy.ndarray)
        The values as text (``""`` = missing), and the cells reported as problems.
    """
    missing = missing_mask(s)
    return s.where(pd.Series(~missing, index=s.index), "").astype(object), np.zeros(len(s), dtype=bool)


def convert_category(
    log: CellLog, col: str, s: pd.Series, shown: np.ndarray, cm: ColumnMap
) -> tuple[pd.Series, np.ndarray]:
    """Read a category column: the mapping's words become canonical levels, levels in any case are accepted.

    Parameters
    ----------
    log : CellLog
        Where problems and notes go.
    col : str
        Canonical column.
    s : pandas.Series
        Normalised cells.
    shown : numpy.ndarray
        The cells as written (for problems).
    cm : ColumnMap
        The column's mapping (its ``values``).

    Returns
    -------
    tuple of (pandas.Series, numpy.ndarray)
        The values as text (``""`` = missing), and the cells reported as problems.
    """
    if cm.values:
        lookup = {k: str(v) for k, v in cm.values.items()}
        mapped = s.map(lookup)
        hit = mapped.notna().to_numpy(dtype=bool)
        s = s.where(pd.Series(~hit, index=s.index), mapped)
        if hit.any():
            log.note("ingest.bureau.words_to_levels", column=col, levels=", ".join(sorted(set(mapped[hit]))))
    lower = s.str.lower()
    s = s.where(~lower.isin(_levels_of(col)), lower)
    return convert_text(log, col, s, shown)


def _levels_of(col: str) -> tuple[str, ...]:
    for t in ("panel", "postings"):
        for c in schema.columns(t):
            if c.name == col:
                return c.levels
    return ()


def _excel_serial(n: int) -> str:
    return (_EXCEL_EPOCH + dt.timedelta(days=n)).isoformat()


def convert_date(
    log: CellLog, col: str, s: pd.Series, shown: np.ndarray, in_post: Sequence[str] = ()
) -> tuple[pd.Series, np.ndarray]:
    """Read a date column (the date rules of the module docstring).

    Parameters
    ----------
    log : CellLog
        Where problems and notes go.
    col : str
        Canonical column.
    s : pandas.Series
        Normalised cells.
    shown : numpy.ndarray
        The cells as written (for problems).
    in_post : sequence of str
        Words that mean "still in post" (an empty end date).

    Returns
    -------
    tuple of (pandas.Series, numpy.ndarray)
        The values as ``YYYY-MM-DD`` text (``""`` = missing or wrong), and the cells reported as problems.
    """
    reported = np.zeros(len(s), dtype=bool)
    still = s.isin(list(in_post)).to_numpy(dtype=bool) if in_post else np.zeros(len(s), dtype=bool)
    if still.any():
        log.note("ingest.bureau.still_in_post", column=col, count=int(still.sum()))
    missing = missing_mask(s) | still
    out = pd.Series("", index=s.index, dtype=object)
    ymd = s.str.extract(_DATE_YMD.pattern)
    hit = ymd[0].notna().to_numpy(dtype=bool) & ~missing
    if hit.any():
        out[hit] = (
            ymd.loc[hit, 0] + "-" + ymd.loc[hit, 1].str.zfill(2) + "-" + ymd.loc[hit, 2].str.zfill(2)
        ).to_numpy()
    comp = s.str.extract(_DATE_COMPACT.pattern)
    hit2 = comp[0].notna().to_numpy(dtype=bool) & ~missing & ~hit
    if hit2.any():
        out[hit2] = (comp.loc[hit2, 0] + "-" + comp.loc[hit2, 1] + "-" + comp.loc[hit2, 2]).to_numpy()
    ser = s.str.extract(_DATE_SERIAL.pattern, expand=False)
    serial_ok = ser.notna().to_numpy(dtype=bool) & ~missing & ~hit & ~hit2
    n_serial = 0
    for i in np.flatnonzero(serial_ok):
        n = int(ser.iloc[i])
        if 20_000 <= n <= 80_000:
            out.iloc[i] = _excel_serial(n)
            n_serial += 1
        else:
            serial_ok[i] = False
    if n_serial:
        log.note("ingest.bureau.excel_serial_dates", column=col, count=n_serial)
    done = hit | hit2 | serial_ok | missing
    month_only = s.str.fullmatch(_DATE_MONTH.pattern).fillna(False).to_numpy(dtype=bool) & ~done
    log.cells(col, month_only, shown, **message("ingest.bureau.date_without_day"))
    other = ~done & ~month_only
    log.cells(col, other, shown, **message("ingest.bureau.not_a_date"))
    reported |= month_only | other
    parsed = pd.to_datetime(out.where(out != "", None), format="%Y-%m-%d", errors="coerce")
    invalid = parsed.isna().to_numpy() & (out != "").to_numpy(dtype=bool)
    log.cells(col, invalid, shown, **message("ingest.bureau.invalid_date"))
    reported |= invalid
    out[invalid] = ""
    return out, reported
