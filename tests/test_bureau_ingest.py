"""Bureau files through ingest_files: messy input converted, bad input rejected, store never touched.

Every rejection is checked the same way (``rejected``): the problem names file, sheet, row,
column and value, says the rule in English and Chinese and what to do; the store file's
bytes and its content hash are unchanged; the input file is unchanged; the error report
``<input>.errors.xlsx`` / ``.csv`` lists the problems.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from analysis import paths
from analysis.core.treatment import derive_treatment
from analysis.data import schema, store
from analysis.data.bureau import crosswalk as cwm
from analysis.data.ingest import ingest_files
from analysis.data.problems import IngestError, report_paths

REPO = Path(__file__).resolve().parents[1]
MAP = paths.MAPPINGS_DIR
CODES = ["990101001001", "990101001002", "990101002001", "990101002002", "990102001001", "990102001002"]
TERRAIN_ZH = {"plain": "平原", "hill": "丘陵", "mountain": "山区"}
SHARES = [0.35, 0.36, 0.4, 0.25, 0.5, 0.125, 0.3, 0.45]


def canon(year: int, codes=CODES) -> pd.DataFrame:
    """Canonical panel rows of one year; village attributes are the same every year."""
    rows = []
    for i, code in enumerate(codes):
        k = year - 2023
        rows.append(
            {
                "village_code": code,
                "year": year,
                "village_name": f"第{i + 1}村",
                "township_code": code[:9],
                "county_code": code[:6],
                "population": 800 + 10 * i + k,
                "income_per_capita": 5000.25 + 100 * i + 50 * k,
                "collective_income": 123456.78 + 1000 * i + k,
                "projects": i % 3,
                "funds_attracted": 150000.0 + i,
                "roads_km": 1.25 + 0.5 * i,
                "team_reorganised": i % 2,
                "activists": 3 + k,
                "new_members": 1,
                "criminal_cases": i % 2,
                "disputes": 4 + i,
                "petitions": 0,
                "distance_km": 12.5 + i,
                "terrain": schema.TERRAIN_LEVELS[i % 3],
                "distinctive_industry": (i + 1) % 2,
                "party_members": 40 + i,
                "share_members_over60": SHARES[i],
            }
        )
    return pd.DataFrame(rows)


PANEL_ZH = [
    ("村代码", "village_code", str),
    ("村名称", "village_name", str),
    ("年份", "year", lambda v: f"{v}年"),
    ("户籍人口（人）", "population", int),
    ("农民人均纯收入（元）", "income_per_capita", float),
    ("村集体收入（万元）", "collective_income", lambda v: round(v / 1e4, 8)),
    ("引进项目数（个）", "projects", int),
    ("引进资金（元）", "funds_attracted", float),
    ("修复道路（公里）", "roads_km", float),
    ("班子调整", "team_reorganised", lambda v: "是" if v else "否"),
    ("入党积极分子（人）", "activists", int),
    ("发展党员（人）", "new_members", int),
    ("刑事案件数（起）", "criminal_cases", int),
    ("矛盾纠纷数（起）", "disputes", int),
    ("群体性上访（起）", "petitions", int),
    ("距县城距离（公里）", "distance_km", float),
    ("地形", "terrain", TERRAIN_ZH.get),
    ("特色产业", "distinctive_industry", lambda v: "有" if v else "无"),
    ("党员人数（人）", "party_members", int),
    ("60岁以上党员占比（%）", "share_members_over60", lambda v: round(v * 100, 6)),
]
HEAD = [h for h, _, _ in PANEL_ZH]


def col(header: str) -> int:
    return HEAD.index(header)


def bureau_rows(df: pd.DataFrame) -> list[list[object]]:
    return [[f(r[c]) for _, c, f in PANEL_ZH] for r in df.to_dict("records")]


def write_csv(path: Path, rows: list[list[object]], encoding: str = "gbk") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    wb.save(path)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected(year: int, codes=CODES) -> pd.DataFrame:
    return schema.to_canonical(canon(year, codes), "panel").sort_values(["village_code", "year"]).reset_index(drop=True)


POSTINGS = pd.DataFrame(
    {
        "village_code": CODES[:2],
        "secretary_id": ["S001", "S002"],
        "start_date": pd.to_datetime(["2023-03-01", "2023-07-20"]),
        "end_date": pd.to_datetime([None, None]),
        "sending_unit": ["市公安局", "市农业农村局"],
        "unit_type": ["law", "agriculture"],
        "batch": ["city-2023", "city-2023"],
    }
)


@pytest.fixture
def db(tmp_path) -> Path:
    """A store with the canonical panel 2023-2024 of six villages and two postings."""
    path = tmp_path / "store" / "study.duckdb"
    path.parent.mkdir()
    store.write_tables(path, panel=pd.concat([canon(2023), canon(2024)]), postings=POSTINGS)
    return path


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch):
    monkeypatch.delenv("STUDY_INGEST_PAUSE", raising=False)
    monkeypatch.delenv("STUDY_INGEST_PAUSE_MARKER", raising=False)


def ingest(paths_, db, **kw):
    kw.setdefault("mapping_dir", MAP)
    return ingest_files(paths_, db, **kw)


def rejected(db: Path, inputs: list[Path], expect: list[dict], **kw) -> IngestError:
    """Ingest, expect an IngestError with the given problems, and check nothing was touched."""
    before, h0 = sha(db), store.content_hash(db)
    inputs_before = {p: sha(p) for p in inputs if p.is_file()}
    with pytest.raises(IngestError) as info:
        ingest(inputs, db, **kw)
    err = info.value
    for e in expect:
        matches = [
            p
            for p in err.problems
            if all(getattr(p, k) == v for k, v in e.items() if k not in ("fragment", "zh"))
            and e.get("fragment", "") in p.problem
            and e.get("zh", "") in p.problem_zh
        ]
        assert matches, f"no problem like {e} in:\n" + "\n".join(map(repr, err.problems))
        p = matches[0]
        assert p.problem and p.problem_zh and p.action and p.action_zh, p
        text = str(err)
        assert str(p) in text and p.text_zh() in text
    assert sha(db) == before and store.content_hash(db) == h0
    assert {p: sha(p) for p in inputs_before} == inputs_before
    files = {p.file for p in err.problems}
    for path in inputs:
        if path.name in files and path.is_file():
            xlsx, csv_path = report_paths(path)
            assert xlsx.is_file() and csv_path.is_file()
            rows = list(csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
            mine = [p for p in err.problems if p.file == path.name]
            assert len(rows) == 1 + len(mine)
            assert rows[0][0] == "级别 severity"
            zh = {p.problem_zh for p in mine}
            assert {r[7] for r in rows[1:]} == zh
            ws = openpyxl.load_workbook(xlsx).active
            assert ws.max_row == 1 + len(mine)
    return err


# ----------------------------------------------------------------------------- messy input, cleanly converted


def case_gbk_csv(t: Path):
    return [write_csv(t / "2025年村级统计.csv", [HEAD, *bureau_rows(canon(2025))])], {}


def case_gb18030_csv(t: Path):
    df = canon(2025)
    df.loc[0, "village_name"] = "𫗧湖村"  # not in GBK
    return [write_csv(t / "v.csv", [HEAD, *bureau_rows(df)], "gb18030")], {"_name0": "𫗧湖村"}


def case_utf8_bom_csv(t: Path):
    return [write_csv(t / "v.csv", [HEAD, *bureau_rows(canon(2025))], "utf-8-sig")], {}


def case_xlsx_title_two_row_header_subtotals(t: Path):
    groups = ["", "", ""] + ["基本情况"] + ["经济发展"] * 5 + ["基层组织"] * 3 + ["社会治理"] * 3 + ["村情"] * 5
    top = [g or h for g, h in zip(groups, HEAD, strict=True)]
    low = ["" if not g else h for g, h in zip(groups, HEAD, strict=True)]
    body = bureau_rows(canon(2025))
    rows = [["北湖市2025年村级统计表"], ["填报单位：统计局"], top, low, *body[:3], ["", "东山县小计"] + [1] * 18,
            *body[3:], ["合计", ""] + [2] * 18, ["注：本表由乡镇填报。"]]
    return [write_xlsx(t / "v.xlsx", {"村级统计": rows})], {"_note": "2 subtotal rows (合计/小计) dropped: rows 8, 12"}


def case_units_metres_and_unit_row(t: Path):
    head = list(HEAD)
    head[col("修复道路（公里）")] = "修复道路"
    head[col("村集体收入（万元）")] = "村集体收入"
    units = [""] * len(head)
    units[col("修复道路（公里）")] = "米"
    units[col("村集体收入（万元）")] = "万元"
    rows = bureau_rows(canon(2025))
    for r in rows:
        r[col("修复道路（公里）")] = round(r[col("修复道路（公里）")] * 1000, 6)
    return [write_xlsx(t / "v.xlsx", {"s": [head, units, *rows]})], {}


def case_fullwidth_thousands_percent_strings(t: Path):
    rows = bureau_rows(canon(2025))
    fw = str.maketrans("0123456789.,", "０１２３４５６７８９．，")
    for r in rows:
        r[col("户籍人口（人）")] = str(r[col("户籍人口（人）")]).translate(fw)
        r[col("引进资金（元）")] = f"{r[col('引进资金（元）')]:,.2f}"
        r[col("60岁以上党员占比（%）")] = f"{r[col('60岁以上党员占比（%）')]:g}%"
    rows[0][col("引进资金（元）")] = rows[0][col("引进资金（元）")].translate(fw)  # １５０，０００．００
    return [write_csv(t / "v.csv", [HEAD, *rows])], {}


def case_missing_markers_carried_forward(t: Path):
    rows = bureau_rows(canon(2025))
    rows[0][col("距县城距离（公里）")] = "—"
    rows[1][col("距县城距离（公里）")] = "/"
    rows[2][col("地形")] = "无"
    rows[3][col("特色产业")] = ""
    return [write_csv(t / "v.csv", [HEAD, *rows])], {"_note": "distance_km: 2 missing values taken"}


def case_static_columns_absent(t: Path):
    drop = [col(h) for h in ("距县城距离（公里）", "地形", "特色产业")]
    rows = [[v for j, v in enumerate(r) if j not in drop] for r in [HEAD, *bureau_rows(canon(2025))]]
    return [write_csv(t / "v.csv", rows)], {}


def case_float_and_full_sci_codes(t: Path):
    rows = bureau_rows(canon(2025))
    rows[0][0] = f"{rows[0][0]}.0"
    rows[1][0] = f"{int(rows[1][0]):.11E}"  # 9.90101001002E+11: every digit kept
    return [write_csv(t / "v.csv", [HEAD, *rows])], {"_note": "1 codes were written as numbers with '.0'"}


def case_year_from_file_name(t: Path):
    rows = [[v for j, v in enumerate(r) if j != col("年份")] for r in [HEAD, *bureau_rows(canon(2025))]]
    return [write_csv(t / "2025年村级统计表.csv", rows)], {"_note": "2025 taken from the file name"}


def case_year_from_option(t: Path):
    rows = [[v for j, v in enumerate(r) if j != col("年份")] for r in [HEAD, *bureau_rows(canon(2025))]]
    return [write_csv(t / "村级统计表.csv", rows)], {"year": 2025}


def case_sheets_per_county(t: Path):
    body = bureau_rows(canon(2025))
    sheets = {"东山县": [HEAD, *body[:4]], "西川县": [HEAD, *body[4:]], "说明": [["说明"], ["本表口径为年末数"]]}
    return [write_xlsx(t / "v.xlsx", sheets)], {"_note": "skipped: 说明"}


def case_number_with_unit_in_cell_and_aliases(t: Path):
    head = list(HEAD)
    head[0] = "行政区划代码"
    head[col("农民人均纯收入（元）")] = "农村居民人均可支配收入（元/人）"
    rows = bureau_rows(canon(2025))
    for r in rows:
        r[col("引进资金（元）")] = f"{r[col('引进资金（元）')] / 1e4:g}万元"
    return [write_csv(t / "v.csv", [head, *rows], "utf-8")], {}


def case_utf16_tab_text(t: Path):
    text = "\r\n".join("\t".join(str(v) for v in r) for r in [HEAD, *bureau_rows(canon(2025))])
    p = t / "v.csv"
    p.write_bytes(text.encode("utf-16"))
    return [p], {}


def case_canonical_file_in_gbk(t: Path):
    p = t / "canonical_gbk.csv"
    canon(2025).to_csv(p, index=False, encoding="gbk")
    return [p], {}


CLEAN = [
    case_gbk_csv,
    case_gb18030_csv,
    case_utf8_bom_csv,
    case_xlsx_title_two_row_header_subtotals,
    case_units_metres_and_unit_row,
    case_fullwidth_thousands_percent_strings,
    case_missing_markers_carried_forward,
    case_static_columns_absent,
    case_float_and_full_sci_codes,
    case_year_from_file_name,
    case_year_from_option,
    case_sheets_per_county,
    case_number_with_unit_in_cell_and_aliases,
    case_utf16_tab_text,
    case_canonical_file_in_gbk,
]


@pytest.mark.parametrize("case", CLEAN, ids=[c.__name__[5:] for c in CLEAN])
def test_messy_panel_is_converted(db, tmp_path, case):
    inputs, kw = case(tmp_path)
    name0 = kw.pop("_name0", None)
    note = kw.pop("_note", None)
    report = ingest(inputs, db, **kw)
    want = expected(2025)
    if name0:
        want.loc[0, "village_name"] = name0
    pd.testing.assert_frame_equal(store.read_panel(db, [2025]), want)
    pd.testing.assert_frame_equal(store.read_panel(db, [2023, 2024]), expected(2023).pipe(
        lambda a: pd.concat([a, expected(2024)]).sort_values(["village_code", "year"]).reset_index(drop=True)))
    assert report.files[0].inserted == 6
    if note:
        assert note in "\n".join(n.text for n in report.notes[inputs[0].name])
        assert note in str(report)
    for p in inputs:
        assert not any(x.exists() for x in report_paths(p))


def test_stale_error_report_is_removed_after_a_clean_ingest(db, tmp_path):
    rows = bureau_rows(canon(2025))
    rows[0][col("矛盾纠纷数（起）")] = "约3"
    path = write_csv(tmp_path / "v.csv", [HEAD, *rows])
    rejected(db, [path], [{"row": 2, "column": "disputes", "value": "约3", "fragment": "is not a number"}])
    write_csv(path, [HEAD, *bureau_rows(canon(2025))])
    ingest([path], db)
    assert not any(x.exists() for x in report_paths(path))


# ----------------------------------------------------------------------------- postings lists


def postings_list(t: Path, rows: list[list[object]], name: str = "2025年第二批第一书记名单.xlsx") -> Path:
    head = ["序号", "姓名", "派驻村", "村代码", "派出单位", "单位类别", "到岗时间", "离岗时间", "批次", "联系电话"]
    return write_xlsx(t / name, {"名单": [["2025年第二批驻村第一书记名单"], head, *rows]})


def test_postings_list_with_chinese_dates_types_and_a_replacement(db, tmp_path):
    rows = [
        [1, "张三", "第3村", CODES[2], "县公安局", "公检法司", "2025年3月15日", "2025年6月20日", "第二批", "138"],
        [2, "李四", "第3村", CODES[2], "县公安局", "政法", "2025.6.25", "至今", "第二批", "139"],
        [3, "王五", "第4村", CODES[3], "市水产技术推广站", "水产", dt.datetime(2025, 4, 1), "", "第二批", ""],
        [4, "赵六", "第5村", CODES[4], "市财政局", "经济实力强的单位", 45748, "—", "2025年第二批", ""],
        [5, "钱七", "第6村", CODES[5], "市委宣传部", "党政机关", "20250701", "", "", ""],
    ]
    path = postings_list(tmp_path, rows)
    report = ingest([path], db)
    got = store.read_postings(db)
    new = got[~got["secretary_id"].isin(["S001", "S002"])]
    new = new.sort_values(["start_date", "village_code"]).reset_index(drop=True)
    assert new["start_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2025-03-15", "2025-04-01", "2025-04-01", "2025-06-25", "2025-07-01"]
    assert new["unit_type"].tolist() == ["law", "agriculture", "economic", "law", "other"]
    assert new["batch"].tolist() == ["city-2025"] * 5
    assert new["end_date"].isna().tolist() == [False, True, True, True, True]
    assert new["secretary_id"].str.fullmatch(r"FS-[0-9A-F]{10}").all()
    tr = derive_treatment(got, 2018, 2025).set_index("village_code")
    # The replacement keeps village 3 in post all year: union of the two postings counts.
    assert tr.loc[CODES[2], "cohort"] == 2025 and tr.loc[CODES[2], "cadre_type"] == "law"
    assert tr.loc[CODES[5], "cohort"] == 2025  # 1 July: 184 days >= six months
    assert report.files[0].inserted == 5
    again = ingest([path], db)  # the same list again: same ids, nothing changes
    assert (again.files[0].inserted, again.files[0].unchanged) == (0, 5)


def test_postings_list_rejections(db, tmp_path):
    rows = [
        [1, "张三", "", CODES[2], "县公安局", "部队", "2025年3月15日", "", "第二批", ""],
        [2, "李四", "", CODES[3], "县公安局", "政法", "2025年3月", "", "第二批", ""],
        [3, "", "", CODES[4], "县财政局", "财政", "2025-03-01", "", "第二批", ""],
        [4, "孙八", "", "990109009009", "县财政局", "财政", "2025-03-01", "2024-01-01", "第二批", ""],
    ]
    path = postings_list(tmp_path, rows)
    rejected(db, [path], [
        {"row": 3, "sheet": "名单", "column": "unit_type", "value": "部队", "fragment": "sending-unit type",
         "zh": "无法判断派出单位类型"},
        {"row": 4, "column": "start_date", "value": "2025年3月", "fragment": "has no day"},
        {"row": 5, "column": "name", "fragment": "is empty"},
        {"row": 6, "column": "end_date", "fragment": "is before start_date"},
        {"row": 6, "column": "village_code", "value": "990109009009", "fragment": "not a village of the panel"},
    ])


def test_postings_without_id_or_name(db, tmp_path):
    rows = [["村代码", "派出单位", "到岗时间"], [CODES[2], "县公安局", "2025-03-01"]]
    path = write_xlsx(tmp_path / "l.xlsx", {"s": rows})
    rejected(db, [path], [{"column": "secretary_id", "fragment": "neither an id (编号) nor a name (姓名)"}])


# ----------------------------------------------------------------------------- bad panel input, rejected


def bad(t: Path, edit, name="v.csv", encoding="gbk"):
    rows = bureau_rows(canon(2025))
    head = list(HEAD)
    edit(head, rows)
    return write_csv(t / name, [head, *rows], encoding)


REJECTED = [
    ("lost_precision_code", lambda h, r: r[2].__setitem__(0, "9.90101E+11"),
     [{"row": 4, "column": "village_code", "value": "9.90101E+11", "fragment": "last digits are lost",
       "zh": "末尾数字已经丢失"}]),
    # Since issue 9 a count may be empty (stored as missing, see test_missing_marker_in_a_count_is_stored_as_missing);
    # a required column may not.
    ("missing_marker_in_required_name", lambda h, r: r[1].__setitem__(col("村名称"), "—"),
     [{"row": 3, "column": "village_name", "value": "—", "fragment": "is empty, but this column must have a value",
       "header": "村名称"}]),
    ("not_a_number", lambda h, r: r[4].__setitem__(col("矛盾纠纷数（起）"), "约3"),
     [{"row": 6, "column": "disputes", "value": "约3", "fragment": "is not a number"}]),
    ("unknown_header_unit", lambda h, r: h.__setitem__(col("村集体收入（万元）"), "村集体收入（千美元）"),
     [{"column": "collective_income", "fragment": "'千美元' in the header is not a known money unit"}]),
    # Since issue 9 only the keys, the name and one outcome are required (an outcome left out: see
    # test_optional_columns_may_be_left_out).
    ("required_column_missing", lambda h, r: h.__setitem__(col("村名称"), "村庄"),
     [{"column": "village_name", "fragment": "the required column village_name is missing"}]),
    ("two_columns_one_meaning", lambda h, r: h.__setitem__(col("矛盾纠纷数（起）"), "刑事案件"),
     [{"row": 1, "column": "criminal_cases", "fragment": "several columns mean criminal_cases"}]),
    ("percent_above_100", lambda h, r: r[0].__setitem__(col("60岁以上党员占比（%）"), 135),
     [{"row": 2, "column": "share_members_over60", "value": "135", "fragment": "above the maximum 1"}]),
    ("percent_in_money_column", lambda h, r: r[0].__setitem__(col("引进资金（元）"), "15%"),
     [{"row": 2, "column": "funds_attracted", "value": "15%", "fragment": "is a percentage"}]),
    ("negative_count", lambda h, r: r[5].__setitem__(col("群体性上访（起）"), -1),
     [{"row": 7, "column": "petitions", "value": "-1", "fragment": "below the minimum 0"}]),
    ("unknown_terrain_word", lambda h, r: r[5].__setitem__(col("地形"), "沼泽"),
     [{"row": 7, "column": "terrain", "value": "沼泽", "fragment": "not one of the allowed values"}]),
    ("bad_year_cell", lambda h, r: r[3].__setitem__(col("年份"), "二〇二五"),
     [{"row": 5, "column": "year", "value": "二〇二五", "fragment": "is not a year"}]),
    ("duplicate_village", lambda h, r: r.append(list(r[0])),
     [{"row": 8, "column": "village_code, year", "fragment": "repeats the key of row 2"}]),
    ("village_disappears", lambda h, r: r.pop(3),
     [{"row": None, "column": "village_code", "value": CODES[3], "fragment": "not in this 2025 file",
       "zh": "对照表中也没有说明"}]),
    ("village_appears", lambda h, r: r[5].__setitem__(0, "990102001003"),
     [{"row": 7, "column": "village_code", "value": "990102001003", "fragment": "no crosswalk entry says where it",
       "zh": "对照表中也没有说明其来源"}]),
]


@pytest.mark.parametrize(("case", "edit", "expect"), REJECTED, ids=[c[0] for c in REJECTED])
def test_bad_panel_is_rejected(db, tmp_path, case, edit, expect):
    path = bad(tmp_path, edit)
    err = rejected(db, [path], [{"file": path.name, **e} for e in expect])
    assert "没有写入任何数据" in str(err)


def test_no_year_anywhere(db, tmp_path):
    rows = [[v for j, v in enumerate(r) if j != col("年份")] for r in [HEAD, *bureau_rows(canon(2025))]]
    path = write_csv(tmp_path / "村级统计.csv", rows)
    rejected(db, [path], [{"column": "year", "fragment": "no year column and its name has no year"}])


def test_year_option_disagrees_with_the_year_column(db, tmp_path):
    path = write_csv(tmp_path / "v.csv", [HEAD, *bureau_rows(canon(2025))])
    rejected(db, [path], [{"column": "year", "fragment": "holds 2025 but the year 2024 was given"}], year=2024)


def test_duplicate_village_across_sheets(db, tmp_path):
    body = bureau_rows(canon(2025))
    path = write_xlsx(tmp_path / "v.xlsx", {"东山县": [HEAD, *body[:4]], "西川县": [HEAD, *body[3:]]})
    rejected(db, [path], [{"row": 2, "sheet": "西川县", "column": "village_code, year",
                           "fragment": "repeats the key of row 5 of sheet '东山县'"}])


def test_unreadable_and_headerless_files(db, tmp_path):
    noise = tmp_path / "noise.csv"
    noise.write_bytes(b"\x80\x81\xff\xfe\x00garbage")
    nohead = write_csv(tmp_path / "nohead.csv", [["a", "b"], ["1", "2"]])
    rejected(db, [noise, nohead], [
        {"file": "noise.csv", "fragment": "neither UTF-8, GBK/GB18030 nor UTF-16"},
        {"file": "nohead.csv", "fragment": "no header row was found"},
    ])


def test_new_village_without_an_earlier_year_keeps_the_attribute_missing(db, tmp_path):
    """Issue 9: terrain is an optional covariate; a new village with no terrain is stored with it missing, said."""
    rows = bureau_rows(canon(2025, [*CODES, "990102001003"]))
    rows[6][col("地形")] = "—"
    path = write_csv(tmp_path / "v.csv", [HEAD, *rows])
    cw_rows = [["原代码", "新代码", "生效年份", "类型"], ["", "990102001003", "2025", "新设"]]
    cw = write_csv(tmp_path / "cw.csv", cw_rows)
    report = ingest([path], db, crosswalk=cw)
    got = store.read_panel(db, [2025]).set_index("village_code")
    assert pd.isna(got.loc["990102001003", "terrain"]) and got["terrain"].notna().sum() == 6
    assert "terrain: 1 empty cells (or missing markers) stored as missing (rows 8)" in str(report)


def test_broken_mapping_folder(db, tmp_path):
    folder = tmp_path / "mappings"
    shutil.copytree(MAP, folder)
    (folder / "postings.yaml").write_text("table: postings\ncolumns:\n  village_code: [村代码\n", encoding="utf-8")
    path = write_csv(tmp_path / "v.csv", [HEAD, *bureau_rows(canon(2025))])
    err = rejected(db, [path], [{"file": "postings.yaml", "fragment": "not valid YAML"}], mapping_dir=folder)
    assert err.problems[0].row is not None


# ----------------------------------------------------------------------------- warnings


def test_income_tenfold_is_a_warning_that_needs_accepting(db, tmp_path):
    rows = bureau_rows(canon(2025))
    rows[2][col("农民人均纯收入（元）")] = rows[2][col("农民人均纯收入（元）")] * 10  # a digit too many
    path = write_csv(tmp_path / "v.csv", [HEAD, *rows])
    err = rejected(db, [path], [{"row": 4, "column": "income_per_capita", "severity": "warning",
                                 "fragment": "times the village's 2024 value", "zh": "万元和元"}])
    assert not err.errors and "--accept-warnings" in str(err)
    report = ingest([path], db, accept_warnings=True)
    assert len(report.warnings) == 1 and "warnings accepted" in str(report)
    assert store.read_panel(db, [2025])["income_per_capita"].iloc[2] == rows[2][col("农民人均纯收入（元）")]
    h = store.history(db)
    assert h["warnings_accepted"].iloc[-1] == 1 and "warning accepted" in h["notes"].iloc[-1]


def test_population_halving_and_a_column_in_the_wrong_unit(db, tmp_path):
    rows = bureau_rows(canon(2025))
    rows[0][col("户籍人口（人）")] = 400
    for r in rows:  # 万元 values in a column headed 元: every village / 10,000
        r[col("引进资金（元）")] = r[col("引进资金（元）")] / 10_000
    path = write_csv(tmp_path / "v.csv", [HEAD, *rows])
    rejected(db, [path], [
        {"row": 2, "column": "population", "severity": "warning", "fragment": "0.499 times"},
        {"row": None, "column": "funds_attracted", "severity": "warning", "fragment": "typically 0.0001 times"},
    ])


def test_posting_moved_to_another_village_is_a_warning(db, tmp_path):
    rows = [["编号", "村代码", "派出单位", "单位类别", "到岗时间"]]
    rows.append(["S001", CODES[3], "市公安局", "政法", "2023-03-01"])
    path = write_xlsx(tmp_path / "l.xlsx", {"s": rows})
    rejected(db, [path], [{"row": 2, "column": "secretary_id", "severity": "warning",
                           "fragment": "is already in the store for village 990101001001"}])
    ingest([path], db, accept_warnings=True)
    assert store.read_postings(db).set_index("secretary_id").loc["S001", "village_code"] == CODES[3]


# ----------------------------------------------------------------------------- crosswalk


def test_merge_through_the_crosswalk(db, tmp_path):
    merged = [c for c in CODES if c != CODES[1]]  # village 2 merged into village 1 in 2025
    path = write_csv(tmp_path / "v.csv", [HEAD, *bureau_rows(canon(2025, merged))])
    rejected(db, [path], [{"value": CODES[1], "fragment": "not in this 2025 file"}])
    cw = write_csv(tmp_path / "村代码变更对照表.csv", [
        ["原代码", "新代码", "生效年份", "类型"],
        [CODES[1], CODES[0], "2025年", "合并"],
        [CODES[0], CODES[0], "2025", "合并"],
    ])
    report = ingest([path], db, crosswalk=cw)
    assert report.crosswalk_entries == 2
    assert report.villages_added == [] and report.villages_removed == []  # village 2 stays in 2023-2024
    stored = store.read_panel(db)
    assert CODES[1] not in set(stored.loc[stored["year"] == 2025, "village_code"])
    with store.open_store(db) as con:
        xw = con.execute("SELECT * FROM village_crosswalk ORDER BY old_code").fetchdf()
    assert xw["change_type"].tolist() == ["merge", "merge"]
    h = cwm.harmonise(stored, xw)
    assert CODES[1] not in set(h["village_code"])
    r2023 = h[(h["village_code"] == CODES[0]) & (h["year"] == 2023)].iloc[0]
    c = canon(2023).set_index("village_code")
    assert r2023["population"] == c.loc[CODES[0], "population"] + c.loc[CODES[1], "population"]
    w = c.loc[CODES[:2], "population"]
    assert r2023["income_per_capita"] == pytest.approx((c.loc[CODES[:2], "income_per_capita"] * w).sum() / w.sum())
    # The next year's file needs no crosswalk: the store has the entries and 2025 is the reference.
    ingest([write_csv(tmp_path / "v26.csv", [HEAD, *bureau_rows(canon(2026, merged))])], db)


def test_split_with_weights_and_crosswalk_errors(db, tmp_path):
    new = ["990102001011", "990102001012"]
    codes = [*CODES[:5], *new]  # village 6 split in two in 2025
    path = write_csv(tmp_path / "v.csv", [HEAD, *bureau_rows(canon(2025, codes))])
    cw_bad = write_csv(tmp_path / "cw_bad.csv", [
        ["原代码", "新代码", "生效年份", "类型", "权重"],
        [CODES[5], new[0], "2025", "拆分", "60%"],
        [CODES[5], new[1], "2025", "拆分", "30%"],
        [CODES[5], "123", "2025", "合体", ""],
    ])
    rejected(db, [path, cw_bad], [
        {"file": "cw_bad.csv", "row": 2, "column": "weight", "fragment": "add up to 0.9, not 1"},
        {"file": "cw_bad.csv", "row": 4, "column": "type", "fragment": "is not one of merge, split"},
    ], crosswalk=cw_bad)
    cw = write_csv(tmp_path / "cw.csv", [
        ["old_code", "new_code", "year_effective", "type", "weight"],
        [CODES[5], new[0], "2025", "split", "0.6"],
        [CODES[5], new[1], "2025", "split", "0.4"],
    ])
    report = ingest([path], db, crosswalk=cw)
    assert report.villages_added == new
    with store.open_store(db) as con:
        xw = con.execute("SELECT * FROM village_crosswalk").fetchdf()
    h = cwm.harmonise(store.read_panel(db), xw)
    old = canon(2024).set_index("village_code").loc[CODES[5]]
    parts = h[(h["year"] == 2024) & h["village_code"].isin(new)].set_index("village_code")
    assert parts.loc[new[0], "population"] == pytest.approx(0.6 * old["population"])
    assert parts.loc[new[1], "income_per_capita"] == old["income_per_capita"]
    assert CODES[5] not in set(h["village_code"])


# ----------------------------------------------------------------------------- dry run, crash


def test_dry_run_reports_years_and_villages(db, tmp_path):
    p25 = write_csv(tmp_path / "v25.csv", [HEAD, *bureau_rows(canon(2025, CODES[:5]))])
    fixed = canon(2024)
    fixed.loc[0, "disputes"] = 99
    rows24 = bureau_rows(fixed.iloc[:5])
    p24 = write_csv(tmp_path / "v24.csv", [HEAD, *rows24])
    before = sha(db)
    cw = write_csv(tmp_path / "cw.csv", [["原代码", "新代码", "生效年份", "类型"], [CODES[5], "", "2024", "撤销"]])
    report = ingest([p24, p25], db, dry_run=True, crosswalk=cw)
    assert sha(db) == before
    by = {(y.table, y.year): (y.inserted, y.replaced, y.unchanged, y.removed) for y in report.by_year}
    assert by == {("panel", 2024): (0, 1, 4, 1), ("panel", 2025): (5, 0, 0, 0)}
    assert report.villages_added == [] and report.villages_removed == []  # village 6 stays in 2023
    text = str(report)
    assert "panel 2024: insert 0, replace 1, leave unchanged 4, remove 1" in text
    assert text.startswith("Dry run: nothing was written.")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDY_INGEST_PAUSE")}
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def test_kill_9_during_a_bureau_ingest_leaves_store_intact(db, tmp_path):
    path = write_xlsx(tmp_path / "2025年村级统计.xlsx", {"村级统计": [HEAD, *bureau_rows(canon(2025))]})
    before, h0 = sha(db), store.content_hash(db)
    marker = tmp_path / "paused"
    code = (
        "from analysis.data.ingest import ingest_files; "
        f"ingest_files([{str(path)!r}], {str(db)!r}, mapping_dir={str(MAP)!r})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
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
        assert len(list(db.parent.glob(db.name + ".ingest-*.tmp"))) == 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert sha(db) == before and store.content_hash(db) == h0
    ingest([path], db)
    assert list(db.parent.glob(db.name + ".ingest-*")) == []
    pd.testing.assert_frame_equal(store.read_panel(db, [2025]), expected(2025))


# ----------------------------------------------------------------------------- the worked example


@pytest.fixture(scope="module")
def example(tmp_path_factory, city_store):
    from analysis.data.examples import example_city, write_examples

    base = tmp_path_factory.mktemp("example")
    files = write_examples(base / "examples")
    return base, files, example_city()


def test_worked_example_end_to_end(example, city_store, tmp_path):
    _base, files, city = example
    db = tmp_path / "study.duckdb"
    shutil.copyfile(city_store, db)
    report = ingest([files["panel_xlsx"], files["postings_xlsx"]], db)
    assert [f.inserted for f in report.files] == [3224, 300]
    want = schema.to_canonical(city.panel[city.panel["year"] == 2025], "panel")
    pd.testing.assert_frame_equal(store.read_panel(db, [2025]), want.sort_values("village_code").reset_index(drop=True))
    tr = derive_treatment(store.read_postings(db), 2018, 2025)
    assert (tr["cohort"] == 2025).sum() == 300
    assert tr["cohort"].value_counts().to_dict() == {2024: 1038, 2023: 420, 2025: 300}
    new = tr[tr["cohort"] == 2025].set_index("village_code")
    truth = city.treatment.set_index("village_code")
    assert (new["cadre_type"] == truth.loc[new.index, "cadre_type"]).all()
    assert (new["batch"] == "city-2025").all()
    text = str(report)
    assert "10 subtotal rows" in text and "header unit 万元" in text


def test_worked_example_csv_gives_the_same_store(example, city_store, tmp_path):
    _, files, _ = example
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    shutil.copyfile(city_store, a)
    shutil.copyfile(city_store, b)
    ingest([files["panel_xlsx"], files["postings_xlsx"]], a)
    ingest([files["panel_csv"], files["postings_xlsx"]], b)
    assert store.content_hash(a) == store.content_hash(b)


def test_worked_example_bad_file(example, city_store, tmp_path):
    _, files, _ = example
    db = tmp_path / "study.duckdb"
    shutil.copyfile(city_store, db)
    bad_copy = tmp_path / files["bad_csv"].name
    shutil.copyfile(files["bad_csv"], bad_copy)
    err = rejected(db, [bad_copy], [
        {"column": "village_code", "fragment": "last digits are lost"},
        {"column": "income_per_capita", "severity": "warning", "fragment": "万元/元"},
        {"column": "disputes", "value": "约3"},
        {"column": "village_code", "row": None, "fragment": "not in this 2025 file"},
    ])
    # Since issue 9 the '—' in a count is a missing value (stored as missing, noted), not an error: 8, not 9.
    assert len(err.errors) == 8 and len(err.warnings) == 1
    assert not any(p.column == "criminal_cases" for p in err.problems)


def _content(path: Path) -> object:
    """A file's content; for XLSX the uncompressed members (zlib builds may compress differently)."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as z:
            return {n: z.read(n) for n in sorted(z.namelist())}
    return path.read_bytes()


