"""Stress scenarios of the synthetic city: the design's realistic failures, each off by default.

The default city (:class:`Scenario` with every field at its default) satisfies the
headline estimator's assumptions: village-level noise only, conditional parallel trends
with trends linear in the covariates, no effect before the cohort year. A
:class:`Scenario` switches on departures from that design, one parameter each, so that
every test, interval and robustness check can be measured where it should hold *and*
where it should not (:mod:`analysis.grid.stress`). With every field at its default the
simulator takes exactly the code path and the random draws it takes without a scenario:
the default city is byte-identical.

Parameters (all on the scale of each outcome's mean)
-----------------------------------------------------
The untreated expectation of every outcome is multiplied by ``exp(f_it)`` (log-normal
and count outcomes: the mean; hurdles: the amount when non-zero) or has ``f_it`` added to
its logit (``team_reorganised``), where ``f_it`` is the sum of

* **clustered shocks**: ``township_shock_sd`` and ``county_shock_sd``, the standard
  deviations of independent normal township-year and county-year shocks ``s`` (one draw per
  outcome, township or county, and year), entering as ``s - sd^2 / 2`` (mean-one on the
  multiplicative scale, so the city's levels stay calibrated). Treated and untreated
  villages of a township share its shocks: errors are correlated within townships
  (counties), as real village statistics are;
* **non-linear covariate trends** (``nonlinear_trend``): ``c q(X_i) (t - 2023)`` with
  ``q(X) = z_d^2 - 1 + 2 industry x (hill + mountain)``, ``z_d`` the standardised log
  distance: the untreated trend depends on the observed covariates, so conditional
  parallel trends still hold, but not linearly: the doubly robust estimator's linear
  outcome regression (and logit propensity score) are misspecified;
* **trends that differ with targeting** (``trend_gap``): ``gap z_i (t - 2023)`` with
  ``z_i`` the standardised targeting index of the village (which mixes observed
  covariates with the latent public-order problem and income level): treated villages,
  chosen on that index, have untreated trends that differ from the comparisons' by
  about ``gap`` log points a year per standard deviation of the index, *also* given the
  covariates. Parallel trends fail by a known, nearly linear amount (the HonestDiD check
  of :mod:`analysis.grid.stress` measures the violation of each city exactly).

Timing of effects:

* **partial exposure** (``partial_exposure``): a secretary who arrives in the year before
  the village's cohort year (the pilot in December 2022, the city batch in July-September
  2023: fewer than six months in post, so cohort = arrival year + 1 under the six-month
  rule of :mod:`analysis.core.treatment`) already has part of the first-year effect in the
  arrival year, in proportion to the months in post that year: index
  ``months / 12 x (first-year index)``. The truth records these cells (event time -1);
* **anticipation** (``anticipation``): effects start ``anticipation`` years before the
  cohort year (the exposure profile is shifted);
* **effect size** (``effect_scale``): every effect index is multiplied by it; 0 gives a
  city with no effect at all (the sharp null of randomisation inference, equal effects
  for the heterogeneity test, no spillover);

Spillover (``spillover``, ``spillover_share``): untreated villages of townships where at
least ``spillover_share`` of the villages are treated get ``spillover`` times the
township's mean direct effect index (:mod:`~analysis.data.synthetic.outcomes`). The
robustness check (:data:`analysis.stages.robustness.HIGH_SHARE`, 0.5) uses the same rule
only when ``spillover_share`` is 0.5, the default.

Analysis (``cluster``): the clustering level under which the scenario is analysed by the
Monte Carlo. "Few clusters" is a property of the design the analyst faces (the city's
nine counties); the simulator only records it.

Named presets are in :data:`SCENARIOS` (``study simulate --scenario NAME``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from analysis.core.spec import cluster_column
from analysis.data.synthetic.calibration import HEAVY_TOWNSHIP_SHARE, REPORT_YEAR
from analysis.data.synthetic.outcomes import Untreated


@dataclass(frozen=True)
class Scenario:
    """Departures of the synthetic city from the estimators' assumptions (module docstring).

    Every field's default leaves the calibrated city exactly as it is.

    Attributes
    ----------
    name : str, default "default"
        Label (the presets of :data:`SCENARIOS` set their key).
    township_shock_sd, county_shock_sd : float, default 0
        Standard deviation of township-year and county-year shocks (log scale of the mean,
        logit for ``team_reorganised``), in [0, 1].
    partial_exposure : bool, default False
        Part of the first-year effect in the arrival year, in proportion to months in post.
    anticipation : int, default 0
        Years before the cohort year in which effects start (0-3).
    nonlinear_trend : float, default 0
        Strength ``c`` of the non-linear covariate trend (log points a year per unit of
        ``q(X)``), in [-0.2, 0.2].
    trend_gap : float, default 0
        Differential untreated trend per standard deviation of the targeting index (log
        points a year), in [-0.2, 0.2].
    effect_scale : float, default 1
        Multiplier of every effect index (0: no effect), in [0, 3].
    spillover : float, default 0
        Effect on untreated villages of heavily treated townships, as a share of the
        township's mean direct effect index, in [-1, 1].
    spillover_share : float, default :data:`~analysis.data.synthetic.calibration.HEAVY_TOWNSHIP_SHARE`
        Share of treated villages from which a township is heavily treated, in (0, 1].
    cluster : {"township", "county", "village"}, default "township"
        Clustering level of the analysis (recorded, not simulated).

    Examples
    --------
    >>> Scenario().is_default
    True
    >>> SCENARIOS["partial_exposure"].partial_exposure, SCENARIOS["few_clusters"].cluster
    (True, 'county')
    """

    name: str = "default"
    township_shock_sd: float = 0.0
    county_shock_sd: float = 0.0
    partial_exposure: bool = False
    anticipation: int = 0
    nonlinear_trend: float = 0.0
    trend_gap: float = 0.0
    effect_scale: float = 1.0
    spillover: float = 0.0
    spillover_share: float = HEAVY_TOWNSHIP_SHARE
    cluster: str = "township"

    def __post_init__(self) -> None:
        for name, lo, hi in (("township_shock_sd", 0.0, 1.0), ("county_shock_sd", 0.0, 1.0),
                             ("nonlinear_trend", -0.2, 0.2), ("trend_gap", -0.2, 0.2), ("effect_scale", 0.0, 3.0),
                             ("spillover", -1.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= float(value) <= hi:
                what = "a share of the direct effect " if name == "spillover" else ""
                raise ValueError(f"{name} must be {what}in [{lo:g}, {hi:g}], got {value!r}")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.partial_exposure, bool):
            raise ValueError(f"partial_exposure must be True or False, got {self.partial_exposure!r}")
        a = self.anticipation
        if isinstance(a, bool) or not isinstance(a, int | np.integer) or not 0 <= a <= 3:
            raise ValueError(f"anticipation must be 0-3 years, got {a}")
        object.__setattr__(self, "anticipation", int(a))
        s = self.spillover_share
        if isinstance(s, bool) or not isinstance(s, int | float) or not 0 < float(s) <= 1:
            raise ValueError(f"spillover_share must be a share of villages in (0, 1], got {s!r}")
        object.__setattr__(self, "spillover_share", float(s))
        cluster_column(self.cluster)

    @property
    def is_default(self) -> bool:
        """Whether the scenario leaves the calibrated city unchanged (its name aside)."""
        return dataclasses.replace(self, name="default") == Scenario()

    @property
    def shocks(self) -> bool:
        """Whether the scenario draws township- or county-year shocks."""
        return self.township_shock_sd > 0 or self.county_shock_sd > 0

    @property
    def shifts_untreated(self) -> bool:
        """Whether the untreated outcomes are shifted (shocks, non-linear or differential trends)."""
        return self.shocks or self.nonlinear_trend != 0 or self.trend_gap != 0

    def replace(self, **changes) -> Scenario:
        """Return a copy with some fields changed (and checked).

        Parameters
        ----------
        **changes
            New values of fields.

        Returns
        -------
        Scenario
            The new scenario.
        """
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """Every field, for ``params.json`` and the Monte Carlo records.

        Returns
        -------
        dict
            Field name -> value.
        """
        return dataclasses.asdict(self)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(),
        Scenario("no_effect", effect_scale=0.0),
        Scenario("clustered_shocks", township_shock_sd=0.06, county_shock_sd=0.03),
        Scenario("few_clusters", township_shock_sd=0.06, county_shock_sd=0.03, cluster="county"),
        Scenario("partial_exposure", partial_exposure=True),
        Scenario("anticipation", anticipation=1),
        Scenario("nonlinear_trends", nonlinear_trend=0.02),
        Scenario("trend_gap", trend_gap=0.01),
        Scenario("spillover_rule", spillover=0.3, spillover_share=0.35),
    )
}
"""Named stress scenarios (``study simulate --scenario NAME``; the stress Monte Carlo runs each):

