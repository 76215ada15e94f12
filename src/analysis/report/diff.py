"""``study diff RUN_A RUN_B``: which headline estimates moved between two runs, by how much, and why.

The comparison reads only the two runs' ``results.json`` files. Estimates are matched by
their place in the document (section, outcome, estimator/aggregation, term). Reasons come
from the ``data`` sections: years present in one run only (a new year), cohorts present in
one run only (a new batch of first secretaries), and years present in both whose data
fingerprints differ (revised earlier data), plus changed options.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, RootModel

from analysis.report.results_json import load_results, parse_results
from analysis.report.results_schema import DataSection, Interval, MainEffectsOptions, Results

_COLUMNS = ["section", "outcome", "item", "estimate_a", "estimate_b", "change", "change_in_se",
            "conf_low_b", "conf_high_b", "significant_a", "significant_b"]


def _is_estimate(node: object) -> bool:
    return isinstance(node, Interval) and {"estimate", "conf_low", "conf_high"} <= set(type(node).model_fields)


def _records(doc: Results) -> dict[tuple[str, str, str], Interval]:
    """Flatten the estimates of a results document, keyed by (section, outcome, item).

    Every object with an estimate and an interval (:class:`~analysis.report.results_schema.Interval`)
    is an estimate; its item is the path of field names (and list positions, or the record's
    ``term``) below the outcome. Fields are visited in name order, missing ones skipped.
    """
    out: dict[tuple[str, str, str], Interval] = {}

    def walk(node, section, outcome, path):
        if node is None:
            return
        if _is_estimate(node):
            out[(section, outcome, "/".join(path))] = node
            return
        if isinstance(node, RootModel):
            walk(node.root, section, outcome, path)
        elif isinstance(node, BaseModel):
            for k in sorted(type(node).model_fields):
                walk(getattr(node, k), section, outcome, [*path, k])
        elif isinstance(node, Mapping):
            for k in sorted(node):
                walk(node[k], section, outcome, [*path, str(k)])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                label = getattr(v, "term", None) or str(i)
                walk(v, section, outcome, [*path, str(label)])

    for section in sorted(type(doc).model_fields):
        body = getattr(doc, section)
        if section in ("data", "meta") or body is None:
            continue
        if section == "main_effects":
            body = body.outcomes
        elif isinstance(body, RootModel):
            body = body.root
        items = body.items() if isinstance(body, Mapping) else ((k, getattr(body, k)) for k in type(body).model_fields)
        for outcome, node in sorted(items):
            walk(node, section, outcome, [])
    return out


def _significant(r: Interval) -> bool | None:
    lo, hi = r.conf_low, r.conf_high
    if lo is None or hi is None:
        return None
    return bool(lo > 0 or hi < 0)


def reasons(doc_a: Results | Mapping[str, Any], doc_b: Results | Mapping[str, Any]) -> list[str]:
    """Explain what differs in the data behind two runs.

    Parameters
    ----------
    doc_a, doc_b : Results or mapping
        The two ``results.json`` documents.

    Returns
    -------
    list of str
        One sentence per reason (empty if the data and options are the same).
    """
    doc_a, doc_b = parse_results(doc_a), parse_results(doc_b)
    a, b = doc_a.data or DataSection(), doc_b.data or DataSection()
    out = []
    ha, hb = a.year_hashes, b.year_hashes
    new_years = sorted(set(hb) - set(ha))
    gone_years = sorted(set(ha) - set(hb))
    revised = sorted(y for y in set(ha) & set(hb) if ha[y] != hb[y])
    if new_years:
        out.append(f"new year(s) of data in B: {', '.join(new_years)}")
    if gone_years:
        out.append(f"year(s) no longer in B: {', '.join(gone_years)}")
    if revised:
        out.append(f"revised data for year(s): {', '.join(revised)}")
    ca, cb = a.villages_by_cohort, b.villages_by_cohort
    for g in sorted(set(cb) - set(ca)):
        out.append(f"new cohort {g} in B ({cb[g]} villages)")
    for g in sorted(set(ca) & set(cb)):
        if ca[g] != cb[g]:
            out.append(f"cohort {g} has {cb[g]} villages in B against {ca[g]} in A")
    oa = doc_a.main_effects.options if doc_a.main_effects else MainEffectsOptions()
    ob = doc_b.main_effects.options if doc_b.main_effects else MainEffectsOptions()
    changed = oa.changed(ob)
    if changed:
        out.append(f"estimation options differ: {', '.join(changed)}")
    return out


def diff_runs(run_a: Path, run_b: Path, min_change_in_se: float = 0.0) -> tuple[pd.DataFrame, list[str]]:
    """Compare the estimates of two runs.

    Parameters
    ----------
    run_a, run_b : pathlib.Path
        Run folders (each with a ``results.json``).
    min_change_in_se : float, default 0
        Keep only estimates that moved by at least this many of B's standard errors.

    Returns
    -------
    (pandas.DataFrame, list of str)
        One row per estimate present in either run (``estimate_a`` or ``estimate_b``
        missing when it exists in one only), sorted by the size of the move in standard
        errors; and the reasons from :func:`reasons`.
    """
    doc_a, doc_b = load_results(run_a), load_results(run_b)
    ra, rb = _records(doc_a), _records(doc_b)
    rows = []
    for key in sorted(set(ra) | set(rb)):
        a, b = ra.get(key), rb.get(key)
        ea, eb = (a.estimate if a else None), (b.estimate if b else None)
        change = None if ea is None or eb is None else eb - ea
        se = getattr(b, "std_error", None) or getattr(a, "std_error", None)
        in_se = None if change is None or not se else change / se
        rows.append({"section": key[0], "outcome": key[1], "item": key[2], "estimate_a": ea, "estimate_b": eb,
                     "change": change, "change_in_se": in_se, "conf_low_b": b.conf_low if b else None,
                     "conf_high_b": b.conf_high if b else None, "significant_a": _significant(a) if a else None,
                     "significant_b": _significant(b) if b else None})
    df = pd.DataFrame(rows, columns=_COLUMNS)
    if min_change_in_se > 0:
        keep = df["change_in_se"].isna() | (df["change_in_se"].abs() >= min_change_in_se)
        df = df[keep]
    # Moves measured in standard errors first (largest first), then moves without a standard
    # error (e.g. percentages), then estimates present in one run only.
    tier = df["change_in_se"].notna().map({True: 0, False: 1}).where(df["change"].notna(), 2)
    size = df["change_in_se"].abs().fillna(df["change"].abs()).fillna(0.0)
    df = df.assign(_t=tier, _s=-size).sort_values(["_t", "_s", "section", "outcome", "item"],
                                                 kind="mergesort").drop(columns=["_t", "_s"])
    return df.reset_index(drop=True), reasons(doc_a, doc_b)


def format_diff(df: pd.DataFrame, why: list[str], limit: int = 40) -> str:
    """Render a diff as plain text: the reasons, then the largest moves.

    Parameters
    ----------
    df : pandas.DataFrame
        From :func:`diff_runs`.
    why : list of str
        Reasons.
    limit : int, default 40
        Rows shown.

    Returns
    -------
    str
        The report.
    """
    lines = ["Why the estimates may differ:"]
    lines += [f"  - {w}" for w in why] or ["  - no difference in the data or options was found"]
    moved = df[df["change"].notna() & (df["change"] != 0)]
    only = df[df["change"].isna()]
    lines.append(f"{len(moved)} estimates changed, {len(df) - len(moved) - len(only)} unchanged, "
                 f"{len(only)} present in one run only.")
    flips = moved[moved["significant_a"] != moved["significant_b"]]
    if len(flips):
        lines.append(f"{len(flips)} changed whether their 95% interval excludes zero:")
        for r in flips.itertuples():
            lines.append(f"  * {r.section} / {r.outcome} / {r.item}: {r.estimate_a:.4g} -> {r.estimate_b:.4g}")
    lines.append("Largest moves (in standard errors of run B):")
    for r in moved.head(limit).itertuples():
        se = "" if pd.isna(r.change_in_se) else f" ({r.change_in_se:+.2f} SE)"
        lines.append(f"  {r.section} / {r.outcome} / {r.item}: {r.estimate_a:.4g} -> {r.estimate_b:.4g}{se}")
    for r in only.head(limit).itertuples():
        side = "B only" if pd.isna(r.estimate_a) else "A only"
        lines.append(f"  [{side}] {r.section} / {r.outcome} / {r.item}")
    return "\n".join(lines) + "\n"
