"""Writing the store safely: the ingest lock and the atomic copy-on-write.

The live file is never written in place. Under an exclusive lock file (``<store>.lock``,
:func:`fcntl.flock`, :func:`ingest_lock`) the store is copied to a temporary file beside
it, the whole write runs there in one transaction, the copy is checkpointed, closed and
fsynced, and :func:`os.replace` moves it over the original (:func:`atomic_update`). A
process killed at any point leaves the original file byte-for-byte as it was; the
orphaned temporary file is deleted by the next write. Readers that already have the
store open keep reading the old snapshot until they reopen it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import duckdb

from analysis.data.store.layout import StoreError

T = TypeVar("T")

_LOCAL = threading.local()


def _lock_path(store: Path) -> Path:
    return store.with_name(store.name + ".lock")


def _temp_prefix(store: Path) -> str:
    return store.name + ".ingest-"


@contextmanager
def ingest_lock(store: str | os.PathLike, timeout: float = 600.0) -> Iterator[None]:
    """Hold the exclusive ingest lock of ``store`` (re-entrant within a thread).

    The lock is an :func:`fcntl.flock` on ``<store>.lock`` (the file stays in place; the
    operating system releases the lock when the process ends, even by ``kill -9``).

    Parameters
    ----------
    store : str or path-like
        The store file.
    timeout : float, default 600
        Seconds to wait for another ingest to finish.

    Yields
    ------
    None
        While the lock is held.

    Raises
    ------
    StoreError
        If the lock is not obtained within ``timeout`` seconds.
    """
    store = Path(store).resolve()
    held: dict[Path, int] = _LOCAL.__dict__.setdefault("held", {})
    if held.get(store):
        held[store] += 1
        try:
            yield
        finally:
            held[store] -= 1
        return
    store.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_lock_path(store), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another ingest has been writing {store} for more than {timeout:g} s; "
                        "wait for it to finish and try again"
                    ) from exc
                time.sleep(0.05)
        held[store] = 1
        try:
            yield
        finally:
            held.pop(store, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _remove_leftovers(store: Path) -> list[Path]:
    """Delete temporary files of killed ingests (call only while holding the lock)."""
    removed = []
    for p in store.parent.glob(_temp_prefix(store) + "*"):
        with suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _recover_wal(store: Path) -> None:
    """Fold a write-ahead log left beside the live store into it (DuckDB's own recovery).

    The write path never leaves a WAL (every copy is checkpointed before it replaces
    the store), so this only runs if someone wrote the live file directly and crashed.
    """
    wal = store.with_name(store.name + ".wal")
    if store.exists() and wal.exists():
        con = duckdb.connect(str(store))
        try:
            con.execute("CHECKPOINT")
        finally:
            con.close()


def connect_rw(path: Path) -> duckdb.DuckDBPyConnection:
    """Open a (temporary copy of the) store for writing.

    Parameters
    ----------
    path : pathlib.Path
        The file.

    Returns
    -------
    duckdb.DuckDBPyConnection
        A read-write connection.

    Raises
    ------
    StoreError
        If the file is not a usable DuckDB database.
    """
    try:
        return duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise StoreError(f"the store is not a usable DuckDB file: {exc}") from exc


@contextmanager
def transaction(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a (temporary copy of the) store for writing and run the block in one transaction.

    What the block writes is committed and checkpointed when it ends; any exception (an interrupt
    too) rolls it back and propagates. The connection is closed either way.

    Parameters
    ----------
    path : pathlib.Path
        The file (:func:`connect_rw`).

    Yields
    ------
    duckdb.DuckDBPyConnection
        The connection, inside ``BEGIN TRANSACTION``.
    """
    con = connect_rw(path)
    try:
        con.execute("BEGIN TRANSACTION")
        yield con
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def atomic_update(store: Path, work: Callable[[Path], T], keep: bool = True) -> T:
    """Run ``work`` on a temporary copy of ``store``, then move the copy over the store.

    Call it while holding :func:`ingest_lock`. Temporary files of killed writes are
    deleted first, and a write-ahead log left beside the live store is folded into it.
    The copy is fsynced before :func:`os.replace` moves it over the store (atomic on
    POSIX), and the folder after. If ``work`` raises (or the process dies), the store is
    byte-for-byte as it was and the copy is deleted (by the next write, after a crash).

    Parameters
    ----------
    store : pathlib.Path
        The store (copied if it exists; else ``work`` starts from an empty file name).
    work : callable
        Takes the copy's path, writes into it (committed and checkpointed, connection
        closed) and returns a result.
    keep : bool, default True
        Move the copy over the store; False deletes it (a dry run).

    Returns
    -------
    object
        What ``work`` returned.
    """
    _remove_leftovers(store)
    _recover_wal(store)
    tmp = store.with_name(f"{_temp_prefix(store)}{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        if store.exists():
            shutil.copyfile(store, tmp)
            shutil.copymode(store, tmp)
        result = work(tmp)
        if keep:
            _fsync(tmp)
            os.replace(tmp, store)
            _fsync(store.parent, directory=True)
        else:
            tmp.unlink()
    except BaseException:
        for p in (tmp, tmp.with_name(tmp.name + ".wal")):
            with suppress(FileNotFoundError):
                p.unlink()
        raise
    return result
