r"""The specification curve's joint test under the null (Simonsohn, Simmons & Nelson 2020).

The question: would a curve as strong as the observed one arise if the programme had no effect,
given how dependent the specifications are? Shares of significant specifications have no known
null distribution (the specifications reuse the same villages), so it is made by resampling:

1. **Impose the null.** For each specification :math:`s`, remove its own estimated effect
   :math:`\hat b_s` from the outcome of treated village-years: :math:`y^*_{it} = y_{it} - \hat b_s
   D_{it}` (:math:`D_{it}`: treated, from the cohort year on, under the specification's own timing
   rule and window). On these data each specification's estimand is zero (exactly so when the
   effect is the same in every treated village-year; otherwise the null is "no average effect").
2. **Resample clusters.** Draw the townships with replacement (one draw is shared by every
   specification and outcome, as the curve's specifications share their villages); a township drawn
   twice enters as two townships, its villages as distinct villages.
3. **Re-estimate the curve** on each draw: every specification on its own null data.
4. **Compare.** For each outcome, the two-sided statistics of the observed curve
   (:func:`two_sided_statistics`: the absolute median estimate, and the share of specifications
   significant at 5% in the curve's dominant direction, the larger of the shares significantly above
   and below zero) against the same statistics of the draws:
   :math:`p = (1 + \#\{\text{draws at least as extreme}\}) / (1 + B)`. Each draw's statistics are
   computed the way the observed ones are, direction included, so a direction seen in the data is
   not then tested one-sidedly.

Each draw is one seeded task of :mod:`analysis.grid.engine` (seeds spawned from one
``SeedSequence(seed)``), so the p-values do not depend on the number of workers.

Size: measured on 100 cities simulated with no effect (``bench/size_null_curve.py``: income, the 12
Callaway-Sant'Anna specifications of notebook 07's test, 19 draws; per-city p-values in
``data/montecarlo/null_curve_size.csv``), it rejects at 5% in 9.0% (median) and 10.0% (share
significant) of the cities (Monte Carlo SE 2.9 and 3.0 points): still above its level, so the brief
does not cite it. The first version compared the median and the share significant *in the headline's
direction* (taken from the data) with the draws' statistics in that same fixed direction, a one-sided
test in a direction chosen after seeing the data: on the same draws it rejects 16.0% and 18.0%.

Reference: Simonsohn, U., Simmons, J. P. & Nelson, L. D. (2020). Specification curve analysis.
*Nature Human Behaviour* 4, 1208-1214 (the "inferential specification curve", section 3).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.grid.specification import GridData, GridPoint, prepared_variant

__all__ = ["DRAW_COLUMNS", "NULL_COLUMNS", "NullData", "NullDraw", "curve_statistics", "null_draw", "null_tasks",
           "null_test", "two_sided_statistics"]

NULL_COLUMNS: tuple[str, ...] = ("outcome", "specifications", "draws", "median", "share_significant",
                                 "p_median", "p_share_significant")
"""Columns of :func:`null_test`: the observed curve's median (signed) and share significant in its dominant
direction (:func:`two_sided_statistics`), and the two-sided p-values."""

DRAW_COLUMNS: tuple[str, ...] = ("outcome", "draw", "median", "share_positive", "share_negative")
"""Columns of :func:`null_test`'s draws: each draw's median (signed) and the shares of specifications
significantly above and below zero."""


def curve_statistics(estimate: np.ndarray, conf_low: np.ndarray, conf_high: np.ndarray,
                     direction: float) -> tuple[float, float]:
    """Return the curve's two statistics in a given direction (the first version's one-sided test).

    :func:`null_test` uses :func:`two_sided_statistics`; ``bench/size_null_curve.py`` measures this
    one-sided version on the same draws for comparison.

    Parameters
    ----------
    estimate, conf_low, conf_high : numpy.ndarray
        The specifications' estimates and 95% intervals (missing estimates are left out).
    direction : float
        The headline estimate's sign (+1 or -1).

    Returns
    -------
    (float, float)
        ``direction * median(estimate)`` and the share of specifications whose interval excludes
        zero on the headline's side.

    Examples
    --------
    >>> curve_statistics(np.array([1.0, 2.0, -1.0]), np.array([0.5, -1.0, -2.0]), np.array([2.0, 3.0, 0.5]), 1.0)
    (1.0, 0.3333333333333333)
    """
    ok = np.isfinite(estimate)
    if not ok.any():
        return float("nan"), float("nan")
    e, lo, hi = estimate[ok], conf_low[ok], conf_high[ok]
    sig = (lo > 0) if direction > 0 else (hi < 0)
    return float(direction * np.median(e)), float(np.mean(sig))


def _shares(conf_low: np.ndarray, conf_high: np.ndarray, ok: np.ndarray) -> tuple[float, float]:
    return float(np.mean(conf_low[ok] > 0)), float(np.mean(conf_high[ok] < 0))


def two_sided_statistics(estimate: np.ndarray, conf_low: np.ndarray,
                         conf_high: np.ndarray) -> tuple[float, float, float, float]:
    """Return the curve's statistics without a direction given: its median and its significant shares.

    Parameters
    ----------
    estimate, conf_low, conf_high : numpy.ndarray
        The specifications' estimates and 95% intervals (missing estimates are left out).

    Returns
    -------
    (float, float, float, float)
        The median estimate (signed), the shares of specifications whose interval lies above zero
        and below zero, and the test's share statistic: the larger of the two (the share significant
        in the curve's dominant direction). The median's test statistic is its absolute value.

    Examples
    --------
    >>> two_sided_statistics(np.array([1.0, 2.0, -1.0]), np.array([0.5, -1.0, -2.0]), np.array([2.0, 3.0, -0.5]))
    (1.0, 0.3333333333333333, 0.3333333333333333, 0.3333333333333333)
    """
    ok = np.isfinite(estimate)
    if not ok.any():
        return float("nan"), float("nan"), float("nan"), float("nan")
    pos, neg = _shares(conf_low, conf_high, ok)
    return float(np.median(estimate[ok])), pos, neg, max(pos, neg)


@dataclass(frozen=True)
class NullData:
    """What every draw reads: the grid's data, the points and their observed estimates.

    Attributes
    ----------
    grid : GridData
        The data.
    points : tuple of GridPoint
        The specifications of the curve(s) (any outcomes).
    effects : dict
        Point name -> its observed estimate (removed to impose the null).
    """

    grid: GridData = field(repr=False)
    points: tuple[GridPoint, ...]
    effects: dict[str, float] = field(repr=False)


@dataclass(frozen=True)
class NullDraw:
    """One draw of the null distribution: its number and seed."""

    index: int
    seed: int


def null_tasks(draws: int, seed: int) -> list[NullDraw]:
    """List the draws, each seeded from ``SeedSequence(seed)``.

    Parameters
    ----------
    draws : int
        Number of draws (>= 1).
    seed : int
        The study seed.

    Returns
    -------
    list of NullDraw
        One per draw.

    Raises
    ------
    ValueError
        For fewer than one draw.
    """
    if isinstance(draws, bool) or int(draws) < 1:
        raise ValueError(f"null draws must be at least 1, got {draws!r}")
    kids = np.random.SeedSequence([int(seed), 7]).spawn(int(draws))
    return [NullDraw(i, int(k.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))) for i, k in enumerate(kids)]


def _copy_codes(values: pd.Series, idx: np.ndarray, copy: np.ndarray, n_copies: int) -> np.ndarray | None:
    """Return integer codes of ``f"{values[idx]}~{copy}"`` that group and sort exactly as those strings do.

    The strings took most of a national draw (4.5 million of them made, then factorised by every
    estimator). ``"v~k"`` strings order by ``v + "~"`` first (no code holds ``"~"``, so one such prefix
    is never the start of another) and then by ``str(k)``: the code is the rank of the first times
    ``n_copies`` plus the rank of the second. None if a code holds ``"~"`` (the strings are made instead).
    """
    codes, uniques = pd.factorize(values)
    labels = pd.Index(uniques).astype(str)
    if labels.str.contains("~", regex=False).any():
        return None
    rank = np.empty(len(labels), dtype=np.int64)
    rank[np.argsort(np.asarray(labels + "~", dtype=str), kind="stable")] = np.arange(len(labels))
    rank_copy = np.empty(n_copies, dtype=np.int64)
    rank_copy[np.argsort(np.arange(n_copies).astype(str), kind="stable")] = np.arange(n_copies)
    return rank[codes[idx]] * n_copies + rank_copy[copy]


def _resampled(panel: pd.DataFrame, pick: np.ndarray, townships: np.ndarray) -> pd.DataFrame:
    """Return the panel of the drawn townships; the k-th drawn township and its villages are new ones.

    Their codes are integers that group and sort as ``"{code}~{k}"`` would (:func:`_copy_codes`).
    """
    codes, labels = pd.factorize(panel["township_code"].astype(str), sort=True)  # integer codes sort as the text
    order = np.argsort(codes, kind="mergesort")
    wanted = pd.Index(labels).get_indexer(townships)  # -1 (no row) for a township the panel lacks
    starts = np.searchsorted(codes[order], wanted, side="left")
    ends = np.where(wanted >= 0, np.searchsorted(codes[order], wanted, side="right"), starts)
    rows = [order[starts[t]:ends[t]] for t in pick]
    idx = np.concatenate(rows)
    copy = np.repeat(np.arange(len(pick)), [len(r) for r in rows])
    out = panel.iloc[idx].reset_index(drop=True)
    for col in ("village_code", "township_code"):
        new = _copy_codes(panel[col], idx, copy, len(pick))
        out[col] = new if new is not None else out[col].astype(str).to_numpy() + "~" + copy.astype(str)
    return out


def null_draw(task: NullDraw, data: NullData) -> pd.DataFrame:
    """Re-estimate every specification on one cluster-resampled draw of its own null data (an engine task).

    Parameters
    ----------
    task : NullDraw
        The draw.
    data : NullData
        The points and their observed estimates.

    Returns
    -------
    pandas.DataFrame
        ``draw, name, outcome, estimate, conf_low, conf_high`` (one row per point; a point that
        cannot be estimated on the draw has missing values).
    """
    from analysis.core.panel import covariate_columns
    from analysis.estimate import estimate
    from analysis.estimators.callaway_santanna import aggregate, att_gt
    from analysis.grid.specification import COVARIATE_SETS

    townships = np.array(sorted(data.grid.panel["township_code"].astype(str).unique()))
    pick = np.random.default_rng(task.seed).integers(0, len(townships), len(townships))
    variants: dict[tuple[float, str], pd.DataFrame] = {}
    covs_cache: dict[tuple[float, str, str], tuple[pd.DataFrame, list[str]]] = {}
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in data.points:
            vk = (p.min_months, p.window)
            if vk not in variants:
                # the variant is the same in every draw: built once per worker (specification.prepared_variant)
                panel = prepared_variant(data.grid, p.min_months, p.window, "none")[0]
                variants[vk] = _resampled(panel, pick, townships)
            base = variants[vk]
            b = data.effects.get(p.name, np.nan)
            est = lo = hi = np.nan
            if np.isfinite(b):
                spec = p.spec
                try:
                    if spec.estimator == "cs":
                        ck = (p.min_months, p.window, p.covariates)
                        if ck not in covs_cache:
                            covs_cache[ck] = covariate_columns(base, list(COVARIATE_SETS[p.covariates]))
                        with_covs, covs = covs_cache[ck]
                        # a new outcome column on the shared frame (copy-on-write: no copy of the rest)
                        d = with_covs.assign(**{p.outcome: with_covs[p.outcome] - b * with_covs["treated"]})
                        tidy = aggregate(att_gt(d, p.outcome, **spec.cs_arguments(covs)), "simple").tidy()
                    else:
                        d = base.assign(**{p.outcome: base[p.outcome] - b * base["treated"]})
                        tidy = estimate(d, p.outcome, spec.estimator, control_group=spec.control_group,
                                        covariates=spec.covariates, cluster=spec.cluster).tidy()
                    r = tidy[tidy["aggregation"] == spec.aggregation].iloc[0]
                    est, lo, hi = float(r["estimate"]), float(r["conf_low"]), float(r["conf_high"])
                except (ValueError, np.linalg.LinAlgError):
                    pass
            rows.append({"draw": task.index, "name": p.name, "outcome": p.outcome, "estimate": est,
                         "conf_low": lo, "conf_high": hi})
    return pd.DataFrame(rows, columns=["draw", "name", "outcome", "estimate", "conf_low", "conf_high"])


def null_test(
    grid: pd.DataFrame,
    data: GridData,
    points: Sequence[GridPoint],
    draws: int,
    seed: int,
    results_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    serial: bool = False,
    progress: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test each outcome's specification curve against its null distribution.

    Parameters
    ----------
    grid : pandas.DataFrame
        Observed results (:func:`analysis.grid.specification.run_grid`), with a headline point per outcome.
    data : GridData
        The data the grid was estimated on.
    points : sequence of GridPoint
        The specifications re-estimated on each draw (the curve, or a stated subset of it).
    draws : int
        Number of draws.
    seed : int
        The study seed (each draw's seed is spawned from it).
    results_dir : str or path-like, optional
        One Parquet file per finished draw (a rerun resumes).
    workers, scheduler, serial, progress
        As in :func:`analysis.grid.engine.run_tasks`.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The test per outcome (:data:`NULL_COLUMNS`; the statistics are over ``points``; two-sided
        p-values) and the draws' statistics (:data:`DRAW_COLUMNS`).
    """
    from analysis.grid.engine import run_tasks

    effects = dict(zip(grid["name"], grid["estimate"].astype(float), strict=True))
    nd = NullData(data, tuple(points), effects)
    tasks = null_tasks(draws, seed)
    fingerprint = {"kind": "specification curve null", "data": data.token, "seed": int(seed),
                   "points": sorted(p.name for p in points),
                   "effects": {p.name: effects.get(p.name) for p in points}}
    frames = run_tasks(tasks, null_draw, name=lambda t: f"draw{t.index:05d}", shared=nd, results_dir=results_dir,
                       fingerprint=fingerprint, workers=workers, scheduler=scheduler, serial=serial,
                       progress=progress, description="null")
    sims = pd.concat(frames, ignore_index=True).sort_values(["draw", "name"], kind="mergesort")
    names = {p.name for p in points}
    tests, dist = [], []
    for outcome, g in grid[grid["name"].isin(names)].groupby("outcome", sort=False):
        med, _, _, share = two_sided_statistics(g["estimate"].to_numpy(float), g["conf_low"].to_numpy(float),
                                                g["conf_high"].to_numpy(float))
        s = sims[sims["outcome"] == outcome]
        stats: list[tuple[float, float]] = []
        for d, gd in s.groupby("draw", sort=True):
            m, pos, neg, sh = two_sided_statistics(gd["estimate"].to_numpy(float), gd["conf_low"].to_numpy(float),
                                                   gd["conf_high"].to_numpy(float))
            stats.append((abs(m), sh))
            dist.append({"outcome": outcome, "draw": int(d), "median": m, "share_positive": pos,
                         "share_negative": neg})
        arr = np.array(stats, dtype=float).reshape(-1, 2)
        B = len(arr)
        tests.append({"outcome": outcome, "specifications": len(g), "draws": B, "median": med,
                      "share_significant": share,
                      "p_median": float((1 + np.sum(arr[:, 0] >= abs(med))) / (1 + B)),
                      "p_share_significant": float((1 + np.sum(arr[:, 1] >= share)) / (1 + B))})
    return pd.DataFrame(tests, columns=list(NULL_COLUMNS)), pd.DataFrame(dist, columns=list(DRAW_COLUMNS))


def describe_draws(draws: int) -> dict[str, Any]:
    """Return the smallest p-value ``draws`` can give (for a reader: ``1 / (1 + B)``).

    Parameters
    ----------
    draws : int
        Number of draws.

    Returns
    -------
    dict
        ``draws`` and ``smallest_p``.
    """
    return {"draws": int(draws), "smallest_p": 1.0 / (1 + int(draws))}