* ``default``: the calibrated city (every assumption of the headline holds);
* ``no_effect``: no effect anywhere (the null of randomisation inference, of the heterogeneity
  equality test and of the spillover check);
* ``clustered_shocks``: township-year (sd 0.06) and county-year (sd 0.03) shocks, analysed
  with township clusters (which ignore the county shocks);
* ``few_clusters``: the same shocks, analysed with the nine counties as clusters;
* ``partial_exposure``: part of the effect in the arrival year (months in post / 12);
* ``anticipation``: effects start one year before the cohort year;
* ``nonlinear_trends``: untreated trends non-linear in the covariates (c = 0.02);
* ``trend_gap``: untreated trends differ with targeting by 0.01 log points a year per
  standard deviation of the targeting index;
* ``spillover_rule``: spillover of 0.3 times the township's direct effect on untreated
  villages of townships with at least 35% of villages treated, a rule the robustness
  check's 50% threshold does not match."""


def get_scenario(scenario: Scenario | str | None) -> Scenario:
    """Return a scenario given itself, a preset name, or None (the default city).

    Parameters
    ----------
    scenario : Scenario, str or None
        A scenario or a key of :data:`SCENARIOS`.

    Returns
    -------
    Scenario
        The scenario.

    Raises
    ------
    ValueError
        For an unknown name.

    Examples
    --------
    >>> get_scenario("no_effect").effect_scale
    0.0
    """
    if scenario is None:
        return SCENARIOS["default"]
    if isinstance(scenario, Scenario):
        return scenario
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    return SCENARIOS[scenario]


