"""Every location the project reads or writes, from one place.

All paths are anchored on the repository root, found from this file's location
(``src/analysis/paths.py`` -> two levels up), so nothing depends on the working
directory. Each can be overridden by an environment variable, which tests use to
point the study at a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("STUDY_ROOT", PACKAGE_DIR.parent.parent)).resolve()

DATA_DIR = Path(os.environ.get("STUDY_DATA_DIR", ROOT / "data"))
RAW_DIR = DATA_DIR / "raw"
SYNTHETIC_DIR = DATA_DIR / "synthetic"
MAPPINGS_DIR = DATA_DIR / "mappings"
DEFAULT_STORE = Path(os.environ.get("STUDY_STORE", DATA_DIR / "study.duckdb"))

NOTEBOOKS_DIR = Path(os.environ.get("STUDY_NOTEBOOKS_DIR", ROOT / "notebooks"))
OUTPUTS_DIR = Path(os.environ.get("STUDY_OUTPUTS_DIR", ROOT / "outputs"))
REFERENCE_DIR = ROOT / "tests" / "reference"
MONTE_CARLO_DIR = ROOT / "data" / "montecarlo"
"""Measured Monte Carlo records (committed; each file's README gives the command that regenerates it)."""
STRESS_RECORDS = MONTE_CARLO_DIR / "stress_records.csv.gz"
"""Records of the stress-test Monte Carlo (:mod:`analysis.grid.stress`), shown by notebook 06."""
CHECK_RECORDS = MONTE_CARLO_DIR / "check_records.csv.gz"
"""Records of the calibration of randomisation inference and the spillover check (:mod:`analysis.grid.checks`)."""
ARRIVAL_RECORDS = MONTE_CARLO_DIR / "arrival_records.csv.gz"
"""Records of the arrival-year Monte Carlo (the headline with the arrival year left out and kept,
:data:`analysis.grid.stress.ARRIVAL_KEPT`), quoted in the README and notebook 02."""


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing and return it.

    Parameters
    ----------
    path : pathlib.Path
        Folder to create.

    Returns
    -------
    pathlib.Path
        The same path, now existing.
    """
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve(path: str | Path) -> Path:
    """Resolve a path given in a notebook parameter against the repository root.

    Parameters
    ----------
    path : str or pathlib.Path
        Absolute path, or a path relative to the repository root.

    Returns
    -------
    pathlib.Path
        Absolute path.
    """
    p = Path(path)
    return p if p.is_absolute() else (ROOT / p).resolve()
