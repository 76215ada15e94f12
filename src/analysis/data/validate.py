"""Canonical validation: every value of a file checked against the data dictionary, with pandera.

A file's cells under canonical column names (:class:`TableCells`, from
:mod:`analysis.data.canonical` or from the bureau reader) are validated in three steps:

1. **Parse** each column by its kind in :mod:`analysis.data.schema`: numbers with
   :func:`pandas.to_numeric`, dates written ``YYYY-MM-DD`` (``/`` for ``-`` and a time of
   ``00:00`` are accepted), codes, names and categories as text; empty cells (and cells
   the bureau reader already reported) are missing. A cell that does not parse is a
   failure case of its column. This step is ours, not pandera's dtype coercion: that
   coercion (``astype``) accepts other strings than the canonical format (``1_000``,
   non-ASCII digits) and, after a failed coercion, runs the column's checks on the
   unparsed strings.
2. **Check** the parsed frame lazily (every failure collected) with the pandera schema
   that :func:`pandera_schema` generates from the specifications of ``schema.py``:
   missing values where a column may not be empty, code patterns, category levels,
   0/1 flags, finite and whole numbers, bounds, the agreement of ``prefix_of`` codes
   with the village code, ``not_before`` dates, and the table's key is unique.
3. **Translate** the failure cases into :class:`~analysis.data.problems.Problem`
   records in the project's words (the file, the row as the user sees it, the column,
   the value as written, what is wrong and what to do, in English and Chinese). A cell
   gets one problem, from its first failing rule in the order above; rules across
   columns (code agreement, dates, duplicate keys) compare only values that passed their
   own column's rules.

Nothing here reads files or the store; cross-file and against-the-store checks are in
:mod:`analysis.data.consistency`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.config import config_context
from pandera.errors import SchemaErrors

from analysis.data import schema
from analysis.data.problems import Note, Problem, Words, both, file_problem, listing, message, note
from analysis.data.readers import cell_text

_PARSE = "parse"
_NOT_NULLABLE = "not_nullable"
_DUPLICATE = "multiple_fields_uniqueness"


@dataclass
class TableCells:
    """One file's cells under canonical column names, ready to be validated.

    Attributes
    ----------
    name : str
        File name.
    sha256 : str
        sha256 of the file's bytes.
    table : str
        ``panel`` or ``postings``.
    columns : dict of str to pandas.Series
        Canonical column to its cells: text (``""`` = missing), or float64 numbers
        (NaN = missing) for numeric columns the bureau reader already converted.
    rows : numpy.ndarray
        Row of every cell line as the user sees it.
    row_label : str
        ``"row"`` or ``"record"`` (Parquet).
    sheets : numpy.ndarray or None
        Worksheet of every row (bureau XLSX), else None.
    shown : dict of str to numpy.ndarray
        Canonical column to the cells as written in a bureau file (for messages).
    reported : dict of str to numpy.ndarray
        Canonical column to a mask of cells the bureau reader already reported.
    headers : dict of str to str
        Canonical column to its header in a bureau file.
    path : pathlib.Path or None
        The input file.
    absent : set of str
        Canonical columns the file does not have (a bureau reader may have filled them:
        derived codes, values carried forward, or all missing).
    formulas : dict of str to numpy.ndarray
        Canonical column to the formula of every cell that holds a formula with no saved
        value (``""`` elsewhere): XLSX files written by a program and never opened in a
        spreadsheet. Such cells are reported by :func:`validate`.
    """

    name: str
    sha256: str
    table: str
    columns: dict[str, pd.Series]
    rows: np.ndarray
    row_label: str = "row"
    sheets: np.ndarray | None = None
    shown: dict[str, np.ndarray] = field(default_factory=dict)
    reported: dict[str, np.ndarray] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    absent: set[str] = field(default_factory=set)
    formulas: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def problem(
        self,
        i: int,
        column: str | None,
        value: str | None,
        problem: str,
        action: str,
        problem_zh: str = "",
        action_zh: str = "",
        severity: str = "error",
    ) -> Problem:
        """Return a problem of the ``i``-th row (0-based position in the cells).

        Parameters
        ----------
        i : int
            Position of the row.
        column : str or None
            Canonical column (``"a, b"`` for a key of several columns).
        value : str or None
            The value as the user wrote it.
        problem, action, problem_zh, action_zh : str
            What is wrong and what to do, in English and Chinese.
        severity : {"error", "warning"}
            Severity.

        Returns
        -------
        Problem
            With the row, sheet and header of the file.
        """
        header = self.headers.get(column.split(", ")[0]) if self.headers and column else None
        return Problem(
            self.name,
            int(self.rows[i]),
            column,
            value,
            problem,
            action,
            self.row_label,
            sheet=None if self.sheets is None else str(self.sheets[i]) or None,
            header=header,
            problem_zh=problem_zh,
            action_zh=action_zh,
            severity=severity,
        )

    def shown_value(self, column: str, i: int, fallback: object) -> str:
        """Return a cell as the user wrote it (bureau files), else ``fallback`` as text.

        Parameters
        ----------
        column : str
            Canonical column.
        i : int
            Position of the row.
        fallback : object
            The value to show when the file's own text is not known.

        Returns
        -------
        str
            The text.
        """
        shown = self.shown.get(column)
        if shown is not None and shown[i] != "":
            return str(shown[i])
        return cell_text(fallback)


@dataclass
class Validated:
    """A file after validation.

    Attributes
    ----------
    cells : TableCells
        The cells validated.
    parsed : dict of str to pandas.Series
        Canonical column to its values in canonical dtypes, missing where the cell is
        empty or has a problem.
    problems : list of Problem
        Every problem of the values, in column order.
    notes : list of Note
        Optional columns the file lacks or leaves partly empty: stored as missing.
    """

    cells: TableCells
    parsed: dict[str, pd.Series]
    problems: list[Problem]
    notes: list[Note] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The file name."""
        return self.cells.name

    @property
    def table(self) -> str:
        """``panel`` or ``postings``."""
        return self.cells.table


