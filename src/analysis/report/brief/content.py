"""Compose the brief from ``results.json``: key messages, findings, the report's claims, annex.

:func:`compose_brief` turns the parsed ``results.json`` into a :class:`Brief`, a
language-specific list of blocks (headings, paragraphs, tables, figures) that the docx
and HTML writers render alike. Every sentence that carries a number is a macro of
``templates/sentences.<lang>.j2``; this module only decides *which* sentence applies
(an effect or "no detectable change", robust or fragile, ...) and formats the numbers
with :mod:`analysis.report.brief.text`.

Decision rules
--------------
* An effect is *significant* when its 95% interval excludes zero; otherwise the brief
  says "未发现显著变化" / "no detectable change" and never states a direction.
* A finding is *robust* when its HonestDiD relative-magnitudes breakdown value
  (``robustness[outcome].honest.breakdown_rm``) is at least 1: it survives
  post-treatment departures from parallel trends as large as the largest pre-treatment one.
* The simple (TWFE) comparison *differs* when its point estimate lies outside the
  headline's 95% interval, or when one of the two is significant and the other is not.
  Its sentence names the Goodman-Bacon weight on already-treated controls when that weight
  is at least :data:`FORBIDDEN_MIN`.
* Subgroup effects by sending unit *differ* when the equality test rejects at 5% (the
  p-value decides the wording, it is never printed in the main text).
* A claim of the report is *supported* when the effect is significant in the claimed
  direction, *contradicted* when it is significant in the other, else *not shown*. For
  claims that are totals over villages, the per-village effect times the number of
  treated villages (``data.treated_villages``) is the part attributable to the programme.
* With an earlier run, a section right after the key messages says what changed since it
  (:mod:`analysis.report.brief.changes`); it counts toward :data:`WORD_LIMIT`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from analysis.i18n import check_lang, column_label, t
from analysis.report.brief import text as T
from analysis.report.results_json import parse_results
from analysis.report.results_schema import (
    EstimateRecord,
    Interval,
    MainEffectsSection,
    OutcomeEffects,
    Results,
    RobustnessOutcome,
)

TEMPLATES = Path(__file__).resolve().parent / "templates"
CLAIMS_FILE = Path(__file__).resolve().parent / "claims.yaml"
MAX_KEY_MESSAGES = 5
WORD_LIMIT = 1500
"""Most words (Chinese: characters) of the brief proper, key messages and annex excluded.

The section on what changed since an earlier run (``compare_to``) is part of the brief proper
and counts: see :func:`compose_brief`."""
OPTIONAL = ("heterogeneity", "others")
"""Sentences shortened, then (last resort) dropped, in this order, if a brief would exceed :data:`WORD_LIMIT`."""
STEPS: tuple[frozenset, ...] = (
    frozenset(),
    frozenset({"heterogeneity:short"}),
    frozenset({"heterogeneity:short", "others:short"}),
    frozenset({"heterogeneity:short", "others:short", "changes:short"}),
    frozenset({"heterogeneity:short", "others:short", "changes:short", "naive:short"}),
    frozenset({"heterogeneity", "others:short", "changes:short", "naive:short"}),
    frozenset({"heterogeneity", "others", "changes:short", "naive:short"}),
)
"""How a brief is fitted into :data:`WORD_LIMIT`, gentlest first: ``name:short`` says an optional part in
its short form (the same content, fewer words: no intervals, no numbers for the subgroups; for ``changes``,
the moves without their intervals; for ``naive``, the simple regression of the second and later headline
outcomes in one sentence), ``name`` leaves it out (last resort).
:func:`analysis.report.brief.build.build_brief` gives both languages the same step."""
FORBIDDEN_TYPE = "later vs earlier treated"
"""Goodman-Bacon comparison type that uses already-treated villages as controls."""
FORBIDDEN_MIN = 0.10
"""Weight of those comparisons from which the TWFE sentence mentions it (a small share explains little)."""


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    """A section heading (level 1: 一、...; level 2: （一）...); ``key`` names the section in any language."""

    text: str
    level: int = 1
    key: str = ""


@dataclass(frozen=True)
class Paragraph:
    """A paragraph; ``role`` is ``body``, ``intro``, ``note`` or ``date``; ``key`` names what it says, in any language.

    ``key`` lists the parts of a composed paragraph joined by ``+`` (``effect.income_per_capita+heterogeneity``),
    so that two languages' briefs can be compared part by part (:meth:`Brief.outline`).
    """

    text: str
    role: str = "body"
    key: str = ""


@dataclass(frozen=True)
class Table:
    """A table with a header row; ``role`` is ``claims`` or ``annex``."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    role: str


@dataclass(frozen=True)
class Figure:
    """A chart (``path``) with its caption, or, if ``path`` is None, the note that it is missing."""

    path: Path | None
    caption: str
    stem: str


Block = Heading | Paragraph | Table | Figure


