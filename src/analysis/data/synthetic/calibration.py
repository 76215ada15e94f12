"""The synthetic city's calibration: the report's figures and every parameter of the design.

No village-level micro data on the first-secretary programme is public, so the study
runs on a synthetic city calibrated to the municipal report (``CONTEXT.md``): 3,224
villages in 178 townships and about nine districts, a pilot district with 420 first
secretaries from December 2022, 1,458 villages (45.2%) with a first secretary by the end
of 2023, rural per-capita net income of 3,313 yuan in 2023. The effects (:data:`EFFECTS`),
the untreated outcomes (:data:`BASELINE`, :data:`INCOME`) and the roll-out constants are
all here, and all are written to the city's ``params.json``. How they are used is
described in :mod:`~analysis.data.synthetic.design` and
:mod:`~analysis.data.synthetic.outcomes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.data import schema

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

@dataclass(frozen=True)
class CollectiveIncome:
    """Collective income: a log-normal level plus a covariate slope times a growth index."""

    level: float
    level_sd: float
    slope: float
    plain: float
    mountain: float
    industry: float
    growth: float
    sigma: float


@dataclass(frozen=True)
class Projects:
    """Projects brought in: a count whose trend slope rises with industry and plain terrain."""

    level: float
    level_sd: float
    slope: float
    industry: float
    plain: float


@dataclass(frozen=True)
class Funds:
    """Funds attracted: a hurdle (probability by covariates) times a growing log-normal amount."""

    p_intercept: float
    p_industry: float
    p_plain: float
    p_mountain: float
    p_sd: float
    amount: float
    amount_sd: float
    trend: float
    trend_plain: float
    growth: float
    sigma: float


@dataclass(frozen=True)
class Roads:
    """Roads built: a hurdle (probability by terrain) times a log-normal length."""

    p_intercept: float
    p_hill: float
    p_mountain: float
    p_sd: float
    amount: float
    amount_sd: float
    trend: float
    sigma: float


@dataclass(frozen=True)
class TeamReorganised:
    """Leadership team reorganised: logit of the yearly probability."""

    intercept: float
    over60: float
    z_order: float
    weak: float


@dataclass(frozen=True)
class PartyCount:
    """Activists and new members: per party member, with a trend steeper in mountains."""

    per_member: float
    level_sd: float
    slope: float
    mountain: float


@dataclass(frozen=True)
class CaseCount:
    """Criminal cases, disputes and petitions: level by public-order problem and population."""

    level: float
    z_order: float
    pop: float
    slope: float


@dataclass(frozen=True)
class CaseSlope:
    """The case counts' trend slope by terrain and distance."""

    intercept: float
    mountain: float
    hill: float
    km: float


@dataclass(frozen=True)
class Baseline:
    """Parameters of the untreated outcomes other than income (levels, covariate slopes, noise).

    ``s_t`` is ``1 / (1 + exp(-(t - 2020) / 3))`` for counts and roads, a growth index
    otherwise (:func:`analysis.data.synthetic.outcomes.baseline`).
    """

    collective_income: CollectiveIncome
    projects: Projects
    funds_attracted: Funds
    roads_km: Roads
    team_reorganised: TeamReorganised
    activists: PartyCount
    new_members: PartyCount
    criminal_cases: CaseCount
    disputes: CaseCount
    petitions: CaseCount
    case_slope: CaseSlope


BASELINE = Baseline(
    collective_income=CollectiveIncome(level=20_000.0, level_sd=1.1, slope=12_000.0, plain=0.3, mountain=-0.3,
                                       industry=0.4, growth=1.07, sigma=0.6),
    projects=Projects(level=0.28, level_sd=0.5, slope=0.06, industry=0.8, plain=0.3),
    funds_attracted=Funds(p_intercept=0.1, p_industry=0.5, p_plain=0.3, p_mountain=-0.3, p_sd=0.6, amount=13_000.0,
                          amount_sd=0.6, trend=4_000.0, trend_plain=0.5, growth=1.06, sigma=0.9),
    roads_km=Roads(p_intercept=-0.4, p_hill=0.3, p_mountain=0.4, p_sd=0.6, amount=2.0, amount_sd=0.4, trend=0.4,
                   sigma=0.7),
    team_reorganised=TeamReorganised(intercept=-2.6, over60=2.0, z_order=0.3, weak=0.3),
    activists=PartyCount(per_member=0.095, level_sd=0.3, slope=0.5, mountain=0.5),
    new_members=PartyCount(per_member=0.04, level_sd=0.3, slope=0.2, mountain=0.0),
    criminal_cases=CaseCount(level=0.30, z_order=0.6, pop=1.0, slope=0.1),
    disputes=CaseCount(level=2.2, z_order=0.7, pop=1.0, slope=0.8),
    petitions=CaseCount(level=0.10, z_order=0.9, pop=0.0, slope=0.04),
    case_slope=CaseSlope(intercept=0.2, mountain=1.0, hill=0.5, km=0.01),
)
"""The untreated outcomes' parameters (written to ``params.json`` as ``baseline``)."""


@dataclass(frozen=True)
class Income:
    """Income: ``E[Y(0)] = level_i + slope(X_i) kappa_i growth^(t-2023)``, AR(1) noise.

    ``level`` and ``slope`` are relative scales: both are rescaled so that the expected
    untreated city mean in 2023 is ``target_2023``.
    """

    level: float
    slope: float
    growth: float
    sigma: float
    rho: float
    kappa_sd: float
    target_2023: float


INCOME = Income(level=310.0, slope=2870.0, growth=1.11, sigma=0.15, rho=0.5, kappa_sd=0.45, target_2023=3300.0)
"""Income's parameters (written to ``params.json`` as ``income``)."""

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

CADRES = schema.UNIT_TYPES
"""Cadre types, in the order of the simulator's integer codes (law, agriculture, economic, other)."""


def scaled(count: int, n_villages: int) -> int:
    """Scale a count of the report's city (3,224 villages) to a city of ``n_villages``.

    Parameters
    ----------
    count : int
        A count of the report (e.g. :data:`PILOT_SECRETARIES`).
    n_villages : int
        Villages of the simulated city.

    Returns
    -------
    int
        ``round(count * n_villages / 3224)``.
    """
    return round(count * n_villages / REPORT_VILLAGES)


def scaled_units(n_villages: int) -> tuple[int, int, int]:
    """Villages, townships and counties of a city of ``n_villages``, at the report's ratios.

    The report's city has 3,224 villages in 178 townships and 9 counties; a city of
    another size keeps about 18 villages per township and 20 townships per county, so that
    township clusters and county regions are as large as the report's.

    Parameters
    ----------
    n_villages : int
        Villages of the simulated city (at least 40).

    Returns
    -------
    tuple of int
        ``(n_villages, n_townships, n_counties)`` with ``n_townships =
        round(178 * n_villages / 3224)`` (at least 2) and ``n_counties =
        round(9 * n_villages / 3224)`` (at least 2, at most ``n_townships``).

    Examples
    --------
    >>> scaled_units(3224)
    (3224, 178, 9)
    >>> scaled_units(500_000)
    (500000, 27605, 1396)
    """
    townships = max(2, round(REPORT_TOWNSHIPS * n_villages / REPORT_VILLAGES))
    counties = min(townships, max(2, round(REPORT_COUNTIES * n_villages / REPORT_VILLAGES)))
    return n_villages, townships, counties
