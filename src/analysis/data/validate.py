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
from pandera.config import config_context
from pandera.errors import SchemaErrors

from analysis.data import schema
from analysis.data.problems import Note, Problem, file_problem
from analysis.data.readers import cell_text

FIX = "correct the value in the file and ingest it again"
"""What to do about a wrong value (English)."""
FIX_ZH = "更正文件中的数值后重新导入"
"""What to do about a wrong value (Chinese)."""

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


def _parse(c: schema.Column, col: pd.Series, reported: np.ndarray | None) -> _Column:
    text = col if pd.api.types.is_float_dtype(col.dtype) else col.astype("str")
    numeric_in = pd.api.types.is_float_dtype(text.dtype)
    arr = text.to_numpy(dtype="float64") if numeric_in else text.to_numpy(dtype=object)
    missing = np.isnan(arr) if numeric_in else arr == ""
    skip = reported if reported is not None else np.zeros(len(arr), dtype=bool)
    missing = missing & ~skip
    present = ~missing & ~skip
    unparsed = np.zeros(len(arr), dtype=bool)
    if c.kind in ("code", "str", "category"):
        typed = text.where(pd.Series(present, index=text.index)).astype("str")
    elif c.kind == "date":
        norm = text.str.replace("/", "-", regex=False).str.replace(r"\s+00:00(:00)?$", "", regex=True)
        shape = norm.str.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}").fillna(False).to_numpy(dtype=bool)
        dates = pd.to_datetime(norm.where(pd.Series(shape, index=text.index)), format="%Y-%m-%d", errors="coerce")
        ok = dates.notna().to_numpy()
        unparsed = present & ~ok
        typed = dates.where(pd.Series(present & ok, index=text.index)).astype(schema.DATE_DTYPE)
    elif numeric_in:
        typed = pd.Series(np.where(present, arr, np.nan), index=text.index, dtype="float64")
    else:
        typed = pd.to_numeric(pd.Series(np.where(present, arr, None), dtype=object), errors="coerce").astype("float64")
        typed.index = text.index
        unparsed = present & np.isnan(typed.to_numpy())
    return _Column(c, text, typed, missing, skip | unparsed, unparsed)


# ----------------------------------------------------------------------------- translation


def _bound_text(c: schema.Column, which: str) -> str:
    v = c.min if which == "min" else c.max
    unit = f" ({c.unit})" if c.unit and c.unit != "-" else ""
    return f"{v:g}{unit}"


def _bound_zh(c: schema.Column, which: str) -> str:
    v = c.min if which == "min" else c.max
    return f"{'低于最小值' if which == 'min' else '超过最大值'} {v:g}"


def _code_message(c: schema.Column) -> Callable[[str], str]:
    def message(v: str) -> str:
        hint = ""
        if v.isdigit() and len(v) < c.digits:
            hint = " (a leading zero may have been lost when the column was stored as numbers)"
        elif re.fullmatch(r"\d+\.0+|\d(\.\d+)?[eE]\+?\d+", v):
            hint = " (the column seems to have been stored as numbers)"
        return f"is not a {c.digits}-digit code{hint}"

    return message


def _level_message(c: schema.Column) -> Callable[[str], str]:
    def message(v: str) -> str:
        close = [lv for lv in c.levels if lv == v.lower().strip()] or difflib.get_close_matches(
            v.lower(), c.levels, n=1, cutoff=0.6
        )
        did = f" (did you mean {close[0]!r}?)" if close else ""
        return f"is not one of the allowed values {', '.join(c.levels)}{did}"

    return message