@dataclass
class Brief:
    """The content of one language's brief.

    Attributes
    ----------
    lang : str
        ``zh`` or ``en``.
    title : str
        Document title.
    notes : list of str
        Notes under the title (e.g. that the data are simulated).
    key_messages : list of str
        Three to five key messages.
    body : list of Block
        The brief proper.
    date : str or None
        Date line (from ``results.json`` ``meta.date``), None if absent.
    annex_label, annex_title : str
        Annex heading.
    annex : Table
        Every estimate record of ``main_effects``, ``heterogeneity`` and the robustness
        alternatives.
    annex_note : str
        Explanation under the annex table.
    figures : list of Figure
        The charts, in order.
    step : int
        The step of :data:`STEPS` that fitted the brief into the word limit (0: nothing shortened).
    messages : list of str
        What the user should know of how the brief was composed (shortened, or over the limit).
    """

    lang: str
    title: str
    notes: list[str]
    key_messages: list[str]
    body: list[Block]
    date: str | None
    annex_label: str
    annex_title: str
    annex: Table
    annex_note: str
    figures: list[Figure] = field(default_factory=list)
    step: int = 0
    messages: list[str] = field(default_factory=list)

    def body_text(self) -> str:
        """Return the text of the brief proper, which the word limit applies to.

        The brief is layered: key messages (layer 1), the brief proper (layer 2, at most
        :data:`WORD_LIMIT` words) and the annex (layer 3). The brief proper is every
        heading, paragraph, table cell and caption after the key messages, and the date.

        Returns
        -------
        str
            One block per line.
        """
        parts: list[str] = []
        for b in self.body:
            if isinstance(b, Heading | Paragraph):
                parts.append(b.text)
            elif isinstance(b, Table):
                parts.extend([*b.header, *(c for row in b.rows for c in row)])
            elif isinstance(b, Figure):
                parts.append(b.caption)
        if self.date:
            parts.append(self.date)
        return "\n".join(parts)

    def full_text(self) -> str:
        """Return everything but the annex: title, notes, key messages and the brief proper.

        Returns
        -------
        str
            One block per line.
        """
        return "\n".join([self.title, *self.notes, T.ui("key_messages", self.lang), *self.key_messages,
                          self.body_text()])

    def outline(self) -> tuple[tuple[str, ...], ...]:
        """Return the brief's structure, the same in every language when both say the same things.

        Returns
        -------
        tuple of tuple of str
            One entry per block of the brief proper, in order: ``("heading", level, key)``,
            ``("paragraph", key)`` (its parts), ``("table", role)``, ``("figure", stem)``; then
            ``("key_messages", n)``.
        """
        out: list[tuple[str, ...]] = []
        for b in self.body:
            if isinstance(b, Heading):
                out.append(("heading", str(b.level), b.key))
            elif isinstance(b, Paragraph):
                out.append(("paragraph", b.key))
            elif isinstance(b, Table):
                out.append(("table", b.role))
            else:
                out.append(("figure", b.stem))
        out.append(("key_messages", str(len(self.key_messages))))
        return tuple(out)

    def word_count(self) -> int:
        """Count the words of the brief proper (:meth:`body_text`; Chinese: characters).

        Returns
        -------
        int
            Words by :func:`analysis.report.brief.text.word_count`.
        """
        return T.word_count(self.body_text(), self.lang)


# --------------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------------


