"""The stage contract (analysis.stages.base), the notebook set-up (analysis.stages.notebook) and one stage's run."""

import json

import pandas as pd
import pytest
from matplotlib import pyplot as plt

from analysis.core.params import ParameterError
from analysis.core.treatment import TREATMENT_COLUMNS, attach_treatment
from analysis.data.synthetic import simulate_city
from analysis.stages import data_audit
from analysis.stages.base import StageResult, Truth, save
from analysis.stages.notebook import notebook_params, run_notebook

PARAMS = {"first_year": 2018, "last_year": 2024, "min_months": 6.0, "lang": "en", "seed": 1}


@pytest.fixture(scope="module")
def small_city():
    city = simulate_city(seed=1, n_villages=400, n_townships=24)
    return city, attach_treatment(city.panel, city.treatment)


def _result():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return StageResult("99_example", "example", tables={"99_a": pd.DataFrame({"x": [1.5, 2.0]}),
                                                        "99_b": pd.DataFrame({"y": ["u"]})},
                       figures={"99_a": fig}, payload={"n": 2}, findings=["One.", "Two."], notes=["note"])


def test_result_closes_its_figures_in_pyplot_but_keeps_them_savable(tmp_path):
    r = _result()
    assert r.figures["99_a"].number not in plt.get_fignums()
    written = save(r, tmp_path)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in written)
    assert names == ["figures/99_a.png", "figures/99_a.svg", "figures/zh/99_a.png", "results/example.json",
                     "tables/99_a.csv", "tables/99_a.md", "tables/99_a.tex", "tables/99_b.csv", "tables/99_b.md",
                     "tables/99_b.tex"]  # no draw: the other language cannot be drawn, its own is copied
    assert (tmp_path / "figures" / "zh" / "99_a.png").read_bytes() == (tmp_path / "figures" / "99_a.png").read_bytes()
    assert json.loads((tmp_path / "results" / "example.json").read_text()) == {"n": 2}
    assert (tmp_path / "tables" / "99_a.csv").read_text() == "x\n1.5\n2\n"


def test_findings_must_be_a_list_of_paragraphs():
    with pytest.raises(TypeError, match="lists of str"):
        StageResult("99_example", "example", findings=[1])
    with pytest.raises(TypeError, match="lists of str"):
        StageResult("99_example", "example", findings="One paragraph.")


def test_show_displays_matches_and_says_what_is_missing(capsys):
    r = _result()
    r.show("99_b", "99_missing")
    out = capsys.readouterr().out
    assert "u" in out and "no 99_missing in this run" in out
    r.show("99_*", figures=False)
    out = capsys.readouterr().out
    assert "1.5" in out and "Figure" not in out


def test_truth_applies_only_to_the_simulated_store(city_store, tmp_path):
    t = Truth.load(city_store, city_store.parent / "synthetic")
    assert t.available and t.aggregates is not None and t.cells is not None
    none = Truth.load(city_store, tmp_path)
    assert not none.available and none.aggregates is None and none.cells is None and "no synthetic truth" in none.status
    assert not Truth.unknown("why").available and Truth.unknown("why").status == "why"


def test_data_audit_run(small_city):
    city, panel = small_city
    before = panel.copy()
    r = data_audit.run(panel, PARAMS)
    assert list(r.tables) == ["00_coverage", "00_rollout_by_cohort", "00_rollout_by_county", "00_rollout_by_township",
                              "00_outcome_distributions", "00_missingness"]
    assert list(r.figures) == ["00_rollout", "00_outcome_distributions"]
    # missingness is of the canonical columns, as read from the store, before treatment timing is attached
    assert not set(TREATMENT_COLUMNS) & set(r.tables["00_missingness"]["column"])
    pd.testing.assert_frame_equal(r.tables["00_missingness"], data_audit.missingness(city.panel))
    assert r.payload["villages"] == 400 and r.payload["synthetic"] is False and r.payload["report_year"] == 2023
    assert len(r.findings) == 1 and "400 villages" in r.findings[0]
    pd.testing.assert_frame_equal(panel, before)


def test_notebook_params_picks_the_catalogue_names_and_validates(tmp_path):
    ns = {"lang": "en", "seed": 3, "In": [], "display": print, "covariates": "terrain"}
    assert notebook_params(ns) == {"lang": "en", "seed": 3, "covariates": ["terrain"]}
    with pytest.raises(ParameterError, match="parameter 'lang' = 'fr'"):
        notebook_params({"lang": "fr"})


def test_run_notebook_runs_the_stage_and_saves_it(city_store, tmp_path):
    ns = {"store": str(city_store), "truth_dir": str(city_store.parent / "synthetic"), "output_dir": str(tmp_path),
          **PARAMS}
    r = run_notebook(data_audit, ns)
    assert r.stage == "00_data_audit" and r.payload["synthetic"] is True and r.notes == [r.payload["truth_note"]]
    assert sorted(p.name for p in (tmp_path / "tables").glob("*.csv")) == sorted(f"{n}.csv" for n in r.tables)
    assert json.loads((tmp_path / "results" / "data.json").read_text())["villages"] == r.payload["villages"]


def test_every_figure_is_written_in_both_languages(small_city, tmp_path):
    """An English run keeps figures/<stem>.png (+ SVG) in English and adds figures/en/ and figures/zh/ as PNG."""
    from PIL import Image

    _, panel = small_city
    r = data_audit.run(panel, PARAMS)
    open_before = set(plt.get_fignums())  # figures other tests in this process left open are not ours
    written = {p.relative_to(tmp_path).as_posix() for p in save(r, tmp_path)}
    for stem in ("00_rollout", "00_outcome_distributions"):
        expected = {f"figures/{stem}.png", f"figures/{stem}.svg", f"figures/en/{stem}.png", f"figures/zh/{stem}.png"}
        assert expected <= written
        en, zh = tmp_path / "figures" / "en" / f"{stem}.png", tmp_path / "figures" / "zh" / f"{stem}.png"
        assert en.read_bytes() == (tmp_path / "figures" / f"{stem}.png").read_bytes()  # the run's language: a copy
        assert zh.read_bytes() != en.read_bytes() and Image.open(zh).size[0] > 200  # drawn again, in Chinese
    assert not list((tmp_path / "figures" / "zh").glob("*.svg"))
    assert set(plt.get_fignums()) <= open_before  # the figures drawn for the other language are closed
    drawn = r.draw("zh")
    zh_text = [txt.get_text() for fig in drawn.values() for ax in fig.axes
               for txt in (ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels())]
    assert any("\u4e00" <= ch <= "\u9fff" for text in zh_text for ch in text)  # Chinese labels
    plt.close("all")
