"""The DuckDB store: the only code that writes the study database.

Tables
------
``panel``
    The canonical village-year panel (:data:`analysis.data.schema.PANEL_COLUMNS`),
    primary key (``village_code``, ``year``).
``postings``
    The canonical postings (:data:`analysis.data.schema.POSTINGS_COLUMNS`), primary key
    ``secretary_id``.
``provenance``
    One row per file written by an ingest: ingest id, time (UTC), file name, sha256 of
    the file, table, rows, years covered and what the file changed.
``panel_history``, ``postings_history``
    The old version of every row that an ingest replaced with different content
    (``change = 'replaced'``) or removed (``'removed'``), and the key of every row it
    inserted (``'inserted'``, other columns empty), tagged with the ingest id: no value is
    ever lost silently, and every ingest can be taken back (:func:`restore`).
``ingest_log``
    One row per ingest or restore: sequence number, kind, time, input files, rows before
    and after, villages added and removed, a fingerprint of the content before and after
    (:func:`_fingerprint`, checked by :func:`restore`), warnings accepted and the
    conversions applied to bureau files. :func:`history` reads it.
``village_crosswalk``
    Village-code changes (merges, splits, new and abolished villages) recorded from
    crosswalk files (:mod:`analysis.data.crosswalk`), with the ingest that brought them.
``store_meta``
    Key-value facts about the store (schema fingerprint, creation time).

Write semantics
---------------
* Panel: **replace-the-year**. The years present in the new data are deleted and the new
  rows inserted, so a corrected 2023 file replaces 2023 and leaves 2022 untouched.
* Postings: **upsert** by ``secretary_id``. A corrected row replaces the old one; rows of
  other secretaries stay.
* Re-ingesting the same file changes nothing in ``panel`` or ``postings`` (the
  :func:`content_hash` is identical); ``provenance`` logs the repeat, with every row
  counted as unchanged.

Atomicity
---------
The live file is never written in place. Under an exclusive lock file
(``<store>.lock``, :func:`fcntl.flock`) the store is copied to a temporary file beside
it, the whole ingest runs there in one transaction, the copy is checkpointed, closed
and fsynced, and :func:`os.replace` moves it over the original (atomic on POSIX). A
process killed at any point leaves the original file byte-for-byte as it was; the
orphaned temporary file is deleted by the next write. Readers that already have the
store open keep reading the old snapshot until they reopen it.

History and restore
-------------------
:func:`history` lists the ingests. :func:`restore` brings ``panel`` and ``postings``
back to their content right before (or right after) a given ingest: it takes back the
later ingests newest first from the history tables, checks the result against the
fingerprint the ingest log recorded for that state, and writes it like an ingest (same
lock, temporary copy, one transaction, :func:`os.replace`). The restore is itself
logged with the rows it replaced, so it can be taken back too; nothing is ever deleted
from the history, the provenance or the crosswalk. Ingests written before the ingest log
existed ("legacy") cannot be taken back, since their inserted keys were not recorded.

Readers open the store read-only through :func:`open_store`, which attaches the file
to a fresh in-memory DuckDB instance, so every call sees the current file even in a
process that still holds an older connection.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from analysis.data import schema

StoreLike = str | os.PathLike | duckdb.DuckDBPyConnection
"""A store given as a path (opened read-only and closed again) or an open connection."""

CANONICAL_TABLES = ("panel", "postings")
KEYS = schema.KEYS

_SQL_TYPES = {
    "code": "VARCHAR",
    "str": "VARCHAR",
    "category": "VARCHAR",
    "int": "BIGINT",
    "binary": "TINYINT",
    "float": "DOUBLE",
    "date": "DATE",
}

PROVENANCE_COLUMNS = (
    "ingest_id",
    "file_seq",
    "ingested_at",
    "file_name",
    "sha256",
    "table_name",
    "rows",
    "years",
    "first_year",
    "last_year",
    "inserted",
    "replaced",
    "unchanged",
    "package_version",
)


class StoreError(Exception):
    """The store cannot be used as asked (locked, wrong schema, not a DuckDB file)."""


# ----------------------------------------------------------------------------- reading


def open_store(path: str | os.PathLike, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the store.

    Parameters
    ----------
    path : str or path-like
        The DuckDB file.
    read_only : bool, default True
        Read-only connections (what notebooks use) attach the file to a fresh in-memory
        DuckDB instance, so they always see the file as it is now. ``read_only=False``
        opens the live file for writing; do not use it to change ``panel`` or
        ``postings`` (that bypasses the atomic write path of :func:`write_tables`).

    Returns
    -------
    duckdb.DuckDBPyConnection
        A connection whose default database is the store. Close it when done.

    Raises
    ------
    FileNotFoundError
        If ``read_only`` and the file does not exist.
    StoreError
        If the file is not a DuckDB database.
    """
    path = Path(path)
    if not read_only:
        return duckdb.connect(str(path))
    if not path.exists():
        raise FileNotFoundError(
            f"no store at {path}: create it with `study simulate` or "
            f"`study ingest FILES --store {path}`"
        )
    con = duckdb.connect()
    quoted = str(path).replace("'", "''")
    try:
        con.execute(f"ATTACH '{quoted}' AS study (READ_ONLY)")
        con.execute("USE study")
    except duckdb.Error as exc:
        con.close()
        raise StoreError(f"{path} is not a readable DuckDB store: {exc}") from exc
    return con


