r"""Robust inference when parallel trends may fail: Rambachan & Roth (2023) sensitivity analysis.

An event study estimates :math:`\hat\beta = (\hat\beta_{pre}', \hat\beta_{post}')'`, the
coefficients of ``num_pre`` periods before and ``num_post`` periods after treatment (the
reference period, normalised to zero, excluded), with
:math:`\hat\beta \approx N(\beta, \Sigma)`. Write :math:`\beta = \delta + (0', \tau')'`,
where :math:`\tau` are the treatment effects and :math:`\delta` the difference in trends
between treated and comparison units that parallel trends sets to zero. The pre-period
coefficients estimate :math:`\delta_{pre}` (no anticipation), so they are informative about,
but do not identify, :math:`\delta_{post}`. The target is :math:`\theta = l'\tau` (``l_vec``:
the first post period by default, or the average of the post periods).

Restrictions on how far :math:`\delta_{post}` may stray (with :math:`\delta_0 = 0` at the
reference period, and time measured in periods):

* **Relative magnitudes** :math:`\Delta^{RM}(\bar M)`: every post-period change
  :math:`|\delta_{t} - \delta_{t-1}|`, :math:`t \ge 1`, is at most :math:`\bar M` times the
  largest pre-period change between consecutive periods (including the change into the
  reference period). :math:`\bar M = 1`: post-treatment violations no larger than the worst
  pre-treatment one. A union of polyhedra, one per location and sign of the largest
  pre-period change.
* **Smoothness** :math:`\Delta^{SD}(M)`: every second difference
  :math:`|(\delta_{t+1} - \delta_t) - (\delta_t - \delta_{t-1})|` over the whole event window
  is at most :math:`M`. :math:`M = 0` allows exactly linear differential trends
  (extrapolated from the pre-periods); larger :math:`M` allows the slope to change by
  :math:`M` per period. Units of :math:`M` are those of the outcome per period squared.

A robust confidence interval covers :math:`\theta` with probability at least
``1 - alpha`` (asymptotically, uniformly) whenever :math:`\delta \in \Delta`. It accounts for
the sampling noise in the pre-period coefficients as well as the post-period ones. The
*breakdown value* is the largest :math:`\bar M` (or :math:`M`) at which the robust interval
still excludes zero: a conclusion survives violations of parallel trends up to that size.

Methods (the defaults of the R package ``HonestDiD``)
-----------------------------------------------------
* :math:`\Delta^{RM}`: the conditional-least-favourable hybrid test of Andrews, Roth & Pakes
  (ARP, 2023), ``inference="C-LF"`` (or the purely conditional test, ``"Conditional"``),
  inverted over :math:`\theta` and unioned over the location and sign of the largest
  pre-period change (R ``createSensitivityResults_relativeMagnitudes``). With more than one
  post period only the moments that involve post-period coefficients enter the test, and
  the other post-period effects are nuisance parameters; with a single post period every
  moment enters (both as in R).
* :math:`\Delta^{SD}`: the optimal fixed-length confidence interval (FLCI) of Armstrong &
  Kolesar over affine estimators :math:`w'\hat\beta_{pre} + l'\hat\beta_{post}` (R
  ``findOptimalFLCI``, the default of ``createSensitivityResults``).

Implementation and differences from R ``HonestDiD``
----------------------------------------------------
* ARP test: the extreme rays of the dual cone :math:`\{\gamma \ge 0: \gamma' X = 0\}` of
  the test's linear programme are enumerated once (they do not depend on :math:`\bar M`, on
  the location of the largest pre-period change or on :math:`\theta`), so the statistic is
  :math:`\max_\gamma \gamma' y` over the vertices :math:`\gamma/(\gamma'\sigma)` and the
  truncation points of the conditional test are closed-form over them (R solves a linear
  programme per grid point and finds the truncation points by bisection; both agree to
  R's tolerances, which the tests check against HiGHS). Enumeration is over all bases of
  the ``2 * num_post`` post-period moments, so it is limited to about 10 post periods.
* Interval endpoints are found by a grid (``grid_points``) followed by bisection to
  ~1e-7 of the grid step, instead of R's 1,000-point grid on
  :math:`[-20\,sd, 20\,sd]`; the reported bounds are therefore not quantised to R's grid
  (R's are up to one grid step, ~``0.04 sd``, inside ours).
* The least-favourable critical value uses ``lf_sims`` draws from a NumPy generator seeded by
  ``seed`` (R: 1,000 draws from R's generator with seed 0), so C-LF bounds differ from R's by
  simulation noise (a small fraction of a standard error; the same draws serve every
  :math:`\bar M` of a call, so the bounds move smoothly with :math:`\bar M`).
* With a single post period R's no-nuisance least-favourable hybrid neither truncates the
  second stage at the least-favourable critical value nor adjusts its size to
  :math:`(\alpha - \kappa)/(1 - \kappa)`; here both are done, as in the paper and in R's
  many-post-period code.
* FLCI: the half-length is minimised directly over the pre-period weights (a convex
  problem after splitting the absolute values), with the folded-normal quantile computed
  exactly; R minimises over a grid/bisection in the standard deviation and computes the
  quantile from 10^6 simulated draws, so R's half-lengths carry ~0.1% simulation noise.

References
----------
Rambachan, A. and Roth, J. (2023). A more credible approach to parallel trends. *Review of
Economic Studies*, 90(5), 2555-2591.

Andrews, I., Roth, J. and Pakes, A. (2023). Inference for linear conditional moment
inequalities. *Review of Economic Studies*, 90(6), 2763-2791.

Armstrong, T. B. and Kolesar, M. (2018). Optimal inference in a class of regression models.
*Econometrica*, 86(2), 655-683.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from analysis.inference.event_study import event_study_inputs
from analysis.results import DiDResult

__all__ = [
    "DEFAULT_RM_GRID",
    "FLCIResult",
    "HonestResult",
    "breakdown_value",
    "default_sd_grid",
    "flci_sd",
    "honest_bounds",
    "honest_from_result",
    "identified_set",
    "original_ci",
    "rm_ci",
]

_METHODS = ("rm", "sd")
_RM_INFERENCE = ("C-LF", "Conditional")
#: Default values of Mbar for relative magnitudes (R's README uses 0.5, 1, 1.5, 2).
DEFAULT_RM_GRID: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
#: Largest number of bases enumerated for the dual polytope of the ARP test.
_MAX_BASES = 2_000_000
_TOL_RHO = 1e-8


# ----------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------
def _as_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_alpha(alpha) -> float:
    if not isinstance(alpha, int | float | np.floating) or not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
    return float(alpha)


def _check_inputs(betahat, sigma, num_pre, num_post, l_vec, alpha=0.05, min_pre=1):
    """Validate and return ``(b, S, K, T, l, alpha)`` as float arrays and ints."""
    b = np.asarray(betahat, dtype=float)
    if b.ndim != 1 or b.size == 0:
        raise ValueError(f"betahat must be a non-empty 1-D vector, got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError("betahat has missing or infinite values")
    S = np.asarray(sigma, dtype=float)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"sigma must be a square matrix, got shape {S.shape}")
    if S.shape[0] != b.size:
        raise ValueError(f"sigma is {S.shape[0]}x{S.shape[1]} but betahat has {b.size} entries")
    if not np.all(np.isfinite(S)):
        raise ValueError("sigma has missing or infinite values")
    scale = float(np.max(np.abs(S))) if S.size else 0.0
    if scale == 0.0:
        raise ValueError("sigma is identically zero")
    if not np.allclose(S, S.T, rtol=1e-8, atol=1e-10 * scale):
        raise ValueError("sigma must be symmetric")
    S = (S + S.T) / 2
    eig = np.linalg.eigvalsh(S)
    if eig[0] < -1e-8 * max(eig[-1], 0.0):
        raise ValueError(
            f"sigma must be positive semi-definite; its smallest eigenvalue is {eig[0]:.3g} "
            f"(largest {eig[-1]:.3g})"
        )
    K = _as_int(num_pre, "num_pre", min_pre)
    T = _as_int(num_post, "num_post", 1)
    if K + T != b.size:
        raise ValueError(f"num_pre + num_post = {K + T} but betahat has {b.size} entries")
    if l_vec is None:
        lv = np.zeros(T)
        lv[0] = 1.0
    else:
        lv = np.asarray(l_vec, dtype=float).ravel()
        if lv.size != T:
            raise ValueError(f"l_vec must have num_post = {T} entries, got {lv.size}")
        if not np.all(np.isfinite(lv)) or not np.any(lv != 0):
            raise ValueError("l_vec must be finite and not all zero")
    return b, S, K, T, lv, _check_alpha(alpha)


def _check_method(method: str) -> str:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    return method


def _check_m(value, name="M") -> float:
    m = float(value)
    if not np.isfinite(m) or m < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return m


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


# ----------------------------------------------------------------------------------
# the conventional interval
# ----------------------------------------------------------------------------------
def original_ci(betahat, sigma, num_pre: int, num_post: int, l_vec=None, alpha: float = 0.05):
    r"""Conventional confidence interval for :math:`\theta = l'\tau` under parallel trends.

    Parameters
    ----------
    betahat : array_like
        Event-study coefficients, ``num_pre`` pre-periods then ``num_post`` post-periods
        (reference period excluded), in time order.
    sigma : array_like
        Their covariance matrix.
    num_pre, num_post : int
        Numbers of pre- and post-period coefficients.
    l_vec : array_like, optional
        Weights on the post-period effects; default the first post period.
    alpha : float, default 0.05
        One minus the confidence level.

    Returns
    -------
    tuple of float
        ``(lb, ub)`` = :math:`l'\hat\beta_{post} \mp z_{1-\alpha/2}\sqrt{l'\Sigma_{post}l}`, valid
        only if :math:`\delta_{post} = 0` (exact parallel trends), R ``constructOriginalCS``.

    Examples
    --------
    >>> lb, ub = original_ci([0.0, 1.0], [[1.0, 0.0], [0.0, 1.0]], 1, 1)
    >>> round(lb, 4), round(ub, 4)
    (-0.96, 2.96)
    """
    b, S, K, _, lv, alpha = _check_inputs(betahat, sigma, num_pre, num_post, l_vec, alpha, min_pre=0)
    est = float(lv @ b[K:])
    se = float(np.sqrt(max(lv @ S[K:, K:] @ lv, 0.0)))
    z = _z(alpha)
    return est - z * se, est + z * se


# ----------------------------------------------------------------------------------
# restriction matrices
# ----------------------------------------------------------------------------------
def _first_differences(K: int, T: int) -> np.ndarray:
    """``(K+T) x (K+T+1)`` first differences of ``(delta_{-K}, ..., delta_0, ..., delta_T)``."""
    D = np.zeros((K + T, K + T + 1))
    idx = np.arange(K + T)
    D[idx, idx] = -1.0
    D[idx, idx + 1] = 1.0
    return D


def _rm_constraints(K: int, T: int, mbar: float, s: int, positive: bool):
    r"""Rows ``A`` of :math:`\Delta^{RM}_{s,\pm}(\bar M) = \{\delta: A\delta \le 0\}`.

    ``s`` in ``-(K-1), ..., 0`` is the period whose change :math:`\delta_s - \delta_{s-1}`
    (times the sign) is the largest pre-period change. Returns ``A`` (columns: the
    ``K + T`` coefficients, reference period dropped) and a mask of the rows that involve
    post-period coefficients.
    """
    D = _first_differences(K, T)
    v = D[K - 1 + s] * (1.0 if positive else -1.0)
    bound = np.vstack([np.tile(v, (K, 1)), np.tile(mbar * v, (T, 1))])
    A = np.vstack([D - bound, -D - bound])
    A = A[np.einsum("ij,ij->i", A, A) > 1e-20]
    A = np.delete(A, K, axis=1)
    post = np.any(A[:, K:] != 0, axis=1)
    return A, post


def _sd_constraints(K: int, T: int) -> np.ndarray:
    """``(K+T-1) x (K+T)`` second differences with ``delta_0 = 0`` (column dropped)."""
    n = K + T + 1
    A = np.zeros((n - 2, n))
    idx = np.arange(n - 2)
    A[idx, idx] = 1.0
    A[idx, idx + 1] = -2.0
    A[idx, idx + 2] = 1.0
    return np.delete(A, K, axis=1)


# ----------------------------------------------------------------------------------
# identified sets (population bounds; used by tests and for the grid range)
# ----------------------------------------------------------------------------------
def _lp_bounds(A, d, K, T, beta, lv):
    """Return the min and max of ``l'delta_post`` over ``{A delta <= d, delta_pre = beta_pre}``."""
    c = np.concatenate([np.zeros(K), lv])
    A_eq = np.hstack([np.eye(K), np.zeros((K, T))])
    out = []
    for sign in (1.0, -1.0):
        res = optimize.linprog(sign * c, A_ub=A, b_ub=d, A_eq=A_eq, b_eq=beta[:K],
                               bounds=[(None, None)] * (K + T), method="highs")
        if res.status == 2:  # infeasible
            return None
        if res.status != 0:
            return (-np.inf, np.inf)
        out.append(sign * res.fun)
    return out[0], out[1]


