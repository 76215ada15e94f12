"""The worked example: a 2025 year in the formats the bureaus send, made by the simulator.

:func:`write_examples` simulates the city one year further than the default store
(``simulate_city(last_year=2025, later_batches=((2025, 300),))``: a second batch of 300
first secretaries starts in spring 2025) and writes the 2025 data as the offices would
send them:

``2025年村级统计.xlsx``
    The statistics bureau's village table: a title row, a two-row header (group headers
    such as 经济发展 over the columns, vertically merged 村代码/村名称/年份 cells), units
    in the headers with money in 万元, years written ``2025年``, yes/no and terrain in
    Chinese words, a subtotal row per county (``东山县小计``) and a grand total (``合计``),
    full-width digits in a few cells, ``—`` for a few distances and terrains (unchanged
    attributes the bureau did not repeat) and footnote rows.
``2025年村级统计.csv``
    The same table as a GBK CSV with one header row and no year column (the year comes
    from the file name), money in 元 with thousands separators, shares as ``35.2%``, a
    few codes exported as ``990101001001.0`` and a grand-total row.
``2025年第二批第一书记名单.xlsx``
    The organisation department's list of the second batch: one row per first
    secretary with name, village, sending unit, unit category in Chinese
    (政法/农业/经济实力强的单位/党政机关), start dates as ``2025年3月15日``,
    ``2025.3.15``, Excel date cells and Excel serial numbers, batch ``第二批``.
``2025年村级统计_有误.csv``
    A copy of the CSV with mistakes for the walkthrough: codes that Excel turned into
    ``9.90101E+11``, one village's income typed in 万元, a count written ``约3``, a
    missing count, and a village left out.

Both village tables hold exactly the simulated 2025 panel; the list holds the
simulated second-batch postings (ids are made from the village, the name and the start
date, so they never collide with the stored ids). The README of ``data/examples``
walks through the ingest. Every file is byte-deterministic for a given seed.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paths
from analysis.data import schema
from analysis.data.atomic import write_atomic
from analysis.data.synthetic import simulate_city

EXAMPLES_DIR = paths.DATA_DIR / "examples"
"""Where the example files live (``data/examples``)."""
EXAMPLE_YEAR = 2025
SECOND_BATCH = 300
FILES = {
    "panel_xlsx": "2025年村级统计.xlsx",
    "panel_csv": "2025年村级统计.csv",
    "postings_xlsx": "2025年第二批第一书记名单.xlsx",
    "bad_csv": "2025年村级统计_有误.csv",
}
"""Key to file name of every example file."""

_FIXED_TIME = dt.datetime(2025, 3, 1, 9, 0, 0)
_UNIT_TYPE_ZH = {"law": "政法", "agriculture": "农业", "economic": "经济实力强的单位", "other": "党政机关"}
_TERRAIN_ZH = {"plain": "平原", "hill": "丘陵", "mountain": "山区"}
_SURNAMES = list("王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡")
_GIVEN = list("建国伟强军华明平刚勇涛斌超波辉鹏磊峰敏静丽燕红霞芳玲婷雪梅兰英秀文杰志宏海亮新春")

_PANEL_LAYOUT: list[tuple[str, str, str]] = [
    # (group header, column header, canonical column)
    ("", "村代码", "village_code"),
    ("", "村名称", "village_name"),
    ("", "年份", "year"),
    ("基本情况", "户籍人口（人）", "population"),
    ("经济发展", "农民人均纯收入（元）", "income_per_capita"),
    ("经济发展", "村集体收入（万元）", "collective_income"),
    ("经济发展", "引进项目数（个）", "projects"),
    ("经济发展", "引进资金（万元）", "funds_attracted"),
    ("经济发展", "修复道路（公里）", "roads_km"),
    ("基层组织", "班子调整", "team_reorganised"),
    ("基层组织", "入党积极分子（人）", "activists"),
    ("基层组织", "发展党员（人）", "new_members"),
    ("社会治理", "刑事案件数（起）", "criminal_cases"),
    ("社会治理", "矛盾纠纷数（起）", "disputes"),
    ("社会治理", "群体性上访（起）", "petitions"),
    ("村情", "距县城距离（公里）", "distance_km"),
    ("村情", "地形", "terrain"),
    ("村情", "特色产业", "distinctive_industry"),
    ("村情", "党员人数（人）", "party_members"),
    ("村情", "60岁以上党员占比（%）", "share_members_over60"),
]
_SUMMED = ("population", "projects", "activists", "new_members", "criminal_cases", "disputes", "petitions",
           "party_members")


def example_city(seed: int = 20230601):
    """Simulate the city of the example (default city extended to 2025, second batch of 300).

    Parameters
    ----------
    seed : int, default 20230601
        Seed of the simulation (the default city's seed).

    Returns
    -------
    analysis.data.synthetic.SyntheticCity
        ``simulate_city(seed, last_year=2025, later_batches=((2025, 300),))``.
    """
    return simulate_city(seed=seed, last_year=EXAMPLE_YEAR, later_batches=((EXAMPLE_YEAR, SECOND_BATCH),))


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "0" <= c <= "9" or c == "." else c for c in text)


def _county_names(panel: pd.DataFrame, postings: pd.DataFrame) -> dict[str, str]:
    """County code -> name, read from county-level sending units (e.g. 东山县公安局)."""
    names: dict[str, str] = {}
    units = postings.merge(panel[["village_code", "county_code"]].drop_duplicates(), on="village_code")
    for county, unit in zip(units["county_code"], units["sending_unit"], strict=True):
        m = re.match(r"^(.{2}[县区])", unit)
        if m and county not in names:
            names[county] = m.group(1)
    for i, county in enumerate(sorted(panel["county_code"].unique())):
        names.setdefault(county, f"第{i + 1}区县")
    return names


def _deterministic_xlsx(wb) -> bytes:
    """Save a workbook with fixed timestamps so the same content gives the same bytes."""
    wb.properties.created = _FIXED_TIME
    wb.properties.modified = _FIXED_TIME
    wb.properties.creator = "analysis.data.examples"
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                data = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rb"\g<1>2025-03-01T09:00:00Z\g<2>", data
                )
            zi = zipfile.ZipInfo(info.filename, date_time=(2025, 3, 1, 9, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, data)
    return out.getvalue()


def _panel_xlsx(p: pd.DataFrame, counties: dict[str, str], rng: np.random.Generator) -> bytes:
    import openpyxl
    from openpyxl.styles import Alignment, Font

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "村级统计"
    width = len(_PANEL_LAYOUT)
    ws.append([f"北湖市{EXAMPLE_YEAR}年村级基本情况统计表"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws.append(["填报单位：北湖市统计局"])
    groups = [g for g, _, _ in _PANEL_LAYOUT]
    heads = [h for _, h, _ in _PANEL_LAYOUT]
    ws.append([g if g else h for g, h in zip(groups, heads, strict=True)])
    ws.append(["" if not g else h for g, h in zip(groups, heads, strict=True)])
    for j, g in enumerate(groups, start=1):
        if not g:
            ws.merge_cells(start_row=3, start_column=j, end_row=4, end_column=j)
    j = 0
    while j < width:
        k = j
        while k + 1 < width and groups[k + 1] == groups[j] and groups[j]:
            k += 1
        if k > j:
            ws.merge_cells(start_row=3, start_column=j + 1, end_row=3, end_column=k + 1)
        j = k + 1
    for row in ws.iter_rows(min_row=3, max_row=4):
        for cell in row:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)

    n = len(p)
    fullwidth_rows = set(rng.choice(n, size=6, replace=False).tolist())
    dash_distance = set(rng.choice(n, size=8, replace=False).tolist())
    dash_terrain = set(rng.choice(n, size=4, replace=False).tolist())
    numeric_code = set(rng.choice(n, size=10, replace=False).tolist())

    def cells(i: int, r: dict) -> list[object]:
        out: list[object] = []
        for _, _, c in _PANEL_LAYOUT:
            v = r[c]
            if c == "village_code":
                out.append(int(v) if i in numeric_code else v)
            elif c == "year":
                out.append(f"{int(v)}年")
            elif c in ("collective_income", "funds_attracted"):
                out.append(round(float(v) / 10_000, 6))
            elif c == "team_reorganised":
                out.append("是" if int(v) else "否")
            elif c == "distinctive_industry":
                out.append("有" if int(v) else "无")
            elif c == "terrain":
                out.append("—" if i in dash_terrain else _TERRAIN_ZH[v])
            elif c == "distance_km":
                out.append("—" if i in dash_distance else float(v))
            elif c == "share_members_over60":
                out.append(round(float(v) * 100, 4))
            elif c == "population" and i in fullwidth_rows:
                out.append(_fullwidth(str(int(v))))
            elif c == "income_per_capita" and i in fullwidth_rows:
                out.append(_fullwidth(f"{float(v):.2f}"))
            elif isinstance(v, np.integer | int):
                out.append(int(v))
            elif isinstance(v, np.floating | float):
                out.append(float(v))
            else:
                out.append(v)
        return out

    records = p.to_dict("records")
    totals = {c: 0 for c in _SUMMED}
    for county, g in p.groupby("county_code", sort=True):
        sub = {c: 0 for c in _SUMMED}
        for i in g.index:
            ws.append(cells(i, records[i]))
            for c in _SUMMED:
                sub[c] += int(records[i][c])
        ws.append(["", f"{counties[county]}小计", ""] + [sub.get(c, "") for _, _, c in _PANEL_LAYOUT[3:]])
        for c in _SUMMED:
            totals[c] += sub[c]
    ws.append(["合计", "", ""] + [totals.get(c, "") for _, _, c in _PANEL_LAYOUT[3:]])
    ws.append([])
    ws.append(["注：1. 本表由各乡镇（街道）填报，县级统计局汇总；2. “—”表示与上年相同未重复填报。"])
    ws.append(["填表人：李明    审核人：王芳    填报日期：2026年2月28日"])
    for j, h in enumerate(heads, start=1):
        ws.column_dimensions[openpyxl.utils.get_column_letter(j)].width = max(10, len(h) * 2)
    ws.column_dimensions["A"].width = 16
    ws.freeze_panes = "D5"
    notes = wb.create_sheet("填表说明")
    notes.append(["说明"])
    notes.append(["本表统计口径为年末数；金额单位见各列表头。"])
    return _deterministic_xlsx(wb)


def bureau_csv_rows(p: pd.DataFrame, rng: np.random.Generator) -> tuple[list[str], list[list[str]]]:
    """Write one panel year as the statistics bureau's CSV would hold it (header and rows as text).

    One header row in Chinese, no year column, money in 元 with thousands separators,
    shares as ``35.2%``, terrain in Chinese, 12 codes exported as ``….0``, ``—`` for 5
    distances, and a grand-total (合计) row at the end.

    Parameters
    ----------
    p : pandas.DataFrame
        Canonical panel rows of one year (positional index).
    rng : numpy.random.Generator
        Chooses the cells written as a bureau would (draws 17 cells).

    Returns
    -------
    tuple of (list of str, list of list of str)
        The header and the rows.
    """
    header = [
        "村代码", "村名称", "户籍人口（人）", "农民人均纯收入（元）", "村集体收入（元）", "引进项目数（个）",
        "引进资金（元）", "修复道路（公里）", "班子调整（是=1）", "入党积极分子（人）", "发展党员（人）",
        "刑事案件数（起）", "矛盾纠纷数（起）", "群体性上访（起）", "距县城距离（公里）", "地形", "特色产业（有=1）",
        "党员人数（人）", "60岁以上党员占比",
    ]
    n = len(p)
    float_code = set(rng.choice(n, size=12, replace=False).tolist())
    dash_distance = set(rng.choice(n, size=5, replace=False).tolist())
    rows = []
    for i, r in enumerate(p.to_dict("records")):
        rows.append([
            f"{r['village_code']}.0" if i in float_code else r["village_code"],
            r["village_name"],
            str(int(r["population"])),
            f"{r['income_per_capita']:.2f}",
            f"{r['collective_income']:,.2f}",
            str(int(r["projects"])),
            f"{r['funds_attracted']:,.2f}",
            f"{r['roads_km']:.2f}",
            str(int(r["team_reorganised"])),
            str(int(r["activists"])),
            str(int(r["new_members"])),
            str(int(r["criminal_cases"])),
            str(int(r["disputes"])),
            str(int(r["petitions"])),
            "—" if i in dash_distance else f"{r['distance_km']:.1f}",
            _TERRAIN_ZH[r["terrain"]],
            str(int(r["distinctive_industry"])),
            str(int(r["party_members"])),
            f"{r['share_members_over60'] * 100:.1f}%",
        ])
    total = ["合计", "", str(int(p["population"].sum()))] + [""] * (len(header) - 3)
    rows.append(total)
    return header, rows


def gbk_csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    """Return a header and rows as a GBK-encoded CSV with CRLF line ends (as Chinese Excel saves it).

    Parameters
    ----------
    header : list of str
        Header cells.
    rows : list of list of str
        Data rows.

    Returns
    -------
    bytes
        The file's bytes.
    """
    import csv

    from analysis.core.csvsafe import neutralise_value

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([neutralise_value(h) for h in header])
    w.writerows([neutralise_value(v) for v in r] for r in rows)
    return buf.getvalue().encode("gbk")


def _postings_xlsx(post: pd.DataFrame, panel: pd.DataFrame, rng: np.random.Generator) -> bytes:
    import openpyxl
    from openpyxl.styles import Font

    names = dict(zip(panel["village_code"], panel["village_name"], strict=True))
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "第二批"
    ws.append([f"北湖市{EXAMPLE_YEAR}年第二批驻村第一书记名单"])
    ws.merge_cells("A1:J1")
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(["序号", "姓名", "派驻村", "村代码", "派出单位", "单位类别", "到岗时间", "离岗时间", "批次", "备注"])
    for cell in ws[2]:
        cell.font = Font(bold=True)
    post = post.sort_values(["start_date", "village_code"], kind="mergesort").reset_index(drop=True)
    style = rng.integers(0, 4, len(post))
    for i, r in post.iterrows():
        d = dt.date.fromisoformat(r["start_date"])
        if style[i] == 0:
            start: object = f"{d.year}年{d.month}月{d.day}日"
        elif style[i] == 1:
            start = f"{d.year}.{d.month}.{d.day}"
        elif style[i] == 2:
            start = dt.datetime(d.year, d.month, d.day)
        else:
            start = (d - dt.date(1899, 12, 30)).days
        name = _SURNAMES[rng.integers(len(_SURNAMES))] + "".join(
            _GIVEN[k] for k in rng.integers(0, len(_GIVEN), rng.integers(1, 3))
        )
        ws.append([
            i + 1, name, names[r["village_code"]], r["village_code"], r["sending_unit"],
            _UNIT_TYPE_ZH[r["unit_type"]], start, "", "第二批", "",
        ])
        if isinstance(start, dt.datetime):
            ws.cell(row=ws.max_row, column=7).number_format = "yyyy-mm-dd"
    for col, w in zip("ABCDEFGHIJ", (6, 10, 14, 16, 24, 18, 16, 12, 8, 8), strict=True):
        ws.column_dimensions[col].width = w
    return _deterministic_xlsx(wb)


def _bad_rows(header: list[str], rows: list[list[str]], p: pd.DataFrame, rng: np.random.Generator) -> list[list[str]]:
    bad = [list(r) for r in rows]
    n = len(p)
    pick = rng.choice(n, size=7, replace=False).tolist()
    for i in pick[:3]:  # Excel showed the codes in scientific notation and saved them so
        code = bad[i][0].removesuffix(".0")
        bad[i][0] = f"{int(code):.5E}".replace("E+", "E+")
    i = pick[3]  # income typed in 万元 instead of 元
    bad[i][3] = f"{float(p['income_per_capita'].iloc[i]) / 10_000:.4f}"
    bad[pick[4]][12] = "约3"  # disputes: not a number
    bad[pick[5]][11] = "—"  # criminal cases: missing marker in a required count
    del bad[pick[6]]  # a village left out
    return bad


def write_examples(out_dir: str | os.PathLike | None = None, seed: int = 20230601) -> dict[str, Path]:
    """Write the worked example's bureau-style files for 2025.

    Parameters
    ----------
    out_dir : str or path-like, optional
        Folder (created if missing; default :data:`EXAMPLES_DIR`, ``data/examples``).
        Other files in it (the README) are left alone.
    seed : int, default 20230601
        Seed of the simulation and of the messiness (which cells get full-width digits,
        dashes, ...). The default store is simulated with the same seed.

    Returns
    -------
    dict of str to pathlib.Path
        :data:`FILES` keys to the files written.

    Examples
    --------
    >>> files = write_examples("/tmp/examples")  # doctest: +SKIP
    >>> sorted(files)  # doctest: +SKIP
    ['bad_csv', 'panel_csv', 'panel_xlsx', 'postings_xlsx']
    """
    out = Path(out_dir) if out_dir is not None else EXAMPLES_DIR
    out.mkdir(parents=True, exist_ok=True)
    city = example_city(seed)
    panel = city.panel[city.panel["year"] == EXAMPLE_YEAR].reset_index(drop=True)
    panel = panel[schema.column_names("panel")]
    post = city.postings[city.postings["batch"] == f"city-{EXAMPLE_YEAR}"].reset_index(drop=True)
    rng = np.random.default_rng(np.random.SeedSequence([seed, EXAMPLE_YEAR]))
    counties = _county_names(panel, city.postings)
    header, rows = bureau_csv_rows(panel, rng)
    data = {
        "panel_xlsx": _panel_xlsx(panel, counties, rng),
        "panel_csv": gbk_csv_bytes(header, rows),
        "postings_xlsx": _postings_xlsx(post, panel, rng),
    }
    data["bad_csv"] = gbk_csv_bytes(header, _bad_rows(header, rows[:-1], panel, rng) + rows[-1:])
    written = {}
    for key, blob in data.items():
        path = out / FILES[key]
        write_atomic(path, blob)
        written[key] = path
    return written


def main() -> None:  # pragma: no cover - convenience entry point
    """Write the example files into ``data/examples`` (``python -m analysis.data.examples``)."""
    for path in write_examples().values():
        print(path)


if __name__ == "__main__":  # pragma: no cover
    main()
