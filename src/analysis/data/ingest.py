"""Validated ingest: canonical files and bureau files into the DuckDB store.

:func:`ingest_files` reads every file, decides whether it is a ``panel`` or a
``postings`` file (:mod:`analysis.data.schema`), checks every value, and only if *no*
file of the call has a problem writes them all into the store in one atomic
transaction (:func:`analysis.data.store.write_tables`). Otherwise it raises one
:class:`IngestError` listing every problem of every file, each with the file, the sheet,
the row as the user sees it (header = row 1 in canonical CSV and XLSX; "record N" in
Parquet), the column, the value, what is wrong and what to do. Nothing is written then,
and the store file is byte-for-byte unchanged.

Two modes
---------
Canonical files (``mapping_dir=None``, the default)
    The study's own exchange format of ``data/README.md``: English column names, UTF-8,
    plain numbers in canonical units. Reading rules:

    * CSV: UTF-8 with or without BOM, comma-separated, header in the first line. Every
      cell is read as text, so codes keep their leading zeros; numbers are parsed by the
      checks.
    * XLSX: the first sheet, header in row 1; cached values of formulas.
    * Parquet: typed columns are accepted; an integer-typed code column is accepted only
      if its digits still form a valid code (a lost leading zero is reported).
    * Leading and trailing spaces are ignored; an empty cell is a missing value. Rows
      that are entirely empty are skipped (their numbers are not reused).

Bureau files (``mapping_dir`` given, e.g. :data:`analysis.data.formats.DEFAULT_MAPPING_DIR`)
    The statistics bureau's village table and the organisation department's list of
    first secretaries as those offices send them: XLSX or CSV in UTF-8, GBK or GB18030,
    Chinese headers mapped through the analysts' YAML files, units in the headers,
    subtotal rows, full-width digits, missing markers, Excel-mangled codes (all rules in
    :mod:`analysis.data.formats`; canonical files are read too). In this mode the ingest
    also

    * writes the problems of each input file, in Chinese and English, to
      ``<input>.errors.xlsx`` and ``<input>.errors.csv`` beside it (never touching the
      input itself; stale reports of an input that now ingests cleanly are removed);
    * fills missing ``carry_forward`` attributes (``panel.yaml``: distance, terrain,
      industry) from the village's latest stored year, and says so;
    * compares every new panel year with the latest earlier year (stored or in the same
      ingest): a village code that appears or disappears without an entry in the
      crosswalk (:mod:`analysis.data.crosswalk`) is an error naming the code and the
      crosswalk line to add;
    * raises **warnings** for possible but suspicious values: per-capita income at least
      ten times (or at most a tenth of) the village's previous year (a 万元/元 mix-up?),
      population halved or doubled, a whole money, length or population column typically
      more than five times (or less than a fifth of) last year's (wrong unit in the
      header?), a posting id the store already has for another village, a new posting
      with the same village and start date as a stored posting under another id.
      Warnings block the ingest like errors unless ``accept_warnings=True``; accepted
      warnings are listed in the report and recorded in the ingest log.

The year-to-year code check also runs for canonical files when a ``crosswalk`` is given.

History
-------
Every ingest is logged (:func:`analysis.data.store.history`); a re-ingested year
replaces the stored one atomically and the old rows stay in the history tables, so any
earlier state can be brought back with :func:`analysis.data.store.restore`. Both are
re-exported here.

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
import dataclasses
import difflib
import hashlib
import io
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

from analysis.data import crosswalk as cw
from analysis.data import formats, schema
from analysis.data import store as st
from analysis.data.formats import MappingError, Note
from analysis.data.formats import cell_text as _cell_text
from analysis.data.problems import Problem, remove_stale_reports, write_error_report
from analysis.data.store import history, history_text, restore

__all__ = [
    "IngestError",
    "IngestReport",
    "Problem",
    "history",
    "history_text",
    "ingest_files",
    "restore",
]

SUPPORTED = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet", ".xlsx": "XLSX"}
MAX_SHOWN = 50
"""At most this many problems are printed by ``str(IngestError)``."""
MAX_SHOWN_PER_KIND = 5
"""At most this many problems of one kind (file, column, problem) are printed."""
INCOME_RATIO_WARNING = 10.0
"""Per-capita income at least this many times (or at most 1/this) the previous year is a warning."""
POPULATION_RATIO_WARNING = 2.0
"""Population at least this many times (or at most 1/this) the previous year is a warning."""
COLUMN_RATIO_WARNING = 5.0
"""A column whose median ratio to the previous year passes this (or 1/this) is a warning."""
MAX_NOTED_WARNINGS = 200
"""At most this many accepted warnings are copied into the ingest log."""

_PANEL_ONLY = set(schema.column_names("panel")) - set(schema.column_names("postings"))
_POSTINGS_ONLY = set(schema.column_names("postings")) - set(schema.column_names("panel"))
_FIX = "correct the value in the file and ingest it again"
_FIX_ZH = "更正文件中的数值后重新导入"
_ACCEPT = "check the value; if it is right, ingest again with accept_warnings=True (study ingest --accept-warnings)"
_ACCEPT_ZH = "核对数值；如确认无误，加 --accept-warnings（accept_warnings=True）重新导入"


class IngestError(Exception):
    """Input files with problems; nothing was written.

    Parameters
    ----------
    problems : list of Problem
        Every problem found, in file and row order (errors and warnings).
    bilingual : bool, default False
        Print every problem in English and, on the next line, in Chinese (bureau mode).
    reports : list of pathlib.Path, optional
        Error reports written beside the inputs.

    Attributes
    ----------
    problems : list of Problem
        As given.
    reports : list of pathlib.Path
        As given.
    """

    def __init__(self, problems: Sequence[Problem], bilingual: bool = False, reports: Sequence[Path] = ()):
        self.problems = list(problems)
        self.bilingual = bilingual
        self.reports = list(reports)
        super().__init__(self._message())

    @property
    def errors(self) -> list[Problem]:
        """The problems that are errors (not warnings)."""
        return [p for p in self.problems if not p.is_warning]

    @property
    def warnings(self) -> list[Problem]:
        """The problems that are warnings."""
        return [p for p in self.problems if p.is_warning]

    def _message(self) -> str:
        n = len(self.problems)
        files = len({p.file for p in self.problems})
        w = len(self.warnings)
        kinds = ""
        if w:
            e = n - w
            kinds = f" ({e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''})"
        lines = [
            f"Nothing was written to the store: {n} problem{'s' if n != 1 else ''}{kinds} "
            f"in {files} file{'s' if files != 1 else ''}."
        ]
        if self.bilingual:
            zh_kinds = f"（{n - w} 个错误，{w} 个警告）" if w else ""
            lines.append(f"没有写入任何数据：{files} 个文件中共有 {n} 个问题{zh_kinds}。")
        per_kind: dict[tuple, int] = {}
        hidden = 0
        shown = 0
        for p in self.problems:
            kind = (p.file, p.column, p.problem)
            per_kind[kind] = per_kind.get(kind, 0) + 1
            if per_kind[kind] > MAX_SHOWN_PER_KIND or shown >= MAX_SHOWN:
                hidden += 1
                continue
            shown += 1
            lines.append(str(p))
            if self.bilingual and p.problem_zh:
                lines.append("    " + p.text_zh())
        if hidden:
            lines.append(
                f"... and {hidden} more problem{'s' if hidden != 1 else ''} not listed (at most "
                f"{MAX_SHOWN_PER_KIND} of each kind are shown). Fix these and run the ingest again."
            )
        if self.reports:
            lines.append("Every problem is listed in / 全部问题见: " + ", ".join(str(r) for r in self.reports))
        if w and not (n - w):
            lines.append(
                "Only warnings: if the values are right, ingest again with accept_warnings=True "
                "(study ingest --accept-warnings). / 只有警告：如确认数值无误，加 --accept-warnings 重新导入。"
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
    by_year : list of analysis.data.store.YearChange
        Rows inserted / replaced / unchanged / removed per table and year.
    villages_added, villages_removed : list of str
        Villages the panel gains (in no stored year before) or loses.
    notes : dict of str to list of Note
        Per bureau file: the conversions applied (encoding, units, rows dropped, ...).
    warnings : list of Problem
        Warnings accepted with ``accept_warnings=True``.
    crosswalk_entries : int
        Village-code changes recorded from the crosswalk file.
    """

    store: Path
    dry_run: bool
    ingest_id: str
    files: list[st.FileChange] = field(default_factory=list)
    removed: dict[int, int] = field(default_factory=dict)
    store_summary: dict = field(default_factory=dict)
    by_year: list[st.YearChange] = field(default_factory=list)
    villages_added: list[str] = field(default_factory=list)
    villages_removed: list[str] = field(default_factory=list)
    notes: dict[str, list[Note]] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)
    crosswalk_entries: int = 0

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
        if len(self.by_year) > 1 or any(y.removed for y in self.by_year):
            lines.append("  by year:")
            for y in self.by_year:
                lines.append(
                    f"    {y.table} {y.year}: {verb[0]} {y.inserted}, {verb[1]} {y.replaced}, {verb[2]} "
                    f"{y.unchanged}, {'remove' if self.dry_run else 'removed'} {y.removed}"
                )
        if self.villages_added or self.villages_removed:
            lines.append(
                f"  villages {'the panel would gain' if self.dry_run else 'gained'}: {len(self.villages_added)}"
                f"{_codes_tail(self.villages_added)}; {'would lose' if self.dry_run else 'lost'}: "
                f"{len(self.villages_removed)}{_codes_tail(self.villages_removed)}"
            )
        if self.crosswalk_entries:
            lines.append(f"  {self.crosswalk_entries} village-code changes recorded from the crosswalk")
        for name, notes in self.notes.items():
            if notes:
                lines.append(f"  {name}: read as a bureau file / 按统计局格式读取:")
                lines.extend(f"    - {note}" for note in notes)
        if self.warnings:
            lines.append(f"  {len(self.warnings)} warnings accepted / 已确认 {len(self.warnings)} 个警告:")
            lines.extend(f"    - {w}" for w in self.warnings[:MAX_SHOWN_PER_KIND * 2])
            if len(self.warnings) > MAX_SHOWN_PER_KIND * 2:
                lines.append(f"    ... and {len(self.warnings) - MAX_SHOWN_PER_KIND * 2} more")
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


