"""Where the header of a bureau sheet is, and which canonical column each of its columns is.

The header row is the row among the first :data:`HEADER_SEARCH_ROWS` with the most cells
that match an alias of one kind of file (at least two). Rows above it (titles, group
headers such as 经济发展 over several columns) are used only for header cells that are
empty in the header row (vertically merged cells). Rows right under it whose
village-code cell holds no code and whose cells are all units (元, 万元, 公里, 单位：万元)
or column numbers (甲, 乙, 1, 2, ...) belong to the header; their units apply to their
columns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import pandas as pd

from analysis.data.bureau.mappings import Mappings, TableMap
from analysis.data.bureau.text import normalise_header, normalise_text
from analysis.data.readers import Sheet

HEADER_SEARCH_ROWS = 30
"""The header is looked for among this many rows at the top of each sheet."""

_NUMBERING = re.compile(r"^(甲|乙|丙|丁|戊|己|庚|辛|[0-9]{1,3}|[A-Za-z])$")
_UNIT_CELL = re.compile(r"^\(?(单位[:：]?)?([^()]{1,8})\)?$")

Columns: TypeAlias = dict[int, tuple[str, str, str | None]]
"""Column position -> (canonical column, header as written, unit named in the header)."""


@dataclass
class Header:
    """The header found in a sheet.

    Attributes
    ----------
    row : int
        Position of the header row in the sheet's cells.
    first_data : int
        Position of the first row under the header block.
    columns : Columns
        The columns mapped to canonical columns.
    unmatched : list of (int, str)
        Position and header text of the columns not used.
    table : str
        The kind of file: ``panel``, ``postings`` or ``crosswalk``.
    """

    row: int
    first_data: int
    columns: Columns
    unmatched: list[tuple[int, str]]
    table: str


def _row_texts(cells: pd.DataFrame, i: int) -> list[str]:
    return [normalise_text(str(v)) for v in cells.iloc[i].tolist()]


def _assign(sheet: Sheet, h: int, tm: TableMap) -> tuple[Columns, list[tuple[int, str]]]:
    """Map the columns of header row ``h`` (with the rows above it for empty cells) to canonical columns."""
    texts = _row_texts(sheet.cells, h)
    original = [re.sub(r"\s+", "", str(v)) for v in sheet.cells.iloc[h].tolist()]
    # Upper rows of the header block (group headers, vertically merged cells): at most 3.
    upper: list[list[str]] = []
    i = h - 1
    while i >= 0 and len(upper) < 3:
        row = _row_texts(sheet.cells, i)
        if not any(row):
            break
        upper.append(row)
        i -= 1
    columns: dict[int, tuple[str, str, str | None]] = {}
    unmatched: list[tuple[int, str]] = []
    for j, t in enumerate(texts):
        header = original[j] if j < len(original) else t
        col, unit = tm.match(t) if t else (None, None)
        if col is None and not t:
            for k, row in enumerate(upper):
                if j < len(row) and row[j]:
                    header = re.sub(r"\s+", "", str(sheet.cells.iat[h - 1 - k, j]))
                    col, unit = tm.match(row[j])
                    break
        if col is None:
            if header:
                unmatched.append((j, header))
            continue
        columns[j] = (col, header, unit)
    return columns, unmatched


def detect_header(sheet: Sheet, mappings: Mappings, tables: Sequence[str]) -> Header | None:
    """Find the header of a sheet: its row, the columns it maps, and where the data starts.

    Parameters
    ----------
    sheet : Sheet
        A sheet read in the bureau dialect.
    mappings : Mappings
        The header mappings.
    tables : sequence of str
        The kinds of file to recognise (``panel``, ``postings``, ``crosswalk``).

    Returns
    -------
    Header or None
        None if no row among the first :data:`HEADER_SEARCH_ROWS` has two or more
        headers of one kind of file.
    """
    n = min(HEADER_SEARCH_ROWS, len(sheet.cells))
    best: tuple[int, int, str] | None = None  # (score, row, table)
    for i in range(n):
        if not any(_row_texts(sheet.cells, i)):
            continue
        for t in tables:
            columns, _ = _assign(sheet, i, mappings.table(t))
            score = len({c for c, _, _ in columns.values()})
            if score >= 2 and (best is None or score > best[0]):
                best = (score, i, t)
    if best is None:
        return None
    _, h, table = best
    tm = mappings.table(table)
    columns, unmatched = _assign(sheet, h, tm)
    # Rows under the header that hold units or column numbers belong to the header.
    code_pos = next((j for j, (c, _, _) in columns.items() if c in ("village_code", "old_code")), None)
    first_data = h + 1
    while first_data < len(sheet.cells) and first_data <= h + 3:
        row = _row_texts(sheet.cells, first_data)
        if not any(row):
            break
        code = row[code_pos] if code_pos is not None and code_pos < len(row) else ""
        if re.search(r"\d{6}", code):
            break
        units_here = {}
        ok = True
        for j, v in enumerate(row):
            if not v:
                continue
            m = _UNIT_CELL.fullmatch(normalise_header(v))
            unit = m.group(2) if m else None
            family = tm.columns[columns[j][0]].family if j in columns else None
            if family and unit and unit in mappings.units.get(family, {}):
                units_here[j] = unit
            elif _NUMBERING.fullmatch(v) or (m and m.group(1)):
                continue
            else:
                ok = False
                break
        if not ok:
            break
        for j, unit in units_here.items():
            col, header, old = columns[j]
            columns[j] = (col, f"{header}（{unit}）" if old is None else header, old or unit)
        first_data += 1
    return Header(h, first_data, columns, unmatched, table)
