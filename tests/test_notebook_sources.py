"""Committed notebooks equal their sources, carry no outputs, and define no functions or classes."""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.make_notebooks import build, names  # noqa: E402

NAMES = names()


def test_every_notebook_has_a_source_and_vice_versa():
    committed = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert committed == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_up_to_date_stripped_and_thin(name):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    assert nbformat.writes(build(name)) + "\n" == path.read_text(), f"run `make notebooks`: {path.name} is stale"
    nb = json.loads(path.read_text())
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            assert c.get("outputs", []) == [] and c.get("execution_count") is None
            assert not re.search(r"^\s*(def|class) ", "".join(c["source"]), re.M), "no def/class in notebooks"