@contextmanager
def _reading(store: StoreLike) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(store, duckdb.DuckDBPyConnection):
        yield store
        return
    con = open_store(store, read_only=True)
    try:
        yield con
    finally:
        con.close()


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Say whether the store open on ``con`` has a table.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection to the store.
    name : str
        Table name.

    Returns
    -------
    bool
        Whether the table exists in the current database.
    """
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE table_name = ? AND database_name = current_database()",
        [name],
    ).fetchone()
    return bool(row and row[0])


def _select_canonical(
    con: duckdb.DuckDBPyConnection, table: str, where: str = "", params: Sequence | None = None
) -> pd.DataFrame:
    names = schema.column_names(table)
    if not has_table(con, table):
        return schema.to_canonical(pd.DataFrame({n: pd.Series([], dtype="object") for n in names}), table)
    order = ", ".join(KEYS[table])
    sql = f"SELECT {', '.join(names)} FROM {table} {where} ORDER BY {order}"
    return schema.to_canonical(con.execute(sql, params or []).fetchdf(), table)


def read_panel(store: StoreLike, years: Iterable[int] | None = None) -> pd.DataFrame:
    """Read the canonical panel.

    Parameters
    ----------
    store : path or duckdb connection
        The store (a path is opened read-only and closed again).
    years : iterable of int, optional
        Only these years (default: all).

    Returns
    -------
    pandas.DataFrame
        Canonical columns and dtypes (:func:`canonical_dtypes`), sorted by
        (``village_code``, ``year``).
    """
    with _reading(store) as con:
        if years is None:
            return _select_canonical(con, "panel")
        ys = sorted({int(y) for y in years})
        if not ys:
            return _select_canonical(con, "panel", "WHERE false")
        return _select_canonical(con, "panel", "WHERE year IN (SELECT unnest(?))", [ys])


def read_postings(store: StoreLike) -> pd.DataFrame:
    """Read the canonical postings.

    Parameters
    ----------
    store : path or duckdb connection
        The store.

    Returns
    -------
    pandas.DataFrame
        Canonical columns and dtypes, sorted by ``secretary_id``.
    """
    with _reading(store) as con:
        return _select_canonical(con, "postings")


def read_provenance(store: StoreLike) -> pd.DataFrame:
    """Read the provenance log: one row per file written by an ingest.

    Parameters
    ----------
    store : path or duckdb connection
        The store.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PROVENANCE_COLUMNS`, oldest ingest first. ``ingested_at`` is
        UTC. ``years`` lists the panel years of a panel file, or the start years of a
        postings file. A repeated ingest of an unchanged file appears again, with all
        its rows counted as ``unchanged``.
    """
    with _reading(store) as con:
        if not has_table(con, "provenance"):
            return pd.DataFrame({c: pd.Series([], dtype="object") for c in PROVENANCE_COLUMNS})
        return con.execute(
            f"SELECT {', '.join(PROVENANCE_COLUMNS)} FROM provenance "
            "ORDER BY ingested_at, ingest_id, file_seq"
        ).fetchdf()


def read_history(store: StoreLike, table: str, include_inserted: bool = False) -> pd.DataFrame:
    """Read the old versions of rows that ingests replaced or removed.

    Parameters
    ----------
    store : path or duckdb connection
        The store.
    table : {"panel", "postings"}
        Which table's history.
    include_inserted : bool, default False
        Also return the ``"inserted"`` records: the keys (other columns empty) of the
        rows each ingest inserted, which :func:`restore` uses to undo an ingest.

    Returns
    -------
    pandas.DataFrame
        ``ingest_id``, ``change`` (``"replaced"`` or ``"removed"``, and ``"inserted"``
        if asked) and the canonical columns of the old row.
    """
    schema.columns(table)
    with _reading(store) as con:
        if not has_table(con, f"{table}_history"):
            return pd.DataFrame(columns=["ingest_id", "change", *schema.column_names(table)])
        where = "" if include_inserted else "WHERE change <> 'inserted'"
        return con.execute(
            f"SELECT * FROM {table}_history {where} ORDER BY ingest_id, {', '.join(KEYS[table])}"
        ).fetchdf()


def _canonical_text(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def content_hash(store: StoreLike) -> str:
    """Return a sha256 over the canonical content of ``panel`` and ``postings``.

    Rows are read in key order and serialised value by value, so the hash depends only
    on the content, not on the file's physical layout, insert order or provenance.

    Parameters
    ----------
    store : path or duckdb connection
        The store.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    h = hashlib.sha256()
    with _reading(store) as con:
        for table in CANONICAL_TABLES:
            names = schema.column_names(table)
            h.update(f"table {table}\n{chr(9).join(names)}\n".encode())
            if not has_table(con, table):
                continue
            cur = con.execute(
                f"SELECT {', '.join(names)} FROM {table} ORDER BY {', '.join(KEYS[table])}"
            )
            while batch := cur.fetchmany(10_000):
                for row in batch:
                    h.update(("\t".join(_canonical_text(v) for v in row) + "\n").encode())
    return h.hexdigest()


def panel_villages(store: StoreLike, exclude_years: Iterable[int] = ()) -> set[str]:
    """Return the village codes in the stored panel, leaving out some years.

    Parameters
    ----------
    store : path or duckdb connection
        The store; a path that does not exist gives an empty set.
    exclude_years : iterable of int
        Years to ignore (those an ingest is about to replace).

    Returns
    -------
    set of str
        Village codes.
    """
    if not isinstance(store, duckdb.DuckDBPyConnection) and not Path(store).exists():
        return set()
    ys = sorted({int(y) for y in exclude_years})
    with _reading(store) as con:
        if not has_table(con, "panel"):
            return set()
        if ys:
            rows = con.execute(
                "SELECT DISTINCT village_code FROM panel WHERE NOT list_contains(?, year)", [ys]
            ).fetchall()
        else:
            rows = con.execute("SELECT DISTINCT village_code FROM panel").fetchall()
    return {r[0] for r in rows}


def panel_codes(store: StoreLike, year: int) -> set[str]:
    """Return the village codes of one stored panel year.

    Parameters
    ----------
    store : path or duckdb connection
        The store.
    year : int
        The year.

    Returns
    -------
    set of str
        Village codes (empty if the year is not stored).
    """
    with _reading(store) as con:
        return {r[0] for r in con.execute("SELECT village_code FROM panel WHERE year = ?", [year]).fetchall()}


def panel_columns(store: StoreLike, year: int, columns: Sequence[str]) -> pd.DataFrame:
    """Return some columns of one stored panel year, with the village code.

    Parameters
    ----------
    store : path or duckdb connection
        The store.
    year : int
        The year.
    columns : sequence of str
        Canonical panel columns.

    Returns
    -------
    pandas.DataFrame
        ``village_code`` and ``columns``, in the store's order.
    """
    with _reading(store) as con:
        return con.execute(f"SELECT village_code, {', '.join(columns)} FROM panel WHERE year = ?", [year]).fetchdf()


def latest_panel_values(store: StoreLike, codes: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """Return the latest stored year of some villages: their year and some columns.

    Parameters
    ----------
    store : path or duckdb connection
        The store.
    codes : sequence of str
        Village codes.
    columns : sequence of str
        Canonical panel columns.

    Returns
    -------
    pandas.DataFrame
        ``village_code``, ``year`` and ``columns``, one row per village the store has;
        an empty frame without columns if the store has no panel.
    """
    with _reading(store) as con:
        if not has_table(con, "panel"):
            return pd.DataFrame()
        return con.execute(
            f"""SELECT village_code, year, {", ".join(columns)} FROM panel
                WHERE list_contains(?, village_code)
                QUALIFY row_number() OVER (PARTITION BY village_code ORDER BY year DESC) = 1""",
            [list(codes)],
        ).fetchdf()


def read_village_crosswalk(store: StoreLike) -> pd.DataFrame | None:
    """Return the village-code changes recorded in the store.

    Parameters
    ----------
    store : path or duckdb connection
        The store.

    Returns
    -------
    pandas.DataFrame or None
        ``old_code``, ``new_code``, ``year_effective``, ``change_type``, ``weight`` and
        ``file_name``; None if the store has no crosswalk table.
    """
    with _reading(store) as con:
        if not has_table(con, "village_crosswalk"):
            return None
        return con.execute(
            "SELECT old_code, new_code, year_effective, change_type, weight, file_name FROM village_crosswalk"
        ).fetchdf()


def summary(store: StoreLike) -> dict[str, object]:
    """Return row counts and years of the canonical tables.

    Parameters
    ----------
    store : path or duckdb connection
        The store.

    Returns
    -------
    dict
        ``panel_rows``, ``panel_years`` (sorted list), ``villages``, ``postings_rows``
        and ``ingests`` (number of distinct ingests in the provenance).
    """
    with _reading(store) as con:
        out: dict[str, object] = {
            "panel_rows": 0,
            "panel_years": [],
            "villages": 0,
            "postings_rows": 0,
            "ingests": 0,
        }
        if has_table(con, "panel"):
            out["panel_rows"] = con.execute("SELECT count(*) FROM panel").fetchone()[0]
            out["villages"] = con.execute(
                "SELECT count(DISTINCT village_code) FROM panel"
            ).fetchone()[0]
            out["panel_years"] = [
                r[0]
                for r in con.execute("SELECT DISTINCT year FROM panel ORDER BY year").fetchall()
            ]
        if has_table(con, "postings"):
            out["postings_rows"] = con.execute("SELECT count(*) FROM postings").fetchone()[0]
        if has_table(con, "provenance"):
            out["ingests"] = con.execute(
                "SELECT count(DISTINCT ingest_id) FROM provenance"
            ).fetchone()[0]
    return out


# ----------------------------------------------------------------------------- schema


def _column_ddl(table: str) -> list[str]:
    return [
        f"{c.name} {_SQL_TYPES[c.kind]}{'' if c.nullable else ' NOT NULL'}"
        for c in schema.columns(table)
    ]


def _schema_fingerprint() -> str:
    parts = [
        f"{t}:{c.name}:{_SQL_TYPES[c.kind]}:{c.nullable}"
        for t in CANONICAL_TABLES
        for c in schema.columns(t)
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables; refuse a store built for a different table layout."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"
    )
    row = con.execute("SELECT value FROM store_meta WHERE key = 'schema'").fetchone()
    fingerprint = _schema_fingerprint()
    if row is not None and row[0] != fingerprint:
        raise StoreError(
            "the store was built for a different table layout than analysis.data.schema "
            f"(fingerprint {row[0]}, expected {fingerprint}); rebuild it from the source files "
            "into a new store"
        )
    for table in CANONICAL_TABLES:
        key = ", ".join(KEYS[table])
        cols = ", ".join(_column_ddl(table))
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols}, PRIMARY KEY ({key}))")
        hist = ", ".join(f"{c.name} {_SQL_TYPES[c.kind]}" for c in schema.columns(table))
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table}_history "
            f"(ingest_id VARCHAR NOT NULL, change VARCHAR NOT NULL, {hist})"
        )
    con.execute(
        """CREATE TABLE IF NOT EXISTS provenance (
            ingest_id VARCHAR NOT NULL, file_seq INTEGER NOT NULL, ingested_at TIMESTAMP NOT NULL,
            file_name VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, table_name VARCHAR NOT NULL,
            rows BIGINT NOT NULL, years VARCHAR, first_year INTEGER, last_year INTEGER,
            inserted BIGINT NOT NULL, replaced BIGINT NOT NULL, unchanged BIGINT NOT NULL,
            package_version VARCHAR, PRIMARY KEY (ingest_id, file_seq))"""
    )
    con.execute(
        """CREATE TABLE IF NOT EXISTS ingest_log (
            ingest_id VARCHAR PRIMARY KEY, seq BIGINT NOT NULL, kind VARCHAR NOT NULL,
            ingested_at TIMESTAMP NOT NULL, files VARCHAR, target VARCHAR,
            panel_rows_before BIGINT, panel_rows_after BIGINT,
            postings_rows_before BIGINT, postings_rows_after BIGINT,
            villages_added BIGINT, villages_removed BIGINT,
            fingerprint_before VARCHAR, fingerprint_after VARCHAR, engine VARCHAR,
            warnings_accepted BIGINT, notes VARCHAR)"""
    )
    con.execute(
        """CREATE TABLE IF NOT EXISTS village_crosswalk (
            old_code VARCHAR, new_code VARCHAR, year_effective INTEGER NOT NULL,
            change_type VARCHAR NOT NULL, weight DOUBLE, ingest_id VARCHAR NOT NULL,
            file_name VARCHAR)"""
    )
    if row is None:
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
        con.execute(
            "INSERT INTO store_meta VALUES ('schema', ?), ('created_utc', ?)", [fingerprint, now]
        )


# ----------------------------------------------------------------------------- writing


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
class FileChange:
    """What writing one file changes (or, in a dry run, would change).

    Attributes
    ----------
    file_name, sha256, table : str
        The file, its sha256 and the canonical table it goes to.
    rows : int
        Rows in the file.
    years : tuple of int
        Panel years, or the start years of postings.
    inserted, replaced, unchanged : int
        Rows whose key is new; whose key exists with different content; identical rows.
    """

    file_name: str
    sha256: str
    table: str
    rows: int
    years: tuple[int, ...]
    inserted: int
    replaced: int
    unchanged: int


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


@dataclass(frozen=True)
class IngestLog:
    """What an ingest records about itself beyond the rows (see :func:`history`).

    Attributes
    ----------
    files : list of str
        Input file names.
    notes : list of str
        Conversions applied to bureau files and warnings accepted, as text.
    warnings_accepted : int
        Warnings the user accepted (``accept_warnings=True``).
    """

    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings_accepted: int = 0


_LOCAL = threading.local()


def _lock_path(store: Path) -> Path:
    return store.with_name(store.name + ".lock")


def _temp_prefix(store: Path) -> str:
    return store.name + ".ingest-"


@contextmanager
def ingest_lock(store: str | os.PathLike, timeout: float = 600.0) -> Iterator[None]:
    """Hold the exclusive ingest lock of ``store`` (re-entrant within a thread).

    The lock is an :func:`fcntl.flock` on ``<store>.lock`` (the file stays in place; the
    operating system releases the lock when the process ends, even by ``kill -9``).

    Parameters
    ----------
    store : str or path-like
        The store file.
    timeout : float, default 600
        Seconds to wait for another ingest to finish.

    Yields
    ------
    None
        While the lock is held.

    Raises
    ------
    StoreError
        If the lock is not obtained within ``timeout`` seconds.
    """
    store = Path(store).resolve()
    held: dict[Path, int] = _LOCAL.__dict__.setdefault("held", {})
    if held.get(store):
        held[store] += 1
        try:
            yield
        finally:
            held[store] -= 1
        return
    store.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_lock_path(store), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another ingest has been writing {store} for more than {timeout:g} s; "
                        "wait for it to finish and try again"
                    ) from exc
                time.sleep(0.05)
        held[store] = 1
        try:
            yield
        finally:
            held.pop(store, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _remove_leftovers(store: Path) -> list[Path]:
    """Delete temporary files of killed ingests (call only while holding the lock)."""
    removed = []
    for p in store.parent.glob(_temp_prefix(store) + "*"):
        with suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same(table: str, a: str, b: str) -> str:
    keys = set(KEYS[table])
    conds = [
        f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in schema.column_names(table) if c not in keys
    ]
    return "(" + " AND ".join(conds) + ")"


def _key_join(table: str, a: str, b: str) -> str:
    return " AND ".join(f"{a}.{k} = {b}.{k}" for k in KEYS[table])


def _incoming_sql(table: str, view: str) -> str:
    casts = ", ".join(
        f"CAST({c.name} AS {_SQL_TYPES[c.kind]}) AS {c.name}" for c in schema.columns(table)
    )
    return f"(SELECT {casts}, _src FROM {view})"


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


def _year_sql(table: str, alias: str) -> str:
    return f"{alias}.year" if table == "panel" else f"year({alias}.start_date)"


def _plan(
    con: duckdb.DuckDBPyConnection,
    table: str,
    view: str,
    frame: pd.DataFrame,
    sources: list[Source],
) -> tuple[list[FileChange], dict[int, int], list[YearChange], list[str], list[str]]:
    """Count what writing ``frame`` (registered as ``view``) changes in ``table``."""
    inc = _incoming_sql(table, view)
    old = f"o.{KEYS[table][0]}"
    same = _same(table, "n", "o")
    rows = con.execute(
        f"""SELECT n._src, {_year_sql(table, "n")} AS y,
                count(*) FILTER (WHERE {old} IS NULL),
                count(*) FILTER (WHERE {old} IS NOT NULL AND NOT {same}),
                count(*) FILTER (WHERE {old} IS NOT NULL AND {same})
            FROM {inc} n LEFT JOIN {table} o ON {_key_join(table, "n", "o")}
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
                  AND NOT EXISTS (SELECT 1 FROM {inc} n WHERE {_key_join("panel", "n", "o")})
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
    :func:`restore` can undo the ingest exactly.
    """
    if frame.empty:
        return
    inc = _incoming_sql(table, view)
    names = ", ".join(schema.column_names(table))
    keys = ", ".join(KEYS[table])
    key_join = _key_join(table, "n", "o")
    con.execute(
        f"""INSERT INTO {table}_history (ingest_id, change, {names})
            SELECT ?, 'replaced', {", ".join("o." + c for c in schema.column_names(table))}
            FROM {table} o JOIN {inc} n ON {key_join} WHERE NOT {_same(table, "n", "o")}""",
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


def _package_version() -> str:
    try:
        from analysis import __version__
    except ImportError:  # pragma: no cover
        return ""
    return __version__


def _fingerprint(con: duckdb.DuckDBPyConnection, tables: dict[str, str] | None = None) -> str:
    """Order-independent fingerprint of the canonical content (row counts and a hash sum).

    Cheap enough for every ingest (one scan in DuckDB); compared only between stores
    written by the same DuckDB version (``ingest_log.engine``). :func:`content_hash` is
    the version-independent hash.
    """
    parts = []
    for table in CANONICAL_TABLES:
        name = (tables or {}).get(table, table)
        cols = ", ".join(schema.column_names(table))
        n, h = con.execute(f"SELECT count(*), coalesce(sum(hash({cols})), 0) FROM {name}").fetchall()[0]
        parts.append(f"{table}:{int(n)}:{h}")
    return ";".join(parts)


def _engine() -> str:
    return f"duckdb {duckdb.__version__}"


def _counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    return (
        int(con.execute("SELECT count(*) FROM panel").fetchall()[0][0]),
        int(con.execute("SELECT count(*) FROM postings").fetchall()[0][0]),
    )


def _next_seq(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM ingest_log").fetchall()[0][0])


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
        _remove_leftovers(store)
        _recover_wal(store)
        tmp = store.with_name(f"{_temp_prefix(store)}{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            if store.exists():
                shutil.copyfile(store, tmp)
                shutil.copymode(store, tmp)
            result = _write_into(tmp, jobs, ingest_id, now, after_partial_write, crosswalk, log)
            _fsync(tmp)
            os.replace(tmp, store)
            _fsync(store.parent, directory=True)
        except BaseException:
            for p in (tmp, tmp.with_name(tmp.name + ".wal")):
                with suppress(FileNotFoundError):
                    p.unlink()
            raise
    return result


def _recover_wal(store: Path) -> None:
    """Fold a write-ahead log left beside the live store into it (DuckDB's own recovery).

    The write path never leaves a WAL (every copy is checkpointed before it replaces
    the store), so this only runs if someone wrote the live file directly and crashed.
    """
    wal = store.with_name(store.name + ".wal")
    if store.exists() and wal.exists():
        con = duckdb.connect(str(store))
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()


def _connect_rw(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise StoreError(f"the store is not a usable DuckDB file: {exc}") from exc


def _insert_provenance(
    con: duckdb.DuckDBPyConnection,
    ingest_id: str,
    now: datetime,
    files: list[FileChange],
    no_years: str | None = None,
) -> None:
    for seq, ch in enumerate(files):
        con.execute(
            f"INSERT INTO provenance ({', '.join(PROVENANCE_COLUMNS)}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ingest_id,
                seq,
                now,
                ch.file_name,
                ch.sha256,
                ch.table,
                ch.rows,
                ", ".join(str(y) for y in ch.years) or no_years,
                min(ch.years) if ch.years else None,
                max(ch.years) if ch.years else None,
                ch.inserted,
                ch.replaced,
                ch.unchanged,
                _package_version(),
            ],
        )


def _insert_log(
    con: duckdb.DuckDBPyConnection,
    ingest_id: str,
    kind: str,
    now: datetime,
    before: tuple[str, tuple[int, int]],
    files: Sequence[str],
    target: str | None,
    villages: tuple[int, int],
    log: IngestLog | None,
) -> None:
    after_counts = _counts(con)
    con.execute(
        """INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            ingest_id,
            _next_seq(con),
            kind,
            now,
            json.dumps(list(files), ensure_ascii=False),
            target,
            before[1][0],
            after_counts[0],
            before[1][1],
            after_counts[1],
            villages[0],
            villages[1],
            before[0],
            _fingerprint(con),
            _engine(),
            log.warnings_accepted if log else 0,
            json.dumps(log.notes if log else [], ensure_ascii=False),
        ],
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
    con = _connect_rw(tmp)
    try:
        con.execute("BEGIN TRANSACTION")
        _ensure_schema(con)
        before = (_fingerprint(con), _counts(con))
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
        _insert_provenance(con, ingest_id, now, files)
        names = log.files if log and log.files else list(dict.fromkeys(f.file_name for f in files))
        _insert_log(con, ingest_id, "ingest", now, before, names, None, (len(added), len(gone)), log)
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()
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
            _ensure_schema(con)
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


# ----------------------------------------------------------------------------- history and restore

HISTORY_COLUMNS = (
    "ingest_id",
    "seq",
    "kind",
    "ingested_at",
    "files",
    "target",
    "panel_years",
    "panel_inserted",
    "panel_replaced",
    "panel_unchanged",
    "panel_removed",
    "postings_inserted",
    "postings_replaced",
    "postings_unchanged",
    "postings_removed",
    "panel_rows_after",
    "postings_rows_after",
    "villages_added",
    "villages_removed",
    "warnings_accepted",
    "notes",
    "restorable",
    "summary",
)
"""Columns of :func:`history`."""


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _summary_text(r: dict) -> str:
    if r["kind"] == "restore":
        head = f"restored the state {r['target']}"
    else:
        head = "ingest of " + (", ".join(json.loads(r["files"])) if r["files"] else "(no file)")
    parts = []
    if r["panel_years"]:
        parts.append(f"panel {r['panel_years']}")
    changes = []
    for table in ("panel", "postings"):
        ins, rep, rem = r[f"{table}_inserted"], r[f"{table}_replaced"], r.get(f"{table}_removed", 0)
        bits = [f"+{ins:,}" if ins else "", f"~{rep:,}" if rep else "", f"-{rem:,}" if rem else ""]
        bits = [b for b in bits if b]
        if bits:
            changes.append(f"{table} rows {' '.join(bits)}")
    text = head + (": " + "; ".join(parts + changes) if parts or changes else ": no change to the data")
    if r["villages_added"] or r["villages_removed"]:
        text += f"; villages +{r['villages_added'] or 0:,} -{r['villages_removed'] or 0:,}"
    if r["warnings_accepted"]:
        text += f"; {_plural(int(r['warnings_accepted']), 'warning')} accepted"
    return text


def history(store: StoreLike) -> pd.DataFrame:
    """List the ingests (and restores) of the store, oldest first: what each changed.

    Parameters
    ----------
    store : path or duckdb connection
        The store.

    Returns
    -------
    pandas.DataFrame
        One row per ingest, columns :data:`HISTORY_COLUMNS`:

        ``ingest_id``, ``seq`` (order of the ingests), ``kind`` (``ingest``,
        ``restore``, or ``ingest (legacy)`` for ingests written before the ingest log
        existed, which cannot be undone), ``ingested_at`` (UTC), ``files`` (JSON list of
        input files), ``target`` (for a restore: ``before <id>`` / ``after <id>``),
        ``panel_years`` (years written; for a restore, the years of the restored
        panel), ``<table>_inserted`` / ``_replaced`` / ``_unchanged`` / ``_removed``
        (rows; an ingest removes panel rows of a replaced year that the new files lack,
        only a restore removes postings), ``panel_rows_after`` / ``postings_rows_after``,
        ``villages_added`` / ``villages_removed`` (villages the panel gained or lost),
        ``warnings_accepted``, ``notes`` (JSON list: conversions applied to bureau files,
        warnings accepted), ``restorable`` (whether :func:`restore` can bring back the
        state before this ingest) and ``summary`` (one line of text).

    Examples
    --------
    >>> history("data/study.duckdb")[["ingest_id", "summary"]]  # doctest: +SKIP
    """
    with _reading(store) as con:
        if not has_table(con, "provenance"):
            return pd.DataFrame({c: pd.Series([], dtype="object") for c in HISTORY_COLUMNS})
        prov = con.execute(
            """SELECT ingest_id, min(ingested_at) AS ingested_at, string_agg(file_name, ', ' ORDER BY file_seq) AS fn,
                      string_agg(DISTINCT CASE WHEN table_name = 'panel' THEN years END, ', ') AS panel_years,
                      sum(inserted) FILTER (WHERE table_name = 'panel') AS panel_inserted,
                      sum(replaced) FILTER (WHERE table_name = 'panel') AS panel_replaced,
                      sum(unchanged) FILTER (WHERE table_name = 'panel') AS panel_unchanged,
                      sum(inserted) FILTER (WHERE table_name = 'postings') AS postings_inserted,
                      sum(replaced) FILTER (WHERE table_name = 'postings') AS postings_replaced,
                      sum(unchanged) FILTER (WHERE table_name = 'postings') AS postings_unchanged
               FROM provenance GROUP BY ingest_id"""
        ).fetchdf()
        removed = con.execute(
            "SELECT ingest_id, count(*) AS panel_removed FROM panel_history WHERE change = 'removed' "
            "GROUP BY ingest_id"
        ).fetchdf()
        removed_post = con.execute(
            "SELECT ingest_id, count(*) AS postings_removed FROM postings_history WHERE change = 'removed' "
            "GROUP BY ingest_id"
        ).fetchdf()
        log = (
            con.execute("SELECT * FROM ingest_log").fetchdf()
            if has_table(con, "ingest_log")
            else pd.DataFrame(columns=["ingest_id", "seq"])
        )
    df = prov.merge(removed, on="ingest_id", how="left").merge(removed_post, on="ingest_id", how="left")
    df = df.merge(log, on="ingest_id", how="left", suffixes=("", "_log"))
    legacy = df["seq"].isna()
    df["kind"] = df["kind"].where(~legacy, "ingest (legacy)")
    df["files"] = df["files"].where(
        ~legacy, df["fn"].map(lambda s: json.dumps(s.split(", ") if s else [], ensure_ascii=False))
    )
    df = df.sort_values(["seq", "ingested_at", "ingest_id"], na_position="first", kind="mergesort")
    df = df.reset_index(drop=True)
    df["seq"] = np.arange(1, len(df) + 1)
    for c in ("panel_inserted", "panel_replaced", "panel_unchanged", "panel_removed", "postings_inserted",
              "postings_replaced", "postings_unchanged", "postings_removed", "villages_added", "villages_removed",
              "warnings_accepted"):
        df[c] = pd.to_numeric(df[c], errors="coerce").fillna(0).astype("int64")
    for c in ("panel_rows_after", "postings_rows_after"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    df["notes"] = df["notes"].fillna("[]")
    df["panel_years"] = df["panel_years"].fillna("")
    # An ingest can be undone if it and every later one recorded their inserted keys.
    logged = df["kind"].ne("ingest (legacy)").to_numpy()
    df["restorable"] = np.flip(np.logical_and.accumulate(np.flip(logged))) if len(df) else logged
    df["summary"] = [_summary_text(r) for r in df.to_dict("records")]
    return df[list(HISTORY_COLUMNS)]


def history_text(store: StoreLike) -> str:
    """Return :func:`history` as lines of text, oldest first (what ``study history`` prints).

    Parameters
    ----------
    store : path or duckdb connection
        The store.

    Returns
    -------
    str
        One line per ingest: number, id, time (UTC), kind and summary, and a note on
        how to restore.
    """
    h = history(store)
    if h.empty:
        return "No ingest yet."
    lines = []
    for r in h.itertuples():
        when = pd.Timestamp(r.ingested_at).strftime("%Y-%m-%d %H:%M:%S")
        mark = "" if r.restorable else "  (cannot be undone: written before the ingest log)"
        lines.append(f"{r.seq:>3}  {r.ingest_id}  {when} UTC  {r.summary}{mark}")
    lines.append(
        "To bring back the state before (or after) an ingest: restore(store, <ingest id>, when='before'|'after') "
        "(study restore ID [--after]); a restore is recorded here too and can itself be undone."
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class RestoreResult:
    """Outcome of :func:`restore`.

    Attributes
    ----------
    store : pathlib.Path
        The store.
    ingest_id : str
        Identifier of the restore in the ingest log (not stored in a dry run).
    target : str
        ``before <id>`` or ``after <id>``.
    undone : list of str
        The ingests whose changes were taken back, newest first.
    by_table : dict of str to tuple of int
        Per table: rows inserted, replaced and removed by the restore.
    written : bool
        False for a dry run or when the store already was in the target state.
    """

    store: Path
    ingest_id: str
    target: str
    undone: list[str]
    by_table: dict[str, tuple[int, int, int]]
    written: bool

    def __str__(self) -> str:
        if not self.undone:
            return f"{self.store} is already in the state {self.target}: nothing to do."
        lines = [
            f"{'Restored' if self.written else 'Dry run: nothing was written. Would restore'} {self.store} to the "
            f"state {self.target}, taking back {_plural(len(self.undone), 'ingest')} "
            f"({', '.join(self.undone)})."
        ]
        for table, (ins, rep, rem) in self.by_table.items():
            lines.append(f"  {table}: {ins:,} rows inserted, {rep:,} replaced, {rem:,} removed")
        if self.written:
            lines.append(
                f"The restore is itself recorded as ingest {self.ingest_id}: restore(store, {self.ingest_id!r}) "
                "takes it back."
            )
        return "\n".join(lines)


def _working_copy(con: duckdb.DuckDBPyConnection, table: str) -> str:
    name = f"restore_{table}"
    cols = ", ".join(_column_ddl(table))
    con.execute(f"CREATE TEMP TABLE {name} ({cols}, PRIMARY KEY ({', '.join(KEYS[table])}))")
    con.execute(f"INSERT INTO {name} SELECT {', '.join(schema.column_names(table))} FROM {table}")
    return name


def _undo(con: duckdb.DuckDBPyConnection, work: dict[str, str], ingest_id: str) -> None:
    for table, name in work.items():
        keys = KEYS[table]
        cond = " AND ".join(f"{name}.{k} = h.{k}" for k in keys)
        con.execute(
            f"DELETE FROM {name} USING {table}_history h "
            f"WHERE h.ingest_id = ? AND h.change = 'inserted' AND {cond}",
            [ingest_id],
        )
        cols = ", ".join(schema.column_names(table))
        con.execute(
            f"INSERT OR REPLACE INTO {name} SELECT {cols} FROM {table}_history "
            "WHERE ingest_id = ? AND change IN ('replaced', 'removed')",
            [ingest_id],
        )


def _replace_content(
    con: duckdb.DuckDBPyConnection, work: dict[str, str], restore_id: str
) -> dict[str, tuple[int, int, int]]:
    """Make the live tables equal to the working copies, recording history like an ingest."""
    out = {}
    for table, name in work.items():
        names = schema.column_names(table)
        cols = ", ".join(names)
        keys = ", ".join(KEYS[table])
        join = _key_join(table, "n", "o")
        same = _same(table, "n", "o")
        ins, rep, rem = con.execute(
            f"""SELECT
                  (SELECT count(*) FROM {name} n WHERE NOT EXISTS (SELECT 1 FROM {table} o WHERE {join})),
                  (SELECT count(*) FROM {name} n JOIN {table} o ON {join} WHERE NOT {same}),
                  (SELECT count(*) FROM {table} o WHERE NOT EXISTS (SELECT 1 FROM {name} n WHERE {join}))"""
        ).fetchall()[0]
        o_cols = ", ".join("o." + c for c in names)
        con.execute(
            f"""INSERT INTO {table}_history (ingest_id, change, {cols})
                SELECT ?, 'replaced', {o_cols} FROM {table} o JOIN {name} n ON {join} WHERE NOT {same}""",
            [restore_id],
        )
        con.execute(
            f"""INSERT INTO {table}_history (ingest_id, change, {cols})
                SELECT ?, 'removed', {o_cols} FROM {table} o
                WHERE NOT EXISTS (SELECT 1 FROM {name} n WHERE {join})""",
            [restore_id],
        )
        con.execute(
            f"""INSERT INTO {table}_history (ingest_id, change, {keys})
                SELECT ?, 'inserted', {", ".join("n." + k for k in KEYS[table])} FROM {name} n
                WHERE NOT EXISTS (SELECT 1 FROM {table} o WHERE {join})""",
            [restore_id],
        )
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {name}")
        out[table] = (int(ins), int(rep), int(rem))
    return out


def restore(
    store: str | os.PathLike,
    ingest_id: str,
    when: str = "before",
    dry_run: bool = False,
    lock_timeout: float = 600.0,
) -> RestoreResult:
    """Bring the panel and postings back to their state just before or just after an ingest.

    ``when="before"`` gives the content the store had right before ``ingest_id`` was
    written (as if it and every later ingest had never happened); ``when="after"``
    gives the content right after it (as if no later ingest had happened). The state
    is rebuilt from the history tables by taking back, newest first, the ingests
    concerned (re-inserting the rows they replaced or removed, deleting the rows they
    inserted), checked against the fingerprint the ingest log recorded for that state,
    and written atomically like an ingest (temporary copy, one transaction,
    :func:`os.replace`). Nothing is deleted from the history: the restore is itself
    recorded as an ingest (kind ``restore``) with the rows it replaced, so it can be
    taken back in turn (``restore(store, <restore id>)``). Provenance, the ingest log
    and the village crosswalk are kept as they are.

    Parameters
    ----------
    store : str or path-like
        The store.
    ingest_id : str
        An ingest of :func:`history` (a unique prefix is enough).
    when : {"before", "after"}, default "before"
        Which state to bring back.
    dry_run : bool, default False
        Rebuild and check the state in a temporary copy and report, but keep the store.
    lock_timeout : float, default 600
        Seconds to wait for a concurrent ingest.

    Returns
    -------
    RestoreResult
        What was (or would be) taken back.

    Raises
    ------
    StoreError
        If the ingest is unknown or ambiguous, the store does not exist, an ingest to
        take back was written before the ingest log existed (its inserted rows are not
        recorded), or the rebuilt state does not match the recorded fingerprint (then
        nothing is changed).

    Examples
    --------
    >>> restore("data/study.duckdb", "20250301T101500Z-1a2b3c4d", when="before")  # doctest: +SKIP
    """
    store = Path(store)
    if when not in ("before", "after"):
        raise StoreError(f"when must be 'before' or 'after', got {when!r}")
    if not store.exists():
        raise StoreError(f"no store at {store}")
    with ingest_lock(store, timeout=lock_timeout):
        hist = history(store)
        match = hist[hist["ingest_id"].str.startswith(str(ingest_id))]
        if len(match) != 1:
            known = ", ".join(hist["ingest_id"].tail(5))
            why = "is not an ingest of this store" if match.empty else "matches several ingests"
            raise StoreError(f"{ingest_id!r} {why}; the latest ingests are: {known} (see history())")
        pos = int(match.index[0])
        full_id = str(match.iloc[0]["ingest_id"])
        target = f"{when} {full_id}"
        first_undone = pos if when == "before" else pos + 1
        undo = hist.iloc[first_undone:]
        if undo.empty:
            return RestoreResult(store, "", target, [], {}, False)
        if not bool(undo.iloc[0]["restorable"]):
            legacy = undo.loc[~undo["kind"].ne("ingest (legacy)"), "ingest_id"].tolist()
            raise StoreError(
                f"cannot restore the state {target}: the ingests {', '.join(legacy)} were written before the "
                "store recorded inserted rows, so they cannot be taken back"
            )
        with _reading(store) as con:
            log = con.execute(
                "SELECT ingest_id, fingerprint_before, engine FROM ingest_log WHERE ingest_id = ?",
                [str(undo.iloc[0]["ingest_id"])],
            ).fetchall()
        expected = log[0][1] if log and log[0][2] == _engine() else None
        now = datetime.now(UTC).replace(tzinfo=None)
        restore_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        _remove_leftovers(store)
        _recover_wal(store)
        tmp = store.with_name(f"{_temp_prefix(store)}{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            shutil.copyfile(store, tmp)
            shutil.copymode(store, tmp)
            con = _connect_rw(tmp)
            try:
                con.execute("BEGIN TRANSACTION")
                _ensure_schema(con)
                before = (_fingerprint(con), _counts(con))
                work = {t: _working_copy(con, t) for t in CANONICAL_TABLES}
                villages_now = {r[0] for r in con.execute("SELECT DISTINCT village_code FROM panel").fetchall()}
                for iid in reversed(undo["ingest_id"].tolist()):
                    _undo(con, work, iid)
                got = _fingerprint(con, work)
                if expected is not None and got != expected:
                    raise StoreError(
                        f"the rebuilt state {target} does not match the fingerprint recorded by the ingest log "
                        f"({got} != {expected}); the store was not changed"
                    )
                by_table = _replace_content(con, work, restore_id)
                files = []
                for t, (ins, rep, _rem) in by_table.items():
                    n, years = con.execute(
                        f"SELECT count(*), list(DISTINCT {_year_sql(t, 'x')} ORDER BY {_year_sql(t, 'x')}) "
                        f"FROM {t} x"
                    ).fetchall()[0]
                    # sha256 column: the restored content's fingerprint (no file was read).
                    files.append(
                        FileChange(f"(restore {target})", f"restore:{got}", t, int(n),
                                   tuple(int(y) for y in (years or []) if y is not None), ins, rep, 0)
                    )
                # A restore to an empty table records years as "" (not NULL): readers split the text.
                _insert_provenance(con, restore_id, now, files, no_years="")
                villages_then = {r[0] for r in con.execute("SELECT DISTINCT village_code FROM panel").fetchall()}
                changed = (len(villages_then - villages_now), len(villages_now - villages_then))
                _insert_log(con, restore_id, "restore", now, before, [], target, changed, None)
                con.execute("COMMIT")
                con.execute("CHECKPOINT")
            except BaseException:
                with suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
            finally:
                con.close()
            if dry_run:
                tmp.unlink()
            else:
                _fsync(tmp)
                os.replace(tmp, store)
                _fsync(store.parent, directory=True)
        except BaseException:
            for p in (tmp, tmp.with_name(tmp.name + ".wal")):
                with suppress(FileNotFoundError):
                    p.unlink()
            raise
    undone = list(reversed(undo["ingest_id"].tolist()))
    return RestoreResult(store, restore_id if not dry_run else "", target, undone, by_table, not dry_run)
