"""Reading the store: canonical tables, provenance, history, content hashes, summaries.

Readers open the store read-only through :func:`open_store`, which attaches the file to a
fresh in-memory DuckDB instance, so every call sees the current file even in a process
that still holds an older connection. Every function takes a path (opened and closed
again) or an open connection.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypedDict

import duckdb
import pandas as pd
import pyarrow as pa

from analysis.data import schema
from analysis.data.store.layout import CANONICAL_TABLES, KEYS, PROVENANCE_COLUMNS, StoreError, StoreLike, has_table


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
        ``postings`` (that bypasses the atomic write path of :func:`analysis.data.store.write.write_tables`).

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
def reading(store: StoreLike) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a read-only connection to ``store`` (a given connection is used as it is).

    Parameters
    ----------
    store : path or duckdb connection
        A path is opened read-only and closed again afterwards.

    Yields
    ------
    duckdb.DuckDBPyConnection
        The connection.
    """
    if isinstance(store, duckdb.DuckDBPyConnection):
        yield store
        return
    con = open_store(store, read_only=True)
    try:
        yield con
    finally:
        con.close()


def _select_arrow(
    con: duckdb.DuckDBPyConnection, table: str, where: str = "", params: Sequence | None = None
) -> pa.Table | None:
    # Rows come out through Arrow rather than ``fetchdf``: DuckDB's pandas conversion holds
    # about five times the frame's size at its peak (1.0 GB for the 0.2 GB frame of a 1M-row
    # panel), the Arrow table about twice (bench/bench_read_panel.py). Same values.
    if not has_table(con, table):
        return None
    names = schema.column_names(table)
    order = ", ".join(KEYS[table])
    sql = f"SELECT {', '.join(names)} FROM {table} {where} ORDER BY {order}"
    return con.sql(sql, params=params or None).to_arrow_table()


def _to_canonical(rows: pa.Table | None, table: str) -> pd.DataFrame:
    if rows is None:
        names = schema.column_names(table)
        return schema.to_canonical(pd.DataFrame({n: pd.Series([], dtype="object") for n in names}), table)
    frame = rows.to_pandas()
    del rows
    # Arrow keeps freed blocks in its pool; give them back (0.6 GB at 5M rows).
    pa.default_memory_pool().release_unused()
    return schema.to_canonical(frame, table)


def _select_canonical(
    con: duckdb.DuckDBPyConnection, table: str, where: str = "", params: Sequence | None = None
) -> pd.DataFrame:
    return _to_canonical(_select_arrow(con, table, where, params), table)


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
        Canonical columns and dtypes (:func:`analysis.data.schema.canonical_dtypes`), sorted by
        (``village_code``, ``year``).
    """
    # The connection is closed before the rows become a pandas frame, so DuckDB's buffers
    # are released before the frame is built (0.2 GB less at the peak for 1M rows).
    with reading(store) as con:
        if years is None:
            rows = _select_arrow(con, "panel")
        else:
            ys = sorted({int(y) for y in years})
            if not ys:
                rows = _select_arrow(con, "panel", "WHERE false")
            else:
                rows = _select_arrow(con, "panel", "WHERE year IN (SELECT unnest(?))", [ys])
    return _to_canonical(rows, "panel")


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
    with reading(store) as con:
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
    with reading(store) as con:
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
        rows each ingest inserted, which :func:`analysis.data.store.timeline.restore` uses to undo an ingest.

    Returns
    -------
    pandas.DataFrame
        ``ingest_id``, ``change`` (``"replaced"`` or ``"removed"``, and ``"inserted"``
        if asked) and the canonical columns of the old row.
    """
    schema.columns(table)
    with reading(store) as con:
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
    with reading(store) as con:
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
    with reading(store) as con:
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
    with reading(store) as con:
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
    with reading(store) as con:
        return con.execute(f"SELECT village_code, {', '.join(columns)} FROM panel WHERE year = ?", [year]).fetchdf()


def latest_panel_values(
    store: StoreLike, codes: Sequence[str], columns: Sequence[str], before: int | None = None
) -> pd.DataFrame:
    """Return the latest stored year of some villages that has values in some columns.

    Parameters
    ----------
    store : path or duckdb connection
        The store.
    codes : sequence of str
        Village codes.
    columns : sequence of str
        Canonical panel columns; only years in which all of them hold a value count.
    before : int, optional
        Only years before this one (what a file of that year may carry forward).

    Returns
    -------
    pandas.DataFrame
        ``village_code``, ``year`` and ``columns``, one row per village the store has such
        a year of; an empty frame without columns if the store has no panel.
    """
    with reading(store) as con:
        if not has_table(con, "panel"):
            return pd.DataFrame()
        present = " AND ".join(f"{c} IS NOT NULL" for c in columns) or "true"
        return con.execute(
            f"""SELECT village_code, year, {", ".join(columns)} FROM panel
                WHERE list_contains(?, village_code) AND year < ? AND {present}
                QUALIFY row_number() OVER (PARTITION BY village_code ORDER BY year DESC) = 1""",
            [list(codes), before if before is not None else 1 << 62],
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
    with reading(store) as con:
        if not has_table(con, "village_crosswalk"):
            return None
        return con.execute(
            "SELECT old_code, new_code, year_effective, change_type, weight, file_name FROM village_crosswalk"
        ).fetchdf()


class StoreSummary(TypedDict):
    """Row counts and years of the canonical tables (:func:`summary`)."""

    panel_rows: int
    panel_years: list[int]
    """The panel's years, sorted."""
    villages: int
    postings_rows: int
    ingests: int
    """Distinct ingests in the provenance."""


def summary(store: StoreLike) -> StoreSummary:
    """Return row counts and years of the canonical tables.

    Parameters
    ----------
    store : path or duckdb connection
        The store.

    Returns
    -------
    StoreSummary
        ``panel_rows``, ``panel_years`` (sorted list), ``villages``, ``postings_rows``
        and ``ingests`` (number of distinct ingests in the provenance).
    """
    with reading(store) as con:
        out: StoreSummary = {
            "panel_rows": 0,
            "panel_years": [],
            "villages": 0,
            "postings_rows": 0,
            "ingests": 0,
        }
        if has_table(con, "panel"):
            out["panel_rows"] = _count(con, "SELECT count(*) FROM panel")
            out["villages"] = _count(con, "SELECT count(DISTINCT village_code) FROM panel")
            out["panel_years"] = [
                int(r[0])
                for r in con.execute("SELECT DISTINCT year FROM panel ORDER BY year").fetchall()
            ]
        if has_table(con, "postings"):
            out["postings_rows"] = _count(con, "SELECT count(*) FROM postings")
        if has_table(con, "provenance"):
            out["ingests"] = _count(con, "SELECT count(DISTINCT ingest_id) FROM provenance")
    return out


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row is not None else 0
