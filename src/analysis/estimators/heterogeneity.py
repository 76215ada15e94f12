r"""Effect heterogeneity: Callaway-Sant'Anna ATTs by subgroup and by cohort, with a test of equality.

The report sends different kinds of cadres (law, agriculture, economic, other) to
villages with different problems, so "did it work?" has one answer per kind of cadre.
:func:`by_group` estimates the simple ATT of
:func:`analysis.estimators.callaway_santanna.aggregate` separately for the treated
units of each level of a unit-level variable (e.g. ``cadre_type``, or a baseline split
from :func:`baseline_split`), and tests whether all subgroup effects are equal;
:func:`by_cohort` does the same for the cohort (group) aggregation.

Estimand of :func:`by_group`
-----------------------------
For level ``s``,

.. math::

    \theta_s = \frac{\sum_{g} \sum_{t \ge g} P(G = g, S = s)\, ATT_s(g, t)}
                    {\sum_{g} \sum_{t \ge g} P(G = g, S = s)},
    \qquad ATT_s(g, t) = E[Y_t(g) - Y_t(0) \mid G = g, S = s],

the ``simple`` aggregation restricted to the treated units of level ``s`` (cohort-size
weighted over post-treatment cells, i.e. the mean effect over the subgroup's treated
unit-years). It is the ``aggregation == "cadre_type"`` truth of
:func:`analysis.data.synthetic.simulate_city`.

Comparison group
----------------
The comparison units are the same for every subgroup: never-treated units of *every*
level and (``control_group="notyet"``) units of *every* level not yet treated by
``t``. :func:`~analysis.estimators.callaway_santanna.att_gt` pools a cohort's units,
so each ``ATT_s(g, t)`` comes from one ``att_gt`` run per (level, cohort) on the
sample *without the units of cohort* ``g`` *of the other levels* (those units are
never comparisons for cohort ``g``: ``att_gt`` excludes a cell's own cohort from its
comparison group). Every other unit stays in, so the comparison group of
``ATT_s(g, t)`` is exactly that of the pooled ``ATT(g, t)``. (Dropping *all* treated
units of other levels instead would also remove the not-yet-treated units of other
levels from the comparison group.) Only the cells of cohort ``g`` are kept from each
run. The ``value`` of the ``by`` column is ignored for never-treated units.

Joint covariance and the equality test
--------------------------------------
The subgroup estimates share comparison units and are correlated. Each cell's
influence function from ``att_gt`` is put on the full set of ``N`` units (zero for a
unit outside that run's sample; rescaled by ``N / n_run`` so that
``se = sqrt(sum psi^2) / N`` is unchanged), aggregated with the influence term of the
estimated weights (as R ``did::aggte``), and the subgroup influence functions are
stacked into an ``N x L`` matrix ``Psi``. Their covariance is ``Psi'Psi / N^2``, or with
``cluster`` the same with ``Psi`` first summed within clusters, times the study's
small-sample factor ``G/(G-1)`` (:mod:`analysis.inference.small_sample`; intervals and
p-values of the subgroup rows use t(G-1)). The Wald statistic for ``H0: theta_1 = ... = theta_L`` is
``W = (R theta)' (R V R')^{-1} (R theta)`` with ``R`` the ``L - 1`` contrasts
``theta_1 - theta_l``; it is compared with a chi-square with ``L - 1`` degrees of
freedom.

Caveats
-------
* Subgroups are not randomly assigned: a difference between cadre types mixes the
  effect of the cadre with that of the villages each type is sent to (the targeting
  rule makes them different villages).
* A subgroup's simple ATT averages over its own mix of cohorts and exposure years; if
  subgroups differ in that mix, their ATTs differ even with identical effect profiles.
  The same holds for cohorts in :func:`by_cohort` (an earlier cohort is observed at
  longer exposures).
* The test is pointwise with respect to other tests run on the same data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.estimators.callaway_santanna import aggregate, att_gt, att_gt_parts
from analysis.estimators.inputs import cluster_codes
from analysis.inference.small_sample import DEFAULT as SMALL_SAMPLE
from analysis.inference.small_sample import check_rule, cluster_factor, intervals, t_df
from analysis.results import DiDResult, EqualityTest, make_tidy

__all__ = ["baseline_split", "by_cohort", "by_group", "equality_test"]

ESTIMATOR = "cs"


def equality_test(estimates: np.ndarray, vcov: np.ndarray) -> dict[str, Any]:
    """Wald test that all entries of ``estimates`` are equal.

    Parameters
    ----------
    estimates : array_like, shape (L,)
        Point estimates.
    vcov : array_like, shape (L, L)
        Their joint covariance.

    Returns
    -------
    dict
        ``statistic`` (W), ``df`` (L - 1) and ``p_value`` (chi-square); NaN when
        ``L < 2`` or the contrast covariance is singular.

    Examples
    --------
    >>> r = equality_test([1.0, 3.0], [[1.0, 0.0], [0.0, 1.0]])
    >>> r["statistic"], r["df"]
    (2.0, 1)
    """
    th = np.asarray(estimates, dtype=float)
    V = np.asarray(vcov, dtype=float)
    L = th.size
    if L < 2:
        return {"statistic": np.nan, "df": 0, "p_value": np.nan}
    R = np.hstack([np.ones((L - 1, 1)), -np.eye(L - 1)])
    d = R @ th
    C = R @ V @ R.T
    if not np.all(np.isfinite(C)) or 1.0 / np.linalg.cond(C) < np.finfo(float).eps:
        return {"statistic": np.nan, "df": L - 1, "p_value": np.nan}
    W = float(d @ np.linalg.solve(C, d))
    return {"statistic": W, "df": L - 1, "p_value": float(stats.chi2.sf(W, L - 1))}


def _cluster_vcov(psi: np.ndarray, n: int, clusters: np.ndarray | None) -> np.ndarray:
    """``Psi'Psi / n^2`` with ``Psi`` (n x L) summed within clusters if given."""
    if clusters is not None:
        n_c = int(clusters.max()) + 1
        psi = np.column_stack([np.bincount(clusters, weights=psi[:, j], minlength=n_c)
                               for j in range(psi.shape[1])])
    return psi.T @ psi / n**2


