"""Validated ingest: canonical files and bureau files into the DuckDB store.

:func:`ingest_files` reads every file, decides whether it is a ``panel`` or a
``postings`` file (:mod:`analysis.data.schema`), checks every value, and only if *no*
file of the call has a problem writes them all into the store in one atomic
transaction (:func:`analysis.data.store.write_tables`). Otherwise it raises one
:class:`~analysis.data.problems.IngestError` listing every problem of every file, each
with the file, the sheet, the row as the user sees it (header = row 1 in canonical CSV
and XLSX; "record N" in Parquet), the column, the value, what is wrong and what to do.
Nothing is written then, and the store file is byte-for-byte unchanged.

This module only orchestrates; each step is its own module:

1. read (:mod:`analysis.data.readers`: CSV, XLSX, Parquet);
2. canonical files: the header (:mod:`analysis.data.canonical`); bureau files: header
   detection and conversion of cells (:mod:`analysis.data.bureau`), and attributes carried
   forward from the store;
3. validate every value against the data dictionary (:mod:`analysis.data.validate`,
   pandera);
4. check the files against each other and the store (:mod:`analysis.data.consistency`);
5. write (:mod:`analysis.data.store`), or report: ``<input>.errors.xlsx``/``.csv``
   (:mod:`analysis.data.problems`).

Both modes
----------
Whatever the files' format, the ingest

* writes the problems of each input file, every one of them, in Chinese and English, to
  ``<input>.errors.xlsx`` and ``<input>.errors.csv`` beside it (never touching the input
  itself; stale reports of an input that now ingests cleanly are removed), and its
  message says where they are;
* takes only what the analysis needs as required (:mod:`analysis.data.schema`): optional
  columns that are absent or empty are stored as missing, and the report lists them;
* **refuses to change a panel year the store already holds** unless ``replace=True``
  (``study ingest --replace``): the refusal names the year, the rows that change, are
  added or removed, the values that differ and the means before and after
  (:func:`analysis.data.store.stored_year_changes`); the dry run shows the same numbers,
  and a replacement is recorded in the ingest log. Re-ingesting the stored rows
  unchanged needs no flag;
* raises **warnings** for possible but suspicious values
  (:mod:`analysis.data.consistency`), among them a year whose values are those of
  another year (a table filed under the wrong year). Warnings block the ingest like
  errors unless ``accept_warnings=True``; accepted warnings are listed in the report and
  recorded in the ingest log.

Canonical files (``mapping_dir=None``, the default)
    The study's own exchange format of ``data/README.md``: English column names, UTF-8,
    plain numbers in canonical units (reading rules: :mod:`analysis.data.readers`).
    Leading and trailing spaces are ignored; an empty cell is a missing value. Rows that
    are entirely empty are skipped (their numbers are not reused).

Bureau files (``mapping_dir`` given, e.g. :data:`analysis.data.bureau.DEFAULT_MAPPING_DIR`)
    The statistics bureau's village table and the organisation department's list of
    first secretaries as those offices send them: XLSX or CSV in UTF-8, GBK or GB18030,
    Chinese headers mapped through the analysts' YAML files, units in the headers,
    subtotal rows, full-width digits, missing markers, Excel-mangled codes (all rules in
    :mod:`analysis.data.bureau`; canonical files are read too). In this mode the ingest
    also

    * fills missing ``carry_forward`` attributes (``panel.yaml``: distance, terrain,
      industry) from the village's latest stored year *before* the file's year (never
      from a later one), and says so;
    * compares every new panel year with the latest earlier year (stored or in the same
      ingest): a village code that appears or disappears without an entry in the
      crosswalk (:mod:`analysis.data.bureau.crosswalk`) is an error naming the code and the
      crosswalk line to add;
    * warns about more suspicious values: income or population far from the village's
      previous year, a column in the wrong unit, postings that move, a year taken from
      the file name that the file itself contradicts.

The year-to-year code check also runs for canonical files when a ``crosswalk`` is given.

History
-------
Every ingest is logged (:func:`analysis.data.store.history`); a re-ingested year
replaces the stored one atomically (with ``replace=True`` if it changes it) and the old
rows stay in the history tables, so any earlier state can be brought back with
:func:`analysis.data.store.restore`.

Testing hook
------------
If the environment variable ``STUDY_INGEST_PAUSE`` holds a number of seconds, the
ingest sleeps that long inside the write transaction, after the first table has been
written into the temporary copy of the store; if ``STUDY_INGEST_PAUSE_MARKER`` names a
file, that file is created just before the sleep. The crash test uses this to
``kill -9`` an ingest half way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from analysis import i18n
from analysis.data import consistency, schema
from analysis.data import store as st
from analysis.data.bureau import MappingError, Mappings, bureau_table, load_mappings
from analysis.data.bureau import crosswalk as cw
from analysis.data.bureau.carry_forward import carry_forward
from analysis.data.canonical import canonical_cells
from analysis.data.problems import (
    MAX_SHOWN_PER_KIND,
    IngestError,
    Note,
    Problem,
    both,
    en_zh,
    file_problem,
    message,
    remove_stale_reports,
    text,
    write_error_report,
)
from analysis.data.readers import BUREAU, CANONICAL, read_file
from analysis.data.validate import TableCells, Validated, validate

MAX_NOTED_WARNINGS = 200
"""At most this many accepted warnings are copied into the ingest log."""
MAX_COLUMNS_IN_REFUSAL = 3
"""The refusal to replace a stored year names this many of the columns that change most (the dry run all)."""
EN = "en"
"""The language of :class:`IngestReport` (its lines that read ``English / 中文`` print both)."""


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
    store_summary : StoreSummary, optional
        :func:`analysis.data.store.summary` after the ingest (before it, in a dry run); None when
        there is no store.
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
    replaced_years : list of analysis.data.store.StoredYearChange
        Stored panel years the files change (or, in a dry run, would change): rows and
        values, and the means before and after.
    replace : bool
        Whether replacing stored years was asked for (``--replace``).
    bureau_files : set of str
        The files read as bureau files.
    """

    store: Path
    dry_run: bool
    ingest_id: str
    files: list[st.FileChange] = field(default_factory=list)
    removed: dict[int, int] = field(default_factory=dict)
    store_summary: st.StoreSummary | None = None
    by_year: list[st.YearChange] = field(default_factory=list)
    villages_added: list[str] = field(default_factory=list)
    villages_removed: list[str] = field(default_factory=list)
    notes: dict[str, list[Note]] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)
    crosswalk_entries: int = 0
    replaced_years: list[st.StoredYearChange] = field(default_factory=list)
    replace: bool = False
    bureau_files: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        dry = self.dry_run
        n = len(self.files)
        files = both("ingest.report.count.file.one" if n == 1 else "ingest.report.count.file.other", n=n)
        if dry:
            lines = [text("ingest.summary.head.dry", EN, files=files, store=self.store)]
        else:
            lines = [text("ingest.summary.head.done", EN, files=files, store=self.store, ingest_id=self.ingest_id)]
        for f in self.files:
            changes = both("ingest.summary.changes.dry" if dry else "ingest.summary.changes.done",
                           inserted=f.inserted, replaced=f.replaced, unchanged=f.unchanged)
            line = text("ingest.summary.file.panel" if f.table == "panel" else "ingest.summary.file.postings", EN,
                        file=f.file_name, table=_table_name(f.table), rows=f.rows, years=_years_text(f.years),
                        changes=changes)
            lines.append("  " + line)
        for year, count in sorted(self.removed.items()):
            if count:
                lines.append("  " + text("ingest.summary.removed.dry" if dry else "ingest.summary.removed.done", EN,
                                         year=year, rows=count))
        if not any(f.inserted or f.replaced for f in self.files) and not any(self.removed.values()):
            lines.append("  " + text("ingest.summary.no_change", EN))
        if len(self.by_year) > 1 or any(y.removed for y in self.by_year):
            lines.append("  " + text("ingest.summary.by_year.heading", EN))
            for y in self.by_year:
                changes = both("ingest.summary.changes.dry" if dry else "ingest.summary.changes.done",
                               inserted=y.inserted, replaced=y.replaced, unchanged=y.unchanged)
                lines.append("    " + text("ingest.summary.by_year.dry" if dry else "ingest.summary.by_year.done", EN,
                                           table=_table_name(y.table), year=y.year, changes=changes,
                                           removed=y.removed))
        if self.villages_added or self.villages_removed:
            lines.append("  " + text("ingest.summary.villages.dry" if dry else "ingest.summary.villages.done", EN,
                                     added=len(self.villages_added), added_codes=_codes_tail(self.villages_added),
                                     lost=len(self.villages_removed), lost_codes=_codes_tail(self.villages_removed)))
        if self.crosswalk_entries:
            lines.append("  " + text("ingest.summary.crosswalk", EN, n=self.crosswalk_entries))
        for ry in self.replaced_years:
            if dry and not self.replace:
                head = en_zh(both("ingest.summary.replaced_year.needs_flag", year=ry.year))
            else:
                head = text("ingest.summary.replaced_year.dry" if dry else "ingest.summary.replaced_year.done", EN,
                            year=ry.year)
            lines.append(f"  {head}: {ry.summary()}")
            lines.extend(f"    - {c}" for c in ry.columns)
        for name, notes in self.notes.items():
            if notes and name in self.bureau_files:
                lines.append(f"  {name}: {en_zh(both('ingest.summary.bureau_file'))}:")
                lines.extend(f"    - {note}" for note in notes)
            elif notes:
                lines.append(f"  {name}:")
                lines.extend(f"    - {note}" for note in notes)
        if self.warnings:
            lines.append(f"  {en_zh(both('ingest.summary.warnings_accepted', n=len(self.warnings)))}:")
            lines.extend(f"    - {w}" for w in self.warnings[:MAX_SHOWN_PER_KIND * 2])
            if len(self.warnings) > MAX_SHOWN_PER_KIND * 2:
                lines.append("    " + text("ingest.summary.more_warnings", EN,
                                           n=len(self.warnings) - MAX_SHOWN_PER_KIND * 2))
        s = self.store_summary
        if s:
            lines.append(text("ingest.summary.store.dry" if dry else "ingest.summary.store.done", EN,
                              panel_rows=s.get("panel_rows", 0), villages=s.get("villages", 0),
                              years=_years_text(tuple(s.get("panel_years", ()))), postings=s.get("postings_rows", 0)))
        return "\n".join(lines)


