"""Wording and number formatting of the findings brief, in Chinese and English.

Everything the brief says *without* a number lives here (headings, outcome names, units,
verbs, level labels); every sentence *with* a number is a macro in
``templates/sentences.<lang>.j2`` that receives numbers formatted by the functions below.

Number conventions
------------------
Chinese (``zh``), following GB/T 15835 (numbers in publications) as the source report
writes them: Arabic numerals; no digit grouping up to four digits (``3313元``,
``1458个村``), a comma every three digits from five digits on (``22,568``); yuan
amounts of 10,000 or more in 万元 (``1843万元``, ``0.52万元``); dates as
``2026年11月26日``.

English (``en``): comma grouping from four digits (``3,313 yuan``); amounts of one
million yuan or more in millions (``18.43 million yuan``); dates as ``26 November 2026``.

Precision: an effect and its interval are rounded to two significant digits of the
effect, but to whole units from 100 to 999 (``约170元（127元至213元）``); the interval
bounds to the same decimal place; totals to two significant digits; half-up rounding;
percentages to one decimal below 10% and to whole numbers above; levels (means) to
whole units from 100 on, else two significant digits. Trailing zeros after the decimal
point are dropped.

Word count
----------
:func:`word_count` follows the rule word processors use for Chinese (Word's 字数): every
Chinese character and every full-width punctuation mark counts one, and every run of
Latin letters or digits (``3313``, ``95%``, ``TWFE``) counts one. For English, every
whitespace-separated token with a letter or digit counts one.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

LANGS = ("zh", "en")

ZH_GROUP_MIN = 10_000
"""Chinese: smallest absolute value written with digit grouping (GB/T 15835 leaves four digits ungrouped)."""
EN_GROUP_MIN = 1_000
ZH_WAN = 10_000
"""Chinese: yuan amounts from this size on are written in 万元."""
EN_MILLION = 1_000_000
"""English: yuan amounts from this size on are written in millions."""

# --------------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------------


def check_lang(lang: str) -> str:
    """Validate a language code.

    Parameters
    ----------
    lang : str
        ``"zh"`` or ``"en"``.

    Returns
    -------
    str
        The code.

    Raises
    ------
    ValueError
        For any other value.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def sig_decimals(x: float, sig: int = 2) -> int:
    """Return the number of decimals that keeps ``sig`` significant digits of ``x``.

    Parameters
    ----------
    x : float
        Value.
    sig : int, default 2
        Significant digits.

    Returns
    -------
    int
        Decimal places; negative to round to tens, hundreds, ...

    Examples
    --------
    >>> sig_decimals(169.8), sig_decimals(0.0975), sig_decimals(5160.7)
    (-1, 3, -2)
    """
    if x == 0 or not math.isfinite(x):
        return 0
    return sig - 1 - math.floor(math.log10(abs(x)))


def effect_decimals(x: float) -> int:
    """Return the decimals an effect is shown with: two significant digits, but whole units from 100 to 999.

    Parameters
    ----------
    x : float
        The effect (in display units).

    Returns
    -------
    int
        Decimal places.

    Examples
    --------
    >>> effect_decimals(169.8), effect_decimals(0.0975), effect_decimals(5160.7)
    (0, 3, -2)
    """
    d = sig_decimals(x, 2)
    return d if abs(x) >= 1000 else max(d, 0)


