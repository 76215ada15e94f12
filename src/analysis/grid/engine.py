"""The engine of every loop of independent seeded tasks: Dask, on this machine or on a cluster.

A *task* is any picklable object whose work is done by one function ``fn(task, shared)``
returning a :class:`pandas.DataFrame`; ``shared`` is data every task reads (the analysis panel
and the postings of the specification grid), shipped once to each worker rather than pickled into
every task. :func:`run_tasks` runs a list of them:

* **serially** in this process (``serial=True``): the reference, and what a one-core run does;
* on a **local cluster** (default): a :class:`dask.distributed.LocalCluster` of ``workers``
  processes (default: one per core of the machine), one thread each, with one BLAS thread per
  process, started and closed by the run;
* on an **existing cluster**: ``scheduler="tcp://host:8786"`` (or the environment variable
  :data:`SCHEDULER_ENV`) connects to a scheduler started with ``dask scheduler`` and workers
  started with ``dask worker tcp://host:8786`` (or by dask-jobqueue on SLURM/PBS, or the Dask
  Kubernetes operator: the engine needs only the scheduler's address). The workers must have this
  package installed at the same version. An address that does not answer raises
  :class:`SchedulerUnreachable`, a :class:`ValueError` with one sentence saying what to do.

Resuming. With ``results_dir``, each task's frame is written, as soon as it arrives, to one
Parquet file of its own (``<name>.parquet``, atomically); a rerun into the same folder reads the
finished tasks' files and runs only the others, so a run killed half way (the client, a worker,
the machine) loses only the tasks in flight. The folder also holds ``run.json``, the run's
description (``fingerprint``): a folder made with other options is refused, never mixed.

Determinism. Every task carries its own seed (spawned from the study's one ``SeedSequence`` by
the code that makes the tasks), and :func:`run_tasks` returns the frames **in the order of the task
list** whatever order they finished in, so any reduction over them gives the same bytes for any
number of workers, any scheduler and any mix of fresh and resumed tasks. A worker lost during a run
(killed, out of memory) is replaced by Dask and its tasks run again elsewhere, with the same seeds.

Examples
--------
>>> import pandas as pd
>>> frames = run_tasks([1, 2, 3], lambda t, s: pd.DataFrame({"x": [t * s]}), name=str, shared=10, serial=True)
>>> [int(f["x"].iloc[0]) for f in frames]
[10, 20, 30]
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

__all__ = [
    "CONNECT_TIMEOUT_ENV",
    "SCHEDULER_ENV",
    "EngineError",
    "RunStats",
    "SchedulerUnreachable",
    "connect",
    "run_tasks",
    "scheduler_address",
    "task_file",
]

T = TypeVar("T")

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
"""Environment variable naming an existing Dask scheduler (used when no ``scheduler`` is given)."""
CONNECT_TIMEOUT_ENV = "STUDY_DASK_CONNECT_TIMEOUT"
"""Environment variable: seconds to wait for a scheduler before saying that it does not answer (default 10)."""
WORKER_WAIT = 60.0
"""Seconds to wait for a remote scheduler's first worker before saying it has none."""
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""One BLAS thread per worker process: the same floating-point sums as a serial run, no oversubscription."""
_SAFE = re.compile(r"[^A-Za-z0-9_.=+-]")


class EngineError(ValueError):
    """A run the engine refuses (a results folder of another run, duplicate task names)."""


class SchedulerUnreachable(EngineError):
    """The Dask scheduler at the given address did not answer."""


@dataclass
class RunStats:
    """What a run did, for the progress line and the benchmarks.

    Attributes
    ----------
    tasks : int
        Tasks in the list.
    resumed : int
        Tasks read from their files in ``results_dir`` (not run).
    ran : int
        Tasks run.
    workers : int
        Worker processes (0: serial in this process).
    seconds : float
        Wall time of the run, including starting and closing a local cluster.
    where : str
        ``"serial"``, ``"local cluster"`` or the scheduler's address.
    """

    tasks: int = 0
    resumed: int = 0
    ran: int = 0
    workers: int = 0
    seconds: float = 0.0
    where: str = "serial"


def scheduler_address(scheduler: str | None = None) -> str | None:
    """Return the scheduler to connect to: the argument, else :data:`SCHEDULER_ENV`, else None (local).

    Parameters
    ----------
    scheduler : str, optional
        Address such as ``tcp://127.0.0.1:8786``.

    Returns
    -------
    str or None
        The address, or None for a local cluster.
    """
    address = scheduler if scheduler else os.environ.get(SCHEDULER_ENV, "")
    return address.strip() or None


def task_file(results_dir: str | os.PathLike, name: str) -> Path:
    """Return the Parquet file of one task's results.

    Parameters
    ----------
    results_dir : str or path-like
        The run's results folder.
    name : str
        The task's name (characters outside ``A-Za-z0-9_.=+-`` become ``_``).

    Returns
    -------
    pathlib.Path
        ``results_dir/<name>.parquet``.
    """
    return Path(results_dir) / f"{_SAFE.sub('_', name)}.parquet"


@contextlib.contextmanager
def _single_thread_env() -> Iterator[None]:
    old = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
    os.environ.update(SINGLE_THREAD_ENV)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """Open a Dask client: to an existing scheduler, or to a local cluster started (and closed) here.

    Parameters
    ----------
    scheduler : str, optional
        Address of an existing scheduler (default: :data:`SCHEDULER_ENV` if set, else a local cluster).
    workers : int, optional
        Worker processes of the local cluster (default: the machine's cores); ignored with a scheduler.

    Yields
    ------
    distributed.Client
        The client.

    Raises
    ------
    SchedulerUnreachable
        If the scheduler does not answer within 10 seconds (:data:`CONNECT_TIMEOUT_ENV`).
    EngineError
        For fewer than one worker.
    """
    from distributed import Client, LocalCluster

    address = scheduler_address(scheduler)
    if address is not None:
        try:
            client = Client(address, timeout=float(os.environ.get(CONNECT_TIMEOUT_ENV, "10")))
        except (OSError, TimeoutError, ValueError) as err:
            raise SchedulerUnreachable(
                f"no Dask scheduler answers at {address} ({type(err).__name__}): start one with "
                f"`dask scheduler` and workers with `dask worker {address}`, check the address "
                f"(--scheduler or {SCHEDULER_ENV}), or leave both out to run on a local cluster"
            ) from None
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT)
        except (TimeoutError, OSError):
            client.close()
            raise SchedulerUnreachable(
                f"the Dask scheduler at {address} has no worker after {WORKER_WAIT:g} s: start workers with "
                f"`dask worker {address}`"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    n = (os.cpu_count() or 1) if workers is None else int(workers)
    if isinstance(workers, bool) or n < 1:
        raise EngineError(f"workers must be at least 1, got {workers!r}")
    import dask

    # The scheduler runs in this process, and its INFO messages (its start, the workers' comms closed at
    # shutdown, with a traceback) went to stderr: into the notebook of a stage that uses the engine.
    # silence_logs sets the workers' level only.
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        # The workers' statistical profiler samples every thread's stack every 10 ms: CPU taken from the tasks
        # on a machine whose cores are all workers. The nannies pass this configuration to the worker processes.
        with _single_thread_env(), dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   silence_logs=logging.ERROR)
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
    finally:
        quiet.setLevel(level)


def _check_folder(results_dir: Path, fingerprint: Mapping[str, Any] | None) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    manifest = results_dir / "run.json"
    want = json.loads(json.dumps(dict(fingerprint or {}), sort_keys=True, default=str))
    if manifest.is_file():
        have = json.loads(manifest.read_text(encoding="utf-8"))
        if have != want:
            diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
            raise EngineError(
                f"the results folder {results_dir} holds a run with other options ({', '.join(diff)} differ): "
                "give another folder, or delete this one to start afresh"
            )
    else:
        tmp = manifest.with_name(f".run.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(want, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, manifest)


def _write(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="task", mininterval=1.0,
                dynamic_ncols=True)


def run_tasks(
    tasks: Sequence[T],
    fn: Callable[[T, Any], pd.DataFrame],
    name: Callable[[T], str],
    shared: Any = None,
    results_dir: str | os.PathLike | None = None,
    fingerprint: Mapping[str, Any] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    serial: bool = False,
    progress: bool = False,
    description: str = "tasks",
    stats: RunStats | None = None,
) -> list[pd.DataFrame]:
    """Run independent tasks and return their frames in the order of ``tasks``.

    Parameters
    ----------
    tasks : sequence
        The tasks (picklable; each carries its own seed).
    fn : callable
        ``fn(task, shared) -> DataFrame``: a module-level function (workers import it).
    name : callable
        ``name(task) -> str``: the task's unique name (its key), also the name of its file.
    shared : object, optional
        Data every task reads: scattered once to every worker (not pickled into each task).
    results_dir : str or path-like, optional
        Folder of one Parquet file per finished task: finished tasks are read, not rerun.
    fingerprint : mapping, optional
        The run's options, kept in ``results_dir/run.json``; a folder made with other options is refused.
    workers : int, optional
        Worker processes of the local cluster (default: one per core).
    scheduler : str, optional
        Address of an existing Dask scheduler (default: :data:`SCHEDULER_ENV`, else a local cluster).
    serial : bool, default False
        Run in this process, without Dask.
    progress : bool, default False
        Show a progress bar (on standard error).
    description : str, default "tasks"
        Label of the progress bar.
    stats : RunStats, optional
        Filled with what the run did.

    Returns
    -------
    list of pandas.DataFrame
        One frame per task, in the order of ``tasks`` (never in the order they finished).

    Raises
    ------
    EngineError
        For duplicate task names, or a results folder of another run.
    SchedulerUnreachable
        If ``scheduler`` (or :data:`SCHEDULER_ENV`) names a scheduler that does not answer.
    """
    t0 = time.perf_counter()
    stats = stats if stats is not None else RunStats()
    names = [name(t) for t in tasks]
    files = [_SAFE.sub("_", n) for n in names]
    if len(set(files)) != len(files):
        dup = sorted({n for n, f in zip(names, files, strict=True) if files.count(f) > 1})[:5]
        raise EngineError(f"task names must be unique, got duplicates such as {dup}")
    folder = Path(results_dir) if results_dir is not None else None
    if folder is not None:
        _check_folder(folder, fingerprint)
    out: list[pd.DataFrame | None] = [None] * len(tasks)
    todo: list[int] = []
    for i, n in enumerate(names):
        f = task_file(folder, n) if folder is not None else None
        if f is not None and f.is_file():
            out[i] = pd.read_parquet(f)
        else:
            todo.append(i)
    stats.tasks, stats.resumed, stats.ran = len(tasks), len(tasks) - len(todo), len(todo)

    def finish(i: int, frame: pd.DataFrame) -> None:
        if folder is not None:
            _write(frame, task_file(folder, names[i]))
        out[i] = frame

    # The progress bar appears once the tasks can run (not before a scheduler that does not answer).
    bar = None
    try:
        if serial or not todo:
            stats.workers, stats.where = 0, "serial"
            bar = _progress(len(tasks), len(tasks) - len(todo), progress, description)
            for i in todo:
                finish(i, fn(tasks[i], shared))
                bar.update(1)
        else:
            from distributed import as_completed

            with connect(scheduler, workers) as client:
                stats.workers = len(client.scheduler_info(n_workers=-1)["workers"])
                stats.where = scheduler_address(scheduler) or "local cluster"
                bar = _progress(len(tasks), len(tasks) - len(todo), progress, description)
                data = client.scatter(shared, broadcast=True) if shared is not None else None
                token = uuid.uuid4().hex[:8]
                futures = {}
                for rank, i in enumerate(todo):
                    fut = client.submit(fn, tasks[i], data, key=f"{description}-{token}-{files[i]}",
                                        priority=-rank, pure=False)
                    futures[fut] = i
                for fut in as_completed(futures):
                    finish(futures[fut], fut.result())
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        stats.seconds = time.perf_counter() - t0
    return [f for f in out if f is not None]
