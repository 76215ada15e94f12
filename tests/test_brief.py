"""Tests of the findings brief (analysis.report.brief).

The input is tests/fixtures/results_fixture.json, a results.json built by hand to the section
spec of notes/notebook_common.md (values of the size the default synthetic city gives); when
the real pipeline's output replaces it, test_fixture_follows_the_section_spec says where they
differ. Reference sentences and numbers below are worked out by hand from the fixture.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from analysis.report.brief import WORD_LIMIT, build_brief, compose_brief, word_count
from analysis.report.brief import fonts as F
from analysis.report.brief import text as T
from analysis.report.brief.content import describe_effect, say
from analysis.report.brief.html_writer import parse_xhtml, visible_text
from analysis.report.results_json import estimate_record

FIXTURE = Path(__file__).parent / "fixtures" / "results_fixture.json"
CHROMIUM = Path("/usr/bin/chromium")
FIGURES = ("02_forest", "03_event_income_per_capita", "03_event_new_members", "03_event_criminal_cases")
EFFECT_WORDS = {"zh": ("提高约", "增加约", "减少约", "下降约"), "en": ("rose by about", "fell by about")}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def load_fixture() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def make_figures(folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:
        fig, ax = plt.subplots(figsize=(4, 2.5))
        ax.plot([0, 1, 2], [0, 1, 0.5])
        ax.set_title(name)
        fig.savefig(folder / f"{name}.png", dpi=60, metadata={"Software": None})
        plt.close(fig)


def make_run(root: Path, results: dict, figures: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    if figures:
        make_figures(root / "figures")
    return root


def html_text(path: Path) -> str:
    return visible_text(path.read_text(encoding="utf-8"))


def docx_text(path: Path) -> str:
    import docx

    d = docx.Document(str(path))
    cells = [c.text for t in d.tables for r in t.rows for c in r.cells]
    return "\n".join([p.text for p in d.paragraphs] + cells)


def docx_brief_proper(path: Path, lang: str) -> str:
    """Text of the brief proper in a built docx: from the first numbered section heading to the annex label."""
    import docx

    d = docx.Document(str(path))
    body = d.element.body
    starts = ("一、",) if lang == "zh" else (T.ui("changes", lang), T.ui("method", lang))
    parts, on = [], False
    for el in body.iterchildren():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "p":
            text = "".join(t.text or "" for t in el.iter() if t.tag.endswith("}t"))
            if not on and text.startswith(starts):
                on = True
            if on and text == T.ui("annex_label", lang):
                break
            if on:
                parts.append(text)
        elif tag == "tbl" and on:
            parts.extend("".join(t.text or "" for t in tc.iter() if t.tag.endswith("}t"))
                         for tc in el.iter() if tc.tag.endswith("}tc"))
    return "\n".join(parts)


def expected_annex_rows(results: dict) -> int:
    """Every estimate record: main effects (CS, TWFE, PPML), subgroup levels, alternatives and spillovers."""
    me = results["main_effects"]["outcomes"]
    n = sum(1 + bool(b.get("twfe")) + bool(b.get("ppml_pct")) for b in me.values())
    n += sum(len(h["levels"]) for dim in results["heterogeneity"].values() if isinstance(dim, dict)
             for h in dim.values())
    n += sum(len(set(r["alternatives"]) - {"headline"}) + bool(r.get("spillover"))
             for r in results["robustness"].values())
    return n


def set_ci(record: dict, est: float, lo: float, hi: float) -> None:
    record.update({"estimate": est, "conf_low": lo, "conf_high": hi})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fixture's brief, built once in both languages, with charts."""
    run = make_run(tmp_path_factory.mktemp("brief") / "run", load_fixture())
    return run, build_brief(run, "both")


# --------------------------------------------------------------------------------------------------
# the fixture follows the section spec
# --------------------------------------------------------------------------------------------------

RECORD_KEYS = set(estimate_record({}))
OUTCOME_KEYS = {"family", "unit", "headline", "twfe", "untreated_mean", "pct_of_untreated_mean", "romano_wolf_p",
                "ppml_pct", "truth"}


