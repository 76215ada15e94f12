"""The calibrated synthetic city: village panel, postings and the true effects.

No village-level micro data on the first-secretary programme is public, so the study
runs on a synthetic city calibrated to the municipal report (``CONTEXT.md``) whose
true effects are known. :func:`simulate_city` returns the canonical ``panel`` and
``postings`` tables (:mod:`analysis.data.schema`), the cohorts derived from the
postings by :func:`analysis.treatment.derive_treatment`, and the truth;
:func:`write_city` writes them as byte-deterministic files and
:func:`simulate_to_store` also ingests them (the ``study simulate`` command).

Geography
---------
3,224 villages in exactly 178 townships in nine county-level districts. Codes use the
fictional province prefix ``99`` (no real province has it), so synthetic codes can
never be mistaken for real ones: county ``99PPCC`` (``PP``, ``CC`` from the county's
index), township = county + 3 digits, village = township + 3 digits. The first
county, ``990101``, is the pilot district and holds about 19% of the villages.
At other sizes the counts scale with ``n_villages`` and the pilot region is the first
``round(n_counties / 9)`` counties.

Roll-out (timing is only ever derived from the postings)
---------------------------------------------------------
* Pilot: 420 first secretaries start in December 2022 in the pilot district. Under
  the six-month rule of :mod:`analysis.treatment` December gives less than a month
  of exposure, so these villages form **cohort 2023**.
* City-wide first batch: after the June 2023 implementing opinions and a week of
  training, 1,038 secretaries arrive between 15 July and 30 September 2023 in the
  other districts: less than six months in 2023, so **cohort 2024**. Pilot and city
  batch together give exactly 1,458 villages with a first secretary by the end of
  2023, 45.2% of 3,224, as in the report.
* ``later_batches=((year, count), ...)``: ``count`` more villages (from those still
  without a secretary, any district) whose secretaries start in March-May of
  ``year``: cohort ``year``.
* About 5% of secretaries are replaced at a mid-year review (poor performers): the
  posting ends in mid-June to early July and a successor from the same sending unit
  starts between a week before and four weeks after. In the cohort year this makes
  the six-month threshold depend on the *union* of the two postings.
  Secretaries otherwise stay in post (``end_date`` empty).
At other sizes the pilot (420) and the first batch (1,458) scale with
``n_villages / 3224``.

Targeting and cadre type (non-random, as the report describes)
-----------------------------------------------------------------
Each village has a latent public-order problem ``z_order`` (drives disputes, cases and
petitions), an expected income level, a distinctive industry flag, terrain and
distance. Villages are drawn without replacement (Gumbel top-k) with weights
``exp(index)``, ``index = 1.0 z_order - 1.1 z_income + 0.9 industry + 0.3 mountain +
0.15 hill``: poor, disorderly and industry villages are much more likely to get a
secretary. Selection uses *levels* only (latent village traits and covariates), never
transitory shocks. The cadre type follows the village's problem: public-order problem
(``z_order > 0.7``) -> ``law``; else distinctive industry -> ``agriculture``; else weak
economy (``z_income < -0.3``) -> ``economic``; else ``other``; 15% of postings ignore
the rule and draw a type at random.

Untreated outcomes and conditional parallel trends
--------------------------------------------------
Every outcome's untreated expectation is additively separable,
``E[Y_it(0)] = L_i + K_i s_t``: a village level ``L_i`` (which may depend on anything,
including the latent traits used for targeting: selection on levels is harmless) plus a
trend ``K_i s_t``, where ``s_t`` is a fixed function of the calendar year and the slope
``K_i = K(X_i) kappa_i`` depends on the observed covariates ``X`` (terrain, distance,
industry) times a village factor ``kappa_i`` with mean 1 drawn independently of
everything targeting uses. Hence, in levels:

* conditional parallel trends hold: ``E[Y_it(0) - Y_is(0) | X, treated] =
  K(X)(s_t - s_s)`` does not depend on treatment status. For income, collective
  income, projects, activists, new members and the three case counts ``K(X)`` is linear
  in the covariates (terrain dummies, industry, distance), so a linear outcome
  regression (or doubly robust DiD with these covariates) is correctly specified; for
  the hurdles (funds, roads) the slope involves a logistic function of terrain and
  industry;
* unconditional parallel trends fail, because targeting favours mountain, remote
  villages, whose income trend is flatter (fewer yuan a year) and whose case trend is
  steeper.

Income is ``(L_i + K(X_i) kappa_i 1.11^(t-2023)) exp(eta_it - sigma^2/2)`` with a stationary
AR(1) ``eta`` (rho 0.5, sigma 0.15) and ``kappa`` log-normal (sd 0.45): right-skewed
(skewness about 1.5). ``L`` and ``K`` are scaled so that the expected untreated city
mean in 2023 is 3,300 yuan; with the pilot's first-year effect the observed mean is
within 2% of the report's 3,313 and grows about 8.5-11.5% a year. Counts are Poisson with a
gamma(4) transitory multiplier (cases: mostly zeros); funds and roads are hurdles
(a probability depending on covariates and an independent village draw, times a
log-normal amount); ``team_reorganised`` is Bernoulli (:data:`BASELINE`). Among the
1,458 first-batch villages the 2023 / 2024 totals of the default city bracket the
report's figures: projects 552 / 701 (report 598), funds 13.4 / 18.7 million yuan
(18.43 million), roads 1,648 / 2,082 km (1,835), activists 7,251 / 8,256 (8,246), new
members 2,803 / 3,547 (3,877), teams reorganised 298 + 481 over the two years (668).

True effects
------------
For a village of cohort ``g`` in year ``t`` with ``k = t - g + anticipation >= 0`` the
effect index is ``theta = base[outcome, cadre] * cohort_mult * omega_i * profile(k)``:
``profile(k) = 1 - 0.55^(k+1)`` (0.45, 0.70, 0.83, ...: effects grow with exposure)
for every outcome except ``team_reorganised``, which is front-loaded
(``0.5^k``: teams are reorganised in the first year); ``cohort_mult`` is 1.25 for the
pilot, 1.0 for the city batch and 0.8 for later batches; ``omega_i`` is a village
draw (log-normal, mean 1). ``base`` (:data:`EFFECTS`) makes ``law`` cadres cut cases
most, ``agriculture`` cadres raise income most and ``economic`` cadres bring projects
and funds. The index acts multiplicatively on the mean: ``E[Y(1)] = E[Y(0)] exp(theta)``
for income, collective income and counts (so a count's proportional effect is
``exp(theta) - 1``); for hurdles ``theta`` shifts the logit of the probability and
``theta/2`` the log amount; for ``team_reorganised`` it shifts the logit.

**Truth.** ``att`` of a cell (outcome, cohort ``g``, year ``t``) is the average over the
cohort's villages of ``E[Y_it(1) - Y_it(0)]``, the expected-value effect given each
village's parameters (not the realised difference of one draw); ``att_prop`` is
``sum E[Y(1) - Y(0)] / sum E[Y(0)]``. Pre-treatment cells are 0 unless
``anticipation > 0`` (then the profile starts ``anticipation`` years early).
Aggregates use the weights of R ``did::aggte`` (see :func:`aggregate_truth`).

Built-in TWFE bias
------------------
Effects grow with exposure and adoption is staggered, so a static two-way
fixed-effects regression uses the pilot cohort, already treated and still improving,
as a control for the city batch ("forbidden comparison") and subtracts its effect
growth; and treated villages trend differently (unconditional parallel trends fail).
Both push the same way: **TWFE attenuates** the effects. In a 100,000-village city
(sampling noise negligible) the TWFE coefficient is about 0.4 times the true simple
ATT for income (biased down), 0.85-0.9 times it for criminal cases, disputes and
petitions (biased towards zero) and 0.85-0.95 times it for collective income,
projects and funds. The exception is ``team_reorganised``, whose effect is
front-loaded: its effect *falls* with exposure, so TWFE overstates it (about 1.06).

Spillover
---------
With ``spillover = s != 0``, villages without a (direct) effect in *heavily treated*
townships (at least half of the township's villages have a cohort in the window) get
the index ``s * mean(theta of the township's directly affected villages that year)``
from the year the township's first cohort starts (earlier under anticipation). They
include not-yet-treated villages before their own cohort. The truth records these
cells with ``effect == "spillover"`` (by the village's own cohort, 0 = never treated);
direct-effect cells stay ``effect == "direct"``.

Determinism
-----------
Every draw comes from generators spawned from ``numpy.random.SeedSequence(seed)``,
one child per part (geography, covariates, latent traits, selection, postings,
names, and one per outcome). Same arguments, same bytes.

Covariates (population, distance, terrain, industry, party members, share of members
over 60) are not affected by treatment, so they can be conditioned on in any period.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.core.treatment import NEVER_TREATED, derive_treatment
from analysis.data import schema

# ----------------------------------------------------------------------------- calibration

REPORT_VILLAGES = 3224
"""Villages / residents' committees in the city (CONTEXT.md)."""
REPORT_TOWNSHIPS = 178
"""Townships / sub-districts (CONTEXT.md)."""
REPORT_COUNTIES = 9
"""County-level districts (about nine)."""
REPORT_FIRST_BATCH = 1458
"""Villages with a first secretary by the end of 2023, 45.2% of 3,224 (CONTEXT.md)."""
PILOT_SECRETARIES = 420
"""Pilot district's first secretaries from December 2022 ("400+", CONTEXT.md)."""
PILOT_DISTRICT_SHARE = 0.19
"""Share of the city's villages in the pilot district (region)."""
REPORT_YEAR = 2023
REPORT_INCOME = 3313.0
"""Rural per-capita net income in the report year, yuan (CONTEXT.md)."""
PROVINCE_PREFIX = "99"
"""Fictional province prefix of every synthetic code (no real province uses 99)."""
CITY_NAME = "北湖市"
"""Fictional city name used in sending-unit names."""

