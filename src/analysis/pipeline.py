"""Run the study: every notebook through papermill into ``outputs/<run-id>/``.

The pipeline reads each notebook's ``parameters`` cell, applies the overrides given on
the command line (converted to the type of the notebook's default), validates the
parameters of *every* notebook before running the first one, executes the notebooks
in order, writes the ``MANIFEST`` and points ``outputs/latest`` at the run.
"""

from __future__ import annotations

import ast
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analysis import paths
from analysis.core.params import ParameterError, validate_params


def list_notebooks(nb_dir: Path | None = None) -> list[Path]:
    """Return the study notebooks (``NN_name.ipynb``) in run order.

    Parameters
    ----------
    nb_dir : pathlib.Path, optional
        Folder (default: ``notebooks/``).

    Returns
    -------
    list of pathlib.Path
        Sorted notebook paths.
    """
    return sorted(Path(nb_dir or paths.NOTEBOOKS_DIR).glob("[0-9][0-9]_*.ipynb"))


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Read the defaults of a notebook's ``parameters`` cell.

    Parameters
    ----------
    path : pathlib.Path
        Notebook.

    Returns
    -------
    dict
        Parameter name -> default value (Python literal).

    Raises
    ------
    ParameterError
        If the notebook has no cell tagged ``parameters``.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            out = {}
            for node in tree.body:
                if isinstance(node, ast.Assign | ast.AnnAssign):
                    target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                    out[target.id] = ast.literal_eval(node.value)
            return out
    raise ParameterError(f"notebook {path.name} has no cell tagged 'parameters'")


def convert_override(name: str, text: str, default: Any) -> Any:
    """Convert a command-line override to the type of the notebook's default.

    Parameters
    ----------
    name : str
        Parameter name (for messages).
    text : str
        The value as typed (``-p name=value``).
    default : Any
        The notebook's default, whose type is used.

    Returns
    -------
    Any
        The converted value.

    Raises
    ------
    ParameterError
        If the text cannot be converted.
    """
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, list):
            return [t.strip() for t in text.split(",") if t.strip()]
    except ValueError:
        raise ParameterError(
            f"parameter {name!r} = {text!r} is not valid: expected a {type(default).__name__}"
        ) from None
    return text


def prepare_parameters(
    notebooks: list[Path], overrides: dict[str, str], injected: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Resolve and validate the parameters of every notebook before any runs.

    Parameters
    ----------
    notebooks : list of pathlib.Path
        Notebooks to run.
    overrides : dict
        ``-p name=value`` overrides as text.
    injected : dict
        Values the pipeline sets itself (``store``, ``output_dir``).

    Returns
    -------
    dict
        Notebook name -> validated parameters to pass to papermill.

    Raises
    ------
    ParameterError
        For an override no notebook declares, or any invalid value.
    """
    declared: dict[str, dict[str, Any]] = {nb.stem: notebook_parameters(nb) for nb in notebooks}
    known = set().union(*[set(d) for d in declared.values()]) if declared else set()
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; the notebooks take "
            f"{', '.join(sorted(known))}"
        )
    out = {}
    for stem, defaults in declared.items():
        values = dict(defaults)
        for k, v in injected.items():
            if k in values:
                values[k] = v
        for k, text in overrides.items():
            if k in values:
                values[k] = convert_override(k, text, defaults[k])
        try:
            out[stem] = validate_params(values)
        except ParameterError as exc:
            raise ParameterError(f"{stem}: {exc}") from None
    return out


def run_study(
    only: str | None = None,
    overrides: dict[str, str] | None = None,
    store: Path | None = None,
    outputs: Path | None = None,
    run_id: str | None = None,
    nb_dir: Path | None = None,
) -> Path:
    """Execute the notebooks with papermill and write the run folder.

    Parameters
    ----------
    only : str, optional
        Run only this notebook (its stem, e.g. ``00_data_audit``).
    overrides : dict, optional
        Parameter overrides as text.
    store : pathlib.Path, optional
        Store passed to every notebook (default: the project's store).
    outputs : pathlib.Path, optional
        Outputs folder (default: ``outputs/``).
    run_id : str, optional
        Run folder name (default: UTC timestamp).
    nb_dir : pathlib.Path, optional
        Notebook folder (default: ``notebooks/``).

    Returns
    -------
    pathlib.Path
        The run folder.

    Raises
    ------
    ParameterError
        For a bad parameter or an unknown ``only``; nothing is run then.
    """
    import papermill as pm

    from analysis.report.manifest import write_manifest
    from analysis.report.results_json import merge_sections

    t0 = time.perf_counter()
    notebooks = list_notebooks(nb_dir)
    if only is not None:
        chosen = [nb for nb in notebooks if nb.stem == only or nb.name == only]
        if not chosen:
            raise ParameterError(
                f"--only {only!r} is not a notebook; choose one of {', '.join(nb.stem for nb in notebooks)}"
            )
        notebooks = chosen
    store = Path(store or paths.DEFAULT_STORE).resolve()
    outputs = Path(outputs or paths.OUTPUTS_DIR).resolve()
    run_id = run_id or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_dir = outputs / run_id
    params = prepare_parameters(notebooks, overrides or {}, {"store": str(store), "output_dir": str(run_dir)})

    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    # Kernels inherit this: pyfixest's formula handling iterates over Python sets, whose order
    # follows the per-process string-hash seed and changes the order of floating-point sums, so
    # without a fixed seed two runs can differ in the 10th significant digit.
    os.environ.setdefault("PYTHONHASHSEED", "0")
    for nb in notebooks:
        pm.execute_notebook(
            str(nb),
            str(run_dir / "notebooks" / nb.name),
            parameters=params[nb.stem],
            kernel_name="python3",
            progress_bar=False,
            cwd=str(paths.ROOT),
        )
    merge_sections(run_dir)
    seeds = {p.get("seed") for p in params.values() if "seed" in p}
    write_manifest(
        run_dir,
        inputs={"store": store, **{f"notebook:{nb.name}": nb for nb in notebooks}},
        parameters=params,
        seed=seeds.pop() if len(seeds) == 1 else None,
        wall_time_s=time.perf_counter() - t0,
    )
    latest = outputs / "latest"
    tmp = outputs / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_id)
    os.replace(tmp, latest)
    return run_dir
