r"""Robustness of the headline effects (notebook ``05_robustness``).

The headline estimate of the study is the Callaway & Sant'Anna (2021) simple ATT (doubly
robust, baseline covariates, not-yet-treated comparison villages, township clusters). This
module asks how much of it survives when the assumptions behind it are relaxed:

1. **Parallel trends may fail** (:func:`honest_analysis`): Rambachan & Roth (2023) robust
   intervals for the effect in the first treated year (``e=0``) and the average post-period
   effect, under relative magnitudes (post-period violations at most :math:`\bar M` times the
   largest pre-period one) and smoothness (the differential trend's slope changes by at most
   :math:`M` a year, :math:`M` on a grid of multiples of the pre-period standard error), with
   breakdown values. Needs the event study with a *universal* base period
   (:func:`event_study`), as R's ``honest_did`` does.
2. **The pre-test may have no power** (:func:`pretrend_power_summary`): the linear pre-trend
   slopes that the joint Wald pre-test detects with 50% and 80% probability (Roth 2022) and the
   bias such a trend would put on the post-period estimates.
3. **Few clusters** (:func:`wild_summary`): wild cluster bootstrap-t (Webb weights, null
   imposed) for the static TWFE coefficient, beside its conventional CRV1 interval.
4. **Design-based inference** (:func:`randomisation_summary`): randomisation inference for the
   sharp null of no effect anywhere, re-drawing cohorts *within county*.
5. **Alternative specifications** (:func:`alternative_specifications`): the headline with one
   choice changed at a time (:data:`SPECS`).
6. **Spillovers** (:func:`spillover_did`, :func:`low_share_controls`): do never-treated villages
   change when most of their township gets first secretaries, and does the headline move when
   comparison villages come only from lightly treated townships?

:func:`run` is the stage: every check for the notebook's outcomes, with their tables, figures,
the ``robustness`` section of ``results.json`` (:func:`payload`) and the findings
(:func:`findings`). Everything returns frames or plain dicts; nothing reads the store or writes
files (:func:`analysis.stages.base.save` does), and no function modifies the caller's frame.

Definitions used throughout
---------------------------
* **High-share township**: at least :data:`HIGH_SHARE` (half) of its villages have a first
  secretary within the analysis window (cohort > 0). The synthetic city's ``spillover``
  parameter acts on exactly such townships (:mod:`analysis.data.synthetic`), but the rule is a
  natural one on real data too: "most of the township's villages got a secretary".
* **Exposure year** of a high-share township: the cohort of its first treated village (the year
  its secretaries could first affect neighbouring villages).
* **Pilot district**: the county (or counties) holding the villages of the earliest cohort. In
  the calibrated city that is the district whose 420 secretaries arrived in December 2022
  (cohort 2023 under the six-month rule).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.core.panel import covariate_columns
from analysis.core.spec import (
    CLUSTER_COLUMNS,
    COHORT,
    DEFAULT_COVARIATES,
    HEADLINE,
    RANDOMISATION_STRATA,
    TIME,
    UNIT,
    Spec,
    cluster_column,
)
from analysis.core.treatment import pilot_counties
from analysis.estimators.callaway_santanna import aggregate, att_gt
from analysis.i18n import column_label, lookup, t
from analysis.inference.honest import HonestResult, breakdown_value, honest_from_result
from analysis.inference.pretrends import pretrend_power_from_result
from analysis.inference.small_sample import intervals, t_df
from analysis.report.figures import themed
from analysis.report.results_json import clean, estimate_record
from analysis.results import DiDResult, SpilloverDesign
from analysis.stages.base import StageResult, Truth

__all__ = [
    "ALTERNATIVE_COLUMNS",
    "DROP_SHARE",
    "HIGH_SHARE",
    "PRETREND_TEST",
    "RM_GRID",
    "SD_MULTIPLES",
    "SPECS",
    "HonestSummary",
    "alternative_specifications",
    "as_table",
    "check_calibration",
    "cs_simple",
    "draw_figures",
    "drop_village_years",
    "event_study",
    "findings",
    "honest_analysis",
    "honest_tables",
    "low_share_controls",
    "payload",
    "plot_honest",
    "pretrend_power_summary",
    "randomisation_summaries",
    "randomisation_summary",
    "run",
    "spillover_did",
    "spillover_sample",
    "spillover_table",
    "summary_table",
    "township_exposure",
    "wild_summary",
]

HIGH_SHARE = 0.5
"""A township is *high-share* if at least this share of its villages is treated in the window."""
ADEQUATE_POWER = 0.8
"""Below this measured detection rate a spillover check that finds nothing is called weak (the conventional 80%)."""
DROP_SHARE = 0.05
"""Share of village-years dropped at random for the unbalanced-panel check."""
RM_GRID: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
r"""Values of :math:`\bar M` (relative magnitudes)."""
SD_MULTIPLES: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
"""Values of the smoothness bound M, as multiples of the mean pre-period standard error."""
PRETREND_TEST = "wald"
"""Pre-test whose power is computed: the joint Wald test, the test notebook 03 reports
(``pretest_p``). The "any coefficient significant" test of Roth's R package needs a
five-dimensional normal integral per step (about 15 s per outcome here)."""
WILD_WEIGHTS = "webb"
"""Wild bootstrap weights (Webb's six-point distribution)."""

SPECS: tuple[str, ...] = ("headline", "control_never", "control_notyet", "anticipation_0", "excluding_pilot",
                          "unbalanced_5pct", "no_covariates", "cluster_county", "cluster_township",
                          "controls_low_share_townships")
"""Specification keys; their descriptions are ``spec.<key>.label`` of the catalogue (:func:`spec_label`)."""

ALTERNATIVE_COLUMNS = ["outcome", "spec", "description", "estimate", "std_error", "conf_low", "conf_high",
                       "p_value", "diff_vs_headline", "n_obs", "n_units", "n_clusters", "control_group", "note"]
"""Columns of the alternative-specification table as saved."""



def spec_label(spec: str, lang: str = "zh") -> str:
    """Describe an alternative specification (``control_never`` -> "Controls: never-treated villages only").

    Parameters
    ----------
    spec : str
        A key of :data:`SPECS` other than ``headline`` (whose description depends on its options).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The description.
    """
    return t(f"spec.{spec}.label", lang)


def _headline_label(control_group: str, with_covariates: bool, cluster: str, lang: str) -> str:
    """Describe the headline specification actually used."""
    covariates = "spec.headline.with_covariates" if with_covariates else "spec.headline.without_covariates"
    control = "group.notyet.spec" if control_group == "notyet" else "group.never.spec"
    return t("spec.headline.label", lang, control=t(control, lang), covariates=t(covariates, lang),
             cluster=lookup(f"cluster.{cluster}.label", lang, cluster))


def _row_label(row: pd.Series, lang: str) -> str:
    """Label of an alternative-specification row (the headline's from its own options)."""
    if row["spec"] != "headline":
        return spec_label(row["spec"], lang)
    opts = json.loads(row["options"]) if isinstance(row.get("options"), str) else {}
    inverse = {v: k for k, v in CLUSTER_COLUMNS.items()}
    cluster = str(opts.get("cluster"))
    return _headline_label(row["control_group"], bool(opts.get("covariates")), inverse.get(cluster, cluster), lang)


def _fmt(x: float, digits: int = 3) -> str:
    """Format a number with ``digits`` significant digits (thousands separators for large ones)."""
    if x is None or not np.isfinite(x):
        return "—" if x is None or np.isnan(x) else ("∞" if x > 0 else "-∞")
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    dec = max(0, digits - 1 - mag)
    return f"{x:,.{dec}f}"


# ----------------------------------------------------------------------------------
# samples
# ----------------------------------------------------------------------------------
def _villages(panel: pd.DataFrame) -> pd.DataFrame:
    return panel.drop_duplicates(UNIT)[[UNIT, "township_code", "county_code", COHORT]]


def drop_village_years(panel: pd.DataFrame, share: float = DROP_SHARE, seed: int | None = None) -> pd.DataFrame:
    """Drop a random share of village-years (to check the estimator on an unbalanced panel).

    Rows are put in ``(village_code, year)`` order before drawing, so the rows dropped depend
    only on the seed and the panel's content, not on its row order.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    share : float, default 0.05
        Share of rows dropped (``round(share * rows)`` rows, without replacement).
    seed : int, optional
        Seed of the draw (``numpy.random.default_rng(seed)``).

    Returns
    -------
    pandas.DataFrame
        A new frame with the remaining rows in their original order.

    Raises
    ------
    ValueError
        If ``share`` is not in [0, 1).
    """
    if not 0 <= share < 1:
        raise ValueError(f"share must be in [0, 1), got {share!r}")
    n = len(panel)
    order = np.lexsort((panel[TIME].to_numpy(), panel[UNIT].astype(str).to_numpy()))
    k = round(share * n)
    rng = np.random.default_rng(seed)
    keep = np.ones(n, dtype=bool)
    keep[order[rng.choice(n, size=k, replace=False)]] = False
    return panel.loc[keep]


def township_exposure(panel: pd.DataFrame, threshold: float = HIGH_SHARE) -> pd.DataFrame:
    """Share of villages with a first secretary, by township, and the high-share flag.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (``township_code``, ``cohort``).
    threshold : float, default 0.5
        A township is high-share if its share of treated villages is at least this.

    Returns
    -------
    pandas.DataFrame
        One row per township (sorted): ``township_code``, ``villages``, ``treated``,
        ``never_treated``, ``share``, ``high_share`` (bool), ``first_cohort`` (cohort of its first
        treated village, 0 if none).
    """
    v = _villages(panel)
    g = v[COHORT].to_numpy()
    frame = pd.DataFrame({"township_code": v["township_code"].to_numpy(), "treated": g > 0,
                          "first": np.where(g > 0, g, np.iinfo(np.int64).max)})
    out = frame.groupby("township_code", sort=True).agg(villages=("treated", "size"), treated=("treated", "sum"),
                                                        first_cohort=("first", "min"))
    out["treated"] = out["treated"].astype("int64")
    out["never_treated"] = out["villages"] - out["treated"]
    out["share"] = out["treated"] / out["villages"]
    out["high_share"] = out["share"] >= threshold
    out["first_cohort"] = np.where(out["treated"] > 0, out["first_cohort"], 0).astype("int64")
    return out.reset_index()[["township_code", "villages", "treated", "never_treated", "share", "high_share",
                              "first_cohort"]]


def spillover_sample(panel: pd.DataFrame, threshold: float = HIGH_SHARE) -> pd.DataFrame:
    """Never-treated villages, with the year their township became highly treated.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    threshold : float, default 0.5
        High-share threshold (see :func:`township_exposure`).

    Returns
    -------
    pandas.DataFrame
        The rows of never-treated villages (cohort 0) with the added column
        ``exposure_cohort``: the township's first cohort for villages of high-share townships,
        0 for villages of the other townships (the comparison group).
    """
    exp = township_exposure(panel, threshold).set_index("township_code")
    exposure = exp["first_cohort"].where(exp["high_share"], 0)
    out = panel.loc[panel[COHORT] == 0]
    out["exposure_cohort"] = out["township_code"].map(exposure).fillna(0).astype("int64")
    return out


def low_share_controls(panel: pd.DataFrame, threshold: float = HIGH_SHARE) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop the never-treated villages of high-share townships (controls exposed to spillovers).

    Rule: a never-treated village may serve as a comparison only if fewer than ``threshold`` of
    its township's villages are treated. Treated villages are all kept. Used with
    never-treated comparisons (``control_group="never"``): a not-yet-treated village cannot be
    removed from the comparison group without also removing it as a treated village.

    The strict rule (comparisons only from townships with no treated village at all) is
    reported too, as ``strict_controls``: in the calibrated city it leaves a handful of
    villages, too few to estimate anything.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    threshold : float, default 0.5
        High-share threshold (see :func:`township_exposure`).

    Returns
    -------
    (pandas.DataFrame, dict)
        The reduced panel, and counts: ``never_treated`` (villages), ``dropped`` (never-treated
        villages of high-share townships), ``controls`` (never-treated villages kept),
        ``control_townships`` (townships they are in), ``strict_controls`` and
        ``strict_townships`` (never-treated villages / townships with no treated village).
    """
    exp = township_exposure(panel, threshold)
    high = set(exp.loc[exp["high_share"], "township_code"])
    never = panel[COHORT] == 0
    in_high = panel["township_code"].isin(high)
    out = panel.loc[~(never & in_high)]
    v = _villages(panel)
    v_never = v[v[COHORT] == 0]
    kept = v_never[~v_never["township_code"].isin(high)]
    untouched = set(exp.loc[exp["treated"] == 0, "township_code"])
    strict = v_never[v_never["township_code"].isin(untouched)]
    info = {
        "never_treated": len(v_never),
        "dropped": int(v_never["township_code"].isin(high).sum()),
        "controls": len(kept),
        "control_townships": int(kept["township_code"].nunique()),
        "strict_controls": len(strict),
        "strict_townships": int(strict["township_code"].nunique()),
    }
    return out, info


# ----------------------------------------------------------------------------------
# estimators
# ----------------------------------------------------------------------------------
def _att_gt(panel, outcome, control_group, covariates, cluster, cohort=COHORT, anticipation=HEADLINE.anticipation,
            **kwargs) -> DiDResult:
    spec = Spec("cs", control_group, covariates, cluster, anticipation)
    data, covs = covariate_columns(panel, list(spec.covariates))
    return att_gt(data, outcome, **spec.cs_arguments(covs, cohort=cohort), **kwargs)


def cs_simple(panel: pd.DataFrame, outcome: str, control_group: str = "notyet",
              covariates: Sequence[str] = DEFAULT_COVARIATES, cluster: str = "township",
              anticipation: int = HEADLINE.anticipation, allow_unbalanced: bool = False) -> DiDResult:
    """Callaway-Sant'Anna simple ATT with the study's choices, any of which can be changed.

    With the defaults this is the headline of :func:`analysis.estimate.estimate` (``"cs"``):
    doubly robust, baseline covariates, varying base period, analytic clustered standard
    errors.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    outcome : str
        Outcome column.
    control_group : {"notyet", "never"}, default "notyet"
        Comparison villages.
    covariates : sequence of str
        Canonical covariates (at baseline), possibly empty.
    cluster : {"township", "county", "village"}, default "township"
        Clustering level.
    anticipation : int, default ``HEADLINE.anticipation`` (1)
        Years before the cohort year in which effects may start (base period ``g - 1 - a``): the
        headline leaves the arrival year out (:mod:`analysis.core.spec`).
    allow_unbalanced : bool, default False
        Allow an unbalanced panel (repeated cross-section estimators per cell).

    Returns
    -------
    DiDResult
        One row, aggregation ``"simple"``.
    """
    r = _att_gt(panel, outcome, control_group, covariates, cluster, anticipation=anticipation,
                allow_unbalanced=allow_unbalanced)
    return aggregate(r, "simple")


def event_study(panel: pd.DataFrame, outcome: str, control_group: str = "notyet",
                covariates: Sequence[str] = DEFAULT_COVARIATES, cluster: str = "township") -> DiDResult:
    """Callaway-Sant'Anna event study with a universal base period (``e = -1``), for sensitivity analysis.

    Pre-period coefficients are then cumulative deviations from the year before treatment, as
    HonestDiD and the pre-trend power calculation need (the varying base period's pre-period
    estimates are one-year placebo differences).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    outcome, control_group, covariates, cluster
        As in :func:`cs_simple`.

    Returns
    -------
    DiDResult
        Rows with aggregation ``"event"`` (the reference ``e=-1`` with estimate 0 and no
        standard error) and ``vcov``.
    """
    r = _att_gt(panel, outcome, control_group, covariates, cluster, base_period="universal")
    return aggregate(r, "event")


def spillover_did(panel: pd.DataFrame, outcome: str, covariates: Sequence[str] = DEFAULT_COVARIATES,
                  cluster: str = "township", threshold: float = HIGH_SHARE) -> DiDResult:
    """Spillover DiD among never-treated villages: high-share townships against the others.

    Among villages that never receive a first secretary, "treatment" is being in a high-share
    township (at least ``threshold`` of its villages treated), starting in the year of the
    township's first cohort; villages of the other townships are the comparison group. The
    estimate is the Callaway-Sant'Anna simple ATT (doubly robust with the baseline covariates,
    never-"treated" comparisons, clustered by ``cluster``): the average change of untreated
    villages' outcomes once most of their township has a first secretary, relative to untreated
    villages in lightly treated townships.

    Assumptions: parallel trends (given covariates) between never-treated villages of high- and
    low-share townships; no spillover onto the villages of low-share townships (otherwise the
    estimate is the *difference* between the two spillovers). Townships are not randomly highly
    treated (targeting favours poor, disorderly areas), so covariates matter.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    outcome : str
        Outcome column.
    covariates : sequence of str
        Canonical covariates.
    cluster : {"township", "county", "village"}, default "township"
        Clustering level (the exposure varies by township).
    threshold : float, default 0.5
        High-share threshold.

    Returns
    -------
    DiDResult
        One row (aggregation ``"simple"``, control group ``"never"``); ``design`` holds the
        counts of exposed and comparison villages and townships.

    Raises
    ------
    ValueError
        If there are no never-treated villages in high-share or in low-share townships.
    """
    sample = spillover_sample(panel, threshold)
    v = sample.drop_duplicates(UNIT)
    exposed = v["exposure_cohort"] > 0
    if not exposed.any() or exposed.all():
        raise ValueError(
            "the spillover comparison needs never-treated villages both in high-share townships "
            f"(share treated >= {threshold}) and in the other townships; found {int(exposed.sum())} "
            f"and {int((~exposed).sum())}"
        )
    # Exposure starts in the township's first cohort year, as this check defines it: it keeps the six-month
    # coding (anticipation 0) rather than the headline's arrival-year rule.
    res = aggregate(_att_gt(sample, outcome, "never", covariates, cluster, cohort="exposure_cohort", anticipation=0),
                    "simple")
    res.design = SpilloverDesign(
        threshold=threshold,
        exposed_villages=int(exposed.sum()),
        exposed_townships=int(v.loc[exposed, "township_code"].nunique()),
        comparison_villages=int((~exposed).sum()),
        comparison_townships=int(v.loc[~exposed, "township_code"].nunique()),
    )
    return res


# ----------------------------------------------------------------------------------
# alternative specifications
# ----------------------------------------------------------------------------------
def alternative_specifications(panel: pd.DataFrame, outcomes: Sequence[str], control_group: str = "notyet",
                               covariates: Sequence[str] = DEFAULT_COVARIATES, cluster: str = "township",
                               seed: int | None = None, drop_share: float = DROP_SHARE,
                               threshold: float = HIGH_SHARE) -> pd.DataFrame:
    """Estimate the headline CS simple ATT with one choice changed at a time.

    Specifications (keys of :data:`SPECS`), each changing one thing from the headline:

    * ``headline``: ``control_group``, ``covariates``, ``cluster`` as given;
    * ``control_never`` / ``control_notyet``: the other comparison group;
    * ``anticipation_0``: the arrival year kept as base and comparison year (the six-month coding
      alone, no anticipation): the headline leaves it out because secretaries who arrive mid-year
      may already act in it (:mod:`analysis.core.spec`, "The arrival year");
    * ``excluding_pilot``: drop the villages of the pilot district
      (:func:`analysis.core.treatment.pilot_counties`);
    * ``unbalanced_5pct``: drop ``drop_share`` of village-years at random
      (:func:`drop_village_years`, seeded by ``seed``) and estimate with
      ``allow_unbalanced=True``;
    * ``no_covariates``: unconditional parallel trends;
    * ``cluster_county`` (or ``cluster_township`` if the headline clusters by county): the
      same estimate, other standard errors (9 clusters: analytic SEs are then unreliable);
    * ``controls_low_share_townships``: never-treated comparisons only, from townships where
      under ``threshold`` of the villages are treated (:func:`low_share_controls`); compare it
      with ``control_never`` to isolate the effect of dropping possibly exposed controls.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    outcomes : sequence of str
        Outcomes.
    control_group, covariates, cluster
        The headline's choices (see :func:`cs_simple`).
    seed : int, optional
        Seed of the unbalanced-panel draw.
    drop_share : float, default 0.05
        Share of village-years dropped for ``unbalanced_5pct``.
    threshold : float, default 0.5
        High-share threshold for ``controls_low_share_townships``.

    Returns
    -------
    pandas.DataFrame
        One row per outcome and specification (outcome-major, specifications in the order
        above): ``outcome``, ``spec``, ``description`` (English), the tidy columns of the
        estimate (:data:`analysis.results.TIDY_COLUMNS`), ``diff_vs_headline`` and ``note``
        (empty, or why a specification could not be estimated: its estimate is then missing).
    """
    other_cg = "never" if control_group == "notyet" else "notyet"
    other_cl = "county" if cluster != "county" else "township"
    base = dict(control_group=control_group, covariates=list(covariates), cluster=cluster)
    notes: dict[str, str] = {}

    # The three panels with rows left out are copies of the panel (1.1 GB each at national size): each is
    # made when its specification is estimated, for every outcome, and released before the next one.
    def no_pilot() -> pd.DataFrame | None:
        try:
            pilots = pilot_counties(panel)
        except ValueError as err:  # no pilot district: the specification is reported as not estimable
            notes["excluding_pilot"] = str(err)
            return None
        notes["excluding_pilot"] = "pilot district(s) dropped: " + ", ".join(pilots)
        return panel.loc[~panel["county_code"].astype(str).isin(pilots)]

    def unbalanced() -> pd.DataFrame:
        frame = drop_village_years(panel, drop_share, seed)
        notes["unbalanced_5pct"] = (f"{len(panel) - len(frame)} of {len(panel)} village-years dropped at random "
                                    f"(share {drop_share:g}, seed {seed})")
        return frame

    def low_share() -> pd.DataFrame:
        frame, info = low_share_controls(panel, threshold)
        notes["controls_low_share_townships"] = (
            f"comparison: {info['controls']} never-treated villages in {info['control_townships']} townships "
            f"with share treated < {threshold:g} ({info['dropped']} of {info['never_treated']} dropped)")
        return frame

    def whole() -> pd.DataFrame:
        return panel

    specs: list[tuple[str, Any, dict]] = [
        ("headline", whole, base),
        (f"control_{other_cg}", whole, {**base, "control_group": other_cg}),
        ("anticipation_0", whole, {**base, "anticipation": 0}),
        ("excluding_pilot", no_pilot, base),
        ("unbalanced_5pct", unbalanced, {**base, "allow_unbalanced": True}),
        ("no_covariates", whole, {**base, "covariates": []}),
        (f"cluster_{other_cl}", whole, {**base, "cluster": other_cl}),
        ("controls_low_share_townships", low_share, {**base, "control_group": "never"}),
    ]
    estimated: dict[tuple[str, str], tuple[dict, str]] = {}
    for spec, make, kw in specs:
        data = make()
        for outcome in outcomes:
            note = ""
            try:
                if data is None:
                    raise ValueError(notes[spec])
                row = cs_simple(data, outcome, **kw).tidy().iloc[0].to_dict()
            except ValueError as err:
                row = {"outcome": outcome, "estimator": "cs", "aggregation": "simple", "term": "ATT",
                       "estimate": np.nan, "control_group": kw["control_group"]}
                note = str(err)
            estimated[outcome, spec] = row, note
        del data
    rows = []
    for outcome in outcomes:
        head = estimated[outcome, "headline"][0]["estimate"]
        for spec, _, _ in specs:
            row, note = estimated[outcome, spec]
            note = note or notes.get(spec, "")
            desc = (_headline_label(control_group, bool(covariates), cluster, "en") if spec == "headline"
                    else spec_label(spec, "en"))
            rows.append({"spec": spec, "description": desc, **row,
                         "diff_vs_headline": row["estimate"] - head, "note": note})
    out = pd.DataFrame(rows)
    first = ["outcome", "spec", "description"]
    return out[first + [c for c in out.columns if c not in first]].reset_index(drop=True)


# ----------------------------------------------------------------------------------
# sensitivity to violations of parallel trends
# ----------------------------------------------------------------------------------
@dataclass
class HonestSummary:
    r"""Robust intervals for the first-year and average post-period effects (:func:`honest_analysis`).

    Attributes
    ----------
    outcome : str
        Outcome.
    bounds : pandas.DataFrame
        ``target`` (``"e=0"`` or ``"average"``), ``method`` (``"original"``, ``"rm"``, ``"sd"``),
        ``M`` (:math:`\bar M` for ``rm``; outcome units per year squared for ``sd``),
        ``M_multiple`` (``M`` for ``rm``; ``M / sd_unit`` for ``sd``), ``lb``, ``ub``.
    breakdown : pandas.DataFrame
        ``target``, ``method``, ``breakdown`` (largest M at which the robust interval excludes
        zero; NaN if it does not even at M = 0) and ``breakdown_multiple`` (in units of
        ``sd_unit`` for ``sd``).
    estimates : dict
        Target -> point estimate (``e=0``: the event-study coefficient; ``average``: the mean of
        the post-period coefficients).
    sd_unit : float
        Mean standard error of the pre-period event-study coefficients (the unit of the
        smoothness grid).
    result : HonestResult
        The full output of :func:`analysis.inference.honest.honest_from_result`.
    """

    outcome: str
    bounds: pd.DataFrame
    breakdown: pd.DataFrame
    estimates: dict[str, float]
    sd_unit: float
    result: HonestResult = field(repr=False)

    def original(self, target: str) -> tuple[float, float]:
        """Return the conventional interval of a target.

        Parameters
        ----------
        target : {"e=0", "average"}
            Target.

        Returns
        -------
        tuple of float
            ``(lb, ub)``, valid only under exact parallel trends.
        """
        r = self.bounds[(self.bounds["target"] == target) & (self.bounds["method"] == "original")].iloc[0]
        return float(r["lb"]), float(r["ub"])

    def breakdown_of(self, target: str, method: str) -> tuple[float, float]:
        """Return the breakdown value of a target and method.

        Parameters
        ----------
        target : {"e=0", "average"}
            Target.
        method : {"rm", "sd"}
            Restriction.

        Returns
        -------
        tuple of float
            ``(breakdown, breakdown_multiple)``: in the units of ``M`` and in multiples of
            ``sd_unit`` (the same for ``rm``).
        """
        r = self.breakdown[(self.breakdown["target"] == target) & (self.breakdown["method"] == method)].iloc[0]
        return float(r["breakdown"]), float(r["breakdown_multiple"])

    def at(self, target: str, method: str, multiple: float) -> tuple[float, float]:
        r"""Return the robust interval at one value of the grid.

        Parameters
        ----------
        target : {"e=0", "average"}
            Target.
        method : {"rm", "sd"}
            Restriction.
        multiple : float
            Grid value as ``M_multiple`` (:math:`\bar M`, or multiples of ``sd_unit``).

        Returns
        -------
        tuple of float
            ``(lb, ub)``.

        Raises
        ------
        KeyError
            If the grid has no such value.
        """
        b = self.bounds
        r = b[(b["target"] == target) & (b["method"] == method) & np.isclose(b["M_multiple"], multiple)]
        if r.empty:
            raise KeyError(f"no {method} bound at {multiple} for {target}")
        return float(r["lb"].iloc[0]), float(r["ub"].iloc[0])


def honest_analysis(es: DiDResult, rm_grid: Sequence[float] = RM_GRID, sd_multiples: Sequence[float] = SD_MULTIPLES,
                    seed: int | None = 0) -> HonestSummary:
    r"""HonestDiD bounds and breakdown values for the ``e=0`` and average post-period effects.

    Relative magnitudes (:math:`\bar M` in ``rm_grid``, C-LF hybrid test) and smoothness (``M``
    = each of ``sd_multiples`` times the mean pre-period standard error, optimal FLCI), by
    :func:`analysis.inference.honest.honest_from_result`; breakdown values by
    :func:`analysis.inference.honest.breakdown_value` for the two targets only.

    Parameters
    ----------
    es : DiDResult
        Event study with a universal base period (:func:`event_study`).
    rm_grid : sequence of float
        Values of :math:`\bar M`.
    sd_multiples : sequence of float
        Values of ``M`` as multiples of the mean pre-period standard error.
    seed : int, optional
        Seed of the least-favourable critical value draws (the same draws for every value).

    Returns
    -------
    HonestSummary
        Bounds, breakdown values, point estimates and the smoothness unit.

    Raises
    ------
    ValueError
        If ``es`` is not a usable event study (e.g. a varying base period), has no pre-period
        coefficient besides the reference, or no post-period coefficient.

    Notes
    -----
    The bounds assume no effect before the event study's reference period (``e = -1 -
    anticipation``: the headline leaves the arrival year out, so its ``e = -1`` is a post-period
    of the restriction but not a target); pre-period coefficients measure trends only. The bounds
    are pointwise in ``M`` and across targets.
    """
    t = es.tidy("event")
    pre = t[(t["event_time"] < -1) & np.isfinite(t["std_error"].to_numpy(float))]
    if pre.empty:
        raise ValueError("the event study has no pre-period coefficient before e=-1")
    unit = float(pre["std_error"].mean())
    sd_grid = [float(m) * unit for m in sd_multiples]
    h = honest_from_result(es, methods=("rm", "sd"), rm_grid=list(rm_grid), sd_grid=sd_grid, breakdown=False,
                           seed=seed)
    K, T = h.num_pre, h.num_post
    post_t = np.asarray(h.event_times[K:], dtype=float)
    targets: dict[str, np.ndarray] = {}
    if np.any(post_t == 0):
        targets["e=0"] = (post_t == 0).astype(float)
    nonneg = post_t >= 0
    targets["average"] = np.where(nonneg, 1.0 / nonneg.sum(), 0.0)
    b = h.bounds[h.bounds["target"].isin(list(targets))].copy()
    b["M_multiple"] = np.where(b["method"] == "sd", b["M"] / unit, b["M"])
    b = b[["target", "method", "M", "M_multiple", "lb", "ub"]].reset_index(drop=True)
    rows = []
    for name, lv in targets.items():
        for method, grid in (("rm", list(rm_grid)), ("sd", sd_grid)):
            top = max(grid) if max(grid) > 0 else None
            bd = breakdown_value(h.betahat, h.sigma, K, T, method, lv, m_max=top, seed=seed)
            rows.append({"target": name, "method": method, "breakdown": bd,
                         "breakdown_multiple": bd / unit if method == "sd" else bd})
    estimates = {name: float(lv @ h.betahat[K:]) for name, lv in targets.items()}
    return HonestSummary(es.outcome, b, pd.DataFrame(rows), estimates, unit, h)


@themed
def plot_honest(h: HonestSummary, lang: str = "zh"):
    """Robust confidence intervals against M̄ (left) and M (right), the original interval marked.

    Parameters
    ----------
    h : HonestSummary
        Output of :func:`honest_analysis`.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels; each shows, for the first-year and the average post-period effect, the
        conventional interval (left of the grid, marked "Original", dotted) and the robust
        interval at each grid value; the panel titles give the breakdown values (in the units
        of the x axis).
    """
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    colours = {"e=0": "#1f77b4", "average": "#d62728"}
    names = {"e=0": t("target.e0.label", lang), "average": t("target.average.label", lang)}
    targets = [tg for tg in ("e=0", "average") if tg in set(h.bounds["target"])]
    for ax, method in zip(axes, ("rm", "sd"), strict=True):
        b = h.bounds[h.bounds["method"] == method]
        grid = np.sort(b["M_multiple"].unique())
        step = float(np.min(np.diff(grid))) if len(grid) > 1 else 1.0
        x0 = grid.min() - step
        for j, tgt in enumerate(targets):
            off = (j - (len(targets) - 1) / 2) * 0.12 * step
            rows = b[b["target"] == tgt].sort_values("M_multiple")
            x = rows["M_multiple"].to_numpy(float) + off
            lo, hi = rows["lb"].to_numpy(float), rows["ub"].to_numpy(float)
            ax.vlines(x, lo, hi, colors=colours[tgt], lw=2.2, label=names[tgt])
            ax.plot(x, lo, "_", color=colours[tgt], ms=8)
            ax.plot(x, hi, "_", color=colours[tgt], ms=8)
            olo, ohi = h.original(tgt)
            ax.vlines([x0 + off], [olo], [ohi], colors=colours[tgt], lw=2.2, linestyles=":")
            ax.plot([x0 + off], [h.estimates[tgt]], "o", color=colours[tgt], ms=4)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.axvspan(x0 - step / 2, x0 + step / 2, color="0.92", zorder=0)
        ticks = [x0, *grid.tolist()]
        ax.set_xticks(ticks, [t("robustness.figure.original", lang)] + [f"{g:g}" for g in grid])
        ax.set_xlim(x0 - step / 2, grid.max() + step / 2)
        short = {"e=0": t("target.e0.short", lang), "average": t("target.average.short", lang)}
        bds = t("punct.comma", lang).join(f"{short[tgt]} {_fmt(h.breakdown_of(tgt, method)[1], 3)}" for tgt in targets)
        title = t("robustness.figure.rm_title" if method == "rm" else "robustness.figure.sd_title", lang)
        ax.set_title(f"{title}\n{t('robustness.figure.breakdown', lang)}{bds}", fontsize=10)
        if method == "rm":
            ax.set_xlabel(t("robustness.figure.rm_axis", lang))
            ax.set_ylabel(t("robustness.figure.ci", lang, name=column_label(h.outcome, lang)))
        else:
            ax.set_xlabel(t("robustness.figure.sd_axis", lang, unit=_fmt(h.sd_unit)))
        ax.legend(frameon=False, fontsize=8, loc="upper left")
    fig.suptitle(t("robustness.figure.title", lang, outcome=column_label(h.outcome, lang)))
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------
# pre-trend power, wild bootstrap, randomisation inference
# ----------------------------------------------------------------------------------
def pretrend_power_summary(es: DiDResult, test: str = PRETREND_TEST) -> dict[str, Any]:
    """Linear pre-trends the pre-test detects with 50% and 80% power, and the bias they imply.

    Parameters
    ----------
    es : DiDResult
        Event study with a universal base period (:func:`event_study`).
    test : {"wald", "individual"}, default "wald"
        Pre-test (see :data:`PRETREND_TEST`).

    Returns
    -------
    dict
        ``test``; ``slope_50``, ``slope_80`` (outcome units per year); ``bias_50``, ``bias_80``
        (event time -> bias ``slope * (e + 1)`` of each post-period coefficient);
        ``avg_bias_50``, ``avg_bias_80`` (their mean: the bias of the average post-period
        effect); ``avg_bias_given_pass_80`` (its expectation conditional on passing the
        pre-test); ``average_effect`` (the event study's average post-period effect) and
        ``bias_share_80`` (``avg_bias_80 / |average_effect|``).
    """
    tab = pretrend_power_from_result(es, powers=(0.5, 0.8), test=test)
    t = es.tidy("event")
    overall = t[t["event_time"].isna() & t["term"].astype(str).str.startswith("overall")]
    avg = float(overall["estimate"].iloc[0]) if not overall.empty else float("nan")
    out: dict[str, Any] = {"test": test, "average_effect": avg}
    for p, key in ((0.5, "50"), (0.8, "80")):
        rows = tab[np.isclose(tab["power"], p) & (tab["event_time"] >= 0)]
        out[f"slope_{key}"] = float(rows["slope"].iloc[0])
        out[f"bias_{key}"] = {f"e={e:g}": float(b) for e, b in zip(rows["event_time"], rows["bias"], strict=True)}
        out[f"avg_bias_{key}"] = float(rows["bias"].mean())
        out[f"avg_bias_given_pass_{key}"] = float(rows["bias_given_pass"].mean())
    out["bias_share_80"] = out["avg_bias_80"] / abs(avg) if avg else float("nan")
    return out


def wild_summary(panel: pd.DataFrame, outcome: str, cluster: str = "township", B: int = 999,
                 seed: int | None = None) -> dict[str, Any] | None:
    """Wild cluster bootstrap-t (Webb weights, null imposed) for the static TWFE coefficient.

    The regression is the benchmark static TWFE without covariates (the wild bootstrap here
    supports none); the conventional CRV1 interval and p-value of the same regression are
    reported beside the bootstrap ones.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel. Not modified.
    outcome : str
        Outcome column.
    cluster : {"township", "county", "village"}, default "township"
        Clusters.
    B : int, default 999
        Bootstrap draws; 0 skips the bootstrap (returns None).
    seed : int, optional
        Seed of the draws.

    Returns
    -------
    dict or None
        ``estimate``, ``std_error`` (CRV1), ``p_value`` and ``conf_low``/``conf_high`` (wild
        bootstrap, test inversion), ``crv1_p_value`` and ``crv1_conf_low``/``crv1_conf_high``
        (t(G-1), the study's convention), ``B``, ``weights``, ``cluster``, ``n_clusters``, ``seed``.
    """
    if B == 0:
        return None
    from analysis.inference.wild import wild_cluster_bootstrap

    w = wild_cluster_bootstrap(panel, outcome, UNIT, TIME, COHORT, cluster=cluster_column(cluster),
                               weights=WILD_WEIGHTS, B=int(B), seed=seed)
    lo, hi, p = intervals(w.estimate, w.std_error, df=t_df(w.n_clusters))
    return {"estimate": w.estimate, "std_error": w.std_error, "p_value": w.p_value_zero, "conf_low": w.conf_low,
            "conf_high": w.conf_high, "crv1_p_value": float(p), "crv1_conf_low": float(lo),
            "crv1_conf_high": float(hi), "B": w.B, "weights": w.weights, "cluster": cluster,
            "n_clusters": w.n_clusters, "seed": seed, "regression": "static TWFE, no covariates"}


def randomisation_summary(panel: pd.DataFrame, outcome: str, B: int = 999, seed: int | None = None,
                          control_group: str = "notyet", strata: str = RANDOMISATION_STRATA[0],
                          covariates: Sequence[str] = DEFAULT_COVARIATES) -> dict[str, Any] | None:
    """Randomisation inference for the sharp null, re-drawing cohorts within county and propensity bin.

    Permuting cohorts within county keeps the roll-out's design: only the pilot district has
    villages of the pilot cohort, and every other district keeps its number of city-batch
    and never-treated villages. Within county alone, though, a village chosen for its weak
    economy could be re-assigned the cohort of a prosperous one, although the city chose
    villages on purpose; the default therefore permutes within county x propensity quintile
    (:func:`analysis.inference.randomisation.propensity_strata`), so the null it tests is
    "no effect in any village, and assignment as good as random among villages of the same
    county with a similar propensity of selection given the headline's covariates". The
    statistic is the unconditional CS simple ATT
    (:func:`analysis.inference.randomisation.randomisation_inference`), so its observed value
    differs from the covariate-adjusted headline. The rejection rates of both strata under a
    true null are measured by :func:`analysis.grid.checks.check_replication` (README,
    "Calibration").

    Parameters
    ----------
    panel : pandas.DataFrame
        Balanced analysis panel. Not modified.
    outcome : str
        Outcome column.
    B : int, default 999
        Re-drawn assignments; 0 skips the test (returns None).
    seed : int, optional
        Seed of the draws.
    control_group : {"notyet", "never"}, default "notyet"
        Comparison group of the statistic.
    strata : {"county_propensity", "county"}, default "county_propensity"
        Permute within county x propensity quintile, or within county.
    covariates : sequence of str, default the headline's
        Baseline covariates of the propensity score
        (:func:`analysis.inference.randomisation.propensity_strata`); with none, the strata are
        the counties.

    Returns
    -------
    dict or None
        ``observed``, ``p_value``, ``B``, ``strata``, ``statistic``, ``control_group``,
        ``seed``, ``share_as_extreme`` (share of draws with ``|T_b| >= |T_obs|``), ``draws_sd``,
        ``n_strata``; or ``{"available": False, "note": ...}`` if the panel is unbalanced.
    """
    if B == 0:
        return None
    from analysis.inference.randomisation import randomisation_inference

    if strata not in RANDOMISATION_STRATA:
        raise ValueError(f"strata must be one of {RANDOMISATION_STRATA}, got {strata!r}")
    try:
        data, column = _ri_strata(panel, strata, covariates)
        r = randomisation_inference(data, outcome, UNIT, TIME, COHORT, statistic="cs_simple", strata=column,
                                    B=int(B), seed=seed, control_group=control_group)
    except ValueError as err:
        return {"available": False, "note": str(err)}
    return _ri_record(r, strata, control_group, seed, int(data[column].nunique()))


def _ri_strata(panel: pd.DataFrame, strata: str, covariates: Sequence[str]) -> tuple[pd.DataFrame, str]:
    """Return the panel with the column the cohorts are permuted within, and its name."""
    if strata == "county_propensity" and len(covariates):
        from analysis.inference.randomisation import propensity_strata

        column = "propensity_stratum"
        return panel.assign(**{column: panel[UNIT].map(propensity_strata(panel, covariates=covariates))}), column
    return panel, "county_code"


def _ri_record(r, strata: str, control_group: str, seed: int | None, n_strata: int) -> dict[str, Any]:
    extreme = float(np.mean(np.abs(r.draws) >= abs(r.observed) * (1 - 1e-9)))
    return {"available": True, "observed": r.observed, "p_value": r.p_value, "B": r.B, "strata": strata,
            "statistic": "CS simple ATT, no covariates", "control_group": control_group, "seed": seed,
            "share_as_extreme": extreme, "draws_sd": float(np.std(r.draws)), "n_strata": n_strata}


def randomisation_summaries(panel: pd.DataFrame, outcomes: Sequence[str], B: int = 999, seed: int | None = None,
                            control_group: str = "notyet", strata: str = RANDOMISATION_STRATA[0],
                            covariates: Sequence[str] = DEFAULT_COVARIATES) -> dict[str, dict[str, Any] | None]:
    """:func:`randomisation_summary` of several outcomes, on one set of draws and one set of strata.

    Each outcome's record equals :func:`randomisation_summary`'s (the draws depend on the cohorts,
    strata and seed only: :func:`analysis.inference.randomisation.randomisation_inference_outcomes`),
    but the propensity strata are fitted and the assignments drawn once for all outcomes; at national
    size drawing them took 58 s per outcome. If any outcome cannot be tested, each is tested alone,
    so the others keep their results and the failing one its note.

    Parameters
    ----------
    panel : pandas.DataFrame
        Balanced analysis panel. Not modified.
    outcomes : sequence of str
        Outcome columns.
    B, seed, control_group, strata, covariates
        As :func:`randomisation_summary`.

    Returns
    -------
    dict
        Outcome -> the record of :func:`randomisation_summary` (None for every outcome if ``B`` is 0).
    """
    if B == 0:
        return {o: None for o in outcomes}
    from analysis.inference.randomisation import randomisation_inference_outcomes

    if strata not in RANDOMISATION_STRATA:
        raise ValueError(f"strata must be one of {RANDOMISATION_STRATA}, got {strata!r}")
    try:
        data, column = _ri_strata(panel, strata, covariates)
        results = randomisation_inference_outcomes(data, list(outcomes), UNIT, TIME, COHORT, statistic="cs_simple",
                                                   strata=column, B=int(B), seed=seed, control_group=control_group)
    except ValueError:
        return {o: randomisation_summary(panel, o, B=B, seed=seed, control_group=control_group, strata=strata,
                                         covariates=covariates) for o in outcomes}
    n_strata = int(data[column].nunique())
    return {o: _ri_record(results[o], strata, control_group, seed, n_strata) for o in outcomes}


def check_calibration(path=None) -> pd.DataFrame:
    """Measured rejection rates at 5% of randomisation inference and the spillover check (committed records).

    Read from the records of :mod:`analysis.grid.checks` (:data:`analysis.paths.CHECK_RECORDS`,
    500 simulated cities per scenario), so the notebook shows, beside each verdict, how often
    that verdict is wrong on a city built like this one: under ``no_effect`` every rejection is
    a false one; under ``spillover_rule`` the spillover check's rejections are detections.

    Parameters
    ----------
    path : path-like, optional
        Records file (default :data:`analysis.paths.CHECK_RECORDS`).

    Returns
    -------
    pandas.DataFrame
        ``scenario, check, method, outcome, null_true, replications, rejection_rate, mc_se``;
        empty if the file does not exist.
    """
    from analysis import paths
    from analysis.grid.checks import summarise

    f = paths.CHECK_RECORDS if path is None else path
    cols = ["scenario", "check", "method", "outcome", "null_true", "replications", "rejection_rate", "mc_se"]
    try:
        records = pd.read_csv(f, keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        return pd.DataFrame(columns=cols)
    s = summarise(records, levels=(0.05,))
    return s[cols].reset_index(drop=True)


def honest_tables(honest: dict[str, HonestSummary]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stack the bounds and the breakdown values of several outcomes.

    Parameters
    ----------
    honest : dict
        Outcome -> :class:`HonestSummary`.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        Bounds (``outcome`` + :attr:`HonestSummary.bounds`) and breakdown values (``outcome`` +
        :attr:`HonestSummary.breakdown` + ``estimate`` of the target and ``sd_unit``).
    """
    bounds = pd.concat([h.bounds.assign(outcome=o) for o, h in honest.items()], ignore_index=True)
    bounds = bounds[["outcome", *[c for c in bounds.columns if c != "outcome"]]]
    bd = pd.concat([h.breakdown.assign(outcome=o, estimate=h.breakdown["target"].map(h.estimates), sd_unit=h.sd_unit)
                    for o, h in honest.items()], ignore_index=True)
    bd = bd[["outcome", "target", "estimate", "method", "breakdown", "breakdown_multiple", "sd_unit"]]
    return bounds, bd


def as_table(results: Mapping[str, dict[str, Any] | None]) -> pd.DataFrame:
    """Turn ``{outcome: {name: value}}`` into a table of the scalar values (one row per outcome).

    Parameters
    ----------
    results : dict
        Outcome -> dict (e.g. from :func:`wild_summary`), or None (skipped).

    Returns
    -------
    pandas.DataFrame
        ``outcome`` and every scalar entry (nested dicts and lists are left out).
    """
    rows = [{"outcome": o, **{k: v for k, v in r.items() if not isinstance(v, dict | list)}}
            for o, r in results.items() if r is not None]
    return pd.DataFrame(rows)


def spillover_table(spillover: Mapping[str, DiDResult]) -> pd.DataFrame:
    """Stack the spillover estimates of several outcomes with their designs (counts of villages and townships).

    Parameters
    ----------
    spillover : mapping
        Outcome -> :func:`spillover_did` result.

    Returns
    -------
    pandas.DataFrame
        The tidy row of each estimate (without ``options``) and the entries of its design.
    """
    return pd.concat([sp.tidy().assign(**(sp.design.as_dict() if sp.design is not None else {}))
                      for sp in spillover.values()], ignore_index=True).drop(columns=["options"])


# ----------------------------------------------------------------------------------
# summary, results.json, findings
# ----------------------------------------------------------------------------------
def _alt(alt: pd.DataFrame, outcome: str, spec: str) -> pd.Series | None:
    r = alt[(alt["outcome"] == outcome) & (alt["spec"] == spec)]
    return None if r.empty else r.iloc[0]


def _headline(alt: pd.DataFrame, outcome: str) -> pd.Series:
    """Return the headline row of an outcome's alternative specifications (always estimated)."""
    head = _alt(alt, outcome, "headline")
    if head is None:
        raise ValueError(f"no headline row for {outcome!r} among the alternative specifications")
    return head


def _fmt_p(p: float, draws: int | None = None) -> str:
    """Format a p-value with its relation sign ("= 0.012", "< 0.001"); 0 out of ``draws`` is "< 1/draws"."""
    if p is None or not np.isfinite(p):
        return "= —"
    if p == 0 and draws:
        return f"< {1 / draws:.2g}"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def _sig(lo: float, hi: float) -> bool:
    return bool(np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0))


def _honest_sentence(h: HonestSummary, lang: str) -> str:
    bd_rm, _ = h.breakdown_of("average", "rm")
    bd_sd, bd_sd_m = h.breakdown_of("average", "sd")
    avg = _fmt(h.estimates["average"])
    if np.isnan(bd_rm):
        return t("robustness.finding.honest_none", lang, average=avg)
    rm_txt = _fmt(bd_rm, 2) if np.isfinite(bd_rm) else "∞"
    s = t("robustness.finding.honest_rm", lang, rm=rm_txt, average=avg)
    if np.isfinite(bd_sd):
        s += t("robustness.finding.honest_sd", lang, sd=_fmt(bd_sd), multiple=bd_sd_m)
    return s + t("punct.period", lang)


def _power_sentence(pw: dict, lang: str) -> str:
    test = t("robustness.finding.wald" if pw["test"] == "wald" else "robustness.finding.individual", lang)
    return t("robustness.finding.power", lang, test=test[:1].upper() + test[1:], slope_50=_fmt(pw["slope_50"]),
             slope_80=_fmt(pw["slope_80"]), bias_80=_fmt(pw["avg_bias_80"]), effect=_fmt(pw["average_effect"]),
             share=pw["bias_share_80"])


def summary_table(outcomes: Sequence[str], alternatives: pd.DataFrame, honest: dict[str, HonestSummary],
                  power: dict[str, dict], wild: dict[str, dict | None], randomisation: dict[str, dict | None],
                  spillover: dict[str, DiDResult], lang: str = "zh") -> pd.DataFrame:
    """One table of every check: outcome, check, estimate or bound, interval or p-value, meaning.

    Parameters
    ----------
    outcomes : sequence of str
        Outcomes, in order.
    alternatives : pandas.DataFrame
        Output of :func:`alternative_specifications`.
    honest : dict
        Outcome -> :class:`HonestSummary`.
    power : dict
        Outcome -> :func:`pretrend_power_summary`.
    wild : dict
        Outcome -> :func:`wild_summary` (or None).
    randomisation : dict
        Outcome -> :func:`randomisation_summary` (or None).
    spillover : dict
        Outcome -> :func:`spillover_did` result.
    lang : {"zh", "en"}
        Language of ``meaning``.

    Returns
    -------
    pandas.DataFrame
        ``outcome``, ``check``, ``estimate`` (an estimate, a breakdown value or a slope),
        ``conf_low``, ``conf_high``, ``p_value``, ``meaning``. Checks: ``headline``,
        ``honest_rm`` (breakdown M̄ of the average effect; interval at M̄ = 1), ``honest_sd``
        (breakdown M; interval at M = 1 pre-period SE), ``pretrend_power`` (slope detected with
        80% power), ``wild_bootstrap``, ``randomisation``, every alternative specification and
        ``spillover``.
    """
    rows = []
    for o in outcomes:
        head = _headline(alternatives, o)
        rows.append({"outcome": o, "check": "headline", "estimate": head["estimate"], "conf_low": head["conf_low"],
                     "conf_high": head["conf_high"], "p_value": head["p_value"],
                     "meaning": _row_label(head, lang)})
        h = honest.get(o)
        if h is not None:
            bd, _ = h.breakdown_of("average", "rm")
            lo, hi = h.at("average", "rm", 1.0) if np.any(np.isclose(h.bounds["M_multiple"], 1.0)) else (np.nan,) * 2
            rows.append({"outcome": o, "check": "honest_rm", "estimate": bd, "conf_low": lo, "conf_high": hi,
                         "p_value": np.nan, "meaning": t("robustness.meaning.honest_rm", lang)})
            bd, bdm = h.breakdown_of("average", "sd")
            lo, hi = h.at("average", "sd", 1.0) if np.any(np.isclose(h.bounds["M_multiple"], 1.0)) else (np.nan,) * 2
            rows.append({"outcome": o, "check": "honest_sd", "estimate": bd, "conf_low": lo, "conf_high": hi,
                         "p_value": np.nan, "meaning": t("robustness.meaning.honest_sd", lang, multiple=bdm)})
        pw = power.get(o)
        if pw is not None:
            rows.append({"outcome": o, "check": "pretrend_power", "estimate": pw["slope_80"], "conf_low": np.nan,
                         "conf_high": np.nan, "p_value": np.nan, "meaning": _power_sentence(pw, lang)})
        w = wild.get(o)
        if w is not None:
            rows.append({"outcome": o, "check": "wild_bootstrap", "estimate": w["estimate"],
                         "conf_low": w["conf_low"], "conf_high": w["conf_high"], "p_value": w["p_value"],
                         "meaning": t("robustness.meaning.wild", lang, clusters=w["n_clusters"], draws=w["B"],
                                      low=_fmt(w["crv1_conf_low"]), high=_fmt(w["crv1_conf_high"]))})
        ri = randomisation.get(o)
        if ri is not None and ri.get("available", True):
            rows.append({"outcome": o, "check": "randomisation", "estimate": ri["observed"], "conf_low": np.nan,
                         "conf_high": np.nan, "p_value": ri["p_value"],
                         "meaning": t("robustness.meaning.randomisation", lang, draws=ri["B"],
                                      strata=t(f"robustness.strata.{ri['strata']}", lang))})
        for r in alternatives[(alternatives["outcome"] == o) & (alternatives["spec"] != "headline")].itertuples():
            rows.append({"outcome": o, "check": r.spec, "estimate": r.estimate, "conf_low": r.conf_low,
                         "conf_high": r.conf_high, "p_value": r.p_value, "meaning": spec_label(r.spec, lang)})
        sp = spillover.get(o)
        if sp is not None:
            s = sp.tidy().iloc[0]
            d = sp.design.as_dict() if sp.design is not None else {}
            rows.append({"outcome": o, "check": "spillover", "estimate": s["estimate"], "conf_low": s["conf_low"],
                         "conf_high": s["conf_high"], "p_value": s["p_value"],
                         "meaning": t("robustness.meaning.spillover", lang, exposed=d.get("exposed_villages"),
                                      comparison=d.get("comparison_villages"), threshold=d.get("threshold"))})
    return pd.DataFrame(rows, columns=["outcome", "check", "estimate", "conf_low", "conf_high", "p_value", "meaning"])


def _honest_block(h: HonestSummary, target: str) -> dict[str, Any]:
    b = h.bounds[h.bounds["target"] == target]
    lo, hi = h.original(target)
    bd_rm, _ = h.breakdown_of(target, "rm")
    bd_sd, bd_sd_m = h.breakdown_of(target, "sd")

    def pts(method):
        r = b[b["method"] == method]
        return [{"M": m, "M_multiple": mm, "lb": lb, "ub": ub}
                for m, mm, lb, ub in zip(r["M"], r["M_multiple"], r["lb"], r["ub"], strict=True)]

    return {"target": target, "estimate": h.estimates[target], "original": {"lb": lo, "ub": hi},
            "rm": pts("rm"), "sd": pts("sd"), "breakdown_rm": bd_rm, "breakdown_sd": bd_sd,
            "breakdown_sd_multiple": bd_sd_m, "sd_unit": h.sd_unit}


def payload(outcomes: Sequence[str], alternatives: pd.DataFrame, honest: dict[str, HonestSummary],
                    power: dict[str, dict], wild: dict[str, dict | None], randomisation: dict[str, dict | None],
                    spillover: dict[str, DiDResult], low_share_info: dict[str, int] | None = None) -> dict[str, Any]:
    """Build the ``robustness`` section of ``results.json``.

    Parameters
    ----------
    outcomes, alternatives, honest, power, wild, randomisation, spillover
        As in :func:`summary_table`.
    low_share_info : dict, optional
        Counts from :func:`low_share_controls`, stored as ``spillover_design["low_share_controls"]``.

    Returns
    -------
    dict
        ``{outcome: {"honest": {...average effect: "rm": [{"M","M_multiple","lb","ub"}], "sd": [...],
        "breakdown_rm", "breakdown_sd", "breakdown_sd_multiple", "original", "estimate", "sd_unit",
        "target": "average", "by_target": {"e=0": {...}, "average": {...}}}, "pretrend_power": {...},
        "wild": {...} | None, "randomisation": {...} | None, "alternatives": {spec: record},
        "spillover": record, "spillover_design": {...}}}``, cleaned for JSON.
    """
    out: dict[str, Any] = {}
    for o in outcomes:
        entry: dict[str, Any] = {}
        h = honest.get(o)
        if h is not None:
            by = {t: _honest_block(h, t) for t in ("e=0", "average") if t in set(h.bounds["target"])}
            entry["honest"] = {**by["average"], "by_target": by}
        entry["pretrend_power"] = power.get(o)
        entry["wild"] = wild.get(o)
        entry["randomisation"] = randomisation.get(o)
        alts = {}
        for r in alternatives[alternatives["outcome"] == o].itertuples(index=False):
            rec = estimate_record(r._asdict())
            rec["note"] = r.note
            alts[r.spec] = rec
        entry["alternatives"] = alts
        sp = spillover.get(o)
        entry["spillover"] = estimate_record(sp.tidy().iloc[0]) if sp is not None else None
        design = sp.design.as_dict() if sp is not None and sp.design is not None else {}
        if low_share_info is not None:
            design["low_share_controls"] = dict(low_share_info)
        entry["spillover_design"] = design
        out[o] = entry
    return clean(out)


def _calibrated_rate(calibration: pd.DataFrame | None, scenario: str, check: str, method: str,
                     outcome: str) -> tuple[float, int] | None:
    """Rejection rate at 5% and cities of one check in the calibration table, if measured."""
    if calibration is None or not len(calibration):
        return None
    c = calibration
    row = c[(c["scenario"] == scenario) & (c["check"] == check) & (c["method"] == method) & (c["outcome"] == outcome)]
    if row.empty or not np.isfinite(row["rejection_rate"].iloc[0]):
        return None
    return float(row["rejection_rate"].iloc[0]), int(row["replications"].iloc[0])


def findings(outcomes: Sequence[str], alternatives: pd.DataFrame, honest: dict[str, HonestSummary],
             power: dict[str, dict], wild: dict[str, dict | None], randomisation: dict[str, dict | None],
             spillover: dict[str, DiDResult], low_share_info: dict[str, int] | None = None,
             lang: str = "zh", calibration: pd.DataFrame | None = None) -> list[str]:
    """State what the checks show, one paragraph per outcome, computed from the results.

    Parameters
    ----------
    outcomes, alternatives, honest, power, wild, randomisation, spillover, low_share_info
        As in :func:`payload`.
    lang : {"zh", "en"}
        Language.
    calibration : pandas.DataFrame, optional
        :func:`check_calibration`. Where it holds the outcome, the randomisation sentence says how
        often that test (same strata) rejects on simulated cities with no effect, and a spillover
        check that finds nothing says how often it detects the simulated spillover at its threshold,
        so that "not significant" is not read as "no spillover".

    Returns
    -------
    list of str
        One paragraph per outcome.
    """
    paras = []
    for o in outcomes:
        head = _headline(alternatives, o)
        s = [t("robustness.finding.headline", lang, name=column_label(o, lang), estimate=_fmt(head["estimate"]),
               low=_fmt(head["conf_low"]), high=_fmt(head["conf_high"]))]
        if o in honest:
            s.append(_honest_sentence(honest[o], lang))
        if o in power:
            s.append(_power_sentence(power[o], lang))
        w = wild.get(o)
        if w is not None:
            ratio = (w["conf_high"] - w["conf_low"]) / (w["crv1_conf_high"] - w["crv1_conf_low"])
            s.append(t("robustness.finding.wild", lang, estimate=_fmt(w["estimate"]), p=_fmt_p(w["p_value"], w["B"]),
                       low=_fmt(w["conf_low"]), high=_fmt(w["conf_high"]), ratio=ratio, clusters=w["n_clusters"],
                       cluster=lookup(f"cluster.{w['cluster']}.label", lang, w["cluster"])))
        ri = randomisation.get(o)
        if ri is not None and ri.get("available", True):
            floor = ri["p_value"] <= 1.0 / (ri["B"] + 1) * (1 + 1e-9)
            s.append(t("robustness.finding.randomisation", lang, draws=ri["B"], observed=_fmt(ri["observed"]),
                       share=ri["share_as_extreme"], p=ri["p_value"],
                       strata=t(f"robustness.strata.{ri['strata']}", lang))
                     + t("robustness.finding.smallest_p" if floor else "punct.period", lang))
            size = _calibrated_rate(calibration, "no_effect", "randomisation", ri["strata"], o)
            if size is not None:
                s.append(t("robustness.finding.randomisation_size", lang, rate=size[0], cities=size[1]))
        alt = alternatives[(alternatives["outcome"] == o) & (alternatives["spec"] != "headline")
                           & alternatives["estimate"].notna()]
        if not alt.empty:
            n_sig = int(sum(_sig(a, b) for a, b in zip(alt["conf_low"], alt["conf_high"], strict=True)))
            same_sign = int((np.sign(alt["estimate"]) == np.sign(head["estimate"])).sum())
            s.append(t("robustness.finding.alternatives", lang, n=len(alt), low=_fmt(alt["estimate"].min()),
                       high=_fmt(alt["estimate"].max()), same=same_sign, significant=n_sig))
        sp = spillover.get(o)
        if sp is not None:
            r = sp.tidy().iloc[0]
            sig = _sig(r["conf_low"], r["conf_high"])
            share = sp.design.threshold if sp.design is not None else HIGH_SHARE
            s.append(t("robustness.finding.spillover", lang, estimate=_fmt(r["estimate"]), low=_fmt(r["conf_low"]),
                       high=_fmt(r["conf_high"]), threshold=share)
                     + t("robustness.finding.spillover_found" if sig else "robustness.finding.spillover_none", lang))
            power_sp = _calibrated_rate(calibration, "spillover_rule", "spillover", f"threshold_{share:g}", o)
            if not sig and power_sp is not None and power_sp[0] < ADEQUATE_POWER:
                s.append(t("robustness.finding.spillover_power", lang, rate=power_sp[0], cities=power_sp[1],
                           threshold=share))
        low = _alt(alternatives, o, "controls_low_share_townships")
        if low is not None and np.isfinite(low["estimate"]) and low_share_info is not None:
            i = low_share_info
            s.append(t("robustness.finding.low_share", lang, controls=i["controls"], never_treated=i["never_treated"],
                       dropped=i["dropped"], strict_townships=i["strict_townships"],
                       strict_controls=i["strict_controls"], plural="s" if i["strict_townships"] != 1 else "",
                       estimate=_fmt(low["estimate"])))
        paras.append(t("punct.sentence_join", lang).join(s))
    return paras


def draw_figures(honest: Mapping[str, Any], outcomes: Sequence[str], lang: str) -> dict[str, Any]:
    """Draw the stage's figures in one language: the HonestDiD bounds of each outcome.

    Parameters
    ----------
    honest : mapping
        Outcome -> its HonestDiD sensitivity (as :func:`plot_honest` takes it).
    outcomes : sequence of str
        Outcomes, in order.
    lang : {"zh", "en"}
        Label language.

    Returns
    -------
    dict
        ``05_honest_<outcome>`` -> figure.
    """
    return {f"05_honest_{o}": plot_honest(honest[o], lang=lang) for o in outcomes}


def run(panel: pd.DataFrame, params: Mapping[str, Any], truth: Truth | None = None) -> StageResult:
    """Check how much of the headline survives when its assumptions are relaxed (notebook ``05_robustness``).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (:func:`analysis.core.panel.load_analysis_panel`). Not modified.
    params : mapping
        Validated notebook parameters; uses ``outcomes``, ``control_group``, ``covariates``,
        ``cluster``, ``bootstrap_draws`` (0 skips the wild bootstrap and randomisation inference),
        ``randomisation_strata`` (:func:`randomisation_summary`), ``spillover_threshold`` (the
        share of treated villages that makes a township high-share in the spillover check and
        the ``low_share_controls`` alternative), ``seed`` and ``lang``.
    truth : Truth, optional
        Not used.

    Returns
    -------
    StageResult
        Tables ``05_honest_bounds``, ``05_honest_breakdown``, ``05_pretrend_power``,
        ``05_wild_bootstrap`` and ``05_randomisation`` (when drawn), ``05_alternatives``,
        ``05_spillover``, ``05_check_calibration`` (:func:`check_calibration`),
        ``05_robustness_summary``; figures ``05_honest_<outcome>``; the ``robustness`` section.
    """
    outcomes, lang, seed, draws = params["outcomes"], params["lang"], params["seed"], params["bootstrap_draws"]
    spec = dict(control_group=params["control_group"], covariates=params["covariates"], cluster=params["cluster"])
    es = {o: event_study(panel, o, **spec) for o in outcomes}
    honest = {o: honest_analysis(es[o], seed=seed) for o in outcomes}
    power = {o: pretrend_power_summary(es[o]) for o in outcomes}
    wild = {o: wild_summary(panel, o, cluster=params["cluster"], B=draws, seed=seed) for o in outcomes}
    ri = randomisation_summaries(panel, outcomes, B=draws, seed=seed, control_group=params["control_group"],
                                 strata=params["randomisation_strata"], covariates=params["covariates"])
    threshold = params["spillover_threshold"]
    alt = alternative_specifications(panel, outcomes, seed=seed, threshold=threshold, **spec)
    exposure = township_exposure(panel, threshold)
    _, low_share_info = low_share_controls(panel, threshold)
    spill = {o: spillover_did(panel, o, covariates=params["covariates"], cluster=params["cluster"],
                              threshold=threshold) for o in outcomes}
    checks = dict(alternatives=alt, honest=honest, power=power, wild=wild, randomisation=ri, spillover=spill)
    calibration = check_calibration()
    honest_bounds, honest_breakdown = honest_tables(honest)
    tables = {"05_honest_bounds": honest_bounds, "05_honest_breakdown": honest_breakdown,
              "05_pretrend_power": as_table(power)}
    notes = [f"villages by cohort: {panel.groupby(COHORT)[UNIT].nunique().to_dict()}",
             f"townships {len(exposure)}, high-share townships {int(exposure['high_share'].sum())}; "
             + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in low_share_info.items())]
    for name, table, what in (("05_wild_bootstrap", as_table(wild), "wild bootstrap"),
                              ("05_randomisation", as_table(ri), "randomisation inference")):
        if table.empty:
            notes.append(f"bootstrap_draws = 0: {what} skipped")
        else:
            tables[name] = table
    tables["05_alternatives"] = alt[ALTERNATIVE_COLUMNS]
    tables["05_spillover"] = spillover_table(spill)
    if len(calibration):
        tables["05_check_calibration"] = calibration
    tables["05_robustness_summary"] = summary_table(outcomes, lang=lang, **checks)
    draw = functools.partial(draw_figures, honest, outcomes)
    return StageResult("05_robustness", "robustness", tables, draw(lang),
                       payload(outcomes, low_share_info=low_share_info, **checks),
                       findings(outcomes, low_share_info=low_share_info, lang=lang, calibration=calibration, **checks),
                       notes, lang, draw)