PILOT_START = np.datetime64("2022-12-01")
PILOT_START_DAYS = 30  # starts on 1-30 December 2022
CITY_START = np.datetime64("2023-07-15")
CITY_START_DAYS = 78  # 15 July - 30 September 2023
CITY_BATCH_YEAR = 2023
REPLACEMENT_SHARE = 0.05
HEAVY_TOWNSHIP_SHARE = 0.5
RULE_NOISE = 0.15

COHORT_MULT = {"pilot": 1.25, "city": 1.0, "later": 0.8}
"""Effect multiplier by batch kind (the pilot got more attention)."""

EFFECT_KIND = {
    "income_per_capita": "lognormal",
    "collective_income": "lognormal",
    "projects": "count",
    "funds_attracted": "hurdle",
    "roads_km": "hurdle",
    "team_reorganised": "binary",
    "activists": "count",
    "new_members": "count",
    "criminal_cases": "count",
    "disputes": "count",
    "petitions": "count",
}
"""How the effect index acts on each outcome (see the module docstring)."""

EFFECTS: dict[str, dict[str, float]] = {
    # effect index at full exposure, by cadre type (law, agriculture, economic, other)
    "income_per_capita": {"law": 0.04, "agriculture": 0.14, "economic": 0.10, "other": 0.06},
    "collective_income": {"law": 0.10, "agriculture": 0.30, "economic": 0.35, "other": 0.15},
    "projects": {"law": 0.30, "agriculture": 0.60, "economic": 0.90, "other": 0.40},
    "funds_attracted": {"law": 0.40, "agriculture": 0.70, "economic": 1.10, "other": 0.50},
    "roads_km": {"law": 0.30, "agriculture": 0.40, "economic": 0.60, "other": 0.40},
    "team_reorganised": {"law": 1.60, "agriculture": 1.40, "economic": 1.40, "other": 1.80},
    "activists": {"law": 0.35, "agriculture": 0.40, "economic": 0.40, "other": 0.50},
    "new_members": {"law": 0.40, "agriculture": 0.45, "economic": 0.45, "other": 0.55},
    "criminal_cases": {"law": -0.60, "agriculture": -0.15, "economic": -0.15, "other": -0.20},
    "disputes": {"law": -0.50, "agriculture": -0.20, "economic": -0.15, "other": -0.20},
    "petitions": {"law": -0.70, "agriculture": -0.25, "economic": -0.20, "other": -0.30},
}
"""Effect index ``base[outcome][cadre]`` at full exposure (module docstring)."""

FRONT_LOADED = ("team_reorganised",)

BASELINE: dict[str, dict[str, float]] = {
    # Untreated expectation L_i + K(X_i) s_t of the outcomes other than income (see _baseline).
    "collective_income": {
        "level": 20_000.0,
        "level_sd": 1.1,
        "slope": 12_000.0,
        "plain": 0.3,
        "mountain": -0.3,
        "industry": 0.4,
        "growth": 1.07,
        "sigma": 0.6,
    },
    "projects": {"level": 0.28, "level_sd": 0.5, "slope": 0.06, "industry": 0.8, "plain": 0.3},
    "funds_attracted": {
        "p_intercept": 0.1,
        "p_industry": 0.5,
        "p_plain": 0.3,
        "p_mountain": -0.3,
        "p_sd": 0.6,
        "amount": 13_000.0,
        "amount_sd": 0.6,
        "trend": 4_000.0,
        "trend_plain": 0.5,
        "growth": 1.06,
        "sigma": 0.9,
    },
    "roads_km": {
        "p_intercept": -0.4,
        "p_hill": 0.3,
        "p_mountain": 0.4,
        "p_sd": 0.6,
        "amount": 2.0,
        "amount_sd": 0.4,
        "trend": 0.4,
        "sigma": 0.7,
    },
    "team_reorganised": {"intercept": -2.6, "over60": 2.0, "z_order": 0.3, "weak": 0.3},
    "activists": {"per_member": 0.095, "level_sd": 0.3, "slope": 0.5, "mountain": 0.5},
    "new_members": {"per_member": 0.04, "level_sd": 0.3, "slope": 0.2, "mountain": 0.0},
    "criminal_cases": {"level": 0.30, "z_order": 0.6, "pop": 1.0, "slope": 0.1},
    "disputes": {"level": 2.2, "z_order": 0.7, "pop": 1.0, "slope": 0.8},
    "petitions": {"level": 0.10, "z_order": 0.9, "pop": 0.0, "slope": 0.04},
    "case_slope": {"intercept": 0.2, "mountain": 1.0, "hill": 0.5, "km": 0.01},
}
"""Parameters of the untreated outcomes (levels, covariate slopes, noise); ``s_t`` is
``1 / (1 + exp(-(t - 2020) / 3))`` for counts and roads, a growth index otherwise."""

INCOME = {
    "level": 310.0,
    "slope": 2870.0,
    "growth": 1.11,
    "sigma": 0.15,
    "rho": 0.5,
    "kappa_sd": 0.45,
    "target_2023": 3300.0,
}
"""Income: ``E[Y(0)] = level_i + slope(X_i) kappa_i growth^(t-2023)``, AR(1) noise.

``level`` and ``slope`` are relative scales: both are rescaled so that the expected
untreated city mean in 2023 is ``target_2023``.
"""

PANEL_DECIMALS = {
    "income_per_capita": 2,
    "collective_income": 2,
    "funds_attracted": 2,
    "roads_km": 2,
    "distance_km": 1,
    "share_members_over60": 3,
}
"""Decimals of each float column of the panel (values are rounded, files use %.Nf)."""

TRUTH_FLOAT_FORMAT = "%.10g"

_CADRES = schema.UNIT_TYPES  # ("law", "agriculture", "economic", "other")

_S1 = np.array(
    list(
        "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
        "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏付方白邹孟熊秦邱江尹薛段雷侯龙史陶贺顾毛郝龚邵"
        "柳桃杏梨槐杨松柏榆枣桑竹荷兰凤龙鹤鹿马牛羊"
    )
)
_S2 = np.array(list("家庄营屯集店河湾沟坡岭山桥寨堡洼坊塘岗台铺园楼峪口窑峰林湖滩圩泉井"))
_S0 = np.array(list("前后东西南北大小上下新老"))
_COUNTY_A = np.array(list("东西南北安平宁永丰清长兴"))
_COUNTY_B = np.array(list("山川河阳城林原丘水江"))
_UNIT_SUFFIX = {
    "law": ("公安局", "人民检察院", "人民法院", "司法局"),
    "agriculture": ("农业农村局", "水产技术推广站", "畜牧兽医局", "农业技术推广中心"),
    "economic": ("财政局", "税务局", "农村商业银行", "供电公司", "国有资产投资公司"),
    "other": ("委组织部", "委宣传部", "教育局", "卫生健康局", "民政局", "委办公室"),
}


# ----------------------------------------------------------------------------- result type


@dataclass(frozen=True)
class SyntheticCity:
    """A simulated city: canonical tables, derived treatment and the truth.

    Attributes
    ----------
    panel : pandas.DataFrame
        Canonical village-year panel (:data:`analysis.data.schema.PANEL_COLUMNS`, in
        order), sorted by ``village_code``, ``year``.
    postings : pandas.DataFrame
        Canonical postings (:data:`analysis.data.schema.POSTINGS_COLUMNS`), sorted by
        ``secretary_id``; dates are ISO strings, ``end_date`` missing while in post.
    truth : pandas.DataFrame
        True effects, one row per outcome x effect x cohort x year: ``outcome``,
        ``effect`` (``direct``; ``spillover`` rows only when spillover is on),
        ``cohort``, ``year``, ``event_time``, ``att`` (mean over the cell's villages of
        ``E[Y(1) - Y(0)]``), ``att_prop`` (``sum E[Y(1)-Y(0)] / sum E[Y(0)]``, the
        proportional effect), ``y0_mean``, ``y1_mean`` and ``n_villages``.
    truth_aggregates : pandas.DataFrame
        Output of :func:`aggregate_truth` for the direct effects.
    treatment : pandas.DataFrame
        ``derive_treatment(postings, first_year, last_year)``.
    villages : pandas.DataFrame
        One row per village with the latent traits behind the simulation (intended
        batch, cohort and cadre type, targeting index, expected income level, public-order
        problem, effect scale). Not written to files; for diagnostics and tests.
    params : dict
        Every parameter used, seed included (written to ``params.json``).
    """

    panel: pd.DataFrame
    postings: pd.DataFrame
    truth: pd.DataFrame
    truth_aggregates: pd.DataFrame
    treatment: pd.DataFrame
    villages: pd.DataFrame
    params: dict