def _table_name(table: str) -> dict[str, str]:
    """Return the name of a canonical table (``panel`` or ``postings``) in both languages."""
    return both("ingest.table_name.panel") if table == "panel" else both("ingest.table_name.postings")


def _codes_tail(codes: Sequence[str], limit: int = 5) -> dict[str, str]:
    """Return the first ``limit`` codes in parentheses (`` (a, b, ...)``) in both languages; empty if none."""
    if not codes:
        return {lang: "" for lang in i18n.LANGS}
    out = {}
    for lang in i18n.LANGS:
        sep = i18n.t("punct.enum", lang)
        more = sep + "..." if len(codes) > limit else ""
        listed = sep.join(codes[:limit]) + more
        out[lang] = i18n.t("punct.paren_open", lang) + listed + i18n.t("punct.paren_close", lang)
    return out


def _years_text(years: tuple[int, ...]) -> str:
    if not years:
        return "-"
    ys = sorted(years)
    if ys == list(range(ys[0], ys[-1] + 1)):
        return str(ys[0]) if len(ys) == 1 else f"{ys[0]}-{ys[-1]}"
    return ", ".join(str(y) for y in ys)



# ----------------------------------------------------------------------------- reading


def _read_input(
    path: Path, mappings: Mappings | None, year: int | None
) -> tuple[TableCells | None, list[Problem], list[Note], bool]:
    """Read one input into canonical cells: the canonical header, or the bureau reader for CSV/XLSX.

    The last item says whether the bureau reader read it.
    """
    inp, problems = read_file(path, BUREAU if mappings is not None else CANONICAL)
    if inp is None:
        return None, problems, [], False
    if inp.dialect == BUREAU and mappings is not None:
        bt, problems = bureau_table(inp, mappings, year=year)
        if bt is None:
            return None, problems, [], True
        return bt.table_cells(path), list(bt.problems), list(bt.notes), True
    cells, problems, notes = canonical_cells(inp)
    return cells, problems, notes, False


