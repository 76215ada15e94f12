"""Write a file so that it is, at every moment, either entirely the old one or entirely the new one.

The ingest's error reports, the synthetic city's files and the worked example's files are
written through :func:`write_atomic`: the bytes go to a temporary name in the same folder,
are flushed to disk, and :func:`os.replace` moves the file into place (atomic on POSIX),
so a crash never leaves half a file. The store has its own copy-on-write path
(:mod:`analysis.data.store.write`).
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`.

    Parameters
    ----------
    path : pathlib.Path
        The file to write (its folder must exist).
    data : bytes
        The whole new content.

    Raises
    ------
    OSError
        If the folder is not writable; no temporary file is left behind.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
