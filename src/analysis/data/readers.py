"""Files in: one reader for CSV, XLSX and Parquet, canonical and bureau files alike.

:func:`read_file` checks that a path is a readable file of a supported type and reads it
into text cells, one :class:`Sheet` per worksheet. Nothing here knows about columns or
values: the canonical path (:mod:`analysis.data.validate`) and the bureau path
(:mod:`analysis.data.bureau`) take the cells from here. Every failure is a
:class:`~analysis.data.problems.Problem` (none raises).

Two dialects
------------
``CANONICAL``
    The study's own exchange format (``data/README.md``), read strictly:

    * CSV: UTF-8 with or without BOM, comma-separated, header in the first line, no line
      longer than the header. Every cell is read as text (codes keep their leading zeros)
      and stripped of surrounding spaces.
    * XLSX: the first sheet only, header in row 1; cached values of formulas; trailing
      empty rows and columns are not part of the table. A formula cell with no saved
      value (a workbook written by a program and never opened in a spreadsheet) is read
      as empty, and its formula is kept in :attr:`Sheet.formulas` so that the problem can
      say so (it is not a missing value).
    * Parquet: typed columns are accepted and turned into text cells (:func:`cell_text`);
      the rows are "records" 1, 2, ...
``BUREAU``
    Files as the statistics bureau and the organisation department send them
    (:mod:`analysis.data.bureau` finds the header and converts the cells):

    * CSV: UTF-8 (with or without BOM), else GB18030 (a superset of GBK and GB2312, the
      default of Chinese Excel), else UTF-16 with BOM (Excel's "Unicode text"); comma-
      separated, or tab-separated if the first line has tabs and no commas; lines may
      have different lengths. Cells are kept as written (the bureau reader normalises
      them).
    * XLSX: every worksheet; formula cells as in the canonical dialect.
    * Parquet is read as in the canonical dialect.

The two dialects tell the user different things to do when a file cannot be read: a
canonical file should be exported again as canonical CSV, a bureau file saved again from
Excel.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.problems import Note, Problem, both, file_problem, message, note

CANONICAL = "canonical"
"""The strict dialect of the study's own exchange format."""
BUREAU = "bureau"
"""The lenient dialect of files as the bureaus send them."""

SUPPORTED = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet", ".xlsx": "XLSX"}
"""File types read, by suffix."""

_INDEX_COLUMN = re.compile(r"__index_level_\d+__")


@dataclass
class Sheet:
    """The text cells of one worksheet, or of a whole CSV or Parquet file.

    Attributes
    ----------
    name : str or None
        Worksheet name (XLSX), None for CSV and Parquet.
    cells : pandas.DataFrame
        Text cells, columns ``0..k-1``; ``""`` is an empty cell.
    rows : numpy.ndarray
        The row of each line of ``cells`` as the user sees it: the spreadsheet row (XLSX),
        the line (CSV) or the record number (Parquet).
    columns : list of str or None
        Column names the format stores apart from the cells (Parquet); None when the
        header is a row of ``cells``.
    row_label : str
        ``"row"``, or ``"record"`` for Parquet.
    formulas : dict of (int, int) to str
        Cells (position in ``cells``: line, column) that hold a formula with no saved
        value, and the formula (XLSX); their text in ``cells`` is ``""``.
    """

    name: str | None
    cells: pd.DataFrame
    rows: np.ndarray
    columns: list[str] | None = None
    row_label: str = "row"
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)

    def formula_column(self, j: int, lines: np.ndarray) -> np.ndarray:
        """Return the formulas without a saved value of column ``j`` for some lines of ``cells``.

        Parameters
        ----------
        j : int
            Column position in ``cells``.
        lines : numpy.ndarray
            Positions of lines of ``cells``.

        Returns
        -------
        numpy.ndarray
            The formula of each of those cells (object array), ``""`` where there is none.
        """
        out = np.full(len(lines), "", dtype=object)
        if self.formulas:
            for k, i in enumerate(lines):
                out[k] = self.formulas.get((int(i), j), "")
        return out


@dataclass
class InputFile:
    """A file read into sheets of text cells.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    name : str
        Its name (as problems and the provenance name it).
    sha256 : str
        sha256 of its bytes.
    dialect : str
        :data:`CANONICAL` or :data:`BUREAU`: how the sheets were read (Parquet is always
        read in the canonical dialect).
    sheets : list of Sheet
        One per worksheet (XLSX in the bureau dialect), else one.
    notes : list of Note
        Reading rules applied (an encoding other than UTF-8).
    """

    path: Path
    name: str
    sha256: str
    dialect: str
    sheets: list[Sheet]
    notes: list[Note] = field(default_factory=list)


