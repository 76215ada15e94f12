"""Notebook parameters: one catalogue, validated before any work starts.

Every notebook's ``parameters`` cell uses names from :data:`CATALOGUE`. The pipeline
validates the parameters of every notebook it is about to run *before running the
first one*, and each notebook validates its own again when it starts
(:func:`analysis.stages.notebook.run_notebook`), so a notebook opened by hand fails the
same way. A wrong value stops the run with a message that names the parameter, the value
and the allowed values.

Paths (``store``, ``truth_dir``, ``output_dir``) relative to nothing in particular are read
relative to the project root (:func:`analysis.paths.resolve`), never the working folder, so a
notebook runs the same from ``notebooks/`` (JupyterLab, ``jupyter nbconvert``) as from the
root (papermill). The years of the window (``first_year``, ``last_year``) may be ``None``:
the first or last year the store holds (:func:`analysis.core.panel.resolve_window`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis import paths
from analysis.core.spec import CLUSTERS, CONTROL_GROUPS, ESTIMATORS, RANDOMISATION_STRATA
from analysis.data import schema
from analysis.i18n import LANGS


class ParameterError(ValueError):
    """A notebook parameter has a wrong name or value."""


@dataclass(frozen=True)
class Param:
    """One notebook parameter.

    Parameters
    ----------
    name : str
        Parameter name as it appears in the notebooks' ``parameters`` cell.
    kind : {"int", "year", "float", "str", "list", "path", "bool"}
        Type (``year``: a whole number, or ``None`` for "from the store").
    help : str
        What it controls.
    choices : tuple, optional
        Allowed values (for ``list``: allowed elements).
    """

    name: str
    kind: str
    help: str
    choices: tuple = ()



CATALOGUE: dict[str, Param] = {
    p.name: p
    for p in (
        Param("store", "path", "DuckDB store to read (opened read-only)"),
        Param("truth_dir", "path", "folder of the synthetic city's truth (used only if the store holds that city)"),
        Param("output_dir", "path", "run folder the notebook writes tables and figures into"),
        Param("first_year", "year", "first year of the analysis window (None: the store's first year)"),
        Param("last_year", "year", "last year of the analysis window (None: the store's last year)"),
        Param("outcomes", "list", "outcomes to analyse", schema.OUTCOMES),
        Param("control_group", "str", "comparison villages", CONTROL_GROUPS),
        Param("covariates", "list", "baseline covariates for conditional parallel trends", schema.COVARIATES),
        Param("estimator", "str", "headline estimator", ESTIMATORS),
        Param("cluster", "str", "clustering level of standard errors", CLUSTERS),
        Param("bootstrap_draws", "int", "bootstrap / randomisation draws (0 = analytic only)"),
        Param("replications", "int", "Monte Carlo replications"),
        Param("null_draws", "int", "draws of the specification curve's joint test under the null (0 = not run)"),
        Param("seed", "int", "seed of every random draw"),
        Param("lang", "str", "language of labels", LANGS),
        Param("min_months", "float", "months of exposure in a year that make a village treated"),
        Param("spillover_threshold", "float",
              "share of a township's villages with a first secretary that makes it high-share (spillover check)"),
        Param("randomisation_strata", "str", "strata within which randomisation inference re-draws cohorts",
              RANDOMISATION_STRATA),
    )
}


def _fail(name: str, value: Any, expected: str) -> None:
    raise ParameterError(f"parameter {name!r} = {value!r} is not valid: {expected}")


def validate_params(params: Mapping[str, Any], check_store: bool = True) -> dict[str, Any]:
    """Check notebook parameters and return them normalised.

    Parameters
    ----------
    params : mapping
        Parameter name -> value, as a notebook's ``parameters`` cell defines them.
    check_store : bool, default True
        Whether to require that ``store`` exists (a relative path is read from the project root).

    Returns
    -------
    dict
        The parameters with lists as lists of str and numbers as int/float.

    Raises
    ------
    ParameterError
        Naming the parameter, its value and the allowed values.

    Examples
    --------
    >>> validate_params({"lang": "zh", "seed": 1})
    {'lang': 'zh', 'seed': 1}
    >>> validate_params({"lang": "fr"})
    Traceback (most recent call last):
    ...
    analysis.core.params.ParameterError: parameter 'lang' = 'fr' is not valid: allowed values are 'zh', 'en'
    """
    out: dict[str, Any] = {}
    unknown = sorted(set(params) - set(CATALOGUE))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; known parameters are {', '.join(sorted(CATALOGUE))}"
        )
    for name, value in params.items():
        p = CATALOGUE[name]
        if p.kind == "year" and value is None:
            pass
        elif p.kind in ("int", "year"):
            if isinstance(value, bool) or not isinstance(value, int):
                _fail(name, value, "expected a whole number")
            if value < 0:
                _fail(name, value, "expected a number >= 0")
        elif p.kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                _fail(name, value, "expected a number")
            value = float(value)
        elif p.kind == "str":
            if not isinstance(value, str):
                _fail(name, value, "expected text")
            if p.choices and value not in p.choices:
                _fail(name, value, "allowed values are " + ", ".join(map(repr, p.choices)))
        elif p.kind == "list":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                _fail(name, value, "expected a list of names")
            bad = [v for v in value if p.choices and v not in p.choices]
            if bad:
                _fail(
                    name,
                    value,
                    f"{', '.join(map(repr, bad))} not allowed; allowed values are " + ", ".join(map(repr, p.choices)),
                )
            value = list(value)
        elif p.kind == "path":
            if not isinstance(value, str | Path):
                _fail(name, value, "expected a file path")
            value = str(value)
        out[name] = value
    first, last = out.get("first_year"), out.get("last_year")
    if first is not None and last is not None and first > last:
        raise ParameterError(f"parameter 'first_year' = {out['first_year']} is after 'last_year' = {out['last_year']}")
    if "min_months" in out and not 0 < out["min_months"] <= 12:
        _fail("min_months", out["min_months"], "expected a number of months in (0, 12]")
    if "spillover_threshold" in out and not 0 < out["spillover_threshold"] <= 1:
        _fail("spillover_threshold", out["spillover_threshold"], "expected a share of villages in (0, 1]")
    if check_store and "store" in out and not paths.resolve(out["store"]).exists():
        raise ParameterError(
            f"parameter 'store' = {out['store']!r} is not valid: the file does not exist. "
            "Build it with `study simulate` (synthetic data) or `study ingest FILE...` (real data)."
        )
    return out
