"""Checks of the files of one ingest against each other and against the store.

Each file's own values are checked by :mod:`analysis.data.validate`; what needs several
files, or what is already stored, is checked here:

* :func:`repeated_keys` -- a key (village and year, or ``secretary_id``) in two files of
  the same ingest;
* :func:`unknown_villages` -- postings that point to a village neither in this ingest's
  panel files nor in the store;
* :func:`code_changes` -- village codes that appear or disappear against the latest
  earlier year without a crosswalk entry (:func:`analysis.data.bureau.crosswalk.check_code_changes`);
* :func:`crosswalk_conflicts` -- crosswalk entries that contradict stored ones;
* :func:`year_on_year_warnings`, :func:`copied_year_warnings` and :func:`posting_warnings`
  -- possible but suspicious values (**warnings**): per-capita income ten times (or a
  tenth of) the village's previous year, population halved or doubled, a whole column
  typically five times (or a fifth of) last year's, a year whose values are those of
  another year (a table under the wrong year), a posting id the store has for another
  village, a new posting with the same village and start date as a stored one.

Only validated values take part (missing where a cell has a problem).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data import store as st
from analysis.data.bureau import crosswalk as cw
from analysis.data.problems import Problem, both, message
from analysis.data.validate import Validated

INCOME_RATIO_WARNING = 10.0
"""Per-capita income at least this many times (or at most 1/this) the previous year is a warning."""
POPULATION_RATIO_WARNING = 2.0
"""Population at least this many times (or at most 1/this) the previous year is a warning."""
COLUMN_RATIO_WARNING = 5.0
"""A column whose median ratio to the previous year passes this (or 1/this) is a warning."""

SAME_YEAR_SHARE = 0.95
"""Two years whose common villages' yearly measures are equal in at least this share are "the same" (a warning)."""
SAME_YEAR_VILLAGES = 0.95
"""... if at least this share of the incoming year's villages are in the other year,"""
SAME_YEAR_MIN_VILLAGES = 20
"""... and at least this many villages are in both (a handful of villages cannot tell a copy from a quiet year)."""



def repeated_keys(files: list[Validated]) -> list[Problem]:
    """Find keys repeated across the files of one ingest (within a file is checked by validation).

    Parameters
    ----------
    files : list of Validated
        The files of the ingest.

    Returns
    -------
    list of Problem
        One per repeated key, against the later file, naming the first file and row.
    """
    problems: list[Problem] = []
    for table in ("panel", "postings"):
        key = list(schema.KEYS[table])
        same = [f for f in files if f.table == table and all(k in f.parsed for k in key)]
        if len(same) < 2:
            continue
        parts = []
        for k, f in enumerate(same):
            part = pd.DataFrame({c: f.parsed[c] for c in key})
            part["_file"] = k
            part["_pos"] = np.arange(len(part.index))
            part = part[part[key].notna().all(axis=1)]
            parts.append(part[~part.duplicated(key, keep="first")])
        keys = pd.concat(parts, ignore_index=True)
        dup = keys.duplicated(key, keep="first").to_numpy()
        if not dup.any():
            continue
        first = keys.groupby(key, sort=False)[["_file", "_pos"]].transform("first")
        for j in np.flatnonzero(dup):
            f = same[int(keys.at[j, "_file"])]
            other = same[int(first.at[j, "_file"])]
            row = int(other.cells.rows[int(first.at[j, "_pos"])])
            problems.append(
                f.cells.problem(
                    int(keys.at[j, "_pos"]),
                    ", ".join(key),
                    " / ".join(str(keys.at[j, k]) for k in key),
                    **message("ingest.table.duplicate_across_files", row_label=other.cells.row_label, row=row,
                              file=other.name),
                )
            )
    return problems