def _capfirst(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


@cache
def environment() -> jinja2.Environment:
    """Return the Jinja environment of the brief's templates (plain text, strict undefined).

    Returns
    -------
    jinja2.Environment
        Environment with the ``capfirst`` filter.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
    )
    env.filters["capfirst"] = _capfirst
    return env


@cache
def _sentences(lang: str):
    return environment().get_template(f"sentences.{lang}.j2").module


_BREAKS = re.compile(r"[ \t]*\n[ \t]*")


def say(lang: str, macro: str, *args: Any) -> str:
    """Render one sentence macro of ``templates/sentences.<lang>.j2``.

    Line breaks in the template are removed (Chinese) or become one space (English).

    Parameters
    ----------
    lang : {"zh", "en"}
        Language.
    macro : str
        Macro name.
    *args
        Its arguments.

    Returns
    -------
    str
        The sentence.
    """
    out = str(getattr(_sentences(lang), macro)(*args))
    out = _BREAKS.sub("" if lang == "zh" else " ", out.strip())
    return re.sub(r" {2,}", " ", out) if lang == "en" else out


def load_claims(path: Path = CLAIMS_FILE) -> dict:
    """Read the source report's claims (see ``claims.yaml`` for the fields and the source).

    Parameters
    ----------
    path : pathlib.Path
        The claims file.

    Returns
    -------
    dict
        ``{"source": {...}, "claims": [...]}``.
    """
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------------
# Describing estimates
# --------------------------------------------------------------------------------------------------



def is_significant(record: Interval | None) -> bool:
    """Return whether an estimate record's confidence interval excludes zero.

    Parameters
    ----------
    record : Interval or None
        Estimate record (``conf_low``, ``conf_high``).

    Returns
    -------
    bool
        False for a missing record or interval.
    """
    if record is None or not (T.finite(record.conf_low) and T.finite(record.conf_high)):
        return False
    return record.conf_low > 0 or record.conf_high < 0


def _block(block: OutcomeEffects | Mapping[str, Any]) -> OutcomeEffects:
    return block if isinstance(block, OutcomeEffects) else OutcomeEffects.model_validate(block, extra="ignore")


def _headline(outcome: str, block: OutcomeEffects) -> EstimateRecord:
    if block.headline is None:
        raise ValueError(f"main_effects.outcomes.{outcome} lacks its headline record")
    return block.headline


@dataclass(frozen=True)
class Scale:
    """How one outcome's numbers are shown: divisor, display unit, decimals."""

    factor: float
    unit: str
    decimals: int

    def fmt(self, value: float, lang: str, signed: bool = False) -> str:
        """Format ``value`` in this scale (absolute value unless ``signed``)."""
        v = value * self.factor
        return T.fmt_number(v if signed else abs(v), self.decimals, lang)


def _scale(words: dict, values: list[float], lang: str, lead: float) -> Scale:
    kind = words["kind"]
    if kind == "binary":
        factor, unit = 100.0, words["unit"]
    elif kind == "money":
        div, unit = T.money_scale(values, lang)
        factor = 1.0 / div
    else:
        factor, unit = 1.0, words["unit"]
    return Scale(factor, unit, T.effect_decimals(lead * factor))


def describe_effect(outcome: str, block: OutcomeEffects | Mapping[str, Any], lang: str) -> dict:
    """Prepare an outcome's headline effect for the sentence templates.

    Parameters
    ----------
    outcome : str
        Outcome name.
    block : OutcomeEffects or mapping
        ``main_effects.outcomes[outcome]``.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    dict
        Words (``name``, ``per``, ``unit``, ``verb``), ``significant``, the formatted
        effect and interval (``est``, ``near``, ``far``; ``lo``/``hi`` with directions
        ``lo_dir``/``hi_dir`` for a non-significant one), the untreated mean and the
        effect as a percentage of it, and the :class:`Scale` used.
    """
    block = _block(block)
    w = T.outcome_words(outcome, lang, block.unit)
    h = _headline(outcome, block)
    values = T.estimate_interval(h)
    if values is None:
        raise ValueError(f"main_effects.outcomes.{outcome}.headline lacks a finite estimate and interval")
    est, lo, hi = values
    sig = is_significant(h)
    lead = est if sig else max(abs(lo), abs(hi))
    sc = _scale(w, [est, lo, hi], lang, lead)
    up = est > 0
    near, far = (lo, hi) if up else (hi, lo)
    mean = block.untreated_mean
    pct = block.pct_of_untreated_mean.estimate if block.pct_of_untreated_mean else None
    e = {
        "outcome": outcome,
        "name": w["name"],
        "short": w["short"],
        "per": w["per"],
        "unit": sc.unit,
        "bound_unit": "" if (w["kind"] == "binary" and lang == "zh") else sc.unit,
        "kind": w["kind"],
        "good": w["good"],
        "binary": w["kind"] == "binary",
        "significant": sig,
        "direction": "up" if up else "down",
        "verb": w["up"] if up else w["down"],
        "est": sc.fmt(est, lang),
        "est_signed": sc.fmt(est, lang, signed=True),
        "near": sc.fmt(near, lang),
        "far": sc.fmt(far, lang),
        "lo": sc.fmt(lo, lang),
        "hi": sc.fmt(hi, lang),
        "lo_dir": "up" if lo > 0 else "down",
        "hi_dir": "up" if hi >= 0 else "down",
        "pct": T.fmt_pct(pct, lang) if T.finite(pct) and T.finite(mean) and mean > 0 else None,
        "mean": None,
        "mean_unit": sc.unit,
        "mean_pct": None,
        "scale": sc,
        "estimate": est,
    }
    if T.finite(mean):
        if w["kind"] == "binary":
            e["mean_pct"] = T.fmt_pct(mean, lang)
        elif w["kind"] == "money":
            div, unit = T.money_scale([mean], lang)
            e["mean"], e["mean_unit"] = T.fmt_level(mean / div, lang), unit
        else:
            e["mean"] = T.fmt_level(mean, lang)
    return e


def _same_estimate(a: Interval, b: Interval) -> bool:
    pairs = ((a.estimate, b.estimate), (a.conf_low, b.conf_low), (a.conf_high, b.conf_high))
    return all(T.finite(x) and T.finite(y) and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in pairs)


def alternatives(robustness_entry: RobustnessOutcome, headline: EstimateRecord | None = None) -> list[EstimateRecord]:
    """Return the alternative estimates of one outcome that differ from the headline.

    The ``headline`` entry of the alternatives, and any specification that reproduces the
    headline exactly (e.g. clustering by township when that is the headline's clustering),
    are not alternatives.

    Parameters
    ----------
    robustness_entry : RobustnessOutcome
        ``robustness[outcome]`` of ``results.json``.
    headline : EstimateRecord, optional
        The headline record (``main_effects``).

    Returns
    -------
    list of EstimateRecord
        Estimate records.
    """
    out: list[EstimateRecord] = []
    for name, rec in robustness_entry.alternatives.items():
        if name == "headline" or not T.finite(rec.estimate):
            continue
        if headline is not None and _same_estimate(rec, headline):
            continue
        out.append(rec)
    return out


def describe_robustness(outcome: str, results: Results, significant: bool, estimate: float) -> dict:
    """Prepare the robustness sentence of a headline finding.

    Parameters
    ----------
    outcome : str
        Outcome name.
    results : Results
        Parsed ``results.json``.
    significant : bool
        Whether the headline effect is significant.
    estimate : float
        Headline point estimate (for the direction alternatives must agree with).

    Returns
    -------
    dict
        ``breakdown`` (formatted, or None), ``robust``, ``breakdown_zero``, ``n_alt``,
        ``k_alt`` (alternatives that agree, or that find a change if the headline does
        not), ``pretrend_warning`` and ``significant``.
    """
    rob = (results.robustness.root.get(outcome) if results.robustness else None) or RobustnessOutcome()
    bd = rob.honest.breakdown_rm if rob.honest else None
    block = results.main_effects.outcomes.get(outcome) if results.main_effects else None
    alts = alternatives(rob, block.headline if block else None)
    if significant:
        k = sum(1 for a in alts if is_significant(a) and T.finite(a.estimate) and (a.estimate > 0) == (estimate > 0))
    else:
        k = sum(1 for a in alts if is_significant(a))
    es = results.event_studies.root.get(outcome) if results.event_studies else None
    pre_p = es.pretest_p if es else None
    return {
        "significant": significant,
        "breakdown": T.fmt_ratio(bd, "en") if T.finite(bd) else None,
        "robust": T.finite(bd) and bd >= 1,
        "breakdown_zero": T.finite(bd) and bd <= 0,
        "n_alt": len(alts),
        "k_alt": k,
        "pretrend_warning": T.finite(pre_p) and pre_p < 0.05,
    }


def describe_curve(outcome: str, results: Results, lang: str) -> dict | None:
    """Prepare the specification-curve sentence of a headline finding (``specification_curve`` of ``results.json``).

    Parameters
    ----------
    outcome : str
        Outcome name.
    results : Results
        Parsed ``results.json``.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    dict or None
        ``n`` (specifications with an estimate), ``same`` and ``sig`` (percentages: the headline's sign;
        also an interval excluding zero); None when the run has no curve for the outcome. The joint
        test is not cited (it over-rejects under the design, README "Specification grid").
    """
    sc = results.specification_curve
    c = sc.outcomes.get(outcome) if sc else None
    if c is None or not c.estimated or not (T.finite(c.share_same_sign) and T.finite(c.share_significant_same_sign)):
        return None
    # The joint test's p-value is not cited: measured on 100 no-effect cities it rejects 9-10% of the time at
    # 5% (README, "Specification grid"), so its p-values are too small.
    return {"n": T.fmt_count(c.estimated, lang), "same": T.fmt_pct(c.share_same_sign, lang),
            "sig": T.fmt_pct(c.share_significant_same_sign, lang)}


def describe_heterogeneity(outcome: str, results: Results, e: dict, lang: str) -> dict | None:
    """Prepare the sentence on effects by sending unit (cadre type) of a headline finding.

    Parameters
    ----------
    outcome : str
        Outcome name.
    results : Results
        Parsed ``results.json``.
    e : dict
        Output of :func:`describe_effect` for the outcome (its scale is reused).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    dict or None
        ``differs``, ``best``/``worst`` labels with formatted estimates, verbs and signs;
        None without subgroup results.
    """
    cadre = results.heterogeneity.cadre_type if results.heterogeneity else None
    het = (cadre or {}).get(outcome)
    if het is None or not het.levels:
        return None
    est = {k: r.estimate for k, r in het.levels.items() if T.finite(r.estimate)}
    if len(est) < 2:
        return None
    order = sorted(est, key=lambda k: (est[k], k))
    best, worst = (order[-1], order[0]) if e["good"] == "up" else (order[0], order[-1])
    w = T.outcome_words(outcome, lang)
    sc: Scale = e["scale"]
    big = max(abs(v) for v in est.values())
    sc = Scale(sc.factor, sc.unit, T.effect_decimals(big * sc.factor))
    p = het.equality_p

    def verb(v: float) -> str:
        return w["up"] if v > 0 else w["down"]

    return {
        "differs": T.finite(p) and p < 0.05,
        "best": T.level_label("cadre_type", best, lang),
        "worst": T.level_label("cadre_type", worst, lang),
        "best_est": sc.fmt(est[best], lang),
        "worst_est": sc.fmt(est[worst], lang),
        "best_verb": verb(est[best]),
        "worst_verb": verb(est[worst]),
        "best_sig": is_significant(het.levels[best]),
        "worst_sig": is_significant(het.levels[worst]),
        "best_sign": "+" if est[best] > 0 else "−",
        "worst_sign": "+" if est[worst] > 0 else "−",
        "unit": sc.unit,
    }


def twfe_differs(block: OutcomeEffects | Mapping[str, Any]) -> bool:
    """Return whether the simple TWFE estimate tells a different story than the headline.

    Parameters
    ----------
    block : OutcomeEffects or mapping
        ``main_effects.outcomes[outcome]``.

    Returns
    -------
    bool
        True if the TWFE point estimate lies outside the headline's 95% interval, or if
        exactly one of the two is significant.
    """
    block = _block(block)
    h, tw = block.headline or EstimateRecord(), block.twfe or EstimateRecord()
    if not (T.finite(tw.estimate) and T.finite(h.conf_low) and T.finite(h.conf_high)):
        return False
    outside = not (h.conf_low <= tw.estimate <= h.conf_high)
    return outside or is_significant(h) != is_significant(tw)


def describe_twfe(outcome: str, block: OutcomeEffects | Mapping[str, Any], results: Results | Mapping[str, Any],
                  e: dict, lang: str) -> dict | None:
    """Prepare the TWFE contrast sentence of an outcome (None if TWFE is missing).

    Parameters
    ----------
    outcome : str
        Outcome name.
    block : OutcomeEffects or mapping
        ``main_effects.outcomes[outcome]``.
    results : Results or mapping
        Parsed ``results.json`` (for the Goodman-Bacon weights of ``event_studies``).
    e : dict
        Output of :func:`describe_effect`.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    dict or None
        ``twfe`` and ``est`` (signed, in the headline's scale), ``relation``
        (``opposite``, ``smaller``, ``larger``), ``ratio`` and ``forbidden`` (share of
        the TWFE weight on already-treated controls, formatted, or None).
    """
    block, results = _block(block), parse_results(results)
    tw = block.twfe.estimate if block.twfe else None
    est = e["estimate"]
    if not T.finite(tw) or est == 0:
        return None
    sc: Scale = e["scale"]
    sc = Scale(sc.factor, sc.unit, max(sc.decimals, T.effect_decimals(tw * sc.factor)))
    ratio = tw / est
    if ratio < 0:
        relation, r = "opposite", None
    elif ratio < 1:
        relation, r = "smaller", T.fmt_pct(ratio, lang)
    else:
        relation, r = "larger", T.fmt_ratio(ratio, lang)
    es = results.event_studies.root.get(outcome) if results.event_studies else None
    share = es.bacon.weights_by_type.get(FORBIDDEN_TYPE) if es and es.bacon else None
    return {
        "name": T.outcome_words(outcome, lang)["short"],
        "unit": sc.unit,
        "twfe": sc.fmt(tw, lang, signed=True),
        "est": sc.fmt(est, lang, signed=True),
        "relation": relation,
        "ratio": r,
        "significant": e["significant"],
        "forbidden": T.fmt_pct(share, lang) if T.finite(share) and share >= FORBIDDEN_MIN else None,
    }


def describe_claim(claim: dict, block: OutcomeEffects | None, n_treated: int | None, lang: str) -> dict:
    """Set one claim of the source report beside the comparison with untreated villages.

    Parameters
    ----------
    claim : dict
        One entry of ``claims.yaml``.
    block : OutcomeEffects or None
        ``main_effects.outcomes[claim["outcome"]]`` (None if the study lacks the outcome).
    n_treated : int or None
        Villages with a first secretary (to scale per-village effects to the report's totals).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    dict
        Formatted claim (``value``, ``year``, ``villages``, ``what``, ``quote``), the
        comparison (``significant``, ``est``, ``pct``, ``tot``, ``tot_near``, ``tot_far``)
        and the ``verdict`` with the attributable ``share`` of the report's figure.
    """
    value = claim.get("value")
    unit_words = (claim.get("unit_words") or {}).get(lang, "")
    if value is None:
        value_text = None
    elif claim.get("unit") == "yuan":
        value_text = T.fmt_money_exact(value, lang)
    else:
        value_text = t("brief.amount", lang, number=T.fmt_count(value, lang), unit=unit_words)
    c = {
        "id": claim["id"],
        "outcome": claim["outcome"],
        "value": value_text,
        "year": str(claim["year"]) if claim.get("year") else None,
        "villages": T.fmt_count(claim["villages"], lang) if claim.get("villages") else None,
        "what": claim["what"][lang],
        "quote": (claim.get("quote") or {}).get(lang),
        "significant": False,
        "total": False,
        "verdict": "not_shown",
        "share": None,
        "available": block is not None,
    }
    if block is None:
        return c
    e = describe_effect(claim["outcome"], block, lang)
    c.update({"significant": e["significant"], "est": e["est"], "unit": e["unit"], "per": e["per"],
              "verb": e["verb"], "pct": e["pct"], "near": e["near"], "far": e["far"],
              "bound_unit_e": e["bound_unit"]})
    if not e["significant"]:
        return c
    c["verdict"] = "supported" if e["direction"] == claim.get("direction", "up") else "contradicted"
    values = T.estimate_interval(block.headline)  # finite: describe_effect checked it
    if claim.get("total") and value and n_treated and c["verdict"] == "supported" and values is not None:
        tots = [v * n_treated for v in values]
        if claim.get("unit") == "yuan":
            div, unit = T.money_scale(tots, lang)
        else:
            div, unit = 1, unit_words
        lo, hi = sorted(tots[1:], key=abs)
        dec = T.sig_decimals(tots[0] / div, 2)
        c.update({
            "total": True,
            "unit": unit,
            "bound_unit": unit if lang == "zh" and claim.get("unit") != "count" else "",
            "tot": T.fmt_number(abs(tots[0]) / div, dec, lang),
            "tot_near": T.fmt_number(abs(lo) / div, dec, lang),
            "tot_far": T.fmt_number(abs(hi) / div, dec, lang),
            "share": T.fmt_pct(tots[0] / value, lang),
            "share_value": tots[0] / value,
        })
    return c


# --------------------------------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------------------------------


def families(me: MainEffectsSection) -> list[tuple[str, list[str]]]:
    """Group the outcomes of ``main_effects`` by family, in the brief's order.

    Parameters
    ----------
    me : MainEffectsSection
        ``main_effects`` of ``results.json``.

    Returns
    -------
    list of (str, list of str)
        Families (income, organisation, cases, then any other alphabetically) with their
        outcomes; an outcome missing from ``families`` goes to its record's ``family``.
    """
    outcomes = me.outcomes
    fams = {f: [o for o in os if o in outcomes] for f, os in me.families.items()}
    for o, blk in outcomes.items():
        f = blk.family or "other"
        if not any(o in os for os in fams.values()):
            fams.setdefault(f, []).append(o)
    order = [f for f in T.FAMILY_ORDER if fams.get(f)] + sorted(f for f in fams if f not in T.FAMILY_ORDER and fams[f])
    return [(f, fams[f]) for f in order]


def headline_outcomes(me: MainEffectsSection) -> dict[str, str]:
    """Return the headline outcome of each family (:data:`~analysis.report.brief.text.HEADLINE_OUTCOMES`).

    Parameters
    ----------
    me : MainEffectsSection
        ``main_effects`` of ``results.json``.

    Returns
    -------
    dict
        ``{family: outcome}`` in the brief's order; the family's first outcome where the
        usual headline outcome is absent.
    """
    out = {}
    for f, os in families(me):
        usual = T.HEADLINE_OUTCOMES.get(f)
        out[f] = usual if usual is not None and usual in os else os[0]
    return out


def _family_name(f: str, lang: str) -> str:
    return T.family_name(f, lang)


def find_figure(figures_dir: Path | None, stem: str, lang: str) -> Path | None:
    """Find a chart PNG of the run, preferring a language-specific file.

    Looks for ``<lang>/<stem>.png`` (the run's figures in each language), ``<stem>.<lang>.png``,
    ``<stem>_<lang>.png``, then ``<stem>.png``.

    Parameters
    ----------
    figures_dir : pathlib.Path or None
        The run's ``figures/`` folder.
    stem : str
        File stem, e.g. ``02_forest``.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    pathlib.Path or None
        The file, or None if none exists.
    """
    if figures_dir is None:
        return None
    for name in (f"{lang}/{stem}.png", f"{stem}.{lang}.png", f"{stem}_{lang}.png", f"{stem}.png"):
        p = Path(figures_dir) / name
        if p.is_file():
            return p
    return None


def _figure(figures_dir, stem, lang, index, kind, name=None, charts=None) -> Figure:
    path = (charts or {}).get(stem) or find_figure(figures_dir, stem, lang)
    if path is None:
        return Figure(None, say(lang, "missing_figure", f"{stem}.png"), stem)
    caption = t(f"brief.caption.{kind}", lang, name=name or "")
    return Figure(path, say(lang, "figure_caption", index, _capfirst(caption)), stem)


def _numbered(text: str, level: int, index: int, lang: str) -> str:
    key = "brief.numbering.section" if level == 1 else "brief.numbering.subsection"
    return t(key, lang, number=T.zh_ordinal(index), text=text)


def _method(results: Results, me: MainEffectsSection, lang: str) -> dict:
    data = results.data
    head_opts = me.options.headline
    first, block = next(iter(me.outcomes.items()))
    any_head = _headline(first, block)
    hopts = any_head.options if isinstance(any_head.options, dict) else {}
    control = (head_opts and head_opts.control_group) or hopts.get("control_group") or "notyet"
    covs = T.covariate_names({"covariates": (head_opts and head_opts.covariates) or hopts.get("covariates")}, lang)
    villages = (data and data.villages) or any_head.n_units
    treated = data.treated_villages if data else None
    return {
        "treated": T.fmt_count(treated, lang) if treated else None,
        "untreated": T.fmt_count(villages - treated, lang) if treated and villages else None,
        "villages": T.fmt_count(villages, lang) if villages else "-",
        "townships": T.fmt_count(data.townships, lang) if data and data.townships else "-",
        "first_year": (data and data.first_year) or "-",
        "last_year": (data and data.last_year) or "-",
        "control": T.control_group_words(control, lang),
        "covariates": T.join_list(covs, lang),
    }


def _limits(results: Results) -> dict:
    data = results.data
    first = data.first_year if data else None
    last = data.last_year if data else None
    cohorts = [int(g) for g in (data.villages_by_cohort if data else {}) if str(g).isdigit() and int(g) > 0]
    max_years = None
    if cohorts and last:
        max_years = int(last) - min(cohorts) + 1
    else:
        studies = results.event_studies.root.values() if results.event_studies else []
        times = [r.event_time for es in studies for r in es.cs if T.finite(r.event_time)]
        if times:
            max_years = int(max(times)) + 1
    return {"first_year": first, "last_year": last, "max_years": max_years if max_years and first else None}


def _annex(results: Results, me: MainEffectsSection, lang: str, source: str) -> tuple[Table, str]:
    het = results.heterogeneity.dimensions() if results.heterogeneity else {}
    het_truth = [v for dim in het.values() for h in dim.values() for v in h.truth.values()]
    has_truth = any(T.finite(b.truth) for b in me.outcomes.values()) or any(T.finite(v) for v in het_truth)
    header = T.annex_header(lang)
    header = header if has_truth else header[:-1]
    rows: list[tuple[str, ...]] = []

    def row(outcome, analysis, r: EstimateRecord, pct=False, adj=None, truth=None):
        if pct:
            est = T.fmt_stat(r.estimate * 100, lang) + "%" if T.finite(r.estimate) else "-"
            ci = (f"[{T.fmt_stat(r.conf_low * 100, lang)}%, {T.fmt_stat(r.conf_high * 100, lang)}%]"
                  if T.finite(r.conf_low) and T.finite(r.conf_high) else "-")
        else:
            est = T.fmt_stat(r.estimate, lang)
            ci = f"[{T.fmt_stat(r.conf_low, lang)}, {T.fmt_stat(r.conf_high, lang)}]"
        cells = [column_label(outcome, lang), analysis, est, ci, T.fmt_p(r.p_value),
                 T.fmt_p(adj) if adj is not None else "-",
                 T.fmt_count(r.n_obs, lang) if T.finite(r.n_obs) else "-"]
        if has_truth:
            cells.append(T.fmt_stat(truth, lang) if T.finite(truth) else "-")
        rows.append(tuple(cells))

    def est_name(r: EstimateRecord) -> str:
        return T.estimator_name(r.estimator, lang)

    paren = (t("punct.paren_open", lang), t("punct.paren_close", lang))
    for _, outcomes in families(me):
        for o in outcomes:
            b = me.outcomes[o]
            h = _headline(o, b)
            row(o, f"{T.ui('main_row', lang)}{paren[0]}{est_name(h)}{paren[1]}", h, adj=b.romano_wolf_p,
                truth=b.truth)
            if b.twfe is not None:
                row(o, f"{T.ui('twfe_row', lang)}{paren[0]}{est_name(b.twfe)}{paren[1]}", b.twfe)
            if b.ppml_pct is not None:
                row(o, T.ui("ppml_row", lang), b.ppml_pct, pct=True)
    colon = t("punct.colon", lang)
    order = [o for _, os in families(me) for o in os]

    def by_outcome(d: Mapping[str, Any]) -> list:
        return sorted(d.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))

    for dim, by_dim in het.items():  # (a list of pairwise contrasts, if any, is not an estimate per level)
        dim_name = _capfirst(T.dimension_name(dim, lang))
        for o, h in by_outcome(by_dim):
            for level, r in h.levels.items():
                row(o, f"{dim_name}{colon}{T.level_label(dim, str(level), lang)}", r, truth=h.truth.get(level))
    for o, rob in by_outcome(results.robustness.root if results.robustness else {}):
        for name, r in rob.alternatives.items():
            if name != "headline":
                row(o, f"{T.ui('robust_row', lang)}{colon}{T.alternative_label(name, r, lang)}", r)
        if rob.spillover is not None:
            row(o, T.alternative_label("spillover", None, lang), rob.spillover)
    note = say(lang, "annex_note", {"truth": has_truth, "source": source})
    return Table(tuple(header), tuple(rows), "annex"), note


