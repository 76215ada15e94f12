"""What changed since an earlier run: the reasons and the headline estimates that moved.

:func:`describe_changes` prepares the brief's section "与上一轮评估相比的变化" / "What
changed since the earlier run" (``study brief --compare RUN_A``) from the two runs'
``results.json``; every number reaches the text through the macros ``changes_*`` of
``templates/sentences.<lang>.j2``.

Reasons
-------
:func:`analysis.report.diff.reasons` (what ``study diff`` prints) decides *which* reasons
apply; each of its sentences is recognised by its opening words (:data:`REASON_KINDS`)
and the brief takes the details from the ``data`` (and ``main_effects.options``)
sections of the two documents, to write them in plain Chinese or English: a new year of
data, years dropped, revised data for earlier years (the year's data fingerprint
``data.year_hashes`` changed), a new batch of first secretaries with its number of
villages (``data.villages_by_cohort``), a batch whose size changed, and changed
estimation settings (named in plain words by :data:`~analysis.report.brief.text.OPTION_WORDS`).
Two keys of ``main_effects.options`` are not settings but follow from the data
(:data:`DERIVED_OPTIONS`: the post-treatment years change with a new year, ``truth``
with whether the data are the simulated city); they are not reported as a changed
setting. A reason ``reasons`` gives that the brief does not recognise is counted as
"other differences" rather than dropped.

Moved estimates
---------------
The headline estimate of every outcome in both runs (``main_effects.outcomes[o].headline``)
is compared. An estimate *moved* when its value or interval differs and the difference
shows at the precision the brief writes it. Listed, before -> after with their 95%
intervals, are the moved estimates of each family's headline outcome and every moved
estimate whose *verdict* changed (it became, or stopped being, distinguishable from zero,
or it changed direction); the other moves are counted in one sentence. Both sides are
written on one scale (the same unit and decimals), so they can be compared at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.i18n import check_lang, t
from analysis.report.brief import text as T
from analysis.report.results_json import parse_results
from analysis.report.results_schema import DataSection, EstimateRecord, MainEffectsOptions, OutcomeEffects, Results

REASON_KINDS = (
    ("new_years", "new year"),
    ("gone_years", "year(s) no longer"),
    ("revised", "revised data"),
    ("new_cohort", "new cohort"),
    ("cohort_size", "cohort "),
    ("options", "estimation options"),
)
"""Kinds of :func:`analysis.report.diff.reasons` sentences, by their opening words (first match wins)."""
DERIVED_OPTIONS = frozenset({"post_treatment_years", "truth"})
"""Keys of ``main_effects.options`` that follow from the data rather than from a choice of the analyst."""



def reason_kind(reason: str) -> str:
    """Classify one sentence of :func:`analysis.report.diff.reasons`.

    Parameters
    ----------
    reason : str
        The sentence.

    Returns
    -------
    str
        A kind of :data:`REASON_KINDS`, or ``other``.
    """
    return next((kind for kind, start in REASON_KINDS if reason.startswith(start)), "other")


def _years(ys, lang: str) -> str:
    return T.join_list([t("brief.year", lang, year=y) for y in ys], lang)


def _cohort_key(g: str):
    return (0, int(g)) if str(g).isdigit() else (1, str(g))


def describe_reasons(earlier: Results | Mapping[str, Any], later: Results | Mapping[str, Any], lang: str) -> list[dict]:
    """Describe why the estimates of two runs may differ, for the sentence templates.

    Parameters
    ----------
    earlier, later : Results or mapping
        The two ``results.json`` documents (A, then B).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    list of dict
        One item per reason, in the order of :func:`analysis.report.diff.reasons`, each with
        ``kind`` and its formatted details: ``years`` (joined list) and ``n`` for years;
        ``cohort``, ``villages`` (and ``before``) for cohorts; ``names`` for options;
        ``n`` for other differences.
    """
    from analysis.report.diff import reasons

    earlier, later = parse_results(earlier), parse_results(later)
    a, b = earlier.data or DataSection(), later.data or DataSection()
    ha, hb = a.year_hashes, b.year_hashes
    ca, cb = a.villages_by_cohort, b.villages_by_cohort
    kinds = [reason_kind(r) for r in reasons(earlier, later)]
    out: list[dict] = []
    done: set[str] = set()
    for kind in kinds:
        if kind in done and kind != "other":
            continue
        done.add(kind)
        if kind in ("new_years", "gone_years", "revised"):
            ys = sorted({"new_years": set(hb) - set(ha), "gone_years": set(ha) - set(hb),
                         "revised": {y for y in set(ha) & set(hb) if ha[y] != hb[y]}}[kind])
            out.append({"kind": kind, "years": _years(ys, lang), "n": len(ys)})
        elif kind == "new_cohort":
            for g in sorted(set(cb) - set(ca), key=_cohort_key):
                out.append({"kind": kind, "cohort": str(g), "villages": T.fmt_count(cb[g], lang)})
        elif kind == "cohort_size":
            for g in sorted((g for g in set(ca) & set(cb) if ca[g] != cb[g]), key=_cohort_key):
                out.append({"kind": kind, "cohort": str(g), "villages": T.fmt_count(cb[g], lang),
                            "before": T.fmt_count(ca[g], lang)})
        elif kind == "options":
            oa = earlier.main_effects.options if earlier.main_effects else MainEffectsOptions()
            ob = later.main_effects.options if later.main_effects else MainEffectsOptions()
            names = [k for k in oa.changed(ob) if k not in DERIVED_OPTIONS]
            if names:
                words = [T.option_words(k, lang) for k in names]
                out.append({"kind": kind, "names": T.join_list(words, lang)})
    n_other = kinds.count("other")
    if n_other:
        out.append({"kind": "other", "n": n_other})
    return out


def verdict(record: EstimateRecord) -> int:
    """Return an estimate's verdict: +1 or -1 if its 95% interval lies above or below zero, else 0.

    Parameters
    ----------
    record : EstimateRecord
        Estimate record.

    Returns
    -------
    int
        The verdict.
    """
    lo, hi = record.conf_low, record.conf_high
    if not (T.finite(lo) and T.finite(hi)):
        return 0
    return 1 if lo > 0 else (-1 if hi < 0 else 0)


def _side(rec: EstimateRecord, values: tuple[float, float, float], factor: float, decimals: int, words: dict,
          lang: str) -> dict:
    est, lo, hi = values
    v = verdict(rec)
    up = est > 0
    near, far = (lo, hi) if up else (hi, lo)

    def f(x: float) -> str:
        return T.fmt_number(abs(x * factor), decimals, lang)

    return {"significant": v != 0, "verb": words["up"] if up else words["down"],
            "direction": "up" if up else "down", "est": f(est), "near": f(near), "far": f(far),
            "lo": f(lo), "hi": f(hi), "lo_dir": "up" if lo > 0 else "down", "hi_dir": "up" if hi >= 0 else "down"}


def describe_move(outcome: str, before: OutcomeEffects, after: OutcomeEffects, lang: str) -> dict | None:
    """Describe how one outcome's headline estimate moved, both sides on one scale.

    Parameters
    ----------
    outcome : str
        Outcome name.
    before, after : OutcomeEffects
        ``main_effects.outcomes[outcome]`` of the earlier and the later run.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    dict or None
        ``name``, ``short``, ``per``, ``unit`` (and ``bound_unit``), ``before`` and
        ``after`` (significance, verb, formatted estimate and interval), ``flip``
        (``now``: became distinguishable from zero, ``gone``: no longer, ``reversed``:
        changed direction, or None), ``shown`` (the two sides read differently at the
        brief's precision) and ``size`` (the move in the later run's standard errors, for
        ordering); None if either record lacks a finite estimate and interval.
    """
    ha, hb = before.headline or EstimateRecord(), after.headline or EstimateRecord()
    a, b = T.estimate_interval(ha), T.estimate_interval(hb)
    if a is None or b is None:
        return None
    w = T.outcome_words(outcome, lang, after.unit)
    vals = [*a, *b]
    if w["kind"] == "binary":
        factor, unit = 100.0, w["unit"]
    elif w["kind"] == "money":
        div, unit = T.money_scale(vals, lang)
        factor = 1.0 / div
    else:
        factor, unit = 1.0, w["unit"]
    lead = max(abs(a[0]), abs(b[0])) * factor
    dec = T.effect_decimals(lead) if lead else 0
    sa, sb = _side(ha, a, factor, dec, w, lang), _side(hb, b, factor, dec, w, lang)
    va, vb = verdict(ha), verdict(hb)
    flip = None
    if va != vb:
        flip = "now" if va == 0 else ("gone" if vb == 0 else "reversed")
    se = hb.std_error or ha.std_error
    change = b[0] - a[0]
    size = abs(change / se) if T.finite(se) and se else abs(change)
    shown = any(sa[k] != sb[k] for k in ("est", "near", "far", "lo", "hi", "significant", "direction"))
    return {"outcome": outcome, "name": w["name"], "short": w["short"], "per": w["per"], "unit": unit,
            "bound_unit": "" if (w["kind"] == "binary" and lang == "zh") else unit, "before": sa, "after": sb,
            "flip": flip, "shown": shown, "size": size}


def _run_label(doc: Results, lang: str) -> dict:
    data = doc.data or DataSection()
    first, last = data.first_year, data.last_year
    return {"date": T.fmt_date(doc.meta.date if doc.meta else None, lang),
            "first_year": first if first else None, "last_year": last if last else None}


def describe_changes(earlier: Results | Mapping[str, Any], later: Results | Mapping[str, Any], lang: str,
                     headlines: list[str], order: list[str]) -> dict[str, Any]:
    """Prepare the section on what changed since an earlier run.

    Parameters
    ----------
    earlier, later : Results or mapping
        The earlier run's and this run's ``results.json``.
    lang : {"zh", "en"}
        Language.
    headlines : list of str
        The headline outcome of each family (always listed when they moved).
    order : list of str
        All outcomes in the brief's order.

    Returns
    -------
    dict
        ``earlier`` (date and data years of the earlier run), ``reasons``
        (:func:`describe_reasons`), ``moves`` (listed moves, :func:`describe_move`),
        ``rest`` (other outcomes whose estimate moved, verdict unchanged) and ``moved``
        (how many moved in all).

    Raises
    ------
    ValueError
        If the earlier run has no ``main_effects`` outcomes.
    """
    check_lang(lang)
    earlier, later = parse_results(earlier), parse_results(later)
    oa = earlier.main_effects.outcomes if earlier.main_effects else {}
    ob = later.main_effects.outcomes if later.main_effects else {}
    if not oa:
        raise ValueError("the earlier run's results.json has no main_effects outcomes to compare with")
    moves = []
    for o in order:
        if o in oa and o in ob:
            m = describe_move(o, oa[o], ob[o], lang)
            if m is not None and m["shown"]:
                moves.append(m)
    listed = [m for m in moves if m["outcome"] in headlines or m["flip"]]
    listed.sort(key=lambda m: (m["outcome"] not in headlines, order.index(m["outcome"])))
    return {
        "earlier": _run_label(earlier, lang),
        "reasons": describe_reasons(earlier, later, lang),
        "moves": listed,
        "rest": len(moves) - len(listed),
        "moved": len(moves),
    }