def identified_set(betahat, num_pre: int, num_post: int, method: str = "rm", M: float = 1.0,
                   l_vec=None):
    r"""Compute the identified set for :math:`\theta = l'\tau` given population coefficients.

    Parameters
    ----------
    betahat : array_like
        Population event-study coefficients :math:`\beta` (pre then post periods).
    num_pre, num_post : int
        Numbers of pre- and post-period coefficients.
    method : {"rm", "sd"}, default "rm"
        Relative magnitudes :math:`\Delta^{RM}(\bar M)` or smoothness :math:`\Delta^{SD}(M)`.
    M : float, default 1.0
        :math:`\bar M` or :math:`M`.
    l_vec : array_like, optional
        Weights on the post-period effects; default the first post period.

    Returns
    -------
    tuple of float
        ``(lb, ub)``: the smallest and largest :math:`l'(\beta_{post} - \delta_{post})` over
        :math:`\delta \in \Delta` with :math:`\delta_{pre} = \beta_{pre}` (R
        ``.compute_IDset_DeltaRM`` / ``.compute_IDset_DeltaSD``). ``(nan, nan)`` if no
        :math:`\delta \in \Delta` matches the pre-periods.

    Examples
    --------
    A linear differential trend of slope 1 (no effect), two pre and one post period:

    >>> identified_set([-2.0, -1.0, 1.0], 2, 1, "rm", M=1.0)
    (0.0, 2.0)
    >>> identified_set([-2.0, -1.0, 1.0], 2, 1, "sd", M=0.0)
    (0.0, 0.0)
    """
    b = np.asarray(betahat, dtype=float)
    K = _as_int(num_pre, "num_pre", 1)
    T = _as_int(num_post, "num_post", 1)
    if b.ndim != 1 or b.size != K + T or not np.all(np.isfinite(b)):
        raise ValueError(f"betahat must be a finite vector of num_pre + num_post = {K + T} entries")
    lv = np.zeros(T) if l_vec is None else np.asarray(l_vec, dtype=float).ravel()
    if l_vec is None:
        lv[0] = 1.0
    if lv.size != T:
        raise ValueError(f"l_vec must have num_post = {T} entries, got {lv.size}")
    method = _check_method(method)
    m = _check_m(M)
    est = float(lv @ b[K:])
    if method == "sd":
        A = _sd_constraints(K, T)
        r = _lp_bounds(np.vstack([A, -A]), np.full(2 * A.shape[0], m), K, T, b, lv)
        if r is None:
            return (np.nan, np.nan)
        return (est - r[1], est - r[0])
    lo, hi = np.inf, -np.inf
    for s in range(-(K - 1), 1):
        for positive in (True, False):
            A, _ = _rm_constraints(K, T, m, s, positive)
            r = _lp_bounds(A, np.zeros(A.shape[0]), K, T, b, lv)
            if r is None:
                continue
            lo, hi = min(lo, est - r[1]), max(hi, est - r[0])
    if lo > hi:
        return (np.nan, np.nan)
    return (float(lo), float(hi))


