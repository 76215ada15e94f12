"""The study's design in one place: the headline specification and every check of its choices.

The headline estimate
---------------------
The study's headline is the Callaway & Sant'Anna (2021) estimator of the group-time effects
ATT(g,t), **doubly robust** (``method="dr"``: propensity score and outcome regression, Sant'Anna &
Zhao 2020), with **not-yet-treated** villages as comparisons, the baseline covariates
:data:`DEFAULT_COVARIATES` (conditional parallel trends), standard errors **clustered by township**,
aggregated to the **simple ATT**: the average effect over all treated village-years, weighted by
cohort size, with **the arrival year left out** (:data:`ANTICIPATION`, below). :data:`HEADLINE` is that
specification; :class:`Spec` is any variant of it (another estimator, comparison group, covariate set,
clustering level or arrival-year rule), checked when it is made.

The arrival year
----------------
Secretaries arrive mid-year: the pilot district's in December 2022, the city-wide batch in July-September
2023. Under the six-month rule of :mod:`analysis.core.treatment` their villages are cohorts 2023 and 2024,
so the year a secretary arrives is coded as untreated although he is already in post for up to six months
of it. A secretary who already changes something in those months biases a DiD that uses that year as
the village's base year or as a not-yet-treated comparison year: in the stress scenario of partial
exposure (:mod:`analysis.data.synthetic.scenarios`, part of the first-year effect in the arrival year in
proportion to the months in post), today's rule put the income effect 16% below the truth (bias -1.0
standard errors, coverage 91%; 500 simulated cities, :mod:`analysis.grid.stress`). The headline therefore
leaves the year before the cohort year out of every comparison: Callaway-Sant'Anna with
``anticipation = 1`` (base period ``g - 2``, comparison villages not yet treated by ``t + 1``). The
estimand is unchanged (the simple ATT over the years from the cohort year on), the cohort rule is
unchanged, and an arrival-year effect, if any, shows as the event-time ``-1`` estimate instead of
biasing the base. The price, measured on the default city, is a wider interval (income: +28%) and no
bias; see the README ("The arrival year"). The regression estimators (TWFE, Sun-Abraham, imputation,
Poisson) have no such option and keep the six-month coding; the stress Monte Carlo reports their bias
under partial exposure.

Checks
------
Every function of the package that takes a clustering level, a comparison group, an estimator,
covariates, outcomes or a number of draws checks it with the functions here
(:func:`cluster_column`, :func:`check_control_group`, :func:`check_estimator`,
:func:`check_covariates`, :func:`check_outcomes`, :func:`check_draws`), so a wrong value fails
with the same message wherever it is given. Notebook parameters are checked before any work
starts by :func:`analysis.core.params.validate_params`, which takes its allowed values from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

import pandas as pd

from analysis.data import schema

UNIT, TIME, COHORT = "village_code", "year", "cohort"
"""Columns of the analysis panel: the unit (village), the period (year) and the first treated year
(``cohort``; 0 = never treated within the window, see :mod:`analysis.core.treatment`)."""



class EstimatorColumns(TypedDict):
    """The column arguments every estimator takes (``estimator(data, outcome, **columns)``)."""

    unit: str
    time: str
    cohort: str
    cluster: str
    """The clustering column (:func:`cluster_column`)."""


CLUSTER_COLUMNS: dict[str, str] = {"township": "township_code", "county": "county_code", "village": "village_code"}
"""Clustering level -> panel column."""
CLUSTERS: tuple[str, ...] = tuple(CLUSTER_COLUMNS)
CONTROL_GROUPS: tuple[str, ...] = ("never", "notyet")
"""Comparison villages: never treated within the window, or not yet treated in the year compared."""
RANDOMISATION_STRATA: tuple[str, ...] = ("county_propensity", "county")
"""Strata of randomisation inference: county x propensity bin (the targeting kept), or county alone."""
ESTIMATORS: tuple[str, ...] = ("cs", "twfe", "sa", "bjs", "ppml")
"""Callaway-Sant'Anna, two-way fixed effects, Sun-Abraham, Borusyak-Jaravel-Spiess imputation, Poisson."""
CS_METHODS: tuple[str, ...] = ("dr", "ipw", "reg")
"""Callaway-Sant'Anna estimation methods: doubly robust, inverse probability weighting, outcome regression."""

ANTICIPATION = 1
"""Years before the cohort year the headline leaves out of every comparison: the arrival year of
batches that arrive mid-year (module docstring, "The arrival year")."""

