"""Write notebooks/NN_name.ipynb (outputs stripped) from the cell lists in tools/notebooks/NN_name.py.

Keeping each notebook's source as a Python list of cells makes reviews readable; run
`make notebooks` after editing one. tests/test_notebook_sources.py checks the committed
notebooks equal what this script writes.
"""

import importlib
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_notebook

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
SRC_DIR = ROOT / "tools" / "notebooks"


def build(name):
    """Return the notebook built from tools/notebooks/<name>.py."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    cells = importlib.import_module(f"tools.notebooks.{name}").CELLS
    nb = new_notebook(cells=[nbformat.from_dict(dict(c)) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(nb.cells):
        c["id"] = f"{name[:2]}-{i:02d}"
    return nb


def names():
    """Return the notebook names that have a source file."""
    return sorted(p.stem for p in SRC_DIR.glob("[0-9][0-9]_*.py"))


def main():
    NB_DIR.mkdir(exist_ok=True)
    for name in names():
        nbformat.write(build(name), NB_DIR / f"{name}.ipynb")


if __name__ == "__main__":
    main()