# ----------------------------------------------------------------------------- the pandera schema


def _fullmatch(pattern: str) -> Callable[[pd.Series], pd.Series]:
    return lambda s: s.str.fullmatch(pattern)


def _column_rules(c: schema.Column) -> list[tuple[str, pa.Check]]:
    """Return the checks of one column with their rule names, in the order a cell's first failure is reported."""
    if c.kind == "code" and c.pattern:
        return [("pattern", pa.Check(_fullmatch(c.pattern), name="pattern"))]
    if c.kind == "category":
        return [("levels", pa.Check.isin(c.levels))]
    if c.kind == "binary":
        return [("zero_or_one", pa.Check.isin((0.0, 1.0)))]
    if c.kind not in ("int", "float"):
        return []
    rules = [("finite", pa.Check(np.isfinite, name="finite"))]
    if c.kind == "int":
        rules.append(("whole", pa.Check(lambda s: np.mod(s, 1.0) == 0, name="whole")))
    if c.min is not None:
        rules.append(("minimum", pa.Check.ge(c.min)))
    if c.max is not None:
        rules.append(("maximum", pa.Check.le(c.max)))
    return rules


def _prefix_check(c: schema.Column) -> pa.Check:
    col, of, digits = c.name, c.prefix_of, c.digits

    def agrees(d: pd.DataFrame) -> pd.Series:
        return d[col].isna() | d[of].isna() | (d[of].str.slice(0, digits) == d[col])

    return pa.Check(agrees, name=f"prefix_of:{col}")


def _not_before_check(c: schema.Column) -> pa.Check:
    col, of = c.name, c.not_before

    def in_order(d: pd.DataFrame) -> pd.Series:
        return ~(d[col].notna() & d[of].notna() & (d[col] < d[of]))

    return pa.Check(in_order, name=f"not_before:{col}")


