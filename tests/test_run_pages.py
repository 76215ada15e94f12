"""A run folder readable without Python (analysis.report.run_pages), through the command line as a user runs it.

``study run`` writes each executed notebook as a self-contained HTML page beside its ``.ipynb``, a
``summary.json``/``summary.md`` of the headline numbers copied from ``results.json``, and the run's
``index.html``; ``study brief`` relinks the index; ``study pages`` writes them for an existing run
folder and refuses, in a plain message, a folder without ``results.json``. The mini study of
``tests/test_runs.py`` (notebooks that only write a results section) checks the run's side in
seconds; the brief's fixture ``results.json`` stands in for a full run's numbers. The full study's
pages are checked on the pipeline run of ``tests/test_notebooks.py``.
"""

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from analysis.report.run_pages import run_summary, summary_markdown

FIXTURE = Path(__file__).parent / "fixtures" / "results_fixture.json"
PARAMS = 'store = "data/study.duckdb"\noutput_dir = "outputs/dev"\nfirst_year = None\nlast_year = None\nseed = 1'
BODY = ("# A mini notebook / 小笔记本\n"
        "import json, pathlib\n"
        "folder = pathlib.Path(output_dir) / 'results'\n"
        "folder.mkdir(parents=True, exist_ok=True)\n"
        "(folder / '{section}.json').write_text(json.dumps({{}}))\n"
        "print('written {section}')")
SECTION = {"00_first": "event_studies", "01_second": "robustness"}


@pytest.fixture(scope="module")
def mini(tmp_path_factory, city_store):
    """A two-notebook study (each with a title cell), its outputs folder and the environment pointing `study` at it."""
    base = tmp_path_factory.mktemp("pages")
    nbs = base / "notebooks"
    nbs.mkdir()
    for name in SECTION:
        nb = nbformat.v4.new_notebook()
        params = nbformat.v4.new_code_cell(PARAMS)
        params.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name} · Mini / 迷你\n\nText."), params,
                    nbformat.v4.new_code_cell(BODY.format(section=SECTION[name]))]
        nb.metadata["kernelspec"] = {"name": "study", "display_name": "Python (study)", "language": "python"}
        nbformat.write(nb, nbs / f"{name}.ipynb")
    outputs = base / "outputs"
    env = {"STUDY_NOTEBOOKS_DIR": str(nbs), "STUDY_OUTPUTS_DIR": str(outputs), "STUDY_STORE": str(city_store)}
    return {"base": base, "outputs": outputs, "env": env}


def fixture_run(folder: Path) -> Path:
    """A run folder holding the brief's fixture results.json (the numbers of a default run), no MANIFEST."""
    folder.mkdir(parents=True)
    shutil.copyfile(FIXTURE, folder / "results.json")
    return folder


def links(page: Path) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', page.read_text(encoding="utf-8")))


