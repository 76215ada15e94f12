"""Only what the analysis needs is required: notebooks run on what the data hold and say what is missing.

A store has every canonical column; a column no file supplied holds no value. The notebooks'
common entry point (:func:`analysis.stages.notebook.run_notebook`) keeps the outcomes and
covariates that hold values, and each notebook's first notes say what is missing and what that
rules out. Here the panel read from the store loses ``petitions`` (an outcome),
``party_members`` and ``share_members_over60`` (covariates no estimate uses) and, in one case,
``distance_km`` (a covariate of the headline), and the notebooks that read those columns run.

The end-to-end case (a store built from files without those columns, every notebook through
``study run``) needs the ingest to accept such files, which is the data layer's part of issue 9;
it runs as soon as the data dictionary marks the columns optional.
"""

import json

import numpy as np
import pytest

from analysis import paths
from analysis.core.panel import absent_columns, missing_data_notes, present_columns
from analysis.data import schema
from analysis.stages import data_audit, main_effects, targeting
from analysis.stages import notebook as nb_module
from analysis.stages.notebook import run_notebook

EMPTY = ("petitions", "party_members", "share_members_over60")


@pytest.fixture
def emptied(monkeypatch, city_store):
    """Make the notebooks' panel lose EMPTY (and, if asked, more): the columns stay, with no value."""
    real = nb_module.load_analysis_panel

    def load(columns):
        def loader(*args, **kwargs):
            panel = real(*args, **kwargs)
            for c in columns:
                panel[c] = np.nan
            return panel
        monkeypatch.setattr(nb_module, "load_analysis_panel", loader)

    return load


def namespace(city_store, out, **extra):
    return {"store": str(city_store), "output_dir": str(out), "first_year": None, "last_year": None,
            "min_months": 6.0, "lang": "en", "seed": 1, **extra}


def test_present_and_absent_columns_treat_an_empty_column_as_absent(city_store):
    from analysis.core.panel import load_analysis_panel

    panel = load_analysis_panel(city_store)
    assert absent_columns(panel) == [] and missing_data_notes(panel) == []
    panel["petitions"] = np.nan
    panel = panel.drop(columns=["party_members"])
    assert present_columns(panel, ["income_per_capita", "petitions", "party_members"]) == ["income_per_capita"]
    assert absent_columns(panel) == ["petitions", "party_members"]
    notes = missing_data_notes(panel, ["distance_km"])
    assert notes[0].startswith("Not in the data: petitions") and "criminal_cases, disputes" in notes[0]
    assert "no estimate uses it" in notes[1] and "smaller party branches" in notes[1]


def test_notebooks_run_on_what_is_present_and_say_what_is_missing(emptied, city_store, tmp_path, capsys):
    emptied([*EMPTY, "distance_km"])
    audit = run_notebook(data_audit, namespace(city_store, tmp_path / "a"))
    assert "petitions" not in set(audit.tables["00_outcome_distributions"]["outcome"])
    assert any(n.startswith("Not in the data: petitions") for n in audit.notes)
    assert any("party_members" in n and "smaller party branches" in n for n in audit.notes)
    assert "Analysis window 2018-2024" in capsys.readouterr().out

    tgt = run_notebook(targeting, namespace(city_store, tmp_path / "t", outcomes=["income_per_capita", "petitions"],
                                            covariates=["distance_km", "terrain", "distinctive_industry"],
                                            cluster="township"))
    variables = set(tgt.tables["01_baseline_balance"]["variable"])
    assert "income_per_capita" in variables and not variables & {*EMPTY, "distance_km"}
    assert any("distance_km" in n and "adjust for terrain, distinctive_industry only" in n for n in tgt.notes)

    me = run_notebook(main_effects, namespace(city_store, tmp_path / "m", control_group="notyet",
                                              covariates=["distance_km", "terrain", "distinctive_industry"],
                                              estimator="cs", cluster="township", bootstrap_draws=19))
    estimated = set(me.tables["02_main_effects"]["outcome"])
    assert "petitions" not in estimated and {"criminal_cases", "disputes", "income_per_capita"} <= estimated
    section = json.loads((tmp_path / "m" / "results" / "main_effects.json").read_text())
    assert sorted(section["families"]["cases"]) == ["criminal_cases", "disputes"]


def test_a_notebook_with_none_of_its_outcomes_in_the_data_says_so(emptied, city_store, tmp_path):
    from analysis.core.params import ParameterError

    emptied(EMPTY)
    with pytest.raises(ParameterError, match="none of the outcomes petitions is in the data"):
        run_notebook(targeting, namespace(city_store, tmp_path, outcomes=["petitions"], covariates=[],
                                          cluster="township"))


OPTIONAL_IN_SCHEMA = all(not c.required for c in schema.PANEL_COLUMNS if c.name in EMPTY)


@pytest.mark.slow
@pytest.mark.skipif(not OPTIONAL_IN_SCHEMA, reason="the ingest does not yet accept files without these columns "
                    "(the data layer's part of issue 9)")
def test_every_notebook_runs_on_a_store_built_without_those_columns(city_store, study, tmp_path):
    import pandas as pd

    panel = pd.read_csv(city_store.parent / "synthetic" / "panel.csv", dtype={"village_code": str,
                        "township_code": str, "county_code": str})
    panel.drop(columns=list(EMPTY)).to_csv(tmp_path / "panel.csv", index=False)
    store = tmp_path / "study.duckdb"
    r = study("ingest", tmp_path / "panel.csv", city_store.parent / "synthetic" / "postings.csv", "--store", store,
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = study("run", "--store", store, "--outputs", tmp_path / "out", "--run-id", "r", "-p", "bootstrap_draws=19",
              "-p", "replications=2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr + r.stdout
    executed = (tmp_path / "out" / "r" / "notebooks" / "00_data_audit.ipynb").read_text()
    assert "Not in the data: petitions" in executed and paths.ROOT.exists()
