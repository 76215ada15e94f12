"""Attributes the bureau did not repeat, carried forward from the village's latest earlier stored year.

Bureau tables leave unchanged attributes empty or write ``—`` (distance, terrain,
industry: the ``carry_forward`` list of ``panel.yaml``). The ingest takes such a missing
value from the village's latest stored year *before* the row's year, never from a later
one (a 2024 table must not take 2025's values), and says so in its report. A village the
store has no earlier year of keeps the value missing: these attributes are optional
covariates (:mod:`analysis.data.schema`), and the ingest report lists what is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data import store as st
from analysis.data.bureau.cells import rows_text
from analysis.data.bureau.mappings import TableMap
from analysis.data.problems import Note, Problem, note
from analysis.data.readers import cell_text
from analysis.data.validate import TableCells


def carry_forward(cells: TableCells, tm: TableMap, store: Path) -> tuple[list[Problem], list[Note]]:
    """Fill missing ``carry_forward`` attributes of a bureau panel from earlier stored years, in place.

    Parameters
    ----------
    cells : TableCells
        A bureau panel file's cells (its columns are updated; cells already reported, and
        formula cells, are left alone).
    tm : TableMap
        The panel mapping (its ``carry_forward`` attributes).
    store : pathlib.Path
        The store (need not exist).

    Returns
    -------
    tuple of (list of Problem, list of Note)
        No problems (kept for the ingest's uniform steps); one note per attribute filled,
        naming the years the values come from.
    """
    cols = [c for c in tm.carry_forward if c in cells.columns]
    if not cols or not store.is_file() or "year" not in cells.columns:
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
    years = pd.to_numeric(cells.columns["year"], errors="coerce").to_numpy(dtype=float)
    notes: list[Note] = []
    filled: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {c: [] for c in need}
    for year in sorted({int(y) for y in years[np.isfinite(years)]}):
        in_year = years == year
        for c, empty in need.items():
            idx = np.flatnonzero(empty & in_year)
            if not len(idx):
                continue
            latest = st.latest_panel_values(store, sorted({codes[i] for i in idx}), [c], before=year)
            if not len(latest):
                continue
            latest = latest.set_index("village_code")
            found = np.array([codes[i] in latest.index for i in idx], dtype=bool)
            if found.any():
                take = idx[found]
                filled[c].append((take, latest.loc[codes[take], c].to_numpy(),
                                  latest.loc[codes[take], "year"].to_numpy(dtype=int)))
    for c, parts in filled.items():
        if not parts:
            continue
        col = cells.columns[c].copy()
        take = np.concatenate([t for t, _, _ in parts])
        vals = np.concatenate([v for _, v, _ in parts])
        source_years = sorted({int(y) for _, _, ys in parts for y in ys})
        if pd.api.types.is_float_dtype(col.dtype):
            col.iloc[take] = vals.astype(float)
        else:
            col = col.astype(object)
            col.iloc[take] = [cell_text(v) for v in vals]
        cells.columns[c] = col
        order = np.argsort(take, kind="stable")
        rows = rows_text(cells.rows[take[order]], None)
        from_years = ", ".join(str(y) for y in source_years)
        notes.append(
            note("ingest.bureau.carried_forward", column=c, count=len(take), years=from_years, rows=rows)
        )
    return [], notes