DEFAULT_COVARIATES: tuple[str, ...] = ("distance_km", "terrain", "distinctive_industry")
"""Baseline covariates for conditional parallel trends: fixed village characteristics
that shift trends (remoteness, terrain, a distinctive industry) and that the programme
cannot affect. Time-varying ones (party members, population) could respond to a first
secretary and are not used by default."""


def cluster_column(cluster: str) -> str:
    """Return the panel column of a clustering level.

    Parameters
    ----------
    cluster : {"township", "county", "village"}
        Clustering level.

    Returns
    -------
    str
        The column (``township_code``, ``county_code`` or ``village_code``).

    Raises
    ------
    ValueError
        For any other name.

    Examples
    --------
    >>> cluster_column("township")
    'township_code'
    """
    if cluster not in CLUSTER_COLUMNS:
        raise ValueError(f"cluster must be one of {', '.join(map(repr, CLUSTER_COLUMNS))}, got {cluster!r}")
    return CLUSTER_COLUMNS[cluster]


def check_control_group(control_group: str) -> str:
    """Check the name of a comparison group.

    Parameters
    ----------
    control_group : {"never", "notyet"}
        Comparison villages.

    Returns
    -------
    str
        The name.

    Raises
    ------
    ValueError
        For any other name.
    """
    if control_group not in CONTROL_GROUPS:
        raise ValueError(f"control group {control_group!r} is not known; choose 'never' or 'notyet'")
    return control_group


