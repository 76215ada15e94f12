r"""A memory-lean fixed-effects engine: OLS and Poisson (PPML) with unit and year effects.

pyfixest, through which :mod:`analysis.estimators.fixest` fits every regression of the study,
needs about 4-5 GB per million rows at its peak (it stacks the outcome and the regressors into
new arrays, demeans a copy, weights another, and keeps the per-observation scores). At national
size (5 million village-years) one fit needs 17-23 GB. This module fits the same models, with
the same sample rules, the same covariance and the same small-sample factor, without any array
of ``n x k`` beyond the caller's own frame: :func:`analysis.estimators.fixest.feols` and
:func:`~analysis.estimators.fixest.fepois` use it for frames of :data:`LEAN_ROWS` rows or more,
pyfixest below (so the default city's outputs are pyfixest's, bit for bit).

Models
------
Both models have the fixed effects of every regression of the study, ``| unit + time``.

* :func:`feols`: ``y = x'b + a_unit + l_time + e`` by (weighted) least squares, the effects
  absorbed (Frisch-Waugh-Lovell), CRV1 covariance clustered by ``cl``.
* :func:`fepois`: Poisson pseudo-maximum likelihood of ``E[y] = exp(x'b + a_unit + l_time)`` by
  iteratively reweighted least squares, the same iterations as pyfixest 0.60's ``Fepois``
  (starting values ``mu = (y + mean(y)) / 2``, working outcome ``z = eta + y / mu - 1``,
  weights ``mu``, the stopping rule ``|dev - dev_old| / (0.1 + |dev_old|) < iwls_tol`` of R
  fixest), so both engines stop after the same number of iterations and their estimates agree
  to rounding.

Absorbing the two effects exactly
---------------------------------
pyfixest and fixest absorb the effects by alternating projections, iterated to a tolerance.
With one of the two effects low-dimensional (years: ``T`` of about 10 levels) the weighted
projection on ``a_unit + l_time`` has a closed form. The normal equations are, with weights
``w``, unit sums ``W_i = sum_t w_it`` and year sums ``W_t``,

.. math::

    a_i = \bar x_i - \sum_s w_{is} l_s / W_i, \qquad
    (\mathrm{diag}(W_t) - C)\, l = b, \quad
    C_{ts} = \sum_i w_{it} w_{is} / W_i, \quad b_t = \sum_i w_{it} (x_{it} - \bar x_i),

where ``xbar_i`` is the weighted unit mean: one ``T x T`` system (singular by one, the common
level, fixed by ``l_0 = 0``) solved for every column at once. Every step is a group sum
(``numpy.bincount`` over the ``n`` rows, one column at a time) or an operation on ``U x k``
unit arrays, so the residuals are exact to rounding, with no tolerance and no iteration.

Where the memory goes
---------------------
The regressors are read column by column from the caller's frame (views, not copies). The
cross-products ``X~'W X~`` and the per-cluster score sums are accumulated over chunks of rows
(:data:`CHUNK_BYTES`): a chunk's demeaned rows are ``x - a[unit] - l[time]``. So the working
memory is a few vectors of ``n`` (outcome, weights, fitted means), the unit effects (``U x k``)
and one chunk, not the ``n x k`` copies of pyfixest. The cluster sums of the scores
(``G x k``) give the CRV1 covariance and :attr:`FixestFit.cluster_scores`.

Cell indicators
---------------
Event-study regressions have one 0/1 dummy per cohort x event-time cell (86 in the Sun-Abraham
regression at national size), and each row is in at most one cell. Given as codes
(:class:`analysis.estimators.fixest.Indicators`), they are never made: their effects come from the
cells' weighted counts by unit (sparse, ``k x U``) and by year, their demeaned cross-product is
``I'W I~ = diag(N 1) - N a - M l`` (:class:`_Cells`), their products with dense columns and with
the outcome are sums over the cells' rows, and their cluster score sums are three group sums. A
Sun-Abraham fit on 4.5 million rows takes 3.0 s (15.8 s with its dummies as columns and a sorting
check of nested effects, :func:`_nested`).

Sample rules (pyfixest's defaults, matched)
-------------------------------------------
Rows with a missing value in the outcome, a regressor, the weights or the cluster are dropped;
then observations that are singletons in a fixed effect, repeatedly until none is left
(``fixef_rm="singleton"``); for Poisson, then the observations of every unit or year whose
outcome is zero throughout (separation by the fixed effects, pyfixest's ``separation_check=["fe"]``).
Regressors collinear with the fixed effects or with earlier regressors are dropped with the
rule of fixest's ``cpp_find_collinear``: the pivot-free Cholesky factorisation of ``X~'X~``
(weighted for OLS; unweighted after the first weighted demeaning for Poisson, as pyfixest)
drops a column whose remaining diagonal is below ``1e-10``.

Covariance and small-sample factor
----------------------------------
CRV1, ``V = c B (sum_g s_g s_g') B`` with ``B = (X~'W X~)^{-1}`` and ``s_g`` the cluster sums of
``w_i u_i x~_i`` (for Poisson ``w`` and ``X~`` are those of the last IRLS step, as pyfixest).
``c = G/(G-1) (N-1)/(N-K)`` with ``K`` the regressors plus the fixed-effect levels not nested in
the clusters, counted as pyfixest's ``ssc(k_adj=True, k_fixef="nonnested", G_adj=True,
G_df="min")`` counts them (``k_fe - 1`` levels for two effects, minus the levels of an effect
nested in the clusters, plus one for it).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.estimators.fixest import SSC_RULE, FixestFit, Indicators
from analysis.results import SmallSampleCorrection

__all__ = ["CHUNK_BYTES", "COLLIN_TOL", "ENGINE", "LEAN_ROWS", "RowSelection", "UntreatedModel", "feols",
           "fepois"]

LEAN_ROWS = 100_000
"""Frames of this many rows or more are fitted by this engine instead of pyfixest.

