"""The known truth of the synthetic city: its cells, their aggregates, and whether it applies to the store.

**Truth.** ``att`` of a cell (outcome, cohort ``g``, year ``t``) is the average over the
cohort's villages of ``E[Y_it(1) - Y_it(0)]``, the expected-value effect given each
village's parameters (not the realised difference of one draw); ``att_prop`` is
``sum E[Y(1) - Y(0)] / sum E[Y(0)]``. Pre-treatment cells are 0 unless
``anticipation > 0`` (then the profile starts ``anticipation`` years early).
Aggregates use the weights of R ``did::aggte`` (:func:`aggregate_truth`).

``study simulate`` writes ``truth_aggregates.csv`` beside the canonical files it
ingests. :func:`load_truth` returns those truths only if the store's panel years and
postings were last written from the very files the simulator wrote (matched by sha256
in the store's provenance log). After a real year is ingested the check fails and the
study reports no truth: it says so and skips the comparison, rather than comparing
estimates with a truth that no longer describes the data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paths
from analysis.data import schema
from analysis.data.store import read_provenance
from analysis.data.synthetic.calibration import CADRES


def aggregate_truth(cells: pd.DataFrame) -> pd.DataFrame:
    """Aggregate cell truths ATT(g, t) with the weights of R ``did::aggte``.

    Parameters
    ----------
    cells : pandas.DataFrame
        One row per outcome x cohort x year: ``outcome``, ``cohort``, ``year``, ``att``,
        ``y0_mean``, ``n_villages`` and optionally ``cadre_type`` (then every aggregate
        is computed within each cadre type). Not modified.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome, aggregation, cohort, year, event_time, cadre_type, value,
        y0_mean, value_prop``. ``aggregation`` is ``simple`` (ATT(g,t) over post cells
        ``t >= g`` weighted by cohort size), ``event`` (per event time ``e`` over all
        cells with ``t - g = e``, cohort-size weighted; pre-periods included),
        ``event_overall`` (mean of ``event`` over ``e >= 0``), ``group`` (per cohort, mean
        over its post years), ``group_overall`` (``group`` weighted by cohort size),
        ``calendar`` (per year ``t >= min g``, cohort-size weighted over ``g <= t``) and
        ``calendar_overall`` (mean of ``calendar``). ``y0_mean`` is the untreated mean
        aggregated with the same weights and ``value_prop = value / y0_mean``.

    Examples
    --------
    >>> cells = pd.DataFrame({"outcome": "y", "cohort": [2023, 2023, 2024, 2024],
    ...                       "year": [2023, 2024, 2023, 2024], "att": [1.0, 2.0, 0.0, 4.0],
    ...                       "y0_mean": 10.0, "n_villages": [1, 1, 3, 3]})
    >>> agg = aggregate_truth(cells)
    >>> float(agg.loc[agg["aggregation"] == "simple", "value"].iloc[0])  # (1 + 2 + 3*4) / 5
    3.0
    """
    c = cells.copy()
    if "cadre_type" not in c.columns:
        c["cadre_type"] = pd.NA
        keys = ["outcome"]
    else:
        keys = ["outcome", "cadre_type"]
    c["event_time"] = c["year"] - c["cohort"]
    c["w"] = c["n_villages"].astype(float)
    c["wy"] = c["att"] * c["w"]
    c["w0"] = c["y0_mean"] * c["w"]
    post = c[c["year"] >= c["cohort"]]
    rows: list[pd.DataFrame] = []

    def weighted(frame: pd.DataFrame, by: list[str], name: str) -> pd.DataFrame:
        g = frame.groupby(by, sort=True, dropna=False)[["wy", "w0", "w"]].sum().reset_index()
        g["value"] = g["wy"] / g["w"]
        g["y0_mean"] = g["w0"] / g["w"]
        g["aggregation"] = name
        return g.drop(columns=["wy", "w0", "w"])

    def mean_of(frame: pd.DataFrame, name: str) -> pd.DataFrame:
        g = frame.groupby(keys, sort=True, dropna=False)[["value", "y0_mean"]].mean().reset_index()
        g["aggregation"] = name
        return g

    rows.append(weighted(post, keys, "simple"))
    event = weighted(c, [*keys, "event_time"], "event")
    rows += [event, mean_of(event[event["event_time"] >= 0], "event_overall")]
    grp = (
        post.groupby([*keys, "cohort"], sort=True, dropna=False)
        .agg(value=("att", "mean"), y0_mean=("y0_mean", "mean"), w=("w", "first"))
        .reset_index()
    )
    grp["aggregation"] = "group"
    overall = grp.assign(wy=grp["value"] * grp["w"], w0=grp["y0_mean"] * grp["w"])
    overall = overall.groupby(keys, sort=True, dropna=False)[["wy", "w0", "w"]].sum().reset_index()
    overall["value"] = overall["wy"] / overall["w"]
    overall["y0_mean"] = overall["w0"] / overall["w"]
    overall["aggregation"] = "group_overall"
    rows += [grp.drop(columns=["w"]), overall.drop(columns=["wy", "w0", "w"])]
    calendar = weighted(post, [*keys, "year"], "calendar")
    rows += [calendar, mean_of(calendar, "calendar_overall")]
    out = pd.concat(rows, ignore_index=True)
    out["value_prop"] = np.where(
        out["y0_mean"] != 0, out["value"] / out["y0_mean"].where(out["y0_mean"] != 0), np.nan
    )
    for col in ("cohort", "year", "event_time"):
        out[col] = (
            out[col].astype("Int64")
            if col in out.columns
            else pd.array([pd.NA] * len(out), dtype="Int64")
        )
    if "cadre_type" not in out.columns:
        out["cadre_type"] = pd.NA
    order = [
        "simple",
        "event",
        "event_overall",
        "group",
        "group_overall",
        "calendar",
        "calendar_overall",
    ]
    out["_a"] = out["aggregation"].map({a: i for i, a in enumerate(order)})
    out = out.sort_values(
        ["outcome", "cadre_type", "_a", "cohort", "year", "event_time"],
        kind="mergesort",
        na_position="first",
    )
    cols = [
        "outcome",
        "aggregation",
        "cohort",
        "year",
        "event_time",
        "cadre_type",
        "value",
        "y0_mean",
        "value_prop",
    ]
    return out[cols].reset_index(drop=True)


def truth_aggregates(cells: pd.DataFrame, cadre_cells: pd.DataFrame) -> pd.DataFrame:
    """Return every aggregate of the direct effects, plus the simple ATT within each cadre type.

    Parameters
    ----------
    cells : pandas.DataFrame
        Direct-effect cells (:func:`truth_table` rows with ``effect == "direct"``).
    cadre_cells : pandas.DataFrame
        The same cells within each cadre type.

    Returns
    -------
    pandas.DataFrame
        :func:`aggregate_truth` of ``cells``, then rows with aggregation ``cadre_type``;
        in the order of :data:`analysis.data.schema.OUTCOMES` and of the cadre types.
    """
    outcome_order = {o: i for i, o in enumerate(schema.OUTCOMES)}
    main = aggregate_truth(cells)
    by_cadre = aggregate_truth(cadre_cells)
    by_cadre = by_cadre[by_cadre["aggregation"] == "simple"].assign(aggregation="cadre_type")
    out = pd.concat([main, by_cadre], ignore_index=True)
    out["_o"] = out["outcome"].map(outcome_order)
    out["_c"] = out["cadre_type"].map({c: i for i, c in enumerate(CADRES)}).fillna(-1)
    out = out.sort_values(["_o", "_c"], kind="mergesort").drop(columns=["_o", "_c"])
    out["cadre_type"] = out["cadre_type"].astype("str").where(out["cadre_type"].notna(), None)
    return out.reset_index(drop=True)


def truth_table(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Put the truth cells of every outcome together, with their event time.

    Parameters
    ----------
    parts : list of pandas.DataFrame
        Cells of :class:`~analysis.data.synthetic.outcomes.OutcomeDraw`, in outcome order.

    Returns
    -------
    pandas.DataFrame
        ``outcome, effect, cohort, year, event_time, att, att_prop, y0_mean, y1_mean,
        n_villages`` (``event_time`` missing for never-treated spillover cells).
    """
    truth = pd.concat(parts, ignore_index=True)
    truth["event_time"] = pd.array(
        np.where(truth["cohort"] > 0, truth["year"] - truth["cohort"], 0), dtype="Int64"
    )
    truth.loc[truth["cohort"] == 0, "event_time"] = pd.NA
    return truth[
        [
            "outcome",
            "effect",
            "cohort",
            "year",
            "event_time",
            "att",
            "att_prop",
            "y0_mean",
            "y1_mean",
            "n_villages",
        ]
    ]


