"""The store's tables: their SQL layout, created on first write, and the errors of a store that does not fit.

``panel`` and ``postings`` follow :mod:`analysis.data.schema` (SQL types by kind, ``NOT
NULL`` where a value is required, the canonical key as primary key), each with a
``<table>_history`` table; ``provenance``, ``ingest_log``, ``village_crosswalk`` and
``store_meta`` are described in :mod:`analysis.data.store`. A store remembers the
fingerprint of the schema it was built for and refuses to be written with another one.
The SQL fragments that compare incoming rows with stored rows are here too.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import duckdb

from analysis.data import schema

StoreLike = str | os.PathLike | duckdb.DuckDBPyConnection
"""A store given as a path (opened read-only and closed again) or an open connection."""


CANONICAL_TABLES = ("panel", "postings")
"""The tables an ingest writes."""


KEYS = schema.KEYS
"""Primary key of each canonical table."""


SQL_TYPES = {
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
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE table_name = ? AND database_name = current_database()",
        [name],
    ).fetchall()  # all: no result left pending on the caller's connection
    return bool(rows and rows[0][0])


def column_ddl(table: str) -> list[str]:
    """Return the SQL column definitions of a canonical table (type, ``NOT NULL``).

    Parameters
    ----------
    table : {"panel", "postings"}
        Which table.

    Returns
    -------
    list of str
        One definition per canonical column, in order.
    """
    return [
        f"{c.name} {SQL_TYPES[c.kind]}{'' if c.nullable else ' NOT NULL'}"
        for c in schema.columns(table)
    ]


LEGACY_NOT_NULL: dict[str, tuple[str, ...]] = {
    "panel": tuple(c.name for c in schema.PANEL_COLUMNS if c.nullable),
}
"""Columns that stores written before the covariates and other outcomes became optional (issue 9) declare
``NOT NULL``. Such a store is upgraded on its next write: the constraints are dropped (nothing else changes)."""


def schema_fingerprint(not_null: dict[str, tuple[str, ...]] | None = None) -> str:
    """Return the fingerprint of the table layout that a store records in ``store_meta``.

    Parameters
    ----------
    not_null : dict of str to tuple of str, optional
        Columns to take as ``NOT NULL`` although the schema lets them be empty (the
        layout of older stores, :data:`LEGACY_NOT_NULL`).

    Returns
    -------
    str
        16 hexadecimal digits over every canonical column's name, SQL type and nullability.
    """
    forced = not_null or {}
    parts = [
        f"{t}:{c.name}:{SQL_TYPES[c.kind]}:{c.nullable and c.name not in forced.get(t, ())}"
        for t in CANONICAL_TABLES
        for c in schema.columns(t)
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _upgrade(con: duckdb.DuckDBPyConnection, fingerprint: str) -> None:
    """Drop the ``NOT NULL`` constraints of :data:`LEGACY_NOT_NULL` and record the current fingerprint."""
    for table, names in LEGACY_NOT_NULL.items():
        for name in names:
            con.execute(f"ALTER TABLE {table} ALTER COLUMN {name} DROP NOT NULL")
    con.execute("UPDATE store_meta SET value = ? WHERE key = 'schema'", [fingerprint])


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables; upgrade a store of the layout before issue 9; refuse any other layout.

    A store whose panel declares the covariates and the other outcomes ``NOT NULL`` (written
    before they became optional, :data:`LEGACY_NOT_NULL`) has those constraints dropped,
    inside the caller's transaction.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A read-write connection, inside the caller's transaction.

    Raises
    ------
    StoreError
        If the store's schema fingerprint differs from :mod:`analysis.data.schema`'s.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)"
    )
    row = con.execute("SELECT value FROM store_meta WHERE key = 'schema'").fetchone()
    fingerprint = schema_fingerprint()
    if row is not None and row[0] == schema_fingerprint(LEGACY_NOT_NULL) and row[0] != fingerprint:
        _upgrade(con, fingerprint)
        row = (fingerprint,)
    if row is not None and row[0] != fingerprint:
        raise StoreError(
            "the store was built for a different table layout than analysis.data.schema "
            f"(fingerprint {row[0]}, expected {fingerprint}); rebuild it from the source files "
            "into a new store"
        )
    for table in CANONICAL_TABLES:
        key = ", ".join(KEYS[table])
        cols = ", ".join(column_ddl(table))
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols}, PRIMARY KEY ({key}))")
        hist = ", ".join(f"{c.name} {SQL_TYPES[c.kind]}" for c in schema.columns(table))
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


def same_row_sql(table: str, a: str, b: str) -> str:
    """Return SQL that is true when rows ``a`` and ``b`` have the same non-key values.

    Parameters
    ----------
    table : {"panel", "postings"}
        Which table.
    a, b : str
        Table aliases.

    Returns
    -------
    str
        A parenthesised condition (``IS NOT DISTINCT FROM`` every non-key column).
    """
    keys = set(KEYS[table])
    conds = [
        f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in schema.column_names(table) if c not in keys
    ]
    return "(" + " AND ".join(conds) + ")"


def key_join_sql(table: str, a: str, b: str) -> str:
    """Return SQL joining rows ``a`` and ``b`` on the table's key.

    Parameters
    ----------
    table : {"panel", "postings"}
        Which table.
    a, b : str
        Table aliases.

    Returns
    -------
    str
        The join condition.
    """
    return " AND ".join(f"{a}.{k} = {b}.{k}" for k in KEYS[table])


def incoming_sql(table: str, view: str) -> str:
    """Return SQL selecting a registered frame cast to the table's column types (and its ``_src``).

    Parameters
    ----------
    table : {"panel", "postings"}
        Which table.
    view : str
        The registered frame.

    Returns
    -------
    str
        A parenthesised sub-query.
    """
    casts = ", ".join(
        f"CAST({c.name} AS {SQL_TYPES[c.kind]}) AS {c.name}" for c in schema.columns(table)
    )
    return f"(SELECT {casts}, _src FROM {view})"


def year_sql(table: str, alias: str) -> str:
    """Return the SQL year of a row: the panel year, or the start year of a posting.

    Parameters
    ----------
    table : {"panel", "postings"}
        Which table.
    alias : str
        Table alias.

    Returns
    -------
    str
        An SQL expression.
    """
    return f"{alias}.year" if table == "panel" else f"year({alias}.start_date)"
