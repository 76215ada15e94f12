"""Run the study: every notebook through papermill into ``outputs/<run-id>/``, in folders that cannot lie.

The pipeline reads each notebook's ``parameters`` cell, applies the overrides given on
the command line (converted to the type of the notebook's default), validates the
parameters of *every* notebook and resolves the analysis window against the store before
running the first one, executes the notebooks in the project's kernel (:mod:`analysis.kernel`),
two at a time on a machine with two cores or more (``jobs``: each notebook is one
single-threaded kernel, and no notebook reads another's outputs), and writes the ``MANIFEST``
after each.

Rules of a run folder (:func:`run_study`, :func:`run_state`):

* it holds one parameter set and one version of the store's data: adding a notebook to it
  (``--only``) with other parameters, or after the store changed, is refused;
* a run name is used once: a complete rerun into it needs ``force``, which deletes it first;
* its ``MANIFEST`` records every executed notebook's parameters, the run's parameter set, the
  store it read and whether it is complete (every study notebook executed);
* ``outputs/latest`` moves to it only when one call ran every notebook.

Resources (:class:`MemoryWatch`): while a notebook runs, the resident memory of its kernel is
sampled; the progress line of each notebook gives its elapsed time and peak memory, and the
``MANIFEST`` records both. A kernel that dies (killed by the system for want of memory, or by
``memory_limit_gb``) or a cell that raises ``MemoryError`` ends the run with one plain message
(:func:`resource_failure_message`): the notebook, the size of the data, the memory it reached
or asked for, and what to do. The run is then partial and ``outputs/latest`` does not move.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from analysis import paths
from analysis.core.params import CATALOGUE, ParameterError, validate_params
from analysis.report.manifest import read_manifest


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
        If the notebook has no cell tagged ``parameters``, or that cell assigns to anything but a name.
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
                    if not isinstance(target, ast.Name) or node.value is None:
                        raise ParameterError(f"notebook {path.name}: the 'parameters' cell may only assign values "
                                             f"to names (line {node.lineno}: {ast.unparse(node)!r})")
                    out[target.id] = ast.literal_eval(node.value)
            return out
    raise ParameterError(f"notebook {path.name} has no cell tagged 'parameters'")


def convert_override(name: str, text: str, default: Any) -> Any:
    """Convert a command-line override to the type of the notebook's default.

    A parameter whose default is ``None`` takes its type from the catalogue
    (:data:`analysis.core.params.CATALOGUE`): the window's years are whole numbers, and
    ``none`` (or an empty value) sets them back to "from the store".

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
    kind = CATALOGUE[name].kind if name in CATALOGUE else None
    expected = type(default).__name__
    try:
        if kind == "year":
            expected = "year (or none: from the store)"
            return None if text.strip().lower() in ("", "none") else int(text)
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
        raise ParameterError(f"parameter {name!r} = {text!r} is not valid: expected a {expected}") from None
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


@dataclass(frozen=True)
class RunState:
    """What a run folder holds, from its ``MANIFEST``.

    Attributes
    ----------
    run_dir : pathlib.Path
        The run folder.
    done : tuple of str
        Notebooks executed into it (stems), in run order.
    missing : tuple of str
        Study notebooks not (yet) executed into it.
    run_parameters : dict
        The run's parameter set: every study notebook's resolved parameters, as the run that
        created the folder prepared them (empty for a folder written before they were recorded).
    store_state : dict
        The store the run read: its last ingest and row counts.
    recorded : bool
        Whether the folder has a ``MANIFEST`` (a folder without one, e.g. a ``results.json``
        written by hand, is no run of the pipeline: nothing is known of its completeness).
    """

    run_dir: Path
    done: tuple[str, ...]
    missing: tuple[str, ...]
    run_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    store_state: dict[str, Any] = field(default_factory=dict)
    recorded: bool = True

    @property
    def complete(self) -> bool:
        """Whether every study notebook was executed into the folder."""
        return not self.missing and bool(self.done)

    def describe(self) -> str:
        """Say in one sentence whether the run is complete and, if not, what it lacks.

        Returns
        -------
        str
            E.g. ``"Run outputs/x is partial: it holds 1 of 7 notebooks (00_data_audit); missing
            01_targeting, ...".``
        """
        n = len(self.done) + len(self.missing)
        if self.complete:
            return f"Run {self.run_dir} is complete: all {n} notebooks ran with one set of parameters."
        held = ", ".join(self.done) or "none"
        return (f"Run {self.run_dir} is partial: it holds {len(self.done)} of {n} notebooks ({held}); "
                f"missing {', '.join(self.missing)}.")


