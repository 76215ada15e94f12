"""The result type shared by every estimator, and its fixed tidy schema.

Every estimator returns a :class:`DiDResult`. Its :meth:`DiDResult.tidy` has the
columns in :data:`TIDY_COLUMNS`, always in that order, so tables, figures,
``results.json`` and the brief are written once for all estimators.

Besides the tidy rows, a result carries what inference and the stages need from it as
typed fields (covariance ``vcov``, influence functions ``influence`` with their
``unit_ids`` and ``clusters``, the ``cells`` behind the estimates, the tests it ran,
...; see :class:`DiDResult`), and estimator-specific payloads as typed containers
(:class:`CSDetails`, :class:`ImputationDetails`, :class:`PoissonDetails`,
:class:`TWFEEventStudyDetails`). A misspelt field is an error, not a missing key.

Columns of the tidy frame
-------------------------
outcome : str
    Outcome column the estimate is for.
estimator : str
    ``twfe``, ``cs`` (Callaway-Sant'Anna), ``sa`` (Sun-Abraham), ``bjs`` (imputation),
    ``ppml``, ...
control_group : str
    ``never`` or ``notyet`` (``all`` for TWFE, which uses every untreated cell).
aggregation : str
    What the row is: ``att_gt`` (one cohort-year cell), ``simple`` (overall ATT),
    ``event`` (event time), ``group`` (cohort), ``calendar`` (year), ``coef``
    (a regression coefficient).
term : str
    Human-readable label of the row (``"ATT"``, ``"e=2"``, ``"g=2023,t=2024"``).
cohort, year, event_time : Int64
    Cohort g, calendar year t and event time e = t - g where they apply (else missing).
estimate, std_error, conf_low, conf_high, p_value : float
    Point estimate, standard error, the confidence interval (pointwise unless
    ``band`` says ``simultaneous``) and the two-sided p-value against zero. The
    p-value does not account for multiple testing.
band : str
    ``pointwise`` or ``simultaneous``.
n_obs, n_units, n_clusters : Int64
    Observations, cross-sectional units and clusters used.
options : str
    JSON of the options the estimate was made with (covariates, method, base
    period, anticipation, clustering, ...).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:  # types of fields filled by the inference layer; no import at run time
    from analysis.inference.multiplier import BootstrapResult
    from analysis.inference.wild import WildBootstrapResult

TIDY_COLUMNS: tuple[str, ...] = (
    "outcome",
    "estimator",
    "control_group",
    "aggregation",
    "term",
    "cohort",
    "year",
    "event_time",
    "estimate",
    "std_error",
    "conf_low",
    "conf_high",
    "p_value",
    "band",
    "n_obs",
    "n_units",
    "n_clusters",
    "options",
)
_INT_COLUMNS = ("cohort", "year", "event_time", "n_obs", "n_units", "n_clusters")
_FLOAT_COLUMNS = ("estimate", "std_error", "conf_low", "conf_high", "p_value")


def normal_ci(estimate, std_error, alpha: float = 0.05, crit: float | None = None):
    """Return (conf_low, conf_high, p_value) for normal-based inference.

    The estimators follow the study's small-sample convention instead (t(G-1) critical
    values, :func:`analysis.inference.small_sample.intervals`); this is its
    ``"asymptotic"`` form, for callers without a number of clusters.

    Parameters
    ----------
    estimate, std_error : array_like
        Point estimates and standard errors.
    alpha : float, default 0.05
        One minus the confidence level.
    crit : float, optional
        Critical value to use instead of the normal quantile (e.g. a sup-t value
        for a simultaneous band).

    Returns
    -------
    tuple of numpy.ndarray
        Lower bound, upper bound and two-sided p-value.
    """
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_error, dtype=float)
    c = stats.norm.ppf(1 - alpha / 2) if crit is None else crit
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.norm.sf(np.abs(est / se))
    return est - c * se, est + c * se, p


def format_p(p: float) -> str:
    """Write a p-value for people: four decimals, or scientific notation below 0.0001.

    Parameters
    ----------
    p : float
        The p-value (NaN: not available).

    Returns
    -------
    str
        E.g. ``"0.0312"``, ``"1.4e-14"``, ``"n/a"``.

    Examples
    --------
    >>> format_p(0.03125), format_p(1.355e-14), format_p(float("nan"))
    ('0.0312', '1.4e-14', 'n/a')
    """
    if p is None or not np.isfinite(p):
        return "n/a"
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def make_tidy(rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Build a frame in the fixed tidy schema from rows, filling absent columns.

    Parameters
    ----------
    rows : list of dict or pandas.DataFrame
        Rows with any subset of :data:`TIDY_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        Columns exactly :data:`TIDY_COLUMNS`, integer columns as nullable ``Int64``.

    Raises
    ------
    ValueError
        If a row has a column that is not in the schema.
    """
    df = pd.DataFrame(rows).copy()
    extra = set(df.columns) - set(TIDY_COLUMNS)
    if extra:
        raise ValueError(f"columns not in the tidy schema: {sorted(extra)}")
    for col in TIDY_COLUMNS:
        if col not in df.columns:
            df[col] = pd.NA
    for col in _INT_COLUMNS:
        df[col] = pd.array(pd.to_numeric(df[col], errors="coerce"), dtype="Int64")
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("outcome", "estimator", "control_group", "aggregation", "term", "band", "options"):
        df[col] = df[col].astype("object")
    return df[list(TIDY_COLUMNS)].reset_index(drop=True)