# ----------------------------------------------------------------------------------
# ARP conditional / hybrid moment-inequality test, by vertex enumeration
# ----------------------------------------------------------------------------------
def _cone_rays(X: np.ndarray) -> np.ndarray:
    r"""Extreme rays of :math:`\{\gamma \ge 0: \gamma' X = 0\}`, one per row, scaled to sum 1.

    The vertices of the dual polytope :math:`\{\gamma \ge 0: \gamma'X = 0, \gamma'sd = 1\}` of
    the ARP linear programme are these rays divided by :math:`\gamma'sd`, so they are found
    once for every scaling ``sd``. Basic solutions of ``(k+1)``-subsets of the ``m`` moments
    are enumerated; duplicates are removed. Cached on ``X`` (which does not depend on
    :math:`\bar M` or on the location of the largest pre-period change).
    """
    return _cone_rays_cached(np.ascontiguousarray(X, dtype=float).tobytes(), X.shape[0], X.shape[1])


@functools.lru_cache(maxsize=64)
def _cone_rays_cached(key: bytes, m: int, k: int) -> np.ndarray:
    X = np.frombuffer(key, dtype=float).reshape(m, k)
    if k:
        U, sv, _ = np.linalg.svd(X, full_matrices=False)
        X = U[:, sv > 1e-10 * max(float(sv.max()), 1e-300)]
    E = np.vstack([np.ones(m), X.T])
    r = E.shape[0]
    if r > m:
        return np.zeros((0, m))
    n_bases = math.comb(m, r)
    if n_bases > _MAX_BASES:
        raise ValueError(
            f"the relative-magnitudes test would enumerate {n_bases:,} bases ({m} moments, "
            f"{r - 1} nuisance parameters); use fewer post-periods (a shorter event window)"
        )
    out = []
    e1 = np.zeros(r)
    e1[0] = 1.0
    combos_iter = itertools.combinations(range(m), r)
    while True:
        chunk = np.array(list(itertools.islice(combos_iter, 100_000)), dtype=np.intp)
        if chunk.size == 0:
            break
        mats = np.transpose(E[:, chunk], (1, 0, 2))  # (n, r, r): columns are the basis moments
        sv = np.linalg.svd(mats, compute_uv=False)
        ok = sv[:, -1] > 1e-10 * sv[:, 0]
        if not np.any(ok):
            continue
        sol = np.linalg.solve(mats[ok], np.broadcast_to(e1, (int(ok.sum()), r))[..., None])[..., 0]
        feas = np.all(sol >= -1e-10, axis=1)
        if not np.any(feas):
            continue
        G = np.zeros((int(feas.sum()), m))
        rows = np.repeat(np.arange(G.shape[0]), r)
        G[rows, chunk[ok][feas].ravel()] = np.clip(sol[feas], 0.0, None).ravel()
        out.append(G)
    if not out:
        return np.zeros((0, m))
    G = np.vstack(out)
    G /= G.sum(axis=1, keepdims=True)
    _, first = np.unique(np.round(G, 11), axis=0, return_index=True)
    G = G[np.sort(first)]
    G.setflags(write=False)
    return G