pyfixest needs about 4.5 GB per million rows for one Poisson fit of the study (9 GB at 2 million
rows, above what a stage may use next to its data on a 24 GB machine shared by two runs), and on
the provincial city (300,000 rows) the lean fits are 1.3-6x faster (7 December 2026, same process:
Sun-Abraham 0.91 -> 0.15 s, with covariate trends 2.12 -> 0.54 s, TWFE 0.49 -> 0.16 s, imputation
with covariates 1.53 -> 0.59 s, Poisson ETWFE with covariates 5.67 -> 2.08 s; estimates agree to
3.2e-10 relative, SEs to 1.2e-12). Below it (the default city has 6,000 rows) pyfixest's outputs are
kept exactly. :func:`analysis.estimators.fixest.feols` and ``fepois`` take ``engine="lean"`` or
``"pyfixest"`` to force either path."""

CHUNK_BYTES = 32 * 2**20
"""Size of the block of demeaned rows the cross-products and score sums are accumulated over."""

COLLIN_TOL = 1e-10
"""pyfixest's (and fixest's) ``collin_tol``: the collinearity threshold of the Cholesky pivots."""

ENGINE = "lean_fe (analysis.estimators.lean_fe)"
"""How the engine is named in an estimate's ``engine`` option."""


class _Codes:
    """Integer codes of the unit, year and cluster of the kept rows."""

    def __init__(self, unit: np.ndarray, time: np.ndarray, cl: np.ndarray | None, factorize: bool = True):
        self.unit = pd.factorize(unit)[0] if factorize else np.asarray(unit, dtype=np.int64)
        self.time = pd.factorize(time)[0] if factorize else np.asarray(time, dtype=np.int64)
        self.cl = pd.factorize(cl, sort=True)[0] if cl is not None else np.zeros(len(self.unit), dtype=np.int64)
        self.n_unit = int(self.unit.max()) + 1
        self.n_time = int(self.time.max()) + 1
        self.n_cl = int(self.cl.max()) + 1


