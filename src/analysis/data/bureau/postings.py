"""Lists of first secretaries: sending-unit types, batch labels and posting ids.

The organisation department's lists name the sending unit and, usually, its category in
Chinese (政法, 农业, 经济实力强的单位, 党政机关); :func:`match_unit_type` reads the type
from either through the words of ``unit_types`` in ``postings.yaml``. Batch names (第二批)
become labels through ``batches`` (``city-{year}``, by start year). A list without an id
column gets ids made from the village, the name and the start date
(:func:`secretary_id`); names are used for nothing else and are not stored.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data.bureau.cells import CellLog
from analysis.data.bureau.mappings import TableMap
from analysis.data.bureau.text import normalise_header
from analysis.data.problems import both, message


def match_unit_type(text: str, tm: TableMap) -> tuple[str | None, list[str]]:
    """Return the sending-unit type a cell or a unit name stands for.

    Parameters
    ----------
    text : str
        A unit-type cell (``政法``) or the name of a sending unit (``北湖市公安局``).
    tm : TableMap
        The postings mapping (its ``unit_types``).

    Returns
    -------
    tuple of (str or None, list of str)
        The type (None if none or several match) and the types that matched.

    Examples
    --------
    >>> from analysis.data.bureau.mappings import load_mappings
    >>> match_unit_type("公检法司", load_mappings().postings)
    ('law', ['law'])
    """
    t = normalise_header(text)
    if t in schema.UNIT_TYPES:
        return t, [t]
    exact = [k for k, words in tm.unit_types.items() if t in words]
    if len(exact) == 1:
        return exact[0], exact
    found = [k for k, words in tm.unit_types.items() if any(w and w in t for w in words)]
    if len(found) == 1:
        return found[0], found
    return None, found


def _unit_types(
    log: CellLog, values: pd.Series, shown: np.ndarray, tm: TableMap, from_unit_names: bool
) -> tuple[pd.Series, np.ndarray]:
    reported = np.zeros(len(values), dtype=bool)
    out = values.copy()
    cache: dict[str, tuple[str | None, list[str]]] = {}
    col = "unit_type" if not from_unit_names else "sending_unit"
    for v in pd.unique(values.to_numpy(dtype=object)):
        if v != "":
            cache[v] = match_unit_type(v, tm)
    arr = values.to_numpy(dtype=object)
    unmatched = np.zeros(len(values), dtype=bool)
    several = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(arr):
        if v == "":
            continue
        t, found = cache[v]
        if t is None:
            (several if found else unmatched)[i] = True
        else:
            out.iloc[i] = t
    words = "; ".join(f"{k}: {'、'.join(w[:4])}" for k, w in tm.unit_types.items())
    what = both("ingest.bureau.unit_type_unknown.unit_type" if not from_unit_names
                else "ingest.bureau.unit_type_unknown.unit_name")
    log.cells(col, unmatched, shown, **message("ingest.bureau.unit_type_unknown", what=what, words=words))
    log.cells(col, several, shown, **message("ingest.bureau.unit_type_ambiguous"))
    reported |= unmatched | several
    if from_unit_names and (~reported & (values != "").to_numpy(dtype=bool)).any():
        log.note("ingest.bureau.unit_type_from_names")
    out[reported] = ""
    return out, reported


def _batches(values: pd.Series, start: pd.Series, tm: TableMap) -> tuple[pd.Series, int]:
    years = start.str.slice(0, 4)
    out = values.copy()
    mapped = 0
    for i, v in enumerate(values.to_numpy(dtype=object)):
        y = years.iloc[i] if isinstance(years.iloc[i], str) and years.iloc[i] else "unknown"
        if v == "":
            out.iloc[i] = tm.default_batch.replace("{year}", y)
            mapped += 1
            continue
        key = normalise_header(v)
        for word, template in tm.batches.items():
            if word in key:
                out.iloc[i] = template.replace("{year}", y)
                mapped += 1
                break
    return out, mapped


def secretary_id(village_code: str, name: str, start_date: str) -> str:
    """Return the id of a posting listed without one.

    Parameters
    ----------
    village_code, name, start_date : str
        Canonical village code, the secretary's name as written (normalised), and the
        start date ``YYYY-MM-DD``.

    Returns
    -------
    str
        ``FS-`` and the first 10 hexadecimal digits (upper case) of the SHA-256 of
        ``village_code|name|start_date``: the same list gives the same ids; the name
        is not stored.

    Examples
    --------
    >>> secretary_id("990101001001", "张三", "2025-03-15")[:3]
    'FS-'
    """
    digest = hashlib.sha256(f"{village_code}|{name}|{start_date}".encode()).hexdigest()
    return "FS-" + digest[:10].upper()


def postings_extras(
    log: CellLog,
    tm: TableMap,
    values: dict[str, pd.Series],
    shown: dict[str, np.ndarray],
    reported: dict[str, np.ndarray],
    absent: set[str],
    n: int,
) -> None:
    """Derive the unit types, batches and ids of a postings list, in place.

    Parameters
    ----------
    log : CellLog
        Where problems and notes go.
    tm : TableMap
        The postings mapping.
    values, shown, reported : dict
        Canonical column to values, to the cells as written, and to the cells reported
        (updated).
    absent : set of str
        Canonical columns the list does not have.
    n : int
        Number of rows.
    """
    from_names = "unit_type" in absent
    source = values["sending_unit"] if from_names else values["unit_type"]
    src_shown = shown["sending_unit"] if from_names else shown["unit_type"]
    types, bad = _unit_types(log, source.astype(object), src_shown, tm, from_names)
    values["unit_type"] = types
    reported["unit_type"] = reported.get("unit_type", np.zeros(n, dtype=bool)) | bad
    if from_names:
        reported["unit_type"] |= reported.get("sending_unit", np.zeros(n, dtype=bool))
    batches, mapped = _batches(values["batch"].astype(object), values["start_date"].astype(object), tm)
    values["batch"] = batches
    if "batch" in absent:
        log.note("ingest.bureau.default_batch", batch=tm.default_batch)
    elif mapped:
        log.note("ingest.bureau.batch_names", count=mapped)
    if "secretary_id" in absent:
        if "name" in absent:
            log.column("secretary_id", header="", **message("ingest.bureau.no_id_nor_name"))
            reported["secretary_id"] = np.ones(n, dtype=bool)
            values["secretary_id"] = pd.Series([""] * n, dtype=object)
            return
        names = values["name"].astype(object)
        empty = (names == "").to_numpy(dtype=bool)
        log.cells("name", empty, shown["name"], **message("ingest.bureau.name_missing"))
        vc = values["village_code"].astype(object).to_numpy()
        st = values["start_date"].astype(object).to_numpy()
        ids = np.array(
            [secretary_id(v, nm, s) if (nm and v and s) else "" for v, nm, s in zip(vc, names.to_numpy(), st,
                                                                                   strict=True)],
            dtype=object,
        )
        values["secretary_id"] = pd.Series(ids, dtype=object)
        shown["secretary_id"] = names.to_numpy(dtype=object)
        log.headers["secretary_id"] = log.headers.get("name", "姓名")
        reported["secretary_id"] = empty | reported.get("village_code", np.zeros(n, bool)) | reported.get(
            "start_date", np.zeros(n, bool)) | (vc == "") | (st == "")
        log.note("ingest.bureau.made_ids")