class _ArpTest:
    r"""ARP test of :math:`E[Y - a\theta - X\tau] \le 0` for some nuisance :math:`\tau`.

    The statistic is :math:`\hat\eta = \max_\gamma \gamma'(Y - a\theta)` over the vertices
    :math:`\gamma` of the dual polytope (the value of R's linear programme
    ``.test_delta_lp_fn``). Conditional on the maximising vertex :math:`\gamma^*` and on the
    part of the moments independent of :math:`\gamma^{*\prime} Y`, :math:`\hat\eta` is
    normal truncated to :math:`[v^{lo}, v^{up}]`, both closed-form over the vertices.

    ``Y`` (``m`` moments) has covariance ``SY``; draws of the centred moments ``xi`` give the
    least-favourable critical value for the hybrid.
    """

    def __init__(self, Y, a, X, SY, alpha, hybrid, xi):
        self.alpha = alpha
        self.hybrid = hybrid
        sd = np.sqrt(np.clip(np.diag(SY), 0.0, None))
        if np.any(sd <= 1e-12 * max(float(sd.max()), 1e-300)):
            raise ValueError("a moment of the relative-magnitudes test has zero variance; "
                             "check that sigma is not singular")
        rays = _cone_rays(X)
        G = rays / (rays @ sd)[:, None]
        self.G = G
        self.empty = G.shape[0] == 0
        if self.empty:
            return
        self.gY = G @ Y
        self.ga = G @ a
        self.Q = G @ SY @ G.T
        self.q = np.diag(self.Q).copy()
        kappa = alpha / 10
        self.kappa = kappa
        if hybrid:
            eta_sim = np.empty(xi.shape[0])
            for i0 in range(0, xi.shape[0], 2000):
                eta_sim[i0:i0 + 2000] = np.max(xi[i0:i0 + 2000] @ G.T, axis=1)
            self.lf_cv = float(np.quantile(eta_sim, 1 - kappa))
            self.size2 = (alpha - kappa) / (1 - kappa)
        else:
            self.lf_cv = np.inf
            self.size2 = alpha

    def statistics(self, theta):
        """Return ``(eta, sigma_B, v_lo, v_up, degenerate)`` at each ``theta`` (arrays).

        ``eta`` is the test statistic (the value of the linear programme), ``sigma_B`` the
        standard deviation of the maximising vertex's combination of moments, and
        ``[v_lo, v_up]`` the truncation interval of ``eta`` given that vertex and the
        independent part of the moments.
        """
        th = np.atleast_1d(np.asarray(theta, dtype=float))
        vals = self.gY[:, None] - self.ga[:, None] * th[None, :]
        j = np.argmax(vals, axis=0)
        eta = vals[j, np.arange(th.size)]
        qj = self.q[j]
        sig = np.sqrt(np.clip(qj, 0.0, None))
        degenerate = sig <= 1e-10 * np.sqrt(np.max(self.q))
        rho = self.Q[:, j] / np.where(degenerate, 1.0, qj)[None, :]
        denom = 1.0 - rho
        sproj = vals - rho * eta[None, :]
        pos, neg = denom > _TOL_RHO, denom < -_TOL_RHO
        ratio = sproj / np.where(pos | neg, denom, 1.0)
        vlo = np.max(np.where(pos, ratio, -np.inf), axis=0)
        vup = np.min(np.where(neg, ratio, np.inf), axis=0)
        return eta, sig, vlo, vup, degenerate

    def accept(self, theta) -> np.ndarray:
        """Return a boolean array, True where ``theta`` is accepted (not rejected)."""
        th = np.atleast_1d(np.asarray(theta, dtype=float))
        if self.empty:
            return np.ones(th.shape, dtype=bool)
        eta, sig, vlo, vup, degenerate = self.statistics(th)
        first_stage = eta > self.lf_cv
        vup = np.minimum(vup, self.lf_cv)
        sig_safe = np.where(degenerate, 1.0, sig)
        stat, zlo, zup = eta / sig_safe, vlo / sig_safe, vup / sig_safe
        slack = 1e-9 * (1.0 + np.abs(stat))
        inside = (zlo <= stat + slack) & (stat <= zup + slack)
        zlo = np.minimum(zlo, stat)
        zup = np.maximum(zup, stat)
        reject = first_stage.copy()
        todo = ~first_stage & inside & ~degenerate
        if np.any(todo):
            with np.errstate(invalid="ignore", divide="ignore"):
                cval = stats.truncnorm.ppf(1 - self.size2, zlo[todo], zup[todo])
            cval = np.where(np.isnan(cval), np.inf, np.maximum(cval, 0.0))
            reject[todo] = stat[todo] > cval
        reject[degenerate & ~first_stage] = eta[degenerate & ~first_stage] > 0
        return ~reject


def _gamma_inverse(lv: np.ndarray) -> np.ndarray:
    """``Gamma^{-1}`` for ``Gamma = [l'; N']``, ``N`` an orthonormal basis of ``l``'s complement."""
    T = lv.size
    if T == 1:
        return np.array([[1.0 / lv[0]]])
    _, _, vt = np.linalg.svd(lv[None, :])
    N = vt[1:].T
    return np.hstack([(lv / (lv @ lv))[:, None], N])


def _hull(test: _ArpTest, lo: float, hi: float, n_grid: int):
    """``(min, max)`` of the accepted set of ``test`` (grid, then bisection); None if empty."""
    for _ in range(8):
        grid = np.linspace(lo, hi, n_grid)
        acc = test.accept(grid)
        if not np.any(acc):
            return None
        idx = np.flatnonzero(acc)
        i0, i1 = int(idx[0]), int(idx[-1])
        width = hi - lo
        if i0 == 0 or i1 == n_grid - 1:
            lo = lo - width if i0 == 0 else lo
            hi = hi + width if i1 == n_grid - 1 else hi
            continue
        return (_refine(test, grid[i0 - 1], grid[i0]), _refine(test, grid[i1 + 1], grid[i1]))
    warnings.warn("the robust confidence set is unbounded within the search range; "
                  "reporting an infinite bound", stacklevel=3)
    lo_b = -np.inf if test.accept(np.array([lo]))[0] else lo
    hi_b = np.inf if test.accept(np.array([hi]))[0] else hi
    return (lo_b, hi_b)


def _refine(test: _ArpTest, rejected: float, accepted: float, rounds: int = 6) -> float:
    """Bisect (16-way) between a rejected and an accepted value; return the boundary."""
    a, b = rejected, accepted
    for _ in range(rounds):
        pts = np.linspace(a, b, 17)
        acc = test.accept(pts)
        k = int(np.argmax(acc))  # first accepted point from the rejected end (b is accepted)
        if k == 0:
            return float(a)
        a, b = pts[k - 1], pts[k]
    return float((a + b) / 2)


@dataclass
class _LFDraws:
    """Standard-normal draws shared by every least-favourable critical value of a call."""

    z: np.ndarray
    root: np.ndarray  # Sigma = root @ root.T

    @classmethod
    def make(cls, S: np.ndarray, sims: int, seed) -> _LFDraws:
        w, V = np.linalg.eigh(S)
        root = V * np.sqrt(np.clip(w, 0.0, None))
        rng = np.random.default_rng(seed)
        return cls(rng.standard_normal((sims, S.shape[0])), root)

    def moments(self, A: np.ndarray) -> np.ndarray:
        return self.z @ (A @ self.root).T