def _check_columns(data, cols: dict[str, str | None]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    for role, col in cols.items():
        if col is None:
            continue
        if not isinstance(col, str):
            raise ValueError(f"{role} must be a column name (str), got {col!r}")
        if col not in data.columns:
            raise ValueError(f"{role} column {col!r} does not exist in data; available columns: "
                             f"{list(map(str, data.columns))[:20]}")


def _test_row(base: dict, test: EqualityTest, label: str) -> dict:
    return {**base, "aggregation": "equality_test",
            "term": f"H0: equal effects across {label} (chi2, df={test.df})",
            "estimate": test.statistic, "p_value": test.p_value, "band": "pointwise"}


def by_group(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    by: str,
    covariates: str | Sequence[str] | None = None,
    control_group: str = "notyet",
    method: str = "dr",
    cluster: str | None = None,
    *,
    alpha: float = 0.05,
    small_sample: str = SMALL_SAMPLE,
) -> DiDResult:
    """Callaway-Sant'Anna simple ATT for the treated units of each level of ``by``, and a test of equality.

    Estimand, comparison group, covariance and caveats are in the module docstring.

    Parameters
    ----------
    data : pandas.DataFrame
        Balanced long panel. Not modified.
    outcome, unit, time, cohort : str
        As in :func:`~analysis.estimators.callaway_santanna.att_gt` (cohort 0 = never
        treated).
    by : str
        Column with the subgroup of each treated unit (constant within unit, e.g.
        ``cadre_type``). Ignored for never-treated units.
    covariates : str or sequence of str, optional
        Covariates for conditional parallel trends, passed to ``att_gt``.
    control_group : {"notyet", "never"}, default "notyet"
        Comparison group, shared by all subgroups.
    method : {"dr", "ipw", "reg"}, default "dr"
        2x2 estimator.
    cluster : str, optional
        Cluster column (fixed per unit) for the standard errors and the joint covariance.
    alpha : float, default 0.05
        One minus the confidence level.
    small_sample : {"cr1_t", "asymptotic"}, default "cr1_t"
        Small-sample rule (:mod:`analysis.inference.small_sample`).

    Returns
    -------
    DiDResult
        Estimator ``"cs"``. One row per level with aggregation ``"group_by"`` and term
        ``"<by>=<level>"`` (``n_units``: the level's treated units plus the comparison
        units of its runs), then one row with aggregation ``"equality_test"`` whose
        ``estimate`` is the Wald statistic and ``p_value`` its chi-square p-value (no
        standard error or interval). Also ``equality_test`` (an
        :class:`~analysis.results.EqualityTest`: ``statistic``, ``df``, ``p_value``,
        ``levels``), ``influence`` (``N x L``), ``vcov`` (``L x L`` frame), ``unit_ids``,
        ``clusters``, ``n_clusters`` and ``cells`` (the subgroup ATT(g,t) cells).

    Raises
    ------
    ValueError
        A missing column, ``by`` missing or varying within a treated unit, no treated
        unit, a subgroup cohort with no post-treatment cell, or any error of ``att_gt``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> n = 300
    >>> df = pd.DataFrame({"id": np.repeat(np.arange(n), 5), "year": np.tile(np.arange(2019, 2024), n)})
    >>> df["g"] = np.repeat(rng.choice([0, 2021, 2022], n), 5)
    >>> df["kind"] = np.repeat(rng.choice(["A", "B"], n), 5)
    >>> post = (df["g"] > 0) & (df["year"] >= df["g"])
    >>> df["y"] = rng.normal(0, 1, len(df)) + 2.0 * post * (df["kind"] == "A")
    >>> res = by_group(df, "y", "id", "year", "g", by="kind")
    >>> t = res.tidy("group_by")
    >>> t["term"].tolist()
    ['kind=A', 'kind=B']
    >>> bool(((t["conf_low"] < [2.0, 0.0]) & ([2.0, 0.0] < t["conf_high"])).all())
    True
    >>> res.equality_test.p_value < 0.001
    True
    """
    _check_columns(data, {"outcome": outcome, "unit": unit, "time": time, "cohort": cohort, "by": by,
                          "cluster": cluster})
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    for col in (unit, time, cohort):
        if data[col].isna().any():
            raise ValueError(f"column {col!r} has missing values")
    g_rows = pd.to_numeric(data[cohort], errors="coerce")
    if g_rows.isna().any():
        raise ValueError(f"cohort column {cohort!r} must be numeric with no missing values")
    t_rows = pd.to_numeric(data[time], errors="coerce")
    first, last = float(t_rows.min()), float(t_rows.max())
    treated_rows = (g_rows > first) & (g_rows <= last)
    if not treated_rows.any():
        raise ValueError(f"no unit has a cohort ({cohort!r}) inside the window ({first:g}, {last:g}]: "
                         "nothing is treated")
    tr = data.loc[treated_rows, [unit, by]]
    if tr[by].isna().any():
        bad = tr.loc[tr[by].isna(), unit].iloc[0]
        raise ValueError(f"column {by!r} is missing for treated unit {bad!r}")
    n_lev = tr.groupby(unit)[by].nunique()
    if (n_lev > 1).any():
        raise ValueError(f"column {by!r} varies within treated unit {n_lev.index[n_lev > 1][0]!r}; "
                         "subgroups must be fixed per unit")
    levels = sorted(pd.unique(tr[by]).tolist(), key=str)

    # The common set of units: every unit att_gt would keep (always-treated units dropped).
    always = (g_rows > 0) & (g_rows <= first)
    keep_rows = ~always
    all_units = pd.unique(data.loc[keep_rows, unit])
    unit_ids = np.sort(all_units) if _sortable(all_units) else all_units
    N = len(unit_ids)
    pos_of = pd.Index(unit_ids)
    clusters = None
    n_clusters = N
    if cluster is not None and cluster != unit:
        kept = data.loc[keep_rows]
        clusters = cluster_codes(kept[cluster], cluster, unit_codes=pos_of.get_indexer(kept[unit]), unit_ids=unit_ids)
        n_clusters = int(clusters.max()) + 1
    n_periods = int(pd.Series(t_rows[keep_rows]).nunique())
    f = cluster_factor(n_clusters, check_rule(small_sample))

    g_unit = pd.Series(g_rows.to_numpy(), index=data.index).groupby(data[unit]).first()
    lev_unit = tr.groupby(unit)[by].first()
    psis, ests, cell_rows, rows = [], [], [], []
    covs_list = [] if covariates is None else [covariates] if isinstance(covariates, str) else list(covariates)
    read = list(dict.fromkeys([outcome, unit, time, cohort, *covs_list]))
    # a missing covariate: every column, so att_gt names it with the frame's columns
    needed: list[str] | slice = read if set(read) <= set(data.columns) else slice(None)
    base = {"outcome": outcome, "estimator": ESTIMATOR, "control_group": control_group}
    options = {"by": by, "covariates": covariates, "control_group": control_group, "method": method,
               "cluster": cluster, "alpha": alpha, "aggregation": "simple within subgroup",
               "comparison": "never/not-yet-treated units of every level (shared)",
               "se": "influence function on all units, " + ("G/(G-1) small-sample factor, t(G-1)"
                                                             if small_sample == "cr1_t" else
                                                             "no small-sample factor, normal"),
               "small_sample": small_sample}
    options_json = json.dumps(options, sort_keys=True, default=str)
    for s in levels:
        s_units = lev_unit.index[lev_unit.to_numpy() == s]
        s_cohorts = np.unique(g_unit.loc[s_units].to_numpy())
        att_k: list[float] = []
        pg_k: list[float] = []
        psi_k: list[np.ndarray] = []
        member: list[np.ndarray] = []
        used_units: set = set()
        outside_s = ~data[unit].isin(s_units)  # the level's units: one lookup per level, not per cohort
        for g in s_cohorts:
            other = (g_rows == g) & treated_rows & outside_s
            # only the columns att_gt reads are copied (the whole panel was 1.3 GB per run at national size)
            if control_group == "never":
                sub = data.loc[keep_rows & ~other & ((g_rows == 0) | (g_rows > last) | (g_rows == g)), needed]
            else:
                sub = data.loc[keep_rows & ~other, needed]
            res = att_gt(sub, outcome, unit, time, cohort, covariates=covariates, control_group=control_group,
                         method=method)
            parts = att_gt_parts(res)
            cells = parts.cells
            idx = np.flatnonzero((cells["cohort"].to_numpy() == g) & (cells["year"].to_numpy() >= g))
            if idx.size == 0:
                raise ValueError(f"{by}={s!r}: cohort {g:g} has no post-treatment ATT(g,t) "
                                 "(it is the last cohort and there are no never-treated units)")
            n_run = len(parts.unit_ids)
            gpos = pos_of.get_indexer(parts.unit_ids)
            if (gpos < 0).any():
                raise RuntimeError("internal error: att_gt kept a unit outside the common set")
            inf = np.asarray(parts.influence)[:, idx]
            full = np.zeros((N, idx.size))
            full[gpos] = inf * (N / n_run)
            in_g = np.zeros(N)
            in_g[gpos[np.asarray(parts.details.cohort_of_unit) == g]] = 1.0
            p = in_g.mean()
            used_units.update(parts.unit_ids.tolist())
            for j, c in enumerate(idx):
                att_k.append(float(cells["estimate"].iloc[c]))
                pg_k.append(p)
                psi_k.append(full[:, j])
                member.append(in_g)
                se_c = float(np.sqrt(_cluster_vcov(full[:, [j]], N, clusters)[0, 0] * f))
                cell_rows.append({"level": s, "cohort": g, "year": float(cells["year"].iloc[c]),
                                  "estimate": att_k[-1], "std_error": se_c, "n_units_run": n_run})
        att_a, pg_a = np.array(att_k), np.array(pg_k)
        S = pg_a.sum()
        theta = float(pg_a @ att_a / S)
        psi = (pg_a / S) @ np.vstack(psi_k)
        psi = psi + ((att_a - theta)[:, None] * (np.vstack(member) - pg_a[:, None])).sum(axis=0) / S
        ests.append(theta)
        psis.append(psi)
        n_used = len(used_units)
        rows.append({**base, "aggregation": "group_by", "term": f"{by}={s}", "n_units": n_used,
                     "n_obs": n_used * n_periods,
                     "n_clusters": (len(np.unique(clusters[pos_of.get_indexer(list(used_units))]))
                                    if clusters is not None else n_used)})
    Psi = np.column_stack(psis)
    V = _cluster_vcov(Psi, N, clusters) * f
    est = np.array(ests)
    se = np.sqrt(np.diag(V))
    lo, hi, p = intervals(est, se, alpha, t_df(n_clusters, small_sample))
    for j, r in enumerate(rows):
        r.update({"estimate": est[j], "std_error": se[j], "conf_low": lo[j], "conf_high": hi[j],
                  "p_value": p[j], "band": "pointwise", "options": options_json})
    test = EqualityTest(**equality_test(est, V), levels=[str(s) for s in levels])
    rows.append({**_test_row(base, test, by), "n_units": N, "n_obs": N * n_periods, "n_clusters": n_clusters,
                 "options": options_json})
    labels = [f"{by}={s}" for s in levels]
    return DiDResult(make_tidy(rows), ESTIMATOR, outcome, options, equality_test=test, influence=Psi,
                     vcov=pd.DataFrame(V, index=labels, columns=labels), unit_ids=unit_ids, clusters=clusters,
                     n_clusters=n_clusters, cells=pd.DataFrame(cell_rows))


def _sortable(a: np.ndarray) -> bool:
    try:
        np.sort(a)
    except TypeError:
        return False
    return True


def by_cohort(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: str | Sequence[str] | None = None,
    control_group: str = "notyet",
    method: str = "dr",
    cluster: str | None = None,
    *,
    alpha: float = 0.05,
    small_sample: str = SMALL_SAMPLE,
) -> DiDResult:
    """Cohort (group) ATTs of Callaway-Sant'Anna with a Wald test that they are all equal.

    Parameters
    ----------
    data : pandas.DataFrame
        Balanced long panel. Not modified.
    outcome, unit, time, cohort : str
        As in :func:`~analysis.estimators.callaway_santanna.att_gt`.
    covariates : str or sequence of str, optional
        Covariates for conditional parallel trends.
    control_group : {"notyet", "never"}, default "notyet"
        Comparison group.
    method : {"dr", "ipw", "reg"}, default "dr"
        2x2 estimator.
    cluster : str, optional
        Cluster column for the SEs and the joint covariance.
    alpha : float, default 0.05
        One minus the confidence level.
    small_sample : {"cr1_t", "asymptotic"}, default "cr1_t"
        Small-sample rule (:mod:`analysis.inference.small_sample`).

    Returns
    -------
    DiDResult
        The rows of ``aggregate(att_gt(...), kind="group")`` (one per cohort, term
        ``"g=2023"``, plus the cohort-size weighted overall row) and an
        ``"equality_test"`` row (``estimate`` = Wald statistic). Also
        ``equality_test``, ``vcov`` (cohort rows), ``influence`` and ``att_gt``.

    Raises
    ------
    ValueError
        As ``att_gt``.

    Notes
    -----
    ``theta(g)`` is the mean of ``ATT(g, t)`` over the cohort's post years, so cohorts
    observed for different numbers of years average over different exposures: with
    effects that grow with exposure an early cohort has a larger ``theta(g)`` even if
    its effect profile is the same. The joint covariance is that of
    :func:`~analysis.estimators.callaway_santanna.aggregate` (same units, clustered if
    asked).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    res = att_gt(data, outcome, unit, time, cohort, covariates=covariates, control_group=control_group,
                 method=method, cluster=cluster, alpha=alpha, small_sample=small_sample)
    agg = aggregate(res, "group")
    t = agg.tidy()
    is_g = t["cohort"].notna().to_numpy()
    V = np.asarray(agg.vcov)[np.ix_(is_g, is_g)]
    est = t.loc[is_g, "estimate"].to_numpy(float)
    test = EqualityTest(**equality_test(est, V), levels=[int(g) for g in t.loc[is_g, "cohort"]])
    first = t.iloc[0]
    row = {**_test_row({"outcome": outcome, "estimator": ESTIMATOR, "control_group": control_group}, test,
                       "cohorts"),
           "n_obs": first["n_obs"], "n_units": first["n_units"], "n_clusters": first["n_clusters"],
           "options": first["options"]}
    table = make_tidy(pd.concat([t, make_tidy([row])], ignore_index=True))
    labels = t.loc[is_g, "term"].tolist()
    return DiDResult(table, ESTIMATOR, outcome, agg.options, equality_test=test,
                     vcov=pd.DataFrame(V, index=labels, columns=labels),
                     influence=np.asarray(agg.influence)[:, is_g], att_gt=res)


def baseline_split(
    data: pd.DataFrame,
    variable: str,
    year: int,
    quantile: float = 0.5,
    *,
    unit: str = "village_code",
    time: str = "year",
    labels: tuple[str, str] = ("low", "high"),
) -> pd.Series:
    """Label every unit by whether its baseline value is below a quantile, for use as ``by``.

    Parameters
    ----------
    data : pandas.DataFrame
        Long panel. Not modified.
    variable : str
        Numeric column measured in the baseline year (e.g. ``income_per_capita``).
    year : int
        Baseline year (before any treatment, e.g. 2018).
    quantile : float, default 0.5
        Cut-off quantile of the units' baseline values (0.5 = the median).
    unit, time : str
        Unit and period columns.
    labels : (str, str), default ("low", "high")
        Label of units strictly below the cut-off and of the others; e.g.
        ``("weak", "strong")`` for income.

    Returns
    -------
    pandas.Series
        On ``data``'s index, named ``"<variable>_<year>_split"``: the unit's label on each
        of its rows; missing for units without a baseline value.

    Raises
    ------
    ValueError
        A missing or non-numeric column, a quantile outside (0, 1), a baseline year
        absent from the data, or a unit with two rows in that year.

    Examples
    --------
    >>> df = pd.DataFrame({"village_code": list("aabbcc"), "year": [2018, 2019] * 3,
    ...                    "income": [1.0, 5.0, 2.0, 0.0, 3.0, 3.0]})
    >>> baseline_split(df, "income", 2018, labels=("weak", "strong")).tolist()
    ['weak', 'weak', 'strong', 'strong', 'strong', 'strong']
    """
    _check_columns(data, {"variable": variable, "unit": unit, "time": time})
    s = data[variable]
    if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        raise ValueError(f"variable column {variable!r} must be numeric, got dtype {s.dtype}")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    if len(labels) != 2:
        raise ValueError(f"labels must be two strings (below, at or above), got {labels!r}")
    base = data.loc[data[time] == year, [unit, variable]]
    if base.empty:
        raise ValueError(f"baseline year {year!r} does not occur in column {time!r}")
    if base[unit].duplicated().any():
        raise ValueError(f"unit {base.loc[base[unit].duplicated(), unit].iloc[0]!r} has more than one row in "
                         f"year {year!r}")
    vals = base.set_index(unit)[variable].astype("float64").dropna()
    if vals.empty:
        raise ValueError(f"variable {variable!r} is missing for every unit in year {year!r}")
    cut = float(vals.quantile(quantile))
    lab = pd.Series(np.where(vals.to_numpy() < cut, labels[0], labels[1]), index=vals.index, dtype="object")
    out = data[unit].map(lab)
    out = out.astype("object").where(out.notna(), None)
    out.name = f"{variable}_{year}_split"
    return out
