r"""Randomisation inference that re-draws which villages are treated, and when.

Null hypothesis and test
------------------------
The **sharp null** of no effect for any village in any year: :math:`Y_{it}(g) = Y_{it}(0)`
for every village ``i``, year ``t`` and cohort ``g``. Under it the observed outcomes
would have been the same whatever the assignment of cohorts, so the distribution of any
statistic under re-drawn assignments is known exactly. The test re-draws the
assignment by **permuting the vector of cohorts** (first treated year, 0 = never
treated) among the eligible villages, within strata if given, which keeps the number of
villages of every cohort (per stratum); recomputes the statistic :math:`T_b` for each of
``B`` draws; and reports

.. math:: p = \frac{1 + \#\{b : |T_b| \ge |T_{obs}|\}}{B + 1},

which is a valid (finite-sample, exact up to the Monte Carlo draw) p-value when the
permutation scheme is the one that actually assigned the cohorts (Fisher 1935; Imbens &
Rubin 2015, ch. 5; for staggered timing, Roth & Sant'Anna 2023 and the "design-based"
view of Athey & Imbens 2022).

What is permuted (the default)
------------------------------
* ``eligible=None``: every village takes part; villages outside ``eligible`` keep their
  observed cohort (e.g. restrict to villages that could have received a secretary).
* ``strata=None`` (**the default**): complete randomisation over all eligible villages,
  i.e. any village is as likely as any other to have been in the pilot cohort 2023.
  That is *not* how the city assigned secretaries: the pilot was one district. Pass
  ``strata="county_code"`` to permute within county, so the pilot district keeps its
  cohort pattern (only it has cohort 2023) and every other district keeps its number of
  2024 and never-treated villages. The study's analyses use the county strata; the
  default is kept simple so that the function makes no assumption about the columns.
* Targeting was not random even within counties (poor, disorderly villages were chosen
  first; see :mod:`analysis.data.synthetic`), so the permutation distribution is a
  benchmark for "as good as random within strata", not the true design; a small p-value
  says the observed statistic is extreme *relative to random assignment*, which mixes
  effects with selection if selection is related to outcome *changes*.

Statistics
----------
* ``"cs_simple"`` (default): the Callaway & Sant'Anna (2021) simple ATT, unconditional,
  not-yet-treated comparison group (``control_group="notyet"``; ``"never"`` also
  available), varying base period, no anticipation -- exactly
  ``aggregate(att_gt(..., control_group=...), "simple")``, but computed from the cohort
  sums of the outcome: for each draw, :math:`S_{ct} = \sum_{i: g_i = c} Y_{it}` for the few
  cohort values ``c``, then every post-treatment ATT(g,t) is a difference of cohort-mean
  changes and the simple ATT their cohort-size weighted mean. This needs a balanced
  panel with never-treated units (``tests/test_randomisation.py`` checks the equality with
  ``att_gt``/``aggregate`` to 1e-10).
* ``"twfe"``: the static TWFE coefficient (balanced panel). Only the numerator
  :math:`\sum_{it} D_{it}\ddot y_{it}` changes with the assignment (:math:`\ddot y` the
  two-way demeaned outcome, fixed); in a balanced panel the denominator depends only on
  the cohort counts, which permutation keeps.
* a callable ``statistic(frame) -> float``: called with a copy of ``data`` whose
  ``cohort`` column holds the re-drawn cohorts (constant within village). Anything goes
  (covariates, unbalanced panels, other estimators), at the cost of speed; with
  ``n_jobs > 1`` it must be picklable (a module-level function).

Reproducibility and parallel work
---------------------------------
Draw ``b`` belongs to block ``b // BLOCK_SIZE`` (:data:`analysis.inference.multiplier.BLOCK_SIZE`);
block ``j`` uses ``numpy.random.Generator(PCG64(SeedSequence(seed).spawn(n_blocks)[j]))``,
so each block is an independent task: the draws and the p-value are identical whether
the blocks run in one process or are spread over ``n_jobs`` processes
(:mod:`concurrent.futures`).

Caveats
-------
The p-value is for the sharp null (no effect anywhere), not for a zero *average*
effect; it does not account for multiple testing (see :mod:`analysis.inference.multiple`).
With spillovers between villages the sharp null of no effect is still testable, but the
statistic's power depends on them.
"""

from __future__ import annotations

import json
import multiprocessing
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.inference.multiplier import BLOCK_SIZE, block_seeds, n_blocks, task_blocks
from analysis.results import make_tidy

__all__ = [
    "PROPENSITY_BINS",
    "RandomisationResult",
    "cs_simple_att",
    "permute_cohorts",
    "propensity_strata",
    "randomisation_inference",
    "randomisation_inference_outcomes",
]