class RunError(Exception):
    """A run cannot start (the run folder is taken) or a notebook failed; the message says what to do."""


def run_state(run_dir: Path, nb_dir: Path | None = None) -> RunState:
    """Read which notebooks a run folder holds, and with which parameters.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.
    nb_dir : pathlib.Path, optional
        The study's notebooks (default ``notebooks/``): a run is complete when it holds all.

    Returns
    -------
    RunState
        Notebooks done and missing, the run's parameter set and the store it read. A folder
        whose manifest predates the record of notebooks counts the executed notebooks the
        manifest lists parameters for.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    study = [nb.stem for nb in list_notebooks(nb_dir)]
    recorded = manifest.get("notebooks")
    if recorded is None:
        recorded = {stem: {} for stem in manifest.get("parameters", {})}
    done = tuple(stem for stem in study if stem in recorded and (run_dir / "notebooks" / f"{stem}.ipynb").is_file())
    missing = tuple(stem for stem in study if stem not in done)
    return RunState(run_dir, done, missing, manifest.get("run_parameters", {}), manifest.get("store_state", {}),
                    recorded=bool(manifest))


def store_state(store: Path) -> dict[str, Any]:
    """Identify the content of a store cheaply: its last ingest (or restore) and its size.

    Every change to a store goes through an ingest or a restore, each logged with its own id,
    so two reads with the same last ingest saw the same content.

    Parameters
    ----------
    store : pathlib.Path
        The DuckDB store.

    Returns
    -------
    dict
        ``last_ingest`` (id, or None), ``panel_years``, ``panel_rows`` and ``postings_rows``.
    """
    from analysis.data import store as db

    hist = db.history(store)
    info = db.summary(store)
    return {"last_ingest": str(hist["ingest_id"].iloc[-1]) if len(hist) else None,
            "panel_years": [int(y) for y in info["panel_years"]], "panel_rows": int(info["panel_rows"]),
            "postings_rows": int(info["postings_rows"])}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def parameter_differences(before: dict[str, dict[str, Any]], now: dict[str, dict[str, Any]]) -> list[str]:
    """List how two parameter sets (notebook -> parameters) differ, one phrase per difference.

    Parameters
    ----------
    before, now : dict
        Notebook stem -> parameters.

    Returns
    -------
    list of str
        E.g. ``"last_year 2024 there, 2025 now (02_main_effects, 03_event_studies)"``; empty if
        the sets are equal.
    """
    before, now = _jsonable(before), _jsonable(now)
    where: dict[tuple[str, str, str], list[str]] = {}
    for stem in sorted(set(before) | set(now)):
        a, b = before.get(stem, {}), now.get(stem, {})
        for name in sorted(set(a) | set(b)):
            if a.get(name, "(absent)") != b.get(name, "(absent)"):
                key = (name, json.dumps(a.get(name, "(absent)")), json.dumps(b.get(name, "(absent)")))
                where.setdefault(key, []).append(stem)
    every = sorted(set(before) | set(now))
    return [f"{name} {was} there, {new} now ({'every notebook' if stems == every else ', '.join(stems)})"
            for (name, was, new), stems in where.items()]


def _point_latest(outputs: Path, run_id: str) -> None:
    latest = outputs / "latest"
    tmp = outputs / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_id)
    os.replace(tmp, latest)


def _latest_points_at(outputs: Path, run_dir: Path) -> bool:
    latest = outputs / "latest"
    return latest.is_symlink() and (outputs / os.readlink(latest)).resolve() == run_dir.resolve()


class _Progress:
    """One line per notebook on a stream: ``[2/7] 01_targeting ... 14.2 s``."""

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.stream, self.total, self.i = stream, total, 0

    def say(self, text: str) -> None:
        if self.stream is not None:
            print(text, file=self.stream, flush=True)

    def start(self, stem: str) -> None:
        self.i += 1
        if self.stream is not None:
            print(f"  [{self.i}/{self.total}] {stem:<22}", end="", file=self.stream, flush=True)

    def end(self, text: str) -> None:
        if self.stream is not None:
            print(f" {text}", file=self.stream, flush=True)


class MemoryWatch:
    """Sample the resident memory of the processes this one starts in the block (the notebook's kernel).

    Only children started after the block is entered (and their own children) are watched and,
    over the limit, killed: a process that already ran (e.g. multiprocessing's resource tracker
    of a caller that runs the pipeline in-process) is left alone.

    Parameters
    ----------
    limit_gb : float, optional
        Stop (kill) the watched processes when their resident memory together exceeds this many
        GB (10**9 bytes); default no limit.
    interval : float, default 0.2
        Seconds between samples.

    Attributes
    ----------
    peak_gb : float
        Largest resident memory of the children seen, in GB.
    killed : bool
        Whether the limit was exceeded and the children were killed.

    Examples
    --------
    >>> with MemoryWatch() as watch:
    ...     pass
    >>> watch.killed
    False
    """

    def __init__(self, limit_gb: float | None = None, interval: float = 0.2) -> None:
        self.limit_gb, self.interval = limit_gb, interval
        self.peak_gb, self.killed = 0.0, False
        self._before: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-watch", daemon=True)

    def _sample(self) -> None:
        import psutil

        try:
            children = []
            for child in psutil.Process().children():
                if child.pid not in self._before:
                    children += [child, *child.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for child in children:
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        self.peak_gb = max(self.peak_gb, total / 1e9)
        if self.limit_gb is not None and total / 1e9 > self.limit_gb:
            self.killed = True
            for child in children:
                try:
                    child.kill()
                except psutil.Error:
                    continue

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemoryWatch:
        import psutil

        self._before = {child.pid for child in psutil.Process().children()}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _not_kernel_death(record: logging.LogRecord) -> bool:
    """Drop nbclient's log line on a dead kernel: the run's own message says it, with what to do."""
    return "Kernel died" not in record.getMessage()


_ALLOCATE = re.compile(r"Unable to allocate ([0-9.]+ [KMGTP]?i?B)")


def is_memory_error(ename: str, evalue: str = "") -> bool:
    """Say whether a notebook's error is a want of memory (Python, numpy or DuckDB).

    Parameters
    ----------
    ename : str
        Exception class name as papermill reports it (numpy's is ``_ArrayMemoryError``).
    evalue : str, optional
        Exception message.

    Returns
    -------
    bool
        True for ``MemoryError`` and its subclasses' names, DuckDB's ``OutOfMemoryException``
        and a message that starts "Unable to allocate".
    """
    return "MemoryError" in ename or "OutOfMemory" in ename or evalue.startswith("Unable to allocate")


def resource_failure_message(stem: str, data_size: str, *, peak_gb: float | None = None,
                             limit_gb: float | None = None, evalue: str = "", killed: bool = False,
                             takes: Collection[str] | None = None) -> str:
    """One plain line for a notebook that ran out of memory: what, on how much data, and what to do.

    Parameters
    ----------
    stem : str
        Notebook (e.g. ``02_main_effects``).
    data_size : str
        The size of the data, e.g. ``"500,000 villages x 10 years"``.
    peak_gb : float, optional
        Largest resident memory of the kernel seen, in GB.
    limit_gb : float, optional
        The run's memory limit, in GB.
    evalue : str, optional
        The message of a ``MemoryError`` raised in a cell (numpy's names the memory asked for).
    killed : bool, default False
        Whether the kernel was stopped at ``limit_gb`` (else it died, or a cell raised).
    takes : collection of str, optional
        The notebook's parameters: fewer ``bootstrap_draws`` or ``outcomes`` are suggested only
        to a notebook that takes them (default: suggest both).

    Returns
    -------
    str
        E.g. ``"notebook 02_main_effects ran out of memory on 500,000 villages x 10 years (the kernel died
        at 22.9 GB): ..."``.

    Examples
    --------
    >>> resource_failure_message("02_main_effects", "900 villages x 7 years", peak_gb=3.2, limit_gb=3.0,
    ...                          killed=True)[:95]
    'notebook 02_main_effects ran out of memory on 900 villages x 7 years (its kernel was stopped at'
    """
    asked = _ALLOCATE.search(evalue)
    if killed:
        what = f"its kernel was stopped at {peak_gb or 0:.1f} GB, over the run's memory limit of {limit_gb:g} GB"
    elif asked:
        what = f"a cell asked for {asked.group(1)} more and got a MemoryError" + (
            f"; the kernel held {peak_gb:.1f} GB" if peak_gb else "")
    elif evalue:
        what = f"a cell raised an out-of-memory error: {evalue.splitlines()[0][:120]}"
    else:
        what = "its kernel died, most likely killed by the system for want of memory" + (
            f", after reaching {peak_gb:.1f} GB" if peak_gb else "")
    hints = []
    if takes is None or "bootstrap_draws" in takes:
        hints.append("fewer bootstrap draws (-p bootstrap_draws=199)")
    if takes is None or "outcomes" in takes:
        hints.append("fewer outcomes (-p outcomes=income_per_capita)")
    hints.append("a shorter window (--first-year)")
    return (f"notebook {stem} ran out of memory on {data_size} ({what}). To fit, run it with {', '.join(hints)}, "
            f"or on a machine or Dask cluster with more memory; the run is partial and outputs/latest was not moved.")


def data_size(state: dict[str, Any]) -> str:
    """Say the size of a store's panel as ``"N villages x T years"`` (from :func:`store_state`).

    Parameters
    ----------
    state : dict
        :func:`store_state` of the store.

    Returns
    -------
    str
        E.g. ``"500,000 villages x 10 years"`` (villages: panel rows over years, rounded).
    """
    years = len(state.get("panel_years") or [])
    rows = int(state.get("panel_rows") or 0)
    villages = round(rows / years) if years else 0
    return f"{villages:,} villages x {years} years"


def run_study(
    only: str | None = None,
    overrides: dict[str, str] | None = None,
    store: Path | None = None,
    outputs: Path | None = None,
    run_id: str | None = None,
    nb_dir: Path | None = None,
    force: bool = False,
    stream: TextIO | None = None,
    memory_limit_gb: float | None = None,
    jobs: int | None = None,
) -> Path:
    """Execute the notebooks with papermill and write the run folder.

    A run folder holds one parameter set. The parameters of *every* study notebook are
    prepared and validated first, and the analysis window is resolved against the store
    (``first_year`` / ``last_year`` = ``None``: the store's first / last year) and said. Then:

    * a new run name gets a new folder;
    * a run name already used is refused, unless ``force`` (the folder is then deleted and
      written afresh) or ``only`` with the same parameter set and store content (one notebook
      re-executed, or a partial run completed): other parameters are refused with the
      differences named;
    * ``MANIFEST`` is rewritten after every notebook: each executed notebook's parameters,
      the run's parameter set, the store read, and whether the run is complete;
    * the readable pages are written before the last ``MANIFEST`` (which hashes them): each
      executed notebook as HTML beside its ``.ipynb``, ``summary.json``/``summary.md`` and the
      run's ``index.html`` (:func:`analysis.report.run_pages.write_run_pages`), also when a
      notebook failed (its HTML shows the error);
    * ``outputs/latest`` moves to the run only when every notebook ran in this call (never
      with ``only``).

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
    force : bool, default False
        Replace an existing run folder of that name.
    stream : text stream, optional
        Where to write progress: the window, one line per notebook with its elapsed time, and
        where the run went (default: nothing).
    memory_limit_gb : float, optional
        Stop a notebook whose kernel holds more than this many GB of resident memory
        (:class:`MemoryWatch`); the run then ends as for a kernel the system killed. Default: no
        limit but the machine's. With several ``jobs`` each notebook's kernel has this limit.
    jobs : int, optional
        Notebooks executed at a time, each in its own kernel (default :func:`default_jobs`). The
        notebooks do not read each other's outputs, so the results do not depend on it; with more
        than one the longest start first (:func:`_longest_first`), and a failure lets the
        notebooks already running finish but starts no other.

    Returns
    -------
    pathlib.Path
        The run folder.

    Raises
    ------
    ParameterError
        For a bad parameter, an unknown ``only`` or a year the store does not hold; nothing
        is run then.
    RunError
        If the run folder is taken (another parameter set, another store content, or a
        complete rerun without ``force``), or a notebook failed (the manifest then records
        the notebooks that completed, and the run is partial). A notebook that ran out of
        memory gives the one-line message of :func:`resource_failure_message`.
    """
    from analysis.core.panel import resolve_window
    from analysis.kernel import ensure_kernel
    from analysis.report.results_json import merge_sections

    t0 = time.perf_counter()
    study = list_notebooks(nb_dir)
    notebooks = study
    if memory_limit_gb is not None and not memory_limit_gb > 0:
        raise ParameterError(f"--memory-limit must be a positive number of GB, got {memory_limit_gb}")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ParameterError(f"--jobs must be a whole number of notebooks at a time, 1 or more, got {jobs!r}")
    if only is not None:
        notebooks = [nb for nb in study if nb.stem == only or nb.name == only]
        if not notebooks:
            raise ParameterError(
                f"--only {only!r} is not a notebook; choose one of {', '.join(nb.stem for nb in study)}"
            )
    store = Path(store or paths.DEFAULT_STORE).resolve()
    outputs = Path(outputs or paths.OUTPUTS_DIR).resolve()
    run_id = run_id or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    if run_id == "latest" or run_id.startswith(".") or Path(run_id).name != run_id:
        raise ParameterError(f"--run-id {run_id!r} is not a run name: use a plain folder name (not 'latest', no "
                             "path separator, not starting with a dot)")
    run_dir = outputs / run_id
    params = prepare_parameters(study, overrides or {}, {"store": str(store), "output_dir": str(run_dir)})
    windows = {}
    for stem, p in params.items():
        if "first_year" in p or "last_year" in p:
            windows[stem] = resolve_window(store, p.get("first_year"), p.get("last_year"))
            p["first_year"], p["last_year"] = windows[stem].first_year, windows[stem].last_year
    state_of_store = store_state(store)
    progress = _Progress(stream, len(notebooks))
    if run_dir.exists():
        _check_reuse(run_dir, only, force, params, state_of_store, nb_dir)
        if force:
            if _latest_points_at(outputs, run_dir):
                (outputs / "latest").unlink()
            shutil.rmtree(run_dir)
            progress.say(f"Replacing the run folder {run_dir} (--force): its earlier content is deleted.")
    window = next((windows[nb.stem] for nb in notebooks if nb.stem in windows), None)
    what = "every notebook" if only is None else f"only {notebooks[0].stem}"
    progress.say(f"Run {run_id} ({what}) into {run_dir}.")
    if window is not None:
        progress.say(f"{window.describe()} Store: {store}.")

    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    # Kernels inherit this (and the kernel spec sets it too): pyfixest's formula handling iterates
    # over Python sets, whose order follows the per-process string-hash seed and changes the order
    # of floating-point sums, so without a fixed seed two runs can differ in the 10th digit.
    os.environ.setdefault("PYTHONHASHSEED", "0")
    ensure_kernel()
    before = read_manifest(run_dir)
    executed: dict[str, dict[str, Any]] = dict(before.get("notebooks", {})) if not force else {}
    ran_params: dict[str, dict[str, Any]] = dict(before.get("parameters", {})) if not force else {}
    jobs = min(default_jobs() if jobs is None else jobs, len(notebooks))
    order = notebooks
    if jobs > 1:
        order = _longest_first(notebooks, outputs)
        progress.say(f"{jobs} notebooks at a time (--jobs {jobs}), the longest first: "
                     f"{', '.join(nb.stem for nb in order)}.")
    failures: list[_Ran] = []
    for ran in _execute_all(order, jobs, run_dir, params, memory_limit_gb, progress):
        if ran.error is not None:
            failures.append(ran)
            executed.pop(ran.stem, None)
            ran_params.pop(ran.stem, None)
        else:
            executed[ran.stem] = {"seconds": round(ran.seconds, 1), "peak_memory_gb": round(ran.peak_gb, 2),
                                  "finished_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
            ran_params[ran.stem] = params[ran.stem]
        _write_run_manifest(run_dir, store, study, params, ran_params, executed, state_of_store,
                            time.perf_counter() - t0)
    if failures:
        ran = failures[0]
        nb_name = next(nb.name for nb in notebooks if nb.stem == ran.stem)
        _drop_if_empty(run_dir / "kernels.log")
        merge_sections(run_dir)
        written = [f.stem for f in failures if (run_dir / "notebooks" / f"{f.stem}.ipynb").is_file()]
        if written:
            _write_pages(run_dir, written, progress)
        _write_run_manifest(run_dir, store, study, params, ran_params, executed, state_of_store,
                            time.perf_counter() - t0)
        if ran.killed or ran.error == "kernel" or is_memory_error(ran.ename, ran.evalue):
            raise RunError(resource_failure_message(
                ran.stem, data_size(state_of_store), peak_gb=ran.peak_gb or None, limit_gb=memory_limit_gb,
                evalue=ran.evalue, killed=ran.killed, takes=params[ran.stem]))
        raise RunError(
            f"notebook {ran.stem} failed in cell {ran.exec_count}: {ran.ename}: {ran.evalue}. "
            f"The executed notebook, with the error, is {run_dir / 'notebooks' / nb_name}; "
            f"the run is partial and outputs/latest was not moved."
        )
    merge_sections(run_dir)
    _drop_if_empty(run_dir / "kernels.log")
    _write_pages(run_dir, [nb.stem for nb in notebooks], progress)
    state = _write_run_manifest(run_dir, store, study, params, ran_params, executed, state_of_store,
                                time.perf_counter() - t0)
    if only is None:
        _point_latest(outputs, run_id)
        progress.say(f"Run complete in {time.perf_counter() - t0:.0f} s: {run_dir} "
                     f"({outputs / 'latest'} points to it).")
    else:
        progress.say(f"{state.describe()} {outputs / 'latest'} was not moved: it moves only when one `study run` "
                     "runs every notebook.")
    return run_dir


def default_jobs() -> int:
    """Return how many notebooks :func:`run_study` executes at a time by default: 2, or 1 on one core.

    Each notebook is one single-threaded kernel, so two use a 2-core machine; more would hold more
    kernels' memory at once (7-9.5 GB each at national size) for no gain on such a machine.

    Returns
    -------
    int
        ``min(2, usable cores)``.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def _longest_first(notebooks: list[Path], outputs: Path) -> list[Path]:
    """Order notebooks for several at a time: longest first, by the latest complete run's times.

    Without a record (no ``outputs/latest``, or a notebook it does not time) the later notebooks
    go first: the study's stages grow heavier along the sequence (estimation grids and
    simulations come last).
    """
    seconds: dict[str, float] = {}
    latest = outputs / "latest"
    if latest.is_dir():
        recorded = read_manifest(latest).get("notebooks", {})
        seconds = {k: float(v.get("seconds", 0.0)) for k, v in recorded.items() if isinstance(v, dict)}
    rank = {nb.stem: i for i, nb in enumerate(notebooks)}
    if all(nb.stem in seconds for nb in notebooks):
        return sorted(notebooks, key=lambda nb: (-seconds[nb.stem], rank[nb.stem]))
    return notebooks[::-1]


@dataclass
class _Ran:
    """How one notebook's execution ended (picklable: it comes back from a worker process)."""

    stem: str
    seconds: float
    peak_gb: float
    killed: bool = False
    error: str | None = None  # None: ran; "cell": a cell raised; "kernel": the kernel died or was stopped
    ename: str = ""
    evalue: str = ""
    exec_count: Any = "?"


def _execute(nb: Path, out: Path, parameters: dict[str, Any], kernels_log: Path, cwd: Path,
             memory_limit_gb: float | None) -> _Ran:
    """Execute one notebook with papermill in the project's kernel, its memory watched."""
    import papermill as pm
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from analysis.kernel import KERNEL_NAME, kernel_manager_class

    t0 = time.perf_counter()
    watch = MemoryWatch(memory_limit_gb)
    nbclient_log = logging.getLogger("papermill")  # the logger papermill gives nbclient
    nbclient_log.addFilter(_not_kernel_death)
    try:
        with watch:
            pm.execute_notebook(str(nb), str(out), parameters=parameters, kernel_name=KERNEL_NAME,
                                kernel_manager_class=kernel_manager_class(kernels_log), progress_bar=False,
                                cwd=str(cwd))
    except Exception as exc:
        failed = isinstance(exc, PapermillExecutionError)
        if not (failed or watch.killed or isinstance(exc, DeadKernelError)):
            raise
        return _Ran(nb.stem, time.perf_counter() - t0, watch.peak_gb, watch.killed, "cell" if failed else "kernel",
                    getattr(exc, "ename", ""), getattr(exc, "evalue", ""), getattr(exc, "exec_count", "?"))
    finally:
        nbclient_log.removeFilter(_not_kernel_death)
    return _Ran(nb.stem, time.perf_counter() - t0, watch.peak_gb)


def _execute_all(notebooks: list[Path], jobs: int, run_dir: Path, params: dict[str, dict[str, Any]],
                 memory_limit_gb: float | None, progress: _Progress) -> Iterator[_Ran]:
    """Execute the notebooks in the order given, ``jobs`` at a time, and yield each one's end as it comes.

    One at a time they run in this process and the first failure stops the run. Several at a
    time each runs in a worker process of its own (spawned, so no state is shared); after a
    failure no other starts, and those running finish.
    """
    def task(nb: Path) -> tuple[Path, Path, dict[str, Any], Path, Path, float | None]:
        return nb, run_dir / "notebooks" / nb.name, params[nb.stem], run_dir / "kernels.log", paths.ROOT, \
            memory_limit_gb

    if jobs == 1:
        for nb in notebooks:
            progress.start(nb.stem)
            ran = _execute(*task(nb))
            progress.end(_describe(ran))
            yield ran
            if ran.error is not None:
                return
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    order = list(notebooks)
    # Ctrl-C is this process's to handle: the workers ignore it (their kernels install their own handler),
    # and on any exit but the normal one the workers and their kernels are stopped, not waited for
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN))
    try:
        running: dict[Future[_Ran], Path] = {}
        failed = False
        while order or running:
            while order and len(running) < jobs and not failed:
                nb = order.pop(0)
                progress.say(f"  started {nb.stem}")
                running[pool.submit(_execute, *task(nb))] = nb
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: running[f].stem):
                running.pop(fut)
                ran = fut.result()
                progress.start(ran.stem)
                progress.end(_describe(ran))
                failed = failed or ran.error is not None
                yield ran
    except BaseException:
        _stop_workers(pool)
        raise
    pool.shutdown()


