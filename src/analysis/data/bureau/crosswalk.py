"""Village code changes: the crosswalk of merged and split villages.

Villages are merged (合并/撤并), split (拆分) or created and abolished, and their codes
change with them. A panel ingest compares the village codes of each new year with the
previous year (stored or in the same ingest): a code that disappears or appears is an
error unless a crosswalk entry explains it (:func:`check_code_changes`). The
crosswalk is a CSV or XLSX file (headers mapped through ``data/mappings/crosswalk.yaml``)
with one row per old -> new pair:

========== ======================================================================
column     meaning
========== ======================================================================
old_code   the code before the change (empty for ``new``)
new_code   the code from ``year_effective`` on (empty for ``abolished``)
year       ``year_effective``: the first year the new codes are used
type       ``merge`` (several old -> one new; the new code may be one of the old
           ones, which then continues), ``split`` (one old -> several new),
           ``new`` (a village that did not exist), ``abolished`` (ends without
           successor)
weight     ``split`` only: the share of the old village that goes to this new one;
           the weights of one old code add up to 1; empty = split by the new
           villages' population in ``year_effective``
========== ======================================================================

Accepted entries are stored in the table ``village_crosswalk`` of the store, with the
ingest that brought them. The panel itself is never rewritten: each year keeps the codes
its file had. :func:`harmonise` expresses a panel on the latest codes for analyses that
need a balanced village identity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data.bureau.mappings import Mappings, load_mappings
from analysis.data.bureau.table import read_bureau
from analysis.data.problems import Problem, Words, both, file_problem, message

CROSSWALK_TYPES = ("merge", "split", "new", "abolished")
CROSSWALK_COLUMNS = ("old_code", "new_code", "year_effective", "change_type", "weight", "file_name")
_CODE = r"\d{12}"

SUM_COLUMNS = (
    "population",
    "collective_income",
    "projects",
    "funds_attracted",
    "roads_km",
    "activists",
    "new_members",
    "criminal_cases",
    "disputes",
    "petitions",
    "party_members",
)
"""Columns added up when villages merge (and shared out by weight when one splits)."""
POPULATION_WEIGHTED = ("income_per_capita", "distance_km")
"""Columns averaged with population weights."""
MEMBER_WEIGHTED = ("share_members_over60",)
"""Columns averaged with party-member weights."""
ANY_COLUMNS = ("team_reorganised", "distinctive_industry")
"""Yes/no columns: 1 if any of the merged villages has 1."""


def empty_crosswalk() -> pd.DataFrame:
    """Return an empty crosswalk frame.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CROSSWALK_COLUMNS`.
    """
    return pd.DataFrame(
        {
            "old_code": pd.Series([], dtype=object),
            "new_code": pd.Series([], dtype=object),
            "year_effective": pd.Series([], dtype="int64"),
            "change_type": pd.Series([], dtype=object),
            "weight": pd.Series([], dtype="float64"),
            "file_name": pd.Series([], dtype=object),
        }
    )


@dataclass
class CrosswalkFile:
    """A crosswalk file read and checked.

    Attributes
    ----------
    name : str
        File name.
    entries : pandas.DataFrame
        Columns :data:`CROSSWALK_COLUMNS` plus ``row`` and ``sheet`` (where each entry is).
    problems : list of Problem
        Everything wrong with it.
    """

    name: str
    entries: pd.DataFrame
    problems: list[Problem]


def read_crosswalk(path: str | Path, mappings: Mappings | None = None) -> CrosswalkFile:
    """Read and check a crosswalk file.

    Parameters
    ----------
    path : str or pathlib.Path
        CSV or XLSX with the columns of the module docstring (Chinese headers through
        ``crosswalk.yaml``).
    mappings : Mappings, optional
        Default: :func:`analysis.data.bureau.mappings.load_mappings` of ``data/mappings``.

    Returns
    -------
    CrosswalkFile
        Entries and problems (an empty frame if the file cannot be read).
    """
    path = Path(path)
    mappings = mappings or load_mappings()
    if not path.is_file():
        return CrosswalkFile(
            path.name,
            empty_crosswalk(),
            [
                file_problem(str(path), **message("ingest.crosswalk.missing_file"))
            ],
        )
    bt, problems = read_bureau(path, mappings, tables=("crosswalk",))
    if bt is None:
        return CrosswalkFile(path.name, empty_crosswalk(), problems)
    problems = list(bt.problems)
    n = len(bt)
    old = bt.values["old_code"].astype(object).fillna("")
    new = bt.values["new_code"].astype(object).fillna("")
    year = pd.to_numeric(bt.values["year_effective"].replace("", np.nan), errors="coerce").astype("float64")
    kind = bt.values["type"].astype(object).fillna("").str.lower()
    weight = bt.values["weight"]
    sheets = bt.sheets

    def add(i: int, column: str, words: Words) -> None:
        shown = bt.shown.get(column)
        problems.append(
            Problem(
                bt.name,
                int(bt.rows[i]),
                column,
                None if shown is None else str(shown[i]),
                sheet=None if sheets is None else str(sheets[i]),
                header=bt.headers.get(column),
                **words,
            )
        )

    rep = bt.reported
    for i in range(n):
        k = kind.iloc[i]
        if k not in CROSSWALK_TYPES:
            add(i, "type", message("ingest.crosswalk.bad_type", types=", ".join(CROSSWALK_TYPES)))
            continue
        for col, value, needed in (("old_code", old.iloc[i], k != "new"), ("new_code", new.iloc[i], k != "abolished")):
            if rep[col][i]:
                continue
            if needed and not value:
                add(i, col, message("ingest.crosswalk.code_needed", type=k))
            elif not needed and value:
                add(i, col, message("ingest.crosswalk.code_not_allowed", type=k))
            elif value and not pd.Series([value]).str.fullmatch(_CODE).iloc[0]:
                add(i, col, message("ingest.crosswalk.not_a_code"))
        y = year.iloc[i]
        if not rep["year_effective"][i] and (np.isnan(y) or y != int(y) or not 1990 <= y <= 2100):
            add(i, "year_effective", message("ingest.crosswalk.bad_year"))
        w = weight.iloc[i]
        if not np.isnan(w) and k != "split":
            add(i, "weight", message("ingest.crosswalk.weight_not_split"))
        elif not np.isnan(w) and not 0 < w <= 1:
            add(i, "weight", message("ingest.crosswalk.bad_weight"))
    out = pd.DataFrame(
        {
            "old_code": old.to_numpy(dtype=object),
            "new_code": new.to_numpy(dtype=object),
            "year_effective": pd.to_numeric(year, errors="coerce").fillna(0).astype("int64").to_numpy(),
            "change_type": kind.to_numpy(dtype=object),
            "weight": weight.to_numpy(dtype="float64"),
            "file_name": bt.name,
            "row": bt.rows,
            "sheet": sheets if sheets is not None else None,
        }
    )
    dup = out.duplicated(["old_code", "new_code", "year_effective"], keep="first").to_numpy()
    for i in np.flatnonzero(dup).tolist():
        add(i, "old_code", message("ingest.crosswalk.repeated_entry"))
    splits = out[(out["change_type"] == "split") & (out["old_code"] != "")]
    for (code, y), g in splits.groupby(["old_code", "year_effective"]):
        given = g["weight"].notna()
        if given.any() and not given.all():
            add(int(g.index[0]), "weight", message("ingest.crosswalk.partial_weights", code=code))
        elif given.all() and abs(g["weight"].sum() - 1) > 1e-6:
            add(int(g.index[0]), "weight", message("ingest.crosswalk.weights_sum", code=code, year=y,
                                                   total=g["weight"].sum()))
    return CrosswalkFile(bt.name, out, problems)


def _codes_text(codes: Iterable[str], limit: int = 10) -> str:
    codes = sorted(codes)
    more = f" and {len(codes) - limit} more" if len(codes) > limit else ""
    return ", ".join(codes[:limit]) + more


def check_code_changes(
    file_name: str,
    year: int,
    prev_year: int,
    prev_codes: set[str],
    new_codes: set[str],
    crosswalk: pd.DataFrame,
    where: dict[str, tuple[int, str | None]] | None = None,
    prev_source: str = "stored",
) -> list[Problem]:
    """Find village codes that appear or disappear between two years without a crosswalk entry.

    Parameters
    ----------
    file_name : str
        The panel file of ``year`` (problems are reported against it).
    year, prev_year : int
        The new year and the latest earlier year it is compared with.
    prev_codes, new_codes : set of str
        Village codes of the two years.
    crosswalk : pandas.DataFrame
        Entries (:data:`CROSSWALK_COLUMNS`) from the store and from this ingest.
    where : dict, optional
        Code to (row, sheet) in the file, for codes that appear.
    prev_source : str
        How to name where ``prev_year`` comes from (``stored`` or a file name).

    Returns
    -------
    list of Problem
        One per unexplained code, plus crosswalk entries that contradict the data.
    """
    where = where or {}
    cw = crosswalk[(crosswalk["year_effective"] > prev_year) & (crosswalk["year_effective"] <= year)]
    olds = set(cw.loc[cw["change_type"].isin(["merge", "split", "abolished"]), "old_code"])
    news = set(cw.loc[cw["change_type"].isin(["merge", "split", "new"]), "new_code"])
    continuing = set(cw.loc[cw["old_code"] == cw["new_code"], "old_code"])
    gone = prev_codes - new_codes
    came = new_codes - prev_codes
    problems: list[Problem] = []
    source = both("ingest.crosswalk.vanished.stored") if prev_source == "stored" else prev_source

    def flag(village: str, located: bool, words: Words) -> None:
        """Report a village code, at its row of the file if ``located`` (a code the file has)."""
        row, sheet = where.get(village, (None, None)) if located else (None, None)
        problems.append(Problem(file_name, row, "village_code", village, sheet=sheet, **words))

    for code in sorted(gone - olds):
        flag(code, False, message("ingest.crosswalk.vanished", prev_year=prev_year, source=source, year=year,
                                  code=code))
    for code in sorted(came - news):
        flag(code, True, message("ingest.crosswalk.unexplained_new", prev_year=prev_year, source=prev_source,
                                 year=year, code=code))
    for code in sorted((olds & new_codes) - continuing):
        flag(code, True, message("ingest.crosswalk.still_present", year=year, code=code))
    for code in sorted(news - new_codes):
        flag(code, False, message("ingest.crosswalk.new_code_missing", year=year))
    for code in sorted((olds - continuing) - prev_codes - gone):
        flag(code, False, message("ingest.crosswalk.old_code_unknown", prev_year=prev_year))
    return problems


def harmonise(panel: pd.DataFrame, crosswalk: pd.DataFrame) -> pd.DataFrame:
    """Express every year of a panel on the village codes in use after the last change.

    Merges: the rows of the old villages in the years before ``year_effective`` are
    combined into one row of the new code: :data:`SUM_COLUMNS` are added up,
    :data:`POPULATION_WEIGHTED` and :data:`MEMBER_WEIGHTED` columns averaged with
    population (party-member) weights, :data:`ANY_COLUMNS` are 1 if any village has 1,
    and terrain, name, township and county come from the most populous old village
    (township and county of the new code). Splits: the old village's row is shared out
    to the new codes, sums multiplied by the weight (so counts may not be whole
    numbers), averages and flags copied. Chains of changes are followed.
    ``new`` and ``abolished`` entries change nothing. The input is not modified.

    Parameters
    ----------
    panel : pandas.DataFrame
        Canonical panel (:func:`analysis.data.store.read_panel`).
    crosswalk : pandas.DataFrame
        Entries with ``old_code``, ``new_code``, ``year_effective``, ``change_type``,
        ``weight`` (the ``village_crosswalk`` table of the store).

    Returns
    -------
    pandas.DataFrame
        Same columns, one row per (current code, year), sorted.
    """
    cw = crosswalk[crosswalk["change_type"].isin(["merge", "split"])].copy()
    if cw.empty or panel.empty:
        return panel.copy().sort_values(["village_code", "year"]).reset_index(drop=True)
    df = schema.plain_dtypes(panel).copy()  # optional integer columns as numpy numbers (NaN where missing)
    # Default split weights: population shares of the new villages in year_effective.
    pop = df.set_index(["village_code", "year"])["population"]
    missing_w = (cw["change_type"] == "split") & cw["weight"].isna()
    if missing_w.any():
        for (_old, y), g in cw[missing_w].groupby(["old_code", "year_effective"]):
            p = np.array([pop.get((c, y), np.nan) for c in g["new_code"]], dtype=float)
            w = p / np.nansum(p) if np.isfinite(p).all() and np.nansum(p) > 0 else np.full(len(g), 1 / len(g))
            cw.loc[g.index, "weight"] = w
    cw["weight"] = cw["weight"].where(cw["change_type"] == "split", 1.0)
    df["_w"] = 1.0
    for ye in sorted(cw["year_effective"].unique()):
        step = cw[cw["year_effective"] == ye][["old_code", "new_code", "weight"]]
        hit = (df["year"] < ye) & df["village_code"].isin(step["old_code"])
        if not hit.any():
            continue
        moved = df[hit].merge(step, left_on="village_code", right_on="old_code", how="inner")
        moved["village_code"] = moved["new_code"]
        moved["_w"] = moved["_w"] * moved["weight"]
        moved = moved.drop(columns=["old_code", "new_code", "weight"])
        df = pd.concat([df[~hit], moved], ignore_index=True)
    df["township_code"] = df["village_code"].str.slice(0, 9)
    df["county_code"] = df["village_code"].str.slice(0, 6)
    w = df["_w"]
    for c in SUM_COLUMNS:
        df[c] = df[c] * w
    df["_popw"] = df["population"].astype(float)
    df["_memw"] = df["party_members"].astype(float)
    for c in POPULATION_WEIGHTED:
        df[f"_{c}"] = df[c] * df["_popw"]
    for c in MEMBER_WEIGHTED:
        df[f"_{c}"] = df[c] * df["_memw"]
    df = df.sort_values(["village_code", "year", "_popw"], ascending=[True, True, False], kind="mergesort")
    g = df.groupby(["village_code", "year"], sort=True)
    out = g[list(SUM_COLUMNS)].sum(min_count=1)  # missing stays missing
    for c in POPULATION_WEIGHTED:
        out[c] = g[f"_{c}"].sum() / g["_popw"].sum()
    for c in MEMBER_WEIGHTED:
        out[c] = g[f"_{c}"].sum() / g["_memw"].sum().replace(0, np.nan)
        out[c] = out[c].fillna(g[c].mean())
    for c in ANY_COLUMNS:
        out[c] = g[c].max()
    for c in ("village_name", "township_code", "county_code", "terrain"):
        out[c] = g[c].first()
    out = out.reset_index()
    out = out[list(panel.columns)]
    for c in panel.columns:
        if c in SUM_COLUMNS and pd.api.types.is_integer_dtype(panel[c]):
            vals = out[c].to_numpy(dtype=float)
            if np.allclose(vals, np.round(vals), equal_nan=True):
                out[c] = pd.Series(np.round(vals), index=out.index).astype(panel[c].dtype)
        elif c in ANY_COLUMNS:
            out[c] = out[c].astype(panel[c].dtype)
    return out.sort_values(["village_code", "year"]).reset_index(drop=True)