def test_fixture_follows_the_section_spec():
    """Every key of the section spec is present (producers may add more: extras are allowed)."""
    from analysis.data import schema

    r = load_fixture()
    assert {"main_effects", "event_studies", "heterogeneity", "robustness", "simulation_check"} <= set(r)
    me = r["main_effects"]
    assert {"families", "options", "outcomes"} <= set(me)
    assert set(me["outcomes"]) == set(schema.OUTCOMES)
    assert {f: tuple(os) for f, os in me["families"].items()} == schema.OUTCOME_FAMILIES
    for o, b in me["outcomes"].items():
        assert OUTCOME_KEYS <= set(b), o
        assert RECORD_KEYS <= set(b["headline"]) and RECORD_KEYS <= set(b["twfe"])
        assert {"estimate", "conf_low", "conf_high"} <= set(b["pct_of_untreated_mean"])
        assert b["pct_of_untreated_mean"]["estimate"] == pytest.approx(b["headline"]["estimate"] / b["untreated_mean"])
        assert (b["ppml_pct"] is None) or RECORD_KEYS <= set(b["ppml_pct"])
        assert b["ppml_pct"] is None or o in schema.COUNT_OUTCOMES
        assert b["family"] in me["families"] and o in me["families"][b["family"]]
    for o, es in r["event_studies"].items():
        assert {"cs", "twfe", "sa", "bjs", "pretest_p", "bacon"} <= set(es), o
        assert all(RECORD_KEYS <= set(rec) for k in ("cs", "twfe", "sa", "bjs") for rec in es[k])
        assert {"twfe", "weights_by_type", "estimates_by_type"} <= set(es["bacon"])
    het = r["heterogeneity"]
    assert {"cadre_type", "cohort", "baseline_weakness"} <= set(het)
    for dim in ("cadre_type", "cohort", "baseline_weakness"):
        for h in het[dim].values():
            assert {"levels", "equality_p"} <= set(h)
            assert all(RECORD_KEYS <= set(rec) for rec in h["levels"].values())
    assert set(het["cadre_type"]["income_per_capita"]["levels"]) == set(schema.UNIT_TYPES)
    for rob in r["robustness"].values():
        assert {"honest", "pretrend_power", "wild", "randomisation", "alternatives"} <= set(rob)
        assert {"rm", "sd", "breakdown_rm", "breakdown_sd"} <= set(rob["honest"])
        assert all({"M", "lb", "ub"} <= set(x) for x in rob["honest"]["rm"] + rob["honest"]["sd"])
        assert {"slope_50", "slope_80"} <= set(rob["pretrend_power"])
        assert all(RECORD_KEYS <= set(rec) for rec in rob["alternatives"].values())
    assert {"available", "note", "estimates_vs_truth", "monte_carlo"} <= set(r["simulation_check"])


def test_claims_file_names_its_source_and_known_outcomes():
    from analysis.data import schema
    from analysis.report.brief.content import load_claims

    doc = load_claims()
    assert "first-secretary-report.zh.txt" in doc["source"]["file"] and doc["source"]["zh"]
    values = {c["id"]: c["value"] for c in doc["claims"]}
    # the report's figures (CONTEXT.md, "Outcomes the report claims")
    assert values == {"income": 3313, "projects": 598, "funds": 18_430_000, "roads": 1835, "teams": 668,
                      "activists": 8246, "new_members": 3877, "cases": None}
    assert all(c["outcome"] in schema.OUTCOMES for c in doc["claims"])


# --------------------------------------------------------------------------------------------------
# numbers and wording
# --------------------------------------------------------------------------------------------------


def test_number_formatting():
    assert T.fmt_number(3313, 0, "zh") == "3313" and T.fmt_number(3313, 0, "en") == "3,313"
    assert T.fmt_number(22568, 0, "zh") == "22,568"
    assert T.fmt_number(183.5, 0, "zh") == "184"  # half up, not to even
    assert T.fmt_number(-0.00001, 2, "en") == "0"
    assert T.fmt_money_exact(18_430_000, "zh") == "1843万元"
    assert T.fmt_money_exact(18_430_000, "en") == "18.43 million yuan"
    assert T.money_scale([5160.7, 3508.9, 6812.6], "zh") == (1, "元")
    assert T.money_scale([15160.7], "zh") == (10_000, "万元")
    assert T.fmt_pct(0.04529, "zh") == "4.5" and T.fmt_pct(-0.3614, "zh") == "36"
    assert T.fmt_date("2026-11-26", "zh") == "2026年11月26日" and T.fmt_date(None, "zh") is None
    assert [T.zh_ordinal(i) for i in (1, 5, 10, 12, 21)] == ["一", "五", "十", "十二", "二十一"]


def test_effect_sentence_matches_the_brief_spec():
    # The example of the issue: 140.2 yuan (96.8 to 183.5) on an untreated mean of 3260 yuan -> 4.3%.
    block = {"unit": "yuan per person per year", "untreated_mean": 3260.0,
             "headline": {"estimate": 140.2, "conf_low": 96.8, "conf_high": 183.5},
             "pct_of_untreated_mean": {"estimate": 140.2 / 3260, "conf_low": 96.8 / 3260, "conf_high": 183.5 / 3260}}
    zh = say("zh", "effect", describe_effect("income_per_capita", block, "zh"))
    assert zh == "农民人均纯收入提高约140元（95%置信区间：97元至184元），相当于未派驻村平均水平的4.3%。"
    en = say("en", "effect", describe_effect("income_per_capita", block, "en"))
    assert en == ("Rural per-capita net income rose by about 140 yuan (95% confidence interval: 97 to 184 yuan), "
                  "4.3% of the average in villages without a first secretary.")
    block["headline"].update(estimate=12.0, conf_low=-30.0, conf_high=54.0)
    assert say("zh", "effect", describe_effect("income_per_capita", block, "zh")) == \
        "农民人均纯收入未发现显著变化（95%置信区间：从减少30元到增加54元）。"


def test_twfe_sentence_names_forbidden_comparisons_when_they_weigh():
    from analysis.report.brief.content import describe_twfe

    r = load_fixture()
    block = r["main_effects"]["outcomes"]["income_per_capita"]
    e = describe_effect("income_per_capita", block, "zh")
    assert "以已派驻的村为对照" not in say("zh", "twfe", describe_twfe("income_per_capita", block, r, e, "zh"))
    r["event_studies"]["income_per_capita"]["bacon"]["weights_by_type"]["later vs earlier treated"] = 0.3
    assert say("zh", "twfe", describe_twfe("income_per_capita", block, r, e, "zh")) == (
        "以人均纯收入为例，简单的双向固定效应回归得到71元，只有本研究估计（170元）的42%，"
        "其中约30%的比较以已派驻的村为对照。")