def round_half_up(x: float, decimals: int) -> Decimal:
    """Round half away from zero to ``decimals`` places (negative: tens, hundreds, ...).

    Parameters
    ----------
    x : float
        Value.
    decimals : int
        Decimal places.

    Returns
    -------
    decimal.Decimal
        The rounded value (exact decimal, no binary artefacts).

    Examples
    --------
    >>> str(round_half_up(183.5, 0)), str(round_half_up(5160.7, -2))
    ('184', '5.2E+3')
    """
    return Decimal(repr(float(x))).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def fmt_number(x: float, decimals: int, lang: str, strip: bool = True) -> str:
    """Format a number to ``decimals`` places with the digit grouping of ``lang``.

    Trailing zeros after the decimal point are dropped; the sign is kept (ASCII hyphen).

    Parameters
    ----------
    x : float
        Value.
    decimals : int
        Decimal places (negative rounds to tens, hundreds, ...).
    lang : {"zh", "en"}
        Language.
    strip : bool, default True
        Drop trailing zeros after the decimal point.

    Returns
    -------
    str
        The formatted number.

    Examples
    --------
    >>> fmt_number(3313, 0, "zh"), fmt_number(3313, 0, "en"), fmt_number(22568, 0, "zh")
    ('3313', '3,313', '22,568')
    >>> fmt_number(0.0750, 3, "zh")
    '0.075'
    """
    check_lang(lang)
    d = round_half_up(x, decimals)
    places = max(decimals, 0)
    text = f"{abs(d):.{places}f}"
    if strip and "." in text:
        text = text.rstrip("0").rstrip(".")
    whole, _, frac = text.partition(".")
    group_min = ZH_GROUP_MIN if lang == "zh" else EN_GROUP_MIN
    if abs(d) >= group_min:
        whole = f"{int(whole):,}"
    text = whole + (f".{frac}" if frac else "")
    if d < 0 and text.strip("0.,") != "":
        text = "-" + text
    return text


def fmt_count(n: int | float, lang: str) -> str:
    """Format a whole number (villages, observations, a claimed total).

    Parameters
    ----------
    n : int or float
        Value; rounded to an integer.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        E.g. ``"1458"`` (zh) or ``"1,458"`` (en).
    """
    return fmt_number(float(n), 0, lang)


def fmt_level(x: float, lang: str) -> str:
    """Format a level (a mean): whole units from 100 on, else two significant digits.

    Parameters
    ----------
    x : float
        Value.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The formatted number.
    """
    decimals = 0 if abs(x) >= 100 else max(sig_decimals(x, 2), 0)
    return fmt_number(x, decimals, lang)


def fmt_pct(fraction: float, lang: str) -> str:
    """Format a share as a percentage (without the ``%`` sign, without the sign of the value).

    Parameters
    ----------
    fraction : float
        Share (0.045 for 4.5%).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        One decimal below 10%, whole numbers from 10% on.

    Examples
    --------
    >>> fmt_pct(0.0453, "zh"), fmt_pct(-0.3614, "en")
    ('4.5', '36')
    """
    v = abs(fraction) * 100
    return fmt_number(v, 1 if round_half_up(v, 1) < 10 else 0, lang)


def fmt_ratio(x: float, lang: str) -> str:
    """Format a multiple such as a HonestDiD breakdown value (``1.9``, ``0.45``).

    Parameters
    ----------
    x : float
        Value.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        Two significant digits, at most two decimals.
    """
    return fmt_number(x, min(max(sig_decimals(x, 2), 0), 2), lang)


def fmt_stat(x: float | None, lang: str) -> str:
    """Format an estimate for the annex table: three significant digits, ``-`` if missing.

    Parameters
    ----------
    x : float or None
        Value.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The formatted number.
    """
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    decimals = 0 if abs(x) >= 100 else sig_decimals(x, 3)
    if abs(round_half_up(x, decimals)) >= 100:  # 99.97 -> 100, not 100.0
        decimals = 0
    return fmt_number(x, decimals, lang, strip=False)


def fmt_p(p: float | None) -> str:
    """Format a p-value for the annex (``<0.001`` below one in a thousand).

    Parameters
    ----------
    p : float or None
        p-value.

    Returns
    -------
    str
        Three decimals, ``<0.001`` or ``-``.
    """
    if p is None or not math.isfinite(p):
        return "-"
    if p < 0.001:
        return "<0.001"
    return f"{round_half_up(p, 3):.3f}"


def money_scale(values: list[float], lang: str) -> tuple[float, str]:
    """Choose the unit of a group of yuan amounts (all written in the same unit).

    Parameters
    ----------
    values : list of float
        Amounts in yuan (e.g. an effect and its interval bounds).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    (float, str)
        Divisor and unit: ``(1, "元")`` or ``(10000, "万元")`` in Chinese, ``(1, "yuan")``
        or ``(1e6, "million yuan")`` in English.
    """
    top = max((abs(v) for v in values if v is not None), default=0.0)
    if lang == "zh":
        return (ZH_WAN, "万元") if top >= ZH_WAN else (1, "元")
    return (EN_MILLION, "million yuan") if top >= EN_MILLION else (1, "yuan")