# ----------------------------------------------------------------------------- does the truth apply?


def truth_status(store: Path, synthetic_dir: Path | None = None) -> tuple[bool, str]:
    """Say whether the store holds exactly the synthetic city whose truth is on disk.

    Parameters
    ----------
    store : pathlib.Path
        The DuckDB store.
    synthetic_dir : pathlib.Path, optional
        Folder written by ``study simulate`` (default ``data/synthetic``).

    Returns
    -------
    (bool, str)
        Whether the truth applies, and why (or why not), in one sentence.
    """
    folder = Path(synthetic_dir or paths.SYNTHETIC_DIR)
    files = {n: folder / f"{n}.csv" for n in ("panel", "postings", "truth_aggregates")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        return False, f"no synthetic truth on disk ({', '.join(missing)} missing): real data, or simulate first"
    prov = read_provenance(store)
    if prov.empty:
        return False, "the store has no provenance records"
    panel_sha, post_sha = _sha256_file(files["panel"]), _sha256_file(files["postings"])
    panel_rows = prov[prov["table_name"] == "panel"]
    last_by_year: dict[int, str] = {}
    for r in panel_rows.itertuples():
        for y in str(r.years).split(","):
            if y.strip():
                last_by_year[int(y)] = r.sha256
    if not last_by_year or set(last_by_year.values()) != {panel_sha}:
        return False, "the store's panel was (also) written from files other than the synthetic city's"
    if set(prov.loc[prov["table_name"] == "postings", "sha256"]) != {post_sha}:
        return False, "the store's postings were (also) written from files other than the synthetic city's"
    return True, f"the store holds the synthetic city written to {folder}"


def load_truth(store: Path, synthetic_dir: Path | None = None) -> pd.DataFrame | None:
    """Return the synthetic city's aggregated truths, or None if they do not apply to the store.

    Parameters
    ----------
    store : pathlib.Path
        The DuckDB store.
    synthetic_dir : pathlib.Path, optional
        Folder written by ``study simulate`` (default ``data/synthetic``).

    Returns
    -------
    pandas.DataFrame or None
        ``truth_aggregates`` (see :func:`truth_aggregates`), or None.
    """
    ok, _ = truth_status(store, synthetic_dir)
    if not ok:
        return None
    return pd.read_csv(Path(synthetic_dir or paths.SYNTHETIC_DIR) / "truth_aggregates.csv")


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