def _stop_workers(pool: Any) -> None:
    """Kill a process pool's workers and everything they started (the notebooks' kernels), then let it go."""
    import psutil

    for pid in list(getattr(pool, "_processes", None) or {}):
        try:
            worker = psutil.Process(pid)
            tree = [*worker.children(recursive=True), worker]
        except psutil.Error:
            continue
        for proc in tree:
            try:
                proc.kill()
            except psutil.Error:
                continue
    pool.shutdown(wait=False, cancel_futures=True)


def _describe(ran: _Ran) -> str:
    if ran.error is not None:
        return f"failed after {ran.seconds:.1f} s (peak {ran.peak_gb:.1f} GB)"
    return f"peak {ran.peak_gb:4.1f} GB {ran.seconds:6.1f} s"


def _write_pages(run_dir: Path, stems: list[str], progress: _Progress) -> None:
    """Write the run's readable pages (notebooks as HTML, summary, index.html) and say so in one line."""
    from analysis.report.run_pages import write_run_pages

    t0 = time.perf_counter()
    write_run_pages(run_dir, stems)
    progress.say(f"  Readable pages in {time.perf_counter() - t0:.1f} s: {run_dir / 'index.html'} (notebooks as HTML, "
                 "summary.md).")


def _drop_if_empty(path: Path) -> None:
    if path.is_file() and path.stat().st_size == 0:
        path.unlink()