@lru_cache(maxsize=64)
def pandera_schema(table: str, present: tuple[str, ...] | None = None) -> pa.DataFrameSchema:
    """Return the pandera schema of a canonical table, generated from :mod:`analysis.data.schema`.

    Parameters
    ----------
    table : {"panel", "postings"}
        Which table.
    present : tuple of str, optional
        Columns the frame has (default: all). Rules across columns and the key are
        included only if their columns are present.

    Returns
    -------
    pandera.DataFrameSchema
        Column checks (nullability, pattern, levels, 0/1, finite, whole, bounds), the
        ``prefix_of`` and ``not_before`` rules, and the table's key as unique. It
        validates the parsed values (numbers as float64, dates as datetime64, text
        with missing values as NA).

    Examples
    --------
    >>> s = pandera_schema("panel")
    >>> s.unique
    ['village_code', 'year']
    """
    specs = [c for c in schema.columns(table) if present is None or c.name in present]
    names = {c.name for c in specs}
    columns = {
        c.name: pa.Column(checks=[check for _, check in _column_rules(c)], nullable=c.nullable, required=False,
                          name=c.name)
        for c in specs
    }
    checks = [_prefix_check(c) for c in specs if c.prefix_of in names]
    checks += [_not_before_check(c) for c in specs if c.not_before in names]
    key = list(schema.KEYS[table])
    return pa.DataFrameSchema(
        columns,
        checks=checks,
        unique=key if set(key) <= names else None,
        report_duplicates="exclude_first",
        name=table,
    )


def _failure_cases(typed: pd.DataFrame, table: str) -> pd.DataFrame:
    """Run the schema lazily; return its failure cases (empty if none)."""
    s = pandera_schema(table, tuple(typed.columns))
    # Validation is the ingest's contract: it runs whatever PANDERA_VALIDATION_* says.
    with config_context(validation_enabled=True, validation_depth="SCHEMA_AND_DATA"):
        try:
            s.validate(typed, lazy=True, inplace=True)
        except SchemaErrors as exc:
            cases = exc.failure_cases
            return cases[cases["index"].notna()]
    return pd.DataFrame(columns=["schema_context", "column", "check", "check_number", "index"])


# ----------------------------------------------------------------------------- parsing


@dataclass
class _Column:
    """One column while it is validated."""

    spec: schema.Column
    text: pd.Series  # as given: text, or float64 numbers
    typed: pd.Series  # parsed; NA where missing, already reported or unparsed
    missing: np.ndarray  # empty (and not already reported)
    handled: np.ndarray  # already reported by the bureau reader, or unparsed
    unparsed: np.ndarray

    @property
    def numeric_in(self) -> bool:
        return pd.api.types.is_float_dtype(self.text.dtype)


def _numbers(text: pd.Series, present: np.ndarray) -> np.ndarray:
    """Parse the present cells as numbers: NaN where a cell is absent or not a number.

    ``pandas.to_numeric(errors="coerce")`` decides. Arrow's cast parses the same strings to the same
    doubles (both round correctly) about ten times faster, so it is tried first; where it refuses a
    cell (text that is not a number) or gives a negative zero (which ``to_numeric`` turns into 0 when
    every cell is a whole number), the column goes through ``to_numeric`` as before.
    """
    try:
        strings = pyarrow.array(text)
        if pyarrow.types.is_string(strings.type) or pyarrow.types.is_large_string(strings.type):
            kept = pc.if_else(pyarrow.array(present), strings, pyarrow.scalar(None, type=strings.type))
            out = np.asarray(pc.cast(kept, pyarrow.float64()).to_numpy(zero_copy_only=False), dtype="float64")
            if not (np.signbit(out) & (out == 0)).any():
                return out
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError, pyarrow.ArrowNotImplementedError):
        pass
    typed = pd.to_numeric(pd.Series(np.where(present, text.to_numpy(dtype=object), None), dtype=object),
                          errors="coerce")
    return typed.astype("float64").to_numpy()