def unknown_villages(files: list[Validated], store: Path) -> list[Problem]:
    """Check that postings point to villages in this ingest's panel files or in the store.

    Parameters
    ----------
    files : list of Validated
        The files of the ingest.
    store : pathlib.Path
        The store (panel years the ingest replaces are not counted).

    Returns
    -------
    list of Problem
        One per posting whose village is unknown.
    """
    post = [f for f in files if f.table == "postings" and "village_code" in f.parsed]
    if not post:
        return []
    new_years: set[int] = set()
    villages: set[str] = set()
    for f in files:
        if f.table == "panel":
            if "year" in f.parsed:
                new_years |= {int(y) for y in f.parsed["year"].dropna()}
            if "village_code" in f.parsed:
                # distinct codes first (vectorised): a national file has 4.5M rows but 500,000 villages
                villages |= set(pd.unique(f.parsed["village_code"].dropna()).tolist())
    villages |= st.panel_villages(store, exclude_years=new_years) if store.exists() else set()
    problems = []
    for f in post:
        codes = f.parsed["village_code"]
        bad = (codes.notna() & ~codes.isin(villages)).to_numpy(dtype=bool)
        for i in np.flatnonzero(bad).tolist():
            problems.append(
                f.cells.problem(
                    i,
                    "village_code",
                    codes.iloc[i],
                    **message("ingest.table.unknown_village"),
                )
            )
    return problems


def _panel_years(files: list[Validated]) -> dict[int, list[tuple[Validated, np.ndarray]]]:
    """Year -> (file, positions of its rows) of the panel files of the ingest."""
    out: dict[int, list[tuple[Validated, np.ndarray]]] = {}
    for f in files:
        if f.table != "panel" or "year" not in f.parsed or "village_code" not in f.parsed:
            continue
        years = f.parsed["year"]
        distinct = pd.unique(years.dropna())
        for y in distinct:
            rows = (years == y).to_numpy(dtype=bool, na_value=len(distinct) == 1)  # a bad year cell of a one-year file
            out.setdefault(int(y), []).append((f, np.flatnonzero(rows)))
    return out


