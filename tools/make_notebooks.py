"""Write notebooks/NN_name.ipynb (outputs stripped) from the jupytext sources notebooks/NN_name.py.

Each notebook's source is a percent-format Python file (jupytext), read and linted like any other
code; the .ipynb beside it is what papermill and nbval run. The two are paired (jupytext formats
``ipynb,py:percent``): with jupytext installed, Jupyter keeps them in step while either is edited.
Run `make notebooks` after editing a source; tests/test_notebook_sources.py checks that every
committed .ipynb equals what this script writes.
"""

from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
FORMATS = "ipynb,py:percent"
KERNELSPEC = {"display_name": "Python (study)", "language": "python", "name": "study"}


def source(name):
    """Return the path of a notebook's source, notebooks/<name>.py."""
    return NB_DIR / f"{name}.py"


def build(name):
    """Return the notebook built from notebooks/<name>.py: no outputs, fixed metadata and cell ids."""
    nb = jupytext.read(source(name), fmt="py:percent")
    nb.metadata = {"jupytext": {"formats": FORMATS}, "kernelspec": dict(KERNELSPEC),
                   "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def names():
    """Return the notebook names that have a source file."""
    return sorted(p.stem for p in NB_DIR.glob("[0-9][0-9]_*.py"))


def main():
    for name in names():
        nbformat.write(build(name), NB_DIR / f"{name}.ipynb")


if __name__ == "__main__":
    main()
