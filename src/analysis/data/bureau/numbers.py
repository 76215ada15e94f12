r"""Bureau numbers into canonical values: separators, percentages, units and words.

Thousands separators (``1,234,567``) are removed; a percent string (``35%``) is divided
by 100 (share columns only); a number followed by a unit of the column's family
(``12.5万元``) is converted with that unit; otherwise the header's unit (``（万元）``, or a
unit row) is applied, else the column's ``default_unit``. Words of the column's
``values`` (``是``/``否``, ``有``/``无``) are read as their numbers. Converted values are
rounded to 6 decimals (binary rounding noise only).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analysis.data.bureau.cells import CellLog
from analysis.data.bureau.mappings import ColumnMap
from analysis.data.bureau.text import missing_mask, normalise_header
from analysis.data.problems import listing, message

_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_PERCENT = re.compile(r"^([+-]?\d+(?:\.\d+)?)%$")
_NUMBER_UNIT = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*([^\d\s.+-][^\d]*)$")


def convert_number(
    log: CellLog,
    col: str,
    s: pd.Series,
    shown: np.ndarray,
    cm: ColumnMap,
    units: dict[str, dict[str, float]],
    header_unit: str | None,
) -> tuple[pd.Series, np.ndarray]:
    """Read a numeric column: words, separators, percent, units (the number rules of the module docstring).

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
        The column's mapping (unit family, default unit, words).
    units : dict of str to dict of str to float
        Unit factors by family.
    header_unit : str or None
        The unit the header names.

    Returns
    -------
    tuple of (pandas.Series, numpy.ndarray)
        The values as float64 in canonical units (NaN = missing or wrong), and the cells reported as problems.
    """
    reported = np.zeros(len(s), dtype=bool)
    family = units.get(cm.family or "", {})
    factor = 1.0
    if cm.values:
        lookup = {k: v for k, v in cm.values.items()}
        mapped = s.map(lookup)
        hit = mapped.notna().to_numpy(dtype=bool)
        if hit.any():
            s = s.where(pd.Series(~hit, index=s.index), mapped.astype(object).map(str))
            log.note("ingest.bureau.yes_no_words", column=col, count=int(hit.sum()))
    missing = missing_mask(s)
    if header_unit is not None and cm.family:
        if header_unit in family:
            factor = family[header_unit]
            if factor != 1:
                log.note("ingest.bureau.header_unit", column=col, unit=header_unit, factor=factor)
        else:
            log.column(col, **message("ingest.bureau.unknown_unit", unit=header_unit, family=cm.family,
                                      units=listing(list(family))))
            reported[:] = True
            return pd.Series(np.full(len(s), np.nan), index=s.index), reported
    elif header_unit is None and cm.default_unit:
        factor = family.get(cm.default_unit, 1.0)
        if cm.family == "money":
            log.note("ingest.bureau.default_unit", column=col, unit=cm.default_unit)
    text = s.where(pd.Series(~missing, index=s.index), "")
    num = pd.to_numeric(text.where(text != "", None), errors="coerce").astype("float64").to_numpy()
    vals = num * factor
    slow = np.isnan(num) & ~missing
    counts = {"thousands": 0, "percent": 0, "unit": 0}
    bad_idx: list[int] = []
    pct_bad: list[int] = []
    if slow.any():
        # Vectorised first: thousands separators and percent strings (the common cases).
        sub = text[slow]
        thousands = sub.str.fullmatch(_THOUSANDS.pattern).fillna(False).to_numpy(dtype=bool)
        if thousands.any():
            idx = np.flatnonzero(slow)[thousands]
            vals[idx] = pd.to_numeric(sub[thousands].str.replace(",", "", regex=False)).to_numpy(dtype=float) * factor
            counts["thousands"] = int(thousands.sum())
            slow[idx] = False
        if cm.family == "share":
            sub = text[slow]
            pct = sub.str.extract(_PERCENT.pattern, expand=False)
            hit = pct.notna().to_numpy(dtype=bool)
            if hit.any():
                idx = np.flatnonzero(slow)[hit]
                vals[idx] = pd.to_numeric(pct[hit]).to_numpy(dtype=float) / 100.0
                counts["percent"] = int(hit.sum())
                slow[idx] = False
        arr = text.to_numpy(dtype=object)
        for i in np.flatnonzero(slow):
            v = str(arr[i])
            m = _PERCENT.fullmatch(v)
            if m:
                if cm.family == "share":
                    vals[i] = float(m.group(1)) / 100.0
                    counts["percent"] += 1
                else:
                    pct_bad.append(int(i))
                continue
            m = _NUMBER_UNIT.fullmatch(v)
            if m and normalise_header(m.group(2)) in family:
                vals[i] = float(m.group(1)) * family[normalise_header(m.group(2))]
                counts["unit"] += 1
                continue
            bad_idx.append(int(i))
    if counts["thousands"]:
        log.note("ingest.bureau.thousands_separators", column=col, count=counts["thousands"])
    if counts["percent"]:
        log.note("ingest.bureau.percentages", column=col, count=counts["percent"])
    if counts["unit"]:
        log.note("ingest.bureau.number_units", column=col, count=counts["unit"])
    if factor != 1 or counts["unit"] or counts["percent"]:
        vals = np.round(vals, 6)
    mask = np.zeros(len(s), dtype=bool)
    mask[bad_idx] = True
    if mask.any():
        log.cells(col, mask, shown, **message("ingest.value.not_a_number", action_of="ingest.bureau.not_a_number"))
        reported |= mask
    pmask = np.zeros(len(s), dtype=bool)
    pmask[pct_bad] = True
    if pmask.any():
        log.cells(col, pmask, shown, **message("ingest.bureau.percent_not_share"))
        reported |= pmask
    vals[reported] = np.nan
    return pd.Series(vals, index=s.index, dtype="float64"), reported
