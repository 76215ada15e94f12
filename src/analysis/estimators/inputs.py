"""Checks of the caller's frame shared by the estimators.

Every estimator takes a long data frame plus column names. What several of them check
in the same way lives here, once:

* :func:`as_list`: a covariate argument (``None``, one name or a sequence) as a list;
* :func:`cluster_codes`: the one check of a cluster column (no missing values; with unit
  codes, fixed within every unit) and its integer codes, used by every estimator that
  clusters;
* :class:`Panel` and :func:`prepare_panel`: the validated, renamed copy of a unit x period
  panel that the regression estimators (TWFE, Sun-Abraham, imputation, Poisson, Bacon)
  and the wild cluster bootstrap work on, with the options they all record
  (:meth:`Panel.base_options`).

The caller's frame is never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Panel", "as_list", "cluster_codes", "prepare_panel"]


def as_list(covariates: str | Sequence[str] | None) -> list[str]:
    """Return a covariate argument as a list of column names.

    Parameters
    ----------
    covariates : str, sequence of str or None
        One column name, several, or none.

    Returns
    -------
    list of str
        ``[]`` for ``None``, ``[covariates]`` for a single name, else the names in order.

    Examples
    --------
    >>> as_list(None), as_list("x"), as_list(("x", "z"))
    ([], ['x'], ['x', 'z'])
    """
    if covariates is None:
        return []
    if isinstance(covariates, str):
        return [covariates]
    return list(covariates)


def _shown(value: Any) -> Any:
    """Return a numpy scalar as the Python value it holds (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def cluster_codes(
    values: pd.Series | np.ndarray,
    cluster: str,
    unit_codes: np.ndarray | None = None,
    unit_ids: Sequence[Any] | np.ndarray | None = None,
) -> np.ndarray:
    """Check a cluster column and return its integer codes.

    The one check of a cluster column, used by every estimator that clusters its
    standard errors or its bootstrap. Codes number the clusters ``0 .. G-1`` in sorted
    order of their values, so per-cluster sums come out in the same order everywhere.

    Parameters
    ----------
    values : pandas.Series or numpy.ndarray
        The cluster column on the rows used.
    cluster : str
        Its name, for messages.
    unit_codes : numpy.ndarray, optional
        The unit (``0 .. n-1``) of every row. If given, each unit must stay in one
        cluster, and one code per unit is returned.
    unit_ids : sequence, optional
        The unit labels in code order, to name a unit that changes cluster.

    Returns
    -------
    numpy.ndarray
        int64 codes: one per row, or one per unit when ``unit_codes`` is given.

    Raises
    ------
    ValueError
        If the column has missing values, or (with ``unit_codes``) a unit appears in
        more than one cluster.

    Examples
    --------
    >>> cluster_codes(pd.Series(["b", "a", "b"]), "township").tolist()
    [1, 0, 1]
    >>> cluster_codes(pd.Series(["b", "a", "b"]), "township", unit_codes=np.array([0, 1, 0])).tolist()
    [1, 0]
    """
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    if s.isna().any():
        raise ValueError(f"cluster column {cluster!r} has missing values")
    row_codes = pd.factorize(s, sort=True)[0]
    if unit_codes is None:
        return row_codes
    units = np.asarray(unit_codes)
    per_unit = np.empty(int(units.max()) + 1 if units.size else 0, dtype=np.int64)
    per_unit[units] = row_codes
    moved = np.flatnonzero(per_unit[units] != row_codes)
    if moved.size:
        u = units[moved[0]]
        who = f" {_shown(unit_ids[u])!r}" if unit_ids is not None else ""
        raise ValueError(f"cluster column {cluster!r} varies within unit{who}; clusters must be fixed per unit")
    return pd.factorize(per_unit, sort=True)[0]


@dataclass
class Panel:
    """A validated, private copy of the columns an estimator needs.

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns ``y`` (outcome), ``unit`` and ``cl`` (integer codes of unit and
        cluster), ``time`` and ``cohort`` (int64, cohort 0 = never treated), ``D``
        (0/1 treatment indicator), ``w`` (weights, if any) and ``x0, x1, ...``
        (covariates, if any). Row order is that of the caller's frame.
    names : dict
        The caller's column names (``outcome``, ``unit``, ``time``, ``cohort``,
        ``cluster``, ``covariates``, ``weights``).
    info : dict
        Facts found while checking (rows dropped for missing values, units whose
        cohort lies after the last period and were recoded as never treated,
        whether units are nested in clusters).
    """

    frame: pd.DataFrame
    names: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    def base_options(self) -> dict[str, Any]:
        """Return the options every estimator built on this panel records.

        Returns
        -------
        dict
            The caller's column names (``unit``, ``time``, ``cohort``, ``cluster``,
            ``covariates``, ``weights``), the rows dropped for missing values
            (``n_dropped_missing``), the units recoded as never treated
            (``n_units_cohort_after_window``) and ``inference = "normal"``.
        """
        n = self.names
        return {
            "unit": n["unit"],
            "time": n["time"],
            "cohort": n["cohort"],
            "cluster": n["cluster"],
            "covariates": n["covariates"],
            "weights": n["weights"],
            "n_dropped_missing": self.info["n_dropped_missing"],
            "n_units_cohort_after_window": self.info["n_units_cohort_after_window"],
            "inference": "normal",
        }


def _integer_valued(s: pd.Series, name: str, role: str) -> pd.Series:
    if not (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
        raise ValueError(f"{role} column {name!r} must be numeric (integer years), got dtype {s.dtype}")
    v = s.astype("float64")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{role} column {name!r} has missing or infinite values")
    if not np.all(v == np.round(v)):
        raise ValueError(f"{role} column {name!r} must hold whole numbers (years)")
    return v.astype("int64")


def prepare_panel(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    cluster: str | None = None,
    covariates: str | Sequence[str] | None = None,
    weights: str | None = None,
    treatment: str | None = None,
) -> Panel:
    """Check a unit x time panel and return a private, renamed copy of what is needed.

    Shared by the TWFE, Bacon, Sun-Abraham, imputation and Poisson estimators and the
    wild cluster bootstrap. The caller's
    frame is never modified.

    Parameters
    ----------
    data : pandas.DataFrame
        Long panel, one row per unit and period.
    outcome, unit, time, cohort : str
        Column names. ``time`` and ``cohort`` must be whole numbers on the same scale
        (years); ``cohort`` is the first treated period, ``0`` for never treated,
        constant within unit.
    cluster : str, optional
        Cluster column; defaults to ``unit``.
    covariates : str or sequence of str, optional
        Numeric covariates.
    weights : str, optional
        Non-negative observation weights.
    treatment : str, optional
        A 0/1 treatment column to check against ``cohort``: it must be binary and
        equal ``1{cohort > 0 and time >= cohort}`` on every row.

    Returns
    -------
    Panel
        The checked copy. Rows with a missing outcome, covariate or weight are dropped
        (their number is in ``info["n_dropped_missing"]``). Units whose cohort is
        after the last observed period are never treated *within the window* and are
        recoded to cohort 0 (``info["n_units_cohort_after_window"]``).

    Raises
    ------
    ValueError
        If a column is missing, has the wrong type, the panel has duplicate
        unit-periods, the cohort varies within a unit or is negative, ``treatment``
        is not binary or disagrees with ``cohort``, or no observation (or every
        observation) is treated.
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    covs = as_list(covariates)
    cluster_col = unit if cluster is None else cluster
    roles = {"outcome": outcome, "unit": unit, "time": time, "cohort": cohort, "cluster": cluster_col}
    if weights is not None:
        roles["weights"] = weights
    if treatment is not None:
        roles["treatment"] = treatment
    for role, col in roles.items():
        if not isinstance(col, str):
            raise ValueError(f"{role} must be a column name (str), got {col!r}")
    for c in covs:
        if not isinstance(c, str):
            raise ValueError(f"covariates must be column names (str), got {c!r}")
    needed = list(dict.fromkeys([*roles.values(), *covs]))
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ValueError(f"columns not in data: {missing} (available: {list(data.columns)})")
    if len(data) == 0:
        raise ValueError("data has no rows")
    if len(set(roles[r] for r in ("outcome", "unit", "time", "cohort"))) < 4:
        raise ValueError("outcome, unit, time and cohort must be four different columns")
    if outcome in covs:
        raise ValueError(f"the outcome {outcome!r} cannot also be a covariate")

    src = data.loc[:, needed]
    for role in ("unit", "time", "cohort"):
        if src[roles[role]].isna().any():
            raise ValueError(f"{role} column {roles[role]!r} has missing values")
    cl_codes = cluster_codes(src[cluster_col], cluster_col)
    for role, col in (("outcome", outcome), *(("covariate", c) for c in covs)):
        s = src[col]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            raise ValueError(f"{role} column {col!r} must be numeric, got dtype {s.dtype}")
    if weights is not None:
        s = src[weights]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            raise ValueError(f"weights column {weights!r} must be numeric, got dtype {s.dtype}")
        if (s.dropna() < 0).any():
            raise ValueError(f"weights column {weights!r} has negative values")

    frame = pd.DataFrame(index=src.index)
    frame["y"] = src[outcome].astype("float64")
    frame["unit"] = pd.factorize(src[unit], sort=True)[0]
    frame["time"] = _integer_valued(src[time], time, "time")
    frame["cohort"] = _integer_valued(src[cohort], cohort, "cohort")
    frame["cl"] = cl_codes
    for j, c in enumerate(covs):
        frame[f"x{j}"] = src[c].astype("float64")
    if weights is not None:
        frame["w"] = src[weights].astype("float64")

    if (frame["cohort"] < 0).any():
        raise ValueError(f"cohort column {cohort!r} has negative values; use 0 for never treated")
    if (frame.groupby("unit")["cohort"].nunique() > 1).any():
        bad = frame.groupby("unit")["cohort"].nunique()
        n_bad = int((bad > 1).sum())
        raise ValueError(
            f"cohort column {cohort!r} varies within {n_bad} unit(s); the cohort (first treated "
            "period) must be constant within a unit: treatment is absorbing"
        )
    if frame.duplicated(["unit", "time"]).any():
        n_dup = int(frame.duplicated(["unit", "time"]).sum())
        raise ValueError(f"{n_dup} duplicate ({unit}, {time}) rows: the panel must have one row per unit and period")

    info: dict[str, Any] = {}
    last = int(frame["time"].max())
    late = frame["cohort"] > last
    info["n_units_cohort_after_window"] = int(frame.loc[late, "unit"].nunique())
    frame.loc[late, "cohort"] = 0
    frame["D"] = ((frame["cohort"] > 0) & (frame["time"] >= frame["cohort"])).astype("int8")

    if treatment is not None:
        t = src[treatment]
        if t.isna().any():
            raise ValueError(f"treatment column {treatment!r} has missing values")
        if not pd.api.types.is_numeric_dtype(t):
            raise ValueError(f"treatment column {treatment!r} must be binary 0/1, got dtype {t.dtype}")
        tv = t.astype("float64")
        if not tv.isin([0.0, 1.0]).all():
            shown = sorted(pd.unique(tv[~tv.isin([0.0, 1.0])]).tolist())[:10]
            raise ValueError(f"treatment column {treatment!r} must be binary 0/1, found values {shown}")
        n_disagree = int((tv.to_numpy() != frame["D"].to_numpy()).sum())
        if n_disagree:
            raise ValueError(
                f"treatment column {treatment!r} disagrees with 1{{{time} >= {cohort} > 0}} on "
                f"{n_disagree} row(s); treatment must switch on in the cohort year and stay on"
            )

    keep = frame["y"].notna()
    for j in range(len(covs)):
        keep &= frame[f"x{j}"].notna()
    if weights is not None:
        keep &= frame["w"].notna()
    info["n_dropped_missing"] = int((~keep).sum())
    if not keep.all():  # a boolean selection copies every column even when it keeps every row
        frame = frame.loc[keep]
    if not np.all(np.isfinite(frame["y"])):
        raise ValueError(f"outcome column {outcome!r} has infinite values")
    if frame["D"].sum() == 0:
        raise ValueError(
            f"no treated observations: no unit has {cohort!r} > 0 with {time!r} >= {cohort!r} "
            "in the sample"
        )
    if frame["D"].sum() == len(frame):
        raise ValueError("every observation is treated: there is no untreated comparison")
    nested = bool((frame.groupby("unit")["cl"].nunique() == 1).all())
    info["units_nested_in_clusters"] = nested
    names = {
        "outcome": outcome, "unit": unit, "time": time, "cohort": cohort,
        "cluster": cluster_col, "covariates": covs, "weights": weights,
    }
    return Panel(frame=frame, names=names, info=info)
