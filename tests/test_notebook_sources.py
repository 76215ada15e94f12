"""Committed notebooks equal their jupytext sources, carry no outputs, define no functions or classes,
and run their stage through its one entry point."""

import json
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.make_notebooks import FORMATS, build, names, source  # noqa: E402

from analysis.core.params import ParameterError  # noqa: E402
from analysis.core.spec import HEADLINE, Spec  # noqa: E402
from analysis.pipeline import notebook_parameters  # noqa: E402

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


@pytest.mark.parametrize("name", NAMES)
def test_source_is_a_paired_jupytext_percent_file(name):
    text = source(name).read_text()
    nb = jupytext.reads(text, fmt="py:percent")
    assert nb.metadata["jupytext"]["formats"] == FORMATS
    assert jupytext.writes(nb, fmt="py:percent") == text, "the source is not as jupytext writes it"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_its_stage_through_its_one_entry_point(name):
    stage = name[3:]
    text = source(name).read_text()
    imports = re.findall(r"^(?:from|import) .*$", text, re.M)
    assert imports == [f"from analysis.stages import {stage}", "from analysis.stages.notebook import run_notebook"]
    assert text.count(f"run_notebook({stage}, globals())") == 1


@pytest.mark.parametrize("name", NAMES)
def test_notebook_defaults_are_the_headline_specification(name):
    defaults = notebook_parameters(ROOT / "notebooks" / f"{name}.ipynb")
    assert Spec.from_params(defaults) == HEADLINE


@pytest.mark.parametrize("line", ["x.y = 1", "z: int"])
def test_a_parameters_cell_that_assigns_to_anything_but_a_name_is_refused(tmp_path, line):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(f"a = 1\n{line}", metadata={"tags": ["parameters"]}))
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ParameterError, match=r"nb\.ipynb: the 'parameters' cell may only assign values to names "
                                             r"\(line 2"):
        notebook_parameters(path)
