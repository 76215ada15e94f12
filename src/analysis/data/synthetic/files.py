"""The synthetic city on disk and in the store: its files, a summary, and ``study simulate``.

:func:`write_city` writes the city as canonical, byte-deterministic files
(``panel.csv``, ``postings.csv``, ``truth.csv``, ``truth_aggregates.csv``,
``params.json``); :func:`simulate_to_store` simulates, writes and ingests them through
the ordinary ingest (what ``study simulate`` runs). A store that holds anything but an
earlier synthetic city is never overwritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.csvsafe import write_csv
from analysis.data.atomic import write_atomic
from analysis.data.store import read_provenance
from analysis.data.synthetic.calibration import (
    PANEL_DECIMALS,
    REPORT_COUNTIES,
    REPORT_TOWNSHIPS,
    REPORT_VILLAGES,
    TRUTH_FLOAT_FORMAT,
    scaled_units,
)
from analysis.data.synthetic.city import SyntheticCity, simulate_city
from analysis.data.synthetic.scenarios import Scenario
from analysis.data.synthetic.truth import truth_status


def _panel_csv(panel: pd.DataFrame) -> str:
    out = panel.copy()
    for name, d in PANEL_DECIMALS.items():
        out[name] = np.char.mod(f"%.{d}f", out[name].to_numpy(dtype=float))
    return write_csv(out, index=False, lineterminator="\n")


def write_city(city: SyntheticCity, out_dir: str | os.PathLike) -> dict[str, Path]:
    r"""Write the city as canonical, byte-deterministic files.

    Parameters
    ----------
    city : SyntheticCity
        Output of :func:`simulate_city` (not modified).
    out_dir : str or path-like
        Folder to write into (created if missing).

    Returns
    -------
    dict of str to pathlib.Path
        ``panel``, ``postings``, ``truth``, ``truth_aggregates``, ``params`` to the
        files ``panel.csv``, ``postings.csv``, ``truth.csv``, ``truth_aggregates.csv``
        and ``params.json``.

    Notes
    -----
    UTF-8 without BOM, ``\\n`` line endings, canonical column order, fixed float formats
    (:data:`PANEL_DECIMALS` in the panel, ``%.10g`` in the truth files), empty fields
    for missing values. Each file is written to a temporary name and moved into place
    with :func:`os.replace`, so a crash never leaves half a file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "panel": ("panel.csv", _panel_csv(city.panel)),
        "postings": ("postings.csv", write_csv(city.postings, index=False, lineterminator="\n")),
        "truth": (
            "truth.csv",
            write_csv(city.truth, index=False, lineterminator="\n", float_format=TRUTH_FLOAT_FORMAT),
        ),
        "truth_aggregates": (
            "truth_aggregates.csv",
            write_csv(city.truth_aggregates, index=False, lineterminator="\n", float_format=TRUTH_FLOAT_FORMAT),
        ),
        "params": (
            "params.json",
            json.dumps(city.params, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        ),
    }
    paths: dict[str, Path] = {}
    for key, (name, text) in texts.items():
        path = out / name
        write_atomic(path, text.encode("utf-8"))
        paths[key] = path
    return paths


def summarise_city(city: SyntheticCity) -> str:
    """One-paragraph description of a simulated city.

    Parameters
    ----------
    city : SyntheticCity
        Output of :func:`simulate_city`.

    Returns
    -------
    str
        Villages, townships, counties and treated villages by cohort.
    """
    p = city.panel
    n = p["village_code"].nunique()
    by_cohort = (
        city.treatment.loc[city.treatment["cohort"] > 0, "cohort"].value_counts().sort_index()
    )
    treated = int(by_cohort.sum())
    parts = ", ".join(f"{g}: {c:,}" for g, c in by_cohort.items())
    return (
        f"synthetic city (seed {city.params['seed']}, {city.params['first_year']}-"
        f"{city.params['last_year']}): {n:,} villages in {p['township_code'].nunique():,} "
        f"townships and {p['county_code'].nunique():,} counties; {len(city.postings):,} postings; "
        f"treated villages "
        f"by cohort {parts} (total {treated:,} = {treated / n:.1%})"
    ) + _scenario_text(city.params.get("scenario"))