def _parse(c: schema.Column, col: pd.Series, reported: np.ndarray | None) -> _Column:
    text = col if pd.api.types.is_float_dtype(col.dtype) else col.astype("str")
    numeric_in = pd.api.types.is_float_dtype(text.dtype)
    # text cells are compared in place (no Python string per cell); only a numeric column that Arrow cannot
    # parse makes the object array (_numbers)
    arr = text.to_numpy(dtype="float64") if numeric_in else None
    missing = np.isnan(arr) if arr is not None else (text == "").to_numpy(dtype=bool, na_value=False)
    skip = reported if reported is not None else np.zeros(len(text), dtype=bool)
    missing = missing & ~skip
    present = ~missing & ~skip
    unparsed = np.zeros(len(text), dtype=bool)
    if c.kind in ("code", "str", "category"):
        typed = text.where(pd.Series(present, index=text.index)).astype("str")
    elif c.kind == "date":
        norm = text.str.replace("/", "-", regex=False).str.replace(r"\s+00:00(:00)?$", "", regex=True)
        shape = norm.str.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}").fillna(False).to_numpy(dtype=bool)
        dates = pd.to_datetime(norm.where(pd.Series(shape, index=text.index)), format="%Y-%m-%d", errors="coerce")
        ok = dates.notna().to_numpy()
        unparsed = present & ~ok
        typed = dates.where(pd.Series(present & ok, index=text.index)).astype(schema.DATE_DTYPE)
    elif arr is not None:
        typed = pd.Series(np.where(present, arr, np.nan), index=text.index, dtype="float64")
    else:
        typed = pd.Series(_numbers(text, present), index=text.index, dtype="float64")
        unparsed = present & np.isnan(typed.to_numpy())
    return _Column(c, text, typed, missing, skip | unparsed, unparsed)


# ----------------------------------------------------------------------------- translation


def _unit(c: schema.Column) -> dict[str, str] | str:
    """Return the unit a bound is shown with (in English only), or nothing."""
    return both("ingest.value.unit.hint", unit=c.unit) if c.unit and c.unit != "-" else ""


def _named(c: schema.Column) -> dict[str, str]:
    """Return a column as the messages name it: its canonical name in English, its label in Chinese."""
    return {"en": c.name, "zh": c.label_zh}


def _code_message(c: schema.Column) -> Callable[[str], Words]:
    def words(v: str) -> Words:
        hint: dict[str, str] | str = ""
        if v.isdigit() and len(v) < c.digits:
            hint = both("ingest.value.not_a_code.leading_zero_hint")
        elif re.fullmatch(r"\d+\.0+|\d(\.\d+)?[eE]\+?\d+", v):
            hint = both("ingest.value.not_a_code.numbers_hint")
        return message("ingest.value.not_a_code", digits=c.digits, hint=hint)

    return words


def _level_message(c: schema.Column) -> Callable[[str], Words]:
    def words(v: str) -> Words:
        close = [lv for lv in c.levels if lv == v.lower().strip()] or difflib.get_close_matches(
            v.lower(), c.levels, n=1, cutoff=0.6
        )
        hint = both("ingest.did_you_mean", close=close[0]) if close else ""
        return message("ingest.value.not_a_level", levels=listing(c.levels), hint=hint)

    return words


