"""The label catalogue (analysis.i18n): complete in both languages, every key used, the only home of labels.

The checks read the source of every module under ``src/analysis`` (its abstract syntax tree): a key
is *used* when a string literal of the code spells it, or an f-string matches it (its fields
standing for one dotted part each, ``f"outcome.{name}.label"``); an ingest message's ``problem``,
``action`` and ``note`` leaves are used when a literal spells the message (``"ingest.file.no_rows"``:
:func:`analysis.data.problems.message` reads both leaves). The ingest messages of ``src/analysis/data``
are keys of ``messages.yaml``. The "no label outside the catalogue" rules cover the data layer too;
the modules that hold Chinese data (the data dictionary, the bureau files' header words and the
regular expressions that read them, the example files) are listed with the reason, and a listed
module that no longer holds Chinese text must come off the list.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from analysis import i18n
from analysis.data import schema

SRC = Path(__file__).resolve().parents[1] / "src" / "analysis"
CATALOGUE_DIR = SRC / "i18n"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")

# Chinese text the code may hold that is not a label, with the reason.
CJK_ALLOWED: dict[str, str] = {
    "analysis.report.brief.fonts": "font family names (方正小标宋简体, 仿宋_GB2312, ...) of GB/T 9704",
    "analysis.report.brief.text": "number formatting: the numerals of zh_ordinal and the CJK ranges of word_count",
    "analysis.cli": "English help text quoting the Chinese terms of bureau files (万元, 亩)",
    # The data layer: Chinese data, and the patterns that read the bureaus' Chinese files.
    "analysis.data.schema": "the data dictionary: the Chinese header of every column",
    "analysis.data.examples": "the example files' names and contents",
    "analysis.data.canonical": "a regular expression for a unit in full-width parentheses in a header",
    "analysis.data.bureau.convert": "regular expressions reading years and dates written in Chinese (2021年度)",
    "analysis.data.bureau.header": "regular expressions for header rows (甲乙丙 numbering, 单位); full-width brackets",
    "analysis.data.bureau.rows": "regular expressions recognising subtotal and footnote rows (合计, 小计, 注)",
    "analysis.data.bureau.table": "regular expressions for years in file names; example headers quoted in a message",
    "analysis.data.bureau.text": "the bureaus' missing-value markers (无, 空, 暂无, 不详); the 单位 prefix of a unit",
    "analysis.data.bureau.postings": "the bureau header 姓名; the mappings' unit words joined with 、 in a message",
    "analysis.data.synthetic.calibration": "the fictional city's name (synthetic data)",
    "analysis.data.synthetic.design": "syllables of the synthetic village, county and person names",
    # Not yet in the catalogue (to move): labels of the error reports.
    "analysis.data.problems": "the Chinese severity words, the error report's column headings and a problem's "
                              "location in Chinese (文件, 工作表, 第N行)",
}
# Keys whose two languages legitimately use different fields.
DIFFERENT_FIELDS: frozenset[str] = frozenset({
    "brief.date",  # 2026年11月26日 / 26 November 2026
    "brief.numbering.section",  # 一、方法 / (no numbering in English)
    "brief.numbering.subsection",
    "robustness.finding.low_share",  # English plural of "township"
    # Ingest messages: the English names the columns and values concerned, the Chinese names them in words.
    "ingest.file.no_outcome.problem",  # English lists the outcome columns, Chinese gives examples
    "ingest.file.unreadable.problem",  # English adds the reason the system or the reader gives
    "ingest.file.not_csv.problem",
    "ingest.file.not_xlsx.problem",
    "ingest.file.not_parquet.problem",
    "ingest.value.required.action",  # English adds the column's description
    "ingest.did_you_mean",  # an English-only hint, with the closest allowed word
    "ingest.value.unit.hint",  # English-only: the unit of a bound
    "ingest.table.code_disagrees.problem",  # Chinese says 村代码 for the parent column
    "ingest.table.code_disagrees.action",
    "ingest.table.ends_before_start.problem",  # Chinese says 到岗日期 for the start column
    "ingest.table.ends_before_start.action",
    "ingest.table.duplicate_key.problem",  # English says "row" or "record"
    "ingest.table.duplicate_key.sheet",  # English-only: the sheet of the first row
    "ingest.header.missing_column.problem",  # English names the table
    "ingest.header.foreign_column.problem",
    "ingest.header.foreign_column.other_table_hint",  # English-only: the table the column belongs to
    "ingest.table.duplicate_across_files.problem",  # English says "row" or "record"
    # The framing of IngestError's message: lines that say it in English, then more briefly in Chinese.
    "ingest.report.more_in_report",  # English adds how many of each kind are shown and which file lists them
    "ingest.report.more_not_listed",  # English only, as the message always was
    "ingest.report.replace.text",  # English adds the Python arguments (replace=True, ...)
    "ingest.table.crosswalk_contradicts_store.problem",  # English shows the stored entry
    "ingest.warning.posting_again.problem",  # English names the village and the start date
    "ingest.bureau.words_to_levels.note",  # English lists the values
    "ingest.bureau.unknown_unit.problem",  # English names the unit family
    "ingest.bureau.unit_type_unknown.problem",  # English says which column was read
    "ingest.bureau.unit_type_unknown.action",  # English lists the words of each type
    "ingest.mapping.unknown_column.problem",  # English-only hint: the closest column
    "ingest.mapping.unknown_level.problem",  # English lists the levels
    "ingest.mapping.bad_factor.problem",  # English shows the factor written
    "ingest.mapping.wrong_table.problem",  # English shows the table written
    "ingest.bureau.header_not_found.problem",  # Chinese names the kinds of table looked for
    "ingest.bureau.header_not_found.action",  # English gives example headers
    "ingest.bureau.sheets_differ.problem",  # English names the kinds found
    "ingest.bureau.full_width.sheet",  # English-only: the sheet
    "ingest.bureau.units_differ.problem",  # English names the two units
    "ingest.bureau.footnote_rows.note",  # English lists the rows
    "ingest.bureau.no_year.several",  # English lists the years of the name
    "ingest.bureau.required_column_missing.guess_hint",  # English-only: the column that may be it
    "ingest.crosswalk.bad_type.problem",  # English lists the types
    "ingest.crosswalk.unexplained_new.problem",  # English says where the earlier year comes from
    "ingest.store.unusable.problem",  # English names the store and the error
    "ingest.input.same_file_twice.problem",  # English names the first mention
})
# The leaves a literal naming an ingest message uses (analysis.data.problems.message and .note).
MESSAGE_LEAVES = ("problem", "action", "note")
DATA = SRC / "data"
HELPERS = {"message": ("problem", "action"), "note": ("note",), "both": ("",), "text": ("",)}


def _modules(catalogue: bool = False) -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        if path.is_relative_to(CATALOGUE_DIR) and not catalogue:
            continue
        name = ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
        out.append((name, ast.parse(path.read_text(encoding="utf-8"))))
    return out


def _docstrings(tree: ast.Module) -> set[int]:
    """Ids of the constants that are docstrings (of modules, classes, functions, attributes)."""
    return {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}


def _patterns() -> tuple[set[str], list[re.Pattern]]:
    literals: set[str] = set()
    patterns: list[re.Pattern] = []
    for _, tree in _modules(catalogue=True):
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                literals.add(node.value)
            elif isinstance(node, ast.JoinedStr):
                # only f-strings that start with a namespace (``f"outcome.{name}.label"``) can build a key
                head = node.values[0] if node.values else None
                if isinstance(head, ast.Constant) and re.match(r"[a-z_]+\.", str(head.value)):
                    parts = [re.escape(v.value) if isinstance(v, ast.Constant) else r"[^.]+" for v in node.values]
                    patterns.append(re.compile("".join(parts)))
    return literals, patterns


def _fields(text: str) -> set[str]:
    return {f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_key_has_both_languages_and_the_same_fields():
    cat = i18n.catalogue()
    assert len(cat) > 300
    for key, texts in cat.items():
        assert set(texts) == set(i18n.LANGS), key
        assert all(isinstance(texts[lang], str) for lang in i18n.LANGS), key
        if key not in DIFFERENT_FIELDS:
            assert _fields(texts["zh"]) == _fields(texts["en"]), key


def test_keys_are_dotted_paths_and_missing_keys_fail_loudly():
    assert all(re.fullmatch(r"[\w\- ]+(\.[\w\- ]+)+", k) for k in i18n.keys())
    with pytest.raises(KeyError, match="not a key"):
        i18n.t("outcome.income_per_capita.lable", "en")
    with pytest.raises(ValueError, match="lang"):
        i18n.t("term.year", "fr")
    assert i18n.lookup("outcome.new_outcome.label", "zh", "new_outcome") == "new_outcome"
    assert i18n.t("data_audit.figure.distribution_title", "en", year=2023) == "Outcome distributions (2023)"


def _used(key: str, literals: set[str], patterns: list[re.Pattern]) -> bool:
    node, leaf = key.rsplit(".", 1)
    message = key.startswith("ingest.") and leaf in MESSAGE_LEAVES and node in literals
    return key in literals or message or any(p.fullmatch(key) for p in patterns)


def test_no_key_is_unused():
    literals, patterns = _patterns()
    unused = [k for k in i18n.keys() if not _used(k, literals, patterns)]
    assert unused == []


def _ingest_calls() -> list[tuple[str, str, str, set[str], str | None]]:
    """Calls of message/note/both/text in the data layer: (where, helper, key, keyword names, action_of)."""
    calls = []
    for path in sorted(DATA.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant | ast.IfExp)):
                continue
            helper = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if helper not in HELPERS:  # message(...), note(...), both(...), text(...), and a CellLog's log.note(...)
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and not str(arg.value).startswith("ingest."):
                continue  # another method called note (the literal check below still sees every ingest key)
            keys = [arg.body, arg.orelse] if isinstance(arg, ast.IfExp) else [arg]
            assert all(isinstance(k, ast.Constant) for k in keys), f"{path.name}:{node.lineno}: key is not a literal"
            names = {k.arg for k in node.keywords}
            assert None not in names, f"{path.name}:{node.lineno}: fields passed with **"
            action_of = next((k.value.value for k in node.keywords if k.arg == "action_of"), None)
            for k in keys:
                calls.append((f"{path.name}:{node.lineno}", helper, k.value, names - {"action_of"}, action_of))
    return calls


def test_every_ingest_message_of_the_data_layer_is_in_the_catalogue_with_its_fields():
    """Each ingest key the data layer names exists in both languages, and a call passes exactly the texts' fields."""
    cat = i18n.catalogue()
    calls = _ingest_calls()
    assert len(calls) > 20
    for where, helper, key, names, action_of in calls:
        assert key.startswith("ingest."), where
        leaves = [f"{key}.{leaf}" if leaf else key for leaf in HELPERS[helper]]
        if action_of:
            leaves[1] = f"{action_of}.action"
        for leaf in leaves:
            assert leaf in cat, f"{where}: {leaf} is not in the catalogue"
            assert all(cat[leaf][lang] is not None for lang in i18n.LANGS), leaf
            if leaf not in DIFFERENT_FIELDS:
                assert _fields(cat[leaf]["zh"]) == _fields(cat[leaf]["en"]), f"{where}: {leaf}"
        fields = set().union(*(_fields(cat[leaf][lang]) for leaf in leaves for lang in i18n.LANGS))
        assert names == fields, f"{where}: {key} is given {sorted(names)}, its texts use {sorted(fields)}"
    named = {key for *_, key, _, _ in calls} | {a for *_, a in calls if a}
    literals = {n.value for path in DATA.rglob("*.py") for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("ingest.")}
    assert literals <= named, sorted(literals - named)