def _words(c: schema.Column, rule: str) -> tuple[str | Callable[[str], str], str, str, str]:
    """Return the problem and what to do, in English and Chinese, of a cell that breaks ``rule``."""
    if rule == "pattern":
        return (
            _code_message(c),
            f"write the full {c.digits}-digit code as text (in Excel format the column as "
            "Text before pasting the codes) and ingest again",
            f"不是{c.digits}位代码",
            f"填写完整的{c.digits}位代码（在 Excel 中先把该列设置为“文本”格式再粘贴代码）后重新导入",
        )
    if rule == "levels":
        return (
            _level_message(c),
            f"use one of {', '.join(c.levels)} (lower case) and ingest again",
            f"不是允许的取值（{'、'.join(c.levels)}）",
            f"改为 {'、'.join(c.levels)} 之一（统计局文件可用映射文件中列出的中文词）后重新导入",
        )
    if rule == "zero_or_one" or (rule == _PARSE and c.kind == "binary"):
        return ("is not 0 or 1", "use 1 for yes and 0 for no, and ingest again", "不是 0 或 1",
                "是/有 填 1，否/无 填 0 后重新导入")
    if rule == _PARSE and c.kind == "date":
        return (
            "is not a valid date (write dates as YYYY-MM-DD, e.g. 2023-07-01)",
            "correct the date in the file and ingest it again",
            "不是有效日期（日期写成 2023-07-01 或 2023年7月1日）",
            "更正文件中的日期后重新导入",
        )
    if rule == _PARSE:
        return (
            "is not a number",
            "write a plain number (no units, no thousands separators, '.' as decimal point) and ingest again",
            "不是数字",
            "填写数字后重新导入",
        )
    if rule == "finite":
        return "is not a finite number", FIX, "不是有限的数字", FIX_ZH
    if rule == "whole":
        return ("is not a whole number", f"{c.name} counts whole units: {FIX}", "不是整数",
                f"{c.label_zh}只能是整数：{FIX_ZH}")
    if rule == "minimum":
        return f"is below the minimum {_bound_text(c, 'min')}", FIX, _bound_zh(c, "min"), FIX_ZH
    if rule == "maximum":
        hint_zh = "（占比应为 0 到 1 之间的小数，或写成 35%）" if c.unit.startswith("share") else ""
        return f"is above the maximum {_bound_text(c, 'max')}", FIX, _bound_zh(c, "max") + hint_zh, FIX_ZH
    raise ValueError(f"no words for rule {rule!r} of {c.name}")  # pragma: no cover - rules come from _column_rules


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
        for i in np.flatnonzero(failed[_NOT_NULLABLE]):
            problems.append(
                cells.problem(
                    i,
                    c.name,
                    None if shown is None or shown[i] == "" else str(shown[i]),
                    "is empty, but this column must have a value",
                    f"fill in {c.name} ({c.description}) and ingest again",
                    "为空（或为缺失标记），但此列必须有值",
                    f"填写{c.label_zh}后重新导入"
                    + ("；没有发生时填 0，不要写“无”或“—”" if c.kind in ("int", "float") else ""),
                )
            )
    for rule, mask in failed.items():
        if rule == _NOT_NULLABLE:
            continue
        problem, action, problem_zh, action_zh = _words(c, rule)
        for i in np.flatnonzero(mask):
            v = value(i)
            problems.append(
                cells.problem(i, c.name, v, problem(v) if callable(problem) else problem, action,
                              problem_zh, action_zh)
            )
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
        problem = file_problem(cells.name, "the file has a header but no data rows",
                               "export the table again with its data rows", "文件只有表头，没有数据行",
                               "重新导出带数据行的表格")
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
    typed = pd.DataFrame({name: col.typed for name, col in cols.items()})
    cases = _failure_cases(typed, cells.table)
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
    table_cases = cases[cases["schema_context"] == "DataFrameSchema"] if len(cases) else cases
    problems.extend(_table_problems(cells, specs, parsed, valid, table_cases))
    keyed = set(schema.PANEL_KEY) <= set(cols)  # a file without its keys has its header problems to fix first
    if cells.table == "panel" and keyed and not any((~cols[o].missing).any() for o in schema.OUTCOMES if o in cols):
        problems.append(_no_outcome(cells))
    return Validated(cells, parsed, problems, _missing_notes(cells, cols))


FORMULA = (
    "holds a formula with no saved value: the file was written by a program and never opened and saved in a "
    "spreadsheet, so there is no value to read"
)
"""The problem of a formula cell without a saved value (English)."""
FORMULA_FIX = (
    "open the file in Excel, WPS or LibreOffice and save it (the formulas are then calculated and their values "
    "saved), or copy the cells and paste them as values; then ingest again"
)
"""What to do about a formula cell without a saved value (English)."""


def _formula_problems(cells: TableCells, c: schema.Column, formulas: np.ndarray) -> list[Problem]:
    """One problem per cell that holds a formula with no saved value."""
    return [
        cells.problem(
            int(i),
            c.name,
            str(formulas[i]),
            FORMULA,
            FORMULA_FIX,
            "是没有保存计算结果的公式：文件由程序生成，从未在电子表格软件中打开并保存，单元格中没有可读取的数值",
            "用 Excel、WPS 或 LibreOffice 打开文件并保存（公式会重新计算并保存结果），或复制这些单元格后"
            "“选择性粘贴”为数值，然后重新导入",
        )
        for i in np.flatnonzero(formulas != "")
    ]