def fmt_money_exact(yuan: float, lang: str) -> str:
    """Format a reported yuan amount as the report would (``1843万元``, ``18.43 million yuan``).

    Parameters
    ----------
    yuan : float
        Amount in yuan.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        Number and unit.
    """
    div, unit = money_scale([yuan], lang)
    v = yuan / div
    decimals = 0 if float(v).is_integer() else 2
    number = fmt_number(v, decimals, lang)
    return f"{number}{unit}" if lang == "zh" else f"{number} {unit}"


def fmt_date(iso: str | None, lang: str) -> str | None:
    """Write an ISO date the Chinese or English way.

    Parameters
    ----------
    iso : str or None
        ``YYYY-MM-DD`` (a longer ISO timestamp is cut to its date).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str or None
        ``2026年11月26日`` / ``26 November 2026``; None if no (valid) date is given.

    Examples
    --------
    >>> fmt_date("2026-11-26", "zh"), fmt_date("2026-11-26", "en")
    ('2026年11月26日', '26 November 2026')
    """
    if not iso:
        return None
    try:
        d = date.fromisoformat(str(iso)[:10])
    except ValueError:
        return None
    if lang == "zh":
        return f"{d.year}年{d.month}月{d.day}日"
    months = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")
    return f"{d.day} {months[d.month - 1]} {d.year}"


ZH_NUMERALS = "零一二三四五六七八九十"


def zh_ordinal(i: int) -> str:
    """Return the Chinese numeral for 1-99 (section numbering 一、二、...).

    Parameters
    ----------
    i : int
        Number, 1 to 99.

    Returns
    -------
    str
        E.g. ``"三"``, ``"十二"``.
    """
    if not 1 <= i <= 99:
        raise ValueError(f"zh_ordinal handles 1-99, got {i}")
    tens, ones = divmod(i, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else ZH_NUMERALS[tens] + "十")
    return head + (ZH_NUMERALS[ones] if ones else "")


# --------------------------------------------------------------------------------------------------
# Word count
# --------------------------------------------------------------------------------------------------