_BUILTIN = ("cs_simple", "twfe")
_CONTROL_GROUPS = ("notyet", "never")
_TIE_RTOL = 1e-12
#: Upper bound on the memory of one chunk of one-hot assignment matrices.
_MAX_BYTES = 64 * 2**20


PROPENSITY_BINS = 5
"""Propensity-score bins within each county of :func:`propensity_strata` (quintiles)."""


# ----------------------------------------------------------------------------------
# assignments
# ----------------------------------------------------------------------------------
def propensity_strata(panel: pd.DataFrame, within: str = "county_code", bins: int = PROPENSITY_BINS,
                      covariates: Sequence[str] | None = None, outcomes: Sequence[str] = ()) -> pd.Series:
    """Strata of villages with a similar propensity of selection, within ``within``.

    Fits a logit of ever-treated on the baseline covariates
    (:func:`analysis.estimators.propensity.fit_propensity`; by default the headline's covariates
    and no baseline outcomes), ranks the villages of each ``within`` group by their score (ties
    broken by village code) and cuts the ranks into ``bins`` groups of (nearly) equal size.
    Villages the logit could not score (missing baseline data) form one stratum per ``within``
    group. Permuting cohorts within these strata keeps the roll-out's design *and* its
    targeting: a village is re-assigned only the cohort of another village of its county with
    a similar propensity, so the permutation null is "assignment as good as random among
    villages of the same county and propensity bin" instead of "as good as random within
    county", which the city's deliberate targeting contradicts (Rosenbaum 1984, "Conditional
    permutation tests and the propensity score in observational studies", JASA 79, 565-574).
    It is the design counterpart of the headline's identifying assumption, parallel trends
    given the covariates.

    Why the covariates only: over 200 simulated cities with no effect anywhere
    (:mod:`analysis.grid.checks`, scenario ``no_effect``, 199 draws), the test on income rejected
    33% at 5% within county alone, 5.0% within county x quintile of this score, and 0% with the
    targeting stage's score, which also holds the baseline outcomes: within a bin of that
    score, the chosen villages are those whose baseline income was low by chance, and their
    income then rises back faster than their bin's (regression to the mean), so the observed
    statistic sits away from the centre of its permutation distribution.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (:func:`analysis.core.panel.load_analysis_panel`).
    within : str, default "county_code"
        Column constant per village within which the bins are formed.
    bins : int, default :data:`PROPENSITY_BINS`
        Number of propensity bins per group (at least 1).
    covariates : sequence of str, optional
        Baseline covariates of the logit (default
        :data:`analysis.core.spec.DEFAULT_COVARIATES`, the headline's).
    outcomes : sequence of str, default ()
        Baseline outcomes added to the logit (see above for why none by default).

    Returns
    -------
    pandas.Series
        Stratum label (``"<within value>:<bin>"``, bin ``na`` for unscored villages), indexed by
        village code, named ``propensity_stratum``.
    """
    from analysis.core.spec import DEFAULT_COVARIATES, UNIT
    from analysis.estimators.propensity import fit_propensity, village_groups

    if not isinstance(bins, int | np.integer) or isinstance(bins, bool) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    scores = fit_propensity(panel, DEFAULT_COVARIATES if covariates is None else covariates, outcomes).scores
    villages = village_groups(panel)
    if within not in villages.columns:
        villages = villages.merge(panel[[UNIT, within]].drop_duplicates(UNIT), on=UNIT, how="left")
    v = villages[[UNIT, within]].merge(scores[[UNIT, "pscore"]], on=UNIT, how="left")
    v = v.sort_values([within, "pscore", UNIT], kind="mergesort", na_position="last")
    rank = v.groupby(within, sort=False).cumcount().to_numpy()
    scored = v["pscore"].notna()
    size = v[scored].groupby(within)[UNIT].transform("size").reindex(v.index).to_numpy()
    label = np.where(scored, np.floor(rank * bins / np.where(scored, size, 1)).astype("int64").astype(str), "na")
    out = pd.Series(v[within].astype(str).to_numpy() + ":" + label, index=v[UNIT].to_numpy(),
                    name="propensity_stratum")
    return out.sort_index()


def _block_assignments(cohort_unit, elig_idx, strata_elig, seed_child, m):
    """Return ``(m, n)`` cohorts for one block: permuted within strata among eligible units."""
    rng = np.random.Generator(np.random.PCG64(seed_child))
    base = np.argsort(strata_elig, kind="stable")
    c_elig = cohort_unit[elig_idx]
    keys = strata_elig[None, :] + rng.random((m, elig_idx.size))
    order = np.argsort(keys, axis=1, kind="stable")
    out = np.repeat(cohort_unit[None, :], m, axis=0)
    out[:, elig_idx[base]] = c_elig[order]
    return out