def _codes_tail(codes: Sequence[str], limit: int = 5) -> str:
    if not codes:
        return ""
    more = ", ..." if len(codes) > limit else ""
    return f" ({', '.join(codes[:limit])}{more})"


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
    """A file read as text: header names, cells (stripped, '' = missing), row numbers.

    Bureau files add: ``table`` (already known), ``sheets`` (per row), ``shown`` (cells as
    written, per column position, for messages), ``reported`` (cells already reported,
    per column position) and ``headers`` (canonical column to the file's header).
    """

    name: str
    sha256: str
    header: list[str]
    cells: pd.DataFrame  # one column per header position (0..k-1), text (or float64 in bureau files)
    rows: np.ndarray
    row_label: str
    header_row: int | None
    table: str | None = None
    sheets: np.ndarray | None = None
    shown: dict[int, np.ndarray] | None = None
    reported: dict[int, np.ndarray] | None = None
    headers: dict[str, str] | None = None
    path: Path | None = None


def _file_problem(name: str, problem: str, action: str, problem_zh: str = "", action_zh: str = "") -> Problem:
    return Problem(name, None, None, None, problem, action, problem_zh=problem_zh, action_zh=action_zh)


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
                problem_zh="文件不是 UTF-8 编码（本行有无法解码的字节）",
                action_zh="在 Excel 中另存为“CSV UTF-8（逗号分隔）”后重新导入；"
                          "中文表头的统计局文件请按原格式导入（mapping_dir）",
            )
        ]
    if not text.strip():
        return None, [
            _file_problem(
                name,
                "the file is empty",
                "export the table again with its header row and data rows",
                "文件是空的",
                "重新导出带表头和数据的表格",
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
                    problem_zh=f"本行有 {m.group(2)} 个字段，比表头多",
                    action_zh="删除多余的逗号（含逗号的文字加引号）后重新导入",
                )
            ]
        return None, [
            _file_problem(
                name,
                f"the file cannot be read as CSV ({exc})",
                "export it again as comma-separated CSV (UTF-8)",
                "文件无法按 CSV 读取",
                "重新导出为逗号分隔的 CSV（UTF-8）",
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
                "文件无法按 Excel 工作簿读取",
                "用 Excel 打开后另存为 .xlsx，或导出为 CSV UTF-8",
            )
        ]
    try:
        if not wb.worksheets:
            return None, [
                _file_problem(name, "the workbook has no sheet", "put the table in the first sheet",
                              "工作簿中没有工作表", "把表格放在第一个工作表中")
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
                "第一个工作表是空的",
                "把表格（表头在第1行）放在第一个工作表中",
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
                "文件无法按 Parquet 读取",
                "用 Parquet 写入程序重新生成该文件",
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
                "文件不存在",
                "检查路径和文件名的拼写",
            )
        ]
    if path.is_dir():
        return None, [
            _file_problem(
                str(path),
                "this is a folder, not a file",
                "give the panel or postings files themselves",
                "这是文件夹，不是文件",
                "请指定具体的数据文件",
            )
        ]
    if ext not in SUPPORTED:
        extra = " (old .xls workbooks are not read)" if ext == ".xls" else ""
        return None, [
            _file_problem(
                name,
                f"the file type {ext or '(none)'!r} is not supported{extra}",
                "save the table as CSV UTF-8 (.csv), Parquet (.parquet) or Excel workbook (.xlsx)",
                f"不支持 {ext or '(无扩展名)'} 类型的文件" + ("（不读取旧的 .xls 工作簿）" if extra else ""),
                "把表格另存为 CSV UTF-8（.csv）、Parquet（.parquet）或 Excel 工作簿（.xlsx）",
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
                "文件无法读取",
                "检查是否有读取权限，以及文件是否被其他程序独占打开",
            )
        ]
    if not data:
        return None, [
            _file_problem(
                name,
                "the file is empty (0 bytes)",
                "export the table again with its header row and data rows",
                "文件是空的（0 字节）",
                "重新导出带表头和数据的表格",
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
                    problem_zh="在表头中没有列名",
                    action_zh="填写标准列名或删除该列",
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
                    problem_zh=f"在表头中出现了 {n} 次",
                    action_zh="只保留一个同名列，删除其他列",
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
                problem_zh="无法根据列名判断这是村级面板文件还是第一书记派驻文件",
                action_zh="使用 data/README.md 中的标准英文列名；中文表头的统计局或组织部文件请按原格式导入"
                          "（mapping_dir）",
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
                    problem_zh=f"缺少必需的列（文件中的“{guess}”列看起来就是它）",
                    action_zh=f"把表头中的“{guess}”改为“{c.name}”",
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
                    problem_zh="缺少必需的列",
                    action_zh=f"添加“{c.name}”列（{c.label_zh}），见 data/README.md",
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
                problem_zh="不是该表的标准列",
                action_zh="删除该列，或改为 data/README.md 中的标准列名",
            )
        )
    return table, problems, positions