def cell_text(v: object) -> str:
    """Text of one spreadsheet cell as a user would read it in the file.

    Parameters
    ----------
    v : object
        A value from openpyxl, pyarrow or pandas.

    Returns
    -------
    str
        Stripped text; ``""`` for an empty cell; integral floats without ``.0``; dates
        as ``YYYY-MM-DD``.

    Examples
    --------
    >>> cell_text(110101001001.0), cell_text(None), cell_text(" 2.5 ")
    ('110101001001', '', '2.5')
    """
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, bool | np.bool_):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        x = float(v)
        if math.isnan(x):
            return ""
        if x.is_integer() and abs(x) < 1e15:
            return str(int(x))
        return repr(float(v))
    if isinstance(v, pd.Timestamp | dt.datetime):
        if (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0):
            return v.date().isoformat()
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dt.time):
        return v.isoformat()
    if v is pd.NaT or (not isinstance(v, list | tuple | dict) and pd.isna(v)):
        return ""
    return str(v).strip()


# ----------------------------------------------------------------------------- the file


def read_file(path: Path, dialect: str = CANONICAL) -> tuple[InputFile | None, list[Problem]]:
    """Read a CSV, XLSX or Parquet file into text cells.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    dialect : {CANONICAL, BUREAU}
        How CSV and XLSX files are read (module docstring).

    Returns
    -------
    tuple of (InputFile or None, list of Problem)
        The file (None if it cannot be read at all) and the problems that stop it from
        being read: it does not exist, is a folder, has an unsupported type, cannot be
        read, is empty, or is not valid CSV, XLSX or Parquet.
    """
    name = path.name or str(path)
    ext = path.suffix.lower()
    if not path.exists():
        return None, [
            file_problem(str(path), **message("ingest.file.missing"))
        ]
    if path.is_dir():
        return None, [
            file_problem(str(path), **message("ingest.file.folder"))
        ]
    if ext not in SUPPORTED:
        return None, [
            file_problem(
                name,
                **message("ingest.file.unsupported_type", ext=ext or both("ingest.file.unsupported_type.no_extension"),
                          hint=both("ingest.file.unsupported_type.xls_hint") if ext == ".xls" else ""),
            )
        ]
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [
            file_problem(name, **message("ingest.file.unreadable", reason=exc.strerror or exc))
        ]
    if not data:
        return None, [
            file_problem(name, **message("ingest.file.zero_bytes"))
        ]
    if ext in (".parquet", ".pq"):
        dialect = CANONICAL
    sheets, problems, notes = read_bytes(name, data, ext, dialect)
    if problems:
        return None, problems
    return InputFile(path, name, hashlib.sha256(data).hexdigest(), dialect, sheets, notes), []


def read_bytes(
    name: str, data: bytes, suffix: str, dialect: str = CANONICAL
) -> tuple[list[Sheet], list[Problem], list[Note]]:
    """Read the bytes of a file into sheets of text cells.

    Parameters
    ----------
    name : str
        File name, for problems.
    data : bytes
        The file's bytes.
    suffix : str
        Its suffix: ``.xlsx`` and ``.parquet``/``.pq`` are read as such, anything else
        as CSV.
    dialect : {CANONICAL, BUREAU}
        How to read CSV and XLSX (module docstring).

    Returns
    -------
    tuple
        Sheets, problems (an unreadable file: then no sheets) and notes (the encoding).
    """
    suffix = suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _parquet(name, data)
    if suffix == ".xlsx":
        return _xlsx(name, data, dialect)
    return _csv(name, data, dialect)


# ----------------------------------------------------------------------------- CSV


def _decode(name: str, data: bytes, dialect: str) -> tuple[str | None, list[Problem], list[Note]]:
    if dialect == CANONICAL:
        try:
            return data.decode("utf-8-sig"), [], []
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            guess: dict[str, str] | str = ""
            try:
                data.decode("gb18030")
                guess = both("ingest.file.not_utf8.gbk_hint")
            except UnicodeDecodeError:
                pass
            return None, [Problem(name, line, None, None, **message("ingest.file.not_utf8", hint=guess))], []
    text, encoding = None, ""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text, encoding = data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            pass
    else:
        for codec, label in (("utf-8-sig", "UTF-8"), ("gb18030", "GB18030/GBK")):
            try:
                text, encoding = data.decode(codec), label
                break
            except UnicodeDecodeError:
                continue
    if text is None:
        return None, [
            file_problem(name, **message("ingest.file.unknown_encoding"))
        ], []
    notes = [] if encoding == "UTF-8" else [note("ingest.file.encoding", encoding=encoding)]
    return text, [], notes


