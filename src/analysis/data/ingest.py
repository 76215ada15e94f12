"""Validated ingest: canonical CSV, Parquet and XLSX files into the DuckDB store.

:func:`ingest_files` reads every file, decides from its columns whether it is a
``panel`` or a ``postings`` file (:mod:`analysis.data.schema`), checks every value, and
only if *no* file of the call has a problem writes them all into the store in one
atomic transaction (:func:`analysis.data.store.write_tables`). Otherwise it raises one
:class:`IngestError` listing every problem of every file, each with the file, the row as
the user sees it (header = row 1 in CSV and XLSX; "record N" in Parquet), the column,
the value, what is wrong and what to do. Nothing is written then, and the store file is
byte-for-byte unchanged.

Reading rules
-------------
* CSV: UTF-8 with or without BOM, comma-separated, header in the first line. Every cell
  is read as text, so codes keep their leading zeros; numbers are parsed by the checks.
* XLSX: the first sheet, header in row 1; cached values of formulas.
* Parquet: typed columns are accepted; an integer-typed code column is accepted only if
  its digits still form a valid code (a lost leading zero is reported).
* Leading and trailing spaces are ignored; an empty cell is a missing value. Rows that
  are entirely empty are skipped (their numbers are not reused).

Testing hook
------------
If the environment variable ``STUDY_INGEST_PAUSE`` holds a number of seconds, the
ingest sleeps that long inside the write transaction, after the first table has been
written into the temporary copy of the store; if ``STUDY_INGEST_PAUSE_MARKER`` names a
file, that file is created just before the sleep. The crash test uses this to
``kill -9`` an ingest half way.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import hashlib
import io
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data import store as st

SUPPORTED = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet", ".xlsx": "XLSX"}
MAX_SHOWN = 50
"""At most this many problems are printed by ``str(IngestError)``."""
MAX_SHOWN_PER_KIND = 5
"""At most this many problems of one kind (file, column, problem) are printed."""

_PANEL_ONLY = set(schema.column_names("panel")) - set(schema.column_names("postings"))
_POSTINGS_ONLY = set(schema.column_names("postings")) - set(schema.column_names("panel"))
_FIX = "correct the value in the file and ingest it again"


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file.

    Attributes
    ----------
    file : str
        File name as given.
    row : int or None
        Row as the user sees it (header = row 1 in CSV and XLSX), or the 1-based record
        number in Parquet; None for problems of the whole file.
    column : str or None
        Column concerned, or None.
    value : str or None
        The offending value as written in the file, or None.
    problem : str
        What is wrong.
    action : str
        What to do about it.
    row_label : str
        ``"row"`` (CSV, XLSX) or ``"record"`` (Parquet).
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    problem: str
    action: str
    row_label: str = "row"

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            header = " (header)" if self.row == 1 and self.row_label == "row" else ""
            where.append(f"{self.row_label} {self.row}{header}")
        if self.column:
            cols = self.column.split(", ")
            where.append(f"column {cols[0]}" if len(cols) == 1 else f"columns {' and '.join(cols)}")
        text = self.problem
        if self.value is not None:
            shown = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            text = f"value {shown!r} {text}"
        action = self.action.rstrip(".")
        return f"{', '.join(where)}: {text}. What to do: {action}."


class IngestError(Exception):
    """Input files with problems; nothing was written.

    Parameters
    ----------
    problems : list of Problem
        Every problem found, in file and row order.

    Attributes
    ----------
    problems : list of Problem
        As given.
    """

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__(self._message())

    def _message(self) -> str:
        n = len(self.problems)
        files = len({p.file for p in self.problems})
        lines = [
            f"Nothing was written to the store: {n} problem{'s' if n != 1 else ''} "
            f"in {files} file{'s' if files != 1 else ''}."
        ]
        per_kind: dict[tuple, int] = {}
        hidden = 0
        for p in self.problems:
            kind = (p.file, p.column, p.problem)
            per_kind[kind] = per_kind.get(kind, 0) + 1
            if per_kind[kind] > MAX_SHOWN_PER_KIND or len(lines) > MAX_SHOWN:
                hidden += 1
                continue
            lines.append(str(p))
        if hidden:
            lines.append(
                f"... and {hidden} more problem{'s' if hidden != 1 else ''} not listed (at most "
                f"{MAX_SHOWN_PER_KIND} of each kind are shown). Fix these and run the ingest again."
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._message()


@dataclass
class IngestReport:
    """What an ingest wrote (or, in a dry run, would write).

    Attributes
    ----------
    store : pathlib.Path
        The store.
    dry_run : bool
        True if nothing was written.
    ingest_id : str
        Identifier of the ingest in the provenance table.
    files : list of analysis.data.store.FileChange
        Per file: table, rows, years, inserted/replaced/unchanged counts.
    removed : dict of int to int
        Panel rows removed per replaced year (stored, absent from the new files).
    store_summary : dict
        :func:`analysis.data.store.summary` after the ingest (before it, in a dry run).
    """

    store: Path
    dry_run: bool
    ingest_id: str
    files: list[st.FileChange] = field(default_factory=list)
    removed: dict[int, int] = field(default_factory=dict)
    store_summary: dict = field(default_factory=dict)

    def __str__(self) -> str:
        n = len(self.files)
        plural = "s" if n != 1 else ""
        if self.dry_run:
            lines = [
                f"Dry run: nothing was written. Ingesting {n} file{plural} into {self.store} would:"
            ]
            verb = ("insert", "replace", "leave unchanged")
        else:
            lines = [f"Ingested {n} file{plural} into {self.store} (ingest {self.ingest_id}):"]
            verb = ("inserted", "replaced", "unchanged")
        for f in self.files:
            span = _years_text(f.years)
            what = "years" if f.table == "panel" else "start years"
            lines.append(
                f"  {f.file_name}: {f.table}, {f.rows} rows, {what} {span}: "
                f"{verb[0]} {f.inserted}, {verb[1]} {f.replaced}, {verb[2]} {f.unchanged}"
            )
        for year, count in sorted(self.removed.items()):
            if count:
                lines.append(
                    f"  {year}: {count} stored panel rows {'would be' if self.dry_run else 'were'} "
                    "removed because the new files replace the year without them"
                )
        if not any(f.inserted or f.replaced for f in self.files) and not any(self.removed.values()):
            lines.append("  (no change to the data: the store already holds exactly these rows)")
        s = self.store_summary
        if s:
            when = "now holds" if not self.dry_run else "holds"
            years = _years_text(tuple(s.get("panel_years", ())))
            lines.append(
                f"The store {when} {s.get('panel_rows', 0)} panel rows "
                f"({s.get('villages', 0)} villages, years {years}) "
                f"and {s.get('postings_rows', 0)} postings."
            )
        return "\n".join(lines)


def _years_text(years: tuple[int, ...]) -> str:
    if not years:
        return "-"
    ys = sorted(years)
    if ys == list(range(ys[0], ys[-1] + 1)):
        return str(ys[0]) if len(ys) == 1 else f"{ys[0]}-{ys[-1]}"
    return ", ".join(str(y) for y in ys)


# ----------------------------------------------------------------------------- reading


@dataclass
class _Raw:
    """A file read as text: header names, cells (stripped, '' = missing), row numbers."""

    name: str
    sha256: str
    header: list[str]
    cells: pd.DataFrame  # one column per header position (0..k-1), text
    rows: np.ndarray
    row_label: str
    header_row: int | None


def _cell_text(v: object) -> str:
    """Text of one cell as a user would read it in the file."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, bool | np.bool_):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        if math.isnan(v):
            return ""
        if float(v).is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(float(v))
    if isinstance(v, pd.Timestamp | dt.datetime):
        if (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0):
            return v.date().isoformat()
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if v is pd.NaT or (not isinstance(v, list | tuple | dict) and pd.isna(v)):
        return ""
    return str(v).strip()