@dataclass(frozen=True)
class SmallSampleCorrection:
    """The small-sample factor of a cluster-robust (CRV1) covariance, as applied.

    ``factor = G / (G - 1) * (N - 1) / (N - K)`` (see :mod:`analysis.estimators.twfe`).

    Attributes
    ----------
    rule : str
        How the factor was computed.
    factor : float
        The factor the covariance was multiplied by.
    K : int
        Parameters counted: regressors plus the fixed-effect levels not nested in the
        clusters.
    N : int
        Observations used.
    G : int
        Clusters.
    unit_fe_nested_in_clusters : bool
        Whether every unit lies in one cluster (then its fixed effects count once).
    """

    rule: str
    factor: float
    K: int
    N: int
    G: int
    unit_fe_nested_in_clusters: bool

    def as_dict(self) -> dict[str, Any]:
        """Return the record as a dict (the form stored in an estimate's ``options["ssc"]``).

        Returns
        -------
        dict
            Keys ``rule, factor, K, N, G, unit_fe_nested_in_clusters``, in that order.
        """
        return {"rule": self.rule, "factor": self.factor, "K": self.K, "N": self.N, "G": self.G,
                "unit_fe_nested_in_clusters": self.unit_fe_nested_in_clusters}


@dataclass(frozen=True)
class EqualityTest:
    """Wald test that several estimates are equal (chi-square).

    Attributes
    ----------
    statistic : float
        ``W = (R theta)' (R V R')^{-1} (R theta)`` with ``R`` the contrasts with the first
        estimate; NaN with fewer than two estimates or a singular contrast covariance.
    df : int
        Degrees of freedom (number of estimates less one).
    p_value : float
        ``P(chi2_df > W)``.
    levels : list
        What was compared, in order: subgroup levels (``str``) or cohorts (``int``).
    """

    statistic: float
    df: int
    p_value: float
    levels: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class PretrendTest:
    """Joint test that pre-treatment regression coefficients are zero.

    Attributes
    ----------
    statistic : float
        The test's statistic: ``F`` for ``htz`` and ``hotelling``, ``W = b' V^{-1} b`` for
        ``wald_chi2`` (NaN if no coefficient).
    df : int
        Number of coefficients tested.
    p_value : float
        P-value of the test. Not adjusted for multiple testing.
    terms : list of str
        Names of the tested coefficients.
    coefficients : dict
        Their estimates, by name.
    test : str
        ``"htz"``, ``"hotelling"`` or ``"wald_chi2"`` (see
        :func:`analysis.inference.small_sample.joint_test`).
    df_denominator : float
        Denominator degrees of freedom of the F tests (``inf`` for ``wald_chi2``).
    wald : float
        ``W = b' V^{-1} b`` with the clustered covariance.
    n_clusters : int
        Clusters of the covariance.
    effective_clusters : float
        The HTZ estimate of the covariance's degrees of freedom (a diagnostic, for every test).
    """

    statistic: float
    df: int
    p_value: float
    terms: list[str] = field(default_factory=list)
    coefficients: dict[str, float] = field(default_factory=dict)
    test: str = "wald_chi2"
    df_denominator: float = float("inf")
    wald: float = float("nan")
    n_clusters: int = 0
    effective_clusters: float = float("nan")

    def as_dict(self) -> dict[str, Any]:
        """Return the test as a plain dict.

        Returns
        -------
        dict
            Keys ``statistic, df, p_value, terms, coefficients, test, df_denominator, wald,
            n_clusters, effective_clusters``.
        """
        return {"statistic": self.statistic, "df": self.df, "p_value": self.p_value, "terms": list(self.terms),
                "coefficients": dict(self.coefficients), "test": self.test,
                "df_denominator": self.df_denominator, "wald": self.wald, "n_clusters": self.n_clusters,
                "effective_clusters": self.effective_clusters}


