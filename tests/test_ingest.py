"""Tests of the validated ingest: round trips, write semantics, bad files, crash safety."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from analysis import cli, i18n
from analysis.data import schema, store
from analysis.data.ingest import IngestReport, ingest_files
from analysis.data.problems import IngestError, Problem, report_paths

REPO = Path(__file__).resolve().parents[1]
CODES = ["990101001001", "990101001002", "990101002001"]


# ----------------------------------------------------------------------------- builders


def make_panel(years=(2022, 2023), codes=CODES) -> pd.DataFrame:
    """A small canonical panel, valid under analysis.data.schema."""
    rows = []
    for i, code in enumerate(codes):
        for y in years:
            rows.append(
                {
                    "village_code": code,
                    "year": y,
                    "village_name": f"第{i + 1}村",
                    "township_code": code[:9],
                    "county_code": code[:6],
                    "population": 800 + 10 * i,
                    "income_per_capita": 12000.5 + 0.1 * i + (y - 2022) / 3,
                    "collective_income": 5e4 + i,
                    "projects": i,
                    "funds_attracted": 1.5e5,
                    "roads_km": 0.1 * (i + 1),
                    "team_reorganised": i % 2,
                    "activists": 3,
                    "new_members": 1,
                    "criminal_cases": 0,
                    "disputes": 4 + i,
                    "petitions": 0,
                    "distance_km": 12.3 + i,
                    "terrain": schema.TERRAIN_LEVELS[i % 3],
                    "distinctive_industry": 1,
                    "party_members": 40 + i,
                    "share_members_over60": 0.35,
                }
            )
    return pd.DataFrame(rows)


def make_postings(codes=CODES[:2]) -> pd.DataFrame:
    n = len(codes)
    return pd.DataFrame(
        {
            "village_code": list(codes),
            "secretary_id": [f"S{i + 1:03d}" for i in range(n)],
            "start_date": pd.to_datetime(["2022-07-01", "2023-03-15", "2023-12-01"][:n]),
            "end_date": pd.to_datetime([None, "2024-06-30", None][:n]),
            "sending_unit": ["市公安局", "市农业农村局", "市财政局"][:n],
            "unit_type": ["law", "agriculture", "economic"][:n],
            "batch": ["pilot-2022", "city-2023", "city-2023"][:n],
        }
    )


def write(df: pd.DataFrame, path: Path) -> Path:
    """Write a frame as CSV, Parquet or XLSX according to the suffix."""
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == ".xlsx":
        df.to_excel(path, index=False)
    else:
        raise ValueError(path)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def canonical(df: pd.DataFrame, table: str) -> pd.DataFrame:
    key = list(schema.KEYS[table])
    return schema.to_canonical(df, table).sort_values(key).reset_index(drop=True)


@pytest.fixture
def db(tmp_path) -> Path:
    """A store holding a valid panel (2022-2023) and postings, ingested from CSV."""
    path = tmp_path / "study.duckdb"
    ingest_files(
        [
            write(make_panel(), tmp_path / "panel_base.csv"),
            write(make_postings(), tmp_path / "postings_base.csv"),
        ],
        store=path,
    )
    return path


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch):
    monkeypatch.delenv("STUDY_INGEST_PAUSE", raising=False)
    monkeypatch.delenv("STUDY_INGEST_PAUSE_MARKER", raising=False)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = cli.main(["ingest", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


# ----------------------------------------------------------------------------- good files


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_round_trip(tmp_path, suffix):
    codes = ["010101001001", "010101001002", "990101002001"]  # a leading zero must survive
    panel, postings = make_panel(codes=codes), make_postings(codes=codes)
    path = tmp_path / "s.duckdb"
    report = ingest_files(
        [
            write(panel, tmp_path / f"panel{suffix}"),
            write(postings, tmp_path / f"postings{suffix}"),
        ],
        store=path,
    )
    got = store.read_panel(path)
    pd.testing.assert_frame_equal(got, canonical(panel, "panel"))
    assert dict(got.dtypes.astype(str)) == schema.canonical_dtypes("panel")
    assert got["village_code"].str.startswith("0").sum() == 4
    pd.testing.assert_frame_equal(store.read_postings(path), canonical(postings, "postings"))
    assert [f.inserted for f in report.files] == [6, 3]


def test_csv_with_bom_and_spaces(tmp_path):
    panel = make_panel().astype(object)
    panel["terrain"] = " " + panel["terrain"].astype(str) + " "
    path = tmp_path / "panel_bom.csv"
    panel.to_csv(path, index=False, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    ingest_files([path], store=tmp_path / "s.duckdb")
    pd.testing.assert_frame_equal(
        store.read_panel(tmp_path / "s.duckdb"), canonical(make_panel(), "panel")
    )


def test_export_quirks_are_tolerated(tmp_path):
    """Trailing empty columns and rows (Excel exports) and a stored pandas index are ignored."""
    csv = tmp_path / "trailing.csv"
    text = make_panel().to_csv(index=False, lineterminator="\n")
    csv.write_text("".join(line + ",\n" for line in text.splitlines()) + ",\n,\n", encoding="utf-8")
    pq = tmp_path / "indexed.parquet"
    make_panel().set_index(pd.Index(range(10, 16), name="rowid")).to_parquet(pq)
    for i, path in enumerate([csv, pq]):
        ingest_files([path], store=tmp_path / f"s{i}.duckdb")
        got = store.read_panel(tmp_path / f"s{i}.duckdb")
        pd.testing.assert_frame_equal(got, canonical(make_panel(), "panel"))


def test_unnamed_column_with_values_is_a_problem(tmp_path):
    df = make_panel()
    df[""] = 1
    with pytest.raises(IngestError) as info:
        ingest_files([write(df, tmp_path / "p.csv")], store=tmp_path / "s.duckdb")
    assert [(p.row, p.column) for p in info.value.problems] == [(1, "#23")]
    assert "has no name in the header" in str(info.value)


def test_reingest_same_file_changes_nothing(db, tmp_path):
    h0 = store.content_hash(db)
    n0 = store.summary(db)
    report = ingest_files([tmp_path / "panel_base.csv", tmp_path / "postings_base.csv"], store=db)
    assert store.content_hash(db) == h0
    after = store.summary(db)
    assert (after["panel_rows"], after["postings_rows"]) == (n0["panel_rows"], n0["postings_rows"])
    assert [(f.inserted, f.replaced, f.unchanged) for f in report.files] == [(0, 0, 6), (0, 0, 2)]
    assert "no change to the data" in str(report)
    prov = store.read_provenance(db)
    assert prov["ingest_id"].nunique() == 2 and len(prov.index) == 4  # the repeat is logged


def test_corrected_year_replaces_only_that_year(db, tmp_path):
    before_2022 = store.read_panel(db, years=[2022])
    fixed = make_panel(years=(2023,))
    fixed.loc[fixed["village_code"] == CODES[1], "income_per_capita"] = 15000.0
    report = ingest_files([write(fixed, tmp_path / "panel_2023.csv")], store=db, replace=True)
    pd.testing.assert_frame_equal(store.read_panel(db, years=[2022]), before_2022)
    got = store.read_panel(db, years=[2023]).set_index("village_code")
    assert got.loc[CODES[1], "income_per_capita"] == 15000.0
    assert (
        got.loc[CODES[0], "income_per_capita"]
        == make_panel(years=(2023,))["income_per_capita"].iloc[0]
    )
    f = report.files[0]
    assert (f.rows, f.years, f.inserted, f.replaced, f.unchanged) == (3, (2023,), 0, 1, 2)
    text = str(report)
    assert "panel_2023.csv: panel, 3 rows, years 2023: inserted 0, replaced 1, unchanged 2" in text


def test_year_without_a_village_removes_it_and_says_so(db, tmp_path):
    fixed = make_panel(years=(2023,), codes=CODES[:2])
    report = ingest_files([write(fixed, tmp_path / "panel_2023.csv")], store=db, replace=True)
    assert report.removed == {2023: 1}
    assert "1 stored panel rows were removed" in str(report)
    assert store.read_panel(db, years=[2023])["village_code"].tolist() == CODES[:2]
    assert store.read_history(db, "panel")["change"].tolist() == ["removed"]


def test_corrected_posting_replaces_the_old_one(db, tmp_path):
    fixed = make_postings().iloc[[1]].copy()
    fixed["end_date"] = pd.Timestamp("2024-12-31")
    report = ingest_files([write(fixed, tmp_path / "postings_fix.xlsx")], store=db)
    got = store.read_postings(db).set_index("secretary_id")
    assert got.loc["S002", "end_date"] == pd.Timestamp("2024-12-31")
    assert pd.isna(got.loc["S001", "end_date"])
    assert (report.files[0].replaced, report.files[0].inserted) == (1, 0)


def test_provenance_has_the_files_sha256(db, tmp_path):
    prov = store.read_provenance(db)
    assert prov["file_name"].tolist() == ["panel_base.csv", "postings_base.csv"]
    assert prov["sha256"].tolist() == [
        sha(tmp_path / "panel_base.csv"),
        sha(tmp_path / "postings_base.csv"),
    ]
    assert prov["table_name"].tolist() == ["panel", "postings"]
    assert prov["rows"].tolist() == [6, 2]
    assert prov["years"].tolist() == ["2022, 2023", "2022, 2023"]
    assert prov["ingested_at"].notna().all()


def test_dry_run_writes_nothing(db, tmp_path):
    before = sha(db)
    new = write(make_panel(years=(2023, 2024)), tmp_path / "panel_new.parquet")
    report = ingest_files([new], store=db, dry_run=True)
    assert sha(db) == before
    assert report.dry_run and "Dry run: nothing was written" in str(report)
    assert (report.files[0].inserted, report.files[0].unchanged) == (3, 3)
    fresh = tmp_path / "fresh" / "s.duckdb"
    rc = cli.main(["ingest", str(new), "--store", str(fresh), "--dry-run"])
    assert rc == 0
    assert not fresh.exists() and not fresh.parent.exists()


def test_postings_may_point_to_villages_of_the_same_call(tmp_path):
    path = tmp_path / "s.duckdb"
    with pytest.raises(IngestError, match="not a village of the panel"):
        ingest_files([write(make_postings(), tmp_path / "p.csv")], store=path)
    assert not path.exists()
    ingest_files(
        [write(make_postings(), tmp_path / "p.csv"), write(make_panel(), tmp_path / "v.csv")],
        store=path,
    )
    assert store.summary(path)["postings_rows"] == 2


def test_input_files_are_not_modified(tmp_path):
    files = [
        write(make_panel(), tmp_path / "a.xlsx"),
        write(make_postings(), tmp_path / "b.parquet"),
    ]
    before = [sha(f) for f in files]
    ingest_files(files, store=tmp_path / "s.duckdb")
    assert [sha(f) for f in files] == before


def test_report_is_readable(db, tmp_path):
    report = ingest_files([write(make_panel(years=(2024,)), tmp_path / "panel_2024.csv")], store=db)
    assert isinstance(report, IngestReport)
    text = str(report)
    assert text.startswith(f"Ingested 1 file into {db}")
    assert "panel_2024.csv: panel, 3 rows, years 2024: inserted 3, replaced 0, unchanged 0" in text
    assert "9 panel rows (3 villages, years 2022-2024) and 2 postings" in text


def test_report_lines_come_from_the_catalogue(monkeypatch):
    """Dry run vs written, one file vs several, and a line in both languages, read from messages.yaml.

    The expected lines are what IngestReport printed before its texts moved into the catalogue
    (commit 55e326f, the same objects; the move was checked byte-identical over 2,073,600 reports).
    """
    one = [store.FileChange("p.csv", "x", "panel", 3, (2022, 2023), 3, 0, 0)]
    two = [*one, store.FileChange("q.xlsx", "y", "postings", 2, (2019, 2021), 0, 1, 1)]
    year = store.StoredYearChange(2022, 3, 3, 1, 2, 0, 0, ())
    dry = IngestReport(Path("s.duckdb"), True, "id1", two, replaced_years=[year])
    done = IngestReport(Path("s.duckdb"), False, "id1", one)
    assert str(dry).splitlines()[:3] == [
        "Dry run: nothing was written. Ingesting 2 files into s.duckdb would:",
        "  p.csv: panel, 3 rows, years 2022-2023: insert 3, replace 0, leave unchanged 0",
        "  q.xlsx: postings, 2 rows, start years 2019, 2021: insert 0, replace 1, leave unchanged 1",
    ]
    assert str(dry).splitlines()[3] == (
        "  stored panel year 2022 would be replaced, which needs --replace / 替换已入库的 2022 年数据需要加 --replace: "
        "1 of 3 stored rows change, 0 added, 0 removed; 0 values differ")
    assert str(done).splitlines() == [
        "Ingested 1 file into s.duckdb (ingest id1):",
        "  p.csv: panel, 3 rows, years 2022-2023: inserted 3, replaced 0, unchanged 0",
    ]
    # Change the catalogue: the report follows it (the plural form, the verbs, the Chinese half).
    cat = {k: dict(v) for k, v in i18n.catalogue().items()}
    cat["ingest.report.count.file.other"]["en"] = "{n} FILES"
    cat["ingest.summary.changes.done"]["en"] = "+{inserted} ~{replaced} ={unchanged}"
    cat["ingest.summary.replaced_year.needs_flag"]["zh"] = "{year} 需 --replace"
    monkeypatch.setattr(i18n, "catalogue", lambda: cat)
    assert str(dry).startswith("Dry run: nothing was written. Ingesting 2 FILES into s.duckdb would:\n")
    assert str(done).splitlines()[1] == "  p.csv: panel, 3 rows, years 2022-2023: +3 ~0 =0"
    assert "which needs --replace / 2022 需 --replace: " in str(dry)


# ----------------------------------------------------------------------------- bad files


def _panel_obj(**kw) -> pd.DataFrame:
    return make_panel(**kw).astype(object)


def _set(df: pd.DataFrame, i: int, col: str, value) -> pd.DataFrame:
    df.loc[i, col] = value
    return df


BAD_CELLS = [
    # id, table, suffix, (row index, column, value), expected row text, expected fragment
    (
        "below_min",
        "panel",
        ".csv",
        (1, "income_per_capita", -5),
        "row 3",
        "below the minimum 0 (yuan",
    ),
    (
        "above_max",
        "panel",
        ".csv",
        (0, "share_members_over60", 1.5),
        "row 2",
        "above the maximum 1",
    ),
    ("year_out_of_range", "panel", ".csv", (4, "year", 1890), "row 6", "below the minimum 1990"),
    ("not_a_number", "panel", ".csv", (2, "projects", "two"), "row 4", "is not a number"),
    ("not_whole", "panel", ".csv", (3, "population", 10.5), "row 5", "is not a whole number"),
    ("empty_required", "panel", ".csv", (5, "village_name", ""), "row 7", "is empty"),
    (
        "lost_leading_zero",
        "panel",
        ".csv",
        (0, "village_code", "90101001001"),
        "row 2",
        "12-digit code",
    ),
    (
        "township_mismatch",
        "panel",
        ".csv",
        (1, "township_code", "990101009"),
        "row 3",
        "does not agree",
    ),
    ("county_mismatch", "panel", ".csv", (2, "county_code", "990102"), "row 4", "does not agree"),
    ("category_level", "panel", ".csv", (3, "terrain", "Hills"), "row 5", "did you mean 'hill'"),
    ("binary_not_01", "panel", ".csv", (0, "team_reorganised", 2), "row 2", "is not 0 or 1"),
    (
        "bad_date",
        "postings",
        ".csv",
        (1, "start_date", "2023-02-30"),
        "row 3",
        "is not a valid date",
    ),
    (
        "unknown_village",
        "postings",
        ".csv",
        (0, "village_code", "990101009009"),
        "row 2",
        "neither in the panel files",
    ),
    ("unit_type_level", "postings", ".csv", (1, "unit_type", "police"), "row 3", "allowed values"),
    ("xlsx_negative", "panel", ".xlsx", (4, "disputes", -1), "row 6", "below the minimum 0"),
    (
        "parquet_not_whole",
        "panel",
        ".parquet",
        (1, "activists", "2.5"),
        "record 2",
        "not a whole number",
    ),
]


@pytest.mark.parametrize(
    ("case", "table", "suffix", "edit", "row", "fragment"), BAD_CELLS, ids=[c[0] for c in BAD_CELLS]
)
def test_bad_value_is_reported_and_nothing_written(
    db, tmp_path, capsys, case, table, suffix, edit, row, fragment
):
    df = _panel_obj() if table == "panel" else make_postings().astype(object)
    i, col, value = edit
    df = _set(df, i, col, value)
    if suffix == ".parquet":
        df = df.astype(str)  # mixed object columns are not valid Parquet; a text file is fine
    path = write(df, tmp_path / f"{case}{suffix}")
    before, h0 = sha(db), store.content_hash(db)
    rc, out, err = run_cli(capsys, str(path), "--store", str(db))
    assert rc == 2
    assert out == ""
    line = next((ln for ln in err.splitlines() if ln.startswith(path.name + ",")), None)
    assert line is not None, err
    assert f"{path.name}, {row}, column {col}:" in err, err
    assert fragment in err
    assert "What to do:" in line
    assert sha(db) == before and store.content_hash(db) == h0


def test_duplicate_key_within_a_file(db, tmp_path, capsys):
    df = make_panel()
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    path = write(df, tmp_path / "dup.csv")
    before = sha(db)
    rc, _, err = run_cli(capsys, str(path), "--store", str(db))
    assert rc == 2
    assert (
        "dup.csv, row 8, columns village_code and year: "
        "value '990101001001 / 2022' repeats the key of row 2" in err
    )
    assert sha(db) == before


def test_duplicate_key_across_files(db, tmp_path, capsys):
    a = write(make_panel(years=(2024,)), tmp_path / "a.csv")
    b = write(make_panel(years=(2024,), codes=CODES[2:]), tmp_path / "b.xlsx")
    before = sha(db)
    rc, _, err = run_cli(capsys, str(a), str(b), "--store", str(db))
    assert rc == 2
    assert "b.xlsx, row 2, columns village_code and year" in err
    assert "repeats the key of row 4 in a.csv" in err
    assert sha(db) == before


def test_end_before_start(db, tmp_path, capsys):
    df = make_postings()
    df.loc[0, "end_date"] = pd.Timestamp("2021-12-31")
    path = write(df, tmp_path / "postings_dates.xlsx")
    before = sha(db)
    rc, _, err = run_cli(capsys, str(path), "--store", str(db))
    assert rc == 2
    assert (
        "postings_dates.xlsx, row 2, column end_date: "
        "value '2021-12-31' is before start_date '2022-07-01'" in err
    )
    assert sha(db) == before


def test_missing_and_unknown_columns(db, tmp_path, capsys):
    df = make_panel().rename(columns={"roads_km": "road_km"}).drop(columns=["petitions"])
    df["notes"] = "x"
    path = write(df, tmp_path / "cols.csv")
    before = sha(db)
    rc, _, err = run_cli(capsys, str(path), "--store", str(db))
    assert rc == 2
    # Since issue 9 outcomes are optional: a lookalike is still named, a column left out is not a problem.
    assert (
        "cols.csv, row 1 (header), column roads_km: the column is missing (the file has a "
        "column 'road_km' that looks like it). "
        "What to do: rename the column 'road_km' to 'roads_km'"
    ) in err
    assert "column petitions:" not in err
    assert "cols.csv, row 1 (header), column notes: is not a column of the panel table" in err
    assert "column road_km:" not in err  # reported once, as the rename
    assert sha(db) == before


def test_chinese_headers_get_rename_suggestions(tmp_path):
    labels = {c.name: c.label_zh for c in schema.PANEL_COLUMNS}
    path = write(make_panel().rename(columns=labels), tmp_path / "中文表头.csv")
    with pytest.raises(IngestError) as info:
        ingest_files([path], store=tmp_path / "s.duckdb")
    actions = {p.column: p.action for p in info.value.problems}
    expected = "rename the column '村代码' to 'village_code' in the header"
    assert actions["village_code"] == expected
    assert len(info.value.problems) == len(schema.PANEL_COLUMNS)


def test_postings_column_in_a_panel_file(tmp_path):
    df = make_panel()
    df["batch"] = "pilot-2022"
    with pytest.raises(IngestError, match="it is a postings column"):
        ingest_files([write(df, tmp_path / "p.csv")], store=tmp_path / "s.duckdb")


def _gbk(tmp_path: Path) -> Path:
    p = tmp_path / "gbk.csv"
    make_panel().to_csv(p, index=False, encoding="gb18030")
    return p


def _raw(name: str, data: bytes):
    def make(tmp_path: Path) -> Path:
        p = tmp_path / name
        p.write_bytes(data)
        return p

    return make


FILE_LEVEL = [
    ("not_found", lambda t: t / "nowhere.csv", "nowhere.csv", "does not exist"),
    ("unsupported", _raw("panel.txt", b"village_code,year\n"), "panel.txt", "is not supported"),
    ("old_xls", _raw("panel.xls", b"\xd0\xcf\x11\xe0"), "panel.xls", "old .xls"),
    ("empty", _raw("empty.csv", b""), "empty.csv", "is empty"),
    ("blank", _raw("blank.csv", b"\n\n  \n"), "blank.csv", "is empty"),
    (
        "header_only",
        lambda t: write(make_panel().head(0), t / "header.csv"),
        "header.csv",
        "no data rows",
    ),
    ("not_utf8", _gbk, "gbk.csv", "GBK"),
    ("unknown_table", _raw("what.csv", b"a,b\n1,2\n"), "what.csv", "cannot tell whether"),
    ("semicolons", _raw("semi.csv", b"village_code;year\n1;2\n"), "semi.csv", "another separator"),
    (
        "ragged",
        _raw("ragged.csv", b"village_code,year\n990101001001,2022,extra\n"),
        "ragged.csv",
        "has 3 fields",
    ),
    (
        "bad_xlsx",
        _raw("broken.xlsx", b"PK\x03\x04 not really a zip"),
        "broken.xlsx",
        "Excel workbook",
    ),
    ("bad_parquet", _raw("broken.parquet", b"PAR1 nope"), "broken.parquet", "as Parquet"),
    ("folder", lambda t: (t / "dir.csv").mkdir() or t / "dir.csv", "dir.csv", "folder"),
]


@pytest.mark.parametrize(
    ("case", "make", "name", "fragment"), FILE_LEVEL, ids=[c[0] for c in FILE_LEVEL]
)
def test_unreadable_file_is_reported_and_nothing_written(
    db, tmp_path, capsys, case, make, name, fragment
):
    path = make(tmp_path)
    before = sha(db)
    rc, _out, err = run_cli(capsys, str(path), "--store", str(db))
    assert rc == 2
    lines = [ln for ln in err.splitlines() if name in ln and not ln.startswith("Every problem is listed in")]
    assert lines, err
    assert fragment in err
    assert all("What to do:" in ln for ln in lines)
    assert sha(db) == before
    if path.is_file():  # the full list is written beside the input, and the message says where
        assert all(r.is_file() for r in report_paths(path))
        assert f"Every problem is listed in / 全部问题见: {report_paths(path)[1]}" in err


def test_all_problems_of_all_files_at_once(db, tmp_path):
    df = _panel_obj()
    df = _set(df, 0, "income_per_capita", -5)
    df = _set(df, 2, "terrain", "swamp")
    df = _set(df, 4, "village_name", "")  # a required column (population may be empty since issue 9)
    bad = write(df, tmp_path / "three.csv")
    post = make_postings().astype(object)
    post.loc[1, "unit_type"] = "army"
    other = write(post, tmp_path / "post.csv")
    before = sha(db)
    with pytest.raises(IngestError) as info:
        ingest_files([bad, tmp_path / "missing.parquet", other], store=db)
    problems = info.value.problems
    assert all(isinstance(p, Problem) for p in problems)
    got = [(p.file, p.row, p.column) for p in problems]
    assert got == [
        ("three.csv", 2, "income_per_capita"),
        ("three.csv", 4, "terrain"),
        ("three.csv", 6, "village_name"),
        (str(tmp_path / "missing.parquet"), None, None),
        ("post.csv", 3, "unit_type"),
    ]
    msg = str(info.value)
    assert msg.splitlines()[0] == "Nothing was written to the store: 5 problems in 3 files."
    # Since issue 9 canonical files get error reports too: one more line says where they are.
    assert len(msg.splitlines()) == 7
    assert msg.splitlines()[-1].startswith("Every problem is listed in / 全部问题见: ")
    assert (
        "three.csv, row 2, column income_per_capita: value '-5' is below the minimum 0 (yuan per "
        "person per year). What to do: correct the value in the file and ingest it again."
    ) in msg
    assert sha(db) == before


def test_long_problem_lists_are_capped(tmp_path):
    df = make_panel(years=tuple(range(2000, 2040))).astype(object)
    df["income_per_capita"] = -1
    df["projects"] = "many"
    with pytest.raises(IngestError) as info:
        ingest_files([write(df, tmp_path / "big.csv")], store=tmp_path / "s.duckdb")
    assert len(info.value.problems) == 2 * len(df.index)
    lines = str(info.value).splitlines()
    # Since issue 9 the line of the hidden problems says where the full list is, and one line more names
    # the reports.
    assert len(lines) == 1 + 2 * 5 + 2
    full = tmp_path / "big.csv.errors.csv"
    assert re.fullmatch(r"\.\.\. and 230 more problems not listed.*", lines[-2])
    assert f"the full list of every problem is in {full}" in lines[-2]
    assert lines[-1].startswith("Every problem is listed in / 全部问题见: ")


def test_store_that_is_not_a_database(tmp_path, capsys):
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_text("not a database")
    rc, _, err = run_cli(
        capsys, str(write(make_panel(), tmp_path / "p.csv")), "--store", str(bogus)
    )
    assert rc == 2
    assert "bogus.duckdb" in err and "What to do:" in err
    assert bogus.read_text() == "not a database"


def test_cli_subprocess_exit_code(db, tmp_path):
    path = write(_set(_panel_obj(), 0, "roads_km", "abc"), tmp_path / "sub.csv")
    before = sha(db)
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "ingest", str(path), "--store", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert (
        "sub.csv, row 2, column roads_km: value 'abc' is not a number. What to do:" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert sha(db) == before


# ----------------------------------------------------------------------------- crash safety


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDY_INGEST_PAUSE")}
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def test_kill_9_during_ingest_leaves_store_unchanged(db, tmp_path):
    before, h0 = sha(db), store.content_hash(db)
    fixed = make_panel(years=(2023, 2024))
    fixed["population"] = 999
    files = [
        write(fixed, tmp_path / "panel_fix.csv"),
        write(make_postings(codes=CODES), tmp_path / "postings_all.csv"),
    ]
    marker = tmp_path / "paused"
    proc = subprocess.Popen(
        [sys.executable, "-m", "analysis", "ingest", *map(str, files), "--store", str(db), "--replace"],
        env=_env(STUDY_INGEST_PAUSE="60", STUDY_INGEST_PAUSE_MARKER=str(marker)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the ingest never reached the pause"
            time.sleep(0.05)
        leftovers = list(db.parent.glob(db.name + ".ingest-*.tmp"))
        assert len(leftovers) == 1  # the ingest is half way, inside its temporary copy
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert sha(db) == before
    assert store.content_hash(db) == h0
    assert leftovers[0].exists()

    report = ingest_files(files, store=db, replace=True)
    assert [f.rows for f in report.files] == [6, 3]
    assert list(db.parent.glob(db.name + ".ingest-*")) == []
    assert store.read_panel(db, years=[2023, 2024])["population"].eq(999).all()
    assert store.summary(db)["postings_rows"] == 3


def test_pause_hook_only_when_asked(db, tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("STUDY_INGEST_PAUSE", "0")
    monkeypatch.setenv("STUDY_INGEST_PAUSE_MARKER", str(marker))
    ingest_files([write(make_panel(years=(2024,)), tmp_path / "p.csv")], store=db)
    assert marker.read_text() == str(os.getpid())
    marker.unlink()
    monkeypatch.delenv("STUDY_INGEST_PAUSE")
    ingest_files([write(make_panel(years=(2025,)), tmp_path / "q.csv")], store=db)
    assert not marker.exists()


# ----------------------------------------------------------------------------- data dictionary


def test_readme_embeds_the_data_dictionary():
    text = (REPO / "data" / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- dictionary:start -->\n(.*?)<!-- dictionary:end -->", text, flags=re.S)
    assert m, "data/README.md lacks the dictionary markers"
    assert m.group(1).strip() == schema.data_dictionary_markdown().strip(), (
        "data/README.md is out of date: paste the output of "
        "analysis.data.schema.data_dictionary_markdown() between the markers"
    )


def test_more_than_a_thousand_problems_are_all_in_the_error_report(db, tmp_path, capsys):
    """Issue 9: the canonical path writes the full list too, and the message says where it is."""
    df = make_panel(years=tuple(range(1990, 2100))).astype(object)  # 330 rows
    for c in ("income_per_capita", "projects", "disputes", "roads_km"):
        df[c] = "n/a"
    path = write(df, tmp_path / "many.csv")
    before = sha(db)
    rc, _, err = run_cli(capsys, str(path), "--store", str(db))
    assert rc == 2 and sha(db) == before
    xlsx, csv_path = report_paths(path)
    assert err.splitlines()[0] == "Nothing was written to the store: 1320 problems in 1 file."
    assert f"the full list of every problem is in {csv_path}" in err
    rows = list(csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 1 + 1320
    assert {r[5] for r in rows[1:]} == {"income_per_capita", "projects", "disputes", "roads_km"}
    assert openpyxl.load_workbook(xlsx, read_only=True).active.max_row == 1 + 1320
    ingest_files([write(make_panel(years=(2024,)), path)], store=db)  # once it ingests, the reports go
    assert not any(p.exists() for p in report_paths(path))


# ----------------------------------------------------------------------------- issue 9


def test_optional_columns_may_be_absent_and_the_panel_still_loads(db, tmp_path, capsys):
    """No party-member columns, no petitions, no township or county codes: ingested, stored missing, loadable."""
    from analysis.core.panel import load_analysis_panel

    df = make_panel(years=(2024,)).drop(columns=["party_members", "share_members_over60", "petitions",
                                                 "township_code", "county_code"])
    df = df.astype(object)
    df.loc[1, "population"] = ""  # an empty cell of an optional column
    path = write(df, tmp_path / "panel_2024.csv")
    rc, out, err = run_cli(capsys, str(path), "--store", str(db))
    assert rc == 0, err
    assert "  panel_2024.csv:\n" in out  # notes of a canonical file
    for line in ("township_code: not in the file; taken from the first 9 digits of the village_code",
                 "party_members: not in the file; stored as missing", "petitions: not in the file; stored as missing",
                 "population: 1 empty cells (or missing markers) stored as missing (rows 3)"):
        assert line in out
    got = store.read_panel(db, [2024])
    assert got["township_code"].tolist() == [c[:9] for c in CODES]
    assert got["petitions"].isna().all() and got["population"].isna().tolist() == [False, True, False]
    panel = load_analysis_panel(db, 2022, 2024)
    assert panel["party_members"].dtype == "float64" and panel["party_members"].isna().sum() == 3
    assert panel["petitions"].dtype == "float64" and panel["disputes"].dtype == "int64"
    assert panel.loc[panel["year"] < 2024, "party_members"].notna().all()


def test_a_file_without_outcomes_is_refused(db, tmp_path, capsys):
    df = make_panel(years=(2024,))[["village_code", "year", "village_name", "population", "distance_km"]]
    path = write(df, tmp_path / "no_outcome.csv")
    before = sha(db)
    rc, _, err = run_cli(capsys, str(path), "--store", str(db))
    assert rc == 2 and sha(db) == before
    assert "no_outcome.csv: no outcome column holds a value: a panel file needs at least one of income_per" in err


def test_a_formula_without_a_saved_value_in_a_canonical_workbook(db, tmp_path, capsys):
    path = write(make_panel(years=(2024,)), tmp_path / "panel.xlsx")
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    disputes = [c.value for c in ws[1]].index("disputes") + 1
    ws.cell(3, disputes).value = "=2+2"  # written by a program: no saved value
    wb.save(path)
    before = sha(db)
    rc, _, err = run_cli(capsys, str(path), "--store", str(db))
    assert rc == 2 and sha(db) == before
    assert ("panel.xlsx, row 3, column disputes: value '=2+2' holds a formula with no saved value: the file was "
            "written by a program and never opened and saved in a spreadsheet, so there is no value to read. What "
            "to do: open the file in Excel, WPS or LibreOffice and save it") in err


def test_a_year_with_the_values_of_another_is_a_warning(city_store, tmp_path, capsys):
    db = tmp_path / "study.duckdb"
    db.write_bytes(city_store.read_bytes())
    copy = store.read_panel(db, [2023]).assign(year=2025)
    path = write(copy, tmp_path / "panel_2025.csv")
    before, h0 = sha(db), store.content_hash(db)
    rc, _, err = run_cli(capsys, str(path), "--store", str(db))
    assert rc == 2, err
    assert ("panel_2025.csv, column year: warning: the values of 2025 are those of the stored year 2023 (perhaps "
            "the 2023 table filed as 2025): 100.0% of ") in err
    assert sha(db) == before and store.content_hash(db) == h0
    rc, out, _ = run_cli(capsys, str(path), "--store", str(db), "--accept-warnings")
    assert rc == 0 and "1 warnings accepted" in out
    # Two real years of the city never look alike: the whole city (seven years) goes in without a warning.
    assert store.summary(city_store)["panel_years"] == list(range(2018, 2025))


def test_error_reports_go_to_a_temporary_folder_when_the_input_folder_is_read_only(tmp_path, monkeypatch):
    from analysis.data import problems as problems_module

    real = problems_module.write_atomic
    src = tmp_path / "inputs"
    src.mkdir()

    def refuse_beside_input(path, data):
        if Path(path).parent == src:
            raise PermissionError(13, "read-only folder")
        return real(path, data)

    monkeypatch.setattr(problems_module, "write_atomic", refuse_beside_input)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the fallback folder stays in this test's folder
    df = _set(_panel_obj(), 0, "roads_km", "abc")
    with pytest.raises(IngestError) as info:
        ingest_files([write(df, src / "p.csv")], store=tmp_path / "s.duckdb")
    csv_report, xlsx_report = info.value.reports
    assert csv_report.name == "p.csv.errors.csv" and csv_report.parent.name.startswith("study-ingest-errors-")
    assert csv_report.parent.parent == tmp_path
    assert csv_report.is_file() and xlsx_report.is_file() and not any(src.glob("*.errors.*"))
    assert f"Every problem is listed in / 全部问题见: {csv_report}" in str(info.value)


def test_the_error_message_counts_in_the_singular_and_the_plural_in_both_languages():
    """The framing of IngestError's message comes from the catalogue (ingest.report); the expected lines are
    what the message said before it moved there."""
    err = Problem("a.csv", 2, "year", "x", "is bad", "fix it", problem_zh="有问题", action_zh="改正")
    warn = Problem("b.csv", 3, "year", "x", "is odd", "check it", problem_zh="可疑", action_zh="核对",
                   severity="warning")
    year = Problem("b.csv", None, None, None, "would change 2024", "replace", severity="replace")
    lines = str(IngestError([err], bilingual=True)).splitlines()
    assert lines[:2] == ["Nothing was written to the store: 1 problem in 1 file.",
                         "没有写入任何数据：1 个文件中共有 1 个问题。"]
    lines = str(IngestError([err, err, warn, year], bilingual=True)).splitlines()
    assert lines[:2] == ["Nothing was written to the store: 4 problems (2 errors, 1 warning, 1 stored year to "
                         "replace) in 2 files.",
                         "没有写入任何数据：2 个文件中共有 4 个问题（2 个错误，1 个警告，1 个已入库年份将被替换）。"]
    lines = str(IngestError([warn, warn])).splitlines()
    assert lines[0] == "Nothing was written to the store: 2 problems (0 errors, 2 warnings) in 1 file."
    assert lines[-1].startswith("Only warnings: if the values are right, ingest again with accept_warnings=True "
                                "(study ingest --accept-warnings). / 只有警告：")
