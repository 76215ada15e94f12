"""Incoming panel rows against the stored panel: what replacing a stored year changes, and which years look alike.

Two read-only comparisons the ingest makes before it writes (:mod:`analysis.data.ingest`):

:func:`stored_year_changes`
    for every panel year that the incoming rows would replace and the store already
    holds, the rows that change, are added or are removed, and per column how many values
    differ and the mean before and after (a 2025 table ingested as 2024: income 3,712.9
    -> 4,121.4). The ingest refuses such a replacement unless it is asked for
    (``--replace``) and prints these numbers in its refusal and its dry run.
:func:`year_resemblance`
    for every incoming year and every other year (stored and not being replaced, or
    incoming), the villages in common and how many of their yearly measures
    (:data:`analysis.data.schema.YEARLY_MEASURES`) are equal. Two years of real data
    never agree on most of them; the ingest warns when they do (a file under the wrong
    year). Two values are equal if they differ by at most :data:`EQUAL_ABS` plus
    :data:`EQUAL_REL` of the larger (rounding to cents, or a 万元 table rounded to 4
    decimals; counts must be equal); a pair of zeros tells nothing (most villages have no petitions in any
    year) and is not compared.

Both take the incoming rows as a canonical frame (:func:`analysis.data.schema.to_canonical`)
and a store path that need not exist.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from analysis.data import schema
from analysis.data.problems import both
from analysis.data.store.layout import SQL_TYPES, has_table
from analysis.data.store.read import open_store

EQUAL_ABS = 0.005
"""Two values that differ by at most this much (plus :data:`EQUAL_REL`) are equal in :func:`year_resemblance`."""
EQUAL_REL = 0.0001
"""Share of the larger value that two values may differ by and count as equal in :func:`year_resemblance`."""


@dataclass(frozen=True)
class ColumnChange:
    """How one column of a stored year would change.

    Attributes
    ----------
    column : str
        Canonical column.
    changed : int
        Values that differ, in the rows the store and the incoming data both have.
    mean_before, mean_after : float or None
        Mean of the stored year and of the incoming year (numeric columns; None for text
        columns or when every value is missing).
    """

    column: str
    changed: int
    mean_before: float | None
    mean_after: float | None

    def __str__(self) -> str:
        return self._text("en")

    def _text(self, lang: str) -> str:
        text = both("ingest.store.column_change.one" if self.changed == 1 else "ingest.store.column_change.other",
                    column=self.column, changed=self.changed)[lang]
        if self.mean_before is not None or self.mean_after is not None:
            missing = both("ingest.store.column_change.missing")[lang]
            text += both("ingest.store.column_change.mean", before=_num(self.mean_before, missing),
                         after=_num(self.mean_after, missing))[lang]
        return text

    def text_zh(self) -> str:
        """Return the change in Chinese.

        Returns
        -------
        str
            For example ``income_per_capita：3,224 个数值不同，均值 3,712.9 -> 4,121.4``.
        """
        return self._text("zh")


@dataclass(frozen=True)
class StoredYearChange:
    """What writing the incoming rows of one year would change in that year as stored.

    Attributes
    ----------
    year : int
        The panel year.
    stored_rows, incoming_rows : int
        Rows of the year in the store and in the incoming data.
    replaced, unchanged, inserted, removed : int
        Rows in both with different and with the same content; incoming rows the store
        does not have; stored rows the incoming data does not have.
    columns : tuple of ColumnChange
        The columns with values that differ, most changed first (relative change of the
        mean, then number of values).
    """

    year: int
    stored_rows: int
    incoming_rows: int
    replaced: int
    unchanged: int
    inserted: int
    removed: int
    columns: tuple[ColumnChange, ...]

    @property
    def values_changed(self) -> int:
        """Values that differ in the rows both have."""
        return sum(c.changed for c in self.columns)

    @property
    def changes(self) -> bool:
        """Whether writing would change the stored year at all."""
        return bool(self.replaced or self.inserted or self.removed)

    def summary(self) -> str:
        """Return the change in one line of English (rows, then values).

        Returns
        -------
        str
            For example ``3,224 of 3,224 stored rows change, 0 added, 0 removed; 41,912 values differ``.
        """
        return self._summary("en")

    def summary_zh(self) -> str:
        """Return :meth:`summary` in Chinese.

        Returns
        -------
        str
            For example ``已入库的 3,224 行中 3,224 行改变，新增 0 行，删除 0 行；41,912 个数值不同``.
        """
        return self._summary("zh")

    def _summary(self, lang: str) -> str:
        return both("ingest.store.year_change.summary", stored=self.stored_rows, replaced=self.replaced,
                    inserted=self.inserted, removed=self.removed, values=self.values_changed)[lang]


def _num(v: float | None, missing: str) -> str:
    if v is None:
        return missing
    return f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.4g}"


def _connect(store: Path) -> duckdb.DuckDBPyConnection:
    return open_store(store, read_only=True) if store.is_file() else duckdb.connect()


def _incoming_sql(columns: list[schema.Column]) -> str:
    return ", ".join(f"CAST({c.name} AS {SQL_TYPES[c.kind]}) AS {c.name}" for c in columns)


def stored_year_changes(store: str | os.PathLike, panel: pd.DataFrame) -> list[StoredYearChange]:
    """Compare incoming panel rows with the stored rows of the same years.

    Parameters
    ----------
    store : str or path-like
        The store (need not exist).
    panel : pandas.DataFrame
        Incoming canonical panel rows (not modified).

    Returns
    -------
    list of StoredYearChange
        One per incoming year the store already holds, in year order (whether or not
        anything would change: see :attr:`StoredYearChange.changes`).
    """
    store = Path(store)
    if panel.empty or not store.is_file():
        return []
    specs = [c for c in schema.PANEL_COLUMNS if c.name in panel.columns]
    keys = set(schema.PANEL_KEY)
    values = [c for c in specs if c.name not in keys]
    numeric = [c for c in values if c.kind in ("int", "float", "binary")]
    years = sorted(int(y) for y in panel["year"].dropna().unique())
    con = _connect(store)
    try:
        if not has_table(con, "panel"):
            return []
        con.register("incoming_compare", panel[[c.name for c in specs]])
        both = "n.village_code IS NOT NULL AND o.village_code IS NOT NULL"
        same = " AND ".join(f"n.{c.name} IS NOT DISTINCT FROM o.{c.name}" for c in values) or "true"
        parts = [
            "coalesce(n.year, o.year) AS y",
            "count(o.village_code) AS stored_rows",
            "count(n.village_code) AS incoming_rows",
            f"count(*) FILTER (WHERE {both} AND NOT ({same})) AS replaced",
            f"count(*) FILTER (WHERE {both} AND ({same})) AS unchanged",
            "count(*) FILTER (WHERE o.village_code IS NULL) AS inserted",
            "count(*) FILTER (WHERE n.village_code IS NULL) AS removed",
        ]
        parts += [f"count(*) FILTER (WHERE {both} AND n.{c.name} IS DISTINCT FROM o.{c.name}) AS d_{c.name}"
                  for c in values]
        parts += [f"avg(o.{c.name}) AS b_{c.name}, avg(n.{c.name}) AS a_{c.name}" for c in numeric]
        rows = con.execute(
            f"""WITH n AS (SELECT {_incoming_sql(specs)} FROM incoming_compare WHERE list_contains(?, year)),
                     o AS (SELECT {", ".join(c.name for c in specs)} FROM panel WHERE list_contains(?, year))
                SELECT {", ".join(parts)}
                FROM n FULL OUTER JOIN o ON n.village_code = o.village_code AND n.year = o.year
                GROUP BY y ORDER BY y""",
            [years, years],
        ).fetchdf()
        con.unregister("incoming_compare")
    finally:
        con.close()
    out = []
    for r in rows.to_dict("records"):
        if not r["stored_rows"]:
            continue
        cols = []
        for c in values:
            before = r.get(f"b_{c.name}")
            after = r.get(f"a_{c.name}")
            before = None if before is None or pd.isna(before) else float(before)
            after = None if after is None or pd.isna(after) else float(after)
            if int(r[f"d_{c.name}"]) or before != after:
                cols.append(ColumnChange(c.name, int(r[f"d_{c.name}"]), before, after))

        def size(ch: ColumnChange) -> tuple[float, int]:
            if ch.mean_before is None or ch.mean_after is None:
                rel = math.inf if (ch.mean_before is None) != (ch.mean_after is None) else 0.0
            else:
                rel = abs(ch.mean_after - ch.mean_before) / max(abs(ch.mean_before), 1e-12)
            return (-rel, -ch.changed)

        out.append(StoredYearChange(int(r["y"]), int(r["stored_rows"]), int(r["incoming_rows"]), int(r["replaced"]),
                                    int(r["unchanged"]), int(r["inserted"]), int(r["removed"]),
                                    tuple(sorted(cols, key=size))))
    return out


def year_resemblance(store: str | os.PathLike, panel: pd.DataFrame) -> pd.DataFrame:
    """Compare every incoming year with every other year, village by village.

    Stored years that the incoming rows replace are left out (what replacing them changes
    is :func:`stored_year_changes`).

    Parameters
    ----------
    store : str or path-like
        The store (need not exist).
    panel : pandas.DataFrame
        Incoming canonical panel rows (not modified).

    Returns
    -------
    pandas.DataFrame
        One row per (incoming year, other year) with villages in common: ``year``,
        ``other_year``, ``stored`` (whether the other year is a stored one),
        ``villages`` (of the incoming year), ``other_villages``, ``common`` (villages in
        both), ``compared`` (values of :data:`~analysis.data.schema.YEARLY_MEASURES` that
        both have, pairs of zeros left out) and ``equal`` (of those, equal within the
        tolerance of the module docstring).
    """
    store = Path(store)
    cols = [c for c in schema.PANEL_COLUMNS if c.name in schema.YEARLY_MEASURES and c.name in panel.columns]
    names = ["village_code", "year", *(c.name for c in cols)]
    empty = pd.DataFrame(columns=["year", "other_year", "stored", "villages", "other_villages", "common", "compared",
                                  "equal"])
    if panel.empty or not cols:
        return empty
    specs = [c for c in schema.PANEL_COLUMNS if c.name in names]
    years = sorted(int(y) for y in panel["year"].dropna().unique())
    compared = " + ".join(
        f"(n.{c} IS NOT NULL AND o.{c} IS NOT NULL AND NOT (n.{c} = 0 AND o.{c} = 0))::INTEGER" for c in
        (c.name for c in cols))
    equal = " + ".join(
        f"(n.{c} IS NOT NULL AND o.{c} IS NOT NULL AND NOT (n.{c} = 0 AND o.{c} = 0) AND "
        f"abs(n.{c} - o.{c}) <= {EQUAL_ABS} + {EQUAL_REL} * greatest(abs(n.{c}), abs(o.{c})))::INTEGER"
        for c in (c.name for c in cols))
    con = _connect(store)
    try:
        con.register("incoming_resemblance", panel if list(panel.columns) == names else panel[names])
        stored = (
            f"UNION ALL SELECT {', '.join(names)}, true AS stored FROM panel WHERE NOT list_contains(?, year)"
            if has_table(con, "panel") else ""
        )
        params = [years] if stored else []
        # one incoming year at a time: the join's hash table holds one year's villages, not every year's
        # (all nine at once took 1.6 GB of a national first ingest's 5 GB peak)
        parts = [con.execute(
            f"""WITH i AS NOT MATERIALIZED (SELECT {_incoming_sql(specs)} FROM incoming_resemblance),
                     n AS (SELECT * FROM i WHERE year = ?),
                     o AS (SELECT *, false AS stored FROM i {stored}),
                     ov AS (SELECT year, count(*) AS other_villages FROM o GROUP BY year)
                SELECT n.year, o.year AS other_year, any_value(o.stored) AS stored,
                       (SELECT count(*) FROM n) AS villages, any_value(ov.other_villages) AS other_villages,
                       count(*) AS common, sum({compared}) AS compared, sum({equal}) AS equal
                FROM n JOIN o ON n.village_code = o.village_code AND n.year <> o.year
                       JOIN ov ON ov.year = o.year
                GROUP BY n.year, o.year ORDER BY n.year, o.year""",
            [year, *params],
        ).fetchdf() for year in years]
        con.unregister("incoming_resemblance")
        out = pd.concat(parts, ignore_index=True) if parts else empty
    finally:
        con.close()
    for c in ("year", "other_year", "villages", "other_villages", "common", "compared", "equal"):
        out[c] = out[c].astype("int64")
    out["stored"] = out["stored"].astype(bool)
    return out
