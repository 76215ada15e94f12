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
    (:func:`~analysis.data.store.log.fingerprint`, checked by :func:`restore`), warnings accepted and the
    conversions applied to bureau files. :func:`history` reads it.
``village_crosswalk``
    Village-code changes (merges, splits, new and abolished villages) recorded from
    crosswalk files (:mod:`analysis.data.bureau.crosswalk`), with the ingest that brought them.
``store_meta``
    Key-value facts about the store (schema fingerprint, creation time).

Modules
-------
:mod:`~analysis.data.store.layout`
    the tables' SQL layout and the schema check;
:mod:`~analysis.data.store.read`
    reading tables, provenance, history, content hashes and summaries (read-only
    connections that always see the current file);
:mod:`~analysis.data.store.write`
    writing rows: panel years replaced, postings upserted, history kept;
:mod:`~analysis.data.store.lock`
    the ingest lock and the atomic copy-on-write (a process killed at any point leaves
    the store byte-for-byte as it was);
:mod:`~analysis.data.store.log`
    provenance rows, the ingest log and content fingerprints;
:mod:`~analysis.data.store.timeline`
    the list of ingests and :func:`restore`;
:mod:`~analysis.data.store.compare`
    incoming panel rows against the stored ones: what replacing a stored year changes,
    and which years look alike.

The names below are the store's public interface (``from analysis.data import store``).
"""

from analysis.data.store.compare import ColumnChange, StoredYearChange, stored_year_changes, year_resemblance
from analysis.data.store.layout import (
    CANONICAL_TABLES,
    KEYS,
    PROVENANCE_COLUMNS,
    StoreError,
    StoreLike,
    has_table,
)
from analysis.data.store.lock import ingest_lock
from analysis.data.store.log import FileChange, IngestLog
from analysis.data.store.read import (
    StoreSummary,
    content_hash,
    latest_panel_values,
    open_store,
    panel_codes,
    panel_columns,
    panel_villages,
    read_history,
    read_panel,
    read_postings,
    read_provenance,
    read_village_crosswalk,
    summary,
)
from analysis.data.store.timeline import HISTORY_COLUMNS, RestoreResult, history, history_text, restore
from analysis.data.store.write import Source, WriteResult, YearChange, write_panel, write_postings, write_tables

__all__ = [
    "CANONICAL_TABLES",
    "HISTORY_COLUMNS",
    "KEYS",
    "PROVENANCE_COLUMNS",
    "ColumnChange",
    "FileChange",
    "IngestLog",
    "RestoreResult",
    "Source",
    "StoreError",
    "StoreLike",
    "StoreSummary",
    "StoredYearChange",
    "WriteResult",
    "YearChange",
    "content_hash",
    "has_table",
    "history",
    "history_text",
    "ingest_lock",
    "latest_panel_values",
    "open_store",
    "panel_codes",
    "panel_columns",
    "panel_villages",
    "read_history",
    "read_panel",
    "read_postings",
    "read_provenance",
    "read_village_crosswalk",
    "restore",
    "stored_year_changes",
    "summary",
    "write_panel",
    "write_postings",
    "write_tables",
    "year_resemblance",
]