def test_word_count_rule():
    assert word_count("人均纯收入提高约140元（95%置信区间）。", "zh") == 18  # 14 characters + 2 marks + "140" + "95%"
    assert word_count("Callaway–Sant'Anna 方法", "zh") == 3
    assert word_count("Income rose by about 170 yuan (95% CI).", "en") == 8
    assert word_count(" — ", "en") == 0


def test_fixed_wording_types_no_number_by_hand():
    """Wording without templates must not carry numbers (except the 95% of the interval labels)."""
    from analysis import i18n

    def brief_word(key: str) -> bool:
        form = key.rsplit(".", 1)[-1]
        return key.startswith(("brief.", "unit.")) or form.startswith("brief") or form == "control"

    keys = [k for k in i18n.keys() if brief_word(k)]
    # the brief's wording: headings, limits, outcomes, levels, dimensions, alternatives, control groups, covariates
    assert {"brief.ui.title", "brief.limit.default", "brief.limit.general", "brief.twfe_reason", "brief.synthetic_note",
            "outcome.income_per_capita.brief", "cadre.law.brief", "weakness.weak.brief", "dimension.cohort.brief",
            "spec.control_never.brief", "group.notyet.control", "covariate.terrain.brief", "family.income.brief",
            "brief.caption.forest"} <= set(keys)
    strings = [i18n.t(k, lang) for k in keys for lang in i18n.LANGS]
    offenders = [s for s in strings if re.search(r"\d", s.replace("95%", ""))]
    assert offenders == []


# --------------------------------------------------------------------------------------------------
# the brief follows results.json
# --------------------------------------------------------------------------------------------------


def test_key_messages_and_claims_of_the_fixture():
    zh = compose_brief(load_fixture(), "zh")
    assert 3 <= len(zh.key_messages) <= 5
    assert zh.key_messages[0] == ("经济发展：农民人均纯收入提高约170元（95%置信区间：127元至213元），"
                                  "相当于未派驻村平均水平的4.5%。")
    body = zh.body_text()
    assert "只要派驻后偏离平行趋势的幅度不超过派驻前最大偏离的1.9倍，这一结论仍然成立" in body
    assert "一旦超过派驻前最大偏离的0.45倍，结论就不再成立；5种替代估计中有4种结论相同" in body  # breakdown < 1
    assert "1.9倍，这一结论仍然成立；7种替代估计结论均相同" in body  # income: "headline" is no alternative
    assert "村集体收入未发现显著变化" in body and "群体性上访未发现显著变化" in body
    # claims: projects 0.1414 x 1458 = 206 of 598 (34%); funds 5160.7 x 1458 = 752万元 of 1843万元 (41%)
    assert "2023年引进项目598个（514个村）" in body and "约210个（110至300个）" in body and "34%" in body
    assert "2023年引进资金1843万元（995个村）" in body and "约750万元（510万元至990万元）" in body
    assert "农民人均纯收入3313元" in body and "“刑事发案率明显下降”" in body
    # TWFE for income: 71.46 is outside [126.6, 213.0]; 71.46 / 169.8 = 42%
    assert "简单的双向固定效应回归得到71元，只有本研究估计（170元）的42%" in body
    assert "2026年11月26日" == zh.date
    en = compose_brief(load_fixture(), "en")
    assert "Funds brought in: 18.43 million yuan (995 villages), 2023" in en.body_text()
    assert "no detectable change" in en.body_text()


def test_changing_a_value_changes_the_brief(built, tmp_path):
    _, paths = built
    r = load_fixture()
    h = r["main_effects"]["outcomes"]["income_per_capita"]
    set_ci(h["headline"], 250.3, 190.1, 310.5)
    h["pct_of_untreated_mean"]["estimate"] = 250.3 / h["untreated_mean"]
    new = build_brief(make_run(tmp_path / "run", r), "both")
    for lang, phrase in (("zh", "提高约250元（95%置信区间：190元至311元）"), ("en", "rose by about 250 yuan")):
        before, after = html_text(paths[f"{lang}_html"]), html_text(new[f"{lang}_html"])
        assert before != after
        assert phrase in after and phrase not in before
        assert docx_text(paths[f"{lang}_docx"]) != docx_text(new[f"{lang}_docx"])
        assert phrase in docx_text(new[f"{lang}_docx"])


def _insignificant(r: dict, outcomes) -> dict:
    for o in outcomes:
        b = r["main_effects"]["outcomes"][o]
        h = b["headline"]
        half = max(abs(h["estimate"]), abs(h["conf_high"] - h["conf_low"]) / 2)
        set_ci(h, h["estimate"] * 0.2, h["estimate"] * 0.2 - half, h["estimate"] * 0.2 + half)
        b["pct_of_untreated_mean"] = {k: h[k] / b["untreated_mean"] for k in ("estimate", "conf_low", "conf_high")}
    return r