def _words(c: schema.Column, rule: str) -> Callable[[str], Words]:
    """Return the problem and what to do, in English and Chinese, of a cell (its value given) that breaks ``rule``."""
    if rule == "pattern":
        return _code_message(c)
    if rule == "levels":
        return _level_message(c)
    fixed: Words | None = None
    if rule == "zero_or_one" or (rule == _PARSE and c.kind == "binary"):
        fixed = message("ingest.value.not_zero_or_one")
    elif rule == _PARSE and c.kind == "date":
        fixed = message("ingest.value.not_a_date")
    elif rule == _PARSE:
        fixed = message("ingest.value.not_a_number")
    elif rule == "finite":
        fixed = message("ingest.value.not_finite", action_of="ingest.value.fix")
    elif rule == "whole":
        fixed = message("ingest.value.not_whole", column=_named(c))
    elif rule == "minimum":
        fixed = message("ingest.value.below_minimum", action_of="ingest.value.fix", limit=c.min, unit=_unit(c))
    elif rule == "maximum":
        hint = both("ingest.value.above_maximum.share_hint") if c.unit.startswith("share") else ""
        fixed = message("ingest.value.above_maximum", action_of="ingest.value.fix", limit=c.max, unit=_unit(c),
                        hint=hint)
    if fixed is None:  # pragma: no cover - rules come from _column_rules
        raise ValueError(f"no words for rule {rule!r} of {c.name}")
    words = fixed
    return lambda v: words


def _column_problems(cells: TableCells, col: _Column, failed: dict[str, np.ndarray]) -> list[Problem]:
    """Problems of one column: empty cells, then every rule in order (one problem per cell)."""
    if not failed:
        return []
    c = col.spec
    shown = cells.shown.get(c.name)
    arr = col.text.to_numpy(dtype="float64") if col.numeric_in else col.text.to_numpy(dtype=object)
    problems: list[Problem] = []

    def value(i: int) -> str:
        if shown is not None and shown[i] != "":
            return str(shown[i])
        return cell_text(arr[i]) if col.numeric_in else arr[i]

    if _NOT_NULLABLE in failed:
        for i in np.flatnonzero(failed[_NOT_NULLABLE]).tolist():
            problems.append(
                cells.problem(
                    i,
                    c.name,
                    None if shown is None or shown[i] == "" else str(shown[i]),
                    **message("ingest.value.required", column=_named(c), description=c.description,
                              hint=both("ingest.value.required.count_hint") if c.kind in ("int", "float") else ""),
                )
            )
    for rule, mask in failed.items():
        if rule == _NOT_NULLABLE:
            continue
        words = _words(c, rule)
        for i in np.flatnonzero(mask).tolist():
            v = value(i)
            problems.append(cells.problem(i, c.name, v, **words(v)))
    return problems


def _first_failures(col: _Column, cases: pd.DataFrame, n: int) -> dict[str, np.ndarray]:
    """Mask of the cells of each rule, keeping only a cell's first failing rule."""
    rules = [name for name, _ in _column_rules(col.spec)]
    order = [_NOT_NULLABLE, _PARSE, *rules]
    first = np.full(n, len(order))
    if col.unparsed.any():
        first[col.unparsed] = 1
    if len(cases):
        idx = cases["index"].to_numpy(dtype=np.int64)
        rank = np.where(
            cases["check"].to_numpy() == _NOT_NULLABLE,
            0,
            2 + pd.to_numeric(cases["check_number"], errors="coerce").fillna(0).to_numpy(dtype=np.int64),
        )
        keep = ~col.handled[idx]  # cells already reported, or unparsed: one problem per cell
        np.minimum.at(first, idx[keep], rank[keep])
    return {rule: first == k for k, rule in enumerate(order) if (first == k).any()}