def test_committed_examples_match_the_generator(example):
    _, files, _ = example
    committed = REPO / "data" / "examples"
    for path in files.values():
        assert _content(committed / path.name) == _content(path), (
            f"data/examples/{path.name} is out of date: run `python -m analysis.data.examples`"
        )
    assert (committed / "README.md").is_file()


def test_examples_are_byte_deterministic(example, tmp_path):
    from analysis.data.examples import write_examples

    _, files, _ = example
    again = write_examples(tmp_path / "again")
    assert all(again[k].read_bytes() == files[k].read_bytes() for k in files)
    assert np.all([p.suffix in (".csv", ".xlsx") for p in again.values()])


def test_attributes_absent_from_the_file_and_the_store(tmp_path):
    """Issue 9: what the store has is carried forward; the villages it has not are stored missing, and said."""
    drop = [col(h) for h in ("距县城距离（公里）", "地形")]
    rows = [[v for j, v in enumerate(r) if j not in drop] for r in [HEAD, *bureau_rows(canon(2025))]]
    path = write_csv(tmp_path / "v.csv", rows)
    fresh = tmp_path / "fresh.duckdb"
    store.write_tables(fresh, panel=canon(2024, CODES[:2]))
    report = ingest([path], fresh, crosswalk=write_csv(tmp_path / "cw.csv", [["原代码", "新代码", "生效年份", "类型"],
                                                                             *[["", c, "2025", "新设"]
                                                                               for c in CODES[2:]]]))
    got = store.read_panel(fresh, [2025])
    assert got["distance_km"].notna().tolist() == [True, True, False, False, False, False]
    assert got["terrain"].notna().tolist() == [True, True, False, False, False, False]
    text = str(report)
    assert "distance_km: 2 missing values taken from the village's latest earlier stored year (2024; rows 2, 3)" in text
    assert "distance_km: not in the file; 4 values stored as missing (rows 4, 5, 6, 7)" in text


