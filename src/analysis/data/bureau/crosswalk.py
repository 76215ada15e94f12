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
from analysis.data.problems import Problem, file_problem

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
                file_problem(
                    str(path),
                    "the crosswalk file does not exist",
                    "check the path given as crosswalk (--crosswalk)",
                    "村代码变更对照表文件不存在",
                    "检查指定的对照表路径",
                )
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

    def add(i: int, column: str, problem: str, action: str, problem_zh: str, action_zh: str) -> None:
        shown = bt.shown.get(column)
        problems.append(
            Problem(
                bt.name,
                int(bt.rows[i]),
                column,
                None if shown is None else str(shown[i]),
                problem,
                action,
                sheet=None if sheets is None else str(sheets[i]),
                header=bt.headers.get(column),
                problem_zh=problem_zh,
                action_zh=action_zh,
            )
        )

    rep = bt.reported
    for i in range(n):
        k = kind.iloc[i]
        if k not in CROSSWALK_TYPES:
            add(i, "type", f"is not one of {', '.join(CROSSWALK_TYPES)}",
                "write merge (合并), split (拆分), new (新设) or abolished (撤销)",
                "不是允许的变更类型", "填写 合并、拆分、新设 或 撤销")
            continue
        for col, value, needed in (("old_code", old.iloc[i], k != "new"), ("new_code", new.iloc[i], k != "abolished")):
            if rep[col][i]:
                continue
            if needed and not value:
                add(i, col, f"is empty, but a {k} needs it", "fill in the 12-digit code",
                    f"为空，但“{k}”类型必须填写", "填写12位代码")
            elif not needed and value:
                add(i, col, f"must be empty for type {k}", "leave it empty or correct the type",
                    f"“{k}”类型不应填写此项", "清空该单元格或更正类型")
            elif value and not pd.Series([value]).str.fullmatch(_CODE).iloc[0]:
                add(i, col, "is not a 12-digit code", "write the full 12-digit code as text",
                    "不是12位代码", "填写完整的12位代码（文本格式）")
        y = year.iloc[i]
        if not rep["year_effective"][i] and (np.isnan(y) or y != int(y) or not 1990 <= y <= 2100):
            add(i, "year_effective", "is not a year from 1990 to 2100", "write the first year the new code is used",
                "不是1990至2100之间的年份", "填写新代码开始使用的年份")
        w = weight.iloc[i]
        if not np.isnan(w) and k != "split":
            add(i, "weight", "is given, but only splits have weights", "leave the weight empty",
                "只有拆分才需要权重", "清空权重")
        elif not np.isnan(w) and not 0 < w <= 1:
            add(i, "weight", "is not a share above 0 and at most 1", "write the share (0.4 or 40%)",
                "不是大于0且不超过1的比例", "填写比例（如 0.4 或 40%）")
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
    for i in np.flatnonzero(dup):
        add(int(i), "old_code", "repeats an earlier entry (same old code, new code and year)",
            "delete the repeated row", "与前面的某行重复（原代码、新代码和年份都相同）", "删除重复的行")
    splits = out[(out["change_type"] == "split") & (out["old_code"] != "")]
    for (code, y), g in splits.groupby(["old_code", "year_effective"]):
        given = g["weight"].notna()
        if given.any() and not given.all():
            add(int(g.index[0]), "weight", f"is given for some but not all parts of the split of {code}",
                "give a weight for every new village of this split, or for none (then population shares are used)",
                f"{code} 的拆分只给了部分新村的权重", "为该拆分的每个新村都填写权重，或都不填（按人口比例拆分）")
        elif given.all() and abs(g["weight"].sum() - 1) > 1e-6:
            add(int(g.index[0]), "weight", f"the weights of the split of {code} in {y} add up to "
                f"{g['weight'].sum():g}, not 1", "correct the weights so that they add up to 1",
                f"{code} 在 {y} 年拆分的权重之和为 {g['weight'].sum():g}，不是1", "更正权重，使其和为1")
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
    for code in sorted(gone - olds):
        problems.append(
            Problem(
                file_name,
                None,
                "village_code",
                code,
                f"is a village of the {prev_year} panel ({prev_source}) but is not in this {year} file, and no "
                "crosswalk entry says why",
                f"if the village was merged into another, add to the crosswalk: old_code={code}, new_code=<the code "
                f"it merged into>, year_effective={year}, type=merge; if it was split, one line per new village "
                f"with type=split; if it no longer exists, type=abolished with new_code empty; if the file left it "
                "out by mistake, add its row",
                problem_zh=f"是 {prev_year} 年（{'已入库' if prev_source == 'stored' else prev_source}）的村，"
                f"但本 {year} 年文件中没有，对照表中也没有说明",
                action_zh=f"如果该村并入了其他村，在村代码变更对照表中添加一行：原代码={code}，新代码=<并入的村代码>，"
                f"生效年份={year}，"
                "类型=合并；如果拆分了，每个新村一行，类型=拆分；如果撤销了，类型=撤销，新代码留空；"
                "如果是文件漏填，补上该村的行",
            )
        )
    for code in sorted(came - news):
        row, sheet = where.get(code, (None, None))
        problems.append(
            Problem(
                file_name,
                row,
                "village_code",
                code,
                f"is not a village of the {prev_year} panel ({prev_source}) and no crosswalk entry says where it "
                "comes from",
                f"if it results from a merger or a split, add to the crosswalk: old_code=<the former code>, "
                f"new_code={code}, year_effective={year}, type=merge or split; if it is a new village, add it with "
                "old_code empty and type=new; if the code is mistyped, correct it",
                problem_zh=f"不是 {prev_year} 年的村，对照表中也没有说明其来源",
                action_zh=f"如果由合并或拆分而来，在对照表中添加：原代码=<原来的代码>，新代码={code}，生效年份={year}，"
                f"类型=合并或拆分；"
                "如果是新设的村，原代码留空、类型=新设；如果代码填错了，请更正",
                sheet=sheet,
            )
        )
    for code in sorted((olds & new_codes) - continuing):
        problems.append(
            Problem(
                file_name,
                where.get(code, (None, None))[0],
                "village_code",
                code,
                f"is still in this {year} file, but the crosswalk says it ended in {year} or earlier (merged, split "
                "or abolished)",
                "correct the crosswalk (if the village continues under its code, add a line old_code=new_code="
                f"{code}) or the file",
                problem_zh=f"仍在本 {year} 年文件中，但对照表说它已在 {year} 年或之前合并、拆分或撤销",
                action_zh=f"更正对照表（如该村沿用原代码，添加一行 原代码=新代码={code}）或更正文件",
                sheet=where.get(code, (None, None))[1],
            )
        )
    for code in sorted(news - new_codes):
        problems.append(
            Problem(
                file_name,
                None,
                "village_code",
                code,
                f"is a new code of the crosswalk from {year} or earlier but is not in this {year} file",
                "add the village's row to the file or correct the crosswalk",
                problem_zh=f"是对照表中 {year} 年或之前启用的新代码，但本 {year} 年文件中没有",
                action_zh="在文件中补上该村，或更正对照表",
            )
        )
    for code in sorted((olds - continuing) - prev_codes - gone):
        problems.append(
            Problem(
                file_name,
                None,
                "village_code",
                code,
                f"is an old code of the crosswalk but is not a village of the {prev_year} panel",
                "correct the old code in the crosswalk",
                problem_zh=f"是对照表中的原代码，但不是 {prev_year} 年的村",
                action_zh="更正对照表中的原代码",
            )
        )
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