def compose_brief(results: Results | Mapping[str, Any], lang: str, figures_dir: Path | None = None,
                  charts: Mapping[str, Path] | None = None,
                  earlier: Results | Mapping[str, Any] | None = None, start: int = 0) -> Brief:
    """Compose one language's brief from a parsed ``results.json``, within the word limit.

    If the brief proper would exceed :data:`WORD_LIMIT` words, the optional sentences of
    :data:`OPTIONAL` are said in their short forms, and only as a last resort left out (the
    steps of :data:`STEPS`, gentlest first); the step taken is ``brief.step`` and said in
    ``brief.messages`` (plain sentences for the user, no Python warning), as is a brief still
    over the limit.

    With ``earlier``, the brief opens (right after the key messages) with a section on what
    changed since that run (:func:`analysis.report.brief.changes.describe_changes`). That
    section is part of the brief proper and counts toward :data:`WORD_LIMIT`: the limit
    is the reader's time, whatever the section. It is kept short by construction (the
    reasons in one sentence; only the family headline outcomes and the estimates whose
    verdict changed are listed, other moves counted) and is never dropped; if the brief
    would then run over, the optional sentences go first, as always.

    Parameters
    ----------
    results : Results or mapping
        Parsed ``results.json``; needs ``main_effects``; uses ``data``, ``meta``,
        ``event_studies``, ``heterogeneity`` and ``robustness`` where present.
    lang : {"zh", "en"}
        Language.
    figures_dir : pathlib.Path, optional
        The run's ``figures/`` folder (the notebooks' charts), used for a chart that
        ``charts`` lacks; missing charts are replaced by a note.
    charts : mapping, optional
        ``{stem: png}`` of the brief's own charts in ``lang``
        (:func:`analysis.report.brief.charts.draw_charts`; stems ``02_forest`` and
        ``03_event_<outcome>``).
    earlier : dict, optional
        The ``results.json`` of an earlier run to report the changes against.
    start : int, default 0
        The first step of :data:`STEPS` to try (:func:`analysis.report.brief.build.build_brief`
        gives the other language the step one language needed, so both say the same things).

    Returns
    -------
    Brief
        The content, ready for :mod:`analysis.report.brief.docx_writer` and
        :mod:`analysis.report.brief.html_writer`.

    Raises
    ------
    ValueError
        If ``main_effects`` is missing or empty, or ``lang`` is unknown.
    """
    results = parse_results(results)
    earlier = parse_results(earlier) if earlier is not None else None
    for i, step in enumerate(STEPS):
        if i < start:
            continue
        brief = _compose(results, lang, figures_dir, step, charts, earlier)
        brief.step = i
        if brief.word_count() <= WORD_LIMIT:
            break
    if i:
        what = ", ".join(sorted(step))
        brief.messages.append(f"{lang} brief: optional sentences shortened (step {i} of {len(STEPS) - 1}: {what}) "
                              f"so that both languages say the same things within {WORD_LIMIT} words; "
                              f"{brief.word_count()} words")
    if brief.word_count() > WORD_LIMIT:
        brief.messages.append(f"{lang} brief has {brief.word_count()} words, over the limit of {WORD_LIMIT}")
    return brief