def test_non_significant_result_gets_no_effect_wording(tmp_path):
    r = _insignificant(load_fixture(), ["income_per_capita"])
    paths = build_brief(make_run(tmp_path / "run", r), "both")
    zh, en = html_text(paths["zh_html"]), html_text(paths["en_html"])
    assert "农民人均纯收入未发现显著变化" in zh and "人均纯收入提高约" not in zh
    assert "Rural per-capita net income: no detectable change" in en and "income rose by about" not in en
    assert "人均纯收入未发现显著变化" in docx_text(paths["zh_docx"])
    brief = compose_brief(r, "zh")
    assert brief.key_messages[0].startswith("经济发展：农民人均纯收入未发现显著变化")
    assert "人均纯收入提高约" not in brief.full_text()
    income = next(b.text for b in brief.body if getattr(b, "text", "").startswith("人均纯收入"))
    assert income.startswith("人均纯收入未发现显著变化；7种替代估计中有7种发现显著变化。")
    assert "效果以" not in income  # no subgroup claims under a headline without an effect


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_all_insignificant_claims_no_effect_anywhere(lang):
    from analysis.data import schema

    brief = compose_brief(_insignificant(load_fixture(), schema.OUTCOMES), lang)
    text = brief.full_text()
    assert not any(w in text for w in EFFECT_WORDS[lang])
    assert text.count("未发现显著变化" if lang == "zh" else "no detectable change") >= 5
    assert ("均未得到证实" if lang == "zh" else "none of them is shown") in text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_no_p_values_in_the_main_text(lang):
    brief = compose_brief(load_fixture(), lang)
    assert not re.search(r"p值|p-value|p\s*[=<]", brief.full_text())
    assert any(re.fullmatch(r"<?0\.\d+", row[4]) for row in brief.annex.rows)


def test_caller_results_are_not_mutated():
    r = load_fixture()
    before = copy.deepcopy(r)
    compose_brief(r, "zh")
    compose_brief(r, "en")
    assert r == before