# ----------------------------------------------------------------------------- helpers


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _logistic_time(years: np.ndarray, centre: float = 2020.0, scale: float = 3.0) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(years - centre) / scale))


def _apportion(totals: np.ndarray, weights: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Split integer ``totals[g]`` over the items of each group in proportion to ``weights``.

    Largest-remainder rounding, vectorised; ties broken by item order.
    """
    totals = np.asarray(totals, dtype=np.int64)
    n_groups = len(totals)
    wsum = np.bincount(group, weights=weights, minlength=n_groups)
    raw = totals[group] * weights / wsum[group]
    base = np.floor(raw).astype(np.int64)
    short = totals - np.bincount(group, weights=base, minlength=n_groups).astype(np.int64)
    order = np.lexsort((-(raw - base), group))
    g_sorted = group[order]
    first = np.searchsorted(g_sorted, np.arange(n_groups))
    rank = np.arange(len(order)) - first[g_sorted]
    add = np.zeros_like(base)
    add[order] = (rank < short[g_sorted]).astype(np.int64)
    return base + add


def _top_k(rng: np.random.Generator, index: np.ndarray, pool: np.ndarray, k: int) -> np.ndarray:
    """Draw ``k`` of ``pool`` without replacement with probabilities proportional to exp(index)."""
    if k == 0:
        return np.empty(0, dtype=np.int64)
    key = index[pool] + rng.gumbel(size=len(pool))
    chosen = np.argpartition(-key, k - 1)[:k]
    return np.sort(pool[chosen])


def _arrow_str(values: np.ndarray, take: np.ndarray | None = None) -> pd.arrays.ArrowStringArray:
    arr = pa.array(values, type=pa.string())
    if take is not None:
        arr = arr.take(pa.array(take))
    return pd.array(arr, dtype="str")


def _scaled(count: int, n_villages: int) -> int:
    return round(count * n_villages / REPORT_VILLAGES)


# ----------------------------------------------------------------------------- validation


def _validate(
    first_year: int,
    last_year: int,
    n_villages: int,
    n_townships: int,
    n_counties: int,
    later_batches: Sequence[tuple[int, int]],
    spillover: float,
    anticipation: int,
) -> tuple[tuple[int, int], ...]:
    ints = dict(
        first_year=first_year,
        last_year=last_year,
        n_villages=n_villages,
        n_townships=n_townships,
        n_counties=n_counties,
        anticipation=anticipation,
    )
    for name, value in ints.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if not 1990 <= first_year <= 2022:
        raise ValueError(
            f"first_year must be between 1990 and 2022 (the pilot's cohort 2023 needs at least "
            f"one pre-treatment year), got {first_year}"
        )
    if not 2023 <= last_year <= 2100:
        raise ValueError(f"last_year must be between 2023 and 2100, got {last_year}")
    if last_year - first_year > 40:
        raise ValueError(f"the window {first_year}-{last_year} is longer than 41 years")
    if n_counties < 2:
        raise ValueError(
            f"n_counties must be at least 2 (a pilot district and the rest), got {n_counties}"
        )
    if n_counties > 99 * 99:
        raise ValueError(f"n_counties must be at most 9801 (4 code digits), got {n_counties}")
    if not n_counties <= n_townships <= n_villages:
        raise ValueError(
            f"need n_counties <= n_townships <= n_villages, got {n_counties}, {n_townships}, "
            f"{n_villages}"
        )
    if n_townships > 900 * n_counties:
        raise ValueError(
            f"{n_townships} townships in {n_counties} counties is "
            f"{n_townships / n_counties:.0f} per county, but the 3-digit township code allows "
            f"at most 999: pass n_counties >= {int(np.ceil(n_townships / 900))}"
        )
    if n_villages > 500 * n_townships:
        raise ValueError(
            f"{n_villages} villages in {n_townships} townships is too many per township for the "
            f"3-digit village code: pass n_townships >= {int(np.ceil(n_villages / 500))}"
        )
    if n_villages < 40:
        raise ValueError(f"n_villages must be at least 40, got {n_villages}")
    if not -1.0 <= float(spillover) <= 1.0:
        raise ValueError(
            f"spillover must be a share of the direct effect in [-1, 1], got {spillover!r}"
        )
    if not 0 <= anticipation <= 3:
        raise ValueError(f"anticipation must be 0-3 years, got {anticipation}")
    later: list[tuple[int, int]] = []
    for item in later_batches:
        try:
            year, count = item
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"later_batches items must be (year, count) pairs, got {item!r}"
            ) from exc
        if isinstance(year, bool) or isinstance(count, bool):
            raise ValueError(f"later batch {item!r}: year and count must be integers")
        year, count = int(year), int(count)
        if year <= CITY_BATCH_YEAR:
            raise ValueError(
                f"a later batch must start after the {CITY_BATCH_YEAR} city-wide batch, "
                f"got year {year}"
            )
        if year > last_year:
            raise ValueError(
                f"later batch starting in {year} needs last_year >= {year} "
                f"(got last_year={last_year}): "
                f"its secretaries arrive in spring {year}, so its cohort {year} would fall outside "
                f"the panel window"
            )
        if count <= 0:
            raise ValueError(f"later batch {year}: count must be positive, got {count}")
        later.append((year, count))
    years = [y for y, _ in later]
    if years != sorted(set(years)):
        raise ValueError(f"later batch years must be distinct and increasing, got {years}")
    free = n_villages - _scaled(REPORT_FIRST_BATCH, n_villages)
    if sum(c for _, c in later) > free:
        raise ValueError(
            f"later batches total {sum(c for _, c in later)} villages but only {free} villages "
            f"have no first secretary after the first batch"
        )
    return tuple(later)


# ----------------------------------------------------------------------------- parts


def _geography(
    rng: np.random.Generator, n_villages: int, n_townships: int, n_counties: int
) -> dict:
    n_pilot = max(1, round(n_counties / REPORT_COUNTIES))
    n_pilot = min(n_pilot, n_counties - 1)
    share = np.empty(n_counties)
    share[:n_pilot] = PILOT_DISTRICT_SHARE * rng.dirichlet(np.full(n_pilot, 20.0))
    share[n_pilot:] = (1 - PILOT_DISTRICT_SHARE) * rng.dirichlet(np.full(n_counties - n_pilot, 8.0))
    zeros = np.zeros(n_counties, dtype=np.int64)
    t_per_county = 1 + _apportion(np.array([n_townships - n_counties]), share, zeros)
    v_per_county = t_per_county + _apportion(np.array([n_villages - n_townships]), share, zeros)
    t_county = np.repeat(np.arange(n_counties), t_per_county)
    t_weight = rng.gamma(4.0, 1.0, size=n_townships)
    v_per_township = 1 + _apportion(v_per_county - t_per_county, t_weight, t_county)
    if t_per_county.max() > 999 or v_per_township.max() > 999:
        raise ValueError(
            "the allocation puts more than 999 townships in a county or villages in a township "
            "(3-digit codes): use more counties or townships"
        )
    t_first = np.concatenate([[0], np.cumsum(t_per_county)[:-1]])
    t_within = np.arange(n_townships) - t_first[t_county]
    v_township = np.repeat(np.arange(n_townships), v_per_township)
    v_first = np.concatenate([[0], np.cumsum(v_per_township)[:-1]])
    v_within = np.arange(n_villages) - v_first[v_township]
    c_idx = np.arange(n_counties)
    c_num = int(PROVINCE_PREFIX) * 10_000 + (c_idx // 99 + 1) * 100 + (c_idx % 99 + 1)
    t_num = c_num[t_county] * 1000 + t_within + 1
    v_num = t_num[v_township] * 1000 + v_within + 1
    v_county = t_county[v_township]
    c_name = np.char.add(
        np.char.add(
            _COUNTY_A[c_idx % len(_COUNTY_A)], _COUNTY_B[(c_idx // len(_COUNTY_A)) % len(_COUNTY_B)]
        ),
        np.where(c_idx < n_pilot, "区", "县"),
    )
    return dict(
        n_pilot_counties=n_pilot,
        county_of_village=v_county,
        township_of_village=v_township,
        county_of_township=t_county,
        village_code=v_num.astype("U12"),
        township_code=t_num.astype("U9"),
        county_code=c_num.astype("U6"),
        county_name=c_name,
        pilot=v_county < n_pilot,
    )


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    name = np.char.add(_S1[rng.integers(0, len(_S1), n)], _S2[rng.integers(0, len(_S2), n)])
    prefix = rng.random(n) < 0.15
    name = np.where(prefix, np.char.add(_S0[rng.integers(0, len(_S0), n)], name), name)
    suffix = np.where(rng.random(n) < 0.06, "社区", "村")
    return np.char.add(name, suffix)


def _covariates(rng: np.random.Generator, geo: dict) -> dict:
    n = len(geo["county_of_village"])
    n_counties = len(geo["county_code"])
    p_mountain = rng.uniform(0.05, 0.45, n_counties)[geo["county_of_village"]]
    p_hill = rng.uniform(0.15, 0.35, n_counties)[geo["county_of_village"]]
    u = rng.random(n)
    terrain = np.where(u < p_mountain, 2, np.where(u < p_mountain + p_hill, 1, 0))  # 0 plain
    hill = (terrain == 1).astype(float)
    mountain = (terrain == 2).astype(float)
    plain = (terrain == 0).astype(float)
    distance = 0.5 + rng.gamma(2.0, 8.0 + 6.0 * hill + 12.0 * mountain)
    distance = np.round(np.minimum(distance, 150.0), PANEL_DECIMALS["distance_km"])
    industry = (rng.random(n) < 0.15 + 0.10 * hill).astype(np.int64)
    pop = 1300.0 * (1 + 0.1 * plain - 0.2 * mountain) * np.exp(rng.normal(-0.08, 0.4, n))
    pop = np.clip(pop, 80.0, 20_000.0)
    pop_growth = rng.normal(-0.006, 0.006, n)
    members = np.maximum(3, rng.poisson(pop * 0.034 * np.exp(rng.normal(-0.03, 0.25, n))))
    over60 = np.clip(rng.beta(8.0, 13.0, n) + 0.06 * mountain + 0.03 * hill, 0.0, 0.95)
    return dict(
        terrain=terrain,
        plain=plain,
        hill=hill,
        mountain=mountain,
        distance=distance,
        industry=industry,
        pop=pop,
        pop_growth=pop_growth,
        members=members.astype(float),
        over60=over60,
    )


def _latent(rng: np.random.Generator, cov: dict) -> dict:
    n = len(cov["terrain"])
    z = rng.standard_normal((9, n))
    u_inc = z[0]
    z_order = -0.35 * u_inc + np.sqrt(1 - 0.35**2) * z[1]
    plain, mountain, industry, dist = (
        cov["plain"],
        cov["mountain"],
        cov["industry"],
        cov["distance"],
    )
    alpha = INCOME["level"] * (1 + 0.3 * plain - 0.3 * mountain) * np.exp(0.8 * u_inc - 0.32)
    slope = INCOME["slope"] * (
        1 + 0.12 * plain - 0.12 * mountain + 0.1 * industry - 0.0025 * (dist - 25.0)
    )
    # Scale both so that the untreated expected city mean in the report year is on target.
    norm = INCOME["target_2023"] / (alpha.mean() + slope.mean())
    alpha, slope = alpha * norm, slope * norm
    # kappa: the village's share in the region's growth, independent of targeting (it is
    # not part of the "economic base" officials judge), so trends stay parallel given X.
    kappa = np.exp(INCOME["kappa_sd"] * z[2] - 0.5 * INCOME["kappa_sd"] ** 2)
    level_2022 = alpha + slope * INCOME["growth"] ** (2022 - REPORT_YEAR)
    z_income = (np.log(level_2022) - np.log(level_2022).mean()) / np.log(level_2022).std()
    return dict(
        u_inc=u_inc,
        z_order=z_order,
        alpha=alpha,
        slope=slope,
        kappa=kappa,
        level_2022=level_2022,
        z_income=z_income,
        u=z[3:],
        omega=np.exp(0.25 * rng.standard_normal(n) - 0.03125),
    )


def _assign(
    rng: np.random.Generator,
    geo: dict,
    cov: dict,
    lat: dict,
    n_villages: int,
    later: tuple[tuple[int, int], ...],
) -> dict:
    index = (
        1.0 * lat["z_order"]
        - 1.1 * lat["z_income"]
        + 0.9 * cov["industry"]
        + 0.3 * cov["mountain"]
        + 0.15 * cov["hill"]
    )
    n_pilot = _scaled(PILOT_SECRETARIES, n_villages)
    n_city = _scaled(REPORT_FIRST_BATCH, n_villages) - n_pilot
    pilot_pool = np.flatnonzero(geo["pilot"])
    city_pool = np.flatnonzero(~geo["pilot"])
    if n_pilot > 0.9 * len(pilot_pool) or n_city > len(city_pool):
        raise ValueError("the pilot district is too small for the pilot batch: use more villages")
    batch_year = np.zeros(n_villages, dtype=np.int64)  # 0 = no posting
    kind = np.full(n_villages, "", dtype="U5")
    label = np.full(n_villages, "", dtype="U16")
    start = np.full(n_villages, np.datetime64("NaT"), dtype="datetime64[D]")
    chosen = _top_k(rng, index, pilot_pool, n_pilot)
    batch_year[chosen], kind[chosen], label[chosen] = 2022, "pilot", "pilot-2022"
    start[chosen] = PILOT_START + rng.integers(0, PILOT_START_DAYS, len(chosen))
    chosen = _top_k(rng, index, city_pool, n_city)
    batch_year[chosen], kind[chosen], label[chosen] = (
        CITY_BATCH_YEAR,
        "city",
        f"city-{CITY_BATCH_YEAR}",
    )
    start[chosen] = CITY_START + rng.integers(0, CITY_START_DAYS, len(chosen))
    for year, count in later:
        pool = np.flatnonzero(batch_year == 0)
        chosen = _top_k(rng, index, pool, count)
        batch_year[chosen], kind[chosen], label[chosen] = year, "later", f"city-{year}"
        spring = np.datetime64(f"{year}-03-01")
        start[chosen] = spring + rng.integers(0, 92, len(chosen))
    # Cadre type follows the village's problem; some postings ignore the rule.
    order_problem = lat["z_order"] > 0.7
    weak = lat["z_income"] < -0.3
    rule = np.where(order_problem, 0, np.where(cov["industry"] == 1, 1, np.where(weak, 2, 3)))
    noisy = rng.random(n_villages) < RULE_NOISE
    cadre = np.where(noisy, rng.integers(0, 4, n_villages), rule)
    return dict(
        index=index,
        batch_year=batch_year,
        kind=kind,
        label=label,
        start=start,
        cadre=cadre,
        order_problem=order_problem,
        weak=weak,
        n_pilot=n_pilot,
        n_city=n_city,
    )


def _postings(rng: np.random.Generator, geo: dict, asg: dict, last_year: int) -> pd.DataFrame:
    v = np.flatnonzero(asg["batch_year"] > 0)
    start = asg["start"][v]
    start_year = start.astype("datetime64[Y]").astype(np.int64) + 1970
    cadre = asg["cadre"][v]
    # Sending unit: a city- or county-level unit of the village's cadre type.
    suffix_table = np.array(
        [list(s) + [s[0]] * (6 - len(s)) for s in (_UNIT_SUFFIX[c] for c in _CADRES)]
    )
    n_suffix = np.array([len(_UNIT_SUFFIX[c]) for c in _CADRES])
    suffix = suffix_table[cadre, rng.integers(0, 10**6, len(v)) % n_suffix[cadre]]
    county_level = rng.random(len(v)) < 0.5
    prefix = np.where(county_level, geo["county_name"][geo["county_of_village"][v]], CITY_NAME)
    unit = np.char.add(prefix, suffix)
    # Replacements at a mid-year review, at least six months after arrival.
    lo = start_year + 1
    eligible = lo <= last_year
    replaced = eligible & (rng.random(len(v)) < REPLACEMENT_SHARE)
    span = np.maximum(last_year - lo + 1, 1)
    rep_year = lo + np.floor(rng.random(len(v)) * span).astype(np.int64)
    mid_june = (rep_year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + 165  # ~15 June
    end = mid_june + rng.integers(0, 21, len(v))
    successor = end + rng.integers(-7, 29, len(v))
    r = np.flatnonzero(replaced)
    n_post = len(v) + len(r)
    village = np.concatenate([v, v[r]])
    starts = np.concatenate([start, successor[r]])
    ends = np.concatenate(
        [np.where(replaced, end, np.datetime64("NaT")), np.full(len(r), np.datetime64("NaT"))]
    )
    units = np.concatenate([unit, unit[r]])
    types = np.concatenate([cadre, cadre[r]])
    labels = asg["label"][village]
    order = np.lexsort((village, starts))  # chronological ids
    village, starts, ends, units, types, labels = (
        a[order] for a in (village, starts, ends, units, types, labels)
    )
    ids = np.char.add("FS", np.char.zfill(np.arange(1, n_post + 1).astype(str), 7))
    end_str = np.where(np.isnat(ends), None, np.datetime_as_string(ends, unit="D").astype(object))
    return pd.DataFrame(
        {
            "village_code": _arrow_str(geo["village_code"][village]),
            "secretary_id": _arrow_str(ids),
            "start_date": _arrow_str(np.datetime_as_string(starts, unit="D")),
            "end_date": pd.array(end_str, dtype="str"),
            "sending_unit": _arrow_str(units),
            "unit_type": _arrow_str(np.array(_CADRES)[types]),
            "batch": _arrow_str(labels),
        }
    )[schema.column_names("postings")]


# ----------------------------------------------------------------------------- outcomes


def _baseline(
    outcome: str, rng: np.random.Generator, cov: dict, lat: dict, years: np.ndarray
) -> dict:
    """Untreated expectation ``L_i + K_i s_t`` and distribution parameters of one outcome."""
    n = len(cov["terrain"])
    b = BASELINE.get(outcome, {})
    plain, hill, mountain = cov["plain"], cov["hill"], cov["mountain"]
    industry, dist = cov["industry"].astype(float), cov["distance"]
    z_order, u = lat["z_order"], lat["u"]
    s_log = _logistic_time(years.astype(float))[None, :]
    cs = BASELINE["case_slope"]
    case_slope = cs["intercept"] + cs["mountain"] * mountain + cs["hill"] * hill + cs["km"] * dist

    def col(a: np.ndarray) -> np.ndarray:
        return a[:, None]

    def lognormal(sd: float, z: np.ndarray) -> np.ndarray:  # mean-one log-normal factor
        return np.exp(sd * z - 0.5 * sd**2)

    if outcome == "income_per_capita":
        trend = INCOME["growth"] ** (years - REPORT_YEAR)
        return dict(
            mean=col(lat["alpha"]) + col(lat["slope"] * lat["kappa"]) * trend[None, :],
            sigma=INCOME["sigma"],
            rho=INCOME["rho"],
        )
    if outcome == "collective_income":
        uc = 0.5 * lat["u_inc"] + np.sqrt(0.75) * u[0]
        level = b["level"] * lognormal(b["level_sd"], uc)
        slope = b["slope"] * (
            1 + b["plain"] * plain + b["mountain"] * mountain + b["industry"] * industry
        )
        return dict(
            mean=col(level) + col(slope) * b["growth"] ** (years - REPORT_YEAR)[None, :],
            sigma=b["sigma"],
            rho=0.0,
        )
    if outcome == "projects":
        level = b["level"] * lognormal(b["level_sd"], u[1])
        slope = b["slope"] * (1 + b["industry"] * industry + b["plain"] * plain)
        return dict(mean=col(level) + col(slope) * s_log)
    if outcome == "funds_attracted":
        p = _expit(
            b["p_intercept"]
            + b["p_industry"] * industry
            + b["p_plain"] * plain
            + b["p_mountain"] * mountain
            + b["p_sd"] * rng.standard_normal(n)
        )
        amount = b["amount"] * lognormal(b["amount_sd"], u[2])
        trend = b["trend"] * (1 + b["trend_plain"] * plain)
        return dict(
            p=col(p),
            amount=col(amount) + col(trend) * b["growth"] ** (years - REPORT_YEAR)[None, :],
            sigma=b["sigma"],
        )
    if outcome == "roads_km":
        p = _expit(
            b["p_intercept"]
            + b["p_hill"] * hill
            + b["p_mountain"] * mountain
            + b["p_sd"] * rng.standard_normal(n)
        )
        amount = b["amount"] * lognormal(b["amount_sd"], u[3])
        return dict(p=col(p), amount=col(amount) + b["trend"] * s_log, sigma=b["sigma"])
    if outcome == "team_reorganised":
        p = _expit(
            b["intercept"]
            + b["over60"] * (cov["over60"] - 0.38)
            + b["z_order"] * z_order
            + b["weak"] * (lat["z_income"] < -0.3)
        )
        return dict(p=col(p) + np.zeros((1, len(years))))
    if outcome in ("activists", "new_members"):
        level = (
            cov["members"]
            * b["per_member"]
            * lognormal(b["level_sd"], u[4 if outcome == "activists" else 5])
        )
        slope = b["slope"] * (1 + b["mountain"] * mountain)
        return dict(mean=col(level) + col(slope) * s_log)
    if outcome in ("criminal_cases", "disputes", "petitions"):
        level = (
            b["level"] * lognormal(b["z_order"], z_order) * np.sqrt(cov["pop"] / 1300.0) ** b["pop"]
        )
        return dict(mean=col(level) + col(b["slope"] * case_slope) * s_log)
    raise ValueError(f"unknown outcome {outcome!r}")  # pragma: no cover


def _expected(kind: str, base: dict, theta: np.ndarray | float) -> np.ndarray:
    """``E[Y]`` given the effect index ``theta`` (0 = untreated)."""
    if kind in ("lognormal", "count"):
        return base["mean"] * np.exp(theta)
    if kind == "hurdle":
        return _expit(_logit(base["p"]) + theta) * base["amount"] * np.exp(0.5 * theta)
    return _expit(_logit(base["p"]) + theta)


def _draw(kind: str, base: dict, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Realised outcome with expectation ``_expected(kind, base, theta)``."""
    shape = theta.shape
    if kind == "lognormal":
        sigma, rho = base["sigma"], base["rho"]
        z = rng.standard_normal(shape)
        eta = np.empty(shape)
        eta[:, 0] = sigma * z[:, 0]
        for t in range(1, shape[1]):  # loop over years, vectorised over villages
            eta[:, t] = rho * eta[:, t - 1] + np.sqrt(1 - rho**2) * sigma * z[:, t]
        return base["mean"] * np.exp(theta + eta - 0.5 * sigma**2)
    if kind == "count":
        nu = rng.gamma(4.0, 0.25, shape)
        return rng.poisson(base["mean"] * np.exp(theta) * nu)
    if kind == "hurdle":
        p = _expit(_logit(base["p"]) + theta)
        hit = rng.random(shape) < p
        sigma = base["sigma"]
        amount = base["amount"] * np.exp(
            0.5 * theta + sigma * rng.standard_normal(shape) - 0.5 * sigma**2
        )
        return np.where(hit, amount, 0.0)
    return (rng.random(shape) < _expit(_logit(base["p"]) + theta)).astype(np.int64)


def _profile(outcome: str, k: np.ndarray) -> np.ndarray:
    kk = np.maximum(k, 0).astype(float)
    if outcome in FRONT_LOADED:
        prof = 0.5**kk
    else:
        prof = 1.0 - 0.55 ** (kk + 1.0)
    return np.where(k >= 0, prof, 0.0)


@dataclass(frozen=True)
class _Design:
    """Treatment design shared by every outcome (village arrays; ``k`` is villages x years)."""

    years: np.ndarray
    cohort: np.ndarray
    cohorts: np.ndarray
    c_index: np.ndarray
    n_g: np.ndarray
    cadre: np.ndarray
    scale: np.ndarray
    k: np.ndarray
    township: np.ndarray
    heavy: np.ndarray
    spillover: float


def _cells(keys: np.ndarray, size: int, *weights: np.ndarray) -> list[np.ndarray]:
    return [np.bincount(keys, weights=w, minlength=size) for w in weights]


def _outcome(
    outcome: str, base: dict, d: _Design, rng: np.random.Generator
) -> tuple[np.ndarray, list[pd.DataFrame], pd.DataFrame]:
    """Effects, realised values and truth cells of one outcome."""
    kind = EFFECT_KIND[outcome]
    years, n_years = d.years, len(d.years)
    n_cohorts = len(d.cohorts)
    direct = d.k >= 0
    eff = np.array([EFFECTS[outcome][c] for c in _CADRES])
    theta_d = np.where(
        direct, (eff[np.maximum(d.cadre, 0)] * d.scale)[:, None] * _profile(outcome, d.k), 0.0
    )
    theta, spill = theta_d, None
    if d.spillover != 0 and d.heavy.any():
        n_town = len(d.heavy)
        key = d.township[:, None] * n_years + np.arange(n_years)[None, :]
        s_sum, s_n = _cells(key[direct], n_town * n_years, theta_d[direct], None)
        s_mean = np.divide(s_sum, s_n, out=np.zeros_like(s_sum), where=s_n > 0)
        spill = ~direct & d.heavy[d.township][:, None] & (s_n[key] > 0)
        theta = np.where(spill, d.spillover * s_mean[key], theta_d)
    e0 = np.broadcast_to(_expected(kind, base, 0.0), theta.shape)
    e_obs = _expected(kind, base, theta)
    y = _draw(kind, base, theta, rng)
    diff = e_obs - e0
    diff_d = np.where(direct, diff, 0.0)

    def frame(effect: str, g: np.ndarray, yr: np.ndarray, dsum, y0sum, n) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "outcome": outcome,
                "effect": effect,
                "cohort": g,
                "year": yr,
                "att": dsum / n,
                "att_prop": dsum / y0sum,
                "y0_mean": y0sum / n,
                "y1_mean": (y0sum + dsum) / n,
                "n_villages": n.astype(np.int64),
            }
        )

    # Direct effects by cohort x year (every year of the window; pre-periods are 0).
    sel = d.c_index >= 0
    t_idx = np.arange(n_years)[None, :]
    cell = (d.c_index[sel][:, None] * n_years + t_idx).ravel()
    size = n_cohorts * n_years
    d_sum, y0_sum = _cells(cell, size, diff_d[sel].ravel(), e0[sel].ravel())
    n_rep = np.repeat(d.n_g, n_years).astype(float)
    g_rep = np.repeat(d.cohorts, n_years)
    parts = [frame("direct", g_rep, np.tile(years, n_cohorts), d_sum, y0_sum, n_rep)]
    # The same cells within each cadre type.
    group = d.cadre[sel] * n_cohorts + d.c_index[sel]
    ccell = (group[:, None] * n_years + t_idx).ravel()
    cd, c0 = _cells(ccell, len(_CADRES) * size, diff_d[sel].ravel(), e0[sel].ravel())
    cn = np.repeat(np.bincount(group, minlength=len(_CADRES) * n_cohorts), n_years)
    keep = cn > 0
    by_cadre = pd.DataFrame(
        {
            "outcome": outcome,
            "cadre_type": np.repeat(np.array(_CADRES), size)[keep],
            "cohort": np.tile(g_rep, len(_CADRES))[keep],
            "year": np.tile(years, len(_CADRES) * n_cohorts)[keep],
            "att": cd[keep] / cn[keep],
            "y0_mean": c0[keep] / cn[keep],
            "n_villages": cn[keep],
        }
    )
    # Spillover cells by the village's own cohort (0 = never treated) x year.
    if spill is not None and spill.any():
        own = np.concatenate([[NEVER_TREATED], d.cohorts])
        o_idx = np.searchsorted(own, d.cohort)
        scell = (o_idx[:, None] * n_years + t_idx)[spill]
        ssize = len(own) * n_years
        sd, s0, sn = _cells(scell, ssize, diff[spill], e0[spill], None)
        ok = sn > 0
        g_s, y_s = np.repeat(own, n_years)[ok], np.tile(years, len(own))[ok]
        parts.append(frame("spillover", g_s, y_s, sd[ok], s0[ok], sn[ok]))
    return y, parts, by_cadre


