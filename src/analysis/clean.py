"""What ``make clean`` may delete: run outputs always, a store only when it holds nothing worth keeping.

A store that holds ingested data (real files, the 2025 example, anything ``study simulate`` did
not write) is the only copy of that data's validated form and of its ingest history, so it is
never deleted without an explicit confirmation. A store holding nothing but the synthetic city
(``study simulate`` rebuilds it from its seed in a minute) may be deleted freely; the check is
the one ``study simulate`` uses before it overwrites a store (:func:`store_is_disposable`).
Deleting a store also deletes its write-ahead log, its lock file and the temporary files of an
interrupted ingest or simulation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from analysis import paths


class CleanError(Exception):
    """The store holds data worth keeping and no confirmation was given; nothing was deleted."""


def store_is_disposable(store: Path, synthetic_dir: Path | None = None) -> tuple[bool, str]:
    """Say whether a store holds nothing but the synthetic city (or nothing at all).

    Parameters
    ----------
    store : pathlib.Path
        The DuckDB store.
    synthetic_dir : pathlib.Path, optional
        Folder ``study simulate`` wrote the city to (default ``data/synthetic``).

    Returns
    -------
    (bool, str)
        Whether deleting the store loses nothing ``study simulate`` cannot rebuild, and why
        (or why not) in one phrase.
    """
    from analysis.data.store import read_provenance
    from analysis.data.synthetic.truth import truth_status

    try:
        if read_provenance(store).empty:
            return True, "nothing was ever ingested into it"
    except Exception as exc:  # an unreadable file is not known to be disposable
        return False, f"it cannot be read as a store ({exc})"
    ok, why = truth_status(store, Path(synthetic_dir or paths.SYNTHETIC_DIR))
    return ok, why


def store_files(store: Path) -> list[Path]:
    """List the files that belong to a store: the database, its log, its lock and leftovers.

    Parameters
    ----------
    store : pathlib.Path
        The DuckDB store.

    Returns
    -------
    list of pathlib.Path
        Those that exist: ``<store>``, ``<store>.wal``, ``<store>.lock``, and temporary files of
        an interrupted ingest (``<store>.ingest-*``) or simulation (``<store>.simulate-new*``).
    """
    store = Path(store)
    names = [store, store.with_name(store.name + ".wal"), store.with_name(store.name + ".lock")]
    names += sorted(store.parent.glob(store.name + ".ingest-*"))
    names += sorted(store.parent.glob(store.name + ".simulate-new*"))
    return [p for p in dict.fromkeys(names) if p.exists() or p.is_symlink()]


def remove_store(store: Path, synthetic_dir: Path | None = None, confirm: bool = False) -> list[Path]:
    """Delete a store and its files, unless it holds data worth keeping and ``confirm`` is false.

    Parameters
    ----------
    store : pathlib.Path
        The DuckDB store.
    synthetic_dir : pathlib.Path, optional
        Folder ``study simulate`` wrote the city to (default ``data/synthetic``).
    confirm : bool, default False
        Delete even a store holding ingested data.

    Returns
    -------
    list of pathlib.Path
        The files deleted (empty if there was no store).

    Raises
    ------
    CleanError
        If the store holds data ``study simulate`` did not write and ``confirm`` is false;
        nothing is deleted then.
    """
    from analysis.data.store import ingest_lock

    store = Path(store)
    if not store.exists():
        files = store_files(store)
        for p in files:
            p.unlink()
        return files
    ok, why = store_is_disposable(store, synthetic_dir)
    if not ok and not confirm:
        raise CleanError(
            f"the store {store} holds data that `study simulate` did not write ({why}); it is kept, with its "
            "ingest history. To delete it anyway: make clean-store CONFIRM=yes (or study clean-store --yes). "
            f"To keep it and start afresh, move it away first (mv {store} SOMEWHERE)."
        )
    with ingest_lock(store, timeout=60):  # never while an ingest is writing it
        files = [p for p in store_files(store) if not p.name.endswith(".lock")]
        for p in files:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
    lock = store.with_name(store.name + ".lock")
    if lock.exists():
        lock.unlink()
        files.append(lock)
    return files


def remove_outputs(outputs: Path | None = None) -> list[Path]:
    """Delete every run folder and the ``latest`` link under the outputs folder.

    Parameters
    ----------
    outputs : pathlib.Path, optional
        Outputs folder (default ``outputs/``); files starting with a dot (``.gitkeep``) stay.

    Returns
    -------
    list of pathlib.Path
        What was deleted.
    """
    outputs = Path(outputs or paths.OUTPUTS_DIR)
    removed = []
    for p in sorted(outputs.iterdir()) if outputs.is_dir() else []:
        if p.name.startswith("."):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
        removed.append(p)
    return removed
