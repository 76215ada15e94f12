"""The Jupyter kernel of the project's environment, with the reproducibility settings.

The notebooks name the kernel :data:`KERNEL_NAME` (``study``) in their metadata. It runs the
environment's own Python (the one this module is imported from, normally ``.venv/bin/python``)
with the settings every run of the study uses (:data:`KERNEL_ENV`): a fixed string-hash seed
and one BLAS thread, so a notebook run in JupyterLab gives the same numbers, to the last digit,
as ``study run``. The kernel is installed into the environment itself (like
``ipykernel install --sys-prefix``: no root, nothing in the user's home), by the Makefile's set-up
(``python -m analysis.kernel``) and, if it is missing or stale, by the pipeline before it runs.

Papermill talks to the kernel over IPC sockets (:func:`kernel_manager_class`) rather than TCP
on localhost: nothing listens on a port, and the kernel has no reason to warn that its
traffic is unencrypted. What a kernel prints outside its notebook goes to a log file of the run,
not to the terminal of ``study run``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

from jupyter_client import AsyncKernelManager
from traitlets import default

KERNEL_NAME = "study"
"""Name of the kernel in the notebooks' metadata and in ``jupyter kernelspec list``."""
DISPLAY_NAME = "Python (study)"
"""Name shown in JupyterLab's launcher and kernel picker."""
ALLOCATOR_ENV: dict[str, str] = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
}
"""glibc's allocator settings of every kernel: large arrays come from the heap and stay there once freed.

By default glibc gives each block above 32 MB (one column of a national panel: 4.5 million float64 values
are 36 MB) its own ``mmap`` and returns it to the system when it is freed, so the next array of that size
faults in fresh pages, and on these virtual machines a page fault is slow (freed pages go back to the
host). With these settings the heap keeps freed blocks for reuse and gives memory back only when more
than 1 GB is free at its top. ``bench/bench_allocator.py`` (six Callaway-Sant'Anna fits on 4.5 million
rows, 7 December 2026): system time 3.4 -> 1.2 s, wall time 13.5 -> 10.3 s, peak memory 1.34 -> 1.37 GB,
the same estimates. The national study run went from 1318.7 to 1010.8 s. Other C libraries ignore the
variables."""

KERNEL_ENV: dict[str, str] = {
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    **ALLOCATOR_ENV,
}
"""Environment of every kernel: the string-hash seed (set iteration order inside libraries, hence
the order of floating-point sums), one BLAS thread (the same summation order on every machine) and
the allocator settings (:data:`ALLOCATOR_ENV`). Dask workers a kernel starts inherit them."""


def kernel_dir(prefix: str | os.PathLike | None = None) -> Path:
    """Return the folder of the kernel spec inside an environment.

    Parameters
    ----------
    prefix : path-like, optional
        The environment (default: this interpreter's, ``sys.prefix``).

    Returns
    -------
    pathlib.Path
        ``<prefix>/share/jupyter/kernels/study``.
    """
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME


def kernel_is_current(prefix: str | os.PathLike | None = None) -> bool:
    """Say whether the installed kernel spec is this environment's, with the right settings.

    Parameters
    ----------
    prefix : path-like, optional
        The environment (default: ``sys.prefix``).

    Returns
    -------
    bool
        True if ``kernel.json`` exists, runs this interpreter and sets :data:`KERNEL_ENV`.
    """
    path = kernel_dir(prefix) / "kernel.json"
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    argv = spec.get("argv") or [""]
    return (spec.get("env") == KERNEL_ENV and spec.get("display_name") == DISPLAY_NAME
            and Path(argv[0]) == Path(sys.executable) and "ipykernel_launcher" in argv)


def install_kernel(prefix: str | os.PathLike | None = None) -> Path:
    """Install (or refresh) the kernel spec in the environment; no root needed.

    Parameters
    ----------
    prefix : path-like, optional
        The environment (default: ``sys.prefix``, as ``ipykernel install --sys-prefix``).

    Returns
    -------
    pathlib.Path
        The kernel spec folder.
    """
    from ipykernel.kernelspec import install

    target = install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME, prefix=str(prefix or sys.prefix),
                     env=dict(KERNEL_ENV))
    return Path(target)


def ensure_kernel(prefix: str | os.PathLike | None = None) -> Path:
    """Install the kernel spec unless the current one is already there.

    Parameters
    ----------
    prefix : path-like, optional
        The environment (default: ``sys.prefix``).

    Returns
    -------
    pathlib.Path
        The kernel spec folder.
    """
    if kernel_is_current(prefix):
        return kernel_dir(prefix)
    return install_kernel(prefix)


class IPCKernelManager(AsyncKernelManager):
    """A kernel manager that talks to its kernel over IPC sockets instead of TCP on localhost.

    Each kernel's sockets get a path of their own in the temporary folder. jupyter_client's
    default is the relative path ``kernel-ipc-<n>`` in the kernel's working folder (the project
    root), with ``n`` the first numbers free *at the moment of the check*: two runs starting
    kernels at the same time (two ``study run`` in one project, or the test suite's two
    workers) then took the same socket files, and each kernel received the other's messages
    ("Invalid Signature", "Kernel didn't respond in 60 seconds").
    """

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        # short enough for a Unix socket path (at most 107 bytes) under the usual temporary folders
        return os.path.join(tempfile.gettempdir(), f"study-kernel-{uuid.uuid4().hex[:16]}-ipc")


def kernel_manager_class(log: str | os.PathLike | None = None) -> type[AsyncKernelManager]:
    """Return the kernel manager papermill should use: IPC sockets, the kernel's own output to a log.

    Parameters
    ----------
    log : path-like, optional
        File that receives what kernels print outside their notebooks (library messages such
        as "KeyboardInterrupt caught in kernel" when the kernel is stopped); appended to. By
        default the kernels print to the caller's terminal.

    Returns
    -------
    type
        A subclass of :class:`IPCKernelManager` (of plain :class:`jupyter_client.AsyncKernelManager`
        on Windows, which has no IPC sockets).
    """
    base: type[AsyncKernelManager] = AsyncKernelManager if os.name == "nt" else IPCKernelManager
    if log is None:
        return base
    path = Path(log)

    class LoggingKernelManager(base):  # type: ignore[valid-type,misc]  # a base chosen at run time
        """Starts kernels whose standard output and error go to the log file."""

        async def start_kernel(self, **kw: object) -> None:
            with open(path, "ab") as out:  # the kernel process keeps its own copy of the descriptor
                kw.setdefault("stdout", out)
                kw.setdefault("stderr", out)
                await super().start_kernel(**kw)

    return LoggingKernelManager


def main() -> int:
    """Install the kernel spec into this environment and say where (``python -m analysis.kernel``).

    Returns
    -------
    int
        Exit code 0.
    """
    path = ensure_kernel()
    print(f"Jupyter kernel {KERNEL_NAME!r} ({DISPLAY_NAME}) installed in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