def check_estimator(estimator: str) -> str:
    """Check the name of an estimator.

    Parameters
    ----------
    estimator : {"cs", "twfe", "sa", "bjs", "ppml"}
        Estimator.

    Returns
    -------
    str
        The name.

    Raises
    ------
    ValueError
        For any other name.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator {estimator!r} is not known; choose from {', '.join(ESTIMATORS)}")
    return estimator


def check_covariates(covariates: str | Sequence[str]) -> list[str]:
    """Check covariate names against the data dictionary.

    Parameters
    ----------
    covariates : str or sequence of str
        Canonical covariate names (one name may be given as a string); may be empty.

    Returns
    -------
    list of str
        The names, in the order given.

    Raises
    ------
    ValueError
        For a name that is not a canonical covariate.
    """
    names = [covariates] if isinstance(covariates, str) else list(covariates)
    bad = [c for c in names if c not in schema.COVARIATES]
    if bad:
        raise ValueError(
            f"unknown covariate(s) {', '.join(map(repr, bad))}; choose from {', '.join(schema.COVARIATES)}"
        )
    return names


def check_outcomes(panel: pd.DataFrame, outcomes: str | Sequence[str]) -> list[str]:
    """Check outcome names against the data dictionary and the panel's columns.

    Parameters
    ----------
    panel : pandas.DataFrame
        The analysis panel.
    outcomes : str or sequence of str
        Canonical outcome names (one name may be given as a string).

    Returns
    -------
    list of str
        The names, in the order given.

    Raises
    ------
    ValueError
        If no outcome is given, a name is not a canonical outcome, or an outcome is not a
        column of the panel.
    """
    names = [outcomes] if isinstance(outcomes, str) else list(outcomes)
    if not names:
        raise ValueError("outcomes is empty: name at least one outcome")
    bad = [o for o in names if o not in schema.OUTCOMES]
    if bad:
        raise ValueError(f"unknown outcome(s) {', '.join(map(repr, bad))} (not in the panel); "
                         f"choose from {', '.join(schema.OUTCOMES)}")
    absent = [o for o in names if o not in panel.columns]
    if absent:
        raise ValueError(f"outcome(s) {', '.join(map(repr, absent))} are not in the panel")
    return names


def check_draws(draws: int, minimum: int = 0, purpose: str = "") -> int:
    """Check a number of bootstrap or randomisation draws.

    Parameters
    ----------
    draws : int
        Number of draws.
    minimum : int, default 0
        Smallest allowed number.
    purpose : str, optional
        Why the minimum, for the message (e.g. ``"for the Romano-Wolf adjustment"``).

    Returns
    -------
    int
        The number.

    Raises
    ------
    ValueError
        For a boolean, or a number below ``minimum``.
    """
    if isinstance(draws, bool) or int(draws) < minimum:
        why = f" {purpose}" if purpose else ""
        raise ValueError(f"bootstrap_draws must be at least {minimum}{why}, got {draws!r}")
    return int(draws)


@dataclass(frozen=True)
class Spec:
    """One specification of the effect estimate: estimator, comparison group, covariates, clustering.

    Every field is checked when the specification is made (and again by :meth:`replace`).

    Attributes
    ----------
    estimator : {"cs", "twfe", "sa", "bjs", "ppml"}, default "cs"
        Estimator. Callaway-Sant'Anna is doubly robust (:attr:`METHOD`).
    control_group : {"notyet", "never"}, default "notyet"
        Comparison villages of Callaway-Sant'Anna (Sun-Abraham always uses the never-treated,
        TWFE and imputation every untreated observation).
    covariates : tuple of str, default :data:`DEFAULT_COVARIATES`
        Canonical baseline covariates (possibly none).
    cluster : {"township", "county", "village"}, default "township"
        Clustering level of the standard errors.
    anticipation : int, default :data:`ANTICIPATION` (1)
        Years before the cohort year left out of every comparison: the arrival year
        (Callaway-Sant'Anna's ``anticipation``; the other estimators have no such option and
        ignore it). 0 is the six-month coding alone.
    method : {"dr", "ipw", "reg"}, default :attr:`METHOD` ("dr")
        Callaway-Sant'Anna estimation method (the other estimators ignore it): the headline is
        doubly robust; the specification grid (:mod:`analysis.grid.specification`) varies it.

    Examples
    --------
    >>> HEADLINE.aggregation, HEADLINE.cluster_column
    ('simple', 'township_code')
    >>> HEADLINE.replace(estimator="twfe", covariates=()).aggregation
    'coef'
    """

    estimator: str = "cs"
    control_group: str = "notyet"
    covariates: tuple[str, ...] = DEFAULT_COVARIATES
    cluster: str = "township"
    anticipation: int = ANTICIPATION
    method: str = "dr"

    METHOD: ClassVar[str] = "dr"
    """The headline's Callaway-Sant'Anna estimation method: doubly robust."""

    def __post_init__(self) -> None:
        check_estimator(self.estimator)
        check_control_group(self.control_group)
        object.__setattr__(self, "covariates", tuple(check_covariates(self.covariates)))
        cluster_column(self.cluster)
        a = self.anticipation
        if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a <= 3:
            raise ValueError(f"anticipation must be 0-3 years before the cohort year, got {a!r}")
        if self.method not in CS_METHODS:
            raise ValueError(f"method {self.method!r} is not known; choose from {', '.join(CS_METHODS)}")

    @property
    def columns(self) -> EstimatorColumns:
        """The column arguments of the estimators under this specification (``estimator(data, outcome, **columns)``).

        Examples
        --------
        >>> HEADLINE.columns["cluster"]
        'township_code'
        """
        return {"unit": UNIT, "time": TIME, "cohort": COHORT, "cluster": self.cluster_column}

    @property
    def cluster_column(self) -> str:
        """The panel column of the clustering level."""
        return CLUSTER_COLUMNS[self.cluster]

    @property
    def aggregation(self) -> str:
        """The tidy aggregation holding the overall effect: ``"coef"`` for the static TWFE, else ``"simple"``."""
        return "coef" if self.estimator == "twfe" else "simple"

    def replace(self, **changes: Any) -> Spec:
        """Return a copy with some fields changed (and checked).

        Parameters
        ----------
        **changes
            New values of fields.

        Returns
        -------
        Spec
            The new specification.
        """
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Spec:
        """Build the specification from notebook parameters (absent ones keep the headline's value).

        Parameters
        ----------
        params : mapping
            Validated notebook parameters (:func:`analysis.core.params.validate_params`).

        Returns
        -------
        Spec
            The specification.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {k: (tuple(v) if k == "covariates" else v) for k, v in params.items() if k in fields}
        return cls(**kwargs)

    def cs_arguments(self, covariate_columns: Sequence[str], cohort: str = COHORT) -> dict[str, Any]:
        """Keyword arguments of :func:`analysis.estimators.callaway_santanna.att_gt` for this specification.

        Parameters
        ----------
        covariate_columns : sequence of str
            Numeric baseline covariate columns built from :attr:`covariates` by
            :func:`analysis.core.panel.covariate_columns` (empty: unconditional parallel trends).
        cohort : str, default "cohort"
            Column of the first treated year.

        Returns
        -------
        dict
            ``unit``, ``time``, ``cohort``, ``covariates``, ``control_group``, ``method``,
            ``cluster`` and ``anticipation``.
        """
        return {"unit": UNIT, "time": TIME, "cohort": cohort, "covariates": list(covariate_columns) or None,
                "control_group": self.control_group, "method": self.method, "cluster": self.cluster_column,
                "anticipation": self.anticipation}


HEADLINE = Spec()
"""The study's headline: Callaway-Sant'Anna, doubly robust, not-yet-treated comparisons, the
baseline covariates, township clusters, simple ATT, the arrival year left out."""
