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
    start = "一、" if lang == "zh" else T.ui("method", lang)
    parts, on = [], False
    for el in body.iterchildren():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "p":
            text = "".join(t.text or "" for t in el.iter() if t.tag.endswith("}t"))
            if not on and text.startswith(start):
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
    strings: list[str] = []

    def walk(x):
        if isinstance(x, str):
            strings.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list | tuple):
            for v in x:
                walk(v)

    for name in ("OUTCOMES", "LIMITS", "LIMIT_DEFAULT", "FAMILIES", "LEVELS", "DIMENSIONS", "ALTERNATIVES", "UI",
                 "FIGURE_CAPTIONS", "TWFE_REASON", "TWFE_SAME", "LIMITS_GENERAL", "SYNTHETIC_NOTE", "CONTROL_GROUPS",
                 "COVARIATE_WORDS"):
        walk(getattr(T, name))
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


def test_missing_figures_give_a_note_not_a_failure(tmp_path):
    import docx

    paths = build_brief(make_run(tmp_path / "run", load_fixture(), figures=False), "both")
    zh = paths["zh_html"].read_text(encoding="utf-8")
    assert "<img" not in zh and "（图表02_forest.png未生成）" in visible_text(zh)
    assert "(Chart 02_forest.png not produced.)" in html_text(paths["en_html"])
    assert len(docx.Document(str(paths["zh_docx"])).inline_shapes) == 0


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