def _bound_text(c: schema.Column, which: str) -> str:
    v = c.min if which == "min" else c.max
    unit = f" ({c.unit})" if c.unit and c.unit != "-" else ""
    return f"{v:g}{unit}"


def _check_column(
    raw: _Raw, c: schema.Column, text: pd.Series, table: str, pos: int | None = None
) -> tuple[pd.Series, list[Problem]]:
    """Parse one column; return the parsed values (missing where invalid) and problems.

    ``text`` is the column as text (``""`` = missing); in bureau files numeric columns
    arrive already parsed as float64 (NaN = missing), and cells the bureau reader has
    already reported (``raw.reported``) are skipped.
    """
    probs: list[Problem] = []
    numeric_in = pd.api.types.is_float_dtype(text.dtype)
    if numeric_in:
        arr = text.to_numpy(dtype="float64")
        missing = np.isnan(arr)
    else:
        arr = text.to_numpy(dtype=object)
        missing = arr == ""
    skip = (
        raw.reported.get(pos, np.zeros(len(arr), dtype=bool))
        if raw.reported is not None and pos is not None
        else np.zeros(len(arr), dtype=bool)
    )
    shown = raw.shown.get(pos) if raw.shown is not None and pos is not None else None
    missing = missing & ~skip

    def value(i: int) -> str:
        if shown is not None and shown[i] != "":
            return str(shown[i])
        v = arr[i]
        return _cell_text(v) if numeric_in else v

    def add(
        mask: np.ndarray,
        problem: str | Callable[[str], str],
        action: str,
        problem_zh: str | Callable[[str], str] = "",
        action_zh: str = _FIX_ZH,
    ) -> None:
        for i in np.flatnonzero(mask):
            v = value(i)
            msg = problem(v) if callable(problem) else problem
            zh = problem_zh(v) if callable(problem_zh) else problem_zh
            probs.append(_row_problem(raw, i, c.name, v, msg, action, zh, action_zh))

    if not c.nullable:
        for i in np.flatnonzero(missing):
            probs.append(
                _row_problem(
                    raw,
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
    present = ~missing & ~skip

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
            f"不是{digits}位代码",
            f"填写完整的{digits}位代码（在 Excel 中先把该列设置为“文本”格式再粘贴代码）后重新导入",
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
                f"不是允许的取值（{'、'.join(c.levels)}）",
                f"改为 {'、'.join(c.levels)} 之一（统计局文件可用映射文件中列出的中文词）后重新导入",
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
            "不是有效日期（日期写成 2023-07-01 或 2023年7月1日）",
            "更正文件中的日期后重新导入",
        )
        parsed = parsed.where(pd.Series(present & ok, index=text.index))
        return parsed.astype(st.canonical_dtypes(table)[c.name]), probs

    # numeric kinds: int, binary, float
    if numeric_in:
        num = pd.Series(np.where(present, arr, np.nan), index=text.index, dtype="float64")
    else:
        num = pd.to_numeric(
            pd.Series(np.where(present, arr, None), dtype=object), errors="coerce"
        ).astype("float64")
        num.index = text.index
    vals = num.to_numpy()
    notnum = present & np.isnan(vals)
    finite = np.isfinite(vals)
    if c.kind == "binary":
        ok = present & np.isin(vals, [0.0, 1.0])
        add(
            present & ~ok,
            "is not 0 or 1",
            "use 1 for yes and 0 for no, and ingest again",
            "不是 0 或 1",
            "是/有 填 1，否/无 填 0 后重新导入",
        )
    else:
        add(
            notnum,
            "is not a number",
            "write a plain number (no units, no thousands separators, '.' as decimal point) "
            "and ingest again",
            "不是数字",
            "填写数字后重新导入",
        )
        add(present & ~notnum & ~finite, "is not a finite number", _FIX, "不是有限的数字")
        ok = present & finite
        if c.kind == "int":
            frac = ok & (np.mod(np.where(ok, vals, 0.0), 1.0) != 0)
            add(
                frac,
                "is not a whole number",
                f"{c.name} counts whole units: {_FIX}",
                "不是整数",
                f"{c.label_zh}只能是整数：{_FIX_ZH}",
            )
            ok &= ~frac
        if c.min is not None:
            low = ok & (vals < c.min)
            add(
                low,
                f"is below the minimum {_bound_text(c, 'min')}",
                _FIX,
                _bound_zh(c, "min", vals),
            )
            ok &= ~low
        if c.max is not None:
            high = ok & (vals > c.max)
            hint = ""
            hint_zh = ""
            if c.unit.startswith("share"):
                hint_zh = "（占比应为 0 到 1 之间的小数，或写成 35%）"
            add(
                high,
                f"is above the maximum {_bound_text(c, 'max')}{hint}",
                _FIX,
                _bound_zh(c, "max", vals) + hint_zh,
            )
            ok &= ~high
    parsed = num.where(pd.Series(ok, index=num.index))
    if c.kind in ("int", "binary"):
        parsed = parsed.astype("Int64")
    return parsed, probs


def _bound_zh(c: schema.Column, which: str, vals: np.ndarray) -> str:
    v = c.min if which == "min" else c.max
    return f"{'低于最小值' if which == 'min' else '超过最大值'} {v:g}"


def _row_problem(
    raw: _Raw,
    i: int,
    column: str | None,
    value: str | None,
    problem: str,
    action: str,
    problem_zh: str = "",
    action_zh: str = "",
    severity: str = "error",
) -> Problem:
    header = None
    if raw.headers and column:
        header = raw.headers.get(column.split(", ")[0])
    return Problem(
        raw.name,
        int(raw.rows[i]),
        column,
        value,
        problem,
        action,
        raw.row_label,
        sheet=None if raw.sheets is None else str(raw.sheets[i]) or None,
        header=header,
        problem_zh=problem_zh,
        action_zh=action_zh,
        severity=severity,
    )


def _check_file(raw: _Raw) -> _Checked:
    if raw.table is not None:
        table, problems = raw.table, []
        positions = {h: i for i, h in enumerate(raw.header)}
    else:
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
                "文件只有表头，没有数据行",
                "重新导出带数据行的表格",
            )
        )
        return checked
    for c in schema.columns(table):
        if c.name not in positions:
            continue
        col = raw.cells[positions[c.name]]
        text = col if pd.api.types.is_float_dtype(col.dtype) else col.astype("str")
        parsed, probs = _check_column(raw, c, text, table, positions[c.name])
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
                            f"与村代码“{v.iloc[i]}”不一致（村代码的前 {digits} 位是“{v.iloc[i][:digits]}”）",
                            f"更正该代码或村代码：它必须等于村代码的前 {digits} 位",
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
                    f"早于到岗日期“{s.iloc[i].date().isoformat()}”",
                    "更正日期：离岗日期不能早于到岗日期（仍在岗的留空）",
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
            first_sheet = None
            if raw.sheets is not None:
                first_sheet = (
                    pd.Series(raw.sheets[valid.to_numpy()], index=kv.index)
                    .groupby([kv[k] for k in key])
                    .transform("first")
                )
            for i in kv.index[dup.to_numpy()]:
                where = f"{raw.row_label} {int(first.at[i])}"
                if first_sheet is not None and first_sheet.at[i] != raw.sheets[i]:
                    where += f" of sheet {first_sheet.at[i]!r}"
                problems.append(
                    _row_problem(
                        raw,
                        i,
                        ", ".join(key),
                        " / ".join(str(keys.at[i, k]) for k in key),
                        f"repeats the key of {where} "
                        + (
                            "(each village may appear once per year)"
                            if table == "panel"
                            else "(each secretary_id must be unique)"
                        ),
                        "keep one row for this key: delete or correct the duplicate",
                        f"与第 {int(first.at[i])} 行重复"
                        + ("（每个村每年只能有一行）" if table == "panel" else "（每条派驻记录的编号必须唯一）"),
                        "只保留一行：删除或更正重复的行",
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
                    f"与文件 {other.name} 第 {row} 行重复",
                    "同一个村和年份（或同一编号）只能出现在一个文件中：删除或更正其中一行",
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
                    "不是面板中的村：既不在本次导入的村级统计表中，也不在数据库中",
                    "更正村代码，或先导入（或同时导入）含有该村的村级统计表",
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
        problem_zh="数据库文件无法使用",
        action_zh="检查 --store 指定的是否是本研究的 DuckDB 文件（或已存在文件夹中的新文件）",
    )


# ----------------------------------------------------------------------------- bureau files


def _raw_from_bureau(bt: formats.BureauTable, path: Path) -> _Raw:
    """Turn a bureau table into the ``_Raw`` the canonical checks take."""
    names = list(bt.values)
    cells = pd.DataFrame({i: bt.values[c].reset_index(drop=True) for i, c in enumerate(names)})
    n = len(bt.rows)
    shown = {i: np.array(bt.shown.get(c, np.full(n, "", dtype=object)), dtype=object) for i, c in enumerate(names)}
    reported = {i: np.array(bt.reported.get(c, np.zeros(n, dtype=bool)), dtype=bool) for i, c in enumerate(names)}
    return _Raw(
        bt.name,
        bt.sha256,
        names,
        cells,
        bt.rows,
        "row",
        None,
        table=bt.table,
        sheets=bt.sheets,
        shown=shown,
        reported=reported,
        headers=dict(bt.headers),
        path=path,
    )


def _read_input(
    path: Path, mappings: formats.Mappings | None, year: int | None
) -> tuple[_Raw | None, list[Problem], list[Note]]:
    """Read one input: canonical reader, or the bureau reader for CSV/XLSX in bureau mode."""
    ext = path.suffix.lower()
    if mappings is None or ext not in (".csv", ".xlsx") or not path.is_file():
        raw, problems = _read(path)
        if raw is not None:
            raw.path = path
        return raw, problems, []
    try:
        data = path.read_bytes()
    except OSError:
        raw, problems = _read(path)
        return raw, problems, []
    if not data:
        raw, problems = _read(path)
        return raw, problems, []
    bt, problems = formats.read_bureau(path, mappings, year=year, data=data)
    if bt is None:
        return None, problems, []
    return _raw_from_bureau(bt, path), list(bt.problems), list(bt.notes)


def _carry_forward(raw: _Raw, tm: formats.TableMap, store: Path) -> tuple[list[Problem], list[Note]]:
    """Fill missing ``carry_forward`` attributes of a bureau panel from the latest stored year."""
    cols = [c for c in tm.carry_forward if c in raw.header]
    if not cols:
        return [], []
    pos = {c: raw.header.index(c) for c in cols}
    need = {}
    for c in cols:
        v = raw.cells[pos[c]]
        empty = np.array(v.isna() if pd.api.types.is_float_dtype(v.dtype) else (v == ""), dtype=bool)
        empty &= ~raw.reported[pos[c]]
        if empty.any():
            need[c] = empty
    if not need:
        return [], []
    codes = raw.cells[raw.header.index("village_code")].astype(str).to_numpy(dtype=object)
    latest = pd.DataFrame()
    if store.is_file():
        with st.open_store(store) as con:
            if st._has_table(con, "panel"):
                wanted = sorted({codes[i] for m in need.values() for i in np.flatnonzero(m)})
                latest = con.execute(
                    f"""SELECT village_code, year, {", ".join(cols)} FROM panel
                        WHERE list_contains(?, village_code)
                        QUALIFY row_number() OVER (PARTITION BY village_code ORDER BY year DESC) = 1""",
                    [wanted],
                ).fetchdf()
    latest = latest.set_index("village_code") if len(latest) else latest
    problems: list[Problem] = []
    notes: list[Note] = []
    spec = {c.name: c for c in schema.PANEL_COLUMNS}
    for c, empty in need.items():
        col = raw.cells[pos[c]].copy()
        idx = np.flatnonzero(empty)
        found = np.array([len(latest) > 0 and codes[i] in latest.index for i in idx], dtype=bool)
        if found.any():
            fill_idx = idx[found]
            vals = latest.loc[codes[fill_idx], c].to_numpy()
            if pd.api.types.is_float_dtype(col.dtype):
                col.iloc[fill_idx] = vals.astype(float)
            else:
                col = col.astype(object)
                col.iloc[fill_idx] = [_cell_text(v) for v in vals]
            raw.cells[pos[c]] = col
            rows = ", ".join(str(r) for r in raw.rows[fill_idx][:5]) + (" ..." if len(fill_idx) > 5 else "")
            notes.append(
                Note(
                    f"{c}: {len(fill_idx)} missing values taken from the village's latest stored year (rows {rows})",
                    f"{c}：{len(fill_idx)} 个缺失值取自该村最近一年的入库数据（第 {rows} 行）",
                )
            )
        lost = idx[~found]
        if len(lost) and c not in (raw.headers or {}):  # the file has no such column at all
            rows = ", ".join(str(r) for r in raw.rows[lost][:5]) + (" ..." if len(lost) > 5 else "")
            problems.append(
                Problem(
                    raw.name,
                    None,
                    c,
                    None,
                    f"the file has no {c} column, and the store has no earlier year to take it from for "
                    f"{len(lost)} villages (rows {rows})",
                    f"add the column {spec[c].label_zh} ({spec[c].description}) to the file",
                    problem_zh=f"文件中没有{spec[c].label_zh}列，"
                    f"且数据库中没有 {len(lost)} 个村（第 {rows} 行）往年的数据可以沿用",
                    action_zh=f"在文件中添加“{spec[c].label_zh}”列",
                )
            )
            raw.reported[pos[c]][lost] = True
            continue
        for i in lost:
            problems.append(
                _row_problem(
                    raw,
                    int(i),
                    c,
                    str(raw.shown[pos[c]][i]) if raw.shown and raw.shown[pos[c]][i] != "" else None,
                    "is missing, and the store has no earlier year of this village to take it from",
                    f"fill in {c} ({spec[c].description}) for this village",
                    "缺失，且数据库中没有该村往年的数据可以沿用",
                    f"为该村填写{spec[c].label_zh}",
                )
            )
            raw.reported[pos[c]][i] = True
    return problems, notes


def _panel_years(checked: list[_Checked]) -> dict[int, list[tuple[_Checked, np.ndarray]]]:
    """Year -> (file, positions of its rows) of the panel files of the call."""
    out: dict[int, list[tuple[_Checked, np.ndarray]]] = {}
    for ch in checked:
        if ch.table != "panel" or "year" not in ch.parsed or "village_code" not in ch.parsed:
            continue
        years = ch.parsed["year"]
        distinct = pd.unique(years.dropna())
        for y in distinct:
            rows = (years == y).to_numpy(dtype=bool, na_value=len(distinct) == 1)  # a bad year cell of a one-year file
            out.setdefault(int(y), []).append((ch, np.flatnonzero(rows)))
    return out


def _stored_years(store: Path) -> list[int]:
    if not store.is_file():
        return []
    return list(st.summary(store).get("panel_years", []))


def _stored_codes(store: Path, year: int) -> set[str]:
    with st.open_store(store) as con:
        return {r[0] for r in con.execute("SELECT village_code FROM panel WHERE year = ?", [year]).fetchall()}


def _stored_crosswalk(store: Path) -> pd.DataFrame:
    if not store.is_file():
        return cw.empty_crosswalk()
    with st.open_store(store) as con:
        if not st._has_table(con, "village_crosswalk"):
            return cw.empty_crosswalk()
        return con.execute(
            "SELECT old_code, new_code, year_effective, change_type, weight, file_name FROM village_crosswalk"
        ).fetchdf()


def _code_changes(checked: list[_Checked], store: Path, crosswalk: pd.DataFrame) -> list[Problem]:
    """Compare every new panel year with the latest earlier year (stored or in this call)."""
    by_year = _panel_years(checked)
    if not by_year:
        return []
    stored = [y for y in _stored_years(store) if y not in by_year]
    problems: list[Problem] = []
    for y in sorted(by_year):
        earlier = [p for p in set(stored) | set(by_year) if p < y]
        if not earlier:
            continue
        prev = max(earlier)
        if prev in by_year:
            prev_codes: set[str] = set()
            for ch, idx in by_year[prev]:
                prev_codes |= set(ch.parsed["village_code"].iloc[idx].dropna())
            source = ", ".join(ch.name for ch, _ in by_year[prev])
        else:
            prev_codes = _stored_codes(store, prev)
            source = "stored"
        new_codes: set[str] = set()
        for ch, idx in by_year[y]:
            new_codes |= set(ch.parsed["village_code"].iloc[idx].dropna())
        where: dict[str, tuple[int, str | None]] = {}  # rows of the codes that are new against prev
        came = new_codes - prev_codes
        for ch, idx in by_year[y] if came else ():
            codes = ch.parsed["village_code"].iloc[idx]
            hit = codes.isin(came).to_numpy(dtype=bool)
            for i, code in zip(idx[hit], codes[hit], strict=True):
                where.setdefault(code, (int(ch.raw.rows[i]), None if ch.raw.sheets is None else ch.raw.sheets[i]))
        # Rows whose code could not be read may be the villages that seem to be gone: say so.
        unreadable = sum(int(ch.parsed["village_code"].iloc[idx].isna().sum()) for ch, idx in by_year[y])
        found = cw.check_code_changes(by_year[y][0][0].name, y, prev, prev_codes, new_codes, crosswalk, where, source)
        if unreadable:
            found = [
                dataclasses.replace(
                    p,
                    problem=p.problem + f" (or it is one of the {unreadable} rows whose code could not be read)",
                    problem_zh=p.problem_zh + f"（也可能是代码无法识别的 {unreadable} 行之一）",
                )
                if p.row is None and "is not in this" in p.problem
                else p
                for p in found
            ]
        header = next((ch.raw.headers or {} for ch, _ in by_year[y]), {}).get("village_code")
        problems.extend(dataclasses.replace(p, header=header) if header and p.header is None else p for p in found)
    return problems


def _ratio_warnings(checked: list[_Checked], store: Path) -> list[Problem]:
    """Suspicious year-on-year changes against the previous year of the same village."""
    by_year = _panel_years(checked)
    if not by_year:
        return []
    stored = [y for y in _stored_years(store) if y not in by_year]
    problems: list[Problem] = []
    cols = ["income_per_capita", "population", "collective_income", "funds_attracted", "roads_km"]
    for y in sorted(by_year):
        prev = y - 1
        if prev in by_year:
            parts = []
            for ch, idx in by_year[prev]:
                parts.append(pd.DataFrame({c: ch.parsed[c].iloc[idx].to_numpy() for c in ["village_code", *cols]
                                           if c in ch.parsed}))
            old = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        elif prev in stored:
            with st.open_store(store) as con:
                old = con.execute(
                    f"SELECT village_code, {', '.join(cols)} FROM panel WHERE year = ?", [prev]
                ).fetchdf()
        else:
            continue
        if old.empty:
            continue
        old = old.drop_duplicates("village_code").set_index("village_code")
        for ch, idx in by_year[y]:
            codes = ch.parsed["village_code"].iloc[idx].to_numpy(dtype=object)
            for col, limit, what, what_zh in (
                ("income_per_capita", INCOME_RATIO_WARNING, "perhaps a 万元/元 mix-up", "可能把万元和元弄混了"),
                ("population", POPULATION_RATIO_WARNING, "perhaps a typing error, or a merger or split missing from "
                 "the crosswalk", "可能是录入错误，或有合并、拆分未列入对照表"),
            ):
                if col not in ch.parsed or col not in old.columns:
                    continue
                new = ch.parsed[col].iloc[idx].to_numpy(dtype=float, na_value=np.nan)
                before = old[col].reindex(codes).to_numpy(dtype=float, na_value=np.nan)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = new / before
                bad = np.isfinite(ratio) & (before > 0) & ((ratio >= limit) | (ratio <= 1 / limit))
                for k in np.flatnonzero(bad):
                    i = int(idx[k])
                    r = ratio[k]
                    change = f"{r:.3g} times"
                    problems.append(
                        _row_problem(
                            ch.raw,
                            i,
                            col,
                            _shown_value(ch.raw, col, i, new[k]),
                            f"is {change} the village's {prev} value ({before[k]:g}): {what}",
                            _ACCEPT,
                            f"是该村 {prev} 年数值（{before[k]:g}）的 {r:.3g} 倍：{what_zh}",
                            _ACCEPT_ZH,
                            severity="warning",
                        )
                    )
            for col in ("income_per_capita", "collective_income", "funds_attracted", "roads_km", "population"):
                if col not in ch.parsed or col not in old.columns:
                    continue
                new = ch.parsed[col].iloc[idx].to_numpy(dtype=float, na_value=np.nan)
                before = old[col].reindex(codes).to_numpy(dtype=float, na_value=np.nan)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = new / before
                ok = np.isfinite(ratio) & (before > 0) & (new > 0)
                if ok.sum() < 5:
                    continue
                med = float(np.median(ratio[ok]))
                if med >= COLUMN_RATIO_WARNING or med <= 1 / COLUMN_RATIO_WARNING:
                    header = (ch.raw.headers or {}).get(col)
                    problems.append(
                        Problem(
                            ch.name,
                            None,
                            col,
                            None,
                            f"the values of this column are typically {med:.3g} times the same villages' {prev} "
                            "values: is the unit in the header right (万元 or 元, 米 or 公里)?",
                            "check the unit in the header (or in units.yaml); " + _ACCEPT,
                            problem_zh=f"本列数值一般是各村 {prev} 年数值的 {med:.3g} 倍：表头中的单位（万元或元、"
                            f"米或公里）是否正确？",
                            action_zh="核对表头（或 units.yaml）中的单位；" + _ACCEPT_ZH,
                            header=header,
                            severity="warning",
                        )
                    )
    return problems


def _shown_value(raw: _Raw, col: str, i: int, value: float) -> str:
    if raw.shown is not None and col in raw.header:
        s = raw.shown.get(raw.header.index(col))
        if s is not None and s[i] != "":
            return str(s[i])
    return _cell_text(value)


def _posting_warnings(checked: list[_Checked], store: Path) -> list[Problem]:
    """Warn about posting ids the store has for another village, and postings stored under another id."""
    post = [ch for ch in checked if ch.table == "postings" and {"village_code", "secretary_id"} <= set(ch.parsed)]
    if not post or not store.is_file():
        return []
    stored = st.read_postings(store)
    if stored.empty:
        return []
    by_id = stored.set_index("secretary_id")["village_code"]
    by_start = stored.assign(start=stored["start_date"].dt.strftime("%Y-%m-%d")).set_index(
        ["village_code", "start"])["secretary_id"]
    by_start = by_start[~by_start.index.duplicated()]
    problems = []
    for ch in post:
        ids = ch.parsed["secretary_id"]
        codes = ch.parsed["village_code"]
        starts = ch.parsed.get("start_date")
        for i in range(len(ids)):
            sid, code = ids.iloc[i], codes.iloc[i]
            if pd.isna(sid) or pd.isna(code):
                continue
            if sid in by_id.index and by_id[sid] != code:
                problems.append(
                    _row_problem(
                        ch.raw, i, "secretary_id", sid,
                        f"is already in the store for village {by_id[sid]}; this file moves the posting to {code}",
                        "check the id and the village code; " + _ACCEPT,
                        f"数据库中该编号属于村 {by_id[sid]}，本文件把它改到了村 {code}",
                        "核对编号和村代码；" + _ACCEPT_ZH,
                        severity="warning",
                    )
                )
            elif starts is not None and sid not in by_id.index and not pd.isna(starts.iloc[i]):
                key = (code, starts.iloc[i].strftime("%Y-%m-%d"))
                if key in by_start.index:
                    problems.append(
                        _row_problem(
                            ch.raw, i, "secretary_id", sid,
                            f"is new, but the store already has a posting to village {code} starting on {key[1]} "
                            f"(id {by_start[key]}): the same posting listed again under another id?",
                            "if it is the same posting, remove the row (or use the stored id); " + _ACCEPT,
                            f"是新编号，但数据库中已有同一村、同一到岗日期的派驻记录"
                            f"（编号 {by_start[key]}）：是否重复登记？",
                            "如是同一条记录，删除该行（或使用已有编号）；" + _ACCEPT_ZH,
                            severity="warning",
                        )
                    )
    return problems


def _crosswalk_conflicts(entries: pd.DataFrame, stored: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
    """Drop entries the store already has; report entries that contradict stored ones."""
    if entries.empty:
        return entries, []
    key = ["old_code", "new_code", "year_effective"]
    merged = entries.merge(stored[[*key, "change_type", "weight"]], on=key, how="left", suffixes=("", "_stored"))
    known = merged["change_type_stored"].notna().to_numpy()
    same_w = (merged["weight"].isna() & merged["weight_stored"].isna()) | (
        (merged["weight"] - merged["weight_stored"]).abs() < 1e-9)
    differ = known & ((merged["change_type"] != merged["change_type_stored"]) | ~same_w).to_numpy()
    problems = []
    for i in np.flatnonzero(differ):
        r = merged.iloc[i]
        problems.append(
            Problem(
                str(r["file_name"]),
                int(r["row"]) if "row" in merged and pd.notna(r["row"]) else None,
                "old_code",
                f"{r['old_code']} -> {r['new_code']}",
                f"contradicts the stored crosswalk entry for {r['year_effective']} "
                f"({r['change_type_stored']}, weight {r['weight_stored']})",
                "make the entry agree with the stored one (stored entries are not changed by an ingest)",
                problem_zh="与数据库中已有的对照表记录矛盾",
                action_zh="使该行与已入库的记录一致（导入不会修改已入库的对照表记录）",
            )
        )
    return entries[~known].reset_index(drop=True), problems


def ingest_files(
    paths: Sequence[str | os.PathLike],
    store: str | os.PathLike,
    dry_run: bool = False,
    accept_warnings: bool = False,
    year: int | None = None,
    crosswalk: str | os.PathLike | None = None,
    mapping_dir: str | os.PathLike | None = None,
    error_reports: bool | None = None,
) -> IngestReport:
    """Validate panel and postings files and write them into the store.

    Every file is read and checked before anything is written: the column set (missing,
    unknown, misspelt columns), types, bounds, missing values, code patterns and their
    agreement with the village code, category levels, 0/1 flags, dates, duplicate keys
    within and across files, and whether postings point to known villages; in bureau
    mode also the reading rules of :mod:`analysis.data.formats`, village codes that
    appear or disappear against the previous year (crosswalk) and suspicious values
    (warnings). If any file has any problem, nothing is written and one
    :class:`IngestError` lists them all. Otherwise all files are written in one atomic
    transaction: panel files replace their years, postings are upserted by
    ``secretary_id``, and each file gets a provenance row.

    Parameters
    ----------
    paths : sequence of path
        Files. Canonical mode: CSV (UTF-8, with or without BOM), Parquet or XLSX in the
        canonical format. Bureau mode: CSV or XLSX as the bureaus send them (and
        canonical files).
    store : path
        The DuckDB store; created if it does not exist.
    dry_run : bool, default False
        Check the files and report what would change (rows inserted, replaced,
        unchanged and removed per year; villages added and removed), writing nothing to
        the store (error reports are still written in bureau mode).
    accept_warnings : bool, default False
        Write even if there are warnings (bureau mode); they are listed in the report
        and recorded in the ingest log.
    year : int, optional
        Year of bureau panel files that have no year column (else the year is taken from
        the file name, e.g. ``2025年村级统计.xlsx``).
    crosswalk : path, optional
        Crosswalk of village-code changes (:mod:`analysis.data.crosswalk`); its entries
        are checked and recorded in the store. Giving it also turns on the year-to-year
        code check for canonical files.
    mapping_dir : path, optional
        Folder of the header mappings (``data/mappings``,
        :data:`analysis.data.formats.DEFAULT_MAPPING_DIR`). Giving it reads the files in
        bureau mode; None (default) reads canonical files only.
    error_reports : bool, optional
        Write ``<input>.errors.xlsx`` / ``.csv`` beside inputs with problems (default:
        in bureau mode).

    Returns
    -------
    IngestReport
        Per file: table, rows, years and inserted / replaced / unchanged counts; per year;
        villages; conversion notes; accepted warnings.

    Raises
    ------
    IngestError
        If any file has a problem (or the store cannot be used); ``.problems`` holds them.

    Examples
    --------
    >>> from pathlib import Path
    >>> files = [Path("data/raw/2025年村级统计.xlsx"), Path("data/raw/2025年第二批第一书记名单.xlsx")]
    >>> ingest_files(files, store=Path("data/study.duckdb"), mapping_dir=Path("data/mappings"))  # doctest: +SKIP
    """
    store = Path(store)
    paths = [Path(p) for p in paths]
    bureau = mapping_dir is not None
    bilingual = bureau
    reports_on = bureau if error_reports is None else bool(error_reports)
    if not paths:
        raise IngestError(
            [_file_problem("(no file)", "no file was given", "name at least one file", "没有指定文件",
                           "至少指定一个文件")],
            bilingual,
        )
    mappings: formats.Mappings | None = None
    if bureau:
        try:
            mappings = formats.load_mappings(mapping_dir)
        except MappingError as exc:
            raise IngestError(exc.problems, bilingual=True) from None
    problems: list[Problem] = []
    checked: list[_Checked] = []
    notes: dict[str, list[Note]] = {}
    seen_paths: dict[Path, str] = {}
    input_of: dict[str, Path] = {}
    for path in paths:
        key = path.resolve()
        if key in seen_paths:
            problems.append(
                _file_problem(
                    path.name,
                    f"the same file is given twice ({seen_paths[key]})",
                    "give each file once",
                    "同一个文件指定了两次",
                    "每个文件只指定一次",
                )
            )
            continue
        seen_paths[key] = str(path)
        input_of.setdefault(path.name, path)
        raw, probs, file_notes = _read_input(path, mappings, year)
        problems.extend(probs)
        if file_notes:
            notes[path.name] = file_notes
        if raw is None:
            continue
        if raw.table == "panel" and mappings is not None and not (store.exists() and not store.is_file()):
            try:
                fill_probs, fill_notes = _carry_forward(raw, mappings.panel, store)
            except (st.StoreError, duckdb.Error) as exc:
                fill_probs, fill_notes = [_store_problem(store, exc)], []
            problems.extend(fill_probs)
            notes.setdefault(path.name, []).extend(fill_notes)
        ch = _check_file(raw)
        checked.append(ch)
        problems.extend(ch.problems)
    problems.extend(_cross_file(checked))

    cw_entries = cw.empty_crosswalk()
    if crosswalk is not None:
        cwf = cw.read_crosswalk(Path(crosswalk), mappings or formats.load_mappings())
        input_of.setdefault(Path(crosswalk).name, Path(crosswalk))
        problems.extend(cwf.problems)
        cw_entries = cwf.entries
    if store.exists() and not store.is_file():
        problems.append(_store_problem(store, IsADirectoryError("it is a folder")))
        raise IngestError(_ordered(problems, paths), bilingual)
    try:
        stored_cw = _stored_crosswalk(store)
        cw_entries, conflicts = _crosswalk_conflicts(cw_entries, stored_cw)
        problems.extend(conflicts)
        if bureau or crosswalk is not None:
            all_cw = pd.concat([stored_cw, cw_entries[list(stored_cw.columns)]], ignore_index=True)
            problems.extend(_code_changes(checked, store, all_cw))
        warnings: list[Problem] = []
        if bureau:
            warnings = _ratio_warnings(checked, store) + _posting_warnings(checked, store)
    except (st.StoreError, duckdb.Error) as exc:
        problems.append(_store_problem(store, exc))
        warnings = []
    blocking = problems + ([] if accept_warnings else warnings)
    if blocking:
        try:
            blocking.extend(_village_references(checked, store))
        except (st.StoreError, duckdb.Error) as exc:
            blocking.append(_store_problem(store, exc))
        ordered = _ordered(blocking, paths)
        written = _write_reports(ordered, input_of) if reports_on else []
        raise IngestError(ordered, bilingual, written)

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
    log_notes = [f"{name}: {n}" for name, ns in notes.items() for n in ns]
    log_notes += [f"warning accepted: {w}" for w in warnings[:MAX_NOTED_WARNINGS]]
    if len(warnings) > MAX_NOTED_WARNINGS:
        log_notes.append(f"... and {len(warnings) - MAX_NOTED_WARNINGS} more warnings accepted")
    log = st.IngestLog([p.name for p in paths] + ([Path(crosswalk).name] if crosswalk is not None else []),
                       log_notes, len(warnings))
    try:
        lock = st.ingest_lock(store) if not dry_run else nullcontext()
        with lock:
            refs = _village_references(checked, store)
            if refs:
                ordered = _ordered(refs, paths)
                written = _write_reports(ordered, input_of) if reports_on else []
                raise IngestError(ordered, bilingual, written)
            result = st.write_tables(
                store,
                panel=panel,
                panel_sources=panel_sources,
                postings=postings,
                postings_sources=postings_sources,
                dry_run=dry_run,
                after_partial_write=_pause_hook(),
                crosswalk=cw_entries if len(cw_entries) else None,
                log=log,
            )
        summary = st.summary(store) if store.exists() else {}
    except (st.StoreError, duckdb.Error, OSError) as exc:
        raise IngestError([_store_problem(store, exc)], bilingual) from exc
    if reports_on:
        for path in input_of.values():
            remove_stale_reports(path)
    return IngestReport(
        store,
        dry_run,
        result.ingest_id,
        result.files,
        result.removed,
        summary,
        result.by_year,
        result.villages_added,
        result.villages_removed,
        notes,
        warnings,
        len(cw_entries),
    )


def _write_reports(problems: list[Problem], input_of: dict[str, Path]) -> list[Path]:
    by_file: dict[str, list[Problem]] = {}
    for p in problems:
        by_file.setdefault(p.file, []).append(p)
    written: list[Path] = []
    for name, probs in by_file.items():
        path = input_of.get(name) or input_of.get(Path(name).name)
        if path is None or not path.is_file():
            continue
        written.extend(write_error_report(probs, path))
    return written


def _ordered(problems: list[Problem], paths: list[Path]) -> list[Problem]:
    order = {p.name: i for i, p in enumerate(paths)}
    order.update({str(p): i for i, p in enumerate(paths)})
    return sorted(
        problems,
        key=lambda p: (order.get(p.file, len(order)), p.row is not None, p.sheet or "", p.row or 0),
    )
