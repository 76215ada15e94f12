"""The run manifest: sha256 of every input and output, parameters, versions, seed, wall time.

Written as ``MANIFEST`` (JSON) at the top of each run folder, in the style of the AEA
Data Editor's replication packages: anyone can check that their outputs match.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "analysis", "numpy", "pandas", "scipy", "statsmodels", "pyfixest", "duckdb", "matplotlib",
    "seaborn", "papermill", "pyarrow", "openpyxl",
)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks.

    Parameters
    ----------
    path : pathlib.Path
        File to hash.
    chunk : int, default 1 MiB
        Read size.

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Return installed versions of the named distributions ("not installed" if absent).

    Parameters
    ----------
    names : tuple of str
        Distribution names.

    Returns
    -------
    dict
        Name -> version.
    """
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """Read a run folder's ``MANIFEST`` (empty if there is none).

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.

    Returns
    -------
    dict
        The manifest, or ``{}``.
    """
    path = Path(run_dir) / "MANIFEST"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}


def output_hashes(run_dir: Path) -> dict[str, str]:
    """Hash every file below a run folder but its ``MANIFEST``.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.

    Returns
    -------
    dict
        Path relative to the folder (``tables/02_main_effects.csv``) -> hex sha256, sorted by path.
    """
    run_dir = Path(run_dir)
    return {
        str(p.relative_to(run_dir)): sha256_file(p)
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name != "MANIFEST"
    }


def refresh_outputs(run_dir: Path) -> Path | None:
    """Re-hash a run's outputs in its ``MANIFEST`` after files were added (the brief, its index page).

    Everything else the manifest records (parameters, inputs, versions, wall time) is kept.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder.

    Returns
    -------
    pathlib.Path or None
        The manifest, or None if the folder has none (nothing is written then).
    """
    doc = read_manifest(run_dir)
    if not doc:
        return None
    doc["outputs"] = output_hashes(run_dir)
    path = Path(run_dir) / "MANIFEST"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def write_manifest(
    run_dir: Path, inputs: dict[str, Path], parameters: dict[str, Any], seed: int | None, wall_time_s: float,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``run_dir / "MANIFEST"`` describing the run.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run folder; every file below it (except the manifest) is hashed.
    inputs : dict
        Label -> input file (the store, the notebooks) to hash.
    parameters : dict
        Parameters per notebook.
    seed : int or None
        The seed of the run.
    wall_time_s : float
        Wall time in seconds.
    extra : dict, optional
        Further fields (e.g. the store's content hash).

    Returns
    -------
    pathlib.Path
        Path of the manifest.
    """
    run_dir = Path(run_dir)
    outputs = output_hashes(run_dir)
    doc = {
        "run": run_dir.name,
        "seed": seed,
        "wall_time_seconds": round(wall_time_s, 1),
        "python": platform.python_version(),
        "packages": package_versions(),
        "parameters": parameters,
        "inputs": {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in inputs.items() if Path(v).is_file()},
        "outputs": outputs,
        **(extra or {}),
    }
    path = run_dir / "MANIFEST"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path