@dataclass(frozen=True)
class SpilloverDesign:
    """Who is compared with whom in the spillover DiD of the robustness stage.

    Attributes
    ----------
    threshold : float
        Share of a township's villages treated from which it counts as highly treated.
    exposed_villages, exposed_townships : int
        Never-treated villages (and their townships) in highly treated townships.
    comparison_villages, comparison_townships : int
        Never-treated villages (and their townships) in the other townships.
    """

    threshold: float
    exposed_villages: int
    exposed_townships: int
    comparison_villages: int
    comparison_townships: int

    def as_dict(self) -> dict[str, Any]:
        """Return the design as a dict, in field order.

        Returns
        -------
        dict
            ``threshold, exposed_villages, exposed_townships, comparison_villages,
            comparison_townships``.
        """
        return {"threshold": self.threshold, "exposed_villages": self.exposed_villages,
                "exposed_townships": self.exposed_townships, "comparison_villages": self.comparison_villages,
                "comparison_townships": self.comparison_townships}


@dataclass(frozen=True)
class CSDetails:
    """Facts about the units of a Callaway-Sant'Anna estimate that its aggregations need.

    Attributes
    ----------
    cohort_of_unit : numpy.ndarray
        Cohort of every unit, in the order of ``DiDResult.unit_ids`` (0 = never treated).
    n_rows : int
        Observations (unit-periods) used.
    periods : numpy.ndarray
        The periods, sorted.
    glist : numpy.ndarray
        The treated cohorts for which ATT(g,t) are estimated.
    """

    cohort_of_unit: np.ndarray
    n_rows: int
    periods: np.ndarray
    glist: np.ndarray


@dataclass(frozen=True)
class ImputationDetails:
    """The imputed effects and estimator weights of the Borusyak-Jaravel-Spiess estimator.

    Attributes
    ----------
    tau : pandas.DataFrame
        The imputed effect of every treated observation, with its unit, period, cohort
        and event time, on the caller's row index.
    weights : pandas.DataFrame
        The weights ``v`` of every reported estimate (columns, by term) over the
        estimation sample (rows, caller's index): each estimate is ``sum v * y``.
    """

    tau: pd.DataFrame
    weights: pd.DataFrame


@dataclass(frozen=True)
class PoissonDetails:
    """Fitted means of the Poisson extended TWFE model, by row of its estimation sample.

    Attributes
    ----------
    mu : numpy.ndarray
        Fitted means with the treatment terms, ``E[Y(1)]`` on treated rows.
    mu0 : numpy.ndarray
        Fitted means without them, ``E[Y(0)]``.
    frame : pandas.DataFrame
        The estimation sample (``y``, ``unit``, ``time``, ``cohort``, regressors).
    """

    mu: np.ndarray
    mu0: np.ndarray
    frame: pd.DataFrame


@dataclass(frozen=True)
class TWFEEventStudyDetails:
    """What the TWFE event study could not estimate.

    Attributes
    ----------
    dropped : list of int
        Event times whose dummy pyfixest dropped as collinear with the fixed effects.
    """

    dropped: list[int] = field(default_factory=list)


