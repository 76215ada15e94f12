"""CSV injection: every CSV the project writes shows a formula-like text cell as text, never as a formula.

One cell ``-2+3+cmd|" /C calc"!A0`` (the classic payload) goes through each writer: the one helper
(analysis.core.csvsafe), the ingest's error reports (CSV and XLSX, through the command line), the
study's tables (report.tables.save_table), ``study estimate --format csv``, ``study diff --format csv``,
the synthetic city's files and the worked example's bureau CSV. Real numbers stay numbers.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from analysis import cli, paths
from analysis.core.csvsafe import neutralise, neutralise_value, write_csv
from analysis.data.problems import report_paths

PAYLOAD = '-2+3+cmd|" /C calc"!A0'
SAFE = "'" + PAYLOAD


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_owasp_rule_and_what_it_leaves_alone():
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert neutralise_value(f"{start}HYPERLINK(x)") == f"'{start}HYPERLINK(x)"
    for same in ("-5", "+1.5", "-2.5e-3", ".5", "村", "", "a=b", -5, 1.5, None):
        assert neutralise_value(same) == same
    df = pd.DataFrame({"text": [PAYLOAD, "ok", None], "number": [-1.5, 2.0, np.nan], "n": [-1, 2, 3]})
    before = df.copy()
    out = neutralise(df)
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is not modified
    assert out["text"].iloc[0] == SAFE and out["text"].iloc[1] == "ok" and pd.isna(out["text"].iloc[2])
    pd.testing.assert_series_equal(out["number"], df["number"])
    clean = pd.DataFrame({"a": ["x", "-1"], "b": [-1.0, 2.0]})
    assert neutralise(clean) is clean  # nothing to change: the bytes are exactly those of to_csv
    assert write_csv(clean, index=False) == clean.to_csv(index=False)
    assert cells(write_csv(pd.DataFrame({"=x": [1]}), index=False))[0] == ["'=x"]


def test_save_table_neutralises_text_cells(tmp_path):
    from analysis.report.tables import save_table

    df = pd.DataFrame({"label": [PAYLOAD, "plain"], "estimate": [-0.25, 1.0]})
    written = save_table(df, "t", tmp_path)
    rows = cells(written["csv"].read_text(encoding="utf-8"))
    assert rows == [["label", "estimate"], [SAFE, "-0.25"], ["plain", "1"]]


def _bureau_csv_with_payload(path: Path) -> Path:
    head = ["村代码", "村名称", "年份", "农民人均纯收入（元）", "矛盾纠纷数（起）"]
    rows = [head, ["990101001001", "东村", "2025", "3000", PAYLOAD], ["990101001002", "西村", "2025", "3100", "2"]]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode("gbk"))
    return path


@pytest.mark.parametrize("mode", ["bureau", "canonical"])
def test_error_reports_write_the_payload_as_text(tmp_path, capsys, mode):
    if mode == "bureau":
        path = _bureau_csv_with_payload(tmp_path / "v.csv")
        extra = ["--mapping-dir", str(paths.MAPPINGS_DIR)]
    else:
        path = tmp_path / "panel.csv"
        pd.DataFrame({"village_code": ["990101001001"], "year": [2025], "village_name": ["东村"],
                      "disputes": [PAYLOAD]}).to_csv(path, index=False)
        extra = []
    rc = cli.main(["ingest", str(path), "--store", str(tmp_path / "s.duckdb"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and "is not a number" in err
    xlsx, csv_path = report_paths(path)
    rows = cells(csv_path.read_text(encoding="utf-8-sig"))
    values = [r[6] for r in rows[1:]]
    assert SAFE in values and PAYLOAD not in values
    ws = openpyxl.load_workbook(xlsx).active  # formulas kept as formulas would read back as data_type 'f'
    hits = [c for row in ws.iter_rows(min_row=2) for c in row if c.value == PAYLOAD]
    assert hits and all(c.data_type == "s" for c in hits)
    assert not any(c.data_type == "f" for row in ws.iter_rows() for c in row)


def test_study_estimate_csv_neutralises(monkeypatch, tmp_path, capsys):
    import analysis.core.panel as panel_module
    import analysis.estimate as estimate_module

    class Window:
        first_year, last_year = 2018, 2024

        def describe(self) -> str:
            return "Analysis window 2018-2024."

    rows = pd.DataFrame({"term": [PAYLOAD], "estimate": [-1.25]})
    monkeypatch.setattr(panel_module, "resolve_window", lambda *a, **k: Window())
    monkeypatch.setattr(panel_module, "load_analysis_panel", lambda *a, **k: pd.DataFrame())
    monkeypatch.setattr(estimate_module, "estimate", lambda *a, **k: object())
    monkeypatch.setattr(estimate_module, "output_rows", lambda *a, **k: rows)
    store = tmp_path / "s.duckdb"
    store.write_bytes(b"")
    assert cli.main(["estimate", "--outcome", "income_per_capita", "--store", str(store), "--format", "csv"]) == 0
    assert cells(capsys.readouterr().out) == [["term", "estimate"], [SAFE, "-1.25"]]
    out = tmp_path / "e.csv"
    cli.main(["estimate", "--outcome", "income_per_capita", "--store", str(store), "--format", "csv",
              "--output", str(out)])
    assert cells(out.read_text(encoding="utf-8"))[1] == [SAFE, "-1.25"]


def test_study_diff_csv_neutralises(monkeypatch, tmp_path, capsys):
    import analysis.report.diff as diff_module

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setattr(diff_module, "diff_runs",
                        lambda *a, **k: (pd.DataFrame({"outcome": [PAYLOAD], "change": [-0.5]}), []))
    assert cli.main(["diff", str(tmp_path / "a"), str(tmp_path / "b"), "--format", "csv"]) == 0
    assert cells(capsys.readouterr().out) == [["outcome", "change"], [SAFE, "-0.5"]]


def test_synthetic_city_files_neutralise(tmp_path):
    from analysis.data.synthetic import simulate_city, write_city

    city = simulate_city(n_villages=60, n_townships=6, n_counties=2)
    postings = city.postings.copy()
    postings.loc[0, "sending_unit"] = PAYLOAD
    files = write_city(dataclasses.replace(city, postings=postings), tmp_path)
    got = pd.read_csv(files["postings"], dtype=str, keep_default_na=False)
    assert got.loc[0, "sending_unit"] == SAFE
    plain = write_city(city, tmp_path / "plain")  # nothing to neutralise: exactly what pandas writes
    assert plain["postings"].read_text(encoding="utf-8") == city.postings.to_csv(index=False, lineterminator="\n")


def test_example_bureau_csv_neutralises():
    from analysis.data.examples import gbk_csv_bytes

    text = gbk_csv_bytes(["村名称", "=标题"], [[PAYLOAD, "1"], ["-5", "东村"]]).decode("gbk")
    assert cells(text) == [["村名称", "'=标题"], [SAFE, "1"], ["-5", "东村"]]