def _csv(name: str, data: bytes, dialect: str) -> tuple[list[Sheet], list[Problem], list[Note]]:
    text, problems, notes = _decode(name, data, dialect)
    if text is None:
        return [], problems, []
    strict = dialect == CANONICAL
    if not text or text.isspace():  # (not text.strip(), without a copy of the text)
        if strict:
            words = message("ingest.file.empty", action_of="ingest.file.zero_bytes")
        else:
            words = message("ingest.file.empty")
        return [], [file_problem(name, **words)], []
    if strict:
        # Parsed from the bytes (decoded above only to check them): the decoded text as a StringIO held
        # about three times the file's size (4.5M national rows: a 500 MB file, 2-3 GB of text)
        del text
        try:
            df = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", header=None, dtype=str, keep_default_na=False,
                             na_filter=False, skip_blank_lines=False, engine="c")
        except (pd.errors.ParserError, csv.Error) as exc:
            m = re.search(r"line (\d+), saw (\d+)", str(exc))
            if m:
                return [], [
                    Problem(name, int(m.group(1)), None, None,
                            **message("ingest.file.too_many_fields", fields=m.group(2)))
                ], []
            return [], [
                file_problem(name, **message("ingest.file.not_csv", reason=exc))
            ], []
        # column by column, each replacing its unstripped text (a whole stripped copy next to the parsed frame
        # was the national first ingest's peak)
        for c in df.columns:
            df[c] = df[c].fillna("").str.strip()
        return [Sheet(None, df, np.arange(1, len(df) + 1))], [], notes
    first = text.split("\n", 1)[0]
    sep = "\t" if ("\t" in first and "," not in first) else ","
    try:
        width = max((len(r) for r in csv.reader(io.StringIO(text), delimiter=sep)), default=0)
        df = pd.read_csv(
            io.StringIO(text),
            header=None,
            names=list(range(width)),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
            quoting=csv.QUOTE_MINIMAL,
        )
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        return [], [
            file_problem(name, **message("ingest.file.not_csv", action_of="ingest.file.unknown_encoding", reason=exc))
        ], []
    return [Sheet(None, df.fillna(""), np.arange(1, len(df) + 1))], [], notes


# ----------------------------------------------------------------------------- XLSX


def _xlsx(name: str, data: bytes, dialect: str) -> tuple[list[Sheet], list[Problem], list[Note]]:
    import openpyxl

    strict = dialect == CANONICAL
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, XML and its own errors
        return [], [
            file_problem(name, **message("ingest.file.not_xlsx", reason=type(exc).__name__))
            if strict else
            file_problem(name, **message("ingest.file.not_xlsx", action_of="ingest.file.save_as_xlsx",
                                         reason=type(exc).__name__))
        ], []
    try:
        if strict and not wb.worksheets:
            return [], [file_problem(name, **message("ingest.file.no_sheet"))], []
        sheets = []
        unsaved = _unsaved_formulas(data) if _has_formulas(data) else {}
        for ws in wb.worksheets[:1] if strict else wb.worksheets:
            values = [[cell_text(v) for v in r] for r in ws.iter_rows(values_only=True)]
            formulas = {
                (i, j): f for (title, i, j), f in unsaved.items()
                if title == ws.title and i < len(values) and j < len(values[i]) and values[i][j] == ""
            }
            if strict:
                formula_lines = {i for i, _ in formulas}
                while values and all(v == "" for v in values[-1]) and len(values) - 1 not in formula_lines:
                    values.pop()
                if not values:
                    return [], [
                        file_problem(name, **message("ingest.file.first_sheet_empty"))
                    ], []
                # The table ends at the last column with a value (or a formula) in any row.
                width = max((max((j + 1 for j, v in enumerate(r) if v != ""), default=0) for r in values), default=0)
                width = max([width, *(j + 1 for _, j in formulas)])
            else:
                width = max((len(r) for r in values), default=0)
            values = [(r + [""] * width)[:width] for r in values]
            cells = pd.DataFrame(values, columns=range(width), dtype=object)
            formulas = {(i, j): f for (i, j), f in formulas.items() if i < len(values) and j < width}
            sheets.append(Sheet(ws.title, cells, np.arange(1, len(values) + 1), formulas=formulas))
    finally:
        wb.close()
    return sheets, [], []