def nonlinear_index(distance: np.ndarray, industry: np.ndarray, hill: np.ndarray, mountain: np.ndarray) -> np.ndarray:
    """Return ``q(X)`` of the non-linear covariate trend (module docstring).

    Parameters
    ----------
    distance : numpy.ndarray
        Kilometres to the county seat.
    industry, hill, mountain : numpy.ndarray
        0/1 covariates.

    Returns
    -------
    numpy.ndarray
        ``z_d^2 - 1 + 2 industry (hill + mountain)``, ``z_d`` the standardised log distance.
    """
    ld = np.log(distance)
    z = (ld - ld.mean()) / ld.std()
    return z**2 - 1.0 + 2.0 * industry * (hill + mountain)


def untreated_shift(
    scenario: Scenario,
    years: np.ndarray,
    township: np.ndarray,
    county_of_township: np.ndarray,
    q: np.ndarray | None,
    targeting: np.ndarray,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Return ``f_it`` (villages x years) for one outcome: shocks plus non-linear and differential trends.

    Parameters
    ----------
    scenario : Scenario
        The scenario.
    years : numpy.ndarray
        The panel's years.
    township : numpy.ndarray
        Township index of each village.
    county_of_township : numpy.ndarray
        County index of each township.
    q : numpy.ndarray or None
        :func:`nonlinear_index` of each village (needed when the scenario has non-linear trends).
    targeting : numpy.ndarray
        Targeting index of each village (standardised here).
    rng : numpy.random.Generator or None
        The outcome's shock stream (needed when the scenario has shocks): township shocks
        are drawn first, then county shocks.

    Returns
    -------
    numpy.ndarray
        The shift of each village-year.

    Raises
    ------
    ValueError
        If the scenario needs ``rng`` or ``q`` and it is missing.
    """
    n_years = len(years)
    f = np.zeros((len(township), n_years))
    if scenario.shocks:
        if rng is None:
            raise ValueError("a scenario with shocks needs the outcome's shock stream (rng)")
        n_town, n_county = len(county_of_township), int(county_of_township.max()) + 1
        sd_t, sd_c = scenario.township_shock_sd, scenario.county_shock_sd
        s_town = sd_t * rng.standard_normal((n_town, n_years))
        s_county = sd_c * rng.standard_normal((n_county, n_years))
        shock = s_town + s_county[county_of_township]
        f += shock[township] - 0.5 * (sd_t**2 + sd_c**2)
    dt = (years - REPORT_YEAR).astype(float)[None, :]
    if scenario.nonlinear_trend != 0:
        if q is None:
            raise ValueError("a scenario with non-linear trends needs the covariate index q")
        f += scenario.nonlinear_trend * q[:, None] * dt
    if scenario.trend_gap != 0:
        z = (targeting - targeting.mean()) / targeting.std()
        f += scenario.trend_gap * z[:, None] * dt
    return f


def shift_untreated(kind: str, base: Untreated, f: np.ndarray) -> Untreated:
    """Apply the shift ``f`` (villages x years) to an outcome's untreated expectation.

    Parameters
    ----------
    kind : {"lognormal", "count", "hurdle", "binary"}
        How the outcome is drawn (:data:`~analysis.data.synthetic.calibration.EFFECT_KIND`).
    base : Untreated
        The untreated expectation (:func:`~analysis.data.synthetic.outcomes.baseline`).
    f : numpy.ndarray
        Shift on the log scale of the mean (the amount for hurdles) or the logit (binary).

    Returns
    -------
    Untreated
        A new expectation; ``base`` is not modified.

    Raises
    ------
    ValueError
        For a binary outcome without a probability.
    """
    if kind in ("lognormal", "count"):
        return dataclasses.replace(base, mean=base.mean * np.exp(f))
    if kind == "hurdle":
        return dataclasses.replace(base, amount=base.amount * np.exp(f))
    if base.p is None:
        raise ValueError(f"an outcome drawn as {kind!r} needs a probability to shift")
    logit = np.log(base.p) - np.log1p(-base.p) + f
    return dataclasses.replace(base, p=1.0 / (1.0 + np.exp(-logit)))