def _canonical(v: Validated) -> pd.DataFrame:
    cols = {
        c.name: v.parsed.get(c.name, pd.Series([None] * len(v.cells), dtype=object))
        for c in schema.columns(v.table)
    }
    return schema.to_canonical(pd.DataFrame(cols), v.table)


_KEYS = frozenset({"village_code", "year"})


def _keep_keys_only(v: Validated) -> None:
    """Drop a checked file's values and shown cells but its keys, once its canonical frame is made.

    What is left to check under the store's lock (:func:`analysis.data.consistency.unknown_villages`)
    reads only the village codes and years, and its messages the rows, sheets and headers; the
    text of every cell and the values of every measure were, for a national first ingest, 2.3 GB
    held through the write.
    """
    v.parsed = {c: x for c, x in v.parsed.items() if c in _KEYS}  # its text cells went after validation
    v.cells.shown = {c: x for c, x in v.cells.shown.items() if c in _KEYS}


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
    return file_problem(store.name, **message("ingest.store.unusable", store=store, reason=exc))


def ingest_files(
    paths: Sequence[str | os.PathLike],
    store: str | os.PathLike,
    dry_run: bool = False,
    accept_warnings: bool = False,
    year: int | None = None,
    crosswalk: str | os.PathLike | None = None,
    mapping_dir: str | os.PathLike | None = None,
    error_reports: bool | None = None,
    replace: bool = False,
) -> IngestReport:
    """Validate panel and postings files and write them into the store.

    Every file is read and checked before anything is written: the column set (missing,
    unknown, misspelt columns), types, bounds, missing values, code patterns and their
    agreement with the village code, category levels, 0/1 flags, dates, duplicate keys
    within and across files, whether postings point to known villages, and whether a
    year's values are those of another year (a warning); in bureau mode also the reading
    rules of :mod:`analysis.data.bureau`, village codes that appear or disappear against
    the previous year (crosswalk) and suspicious values (warnings). If any file has any
    problem, nothing is written and one :class:`IngestError` lists them all. A panel file
    that would change a year the store holds is refused unless ``replace=True``.
    Otherwise all files are written in one atomic transaction: panel files replace their
    years, postings are upserted by ``secretary_id``, and each file gets a provenance row.

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
        unchanged and removed per year; for stored years, the values that differ and the
        means before and after; villages added and removed), writing nothing to the store
        (error reports are still written). Stored years to replace do not make a dry run
        fail.
    accept_warnings : bool, default False
        Write even if there are warnings; they are listed in the report and recorded in
        the ingest log.
    year : int, optional
        Year of bureau panel files that have no year column (else the year is taken from
        the file name, e.g. ``2025年村级统计.xlsx``).
    crosswalk : path, optional
        Crosswalk of village-code changes (:mod:`analysis.data.bureau.crosswalk`); its entries
        are checked and recorded in the store. Giving it also turns on the year-to-year
        code check for canonical files.
    mapping_dir : path, optional
        Folder of the header mappings (``data/mappings``,
        :data:`analysis.data.bureau.DEFAULT_MAPPING_DIR`). Giving it reads the files in
        bureau mode; None (default) reads canonical files only.
    error_reports : bool, optional
        Write ``<input>.errors.xlsx`` / ``.csv`` with every problem beside inputs with
        problems (default: yes, in both modes; :func:`~analysis.data.problems.write_error_report`).
    replace : bool, default False
        Let panel files change years the store already holds (``study ingest --replace``).
        Without it such an ingest is refused, naming each year, the rows and values that
        would change and the means before and after; the dry run shows the same numbers.
        Re-ingesting exactly the stored rows changes nothing and needs no ``replace``.

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
    files = [Path(p) for p in paths]
    bureau = mapping_dir is not None
    bilingual = bureau
    reports_on = True if error_reports is None else bool(error_reports)
    if not files:
        raise IngestError(
            [file_problem("(no file)", **message("ingest.input.no_file"))],
            bilingual,
        )
    mappings: Mappings | None = None
    if bureau:
        try:
            mappings = load_mappings(mapping_dir)
        except MappingError as exc:
            raise IngestError(exc.problems, bilingual=True) from None
    problems: list[Problem] = []
    warnings: list[Problem] = []
    checked: list[Validated] = []
    notes: dict[str, list[Note]] = {}
    bureau_files: set[str] = set()
    seen_paths: dict[Path, str] = {}
    input_of: dict[str, Path] = {}
    for path in files:
        key = path.resolve()
        if key in seen_paths:
            problems.append(
                file_problem(path.name, **message("ingest.input.same_file_twice", first=seen_paths[key]))
            )
            continue
        seen_paths[key] = str(path)
        input_of.setdefault(path.name, path)
        cells, probs, file_notes, from_bureau = _read_input(path, mappings, year)
        problems.extend(p for p in probs if not p.is_warning)
        warnings.extend(p for p in probs if p.is_warning)
        if from_bureau:
            bureau_files.add(path.name)
        if file_notes:
            notes[path.name] = file_notes
        if cells is None:
            continue
        if (from_bureau and cells.table == "panel" and mappings is not None
                and not (store.exists() and not store.is_file())):
            try:
                fill_probs, fill_notes = carry_forward(cells, mappings.panel, store)
            except (st.StoreError, duckdb.Error) as exc:
                fill_probs, fill_notes = [_store_problem(store, exc)], []
            problems.extend(fill_probs)
            notes.setdefault(path.name, []).extend(fill_notes)
        validated = validate(cells)
        # what is checked from here on reads the parsed values (and the bureau's shown cells for messages),
        # not the text: a national first ingest held 1.2 GB of it through the checks and the write
        cells.columns = {c: x for c, x in cells.columns.items() if c in _KEYS}
        checked.append(validated)
        problems.extend(validated.problems)
        if validated.notes:
            notes.setdefault(path.name, []).extend(validated.notes)
    problems.extend(consistency.repeated_keys(checked))

    cw_entries = cw.empty_crosswalk()
    if crosswalk is not None:
        cwf = cw.read_crosswalk(Path(crosswalk), mappings or load_mappings())
        input_of.setdefault(Path(crosswalk).name, Path(crosswalk))
        problems.extend(cwf.problems)
        cw_entries = cwf.entries
    if store.exists() and not store.is_file():
        problems.append(_store_problem(store, IsADirectoryError("it is a folder")))
        raise IngestError(_ordered(problems, files), bilingual)
    try:
        stored_cw = consistency.stored_crosswalk(store)
        cw_entries, conflicts = consistency.crosswalk_conflicts(cw_entries, stored_cw)
        problems.extend(conflicts)
        if bureau or crosswalk is not None:
            all_cw = pd.concat([stored_cw, cw_entries[list(stored_cw.columns)]], ignore_index=True)
            problems.extend(consistency.code_changes(checked, store, all_cw))
        if bureau:
            warnings += consistency.year_on_year_warnings(checked, store) + consistency.posting_warnings(checked, store)
        warnings += consistency.copied_year_warnings(checked, store)
    except (st.StoreError, duckdb.Error) as exc:
        problems.append(_store_problem(store, exc))
    if problems:
        blocking = problems + ([] if accept_warnings else warnings)
        try:
            blocking.extend(consistency.unknown_villages(checked, store))
        except (st.StoreError, duckdb.Error) as exc:
            blocking.append(_store_problem(store, exc))
        ordered = _ordered(blocking, files)
        written = _write_reports(ordered, input_of) if reports_on else []
        raise IngestError(ordered, bilingual, written)

    frames: dict[str, list[tuple[pd.DataFrame, st.Source]]] = {"panel": [], "postings": []}
    for v in checked:
        frame = _canonical(v)
        frames[v.table].append((frame, st.Source(v.name, v.cells.sha256, len(frame))))
        _keep_keys_only(v)

    def stacked(table: str) -> tuple[pd.DataFrame | None, list[st.Source] | None]:
        if not frames[table]:
            return None, None
        parts = [f for f, _ in frames[table]]
        return (
            parts[0].reset_index(drop=True) if len(parts) == 1 else pd.concat(parts, ignore_index=True),
            [s for _, s in frames[table]],
        )

    panel, panel_sources = stacked("panel")
    postings, postings_sources = stacked("postings")
    log_notes = [f"{name}: {n}" for name, ns in notes.items() for n in ns]
    log_notes += [f"warning accepted: {w}" for w in warnings[:MAX_NOTED_WARNINGS]]
    if len(warnings) > MAX_NOTED_WARNINGS:
        log_notes.append(f"... and {len(warnings) - MAX_NOTED_WARNINGS} more warnings accepted")
    log = st.IngestLog([p.name for p in files] + ([Path(crosswalk).name] if crosswalk is not None else []),
                       log_notes, len(warnings))
    try:
        lock = st.ingest_lock(store) if not dry_run else nullcontext()
        with lock:
            # Under the lock: what the store holds now is what the write will change.
            year_changes = [y for y in st.stored_year_changes(store, panel) if y.changes] if panel is not None else []
            blocking = consistency.unknown_villages(checked, store) + ([] if accept_warnings else warnings)
            to_replace = [] if replace else [_replace_problem(y, frames["panel"]) for y in year_changes]
            if blocking or (to_replace and not dry_run):  # a dry run reports the years to replace, refusing nothing
                ordered = _ordered(blocking + to_replace, files)
                written = _write_reports(ordered, input_of) if reports_on else []
                raise IngestError(ordered, bilingual, written)
            log.notes.extend(_replaced_notes(year_changes))
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
        summary = st.summary(store) if store.exists() else None
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
        year_changes,
        replace,
        bureau_files,
    )


def _replace_problem(change: st.StoredYearChange, panel_frames: list[tuple[pd.DataFrame, st.Source]]) -> Problem:
    """Return the refusal to change a stored year without ``replace=True``: the year, rows, values, how much."""
    file = next((src.file_name for frame, src in panel_frames if (frame["year"] == change.year).any()), "(panel)")
    shown = change.columns[:MAX_COLUMNS_IN_REFUSAL]
    more = len(change.columns) - len(shown)
    sep = both("punct.semicolon")
    listed = {"en": sep["en"].join(str(c) for c in shown), "zh": sep["zh"].join(c.text_zh() for c in shown)}
    tail = both("ingest.store.replace_year.more_columns", count=more) if more else ""
    detail = both("ingest.store.replace_year.detail", listed=listed, more=tail) if shown else ""
    return Problem(
        file,
        None,
        "year",
        None,
        severity="replace",
        **message("ingest.store.replace_year", year=change.year, rows=change.stored_rows,
                  summary={"en": change.summary(), "zh": change.summary_zh()}, detail=detail),
    )


def _replaced_notes(changes: Sequence[st.StoredYearChange]) -> list[str]:
    """Lines for the ingest log: each stored year replaced, with its rows, values and means before and after."""
    return [
        f"stored panel year {y.year} replaced (--replace): {y.summary()}"
        + (f" ({'; '.join(str(c) for c in y.columns)})" if y.columns else "")
        for y in changes
    ]


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