def _compose(results: Results, lang: str, figures_dir: Path | None, drop: frozenset,
             charts: Mapping[str, Path] | None = None, earlier: Results | None = None) -> Brief:
    check_lang(lang)
    me = results.main_effects
    if me is None or not me.outcomes:
        raise ValueError("results.json has no main_effects outcomes: run notebook 02 (main effects) first")
    outcomes = me.outcomes
    data = results.data
    fams = families(me)
    claims_doc = load_claims()
    source = claims_doc["source"][lang]

    effects = {o: describe_effect(o, outcomes[o], lang) for _, os in fams for o in os}
    headlines = headline_outcomes(me)

    # claims of the report
    n_treated = data.treated_villages if data else None
    claims = [describe_claim(c, outcomes.get(c["outcome"]), n_treated, lang) for c in claims_doc["claims"]]
    claims = [c for c in claims if c["available"]]
    shares = [c["share_value"] for c in claims if c.get("share_value") is not None]
    claims_key = {
        "n": len(claims),
        "supported": sum(c["verdict"] == "supported" for c in claims),
        "not_shown": sum(c["verdict"] == "not_shown" for c in claims),
        "contradicted": sum(c["verdict"] == "contradicted" for c in claims),
        "share_min": T.fmt_pct(min(shares), lang) if shares else None,
        "share_max": T.fmt_pct(max(shares), lang) if shares else None,
        "below": bool(shares) and max(shares) < 1,
    }

    # TWFE contrasts
    twfe = {o: describe_twfe(o, outcomes[o], results, effects[o], lang) for o in effects if twfe_differs(outcomes[o])}
    twfe = {o: d for o, d in twfe.items() if d is not None}
    head_twfe = [o for o in headlines.values() if o in twfe]

    # key messages
    key = [say(lang, "key_effect", _family_name(f, lang), effects[o]) for f, o in headlines.items()]
    key = key[: MAX_KEY_MESSAGES - 2]
    if claims:
        key.append(say(lang, "claims_key", claims_key))
    if head_twfe:
        key.append(say(lang, "twfe_key", twfe[head_twfe[0]]))

    # body
    body: list[Block] = []
    figures: list[Figure] = []
    n1 = 0

    def h1(key_):
        nonlocal n1
        n1 += 1
        body.append(Heading(_numbered(T.ui(key_, lang), 1, n1, lang), 1, key_))

    if earlier is not None:
        from analysis.report.brief.changes import describe_changes

        order = [o for _, os in fams for o in os]
        changes = describe_changes(earlier, results, lang, list(headlines.values()), order)
        h1("changes")
        body.append(Paragraph(say(lang, "changes_intro", changes), key="changes_intro"))
        body.append(Paragraph(say(lang, "changes_moves", changes, "changes:short" in drop), key="changes_moves"))

    h1("method")
    body.append(Paragraph(say(lang, "method", _method(results, me, lang)), key="method"))

    h1("findings")
    fig_i = 0
    forest = _figure(figures_dir, "02_forest", lang, fig_i + 1, "forest", charts=charts)
    fig_i += forest.path is not None
    body.append(forest)
    figures.append(forest)
    in_claims = {c["outcome"] for c in claims}
    limits = _limits(results)
    curve_said = False
    for i, (f, os) in enumerate(fams, start=1):
        body.append(Heading(_numbered(_family_name(f, lang), 2, i, lang), 2, f"family.{f}"))
        o = headlines[f]
        e = effects[o]
        parts = [say(lang, "robustness", describe_robustness(o, results, e["significant"], e["estimate"]), e)]
        said = [f"effect.{o}"]
        curve = describe_curve(o, results, lang) if not curve_said else None
        if curve is not None:  # one sentence in the brief: the first family's curve
            parts.append(say(lang, "curve", curve))
            said.append("curve")
            curve_said = True
        het = describe_heterogeneity(o, results, e, lang)
        if het is not None and het["differs"] and e["significant"] and "heterogeneity" not in drop:
            parts.append(say(lang, "heterogeneity_short" if "heterogeneity:short" in drop else "heterogeneity", het))
            said.append("heterogeneity")
        limit = T.LIMITS.get(o, "brief.limit.default")
        parts.append(t(limit, lang) if limit else say(lang, "limits", limits) or t("brief.limit.default", lang))
        body.append(Paragraph(t("punct.sentence_join", lang).join(parts), key="+".join([*said, "limit"])))
        rest = [effects[x] for x in os if x != o and x not in in_claims]
        if rest and "others" not in drop:
            body.append(Paragraph(say(lang, "others_short" if "others:short" in drop else "others", rest),
                                  key="others." + ",".join(x["outcome"] for x in rest)))
        ev = _figure(figures_dir, f"03_event_{o}", lang, fig_i + 1, "event", e["short"], charts=charts)
        fig_i += ev.path is not None
        body.append(ev)
        figures.append(ev)

    if claims:
        h1("claims")
        body.append(Paragraph(say(lang, "claims_intro", claims_key), key="claims_intro"))
        header = T.claims_header(lang, say(lang, "claims_header", T.fmt_count(n_treated, lang) if n_treated else None))
        rows = tuple((say(lang, "claim_text", c), say(lang, "claim_comparison", c), say(lang, "claim_share", c),
                      say(lang, "claim_verdict", c)) for c in claims)
        body.append(Table(header, rows, "claims"))

    h1("naive")
    naive = [say(lang, "twfe", twfe[o]) for o in head_twfe]
    if "naive:short" in drop and len(head_twfe) > 1:
        naive = [naive[0], say(lang, "twfe_short", [twfe[o] for o in head_twfe[1:]])]
    if naive:
        naive.append(t("brief.twfe_reason", lang))
    else:
        naive.append(t("brief.twfe_same", lang))
    naive.append(say(lang, "twfe_count", {"n": len(effects),
                                          "k": sum(1 for o in effects if twfe_differs(outcomes[o]))}))
    body.append(Paragraph(t("punct.sentence_join", lang).join(naive), key="naive." + ",".join(head_twfe)))

    h1("limits")
    long_run = "" if any(T.LIMITS.get(o, 1) is None for o in headlines.values()) else say(lang, "limits", limits)
    body.append(Paragraph(t("punct.sentence_join", lang).join(
        x for x in (long_run, t("brief.limit.general", lang)) if x), key="limits" + ("+long_run" if long_run else "")))

    date = T.fmt_date(results.meta.date if results.meta else None, lang)
    notes = [t("brief.synthetic_note", lang)] if data and data.synthetic else []
    annex, annex_note = _annex(results, me, lang, source)
    return Brief(
        lang=lang,
        title=T.ui("title", lang),
        notes=notes,
        key_messages=key,
        body=body,
        date=date,
        annex_label=T.ui("annex_label", lang),
        annex_title=T.ui("annex_title", lang),
        annex=annex,
        annex_note=annex_note,
        figures=figures,
    )