def _check_reuse(run_dir: Path, only: str | None, force: bool, params: dict[str, dict[str, Any]],
                 store_now: dict[str, Any], nb_dir: Path | None) -> None:
    """Refuse to write into an existing run folder unless forced or the same run is continued."""
    if force:
        return
    replace = "choose another --run-id, or add --force to replace the folder (its content is deleted)"
    if only is None:
        raise RunError(f"the run folder {run_dir} already exists: a run name is used once; {replace}")
    state = run_state(run_dir, nb_dir)
    if not state.done or not state.run_parameters:
        raise RunError(f"the folder {run_dir} exists but holds no run this version recorded; {replace}")
    diffs = parameter_differences(state.run_parameters, params)
    if diffs:
        raise RunError(
            f"the run folder {run_dir} holds a run with other parameters: {'; '.join(diffs)}. "
            f"A run folder holds one set of parameters: {replace}"
        )
    if state.store_state and _jsonable(state.store_state) != _jsonable(store_now):
        raise RunError(
            f"the store changed since the run folder {run_dir} was written (last ingest "
            f"{state.store_state.get('last_ingest')} then, {store_now.get('last_ingest')} now): its notebooks would "
            f"mix two versions of the data; {replace}"
        )


def _write_run_manifest(run_dir: Path, store: Path, study: list[Path], params: dict[str, dict[str, Any]],
                        ran_params: dict[str, dict[str, Any]], executed: dict[str, dict[str, Any]],
                        store_now: dict[str, Any], wall_time_s: float) -> RunState:
    """Write the MANIFEST of the run folder as it stands and return its state."""
    from analysis.report.manifest import write_manifest

    order = [nb.stem for nb in study]
    done = [s for s in order if s in executed]
    missing = [s for s in order if s not in executed]
    seeds = {p.get("seed") for p in ran_params.values() if "seed" in p}
    write_manifest(
        run_dir,
        inputs={"store": store, **{f"notebook:{nb.name}": nb for nb in study if nb.stem in executed}},
        parameters={s: ran_params[s] for s in done},
        seed=seeds.pop() if len(seeds) == 1 else None,
        wall_time_s=wall_time_s,
        extra={"complete": not missing, "notebooks": {s: executed[s] for s in done}, "missing": missing,
               "run_parameters": params, "store_state": store_now},
    )
    return RunState(run_dir, tuple(done), tuple(missing), params, store_now)


