"""Every notebook runs under nbval with small parameters, and the pipeline reproduces its outputs.

Each notebook is first parameterised by papermill (``prepare_only``: parameters injected,
nothing executed), then executed cell by cell by nbval (``--nbval-lax``: a cell that raises
fails the test), writing into its own folder. The pipeline then runs all notebooks into a
run folder. Because both runs use the same store and seed, every table and results
section must be byte-identical between them: that is the determinism check.
"""

import json
import subprocess
import sys

import papermill as pm
import pytest

from analysis.pipeline import list_notebooks, run_study

pytestmark = pytest.mark.notebooks

NOTEBOOKS = list_notebooks()


@pytest.fixture(scope="session")
def nbval_runs(city_store, tmp_path_factory):
    """Run every notebook under nbval once; return {stem: (returncode, log, output folder)}."""
    out = {}
    for nb in NOTEBOOKS:
        d = tmp_path_factory.mktemp(f"nbval-{nb.stem}")
        prepared = d / nb.name
        pm.execute_notebook(str(nb), str(prepared), parameters={"store": str(city_store), "output_dir": str(d),
                                                                 "truth_dir": str(city_store.parent / "synthetic")},
                            prepare_only=True, kernel_name="python3")
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                            str(prepared)], capture_output=True, text=True, cwd=d, check=False)
        out[nb.stem] = (r.returncode, r.stdout[-4000:] + r.stderr[-2000:], d)
    return out


@pytest.fixture(scope="session")
def pipeline_run(city_store, tmp_path_factory):
    """Run the whole study once through the pipeline; return the run folder."""
    outputs = tmp_path_factory.mktemp("outputs")
    return run_study(store=city_store, outputs=outputs, run_id="r1",
                     overrides={"truth_dir": str(city_store.parent / "synthetic")})


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_under_nbval(nb, nbval_runs):
    code, log, d = nbval_runs[nb.stem]
    assert code == 0, log
    assert (d / "tables").is_dir() and any((d / "tables").iterdir())


def test_pipeline_writes_run_folder_latest_and_manifest(pipeline_run, city_store):
    run = pipeline_run
    assert (run.parent / "latest").resolve() == run.resolve()
    for nb in NOTEBOOKS:
        executed = json.loads((run / "notebooks" / nb.name).read_text())
        assert executed["metadata"]["papermill"]["parameters"]["store"] == str(city_store)
    manifest = json.loads((run / "MANIFEST").read_text())
    assert "tables/00_rollout_by_cohort.csv" in manifest["outputs"]
    assert "figures/00_rollout.png" in manifest["outputs"]
    assert "results.json" in manifest["outputs"]
    assert manifest["seed"] == 20230601 and manifest["inputs"]["store"]["sha256"]
    roll = (run / "tables" / "00_rollout_by_cohort.csv").read_text().splitlines()
    # Calibration (CONTEXT.md): pilot cohort 2023 and city-wide cohort 2024 together 1,458 villages.
    header = roll[0].split(",")
    sizes = {int(r.split(",")[0]): int(r.split(",")[header.index("villages")]) for r in roll[1:]}
    assert sizes[2023] + sizes[2024] == 1458 and sum(sizes.values()) == 3224


def test_results_json_has_the_data_section(pipeline_run):
    doc = json.loads((pipeline_run / "results.json").read_text())
    data = doc["data"]
    assert data["villages"] == 3224 and data["townships"] == 178 and data["treated_villages"] == 1458
    assert data["synthetic"] is True  # the store holds exactly the simulated city, so its truth applies


