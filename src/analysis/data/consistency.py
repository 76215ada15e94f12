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
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data import store as st
from analysis.data.bureau import crosswalk as cw
from analysis.data.problems import Problem
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

ACCEPT = "check the value; if it is right, ingest again with accept_warnings=True (study ingest --accept-warnings)"
"""What to do about a warning (English)."""
ACCEPT_ZH = "核对数值；如确认无误，加 --accept-warnings（accept_warnings=True）重新导入"
"""What to do about a warning (Chinese)."""


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
                    f"repeats the key of {other.cells.row_label} {row} in {other.name}",
                    "keep this key in one file only: delete or correct one of the rows",
                    f"与文件 {other.name} 第 {row} 行重复",
                    "同一个村和年份（或同一编号）只能出现在一个文件中：删除或更正其中一行",
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
                villages |= set(f.parsed["village_code"].dropna())
    villages |= st.panel_villages(store, exclude_years=new_years) if store.exists() else set()
    problems = []
    for f in post:
        codes = f.parsed["village_code"]
        bad = (codes.notna() & ~codes.isin(villages)).to_numpy(dtype=bool)
        for i in np.flatnonzero(bad):
            problems.append(
                f.cells.problem(
                    i,
                    "village_code",
                    codes.iloc[i],
                    "is not a village of the panel: it is neither in the panel files of this "
                    "ingest nor in the store",
                    "correct the code, or ingest the panel file with this village first "
                    "(or in the same command)",
                    "不是面板中的村：既不在本次导入的村级统计表中，也不在数据库中",
                    "更正村代码，或先导入（或同时导入）含有该村的村级统计表",
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


def _stored_years(store: Path) -> list[int]:
    if not store.is_file():
        return []
    return list(st.summary(store).get("panel_years", []))


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
            found = [
                dataclasses.replace(
                    p,
                    problem=p.problem + f" (or it is one of the {unreadable} rows whose code could not be read)",
                    problem_zh=p.problem_zh + f"（也可能是代码无法识别的 {unreadable} 行之一）",
                )
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
            for col, limit, what, what_zh in (
                ("income_per_capita", INCOME_RATIO_WARNING, "perhaps a 万元/元 mix-up", "可能把万元和元弄混了"),
                ("population", POPULATION_RATIO_WARNING, "perhaps a typing error, or a merger or split missing from "
                 "the crosswalk", "可能是录入错误，或有合并、拆分未列入对照表"),
            ):
                if col not in f.parsed or col not in old.columns:
                    continue
                new = f.parsed[col].iloc[idx].to_numpy(dtype=float, na_value=np.nan)
                before = old[col].reindex(codes).to_numpy(dtype=float, na_value=np.nan)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = new / before
                bad = np.isfinite(ratio) & (before > 0) & ((ratio >= limit) | (ratio <= 1 / limit))
                for k in np.flatnonzero(bad):
                    i = int(idx[k])
                    r = ratio[k]
                    problems.append(
                        f.cells.problem(
                            i,
                            col,
                            f.cells.shown_value(col, i, new[k]),
                            f"is {r:.3g} times the village's {prev} value ({before[k]:g}): {what}",
                            ACCEPT,
                            f"是该村 {prev} 年数值（{before[k]:g}）的 {r:.3g} 倍：{what_zh}",
                            ACCEPT_ZH,
                            severity="warning",
                        )
                    )
            for col in ("income_per_capita", "collective_income", "funds_attracted", "roads_km", "population"):
                if col not in f.parsed or col not in old.columns:
                    continue
                new = f.parsed[col].iloc[idx].to_numpy(dtype=float, na_value=np.nan)
                before = old[col].reindex(codes).to_numpy(dtype=float, na_value=np.nan)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = new / before
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
                            f"the values of this column are typically {med:.3g} times the same villages' {prev} "
                            "values: is the unit in the header right (万元 or 元, 米 or 公里)?",
                            "check the unit in the header (or in units.yaml); " + ACCEPT,
                            problem_zh=f"本列数值一般是各村 {prev} 年数值的 {med:.3g} 倍：表头中的单位（万元或元、"
                            f"米或公里）是否正确？",
                            action_zh="核对表头（或 units.yaml）中的单位；" + ACCEPT_ZH,
                            header=f.cells.headers.get(col),
                            severity="warning",
                        )
                    )
    return problems


def incoming_panel(files: list[Validated]) -> pd.DataFrame:
    """Return the validated values of the panel files of an ingest as one frame (rows with a key only).

    Parameters
    ----------
    files : list of Validated
        The files of the ingest.

    Returns
    -------
    pandas.DataFrame
        The canonical columns the files have (missing where a cell is empty or wrong).
    """
    parts = [pd.DataFrame(f.parsed) for f in files
             if f.table == "panel" and {"village_code", "year"} <= set(f.parsed)]
    if not parts:
        return pd.DataFrame(columns=["village_code", "year"])
    frame = pd.concat(parts, ignore_index=True)
    return frame[frame["village_code"].notna() & frame["year"].notna()].reset_index(drop=True)


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
    pairs = st.year_resemblance(store, incoming_panel(files))
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
        stored, stored_zh = ("stored ", "数据库中") if bool(r["stored"]) else ("", "")
        f = by_year[int(year)][0][0]
        problems.append(
            Problem(
                f.name,
                None,
                "year",
                None,
                f"the values of {int(year)} are those of the {stored}year {other} (perhaps the {other} table "
                f"filed as {int(year)}): {r['share']:.1%} of {compared:,} values of the {common:,} villages in "
                "both are equal, where two different years never agree on most of them",
                "check the year (file name, year column or --year); if both years really hold these values, "
                "ingest again with --accept-warnings (accept_warnings=True)",
                header=f.cells.headers.get("year"),
                problem_zh=f"{int(year)} 年的数值与{stored_zh} {other} 年的相同（可能是把 {other} 年的表格当成了 "
                f"{int(year)} 年）：两年都有的 {common:,} 个村的 {compared:,} 个数值中 {r['share']:.1%} 相同，"
                "而不同年份的数据不会大部分相同",
                action_zh="核对年份（文件名、年份列或 --year）；如两年的数值确实相同，加 --accept-warnings 重新导入",
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
                        f"is already in the store for village {by_id[sid]}; this file moves the posting to {code}",
                        "check the id and the village code; " + ACCEPT,
                        f"数据库中该编号属于村 {by_id[sid]}，本文件把它改到了村 {code}",
                        "核对编号和村代码；" + ACCEPT_ZH,
                        severity="warning",
                    )
                )
            elif starts is not None and sid not in by_id.index and not pd.isna(starts.iloc[i]):
                key = (code, starts.iloc[i].strftime("%Y-%m-%d"))
                if key in by_start.index:
                    problems.append(
                        f.cells.problem(
                            i, "secretary_id", sid,
                            f"is new, but the store already has a posting to village {code} starting on {key[1]} "
                            f"(id {by_start[key]}): the same posting listed again under another id?",
                            "if it is the same posting, remove the row (or use the stored id); " + ACCEPT,
                            f"是新编号，但数据库中已有同一村、同一到岗日期的派驻记录"
                            f"（编号 {by_start[key]}）：是否重复登记？",
                            "如是同一条记录，删除该行（或使用已有编号）；" + ACCEPT_ZH,
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
                f"contradicts the stored crosswalk entry for {r['year_effective']} "
                f"({r['change_type_stored']}, weight {r['weight_stored']})",
                "make the entry agree with the stored one (stored entries are not changed by an ingest)",
                problem_zh="与数据库中已有的对照表记录矛盾",
                action_zh="使该行与已入库的记录一致（导入不会修改已入库的对照表记录）",
            )
        )
    return entries[~known].reset_index(drop=True), problems
