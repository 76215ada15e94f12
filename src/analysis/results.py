"""The result type shared by every estimator, and its fixed tidy schema.

Every estimator returns a :class:`DiDResult`. Its :meth:`DiDResult.tidy` has the
columns in :data:`TIDY_COLUMNS`, always in that order, so tables, figures,
``results.json`` and the brief are written once for all estimators.

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

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


@dataclass
class DiDResult:
    """Result of a difference-in-differences estimator.

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
    extras : dict
        Estimator-specific objects (influence functions, weights, decomposition
        tables) that downstream inference may use. Not part of the tidy schema.
    """

    table: pd.DataFrame
    estimator: str
    outcome: str
    options: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

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

    def summary(self) -> str:
        """Return a plain-text summary table of the estimates.

        Returns
        -------
        str
            One line per row: term, estimate, standard error and interval.
        """
        t = self.tidy()
        lines = [f"{self.estimator} estimates for {self.outcome}  (options: {json.dumps(self.options, default=str)})"]
        lines.append(f"{'aggregation':<10} {'term':<18} {'estimate':>12} {'std.err':>10} {'95% interval':>26}")
        for r in t.itertuples():
            lines.append(
                f"{r.aggregation!s:<10} {r.term!s:<18} {r.estimate:>12.4f} {r.std_error:>10.4f} "
                f"[{r.conf_low:>11.4f}, {r.conf_high:>11.4f}]"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()
