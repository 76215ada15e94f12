"""What every notebook does first, written once: check the parameters, load the data, run the stage, save.

A notebook's code is its parameters cell, then::

    from analysis.stages import main_effects
    from analysis.stages.notebook import run_notebook

    result = run_notebook(main_effects, globals())

and cells that show ``result``'s tables and figures between the explanations, and print its
findings. :func:`run_notebook` takes the notebook's parameters (the names of
:data:`analysis.core.params.CATALOGUE` defined in the notebook), validates them before any work
starts, sets up the CJK font and the display, resolves the analysis window against the store's
years (``first_year`` / ``last_year`` = ``None``: the store's first / last year) and prints it,
loads the analysis panel from the store (read-only), keeps of the notebook's ``outcomes`` and
``covariates`` those the data hold (saying what is missing and what that rules out, first among the
result's notes) and, for a stage that compares with the truth (one that takes ``truth_dir``), loads
the synthetic city's truth, and for a stage that re-derives treatment timing (``USES_POSTINGS``) the
postings (``params["postings"]``); then it runs the stage and writes its outputs into ``output_dir``.
Relative paths are read from the project root, so a notebook runs the same wherever its kernel
starts (``notebooks/`` in JupyterLab or ``jupyter nbconvert``, the root under papermill).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from analysis import paths
from analysis.core.panel import load_analysis_panel, missing_data_notes, present_columns, resolve_window
from analysis.core.params import CATALOGUE, ParameterError, validate_params
from analysis.report.figures import setup_fonts
from analysis.stages.base import StageResult, Truth, save


def notebook_params(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Pick the notebook parameters out of a notebook's namespace and validate them.

    Parameters
    ----------
    namespace : mapping
        The notebook's ``globals()`` after its parameters cell (and papermill's injected one).

    Returns
    -------
    dict
        The validated parameters (:func:`analysis.core.params.validate_params`).

    Raises
    ------
    analysis.core.params.ParameterError
        Naming the parameter, its value and the allowed values.
    """
    return validate_params({name: namespace[name] for name in CATALOGUE if name in namespace})


def run_notebook(stage: ModuleType, namespace: Mapping[str, Any]) -> StageResult:
    """Run one stage for its notebook: validate, load, run, save.

    Parameters
    ----------
    stage : module
        The stage module (:mod:`analysis.stages.main_effects`, ...).
    namespace : mapping
        The notebook's ``globals()``: its parameters are read from it.

    Returns
    -------
    StageResult
        The stage's result, already written to the run folder ``output_dir``. The stage
        receives the parameters with the window's years resolved, and the
        :class:`~analysis.core.panel.Window` itself as ``params["window"]``.
    """
    import pandas as pd

    params = notebook_params(namespace)
    setup_fonts()
    pd.set_option("display.width", 200)
    store = paths.resolve(params["store"])
    window = resolve_window(store, params.get("first_year"), params.get("last_year"))
    print(window.describe(), f"Store: {store}.")
    params = {**params, "first_year": window.first_year, "last_year": window.last_year, "window": window}
    panel = load_analysis_panel(store, window.first_year, window.last_year, params["min_months"])
    missing = missing_data_notes(panel, params.get("covariates", ()))
    if "outcomes" in params:
        kept = present_columns(panel, params["outcomes"])
        if not kept:
            raise ParameterError(f"none of the outcomes {', '.join(params['outcomes'])} is in the data of the store "
                                 f"{store}: choose outcomes it holds (parameter 'outcomes')")
        params["outcomes"] = kept
    if "covariates" in params:
        params["covariates"] = present_columns(panel, params["covariates"])
    if getattr(stage, "USES_POSTINGS", False):  # a stage that re-derives treatment timing (the specification grid)
        from analysis.data import store as db

        params["postings"] = db.read_postings(store)
    truth = Truth.load(store, paths.resolve(params["truth_dir"])) if "truth_dir" in params else None
    result = stage.run(panel, params, truth=truth)
    result.notes[:0] = missing
    save(result, paths.resolve(params["output_dir"]))
    return result
