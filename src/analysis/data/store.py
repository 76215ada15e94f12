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
    The old version of every row that an ingest replaced with different content or
    removed, tagged with the ingest id, so no value is ever lost silently.
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
KEYS = {"panel": schema.PANEL_KEY, "postings": schema.POSTINGS_KEY}

_SQL_TYPES = {
    "code": "VARCHAR",
    "str": "VARCHAR",
    "category": "VARCHAR",
    "int": "BIGINT",
    "binary": "TINYINT",
    "float": "DOUBLE",
    "date": "DATE",
}
_DATE_DTYPE = "datetime64[us]"

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


# ----------------------------------------------------------------------------- dtypes


def canonical_dtypes(table: str) -> dict[str, str]:
    """Return the pandas dtype of every canonical column of ``table``.

    Codes, strings and categories are pandas strings (``"str"``), integers and binary
    flags ``int64`` (``Int64`` if the column may be empty), measures ``float64`` and
    dates ``datetime64[us]``.

    Parameters
    ----------
    table : {"panel", "postings"}
        Which canonical table.

    Returns
    -------
    dict of str to str
        Column name to dtype, in canonical column order.
    """
    out = {}
    for c in schema.columns(table):
        if c.kind in ("code", "str", "category"):
            out[c.name] = "str"
        elif c.kind in ("int", "binary"):
            out[c.name] = "Int64" if c.nullable else "int64"
        elif c.kind == "float":
            out[c.name] = "float64"
        elif c.kind == "date":
            out[c.name] = _DATE_DTYPE
        else:  # pragma: no cover - guarded by the schema
            raise ValueError(f"unknown column kind {c.kind!r} of {table}.{c.name}")
    return out