# --------------------------------------------------------------------------------------------------
# the documents
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_docx_opens_with_key_messages_and_annex(built, lang):
    import docx

    run, paths = built
    results = load_fixture()
    brief = compose_brief(results, lang, run / "figures")
    d = docx.Document(str(paths[f"{lang}_docx"]))
    texts = [p.text for p in d.paragraphs]
    start = texts.index(T.ui("key_messages", lang)) + 1
    assert len(brief.key_messages) >= 3
    for i, msg in enumerate(brief.key_messages):
        assert texts[start + i].endswith(msg)
    annex = d.tables[-1]
    assert tuple(c.text for c in annex.rows[0].cells) == brief.annex.header
    assert len(annex.rows) - 1 == expected_annex_rows(results) == len(brief.annex.rows)
    assert T.ui("annex_label", lang) in texts
    assert len(d.inline_shapes) == len(FIGURES)
    assert d.core_properties.created.year == 2026
    if lang == "zh":
        styles = d.styles.element.xml
        assert 'w:eastAsia="仿宋_GB2312"' in styles and 'w:eastAsia="方正小标宋简体"' in styles
        with zipfile.ZipFile(paths["zh_docx"]) as z:
            fonts = z.read("word/fontTable.xml").decode("utf-8")
        assert '<w:font w:name="仿宋_GB2312"><w:altName w:val="仿宋"/><w:charset w:val="86"/>' in fonts
        assert '<w:font w:name="方正小标宋简体"><w:altName w:val="宋体"/>' in fonts
        alts = re.findall(r'<w:altName w:val="([^"]*)"', fonts)
        assert alts and all(len(a) <= 31 and "," not in a for a in alts)  # what Word accepts ([MS-OE376])


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_html_is_well_formed_and_every_glyph_is_in_its_font(built, lang):
    _, paths = built
    html = paths[f"{lang}_html"].read_text(encoding="utf-8")
    root = parse_xhtml(html)  # strict XML: raises on any well-formedness error
    assert root.tag == "html" and root.get("lang") == ("zh-CN" if lang == "zh" else "en")
    assert root.find("head/meta").get("charset") == "utf-8"
    ids = [el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")]
    assert len(ids) == len(set(ids))
    assert len(root.findall(".//h1")) == 1
    assert 3 <= len(root.findall(".//section[@id='key-messages']//li")) <= 5
    assert len(root.findall(".//table[@class='annex']/tbody/tr")) == expected_annex_rows(load_fixture())
    imgs = root.findall(".//img")
    assert len(imgs) == len(FIGURES)
    for img in imgs:
        assert base64.b64decode(img.get("src").split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # every @font-face font covers every visible character (what a browser would draw with it)
    css = root.find("head/style").text
    faces = re.findall(r'@font-face \{ font-family: "([^"]+)"; src: url\("data:font/otf;base64,([^"]+)"\)', css)
    assert {f for f, _ in faces} == {F.WEB_SERIF, F.WEB_SANS}
    chars = {c for c in visible_text(html) if not c.isspace()}
    assert any("\u4e00" <= c <= "\u9fff" for c in chars) == (lang == "zh")
    for family, data in faces:
        missing = chars - F.cmap_chars(base64.b64decode(data))
        assert not missing, f"{family} lacks {''.join(sorted(missing))}"
        assert f'"{family}"' in css.split("@page", 1)[1]  # used in a font-family stack after the declarations


def test_missing_sections_fall_back_to_the_notebook_chart_then_to_a_note(tmp_path):
    """The brief draws its charts itself; a chart whose section is missing is the notebook's PNG, else a note."""
    import docx

    r = load_fixture()
    del r["event_studies"]["new_members"]
    run = make_run(tmp_path / "with", r)
    paths = build_brief(run, "en")
    drawn = sorted(p.name for p in (run / "brief" / "figures").glob("*.png"))
    assert drawn == ["02_forest.en.png", "03_event_criminal_cases.en.png", "03_event_income_per_capita.en.png"]
    srcs = [img.get("src") for img in parse_xhtml(paths["en_html"].read_text(encoding="utf-8")).iter("img")]
    notebook = (run / "figures" / "03_event_new_members.png").read_bytes()
    assert srcs[2] == "data:image/png;base64," + base64.b64encode(notebook).decode("ascii")
    assert srcs[0] == "data:image/png;base64," + base64.b64encode(
        (run / "brief" / "figures" / "02_forest.en.png").read_bytes()).decode("ascii")

    zh = compose_brief(r, "zh", None, charts={})  # no chart of its own and no notebook chart: a note
    notes = [b.caption for b in zh.figures if b.path is None]
    assert notes == ["（图表02_forest.png未生成）", "（图表03_event_income_per_capita.png未生成）",
                     "（图表03_event_new_members.png未生成）", "（图表03_event_criminal_cases.png未生成）"]
    paths = build_brief(make_run(tmp_path / "without", r, figures=False), "zh")
    assert "（图表03_event_new_members.png未生成）" in html_text(paths["zh_html"])
    assert len(docx.Document(str(paths["zh_docx"])).inline_shapes) == len(FIGURES) - 1


def test_only_one_language(tmp_path):
    paths = build_brief(make_run(tmp_path / "run", load_fixture(), figures=False), "en")
    assert sorted(paths) == ["en_docx", "en_html"] and not (tmp_path / "run" / "brief" / "brief.zh.html").exists()
    with pytest.raises(ValueError, match="lang"):
        build_brief(tmp_path / "run", "fr")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_word_limit_holds(built, lang):
    run, paths = built
    brief = compose_brief(load_fixture(), lang, run / "figures")
    assert brief.word_count() <= WORD_LIMIT
    # the built document, counted independently of the composer
    proper = docx_brief_proper(paths[f"{lang}_docx"], lang)
    assert word_count(proper, lang) == brief.word_count()
    assert "效果以" in brief.body_text() or lang == "en"  # nothing optional had to be dropped


def test_two_builds_are_identical(built, tmp_path):
    _, paths = built
    again = build_brief(make_run(tmp_path / "run", load_fixture()), "both")
    for key, path in paths.items():
        if key.endswith("html"):
            assert path.read_bytes() == again[key].read_bytes()
        else:
            with zipfile.ZipFile(path) as a, zipfile.ZipFile(again[key]) as b:
                assert a.read("word/document.xml") == b.read("word/document.xml")
                assert a.read("docProps/core.xml") == b.read("docProps/core.xml")
            assert path.read_bytes() == again[key].read_bytes()
    charts = sorted((paths["zh_html"].parent / "figures").glob("*.png"))
    assert len(charts) == 2 * len(FIGURES)
    for chart in charts:
        assert chart.read_bytes() == (again["zh_html"].parent / "figures" / chart.name).read_bytes()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed here; the screenshot check "
                    "runs where it is (the no-missing-glyph check above runs everywhere)")
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_chromium_renders_a_screenshot(built, tmp_path, lang):
    _, paths = built
    shot = tmp_path / f"{lang}.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1240,1754", f"--screenshot={shot}", paths[f"{lang}_html"].resolve().as_uri()]
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("L")
    assert img.getextrema()[0] < 100  # something dark (text) was drawn
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# the brief's own charts
# --------------------------------------------------------------------------------------------------

CJK = re.compile("[\u3400-\u9fff\uff01-\uff60]")


def svg_text(path: Path) -> str:
    """The text of a chart's SVG (the brief saves it with text kept as text)."""
    from lxml import etree

    root = etree.parse(str(path)).getroot()
    return "\n".join("".join(el.itertext()) for el in root.iter("{http://www.w3.org/2000/svg}text"))