# ----------------------------------------------------------------------------- aggregation


def aggregate_truth(cells: pd.DataFrame) -> pd.DataFrame:
    """Aggregate cell truths ATT(g, t) with the weights of R ``did::aggte``.

    Parameters
    ----------
    cells : pandas.DataFrame
        One row per outcome x cohort x year: ``outcome``, ``cohort``, ``year``, ``att``,
        ``y0_mean``, ``n_villages`` and optionally ``cadre_type`` (then every aggregate
        is computed within each cadre type). Not modified.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome, aggregation, cohort, year, event_time, cadre_type, value,
        y0_mean, value_prop``. ``aggregation`` is ``simple`` (ATT(g,t) over post cells
        ``t >= g`` weighted by cohort size), ``event`` (per event time ``e`` over all
        cells with ``t - g = e``, cohort-size weighted; pre-periods included),
        ``event_overall`` (mean of ``event`` over ``e >= 0``), ``group`` (per cohort, mean
        over its post years), ``group_overall`` (``group`` weighted by cohort size),
        ``calendar`` (per year ``t >= min g``, cohort-size weighted over ``g <= t``) and
        ``calendar_overall`` (mean of ``calendar``). ``y0_mean`` is the untreated mean
        aggregated with the same weights and ``value_prop = value / y0_mean``.

    Examples
    --------
    >>> cells = pd.DataFrame({"outcome": "y", "cohort": [2023, 2023, 2024, 2024],
    ...                       "year": [2023, 2024, 2023, 2024], "att": [1.0, 2.0, 0.0, 4.0],
    ...                       "y0_mean": 10.0, "n_villages": [1, 1, 3, 3]})
    >>> agg = aggregate_truth(cells)
    >>> float(agg.loc[agg["aggregation"] == "simple", "value"].iloc[0])  # (1 + 2 + 3*4) / 5
    3.0
    """
    c = cells.copy()
    if "cadre_type" not in c.columns:
        c["cadre_type"] = pd.NA
        keys = ["outcome"]
    else:
        keys = ["outcome", "cadre_type"]
    c["event_time"] = c["year"] - c["cohort"]
    c["w"] = c["n_villages"].astype(float)
    c["wy"] = c["att"] * c["w"]
    c["w0"] = c["y0_mean"] * c["w"]
    post = c[c["year"] >= c["cohort"]]
    rows: list[pd.DataFrame] = []

    def weighted(frame: pd.DataFrame, by: list[str], name: str) -> pd.DataFrame:
        g = frame.groupby(by, sort=True, dropna=False)[["wy", "w0", "w"]].sum().reset_index()
        g["value"] = g["wy"] / g["w"]
        g["y0_mean"] = g["w0"] / g["w"]
        g["aggregation"] = name
        return g.drop(columns=["wy", "w0", "w"])

    def mean_of(frame: pd.DataFrame, name: str) -> pd.DataFrame:
        g = frame.groupby(keys, sort=True, dropna=False)[["value", "y0_mean"]].mean().reset_index()
        g["aggregation"] = name
        return g

    rows.append(weighted(post, keys, "simple"))
    event = weighted(c, [*keys, "event_time"], "event")
    rows += [event, mean_of(event[event["event_time"] >= 0], "event_overall")]
    grp = (
        post.groupby([*keys, "cohort"], sort=True, dropna=False)
        .agg(value=("att", "mean"), y0_mean=("y0_mean", "mean"), w=("w", "first"))
        .reset_index()
    )
    grp["aggregation"] = "group"
    overall = grp.assign(wy=grp["value"] * grp["w"], w0=grp["y0_mean"] * grp["w"])
    overall = overall.groupby(keys, sort=True, dropna=False)[["wy", "w0", "w"]].sum().reset_index()
    overall["value"] = overall["wy"] / overall["w"]
    overall["y0_mean"] = overall["w0"] / overall["w"]
    overall["aggregation"] = "group_overall"
    rows += [grp.drop(columns=["w"]), overall.drop(columns=["wy", "w0", "w"])]
    calendar = weighted(post, [*keys, "year"], "calendar")
    rows += [calendar, mean_of(calendar, "calendar_overall")]
    out = pd.concat(rows, ignore_index=True)
    out["value_prop"] = np.where(
        out["y0_mean"] != 0, out["value"] / out["y0_mean"].where(out["y0_mean"] != 0), np.nan
    )
    for col in ("cohort", "year", "event_time"):
        out[col] = (
            out[col].astype("Int64")
            if col in out.columns
            else pd.array([pd.NA] * len(out), dtype="Int64")
        )
    if "cadre_type" not in out.columns:
        out["cadre_type"] = pd.NA
    order = [
        "simple",
        "event",
        "event_overall",
        "group",
        "group_overall",
        "calendar",
        "calendar_overall",
    ]
    out["_a"] = out["aggregation"].map({a: i for i, a in enumerate(order)})
    out = out.sort_values(
        ["outcome", "cadre_type", "_a", "cohort", "year", "event_time"],
        kind="mergesort",
        na_position="first",
    )
    cols = [
        "outcome",
        "aggregation",
        "cohort",
        "year",
        "event_time",
        "cadre_type",
        "value",
        "y0_mean",
        "value_prop",
    ]
    return out[cols].reset_index(drop=True)


