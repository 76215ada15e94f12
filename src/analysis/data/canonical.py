"""Canonical files: which table a file is, and which of its columns is which.

A canonical file (``data/README.md``) has its header in the first row (CSV, XLSX) or as
its column names (Parquet), written with the canonical English names.
:func:`canonical_cells` decides from the header whether the file is a ``panel`` or a
``postings`` file and reports what is wrong with the column set: unnamed columns that
hold values, repeated names, required columns that are missing and optional ones that
seem misspelt (naming a column of the file that looks like it: a Chinese label of the
data dictionary, a name with other spaces or case, a close spelling) and columns that are
not part of the table. Optional columns may be left out (:mod:`analysis.data.schema`);
``township_code`` and ``county_code`` are then taken from the village code. Rows that
are entirely empty are skipped (their numbers are not reused); a row whose cells are
formulas with no saved value is not empty. The values are checked afterwards by
:mod:`analysis.data.validate`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data.problems import Note, Problem, both, message, note
from analysis.data.readers import InputFile
from analysis.data.validate import TableCells

_PANEL_ONLY = set(schema.column_names("panel")) - set(schema.column_names("postings"))
_POSTINGS_ONLY = set(schema.column_names("postings")) - set(schema.column_names("panel"))
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
            re.sub(r"[（(].*?[)）]", "", lab).strip() == base and n == missing for lab, n in _LABELS.items()
        ):
            return c
    close = difflib.get_close_matches(missing, [_normalise(c) for c in candidates], n=1, cutoff=0.75)
    if close:
        return next(c for c in candidates if _normalise(c) == close[0])
    return None


def detect_table(header: Sequence[str]) -> str | None:
    """Decide from a header whether a file is a panel or a postings file.

    Parameters
    ----------
    header : sequence of str
        Column names (canonical names or the Chinese labels of the data dictionary).

    Returns
    -------
    str or None
        ``panel`` or ``postings``: the table with more of its own columns among the
        names; None if neither or both equally.

    Examples
    --------
    >>> detect_table(["village_code", "year", "income_per_capita"])
    'panel'
    """
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


def _header_problems(
    name: str, header: list[str], cells: pd.DataFrame, header_row: int | None, row_label: str
) -> tuple[str | None, list[Problem], dict[str, int]]:
    """Decide the table and map canonical columns to positions; report header problems."""
    problems: list[Problem] = []
    for i, h in enumerate(header):
        if h == "" and not (cells[i] == "").all():  # unnamed empty columns are ignored
            problems.append(
                Problem(name, header_row, f"#{i + 1}", None, row_label=row_label,
                        **message("ingest.header.unnamed_column"))
            )
    counts: dict[str, int] = {}
    for h in header:
        if h:
            counts[h] = counts.get(h, 0) + 1
    for h, n in counts.items():
        if n > 1:
            problems.append(
                Problem(name, header_row, h, None, row_label=row_label,
                        **message("ingest.header.repeated_column", count=n))
            )
    table = detect_table(header)
    if table is None:
        hint: dict[str, str] | str = ""
        if len(header) == 1 and any(s in header[0] for s in ";\t|"):
            hint = both("ingest.header.unknown_table.separator_hint")
        problems.append(
            Problem(name, header_row, None, None, row_label=row_label,
                    **message("ingest.header.unknown_table", hint=hint))
        )
        return None, problems, {}
    specs = schema.columns(table)
    names = [c.name for c in specs]
    positions = {h: i for i, h in reversed(list(enumerate(header))) if h in names}
    unknown = [h for h in header if h and h not in names]
    suggested: set[str] = set()
    for c in specs:
        if c.name in positions:
            continue
        guess = _suggest(c.name, unknown)
        if guess:
            suggested.add(guess)
            required = both("ingest.header.misnamed_column.required") if c.required else ""
            problems.append(
                Problem(name, header_row, c.name, None, row_label=row_label,
                        **message("ingest.header.misnamed_column", required=required, guess=guess, column=c.name))
            )
        elif c.required:
            problems.append(
                Problem(name, header_row, c.name, None, row_label=row_label,
                        **message("ingest.header.missing_column", table=table, column=c.name,
                                  about={"en": c.description, "zh": c.label_zh}))
            )
    for h in unknown:
        if h in suggested:
            continue
        other = "postings" if table == "panel" else "panel"
        belongs: dict[str, str] | str = ""
        if h in schema.column_names(other):
            belongs = both("ingest.header.foreign_column.other_table_hint", other=other)
        problems.append(
            Problem(name, header_row, h, None, row_label=row_label,
                    **message("ingest.header.foreign_column", table=table, hint=belongs))
        )
    return table, problems, positions


def canonical_cells(inp: InputFile) -> tuple[TableCells | None, list[Problem], list[Note]]:
    """Read a canonical file's header: its table, and its cells under canonical names.

    Parameters
    ----------
    inp : InputFile
        A file read in the canonical dialect (:func:`analysis.data.readers.read_file`).

    Returns
    -------
    tuple of (TableCells or None, list of Problem, list of Note)
        The cells of the canonical columns the file has, with the township and county
        codes derived from the village code if the file lacks them (None if the table
        cannot be told from the header); the problems of the header; notes on the codes
        derived.
    """
    sheet = inp.sheets[0]
    if sheet.columns is not None:
        header, body, rows, header_row = sheet.columns, sheet.cells, sheet.rows, None
    else:
        header = [str(h) for h in sheet.cells.iloc[0].tolist()]
        body = sheet.cells.iloc[1:].reset_index(drop=True)
        rows, header_row = sheet.rows[1:], int(sheet.rows[0])
    first = 0 if sheet.columns is not None else 1  # lines of sheet.cells under the header
    formula_lines = {i - first for i, _ in sheet.formulas}
    keep = ~(body == "").all(axis=1).to_numpy() if body.shape[1] else np.zeros(len(rows), bool)
    keep |= np.isin(np.arange(len(keep)), list(formula_lines))
    lines = np.flatnonzero(keep) + first
    body = body.loc[keep].reset_index(drop=True)
    rows = rows[keep]
    table, problems, positions = _header_problems(inp.name, header, body, header_row, sheet.row_label)
    if table is None:
        return None, problems, []
    specs = schema.columns(table)
    columns = {c.name: body[positions[c.name]] for c in specs if c.name in positions}
    absent = {c.name for c in specs if c.name not in positions}
    reported: dict[str, np.ndarray] = {}
    notes: list[Note] = []
    for c in specs:  # township and county codes: the first digits of the village code
        if c.name in absent and c.prefix_of in columns:
            source = columns[c.prefix_of]
            pattern = next(s.pattern for s in specs if s.name == c.prefix_of)
            ok = source.str.match(pattern).fillna(False).to_numpy(dtype=bool)
            columns[c.name] = source.str.slice(0, c.digits).where(pd.Series(ok, index=source.index), "")
            reported[c.name] = ~ok  # a bad village code is reported once, on its own column
            notes.append(note("ingest.header.derived_code", column=c.name, digits=c.digits, source=c.prefix_of))
    formulas = {c: sheet.formula_column(positions[c], lines) for c in columns if c in positions and sheet.formulas}
    formulas = {c: f for c, f in formulas.items() if (f != "").any()}
    cells = TableCells(inp.name, inp.sha256, table, columns, rows, sheet.row_label, path=inp.path, absent=absent,
                       reported=reported, formulas=formulas)
    return cells, problems, notes
