"""Tables and figures: deterministic files, Chinese labels rendered with a real CJK font."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib import font_manager
from matplotlib import pyplot as plt

from analysis.report.figures import CJK_SANS, font_files, save_figure, setup_fonts
from analysis.report.manifest import sha256_file, write_manifest
from analysis.report.tables import save_table, to_latex, to_markdown


def test_tables_are_written_in_three_formats_and_byte_identical(tmp_path):
    df = pd.DataFrame({"outcome": ["income_per_capita", "a|b"], "estimate": [1 / 3, np.nan], "n": [10, 20]})
    before = df.copy()
    p1 = save_table(df, "t", tmp_path / "a")
    p2 = save_table(df, "t", tmp_path / "b")
    pd.testing.assert_frame_equal(df, before)
    for k in ("csv", "md", "tex"):
        assert p1[k].read_bytes() == p2[k].read_bytes()
    assert p1["csv"].read_text().splitlines() == ["outcome,estimate,n", "income_per_capita,0.333333,10", "a|b,,20"]
    assert "| a\\|b |  | 20 |" in to_markdown(df)
    assert r"income\_per\_capita & 0.333333 & 10 \\" in to_latex(df)


def test_cjk_font_comes_from_the_lock_and_renders_without_missing_glyphs(tmp_path):
    assert [f.name for f in font_files()] == ["NotoSansSC-Regular.otf", "NotoSerifSC-Regular.otf"]
    assert setup_fonts() == CJK_SANS
    font = font_manager.FontProperties(family=CJK_SANS)
    assert "NotoSansSC" in font_manager.findfont(font, fallback_to_default=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)" for tofu boxes
        fig, ax = plt.subplots()
        ax.set_title("农民人均纯收入（元）· 第一书记")
        ax.plot([0, 1], [0, 1])
        paths = save_figure(fig, "cjk", tmp_path)
        plt.close(fig)
    assert paths["png"].stat().st_size > 1000
    svg = paths["svg"].read_text()
    assert "<svg" in svg


def test_missing_glyph_would_be_detected(tmp_path):
    # The check above is only meaningful if a missing glyph does raise: use a font without CJK.
    with warnings.catch_warnings(), pytest.raises(UserWarning, match="missing from font"):
        warnings.simplefilter("error")
        fig, ax = plt.subplots()
        ax.set_title("农民", fontfamily="DejaVu Sans")
        fig.savefig(tmp_path / "x.png")
    plt.close("all")


def test_figures_are_byte_identical_across_saves(tmp_path):
    setup_fonts()
    out = []
    for d in ("a", "b"):
        fig, ax = plt.subplots()
        ax.bar(["2023", "2024"], [400, 1458])
        ax.set_title("派驻进度")
        out.append(save_figure(fig, "f", tmp_path / d))
        plt.close(fig)
    assert out[0]["png"].read_bytes() == out[1]["png"].read_bytes()
    assert out[0]["svg"].read_bytes() == out[1]["svg"].read_bytes()


def test_manifest_hashes_every_output(tmp_path):
    run = tmp_path / "run1"
    (run / "tables").mkdir(parents=True)
    (run / "tables" / "x.csv").write_text("a\n1\n")
    store = tmp_path / "store.bin"
    store.write_bytes(b"abc")
    path = write_manifest(run, {"store": store}, {"00": {"seed": 1}}, 1, 2.34)
    doc = json.loads(path.read_text())
    assert doc["outputs"] == {"tables/x.csv": sha256_file(run / "tables" / "x.csv")}
    assert doc["inputs"]["store"]["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert doc["seed"] == 1 and doc["wall_time_seconds"] == 2.3
    assert doc["packages"]["pandas"] == pd.__version__


def test_stage_figures_draw_on_one_theme_that_leaves_no_trace(tmp_path):
    """The seaborn theme carries the CJK font inside the figures and is restored after them."""
    import matplotlib

    from analysis.report.figures import theme, theme_rc, themed

    setup_fonts()
    before = dict(matplotlib.rcParams)

    @themed
    def draw():
        import seaborn as sns

        fig, ax = plt.subplots()
        sns.histplot(x=[1, 2, 2, 3, 3, 3], ax=ax)
        ax.set_title("农民人均纯收入（元）")
        return fig

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing CJK glyph warns
        fig = draw()
        save_figure(fig, "themed", tmp_path)
    plt.close(fig)
    assert dict(matplotlib.rcParams) == before
    assert theme_rc()["font.sans-serif"][0] == CJK_SANS and fig.axes[0].get_title() == "农民人均纯收入（元）"
    with theme():
        assert matplotlib.rcParams["axes.grid"] and matplotlib.rcParams["font.sans-serif"][0] == CJK_SANS
    assert dict(matplotlib.rcParams) == before


def test_brief_charts_do_not_change_after_stage_figures(tmp_path):
    """Drawing the notebooks' (themed) figures first must not change a brief chart's bytes."""
    import json
    from pathlib import Path

    from analysis.report.brief.charts import draw_forest, save_chart
    from analysis.stages.data_audit import plot_rollout

    results = json.loads((Path(__file__).parent / "fixtures" / "results_fixture.json").read_text(encoding="utf-8"))
    first = save_chart(draw_forest(results, "zh"), "02_forest", "zh", tmp_path / "a").read_bytes()
    panel = pd.DataFrame({"village_code": ["1", "2", "1", "2"], "year": [2023, 2023, 2024, 2024],
                          "cohort": [2023, 0, 2023, 0], "treated": [1, 0, 1, 0]})
    plt.close(plot_rollout(panel, "zh"))
    again = save_chart(draw_forest(results, "zh"), "02_forest", "zh", tmp_path / "b").read_bytes()
    assert first == again
