"""The store's timeline: every ingest listed (history), and any earlier state brought back (restore).

:func:`history` lists the ingests. :func:`restore` brings ``panel`` and ``postings`` back
to their content right before (or right after) a given ingest: it takes back the later
ingests newest first from the history tables, checks the result against the fingerprint
the ingest log recorded for that state, and writes it like an ingest (same lock,
temporary copy, one transaction, :func:`os.replace`). The restore is itself logged with
the rows it replaced, so it can be taken back too; nothing is ever deleted from the
history, the provenance or the crosswalk. Ingests written before the ingest log existed
("legacy") cannot be taken back, since their inserted keys were not recorded.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data.store.layout import (
    CANONICAL_TABLES,
    KEYS,
    StoreError,
    StoreLike,
    column_ddl,
    ensure_schema,
    has_table,
    key_join_sql,
    same_row_sql,
    year_sql,
)
from analysis.data.store.lock import atomic_update, ingest_lock, transaction
from analysis.data.store.log import FileChange, counts, engine, fingerprint, insert_log, insert_provenance
from analysis.data.store.read import reading

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
    with reading(store) as con:
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
    cols = ", ".join(column_ddl(table))
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
        join = key_join_sql(table, "n", "o")
        same = same_row_sql(table, "n", "o")
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


def _rebuild(
    tmp: Path, undo: pd.DataFrame, target: str, expected: str | None, restore_id: str, now: datetime
) -> dict[str, tuple[int, int, int]]:
    """Take back the ingests of ``undo`` in the copy ``tmp``, check the fingerprint and record the restore."""
    with transaction(tmp) as con:
        ensure_schema(con)
        before = (fingerprint(con), counts(con))
        work = {t: _working_copy(con, t) for t in CANONICAL_TABLES}
        villages_now = {r[0] for r in con.execute("SELECT DISTINCT village_code FROM panel").fetchall()}
        for iid in reversed(undo["ingest_id"].tolist()):
            _undo(con, work, iid)
        got = fingerprint(con, work)
        if expected is not None and got != expected:
            raise StoreError(
                f"the rebuilt state {target} does not match the fingerprint recorded by the ingest log "
                f"({got} != {expected}); the store was not changed"
            )
        by_table = _replace_content(con, work, restore_id)
        files = []
        for t, (ins, rep, _rem) in by_table.items():
            n, years = con.execute(
                f"SELECT count(*), list(DISTINCT {year_sql(t, 'x')} ORDER BY {year_sql(t, 'x')}) "
                f"FROM {t} x"
            ).fetchall()[0]
            # sha256 column: the restored content's fingerprint (no file was read).
            files.append(
                FileChange(f"(restore {target})", f"restore:{got}", t, int(n),
                           tuple(int(y) for y in (years or []) if y is not None), ins, rep, 0)
            )
        # A restore to an empty table records years as "" (not NULL): readers split the text.
        insert_provenance(con, restore_id, now, files, no_years="")
        villages_then = {r[0] for r in con.execute("SELECT DISTINCT village_code FROM panel").fetchall()}
        changed = (len(villages_then - villages_now), len(villages_now - villages_then))
        insert_log(con, restore_id, "restore", now, before, [], target, changed, None)
    return by_table


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
        with reading(store) as con:
            log = con.execute(
                "SELECT ingest_id, fingerprint_before, engine FROM ingest_log WHERE ingest_id = ?",
                [str(undo.iloc[0]["ingest_id"])],
            ).fetchall()
        expected = log[0][1] if log and log[0][2] == engine() else None
        now = datetime.now(UTC).replace(tzinfo=None)
        restore_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        by_table = atomic_update(
            store, lambda tmp: _rebuild(tmp, undo, target, expected, restore_id, now), keep=not dry_run
        )
    undone = list(reversed(undo["ingest_id"].tolist()))
    return RestoreResult(store, restore_id if not dry_run else "", target, undone, by_table, not dry_run)
