"""Canonical validation (analysis.data.validate): a pandera schema generated from the data dictionary,
one problem per cell in the project's words, and the one reader's two dialects (analysis.data.readers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.config import config_context

from analysis.data import schema
from analysis.data.readers import BUREAU, CANONICAL, read_file
from analysis.data.validate import TableCells, pandera_schema, validate


def _panel_cells(**overrides: list[str]) -> TableCells:
    """Two valid panel rows as text, with some cells overridden."""
    row = {
        "village_code": "990101001001", "year": "2024", "village_name": "东村", "township_code": "990101001",
        "county_code": "990101", "population": "1200", "income_per_capita": "3300.5", "collective_income": "20000",
        "projects": "1", "funds_attracted": "0", "roads_km": "1.5", "team_reorganised": "0", "activists": "3",
        "new_members": "1", "criminal_cases": "0", "disputes": "2", "petitions": "0", "distance_km": "12.5",
        "terrain": "hill", "distinctive_industry": "1", "party_members": "40", "share_members_over60": "0.4",
    }
    cols = {c: pd.Series([v, v.replace("001001", "001002") if c == "village_code" else v], dtype=object)
            for c, v in row.items()}
    for c, values in overrides.items():
        cols[c] = pd.Series(values, dtype=object)
    return TableCells("p.csv", "0" * 64, "panel", cols, np.array([2, 3]))


def test_the_pandera_schema_is_generated_from_the_data_dictionary():
    for table in ("panel", "postings"):
        s = pandera_schema(table)
        assert list(s.columns) == schema.column_names(table)
        assert s.unique == list(schema.KEYS[table])
        for c in schema.columns(table):
            col = s.columns[c.name]
            assert col.nullable == c.nullable
            names = [ch.name for ch in col.checks]
            if c.kind == "int":
                assert names == ["finite", "whole", "greater_than_or_equal_to", "less_than_or_equal_to"]
            elif c.kind == "float":
                assert names == ["finite", "greater_than_or_equal_to", "less_than_or_equal_to"]
            elif c.kind in ("category", "binary"):
                assert names == ["isin"]
            elif c.kind == "code":
                assert names == ["pattern"]
            else:
                assert names == []
    panel_checks = {ch.name for ch in pandera_schema("panel").checks}
    assert panel_checks == {"prefix_of:township_code", "prefix_of:county_code"}
    assert {ch.name for ch in pandera_schema("postings").checks} == {"not_before:end_date"}


def test_a_cell_gets_one_problem_from_its_first_failing_rule():
    v = validate(_panel_cells(projects=["-1.5", "1e400"], disputes=["abc", ""], terrain=["Hill", "hills"],
                              village_name=["东村", ""]))
    got = {(p.row, p.column): p.problem for p in v.problems}
    assert got[(2, "projects")] == "is not a whole number"  # also below the minimum: the first rule wins
    assert got[(3, "projects")] == "is not a finite number"
    assert got[(2, "disputes")] == "is not a number"
    assert (3, "disputes") not in got  # an outcome may be empty since issue 9: stored as missing, and noted
    assert any(n.text.startswith("disputes: 1 empty cells") for n in v.notes)
    assert got[(3, "village_name")] == "is empty, but this column must have a value"
    assert got[(2, "terrain")] == "is not one of the allowed values plain, hill, mountain (did you mean 'hill'?)"
    assert len(v.problems) == 6
    assert v.parsed["projects"].isna().all() and v.parsed["population"].notna().all()


def test_rules_across_columns_compare_only_values_that_passed_their_own_rules():
    v = validate(_panel_cells(township_code=["99010100", "990101002"]))
    got = [(p.row, p.column, p.problem.split(" (")[0]) for p in v.problems]
    assert got == [
        (2, "township_code", "is not a 9-digit code"),  # no second problem for the same row
        (3, "township_code", "does not agree with village_code '990101001002', whose first 9 digits are "
                             "'990101001'"),
    ]


def test_repeated_keys_name_the_first_row():
    v = validate(_panel_cells(village_code=["990101001001", "990101001001"]))
    (p,) = v.problems
    assert (p.row, p.column, p.value) == (3, "village_code, year", "990101001001 / 2024")
    assert p.problem == "repeats the key of row 2 (each village may appear once per year)"


def test_validation_runs_whatever_pandera_is_configured_to_do():
    with config_context(validation_enabled=False):
        assert [p.problem for p in validate(_panel_cells(year=["1900", "2024"])).problems] == [
            "is below the minimum 1990 (year)"
        ]
    assert isinstance(pandera_schema("panel"), pa.DataFrameSchema)


def test_one_reader_two_dialects(tmp_path):
    path = tmp_path / "村级统计.csv"
    path.write_bytes("村代码,年份\n990101001001,2024\n".encode("gbk"))
    inp, problems = read_file(path, CANONICAL)
    assert inp is None and problems[0].row == 1 and "not UTF-8" in problems[0].problem
    inp, problems = read_file(path, BUREAU)
    assert problems == [] and inp.dialect == BUREAU
    assert str(inp.notes[0]) == "read as GB18030/GBK text / 按 GB18030/GBK 编码读取"
    assert inp.sheets[0].cells.iloc[1].tolist() == ["990101001001", "2024"]
    parquet = tmp_path / "p.parquet"
    pd.DataFrame({"village_code": ["990101001001"]}).to_parquet(parquet)
    inp, _ = read_file(parquet, BUREAU)  # Parquet is always canonical
    assert inp.dialect == CANONICAL and inp.sheets[0].columns == ["village_code"]
    assert inp.sheets[0].row_label == "record"


def test_the_reader_tells_formulas_without_a_saved_value(tmp_path):
    """openpyxl writes formulas without values; a formula whose saved result is the empty text is not one of them."""
    import io
    import zipfile

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "数据"
    ws.append(["a", "b", "c", "d"])
    ws.append([1, "=A2*2", "=IF(A2=1,\"\",A2)", 5])
    buf = io.BytesIO()
    wb.save(buf)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":  # C2 as Excel saves an empty-text result
                data = data.replace(b'<c r="C2">', b'<c r="C2" t="str">')
            zout.writestr(item, data)
    path = tmp_path / "f.xlsx"
    path.write_bytes(out.getvalue())
    for dialect in (CANONICAL, BUREAU):
        inp, problems = read_file(path, dialect)
        assert problems == [] and inp.sheets[0].formulas == {(1, 1): "=A2*2"}
        assert inp.sheets[0].cells.iloc[1].tolist() == ["1", "", "", "5"]
