"""Problems found in input files, and how they are reported: printed, raised and written beside the input.

A :class:`Problem` says where (file, sheet, row, column, value), what rule the value
breaks, in English and in plain Chinese, and what to do about it; :func:`file_problem`
makes one about a whole file. The words come from the label catalogue (:mod:`analysis.i18n`,
``messages.yaml``): :func:`message` returns a message's problem and action in both languages,
:func:`note` a note, :func:`both` a fragment in both languages. A :class:`Note` records a reading rule that was applied
(an encoding, a unit converted, rows dropped). The ingest collects *every* problem of
every file before deciding anything (:mod:`analysis.data.ingest`) and raises them together
as one :class:`IngestError`, whose message lists them (at most :data:`MAX_SHOWN`, and
says where the full list is).

:func:`write_error_report` writes the problems of one input file as
``<input>.errors.xlsx`` and ``<input>.errors.csv`` beside it (the input itself is never
opened for writing; if its folder cannot be written, into a new temporary folder). Each
report is written to a temporary name and moved into place, so a half-written report
never exists. The reports hold every problem. Cell values are written as the user typed
them, but never as formulas: the CSV report neutralises text that a spreadsheet would
evaluate (:mod:`analysis.core.csvsafe`) and the XLSX report stores every text as text.

Severity
--------
``error``
    The value breaks a rule of the data contract; the file cannot be ingested until it
    is corrected.
``warning``
    The value is possible but suspicious (income up tenfold against the stored previous
    year: a 万元/元 mix-up?). Warnings block the ingest unless it is repeated with
    ``accept_warnings=True`` (``study ingest --accept-warnings``).
``replace``
    Not a fault of the file: it would change a panel year the store already holds (the
    message says how many rows and values, and by how much). The ingest goes ahead only
    with ``replace=True`` (``study ingest --replace``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from analysis import i18n
from analysis.core.csvsafe import neutralise_value
from analysis.data.atomic import write_atomic

MAX_SHOWN = 50
"""At most this many problems are printed by ``str(IngestError)``."""
MAX_SHOWN_PER_KIND = 5
"""At most this many problems of one kind (file, column, problem) are printed."""
REPORT_XLSX_MAX_ROWS = 100_000
"""At most this many problems go into the XLSX report (the CSV report holds all)."""

REPORT_COLUMNS = (
    ("severity", "级别 severity"),
    ("file", "文件 file"),
    ("sheet", "工作表 sheet"),
    ("row", "行 row"),
    ("header", "列（文件中的表头） column as headed in the file"),
    ("column", "标准列名 canonical column"),
    ("value", "值 value"),
    ("problem_zh", "问题"),
    ("problem", "problem"),
    ("action_zh", "处理办法"),
    ("action", "what to do"),
)
"""Columns of the error report: attribute of :class:`Problem` and bilingual heading."""

_SEVERITY_ZH = {"error": "错误", "warning": "警告", "replace": "替换"}


def text(key: str, lang: str, /, **fields: Any) -> str:
    """Return an ingest text of the catalogue in one language, its fields filled.

    Parameters
    ----------
    key : str
        Dotted key of a leaf (``"ingest.file.no_rows.problem"``).
    lang : {"zh", "en"}
        Language.
    **fields
        Values of the text's ``str.format`` fields. A value that is a mapping with a text per
        language (as :func:`both` returns) gives each language its own text.

    Returns
    -------
    str
        The text. It is always passed through ``str.format`` (so a literal brace is written ``{{``).
    """
    values = {k: v[lang] if isinstance(v, Mapping) else v for k, v in fields.items()}
    return i18n.t(key, lang).format(**values)


def both(key: str, /, **fields: Any) -> dict[str, str]:
    """Return an ingest text in every language: a fragment to pass as a field of :func:`message`.

    Parameters
    ----------
    key : str
        Dotted key of a leaf (``"ingest.header.single_column.hint"``).
    **fields
        As in :func:`text`.

    Returns
    -------
    dict of str -> str
        Language -> text.
    """
    return {lang: text(key, lang, **fields) for lang in i18n.LANGS}


def listing(items: Sequence[object]) -> dict[str, str]:
    """Return items joined into one text per language (``a, b, c`` and ``a、b、c``).

    Parameters
    ----------
    items : sequence
        The items, shown with ``str``.

    Returns
    -------
    dict of str -> str
        Language -> the items joined with that language's list separator (``punct.enum``).
    """
    return {lang: i18n.t("punct.enum", lang).join(str(x) for x in items) for lang in i18n.LANGS}


class Words(TypedDict):
    """The texts of a problem, in English and Chinese: the keyword arguments :func:`message` returns."""

    problem: str
    action: str
    problem_zh: str
    action_zh: str


def message(key: str, /, *, action_of: str | None = None, **fields: Any) -> Words:
    """Return the problem and action of an ingest message, in English and Chinese.

    Parameters
    ----------
    key : str
        Dotted key of the message (``"ingest.file.no_rows"``): the catalogue holds its
        ``problem`` and ``action`` leaves.
    action_of : str, optional
        Key of another message whose ``action`` this one shares (one wording of one advice).
    **fields
        Values of the texts' fields, as in :func:`text`.

    Returns
    -------
    Words
        ``problem``, ``action``, ``problem_zh`` and ``action_zh``: keyword arguments of
        :class:`Problem` and :func:`file_problem`.
    """
    return {
        "problem": text(f"{key}.problem", "en", **fields),
        "action": text(f"{action_of or key}.action", "en", **fields),
        "problem_zh": text(f"{key}.problem", "zh", **fields),
        "action_zh": text(f"{action_of or key}.action", "zh", **fields),
    }


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file.

    Attributes
    ----------
    file : str
        File name as given.
    row : int or None
        Row as the user sees it (the spreadsheet row number in XLSX, the line in CSV:
        header = row 1 in canonical files), or the 1-based record number in Parquet;
        None for problems of the whole file or of a whole column.
    column : str or None
        Canonical column concerned, or None.
    value : str or None
        The offending value as written in the file, or None.
    problem : str
        The rule the value breaks, in English.
    action : str
        What to do about it, in English.
    row_label : str
        ``"row"`` (CSV, XLSX) or ``"record"`` (Parquet).
    sheet : str or None
        Worksheet of an XLSX bureau file (None for CSV and for canonical files).
    header : str or None
        The column's header as written in a bureau file (e.g. ``村集体收入（万元）``).
    problem_zh, action_zh : str
        The rule and what to do, in plain Chinese.
    severity : {"error", "warning", "replace"}
        Errors block the ingest; warnings block it unless accepted; ``replace`` (a stored
        year would change) blocks it unless replacing is asked for.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    problem: str
    action: str
    row_label: str = "row"
    sheet: str | None = None
    header: str | None = None
    problem_zh: str = ""
    action_zh: str = ""
    severity: str = "error"

    @property
    def is_warning(self) -> bool:
        """Whether the problem is a warning (possible but suspicious value)."""
        return self.severity == "warning"

    @property
    def is_error(self) -> bool:
        """Whether the problem is an error (a value that breaks the data contract)."""
        return self.severity == "error"

    @property
    def needs_replace(self) -> bool:
        """Whether the problem is a stored year the files would change (``replace=True`` lets it through)."""
        return self.severity == "replace"

    def __str__(self) -> str:
        where = [self.file]
        if self.sheet:
            where.append(f"sheet {self.sheet!r}")
        if self.row is not None:
            header = " (header)" if self.row == 1 and self.row_label == "row" and not self.sheet else ""
            where.append(f"{self.row_label} {self.row}{header}")
        if self.column:
            cols = self.column.split(", ")
            if self.header and self.header != self.column:
                where.append(f"column {self.header} [{self.column}]")
            else:
                where.append(f"column {cols[0]}" if len(cols) == 1 else f"columns {' and '.join(cols)}")
        text = self.problem
        if self.value is not None:
            shown = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            text = f"value {shown!r} {text}"
        if self.is_warning:
            text = f"warning: {text}"
        action = self.action.rstrip(".")
        return f"{', '.join(where)}: {text}. What to do: {action}."

    def text_zh(self) -> str:
        """Return the problem as one line of plain Chinese (empty if no Chinese text).

        Returns
        -------
        str
            For example ``文件 a.xlsx，工作表“村级统计”，第12行，“村代码”列：值“9.90101E+11”……。处理办法：……。``
        """
        if not self.problem_zh:
            return ""
        where = [f"文件 {self.file}"]
        if self.sheet:
            where.append(f"工作表“{self.sheet}”")
        if self.row is not None:
            where.append(f"第{self.row}行" if self.row_label == "row" else f"第{self.row}条记录")
        if self.header or self.column:
            where.append(f"“{self.header or self.column}”列")
        text = self.problem_zh
        if self.value is not None:
            shown = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            text = f"值“{shown}”{text}"
        if self.is_warning:
            text = f"警告：{text}"
        action = self.action_zh.rstrip("。")
        return f"{'，'.join(where)}：{text}。处理办法：{action}。"

    def record(self) -> dict[str, object]:
        """Return the problem as one row of the error report.

        Returns
        -------
        dict
            Keys of :data:`REPORT_COLUMNS`; the severity in Chinese and English.
        """
        return {
            "severity": f"{_SEVERITY_ZH.get(self.severity, self.severity)} {self.severity}",
            "file": self.file,
            "sheet": self.sheet or "",
            "row": self.row if self.row is not None else "",
            "header": self.header or self.column or "",
            "column": self.column or "",
            "value": self.value if self.value is not None else "",
            "problem_zh": self.problem_zh,
            "problem": self.problem,
            "action_zh": self.action_zh,
            "action": self.action,
        }


def file_problem(
    file: str,
    problem: str,
    action: str,
    problem_zh: str = "",
    action_zh: str = "",
    *,
    row: int | None = None,
    sheet: str | None = None,
    header: str | None = None,
) -> Problem:
    """Return a problem of a whole file (or of one line of it), with no column and no value.

    Parameters
    ----------
    file : str
        The file as the user named it (a path when the file cannot be found).
    problem, action : str
        What is wrong and what to do, in English.
    problem_zh, action_zh : str, optional
        The same in plain Chinese.
    row : int, optional
        A line of the file the problem is about (a line of a mapping file, say).
    sheet, header : str, optional
        Worksheet and header cell concerned, if any.

    Returns
    -------
    Problem
        An error.
    """
    return Problem(file, row, None, None, problem, action, sheet=sheet, header=header, problem_zh=problem_zh,
                   action_zh=action_zh)


def note(key: str, /, **fields: Any) -> Note:
    """Return the note of the catalogue's ``<key>.note``, in English and Chinese.

    Parameters
    ----------
    key : str
        Dotted key of the note's message (``"ingest.validate.column_absent"``).
    **fields
        Values of the text's fields, as in :func:`text`.

    Returns
    -------
    Note
        The note.
    """
    return Note(text(f"{key}.note", "en", **fields), text(f"{key}.note", "zh", **fields))


@dataclass
class Note:
    """A rule the reader applied to a file, for the ingest report.

    Attributes
    ----------
    text : str
        In English.
    text_zh : str
        In Chinese.
    """

    text: str
    text_zh: str

    def __post_init__(self) -> None:
        # Row lists are built once, in English ("rows 5, 9 and 3 more"); say the tail in Chinese.
        self.text_zh = re.sub(r" and (\d+) more", r" 等（另有 \1 处）", self.text_zh)

    def __str__(self) -> str:
        return f"{self.text} / {self.text_zh}"


def _count(what: str, n: int) -> dict[str, str]:
    """Return "``n`` problems" (errors, warnings, stored years to replace, files, more problems) in both languages."""
    one = n == 1
    if what == "problem":
        return both("ingest.report.count.problem.one" if one else "ingest.report.count.problem.other", n=n)
    if what == "error":
        return both("ingest.report.count.error.one" if one else "ingest.report.count.error.other", n=n)
    if what == "warning":
        return both("ingest.report.count.warning.one" if one else "ingest.report.count.warning.other", n=n)
    if what == "replace":
        return both("ingest.report.count.replace.one" if one else "ingest.report.count.replace.other", n=n)
    if what == "file":
        return both("ingest.report.count.file.one" if one else "ingest.report.count.file.other", n=n)
    return both("ingest.report.count.more.one" if one else "ingest.report.count.more.other", n=n)


def _parenthesised(parts: Sequence[Mapping[str, str]], lang: str) -> str:
    """Return the counts of each kind of problem, listed in parentheses."""
    inner = i18n.t("punct.comma", lang).join(part[lang] for part in parts)
    return i18n.t("punct.paren_open", lang) + inner + i18n.t("punct.paren_close", lang)


def en_zh(texts: Mapping[str, str]) -> str:
    """Return a text that says the same in English, then in Chinese: ``English / 中文``.

    Parameters
    ----------
    texts : mapping of str -> str
        Language -> text, as :func:`both` returns.

    Returns
    -------
    str
        The English text, ``" / "``, the Chinese text.
    """
    return f"{texts['en']} / {texts['zh']}"


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
        """The problems that are errors (not warnings, not stored years to replace)."""
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        """The problems that are warnings."""
        return [p for p in self.problems if p.is_warning]

    @property
    def replacements(self) -> list[Problem]:
        """The stored years the files would change (``replace=True`` lets them through)."""
        return [p for p in self.problems if p.needs_replace]

    def _message(self) -> str:
        n = len(self.problems)
        files = len({p.file for p in self.problems})
        w = len(self.warnings)
        r = len(self.replacements)
        e = n - w - r
        parts: list[dict[str, str]] = []
        if r:
            parts += [_count("error", e)] if e else []
            parts += [_count("warning", w)] if w else []
            parts.append(_count("replace", r))
        elif w:
            parts = [_count("error", e), _count("warning", w)]
        kinds = {lang: _parenthesised(parts, lang) if parts else "" for lang in i18n.LANGS}
        head = both("ingest.report.nothing_written", problems=_count("problem", n), kinds=kinds,
                    files=_count("file", files))
        lines = [head["en"]]
        if self.bilingual:
            lines.append(head["zh"])
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
        csv_reports = [str(x) for x in self.reports if x.suffix == ".csv"]
        if hidden and csv_reports:
            more = both("ingest.report.more_in_report", more=_count("more", hidden), most=MAX_SHOWN_PER_KIND,
                        reports=", ".join(csv_reports))
            lines.append(en_zh(more))
        elif hidden:
            more = both("ingest.report.more_not_listed", more=_count("more", hidden), most=MAX_SHOWN_PER_KIND)
            lines.append(more["en"])  # English only (its Chinese is empty), as it always was
        if self.reports:
            lines.append(en_zh(both("ingest.report.listed_in")) + ": " + ", ".join(str(x) for x in self.reports))
        if w and not e and not r:
            lines.append(en_zh(both("ingest.report.only_warnings")))
        elif r and not e:
            warn = both("ingest.report.replace.warn") if w else {lang: "" for lang in i18n.LANGS}
            api = "replace=True, accept_warnings=True" if w else "replace=True"
            lines.append(en_zh(both("ingest.report.replace.text", warn=warn, api=api)))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._message()


def report_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """Return the XLSX and CSV error-report paths of an input file.

    Parameters
    ----------
    path : str or path-like
        The input file.

    Returns
    -------
    tuple of pathlib.Path
        ``<input>.errors.xlsx`` and ``<input>.errors.csv`` in the input's folder.
    """
    p = Path(path)
    return p.with_name(p.name + ".errors.xlsx"), p.with_name(p.name + ".errors.csv")


def _csv_bytes(problems: Sequence[Problem]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([h for _, h in REPORT_COLUMNS])
    for p in problems:
        rec = p.record()
        writer.writerow([neutralise_value(rec[k]) for k, _ in REPORT_COLUMNS])
    # UTF-8 with BOM: Excel on Chinese Windows opens it with the right encoding.
    return buf.getvalue().encode("utf-8-sig")


def _xlsx_bytes(problems: Sequence[Problem]) -> bytes:
    import openpyxl
    from openpyxl.styles import Font, PatternFill

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "问题 problems"
    ws.append([h for _, h in REPORT_COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    warn_fill = PatternFill("solid", fgColor="FFF2CC")
    shown = problems[:REPORT_XLSX_MAX_ROWS]
    for p in shown:
        rec = p.record()
        ws.append([rec[k] for k, _ in REPORT_COLUMNS])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, even if it starts with '=': never a formula
            if not p.is_error:
                cell.fill = warn_fill
    if len(problems) > len(shown):
        ws.append([f"... {len(problems) - len(shown)} more: see the CSV report / 其余问题见 CSV 报告"])
    widths = (14, 24, 14, 8, 26, 22, 22, 40, 40, 40, 40)
    for i, w in enumerate(widths):
        ws.column_dimensions[openpyxl.utils.get_column_letter(i + 1)].width = w
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_error_report(problems: Sequence[Problem], input_path: str | os.PathLike) -> list[Path]:
    """Write the problems of one input file as XLSX and CSV reports beside it.

    The input file is never opened for writing. If its folder is not writable, the
    reports go into a new temporary folder (``study-ingest-errors-*``) instead; only if
    that fails too is nothing written (the problems are still raised).

    Parameters
    ----------
    problems : sequence of Problem
        The problems of this input (errors, warnings, stored years to replace): all of
        them go into the CSV report, at most :data:`REPORT_XLSX_MAX_ROWS` into the XLSX one.
    input_path : str or path-like
        The input file; the reports are ``<input>.errors.xlsx`` and ``<input>.errors.csv``.

    Returns
    -------
    list of pathlib.Path
        The reports written (the CSV report first).
    """
    import tempfile

    csv_bytes, xlsx_bytes = _csv_bytes(problems), _xlsx_bytes(problems)
    xlsx, csv_path = report_paths(input_path)
    try:
        write_atomic(csv_path, csv_bytes)
        write_atomic(xlsx, xlsx_bytes)
        return [csv_path, xlsx]
    except OSError:
        for leftover in (csv_path, xlsx):  # a half pair beside the input would mislead
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)
    try:
        folder = Path(tempfile.mkdtemp(prefix="study-ingest-errors-"))
        xlsx, csv_path = report_paths(folder / Path(input_path).name)
        write_atomic(csv_path, csv_bytes)
        write_atomic(xlsx, xlsx_bytes)
    except OSError:
        return []
    return [csv_path, xlsx]


def remove_stale_reports(input_path: str | os.PathLike) -> list[Path]:
    """Delete error reports left beside an input by an earlier failed ingest.

    Parameters
    ----------
    input_path : str or path-like
        The input file that has now been ingested.

    Returns
    -------
    list of pathlib.Path
        The reports removed.
    """
    removed = []
    for p in report_paths(input_path):
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed
