"""Wording and number formatting of the findings brief, in Chinese and English.

Every word the brief says *without* a number is a key of the study's catalogue
(:mod:`analysis.i18n`: ``brief.*`` for headings, table headers and fixed sentences; the
``brief`` forms of the shared concepts -- outcomes, cadre types, specifications); this module
reads them through small helpers (:func:`ui`, :func:`outcome_words`, :func:`level_label`, ...)
and formats the numbers. Every sentence *with* a number is a macro in
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
from typing import TypeGuard

from analysis.i18n import check_lang, lookup, t
from analysis.report.results_schema import EstimateRecord, Interval

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


def finite(x: object) -> TypeGuard[float]:
    """Return whether ``x`` is a finite number: a number of ``results.json``, not null, NaN or infinite.

    Parameters
    ----------
    x : object
        A value of an estimate record (``int``, ``float`` or None); a boolean is not a number.

    Returns
    -------
    bool
        True for a finite ``int`` or ``float`` (then a type checker treats ``x`` as a ``float``).

    Examples
    --------
    >>> finite(1.5), finite(2), finite(None), finite(float("nan")), finite(True)
    (True, True, False, False, False)
    """
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def estimate_interval(record: Interval | None) -> tuple[float, float, float] | None:
    """Return a record's estimate and 95% interval, if all three are finite numbers.

    Parameters
    ----------
    record : Interval or None
        An estimate record of ``results.json``.

    Returns
    -------
    tuple of float or None
        ``(estimate, conf_low, conf_high)``; None for a missing record or a missing or infinite number.
    """
    if record is None:
        return None
    est, lo, hi = record.estimate, record.conf_low, record.conf_high
    if not (finite(est) and finite(lo) and finite(hi)):
        return None
    return est, lo, hi


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
    large = ZH_WAN if check_lang(lang) == "zh" else EN_MILLION
    return (large, t("unit.large_money", lang)) if top >= large else (1, t("unit.money", lang))


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
    return t("brief.amount", lang, number=fmt_number(v, decimals, lang), unit=unit)


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
    return t("brief.date", lang, year=d.year, month=d.month, day=d.day, month_name=MONTHS[d.month - 1])


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
"""Month names of English dates (:func:`fmt_date`)."""


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
# Wording without numbers (the words themselves are in the catalogue, analysis.i18n)
# --------------------------------------------------------------------------------------------------

OUTCOMES: dict[str, dict[str, str | None]] = {
    "income_per_capita": {"kind": "money", "good": "up", "per": None},
    "collective_income": {"kind": "money", "good": "up", "per": "village_year"},
    "projects": {"kind": "count", "good": "up", "per": "village_year"},
    "funds_attracted": {"kind": "money", "good": "up", "per": "village_year"},
    "roads_km": {"kind": "count", "good": "up", "per": "village_year"},
    "team_reorganised": {"kind": "binary", "good": "up", "per": "year"},
    "activists": {"kind": "count", "good": "up", "per": "village"},
    "new_members": {"kind": "count", "good": "up", "per": "village_year"},
    "criminal_cases": {"kind": "count", "good": "down", "per": "village_year"},
    "disputes": {"kind": "count", "good": "down", "per": "village_year"},
    "petitions": {"kind": "count", "good": "down", "per": "village_year"},
}
"""How each outcome is measured in the brief: ``kind`` (money: yuan, 万元 when large; count; binary:
percentage points), the desired direction and the scope of a number (``scope.<per>`` of the catalogue:
per village a year, ...; None: the outcome is per person). Its words are ``outcome.<name>.brief*``."""

VERBS = {"money": ("brief.verb.rise", "brief.verb.fall"), "binary": ("brief.verb.rise", "brief.verb.fall"),
         "count": ("brief.verb.increase", "brief.verb.decrease")}
"""Catalogue keys of the verbs (up, down) of each kind of outcome."""


def outcome_words(outcome: str, lang: str, unit_hint: str | None = None) -> dict:
    """Return the brief's words for an outcome (name, scope, unit, kind, verbs).

    Unknown outcomes (a real pipeline may add some) get their label from
    :func:`analysis.i18n.column_label` and the unit string of ``results.json``.

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
    from analysis.i18n import column_label

    check_lang(lang)
    spec = OUTCOMES.get(outcome)
    if spec is None:
        name = column_label(outcome, lang)
        kind = "money" if unit_hint and "yuan" in unit_hint else ("binary" if unit_hint == "0/1" else "count")
        words = {"name": name, "short": name, "per": "", "kind": kind, "good": "up"}
    else:
        kind = str(spec["kind"])
        per = spec["per"]
        words = {"name": t(f"outcome.{outcome}.brief", lang), "short": t(f"outcome.{outcome}.brief_short", lang),
                 "per": t(f"scope.{per}", lang) if per else "", "kind": kind, "good": str(spec["good"])}
    words["unit"] = {"money": t("unit.money", lang), "binary": t("unit.pp", lang)}.get(
        kind, lookup(f"outcome.{outcome}.brief_unit", lang, ""))
    up, down = VERBS[kind]
    words["up"], words["down"] = t(up, lang), t(down, lang)
    return words


def family_name(family: str, lang: str) -> str:
    """Name a family of outcomes (``income`` -> 经济发展).

    Parameters
    ----------
    family : str
        Family key of ``main_effects.families``.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The name; the key itself if unknown.
    """
    return lookup(f"family.{family}.brief", lang, family)


FAMILY_ORDER = ("income", "organisation", "cases")
HEADLINE_OUTCOMES = {"income": "income_per_capita", "organisation": "new_members", "cases": "criminal_cases"}
"""The headline outcome of each family (the first outcome of the family if absent)."""

LIMITS: dict[str, str | None] = {
    # what the data cannot tell, per headline outcome; None: the long-run sentence of the templates
    "income_per_capita": None,
    "new_members": "brief.limit.new_members",
    "criminal_cases": "brief.limit.criminal_cases",
}
"""Catalogue key of the limit sentence of each headline outcome (``brief.limit.default`` for others)."""

DIMENSIONS = ("cadre_type", "cohort", "cohort_e0", "baseline_weakness")
"""Heterogeneity dimensions in the annex's order (their names: ``dimension.<d>.brief``)."""


def dimension_name(dimension: str, lang: str) -> str:
    """Name a heterogeneity dimension (``cadre_type`` -> 派出单位).

    Parameters
    ----------
    dimension : str
        Dimension of ``results.json``'s ``heterogeneity``.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The name; the key itself if unknown.
    """
    return lookup(f"dimension.{dimension}.brief", lang, dimension)


def estimator_name(estimator: str | None, lang: str) -> str:
    """Abbreviate an estimator for the annex (``cs`` -> CS).

    Parameters
    ----------
    estimator : str or None
        ``estimator`` of an estimate record.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The abbreviation; the name itself if unknown, ``-`` if missing.
    """
    return lookup(f"estimator.{estimator}.abbrev", lang, estimator or "-")


def control_group_words(control: str, lang: str) -> str:
    """Describe a comparison group (``notyet`` -> 从未派驻和尚未派驻的村).

    Parameters
    ----------
    control : str
        ``control_group`` of the headline.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The words; the key itself if unknown.
    """
    return lookup(f"group.{control}.control", lang, control)


def option_words(option: str, lang: str) -> str:
    """Name a key of ``main_effects.options`` in plain words (a changed setting in "what changed").

    Parameters
    ----------
    option : str
        Key of ``main_effects.options``.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The words; the key itself if unknown.
    """
    return lookup(f"brief.option.{option}", lang, option)


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
    if dimension == "cadre_type":
        return lookup(f"cadre.{level}.brief", lang, level)
    if dimension == "baseline_weakness":
        return lookup(f"weakness.{level}.brief", lang, level)
    if dimension.startswith("cohort") and level.isdigit():
        return t("brief.posted_in", lang, cohort=level)
    return level


def alternative_label(name: str, record: EstimateRecord | None, lang: str) -> str:
    """Label a robustness alternative (``control_never`` -> 仅以从未派驻的村为对照).

    Parameters
    ----------
    name : str
        Key in ``robustness[outcome]["alternatives"]`` (or ``spillover``).
    record : EstimateRecord or None
        Its estimate record (for the estimator of unknown names).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The label.
    """
    est = record.estimator if record is not None else None
    return lookup(f"spec.{name}.brief", lang, f"{name} ({est})" if est else name)


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
    from analysis.data import schema

    out: list[str] = []
    for c in (options or {}).get("covariates") or []:
        base = str(c).removeprefix("base_")
        key = next((k for k in schema.COVARIATES if base == k or base.startswith(k + "_")), None)
        word = lookup(f"covariate.{key}.brief", lang, base) if key else base
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
    return t("punct.enum", lang).join(items[:-1]) + t("punct.and", lang) + items[-1]


def ui(key: str, lang: str) -> str:
    """Return a fixed word of the brief (heading, row label, verdict) in ``lang``: ``brief.ui.<key>``.

    Parameters
    ----------
    key : str
        Key under ``brief.ui`` of the catalogue.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The wording.
    """
    return t(f"brief.ui.{key}", lang)


ANNEX_HEAD = ("brief.annex_head.outcome", "brief.annex_head.analysis", "column.estimate", "brief.annex_head.ci",
              "brief.annex_head.p", "brief.annex_head.adjusted_p", "brief.annex_head.obs", "brief.annex_head.truth")
"""Catalogue keys of the annex table's headers (the last, the simulated truth, only when some estimate has one)."""
CLAIMS_COLUMNS = ("report", "comparison", "share", "verdict")
"""Columns of the claims table (the comparison's header is a sentence with the number of villages)."""


def annex_header(lang: str) -> tuple[str, ...]:
    """Return the header row of the annex table (:data:`ANNEX_HEAD`).

    Parameters
    ----------
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    tuple of str
        One header per key of :data:`ANNEX_HEAD`.
    """
    return tuple(t(key, lang) for key in ANNEX_HEAD)


def claims_header(lang: str, comparison: str) -> tuple[str, ...]:
    """Return the header row of the claims table (``brief.claims_head.*``).

    Parameters
    ----------
    lang : {"zh", "en"}
        Language.
    comparison : str
        The header of the comparison column (a sentence of the templates).

    Returns
    -------
    tuple of str
        One header per :data:`CLAIMS_COLUMNS`.
    """
    return tuple(comparison if c == "comparison" else t(f"brief.claims_head.{c}", lang) for c in CLAIMS_COLUMNS)
