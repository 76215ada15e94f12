"""The typed contract of results.json: committed JSON Schema, strict writes, lenient reads.

A real run's results.json is checked against the models and the committed schema in
tests/test_notebooks.py (it needs the pipeline run); here, the contract itself.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from analysis.report.results_json import estimate_record, load_results, merge_sections, parse_results, write_section
from analysis.report.results_schema import COMPLETE, SCHEMA_FILE, SECTIONS, Results, json_schema

FIXTURE = Path(__file__).parent / "fixtures" / "results_fixture.json"


def _record(**kw) -> dict:
    return estimate_record({"estimate": 1.0, "conf_low": 0.5, "conf_high": 1.5, "std_error": 0.25, "p_value": 0.01,
                            "estimator": "cs", "term": "ATT", "n_obs": 10, **kw})


def _data_section() -> dict:
    return {"first_year": 2018, "last_year": 2024, "villages": 3224, "townships": 178, "counties": 9,
            "treated_villages": 1458, "treated_share": 0.45, "villages_by_cohort": {"2023": 420},
            "villages_by_cadre_type": {"law": 572}, "report_year": 2023, "year_hashes": {"2018": "ab"},
            "income_mean_report_year": 3332.6, "synthetic": True, "truth_note": "the synthetic city",
            "window": {"first_year": 2018, "last_year": 2024, "store_years": [2018, 2024], "source": "store"}}


def test_committed_json_schema_is_what_the_models_generate():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == json_schema(), (
        "results.schema.json is stale: run `python -m analysis.report.results_schema` and commit it")
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == {*SECTIONS, "meta"}
    assert "villages" in schema["$defs"]["DataSection"]["required"]
    assert schema["$defs"]["DataSection"]["additionalProperties"] is False


def test_a_section_is_written_as_given_after_validation(tmp_path):
    path = write_section(tmp_path, "data", _data_section())
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(_data_section(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    jsonschema.validate({"data": json.loads(text)}, json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_a_misspelt_missing_or_mistyped_key_fails_the_write(tmp_path):
    bad = {**_data_section(), "vilages": 3}
    with pytest.raises(ValidationError, match="vilages"):
        write_section(tmp_path, "data", bad)
    missing = _data_section()
    del missing["townships"]
    with pytest.raises(ValidationError, match=r"lacks key.*townships"):
        write_section(tmp_path, "data", missing)
    with pytest.raises(ValidationError, match="villages"):
        write_section(tmp_path, "data", {**_data_section(), "villages": "many"})
    assert not (tmp_path / "results").exists()
    # a section without a model is written, but the run's results.json refuses it
    write_section(tmp_path, "data", _data_section())
    write_section(tmp_path, "main_efects", {"outcomes": {}})
    with pytest.raises(ValidationError, match="main_efects"):
        merge_sections(tmp_path)
    (tmp_path / "results" / "main_efects.json").unlink()
    assert json.loads(merge_sections(tmp_path).read_text()) == {"data": _data_section()}


def test_estimate_records_follow_the_record_model():
    rec = SECTIONS["main_effects"].model_validate(
        {"families": {"income": ["income_per_capita"]}, "options": {
            "headline": {"estimator": "cs", "method": "dr", "aggregation": "simple", "control_group": "notyet",
                         "covariates": [], "cluster": "township", "inference": "analytic",
                             "anticipation": 1},
            "twfe": {}, "ppml": {}, "romano_wolf": {}, "untreated_mean": "", "post_treatment_years": [2023],
            "pct_scale": "", "truth": False},
         "outcomes": {"income_per_capita": {
             "family": "income", "unit": "yuan", "headline": _record(), "twfe": _record(estimator="twfe"),
             "untreated_mean": 3000.0, "pct_of_untreated_mean": {"estimate": 0.1, "conf_low": 0.0, "conf_high": 0.2},
             "romano_wolf_p": 0.01, "ppml_pct": None, "truth": None}}}, context=COMPLETE)
    head = rec.outcomes["income_per_capita"].headline
    assert head.estimate == 1.0 and head.n_obs == 10 and isinstance(head.n_obs, int)


def test_readers_parse_the_brief_fixture_and_keep_numbers_as_written(tmp_path):
    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    results = parse_results(doc)
    assert isinstance(results, Results) and parse_results(results) is results
    income = results.main_effects.outcomes["income_per_capita"]
    assert income.headline.estimate == doc["main_effects"]["outcomes"]["income_per_capita"]["headline"]["estimate"]
    assert results.data.villages == doc["data"]["villages"] and isinstance(results.data.villages, int)
    assert results.robustness.root["income_per_capita"].honest.breakdown_rm == \
        doc["robustness"]["income_per_capita"]["honest"]["breakdown_rm"]
    # the fixture predates some keys (wild.draws, ...): a reader ignores them, a writer would refuse them
    with pytest.raises(ValidationError):
        Results.model_validate(doc)
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    assert load_results(run).model_dump() == results.model_dump()


def test_a_partial_document_reads_with_defaults():
    results = parse_results({"main_effects": {"outcomes": {"roads_km": {"headline": {"estimate": 0.5}}}}})
    assert results.data is None and results.main_effects.families == {}
    assert results.main_effects.outcomes["roads_km"].headline.conf_low is None
    broken = copy.deepcopy({"data": {"villages": "many"}})
    with pytest.raises(ValidationError):
        parse_results(broken)
