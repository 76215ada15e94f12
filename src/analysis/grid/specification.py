"""The specification grid: every combination of the study's defensible choices, as independent tasks.

A referee's question, "does the headline depend on one analyst's choices?", is answered by
estimating the overall effect under every combination of the choices the study could defensibly
have made (:data:`LEVELS`, each level a parameter):

=================  ==============================================================================
level              values (default grid)
=================  ==============================================================================
``control_group``  ``never``, ``notyet`` (Callaway-Sant'Anna only)
``covariates``     ``none``, ``baseline`` (:data:`analysis.core.spec.DEFAULT_COVARIATES`),
                   ``baseline_party`` (baseline + party members and the share over 60, at baseline)
``method``         ``dr``, ``ipw``, ``reg`` (Callaway-Sant'Anna only)
``estimator``      ``cs`` (Callaway-Sant'Anna), ``sa`` (Sun-Abraham), ``bjs`` (imputation)
``cluster``        ``township``, ``county``
``anticipation``   ``0``, ``1`` (Callaway-Sant'Anna only: the arrival year kept or left out)
``min_months``     ``3``, ``6``, ``9``: the treatment-timing rule of :mod:`analysis.core.treatment`
``window``         ``all`` (every year of the analysis window), ``drop_first`` (without its first year)
=================  ==============================================================================

A level that does not apply to an estimator is not varied for it: Sun-Abraham always compares
with the never-treated villages and imputation with every untreated village-year, and neither has
an estimation method or an anticipation option (:func:`analysis.estimate.estimate` ignores them),
so their points would repeat the same estimate. Those duplicates are skipped, and
:func:`grid_points` says how many (:class:`GridPlan`); their levels read ``""`` in the results.
The default grid has 432 Callaway-Sant'Anna points and 36 each for Sun-Abraham and imputation:
504 specifications per outcome.

How each point is estimated (nothing is rebuilt here):

* the timing rule and the window are applied as the study applies them: the panel of the
  window's years, treatment timing derived from the postings over those years with
  ``min_months`` (:func:`analysis.core.treatment.derive_treatment`, then
  :func:`analysis.core.treatment.attach_treatment`), i.e. exactly
  :func:`analysis.core.panel.load_analysis_panel` with ``first_year`` moved one year on for
  ``drop_first`` (tested);
* each point is a :class:`analysis.core.spec.Spec` made with :meth:`~analysis.core.spec.Spec.replace`
  from :data:`~analysis.core.spec.HEADLINE`; Callaway-Sant'Anna's simple ATT comes from
  :func:`analysis.estimators.callaway_santanna.att_gt` with the spec's arguments (as the headline),
  the others' overall effect from :func:`analysis.estimate.estimate`.

The points of one outcome and one (timing rule, window, covariate set) variant are one task of
:mod:`analysis.grid.engine` (:class:`GridTask`, at most ``points_per_task`` points, 28 in the default
grid: the engine's cost per task is paid once per variant, not once per point); the data
(:class:`GridData`: the panel without treatment columns and the postings) is shipped once to every
worker, which builds each variant once and keeps it. Estimates use analytic standard errors (no
random draw), so the grid's numbers do not depend on the seed, the number of workers, the size of
the tasks or the order in which they finish; the results are sorted by point before anything is
summarised.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.core.spec import CLUSTER_COLUMNS, DEFAULT_COVARIATES, HEADLINE, Spec
from analysis.core.treatment import TREATMENT_COLUMNS, attach_treatment, derive_treatment
from analysis.data import schema

__all__ = [
    "COVARIATE_SETS",
    "DEFAULT_MIN_MONTHS",
    "GRID_COLUMNS",
    "GRID_COLUMNS_READ",
    "LEVELS",
    "NOT_APPLICABLE",
    "POINTS_PER_TASK",
    "PREPARED_ROWS",
    "GridData",
    "GridError",
    "GridPlan",
    "GridPoint",
    "GridTask",
    "cached_variants",
    "grid_data",
    "grid_points",
    "grid_tasks",
    "parse_levels",
    "prepared_variant",
    "run_grid",
    "run_point",
    "run_task",
    "variant_panel",
]

LEVELS: dict[str, tuple[Any, ...]] = {
    "estimator": ("cs", "sa", "bjs"),
    "method": ("dr", "ipw", "reg"),
    "control_group": ("never", "notyet"),
    "covariates": ("none", "baseline", "baseline_party"),
    "cluster": ("township", "county"),
    "anticipation": (0, 1),
    "min_months": (3.0, 6.0, 9.0),
    "window": ("all", "drop_first"),
}
"""Every level of the grid and its default values (also the order of the results' columns and sort)."""

COVARIATE_SETS: dict[str, tuple[str, ...]] = {
    "none": (),
    "baseline": DEFAULT_COVARIATES,
    "baseline_party": (*DEFAULT_COVARIATES, "party_members", "share_members_over60"),
}
"""Covariate sets of the ``covariates`` level (each covariate at its baseline value)."""

DEFAULT_MIN_MONTHS = 6.0
"""The study's timing rule (the notebooks' ``min_months``): the headline's grid value."""

APPLIES_TO: dict[str, tuple[str, ...]] = {"method": ("cs",), "control_group": ("cs",), "anticipation": ("cs",)}
"""Levels that only some estimators have (the others' points would repeat one estimate)."""

NOT_APPLICABLE = ""
"""The value of a level that does not apply to a point's estimator."""

GRID_COLUMNS: tuple[str, ...] = ("outcome", *LEVELS, "name", "headline", "estimate", "std_error", "conf_low",
                                 "conf_high", "p_value", "n_obs", "n_clusters", "note")
"""Columns of the grid's results: the point's levels (``anticipation`` and ``min_months`` as text, ``""``
where a level does not apply), its name, whether it is the headline, the estimate of the overall effect
with its 95% interval and p-value (analytic, clustered, the study's small-sample convention), and ``note``:
why the point gave no estimate (empty when it did)."""


class GridError(ValueError):
    """A grid that cannot be run: an unknown level or value, an empty level or grid."""


def _value_text(level: str, value: Any) -> str:
    if level == "min_months":
        return f"{float(value):g}"
    return str(value)


def parse_levels(items: Sequence[str]) -> dict[str, list[str]]:
    """Parse ``NAME=V1,V2`` strings (the ``--level`` options) into a level mapping.

    Parameters
    ----------
    items : sequence of str
        E.g. ``["estimator=cs,sa", "window=all"]``.

    Returns
    -------
    dict
        Level name -> list of value texts (checked later by :func:`grid_points`).

    Raises
    ------
    GridError
        For an item without ``=``.
    """
    out: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise GridError(f"a grid level is given as NAME=V1,V2 (example: estimator=cs,sa), got {item!r}")
        name, values = item.split("=", 1)
        out[name.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    return out


def _check_levels(levels: Mapping[str, Sequence[Any]] | None) -> dict[str, tuple[Any, ...]]:
    chosen = dict(LEVELS)
    for name, values in (levels or {}).items():
        if name not in LEVELS:
            raise GridError(f"unknown grid level {name!r}; the levels are {', '.join(LEVELS)}")
        vals = list(values)
        if not vals:
            raise GridError(f"grid level {name!r} is empty: give at least one of "
                            f"{', '.join(_value_text(name, v) for v in LEVELS[name])}")
        allowed = {_value_text(name, v): v for v in LEVELS[name]}
        picked = []
        for v in vals:
            text = _value_text(name, v) if not isinstance(v, str) else v
            if name == "min_months":
                try:
                    text = f"{float(text):g}"
                except ValueError:
                    pass
            if text not in allowed:
                raise GridError(f"grid level {name!r} has no value {v!r}; choose from {', '.join(allowed)}")
            if allowed[text] not in picked:
                picked.append(allowed[text])
        chosen[name] = tuple(picked)
    return chosen


@dataclass(frozen=True)
class GridPoint:
    """One specification of the grid for one outcome.

    Attributes
    ----------
    outcome : str
        Outcome.
    estimator, method, control_group, covariates, cluster : str
        Levels (:data:`LEVELS`; :data:`NOT_APPLICABLE` where the estimator has no such choice).
    anticipation : int or None
        Years left out before the cohort year (None where it does not apply).
    min_months : float
        Treatment-timing rule.
    window : {"all", "drop_first"}
        Years.
    """

    outcome: str
    estimator: str
    method: str
    control_group: str
    covariates: str
    cluster: str
    anticipation: int | None
    min_months: float
    window: str

    @property
    def name(self) -> str:
        """The point's unique name: its key and the name of its results file."""
        ant = "-" if self.anticipation is None else str(self.anticipation)
        return (f"{self.outcome}.{self.estimator}.{self.method or '-'}.{self.control_group or '-'}.{self.covariates}."
                f"{self.cluster}.a{ant}.m{self.min_months:g}.{self.window}")

    @property
    def spec(self) -> Spec:
        """The point as a :class:`analysis.core.spec.Spec` (the headline with this point's choices)."""
        changes: dict[str, Any] = {"estimator": self.estimator, "covariates": COVARIATE_SETS[self.covariates],
                                   "cluster": self.cluster}
        if self.estimator == "cs":
            changes.update(method=self.method, control_group=self.control_group, anticipation=self.anticipation)
        elif self.estimator == "sa":
            changes["control_group"] = "never"  # Sun-Abraham compares with the never-treated villages
        return HEADLINE.replace(**changes)

    def is_headline(self, headline: Spec = HEADLINE, min_months: float = DEFAULT_MIN_MONTHS) -> bool:
        """Whether this is the study's headline specification (the headline spec, the study's rule, all years).

        Parameters
        ----------
        headline : Spec, default :data:`analysis.core.spec.HEADLINE`
            The headline specification.
        min_months : float, default :data:`DEFAULT_MIN_MONTHS`
            The study's timing rule.

        Returns
        -------
        bool
            True for the headline point.
        """
        return self.spec == headline and self.min_months == float(min_months) and self.window == "all"

    def record(self) -> dict[str, Any]:
        """Return the point's levels as a results row (level values as text)."""
        return {"outcome": self.outcome, "estimator": self.estimator, "method": self.method,
                "control_group": self.control_group, "covariates": self.covariates, "cluster": self.cluster,
                "anticipation": "" if self.anticipation is None else str(self.anticipation),
                "min_months": f"{self.min_months:g}", "window": self.window, "name": self.name}


@dataclass(frozen=True)
class GridPlan:
    """The points of a grid and what was left out.

    Attributes
    ----------
    points : list of GridPoint
        The points, sorted (outcome, then the levels in :data:`LEVELS` order and value order).
    levels : dict
        The levels used.
    outcomes : list of str
        The outcomes.
    skipped : int
        Combinations not run because a level does not apply to the estimator (duplicates).
    """

    points: list[GridPoint]
    levels: dict[str, tuple[Any, ...]]
    outcomes: list[str]
    skipped: int

    def describe(self) -> str:
        """Say in one sentence how many points the grid has, and what it skipped."""
        per = len(self.points) // max(len(self.outcomes), 1)
        return (f"{len(self.points)} specifications ({per} per outcome x {len(self.outcomes)} outcomes); "
                f"{self.skipped} combinations skipped because a level does not apply to the estimator "
                "(method, comparison group and anticipation are Callaway-Sant'Anna's only)")


def grid_points(outcomes: Sequence[str], levels: Mapping[str, Sequence[Any]] | None = None) -> GridPlan:
    """List the grid's points: every combination of the levels, duplicates that do not apply left out.

    Parameters
    ----------
    outcomes : sequence of str
        Canonical outcomes.
    levels : mapping, optional
        Level name -> values, replacing :data:`LEVELS`' defaults for those levels (values as in
        :data:`LEVELS` or as text, e.g. ``{"estimator": ["cs"], "min_months": ["6"]}``).

    Returns
    -------
    GridPlan
        The points and the number of skipped combinations.

    Raises
    ------
    GridError
        For an unknown level or value, an empty level, no outcome, or an unknown outcome.

    Examples
    --------
    >>> plan = grid_points(["income_per_capita"])
    >>> len(plan.points), plan.skipped
    (504, 792)
    >>> grid_points(["income_per_capita"], {"estimator": ["sa"], "method": ["dr", "ipw"]}).skipped
    252
    """
    outs = list(dict.fromkeys(outcomes))
    if not outs:
        raise GridError("the grid has no outcome: name at least one (e.g. --outcomes income_per_capita)")
    bad = [o for o in outs if o not in schema.OUTCOMES]
    if bad:
        raise GridError(f"unknown outcome(s) {', '.join(map(repr, bad))}; choose from {', '.join(schema.OUTCOMES)}")
    lv = _check_levels(levels)
    points: list[GridPoint] = []
    total = 0
    for oc in outs:
        seen: set[GridPoint] = set()
        for combo in itertools.product(*lv.values()):
            total += 1
            c = dict(zip(lv, combo, strict=True))
            est = c["estimator"]
            for name, ests in APPLIES_TO.items():
                if est not in ests:
                    c[name] = None if name == "anticipation" else NOT_APPLICABLE
            p = GridPoint(outcome=oc, estimator=est, method=c["method"], control_group=c["control_group"],
                          covariates=c["covariates"], cluster=c["cluster"], anticipation=c["anticipation"],
                          min_months=float(c["min_months"]), window=c["window"])
            if p not in seen:
                seen.add(p)
                points.append(p)
    return GridPlan(points=points, levels=lv, outcomes=outs, skipped=total - len(points))


# ----------------------------------------------------------------------------- data


GRID_COLUMNS_READ: tuple[str, ...] = (
    "village_code", "year", *CLUSTER_COLUMNS.values(),
    *dict.fromkeys(c for cs in COVARIATE_SETS.values() for c in cs),
)
"""The panel's columns a point reads besides its outcome: keys, cluster levels and every covariate."""


@dataclass(frozen=True)
class GridData:
    """What every grid task reads, shipped once to each worker.

    Attributes
    ----------
    panel : pandas.DataFrame
        The canonical panel of the analysis window, without treatment columns.
    postings : pandas.DataFrame
        The canonical postings.
    first_year, last_year : int
        The analysis window.
    token : str
        A digest of the data (workers key their prepared variants by it).
    """

    panel: pd.DataFrame = field(repr=False)
    postings: pd.DataFrame = field(repr=False)
    first_year: int
    last_year: int
    token: str = ""

    @classmethod
    def make(cls, panel: pd.DataFrame, postings: pd.DataFrame, first_year: int, last_year: int,
             outcomes: Sequence[str] | None = None) -> GridData:
        """Build the grid's data from a panel (treatment columns are dropped) and the postings.

        Parameters
        ----------
        panel : pandas.DataFrame
            Canonical or analysis panel of the window (not modified).
        postings : pandas.DataFrame
            Canonical postings (not modified).
        first_year, last_year : int
            The analysis window.
        outcomes : sequence of str, optional
            Keep only these outcomes, with the columns every point reads (:data:`GRID_COLUMNS_READ`):
            each variant panel a worker builds is then that much smaller (0.6 instead of 1.2 GB for one
            outcome at national size). Default: every column.

        Returns
        -------
        GridData
            With its digest.
        """
        if outcomes is not None:
            keep = {*GRID_COLUMNS_READ, *outcomes}
            panel = panel[[c for c in panel.columns if c in keep]]
        base = panel.drop(columns=[c for c in TREATMENT_COLUMNS if c in panel.columns])
        base = _rows(base, (base["year"] >= first_year) & (base["year"] <= last_year)).reset_index(drop=True)
        digest = hashlib.sha256()
        digest.update(pd.util.hash_pandas_object(base, index=False).to_numpy().tobytes())
        digest.update(pd.util.hash_pandas_object(postings.astype(str), index=False).to_numpy().tobytes())
        digest.update(f"{first_year}-{last_year}".encode())
        return cls(base, postings.copy(), int(first_year), int(last_year), digest.hexdigest()[:16])


def _rows(frame: pd.DataFrame, keep: pd.Series) -> pd.DataFrame:
    """Return the rows of ``frame`` where ``keep`` holds: the frame itself (no copy) when that is every row.

    A boolean selection copies every column even when it keeps them all (1.3 GB for the national panel,
    once for the grid's data and once per variant of the whole window).
    """
    return frame if bool(keep.all()) else frame[keep]


def grid_data(store: str | os.PathLike, first_year: int | None = None, last_year: int | None = None) -> GridData:
    """Read the grid's data from the store (read-only), over the analysis window.

    Parameters
    ----------
    store : str or path-like
        DuckDB store.
    first_year, last_year : int, optional
        The window (default: every year the store holds; :func:`analysis.core.panel.resolve_window`).

    Returns
    -------
    GridData
        The canonical panel of the window and the postings.
    """
    from analysis.core.panel import resolve_window
    from analysis.data import store as db

    window = resolve_window(Path(store), first_year, last_year)
    panel = schema.plain_dtypes(db.read_panel(Path(store), years=range(window.first_year, window.last_year + 1)))
    return GridData.make(panel, db.read_postings(Path(store)), window.first_year, window.last_year)


def variant_panel(data: GridData, min_months: float, window: str) -> pd.DataFrame:
    """Build the analysis panel under one timing rule and window, as the study's panel loader does.

    The result equals :func:`analysis.core.panel.load_analysis_panel` with the same rule and window.

    Parameters
    ----------
    data : GridData
        The grid's data.
    min_months : float
        Treatment-timing rule (:func:`analysis.core.treatment.derive_treatment`).
    window : {"all", "drop_first"}
        Every year of the window, or all but its first.

    Returns
    -------
    pandas.DataFrame
        Panel with the treatment columns.
    """
    first = data.first_year + (1 if window == "drop_first" else 0)
    if first > data.last_year:
        raise ValueError(f"the window {data.first_year}-{data.last_year} has no year left without its first")
    panel = _rows(data.panel, (data.panel["year"] >= first) & (data.panel["year"] <= data.last_year))
    treatment = derive_treatment(data.postings, first, data.last_year, min_months=float(min_months))
    return attach_treatment(panel.reset_index(drop=True), treatment)


_PREPARED: OrderedDict[tuple, tuple[pd.DataFrame, pd.DataFrame, list[str]]] = OrderedDict()
_PREPARED_MAX = 8
PREPARED_ROWS = 6_000_000
"""Most rows of variant panels a worker keeps (each distinct panel counted once): on the default city all
eight variants fit (22,568 rows each); at national size (4.5-5M rows per variant) only the variant in use is
kept, so a worker does not hold several 1.3 GB panels while it fits (tasks come variant by variant)."""


def _prepared_rows() -> int:
    return sum(len(p) for p in {id(v[0]): v[0] for v in _PREPARED.values()}.values())


def cached_variants() -> list[tuple[float, str, str | None]]:
    """List the variants this process keeps built, oldest first (a diagnostic of the worker's memory).

    Returns
    -------
    list of tuple
        ``(min_months, window, covariates)``; ``covariates`` is None for a variant's panel without
        covariate columns.
    """
    return [(k[1], k[2], k[3]) for k in _PREPARED]


def prepared_variant(data: GridData, min_months: float, window: str,
                     covariates: str) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Return a variant panel and its covariate columns, built once per worker process (a small LRU).

    Parameters
    ----------
    data : GridData
        The grid's data.
    min_months : float
        Treatment-timing rule.
    window : {"all", "drop_first"}
        The years.
    covariates : str
        A key of :data:`COVARIATE_SETS`.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame, list of str)
        The panel (:func:`variant_panel`; shared: do not modify it), the panel with the covariate
        columns, and their names.
    """
    from analysis.core.panel import covariate_columns

    key = (data.token, float(min_months), window, covariates)
    if key in _PREPARED:
        _PREPARED.move_to_end(key)
        return _PREPARED[key]
    vkey = (data.token, float(min_months), window, None)
    if vkey in _PREPARED:
        panel = _PREPARED[vkey][0]
    else:
        panel = variant_panel(data, min_months, window)
        _PREPARED[vkey] = (panel, panel, [])
    with_covs, covs = covariate_columns(panel, list(COVARIATE_SETS[covariates]))
    _PREPARED[key] = (panel, with_covs, covs)
    while len(_PREPARED) > 1 and (len(_PREPARED) > _PREPARED_MAX or _prepared_rows() > PREPARED_ROWS):
        _PREPARED.popitem(last=False)  # the oldest first; the entry just made stays
    return _PREPARED[key]


def run_point(point: GridPoint, data: GridData) -> pd.DataFrame:
    """Estimate one point of the grid (an engine task).

    Parameters
    ----------
    point : GridPoint
        The point.
    data : GridData
        The grid's data (shipped once to each worker).

    Returns
    -------
    pandas.DataFrame
        One row, :data:`GRID_COLUMNS` (``headline`` is filled by :func:`run_grid`); a point that
        cannot be estimated (e.g. no never-treated village under a rule) has a missing estimate
        and says why in ``note``.
    """
    from analysis.estimate import estimate
    from analysis.estimators.callaway_santanna import aggregate, att_gt

    row: dict[str, Any] = {**point.record(), "headline": False, "estimate": np.nan, "std_error": np.nan,
                           "conf_low": np.nan, "conf_high": np.nan, "p_value": np.nan, "n_obs": -1,
                           "n_clusters": -1, "note": ""}
    spec = point.spec
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            panel, with_covs, covs = prepared_variant(data, point.min_months, point.window, point.covariates)
            if point.outcome not in panel.columns or not panel[point.outcome].notna().any():
                raise ValueError(f"outcome {point.outcome!r} is not in the data")
            if spec.estimator == "cs":
                tidy = aggregate(att_gt(with_covs, point.outcome, **spec.cs_arguments(covs)), "simple").tidy()
            else:
                tidy = estimate(panel, point.outcome, spec.estimator, control_group=spec.control_group,
                                covariates=spec.covariates, cluster=spec.cluster).tidy()
            r = tidy[tidy["aggregation"] == spec.aggregation].iloc[0]
        for k in ("estimate", "std_error", "conf_low", "conf_high", "p_value"):
            row[k] = float(r[k]) if pd.notna(r[k]) else np.nan
        for k in ("n_obs", "n_clusters"):
            row[k] = int(r[k]) if pd.notna(r[k]) else -1
    except (ValueError, np.linalg.LinAlgError) as err:
        row["note"] = f"{type(err).__name__}: {err}"[:300]
    return pd.DataFrame([row], columns=list(GRID_COLUMNS))


POINTS_PER_TASK = 32
"""Most points in one engine task (a variant of the default grid has 28: 24 Callaway-Sant'Anna, 2 Sun-Abraham,
2 imputation)."""


@dataclass(frozen=True)
class GridTask:
    """Points of one outcome and one (timing rule, window, covariate set) variant, run as one engine task.

    Attributes
    ----------
    points : tuple of GridPoint
        The points, in the order they run.
    """

    points: tuple[GridPoint, ...]

    @property
    def name(self) -> str:
        """The task's unique name (its key and its results file): its first point and its size."""
        return f"{self.points[0].name}.n{len(self.points)}"


def grid_tasks(points: Sequence[GridPoint], points_per_task: int = POINTS_PER_TASK) -> list[GridTask]:
    """Group points into engine tasks: one per outcome and variant, split into at most ``points_per_task`` points.

    Parameters
    ----------
    points : sequence of GridPoint
        The grid's points.
    points_per_task : int, default :data:`POINTS_PER_TASK`
        Most points in one task (1: one task per point).

    Returns
    -------
    list of GridTask
        Tasks in a stable order (variant by variant, points by name), independent of the order of ``points``.

    Raises
    ------
    GridError
        If ``points_per_task`` is below 1.
    """
    if isinstance(points_per_task, bool) or int(points_per_task) < 1:
        raise GridError(f"points per task must be at least 1, got {points_per_task!r}")
    size = int(points_per_task)
    order = sorted(points, key=lambda p: (p.min_months, p.window, p.covariates, p.outcome, p.name))
    tasks: list[GridTask] = []
    for _, group in itertools.groupby(order, key=lambda p: (p.min_months, p.window, p.covariates, p.outcome)):
        chunk = list(group)
        tasks.extend(GridTask(tuple(chunk[i:i + size])) for i in range(0, len(chunk), size))
    return tasks


def run_task(task: GridTask, data: GridData) -> pd.DataFrame:
    """Estimate the points of one task (an engine task): :func:`run_point` for each, rows in the task's order.

    Parameters
    ----------
    task : GridTask
        The points.
    data : GridData
        The grid's data (shipped once to each worker).

    Returns
    -------
    pandas.DataFrame
        :data:`GRID_COLUMNS`, one row per point.
    """
    return pd.concat([run_point(p, data) for p in task.points], ignore_index=True)


def _sort_key(plan: GridPlan):
    rank = {name: {v: i for i, v in enumerate(vals)} for name, vals in plan.levels.items()}
    outcome_rank = {o: i for i, o in enumerate(plan.outcomes)}

    def key(p: GridPoint) -> tuple:
        return (outcome_rank[p.outcome], *(rank[n].get(getattr(p, n), -1) for n in LEVELS))

    return key


def run_grid(
    plan: GridPlan,
    data: GridData,
    results_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    serial: bool = False,
    progress: bool = False,
    headline: Spec = HEADLINE,
    headline_min_months: float = DEFAULT_MIN_MONTHS,
    stats: Any = None,
    points_per_task: int = POINTS_PER_TASK,
) -> pd.DataFrame:
    """Estimate every point of a grid and return the results sorted by point.

    Parameters
    ----------
    plan : GridPlan
        From :func:`grid_points`.
    data : GridData
        The data (:func:`grid_data`).
    results_dir : str or path-like, optional
        Folder of one Parquet file per finished point (a rerun resumes; a folder of another data set
        or grid is refused).
    workers : int, optional
        Workers of the local cluster (default: one per core).
    scheduler : str, optional
        Address of an existing Dask scheduler.
    serial : bool, default False
        Run in this process without Dask.
    progress : bool, default False
        Progress bar.
    headline : Spec, default :data:`analysis.core.spec.HEADLINE`
        The headline specification (marks the headline point).
    headline_min_months : float, default :data:`DEFAULT_MIN_MONTHS`
        The study's timing rule (marks the headline point).
    stats : analysis.grid.engine.RunStats, optional
        Filled with what the run did (counted in tasks, :func:`grid_tasks`).
    points_per_task : int, default :data:`POINTS_PER_TASK`
        Most points in one engine task (the numbers do not depend on it; a results folder made with another
        value is refused).

    Returns
    -------
    pandas.DataFrame
        :data:`GRID_COLUMNS`, one row per point, sorted by outcome and the levels (in
        :data:`LEVELS` order); ``headline`` marks the study's headline point of each outcome.
    """
    from analysis.grid.engine import run_tasks

    # Submitted variant by variant (timing rule, window, covariates) so each worker builds few panels.
    tasks = grid_tasks(plan.points, points_per_task)
    fingerprint = {"kind": "specification grid", "data": data.token, "window": [data.first_year, data.last_year],
                   "points_per_task": int(points_per_task)}
    frames = run_tasks(tasks, run_task, name=lambda t: t.name, shared=data, results_dir=results_dir,
                       fingerprint=fingerprint, workers=workers, scheduler=scheduler, serial=serial,
                       progress=progress, description="grid", stats=stats)
    rows = pd.concat(frames, ignore_index=True).set_index("name", drop=False)
    points = sorted(plan.points, key=_sort_key(plan))
    out = rows.loc[[p.name for p in points]].reset_index(drop=True)
    out["headline"] = [p.is_headline(headline, headline_min_months) for p in points]
    for c in ("n_obs", "n_clusters"):
        out[c] = out[c].astype("int64")
    out["note"] = out["note"].fillna("").astype(str)
    return out[list(GRID_COLUMNS)]
