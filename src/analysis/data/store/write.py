"""Writing canonical rows into the store: replace-the-year panel, upserted postings, history kept.

* Panel: **replace-the-year**. The years present in the new data are deleted and the new
  rows inserted, so a corrected 2023 file replaces 2023 and leaves 2022 untouched.
* Postings: **upsert** by ``secretary_id``. A corrected row replaces the old one; rows of
  other secretaries stay.
* Re-ingesting the same file changes nothing in ``panel`` or ``postings`` (the
  :func:`~analysis.data.store.read.content_hash` is identical); ``provenance`` logs the
  repeat, with every row counted as unchanged.
* Every row a write replaces or removes is copied to ``<table>_history`` first, and the
  key of every row it inserts is recorded there (``change = 'inserted'``), so
  :func:`analysis.data.store.timeline.restore` can undo it exactly.

Every write is one transaction in a temporary copy moved over the store
(:mod:`analysis.data.store.lock`); a dry run counts what would change and writes nothing.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data.store.layout import (
    KEYS,
    ensure_schema,
    has_table,
    incoming_sql,
    key_join_sql,
    same_row_sql,
    year_sql,
)
from analysis.data.store.lock import atomic_update, ingest_lock, transaction
from analysis.data.store.log import FileChange, IngestLog, counts, fingerprint, insert_log, insert_provenance
from analysis.data.store.read import open_store


@dataclass(frozen=True)
class Source:
    """Where a block of rows of a frame being written comes from.

    Parameters
    ----------
    file_name : str
        Name of the file (recorded in the provenance).
    sha256 : str
        sha256 of the file's bytes.
    rows : int
        Number of consecutive rows of the frame that come from this file.
    """

    file_name: str
    sha256: str
    rows: int


@dataclass(frozen=True)
class YearChange:
    """What writing changes (or would change) in one year of one table.

    Attributes
    ----------
    table : str
        ``panel`` or ``postings``.
    year : int
        Panel year, or start year of postings.
    inserted, replaced, unchanged, removed : int
        Rows whose key is new; whose key exists with different content; identical rows;
        stored rows of a replaced panel year that the new data does not have.
    """

    table: str
    year: int
    inserted: int
    replaced: int
    unchanged: int
    removed: int = 0


@dataclass(frozen=True)
class WriteResult:
    """Outcome of :func:`write_tables`.

    Attributes
    ----------
    ingest_id : str
        Identifier recorded in the provenance (also set for a dry run, but not stored).
    files : list of FileChange
        One entry per source file.
    removed : dict of int to int
        Panel rows removed per replaced year: in the store, absent from the new data.
    written : bool
        False for a dry run.
    by_year : list of YearChange
        Inserted / replaced / unchanged / removed rows per table and year.
    villages_added, villages_removed : list of str
        Village codes the panel gains (in no stored year before) or loses (in no year
        after), sorted.
    """

    ingest_id: str
    files: list[FileChange] = field(default_factory=list)
    removed: dict[int, int] = field(default_factory=dict)
    written: bool = True
    by_year: list[YearChange] = field(default_factory=list)
    villages_added: list[str] = field(default_factory=list)
    villages_removed: list[str] = field(default_factory=list)


def _prepare(
    frame: pd.DataFrame, table: str, sources: Sequence[Source] | None
) -> tuple[pd.DataFrame, list[Source]]:
    canon = schema.to_canonical(frame, table)
    key = list(KEYS[table])
    dup = canon.duplicated(key, keep=False)
    if dup.any():
        raise ValueError(
            f"{table} frame has duplicate keys {key}: "
            f"{canon.loc[dup, key].head(5).to_dict('records')}"
        )
    for c in schema.columns(table):
        if not c.nullable and canon[c.name].isna().any():
            raise ValueError(f"{table}.{c.name} has empty values but may not be empty")
    if sources is None:
        digest = hashlib.sha256(
            pd.util.hash_pandas_object(canon, index=False).to_numpy().tobytes()
        ).hexdigest()
        sources = [Source(f"<{table} frame>", digest, len(canon))]
    sources = list(sources)
    if sum(s.rows for s in sources) != len(canon):
        raise ValueError(
            f"the sources of the {table} frame cover {sum(s.rows for s in sources)} rows, "
            f"the frame has {len(canon)}"
        )
    canon["_src"] = np.repeat(np.arange(len(sources), dtype="int64"), [s.rows for s in sources])
    return canon, sources


def _years_of(table: str, frame: pd.DataFrame) -> tuple[int, ...]:
    if table == "panel":
        return tuple(sorted(int(y) for y in frame["year"].unique()))
    return tuple(sorted(int(y) for y in frame["start_date"].dt.year.dropna().unique()))


def _plan(
    con: duckdb.DuckDBPyConnection,
    table: str,
    view: str,
    frame: pd.DataFrame,
    sources: list[Source],
) -> tuple[list[FileChange], dict[int, int], list[YearChange], list[str], list[str]]:
    """Count what writing ``frame`` (registered as ``view``) changes in ``table``."""
    inc = incoming_sql(table, view)
    old = f"o.{KEYS[table][0]}"
    same = same_row_sql(table, "n", "o")
    rows = con.execute(
        f"""SELECT n._src, {year_sql(table, "n")} AS y,
                count(*) FILTER (WHERE {old} IS NULL),
                count(*) FILTER (WHERE {old} IS NOT NULL AND NOT {same}),
                count(*) FILTER (WHERE {old} IS NOT NULL AND {same})
            FROM {inc} n LEFT JOIN {table} o ON {key_join_sql(table, "n", "o")}
            GROUP BY n._src, y"""
    ).fetchall()
    counts: dict[int, list[int]] = {}
    per_year: dict[int, list[int]] = {}
    for src, y, ins, rep, unch in rows:
        c = counts.setdefault(int(src), [0, 0, 0])
        c[0], c[1], c[2] = c[0] + int(ins), c[1] + int(rep), c[2] + int(unch)
        if y is not None:
            py = per_year.setdefault(int(y), [0, 0, 0, 0])
            py[0], py[1], py[2] = py[0] + int(ins), py[1] + int(rep), py[2] + int(unch)
    changes = []
    for i, s in enumerate(sources):
        ins, rep, unch = counts.get(i, (0, 0, 0))
        part = frame[frame["_src"] == i]
        changes.append(
            FileChange(s.file_name, s.sha256, table, s.rows, _years_of(table, part), ins, rep, unch)
        )
    removed: dict[int, int] = {}
    added_codes: list[str] = []
    removed_codes: list[str] = []
    if table == "panel" and len(frame):
        years = sorted(int(y) for y in frame["year"].unique())
        for y, n in con.execute(
            f"""SELECT o.year, count(*) FROM panel o
                WHERE list_contains(?, o.year)
                  AND NOT EXISTS (SELECT 1 FROM {inc} n WHERE {key_join_sql("panel", "n", "o")})
                GROUP BY o.year ORDER BY o.year""",
            [years],
        ).fetchall():
            removed[int(y)] = int(n)
            per_year.setdefault(int(y), [0, 0, 0, 0])[3] = int(n)
        added_codes = [
            r[0]
            for r in con.execute(
                f"""SELECT DISTINCT n.village_code FROM {inc} n
                    WHERE NOT EXISTS (SELECT 1 FROM panel o WHERE o.village_code = n.village_code)
                    ORDER BY 1"""
            ).fetchall()
        ]
        removed_codes = [
            r[0]
            for r in con.execute(
                f"""SELECT DISTINCT o.village_code FROM panel o
                    WHERE list_contains(?, o.year)
                      AND NOT EXISTS (SELECT 1 FROM panel p
                                      WHERE p.village_code = o.village_code AND NOT list_contains(?, p.year))
                      AND NOT EXISTS (SELECT 1 FROM {inc} n WHERE n.village_code = o.village_code)
                    ORDER BY 1""",
                [years, years],
            ).fetchall()
        ]
    by_year = [YearChange(table, y, *v) for y, v in sorted(per_year.items())]
    return changes, removed, by_year, added_codes, removed_codes


def _apply(
    con: duckdb.DuckDBPyConnection, table: str, view: str, frame: pd.DataFrame, ingest_id: str
) -> None:
    """Write ``frame`` into ``table`` inside the open transaction, keeping history.

    Every row an ingest replaces or removes is copied to ``<table>_history`` first, and
    the key of every row it inserts is recorded there too (``change = 'inserted'``), so
    :func:`analysis.data.store.timeline.restore` can undo the ingest exactly.
    """
    if frame.empty:
        return
    inc = incoming_sql(table, view)
    names = ", ".join(schema.column_names(table))
    keys = ", ".join(KEYS[table])
    key_join = key_join_sql(table, "n", "o")
    con.execute(
        f"""INSERT INTO {table}_history (ingest_id, change, {names})
            SELECT ?, 'replaced', {", ".join("o." + c for c in schema.column_names(table))}
            FROM {table} o JOIN {inc} n ON {key_join} WHERE NOT {same_row_sql(table, "n", "o")}""",
        [ingest_id],
    )
    con.execute(
        f"""INSERT INTO {table}_history (ingest_id, change, {keys})
            SELECT ?, 'inserted', {", ".join("n." + k for k in KEYS[table])}
            FROM {inc} n WHERE NOT EXISTS (SELECT 1 FROM {table} o WHERE {key_join})""",
        [ingest_id],
    )
    if table == "panel":
        years = sorted(int(y) for y in frame["year"].unique())
        con.execute(
            f"""INSERT INTO panel_history (ingest_id, change, {names})
                SELECT ?, 'removed', {", ".join("o." + c for c in schema.column_names(table))}
                FROM panel o WHERE list_contains(?, o.year)
                  AND NOT EXISTS (SELECT 1 FROM {inc} n WHERE {key_join})""",
            [ingest_id, years],
        )
        con.execute("DELETE FROM panel WHERE list_contains(?, year)", [years])
        con.execute(f"INSERT INTO panel ({names}) SELECT {names} FROM {inc}")
    else:
        con.execute(f"INSERT OR REPLACE INTO postings ({names}) SELECT {names} FROM {inc}")


def write_tables(
    store: str | os.PathLike,
    *,
    panel: pd.DataFrame | None = None,
    panel_sources: Sequence[Source] | None = None,
    postings: pd.DataFrame | None = None,
    postings_sources: Sequence[Source] | None = None,
    dry_run: bool = False,
    after_partial_write: Callable[[], None] | None = None,
    lock_timeout: float = 600.0,
    crosswalk: pd.DataFrame | None = None,
    log: IngestLog | None = None,
) -> WriteResult:
    """Write panel and/or postings rows into the store in one atomic transaction.

    The panel is written with replace-the-year semantics, the postings are upserted by
    ``secretary_id`` (see the module docstring); one provenance row is recorded per
    source, and one row in ``ingest_log`` per call (with fingerprints of the content
    before and after, which :func:`restore` checks). The frames are not modified.

    Parameters
    ----------
    store : str or path-like
        The store file; created with the schema if it does not exist.
    panel, postings : pandas.DataFrame, optional
        Canonical frames (already validated: :mod:`analysis.data.ingest` does that).
    panel_sources, postings_sources : sequence of Source, optional
        The files the frame's rows come from, in order (``Source.rows`` consecutive
        rows each). Default: one source named ``<panel frame>`` whose sha256 is a hash
        of the frame.
    dry_run : bool, default False
        Count what would change, write nothing (no lock, no temporary file).
    after_partial_write : callable, optional
        Called inside the transaction after the first table has been written (a hook
        for the crash test of the ingest).
    lock_timeout : float, default 600
        Seconds to wait for a concurrent ingest.
    crosswalk : pandas.DataFrame, optional
        Village-code changes to record (``old_code``, ``new_code``, ``year_effective``,
        ``change_type``, ``weight``, ``file_name``); checked by the caller.
    log : IngestLog, optional
        Input files, notes and accepted warnings, for :func:`history`.

    Returns
    -------
    WriteResult
        Counts per file and per year, rows removed per replaced year, villages added
        and removed.

    Raises
    ------
    ValueError
        If a frame is not canonical, has duplicate keys or empty values where none are
        allowed, or the sources do not add up to its rows.
    StoreError
        If the store is locked for longer than ``lock_timeout``, is not a DuckDB file
        or was built for another table layout.
    """
    store = Path(store)
    jobs: list[tuple[str, pd.DataFrame, list[Source]]] = []
    if panel is not None:
        jobs.append(("panel", *_prepare(panel, "panel", panel_sources)))
    if postings is not None:
        jobs.append(("postings", *_prepare(postings, "postings", postings_sources)))
    now = datetime.now(UTC).replace(tzinfo=None)
    ingest_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"

    if dry_run:
        return _dry_run(store, jobs, ingest_id)

    with ingest_lock(store, timeout=lock_timeout):
        return atomic_update(
            store, lambda tmp: _write_into(tmp, jobs, ingest_id, now, after_partial_write, crosswalk, log)
        )


def _write_into(
    tmp: Path,
    jobs: list[tuple[str, pd.DataFrame, list[Source]]],
    ingest_id: str,
    now: datetime,
    after_partial_write: Callable[[], None] | None,
    crosswalk: pd.DataFrame | None = None,
    log: IngestLog | None = None,
) -> WriteResult:
    with transaction(tmp) as con:
        ensure_schema(con)
        before = (fingerprint(con), counts(con))
        files: list[FileChange] = []
        removed: dict[int, int] = {}
        by_year: list[YearChange] = []
        added: list[str] = []
        gone: list[str] = []
        for i, (table, frame, sources) in enumerate(jobs):
            view = f"incoming_{table}"
            con.register(view, frame)
            changes, rem, years, add, rm = _plan(con, table, view, frame, sources)
            files.extend(changes)
            removed.update(rem)
            by_year.extend(years)
            added, gone = (add, rm) if table == "panel" else (added, gone)
            _apply(con, table, view, frame, ingest_id)
            con.unregister(view)
            if i == 0 and after_partial_write is not None:
                after_partial_write()
        if crosswalk is not None and len(crosswalk):
            cw = crosswalk[["old_code", "new_code", "year_effective", "change_type", "weight", "file_name"]].copy()
            con.register("incoming_crosswalk", cw)
            con.execute(
                """INSERT INTO village_crosswalk
                   SELECT old_code, new_code, CAST(year_effective AS INTEGER), change_type,
                          CAST(weight AS DOUBLE), ?, file_name FROM incoming_crosswalk""",
                [ingest_id],
            )
            con.unregister("incoming_crosswalk")
        insert_provenance(con, ingest_id, now, files)
        names = log.files if log and log.files else list(dict.fromkeys(f.file_name for f in files))
        insert_log(con, ingest_id, "ingest", now, before, names, None, (len(added), len(gone)), log)
    return WriteResult(ingest_id, files, removed, True, by_year, added, gone)


def _dry_run(
    store: Path, jobs: list[tuple[str, pd.DataFrame, list[Source]]], ingest_id: str
) -> WriteResult:
    if store.exists():
        con = open_store(store, read_only=True)
    else:
        con = duckdb.connect()
    try:
        if not store.exists():
            ensure_schema(con)
        files: list[FileChange] = []
        removed: dict[int, int] = {}
        by_year: list[YearChange] = []
        added: list[str] = []
        gone: list[str] = []
        for table, frame, sources in jobs:
            view = f"incoming_{table}"
            con.register(view, frame)
            if has_table(con, table):
                changes, rem, years, add, rm = _plan(con, table, view, frame, sources)
            else:
                changes = [
                    FileChange(
                        s.file_name,
                        s.sha256,
                        table,
                        s.rows,
                        _years_of(table, frame[frame["_src"] == i]),
                        s.rows,
                        0,
                        0,
                    )
                    for i, s in enumerate(sources)
                ]
                rem, add, rm = {}, [], []
                col = frame["year"] if table == "panel" else frame["start_date"].dt.year
                years = [
                    YearChange(table, int(y), int(n), 0, 0) for y, n in col.value_counts().sort_index().items()
                ]
                if table == "panel":
                    add = sorted(frame["village_code"].unique().tolist())
            files.extend(changes)
            removed.update(rem)
            by_year.extend(years)
            if table == "panel":
                added, gone = add, rm
            con.unregister(view)
    finally:
        con.close()
    return WriteResult(ingest_id, files, removed, False, by_year, added, gone)


def write_panel(
    store: str | os.PathLike, df: pd.DataFrame, provenance_rows: Sequence[Source] | None = None
) -> WriteResult:
    """Write panel rows with replace-the-year semantics, atomically.

    Every year present in ``df`` is deleted from the store and ``df``'s rows inserted;
    other years are untouched. Writing the same rows again changes nothing.

    Parameters
    ----------
    store : str or path-like
        The store file (created if missing).
    df : pandas.DataFrame
        Canonical, validated panel rows; not modified.
    provenance_rows : sequence of Source, optional
        The files the rows come from (see :func:`write_tables`).

    Returns
    -------
    WriteResult
        What changed.
    """
    return write_tables(store, panel=df, panel_sources=provenance_rows)


def write_postings(
    store: str | os.PathLike, df: pd.DataFrame, provenance_rows: Sequence[Source] | None = None
) -> WriteResult:
    """Upsert postings by ``secretary_id``, atomically.

    Parameters
    ----------
    store : str or path-like
        The store file (created if missing).
    df : pandas.DataFrame
        Canonical, validated postings; not modified.
    provenance_rows : sequence of Source, optional
        The files the rows come from (see :func:`write_tables`).

    Returns
    -------
    WriteResult
        What changed.
    """
    return write_tables(store, postings=df, postings_sources=provenance_rows)