def _has_formulas(data: bytes) -> bool:
    """Say whether any worksheet of an XLSX file holds a formula (a quick look at its XML)."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for name in z.namelist():
                if name.startswith("xl/worksheets/") and name.endswith(".xml") and _FORMULA.search(z.read(name)):
                    return True
    except (zipfile.BadZipFile, OSError, KeyError):
        return False
    return False


_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>)", re.S)
_ATTR = re.compile(rb'\b(r|t)="([^"]*)"')
_FORMULA_TEXT = re.compile(rb"<(?:\w+:)?f\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?f>)", re.S)
_VALUE = re.compile(rb"<(?:\w+:)?v\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?v>)", re.S)
_REF = re.compile(r"([A-Z]+)(\d+)")


def _sheet_parts(z) -> dict[str, str]:
    """Worksheet title -> its XML part in an XLSX archive (workbook.xml and its relationships)."""
    import posixpath
    import xml.etree.ElementTree as ET

    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    rel_ns = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
    rels = {
        r.get("Id"): r.get("Target", "")
        for r in ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    }
    out = {}
    for sheet in ET.fromstring(z.read("xl/workbook.xml")).iter(f"{main}sheet"):
        target = rels.get(sheet.get(f"{rel_ns}id"), "")
        part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        out[sheet.get("name", "")] = part
    return out


def _unsaved_formulas(data: bytes) -> dict[tuple[str, int, int], str]:
    """Return the formula cells of an XLSX file that have no saved value: (sheet, line, column) -> formula.

    A formula cell has a saved value when the file says so: a ``<v>`` with a value, or a
    text result (``t="str"``, possibly the empty text ``""`` that ``=IF(...,"",...)`` gives).
    A program that writes a formula without computing it (openpyxl, for one) leaves ``<v>``
    empty or out. Lines and columns count from 0, as the reader's cells do.
    """
    import html
    import zipfile

    out: dict[tuple[str, int, int], str] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            parts = _sheet_parts(z)
            for title, part in parts.items():
                try:
                    xml = z.read(part)
                except KeyError:
                    continue
                if not _FORMULA.search(xml):
                    continue
                for m in _CELL.finditer(xml):
                    inner = m.group(2) or b""
                    f = _FORMULA_TEXT.search(inner)
                    if f is None:
                        continue
                    attrs = dict(_ATTR.findall(m.group(1)))
                    if attrs.get(b"t", b"n") in (b"str", b"inlineStr", b"s"):
                        continue  # a text result, empty text included
                    v = _VALUE.search(inner)
                    if v is not None and (v.group(1) or b"").strip():
                        continue  # a saved value
                    ref = _REF.fullmatch(attrs.get(b"r", b"").decode("ascii", "replace"))
                    if ref is None:
                        continue
                    col = 0
                    for ch in ref.group(1):
                        col = col * 26 + ord(ch) - 64
                    text = html.unescape((f.group(2) or b"").decode("utf-8", "replace")).strip()
                    out[(title, int(ref.group(2)) - 1, col - 1)] = "=" + text if text else "=(formula)"
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, SyntaxError):
        return {}
    return out


# ----------------------------------------------------------------------------- Parquet


def _arrow_column_text(col) -> list[str]:
    import pyarrow as pa

    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        values = col.to_pylist()
    else:
        values = col.to_pandas().tolist()
    return [cell_text(v) for v in values]


def _parquet(name: str, data: bytes) -> tuple[list[Sheet], list[Problem], list[Note]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        return [], [
            file_problem(name, **message("ingest.file.not_parquet", reason=exc))
        ], []
    # pandas stores a non-default index as __index_level_N__ columns: not part of the table
    keep = [i for i, c in enumerate(table.column_names) if not _INDEX_COLUMN.fullmatch(c)]
    header = [str(table.column_names[i]).strip() for i in keep]
    cells = pd.DataFrame(
        {j: pd.Series(_arrow_column_text(table.column(i)), dtype=object) for j, i in enumerate(keep)},
        columns=range(len(keep)),
    )
    return [Sheet(None, cells, np.arange(1, table.num_rows + 1), columns=header, row_label="record")], [], []