def _file_problem(name: str, problem: str, action: str) -> Problem:
    return Problem(name, None, None, None, problem, action)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_csv(path: Path, name: str, data: bytes) -> tuple[_Raw | None, list[Problem]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        guess = ""
        try:
            data.decode("gb18030")
            guess = "; it looks like GBK/GB18030, the default of Chinese Excel"
        except UnicodeDecodeError:
            pass
        return None, [
            Problem(
                name,
                line,
                None,
                None,
                f"the file is not UTF-8 text (the first undecodable byte is on this line){guess}",
                "save the file as 'CSV UTF-8 (comma delimited)' (in Excel: File > Save As) "
                "and ingest it again",
            )
        ]
    if not text.strip():
        return None, [
            _file_problem(
                name,
                "the file is empty",
                "export the table again with its header row and data rows",
            )
        ]
    try:
        df = pd.read_csv(
            io.StringIO(text),
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except (pd.errors.ParserError, csv.Error) as exc:
        m = re.search(r"line (\d+), saw (\d+)", str(exc))
        if m:
            return None, [
                Problem(
                    name,
                    int(m.group(1)),
                    None,
                    None,
                    f"this line has {m.group(2)} fields but the header has fewer",
                    "remove the extra separators (or quote text that contains commas) "
                    "and ingest again",
                )
            ]
        return None, [
            _file_problem(
                name,
                f"the file cannot be read as CSV ({exc})",
                "export it again as comma-separated CSV (UTF-8)",
            )
        ]
    df = df.fillna("")
    header = [str(h).strip() for h in df.iloc[0].tolist()]
    cells = df.iloc[1:].reset_index(drop=True)
    cells.columns = range(cells.shape[1])
    cells = cells.apply(lambda s: s.str.strip())
    rows = np.arange(2, len(cells) + 2)
    return _Raw(name, _sha256(data), header, cells, rows, "row", 1), []


def _read_xlsx(path: Path, name: str, data: bytes) -> tuple[_Raw | None, list[Problem]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, XML and its own errors
        return None, [
            _file_problem(
                name,
                f"the file cannot be read as an Excel workbook ({type(exc).__name__})",
                "open it in Excel and save it again as .xlsx, or export it as CSV UTF-8",
            )
        ]
    try:
        if not wb.worksheets:
            return None, [
                _file_problem(name, "the workbook has no sheet", "put the table in the first sheet")
            ]
        ws = wb.worksheets[0]
        values = [[_cell_text(v) for v in r] for r in ws.iter_rows(min_row=1, values_only=True)]
    finally:
        wb.close()
    while values and all(v == "" for v in values[-1]):
        values.pop()
    if not values:
        return None, [
            _file_problem(
                name,
                "the first sheet is empty",
                "put the table, with its header in row 1, in the first sheet",
            )
        ]
    width = max(
        (max((j + 1 for j, v in enumerate(r) if v != ""), default=0) for r in values), default=0
    )
    header = (values[0] + [""] * width)[:width]
    body = [(r + [""] * width)[:width] for r in values[1:]]
    cells = (
        pd.DataFrame(body, columns=range(width), dtype=object)
        if body
        else pd.DataFrame({i: pd.Series([], dtype=object) for i in range(width)})
    )
    rows = np.arange(2, len(body) + 2)
    return _Raw(name, _sha256(data), header, cells, rows, "row", 1), []


def _arrow_column_text(col) -> list[str]:
    import pyarrow as pa

    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        values = col.to_pylist()
    else:
        values = col.to_pandas().tolist()
    return [_cell_text(v) for v in values]


def _read_parquet(path: Path, name: str, data: bytes) -> tuple[_Raw | None, list[Problem]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        return None, [
            _file_problem(
                name,
                f"the file cannot be read as Parquet ({exc})",
                "write it again with a Parquet writer (pandas.DataFrame.to_parquet)",
            )
        ]
    # pandas stores a non-default index as __index_level_N__ columns: not part of the table
    keep = [
        i for i, c in enumerate(table.column_names) if not re.fullmatch(r"__index_level_\d+__", c)
    ]
    header = [str(table.column_names[i]).strip() for i in keep]
    cells = pd.DataFrame(
        {
            j: pd.Series(_arrow_column_text(table.column(i)), dtype=object)
            for j, i in enumerate(keep)
        },
        columns=range(len(keep)),
    )
    rows = np.arange(1, table.num_rows + 1)
    return _Raw(name, _sha256(data), header, cells, rows, "record", None), []


def _read(path: Path) -> tuple[_Raw | None, list[Problem]]:
    name = path.name or str(path)
    ext = path.suffix.lower()
    if not path.exists():
        return None, [
            _file_problem(
                str(path),
                "the file does not exist",
                "check the path and the spelling of the file name",
            )
        ]
    if path.is_dir():
        return None, [
            _file_problem(
                str(path),
                "this is a folder, not a file",
                "give the panel or postings files themselves",
            )
        ]
    if ext not in SUPPORTED:
        extra = " (old .xls workbooks are not read)" if ext == ".xls" else ""
        return None, [
            _file_problem(
                name,
                f"the file type {ext or '(none)'!r} is not supported{extra}",
                "save the table as CSV UTF-8 (.csv), Parquet (.parquet) or Excel workbook (.xlsx)",
            )
        ]
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [
            _file_problem(
                name,
                f"the file cannot be read ({exc.strerror or exc})",
                "check that the file is readable by you and not open exclusively elsewhere",
            )
        ]
    if not data:
        return None, [
            _file_problem(
                name,
                "the file is empty (0 bytes)",
                "export the table again with its header row and data rows",
            )
        ]
    reader: Callable = {".csv": _read_csv, ".xlsx": _read_xlsx}.get(ext, _read_parquet)
    raw, problems = reader(path, name, data)
    if raw is not None:
        keep = (
            ~(raw.cells == "").all(axis=1).to_numpy()
            if raw.cells.shape[1]
            else np.zeros(len(raw.rows), bool)
        )
        raw.cells = raw.cells.loc[keep].reset_index(drop=True)
        raw.rows = raw.rows[keep]
    return raw, problems


# ----------------------------------------------------------------------------- checks


_LABELS = {c.label_zh: c.name for t in ("panel", "postings") for c in schema.columns(t)}


def _normalise(name: str) -> str:
    return re.sub(r"[\s\-\.]+", "_", name.strip().lower())


def _suggest(missing: str, candidates: Sequence[str]) -> str | None:
    """Return the file's column that most likely means ``missing``."""
    for c in candidates:
        if _normalise(c) == missing or _LABELS.get(c) == missing:
            return c
        base = re.sub(r"[（(].*?[)）]", "", c).strip()
        if base and any(
            re.sub(r"[（(].*?[)）]", "", lab).strip() == base and n == missing
            for lab, n in _LABELS.items()
        ):
            return c
    close = difflib.get_close_matches(
        missing, [_normalise(c) for c in candidates], n=1, cutoff=0.75
    )
    if close:
        return next(c for c in candidates if _normalise(c) == close[0])
    return None


def _detect_table(header: Sequence[str]) -> str | None:
    names = set(header)
    mapped = {_LABELS.get(h, _normalise(h)) for h in header}
    for cols in (names, mapped):
        p, q = len(cols & _PANEL_ONLY), len(cols & _POSTINGS_ONLY)
        if p > q:
            return "panel"
        if q > p:
            return "postings"
        if p and p == q:
            return None
    return None


@dataclass
class _Checked:
    """One file after the checks: parsed columns (NaN/NaT where invalid) and problems."""

    raw: _Raw
    table: str | None
    parsed: dict[str, pd.Series]
    problems: list[Problem]
    header_ok: bool = True

    @property
    def name(self) -> str:
        return self.raw.name


def _row_problem(
    raw: _Raw, i: int, column: str | None, value: str | None, problem: str, action: str
) -> Problem:
    return Problem(raw.name, int(raw.rows[i]), column, value, problem, action, raw.row_label)


def _check_header(raw: _Raw) -> tuple[str | None, list[Problem], dict[str, int]]:
    """Decide the table and map canonical columns to positions; report header problems."""
    problems: list[Problem] = []
    hrow = raw.header_row
    rl = raw.row_label
    for i, h in enumerate(raw.header):
        if h == "" and not (raw.cells[i] == "").all():  # unnamed empty columns are ignored
            problems.append(
                Problem(
                    raw.name,
                    hrow,
                    f"#{i + 1}",
                    None,
                    "has no name in the header",
                    "give the column its canonical name or delete it",
                    rl,
                )
            )
    counts: dict[str, int] = {}
    for h in raw.header:
        if h:
            counts[h] = counts.get(h, 0) + 1
    for h, n in counts.items():
        if n > 1:
            problems.append(
                Problem(
                    raw.name,
                    hrow,
                    h,
                    None,
                    f"appears {n} times in the header",
                    "keep one column of this name and delete the others",
                    rl,
                )
            )
    table = _detect_table(raw.header)
    if table is None:
        hint = ""
        if len(raw.header) == 1 and any(s in raw.header[0] for s in ";\t|"):
            hint = (
                " (the header is a single column: the file seems to use another separator than ',')"
            )
        problems.append(
            Problem(
                raw.name,
                hrow,
                None,
                None,
                "cannot tell whether this is a panel or a postings file from its columns" + hint,
                "use the canonical column names of data/README.md: a panel file has 'year' and the "
                "village measures, a postings file has 'secretary_id', 'start_date', 'end_date', "
                "'sending_unit', 'unit_type' and 'batch'",
                rl,
            )
        )
        return None, problems, {}
    specs = schema.columns(table)
    names = [c.name for c in specs]
    positions = {h: i for i, h in reversed(list(enumerate(raw.header))) if h in names}
    unknown = [h for h in raw.header if h and h not in names]
    suggested: set[str] = set()
    for c in specs:
        if c.name in positions or not c.required:
            continue
        guess = _suggest(c.name, unknown)
        if guess:
            suggested.add(guess)
            problems.append(
                Problem(
                    raw.name,
                    hrow,
                    c.name,
                    None,
                    "the required column is missing "
                    f"(the file has a column {guess!r} that looks like it)",
                    f"rename the column {guess!r} to {c.name!r} in the header",
                    rl,
                )
            )
        else:
            problems.append(
                Problem(
                    raw.name,
                    hrow,
                    c.name,
                    None,
                    f"the required column is missing from this {table} file",
                    f"add the column {c.name!r} ({c.description}); see data/README.md",
                    rl,
                )
            )
    for h in unknown:
        if h in suggested:
            continue
        other = "postings" if table == "panel" else "panel"
        belongs = (
            f" (it is a {other} column: put it in a separate {other} file)"
            if h in schema.column_names(other)
            else ""
        )
        problems.append(
            Problem(
                raw.name,
                hrow,
                h,
                None,
                f"is not a column of the {table} table{belongs}",
                "delete the column or rename it to a canonical name (data/README.md lists them)",
                rl,
            )
        )
    return table, problems, positions


def _bound_text(c: schema.Column, which: str) -> str:
    v = c.min if which == "min" else c.max
    unit = f" ({c.unit})" if c.unit and c.unit != "-" else ""
    return f"{v:g}{unit}"


def _check_column(
    raw: _Raw, c: schema.Column, text: pd.Series, table: str
) -> tuple[pd.Series, list[Problem]]:
    """Parse one column; return the parsed values (missing where invalid) and problems."""
    probs: list[Problem] = []
    arr = text.to_numpy(dtype=object)
    missing = arr == ""

    def add(mask: np.ndarray, problem: str | Callable[[str], str], action: str) -> None:
        for i in np.flatnonzero(mask):
            msg = problem(arr[i]) if callable(problem) else problem
            probs.append(_row_problem(raw, i, c.name, arr[i], msg, action))

    if not c.nullable:
        for i in np.flatnonzero(missing):
            probs.append(
                _row_problem(
                    raw,
                    i,
                    c.name,
                    None,
                    "is empty, but this column must have a value",
                    f"fill in {c.name} ({c.description}) and ingest again",
                )
            )
    present = ~missing

    if c.kind == "code":
        ok = text.str.fullmatch(c.pattern or r".*").fillna(False).to_numpy(dtype=bool)
        digits = int(re.search(r"\d+", c.pattern or "0").group()) if c.pattern else 0

        def code_msg(v: str) -> str:
            hint = ""
            if v.isdigit() and len(v) < digits:
                hint = " (a leading zero may have been lost when the column was stored as numbers)"
            elif re.fullmatch(r"\d+\.0+|\d(\.\d+)?[eE]\+?\d+", v):
                hint = " (the column seems to have been stored as numbers)"
            return f"is not a {digits}-digit code{hint}"

        add(
            present & ~ok,
            code_msg,
            f"write the full {digits}-digit code as text (in Excel format the column as "
            "Text before pasting the codes) and ingest again",
        )
        parsed = text.where(pd.Series(present & ok, index=text.index))
        return parsed.astype("str"), probs

    if c.kind in ("str", "category"):
        if c.kind == "category":
            ok = np.isin(arr, np.array(c.levels, dtype=object))

            def cat_msg(v: str) -> str:
                close = [
                    lv for lv in c.levels if lv == v.lower().strip()
                ] or difflib.get_close_matches(v.lower(), c.levels, n=1, cutoff=0.6)
                did = f" (did you mean {close[0]!r}?)" if close else ""
                return f"is not one of the allowed values {', '.join(c.levels)}{did}"

            add(
                present & ~ok,
                cat_msg,
                f"use one of {', '.join(c.levels)} (lower case) and ingest again",
            )
            present = present & ok
        return text.where(pd.Series(present, index=text.index)).astype("str"), probs

    if c.kind == "date":
        norm = text.str.replace("/", "-", regex=False).str.replace(
            r"\s+00:00(:00)?$", "", regex=True
        )
        shape = norm.str.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}").fillna(False).to_numpy(dtype=bool)
        parsed = pd.to_datetime(
            norm.where(pd.Series(shape, index=text.index)), format="%Y-%m-%d", errors="coerce"
        )
        ok = parsed.notna().to_numpy()
        add(
            present & ~ok,
            "is not a valid date (write dates as YYYY-MM-DD, e.g. 2023-07-01)",
            "correct the date in the file and ingest it again",
        )
        return parsed.astype(st.canonical_dtypes(table)[c.name]), probs

    # numeric kinds: int, binary, float
    num = pd.to_numeric(
        pd.Series(np.where(present, arr, None), dtype=object), errors="coerce"
    ).astype("float64")
    num.index = text.index
    vals = num.to_numpy()
    notnum = present & np.isnan(vals)
    finite = np.isfinite(vals)
    if c.kind == "binary":
        ok = present & np.isin(vals, [0.0, 1.0])
        add(present & ~ok, "is not 0 or 1", "use 1 for yes and 0 for no, and ingest again")
    else:
        add(
            notnum,
            "is not a number",
            "write a plain number (no units, no thousands separators, '.' as decimal point) "
            "and ingest again",
        )
        add(present & ~notnum & ~finite, "is not a finite number", _FIX)
        ok = present & finite
        if c.kind == "int":
            frac = ok & (np.mod(np.where(ok, vals, 0.0), 1.0) != 0)
            add(frac, "is not a whole number", f"{c.name} counts whole units: {_FIX}")
            ok &= ~frac
        if c.min is not None:
            low = ok & (vals < c.min)
            add(low, f"is below the minimum {_bound_text(c, 'min')}", _FIX)
            ok &= ~low
        if c.max is not None:
            high = ok & (vals > c.max)
            add(high, f"is above the maximum {_bound_text(c, 'max')}", _FIX)
            ok &= ~high
    parsed = num.where(pd.Series(ok, index=num.index))
    if c.kind in ("int", "binary"):
        parsed = parsed.astype("Int64")
    return parsed, probs


def _check_file(raw: _Raw) -> _Checked:
    table, problems, positions = _check_header(raw)
    checked = _Checked(raw, table, {}, problems)
    if table is None:
        checked.header_ok = False
        return checked
    if len(raw.rows) == 0:
        problems.append(
            _file_problem(
                raw.name,
                "the file has a header but no data rows",
                "export the table again with its data rows",
            )
        )
        return checked
    for c in schema.columns(table):
        if c.name not in positions:
            continue
        text = raw.cells[positions[c.name]].astype("str")
        parsed, probs = _check_column(raw, c, text, table)
        checked.parsed[c.name] = parsed
        problems.extend(probs)
    p = checked.parsed
    if table == "panel":
        for col, digits in (("township_code", 9), ("county_code", 6)):
            if "village_code" in p and col in p:
                v, t = p["village_code"], p[col]
                both = v.notna() & t.notna()
                bad = both & (v.str.slice(0, digits) != t)
                for i in np.flatnonzero(bad.to_numpy(dtype=bool)):
                    problems.append(
                        _row_problem(
                            raw,
                            i,
                            col,
                            t.iloc[i],
                            f"does not agree with village_code {v.iloc[i]!r}, "
                            f"whose first {digits} digits are {v.iloc[i][:digits]!r}",
                            f"correct {col} or village_code: {col} must be the first "
                            f"{digits} digits of village_code",
                        )
                    )
    if table == "postings" and "start_date" in p and "end_date" in p:
        s, e = p["start_date"], p["end_date"]
        bad = (s.notna() & e.notna() & (e < s)).to_numpy(dtype=bool)
        for i in np.flatnonzero(bad):
            problems.append(
                _row_problem(
                    raw,
                    i,
                    "end_date",
                    e.iloc[i].date().isoformat(),
                    f"is before start_date {s.iloc[i].date().isoformat()!r}",
                    "correct the dates: end_date must be on or after start_date "
                    "(leave it empty while the secretary is still in post)",
                )
            )
    key = st.KEYS[table]
    if all(k in p for k in key):
        keys = pd.DataFrame({k: p[k] for k in key})
        valid = keys.notna().all(axis=1)
        kv = keys[valid]
        dup = kv.duplicated(list(key), keep="first")
        if dup.any():
            first = (
                pd.Series(raw.rows[valid.to_numpy()], index=kv.index)
                .groupby([kv[k] for k in key])
                .transform("first")
            )
            for i in kv.index[dup.to_numpy()]:
                problems.append(
                    _row_problem(
                        raw,
                        i,
                        ", ".join(key),
                        " / ".join(str(keys.at[i, k]) for k in key),
                        f"repeats the key of {raw.row_label} {int(first.at[i])} "
                        + (
                            "(each village may appear once per year)"
                            if table == "panel"
                            else "(each secretary_id must be unique)"
                        ),
                        "keep one row for this key: delete or correct the duplicate",
                    )
                )
    return checked


def _cross_file(checked: list[_Checked]) -> list[Problem]:
    """Find keys repeated across the files of one call (within a file is checked earlier)."""
    problems: list[Problem] = []
    for table in ("panel", "postings"):
        key = list(st.KEYS[table])
        files = [ch for ch in checked if ch.table == table and all(k in ch.parsed for k in key)]
        if len(files) < 2:
            continue
        parts = []
        for f, ch in enumerate(files):
            part = pd.DataFrame({k: ch.parsed[k] for k in key})
            part["_file"] = f
            part["_pos"] = np.arange(len(part.index))
            part = part[part[key].notna().all(axis=1)]
            parts.append(part[~part.duplicated(key, keep="first")])
        keys = pd.concat(parts, ignore_index=True)
        dup = keys.duplicated(key, keep="first").to_numpy()
        if not dup.any():
            continue
        first = keys.groupby(key, sort=False)[["_file", "_pos"]].transform("first")
        for j in np.flatnonzero(dup):
            ch = files[int(keys.at[j, "_file"])]
            other = files[int(first.at[j, "_file"])]
            row = int(other.raw.rows[int(first.at[j, "_pos"])])
            problems.append(
                _row_problem(
                    ch.raw,
                    int(keys.at[j, "_pos"]),
                    ", ".join(key),
                    " / ".join(str(keys.at[j, k]) for k in key),
                    f"repeats the key of {other.raw.row_label} {row} in {other.name}",
                    "keep this key in one file only: delete or correct one of the rows",
                )
            )
    return problems


def _village_references(checked: list[_Checked], store: Path) -> list[Problem]:
    """Check that postings point to villages in this call's panel files or in the store."""
    post = [ch for ch in checked if ch.table == "postings" and "village_code" in ch.parsed]
    if not post:
        return []
    new_years: set[int] = set()
    villages: set[str] = set()
    for ch in checked:
        if ch.table == "panel":
            if "year" in ch.parsed:
                new_years |= {int(y) for y in ch.parsed["year"].dropna()}
            if "village_code" in ch.parsed:
                villages |= set(ch.parsed["village_code"].dropna())
    villages |= st.panel_villages(store, exclude_years=new_years) if store.exists() else set()
    problems = []
    for ch in post:
        codes = ch.parsed["village_code"]
        bad = (codes.notna() & ~codes.isin(villages)).to_numpy(dtype=bool)
        for i in np.flatnonzero(bad):
            problems.append(
                _row_problem(
                    ch.raw,
                    i,
                    "village_code",
                    codes.iloc[i],
                    "is not a village of the panel: it is neither in the panel files of this "
                    "ingest nor in the store",
                    "correct the code, or ingest the panel file with this village first "
                    "(or in the same command)",
                )
            )
    return problems


def _canonical(ch: _Checked) -> pd.DataFrame:
    assert ch.table is not None
    cols = {
        c.name: ch.parsed.get(c.name, pd.Series([None] * len(ch.raw.rows), dtype=object))
        for c in schema.columns(ch.table)
    }
    return st.to_canonical(pd.DataFrame(cols), ch.table)


def _pause_hook() -> Callable[[], None] | None:
    raw = os.environ.get("STUDY_INGEST_PAUSE")
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    marker = os.environ.get("STUDY_INGEST_PAUSE_MARKER")

    def pause() -> None:
        if marker:
            Path(marker).write_text(str(os.getpid()))
        time.sleep(seconds)

    return pause


def _store_problem(store: Path, exc: BaseException) -> Problem:
    return Problem(
        store.name,
        None,
        None,
        None,
        f"the store {store} cannot be used: {exc}",
        "check that --store names the study's DuckDB file (or a new file in an existing folder)",
    )


def ingest_files(paths: list[Path], store: Path, dry_run: bool = False) -> IngestReport:
    """Validate canonical panel and postings files and write them into the store.

    Every file is read and checked before anything is written: the column set (missing,
    unknown, misspelt columns), types, bounds, missing values, code patterns and their
    agreement with the village code, category levels, 0/1 flags, dates, duplicate keys
    within and across files, and whether postings point to known villages. If any file has
    any problem, nothing is written and one :class:`IngestError` lists them all.
    Otherwise all files are written in one atomic transaction: panel files replace their
    years, postings are upserted by ``secretary_id``, and each file gets a provenance row.

    Parameters
    ----------
    paths : list of pathlib.Path
        CSV (UTF-8, with or without BOM), Parquet or XLSX files in the canonical format.
    store : pathlib.Path
        The DuckDB store; created if it does not exist.
    dry_run : bool, default False
        Check the files and report what would change, without writing anything.

    Returns
    -------
    IngestReport
        Per file: table, rows, years and inserted / replaced / unchanged counts.

    Raises
    ------
    IngestError
        If any file has a problem (or the store cannot be used); ``.problems`` holds them.

    Examples
    --------
    >>> from pathlib import Path
    >>> files = [Path("data/raw/panel_2023.csv")]
    >>> ingest_files(files, store=Path("data/study.duckdb"))  # doctest: +SKIP
    """
    store = Path(store)
    paths = [Path(p) for p in paths]
    if not paths:
        raise IngestError(
            [_file_problem("(no file)", "no file was given", "name at least one file")]
        )
    problems: list[Problem] = []
    checked: list[_Checked] = []
    seen_paths: dict[Path, str] = {}
    for path in paths:
        key = path.resolve()
        if key in seen_paths:
            problems.append(
                _file_problem(
                    path.name,
                    f"the same file is given twice ({seen_paths[key]})",
                    "give each file once",
                )
            )
            continue
        seen_paths[key] = str(path)
        raw, probs = _read(path)
        problems.extend(probs)
        if raw is None:
            continue
        ch = _check_file(raw)
        checked.append(ch)
        problems.extend(ch.problems)
    problems.extend(_cross_file(checked))
    if store.exists() and not store.is_file():
        problems.append(_store_problem(store, IsADirectoryError("it is a folder")))
        raise IngestError(_ordered(problems, paths))
    if problems:
        try:
            problems.extend(_village_references(checked, store))
        except (st.StoreError, duckdb.Error) as exc:
            problems.append(_store_problem(store, exc))
        raise IngestError(_ordered(problems, paths))

    frames: dict[str, list[tuple[pd.DataFrame, st.Source]]] = {"panel": [], "postings": []}
    for ch in checked:
        frame = _canonical(ch)
        frames[ch.table].append((frame, st.Source(ch.name, ch.raw.sha256, len(frame))))

    def stacked(table: str) -> tuple[pd.DataFrame | None, list[st.Source] | None]:
        if not frames[table]:
            return None, None
        return (
            pd.concat([f for f, _ in frames[table]], ignore_index=True),
            [s for _, s in frames[table]],
        )

    panel, panel_sources = stacked("panel")
    postings, postings_sources = stacked("postings")
    try:
        lock = st.ingest_lock(store) if not dry_run else nullcontext()
        with lock:
            refs = _village_references(checked, store)
            if refs:
                raise IngestError(_ordered(refs, paths))
            result = st.write_tables(
                store,
                panel=panel,
                panel_sources=panel_sources,
                postings=postings,
                postings_sources=postings_sources,
                dry_run=dry_run,
                after_partial_write=_pause_hook(),
            )
        summary = st.summary(store) if store.exists() else {}
    except (st.StoreError, duckdb.Error, OSError) as exc:
        raise IngestError([_store_problem(store, exc)]) from exc
    return IngestReport(store, dry_run, result.ingest_id, result.files, result.removed, summary)


def _ordered(problems: list[Problem], paths: list[Path]) -> list[Problem]:
    order = {p.name: i for i, p in enumerate(paths)}
    order.update({str(p): i for i, p in enumerate(paths)})
    return sorted(
        problems, key=lambda p: (order.get(p.file, len(order)), p.row is not None, p.row or 0)
    )