def permute_cohorts(
    cohort: np.ndarray,
    eligible: np.ndarray | None = None,
    strata: np.ndarray | None = None,
    B: int = 999,
    seed=None,
    blocks: range | None = None,
) -> np.ndarray:
    """Draw re-assignments of cohorts: permutations within strata among eligible units.

    Parameters
    ----------
    cohort : array_like
        ``(n,)`` cohort of every unit (0 = never treated).
    eligible : array_like of bool, optional
        ``(n,)`` units whose cohort is permuted; the others keep theirs. Default all.
    strata : array_like, optional
        ``(n,)`` stratum of every unit; cohorts are permuted only within a stratum.
    B : int, default 999
        Total number of draws.
    seed : int, numpy.random.SeedSequence or None
        Root seed; block ``j`` uses ``SeedSequence(seed).spawn(n_blocks(B))[j]``.
    blocks : range, optional
        Blocks to draw (see :func:`analysis.inference.multiplier.task_blocks`); default all.

    Returns
    -------
    numpy.ndarray
        ``(b, n)`` re-drawn cohorts, in block order. In every row, the number of units of
        each cohort within each stratum (among eligible units) equals the observed one.

    Raises
    ------
    ValueError
        If the arrays differ in length or ``B`` is not positive.

    Examples
    --------
    >>> draws = permute_cohorts([0, 0, 2023, 2024], strata=[1, 1, 2, 2], B=5, seed=1)
    >>> draws.shape, bool((np.sort(draws[:, :2], axis=1) == 0).all())
    ((5, 4), True)
    """
    c = np.asarray(cohort)
    n = c.size
    B = _check_B(B)
    elig = np.ones(n, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    st = np.zeros(n) if strata is None else pd.factorize(np.asarray(strata), sort=True)[0].astype(float)
    if elig.size != n or st.size != n:
        raise ValueError(f"cohort ({n}), eligible ({elig.size}) and strata ({st.size}) must have the same length")
    elig_idx = np.flatnonzero(elig)
    _, children = block_seeds(seed, B)
    blocks = range(len(children)) if blocks is None else blocks
    out = []
    for j in blocks:
        if not 0 <= j < len(children):
            raise ValueError(f"block {j} is outside 0..{len(children) - 1} for {B} draws")
        m = min(BLOCK_SIZE, B - j * BLOCK_SIZE)
        out.append(_block_assignments(c, elig_idx, st[elig_idx], children[j], m))
    return np.vstack(out) if out else np.empty((0, n), dtype=c.dtype)


# ----------------------------------------------------------------------------------
# fast statistics from cohort sums
# ----------------------------------------------------------------------------------
@dataclass
class _FastStat:
    """Cohort-sum representation of a built-in statistic on a balanced panel."""

    kind: str
    values: np.ndarray  # (C,) distinct cohort values (after recoding), sorted
    M: np.ndarray  # (n, T) matrix whose cohort sums are needed (Y, or two-way demeaned Y)
    periods: np.ndarray
    control_group: str = "notyet"
    twfe_den: float = 1.0

    def from_codes(self, codes: np.ndarray) -> np.ndarray:
        """Statistic for each row of ``(m, n)`` integer cohort codes (indices into ``values``)."""
        m, n = codes.shape
        C, T = len(self.values), len(self.periods)
        S = np.empty((m, C, T))
        # Cohort sums by np.bincount, which adds the units of a row strictly in unit order.
        # A BLAS matrix product here would pick its kernel and blocking from the number of
        # rows (draws) in the call and from the processor, so the same draw summed in a task
        # of 150 draws and in one of 300 differed by ~1e-11: the draws would depend on the
        # worker count. With bincount every draw is summed the same way whatever the task.
        rows = max(1, _MAX_BYTES // max(1, 16 * n))
        for lo in range(0, m, rows):
            hi = min(m, lo + rows)
            keys = (np.arange(hi - lo)[:, None] * C + codes[lo:hi]).ravel()
            for t in range(T):
                w = np.broadcast_to(self.M[:, t], (hi - lo, n)).ravel()
                S[lo:hi, :, t] = np.bincount(keys, weights=w, minlength=(hi - lo) * C).reshape(hi - lo, C)
        counts = np.array([(codes[0] == c).sum() for c in range(C)], dtype=float)
        if self.kind == "twfe":
            d = self.treatment_pattern()
            return np.einsum("mct,ct->m", S, d) / self.twfe_den
        return self._cs_simple(S, counts)

    def treatment_pattern(self) -> np.ndarray:
        """Return the (C, T) 0/1 treatment indicator of each cohort value in each period."""
        v = self.values[:, None]
        return ((v > 0) & (self.periods[None, :] >= v)).astype(float)

    def _cs_simple(self, S: np.ndarray, counts: np.ndarray) -> np.ndarray:
        per, vals = self.periods, self.values
        glist = vals[(vals > 0) & (vals > per[0])]
        num = np.zeros(S.shape[0])
        den = 0.0
        for g in glist:
            gi = int(np.searchsorted(vals, g))
            b = int(np.flatnonzero(per < g)[-1])
            for ti in np.flatnonzero(per >= g):
                t = per[ti]
                if self.control_group == "never":
                    ctrl = vals == 0
                else:
                    ctrl = (vals == 0) | ((vals > t) & (vals != g))
                n_c = counts[ctrl].sum()
                if n_c == 0:
                    raise ValueError(
                        f"cohort {g:g} has no comparison units in period {t:g} "
                        f"(control_group={self.control_group!r})"
                    )
                dt = (S[:, gi, ti] - S[:, gi, b]) / counts[gi]
                dc = (S[:, ctrl, ti] - S[:, ctrl, b]).sum(axis=1) / n_c
                num += counts[gi] * (dt - dc)
                den += counts[gi]
        return num / den


def _balanced_matrix(frame: pd.DataFrame, uc: np.ndarray, n: int, outcome: str, time: str):
    """Return ``(Y (n, T), periods)`` for a balanced panel, or raise."""
    y = frame[outcome]
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        raise ValueError(f"outcome column {outcome!r} must be numeric, got dtype {y.dtype}")
    yv = y.to_numpy(dtype=float, na_value=np.nan)
    if not np.all(np.isfinite(yv)):
        raise ValueError(f"outcome column {outcome!r} has missing or infinite values")
    tc, periods = pd.factorize(frame[time].to_numpy(), sort=True)
    T = len(periods)
    if T < 2:
        raise ValueError(f"need at least two periods in column {time!r}, found {T}")
    key = uc.astype(np.int64) * T + tc
    cnt = np.bincount(key, minlength=n * T)
    if cnt.max() > 1:
        raise ValueError("each (unit, time) pair must appear once in the data")
    if len(yv) != n * T:
        raise ValueError(
            f"the built-in statistics need a balanced panel ({n} units x {T} periods = {n * T} rows, "
            f"found {len(yv)}); pass a callable statistic (e.g. att_gt with allow_unbalanced=True)"
        )
    Y = np.empty((n, T))
    Y[uc, tc] = yv
    return Y, np.asarray(periods, dtype=float)


def _fast_stat(kind, Y, periods, values, codes_obs, control_group) -> _FastStat:
    if kind == "cs_simple":
        if not (values == 0).any():
            raise ValueError(
                "the fast 'cs_simple' statistic needs never-treated units (cohort 0); pass a "
                "callable statistic instead"
            )
        if not ((values > 0) & (values > periods[0])).any():
            raise ValueError("no treated cohort has a pre-treatment period")
        return _FastStat("cs_simple", values, Y, periods, control_group)
    n, T = Y.shape
    yd = Y - Y.mean(axis=1, keepdims=True) - Y.mean(axis=0, keepdims=True) + Y.mean()
    fs = _FastStat("twfe", values, yd, periods)
    counts = np.bincount(codes_obs, minlength=len(values)).astype(float)
    d = fs.treatment_pattern()  # (C, T)
    sum_d = counts @ d.sum(axis=1)
    unit_part = counts @ (d.sum(axis=1) ** 2) / T
    dbar_t = counts @ d / n
    den = sum_d - unit_part - n * np.sum(dbar_t**2) + n * T * (sum_d / (n * T)) ** 2
    if den <= 1e-12 * max(1.0, sum_d):
        raise ValueError("the treatment indicator is collinear with the unit and year fixed effects")
    fs.twfe_den = float(den)
    return fs


def cs_simple_att(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    control_group: str = "notyet",
) -> float:
    """Callaway-Sant'Anna simple ATT from cohort means (fast, no covariates, balanced panel).

    Equals ``aggregate(att_gt(data, outcome, unit, time, cohort,
    control_group=control_group), "simple")`` (unconditional, varying base period, no
    anticipation): the cohort-size weighted mean of the post-treatment ATT(g,t), each a
    difference between the mean outcome change of cohort ``g`` from ``g - 1`` to ``t`` and
    that of the comparison group. Cohorts after the last period count as never treated
    and cohorts treated in the first period are left out, as in ``att_gt``.

    Parameters
    ----------
    data : pandas.DataFrame
        Balanced long panel with never-treated units. Not modified.
    outcome, unit, time, cohort : str
        Column names (cohort 0 = never treated).
    control_group : {"notyet", "never"}, default "notyet"
        Comparison group.

    Returns
    -------
    float
        The simple ATT.

    Raises
    ------
    ValueError
        Missing columns, an unbalanced panel, no never-treated units, or a cohort without
        comparison units.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [1, 1, 2, 2], "t": [1, 2, 1, 2], "g": [2, 2, 0, 0],
    ...                    "y": [0.0, 3.0, 0.0, 1.0]})
    >>> cs_simple_att(df, "y", "id", "t", "g")
    2.0
    """
    prep = _prepare(data, outcome, unit, time, cohort, None, None, "cs_simple", control_group)
    return float(prep["fast"].from_codes(prep["codes"][None, :])[0])


# ----------------------------------------------------------------------------------
# preparation and workers
# ----------------------------------------------------------------------------------
def _check_B(B) -> int:
    if isinstance(B, bool) or not isinstance(B, int | np.integer) or B < 1:
        raise ValueError(f"B must be a positive integer number of draws, got {B!r}")
    return int(B)


def _per_unit(frame: pd.DataFrame, uc: np.ndarray, n: int, col: str, role: str) -> np.ndarray:
    vals = frame[col].to_numpy()
    if pd.isna(frame[col]).any():
        raise ValueError(f"{role} column {col!r} has missing values")
    codes = pd.factorize(vals, sort=True)[0]
    first = np.full(n, -1)
    first[uc] = codes
    if not np.array_equal(first[uc], codes):
        raise ValueError(f"{role} column {col!r} varies within a unit; it must be constant per unit")
    out = np.empty(n, dtype=vals.dtype)
    out[uc] = vals
    return out


def _prepare(data, outcome, unit, time, cohort, eligible, strata, statistic, control_group):
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not (callable(statistic) or statistic in _BUILTIN):
        raise ValueError(f"statistic must be a callable or one of {_BUILTIN}, got {statistic!r}")
    if control_group not in _CONTROL_GROUPS:
        raise ValueError(f"control_group must be one of {_CONTROL_GROUPS}, got {control_group!r}")
    roles = [("outcome", outcome), ("unit", unit), ("time", time), ("cohort", cohort)]
    if eligible is not None:
        roles.append(("eligible", eligible))
    if strata is not None:
        roles.append(("strata", strata))
    for role, col in roles:
        if not isinstance(col, str) or col not in data.columns:
            raise ValueError(f"{role} column {col!r} does not exist in data; available: {list(data.columns)[:20]}")
    if len(data) == 0:
        raise ValueError("data has no rows")
    for role, col in (("unit", unit), ("time", time), ("cohort", cohort)):
        if data[col].isna().any():
            raise ValueError(f"{role} column {col!r} has missing values")
    g = data[cohort]
    if not pd.api.types.is_numeric_dtype(g) or pd.api.types.is_bool_dtype(g):
        raise ValueError(f"cohort column {cohort!r} must be numeric (years, 0 = never treated)")
    if (g < 0).any():
        raise ValueError(f"cohort column {cohort!r} has negative values; use 0 for never treated")
    if not pd.api.types.is_numeric_dtype(data[time]):
        raise ValueError(f"time column {time!r} must be numeric")
    uc, unit_ids = pd.factorize(data[unit].to_numpy(), sort=True)
    n = len(unit_ids)
    cohort_unit = _per_unit(data, uc, n, cohort, "cohort").astype(float)
    elig = None
    if eligible is not None:
        e = data[eligible]
        if not (pd.api.types.is_bool_dtype(e) or set(pd.unique(e.dropna())) <= {0, 1}):
            raise ValueError(f"eligible column {eligible!r} must be boolean (or 0/1)")
        elig = _per_unit(data, uc, n, eligible, "eligible").astype(bool)
        if elig.sum() < 2:
            raise ValueError(f"fewer than two eligible units in {eligible!r}: nothing to permute")
    st = _per_unit(data, uc, n, strata, "strata") if strata is not None else None
    out: dict[str, Any] = {"uc": uc, "unit_ids": unit_ids, "n": n, "cohort_unit": cohort_unit,
                           "eligible": elig, "strata": st}
    if callable(statistic):
        return out
    Y, periods = _balanced_matrix(data, uc, n, outcome, time)
    # as att_gt / prepare_panel: cohorts after the last period are never treated in the window
    recoded = np.where(cohort_unit > periods[-1], 0.0, cohort_unit)
    values = np.unique(recoded)
    codes = np.searchsorted(values, recoded)
    out.update(values=values, codes=codes, recoded=recoded,
               fast=_fast_stat(statistic, Y, periods, values, codes, control_group))
    return out


def _run_blocks(payload: dict, blocks: range) -> np.ndarray:
    """Statistic for every draw of the given blocks (a worker task), one block of draws at a time.

    Drawing every block of a task at once made a (draws x units) matrix of cohorts and one of their
    codes: 4 GB each for 999 draws at national size. Each draw's statistic depends on its own row
    only, so the values are the same block by block.
    """
    pieces = [_run_block(payload, range(j, j + 1)) for j in blocks]
    if payload.get("fasts") is not None:
        k = len(payload["fasts"])
        return np.concatenate(pieces, axis=1) if pieces else np.empty((k, 0))
    return np.concatenate(pieces) if pieces else np.empty(0)


def _run_block(payload: dict, blocks: range) -> np.ndarray:
    draws = permute_cohorts(payload["cohort"], payload["eligible"], payload["strata"],
                            payload["B"], payload["seed"], blocks)
    fasts: list[_FastStat] | None = payload.get("fasts")
    if fasts is not None:
        # one set of draws for every outcome's statistic: the permutations cost as much as the statistics
        if draws.shape[0] == 0:
            return np.empty((len(fasts), 0))
        out_k = np.empty((len(fasts), draws.shape[0]))
        values = fasts[0].values
        codes = np.searchsorted(values, draws)
        for i, fast in enumerate(fasts):
            if not np.array_equal(values, fast.values):
                values = fast.values
                codes = np.searchsorted(values, draws)
            out_k[i] = fast.from_codes(codes)
        return out_k
    if draws.shape[0] == 0:
        return np.empty(0)
    data, statistic, cohort, uc = payload["data"], payload["statistic"], payload["cohort_col"], payload["uc"]
    out = np.empty(draws.shape[0])
    for k, row in enumerate(draws):
        frame = data.copy(deep=False)  # copy-on-write: only the cohort column is replaced
        frame[cohort] = pd.Series(row[uc], index=data.index).astype(data[cohort].dtype)
        out[k] = float(statistic(frame))
    return out


# ----------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RandomisationResult:
    r"""Result of :func:`randomisation_inference`.

    Parameters
    ----------
    outcome : str
        Outcome column.
    statistic : str
        ``"cs_simple"``, ``"twfe"`` or the callable's name.
    observed : float
        Statistic on the observed assignment, :math:`T_{obs}`.
    p_value : float
        :math:`(1 + \#\{|T_b| \ge |T_{obs}|\}) / (B + 1)` for the sharp null.
    B : int
        Number of re-drawn assignments.
    draws : numpy.ndarray
        ``(B,)`` statistics :math:`T_b` under the re-drawn assignments, in draw order.
    n_units, n_eligible : int
        Units, and units whose cohort was permuted.
    options : dict
        Columns, strata, seed and its entropy, control group.
    """

    outcome: str
    statistic: str
    observed: float
    p_value: float
    B: int
    draws: np.ndarray = field(repr=False)
    n_units: int = 0
    n_eligible: int = 0
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    def tidy(self) -> pd.DataFrame:
        """Return one row in the fixed tidy schema.

        Returns
        -------
        pandas.DataFrame
            ``estimate`` = observed statistic, ``p_value`` = randomisation p-value; the
            standard error and interval are missing (the test is for the sharp null).
        """
        est = {"cs_simple": ("cs", "simple", "ATT (randomisation inference)"),
               "twfe": ("twfe", "coef", "D (randomisation inference)")}
        estimator, agg, term = est.get(self.statistic, (self.statistic, "custom",
                                                        "statistic (randomisation inference)"))
        cg = self.options.get("control_group") if self.statistic == "cs_simple" else (
            "all" if self.statistic == "twfe" else None)
        row = {"outcome": self.outcome, "estimator": estimator, "control_group": cg,
               "aggregation": agg, "term": term, "estimate": self.observed, "p_value": self.p_value,
               "band": "pointwise", "n_units": self.n_units,
               "options": json.dumps(self.options, sort_keys=True, default=str)}
        return make_tidy([row])

    def __repr__(self) -> str:
        return (f"randomisation inference ({self.statistic}, {self.B} draws, {self.n_eligible} of "
                f"{self.n_units} units permuted) for {self.outcome}: observed {self.observed:.6g}, "
                f"p = {self.p_value:.4f}")


def randomisation_inference(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    statistic: str | Callable[[pd.DataFrame], float] = "cs_simple",
    eligible: str | None = None,
    strata: str | None = None,
    B: int = 999,
    seed=None,
    n_jobs: int = 1,
    control_group: str = "notyet",
) -> RandomisationResult:
    """Randomisation (permutation) test of the sharp null of no effect anywhere, ever.

    Re-draws the assignment of cohorts by permuting the cohort vector (0 = never
    treated) among ``eligible`` units within ``strata``, recomputes ``statistic`` and
    compares it with the observed value (module docstring: null, design, caveats).

    Parameters
    ----------
    data : pandas.DataFrame
        Long unit x period panel. Not modified.
    outcome, unit, time, cohort : str
        Column names; ``cohort`` is the first treated period, 0 for never treated,
        constant within unit.
    statistic : {"cs_simple", "twfe"} or callable, default "cs_simple"
        ``"cs_simple"``: CS simple ATT (unconditional, ``control_group`` comparison);
        ``"twfe"``: static TWFE coefficient; a callable receives a copy of ``data`` with
        the re-drawn cohorts in ``cohort`` and returns a float.
    eligible : str, optional
        Boolean (or 0/1) column, constant per unit: only these units' cohorts are
        permuted. Default: all units.
    strata : str, optional
        Column constant per unit (e.g. ``"county_code"``): permute within strata.
        Default ``None``: complete randomisation over the eligible units.
    B : int, default 999
        Number of re-drawn assignments.
    seed : int, numpy.random.SeedSequence or None
        Root seed (blocks spawned from ``SeedSequence(seed)``).
    n_jobs : int, default 1
        Worker processes (:class:`concurrent.futures.ProcessPoolExecutor`); the result
        does not depend on it.
    control_group : {"notyet", "never"}, default "notyet"
        Comparison group of the ``"cs_simple"`` statistic.

    Returns
    -------
    RandomisationResult
        Observed statistic, p-value, draws; ``.tidy()`` gives one row in the fixed schema.

    Raises
    ------
    ValueError
        Missing columns, a cohort/eligible/strata value that varies within a unit, an
        unbalanced panel or no never-treated units with a built-in statistic, bad ``B``,
        ``n_jobs`` or ``statistic``, or a non-finite observed statistic.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"id": np.repeat(np.arange(100), 5), "t": np.tile(np.arange(5), 100)})
    >>> df["g"] = np.repeat(rng.permutation(np.repeat([0, 3], 50)), 5)
    >>> df["y"] = rng.normal(size=500) + 2.0 * ((df["g"] > 0) & (df["t"] >= df["g"]))
    >>> res = randomisation_inference(df, "y", "id", "t", "g", B=199, seed=1)
    >>> res.p_value
    0.005
    """
    B = _check_B(B)
    _check_jobs(n_jobs)
    if not callable(statistic) and statistic in _BUILTIN:
        return randomisation_inference_outcomes(data, [outcome], unit, time, cohort, statistic, eligible, strata,
                                                B, seed, n_jobs, control_group)[outcome]
    prep = _prepare(data, outcome, unit, time, cohort, eligible, strata, statistic, control_group)
    if not callable(statistic):  # _prepare refused it already
        raise ValueError(f"statistic must be a callable or one of {_BUILTIN}, got {statistic!r}")
    root, _ = block_seeds(seed, B)
    observed = float(statistic(data.copy(deep=False)))
    name = getattr(statistic, "__name__", "custom")
    payload = {"data": data.copy(deep=False), "statistic": statistic, "cohort_col": cohort, "uc": prep["uc"],
               "cohort": prep["cohort_unit"]}
    if not np.isfinite(observed):
        raise ValueError(f"the statistic is not finite on the observed data ({observed})")
    payload.update(eligible=prep["eligible"], strata=prep["strata"], B=B, seed=root)
    draws = _draws(payload, B, n_jobs)
    return _result(outcome, name, observed, draws, prep, B, root, seed,
                   dict(unit=unit, time=time, cohort=cohort, eligible=eligible, strata=strata),
                   control_group)


def randomisation_inference_outcomes(
    data: pd.DataFrame,
    outcomes: Sequence[str],
    unit: str,
    time: str,
    cohort: str,
    statistic: str = "cs_simple",
    eligible: str | None = None,
    strata: str | None = None,
    B: int = 999,
    seed=None,
    n_jobs: int = 1,
    control_group: str = "notyet",
) -> dict[str, RandomisationResult]:
    """Randomisation inference for several outcomes on one set of re-drawn assignments.

    Each outcome's result equals :func:`randomisation_inference` with the same arguments (the same
    draws, bit for bit): the assignments depend on the cohorts, ``eligible``, ``strata``, ``B`` and
    ``seed``, not on the outcome, so they are drawn once per block and every outcome's statistic is
    computed on them. At national size drawing them was half the cost of the test.

    Parameters
    ----------
    data : pandas.DataFrame
        Long unit x period panel. Not modified.
    outcomes : sequence of str
        Outcome columns.
    unit, time, cohort, statistic, eligible, strata, B, seed, n_jobs, control_group
        As :func:`randomisation_inference` (``statistic`` one of the built-in statistics).

    Returns
    -------
    dict of str to RandomisationResult
        By outcome, in the order given.

    Raises
    ------
    ValueError
        As :func:`randomisation_inference`, for any outcome (a caller that wants the others' results
        tests the outcomes one at a time then).
    """
    B = _check_B(B)
    _check_jobs(n_jobs)
    if callable(statistic) or statistic not in _BUILTIN:
        raise ValueError(f"statistic must be one of {_BUILTIN}, got {statistic!r}")
    outcomes = list(dict.fromkeys(outcomes))
    if not outcomes:
        raise ValueError("no outcome to test")
    preps = [_prepare(data, o, unit, time, cohort, eligible, strata, statistic, control_group) for o in outcomes]
    root, _ = block_seeds(seed, B)
    observed = []
    for o, prep in zip(outcomes, preps, strict=True):
        obs = float(prep["fast"].from_codes(prep["codes"][None, :])[0])
        if not np.isfinite(obs):
            raise ValueError(f"the statistic is not finite on the observed data ({obs})"
                             + (f" for {o!r}" if len(outcomes) > 1 else ""))
        observed.append(obs)
    first = preps[0]
    same = all(np.array_equal(p["recoded"], first["recoded"]) and _same(p["eligible"], first["eligible"])
               and _same(p["strata"], first["strata"]) for p in preps[1:])
    if not same:  # the outcomes' panels differ (not one balanced panel): each draws its own assignments
        return {o: randomisation_inference_outcomes(data, [o], unit, time, cohort, statistic, eligible, strata, B,
                                                    seed, n_jobs, control_group)[o] for o in outcomes}
    payload = {"fasts": [p["fast"] for p in preps], "cohort": first["recoded"], "eligible": first["eligible"],
               "strata": first["strata"], "B": B, "seed": root}
    draws = _draws(payload, B, n_jobs)
    columns = dict(unit=unit, time=time, cohort=cohort, eligible=eligible, strata=strata)
    return {o: _result(o, statistic, obs, draws[k], prep, B, root, seed, columns, control_group)
            for k, (o, prep, obs) in enumerate(zip(outcomes, preps, observed, strict=True))}


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def _check_jobs(n_jobs) -> None:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")


def _draws(payload: dict, B: int, n_jobs: int) -> np.ndarray:
    """Run the blocks of draws in this process or in ``n_jobs`` spawned workers (the same values either way)."""
    tasks = task_blocks(B, n_jobs)
    if n_jobs == 1 or len(tasks) == 1:
        pieces = [_run_blocks(payload, blk) for blk in tasks]
    else:
        # spawn, not fork (as the Monte Carlo): a forked child inherits the parent's thread
        # pools; a spawned one starts clean with the environment's thread settings.
        with ProcessPoolExecutor(max_workers=int(n_jobs), mp_context=multiprocessing.get_context("spawn")) as ex:
            pieces = list(ex.map(_run_blocks, [payload] * len(tasks), tasks))
    return np.concatenate(pieces, axis=-1)


def _result(outcome: str, name: str, observed: float, draws: np.ndarray, prep: dict, B: int, root, seed,
            columns: dict[str, Any], control_group: str) -> RandomisationResult:
    """Return one outcome's result: its p-value and record."""
    bad = ~np.isfinite(draws)
    if bad.any():
        warnings.warn(f"{int(bad.sum())} re-drawn assignments gave a non-finite statistic; they are "
                      "counted as at least as extreme as the observed one (conservative)", stacklevel=3)
    thr = abs(observed) * (1 - _TIE_RTOL)
    n_extreme = int(np.sum(bad | (np.abs(np.where(bad, 0.0, draws)) >= thr)))
    p = (1 + n_extreme) / (B + 1)
    n_elig = prep["n"] if prep["eligible"] is None else int(prep["eligible"].sum())
    entropy = root.entropy
    options = {
        "outcome": outcome, "unit": columns["unit"], "time": columns["time"], "cohort": columns["cohort"],
        "statistic": name, "eligible": columns["eligible"], "strata": columns["strata"], "B": B,
        "seed": seed if isinstance(seed, int | np.integer | None) else str(seed),
        "seed_entropy": int(entropy) if isinstance(entropy, int | np.integer) else str(entropy),
        "control_group": control_group if name == "cs_simple" else None,
        "null": "sharp null: no effect for any unit in any period",
        "p_value": "(1 + #{|T_b| >= |T_obs|}) / (B + 1)",
        "n_blocks": n_blocks(B),
    }
    return RandomisationResult(outcome=outcome, statistic=name, observed=observed, p_value=float(p), B=B,
                               draws=draws, n_units=int(prep["n"]), n_eligible=n_elig, options=options)
