"""Attributes the bureau did not repeat, carried forward from the village's latest stored year.

Bureau tables leave unchanged attributes empty or write ``—`` (distance, terrain,
industry: the ``carry_forward`` list of ``panel.yaml``). The ingest takes such a missing
value from the village's latest stored year and says so in its report; a village the
store has no earlier year of is a problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data import store as st
from analysis.data.bureau.mappings import TableMap
from analysis.data.problems import Note, Problem
from analysis.data.readers import cell_text
from analysis.data.validate import TableCells


def carry_forward(cells: TableCells, tm: TableMap, store: Path) -> tuple[list[Problem], list[Note]]:
    """Fill missing ``carry_forward`` attributes of a bureau panel from the latest stored year, in place.

    Parameters
    ----------
    cells : TableCells
        A bureau panel file's cells (its columns and ``reported`` masks are updated).
    tm : TableMap
        The panel mapping (its ``carry_forward`` attributes).
    store : pathlib.Path
        The store (need not exist).

    Returns
    -------
    tuple of (list of Problem, list of Note)
        Villages the store cannot fill (one problem per row, or one for the column if
        the file lacks it), and one note per attribute filled.
    """
    cols = [c for c in tm.carry_forward if c in cells.columns]
    if not cols:
        return [], []
    need = {}
    for c in cols:
        v = cells.columns[c]
        empty = np.array(v.isna() if pd.api.types.is_float_dtype(v.dtype) else (v == ""), dtype=bool)
        empty &= ~cells.reported[c]
        if empty.any():
            need[c] = empty
    if not need:
        return [], []
    codes = cells.columns["village_code"].astype(str).to_numpy(dtype=object)
    latest = pd.DataFrame()
    if store.is_file():
        wanted = sorted({codes[i] for m in need.values() for i in np.flatnonzero(m)})
        latest = st.latest_panel_values(store, wanted, cols)
    latest = latest.set_index("village_code") if len(latest) else latest
    problems: list[Problem] = []
    notes: list[Note] = []
    spec = {c.name: c for c in schema.PANEL_COLUMNS}
    for c, empty in need.items():
        col = cells.columns[c].copy()
        idx = np.flatnonzero(empty)
        found = np.array([len(latest) > 0 and codes[i] in latest.index for i in idx], dtype=bool)
        if found.any():
            fill_idx = idx[found]
            vals = latest.loc[codes[fill_idx], c].to_numpy()
            if pd.api.types.is_float_dtype(col.dtype):
                col.iloc[fill_idx] = vals.astype(float)
            else:
                col = col.astype(object)
                col.iloc[fill_idx] = [cell_text(v) for v in vals]
            cells.columns[c] = col
            rows = ", ".join(str(r) for r in cells.rows[fill_idx][:5]) + (" ..." if len(fill_idx) > 5 else "")
            notes.append(
                Note(
                    f"{c}: {len(fill_idx)} missing values taken from the village's latest stored year (rows {rows})",
                    f"{c}：{len(fill_idx)} 个缺失值取自该村最近一年的入库数据（第 {rows} 行）",
                )
            )
        lost = idx[~found]
        if len(lost) and c not in cells.headers:  # the file has no such column at all
            rows = ", ".join(str(r) for r in cells.rows[lost][:5]) + (" ..." if len(lost) > 5 else "")
            problems.append(
                Problem(
                    cells.name,
                    None,
                    c,
                    None,
                    f"the file has no {c} column, and the store has no earlier year to take it from for "
                    f"{len(lost)} villages (rows {rows})",
                    f"add the column {spec[c].label_zh} ({spec[c].description}) to the file",
                    problem_zh=f"文件中没有{spec[c].label_zh}列，"
                    f"且数据库中没有 {len(lost)} 个村（第 {rows} 行）往年的数据可以沿用",
                    action_zh=f"在文件中添加“{spec[c].label_zh}”列",
                )
            )
            cells.reported[c][lost] = True
            continue
        shown = cells.shown.get(c)
        for i in lost:
            problems.append(
                cells.problem(
                    int(i),
                    c,
                    str(shown[i]) if shown is not None and shown[i] != "" else None,
                    "is missing, and the store has no earlier year of this village to take it from",
                    f"fill in {c} ({spec[c].description}) for this village",
                    "缺失，且数据库中没有该村往年的数据可以沿用",
                    f"为该村填写{spec[c].label_zh}",
                )
            )
            cells.reported[c][i] = True
    return problems, notes