def _truth_aggregates(cells: pd.DataFrame, cadre_cells: pd.DataFrame) -> pd.DataFrame:
    """All aggregates, plus the simple ATT within each cadre type (aggregation ``cadre_type``)."""
    outcome_order = {o: i for i, o in enumerate(schema.OUTCOMES)}
    main = aggregate_truth(cells)
    by_cadre = aggregate_truth(cadre_cells)
    by_cadre = by_cadre[by_cadre["aggregation"] == "simple"].assign(aggregation="cadre_type")
    out = pd.concat([main, by_cadre], ignore_index=True)
    out["_o"] = out["outcome"].map(outcome_order)
    out["_c"] = out["cadre_type"].map({c: i for i, c in enumerate(_CADRES)}).fillna(-1)
    out = out.sort_values(["_o", "_c"], kind="mergesort").drop(columns=["_o", "_c"])
    out["cadre_type"] = out["cadre_type"].astype("str").where(out["cadre_type"].notna(), None)
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------- the city


def simulate_city(
    seed: int = 20230601,
    first_year: int = 2018,
    last_year: int = 2024,
    n_villages: int = REPORT_VILLAGES,
    n_townships: int = REPORT_TOWNSHIPS,
    n_counties: int = REPORT_COUNTIES,
    later_batches: Sequence[tuple[int, int]] = (),
    spillover: float = 0.0,
    anticipation: int = 0,
) -> SyntheticCity:
    """Simulate the calibrated synthetic city with known true effects.

    The design (roll-out, targeting, outcomes, effects, truth, TWFE bias, conditional
    parallel trends, spillover) is documented in the module docstring.

    Parameters
    ----------
    seed : int, default 20230601
        Seed of every random draw (``numpy.random.SeedSequence(seed)``).
    first_year, last_year : int, default 2018, 2024
        Panel window; ``first_year <= 2022`` (the pilot's cohort 2023 needs a
        pre-period) and ``last_year >= 2023``.
    n_villages, n_townships, n_counties : int, default 3224, 178, 9
        Size of the city. The pilot (420) and the first batch (1,458, 45.2%) scale
        with ``n_villages / 3224``; a national panel needs more counties
        (at most 999 townships per county, e.g. ``n_counties=1_400`` for 27,600).
    later_batches : sequence of (year, count), default ()
        More batches: ``count`` villages whose secretaries start in spring of
        ``year`` (cohort ``year``); ``2024 <= year <= last_year``.
    spillover : float, default 0
        Effect on untreated villages of heavily treated townships, as a share of the
        township's mean direct effect index, in [-1, 1].
    anticipation : int, default 0
        Years before the cohort year in which effects start (0-3).

    Returns
    -------
    SyntheticCity
        Panel, postings, derived treatment, truth, aggregates, village traits, params.

    Raises
    ------
    ValueError
        If a parameter is out of range, e.g. a later batch beyond ``last_year``.

    Examples
    --------
    >>> city = simulate_city(seed=1, n_villages=400, n_townships=24)
    >>> sorted(city.treatment["cohort"].unique().tolist())
    [2023, 2024]
    """
    later = _validate(
        first_year,
        last_year,
        n_villages,
        n_townships,
        n_counties,
        later_batches,
        spillover,
        anticipation,
    )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    years = np.arange(first_year, last_year + 1)
    ss = np.random.SeedSequence(seed)
    ss_geo, ss_cov, ss_lat, ss_sel, ss_post, ss_names, ss_out = ss.spawn(7)
    rng_out = [np.random.default_rng(s) for s in ss_out.spawn(len(schema.OUTCOMES))]

    geo = _geography(np.random.default_rng(ss_geo), n_villages, n_townships, n_counties)
    cov = _covariates(np.random.default_rng(ss_cov), geo)
    lat = _latent(np.random.default_rng(ss_lat), cov)
    asg = _assign(np.random.default_rng(ss_sel), geo, cov, lat, n_villages, later)
    postings = _postings(np.random.default_rng(ss_post), geo, asg, last_year)
    names = _names(np.random.default_rng(ss_names), n_villages)

    # Treatment timing comes from the postings, by the documented rule -- and only from there.
    treatment = derive_treatment(postings, first_year, last_year)
    pos = pd.Index(geo["village_code"]).get_indexer(treatment["village_code"].to_numpy())
    cohort = np.zeros(n_villages, dtype=np.int64)
    cohort[pos] = treatment["cohort"].to_numpy()
    cadre = np.full(n_villages, -1)
    cadre_map = {c: i for i, c in enumerate(_CADRES)}
    cadre[pos] = treatment["cadre_type"].map(cadre_map).to_numpy()
    # Intended cohorts: pilot (Dec 2022) -> 2023, city batch (Jul-Sep 2023) -> 2024, spring Y -> Y.
    by = asg["batch_year"]
    intended = np.where(by == 2022, 2023, np.where(by == CITY_BATCH_YEAR, CITY_BATCH_YEAR + 1, by))
    intended = np.where(intended > last_year, NEVER_TREATED, intended)
    if not np.array_equal(cohort, intended) or not np.array_equal(cadre[pos], asg["cadre"][pos]):
        raise RuntimeError(
            "internal error: cohorts derived from the postings disagree with the design"
        )

    # Effect index: theta[i, t] = base[outcome, cadre] * scale_i * profile(k), k = t - g + a.
    treated = cohort > 0
    kind_mult = np.select([asg["kind"] == k for k in COHORT_MULT], list(COHORT_MULT.values()), 0.0)
    scale = np.where(treated, kind_mult * lat["omega"], 0.0)
    k = np.where(treated[:, None], years[None, :] - cohort[:, None] + anticipation, -1)
    cohorts = np.unique(cohort[treated])
    c_index = np.full(n_villages, -1)
    c_index[treated] = np.searchsorted(cohorts, cohort[treated])
    n_g = np.bincount(c_index[treated], minlength=len(cohorts))

    # Spillover: heavily treated townships; cells with no direct effect.
    township = geo["township_of_village"]
    n_t = np.bincount(township, minlength=n_townships)
    heavy = (
        np.bincount(township, weights=treated, minlength=n_townships) >= HEAVY_TOWNSHIP_SHARE * n_t
    )

    design = _Design(
        years=years,
        cohort=cohort,
        cohorts=cohorts,
        c_index=c_index,
        n_g=n_g,
        cadre=cadre,
        scale=scale,
        k=k,
        township=township,
        heavy=heavy,
        spillover=float(spillover),
    )
    panel_cols: dict[str, np.ndarray] = {}
    truth_parts: list[pd.DataFrame] = []
    cadre_parts: list[pd.DataFrame] = []
    for outcome, rng in zip(schema.OUTCOMES, rng_out, strict=True):
        base = _baseline(outcome, rng, cov, lat, years)
        y, parts, by_cadre = _outcome(outcome, base, design, rng)
        panel_cols[outcome] = y.ravel()
        truth_parts += parts
        cadre_parts.append(by_cadre)

    truth = pd.concat(truth_parts, ignore_index=True)
    truth["event_time"] = pd.array(
        np.where(truth["cohort"] > 0, truth["year"] - truth["cohort"], 0), dtype="Int64"
    )
    truth.loc[truth["cohort"] == 0, "event_time"] = pd.NA
    truth = truth[
        [
            "outcome",
            "effect",
            "cohort",
            "year",
            "event_time",
            "att",
            "att_prop",
            "y0_mean",
            "y1_mean",
            "n_villages",
        ]
    ]
    direct_cells = truth[truth["effect"] == "direct"].drop(columns=["effect"])
    truth_aggregates = _truth_aggregates(direct_cells, pd.concat(cadre_parts, ignore_index=True))

    panel = _assemble_panel(geo, cov, names, years, panel_cols)
    villages = pd.DataFrame(
        {
            "village_code": _arrow_str(geo["village_code"]),
            "township_code": _arrow_str(geo["township_code"][township]),
            "county_code": _arrow_str(geo["county_code"][geo["county_of_village"]]),
            "pilot_district": geo["pilot"],
            "batch": _arrow_str(np.where(asg["label"] == "", "none", asg["label"])),
            "intended_cohort": intended,
            "intended_cadre": _arrow_str(
                np.where(asg["batch_year"] > 0, np.array(_CADRES)[asg["cadre"]], "none")
            ),
            "targeting_index": asg["index"],
            "income_level_2022": lat["level_2022"],
            "z_income": lat["z_income"],
            "z_order": lat["z_order"],
            "order_problem": asg["order_problem"],
            "weak_economy": asg["weak"],
            "effect_scale": scale,
            "income_trend_slope": lat["slope"],
            "heavy_township": heavy[township],
        }
    )
    params = _params(
        seed,
        first_year,
        last_year,
        n_villages,
        n_townships,
        n_counties,
        later,
        spillover,
        anticipation,
        geo,
        asg,
    )
    return SyntheticCity(
        panel=panel,
        postings=postings,
        truth=truth,
        truth_aggregates=truth_aggregates,
        treatment=treatment,
        villages=villages,
        params=params,
    )