def rm_ci(betahat, sigma, num_pre: int, num_post: int, mbar: float = 1.0, l_vec=None,
          alpha: float = 0.05, inference: str = "C-LF", grid_points: int = 201,
          lf_sims: int = 5000, seed=0):
    r"""Robust confidence interval for :math:`\theta = l'\tau` under :math:`\Delta^{RM}(\bar M)`.

    Parameters
    ----------
    betahat, sigma, num_pre, num_post, l_vec, alpha
        As in :func:`honest_bounds`.
    mbar : float, default 1.0
        :math:`\bar M \ge 0`: post-period changes in the trend difference are at most
        :math:`\bar M` times the largest pre-period change.
    inference : {"C-LF", "Conditional"}, default "C-LF"
        Conditional-least-favourable hybrid (R's default) or the conditional test.
    grid_points : int, default 201
        Points of the initial grid over :math:`\theta` (endpoints are then bisected).
    lf_sims : int, default 5000
        Simulation draws for the least-favourable critical value.
    seed : int or numpy.random.SeedSequence, default 0
        Seed of those draws.

    Returns
    -------
    tuple of float
        ``(lb, ub)``: the smallest and largest :math:`\theta` not rejected for some location
        and sign of the largest pre-period change. ``(nan, nan)`` (with a warning) if every
        :math:`\theta` is rejected, i.e. the data reject :math:`\Delta^{RM}(\bar M)` itself.

    Raises
    ------
    ValueError
        Bad inputs (see :func:`honest_bounds`).
    """
    b, S, K, T, lv, alpha = _check_inputs(betahat, sigma, num_pre, num_post, l_vec, alpha)
    mbar = _check_m(mbar, "mbar")
    inference, grid_points, draws = _rm_options(S, inference, grid_points, lf_sims, seed)
    return _rm_ci(b, S, K, T, lv, mbar, alpha, inference, grid_points, draws)


def _rm_options(S, inference, grid_points, lf_sims, seed, needed=True):
    """Check the options of the relative-magnitudes interval; make the shared draws."""
    if inference not in _RM_INFERENCE:
        raise ValueError(f"inference must be one of {_RM_INFERENCE}, got {inference!r}")
    grid_points = _as_int(grid_points, "grid_points", 11)
    lf_sims = _as_int(lf_sims, "lf_sims", 100)
    draws = _LFDraws.make(S, lf_sims, seed) if needed and inference == "C-LF" else None
    return inference, grid_points, draws


def _rm_ci(b, S, K, T, lv, mbar, alpha, inference, grid_points, draws):
    """Relative-magnitudes interval on validated inputs (see :func:`rm_ci`)."""
    gamma_inv = _gamma_inverse(lv)
    # search range: the estimate, widened by the largest identified-set width and 20 sd
    est = float(lv @ b[K:])
    sd_theta = float(np.sqrt(max(lv @ S[K:, K:] @ lv, 0.0)))
    D = _first_differences(K, 0)
    Dpre = np.delete(D, K, axis=1) if K else D
    pre_diff = Dpre @ b[:K]
    pre_sd = np.sqrt(np.clip(np.diag(Dpre @ S[:K, :K] @ Dpre.T), 0.0, None))
    l1 = float(np.sum(np.abs(lv) * np.arange(1, T + 1)))
    half = mbar * l1 * float(np.max(np.abs(pre_diff)) + 20 * np.max(pre_sd)) + 20 * sd_theta
    lo, hi = est - half, est + half
    bounds = []
    for s in range(-(K - 1), 1):
        for positive in (True, False):
            A, post = _rm_constraints(K, T, mbar, s, positive)
            rows = post if T > 1 else np.ones(A.shape[0], dtype=bool)
            Ar = A[rows]
            AGi = Ar[:, K:] @ gamma_inv
            xi = draws.moments(Ar) if inference == "C-LF" else None
            test = _ArpTest(Ar @ b, AGi[:, 0], AGi[:, 1:], Ar @ S @ Ar.T, alpha,
                            inference == "C-LF", xi)
            h = _hull(test, lo, hi, grid_points)
            if h is not None:
                bounds.append(h)
    if not bounds:
        warnings.warn(f"every value of theta is rejected at Mbar={mbar:g}: the data reject the "
                      "relative-magnitudes restriction itself", stacklevel=3)
        return (np.nan, np.nan)
    return (float(min(x[0] for x in bounds)), float(max(x[1] for x in bounds)))


# ----------------------------------------------------------------------------------
# FLCI for Delta^SD(M)
# ----------------------------------------------------------------------------------
def _cv_folded(x: float, alpha: float) -> float:
    """``1 - alpha`` quantile of ``|N(x, 1)|`` (exact, by root finding)."""
    x = abs(float(x))
    z1, z2 = stats.norm.ppf(1 - alpha), stats.norm.ppf(1 - alpha / 2)
    if x > 40:
        return x + z1

    def f(c):
        return special.ndtr(c - x) - special.ndtr(-c - x) - (1 - alpha)

    lo, hi = x + z1, x + z2
    flo, fhi = f(lo), f(hi)
    if flo >= 0:
        return lo
    if fhi <= 0:
        return hi
    return optimize.brentq(f, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)


@dataclass(frozen=True)
class FLCIResult:
    """Optimal fixed-length confidence interval for Delta^SD(M).

    Attributes
    ----------
    lb, ub : float
        The interval ``estimate -/+ half_length``.
    estimate : float
        The affine estimator ``weights' betahat``.
    half_length : float
        ``sd * cv_alpha(max_bias / sd)``, the shortest over affine estimators.
    weights : numpy.ndarray
        Weights on ``betahat`` (pre-periods then post-periods; the post part is ``l_vec``).
    sd : float
        Standard deviation of the estimator.
    max_bias : float
        Its worst-case bias over Delta^SD(M).
    """

    lb: float
    ub: float
    estimate: float
    half_length: float
    weights: np.ndarray = field(repr=False)
    sd: float
    max_bias: float


def _sd_structure(K: int, T: int, lv: np.ndarray):
    """Map free second-sum weights ``g`` (K-1) to pre-period weights ``w = B g + w0``.

    The worst-case bias over Delta^SD(M) of ``w'beta_pre + l'beta_post`` (whose linear-trend
    bias is zero) is ``M * (||g||_1 + c_post)``; ``g_t`` is the double cumulative sum of the
    weights from the left end (pre) or right end (post).
    """
    j = np.arange(1, T + 1)
    g0 = float(j @ lv)
    c_post = abs(g0) + sum(abs(float((j[j > t] - t) @ lv[j > t])) for t in range(1, T))
    B = np.zeros((K, max(K - 1, 0)))
    w0 = np.zeros(K)

    def put(row, u, coef):
        # u is an event time; free g_u for -K+1 <= u <= -1, g_0 fixed, zero before -K+1
        if -K + 1 <= u <= -1:
            B[row, u + K - 1] += coef
        elif u == 0:
            w0[row] += coef * g0

    for k in range(K):
        t = k - K
        put(k, t + 1, 1.0)
        put(k, t, -2.0)
        put(k, t - 1, 1.0)
    return B, w0, c_post