class _TwoWay:
    """The exact weighted projection on unit + year effects for one set of weights."""

    def __init__(self, codes: _Codes, w: np.ndarray):
        self.codes = codes
        self.w = w
        U, T = codes.n_unit, codes.n_time
        self.W_unit = np.bincount(codes.unit, weights=w, minlength=U)
        self.W_cell = np.bincount(codes.unit * T + codes.time, weights=w, minlength=U * T).reshape(U, T)
        W_time = np.bincount(codes.time, weights=w, minlength=T)
        C = self.W_cell.T @ (self.W_cell / self.W_unit[:, None])
        self.A = np.diag(W_time) - C

    def effects(self, columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Return the unit (``U x k``) and year (``T x k``) effects of each column's projection."""
        c, w = self.codes, self.w
        k = len(columns)
        r_unit = np.empty((c.n_unit, k))
        r_time = np.empty((c.n_time, k))
        for j, x in enumerate(columns):
            wx = w * np.asarray(x)
            r_unit[:, j] = np.bincount(c.unit, weights=wx, minlength=c.n_unit)
            r_time[:, j] = np.bincount(c.time, weights=wx, minlength=c.n_time)
        return self.solve(r_unit, r_time, overwrite=True)

    def solve(self, r_unit: np.ndarray, r_time: np.ndarray,
              overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Solve the normal equations ``D'WD (a, l) = (r_unit, r_time)`` with ``l_0 = 0``.

        ``D`` holds the unit and year dummies; the equation of year 0 is left out (its dummy is
        the base level), so ``r_time[0]`` is not used. With ``overwrite`` the unit effects are
        computed in ``r_unit`` itself. Either way two ``U x k`` arrays are held at once, not
        five (0.17 GB each for the 47 columns of the national Poisson regression); the values
        are those of the plain expressions, operation for operation.
        """
        c = self.codes
        xbar = np.divide(r_unit, self.W_unit[:, None], out=r_unit if overwrite else None)
        b = r_time - self.W_cell.T @ xbar
        lev = np.zeros_like(b)
        if c.n_time > 1:
            lev[1:] = np.linalg.lstsq(self.A[1:, 1:], b[1:], rcond=None)[0]
        shift = self.W_cell @ lev
        shift /= self.W_unit[:, None]
        xbar -= shift  # a = xbar - (W_cell l) / W_unit
        return xbar, lev

    def solve_sparse(self, r_unit: sparse.csr_matrix, r_time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`solve` for a sparse ``r_unit`` (``U x k``): the only dense ``U x k`` array is the result."""
        c = self.codes
        xbar = sparse.diags(1.0 / self.W_unit) @ r_unit
        b = r_time - np.asarray((xbar.T @ self.W_cell).T)
        lev = np.zeros_like(b)
        if c.n_time > 1:
            lev[1:] = np.linalg.lstsq(self.A[1:, 1:], b[1:], rcond=None)[0]
        a = (self.W_cell @ lev) / -self.W_unit[:, None]
        xbar = xbar.tocoo()
        a[xbar.row, xbar.col] += xbar.data  # one entry per (unit, column): csr sums duplicates
        return a, lev


class RowSelection(Sequence[np.ndarray]):
    """Columns restricted to some of their rows, each selected only when it is read.

    The imputation estimator's untreated-outcome model reads the covariates of the untreated rows
    (4.2 million of 4.5 at national size). With 48 covariate-by-year columns, selecting them all
    at once held 1.6 GB beside the caller's frame; read one at a time (``columns[j]``) or a chunk
    of rows at a time (:meth:`part`), the model holds one column.

    Parameters
    ----------
    columns : sequence of numpy.ndarray
        The full columns (views of the caller's frame).
    rows : numpy.ndarray
        Positions of the selected rows, in order.

    Examples
    --------
    >>> sel = RowSelection([np.arange(5.0), 10 * np.arange(5.0)], np.array([1, 3]))
    >>> len(sel), sel.n_rows, sel[1].tolist(), sel.part(0, slice(1, 2)).tolist()
    (2, 2, [10.0, 30.0], [3.0])
    """

    def __init__(self, columns: Sequence[np.ndarray], rows: np.ndarray):
        self.full = list(columns)
        self.rows = np.asarray(rows)

    def __len__(self) -> int:
        return len(self.full)

    def __getitem__(self, j):
        if isinstance(j, slice):
            return RowSelection(self.full[j], self.rows)
        return np.asarray(self.full[j], dtype=float)[self.rows]

    @property
    def n_rows(self) -> int:
        """Number of selected rows."""
        return len(self.rows)

    def subset(self, keep: Sequence[int]) -> RowSelection:
        """Return the selection of the columns ``keep`` (same rows)."""
        return RowSelection([self.full[j] for j in keep], self.rows)

    def part(self, j: int, s: slice) -> np.ndarray:
        """Return the selected rows ``s`` of column ``j``."""
        return np.asarray(self.full[j], dtype=float)[self.rows[s]]


def _n_rows(columns: Sequence[np.ndarray]) -> int:
    return columns.n_rows if isinstance(columns, RowSelection) else len(columns[0])


def _part(columns: Sequence[np.ndarray], s: slice) -> list[np.ndarray]:
    if isinstance(columns, RowSelection):
        return [columns.part(j, s) for j in range(len(columns))]
    return [x[s] for x in columns]


def _chunks(n: int, k: int):
    step = max(1024, CHUNK_BYTES // (8 * max(k, 1)))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _demeaned(columns: Sequence[np.ndarray], a: np.ndarray, lev: np.ndarray, codes: _Codes, s: slice) -> np.ndarray:
    block = np.column_stack(_part(columns, s)).astype(float, copy=False)
    block -= a[codes.unit[s]]
    block -= lev[codes.time[s]]
    return block


def _cross(columns, a, lev, codes, w: np.ndarray | None) -> np.ndarray:
    """``X~' W X~`` of the demeaned columns (``W`` = identity when ``w`` is None), by chunks."""
    k = len(columns)
    out = np.zeros((k, k))
    for s in _chunks(len(codes.unit), k):
        block = _demeaned(columns, a, lev, codes, s)
        out += block.T @ (block if w is None else block * w[s, None])
    return out


def _collinear(xx: np.ndarray, tol: float | np.ndarray = COLLIN_TOL) -> np.ndarray:
    """Columns to drop: fixest's pivot-free Cholesky rule (``cpp_find_collinear``, pyfixest's port).

    ``tol`` is the threshold of the remaining diagonal, one for all columns or one per column.
    """
    k = xx.shape[0]
    tol = np.broadcast_to(np.asarray(tol, dtype=float), (k,))
    R = np.zeros((k, k))
    drop = np.zeros(k, dtype=bool)
    for j in range(k):
        r_jj = xx[j, j]
        for m in range(j):
            if not drop[m]:
                r_jj -= R[m, j] * R[m, j]
        if r_jj < tol[j]:
            drop[j] = True
            continue
        r_jj = np.sqrt(r_jj)
        R[j, j] = r_jj
        for c in range(j + 1, k):
            v = xx[j, c]
            for m in range(j):
                if not drop[m]:
                    v -= R[m, c] * R[m, j]
            R[j, c] = v / r_jj
    if drop.all():
        raise ValueError("all regressors are collinear with the fixed effects")
    return drop


def _keep_rows(frame: pd.DataFrame, columns: Sequence[str], poisson: bool,
               rows: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the rows kept: in ``rows`` (all if None), complete, not singletons, (Poisson) not separated."""
    keep = np.ones(len(frame), dtype=bool) if rows is None else np.array(rows, dtype=bool)
    for col in ["y", "cl", "unit", "time", *columns]:
        v = frame[col]
        keep &= v.notna().to_numpy()
    unit = pd.factorize(frame["unit"])[0]
    time = pd.factorize(frame["time"])[0]
    while True:
        single = np.zeros(len(frame), dtype=bool)
        for codes in (unit, time):
            counts = np.bincount(codes[keep], minlength=int(codes.max()) + 1)
            single |= keep & (counts[codes] == 1)
        if not single.any():
            break
        keep &= ~single
    if poisson:
        positive = (frame["y"].to_numpy(float) > 0) & keep
        separated = np.zeros(len(frame), dtype=bool)
        for codes in (unit, time):
            n_pos = np.bincount(codes[positive], minlength=int(codes.max()) + 1)
            separated |= keep & (n_pos[codes] == 0)
        if separated.any():
            warnings.warn(f"{int(separated.sum())} observations removed because of separation.", stacklevel=3)
        keep &= ~separated
    return keep


def _nested(fe: np.ndarray, cl: np.ndarray, n_fe: int) -> bool:
    """Whether every level of ``fe`` (codes ``0..n_fe-1``) lies in one cluster.

    One pass, no sort: each level takes the cluster of one of its rows (the last written), and the
    levels are nested when every row's cluster is its level's.
    """
    ref = np.empty(n_fe, dtype=cl.dtype)
    ref[fe] = cl
    return bool(np.array_equal(ref[fe], cl))


def _ssc(codes: _Codes, n: int, k: int) -> SmallSampleCorrection:
    """Return pyfixest's CRV1 small-sample correction (k_adj, k_fixef="nonnested", G_adj, G_df="min")."""
    k_fe = codes.n_unit + codes.n_time
    k_fe_adj = k_fe - 1
    unit_nested = _nested(codes.unit, codes.cl, codes.n_unit)
    time_nested = _nested(codes.time, codes.cl, codes.n_time)
    nested_levels = (codes.n_unit if unit_nested else 0) + (codes.n_time if time_nested else 0)
    df_k = k + k_fe_adj - nested_levels + int(unit_nested) + int(time_nested)
    G = codes.n_cl
    factor = (n - 1) / (n - df_k) * G / (G - 1)
    return SmallSampleCorrection(rule=SSC_RULE, factor=float(factor), K=int(df_k), N=int(n), G=int(G),
                                 unit_fe_nested_in_clusters=bool(unit_nested))


def _crv1(columns, a, lev, codes: _Codes, wu: np.ndarray, bread: np.ndarray, n: int,
          ) -> tuple[np.ndarray, np.ndarray, SmallSampleCorrection]:
    """CRV1 covariance and cluster sums of the influence functions.

    ``wu`` is ``w_i u_i`` (weight times working residual); the score of row ``i`` is
    ``wu_i x~_i``.
    """
    S = _cluster_sums(columns, a, lev, codes, wu)
    ssc = _ssc(codes, n, len(columns))
    vcov = ssc.factor * (bread @ (S.T @ S) @ bread)
    return vcov, S @ bread, ssc


class _Taken:
    """A column of the caller's frame read at the sample's rows each time it is used.

    Stands for ``full[rows]`` without holding it: slicing gives the rows of a chunk, and
    :func:`numpy.asarray` the whole column (a transient vector of ``n``), so a subsample is
    fitted without an ``n x k`` copy of its regressors.
    """

    __slots__ = ("full", "rows")

    def __init__(self, full: np.ndarray, rows: np.ndarray):
        self.full, self.rows = full, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, s: slice) -> np.ndarray:
        return self.full[self.rows[s]]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self.full[self.rows]
        return out if dtype is None else out.astype(dtype, copy=False)


def _prepare(frame: pd.DataFrame, rhs: Sequence[str], poisson: bool, rows: np.ndarray | None = None):
    names = list(rhs)
    keep = _keep_rows(frame, [*names, *(["w"] if "w" in frame.columns else [])], poisson, rows)
    if rows is not None:
        # a subsample: its regressors are read from the frame's columns at the kept rows when used
        idx = np.flatnonzero(keep)
        sample = frame.loc[keep, ["unit", "time", "cl"]]
        codes = _Codes(sample["unit"].to_numpy(), sample["time"].to_numpy(), sample["cl"].to_numpy())
        columns = [_Taken(frame[c].to_numpy(dtype=float), idx) for c in names]
        y = frame["y"].to_numpy(dtype=float)[idx]
        w = frame["w"].to_numpy(dtype=float)[idx] if "w" in frame.columns else np.ones(len(idx))
        return sample, codes, names, columns, y, w, idx
    every = bool(keep.all())
    sample = frame if every else frame.loc[keep]
    codes = _Codes(sample["unit"].to_numpy(), sample["time"].to_numpy(), sample["cl"].to_numpy())
    columns = [sample[c].to_numpy(dtype=float) for c in names]
    y = sample["y"].to_numpy(dtype=float)
    w = sample["w"].to_numpy(dtype=float) if "w" in sample.columns else np.ones(len(y))
    return sample, codes, names, columns, y, w, None if every else np.flatnonzero(keep)


class _Cells:
    """One-hot regressors of the kept rows: row ``rows[i]`` has a 1 in column ``c[i]``, the others none.

    Every product with these columns is a group sum over the cells, so they are never made:
    with ``N`` the ``k x U`` weighted counts of the cells' rows by unit and ``M`` the ``k x T``
    counts by year, their projection on the effects comes from ``(N', M')`` and their demeaned
    cross-product is ``I'W I~ = diag(N 1) - N a - M l`` (``I~ = I - a[unit] - l[time]``, and
    ``I~'W I~ = I'W I~`` for the exact projection).
    """

    def __init__(self, codes: np.ndarray, k: int, fe: _Codes, w: np.ndarray):
        self.k = k
        self.all = codes
        self.rows = np.flatnonzero(codes >= 0)
        self.c = codes[self.rows]
        ws = w[self.rows]
        self.N = sparse.csr_matrix((ws, (self.c, fe.unit[self.rows])), shape=(k, fe.n_unit))
        self.M = np.bincount(self.c * fe.n_time + fe.time[self.rows], weights=ws,
                             minlength=k * fe.n_time).reshape(k, fe.n_time)
        self.W = np.bincount(self.c, weights=ws, minlength=k)

    def effects(self, proj: _TwoWay) -> tuple[np.ndarray, np.ndarray]:
        """Return the unit (``U x k``) and year (``T x k``) effects of the cells' projection."""
        return proj.solve_sparse(self.N.T.tocsr(), self.M.T)

    def cross(self, a: np.ndarray, lev: np.ndarray) -> np.ndarray:
        """``I~' W I~`` (``k x k``)."""
        out = np.diag(self.W) - self.N @ a - self.M @ lev
        return (out + out.T) / 2

    def sums(self, v: np.ndarray) -> np.ndarray:
        """``I' v``: the sum of ``v`` over each cell's rows."""
        return np.bincount(self.c, weights=v[self.rows], minlength=self.k)


def _cross_target(columns, a, lev, codes: _Codes, w: np.ndarray, target: np.ndarray,
                  cells: _Cells | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X~'W X~``, ``X~'W t`` and ``I'W X~`` of the demeaned columns, in one pass over row blocks.

    ``target`` is already demeaned; ``I`` are the cells' indicators (``k_I x k``; empty without cells).
    """
    k = len(columns)
    xwx = np.zeros((k, k))
    xwt = np.zeros(k)
    iwx = np.zeros((0 if cells is None else cells.k, k))
    if not k:
        return xwx, xwt, iwx
    for s in _chunks(len(codes.unit), k + 1):
        block = _demeaned(columns, a, lev, codes, s)
        wb = block * w[s, None]
        xwx += block.T @ wb
        xwt += wb.T @ target[s]
        if cells is not None:
            code = cells.all[s]
            inside = np.flatnonzero(code >= 0)
            if len(inside):
                pick = sparse.csr_matrix((np.ones(len(inside)), (code[inside], inside)),
                                         shape=(cells.k, s.stop - s.start))
                iwx += pick @ wb
    return xwx, xwt, iwx


def _collinear_tol(cells: _Cells | None, k: int) -> np.ndarray:
    """Return each regressor's collinearity threshold: :data:`COLLIN_TOL`, for a cell at least 1e-10 of its weight.

    A cell's demeaned cross-product is a difference of sums of the size of its weight, exact to rounding
    (about ``1e-16`` of it), not a sum of squares: a cell collinear with the effects leaves a remainder of
    that order instead of zero, which the relative floor catches.
    """
    k_i = 0 if cells is None else cells.k
    tol = np.full(k_i + k, COLLIN_TOL)
    if cells is not None:
        tol[:k_i] = np.maximum(COLLIN_TOL, 1e-10 * cells.W)
    return tol


def feols(frame: pd.DataFrame, rhs: Sequence[str], rows: np.ndarray | None = None,
          indicators: Indicators | None = None) -> FixestFit:
    """Fit ``y ~ [indicators] + rhs (+ x0 + x1 ...) | unit + time`` by OLS with CRV1 standard errors by ``cl``.

    The same model, sample and covariance as :func:`analysis.estimators.fixest.feols`
    (pyfixest), computed without ``n x k`` working copies (see the module docstring).

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``y``, ``unit``, ``time``, ``cl`` (``w`` weights and ``x0, x1, ...``
        covariates if present) plus the regressors in ``rhs``. Not modified.
    rhs : sequence of str
        Regressors; the covariate columns ``x0, x1, ...`` of ``frame`` are added after them.
    rows : numpy.ndarray of bool, optional
        Fit the rows of ``frame`` where this is True only, reading their regressors from
        ``frame`` as they are used instead of copying them (the pre-trend regression of the
        imputation estimator fits the untreated rows of the panel this way). The fit's
        ``sample`` then holds only the ``unit``, ``time`` and ``cl`` of the rows kept.
    indicators : analysis.estimators.fixest.Indicators, optional
        0/1 indicators of disjoint cells, entered before ``rhs`` and fitted from their codes
        (:class:`_Cells`): no column of them is made, and their cross-products are group sums
        (the Sun-Abraham regression's 86 cohort x event-time cells at national size cost what a
        few dense columns cost). A cell is dropped as collinear when its remaining diagonal is
        below :data:`COLLIN_TOL` or ``1e-10`` of its weight (:func:`_collinear_tol`).

    Returns
    -------
    FixestFit
        Estimates, CRV1 covariance, estimation sample, small-sample record and cluster
        score sums; ``model`` is None and ``engine`` is :data:`ENGINE`.
    """
    cov_terms = [c for c in frame.columns if c.startswith("x") and c[1:].isdigit()]
    sample, codes, dense, columns, y, w, idx = _prepare(frame, [*rhs, *cov_terms], poisson=False, rows=rows)
    n = len(y)
    proj = _TwoWay(codes, w)
    cells = None
    if indicators is not None:
        cell_codes = indicators.codes if idx is None else indicators.codes[idx]
        cells = _Cells(cell_codes, len(indicators.names), codes, w)
    k_i = 0 if cells is None else cells.k
    names = [*(indicators.names if indicators is not None else ()), *dense]
    a_y, l_y = proj.effects([y])
    yt = y - a_y[codes.unit, 0]
    yt -= l_y[codes.time, 0]
    a, lev = proj.effects(columns) if columns else (np.zeros((codes.n_unit, 0)), np.zeros((codes.n_time, 0)))
    xwx_d, xwt_d, iwx = _cross_target(columns, a, lev, codes, w, yt, cells)
    if cells is not None:
        a_i, l_i = cells.effects(proj)
        xwx = np.block([[cells.cross(a_i, l_i), iwx], [iwx.T, xwx_d]])
        xwt = np.concatenate([cells.sums(w * yt), xwt_d])
    else:
        xwx, xwt = xwx_d, xwt_d
    drop = _collinear(xwx, _collinear_tol(cells, len(columns)))
    if drop.any():
        dropped = [c for c, d in zip(names, drop, strict=True) if d]
        warnings.warn(f"{len(dropped)} variables dropped due to multicollinearity: {dropped}", stacklevel=3)
    keep = ~drop
    xwx = xwx[np.ix_(keep, keep)]
    beta_all = np.zeros(len(names))
    beta_all[keep] = np.linalg.solve(xwx, xwt[keep])
    b_i, b_d = beta_all[:k_i], beta_all[k_i:]
    # residual y~ - X~ b = y~ - X b + (a b)[unit] + (l b)[time]
    resid = yt
    for j, x in enumerate(columns):
        if b_d[j]:
            resid -= b_d[j] * np.asarray(x)
    resid += (a @ b_d)[codes.unit]
    resid += (lev @ b_d)[codes.time]
    if cells is not None:
        resid -= np.append(b_i, 0.0)[cells.all]  # code -1: no cell
        resid += (a_i @ b_i)[codes.unit]
        resid += (l_i @ b_i)[codes.time]
    resid *= w
    bread = np.linalg.inv(xwx)
    S = np.empty((codes.n_cl, len(names)))
    S[:, k_i:] = _cluster_sums(columns, a, lev, codes, resid)
    if cells is not None:
        S[:, :k_i] = _cell_cluster_sums(cells, a_i, l_i, codes, resid)
    S = S[:, keep]
    ssc = _ssc(codes, n, int(keep.sum()))
    vcov = ssc.factor * (bread @ (S.T @ S) @ bread)
    kept = [c for c, k in zip(names, keep, strict=True) if k]
    return FixestFit(model=None, coefficients=pd.Series(beta_all[keep], index=kept), vcov=vcov, sample=sample,
                     n_obs=n, ssc=ssc, fitted=None, cluster_scores=S @ bread, engine=ENGINE)


def _cluster_sums(columns, a, lev, codes: _Codes, wu: np.ndarray) -> np.ndarray:
    """``G x k`` cluster sums of the scores ``wu_i x~_i`` of dense columns."""
    S = np.empty((codes.n_cl, len(columns)))
    for j, x in enumerate(columns):
        xt = np.asarray(x) - a[codes.unit, j]
        xt -= lev[codes.time, j]
        xt *= wu
        S[:, j] = np.bincount(codes.cl, weights=xt, minlength=codes.n_cl)
    return S


def _cell_cluster_sums(cells: _Cells, a: np.ndarray, lev: np.ndarray, codes: _Codes, wu: np.ndarray) -> np.ndarray:
    """``G x k`` cluster sums of the scores ``wu_i (I_i - a[unit_i] - l[time_i])`` of the cells.

    Three group sums: ``wu`` by cluster and cell, by cluster and unit (times ``a``), by cluster and year
    (times ``l``).
    """
    G, T = codes.n_cl, codes.n_time
    direct = np.bincount(codes.cl[cells.rows] * cells.k + cells.c, weights=wu[cells.rows],
                         minlength=G * cells.k).reshape(G, cells.k)
    by_unit = sparse.csr_matrix((wu, (codes.cl, codes.unit)), shape=(G, codes.n_unit))
    by_year = np.bincount(codes.cl * T + codes.time, weights=wu, minlength=G * T).reshape(G, T)
    return direct - by_unit @ a - by_year @ lev


def _deviance(y: np.ndarray, mu: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y == 0, 0.0, y * np.log(y / mu))
    return float(2 * np.sum(term - (y - mu)))


def fepois(frame: pd.DataFrame, rhs: Sequence[str], iwls_tol: float, iwls_maxiter: int) -> FixestFit:
    """Fit ``E[y] = exp(rhs | unit + time)`` by Poisson PML (IRLS) with CRV1 standard errors by ``cl``.

    The same iterations, sample and covariance as :func:`analysis.estimators.fixest.fepois`
    (pyfixest's ``Fepois``), computed without ``n x k`` working copies.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``y`` (non-negative), ``unit``, ``time``, ``cl`` and the regressors in ``rhs``.
        Not modified.
    rhs : sequence of str
        Regressors.
    iwls_tol : float
        Relative deviance change at which the iterations stop.
    iwls_maxiter : int
        Maximum number of iterations.

    Returns
    -------
    FixestFit
        As :func:`feols`, with ``fitted`` the fitted means of the sample's rows.

    Raises
    ------
    ValueError
        If the outcome is negative.

    Warns
    -----
    UserWarning
        If the iterations do not reach ``iwls_tol`` (the warning points at the caller's caller).
    """
    sample, codes, names, columns, y, _, _ = _prepare(frame, rhs, poisson=True)
    if (y < 0).any():
        raise ValueError("The dependent variable must be a weakly positive number.")
    n = len(y)
    mu = (y + y.mean()) / 2
    eta = np.log(mu)
    last = _deviance(y, mu)
    converged = False
    beta: np.ndarray = np.zeros(len(columns))
    for i in range(iwls_maxiter):
        z = eta + y / mu - 1
        proj = _TwoWay(codes, mu)
        a = lev = np.empty((0, 0))  # the last step's unit effects (U x k) are released before the new ones are made
        a, lev = proj.effects(columns)
        if i == 0:
            drop = _collinear(_cross(columns, a, lev, codes, None))
            if drop.any():
                dropped = [c for c, d in zip(names, drop, strict=True) if d]
                warnings.warn(f"{len(dropped)} variables dropped due to multicollinearity: {dropped}",
                              stacklevel=3)
                names = [c for c, d in zip(names, drop, strict=True) if not d]
                columns = [c for c, d in zip(columns, drop, strict=True) if not d]
                a, lev = a[:, ~drop], lev[:, ~drop]
        a_z, l_z = proj.effects([z])
        zt = z - a_z[codes.unit, 0]
        zt -= l_z[codes.time, 0]
        xwx, xwt, _ = _cross_target(columns, a, lev, codes, mu, zt, None)
        beta = np.linalg.solve(xwx, xwt)
        # eta = z - (z~ - X~ b) = X b + (a_z - a b)[unit] + (l_z - l b)[time]
        eta = (a_z[:, 0] - a @ beta)[codes.unit]
        eta += (l_z[:, 0] - lev @ beta)[codes.time]
        for j, x in enumerate(columns):
            eta += beta[j] * x
        w_last = mu
        mu = np.exp(eta)
        deviance = _deviance(y, mu)
        crit = abs(deviance - last) / (0.1 + abs(last))
        last = deviance
        if crit < iwls_tol:
            converged = True
            break
    if not converged:
        warnings.warn(f"the IRLS did not reach the deviance tolerance {iwls_tol:g} in {iwls_maxiter} iterations",
                      stacklevel=3)
    # scores of the last step: w u x~ with w its weights, u = z~ - X~ b = z - eta
    wu = z - eta
    wu *= w_last
    bread = np.linalg.inv(xwx)
    vcov, scores, ssc = _crv1(columns, a, lev, codes, wu, bread, n)
    return FixestFit(model=None, coefficients=pd.Series(beta, index=names), vcov=vcov, sample=sample, n_obs=n,
                     ssc=ssc, fitted=mu, cluster_scores=scores, engine=ENGINE)


def _pivoted_rank(M: np.ndarray, tol: float) -> list[int]:
    """Return the columns not collinear with the unit + year effects or with each other, sorted.

    ``M`` is the cross-product ``R'R`` of the columns' residuals on the effects. The rank rule of a
    QR factorisation with column pivoting of ``R`` (``scipy.linalg.qr(R, pivoting=True)``: a column
    counts while ``|r_jj| > tol``), computed as the pivoted Cholesky factorisation of ``R'R`` (the
    same pivots: the column with the largest remaining norm first), so ``R`` is never held.
    """
    k = M.shape[0]
    order = list(range(k))
    L = np.zeros((k, k))
    rank = 0
    for j in range(k):
        rest = order[j:]
        d = np.array([M[c, c] - L[c, :j] @ L[c, :j] for c in rest])
        best = int(np.argmax(d))
        order[j], order[j + best] = order[j + best], order[j]
        p = order[j]
        r_jj = np.sqrt(max(d[best], 0.0))
        if r_jj <= tol:
            break
        rank += 1
        L[p, j] = r_jj
        for c in order[j + 1:]:
            L[c, j] = (M[c, p] - L[c, :j] @ L[p, :j]) / r_jj
    return sorted(order[:rank])


class UntreatedModel:
    """Least squares of ``y`` on unit and year effects and covariates, the effects absorbed exactly.

    The untreated-outcome model of the imputation estimator
    (:mod:`analysis.estimators.imputation`) at national size, without its sparse design
    matrix: the covariates' coefficients by Frisch-Waugh-Lovell on the columns' residuals on
    the effects (:class:`_TwoWay`, exact), then the effects of ``y - X b``. The year effect of
    code 0 is the base level (0).

    Parameters
    ----------
    unit, time : numpy.ndarray
        Integer codes ``0..U-1`` and ``0..T-1`` of the untreated rows (every level present).
    columns : sequence of numpy.ndarray
        Covariates of the untreated rows (may be empty).
    y : numpy.ndarray
        Outcome of the untreated rows.

    rank_tol : float, optional
        Drop the covariates collinear with the effects or with each other first (:func:`_pivoted_rank`
        at this threshold, on the residuals the model fits with); :attr:`kept` lists those kept.

    Raises
    ------
    ValueError
        If the covariates are collinear with the effects (their residual cross-product is
        singular).
    """

    def __init__(self, unit: np.ndarray, time: np.ndarray, columns: Sequence[np.ndarray], y: np.ndarray,
                 rank_tol: float | None = None):
        self.codes = _Codes(unit, time, None, factorize=False)
        self.proj = _TwoWay(self.codes, np.ones(len(self.codes.unit)))
        self.columns = columns if isinstance(columns, RowSelection) else list(columns)
        self.kept = list(range(len(self.columns)))
        k = len(self.columns)
        if k:
            self.a_x, self.l_x = self.proj.effects(self.columns)
            self.xx = _cross(self.columns, self.a_x, self.l_x, self.codes, None)
            if rank_tol is not None:
                self.kept = _pivoted_rank(self.xx, rank_tol)
                self.columns = (self.columns.subset(self.kept) if isinstance(self.columns, RowSelection)
                                else [self.columns[j] for j in self.kept])
                self.a_x, self.l_x = self.a_x[:, self.kept], self.l_x[:, self.kept]
                self.xx = self.xx[np.ix_(self.kept, self.kept)]
                k = len(self.columns)
        if k:
            a_y, l_y = self.proj.effects([y])
            yt = y - a_y[self.codes.unit, 0]
            yt -= l_y[self.codes.time, 0]
            xy = np.array([np.dot(x, yt) for x in self.columns])  # X~'y~ = X'y~ (the projection is exact)
            try:
                self.xx_chol = np.linalg.cholesky(self.xx)
            except np.linalg.LinAlgError as err:
                raise ValueError("the untreated-outcome model is not identified (covariates collinear with "
                                 "the unit and period effects)") from err
            self.b = self._xx_solve(xy)
        else:
            self.b = np.zeros(0)
        rest = y - self._xb(self.columns) if k else np.asarray(y, dtype=float)
        a, lev = self.proj.effects([rest])
        self.a, self.lev = a[:, 0], lev[:, 0]

    def _xx_solve(self, rhs: np.ndarray) -> np.ndarray:
        from scipy.linalg import cho_solve

        return cho_solve((self.xx_chol, True), rhs)

    def _xb(self, columns: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros(_n_rows(columns) if len(columns) else 0)
        for j, x in enumerate(columns):
            out += self.b[j] * x
        return out

    def predict(self, unit: np.ndarray, time: np.ndarray, columns: Sequence[np.ndarray]) -> np.ndarray:
        """Return the fitted untreated outcome of rows with these codes and covariates.

        Parameters
        ----------
        unit, time : numpy.ndarray
            Codes of the rows (levels of the fitted rows).
        columns : sequence of numpy.ndarray
            Their covariates, in the order of the fit.

        Returns
        -------
        numpy.ndarray
            ``a_unit + l_time + x'b``.
        """
        out = self.a[unit] + self.lev[time]
        if len(self.columns):
            out += self._xb(columns)
        return out

    def weights(self, unit: np.ndarray, time: np.ndarray, columns: Sequence[np.ndarray],
                w1: np.ndarray) -> np.ndarray:
        """Return ``Z0 (Z0'Z0)^{-1} Z1' w1`` for each column of ``w1``: the untreated rows' weights.

        ``Z0`` and ``Z1`` are the designs (unit dummies, year dummies but the base, covariates)
        of the fitted rows and of the rows given; ``w1`` (``n1 x m``) weights the latter. With
        ``Z0 = [D, X]``: ``Z0 h = D g + X~ h_b`` where ``g = (D'D)^{-1} D1'w1`` and
        ``h_b = (X~'X~)^{-1} (X1'w1 - X'D g)``.

        Parameters
        ----------
        unit, time : numpy.ndarray
            Codes of the rows ``w1`` weights.
        columns : sequence of numpy.ndarray
            Their covariates.
        w1 : numpy.ndarray
            ``n1 x m`` weights.

        Returns
        -------
        numpy.ndarray
            ``n0 x m``.
        """
        c = self.codes
        m = w1.shape[1]
        r_unit = np.column_stack([np.bincount(unit, weights=w1[:, j], minlength=c.n_unit) for j in range(m)])
        r_time = np.column_stack([np.bincount(time, weights=w1[:, j], minlength=c.n_time) for j in range(m)])
        a_g, l_g = self.proj.solve(r_unit, r_time)
        # one row per weight column (transposed on return): each covariate is read once for all m
        # columns, and every element gets the same sums, in the same order, as column by column
        out = np.empty((m, len(c.unit)))
        for j in range(m):
            out[j] = a_g[c.unit, j] + l_g[c.time, j]
        k = len(self.columns)
        if k:
            rhs = np.empty((m, k))
            for i in range(k):
                x0, x1 = self.columns[i], columns[i]
                for j in range(m):
                    rhs[j, i] = x1 @ w1[:, j] - x0 @ out[j]
            h_b = np.array([self._xx_solve(rhs[j]) for j in range(m)])  # m x k
            for i in range(k):
                x0 = self.columns[i]
                for j in range(m):
                    out[j] += h_b[j, i] * x0
            # X~ h_b = X h_b - (a_x h_b)[unit] - (l_x h_b)[time]
            for j in range(m):
                out[j] -= (self.a_x @ h_b[j])[c.unit]
                out[j] -= (self.l_x @ h_b[j])[c.time]
        return out.T
