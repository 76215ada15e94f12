"""A bureau file into canonical columns: the steps of :mod:`analysis.data.bureau` in order.

:func:`read_bureau` (or :func:`bureau_table` on a file already read) finds the header of
every sheet (:mod:`~analysis.data.bureau.header`), keeps the data rows
(:mod:`~analysis.data.bureau.rows`), normalises the cells
(:mod:`~analysis.data.bureau.text`), puts the sheets together, takes the year of a panel
file without a year column from the ``year`` argument or the file name, converts every
column by its kind (:mod:`~analysis.data.bureau.convert`,
:mod:`~analysis.data.bureau.numbers`), fills the columns a file may lack (township and
county codes from the village code; ``carry_forward`` attributes, later from the store;
end dates, unit types, batches and ids of postings lists,
:mod:`~analysis.data.bureau.postings`) and reports the required columns it lacks. The
result, a :class:`BureauTable`, is then validated like a canonical file.

Years
    A panel file with no year column takes the year from the ``year`` argument
    (``--year``), else from the file name: the one four-digit number from 1900 to 2099 in
    the name that is not part of a longer number (``2025年村级统计.xlsx`` -> 2025). No
    year, two different years in the name, or a year argument that disagrees with the
    file's year column is an error. A year taken from the file name that the file
    contradicts is a **warning**: a title or header that names another year (``北湖市2025年
    村级统计表``; dates such as ``2026年1月5日`` do not count), a sheet named after another
    year, or an unused column holding another year in every row. (A 2025 table copied to
    ``2024年村级统计.csv`` would otherwise go in as 2024.)

Formula cells
    A cell holding a formula with no saved value (a workbook written by a program and
    never opened in a spreadsheet) is not a missing value: it is reported, with what to
    do (:func:`analysis.data.validate.validate`).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data.bureau.cells import CellLog
from analysis.data.bureau.convert import (
    YEAR_CELL,
    convert_category,
    convert_code,
    convert_date,
    convert_text,
    convert_year,
)
from analysis.data.bureau.header import Header, detect_header
from analysis.data.bureau.mappings import TABLE_NAMES, ColumnMap, Mappings, TableMap
from analysis.data.bureau.numbers import convert_number
from analysis.data.bureau.postings import postings_extras
from analysis.data.bureau.rows import row_kinds
from analysis.data.bureau.text import normalise_header, normalise_series, split_unit
from analysis.data.problems import Note, Problem, both, file_problem, listing, message, note
from analysis.data.readers import BUREAU, InputFile, Sheet, read_bytes
from analysis.data.validate import TableCells

_YEAR_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
_YEAR_CELL_ONLY = re.compile(r"((?:19|20)\d{2})(年度?)?")
_YEAR_SAID = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*年(?!\s*\d)")  # 2025年, 2025年度, 2025年末; not 2026年1月
_KINDS = {t: {c.name: c.kind for c in schema.columns(t)} for t in ("panel", "postings")}
_REQUIRED = {t: {c.name: c.required for c in schema.columns(t)} for t in ("panel", "postings")}
_CROSSWALK_KINDS = {"old_code": "code", "new_code": "code", "year_effective": "int", "type": "category",
                    "weight": "float"}
_HEADER_EXAMPLES = {
    "panel": "村代码, 年份, 农民人均纯收入（元）",
    "postings": "村代码, 姓名, 派出单位, 到岗日期",
    "crosswalk": "原代码, 新代码, 生效年份, 类型",
}


@dataclass
class BureauTable:
    """A bureau file read into canonical columns (not yet checked against the schema).

    Attributes
    ----------
    name : str
        File name.
    sha256 : str
        sha256 of the file's bytes.
    table : str
        ``panel``, ``postings`` or ``crosswalk``.
    values : dict of str to pandas.Series
        Canonical column to values: text for codes, names, categories and dates
        (``""`` = missing), float64 for numbers (NaN = missing), in canonical units.
    shown : dict of str to numpy.ndarray
        Canonical column to the cells as written in the file (for messages).
    reported : dict of str to numpy.ndarray
        Canonical column to a mask of cells already reported as problems.
    headers : dict of str to str
        Canonical column to its header in the file.
    rows : numpy.ndarray
        Spreadsheet row (XLSX) or line (CSV) of every data row.
    sheets : numpy.ndarray or None
        Worksheet of every data row (XLSX) or None (CSV).
    problems : list of Problem
        Every problem found while reading.
    notes : list of Note
        Every rule applied (encoding, units converted, rows dropped, ...).
    absent : set of str
        Canonical columns the file does not have.
    formulas : dict of str to numpy.ndarray
        Canonical column to the formula of each cell that holds one with no saved value
        (``""`` elsewhere); such cells are also in ``reported`` (nothing is carried forward
        into them) and are reported by :func:`analysis.data.validate.validate`.
    """

    name: str
    sha256: str
    table: str
    values: dict[str, pd.Series]
    shown: dict[str, np.ndarray]
    reported: dict[str, np.ndarray]
    headers: dict[str, str]
    rows: np.ndarray
    sheets: np.ndarray | None
    problems: list[Problem] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    absent: set[str] = field(default_factory=set)
    formulas: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def table_cells(self, path: Path | None = None) -> TableCells:
        """Return the converted cells for validation (:func:`analysis.data.validate.validate`).

        Parameters
        ----------
        path : pathlib.Path, optional
            The input file.

        Returns
        -------
        TableCells
            The canonical columns, with the cells as written, the cells already
            reported and the file's headers.
        """
        n = len(self.rows)
        return TableCells(
            self.name,
            self.sha256,
            self.table,
            {c: v.reset_index(drop=True) for c, v in self.values.items()},
            self.rows,
            "row",
            sheets=self.sheets,
            shown={c: np.array(self.shown.get(c, np.full(n, "", dtype=object)), dtype=object) for c in self.values},
            reported={c: np.array(self.reported.get(c, np.zeros(n, dtype=bool)), dtype=bool) for c in self.values},
            headers=dict(self.headers),
            path=path,
            absent=set(self.absent),
            formulas={c: f for c, f in self.formulas.items() if c in self.values},
        )


def year_from_name(name: str) -> list[int]:
    """Return the years a file name holds (module docstring).

    Parameters
    ----------
    name : str
        File name.

    Returns
    -------
    list of int
        Sorted distinct years.

    Examples
    --------
    >>> year_from_name("2025年村级统计.xlsx")
    [2025]
    """
    stem = Path(name).stem
    return sorted({int(m.group(1)) for m in _YEAR_IN_NAME.finditer(stem)})


def read_bureau(
    path: str | Path,
    mappings: Mappings,
    year: int | None = None,
    data: bytes | None = None,
    tables: Sequence[str] = ("panel", "postings"),
) -> tuple[BureauTable | None, list[Problem]]:
    """Read a bureau file (village table, postings list or crosswalk) into canonical columns.

    Every rule of :mod:`analysis.data.bureau` is applied; every problem is collected
    (none raises). The canonical checks (types, bounds, keys) are applied afterwards by
    :mod:`analysis.data.validate`.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.csv`` or ``.xlsx`` file (any other suffix is read as CSV).
    mappings : Mappings
        From :func:`analysis.data.bureau.mappings.load_mappings`.
    year : int, optional
        Year of a panel file without a year column (else taken from the file name).
    data : bytes, optional
        The file's bytes, if already read.
    tables : sequence of str
        The kinds of file to recognise (``("crosswalk",)`` for a crosswalk file).

    Returns
    -------
    tuple of (BureauTable or None, list of Problem)
        The table (None if the file cannot be read at all) and the problems that stop
        it from being read at all.
    """
    path = Path(path)
    if data is None:
        data = path.read_bytes()
    sheets, problems, notes = read_bytes(path.name, data, ".xlsx" if path.suffix.lower() == ".xlsx" else ".csv", BUREAU)
    if problems:
        return None, problems
    inp = InputFile(path, path.name, hashlib.sha256(data).hexdigest(), BUREAU, sheets, notes)
    return bureau_table(inp, mappings, year, tables)


# ----------------------------------------------------------------------------- headers and rows


def _find_headers(
    inp: InputFile, mappings: Mappings, tables: Sequence[str], notes: list[Note]
) -> tuple[list[tuple[Sheet, Header]] | None, list[Problem]]:
    """Find the header of every sheet; refuse a file without one or with different kinds of table."""
    found: list[tuple[Sheet, Header]] = []
    skipped: list[str] = []
    for sh in inp.sheets:
        header = detect_header(sh, mappings, tables)
        if header is None:
            if sh.name is not None:
                skipped.append(sh.name)
            continue
        found.append((sh, header))
    if not found:
        kinds = " or ".join(TABLE_NAMES[t]["zh"] for t in tables)
        return None, [
            file_problem(inp.name, **message("ingest.bureau.header_not_found", kinds=kinds, folder=mappings.folder,
                                             examples="; ".join(_HEADER_EXAMPLES[t] for t in tables)))
        ]
    table_kinds = {h.table for _, h in found}
    if len(table_kinds) > 1:
        return None, [
            file_problem(inp.name, **message("ingest.bureau.sheets_differ", kinds=", ".join(sorted(table_kinds))))
        ]
    if skipped:
        notes.append(note("ingest.bureau.sheets_skipped", sheets=listing(skipped)))
    return found, []


@dataclass
class _Body:
    """The data rows of every sheet put together, as normalised text by canonical column."""

    columns: dict[str, pd.Series]
    rows: np.ndarray
    sheets: np.ndarray | None
    headers: dict[str, str]
    units: dict[str, str | None]
    unused: set[str]
    problems: list[Problem]
    formulas: dict[str, np.ndarray]
    unused_columns: dict[str, pd.Series]


def _gather(name: str, found: list[tuple[Sheet, Header]], tm: TableMap, notes: list[Note]) -> _Body:
    """Keep the data rows of every sheet, normalise them and put the sheets together."""
    header_of: dict[str, str] = {}
    unit_of: dict[str, str | None] = {}
    rows_parts: list[np.ndarray] = []
    sheet_parts: list[np.ndarray] = []
    header_problems: list[Problem] = []
    dropped: dict[str, list[str]] = {"subtotal": [], "footnote": []}
    unused: set[str] = set()
    sheet_parts_cols: list[tuple[dict[str, pd.Series], int]] = []
    formula_parts: list[dict[str, np.ndarray]] = []
    unused_parts: list[dict[str, pd.Series]] = []
    for sh, hd in found:
        by_col: dict[str, list[tuple[int, str, str | None]]] = {}
        for j, (col, header, unit) in hd.columns.items():
            by_col.setdefault(col, []).append((j, header, unit))
        for col, items in by_col.items():
            if len(items) > 1:
                header_problems.append(
                    Problem(name, int(sh.rows[hd.row]), col, None, sheet=sh.name,
                            header=" / ".join(h for _, h, _ in items),
                            **message("ingest.bureau.several_columns", column=col,
                                      headers=listing([h for _, h, _ in items])))
                )
        for _, h in hd.unmatched:
            if normalise_header(h) not in tm.ignore and split_unit(normalise_header(h))[0] not in tm.ignore:
                unused.add(h)
        body = sh.cells.iloc[hd.first_data :].reset_index(drop=True)
        rownum = sh.rows[hd.first_data :]
        if body.shape[0] == 0:
            continue
        norm_cols: dict[int, pd.Series] = {}
        changed_total = 0
        for j in range(body.shape[1]):
            norm_cols[j], changed = normalise_series(body[j])
            changed_total += changed
        if changed_total:
            in_sheet = both("ingest.bureau.full_width.sheet", sheet=sh.name) if sh.name else ""
            notes.append(note("ingest.bureau.full_width", count=changed_total, sheet=in_sheet))
        labels = {j for j, (c, _, _) in hd.columns.items() if c in ("village_code", "village_name", "old_code")}
        codes = {j for j, (c, _, _) in hd.columns.items() if c in ("village_code", "old_code", "new_code")}
        formula_lines = np.zeros(body.shape[0], dtype=bool)
        for i, _ in sh.formulas:
            if i >= hd.first_data:
                formula_lines[i - hd.first_data] = True
        kinds = row_kinds(norm_cols, labels | {0}, _leading_columns(hd, tm, body.shape[1]), codes, formula_lines)
        dropped["subtotal"].extend(
            (f"{sh.name}!{r}" if sh.name and len(found) > 1 else str(r)) for r in rownum[kinds.subtotal & ~kinds.empty]
        )
        dropped["footnote"].extend(str(r) for r in rownum[kinds.footnote])
        idx = np.flatnonzero(kinds.keep)
        for col, items in by_col.items():
            j, header, unit = items[0]
            header_of.setdefault(col, header)
            if col in unit_of and unit_of[col] != unit:
                header_problems.append(
                    Problem(name, int(sh.rows[hd.row]), col, None, sheet=sh.name, header=header,
                            **message("ingest.bureau.units_differ", column=col,
                                      first=unit_of[col] or both("ingest.bureau.units_differ.no_unit"),
                                      second=unit or both("ingest.bureau.units_differ.no_unit")))
                )
            unit_of.setdefault(col, unit)
        part = {col: norm_cols[items[0][0]].iloc[idx].reset_index(drop=True) for col, items in by_col.items()}
        sheet_parts_cols.append((part, len(idx)))
        lines = idx + hd.first_data
        formula_parts.append({col: sh.formula_column(items[0][0], lines) for col, items in by_col.items()}
                             if sh.formulas else {})
        unused_parts.append({h: norm_cols[j].iloc[idx].reset_index(drop=True)
                             for j, h in hd.unmatched if j in norm_cols})
        rows_parts.append(rownum[idx])
        sheet_parts.append(np.full(len(idx), sh.name if sh.name is not None else "", dtype=object))
    all_cols = {c for part, _ in sheet_parts_cols for c in part}
    per_col = {
        col: [part.get(col, pd.Series([""] * length, dtype=object)) for part, length in sheet_parts_cols]
        for col in all_cols
    }
    rows = np.concatenate(rows_parts) if rows_parts else np.array([], dtype=int)
    sheets = np.concatenate(sheet_parts) if sheet_parts and found[0][0].name is not None else None
    if dropped["subtotal"]:
        n = len(dropped["subtotal"])
        shown_rows = ", ".join(dropped["subtotal"][:8]) + (f" and {n - 8} more" if n > 8 else "")
        notes.append(note("ingest.bureau.subtotal_rows", count=n, rows=shown_rows))
    if dropped["footnote"]:
        notes.append(note("ingest.bureau.footnote_rows", count=len(dropped["footnote"]),
                          rows=", ".join(dropped["footnote"][:8])))
    if unused:
        notes.append(note("ingest.bureau.unused_columns", columns=listing(sorted(unused))))
    columns = {c: pd.concat(parts, ignore_index=True) for c, parts in per_col.items()}
    formulas: dict[str, np.ndarray] = {}
    if any(formula_parts):
        for col in all_cols:
            arr = np.concatenate([fp.get(col, np.full(length, "", dtype=object))
                                  for fp, (_, length) in zip(formula_parts, sheet_parts_cols, strict=True)])
            if (arr != "").any():
                formulas[col] = arr
    unused_columns = {}
    if len(found) == 1 and unused_parts:
        unused_columns = unused_parts[0]
    return _Body(columns, rows, sheets, header_of, unit_of, unused, header_problems, formulas, unused_columns)


def _leading_columns(hd: Header, tm: TableMap, width: int) -> set[int]:
    """Positions of the text columns before the first numeric column (where 合计/全县 rows say what they are).

    A column is numeric if the header maps it to a number of the table (population, income,
    ...; not the year). A table without one has all its columns leading.
    """
    numeric = [j for j, (c, _, _) in hd.columns.items()
               if c not in ("year", "year_effective") and _KINDS.get(tm.table, {}).get(c) in ("int", "float", "binary")]
    first = min(numeric) if numeric else width
    return set(range(first))


# ----------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class _YearSaid:
    """A year the file states outside its data cells (title, header, sheet name, a column of one year)."""

    year: int
    where: str
    where_zh: str
    row: int | None
    sheet: str | None


def _years_said(found: list[tuple[Sheet, Header]], body: _Body) -> list[_YearSaid]:
    """Years the file states about itself: titles and headers (``2025年``), sheet names, one-year columns.

    Dates (``2026年1月5日``: a filling-in date) are not years of the data.
    """
    out: list[_YearSaid] = []
    for sh, hd in found:
        if sh.name:
            m = _YEAR_SAID.search(sh.name) or _YEAR_CELL_ONLY.fullmatch(sh.name.strip())
            if m:
                where = both("ingest.bureau.year_in_sheet_name.where", sheet=sh.name)
                out.append(_YearSaid(int(m.group(1)), where["en"], where["zh"], None, sh.name))
        for i in range(hd.first_data):
            for v in sh.cells.iloc[i].tolist():
                text = str(v)
                for m in _YEAR_SAID.finditer(text):
                    where = both("ingest.bureau.year_in_header.where" if i >= hd.row
                                 else "ingest.bureau.year_in_title.where", text=text)
                    out.append(_YearSaid(int(m.group(1)), where["en"], where["zh"], int(sh.rows[i]), sh.name))
    for header, cells in body.unused_columns.items():
        values = cells[cells != ""]
        years = values.str.fullmatch(_YEAR_CELL_ONLY.pattern).fillna(False)
        if len(values) and years.all():
            found_years = set(values.str.slice(0, 4))
            if len(found_years) == 1:
                y = int(found_years.pop())
                where = both("ingest.bureau.year_column.where", header=header, year=y)
                out.append(_YearSaid(y, where["en"], where["zh"], None, None))
    return out


def _panel_year(
    log: CellLog,
    name: str,
    values_text: dict[str, pd.Series],
    reported: dict[str, np.ndarray],
    year: int | None,
    said: Sequence[_YearSaid] = (),
) -> None:
    """Give a panel file without a year column its year; check a given year against the column.

    A year taken from the file name that the file itself contradicts (``said``) is a
    warning.
    """
    n = len(log.rows)
    if "year" not in values_text:
        from_name = year_from_name(name)
        if year is not None:
            values_text["year"] = pd.Series([str(int(year))] * n, dtype=object)
            log.note("ingest.bureau.year_given", year=year)
        elif len(from_name) == 1:
            values_text["year"] = pd.Series([str(from_name[0])] * n, dtype=object)
            log.note("ingest.bureau.year_from_name", year=from_name[0])
            for other in [x for x in said if x.year != from_name[0]][:1]:
                log.problems.append(
                    Problem(name, other.row, "year", None, sheet=other.sheet, severity="warning",
                            **message("ingest.bureau.year_name_contradicted", year=from_name[0], said=other.year,
                                      where={"en": other.where, "zh": other.where_zh}))
                )
        else:
            why = both("ingest.bureau.no_year.none") if not from_name else both(
                "ingest.bureau.no_year.several", years=", ".join(map(str, from_name)))
            log.column("year", **message("ingest.bureau.no_year", why=why))
            values_text["year"] = pd.Series([""] * n, dtype=object)
            reported["year"] = np.ones(n, dtype=bool)
    elif year is not None:
        yrs = values_text["year"].str.extract(YEAR_CELL.pattern, expand=False)
        other = yrs.notna() & (yrs != str(int(year)))
        if other.any():
            log.column("year", **message("ingest.bureau.year_conflict", years=listing(sorted(set(yrs[other]))),
                                         year=year))


def _fill_absent(
    log: CellLog,
    table: str,
    tm: TableMap,
    kinds: dict[str, str],
    absent: set[str],
    body: _Body,
    found: list[tuple[Sheet, Header]],
    out_values: dict[str, pd.Series],
    shown: dict[str, np.ndarray],
    reported: dict[str, np.ndarray],
) -> None:
    """Fill the columns a file may lack; report the required columns it lacks.

    Township and county codes come from the village code, ``carry_forward`` attributes from
    the store (later, :mod:`~analysis.data.bureau.carry_forward`), postings' end dates,
    unit types, batches and ids from :mod:`~analysis.data.bureau.postings`; any other
    optional column (:mod:`analysis.data.schema`) is stored as missing.
    """
    n = len(log.rows)
    empty_col = pd.Series([""] * n, dtype=object)
    derivable = {c.name: c.digits for c in schema.PANEL_COLUMNS if c.prefix_of == "village_code"}
    for col in [c for c in kinds if c in absent]:
        fill: pd.Series | None = None
        if table == "panel" and col in derivable and "village_code" in out_values:
            fill = out_values["village_code"].str.slice(0, derivable[col]).where(out_values["village_code"] != "", "")
            reported[col] = np.array(reported.get("village_code", np.zeros(n, dtype=bool)), dtype=bool) | (
                out_values["village_code"] == "").to_numpy(dtype=bool)
            log.note("ingest.bureau.derived_code", column=col, digits=derivable[col])
        elif table == "panel" and col in tm.carry_forward:
            fill = empty_col.copy()  # filled from the store by the ingest
        elif table == "postings" and col == "end_date":
            fill = empty_col.copy()
            log.note("ingest.bureau.no_end_dates")
        elif table == "postings" and col in ("unit_type", "batch", "secretary_id"):
            fill = empty_col.copy()  # derived by postings_extras
        elif table == "crosswalk" and col == "weight":
            fill = pd.Series(np.full(n, np.nan))
        elif table in _KINDS and not _REQUIRED[table][col]:  # optional: stored as missing (validate notes it)
            fill = pd.Series(np.full(n, np.nan)) if kinds[col] in ("int", "float", "binary") else empty_col.copy()
            cm = tm.columns.get(col)
            guess = difflib.get_close_matches(
                col if not cm else (cm.aliases[-1] if cm.aliases else col), sorted(body.unused), n=1, cutoff=0.5
            )
            if guess:
                log.note("ingest.bureau.optional_column_guess", column=col, guess=guess[0], file=tm.source.name)
        if fill is not None:
            out_values[col] = fill.astype(object) if fill.dtype != "float64" else fill
            shown[col] = np.full(n, "", dtype=object)
            reported.setdefault(col, np.zeros(n, dtype=bool))
            continue
        cm = tm.columns.get(col)
        aliases = ", ".join(a for a in (cm.aliases if cm else ()) if not a.isascii())[:120]
        guess = difflib.get_close_matches(
            col if not cm else (cm.aliases[-1] if cm.aliases else col), sorted(body.unused), n=1, cutoff=0.5
        )
        hint = both("ingest.bureau.required_column_missing.guess_hint", guess=guess[0]) if guess else ""
        log.column(
            col,
            row=int(found[0][0].rows[found[0][1].row]),
            sheet=found[0][0].name,
            header="",
            **message("ingest.bureau.required_column_missing", column=col, aliases=aliases, hint=hint,
                      file=tm.source.name),
        )
        out_values[col] = empty_col.copy() if kinds[col] not in ("int", "float", "binary") else pd.Series(
            np.full(n, np.nan))
        shown[col] = np.full(n, "", dtype=object)
        reported[col] = np.ones(n, dtype=bool)


def bureau_table(
    inp: InputFile,
    mappings: Mappings,
    year: int | None = None,
    tables: Sequence[str] = ("panel", "postings"),
) -> tuple[BureauTable | None, list[Problem]]:
    """Turn a file read in the bureau dialect into canonical columns (see :func:`read_bureau`).

    Parameters
    ----------
    inp : InputFile
        From :func:`analysis.data.readers.read_file` with the bureau dialect.
    mappings : Mappings
        The header mappings.
    year : int, optional
        Year of a panel file without a year column (else taken from the file name).
    tables : sequence of str
        The kinds of file to recognise.

    Returns
    -------
    tuple of (BureauTable or None, list of Problem)
        As :func:`read_bureau`.
    """
    notes = list(inp.notes)
    found, problems = _find_headers(inp, mappings, tables, notes)
    if found is None:
        return None, problems
    table = found[0][1].table
    tm = mappings.table(table)
    body = _gather(inp.name, found, tm, notes)
    log = CellLog(inp.name, body.rows, body.sheets, body.headers)
    log.problems.extend(body.problems)
    log.notes.extend(notes)
    n = len(body.rows)
    if n == 0:
        log.column(None, **message("ingest.file.no_rows"))
        return None, log.problems

    kinds = _CROSSWALK_KINDS if table == "crosswalk" else {c.name: c.kind for c in schema.columns(table)}
    values_text = body.columns
    out_values: dict[str, pd.Series] = {}
    shown: dict[str, np.ndarray] = {}
    reported: dict[str, np.ndarray] = {}
    absent: set[str] = set()
    if table == "panel":
        _panel_year(log, inp.name, values_text, reported, year, _years_said(found, body))
    for col in list(kinds) + (["name"] if table == "postings" else []):
        if col not in values_text:
            absent.add(col)
            continue
        s = values_text[col]
        shown[col] = s.to_numpy(dtype=object)
        kind = kinds.get(col, "str")
        cm = tm.columns.get(col, ColumnMap(col, ()))
        pre = reported.get(col, np.zeros(n, dtype=bool))
        if col in ("year", "year_effective"):
            v, r = convert_year(log, col, s, shown[col])
        elif kind == "code":
            v, r = convert_code(log, col, s, shown[col])
        elif kind in ("int", "float", "binary"):
            v, r = convert_number(log, col, s, shown[col], cm, mappings.units, body.units.get(col))
        elif kind == "date":
            v, r = convert_date(log, col, s, shown[col], tm.in_post if col == "end_date" else ())
        elif kind == "category" and col != "unit_type":
            v, r = convert_category(log, col, s, shown[col], cm)
        else:
            v, r = convert_text(log, col, s, shown[col])
        out_values[col] = v
        reported[col] = pre | r
    for col, f in body.formulas.items():
        if col in reported:
            reported[col] = reported[col] | (f != "")
    _fill_absent(log, table, tm, kinds, absent, body, found, out_values, shown, reported)
    if table == "postings":
        postings_extras(log, tm, out_values, shown, reported, absent, n)
    return BureauTable(
        name=inp.name,
        sha256=inp.sha256,
        table=table,
        values={c: out_values[c] for c in kinds if c in out_values},
        shown=shown,
        reported=reported,
        headers=body.headers,
        rows=body.rows,
        sheets=body.sheets,
        problems=log.problems,
        notes=log.notes,
        absent=absent,
        formulas={c: f for c, f in body.formulas.items() if c in kinds},
    ), []