def flci_sd(betahat, sigma, num_pre: int, num_post: int, M: float = 0.0, l_vec=None,
            alpha: float = 0.05) -> FLCIResult:
    r"""Optimal fixed-length confidence interval under smoothness :math:`\Delta^{SD}(M)`.

    Among affine estimators :math:`w'\hat\beta_{pre} + l'\hat\beta_{post}` whose bias is
    bounded over :math:`\Delta^{SD}(M)` (they must be unbiased for linear trends), chooses
    :math:`w` to minimise the half-length :math:`sd \cdot cv_\alpha(\overline{bias}/sd)`, where
    :math:`cv_\alpha(b)` is the :math:`1-\alpha` quantile of :math:`|N(b,1)|`. The interval covers
    :math:`\theta` with probability at least :math:`1-\alpha` for every
    :math:`\delta \in \Delta^{SD}(M)` (Armstrong & Kolesar 2018; R ``findOptimalFLCI``).

    Parameters
    ----------
    betahat, sigma, num_pre, num_post, l_vec, alpha
        As in :func:`honest_bounds`.
    M : float, default 0.0
        Bound on the second differences of :math:`\delta`.

    Returns
    -------
    FLCIResult
        Interval, estimate, weights, standard deviation and worst-case bias.

    Notes
    -----
    The half-length is convex in the free weights (a perspective of the convex function
    :math:`cv_\alpha`), so the minimum found by L-BFGS-B from two starting points (minimum
    variance, minimum bias) is global.

    Examples
    --------
    >>> S = [[1.0, 0.5, 0.3], [0.5, 1.0, 0.5], [0.3, 0.5, 1.0]]
    >>> r = flci_sd([0.1, 0.0, 1.0], S, 2, 1, M=0.0)
    >>> round(r.estimate, 4), round(r.half_length, 4)
    (1.0733, 2.308)
    """
    b, S, K, T, lv, alpha = _check_inputs(betahat, sigma, num_pre, num_post, l_vec, alpha)
    M = _check_m(M)
    B, w0, c_post = _sd_structure(K, T, lv)
    Spp, Spq, Sqq = S[:K, :K], S[:K, K:], S[K:, K:]
    H = B.T @ Spp @ B
    h = B.T @ (Spp @ w0 + Spq @ lv)
    h0 = float(w0 @ Spp @ w0 + 2 * w0 @ Spq @ lv + lv @ Sqq @ lv)
    nf = B.shape[1]

    def var(g):
        return float(g @ H @ g + 2 * h @ g + h0)

    if nf == 0:
        g_best = np.zeros(0)
    else:
        try:
            g_minvar = np.linalg.solve(H, -h)
        except np.linalg.LinAlgError:
            g_minvar = np.linalg.lstsq(H, -h, rcond=None)[0]
        if M == 0:
            g_best = g_minvar
        else:
            scale = math.sqrt(max(var(g_minvar), 1e-300))

            def obj(x):
                p, n = x[:nf], x[nf:]
                g = p - n
                v = max(var(g), 1e-300)
                s = math.sqrt(v)
                bias = M * (float(np.sum(x)) + c_post)
                xr = bias / s
                c = _cv_folded(xr, alpha)
                th = math.tanh(c * xr)
                f = s * c
                ds_dg = (H @ g + h) / s
                df_ds = c - xr * th
                df_db = th
                grad_g = df_ds * ds_dg
                grad = np.concatenate([grad_g + df_db * M, -grad_g + df_db * M])
                return f / scale, grad / scale

            best = None
            for g_start in (g_minvar, np.zeros(nf)):
                x0 = np.concatenate([np.clip(g_start, 0, None), np.clip(-g_start, 0, None)])
                res = optimize.minimize(obj, x0, jac=True, method="L-BFGS-B",
                                        bounds=[(0.0, None)] * (2 * nf),
                                        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
                if best is None or res.fun < best.fun:
                    best = res
            assert best is not None  # two starts were tried
            g_best = best.x[:nf] - best.x[nf:]
    w = B @ g_best + w0
    sd = math.sqrt(max(var(g_best), 0.0))
    max_bias = M * (float(np.sum(np.abs(g_best))) + c_post)
    if sd <= 0:
        half = max_bias
    else:
        half = sd * _cv_folded(max_bias / sd, alpha)
    weights = np.concatenate([w, lv])
    est = float(weights @ b)
    return FLCIResult(float(est - half), float(est + half), est, float(half), weights, sd, float(max_bias))


# ----------------------------------------------------------------------------------
# public wrappers
# ----------------------------------------------------------------------------------
def default_sd_grid(betahat, sigma, num_pre: int, num_post: int, alpha: float = 0.05,
                    n: int = 10) -> np.ndarray:
    r"""Default values of :math:`M` for smoothness: ``n`` points from 0 to an upper bound.

    The upper bound is the largest upper :math:`1-\alpha` confidence bound of the absolute
    pre-period second differences of :math:`\hat\beta` (with the reference period at zero),
    i.e. a non-linearity the pre-periods cannot rule out; with one pre-period it is the
    standard error of that coefficient (R's default for ``numPrePeriods == 1``).

    Parameters
    ----------
    betahat, sigma, num_pre, num_post, alpha
        As in :func:`honest_bounds`.
    n : int, default 10
        Number of grid points.

    Returns
    -------
    numpy.ndarray
        ``linspace(0, upper, n)``.
    """
    b, S, K, _, _, alpha = _check_inputs(betahat, sigma, num_pre, num_post, None, alpha)
    if K == 1:
        upper = float(np.sqrt(S[0, 0]))
    else:
        A = _sd_constraints(K, 0)[:, :K] if K > 1 else np.zeros((0, K))
        est = A @ b[:K]
        se = np.sqrt(np.clip(np.diag(A @ S[:K, :K] @ A.T), 0.0, None))
        upper = float(np.max(np.abs(est) + stats.norm.ppf(1 - alpha) * se))
    return np.linspace(0.0, upper, _as_int(n, "n", 2))


def _grid(values, method, b, S, K, T, alpha) -> np.ndarray:
    if values is None:
        return (np.asarray(DEFAULT_RM_GRID) if method == "rm"
                else default_sd_grid(b, S, K, T, alpha))
    g = np.atleast_1d(np.asarray(values, dtype=float))
    if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ValueError(f"grid must be a non-empty sequence of finite numbers >= 0, got {values!r}")
    return g


def _robust_ci(method, b, S, K, T, lv, m, alpha, inference, grid_points, draws):
    if method == "sd":
        r = flci_sd(b, S, K, T, m, lv, alpha)
        return r.lb, r.ub
    return _rm_ci(b, S, K, T, lv, m, alpha, inference, grid_points, draws)


def honest_bounds(betahat, sigma, num_pre: int, num_post: int, method: str = "rm", grid=None,
                  l_vec=None, alpha: float = 0.05, inference: str = "C-LF",
                  grid_points: int = 201, lf_sims: int = 5000, seed=0) -> pd.DataFrame:
    r"""Robust confidence intervals for :math:`\theta = l'\tau` over a grid of restrictions.

    Parameters
    ----------
    betahat : array_like
        Event-study coefficients: ``num_pre`` pre-periods then ``num_post`` post-periods, in
        time order, the reference period (the one just before treatment) excluded. Periods
        must be consecutive and equally spaced.
    sigma : array_like
        Their covariance matrix (square, symmetric, positive semi-definite).
    num_pre : int
        Number of pre-period coefficients (at least 1).
    num_post : int
        Number of post-period coefficients (at least 1).
    method : {"rm", "sd"}, default "rm"
        ``"rm"``: relative magnitudes :math:`\Delta^{RM}(\bar M)` (C-LF hybrid test);
        ``"sd"``: smoothness :math:`\Delta^{SD}(M)` (optimal FLCI).
    grid : sequence of float, optional
        Values of :math:`\bar M` or :math:`M`. Default: :data:`DEFAULT_RM_GRID` for ``"rm"``,
        :func:`default_sd_grid` for ``"sd"``.
    l_vec : array_like, optional
        Weights of the target on the post-period effects; default the first post period
        (``[1, 0, ...]``). ``np.full(num_post, 1 / num_post)`` targets their average.
    alpha : float, default 0.05
        One minus the confidence level.
    inference : {"C-LF", "Conditional"}, default "C-LF"
        Test inverted for ``"rm"`` (ignored for ``"sd"``).
    grid_points : int, default 201
        Initial grid over :math:`\theta` for ``"rm"``; endpoints are then bisected.
    lf_sims : int, default 5000
        Draws for the least-favourable critical value (``"rm"`` with ``"C-LF"``).
    seed : int or numpy.random.SeedSequence, default 0
        Seed of those draws; the same draws are used for every value of the grid.

    Returns
    -------
    pandas.DataFrame
        Columns ``method`` (``"original"``, ``"rm"`` or ``"sd"``), ``M``, ``lb``, ``ub``,
        ``inference`` (``"conventional"``, ``"C-LF"``, ``"Conditional"`` or ``"FLCI"``). The
        first row is the conventional interval (``M`` missing), valid only under exact
        parallel trends; each further row is the robust interval at one value of the grid.

    Raises
    ------
    ValueError
        If ``sigma`` is not square, symmetric and positive semi-definite, the dimensions do
        not add up, ``num_pre < 1``, ``l_vec`` has the wrong length, ``alpha`` is not in
        (0, 1), the grid has negative values, or the method is unknown.

    Notes
    -----
    Assumptions: :math:`\hat\beta` is asymptotically normal with covariance ``sigma``
    (estimated consistently); no anticipation, so pre-period coefficients measure only the
    trend difference; the true :math:`\delta` lies in the chosen :math:`\Delta`. The bounds
    are pointwise in :math:`M`: reading off the whole sensitivity curve does not change the
    coverage of each interval, but the intervals are not simultaneous.

    Examples
    --------
    >>> S = [[1.0, 0.5, 0.3], [0.5, 1.0, 0.5], [0.3, 0.5, 1.0]]
    >>> t = honest_bounds([0.1, 0.0, 5.0], S, 2, 1, method="sd", grid=[0.0, 1.0])
    >>> print(t.round(3).to_string(index=False))
      method   M    lb    ub    inference
    original NaN 3.040 6.960 conventional
          sd 0.0 2.765 7.381         FLCI
          sd 1.0 1.501 8.595         FLCI
    """
    b, S, K, T, lv, alpha = _check_inputs(betahat, sigma, num_pre, num_post, l_vec, alpha)
    method = _check_method(method)
    g = _grid(grid, method, b, S, K, T, alpha)
    inference, grid_points, draws = _rm_options(S, inference, grid_points, lf_sims, seed, method == "rm")
    lo0, hi0 = original_ci(b, S, K, T, lv, alpha)
    rows = [{"method": "original", "M": np.nan, "lb": lo0, "ub": hi0, "inference": "conventional"}]
    label = "FLCI" if method == "sd" else inference
    for m in g:
        lb, ub = _robust_ci(method, b, S, K, T, lv, float(m), alpha, inference, grid_points, draws)
        rows.append({"method": method, "M": float(m), "lb": lb, "ub": ub, "inference": label})
    return pd.DataFrame(rows, columns=["method", "M", "lb", "ub", "inference"])


def breakdown_value(betahat, sigma, num_pre: int, num_post: int, method: str = "rm",
                    l_vec=None, alpha: float = 0.05, m_max: float | None = None,
                    tol: float | None = None, inference: str = "C-LF", grid_points: int = 201,
                    lf_sims: int = 5000, seed=0) -> float:
    r"""Largest :math:`\bar M` (or :math:`M`) at which the robust interval still excludes zero.

    Scans 8 equally spaced values up to ``m_max`` (doubling ``m_max`` while the interval
    still excludes zero at the top, at most 12 times), then bisects between the last value
    at which the interval excludes zero and the first at which it does not.

    Parameters
    ----------
    betahat, sigma, num_pre, num_post, method, l_vec, alpha, inference, grid_points, lf_sims, seed
        As in :func:`honest_bounds`.
    m_max : float, optional
        Top of the initial scan; default 2 for ``"rm"``, the top of :func:`default_sd_grid`
        for ``"sd"``.
    tol : float, optional
        Precision of the bisection; default ``m_max / 1000``.

    Returns
    -------
    float
        The breakdown value, to within ``tol`` (the returned value is one at which the
        interval was found to exclude zero). ``nan`` if the interval at :math:`M = 0` already
        contains zero (the conclusion is not significant even without violations);
        ``inf`` if it excludes zero up to ``m_max * 2**12``.

    Notes
    -----
    Assumes that the interval widens with :math:`M`, which holds for the identified set and
    (up to simulation noise for C-LF) for the intervals.

    Examples
    --------
    >>> S = [[1.0, 0.5, 0.3], [0.5, 1.0, 0.5], [0.3, 0.5, 1.0]]
    >>> round(breakdown_value([0.1, 0.0, 5.0], S, 2, 1, method="sd", m_max=1.0), 2)
    2.15
    """
    b, S, K, T, lv, alpha = _check_inputs(betahat, sigma, num_pre, num_post, l_vec, alpha)
    method = _check_method(method)
    if m_max is None:
        m_max = 2.0 if method == "rm" else float(default_sd_grid(b, S, K, T, alpha)[-1])
        if m_max <= 0:
            m_max = float(np.sqrt(np.max(np.diag(S))))
    m_max = _check_m(m_max, "m_max")
    if m_max == 0:
        raise ValueError("m_max must be > 0")
    tol = m_max / 1000 if tol is None else _check_m(tol, "tol")
    if tol <= 0:
        raise ValueError("tol must be > 0")
    inference, grid_points, draws = _rm_options(S, inference, grid_points, lf_sims, seed, method == "rm")

    def excludes_zero(m):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lb, ub = _robust_ci(method, b, S, K, T, lv, m, alpha, inference, grid_points, draws)
        if np.isnan(lb):  # empty set: nothing is accepted, zero included
            return True
        return bool(lb > 0 or ub < 0)

    if not excludes_zero(0.0):
        return float("nan")
    lo = 0.0
    top = m_max
    hi = None
    for _ in range(13):
        for m in np.linspace(lo, top, 9)[1:]:
            if excludes_zero(float(m)):
                lo = float(m)
            else:
                hi = float(m)
                break
        if hi is not None:
            break
        top *= 2
        tol = max(tol, top / 1e6)
    if hi is None:
        return float("inf")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if excludes_zero(mid):
            lo = mid
        else:
            hi = mid
    return float(lo)


# ----------------------------------------------------------------------------------
# from an estimator's event study
# ----------------------------------------------------------------------------------
@dataclass
class HonestResult:
    """Sensitivity analysis of an event study (output of :func:`honest_from_result`).

    Attributes
    ----------
    bounds : pandas.DataFrame
        One row per target, method and value of the grid: ``target`` (``"e=0"``, ...,
        ``"average"``), ``event_time`` (missing for the average), ``method``
        (``"original"``, ``"rm"``, ``"sd"``), ``M``, ``lb``, ``ub``, ``inference``.
    breakdown : pandas.DataFrame
        ``target``, ``event_time``, ``method``, ``breakdown`` (see :func:`breakdown_value`).
    betahat, sigma : numpy.ndarray
        The event-study vector and covariance used (reference period excluded).
    event_times : numpy.ndarray
        Event times of ``betahat``.
    num_pre, num_post : int
        Numbers of pre- and post-period coefficients.
    info : dict
        Reference period, rows dropped and the options used.
    """

    bounds: pd.DataFrame
    breakdown: pd.DataFrame
    betahat: np.ndarray = field(repr=False)
    sigma: np.ndarray = field(repr=False)
    event_times: np.ndarray
    num_pre: int
    num_post: int
    info: dict[str, Any] = field(default_factory=dict)


def honest_from_result(result: DiDResult, methods=("rm", "sd"), rm_grid=None, sd_grid=None,
                       alpha: float = 0.05, breakdown: bool = True, drop_binned: bool = True,
                       inference: str = "C-LF", grid_points: int = 201, lf_sims: int = 5000,
                       seed=0) -> HonestResult:
    r"""Sensitivity analysis of an event study from Callaway-Sant'Anna or TWFE.

    Runs :func:`honest_bounds` (and :func:`breakdown_value`) for each post-treatment effect
    (event times ``e >= 0``) and for their average.

    Parameters
    ----------
    result : DiDResult
        ``callaway_santanna.aggregate(att_gt(..., base_period="universal"), kind="event")``
        or ``twfe.twfe_event_study(...)``: rows with aggregation ``"event"`` and
        a ``vcov`` (an array aligned with the table rows, or a frame indexed by event
        time). The reference period is the row with estimate 0 and no standard error
        (default ``-1`` if there is none); pre-periods are the event times before it,
        post-periods those after it. The overall row is ignored.
    methods : sequence of {"rm", "sd"}, default ("rm", "sd")
        Restrictions to analyse.
    rm_grid, sd_grid : sequence of float, optional
        Grids of :math:`\bar M` and :math:`M` (defaults as in :func:`honest_bounds`).
    alpha : float, default 0.05
        One minus the confidence level.
    breakdown : bool, default True
        Also compute breakdown values.
    drop_binned : bool, default True
        Drop binned endpoint coefficients of a TWFE event study (``"e<=-k"``, ``"e>=k"``):
        they pool several event times and break the consecutive-period structure.
    inference, grid_points, lf_sims, seed
        As in :func:`honest_bounds`.

    Returns
    -------
    HonestResult
        ``bounds`` and ``breakdown`` frames and the inputs used.

    Raises
    ------
    ValueError
        If ``result`` is not an event study with a covariance, uses Callaway-Sant'Anna's
        ``base_period="varying"`` (its pre-period estimates are short placebo differences,
        not deviations from a common reference period, as R's ``honest_did`` also requires),
        its event times are not consecutive, or it has no pre- or post-period.

    Notes
    -----
    With anticipation (reference period before ``-1``) the event times between the
    reference period and 0 are treated as post-periods of the restriction but are not
    targets, and the average is over ``e >= 0``. Bounds for different targets are
    pointwise, not simultaneous.
    """
    es = event_study_inputs(result, drop_binned)
    b, S, times, ref, info = es.betahat, es.sigma, es.event_times, es.reference, es.info
    K = int(np.sum(times < ref))
    T = int(np.sum(times > ref))
    if K < 1:
        raise ValueError("the event study has no pre-period coefficient before the reference period")
    if T < 1:
        raise ValueError("the event study has no post-period coefficient after the reference period")
    if isinstance(methods, str):
        methods = (methods,)
    for m in methods:
        _check_method(m)
    post_t = times[K:]
    targets: list[tuple[str, float, np.ndarray]] = []
    for j, e in enumerate(post_t):
        if e >= 0:
            lv = np.zeros(T)
            lv[j] = 1.0
            targets.append((f"e={e:g}", float(e), lv))
    nonneg = post_t >= 0
    if nonneg.sum() > 1:
        lv = np.where(nonneg, 1.0 / nonneg.sum(), 0.0)
        targets.append(("average", np.nan, lv))
    bound_rows, bd_rows = [], []
    for name, e, lv in targets:
        for i, m in enumerate(methods):
            grid = rm_grid if m == "rm" else sd_grid
            t = honest_bounds(b, S, K, T, m, grid, lv, alpha, inference, grid_points, lf_sims, seed)
            if i > 0:
                t = t[t["method"] != "original"].copy()  # the conventional row once per target
            t.insert(0, "event_time", e)
            t.insert(0, "target", name)
            bound_rows.append(t)
            if breakdown:
                g = _grid(grid, m, b, S, K, T, alpha)
                top = float(g.max()) if g.max() > 0 else None
                bd = breakdown_value(b, S, K, T, m, lv, alpha, m_max=top, inference=inference,
                                     grid_points=grid_points, lf_sims=lf_sims, seed=seed)
                bd_rows.append({"target": name, "event_time": e, "method": m, "breakdown": bd})
    bounds = pd.concat(bound_rows, ignore_index=True)
    bd_frame = pd.DataFrame(bd_rows, columns=["target", "event_time", "method", "breakdown"])
    info.update({"methods": list(methods), "alpha": alpha, "inference": inference,
                 "lf_sims": lf_sims, "seed": json.dumps(seed, default=str)})
    return HonestResult(bounds, bd_frame, b, S, times, K, T, info)