def _no_outcome(cells: TableCells) -> Problem:
    names = ", ".join(schema.OUTCOMES)
    return file_problem(
        cells.name,
        f"no outcome column holds a value: a panel file needs at least one of {names}",
        "add at least one outcome column with its values (data/README.md lists them) and ingest again",
        "没有任何结果变量（如农民人均纯收入、村集体收入、刑事案件数）的列有数值：村级面板文件至少需要一个结果变量",
        "至少添加一个有数值的结果变量列（见 data/README.md）后重新导入",
    )


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
            notes.append(Note(f"{c.name}: not in the file; stored as missing",
                              f"{c.name}：文件中没有该列，按缺失值入库"))
            continue
        empty = cols[c.name].missing
        k = int(empty.sum())
        if not k:
            continue
        if k == len(empty):
            where = "not in the file" if c.name in cells.absent else "every cell is empty"
            where_zh = "文件中没有该列" if c.name in cells.absent else "该列全部为空"
            notes.append(Note(f"{c.name}: {where}; stored as missing", f"{c.name}：{where_zh}，按缺失值入库"))
            continue
        rows = _rows_list(cells.rows[empty])
        if c.name in cells.absent:  # partly filled (carried forward from the store)
            notes.append(Note(f"{c.name}: not in the file; {k} values stored as missing (rows {rows})",
                              f"{c.name}：文件中没有该列，{k} 个值按缺失值入库（第 {rows} 行）"))
            continue
        zero = "; write 0 where there were none" if c.kind in ("int", "binary") and c.name in schema.OUTCOMES else ""
        zero_zh = "；没有发生的请填 0" if zero else ""
        notes.append(Note(f"{c.name}: {k} empty cells (or missing markers) stored as missing (rows {rows}){zero}",
                          f"{c.name}：{k} 个空单元格（或缺失标记）按缺失值入库（第 {rows} 行）{zero_zh}"))
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
        for i in np.flatnonzero(_rows_failing(cases, f"prefix_of:{c.name}", valid[c.name] & valid[c.prefix_of])):
            problems.append(
                cells.problem(
                    i,
                    c.name,
                    t.iloc[i],
                    f"does not agree with {c.prefix_of} {v.iloc[i]!r}, whose first {digits} digits are "
                    f"{v.iloc[i][:digits]!r}",
                    f"correct {c.name} or {c.prefix_of}: {c.name} must be the first {digits} digits of {c.prefix_of}",
                    f"与村代码“{v.iloc[i]}”不一致（村代码的前 {digits} 位是“{v.iloc[i][:digits]}”）",
                    f"更正该代码或村代码：它必须等于村代码的前 {digits} 位",
                )
            )
    for c in specs:
        if c.not_before not in parsed:
            continue
        s, e = parsed[c.not_before], parsed[c.name]
        for i in np.flatnonzero(_rows_failing(cases, f"not_before:{c.name}", valid[c.name] & valid[c.not_before])):
            problems.append(
                cells.problem(
                    i,
                    c.name,
                    e.iloc[i].date().isoformat(),
                    f"is before {c.not_before} {s.iloc[i].date().isoformat()!r}",
                    f"correct the dates: {c.name} must be on or after {c.not_before} "
                    "(leave it empty while the secretary is still in post)",
                    f"早于到岗日期“{s.iloc[i].date().isoformat()}”",
                    "更正日期：离岗日期不能早于到岗日期（仍在岗的留空）",
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
    first_sheet = None
    if cells.sheets is not None:
        first_sheet = pd.Series(cells.sheets[ok], index=keys.index).groupby(groups).transform("first")
    panel = cells.table == "panel"
    problems = []
    for i in np.flatnonzero(dup):
        where = f"{cells.row_label} {int(first.at[i])}"
        if first_sheet is not None and first_sheet.at[i] != cells.sheets[i]:
            where += f" of sheet {first_sheet.at[i]!r}"
        problems.append(
            cells.problem(
                i,
                ", ".join(key),
                " / ".join(str(keys.at[i, k]) for k in key),
                f"repeats the key of {where} "
                + ("(each village may appear once per year)" if panel else "(each secretary_id must be unique)"),
                "keep one row for this key: delete or correct the duplicate",
                f"与第 {int(first.at[i])} 行重复"
                + ("（每个村每年只能有一行）" if panel else "（每条派驻记录的编号必须唯一）"),
                "只保留一行：删除或更正重复的行",
            )
        )
    return problems
