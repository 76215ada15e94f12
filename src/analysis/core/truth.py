"""The known truth of the synthetic city, used only when the store holds exactly that city.

``study simulate`` writes ``truth_aggregates.csv`` beside the canonical files it ingests.
:func:`load_truth` returns those truths only if the store's panel years and postings were
last written from the very files the simulator wrote (matched by sha256 in the store's
provenance log). After a real year is ingested the check fails and the study reports no
truth: it says so and skips the comparison, rather than comparing estimates with a truth
that no longer describes the data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import paths
from analysis.report.manifest import sha256_file


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
    from analysis.data.store import read_provenance

    folder = Path(synthetic_dir or paths.SYNTHETIC_DIR)
    files = {n: folder / f"{n}.csv" for n in ("panel", "postings", "truth_aggregates")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        return False, f"no synthetic truth on disk ({', '.join(missing)} missing): real data, or simulate first"
    prov = read_provenance(store)
    if prov.empty:
        return False, "the store has no provenance records"
    panel_sha, post_sha = sha256_file(files["panel"]), sha256_file(files["postings"])
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
        ``truth_aggregates`` (see :mod:`analysis.data.simulate`), or None.
    """
    ok, _ = truth_status(store, synthetic_dir)
    if not ok:
        return None
    return pd.read_csv(Path(synthetic_dir or paths.SYNTHETIC_DIR) / "truth_aggregates.csv")