def to_canonical(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Return a new frame with exactly the canonical columns, order and dtypes.

    The input is not modified. Optional columns that are absent are added empty.

    Parameters
    ----------
    df : pandas.DataFrame
        A frame with the canonical columns of ``table``.
    table : {"panel", "postings"}
        Which canonical table.

    Returns
    -------
    pandas.DataFrame
        A copy with a fresh ``RangeIndex``.

    Raises
    ------
    ValueError
        If a required column is missing, an unknown column is present, or a column
        cannot be converted (for example an empty value in a non-nullable integer).
    """
    specs = schema.columns(table)
    names = [c.name for c in specs]
    missing = [c.name for c in specs if c.required and c.name not in df.columns]
    extra = [str(c) for c in df.columns if c not in names]
    if missing or extra:
        raise ValueError(
            f"{table} frame does not have the canonical columns: missing {missing}, unknown {extra}"
        )
    dtypes = canonical_dtypes(table)
    out = {}
    n = len(df)
    for c in specs:
        if c.name not in df.columns:
            col = pd.Series([None] * n, dtype="object")
        else:
            col = df[c.name].reset_index(drop=True)
        try:
            if c.kind == "date":
                col = pd.to_datetime(col).astype(_DATE_DTYPE)
            elif dtypes[c.name] == "str":
                col = col.astype("str")
            else:
                col = col.astype(dtypes[c.name])
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{table}.{c.name} cannot be converted to {dtypes[c.name]}: {exc}"
            ) from exc
        out[c.name] = col
    return pd.DataFrame(out, columns=names)


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


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
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
    if not _has_table(con, table):
        return to_canonical(pd.DataFrame({n: pd.Series([], dtype="object") for n in names}), table)
    order = ", ".join(KEYS[table])
    sql = f"SELECT {', '.join(names)} FROM {table} {where} ORDER BY {order}"
    return to_canonical(con.execute(sql, params or []).fetchdf(), table)


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
        if not _has_table(con, "provenance"):
            return pd.DataFrame({c: pd.Series([], dtype="object") for c in PROVENANCE_COLUMNS})
        return con.execute(
            f"SELECT {', '.join(PROVENANCE_COLUMNS)} FROM provenance "
            "ORDER BY ingested_at, ingest_id, file_seq"
        ).fetchdf()


def read_history(store: StoreLike, table: str) -> pd.DataFrame:
    """Read the old versions of rows that ingests replaced or removed.

    Parameters
    ----------
    store : path or duckdb connection
        The store.
    table : {"panel", "postings"}
        Which table's history.

    Returns
    -------
    pandas.DataFrame
        ``ingest_id``, ``change`` (``"replaced"`` or ``"removed"``) and the canonical
        columns of the old row.
    """
    schema.columns(table)
    with _reading(store) as con:
        if not _has_table(con, f"{table}_history"):
            return pd.DataFrame(columns=["ingest_id", "change", *schema.column_names(table)])
        return con.execute(
            f"SELECT * FROM {table}_history ORDER BY ingest_id, {', '.join(KEYS[table])}"
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
            if not _has_table(con, table):
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
        if not _has_table(con, "panel"):
            return set()
        if ys:
            rows = con.execute(
                "SELECT DISTINCT village_code FROM panel WHERE NOT list_contains(?, year)", [ys]
            ).fetchall()
        else:
            rows = con.execute("SELECT DISTINCT village_code FROM panel").fetchall()
    return {r[0] for r in rows}


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
        if _has_table(con, "panel"):
            out["panel_rows"] = con.execute("SELECT count(*) FROM panel").fetchone()[0]
            out["villages"] = con.execute(
                "SELECT count(DISTINCT village_code) FROM panel"
            ).fetchone()[0]
            out["panel_years"] = [
                r[0]
                for r in con.execute("SELECT DISTINCT year FROM panel ORDER BY year").fetchall()
            ]
        if _has_table(con, "postings"):
            out["postings_rows"] = con.execute("SELECT count(*) FROM postings").fetchone()[0]
        if _has_table(con, "provenance"):
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
    """

    ingest_id: str
    files: list[FileChange] = field(default_factory=list)
    removed: dict[int, int] = field(default_factory=dict)
    written: bool = True


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
    canon = to_canonical(frame, table)
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
) -> tuple[list[FileChange], dict[int, int]]:
    """Count what writing ``frame`` (registered as ``view``) changes in ``table``."""
    inc = _incoming_sql(table, view)
    old = f"o.{KEYS[table][0]}"
    same = _same(table, "n", "o")
    rows = con.execute(
        f"""SELECT n._src,
                count(*) FILTER (WHERE {old} IS NULL),
                count(*) FILTER (WHERE {old} IS NOT NULL AND NOT {same}),
                count(*) FILTER (WHERE {old} IS NOT NULL AND {same})
            FROM {inc} n LEFT JOIN {table} o ON {_key_join(table, "n", "o")}
            GROUP BY n._src"""
    ).fetchall()
    counts = {int(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}
    changes = []
    for i, s in enumerate(sources):
        ins, rep, unch = counts.get(i, (0, 0, 0))
        part = frame[frame["_src"] == i]
        changes.append(
            FileChange(s.file_name, s.sha256, table, s.rows, _years_of(table, part), ins, rep, unch)
        )
    removed: dict[int, int] = {}
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
    return changes, removed


def _apply(
    con: duckdb.DuckDBPyConnection, table: str, view: str, frame: pd.DataFrame, ingest_id: str
) -> None:
    """Write ``frame`` into ``table`` inside the open transaction, keeping history."""
    if frame.empty:
        return
    inc = _incoming_sql(table, view)
    names = ", ".join(schema.column_names(table))
    key_join = _key_join(table, "n", "o")
    con.execute(
        f"""INSERT INTO {table}_history (ingest_id, change, {names})
            SELECT ?, 'replaced', {", ".join("o." + c for c in schema.column_names(table))}
            FROM {table} o JOIN {inc} n ON {key_join} WHERE NOT {_same(table, "n", "o")}""",
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
) -> WriteResult:
    """Write panel and/or postings rows into the store in one atomic transaction.

    The panel is written with replace-the-year semantics, the postings are upserted by
    ``secretary_id`` (see the module docstring); one provenance row is recorded per
    source. The frames are not modified.

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

    Returns
    -------
    WriteResult
        Counts per file and rows removed per replaced year.

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
            result = _write_into(tmp, jobs, ingest_id, now, after_partial_write)
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


def _write_into(
    tmp: Path,
    jobs: list[tuple[str, pd.DataFrame, list[Source]]],
    ingest_id: str,
    now: datetime,
    after_partial_write: Callable[[], None] | None,
) -> WriteResult:
    con = _connect_rw(tmp)
    try:
        con.execute("BEGIN TRANSACTION")
        _ensure_schema(con)
        files: list[FileChange] = []
        removed: dict[int, int] = {}
        for i, (table, frame, sources) in enumerate(jobs):
            view = f"incoming_{table}"
            con.register(view, frame)
            changes, rem = _plan(con, table, view, frame, sources)
            files.extend(changes)
            removed.update(rem)
            _apply(con, table, view, frame, ingest_id)
            con.unregister(view)
            if i == 0 and after_partial_write is not None:
                after_partial_write()
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
                    ", ".join(str(y) for y in ch.years) or None,
                    min(ch.years) if ch.years else None,
                    max(ch.years) if ch.years else None,
                    ch.inserted,
                    ch.replaced,
                    ch.unchanged,
                    _package_version(),
                ],
            )
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return WriteResult(ingest_id, files, removed, written=True)


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
        for table, frame, sources in jobs:
            view = f"incoming_{table}"
            con.register(view, frame)
            if _has_table(con, table):
                changes, rem = _plan(con, table, view, frame, sources)
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
                rem = {}
            files.extend(changes)
            removed.update(rem)
            con.unregister(view)
    finally:
        con.close()
    return WriteResult(ingest_id, files, removed, written=False)


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