def _assemble_panel(
    geo: dict, cov: dict, names: np.ndarray, years: np.ndarray, out: dict
) -> pd.DataFrame:
    n, n_years = len(names), len(years)
    rep = np.repeat(np.arange(n), n_years)
    dt = (years - REPORT_YEAR)[None, :]
    pop = np.clip(
        np.round(cov["pop"][:, None] * np.exp(cov["pop_growth"][:, None] * dt)), 1, 200_000
    )
    members = np.maximum(np.round(cov["members"][:, None] * (1 + 0.01 * dt)), 0)
    over60 = np.clip(cov["over60"][:, None] + 0.006 * dt, 0.0, 1.0)

    def village_level(a: np.ndarray) -> np.ndarray:
        return np.repeat(a, n_years)

    cols: dict[str, object] = {
        "village_code": _arrow_str(geo["village_code"], rep),
        "year": np.tile(years.astype(np.int64), n),
        "village_name": _arrow_str(names, rep),
        "township_code": _arrow_str(geo["township_code"][geo["township_of_village"]], rep),
        "county_code": _arrow_str(geo["county_code"][geo["county_of_village"]], rep),
        "population": pop.ravel().astype(np.int64),
    }
    for name in schema.OUTCOMES:
        v = out[name]
        if name in PANEL_DECIMALS:
            cols[name] = np.round(v.astype(float), PANEL_DECIMALS[name])
        else:
            cols[name] = v.astype(np.int64)
    cols.update(
        {
            "distance_km": village_level(cov["distance"]),
            "terrain": _arrow_str(np.array(schema.TERRAIN_LEVELS)[cov["terrain"]], rep),
            "distinctive_industry": village_level(cov["industry"]).astype(np.int64),
            "party_members": members.ravel().astype(np.int64),
            "share_members_over60": np.round(
                over60.ravel(), PANEL_DECIMALS["share_members_over60"]
            ),
        }
    )
    return pd.DataFrame(cols)[schema.column_names("panel")]