@dataclass
class DiDResult:
    """Result of a difference-in-differences estimator.

    Every estimator fills the first four fields; the others, keyword-only, are filled by
    the estimators that have them (``None`` otherwise) and are what inference and the
    stages read besides the tidy rows. They are not part of the tidy schema.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows in the tidy schema (see :data:`TIDY_COLUMNS`).
    estimator : str
        Short estimator name.
    outcome : str
        Outcome column.
    options : dict
        Options used (also serialised into each row's ``options``).
    vcov : pandas.DataFrame or numpy.ndarray, optional
        Covariance of the estimates. Callaway-Sant'Anna ``aggregate``: an array aligned
        with the table rows. TWFE event study: a frame indexed by event time (reference
        period excluded). Subgroup and cohort effects (:mod:`~analysis.estimators.heterogeneity`,
        the heterogeneity stage): a frame indexed by term. TWFE, Poisson: a frame over the
        coefficient names (log scale for Poisson). Sun-Abraham: a frame over the
        (cohort, relative period) coefficients.
    event_vcov : pandas.DataFrame, optional
        Sun-Abraham: covariance of the event-time aggregates, indexed by event time.
    coefficients : pandas.Series, optional
        TWFE and Poisson: every regression coefficient by name.
    cells : pandas.DataFrame, optional
        One row per cohort-period cell behind the estimates: Callaway-Sant'Anna
        ``att_gt`` (cohort, year, base year, estimate, analytic SE), Sun-Abraham (the
        ``b_{g,e}`` with counts and shares), Poisson (log coefficient, fitted means,
        level and percentage effects), ``by_group`` (the subgroup ATT(g,t)).
    influence : numpy.ndarray, optional
        Callaway-Sant'Anna family: per-unit influence functions, ``units x rows`` (rows
        of the table, or ATT(g,t) cells for ``att_gt``).
    unit_ids : numpy.ndarray, optional
        The units of ``influence``, in its row order.
    clusters : numpy.ndarray, optional
        Cluster code (``0 .. G-1``) of every unit of ``influence``; ``None`` when units
        are the clusters.
    n_clusters : int, optional
        Number of clusters (units when not clustering).
    analytic_se : numpy.ndarray, optional
        ``att_gt``: analytic influence-function standard errors of the cells (also when
        bootstrap standard errors are reported).
    bootstrap : analysis.inference.multiplier.BootstrapResult, optional
        The multiplier bootstrap, when one was run.
    crit_value : float, optional
        Critical value of the intervals: the normal quantile, or the sup-t value of a
        simultaneous band.
    equality_test : EqualityTest, optional
        Subgroup or cohort effects: the test that they are all equal.
    pretrend_test : PretrendTest, optional
        Imputation with ``pretrends``, Poisson with ``event_study``: the joint pre-trend test.
    att_gt : DiDResult, optional
        Aggregations and cohort effects: the ATT(g,t) result they were computed from.
    parts : tuple of DiDResult
        :func:`analysis.estimate.estimate`: the results whose rows it combines.
    fit : object, optional
        Regression estimators: the pyfixest fit, for inspection (its numbers are read
        through :mod:`analysis.estimators.fixest`).
    ssc : SmallSampleCorrection, optional
        Regression estimators: the small-sample correction of the clustered covariance
        (also in ``options["ssc"]``).
    note : str
        A remark a stage attaches to the estimate (e.g. that it was made without
        covariates, and why); empty if none.
    design : SpilloverDesign, optional
        The spillover DiD: who is compared with whom.
    cell_weights : numpy.ndarray, optional
        Callaway-Sant'Anna ``aggregate``: the weight of every ATT(g,t) cell of ``att_gt``
        in every row (``rows x cells``; each row sums to one).
    wild : analysis.inference.wild.WildBootstrapResult, optional
        The wild cluster (score) bootstrap behind a row's interval and p-value, when one
        was used (the Callaway-Sant'Anna headline with few clusters).
    details : CSDetails, ImputationDetails, PoissonDetails, TWFEEventStudyDetails or WildBootstrapResult, optional
        What only one estimator has (see those classes).
    """

    table: pd.DataFrame
    estimator: str
    outcome: str
    options: dict[str, Any] = field(default_factory=dict)
    _: KW_ONLY
    vcov: pd.DataFrame | np.ndarray | None = None
    event_vcov: pd.DataFrame | None = None
    coefficients: pd.Series | None = None
    cells: pd.DataFrame | None = None
    influence: np.ndarray | None = None
    unit_ids: np.ndarray | None = None
    clusters: np.ndarray | None = None
    n_clusters: int | None = None
    analytic_se: np.ndarray | None = None
    bootstrap: BootstrapResult | None = None
    crit_value: float | None = None
    equality_test: EqualityTest | None = None
    pretrend_test: PretrendTest | None = None
    att_gt: DiDResult | None = None
    parts: tuple[DiDResult, ...] = ()
    fit: object | None = None
    ssc: SmallSampleCorrection | None = None
    note: str = ""
    design: SpilloverDesign | None = None
    cell_weights: np.ndarray | None = None
    wild: WildBootstrapResult | None = None
    details: CSDetails | ImputationDetails | PoissonDetails | TWFEEventStudyDetails | WildBootstrapResult | None = None

    def light(self) -> DiDResult:
        """Return a copy without the large objects kept for inspection, for holding many results at once.

        The pyfixest ``fit`` (with its copy of the data and design matrices), the estimator's
        ``details`` (fitted means and design by row), the ``att_gt`` result an aggregate was
        computed from (its influence functions for every cell) and the ``parts`` are dropped;
        the rows, covariances, coefficients, cells and this result's own influence functions
        are kept (shared, not copied). At national size a stage that keeps one regression fit
        per outcome would otherwise hold several GB of design matrices it never reads again.

        Returns
        -------
        DiDResult
            The same estimates; ``fit``, ``details`` and ``att_gt`` are None and ``parts`` is empty.

        Examples
        --------
        >>> import pandas as pd
        >>> r = DiDResult(pd.DataFrame(), "twfe", "y", fit=object())
        >>> r.light().fit is None and r.fit is not None
        True
        """
        return replace(self, fit=None, details=None, att_gt=None, parts=())

    def tidy(self, aggregation: str | None = None) -> pd.DataFrame:
        """Return the rows in the fixed tidy schema.

        Parameters
        ----------
        aggregation : str, optional
            Keep only rows of this aggregation (``simple``, ``event``, ...).

        Returns
        -------
        pandas.DataFrame
            A copy; changing it does not change the result.
        """
        t = make_tidy(self.table)
        if "options" in t and t["options"].isna().all():
            t["options"] = json.dumps(self.options, sort_keys=True, default=str)
        if aggregation is not None:
            t = t[t["aggregation"] == aggregation].reset_index(drop=True)
        return t

    def summary(self, context: Sequence[str] = ()) -> str:
        """Return a plain-text summary table of the estimates, with their p-values.

        Rows that are tests (aggregation ending in ``_test``, e.g. the ``equality_test`` of
        effects by subgroup) are not estimates: they follow the table in their own section,
        with their statistic, degrees of freedom and p-value.

        Parameters
        ----------
        context : sequence of str, optional
            Lines printed under the title (e.g. the analysis window).

        Returns
        -------
        str
            The title with the options, the context lines, one line per estimate (term,
            estimate, standard error, interval, p-value), then one line per test.
        """
        t = self.tidy()
        is_test = t["aggregation"].astype(str).str.endswith("_test")
        lines = [f"{self.estimator} estimates for {self.outcome}  (options: {json.dumps(self.options, default=str)})"]
        lines += list(context)
        rows = t[~is_test]
        wa = max([11, *(len(str(a)) for a in rows["aggregation"])])
        wt = max([18, *(len(str(a)) for a in rows["term"])])
        lines.append(f"{'aggregation':<{wa}} {'term':<{wt}} {'estimate':>12} {'std.err':>10} {'95% interval':>26} "
                     f"{'p-value':>9}")
        for r in rows.itertuples():
            lines.append(
                f"{r.aggregation!s:<{wa}} {r.term!s:<{wt}} {r.estimate:>12.4f} {r.std_error:>10.4f} "
                f"[{r.conf_low:>11.4f}, {r.conf_high:>11.4f}] {format_p(r.p_value):>9}"
            )
        tests = t[is_test]
        if len(tests):
            lines.append("tests (not estimates: a statistic and its p-value)")
            for r in tests.itertuples():
                df = self.equality_test.df if r.aggregation == "equality_test" and self.equality_test else None
                lines.append(f"  {r.term}: statistic {r.estimate:.4f}" + (f", df {df}" if df is not None else "")
                             + f", p-value {format_p(r.p_value)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()