_CJK_CHAR = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"  # ideographs
    "\u3000-\u303f\uff01-\uff60\uffe0-\uffe6"  # CJK and full-width punctuation
    "\u2014\u2018\u2019\u201c\u201d\u2026\u00b7]"  # dashes, quotes, ellipsis, middle dot used in Chinese text
)
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+(?:[.,'’\-–%][A-Za-z0-9%]+)*%?")
_EN_TOKEN = re.compile(r"\S+")


def word_count(text: str, lang: str) -> int:
    """Count the words of a text by the rule of the brief's word limit.

    Parameters
    ----------
    text : str
        Text.
    lang : {"zh", "en"}
        ``zh``: every Chinese character and full-width punctuation mark counts one, every
        run of Latin letters or digits counts one. ``en``: every whitespace-separated token
        containing a letter or digit counts one.

    Returns
    -------
    int
        The count.

    Examples
    --------
    >>> word_count("人均纯收入提高约140元（95%置信区间）。", "zh")
    18
    >>> word_count("Income rose by about 170 yuan (95% CI).", "en")
    8
    """
    check_lang(lang)
    if lang == "zh":
        cjk = len(_CJK_CHAR.findall(text))
        rest = _CJK_CHAR.sub(" ", text)
        return cjk + len(_ALNUM_RUN.findall(rest))
    return sum(1 for t in _EN_TOKEN.findall(text) if any(c.isalnum() for c in t))


# --------------------------------------------------------------------------------------------------
# Wording without numbers
# --------------------------------------------------------------------------------------------------

OUTCOMES: dict[str, dict] = {
    # kind: money (yuan, 万元 when large), count, km, binary (percentage points)
    # zh: per = scope before the name; en: per = scope after the unit
    "income_per_capita": {"kind": "money", "good": "up",
                          "zh": {"name": "农民人均纯收入", "short": "人均纯收入", "per": "", "unit": "元"},
                          "en": {"name": "rural per-capita net income", "short": "per-capita income", "per": "",
                                 "unit": "yuan"}},
    "collective_income": {"kind": "money", "good": "up",
                          "zh": {"name": "村集体收入", "short": "村集体收入", "per": "每村每年", "unit": "元"},
                          "en": {"name": "village collective income", "short": "collective income",
                                 "per": " per village a year", "unit": "yuan"}},
    "projects": {"kind": "count", "good": "up",
                 "zh": {"name": "引进项目", "short": "引进项目", "per": "每村每年", "unit": "个"},
                 "en": {"name": "projects brought in", "short": "projects", "per": " per village a year",
                        "unit": "projects"}},
    "funds_attracted": {"kind": "money", "good": "up",
                        "zh": {"name": "引进资金", "short": "引进资金", "per": "每村每年", "unit": "元"},
                        "en": {"name": "funds brought in", "short": "funds", "per": " per village a year",
                               "unit": "yuan"}},
    "roads_km": {"kind": "count", "good": "up",
                 "zh": {"name": "修复道路", "short": "修复道路", "per": "每村每年", "unit": "公里"},
                 "en": {"name": "village roads repaired", "short": "roads", "per": " per village a year",
                        "unit": "km"}},
    "team_reorganised": {"kind": "binary", "good": "up",
                         "zh": {"name": "村级班子调整的概率", "short": "班子调整", "per": "每年", "unit": "个百分点"},
                         "en": {"name": "the chance that the village leadership team is reorganised",
                                "short": "team reorganisation", "per": " in a year", "unit": "percentage points"}},
    "activists": {"kind": "count", "good": "up",
                  "zh": {"name": "入党积极分子", "short": "入党积极分子", "per": "每村", "unit": "人"},
                  "en": {"name": "party activists", "short": "activists", "per": " per village",
                         "unit": "activists"}},
    "new_members": {"kind": "count", "good": "up",
                    "zh": {"name": "发展党员", "short": "发展党员", "per": "每村每年", "unit": "人"},
                    "en": {"name": "new party members", "short": "new members", "per": " per village a year",
                           "unit": "members"}},
    "criminal_cases": {"kind": "count", "good": "down",
                       "zh": {"name": "刑事案件", "short": "刑事案件", "per": "每村每年", "unit": "起"},
                       "en": {"name": "criminal cases", "short": "criminal cases", "per": " per village a year",
                              "unit": "cases"}},
    "disputes": {"kind": "count", "good": "down",
                 "zh": {"name": "矛盾纠纷", "short": "矛盾纠纷", "per": "每村每年", "unit": "起"},
                 "en": {"name": "disputes", "short": "disputes", "per": " per village a year", "unit": "disputes"}},
    "petitions": {"kind": "count", "good": "down",
                  "zh": {"name": "群体性上访", "short": "群体性上访", "per": "每村每年", "unit": "起"},
                  "en": {"name": "mass petitions", "short": "petitions", "per": " per village a year",
                         "unit": "petitions"}},
}
"""How each outcome is named and measured in the brief (kind, desired direction, names, units)."""

VERBS = {
    "zh": {"money": ("提高", "下降"), "binary": ("提高", "下降"), "count": ("增加", "减少")},
    "en": {"money": ("rose", "fell"), "binary": ("rose", "fell"), "count": ("rose", "fell")},
}


def outcome_words(outcome: str, lang: str, unit_hint: str | None = None) -> dict:
    """Return the brief's words for an outcome (name, scope, unit, kind, verbs).

    Unknown outcomes (a real pipeline may add some) get their label from
    :func:`analysis.report.labels.label` and the unit string of ``results.json``.

    Parameters
    ----------
    outcome : str
        Canonical outcome name.
    lang : {"zh", "en"}
        Language.
    unit_hint : str, optional
        The ``unit`` field of ``results.json`` (used for unknown outcomes).

    Returns
    -------
    dict
        ``name``, ``short``, ``per``, ``unit``, ``kind``, ``good``, ``up``, ``down``.
    """
    from analysis.report.labels import label

    check_lang(lang)
    spec = OUTCOMES.get(outcome)
    if spec is None:
        name = label(outcome, lang)
        kind = "money" if unit_hint and "yuan" in unit_hint else ("binary" if unit_hint == "0/1" else "count")
        unit = {"money": "元" if lang == "zh" else "yuan",
                "binary": "个百分点" if lang == "zh" else "percentage points"}.get(kind, "")
        spec = {"kind": kind, "good": "up", lang: {"name": name, "short": name, "per": "", "unit": unit}}
    words = dict(spec[lang])
    words["kind"] = spec["kind"]
    words["good"] = spec["good"]
    words["up"], words["down"] = VERBS[lang][spec["kind"]]
    return words


FAMILY_ORDER = ("income", "organisation", "cases")
FAMILIES = {
    "income": {"zh": "经济发展", "en": "Economy"},
    "organisation": {"zh": "基层组织建设", "en": "Party organisation"},
    "cases": {"zh": "社会稳定", "en": "Public order"},
}
HEADLINE_OUTCOMES = {"income": "income_per_capita", "organisation": "new_members", "cases": "criminal_cases"}
"""The headline outcome of each family (the first outcome of the family if absent)."""

LIMITS = {
    # what the data cannot tell, per headline outcome; None: the long-run sentence of the templates
    "income_per_capita": None,
    "new_members": {
        "zh": "党员人数增加能否转化为支部更强的战斗力，数据无法回答。",
        "en": "Whether more members make a stronger branch is beyond what the data can show.",
    },
    "criminal_cases": {
        "zh": "案件数是登记数：派驻政法干部也可能改变报案和立案做法，数据无法区分发案减少与登记变化。",
        "en": "Cases are recorded cases: cadres from the police and courts may also change what gets reported and "
              "filed, which the data cannot tell apart from less crime.",
    },
}
LIMIT_DEFAULT = {
    "zh": "数据无法区分第一书记本人的作用与派出单位带来的资源。",
    "en": "The data cannot separate the first secretary's own work from the resources the sending unit brings.",
}

LEVELS = {
    "cadre_type": {
        "law": {"zh": "政法部门", "en": "police, courts and justice"},
        "agriculture": {"zh": "农业部门", "en": "agriculture"},
        "economic": {"zh": "经济实力强的单位", "en": "financially strong units"},
        "other": {"zh": "其他党政机关", "en": "other offices"},
    },
    "baseline_weakness": {
        "weak": {"zh": "基础较弱", "en": "weaker"},
        "strong": {"zh": "基础较好", "en": "stronger"},
        "low": {"zh": "基线较低", "en": "lower baseline"},
        "high": {"zh": "基线较高", "en": "higher baseline"},
    },
}
DIMENSIONS = {
    "cadre_type": {"zh": "派出单位", "en": "sending unit"},
    "cohort": {"zh": "派驻年份", "en": "year posted"},
    "cohort_e0": {"zh": "派驻年份（首年效应）", "en": "year posted (first-year effect)"},
    "baseline_weakness": {"zh": "村基础", "en": "village baseline"},
}
ALTERNATIVES = {
    "headline": {"zh": "主设定", "en": "headline specification"},
    "control_never": {"zh": "仅以从未派驻的村为对照", "en": "never-treated villages as controls"},
    "control_notyet": {"zh": "以尚未派驻的村为对照", "en": "not-yet-treated villages as controls"},
    "anticipation_0": {"zh": "到任当年作基期", "en": "the arrival year as base year"},
    "excluding_pilot": {"zh": "剔除试点区县", "en": "without the pilot district"},
    "unbalanced_5pct": {"zh": "随机删去部分村-年", "en": "some village-years dropped at random"},
    "cluster_county": {"zh": "按区县聚类", "en": "clustered by county"},
    "cluster_township": {"zh": "按乡镇聚类", "en": "clustered by township"},
    "controls_low_share_townships": {"zh": "对照村仅取自派驻比例低的乡镇",
                                     "en": "controls from lightly treated townships only"},
    "spillover": {"zh": "溢出效应（派驻多的乡镇中的未派驻村）",
                  "en": "Spillover (untreated villages in heavily treated townships)"},
    "cs_never": {"zh": "仅以从未派驻的村为对照", "en": "never-treated villages as controls"},
    "cs_no_covariates": {"zh": "不控制村的特征", "en": "without covariates"},
    "never": {"zh": "仅以从未派驻的村为对照", "en": "never-treated villages as controls"},
    "no_covariates": {"zh": "不控制村的特征", "en": "without covariates"},
    "sa": {"zh": "Sun–Abraham估计", "en": "Sun–Abraham"},
    "sun_abraham": {"zh": "Sun–Abraham估计", "en": "Sun–Abraham"},
    "bjs": {"zh": "插补估计（BJS）", "en": "imputation (BJS)"},
    "imputation": {"zh": "插补估计（BJS）", "en": "imputation (BJS)"},
    "twfe": {"zh": "双向固定效应", "en": "two-way fixed effects"},
    "ppml": {"zh": "泊松回归", "en": "Poisson (PPML)"},
}
ESTIMATORS = {
    "cs": {"zh": "CS", "en": "CS"},
    "twfe": {"zh": "TWFE", "en": "TWFE"},
    "sa": {"zh": "SA", "en": "SA"},
    "bjs": {"zh": "BJS", "en": "BJS"},
    "ppml": {"zh": "PPML", "en": "PPML"},
}
COVARIATE_WORDS = {
    "distance_km": {"zh": "距县城距离", "en": "distance to the county seat"},
    "terrain": {"zh": "地形", "en": "terrain"},
    "distinctive_industry": {"zh": "特色产业", "en": "distinctive industry"},
    "population": {"zh": "人口", "en": "population"},
    "party_members": {"zh": "党员人数", "en": "party members"},
    "share_members_over60": {"zh": "老龄党员比例", "en": "share of older members"},
}
OPTION_WORDS = {
    "headline": {"zh": "主要估计的设定", "en": "the headline specification"},
    "twfe": {"zh": "简单比较的设定", "en": "the simple comparison"},
    "ppml": {"zh": "泊松回归的设定", "en": "the Poisson regressions"},
    "romano_wolf": {"zh": "多重检验校正", "en": "the multiple-testing adjustment"},
    "untreated_mean": {"zh": "未派驻村平均水平的算法", "en": "how the untreated average is computed"},
    "pct_scale": {"zh": "百分比的表示方式", "en": "how percentages are stored"},
}
"""Plain words for the keys of ``main_effects.options`` (a changed setting in "what changed")."""
CONTROL_GROUPS = {
    "notyet": {"zh": "从未派驻和尚未派驻的村", "en": "villages never or not yet given a first secretary"},
    "never": {"zh": "从未派驻的村", "en": "villages never given a first secretary"},
}


def level_label(dimension: str, level: str, lang: str) -> str:
    """Label a subgroup level (``law`` -> 政法部门; cohort ``2023`` -> 2023年派驻).

    Parameters
    ----------
    dimension : str
        Heterogeneity dimension (``cadre_type``, ``cohort``, ``baseline_weakness``, ...).
    level : str
        Level as stored in ``results.json``.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The label; the level itself if unknown.
    """
    known = LEVELS.get(dimension, {}).get(level)
    if known:
        return known[lang]
    if dimension.startswith("cohort") and level.isdigit():
        return f"{level}年派驻" if lang == "zh" else f"posted in {level}"
    return level


def alternative_label(name: str, record: dict | None, lang: str) -> str:
    """Label a robustness alternative (``cs_never`` -> 仅以从未派驻的村为对照).

    Parameters
    ----------
    name : str
        Key in ``robustness[outcome]["alternatives"]``.
    record : dict or None
        Its estimate record (for the estimator of unknown names).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The label.
    """
    if name in ALTERNATIVES:
        return ALTERNATIVES[name][lang]
    est = (record or {}).get("estimator")
    return f"{name} ({est})" if est else name


def covariate_names(options: dict | None, lang: str) -> list[str]:
    """Name the covariates of an estimate from its options (``base_terrain_hill`` -> 地形).

    Parameters
    ----------
    options : dict or None
        The ``options`` of an estimate record.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    list of str
        Distinct covariate names in order of appearance.
    """
    out: list[str] = []
    for c in (options or {}).get("covariates") or []:
        base = str(c).removeprefix("base_")
        key = next((k for k in COVARIATE_WORDS if base == k or base.startswith(k + "_")), None)
        word = COVARIATE_WORDS[key][lang] if key else base
        if word not in out:
            out.append(word)
    return out


def join_list(items: list[str], lang: str) -> str:
    """Join words as a list (``地形、距离和特色产业`` / ``terrain, distance and industry``).

    Parameters
    ----------
    items : list of str
        Words.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The joined list.
    """
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    if lang == "zh":
        return "、".join(items[:-1]) + "和" + items[-1]
    return ", ".join(items[:-1]) + " and " + items[-1]


UI = {
    "title": {"zh": "村党支部第一书记制度实施效果评估简报",
              "en": "Does a village first secretary make a difference? Findings brief"},
    "key_messages": {"zh": "核心结论", "en": "Key messages"},
    "changes": {"zh": "与上一轮评估相比的变化", "en": "What changed since the earlier run"},
    "method": {"zh": "评估方法", "en": "What was compared"},
    "findings": {"zh": "主要发现", "en": "Findings"},
    "claims": {"zh": "与报告所述成绩的对照", "en": "The report's claims against the comparison"},
    "naive": {"zh": "为什么简单比较会误导", "en": "Why the simple comparison misleads"},
    "limits": {"zh": "数据不能回答的问题", "en": "What the data cannot tell"},
    "figures": {"zh": "图表", "en": "Charts"},
    "annex_label": {"zh": "附件", "en": "Annex"},
    "annex_title": {"zh": "全部估计结果", "en": "All estimates"},
    "claims_head": {"zh": ("报告所述（前后对比）", "对比结果", "占报告数字", "判断"),
                    "en": ("The report says (before/after)", "The comparison shows", "Share of report", "Verdict")},
    "annex_head": {"zh": ("指标", "分析", "估计值", "95%置信区间", "p值", "校正p值", "观测数", "模拟真值"),
                   "en": ("Outcome", "Analysis", "Estimate", "95% CI", "p", "Adjusted p", "Obs.", "True value")},
    "main_row": {"zh": "主要结果", "en": "Main"},
    "twfe_row": {"zh": "简单比较", "en": "Simple comparison"},
    "ppml_row": {"zh": "泊松回归（变化%）", "en": "Poisson (% change)"},
    "robust_row": {"zh": "稳健性", "en": "Robustness"},
    "supported": {"zh": "方向得到支持", "en": "Direction supported"},
    "not_shown": {"zh": "未得到证实", "en": "Not shown"},
    "contradicted": {"zh": "与报告相反", "en": "Contradicted"},
    "doc_lang": {"zh": "zh-CN", "en": "en"},
}
"""Fixed words of the brief (headings, table headers, verdicts)."""


def ui(key: str, lang: str):
    """Return a fixed word of the brief in ``lang``.

    Parameters
    ----------
    key : str
        Key of :data:`UI`.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str or tuple of str
        The wording.
    """
    return UI[key][lang]

FIGURE_CAPTIONS = {
    "forest": {"zh": "各项指标的平均效应（与未派驻村对比）",
               "en": "average effect on each outcome (against villages without one)"},
    "event": {"zh": "{name}：派驻前后各年的效应", "en": "{name}: effect by year before and after the posting"},
}
TWFE_REASON = {
    "zh": "原因是派驻分批进行、效果逐年增强，简单回归却拿先派驻的村当对照，又忽视了派驻村本来较弱、走势不同。",
    "en": "The reason: first secretaries arrived in batches and their effects grow, yet the simple regression uses "
          "villages treated earlier, whose effects are still growing, as controls for those treated later, and "
          "ignores that the villages chosen were weaker and on a different path.",
}
TWFE_SAME = {
    "zh": "对主要指标而言，简单的双向固定效应回归与本研究的估计相近。",
    "en": "For the main outcomes the simple two-way fixed-effects regression is close to this study's estimates.",
}
LIMITS_GENERAL = {
    "zh": "第一书记是一揽子措施，数据无法区分干部本人、派出单位的项目资金和考核督促各起多大作用；"
          "派驻村并非随机选出，结论依赖平行趋势假定。",
    "en": "A first secretary is a package (the cadre, the projects and money the sending unit brings, the "
          "assessment), and the data cannot tell which part works; villages were not chosen at random, so the "
          "findings rest on the parallel-trends assumption, whose strength is reported above.",
}
SYNTHETIC_NOTE = {
    "zh": "说明：本简报使用按报告数字校准的模拟数据检验评估方法，数字不代表该市的真实情况。",
    "en": "Note: this brief uses simulated data calibrated to the report's figures (with known true effects) to test "
          "the evaluation; its numbers do not describe the city.",
}