def _params(
    seed,
    first_year,
    last_year,
    n_villages,
    n_townships,
    n_counties,
    later,
    spillover,
    anticipation,
    geo,
    asg,
) -> dict:
    return {
        "seed": seed,
        "first_year": int(first_year),
        "last_year": int(last_year),
        "n_villages": int(n_villages),
        "n_townships": int(n_townships),
        "n_counties": int(n_counties),
        "later_batches": [[int(y), int(c)] for y, c in later],
        "spillover": float(spillover),
        "anticipation": int(anticipation),
        "province_prefix": PROVINCE_PREFIX,
        "city_name": CITY_NAME,
        "pilot_counties": [str(c) for c in geo["county_code"][: geo["n_pilot_counties"]]],
        "pilot_district_share": PILOT_DISTRICT_SHARE,
        "pilot_secretaries": int(asg["n_pilot"]),
        "city_batch_secretaries": int(asg["n_city"]),
        "first_batch_villages": int(asg["n_pilot"] + asg["n_city"]),
        "pilot_start": [str(PILOT_START), str(PILOT_START + PILOT_START_DAYS - 1)],
        "city_start": [str(CITY_START), str(CITY_START + CITY_START_DAYS - 1)],
        "later_batch_start": "1 March - 31 May of the batch year",
        "replacement_share": REPLACEMENT_SHARE,
        "rule_noise": RULE_NOISE,
        "heavy_township_share": HEAVY_TOWNSHIP_SHARE,
        "targeting_index": "1.0 z_order - 1.1 z_income + 0.9 industry + 0.3 mountain + 0.15 hill",
        "cadre_rule": (
            "z_order > 0.7 -> law; industry -> agriculture; z_income < -0.3 -> economic; else other"
        ),
        "cohort_multiplier": dict(COHORT_MULT),
        "effects": {o: dict(v) for o, v in EFFECTS.items()},
        "effect_kind": dict(EFFECT_KIND),
        "profile": "1 - 0.55^(k+1); team_reorganised 0.5^k; k = year - cohort + anticipation",
        "effect_scale_sd": 0.25,
        "baseline": {o: dict(v) for o, v in BASELINE.items()},
        "count_gamma_shape": 4.0,
        "income": dict(INCOME),
        "report_income": REPORT_INCOME,
        "report_year": REPORT_YEAR,
        "truth": "att = mean over the cohort's villages of E[Y(1) - Y(0)] given village parameters",
    }