def validate(cells: TableCells) -> Validated:
    """Validate the values of one file against its canonical table.

    Parameters
    ----------
    cells : TableCells
        The file's cells under canonical names (absent optional columns may be left
        out; required columns that are absent are reported by the caller).

    Returns
    -------
    Validated
        Parsed columns (missing where a cell is empty or wrong), every problem and notes:
        per column in canonical order (formulas with no saved value, empty where a value
        is required, unparsable numbers and dates, codes, levels, 0/1 flags, finite and
        whole numbers, bounds), then codes that disagree with the village code, end dates
        before start dates, and repeated keys; a panel file in which no outcome holds a
        value. The notes name the optional columns stored (partly) missing.
    """
    if len(cells) == 0:
        problem = file_problem(cells.name, **message("ingest.file.no_rows"))
        return Validated(cells, {}, [problem])
    specs = [c for c in schema.columns(cells.table) if c.name in cells.columns]
    n = len(cells)
    formulas = {c.name: np.asarray(cells.formulas[c.name], dtype=object) for c in specs if c.name in cells.formulas}
    skip = {}
    for c in specs:
        mask = cells.reported.get(c.name)
        if c.name in formulas:
            hit = formulas[c.name] != ""
            mask = hit if mask is None else (np.asarray(mask, dtype=bool) | hit)
        skip[c.name] = mask
    cols = {c.name: _parse(c, cells.columns[c.name], skip[c.name]) for c in specs}
    # the columns' values themselves, not a copy of them (1 GB for a national first ingest; copy-on-write
    # keeps the columns as they are whatever the schema does to the frame)
    typed = pd.DataFrame({name: col.typed for name, col in cols.items()}, copy=False)
    cases = _failure_cases(typed, cells.table)
    del typed
    by_column = cases[cases["schema_context"] == "Column"] if len(cases) else cases
    problems: list[Problem] = []
    parsed: dict[str, pd.Series] = {}
    dtypes = schema.canonical_dtypes(cells.table)
    valid: dict[str, np.ndarray] = {}
    for c in specs:
        col = cols[c.name]
        failed = _first_failures(col, by_column[by_column["column"] == c.name], n)
        if c.name in formulas:
            problems.extend(_formula_problems(cells, c, formulas[c.name]))
        problems.extend(_column_problems(cells, col, failed))
        bad = col.handled | col.missing
        for mask in failed.values():
            bad = bad | mask
        valid[c.name] = ~bad & col.typed.notna().to_numpy()
        out = col.typed.where(pd.Series(~bad, index=col.typed.index))
        parsed[c.name] = out.astype("Int64" if c.kind in ("int", "binary") else dtypes[c.name])
        del out
        col.typed = col.typed.iloc[:0]  # its values are in parsed now: not held twice through the other columns
    table_cases = cases[cases["schema_context"] == "DataFrameSchema"] if len(cases) else cases
    problems.extend(_table_problems(cells, specs, parsed, valid, table_cases))
    keyed = set(schema.PANEL_KEY) <= set(cols)  # a file without its keys has its header problems to fix first
    if cells.table == "panel" and keyed and not any((~cols[o].missing).any() for o in schema.OUTCOMES if o in cols):
        problems.append(_no_outcome(cells))
    return Validated(cells, parsed, problems, _missing_notes(cells, cols))


def _formula_problems(cells: TableCells, c: schema.Column, formulas: np.ndarray) -> list[Problem]:
    """One problem per cell that holds a formula with no saved value."""
    words = message("ingest.value.formula_without_value")
    return [cells.problem(int(i), c.name, str(formulas[i]), **words) for i in np.flatnonzero(formulas != "")]


def _no_outcome(cells: TableCells) -> Problem:
    return file_problem(cells.name, **message("ingest.file.no_outcome", outcomes=", ".join(schema.OUTCOMES)))


def _rows_list(rows: np.ndarray, limit: int = 5) -> str:
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(str(int(r)) for r in rows[:limit]) + more


def _missing_notes(cells: TableCells, cols: dict[str, _Column]) -> list[Note]:
    """Return notes on the optional columns a file lacks or leaves partly empty: they are stored as missing."""
    notes: list[Note] = []
    for c in schema.columns(cells.table):
        if c.required or not c.nullable:
            continue
        if c.name not in cols:
            notes.append(note("ingest.missing.not_in_file", column=c.name))
            continue
        empty = cols[c.name].missing
        k = int(empty.sum())
        if not k:
            continue
        if k == len(empty):
            notes.append(note("ingest.missing.not_in_file" if c.name in cells.absent else "ingest.missing.all_empty",
                              column=c.name))
            continue
        rows = _rows_list(cells.rows[empty])
        if c.name in cells.absent:  # partly filled (carried forward from the store)
            notes.append(note("ingest.missing.partly_carried", column=c.name, count=k, rows=rows))
            continue
        counts = c.kind in ("int", "binary") and c.name in schema.OUTCOMES
        hint = both("ingest.missing.empty_cells.zero_hint") if counts else ""
        notes.append(note("ingest.missing.empty_cells", column=c.name, count=k, rows=rows, hint=hint))
    return notes