def test_results_json_follows_its_typed_schema(pipeline_run):
    """Every section as the models of analysis.report.results_schema want it, and as the committed schema says."""
    import jsonschema

    from analysis.report.results_schema import COMPLETE, SCHEMA_FILE, Results

    doc = json.loads((pipeline_run / "results.json").read_text())
    Results.model_validate(doc, context=COMPLETE)
    jsonschema.validate(doc, json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_two_runs_give_byte_identical_tables_and_results(pipeline_run, nbval_runs):
    compared = 0
    for stem, (_, _, d) in nbval_runs.items():
        for f in sorted((d / "tables").glob("*.csv")) + sorted((d / "results").glob("*.json")):
            twin = pipeline_run / f.relative_to(d)
            assert twin.read_bytes() == f.read_bytes(), f"{stem}: {f.name} differs between two runs"
            compared += 1
    assert compared >= len(nbval_runs)


def test_results_json_holds_every_family_with_intervals_twfe_and_covers_the_truth(pipeline_run):
    from analysis.data import schema

    doc = json.loads((pipeline_run / "results.json").read_text())
    me = doc["main_effects"]
    assert {f: sorted(o) for f, o in me["families"].items()} == {
        f: sorted(o) for f, o in schema.OUTCOME_FAMILIES.items()}
    assert set(doc) >= {"data", "targeting", "main_effects", "event_studies", "heterogeneity", "robustness",
                        "simulation_check"}
    for family, outcomes in schema.OUTCOME_FAMILIES.items():
        for oc in outcomes:
            rec = me["outcomes"][oc]
            h, tw = rec["headline"], rec["twfe"]
            assert rec["family"] == family and h["estimator"] == "cs" and tw["estimator"] == "twfe"
            assert h["conf_low"] < h["estimate"] < h["conf_high"] and tw["conf_low"] < tw["estimate"] < tw["conf_high"]
            # The store holds the simulated city, so its truth (truth_aggregates.csv) is reported and covered.
            assert rec["truth"] is not None
            assert h["conf_low"] <= rec["truth"] <= h["conf_high"], (oc, h, rec["truth"])
    assert doc["simulation_check"]["available"] is True


def test_manifest_records_every_notebook_and_a_complete_run_over_the_stores_years(pipeline_run):
    manifest = json.loads((pipeline_run / "MANIFEST").read_text())
    stems = [nb.stem for nb in NOTEBOOKS]
    assert manifest["complete"] is True and manifest["missing"] == [] and list(manifest["notebooks"]) == stems
    assert sorted(manifest["parameters"]) == sorted(stems)
    assert {(p["first_year"], p["last_year"]) for p in manifest["parameters"].values()} == {(2018, 2024)}
    window = json.loads((pipeline_run / "results.json").read_text())["data"]["window"]
    assert window == {"first_year": 2018, "last_year": 2024, "store_years": list(range(2018, 2025)),
                      "source": "store"}


def test_study_estimate_by_default_gives_notebook_02s_headline(pipeline_run, city_store, capsys):
    from analysis.cli import main

    headline = json.loads((pipeline_run / "results.json").read_text())["main_effects"]["outcomes"]
    assert main(["estimate", "--outcome", "income_per_capita", "--store", str(city_store), "--format", "json"]) == 0
    simple = next(r for r in json.loads(capsys.readouterr().out) if r["aggregation"] == "simple")
    expected = headline["income_per_capita"]["headline"]
    assert simple["estimate"] == pytest.approx(expected["estimate"], rel=1e-9)
    assert simple["std_error"] == pytest.approx(expected["std_error"], rel=1e-9)


def test_every_figure_in_both_languages_and_every_notebook_as_html(pipeline_run):
    """For a reader without Python: notebooks as self-contained pages, figures in zh and en, an index linking all."""
    import re

    run = pipeline_run
    stems = {p.stem for p in (run / "figures").glob("*.png")}
    assert len(stems) >= 20
    for lang in ("zh", "en"):
        assert {p.stem for p in (run / "figures" / lang).glob("*.png")} == stems
    for stem in stems:  # the run is in Chinese: zh/ is its figure, en/ drawn again with English labels
        zh, en = ((run / "figures" / lang / f"{stem}.png").read_bytes() for lang in ("zh", "en"))
        assert zh == (run / "figures" / f"{stem}.png").read_bytes() and en != zh
    index = (run / "index.html").read_text(encoding="utf-8")
    linked = set(re.findall(r'href="([^"]+)"', index))
    for nb in NOTEBOOKS:
        page = (run / "notebooks" / f"{nb.stem}.html").read_text(encoding="utf-8")
        assert "<script" not in page and not re.search(r'(src|href)="https?://', page)
        assert "data:image/png;base64" in page and "Traceback" not in page, nb.stem
        assert "INFO:distributed" not in page, nb.stem  # the local Dask scheduler of 06 is quiet
        assert f"notebooks/{nb.stem}.html" in linked
    assert {f"figures/en/{s}.png" for s in stems} | {f"figures/zh/{s}.png" for s in stems} <= linked
    assert {f"tables/{p.name}" for p in (run / "tables").glob("*.csv")} <= linked
    manifest = json.loads((run / "MANIFEST").read_text())
    assert {"index.html", "summary.json", "summary.md", "figures/en/02_forest.png",
            "notebooks/02_main_effects.html"} <= set(manifest["outputs"])


def test_summary_holds_the_headline_numbers_of_results_json(pipeline_run):
    doc = json.loads((pipeline_run / "results.json").read_text())
    summary = json.loads((pipeline_run / "summary.json").read_text())
    me = doc["main_effects"]["outcomes"]
    assert {e["outcome"] for e in summary["estimates"]} == set(me)
    for e in summary["estimates"]:
        h = me[e["outcome"]]["headline"]
        assert [e[k] for k in ("estimate", "conf_low", "conf_high", "p_value")] == [
            h[k] for k in ("estimate", "conf_low", "conf_high", "p_value")]
    assert summary["window"] == doc["data"]["window"] and summary["seed"] == 20230601
    assert summary["data"]["synthetic"] is True and summary["run"] == pipeline_run.name
    md = (pipeline_run / "summary.md").read_text(encoding="utf-8")
    assert md.count("(family headline)") == 3 and "2018–2024" in md


def test_the_two_briefs_have_the_same_sections_in_the_same_order(pipeline_run):
    """On the default run, the Chinese and English briefs say the same things: same sections, parts and figures."""
    import warnings

    from analysis.report.brief import compose_brief
    from analysis.report.results_json import load_results

    results = load_results(pipeline_run)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dropped to meet the word limit, in either language
        zh, en = (compose_brief(results, lang, pipeline_run / "figures") for lang in ("zh", "en"))
    assert zh.outline() == en.outline()
    keys = [item[-1] for item in zh.outline() if item[0] == "heading"]
    assert keys[:2] == ["method", "findings"] and "limits" in keys
    assert any(item[0] == "paragraph" and "heterogeneity" in item[1] for item in zh.outline())