# ----------------------------------------------------------------------------- files


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _panel_csv(panel: pd.DataFrame) -> str:
    out = panel.copy()
    for name, d in PANEL_DECIMALS.items():
        out[name] = np.char.mod(f"%.{d}f", out[name].to_numpy(dtype=float))
    return out.to_csv(index=False, lineterminator="\n")


def write_city(city: SyntheticCity, out_dir: str | os.PathLike) -> dict[str, Path]:
    r"""Write the city as canonical, byte-deterministic files.

    Parameters
    ----------
    city : SyntheticCity
        Output of :func:`simulate_city` (not modified).
    out_dir : str or path-like
        Folder to write into (created if missing).

    Returns
    -------
    dict of str to pathlib.Path
        ``panel``, ``postings``, ``truth``, ``truth_aggregates``, ``params`` to the
        files ``panel.csv``, ``postings.csv``, ``truth.csv``, ``truth_aggregates.csv``
        and ``params.json``.

    Notes
    -----
    UTF-8 without BOM, ``\\n`` line endings, canonical column order, fixed float formats
    (:data:`PANEL_DECIMALS` in the panel, ``%.10g`` in the truth files), empty fields
    for missing values. Each file is written to a temporary name and moved into place
    with :func:`os.replace`, so a crash never leaves half a file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "panel": ("panel.csv", _panel_csv(city.panel)),
        "postings": ("postings.csv", city.postings.to_csv(index=False, lineterminator="\n")),
        "truth": (
            "truth.csv",
            city.truth.to_csv(index=False, lineterminator="\n", float_format=TRUTH_FLOAT_FORMAT),
        ),
        "truth_aggregates": (
            "truth_aggregates.csv",
            city.truth_aggregates.to_csv(
                index=False, lineterminator="\n", float_format=TRUTH_FLOAT_FORMAT
            ),
        ),
        "params": (
            "params.json",
            json.dumps(city.params, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
        ),
    }
    paths: dict[str, Path] = {}
    for key, (name, text) in texts.items():
        path = out / name
        _atomic_write_text(path, text)
        paths[key] = path
    return paths


def summarise_city(city: SyntheticCity) -> str:
    """One-paragraph description of a simulated city.

    Parameters
    ----------
    city : SyntheticCity
        Output of :func:`simulate_city`.

    Returns
    -------
    str
        Villages, townships, counties and treated villages by cohort.
    """
    p = city.panel
    n = p["village_code"].nunique()
    by_cohort = (
        city.treatment.loc[city.treatment["cohort"] > 0, "cohort"].value_counts().sort_index()
    )
    treated = int(by_cohort.sum())
    parts = ", ".join(f"{g}: {c:,}" for g, c in by_cohort.items())
    return (
        f"synthetic city (seed {city.params['seed']}, {city.params['first_year']}-"
        f"{city.params['last_year']}): {n:,} villages in {p['township_code'].nunique():,} "
        f"townships and {p['county_code'].nunique():,} counties; {len(city.postings):,} postings; "
        f"treated villages "
        f"by cohort {parts} (total {treated:,} = {treated / n:.1%})"
    )


def simulate_to_store(
    seed: int,
    first_year: int,
    last_year: int,
    later_batches: Sequence[tuple[int, int]],
    spillover: float,
    out_dir: str | os.PathLike,
    store: str | os.PathLike,
    ingest: bool = True,
) -> str:
    """Simulate the city, write its files and (optionally) ingest them into the store.

    Parameters
    ----------
    seed : int
        Seed of every random draw.
    first_year, last_year : int
        Panel window.
    later_batches : sequence of (year, count)
        Later batches (see :func:`simulate_city`).
    spillover : float
        Spillover share (see :func:`simulate_city`).
    out_dir : str or path-like
        Folder for ``panel.csv``, ``postings.csv``, ``truth.csv``,
        ``truth_aggregates.csv`` and ``params.json``.
    store : str or path-like
        DuckDB store that :func:`analysis.data.ingest.ingest_files` writes into.
    ingest : bool, default True
        Whether to ingest the panel and postings after writing them.

    Returns
    -------
    str
        A short human-readable summary (villages, townships, treated by cohort, files,
        and the ingest report).

    Raises
    ------
    ValueError
        If a parameter is out of range, or if ``store`` holds data that an earlier
        ``study simulate`` into ``out_dir`` did not write (real or example data): that
        store is left untouched.
    analysis.data.ingest.IngestError
        If the store rejects the files.

    Notes
    -----
    A store that holds only an earlier synthetic city is rebuilt from scratch (a new store
    swapped in atomically), so a city simulated with another seed or window never mixes
    with the previous one's postings.
    """
    store = Path(store)
    if ingest and store.exists():
        _check_store_is_synthetic(store, Path(out_dir))
    city = simulate_city(
        seed=seed,
        first_year=first_year,
        last_year=last_year,
        later_batches=tuple(later_batches),
        spillover=spillover,
    )
    files = write_city(city, out_dir)
    lines = [
        summarise_city(city),
        f"files written to {Path(out_dir)}: " + ", ".join(p.name for p in files.values()),
    ]
    if ingest:
        from analysis.data.ingest import ingest_files

        fresh = store.with_name(store.name + ".simulate-new")
        for leftover in (fresh, fresh.with_name(fresh.name + ".lock")):
            leftover.unlink(missing_ok=True)
        try:
            report = ingest_files([files["panel"], files["postings"]], store=fresh)
            os.replace(fresh, store)
        finally:
            for leftover in (fresh, fresh.with_name(fresh.name + ".lock")):
                leftover.unlink(missing_ok=True)
        lines.append(str(report).replace(str(fresh), str(store)))
    return "\n".join(lines)


def _check_store_is_synthetic(store: Path, out_dir: Path) -> None:
    """Refuse to overwrite a store that holds anything but the synthetic city written to ``out_dir``."""
    from analysis.core.truth import truth_status
    from analysis.data.store import read_provenance

    if read_provenance(store).empty:
        return
    ok, why = truth_status(store, out_dir)
    if not ok:
        raise ValueError(
            f"the store {store} holds data that `study simulate` did not write ({why}); it is left untouched. "
            "Write the synthetic city to another store with --store PATH, or move this store away first."
        )
