"""What the notebooks show of a table (analysis.report.display) and the readable headings of the files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.report.display import VIEWS, format_number, readable_table
from analysis.report.tables import heading, to_latex, to_markdown

MAIN = pd.DataFrame({
    "family": ["income", "cases"], "outcome": ["income_per_capita", "criminal_cases"],
    "unit": ["yuan per person per year", "count per year"], "estimate": [169.801121, -0.0975218],
    "std_error": [22.0506, 0.0316], "conf_low": [126.582739, -0.159548], "conf_high": [213.019504, -0.0354952],
    "p_value": [1.355121e-14, 0.002059], "rw_p": [0.001, 0.009], "effect_pct": [4.52896, -36.1434],
    "twfe_estimate": [71.4617, -0.0446384], "truth": [147.28, np.nan], "n_units": [3224, 3224],
})


@pytest.mark.parametrize(("value", "column", "text"), [
    (169.801121, "estimate", "170"), (5160.730787, "estimate", "5,161"), (0.141442, "estimate", "0.141"),
    (-0.0975218, "estimate", "-0.0975"), (0.0, "estimate", "0"), (1.355121e-14, "p_value", "<0.001"),
    (0.12922, "rw_p", "0.129"), (0.4522, "share_treated", "45.2%"), (4.52896, "effect_pct", "+4.5"),
    (3224, "n_units", "3,224"), (np.int64(2023), "cohort", "2023"), (2023, "year", "2023"),
    (float("nan"), "estimate", ""), (None, "truth", ""), (True, "covered", "✓"), ("law", "level", "law"),
    (float("inf"), "breakdown", "∞"),
])
def test_numbers_are_formatted_for_reading(value, column, text):
    assert format_number(value, column) == text


def test_main_effects_show_the_columns_a_reader_needs_with_units_and_labels():
    before = MAIN.copy()
    tab = readable_table(MAIN, "02_main_effects", "en")
    pd.testing.assert_frame_equal(MAIN, before)
    assert len(tab.headings) == len([c for c in VIEWS["02_main_effects"] if c in MAIN]) < len(MAIN.columns)
    assert "Std. error" not in tab.headings and "Effect (% of untreated mean)" in tab.headings
    row = dict(zip(tab.headings, tab.rows[0], strict=True))
    assert row["Outcome"] == "Per-capita net income (yuan)" and row["Family"] == "Income and development"
    assert row["Estimate"] == "170" and row["p-value"] == "<0.001" and row["95% CI low"] == "127"
    assert dict(zip(tab.headings, tab.rows[1], strict=True))["True effect (synthetic city)"] == ""
    zh = readable_table(MAIN, "02_main_effects", "zh")
    assert zh.rows[0][1] == "农民人均纯收入（元）" and "p值" in zh.headings


def test_long_tables_are_cut_with_a_note_and_render_deterministically():
    long = pd.DataFrame({"outcome": ["disputes"] * 50, "event_time": range(-25, 25),
                         "estimate": np.linspace(-1, 1, 50)})
    tab = readable_table(long, "03_event_studies", "en", max_rows=10)
    assert len(tab.rows) == 10 and "10 of 50" in tab.note and "tables/03_event_studies.csv" in tab.note
    html = tab._repr_html_()
    assert html == readable_table(long, "03_event_studies", "en", max_rows=10)._repr_html_()
    assert "<th" in html and "0x" not in repr(tab) and "Event time (years)" in repr(tab)
    assert readable_table(long, "unknown", "en").headings == ("Outcome", "Event time (years)", "Estimate")


def test_file_headings_are_readable_and_carry_units():
    assert heading("conf_low", "en") == "95% CI low" and heading("effect_pct", "en") == "Effect (% of untreated mean)"
    assert heading("year", "zh") == "年份" and heading("2023", "en") == "2023" and heading("mystery", "en") == "mystery"
    assert heading("cohort_2023", "zh") == "2023年队列（村）"
    tex = to_latex(MAIN, "en")
    assert "conf\\_low" not in tex.splitlines()[2] and "95\\% CI low" in tex and tex.startswith("\\begin{tabular}{lll")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "income\\_per\\_capita & yuan per person per year & 169.801 &" in tex  # cells: the tidy data
    md = to_markdown(MAIN, "zh")
    assert md.splitlines()[0].startswith("| 指标类别 | 结果变量 | 单位 | 估计值 |")