def figure_texts(fig) -> list[str]:
    """Every text a matplotlib figure draws (labels, tick labels, legend, annotations)."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def test_charts_are_drawn_in_the_language_of_the_brief(built):
    run, paths = built
    figs = run / "brief" / "figures"
    en_forest, zh_forest = svg_text(figs / "02_forest.en.svg"), svg_text(figs / "02_forest.zh.svg")
    assert "Effect (% of the average in villages without a first secretary)" in en_forest
    assert "Simple comparison (TWFE)" in en_forest and "Per-capita income" in en_forest and "Economy" in en_forest
    assert "True effect in the simulated data" in en_forest  # the fixture holds the truth
    assert not CJK.search(en_forest)
    assert "效应（占未派驻村平均水平的百分比，%）" in zh_forest
    assert "人均纯收入" in zh_forest and "社会稳定" in zh_forest
    assert "+4.5%" in zh_forest and "+4.5%" in en_forest  # the headline as % of the untreated mean, 0.0453
    en_event = svg_text(figs / "03_event_income_per_capita.en.svg")
    zh_event = svg_text(figs / "03_event_income_per_capita.zh.svg")
    assert "Effect on per-capita income (yuan)" in en_event and "reference year" in en_event
    assert "posting starts" in en_event and "Sun–Abraham" in en_event and "Imputation (BJS)" in en_event
    assert not CJK.search(en_event)
    assert "对人均纯收入的效应（元）" in zh_event and "参照年" in zh_event and "派驻开始" in zh_event
    assert "对发展党员的效应（人，每村每年）" in svg_text(figs / "03_event_new_members.zh.svg")
    assert "Effect on criminal cases (cases per village a year)" in svg_text(figs / "03_event_criminal_cases.en.svg")
    # the documents embed these charts, not the notebooks' ones
    for lang in ("zh", "en"):
        srcs = [img.get("src") for img in parse_xhtml(paths[f"{lang}_html"].read_text(encoding="utf-8")).iter("img")]
        want = [figs / f"{stem}.{lang}.png" for stem in FIGURES]
        assert srcs == ["data:image/png;base64," + base64.b64encode(p.read_bytes()).decode("ascii") for p in want]


def test_chart_text_objects_and_units():
    from analysis.report.brief.charts import draw_event, draw_forest

    r = load_fixture()
    assert draw_event(r, "team_reorganised", "en") is None  # no event study of that outcome: nothing to draw
    r["event_studies"]["team_reorganised"] = copy.deepcopy(r["event_studies"]["new_members"])
    texts = figure_texts(draw_event(r, "team_reorganised", "en"))
    assert "Effect on team reorganisation (percentage points in a year)" in texts
    texts = figure_texts(draw_event(r, "team_reorganised", "zh"))
    assert "对班子调整的效应（个百分点，每年）" in texts
    assert draw_event(r, "no_such_outcome", "zh") is None
    zh = figure_texts(draw_forest(r, "zh"))
    assert {"经济发展", "基层组织建设", "社会稳定", "本研究估计（CS）", "简单比较（TWFE）"} <= set(zh)
    assert draw_forest({"main_effects": {"outcomes": {}}}, "en") is None


def test_charts_follow_results_json(tmp_path):
    from analysis.report.brief.charts import draw_charts, draw_event, draw_forest

    r = load_fixture()
    out = draw_charts(r, "en", tmp_path / "a", ["income_per_capita"])
    assert sorted(out) == ["02_forest", "03_event_income_per_capita"]
    again = draw_charts(r, "en", tmp_path / "b", ["income_per_capita"])
    assert all(out[k].read_bytes() == again[k].read_bytes() for k in out)  # deterministic
    h = r["main_effects"]["outcomes"]["income_per_capita"]
    h["pct_of_untreated_mean"].update(estimate=0.0771, conf_low=0.05, conf_high=0.1)
    r["event_studies"]["income_per_capita"]["cs"][-1]["estimate"] = 300.0
    moved = draw_charts(r, "en", tmp_path / "c", ["income_per_capita"])
    assert all(out[k].read_bytes() != moved[k].read_bytes() for k in out)
    assert "+7.7%" in figure_texts(draw_forest(r, "en")) and "+4.5%" not in figure_texts(draw_forest(r, "en"))
    # the true path only when results.json holds one
    label = "True path in the simulated data"
    assert label not in figure_texts(draw_event(r, "income_per_capita", "en"))
    r["event_studies"]["income_per_capita"]["truth"] = [{"event_time": e, "value": v} for e, v in ((0, 110), (1, 220))]
    assert label in figure_texts(draw_event(r, "income_per_capita", "en"))
    # and the truth tick of the forest chart only when main_effects has the truth
    for b in r["main_effects"]["outcomes"].values():
        b["truth"] = None
    assert "True effect in the simulated data" not in figure_texts(draw_forest(r, "en"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_charts_have_every_glyph(lang):
    import warnings

    from analysis.report.brief.charts import draw_event, draw_forest

    r = load_fixture()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for fig in (draw_forest(r, lang), draw_event(r, "income_per_capita", lang)):
            fig.savefig(io.BytesIO(), format="png", dpi=40)
    assert not [w for w in caught if "missing from" in str(w.message)]


# --------------------------------------------------------------------------------------------------
# what changed since an earlier run
# --------------------------------------------------------------------------------------------------

YEARS = range(2018, 2025)


def earlier_and_later() -> tuple[dict, dict]:
    """The fixture as an earlier run (2018-2024) and a later one: a new year 2025 with a new batch of 300
    villages, revised 2023 data, per-capita income up, petitions now distinguishable from zero."""
    a = load_fixture()
    a["data"]["year_hashes"] = {str(y): f"{y:x}{'ab' * 6}" for y in YEARS}
    b = copy.deepcopy(a)
    b["meta"]["date"] = "2027-03-02"
    d = b["data"]
    d["year_hashes"]["2025"] = "f" * 16
    d["year_hashes"]["2023"] = "0" * 16
    d["villages_by_cohort"]["2025"] = 300
    d["last_year"] = 2025
    inc = b["main_effects"]["outcomes"]["income_per_capita"]
    set_ci(inc["headline"], 250.3, 190.1, 310.5)
    inc["pct_of_untreated_mean"] = {k: inc["headline"][k] / inc["untreated_mean"]
                                    for k in ("estimate", "conf_low", "conf_high")}
    pet = b["main_effects"]["outcomes"]["petitions"]
    set_ci(pet["headline"], -0.041, -0.08, -0.003)
    return a, b


def test_changes_section_appears_only_with_an_earlier_run():
    a, b = earlier_and_later()
    assert T.ui("changes", "zh") not in compose_brief(b, "zh").body_text()
    zh = compose_brief(b, "zh", earlier=a)
    assert zh.body[0].text == "一、" + T.ui("changes", "zh") and zh.body[3].text.startswith("二、")
    intro, moves = zh.body[1].text, zh.body[2].text
    assert intro == ("与2026年11月26日的上一轮评估（2018—2024年数据）相比，本轮新增2025年数据；2023年数据经过修订；"
                     "新增2025年派驻第一书记的一批村（300个村）。")
    assert "人均纯收入由提高约170元（127元至213元）变为提高约250元（190元至311元）" in moves
    assert ("每村每年群体性上访由未发现显著变化（从减少0.055起到增加0.023起）变为减少约0.041起（0.003起至0.08起），"
            "结论改变：现在发现显著变化") in moves
    assert "发展党员" not in moves and "刑事案件" not in moves  # headline outcomes that did not move
    assert moves.endswith("。") and "另有" not in moves  # no other estimate moved
    en = compose_brief(b, "en", earlier=a)
    assert en.body[0].text == T.ui("changes", "en")
    assert en.body[1].text == ("Compared with the earlier run of 26 November 2026 (data for 2018–2024), this run has a "
                               "new year of data (2025); revised data for 2023; a new batch of 300 villages given a "
                               "first secretary in 2025.")
    assert ("per-capita income: from a rise of about 170 yuan (127 to 213) to a rise of about 250 yuan (190 to 311)"
            in en.body[2].text)
    assert "verdict changed: now a detectable change" in en.body[2].text
    # the key messages stay first
    assert en.key_messages == compose_brief(b, "en").key_messages


@pytest.mark.filterwarnings("ignore:zh brief has")
def test_changes_name_every_reason_of_study_diff():
    from analysis.report.brief.changes import describe_reasons, reason_kind
    from analysis.report.diff import reasons

    a, b = earlier_and_later()
    del b["data"]["year_hashes"]["2018"]
    b["data"]["villages_by_cohort"]["2024"] = 1050
    b["main_effects"]["options"]["headline"]["covariates"] = ["distance_km"]
    b["main_effects"]["options"]["truth"] = False  # follows from the data: not a setting
    why = reasons(a, b)
    assert "other" not in {reason_kind(w) for w in why}
    items = describe_reasons(a, b, "en")
    assert [i["kind"] for i in items] == ["new_years", "gone_years", "revised", "new_cohort", "cohort_size",
                                          "options"]
    text = compose_brief(b, "en", earlier=a).body[1].text
    assert "no data for 2018 any more" in text and "1,050 villages instead of 1,038 in the batch of 2024" in text
    assert "changed estimation settings (the headline specification)" in text
    zh = compose_brief(b, "zh", earlier=a).body[1].text
    assert "不再包含2018年数据" in zh and "2024年派驻的村由1038个变为1050个" in zh
    assert "估计设定有所调整（主要估计的设定）" in zh
    # a reason the brief does not know is counted, not lost
    from analysis.report.brief import changes

    orig = changes.REASON_KINDS
    try:
        changes.REASON_KINDS = tuple(k for k in orig if k[0] != "revised")
        assert {"kind": "other", "n": 1} in changes.describe_reasons(a, b, "en")
    finally:
        changes.REASON_KINDS = orig
    same = compose_brief(a, "zh", earlier=a)
    assert same.body[1].text.endswith("两轮所用数据和估计设定没有差异。")
    assert same.body[2].text == "各项主要估计均未改变。"


def test_changes_count_the_moves_they_do_not_list():
    a, b = earlier_and_later()
    for o in ("collective_income", "roads_km"):  # move, verdict unchanged: counted, not listed
        h = b["main_effects"]["outcomes"][o]["headline"]
        set_ci(h, h["estimate"] * 1.3, h["conf_low"] * 1.3, h["conf_high"] * 1.3)
    zh = compose_brief(b, "zh", earlier=a).body[2].text
    assert zh.endswith("另有2项指标的估计有所变化，但结论未变。") and "村集体收入由" not in zh
    en = compose_brief(b, "en", earlier=a).body[2].text
    assert en.endswith("2 other outcomes moved without a change of verdict.")


def test_changes_templates_type_no_number():
    """Every number of the section comes from the two results.json files: its macros hold no digit (but 95%)."""
    for lang in ("zh", "en"):
        src = (Path(T.__file__).parent / "templates" / f"sentences.{lang}.j2").read_text(encoding="utf-8")
        section = src[src.index("What changed since an earlier run"):]
        literal = re.sub(r"\{%.*?%\}|\{#.*?#\}|\{\{.*?\}\}", "", section, flags=re.S)  # words, not logic
        assert not re.search(r"\d", literal.replace("95%", ""))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_word_limit_holds_with_the_changes_section(lang):
    """The section counts toward the limit (it is part of the brief proper); optional sentences give way to it."""
    a, b = earlier_and_later()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        brief = compose_brief(b, lang, earlier=a)
    assert brief.word_count() <= WORD_LIMIT
    assert T.ui("changes", lang) in brief.body_text()  # counted: part of the text the limit applies to


def test_compare_through_build_and_cli(tmp_path, capsys):
    from analysis.cli import main

    a, b = earlier_and_later()
    outputs = tmp_path / "outputs"
    make_run(outputs / "run_a", a, figures=False)
    run_b = make_run(outputs / "run_b", b, figures=False)
    assert main(["brief", "--run", "run_b", "--compare", "run_a", "--lang", "en", "--outputs", str(outputs)]) == 0
    assert "brief.en.html" in capsys.readouterr().out
    html = html_text(run_b / "brief" / "brief.en.html")
    assert "What changed since the earlier run" in html and "a new batch of 300 villages" in html
    assert "from a rise of about 170 yuan (127 to 213) to a rise of about 250 yuan (190 to 311)" in html
    docx = docx_text(run_b / "brief" / "brief.en.docx")
    assert "a new year of data (2025)" in docx
    charts = {p.name.split(".")[0]: p for p in (run_b / "brief" / "figures").glob("*.en.png")}
    assert word_count(docx_brief_proper(run_b / "brief" / "brief.en.docx", "en"), "en") == \
        compose_brief(b, "en", charts=charts, earlier=a).word_count()
    assert main(["brief", "--run", "run_b", "--compare", "nowhere", "--outputs", str(outputs)]) == 2
    assert "nowhere" in capsys.readouterr().err
    make_run(outputs / "empty", {"data": a["data"]}, figures=False)
    assert main(["brief", "--run", "run_b", "--compare", "empty", "--lang", "en", "--outputs", str(outputs)]) == 2
    assert "earlier run's results.json has no main_effects" in capsys.readouterr().err


@pytest.mark.parametrize("compare", [False, True], ids=["alone", "with_changes"])
def test_both_languages_have_the_same_outline(compare):
    """Same sections, same parts of each paragraph, same figures, same number of key messages in zh and en."""
    import warnings

    a, b = earlier_and_later()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dropped for the word limit
        zh, en = (compose_brief(b, lang, earlier=a if compare else None) for lang in ("zh", "en"))
    assert zh.outline() == en.outline()
    assert ("heading", "1", "changes") in zh.outline() if compare else ("heading", "1", "changes") not in zh.outline()
    assert ("paragraph", "effect.income_per_capita+heterogeneity+limit") in zh.outline()


def test_a_long_brief_is_shortened_alike_in_both_languages_rather_than_cut(tmp_path, capsys):
    """The issue's case: the Chinese brief with a changes section runs over the limit. Its optional parts are said
    in their short forms, and the English brief takes the same step, so both keep every section; the user gets a
    plain sentence, not a Python warning."""
    import warnings

    from analysis.cli import main

    a, b = earlier_and_later()
    for o in ("projects", "roads_km"):  # two more verdicts reversed: a longer list of moves
        h = b["main_effects"]["outcomes"][o]["headline"]
        set_ci(h, -h["estimate"], -h["conf_high"], -h["conf_low"])
    zh = compose_brief(b, "zh", earlier=a)
    assert zh.step == 3 and zh.word_count() <= WORD_LIMIT  # shortened, nothing left out
    assert compose_brief(b, "en", earlier=a).step == 0  # English fits as it is
    en = compose_brief(b, "en", earlier=a, start=zh.step)
    assert zh.outline() == en.outline() == compose_brief(b, "zh", earlier=a, start=0).outline()
    assert ("paragraph", "effect.income_per_capita+heterogeneity+limit") in zh.outline()
    assert "效果以" in zh.body_text() and "By sending unit" in en.body_text()  # the short forms
    run, earlier = make_run(tmp_path / "later", b, figures=False), make_run(tmp_path / "earlier", a, figures=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["brief", "--run", str(run), "--compare", str(earlier)]) == 0
    out = capsys.readouterr().out
    assert "zh brief: optional sentences shortened (step" in out and "en brief: optional sentences shortened" in out
    assert "within 1500 words" in out
    assert html_text(run / "brief" / "brief.en.html").count("By sending unit") >= 1


def test_a_missing_chart_falls_back_to_the_notebook_figure_in_the_briefs_language(tmp_path):
    from analysis.report.brief.content import find_figure

    figures = tmp_path / "figures"
    for rel in ("02_forest.png", "en/02_forest.png", "zh/02_forest.png"):
        (figures / rel).parent.mkdir(parents=True, exist_ok=True)
        (figures / rel).write_bytes(b"png")
    assert find_figure(figures, "02_forest", "en") == figures / "en" / "02_forest.png"
    assert find_figure(figures, "02_forest", "zh") == figures / "zh" / "02_forest.png"
    (figures / "en" / "02_forest.png").unlink()
    assert find_figure(figures, "02_forest", "en") == figures / "02_forest.png"  # the run's language, as before
