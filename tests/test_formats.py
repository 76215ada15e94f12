"""Reading rules for bureau files (analysis.data.bureau): encodings, headers, units, codes, years, dates."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from analysis import paths
from analysis.data.bureau import MappingError, load_mappings, read_bureau
from analysis.data.bureau.postings import match_unit_type, secretary_id
from analysis.data.bureau.text import normalise_header, normalise_text, split_unit

M = load_mappings()


def csv_file(tmp_path: Path, name: str, rows: list[list[object]], encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    p = tmp_path / name
    p.write_bytes(buf.getvalue().encode(encoding))
    return p


def xlsx_file(tmp_path: Path, name: str, sheets: dict[str, list[list[object]]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    p = tmp_path / name
    wb.save(p)
    return p


HEAD = ["村代码", "村名称", "年份", "农民人均纯收入（元）", "村集体收入（万元）", "修复道路（米）"]


def read(path: Path, **kw):
    bt, problems = read_bureau(path, M, **kw)
    assert not problems, [str(p) for p in problems]
    return bt


def problems_of(bt) -> list[str]:
    return [f"{p.row}|{p.column}|{p.value}|{p.problem}" for p in bt.problems]


# ----------------------------------------------------------------------------- text and mappings


def test_normalise_and_split_unit():
    assert normalise_text("　１２，３４５．５ ") == "12,345.5"
    assert normalise_header("村集体收入\n（万元）*") == "村集体收入(万元)"
    assert split_unit("村集体收入(单位:万元)") == ("村集体收入", "万元")
    assert split_unit("年份") == ("年份", None)


def test_mappings_know_the_brief_headers():
    assert M.panel.match("行政区划代码") == ("village_code", None)
    assert M.panel.match("村代码") == ("village_code", None)
    assert M.panel.match("年份") == ("year", None)
    assert M.panel.match("农民人均纯收入（元）") == ("income_per_capita", "元")
    assert M.panel.match("村集体收入（万元）") == ("collective_income", "万元")
    assert M.panel.match("刑事案件数") == ("criminal_cases", None)
    assert M.panel.match("income_per_capita") == ("income_per_capita", None)  # canonical names always work
    assert M.postings.match("到岗时间") == ("start_date", None)


def _copy_mappings(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings"
    shutil.copytree(paths.MAPPINGS_DIR, folder)
    return folder


def test_alias_under_two_columns_is_refused(tmp_path):
    folder = _copy_mappings(tmp_path)
    text = (folder / "panel.yaml").read_text(encoding="utf-8")
    text = text.replace("aliases: [刑事案件数,", "aliases: [矛盾纠纷, 刑事案件数,")
    (folder / "panel.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_mappings(folder)
    p = info.value.problems[0]
    assert p.file == "panel.yaml" and "'矛盾纠纷' is listed under both criminal_cases and disputes" in p.problem
    assert p.problem_zh and p.action and p.action_zh


def test_broken_yaml_names_the_line(tmp_path):
    folder = _copy_mappings(tmp_path)
    lines = (folder / "units.yaml").read_text(encoding="utf-8").splitlines()
    lines[20] = "money: [unclosed"
    (folder / "units.yaml").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_mappings(folder)
    p = info.value.problems[0]
    assert p.file == "units.yaml" and p.row is not None and "not valid YAML" in p.problem
    assert "缩进" in p.action_zh


def test_unknown_unit_family_and_category_value_are_refused(tmp_path):
    folder = _copy_mappings(tmp_path)
    text = (folder / "panel.yaml").read_text(encoding="utf-8")
    text = text.replace("unit: length\n    default_unit: 公里\n  team", "unit: lenght\n    default_unit: 公里\n  team")
    text = text.replace("平原: plain", "平原: flat")
    (folder / "panel.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_mappings(folder)
    msgs = " | ".join(p.problem for p in info.value.problems)
    assert "unit family 'lenght' of roads_km" in msgs
    assert "'flat', which is not one of plain, hill, mountain" in msgs


# ----------------------------------------------------------------------------- encodings and layout


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-8"])
def test_csv_encodings(tmp_path, encoding):
    name = "北湖村" if encoding == "gbk" else "𫗧湖村"  # the second is outside GBK
    rows = [HEAD, ["990101001001", name, "2025", "4321.5", "1.5", "1200"]]
    bt = read(csv_file(tmp_path, "t.csv", rows, encoding))
    assert bt.values["village_name"].tolist() == [name]
    assert bt.values["collective_income"].tolist() == [15000.0]
    assert bt.values["roads_km"].tolist() == [1.2]
    expect_note = encoding.startswith("gb")
    assert any("GB18030/GBK" in n.text for n in bt.notes) == expect_note


def test_utf16_tab_separated(tmp_path):
    p = tmp_path / "unicode.txt.csv"
    body = "\t".join(HEAD) + "\r\n" + "\t".join(["990101001001", "甲村", "2025", "1", "2", "3"])
    p.write_bytes(body.encode("utf-16"))
    bt = read(p)
    assert bt.values["village_code"].tolist() == ["990101001001"]
    assert bt.values["collective_income"].tolist() == [20000.0]


def test_two_row_header_title_unit_row_subtotals_footnotes(tmp_path):
    rows = [
        ["北湖市2025年村级统计表"],
        ["填报单位：北湖市统计局"],
        ["村代码", "村名称", "年份", "经济发展", None, None],
        [None, None, None, "农民人均纯收入", "村集体收入", "修复道路"],
        ["甲", "乙", "丙", "1", "2", "3"],
        [None, None, None, "元", "万元", "米"],
        ["990101001001", "东村", "2025年", 4000, 1.25, 500],
        ["990101001002", "西村", "２０２５年", "４，５００．５", "０.５", "1,500"],
        [None, "东山县小计", None, 8500.5, 1.75, 2000],
        ["合计", None, None, 8500.5, 1.75, 2000],
        ["其中：脱贫村", None, None, 1, 1, 1],
        ["注：本表由乡镇填报。"],
        ["填表人：李明"],
    ]
    bt = read(xlsx_file(tmp_path, "t.xlsx", {"村级统计": rows, "说明": [["填表说明"], ["无"]]}))
    assert bt.rows.tolist() == [7, 8]
    assert bt.sheets.tolist() == ["村级统计", "村级统计"]
    assert bt.values["year"].tolist() == ["2025", "2025"]
    assert bt.values["income_per_capita"].tolist() == [4000.0, 4500.5]
    assert bt.values["collective_income"].tolist() == [12500.0, 5000.0]
    assert bt.values["roads_km"].tolist() == [0.5, 1.5]
    assert bt.headers["collective_income"] == "村集体收入（万元）"
    text = " ".join(n.text for n in bt.notes)
    assert "3 subtotal rows (合计/小计) dropped: rows 9, 10, 11" in text
    assert "2 footnote rows" in text
    assert "sheets without a recognisable header skipped: 说明" in text
    assert "full-width" in text


def test_sheets_are_stacked(tmp_path):
    a = [HEAD, ["990101001001", "东村", "2025", 1, 1, 1]]
    b = [HEAD, ["990102001001", "南村", "2025", 2, 2, 2], ["990102001002", "北村", "2025", 3, 3, 3]]
    bt = read(xlsx_file(tmp_path, "t.xlsx", {"东山县": a, "西川县": b}))
    assert bt.values["village_code"].tolist() == ["990101001001", "990102001001", "990102001002"]
    assert bt.sheets.tolist() == ["东山县", "西川县", "西川县"]
    assert bt.rows.tolist() == [2, 2, 3]


# ----------------------------------------------------------------------------- cells


def test_numbers_percent_units_in_cells_and_markers(tmp_path):
    head = ["村代码", "年份", "引进资金", "60岁以上党员占比", "户籍人口（万人）", "距县城距离（公里）", "地形"]
    head += ["班子调整", "特色产业"]
    rows = [
        head,
        ["990101001001", "2025", "3.5万元", "35%", "0.12", "—", "丘陵", "是", "无"],
        ["990101001002", "2025", "1,234,567", "0.4", "0.1", "/", "山区", "否", "有"],
        ["990101001003", "2025", "约3", "1.2%", "0.3", "无", "平原", "1", "0"],
    ]
    bt, _ = read_bureau(csv_file(tmp_path, "t.csv", rows), M)
    v = bt.values
    assert v["funds_attracted"].tolist()[:2] == [35000.0, 1234567.0]
    assert np.isnan(v["funds_attracted"].iloc[2])
    assert v["share_members_over60"].tolist() == [0.35, 0.4, 0.012]
    assert v["population"].tolist() == [1200.0, 1000.0, 3000.0]
    assert v["distance_km"].isna().all()  # missing markers
    assert v["terrain"].tolist() == ["hill", "mountain", "plain"]
    assert v["team_reorganised"].tolist() == [1.0, 0.0, 1.0]
    assert v["distinctive_industry"].tolist() == [0.0, 1.0, 0.0]  # 无 = no in a yes/no column
    bad = [p for p in bt.problems if p.value is not None]
    assert [f"{p.row}|{p.column}|{p.value}|{p.problem}" for p in bad] == ["4|funds_attracted|约3|is not a number"]
    assert bad[0].problem_zh == "不是数字"


def test_percent_in_a_non_share_column_and_unknown_header_unit(tmp_path):
    rows = [["村代码", "年份", "农民人均纯收入（千美元）", "村集体收入"], ["990101001001", "2025", "3", "12%"]]
    bt, _ = read_bureau(csv_file(tmp_path, "t.csv", rows), M)
    got = {p.column: p for p in bt.problems}
    assert "unit '千美元' in the header is not a known money unit" in got["income_per_capita"].problem
    assert "units.yaml" in got["income_per_capita"].action
    assert got["collective_income"].problem == "is a percentage, but this column is not a share"


def test_codes_float_sci_spaces(tmp_path):
    rows = [
        ["村代码", "年份"],
        ["990101001001.0", "2025"],
        ["9.90101001002E+11", "2025"],
        ["9.90101E+11", "2025"],
        ["9901 0100 1004", "2025"],
    ]
    bt, _ = read_bureau(csv_file(tmp_path, "t.csv", rows), M)
    assert bt.values["village_code"].tolist() == ["990101001001", "990101001002", "", "990101001004"]
    assert [x for x in problems_of(bt) if "|village_code|" in x] == [
        "4|village_code|9.90101E+11|is a code in scientific notation (as Excel shows long numbers): its last digits "
        "are lost and cannot be recovered"
    ]
    assert bt.reported["village_code"].tolist() == [False, False, True, False]
    notes = " ".join(n.text for n in bt.notes)
    assert "1 codes were written as numbers with '.0' (rows 2)" in notes
    assert "1 codes in scientific notation still had all their digits" in notes


def test_year_from_file_name_option_and_conflicts(tmp_path):
    rows = [["村代码", "户籍人口"], ["990101001001", "10"]]
    bt = read(csv_file(tmp_path, "2025年村级统计.csv", rows))
    assert bt.values["year"].tolist() == ["2025"]
    assert "taken from the file name" in " ".join(n.text for n in bt.notes)
    bt = read(csv_file(tmp_path, "村级统计.csv", rows), year=2024)
    assert bt.values["year"].tolist() == ["2024"]
    for name, why in (("村级统计.csv", "has no year"), ("2024-2025年村级统计.csv", "has several years (2024, 2025)")):
        bt, _ = read_bureau(csv_file(tmp_path, name, rows), M)
        p = bt.problems[0]
        assert p.column == "year" and why in p.problem and "--year" in p.action and "2025年村级统计.xlsx" in p.action_zh
    with_year = [["村代码", "年份"], ["990101001001", "2024年"]]
    bt, _ = read_bureau(csv_file(tmp_path, "y.csv", with_year), M, year=2025)
    assert "the year column holds 2024 but the year 2025 was given" in bt.problems[0].problem


def test_dates(tmp_path):
    head = ["村代码", "姓名", "派出单位", "单位类别", "到岗时间", "离岗时间"]
    rows = [
        head,
        ["990101001001", "张三", "市公安局", "政法", "2025年3月15日", "至今"],
        ["990101001002", "李四", "市农业农村局", "农业", "2025.3.5", ""],
        ["990101001003", "王五", "市财政局", "经济实力强的单位", "45731", "—"],
        ["990101001004", "赵六", "市委组织部", "党政机关", "20250316", "2025-12-31"],
        ["990101001005", "钱七", "市公安局", "政法", "2025年3月", ""],
        ["990101001006", "孙八", "市公安局", "政法", "2025年2月30日", ""],
        ["990101001007", "周九", "市公安局", "政法", "明年", ""],
    ]
    bt, _ = read_bureau(csv_file(tmp_path, "list.csv", rows), M)
    assert bt.table == "postings"
    assert bt.values["start_date"].tolist() == ["2025-03-15", "2025-03-05", "2025-03-15", "2025-03-16", "", "", ""]
    assert bt.values["end_date"].tolist()[:4] == ["", "", "", "2025-12-31"]
    got = sorted((p.row, p.value, p.problem.split(":")[0]) for p in bt.problems if p.column == "start_date")
    assert got == [
        (6, "2025年3月", "has no day"),
        (7, "2025年2月30日", "is not a valid calendar date"),
        (8, "明年", "is not a date"),
    ]
    assert bt.values["unit_type"].tolist()[:4] == ["law", "agriculture", "economic", "other"]
    assert all(s.startswith("FS-") and len(s) == 13 for s in bt.values["secretary_id"][:4])


def test_excel_date_cells_and_unit_type_from_unit_name(tmp_path):
    rows = [
        ["序号", "姓名", "村代码", "派出单位", "任职时间"],
        [1, "张三", "990101001001", "东山县人民检察院", dt.datetime(2025, 4, 1)],
        [2, "李四", "990101001002", "北湖市畜牧兽医局", 45748],
        [3, "王五", "990101001003", "北湖市某某中心", "2025-04-02"],
    ]
    bt, _ = read_bureau(xlsx_file(tmp_path, "l.xlsx", {"名单": rows}), M)
    assert bt.values["start_date"].tolist() == ["2025-04-01", "2025-04-01", "2025-04-02"]
    assert bt.values["unit_type"].tolist() == ["law", "agriculture", ""]
    p = next(p for p in bt.problems if p.column == "sending_unit")
    assert p.row == 4 and "does not tell the sending-unit type" in p.problem and "unit_types" in p.action_zh
    assert bt.values["batch"].tolist() == ["city-2025"] * 3  # default_batch by start year


def test_header_problems(tmp_path):
    rows = [["村代码", "行政区划代码", "年份", "人均收入"], ["990101001001", "990101001001", "2025", "1"]]
    bt, _ = read_bureau(csv_file(tmp_path, "t.csv", rows), M)
    dup = next(p for p in bt.problems if "several columns mean village_code" in p.problem)
    assert dup.row == 1 and "村代码" in dup.problem
    missing = {p.column for p in bt.problems if "required column" in p.problem}
    # Since issue 9 only the keys and the name are required; covariates and outcomes may be left out.
    assert missing == {"village_name"}
    assert "terrain" not in missing  # a carry_forward attribute: taken from the store by the ingest
    assert "data/mappings/panel.yaml" in next(p.action_zh for p in bt.problems if p.column == "village_name")


def test_no_header_and_unreadable_files(tmp_path):
    _, problems = read_bureau(csv_file(tmp_path, "t.csv", [["a", "b"], ["1", "2"]]), M)
    assert "no header row was found" in problems[0].problem and problems[0].problem_zh
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x80\x81abc\xff\xfe")
    _, problems = read_bureau(bad, M)
    assert "neither UTF-8, GBK/GB18030 nor UTF-16" in problems[0].problem


def test_match_unit_type():
    assert match_unit_type("公检法司", M.postings)[0] == "law"
    assert match_unit_type("水产", M.postings)[0] == "agriculture"
    assert match_unit_type("北湖市农村商业银行", M.postings)[0] == "economic"
    assert match_unit_type("部队", M.postings) == (None, [])
    assert match_unit_type("公安财政", M.postings) == (None, ["law", "economic"])


def test_secretary_id_is_stable():
    a = secretary_id("990101001001", "张三", "2025-03-15")
    assert a == secretary_id("990101001001", "张三", "2025-03-15")
    assert a != secretary_id("990101001001", "张三", "2025-03-16")
