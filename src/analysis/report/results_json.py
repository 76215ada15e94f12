"""``results.json``: every headline number the brief uses, with its interval, estimator and options.

Each notebook writes its own section to ``<run>/results/<section>.json`` with
:func:`write_section`, which first validates it against the section's model
(:mod:`analysis.report.results_schema`: a misspelt or unknown key fails there); after the last
notebook the pipeline merges the sections into ``<run>/results.json`` with
:func:`merge_sections`. Numbers are rounded to 10 significant digits and keys sorted, so two runs
with the same seed give byte-identical files. Readers parse the document into typed objects
with :func:`load_results` (or :func:`parse_results`).

An *estimate record* (:func:`estimate_record`) is the unit the brief reads::

    {"estimate": 140.2, "conf_low": 96.8, "conf_high": 183.5, "std_error": 22.1,
     "p_value": 1e-10, "estimator": "cs", "control_group": "notyet", "term": "ATT",
     "n_obs": 22568, "n_units": 3224, "n_clusters": 178, "options": {...}}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.report.results_schema import COMPLETE, SECTIONS, Results

SIG_DIGITS = 10


def clean(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers to JSON-ready Python values.

    Floats are rounded to 10 significant digits; NaN and missing become ``None``.

    Parameters
    ----------
    value : Any
        Value to convert.

    Returns
    -------
    Any
        JSON-serialisable value.
    """
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v) or math.isinf(v):
            return None
        return float(f"{v:.{SIG_DIGITS}g}")
    return value


def estimate_record(row: pd.Series | dict) -> dict[str, Any]:
    """Turn one tidy row (see :mod:`analysis.results`) into an estimate record.

    Parameters
    ----------
    row : pandas.Series or dict
        A row of ``DiDResult.tidy()``.

    Returns
    -------
    dict
        The record, with ``options`` parsed from JSON.
    """
    r = dict(row)
    opts = r.get("options")
    if isinstance(opts, str):
        try:
            opts = json.loads(opts)
        except json.JSONDecodeError:
            pass
    keys = ("estimate", "conf_low", "conf_high", "std_error", "p_value", "estimator", "control_group",
            "aggregation", "term", "cohort", "year", "event_time", "band", "n_obs", "n_units", "n_clusters")
    out = {k: r.get(k) for k in keys}
    out["options"] = opts
    return clean(out)


def write_section(run_dir: Path, section: str, payload: dict[str, Any]) -> Path:
    """Write one notebook's section of ``results.json``, after validating it against its model.

    A section without a model (a stage being written) is written as it is; :func:`merge_sections`
    refuses it when the run's ``results.json`` is made.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.
    section : str
        Section name, a key of :data:`analysis.report.results_schema.SECTIONS` (e.g. ``main_effects``).
    payload : dict
        Content; cleaned with :func:`clean`, then written as it is (the model checks it, it does
        not rewrite it).

    Returns
    -------
    pathlib.Path
        The section file.

    Raises
    ------
    pydantic.ValidationError
        If the content does not follow the section's model (a missing, misspelt or unknown key,
        a value of the wrong type).
    """
    cleaned = clean(payload)
    if section in SECTIONS:
        SECTIONS[section].model_validate(cleaned, context=COMPLETE)
    folder = Path(run_dir) / "results"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{section}.json"
    path.write_text(json.dumps(cleaned, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def merge_sections(run_dir: Path) -> Path | None:
    """Merge ``<run>/results/*.json`` into ``<run>/results.json``, after validating the whole document.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.

    Returns
    -------
    pathlib.Path or None
        The merged file, or None if no section was written.

    Raises
    ------
    pydantic.ValidationError
        If a section is not one of :class:`~analysis.report.results_schema.Results` or does not
        follow its model.
    """
    folder = Path(run_dir) / "results"
    sections = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not sections:
        return None
    doc = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sections}
    Results.model_validate(doc, context=COMPLETE)
    path = Path(run_dir) / "results.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def parse_results(doc: Results | Mapping[str, Any]) -> Results:
    """Turn a parsed ``results.json`` into typed objects (a :class:`Results` is returned as it is).

    Keys the models do not know are ignored here (an earlier run, a hand-made fixture), so a
    reader can read any run; writing is where the contract is enforced (:func:`write_section`).

    Parameters
    ----------
    doc : Results or mapping
        The document.

    Returns
    -------
    analysis.report.results_schema.Results
        The typed document.

    Raises
    ------
    pydantic.ValidationError
        If a known key holds a value of the wrong type or a required key is missing.
    """
    if isinstance(doc, Results):
        return doc
    return Results.model_validate(doc, extra="ignore")


def load_results(run_dir: Path) -> Results:
    """Read a run's ``results.json`` into typed objects.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.

    Returns
    -------
    analysis.report.results_schema.Results
        The document (:func:`parse_results`).

    Raises
    ------
    FileNotFoundError
        If the run has no ``results.json`` (run the study first).
    """
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run `study run` (or `make study`) first")
    return parse_results(json.loads(path.read_text(encoding="utf-8")))
