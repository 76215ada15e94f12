"""What every notebook does first, written once: check the parameters, load the data, run the stage, save.

A notebook's code is its parameters cell, then::

    from analysis.stages import main_effects
    from analysis.stages.notebook import run_notebook

    result = run_notebook(main_effects, globals())

and cells that show ``result``'s tables and figures between the explanations, and print its
findings. :func:`run_notebook` takes the notebook's parameters (the names of
:data:`analysis.core.params.CATALOGUE` defined in the notebook), validates them before any work
starts, sets up the CJK font and the display, loads the analysis panel from the store (read-only)
and, for a stage that compares with the truth (one that takes ``truth_dir``), the synthetic city's
truth; then it runs the stage and writes its outputs into ``output_dir``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from analysis import paths
from analysis.core.panel import load_analysis_panel
from analysis.core.params import CATALOGUE, validate_params
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
        The stage's result, already written to the run folder ``output_dir``.
    """
    import pandas as pd

    params = notebook_params(namespace)
    setup_fonts()
    pd.set_option("display.width", 200)
    store = paths.resolve(params["store"])
    panel = load_analysis_panel(store, params["first_year"], params["last_year"], params["min_months"])
    truth = Truth.load(store, paths.resolve(params["truth_dir"])) if "truth_dir" in params else None
    result = stage.run(panel, params, truth=truth)
    save(result, paths.resolve(params["output_dir"]))
    return result