def test_more_than_a_thousand_problems_are_all_in_the_error_report(db, tmp_path, capsys):
    """Issue 9: every problem is in <file>.errors.csv / .xlsx, and the message says where."""
    from analysis import cli

    df = pd.concat([canon(2025)] * 200, ignore_index=True)  # 1,200 villages: six of the store, 1,194 new
    df["village_code"] = [*CODES, *(f"9901030{v:05d}" for v in range(1, 1195))]
    rows = bureau_rows(df)
    for r in rows:
        r[col("矛盾纠纷数（起）")] = "约3"
    path = write_csv(tmp_path / "2025年村级统计.csv", [HEAD, *rows])
    before, h0 = sha(db), store.content_hash(db)
    rc = cli.main(["ingest", str(path), "--store", str(db), "--mapping-dir", str(MAP)])
    err = capsys.readouterr().err
    assert rc == 2 and sha(db) == before and store.content_hash(db) == h0
    xlsx, csv_path = report_paths(path)
    assert f"the full list of every problem is in {csv_path}" in err
    rows_out = list(csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    n = int(err.splitlines()[0].split(": ")[1].split(" problems")[0])
    assert n > 1000 and len(rows_out) == 1 + n
    assert sum(r[5] == "disputes" for r in rows_out) == 1200
    assert openpyxl.load_workbook(xlsx, read_only=True).active.max_row == 1 + n


# ----------------------------------------------------------------------------- issue 9: no silent replacement


def study_cli(capsys, *args: str) -> tuple[int, str, str]:
    """``study ingest ...`` in this process, as a user types it."""
    from analysis import cli

    rc = cli.main(["ingest", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def store_2018_2025(example, city_store, tmp_path_factory) -> Path:
    """The default city (2018-2024) with the worked example's 2025 ingested: the store of the issue."""
    _, files, _ = example
    db = tmp_path_factory.mktemp("with2025") / "study.duckdb"
    shutil.copyfile(city_store, db)
    ingest([files["panel_xlsx"], files["postings_xlsx"]], db)
    return db


def test_a_2025_table_filed_as_2024_is_refused_and_replaced_only_when_asked(example, store_2018_2025, tmp_path,
                                                                            capsys):
    """The issue's case: the 2025 CSV copied to 2024年村级统计.csv went in with exit 0 and replaced 2024."""
    _, files, _ = example
    db = tmp_path / "study.duckdb"
    shutil.copyfile(store_2018_2025, db)
    misnamed = tmp_path / "2024年村级统计.csv"
    shutil.copyfile(files["panel_csv"], misnamed)
    before, h0 = sha(db), store.content_hash(db)
    old = store.read_panel(db)
    assert round(old.loc[old["year"] == 2024, "income_per_capita"].mean(), 1) == 3712.9
    args = [str(misnamed), "--store", str(db), "--mapping-dir", str(MAP)]
    refusal = ("the store already holds panel year 2024 (3,224 rows) and this file would replace it: 3,224 of "
               "3,224 stored rows change, 0 added, 0 removed")
    income = "income_per_capita: 3,224 values differ, mean 3,712.9 -> 4,121.4"
    copied = "warning: the values of 2024 are those of the stored year 2025 (perhaps the 2025 table filed as 2024)"

    # As a user runs it: a subprocess, exit 2, the year named, how many rows and values, by how much.
    proc = subprocess.run([sys.executable, "-m", "analysis", "ingest", *args], capture_output=True, text=True,
                          timeout=300, env=_env(), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    err = proc.stderr
    assert err.splitlines()[0] == ("Nothing was written to the store: 2 problems (1 warning, 1 stored year to "
                                   "replace) in 1 file.")
    assert refusal in err and income in err and copied in err and "Traceback" not in err
    assert "ingest again with --replace and, once the warnings are checked, --accept-warnings" in err
    assert sha(db) == before and store.content_hash(db) == h0

    # The dry run shows the same numbers (every column), writes nothing.
    rc, out, _ = study_cli(capsys, *args, "--dry-run", "--accept-warnings")
    assert rc == 0 and "stored panel year 2024 would be replaced, which needs --replace" in out
    assert "3,224 of 3,224 stored rows change, 0 added, 0 removed" in out and f"    - {income}" in out
    assert "distance_km: 5 missing values taken from the village's latest earlier stored year (2023;" in out
    assert sha(db) == before
    rc, _, err = study_cli(capsys, *args, "--dry-run")  # without accepting, the dry run lists both and refuses
    assert rc == 2 and refusal in err and copied in err and sha(db) == before

    # One flag is not enough: each refusal leaves the store as it was.
    rc, _, err = study_cli(capsys, *args, "--replace")
    assert rc == 2 and copied in err and refusal not in err and "Only warnings" in err
    assert sha(db) == before and store.content_hash(db) == h0
    rc, _, err = study_cli(capsys, *args, "--accept-warnings")
    assert rc == 2 and refusal in err and copied not in err
    assert sha(db) == before and store.content_hash(db) == h0

    # Both: replaced, said, and recorded in the history; distances come from 2023, never from 2025.
    rc, out, _ = study_cli(capsys, *args, "--replace", "--accept-warnings")
    assert rc == 0 and "stored panel year 2024 replaced (--replace): 3,224 of 3,224 stored rows change" in out
    new = store.read_panel(db)
    assert round(new.loc[new["year"] == 2024, "income_per_capita"].mean(), 1) == 4121.4
    raw = pd.read_csv(misnamed, encoding="gbk", dtype=str, keep_default_na=False)
    gaps = raw.loc[raw["距县城距离（公里）"].isin(["", "—", "-", "/"]) & raw["村代码"].str.match(r"\d"), "村代码"]
    gaps = gaps.str.removesuffix(".0")
    assert len(gaps) == 5
    by = new.set_index(["village_code", "year"])["distance_km"]
    assert [by[(c, 2024)] for c in gaps] == [by[(c, 2023)] for c in gaps]
    notes = store.history(db)["notes"].iloc[-1]
    assert "stored panel year 2024 replaced (--replace): 3,224 of 3,224 stored rows change" in notes
    assert "income_per_capita: 3,224 values differ, mean 3,712.9 -> 4,121.4" in notes
    store.restore(db, store.history(db)["ingest_id"].iloc[-1], when="before")
    assert store.content_hash(db) == h0


def test_a_year_from_the_file_name_that_the_file_contradicts_is_a_warning(db, tmp_path, capsys):
    head = [h for h in HEAD if h != "年份"]
    body = [[v for j, v in enumerate(r) if j != col("年份")] for r in bureau_rows(canon(2025))]
    titled = write_xlsx(tmp_path / "2026年村级统计.xlsx",
                        {"村级统计": [["北湖市2025年村级统计表"], ["填报日期：2026年1月5日"], head, *body]})
    column = write_csv(tmp_path / "2026年村级统计.csv", [[*head, "报告期"], *[[*r, "2025年"] for r in body]])
    for path, where in ((titled, "the title '北湖市2025年村级统计表'"),
                        (column, "the column '报告期', which holds 2025 in every row")):
        before, h0 = sha(db), store.content_hash(db)
        rc, _, err = study_cli(capsys, str(path), "--store", str(db), "--mapping-dir", str(MAP))
        assert rc == 2, err
        assert (f"warning: the year 2026 was taken from the file name, but the file says 2025 ({where}): perhaps "
                "the 2025 table under another name") in err
        assert "填报日期" not in err  # a date is not the year of the data
        assert sha(db) == before and store.content_hash(db) == h0
    rc, out, _ = study_cli(capsys, str(titled), "--store", str(db), "--mapping-dir", str(MAP), "--accept-warnings")
    assert rc == 0 and "1 warnings accepted" in out
    assert store.summary(db)["panel_years"] == [2023, 2024, 2026]
    # The same file with its true year in the name goes in without a word.
    good = shutil.copyfile(titled, tmp_path / "2025年村级统计.xlsx")
    rc, out, _ = study_cli(capsys, str(good), "--store", str(db), "--mapping-dir", str(MAP))
    assert rc == 0 and "warnings accepted" not in out


# ----------------------------------------------------------------------------- issue 9: only what the analysis needs


def test_a_year_without_party_member_columns_is_ingested(db, tmp_path, capsys):
    drop = [col("党员人数（人）"), col("60岁以上党员占比（%）")]
    rows = [[v for j, v in enumerate(r) if j not in drop] for r in [HEAD, *bureau_rows(canon(2025))]]
    path = write_csv(tmp_path / "2025年村级统计.csv", rows)
    rc, out, err = study_cli(capsys, str(path), "--store", str(db), "--mapping-dir", str(MAP))
    assert rc == 0, err
    assert "party_members: not in the file; stored as missing" in out
    assert "share_members_over60: not in the file; stored as missing" in out
    got = store.read_panel(db, [2025])
    assert got["party_members"].isna().all() and got["share_members_over60"].isna().all()
    want = expected(2025).drop(columns=["party_members", "share_members_over60"])
    pd.testing.assert_frame_equal(got.drop(columns=["party_members", "share_members_over60"]), want)


def test_optional_columns_may_be_left_out(db, tmp_path, capsys):
    head = list(HEAD)
    head[col("刑事案件数（起）")] = "刑案"  # a header the mappings do not know: the column is left out
    rows = bureau_rows(canon(2025))
    rows[1][col("群体性上访（起）")] = "—"
    path = write_csv(tmp_path / "v.csv", [head, *rows])
    rc, out, err = study_cli(capsys, str(path), "--store", str(db), "--mapping-dir", str(MAP))
    assert rc == 0, err
    assert "criminal_cases: not in the file; the column '刑案' may be it: if so, add it to the aliases" in out
    assert "criminal_cases: not in the file; stored as missing" in out
    assert ("petitions: 1 empty cells (or missing markers) stored as missing (rows 3); write 0 where there were "
            "none") in out
    got = store.read_panel(db, [2025])
    assert got["criminal_cases"].isna().all() and got["petitions"].isna().sum() == 1


def test_a_file_without_any_outcome_is_refused(db, tmp_path, capsys):
    keep = [col(h) for h in ("村代码", "村名称", "年份", "户籍人口（人）", "距县城距离（公里）")]
    rows = [[v for j, v in enumerate(r) if j in keep] for r in [HEAD, *bureau_rows(canon(2025))]]
    path = write_csv(tmp_path / "v.csv", rows)
    err = rejected(db, [path], [{"column": None, "fragment": "no outcome column holds a value"}])
    assert len(err.problems) == 1


# ----------------------------------------------------------------------------- issue 9: totals, formulas


def _with_county(rows: list[list[object]], county: str = "东山县") -> list[list[object]]:
    return [[county, *r] for r in rows]


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_total_rows_in_the_county_column_are_dropped(db, tmp_path, capsys, suffix):
    """Issue 9: 合计 in the county column (not the village column) was read as a village with ten problems."""
    head = ["县（市、区）", "乡镇", *HEAD]
    body = [["东山县", "城关镇", *r] for r in bureau_rows(canon(2025))]
    sums = ["", "", "", "2025年", 2_429_463] + [""] * (len(HEAD) - 3)
    rows = [head, *body[:3], ["东山县", "小 计", *sums[2:]], *body[3:], ["全 县", "", *sums[2:]],
            ["合计", "", *sums[2:]]]
    path = (write_xlsx(tmp_path / f"v{suffix}", {"村级统计": rows}) if suffix == ".xlsx"
            else write_csv(tmp_path / f"v{suffix}", rows))
    rc, out, err = study_cli(capsys, str(path), "--store", str(db), "--mapping-dir", str(MAP))
    assert rc == 0, err
    assert "3 subtotal rows (合计/小计) dropped: rows 5, 9, 10" in out
    pd.testing.assert_frame_equal(store.read_panel(db, [2025]), expected(2025))


def test_a_formula_without_a_saved_value_is_explained(db, tmp_path, capsys):
    """A workbook written by a program (openpyxl) holds formulas with no saved value: not "is empty"."""
    rows = bureau_rows(canon(2025))
    rows[2][col("农民人均纯收入（元）")] = "=1000*5"
    total = ["合计", "", "2025年"] + [f"=SUM({openpyxl.utils.get_column_letter(j + 1)}2:"
                                      f"{openpyxl.utils.get_column_letter(j + 1)}7)" for j in range(3, len(HEAD))]
    path = write_xlsx(tmp_path / "v.xlsx", {"村级统计": [HEAD, *rows, total]})
    assert openpyxl.load_workbook(path, data_only=True).active.cell(4, col("农民人均纯收入（元）") + 1).value is None
    err = rejected(db, [path], [{"row": 4, "column": "income_per_capita", "value": "=1000*5",
                                 "fragment": "holds a formula with no saved value", "zh": "没有保存计算结果的公式"}])
    assert len(err.problems) == 1  # the 合计 row of formulas is dropped, not reported
    (p,) = err.problems
    assert "open the file in Excel, WPS or LibreOffice and save it" in p.action and "paste them as values" in p.action
    assert "is empty" not in str(err)
    csv_rows = list(csv.reader(io.StringIO(report_paths(path)[1].read_text(encoding="utf-8-sig"))))
    assert csv_rows[1][6] == "'=1000*5"  # the formula is written as text in the CSV report