def _rows_failing(cases: pd.DataFrame, check: str, valid: np.ndarray) -> np.ndarray:
    hit = np.zeros(len(valid), dtype=bool)
    if len(cases):
        idx = cases.loc[cases["check"] == check, "index"].to_numpy(dtype=np.int64)
        hit[idx] = True
    return hit & valid


def _table_problems(
    cells: TableCells,
    specs: list[schema.Column],
    parsed: dict[str, pd.Series],
    valid: dict[str, np.ndarray],
    cases: pd.DataFrame,
) -> list[Problem]:
    """Problems of rules across columns: code agreement, date order, repeated keys."""
    problems: list[Problem] = []
    for c in specs:
        if c.prefix_of not in parsed:
            continue
        v, t, digits = parsed[c.prefix_of], parsed[c.name], c.digits
        failing = _rows_failing(cases, f"prefix_of:{c.name}", valid[c.name] & valid[c.prefix_of])
        for i in np.flatnonzero(failing).tolist():
            problems.append(
                cells.problem(
                    i,
                    c.name,
                    t.iloc[i],
                    **message("ingest.table.code_disagrees", column=c.name, parent=c.prefix_of, code=v.iloc[i],
                              prefix=v.iloc[i][:digits], digits=digits),
                )
            )
    for c in specs:
        if c.not_before not in parsed:
            continue
        s, e = parsed[c.not_before], parsed[c.name]
        failing = _rows_failing(cases, f"not_before:{c.name}", valid[c.name] & valid[c.not_before])
        for i in np.flatnonzero(failing).tolist():
            problems.append(
                cells.problem(
                    i,
                    c.name,
                    e.iloc[i].date().isoformat(),
                    **message("ingest.table.ends_before_start", column=c.name, start_column=c.not_before,
                              start=s.iloc[i].date().isoformat()),
                )
            )
    key = list(schema.KEYS[cells.table])
    if all(k in parsed for k in key):
        problems.extend(_duplicate_problems(cells, key, parsed, valid, cases))
    return problems


def _duplicate_problems(
    cells: TableCells,
    key: list[str],
    parsed: dict[str, pd.Series],
    valid: dict[str, np.ndarray],
    cases: pd.DataFrame,
) -> list[Problem]:
    ok = np.logical_and.reduce([valid[k] for k in key])
    dup = _rows_failing(cases, _DUPLICATE, ok)
    if not dup.any():
        return []
    keys = pd.DataFrame({k: parsed[k] for k in key})[ok]
    groups = [keys[k] for k in key]
    first = pd.Series(cells.rows[ok], index=keys.index).groupby(groups).transform("first")
    sheets, first_sheet = cells.sheets, None
    if sheets is not None:
        first_sheet = pd.Series(sheets[ok], index=keys.index).groupby(groups).transform("first")
    why = both("ingest.table.duplicate_key.panel" if cells.table == "panel" else "ingest.table.duplicate_key.postings")
    problems = []
    for i in np.flatnonzero(dup).tolist():
        sheet: dict[str, str] | str = ""
        if sheets is not None and first_sheet is not None and first_sheet.at[i] != sheets[i]:
            sheet = both("ingest.table.duplicate_key.sheet", sheet=first_sheet.at[i])
        problems.append(
            cells.problem(
                i,
                ", ".join(key),
                " / ".join(str(keys.at[i, k]) for k in key),
                **message("ingest.table.duplicate_key", row_label=cells.row_label, row=int(first.at[i]), sheet=sheet,
                          why=why),
            )
        )
    return problems