def write_brief(run_dir: Path, lang: str = "both", compare_to: Path | None = None,
                nb_dir: Path | None = None, say: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Write the findings brief of a complete run; refuse a partial one, writing nothing.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.
    lang : {"both", "zh", "en"}
        Language(s).
    compare_to : pathlib.Path, optional
        An earlier complete run: the brief then says what changed since it.
    nb_dir : pathlib.Path, optional
        The study's notebooks (default ``notebooks/``), which a complete run holds.
    say : callable, optional
        Receives plain sentences on how the brief was composed (:func:`analysis.report.brief.build_brief`).

    Returns
    -------
    dict
        The files written (:func:`analysis.report.brief.build_brief`). The run's ``index.html``
        is rewritten to link them and, if the run has a ``MANIFEST``, its output hashes are
        refreshed to include them.

    Raises
    ------
    RunError
        If a run is partial by its ``MANIFEST`` (the message names the notebooks it lacks and
        how to complete it).
    FileNotFoundError, ValueError
        As :func:`analysis.report.brief.build_brief`; no empty ``brief/`` folder is left behind.
    """
    from analysis.report.brief import build_brief

    for run in (run_dir, compare_to):
        if run is None:
            continue
        state = run_state(run, nb_dir)
        if state.recorded and not state.complete:
            first = state.missing[0] if state.missing else "NAME"
            raise RunError(
                f"{state.describe()} A brief is written only from a complete run, so nothing was written. "
                f"Run the missing notebooks into it with the same parameters (`study run --run-id {Path(run).name} "
                f"--only {first}`, and so on), or brief a complete run (`study brief --run NAME`)."
            )
    from analysis.report.manifest import refresh_outputs
    from analysis.report.run_pages import write_index

    folder = Path(run_dir) / "brief"
    existed = folder.exists()
    try:
        written = build_brief(Path(run_dir), lang=lang, compare_to=compare_to, say=say)
    except BaseException:
        if not existed and folder.is_dir():
            shutil.rmtree(folder)
        raise
    write_index(Path(run_dir))
    refresh_outputs(Path(run_dir))
    return written
