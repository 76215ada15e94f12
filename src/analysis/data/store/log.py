"""What the store records about every write: provenance, the ingest log and content fingerprints.

``provenance`` has one row per file written (ingest id, time, file name, sha256, table,
rows, years, inserted/replaced/unchanged); ``ingest_log`` one row per ingest or restore
(input files, rows before and after, villages added and removed, a fingerprint of the
content before and after, warnings accepted, conversions applied). :func:`fingerprint` is
cheap enough for every write; :func:`analysis.data.store.read.content_hash` is the
version-independent hash of the content.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from analysis.data import schema
from analysis.data.store.layout import CANONICAL_TABLES, PROVENANCE_COLUMNS


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
class IngestLog:
    """What an ingest records about itself beyond the rows (see :func:`analysis.data.store.timeline.history`).

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


def _package_version() -> str:
    try:
        from analysis import __version__
    except ImportError:  # pragma: no cover
        return ""
    return __version__


def fingerprint(con: duckdb.DuckDBPyConnection, tables: dict[str, str] | None = None) -> str:
    """Order-independent fingerprint of the canonical content (row counts and a hash sum).

    Cheap enough for every ingest (one scan in DuckDB); compared only between stores
    written by the same DuckDB version (``ingest_log.engine``). :func:`analysis.data.store.read.content_hash` is
    the version-independent hash.
    """
    parts = []
    for table in CANONICAL_TABLES:
        name = (tables or {}).get(table, table)
        cols = ", ".join(schema.column_names(table))
        n, h = con.execute(f"SELECT count(*), coalesce(sum(hash({cols})), 0) FROM {name}").fetchall()[0]
        parts.append(f"{table}:{int(n)}:{h}")
    return ";".join(parts)


def engine() -> str:
    """Return the DuckDB version fingerprints are computed with (``duckdb X.Y.Z``)."""
    return f"duckdb {duckdb.__version__}"


def counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Return the rows of ``panel`` and ``postings``."""
    return (
        int(con.execute("SELECT count(*) FROM panel").fetchall()[0][0]),
        int(con.execute("SELECT count(*) FROM postings").fetchall()[0][0]),
    )


def _next_seq(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM ingest_log").fetchall()[0][0])


def insert_provenance(
    con: duckdb.DuckDBPyConnection,
    ingest_id: str,
    now: datetime,
    files: list[FileChange],
    no_years: str | None = None,
) -> None:
    """Record one provenance row per file written.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection of the write's transaction.
    ingest_id : str
        The ingest (or restore).
    now : datetime.datetime
        Its time (UTC, naive).
    files : list of FileChange
        What each file changed.
    no_years : str, optional
        What to record as the years of a file without any (None: NULL).
    """
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


def insert_log(
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
    """Record one row of ``ingest_log``: rows and fingerprints before and after, villages, notes.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection of the write's transaction (after the tables were written).
    ingest_id : str
        The ingest (or restore).
    kind : {"ingest", "restore"}
        What it is.
    now : datetime.datetime
        Its time (UTC, naive).
    before : tuple
        :func:`fingerprint` and :func:`counts` before the write.
    files : sequence of str
        Input files.
    target : str or None
        For a restore, ``before <id>`` or ``after <id>``.
    villages : tuple of int
        Villages the panel gained and lost.
    log : IngestLog or None
        Notes and accepted warnings.
    """
    after_counts = counts(con)
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
            fingerprint(con),
            engine(),
            log.warnings_accepted if log else 0,
            json.dumps(log.notes if log else [], ensure_ascii=False),
        ],
    )