def _scenario_text(scenario: dict | None) -> str:
    if not scenario:
        return ""
    default = Scenario().as_dict()
    changed = ", ".join(f"{k} {v}" for k, v in scenario.items() if k != "name" and v != default[k])
    return f"; stress scenario {scenario['name']!r} ({changed or 'no change'})"


def simulate_to_store(
    seed: int,
    first_year: int,
    last_year: int,
    later_batches: Sequence[tuple[int, int]],
    out_dir: str | os.PathLike,
    store: str | os.PathLike,
    ingest: bool = True,
    scenario: Scenario | str | None = None,
    n_villages: int | None = None,
) -> str:
    """Simulate the city, write its files and (optionally) ingest them into the store.

    Parameters
    ----------
    seed : int
        Seed of every random draw.
    first_year, last_year : int
        Panel window.
    later_batches : sequence of (year, count)
        Later batches (see :func:`simulate_city`).
    out_dir : str or path-like
        Folder for ``panel.csv``, ``postings.csv``, ``truth.csv``,
        ``truth_aggregates.csv`` and ``params.json``.
    store : str or path-like
        DuckDB store that :func:`analysis.data.ingest.ingest_files` writes into.
    ingest : bool, default True
        Whether to ingest the panel and postings after writing them.
    scenario : Scenario or str, optional
        Stress scenario or preset name (see :func:`simulate_city`); default none, the
        calibrated city. Its truth files follow the scenario.
    n_villages : int, optional
        Size of the city; townships and counties follow at the report's ratios
        (:func:`~analysis.data.synthetic.calibration.scaled_units`, e.g. 500,000 villages
        in 27,605 townships and 1,396 counties). Default: the report's city (3,224 villages
        in 178 townships and 9 counties).

    Returns
    -------
    str
        A short human-readable summary (villages, townships, treated by cohort, files,
        and the ingest report).

    Raises
    ------
    ValueError
        If a parameter is out of range, or if ``store`` holds data that an earlier
        ``study simulate`` into ``out_dir`` did not write (real or example data): that
        store is left untouched.
    analysis.data.ingest.IngestError
        If the store rejects the files.

    Notes
    -----
    A store that holds only an earlier synthetic city is rebuilt from scratch (a new store
    swapped in atomically), so a city simulated with another seed or window never mixes
    with the previous one's postings.
    """
    store = Path(store)
    if ingest and store.exists():
        _check_store_is_synthetic(store, Path(out_dir))
    villages, townships, counties = REPORT_VILLAGES, REPORT_TOWNSHIPS, REPORT_COUNTIES
    if n_villages is not None:
        if isinstance(n_villages, bool) or not isinstance(n_villages, int) or n_villages < 40:
            raise ValueError(f"--villages must be a whole number of at least 40, got {n_villages!r}")
        villages, townships, counties = scaled_units(n_villages)
    city = simulate_city(
        seed=seed,
        first_year=first_year,
        last_year=last_year,
        n_villages=villages,
        n_townships=townships,
        n_counties=counties,
        later_batches=tuple(later_batches),
        scenario=scenario,
    )
    files = write_city(city, out_dir)
    lines = [
        summarise_city(city),
        f"files written to {Path(out_dir)}: " + ", ".join(p.name for p in files.values()),
    ]
    if ingest:
        from analysis.data.ingest import ingest_files

        fresh = store.with_name(store.name + ".simulate-new")
        for leftover in (fresh, fresh.with_name(fresh.name + ".lock")):
            leftover.unlink(missing_ok=True)
        try:
            report = ingest_files([files["panel"], files["postings"]], store=fresh)
            os.replace(fresh, store)
        finally:
            for leftover in (fresh, fresh.with_name(fresh.name + ".lock")):
                leftover.unlink(missing_ok=True)
        lines.append(str(report).replace(str(fresh), str(store)))
    return "\n".join(lines)


def _check_store_is_synthetic(store: Path, out_dir: Path) -> None:
    """Refuse to overwrite a store that holds anything but the synthetic city written to ``out_dir``."""
    if read_provenance(store).empty:
        return
    ok, why = truth_status(store, out_dir)
    if not ok:
        raise ValueError(
            f"the store {store} holds data that `study simulate` did not write ({why}); it is left untouched. "
            "Write the synthetic city to another store with --store PATH, or move this store away first."
        )