def test_no_two_concepts_carry_the_same_words():
    """A second key with the same Chinese and English text is the same concept twice (a concept's forms may agree)."""
    seen: dict[tuple[str, str], str] = {}
    twins = []
    for key, texts in i18n.catalogue().items():
        pair = (texts["zh"], texts["en"])
        concept = key.rsplit(".", 1)[0]
        if pair in seen and seen[pair].rsplit(".", 1)[0] != concept:
            twins.append((seen[pair], key))
        seen.setdefault(pair, key)
    assert twins == []


def test_column_labels_in_chinese_are_the_data_dictionary_headers():
    for c in (*schema.OUTCOMES, *schema.COVARIATES):
        label_zh = next(col.label_zh for col in schema.PANEL_COLUMNS if col.name == c)
        assert i18n.column_label(c, "zh") == label_zh, c
        assert i18n.column_label(c, "en") != c


def test_no_module_outside_the_catalogue_holds_a_label_dict():
    offenders = []
    for module, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                texts = [v for k, v in zip(node.keys, node.values, strict=True)
                         if isinstance(k, ast.Constant) and k.value in i18n.LANGS]
                if set(i18n.LANGS) <= keys and all(isinstance(v, ast.Constant | ast.Tuple | ast.JoinedStr)
                                                   for v in texts):
                    offenders.append(f"{module}:{node.lineno}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Labels":
                offenders.append(f"{module}:{node.lineno}: Labels(...)")
    assert offenders == []


def _chinese_literals(tree: ast.Module) -> list[ast.Constant]:
    docs = _docstrings(tree)
    return [n for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs and CJK.search(n.value)]


def test_no_chinese_text_outside_the_catalogue():
    """Chinese text outside docstrings only in the modules of CJK_ALLOWED (the data layer included)."""
    modules = dict(_modules())
    assert any(m.startswith("analysis.data.") for m in modules)
    offenders = [f"{module}:{n.lineno}: {n.value[:30]!r}" for module, tree in modules.items()
                 if module not in CJK_ALLOWED for n in _chinese_literals(tree)]
    assert offenders == []
    # an allowance nobody needs any more comes off the list (the ingest report's texts moved to the catalogue)
    stale = [m for m in CJK_ALLOWED if m not in modules or not _chinese_literals(modules[m])]
    assert stale == []


def test_the_checks_detect_what_they_look_for():
    """The scanners above are only worth something if they fire on offending code."""
    tree = ast.parse('X = {"zh": "年份", "en": "Year"}\nY = f"outcome.{o}.label"\n')
    assert any(isinstance(n, ast.Dict) for n in ast.walk(tree))
    assert any(isinstance(n, ast.Constant) and CJK.search(str(n.value)) for n in ast.walk(tree))
    js = next(n for n in ast.walk(tree) if isinstance(n, ast.JoinedStr))
    pattern = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else r"[^.]+" for v in js.values)
    assert re.fullmatch(pattern, "outcome.roads_km.label") and not re.fullmatch(pattern, "outcome.roads_km.brief")
    assert _fields("{name}：{share:.1%}") == {"name", "share"}