def _against_previous(
    f: Validated, idx: np.ndarray, col: str, old: pd.DataFrame, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Return this year's ``col`` at rows ``idx`` of a file, the previous year's of its villages and the ratio.

    None if the file or the previous year (``old``, indexed by village code) lacks the column.
    """
    if col not in f.parsed or col not in old.columns:
        return None
    new = f.parsed[col].iloc[idx].to_numpy(dtype=float, na_value=np.nan)
    before = old[col].reindex(codes).to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = new / before
    return new, before, ratio


def _stored_years(store: Path) -> list[int]:
    if not store.is_file():
        return []
    return list(st.summary(store)["panel_years"])


def stored_crosswalk(store: Path) -> pd.DataFrame:
    """Return the crosswalk entries of the store (an empty crosswalk if there are none).

    Parameters
    ----------
    store : pathlib.Path
        The store (need not exist).

    Returns
    -------
    pandas.DataFrame
        Columns ``old_code``, ``new_code``, ``year_effective``, ``change_type``,
        ``weight``, ``file_name``.
    """
    if not store.is_file():
        return cw.empty_crosswalk()
    stored = st.read_village_crosswalk(store)
    return cw.empty_crosswalk() if stored is None else stored


def code_changes(files: list[Validated], store: Path, crosswalk: pd.DataFrame) -> list[Problem]:
    """Compare every new panel year with the latest earlier year (stored or in this ingest).

    Parameters
    ----------
    files : list of Validated
        The files of the ingest.
    store : pathlib.Path
        The store.
    crosswalk : pandas.DataFrame
        Crosswalk entries, stored and new.

    Returns
    -------
    list of Problem
        Codes that appear or disappear without a crosswalk entry, and entries that
        contradict the data.
    """
    by_year = _panel_years(files)
    if not by_year:
        return []
    stored = [y for y in _stored_years(store) if y not in by_year]
    problems: list[Problem] = []
    for y in sorted(by_year):
        earlier = [p for p in set(stored) | set(by_year) if p < y]
        if not earlier:
            continue
        prev = max(earlier)
        if prev in by_year:
            prev_codes: set[str] = set()
            for f, idx in by_year[prev]:
                prev_codes |= set(f.parsed["village_code"].iloc[idx].dropna())
            source = ", ".join(f.name for f, _ in by_year[prev])
        else:
            prev_codes = st.panel_codes(store, prev)
            source = "stored"
        new_codes: set[str] = set()
        for f, idx in by_year[y]:
            new_codes |= set(f.parsed["village_code"].iloc[idx].dropna())
        where: dict[str, tuple[int, str | None]] = {}  # rows of the codes that are new against prev
        came = new_codes - prev_codes
        for f, idx in by_year[y] if came else ():
            codes = f.parsed["village_code"].iloc[idx]
            hit = codes.isin(came).to_numpy(dtype=bool)
            for i, code in zip(idx[hit], codes[hit], strict=True):
                where.setdefault(code, (int(f.cells.rows[i]), None if f.cells.sheets is None else f.cells.sheets[i]))
        # Rows whose code could not be read may be the villages that seem to be gone: say so.
        unreadable = sum(int(f.parsed["village_code"].iloc[idx].isna().sum()) for f, idx in by_year[y])
        found = cw.check_code_changes(by_year[y][0][0].name, y, prev, prev_codes, new_codes, crosswalk, where, source)
        if unreadable:
            hint = both("ingest.table.unreadable_codes.hint", count=unreadable)
            found = [
                dataclasses.replace(p, problem=p.problem + hint["en"], problem_zh=p.problem_zh + hint["zh"])
                if p.row is None and "is not in this" in p.problem
                else p
                for p in found
            ]
        header = next((f.cells.headers for f, _ in by_year[y]), {}).get("village_code")
        problems.extend(dataclasses.replace(p, header=header) if header and p.header is None else p for p in found)
    return problems


def year_on_year_warnings(files: list[Validated], store: Path) -> list[Problem]:
    """Warn about suspicious changes against the previous year of the same village.

    Parameters
    ----------
    files : list of Validated
        The files of the ingest.
    store : pathlib.Path
        The store (the previous year is taken from this ingest's files if they have it).

    Returns
    -------
    list of Problem
        Warnings: per-capita income and population ratios per village, and columns whose
        typical ratio suggests a wrong unit.
    """
    by_year = _panel_years(files)
    if not by_year:
        return []
    stored = [y for y in _stored_years(store) if y not in by_year]
    problems: list[Problem] = []
    cols = ["income_per_capita", "population", "collective_income", "funds_attracted", "roads_km"]
    for y in sorted(by_year):
        prev = y - 1
        if prev in by_year:
            parts = []
            for f, idx in by_year[prev]:
                parts.append(pd.DataFrame({c: f.parsed[c].iloc[idx].to_numpy() for c in ["village_code", *cols]
                                           if c in f.parsed}))
            old = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        elif prev in stored:
            old = st.panel_columns(store, prev, cols)
        else:
            continue
        if old.empty:
            continue
        old = old.drop_duplicates("village_code").set_index("village_code")
        for f, idx in by_year[y]:
            codes = f.parsed["village_code"].iloc[idx].to_numpy(dtype=object)
            for col, limit, why in (
                ("income_per_capita", INCOME_RATIO_WARNING, both("ingest.warning.ratio.income")),
                ("population", POPULATION_RATIO_WARNING, both("ingest.warning.ratio.population")),
            ):
                pair = _against_previous(f, idx, col, old, codes)
                if pair is None:
                    continue
                new, before, ratio = pair
                bad = np.isfinite(ratio) & (before > 0) & ((ratio >= limit) | (ratio <= 1 / limit))
                for k in np.flatnonzero(bad):
                    i = int(idx[k])
                    r = ratio[k]
                    problems.append(
                        f.cells.problem(
                            i,
                            col,
                            f.cells.shown_value(col, i, new[k]),
                            **message("ingest.warning.ratio", action_of="ingest.warning.accept", ratio=r, year=prev,
                                      before=before[k], why=why),
                            severity="warning",
                        )
                    )
            for col in ("income_per_capita", "collective_income", "funds_attracted", "roads_km", "population"):
                pair = _against_previous(f, idx, col, old, codes)
                if pair is None:
                    continue
                new, before, ratio = pair
                ok = np.isfinite(ratio) & (before > 0) & (new > 0)
                if ok.sum() < 5:
                    continue
                med = float(np.median(ratio[ok]))
                if med >= COLUMN_RATIO_WARNING or med <= 1 / COLUMN_RATIO_WARNING:
                    problems.append(
                        Problem(
                            f.name,
                            None,
                            col,
                            None,
                            **message("ingest.warning.column_ratio", ratio=med, year=prev),
                            header=f.cells.headers.get(col),
                            severity="warning",
                        )
                    )
    return problems


def incoming_panel(files: list[Validated], columns: Collection[str] | None = None) -> pd.DataFrame:
    """Return the validated values of the panel files of an ingest as one frame (rows with a key only).

    Parameters
    ----------
    files : list of Validated
        The files of the ingest.
    columns : collection of str, optional
        Only these canonical columns (the key always); default every column the files have.

    Returns
    -------
    pandas.DataFrame
        The canonical columns the files have (missing where a cell is empty or wrong).
    """
    def wanted(parsed: dict[str, pd.Series]) -> dict[str, pd.Series]:
        keep = [c for c in parsed if columns is None or c in columns or c in ("village_code", "year")]
        return {c: parsed[c] for c in keep}

    # the files' own arrays, not copies (a national first ingest holds 4.5 million rows of them)
    parts = [pd.DataFrame(wanted(f.parsed), copy=False) for f in files
             if f.table == "panel" and {"village_code", "year"} <= set(f.parsed)]
    if not parts:
        return pd.DataFrame(columns=["village_code", "year"])
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    keyed = (frame["village_code"].notna() & frame["year"].notna()).to_numpy()
    return frame if keyed.all() else frame[keyed].reset_index(drop=True)


def copied_year_warnings(files: list[Validated], store: Path) -> list[Problem]:
    """Warn about an incoming year whose values are those of another year: a table under the wrong year.

    Every incoming panel year is compared with every stored year it does not replace and
    with the other incoming years (:func:`analysis.data.store.year_resemblance`). A pair is
    "the same" if at least :data:`SAME_YEAR_VILLAGES` of the incoming year's villages are in
    the other year, they are at least :data:`SAME_YEAR_MIN_VILLAGES`, and at least
    :data:`SAME_YEAR_SHARE` of their yearly values are equal. In the default synthetic
    city two different years agree on 5-12% of them.

    Parameters
    ----------
    files : list of Validated
        The files of the ingest.
    store : pathlib.Path
        The store (need not exist).

    Returns
    -------
    list of Problem
        One warning per incoming year that matches another year (the closest match), on
        the first file holding that year.
    """
    by_year = _panel_years(files)
    if not by_year:
        return []
    pairs = st.year_resemblance(store, incoming_panel(files, schema.YEARLY_MEASURES))
    if pairs.empty:
        return []
    share = pairs["equal"] / pairs["compared"].where(pairs["compared"] > 0)
    same = pairs[(pairs["common"] >= SAME_YEAR_MIN_VILLAGES) & (share >= SAME_YEAR_SHARE)
                 & (pairs["common"] >= SAME_YEAR_VILLAGES * pairs["villages"])
                 & (pairs["stored"] | (pairs["year"] > pairs["other_year"]))].assign(share=share)
    problems = []
    for year, group in same.sort_values("share", ascending=False, kind="mergesort").groupby("year", sort=True):
        r = group.iloc[0]
        other, common, compared = int(r["other_year"]), int(r["common"]), int(r["compared"])
        stored = both("ingest.warning.same_year.stored") if bool(r["stored"]) else ""
        f = by_year[int(year)][0][0]
        problems.append(
            Problem(
                f.name,
                None,
                "year",
                None,
                header=f.cells.headers.get("year"),
                **message("ingest.warning.same_year", year=int(year), stored=stored, other=other, share=r["share"],
                          compared=compared, common=common),
                severity="warning",
            )
        )
    return problems


def posting_warnings(files: list[Validated], store: Path) -> list[Problem]:
    """Warn about posting ids the store has for another village, and postings stored under another id.

    Parameters
    ----------
    files : list of Validated
        The files of the ingest.
    store : pathlib.Path
        The store.

    Returns
    -------
    list of Problem
        Warnings, one per posting concerned.
    """
    post = [f for f in files if f.table == "postings" and {"village_code", "secretary_id"} <= set(f.parsed)]
    if not post or not store.is_file():
        return []
    stored = st.read_postings(store)
    if stored.empty:
        return []
    by_id = stored.set_index("secretary_id")["village_code"]
    by_start = stored.assign(start=stored["start_date"].dt.strftime("%Y-%m-%d")).set_index(
        ["village_code", "start"])["secretary_id"]
    by_start = by_start[~by_start.index.duplicated()]
    problems = []
    for f in post:
        ids = f.parsed["secretary_id"]
        codes = f.parsed["village_code"]
        starts = f.parsed.get("start_date")
        for i in range(len(ids)):
            sid, code = ids.iloc[i], codes.iloc[i]
            if pd.isna(sid) or pd.isna(code):
                continue
            if sid in by_id.index and by_id[sid] != code:
                problems.append(
                    f.cells.problem(
                        i, "secretary_id", sid,
                        **message("ingest.warning.moved_posting", stored=by_id[sid], code=code),
                        severity="warning",
                    )
                )
            elif starts is not None and sid not in by_id.index and not pd.isna(starts.iloc[i]):
                key = (code, starts.iloc[i].strftime("%Y-%m-%d"))
                if key in by_start.index:
                    problems.append(
                        f.cells.problem(
                            i, "secretary_id", sid,
                            **message("ingest.warning.posting_again", code=code, start=key[1], id=by_start[key]),
                            severity="warning",
                        )
                    )
    return problems


def crosswalk_conflicts(entries: pd.DataFrame, stored: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
    """Drop crosswalk entries the store already has; report entries that contradict stored ones.

    Parameters
    ----------
    entries : pandas.DataFrame
        Entries of the ingest's crosswalk file (with ``row``).
    stored : pandas.DataFrame
        Entries of the store.

    Returns
    -------
    tuple of (pandas.DataFrame, list of Problem)
        The new entries, and one problem per contradicting entry.
    """
    if entries.empty:
        return entries, []
    key = ["old_code", "new_code", "year_effective"]
    merged = entries.merge(stored[[*key, "change_type", "weight"]], on=key, how="left", suffixes=("", "_stored"))
    known = merged["change_type_stored"].notna().to_numpy()
    same_w = (merged["weight"].isna() & merged["weight_stored"].isna()) | (
        (merged["weight"] - merged["weight_stored"]).abs() < 1e-9)
    differ = known & ((merged["change_type"] != merged["change_type_stored"]) | ~same_w).to_numpy()
    problems = []
    for i in np.flatnonzero(differ):
        r = merged.iloc[i]
        problems.append(
            Problem(
                str(r["file_name"]),
                int(r["row"]) if "row" in merged and pd.notna(r["row"]) else None,
                "old_code",
                f"{r['old_code']} -> {r['new_code']}",
                **message("ingest.table.crosswalk_contradicts_store", year=r["year_effective"],
                          change_type=r["change_type_stored"], weight=r["weight_stored"]),
            )
        )
    return entries[~known].reset_index(drop=True), problems