def test_study_run_writes_html_notebooks_summary_and_index_hashed_in_the_manifest(mini, study):
    out, env, cwd = mini["outputs"], mini["env"], mini["base"]
    r = study("run", "--run-id", "full", cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    assert "Readable pages in" in r.stdout and "index.html" in r.stdout
    run = out / "full"
    for stem, section in SECTION.items():
        page = (run / "notebooks" / f"{stem}.html").read_text(encoding="utf-8")
        assert f"written {section}" in page and "Mini / 迷你" in page  # the executed notebook, outputs included
        assert "<script" not in page and not re.search(r'(src|href)="https?://', page)  # nothing fetched, offline
    index = run / "index.html"
    assert {"notebooks/00_first.html", "notebooks/01_second.ipynb", "results.json", "summary.md", "summary.json",
            "MANIFEST", "results/event_studies.json"} <= links(index)
    text = index.read_text(encoding="utf-8")
    assert "00_first · Mini / 迷你" in text and "Brief · 简报" in text and "Notebooks · 笔记本" in text
    assert "<script" not in text and "study brief --run full" in text  # no brief yet: the command that writes it
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"] == "full" and summary["seed"] == 1 and summary["complete"] is True
    assert summary["window"]["first_year"] == 2018 and summary["window"]["last_year"] == 2024
    assert summary["estimates"] == [] and "main_effects" in summary["missing"]  # said, not invented
    manifest = json.loads((run / "MANIFEST").read_text())
    assert {"index.html", "summary.json", "summary.md", "notebooks/00_first.html"} <= set(manifest["outputs"])

    # a partial run's index says it is partial, and its summary too
    r = study("run", "--only", "00_first", "--run-id", "part", cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    assert "Partial run / 运行不完整: missing 01_second" in (out / "part" / "index.html").read_text(encoding="utf-8")
    assert "Partial run" in (out / "part" / "summary.md").read_text(encoding="utf-8")
    assert not (out / "part" / "notebooks" / "01_second.html").exists()


def test_summary_copies_the_headline_numbers_of_results_json(tmp_path):
    run = fixture_run(tmp_path / "r")
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    summary = run_summary(run)
    me = results["main_effects"]["outcomes"]
    assert len(summary["estimates"]) == len(me)
    for e in summary["estimates"]:
        h = me[e["outcome"]]["headline"]
        assert (e["estimate"], e["conf_low"], e["conf_high"], e["p_value"]) == (
            h["estimate"], h["conf_low"], h["conf_high"], h["p_value"])  # copied, not recomputed
        assert e["romano_wolf_p"] == me[e["outcome"]]["romano_wolf_p"] and e["conf_level"] == 0.95
        assert e["estimator"] == "cs" and e["label"]["zh"] and e["label"]["en"]
    heads = [e["outcome"] for e in summary["estimates"] if e["family_headline"]]
    assert heads == ["income_per_capita", "new_members", "criminal_cases"]  # the brief's families, in its order
    assert summary["seed"] == 20230601 and summary["specification"]["estimator"] == "cs"
    assert summary["data"]["synthetic"] is True and summary["data"]["villages"] == 3224
    md = summary_markdown(summary)
    row = "| Per-capita net income (yuan) (family headline) | 农民人均纯收入（元） | income | 169.8 | [126.6, 213] |"
    assert row in md
    assert "Window / 分析期: 2018–2024" in md and "Seed / 随机种子: 20230601" in md


def test_study_pages_then_study_brief_link_everything(tmp_path, study):
    run = fixture_run(tmp_path / "r")
    (run / "tables").mkdir()
    for ext in ("csv", "md", "tex"):
        (run / "tables" / f"02_main_effects.{ext}").write_text("x\n")
    for folder in ("figures", "figures/zh", "figures/en"):
        (run / folder).mkdir()
        (run / folder / "02_forest.png").write_bytes(b"png")
    (run / "figures" / "02_forest.svg").write_text("<svg/>")
    r = study("pages", "--run", run, "--print", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "pages written in" in r.stdout and "## Headline estimates / 主要估计" in r.stdout
    assert {"tables/02_main_effects.csv", "tables/02_main_effects.md", "tables/02_main_effects.tex",
            "figures/zh/02_forest.png", "figures/en/02_forest.png",
            "figures/02_forest.svg"} <= links(run / "index.html")
    assert "brief/brief.zh.html" not in links(run / "index.html")

    r = study("brief", "--run", run, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {"brief/brief.zh.html", "brief/brief.en.html", "brief/brief.zh.docx",
            "brief/brief.en.docx"} <= links(run / "index.html")
    assert "study brief --run" not in (run / "index.html").read_text(encoding="utf-8")


def test_a_run_folder_without_results_json_gets_a_plain_message(tmp_path, study):
    (tmp_path / "out" / "empty" / "notebooks").mkdir(parents=True)
    r = study("pages", "--run", "empty", "--outputs", tmp_path / "out", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "has no results.json" in r.stderr and "Nothing was written" in r.stderr
    assert not (tmp_path / "out" / "empty" / "index.html").exists()
    r = study("pages", "--run", "nowhere", "--outputs", tmp_path / "out", cwd=tmp_path)
    assert r.returncode == 2 and "run 'nowhere' not found" in r.stderr
