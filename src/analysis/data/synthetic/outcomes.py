"""The synthetic city's outcomes: untreated paths, effects, realised values, and the truth of each cell.

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
log-normal amount); ``team_reorganised`` is Bernoulli (:data:`~analysis.data.synthetic.calibration.BASELINE`).
Among the 1,458 first-batch villages the 2023 / 2024 totals of the default city bracket the
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
draw (log-normal, mean 1). ``base`` (:data:`~analysis.data.synthetic.calibration.EFFECTS`)
makes ``law`` cadres cut cases most, ``agriculture`` cadres raise income most and
``economic`` cadres bring projects and funds. The index acts multiplicatively on the mean:
``E[Y(1)] = E[Y(0)] exp(theta)`` for income, collective income and counts (so a count's
proportional effect is ``exp(theta) - 1``); for hurdles ``theta`` shifts the logit of the
probability and ``theta/2`` the log amount; for ``team_reorganised`` it shifts the logit.
The truth of each cell is in :mod:`~analysis.data.synthetic.truth`.

Under the stress scenario of partial exposure
(:class:`~analysis.data.synthetic.scenarios.Scenario`), a village whose secretary arrives in
the year before its cohort year also has ``months in post / 12`` times the first-year index in
that arrival year.

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
With ``spillover = s != 0`` (a field of the
:class:`~analysis.data.synthetic.scenarios.Scenario`), villages without a (direct) effect in
*heavily treated* townships (at least ``spillover_share``, by default half, of the township's
villages have a cohort in the window) get
the index ``s * mean(theta of the township's directly affected villages that year)``
from the year the township's first cohort starts (earlier under anticipation). They
include not-yet-treated villages before their own cohort. The truth records these
cells with ``effect == "spillover"`` (by the village's own cohort, 0 = never treated);
direct-effect cells stay ``effect == "direct"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.core.treatment import NEVER_TREATED
from analysis.data.synthetic.calibration import (
    BASELINE,
    CADRES,
    EFFECT_KIND,
    EFFECTS,
    FRONT_LOADED,
    INCOME,
    REPORT_YEAR,
)
from analysis.data.synthetic.design import Covariates, LatentTraits


@dataclass(frozen=True)
class Untreated:
    """The untreated expectation of one outcome and the parameters of its distribution.

    Attributes
    ----------
    mean : numpy.ndarray or None
        ``E[Y(0)]`` (villages x years) of log-normal and count outcomes.
    p : numpy.ndarray or None
        Probability of a non-zero value (hurdles) or of 1 (``team_reorganised``).
    amount : numpy.ndarray or None
        Expected amount when non-zero (hurdles).
    sigma : float
        Log-normal noise of the value (log-normal outcomes, hurdles' amounts).
    rho : float
        AR(1) coefficient of the log-normal noise.
    """

    mean: np.ndarray | None = None
    p: np.ndarray | None = None
    amount: np.ndarray | None = None
    sigma: float = 0.0
    rho: float = 0.0

    def part(self, name: str) -> np.ndarray:
        """Return the array ``name`` (``mean``, ``p`` or ``amount``), which the outcome's kind needs.

        Raises
        ------
        ValueError
            If this outcome has no such array (an effect kind that does not fit the outcome).
        """
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"this outcome's untreated expectation has no {name!r}: its effect kind needs one")
        return value


@dataclass(frozen=True)
class OutcomeDraw:
    """One simulated outcome.

    Attributes
    ----------
    values : numpy.ndarray
        Realised values (villages x years).
    truth : list of pandas.DataFrame
        True effects by cohort and year (``effect`` ``direct``, and ``spillover`` if any).
    truth_by_cadre : pandas.DataFrame
        The direct cells within each cadre type.
    """

    values: np.ndarray
    truth: list[pd.DataFrame]
    truth_by_cadre: pd.DataFrame


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _logistic_time(years: np.ndarray, centre: float = 2020.0, scale: float = 3.0) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(years - centre) / scale))


def baseline(
    outcome: str, rng: np.random.Generator, cov: Covariates, lat: LatentTraits, years: np.ndarray
) -> Untreated:
    """Return the untreated expectation ``L_i + K_i s_t`` and the distribution parameters of one outcome.

    Parameters
    ----------
    outcome : str
        A canonical outcome.
    rng : numpy.random.Generator
        The outcome's stream (hurdles draw their village probabilities from it).
    cov : Covariates
        Observed village traits.
    lat : LatentTraits
        Latent village traits.
    years : numpy.ndarray
        The panel's years.

    Returns
    -------
    Untreated
        Arrays of villages x years (or villages x 1).
    """
    n = len(cov.terrain)
    plain, hill, mountain = cov.plain, cov.hill, cov.mountain
    industry, dist = cov.industry.astype(float), cov.distance
    z_order, u = lat.z_order, lat.u
    s_log = _logistic_time(years.astype(float))[None, :]
    cs = BASELINE.case_slope
    case_slope = cs.intercept + cs.mountain * mountain + cs.hill * hill + cs.km * dist

    def col(a: np.ndarray) -> np.ndarray:
        return a[:, None]

    def lognormal(sd: float, z: np.ndarray) -> np.ndarray:  # mean-one log-normal factor
        return np.exp(sd * z - 0.5 * sd**2)

    if outcome == "income_per_capita":
        trend = INCOME.growth ** (years - REPORT_YEAR)
        return Untreated(
            mean=col(lat.alpha) + col(lat.slope * lat.kappa) * trend[None, :],
            sigma=INCOME.sigma,
            rho=INCOME.rho,
        )
    if outcome == "collective_income":
        ci = BASELINE.collective_income
        uc = 0.5 * lat.u_inc + np.sqrt(0.75) * u[0]
        level = ci.level * lognormal(ci.level_sd, uc)
        slope = ci.slope * (
            1 + ci.plain * plain + ci.mountain * mountain + ci.industry * industry
        )
        return Untreated(
            mean=col(level) + col(slope) * ci.growth ** (years - REPORT_YEAR)[None, :],
            sigma=ci.sigma,
            rho=0.0,
        )
    if outcome == "projects":
        pr = BASELINE.projects
        level = pr.level * lognormal(pr.level_sd, u[1])
        slope = pr.slope * (1 + pr.industry * industry + pr.plain * plain)
        return Untreated(mean=col(level) + col(slope) * s_log)
    if outcome == "funds_attracted":
        fu = BASELINE.funds_attracted
        p = _expit(
            fu.p_intercept
            + fu.p_industry * industry
            + fu.p_plain * plain
            + fu.p_mountain * mountain
            + fu.p_sd * rng.standard_normal(n)
        )
        amount = fu.amount * lognormal(fu.amount_sd, u[2])
        trend = fu.trend * (1 + fu.trend_plain * plain)
        return Untreated(
            p=col(p),
            amount=col(amount) + col(trend) * fu.growth ** (years - REPORT_YEAR)[None, :],
            sigma=fu.sigma,
        )
    if outcome == "roads_km":
        ro = BASELINE.roads_km
        p = _expit(
            ro.p_intercept
            + ro.p_hill * hill
            + ro.p_mountain * mountain
            + ro.p_sd * rng.standard_normal(n)
        )
        amount = ro.amount * lognormal(ro.amount_sd, u[3])
        return Untreated(p=col(p), amount=col(amount) + ro.trend * s_log, sigma=ro.sigma)
    if outcome == "team_reorganised":
        tr = BASELINE.team_reorganised
        p = _expit(
            tr.intercept
            + tr.over60 * (cov.over60 - 0.38)
            + tr.z_order * z_order
            + tr.weak * (lat.z_income < -0.3)
        )
        return Untreated(p=col(p) + np.zeros((1, len(years))))
    if outcome in ("activists", "new_members"):
        party = BASELINE.activists if outcome == "activists" else BASELINE.new_members
        level = (
            cov.members
            * party.per_member
            * lognormal(party.level_sd, u[4 if outcome == "activists" else 5])
        )
        slope = party.slope * (1 + party.mountain * mountain)
        return Untreated(mean=col(level) + col(slope) * s_log)
    if outcome in ("criminal_cases", "disputes", "petitions"):
        cases = getattr(BASELINE, outcome)
        level = (
            cases.level * lognormal(cases.z_order, z_order) * np.sqrt(cov.pop / 1300.0) ** cases.pop
        )
        return Untreated(mean=col(level) + col(cases.slope * case_slope) * s_log)
    raise ValueError(f"unknown outcome {outcome!r}")  # pragma: no cover


def expected(kind: str, base: Untreated, theta: np.ndarray | float) -> np.ndarray:
    """Return ``E[Y]`` given the effect index ``theta`` (0 = untreated).

    Parameters
    ----------
    kind : {"lognormal", "count", "hurdle", "binary"}
        How the effect acts (:data:`~analysis.data.synthetic.calibration.EFFECT_KIND`).
    base : Untreated
        The outcome's untreated expectation.
    theta : numpy.ndarray or float
        Effect index (villages x years).

    Returns
    -------
    numpy.ndarray
        The expectation.
    """
    if kind in ("lognormal", "count"):
        return base.part("mean") * np.exp(theta)
    if kind == "hurdle":
        return _expit(_logit(base.part("p")) + theta) * base.part("amount") * np.exp(0.5 * theta)
    return _expit(_logit(base.part("p")) + theta)


def draw(kind: str, base: Untreated, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw the realised outcome, whose expectation is :func:`expected`.

    Parameters
    ----------
    kind : {"lognormal", "count", "hurdle", "binary"}
        How the effect acts.
    base : Untreated
        The outcome's untreated expectation.
    theta : numpy.ndarray
        Effect index (villages x years).
    rng : numpy.random.Generator
        The outcome's stream.

    Returns
    -------
    numpy.ndarray
        Villages x years.
    """
    shape = theta.shape
    if kind == "lognormal":
        sigma, rho = base.sigma, base.rho
        z = rng.standard_normal(shape)
        eta = np.empty(shape)
        eta[:, 0] = sigma * z[:, 0]
        for t in range(1, shape[1]):  # loop over years, vectorised over villages
            eta[:, t] = rho * eta[:, t - 1] + np.sqrt(1 - rho**2) * sigma * z[:, t]
        return base.part("mean") * np.exp(theta + eta - 0.5 * sigma**2)
    if kind == "count":
        nu = rng.gamma(4.0, 0.25, shape)
        return rng.poisson(base.part("mean") * np.exp(theta) * nu)
    if kind == "hurdle":
        p = _expit(_logit(base.part("p")) + theta)
        hit = rng.random(shape) < p
        sigma = base.sigma
        amount = base.part("amount") * np.exp(
            0.5 * theta + sigma * rng.standard_normal(shape) - 0.5 * sigma**2
        )
        return np.where(hit, amount, 0.0)
    return (rng.random(shape) < _expit(_logit(base.part("p")) + theta)).astype(np.int64)


def profile(outcome: str, k: np.ndarray) -> np.ndarray:
    """Return the share of the full effect after ``k`` years of exposure (0 before it).

    Parameters
    ----------
    outcome : str
        A canonical outcome (front-loaded ones fall with exposure).
    k : numpy.ndarray
        Years of exposure (negative: not yet treated).

    Returns
    -------
    numpy.ndarray
        ``1 - 0.55^(k+1)``, or ``0.5^k`` for front-loaded outcomes.
    """
    kk = np.maximum(k, 0).astype(float)
    if outcome in FRONT_LOADED:
        prof = 0.5**kk
    else:
        prof = 1.0 - 0.55 ** (kk + 1.0)
    return np.where(k >= 0, prof, 0.0)


@dataclass(frozen=True)
class TreatmentDesign:
    """The treatment design every outcome shares (arrays by village; ``k`` is villages x years).

    Attributes
    ----------
    years : numpy.ndarray
        The panel's years.
    cohort : numpy.ndarray
        Cohort of each village (0: never treated in the window).
    cohorts : numpy.ndarray
        The distinct cohorts.
    c_index : numpy.ndarray
        Position of each village's cohort in ``cohorts`` (-1: never treated).
    n_g : numpy.ndarray
        Villages per cohort.
    cadre : numpy.ndarray
        Cadre type index of each village (-1: never treated).
    scale : numpy.ndarray
        Effect scale of each village (cohort multiplier times its ``omega``; 0 if untreated).
    k : numpy.ndarray
        Years of exposure, ``year - cohort + anticipation`` (-1: never treated).
    township : numpy.ndarray
        Township index of each village.
    heavy : numpy.ndarray
        Whether each township is heavily treated.
    spillover : float
        Spillover share.
    partial : numpy.ndarray or None
        Villages x years: the share of the arrival year in post, in the arrival year
        before the cohort year, under partial exposure
        (:class:`~analysis.data.synthetic.scenarios.Scenario`); None otherwise.
    """

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
    partial: np.ndarray | None = None


def _cells(keys: np.ndarray, size: int, *weights: np.ndarray | None) -> list[np.ndarray]:
    """Sum every array of ``weights`` by cell ``keys`` (a None weight counts the rows)."""
    return [np.bincount(keys, weights=w, minlength=size) for w in weights]


def simulate_outcome(outcome: str, base: Untreated, d: TreatmentDesign, rng: np.random.Generator) -> OutcomeDraw:
    """Draw one outcome with its effects, and compute the truth of its cells.

    Parameters
    ----------
    outcome : str
        A canonical outcome.
    base : Untreated
        Its untreated expectation (:func:`baseline`).
    d : TreatmentDesign
        Who is treated when.
    rng : numpy.random.Generator
        The outcome's stream (after :func:`baseline` drew from it).

    Returns
    -------
    OutcomeDraw
        The realised values and the true effects of its cells.
    """
    kind = EFFECT_KIND[outcome]
    years, n_years = d.years, len(d.years)
    n_cohorts = len(d.cohorts)
    direct = d.k >= 0
    eff = np.array([EFFECTS[outcome][c] for c in CADRES])
    theta_d = np.where(
        direct, (eff[np.maximum(d.cadre, 0)] * d.scale)[:, None] * profile(outcome, d.k), 0.0
    )
    if d.partial is not None:  # arrival year: months in post / 12 of the first-year index
        arrival = d.partial > 0
        first_year = profile(outcome, np.zeros(1, dtype=np.int64))[0]
        partial = (eff[np.maximum(d.cadre, 0)] * d.scale)[:, None] * d.partial * first_year
        theta_d = np.where(arrival & ~direct, partial, theta_d)
        direct = direct | arrival
    theta, spill = theta_d, None
    if d.spillover != 0 and d.heavy.any():
        n_town = len(d.heavy)
        key = d.township[:, None] * n_years + np.arange(n_years)[None, :]
        s_sum, s_n = _cells(key[direct], n_town * n_years, theta_d[direct], None)
        s_mean = np.divide(s_sum, s_n, out=np.zeros_like(s_sum), where=s_n > 0)
        spill = ~direct & d.heavy[d.township][:, None] & (s_n[key] > 0)
        theta = np.where(spill, d.spillover * s_mean[key], theta_d)
    e0 = np.broadcast_to(expected(kind, base, 0.0), theta.shape)
    e_obs = expected(kind, base, theta)
    y = draw(kind, base, theta, rng)
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
    cd, c0 = _cells(ccell, len(CADRES) * size, diff_d[sel].ravel(), e0[sel].ravel())
    cn = np.repeat(np.bincount(group, minlength=len(CADRES) * n_cohorts), n_years)
    keep = cn > 0
    by_cadre = pd.DataFrame(
        {
            "outcome": outcome,
            "cadre_type": np.repeat(np.array(CADRES), size)[keep],
            "cohort": np.tile(g_rep, len(CADRES))[keep],
            "year": np.tile(years, len(CADRES) * n_cohorts)[keep],
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
    return OutcomeDraw(y, parts, by_cadre)
