r"""Wild cluster bootstrap-t with few clusters: the TWFE coefficient and influence-function estimates.

Two versions of the restricted wild cluster bootstrap (WCR) live here, sharing their
weights, p-value and test inversion:

* :func:`wild_cluster_bootstrap`: the static TWFE regression, re-estimated for every draw
  (exactly, through cluster-level sums; below);
* :func:`wild_score_bootstrap` and :func:`wild_score_wald`: any asymptotically linear
  estimator given by its per-unit influence functions, such as the Callaway-Sant'Anna
  headline ATT and its pre-period ATT(g,t) (the *score* bootstrap; section "Score
  version" below).

Model and test (TWFE)
---------------------
The static two-way fixed-effects regression of :func:`analysis.estimators.twfe.twfe`,

.. math:: y_{it} = a_i + l_t + \beta D_{it} + u_{it}, \qquad D_{it} = 1\{g_i > 0,\ t \ge g_i\},

with errors independent across clusters ``c`` (townships) but arbitrarily correlated
within them. The null is :math:`H_0: \beta = \beta_0`. The statistic is the CRV1
t-statistic :math:`t = (\hat\beta - \beta_0) / se_{CRV1}` with the small-sample factor of
``twfe.py`` (:math:`c = G/(G-1) \cdot (N-1)/(N-K)`, ``K = 1 + T``: the regressor plus the
year effects; the unit effects are nested in the clusters and count once), so ``t``
equals ``twfe()``'s ``estimate / std_error``.

The restricted wild cluster bootstrap (WCR; Cameron, Gelbach & Miller 2008; Roodman,
MacKinnon, Nielsen & Webb 2019, "Fast and wild") imposes the null: with the restricted
fit :math:`\tilde y = D\beta_0 + \hat a_i + \hat l_t` and residuals :math:`\tilde u`,
draw :math:`y^*_b = \tilde y + \tilde u \odot v_{b,c(i)}` with one weight
:math:`v_{bc}` per cluster, re-estimate the TWFE regression and its CRV1 t-statistic
:math:`t^*_b = (\hat\beta^*_b - \beta_0)/se^*_b`. The p-value is

.. math:: p(\beta_0) = \frac{1}{B} \#\{b : |t^*_b| \ge |t|\}

(symmetric, two-sided; ``B`` draws). The unrestricted version (WCU, ``impose_null=False``)
uses the unrestricted residuals and centres :math:`t^*_b` at :math:`\hat\beta`.
The confidence interval is the set :math:`\{\beta_0 : p(\beta_0) > \alpha\}`, found by
**test inversion**: bisection on :math:`p(\beta_0) - \alpha` from the point estimate
outwards, each :math:`p(\beta_0)` computed with the *same* weights. For the WCU the
inversion reproduces the studentised percentile-t interval.

Weights
-------
* ``"rademacher"``: :math:`v = \pm 1` with probability 1/2. With ``G <=``
  :data:`ENUMERATION_MAX_CLUSTERS` (12) clusters, or whenever ``2**G <= B``, all
  ``2**G`` sign vectors are **enumerated** instead of sampled, as Stata's ``boottest``
  and ``wildboottest`` do: the p-value is then exact (no Monte Carlo error) and ``B``
  becomes ``2**G``. Order: that of ``itertools.product([-1, 1], repeat=G)`` over the
  clusters in sorted order. The enumeration contains the identity (all +1), whose
  :math:`t^*` equals :math:`t`, and its mirror, so the enumerated p-value is at least
  ``2 / 2**G``: with ``G <= 5`` no test at the 5% level can reject.
* ``"webb"``: Webb's (2023) six-point distribution :math:`\pm\sqrt{1/2}, \pm 1,
  \pm\sqrt{3/2}`, each with probability 1/6; recommended with fewer than about 12
  clusters, where Rademacher has too few distinct draws.

Computation (why it is fast and exact)
--------------------------------------
Nothing is re-estimated per draw. The unit effects are partialled out by within-unit
demeaning (exact, balanced or not), and the year effects by regressing the
unit-demeaned ``y`` and ``D`` on the unit-demeaned year dummies ``Z`` (``T - 1``
columns): this is the exact two-way within transformation (Frisch-Waugh-Lovell),
done once, with no dummies for the units. Because the unit effects are **nested in the
clusters**, re-demeaning the bootstrap errors :math:`\tilde u \odot v` by unit is the
same as multiplying the demeaned errors by ``v``; the year effects are not nested, and
their projection of :math:`\tilde u \odot v` enters exactly through the cluster sums
:math:`A_c = \tilde D_c' Z_c` and :math:`S_c = Z_c' \tilde u_c`. For draw ``b`` and
cluster ``c`` the bootstrap score is

.. math::

    s^*_{bc} = v_{bc} \tilde D_c' \tilde u_c - A_c' (Z'Z)^{-1} \sum_h v_{bh} S_h
    - \tilde D_c'\tilde D_c (\hat\beta^*_b - \beta_0),
    \qquad \hat\beta^*_b - \beta_0 = \frac{\sum_c v_{bc} \tilde D_c' \tilde u_c}{\tilde D'\tilde D},

so a draw costs :math:`O(G \cdot T)`. The bootstrap t-statistics are *identical* (to
rounding) to those of re-estimating the regression with explicit unit and year dummies
for every draw (``tests/test_wild.py`` checks this to 1e-10). Every term is linear in
:math:`\beta_0`, so :math:`t^*_b(\beta_0)` for any :math:`\beta_0` is a ratio of a
linear and the square root of a quadratic function whose coefficients are computed once:
test inversion costs :math:`O(B)` per evaluated :math:`\beta_0`.

Reproducibility
---------------
Sampled weights are drawn in blocks of :data:`analysis.inference.multiplier.BLOCK_SIZE`
draws; block ``j`` uses ``numpy.random.Generator(PCG64(SeedSequence(seed).spawn(n_blocks)[j]))``
(as :mod:`analysis.inference.multiplier`), one row of ``G`` integers per draw, so the
draws do not depend on how the blocks are split across workers (:func:`wild_weights`
with ``blocks=``).

Score version (influence functions)
-----------------------------------
An estimator with :math:`\hat\theta - \theta \approx \frac1n\sum_i \psi_i` (influence
functions :math:`\psi_i`, cluster sums :math:`s_c = \sum_{i \in c}\psi_i`) solves a
moment condition whose derivative in :math:`\theta` is, per unit, :math:`-a_i/n` with
:math:`\sum_i a_i = n`: for a doubly robust ATT(g,t), :math:`a_i = n\,1\{G_i = g\}/n_g`
(the treated units carry the estimand), and for a weighted average of cells the same
average of the cells' :math:`a_i`. With cluster sums :math:`a_c` of the :math:`a_i`, the
**restricted** cluster scores under :math:`H_0: \theta = \theta_0` are
:math:`s^R_c = s_c + a_c(\hat\theta - \theta_0)` (the scores evaluated at
:math:`\theta_0`, as the WCR's restricted residuals), and the bootstrap follows the WCR
step by step (Kline & Santos 2012's score bootstrap with the estimate studentised as in
Roodman et al. 2019):

.. math::

    \hat\theta^*_b - \theta_0 = \frac1n \sum_c v_{bc}\, s^R_c, \qquad
    s^*_{bc} = v_{bc}\, s^R_c - a_c(\hat\theta^*_b - \theta_0), \qquad
    t^*_b = \frac{\hat\theta^*_b - \theta_0}{\sqrt{f \sum_c s^{*2}_{bc}}/n},

with :math:`f = G/(G-1)` (the study's convention, :mod:`analysis.inference.small_sample`),
compared with :math:`t = (\hat\theta - \theta_0)/se_{CR1}`. The all-ones draw reproduces
:math:`t`. Because the bootstrap scores are re-centred at each draw's own estimate, the
denominator varies across draws even with Rademacher weights, which is what makes it a
bootstrap-*t*. Everything is linear in :math:`\hat\theta - \theta_0`, so the test-inversion
interval costs :math:`O(B)` per evaluated :math:`\theta_0`. The influence functions are
held at their estimated nuisance parameters (propensity score, outcome regression,
cohort weights): the bootstrap perturbs the scores, it does not re-fit them.

:func:`wild_score_wald` is the same for ``k`` parameters and the joint null
:math:`\theta = 0`: per cell :math:`a_{cj}`, :math:`s^R_c = s_c + a_c \circ \hat\theta`,
:math:`\hat\theta^*_b = \sum_c v_{bc} s^R_c / n`, :math:`s^*_{bc} = v_{bc} s^R_c - a_c \circ
\hat\theta^*_b`, and the Wald statistic is recomputed with the covariance of each draw,
:math:`W^*_b = \hat\theta^{*\prime}_b (\sum_c s^*_{bc} s^{*\prime}_{bc})^{-1}
\hat\theta^*_b\, n^2/f`; :math:`p = \#\{W^*_b \ge W\}/B`. It is the Callaway-Sant'Anna
pre-test's default (:func:`analysis.estimators.callaway_santanna.pretest`): it rejects 3.4-6.4%
of true nulls at 5% on the synthetic city (arrival year kept; the README has the headline's)
where the chi-square test rejects 7.0-11.2%
(:mod:`analysis.inference.small_sample`).

Assumptions and caveats
-----------------------
* Clusters are independent; the unit effects must be nested in the clusters (a unit
  never changes cluster), otherwise a :class:`ValueError` is raised: partialling out
  non-nested effects would change the bootstrap.
* The estimand caveats of TWFE apply unchanged (forbidden comparisons with staggered
  adoption and dynamic effects; see :mod:`analysis.estimators.twfe`): the bootstrap fixes
  the *inference* with few clusters, not the bias of the estimator.
* With few *treated* clusters the WCR under-rejects and its intervals can be very wide
  or unbounded (MacKinnon & Webb 2017); an unbounded side is reported as ``inf``.
* :math:`p(\beta_0)` is a step function that need not be monotone in
  :math:`\beta_0`; the bisection returns the crossing nearest to the point estimate
  along a doubling search.
* No covariates and no regression weights (the study's benchmark TWFE has neither).

References
----------
Kline, P. and Santos, A. (2012). A score based approach to wild bootstrap inference.
*Journal of Econometric Methods*, 1(1), 23-41.

MacKinnon, J. G. and Webb, M. D. (2017). Wild bootstrap inference for wildly different
cluster sizes. *Journal of Applied Econometrics*, 32(2), 233-254.

Cameron, A. C., Gelbach, J. B. and Miller, D. L. (2008). Bootstrap-based improvements
for inference with clustered errors. *Review of Economics and Statistics*, 90(3), 414-427.

Roodman, D., MacKinnon, J. G., Nielsen, M. Ø. and Webb, M. D. (2019). Fast and wild:
Bootstrap inference in Stata using boottest. *Stata Journal*, 19(1), 4-60.

Webb, M. D. (2023). Reworking wild bootstrap-based inference for clustered errors.
*Canadian Journal of Economics*, 56(3), 839-858.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.estimators.inputs import prepare_panel
from analysis.inference.multiplier import BLOCK_SIZE, block_seeds, n_blocks
from analysis.inference.small_sample import cluster_factor
from analysis.results import DiDResult, make_tidy

__all__ = [
    "ENUMERATION_MAX_CLUSTERS",
    "WEBB_VALUES",
    "WildBootstrapResult",
    "WildWaldTest",
    "wild_cluster_bootstrap",
    "wild_score_bootstrap",
    "wild_score_wald",
    "wild_weights",
]

#: With Rademacher weights and at most this many clusters all 2**G sign vectors are used.
ENUMERATION_MAX_CLUSTERS = 12
#: Webb's six-point distribution (mean 0, variance 1), in the order drawn.
WEBB_VALUES = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
_WEIGHTS = ("rademacher", "webb")
#: Relative tolerance for ties ``|t*| >= |t|`` (the enumerated identity draw has t* = t).
_TIE_RTOL = 1e-9
_BISECT_ITER = 200
_EXPAND_ITER = 60


# ----------------------------------------------------------------------------------
# weights
# ----------------------------------------------------------------------------------
def _enumerates(weights: str, n_clusters: int, B: int) -> bool:
    return weights == "rademacher" and (
        n_clusters <= ENUMERATION_MAX_CLUSTERS or 2 ** int(n_clusters) <= B  # exact: no float overflow at 1,024+
    )


def _n_draws(weights: str, n_clusters: int, B: int) -> int:
    return 2**n_clusters if _enumerates(weights, n_clusters, B) else int(B)


def _check_weights(weights: str) -> str:
    if weights not in _WEIGHTS:
        raise ValueError(f"weights must be one of {_WEIGHTS}, got {weights!r}")
    return weights


def _check_B(B) -> int:
    if isinstance(B, bool) or not isinstance(B, int | np.integer) or B < 1:
        raise ValueError(f"B must be a positive integer number of bootstrap draws, got {B!r}")
    return int(B)


def _enumerated_block(n_clusters: int, start: int, stop: int) -> np.ndarray:
    """Rows ``start..stop-1`` of ``itertools.product([-1, 1], repeat=G)`` as a matrix."""
    k = np.arange(start, stop, dtype=np.int64)[:, None]
    shifts = np.arange(n_clusters - 1, -1, -1, dtype=np.int64)[None, :]
    return np.where((k >> shifts) & 1, 1.0, -1.0)


def _weight_blocks(weights: str, n_clusters: int, B: int, seed, blocks=None):
    """Yield ``(block index, (m, G) weights)`` for the requested blocks, in order."""
    n_total = _n_draws(weights, n_clusters, B)
    nb = n_blocks(n_total)
    blocks = range(nb) if blocks is None else blocks
    if _enumerates(weights, n_clusters, B):
        for j in blocks:
            if not 0 <= j < nb:
                raise ValueError(f"block {j} is outside 0..{nb - 1}")
            yield j, _enumerated_block(n_clusters, j * BLOCK_SIZE, min(n_total, (j + 1) * BLOCK_SIZE))
        return
    _, children = block_seeds(seed, n_total)
    for j in blocks:
        if not 0 <= j < nb:
            raise ValueError(f"block {j} is outside 0..{nb - 1}")
        rng = np.random.Generator(np.random.PCG64(children[j]))
        m = min(BLOCK_SIZE, n_total - j * BLOCK_SIZE)
        if weights == "rademacher":
            v = np.where(rng.integers(0, 2, size=(m, n_clusters)) == 1, 1.0, -1.0)
        else:
            v = WEBB_VALUES[rng.integers(0, 6, size=(m, n_clusters))]
        yield j, v


def wild_weights(weights: str, n_clusters: int, B: int, seed=None, blocks: range | None = None) -> np.ndarray:
    """Return the wild bootstrap weights :func:`wild_cluster_bootstrap` uses.

    Parameters
    ----------
    weights : {"rademacher", "webb"}
        Weight distribution.
    n_clusters : int
        Number of clusters ``G`` (columns, clusters in sorted order).
    B : int
        Requested number of draws. With Rademacher weights and ``G <= 12`` (or
        ``2**G <= B``) all ``2**G`` sign vectors are returned instead.
    seed : int, numpy.random.SeedSequence or None
        Root seed (ignored when enumerating).
    blocks : range, optional
        Seed blocks to return (see :func:`analysis.inference.multiplier.task_blocks`);
        default all. Stacking the pieces of any split in block order gives the full
        matrix.

    Returns
    -------
    numpy.ndarray
        ``(b, G)`` weights, one row per draw.

    Raises
    ------
    ValueError
        Unknown weights, ``B < 1``, ``n_clusters < 2`` or a block out of range.

    Examples
    --------
    >>> wild_weights("rademacher", 3, B=999).tolist()[:3]
    [[-1.0, -1.0, -1.0], [-1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]]
    >>> wild_weights("webb", 20, B=999, seed=1).shape
    (999, 20)
    """
    _check_weights(weights)
    B = _check_B(B)
    if int(n_clusters) < 2:
        raise ValueError(f"need at least 2 clusters, got {n_clusters}")
    pieces = [v for _, v in _weight_blocks(weights, int(n_clusters), B, seed, blocks)]
    if not pieces:
        return np.empty((0, int(n_clusters)))
    return np.vstack(pieces)


# ----------------------------------------------------------------------------------
# the design: exact two-way within transformation and cluster-level sums
# ----------------------------------------------------------------------------------
@dataclass
class _Design:
    beta_hat: float
    DD: float  # D~'D~
    d: np.ndarray  # (G,) D~_c'D~_c
    cy: np.ndarray  # (G,) D~_c'y~_c
    A: np.ndarray  # (G, q) D~_c'Z_c
    Sy: np.ndarray  # (G, q) Z_c'y~_c
    ZZinv: np.ndarray  # (q, q)
    se: float
    ssc: float
    N: int
    K: int
    G: int
    n_units: int
    n_periods: int
    n_dropped_singletons: int
    n_dropped_missing: int


def _drop_singletons(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop units and periods observed once, repeatedly (pyfixest's ``fixef_rm='singleton'``)."""
    n0 = len(frame)
    while True:
        u_n = frame.groupby("unit")["y"].transform("size")
        t_n = frame.groupby("time")["y"].transform("size")
        keep = (u_n > 1) & (t_n > 1)
        if keep.all():
            break
        frame = frame.loc[keep]
    return frame, n0 - len(frame)


def _design(data, outcome, unit, time, cohort, cluster) -> _Design:
    panel = prepare_panel(data, outcome, unit, time, cohort, cluster)
    if not panel.info["units_nested_in_clusters"]:
        raise ValueError(
            f"units ({unit!r}) are not nested in clusters ({panel.names['cluster']!r}): a unit "
            "changes cluster over time; the wild cluster bootstrap here partials out the unit "
            "effects, which is exact only when every unit stays in one cluster"
        )
    frame, n_single = _drop_singletons(panel.frame)
    if len(frame) == 0:
        raise ValueError("no observations left after dropping singleton units and periods")
    u = pd.factorize(frame["unit"].to_numpy(), sort=True)[0]
    t_codes, periods = pd.factorize(frame["time"].to_numpy(), sort=True)
    cl_codes, cl_labels = pd.factorize(frame["cl"].to_numpy(), sort=True)
    G = len(cl_labels)
    if G < 2:
        raise ValueError(
            f"the wild cluster bootstrap needs at least 2 clusters in {panel.names['cluster']!r}, "
            f"found {G}"
        )
    N, U, T = len(frame), int(u.max()) + 1, len(periods)
    cnt = np.bincount(u, minlength=U).astype(float)

    def unit_demean(x: np.ndarray) -> np.ndarray:
        return x - (np.bincount(u, weights=x, minlength=U) / cnt)[u]

    y_u = unit_demean(frame["y"].to_numpy(dtype=float))
    D_u = unit_demean(frame["D"].to_numpy(dtype=float))
    q = T - 1
    Z = np.zeros((N, q))
    rows = np.flatnonzero(t_codes > 0)
    Z[rows, t_codes[rows] - 1] = 1.0
    for j in range(q):
        Z[:, j] = unit_demean(Z[:, j])
    ZZ = Z.T @ Z
    ZZinv = np.linalg.pinv(ZZ) if q else np.zeros((0, 0))
    yt = y_u - Z @ (ZZinv @ (Z.T @ y_u)) if q else y_u
    Dt = D_u - Z @ (ZZinv @ (Z.T @ D_u)) if q else D_u
    DD = float(Dt @ Dt)
    if DD <= 1e-12 * max(1.0, float(D_u @ D_u)) or DD == 0.0:
        raise ValueError(
            "the treatment indicator is collinear with the unit and year fixed effects (no unit "
            "changes treatment status relative to the others), so TWFE cannot estimate an effect"
        )
    beta_hat = float(Dt @ yt) / DD
    d = np.bincount(cl_codes, weights=Dt * Dt, minlength=G)
    cy = np.bincount(cl_codes, weights=Dt * yt, minlength=G)
    A = np.zeros((G, q))
    Sy = np.zeros((G, q))
    for j in range(q):
        A[:, j] = np.bincount(cl_codes, weights=Dt * Z[:, j], minlength=G)
        Sy[:, j] = np.bincount(cl_codes, weights=yt * Z[:, j], minlength=G)
    K = 1 + T
    if N <= K:
        raise ValueError(f"too few observations ({N}) for the {K} parameters not nested in clusters")
    ssc = G / (G - 1) * (N - 1) / (N - K)
    score = cy - beta_hat * d
    se = float(np.sqrt(ssc * np.sum(score**2)) / DD)
    return _Design(beta_hat=beta_hat, DD=DD, d=d, cy=cy, A=A, Sy=Sy, ZZinv=ZZinv, se=se,
                   ssc=ssc, N=N, K=K, G=G, n_units=U, n_periods=T,
                   n_dropped_singletons=int(n_single),
                   n_dropped_missing=int(panel.info["n_dropped_missing"]))


# ----------------------------------------------------------------------------------
# bootstrap statistics
# ----------------------------------------------------------------------------------
def _block_coefficients(des: _Design, V: np.ndarray, impose_null: bool):
    """Per-draw coefficients of t*(beta0) for one block of weights ``V`` (m, G).

    WCR: returns ``(a, e, pp, pq, qq)`` with ``delta_b(beta0) = a_b - beta0 e_b`` and
    ``sum_c s*_bc(beta0)^2 = pp_b - 2 beta0 pq_b + beta0^2 qq_b``. WCU: the same with the
    residual built at ``beta_hat`` (so ``e``, ``pq``, ``qq`` are zero).
    """
    M = des.A @ des.ZZinv  # (G, q)
    if impose_null:
        c0, S0 = des.cy, des.Sy
        a = V @ c0 / des.DD
        e = V @ des.d / des.DD
        P = V * c0 - (V @ S0) @ M.T - a[:, None] * des.d
        Q = V * des.d - (V @ des.A) @ M.T - e[:, None] * des.d
        return a, e, np.einsum("bg,bg->b", P, P), np.einsum("bg,bg->b", P, Q), np.einsum("bg,bg->b", Q, Q)
    c0 = des.cy - des.beta_hat * des.d
    S0 = des.Sy - des.beta_hat * des.A
    a = V @ c0 / des.DD
    P = V * c0 - (V @ S0) @ M.T - a[:, None] * des.d
    z = np.zeros_like(a)
    return a, z, np.einsum("bg,bg->b", P, P), z, z


def _bootstrap_coefficients(des: _Design, weights: str, B: int, seed, impose_null: bool, blocks=None):
    parts = [_block_coefficients(des, V, impose_null)
             for _, V in _weight_blocks(weights, des.G, B, seed, blocks)]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(5))


def _t_boot(coef, beta0: float, des: _Design, impose_null: bool) -> np.ndarray:
    a, e, pp, pq, qq = coef
    if impose_null:
        num = a - beta0 * e
        quad = pp - 2.0 * beta0 * pq + beta0 * beta0 * qq
    else:
        num, quad = a, pp
    den = np.sqrt(des.ssc * np.maximum(quad, 0.0)) / des.DD
    with np.errstate(divide="ignore", invalid="ignore"):
        t = num / den
    # a draw whose bootstrap scores all vanish (e.g. v constant on the treated clusters) has 0/0
    return np.where(den > 0, t, 0.0)


def _p_value(t_obs: float, t_star: np.ndarray) -> float:
    thr = abs(t_obs) * (1.0 - _TIE_RTOL)
    return float(np.mean(np.abs(t_star) >= thr))


def _invert(pfun, est: float, scale: float, alpha: float, direction: int) -> float:
    """Bisection for the crossing of ``p(beta0) = alpha`` on one side of ``est``."""
    inside, step = est, scale
    outside = est + direction * step
    for _ in range(_EXPAND_ITER):
        if pfun(outside) <= alpha:
            break
        inside, step = outside, 2.0 * step
        outside = est + direction * step
    else:
        return direction * np.inf
    for _ in range(_BISECT_ITER):
        mid = 0.5 * (inside + outside)
        if mid in (inside, outside):
            break
        if pfun(mid) > alpha:
            inside = mid
        else:
            outside = mid
    return 0.5 * (inside + outside)


# ----------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WildBootstrapResult:
    r"""Result of :func:`wild_cluster_bootstrap`.

    Parameters
    ----------
    outcome : str
        Outcome column.
    estimate : float
        TWFE coefficient :math:`\hat\beta` (equals ``twfe()``'s estimate).
    std_error : float
        CRV1 standard error with ``twfe()``'s small-sample factor.
    t_stat : float
        :math:`(\hat\beta - \beta_0) / se`.
    p_value : float
        Wild bootstrap p-value for :math:`H_0: \beta = \beta_0` (symmetric, two-sided).
    p_value_zero : float
        Wild bootstrap p-value for :math:`\beta = 0` from the same weights (equals
        ``p_value`` when ``beta0 == 0``); the tidy row reports it, since the schema's
        p-value is against zero.
    conf_low, conf_high : float
        Test-inversion confidence interval at level ``1 - alpha`` (``-inf``/``inf`` if
        unbounded on that side).
    beta0 : float
        Tested value.
    B : int
        Number of bootstrap draws used (``2**G`` when enumerated).
    weights : str
        ``"rademacher"`` or ``"webb"``.
    enumerated : bool
        Whether all ``2**G`` Rademacher sign vectors were used.
    impose_null : bool
        WCR (True) or WCU (False).
    n_clusters, n_obs, n_units : int
        Clusters, observations and units used (singleton units/periods dropped).
    alpha : float
        One minus the confidence level.
    t_boot : numpy.ndarray
        ``(B,)`` bootstrap t-statistics for :math:`H_0: \beta = \beta_0`.
    options : dict
        Everything needed to reproduce the result (columns, seed entropy, ssc).
    estimator : str
        Estimator of the tidy row: ``"twfe"`` (:func:`wild_cluster_bootstrap`) or that of
        the influence functions (``"cs"`` for :func:`wild_score_bootstrap` on the headline).
    term : str
        Term of the tidy row.
    """

    outcome: str
    estimate: float
    std_error: float
    t_stat: float
    p_value: float
    p_value_zero: float
    conf_low: float
    conf_high: float
    beta0: float
    B: int
    weights: str
    enumerated: bool
    impose_null: bool
    n_clusters: int
    n_obs: int
    n_units: int
    alpha: float
    t_boot: np.ndarray = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict, repr=False)
    estimator: str = "twfe"
    term: str = "D (wild bootstrap)"

    def tidy(self) -> pd.DataFrame:
        """Return one row in the fixed tidy schema.

        Returns
        -------
        pandas.DataFrame
            Estimator ``"twfe"``, aggregation ``"coef"``, term ``"D (wild bootstrap)"``
            (for :func:`wild_score_bootstrap`: its ``estimator`` and ``term``, aggregation
            ``"simple"``); ``std_error`` is the CRV1 standard error, the interval the
            test-inversion interval and ``p_value`` the wild bootstrap p-value against zero.
        """
        twfe_row = self.estimator == "twfe"
        row = {
            "outcome": self.outcome, "estimator": self.estimator,
            "control_group": "all" if twfe_row else self.options.get("control_group"),
            "aggregation": "coef" if twfe_row else "simple", "term": self.term, "estimate": self.estimate,
            "std_error": self.std_error, "conf_low": self.conf_low, "conf_high": self.conf_high,
            "p_value": self.p_value_zero, "band": "pointwise", "n_obs": self.n_obs,
            "n_units": self.n_units, "n_clusters": self.n_clusters,
            "options": json.dumps(self.options, sort_keys=True, default=str),
        }
        return make_tidy([row])

    def to_did_result(self) -> DiDResult:
        """Return the result as a :class:`~analysis.results.DiDResult` (one tidy row).

        Returns
        -------
        DiDResult
            ``details`` is this result (its ``t_boot`` holds the bootstrap t-statistics).
        """
        return DiDResult(self.tidy(), self.estimator, self.outcome, dict(self.options), details=self)

    def __repr__(self) -> str:
        kind = "WCR" if self.impose_null else "WCU"
        draws = f"{self.B} {'enumerated' if self.enumerated else 'sampled'} {self.weights} draws"
        what = "" if self.estimator == "twfe" else "score "
        return (
            f"wild cluster {what}bootstrap-t ({kind}, {draws}, G={self.n_clusters}) for {self.outcome}: "
            f"estimate {self.estimate:.6g} (CRV1 se {self.std_error:.4g}), "
            f"t({self.beta0:g}) = {self.t_stat:.4f}, p = {self.p_value:.4f}, "
            f"{1 - self.alpha:.0%} CI [{self.conf_low:.6g}, {self.conf_high:.6g}]"
        )


def wild_cluster_bootstrap(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    cluster: str | None = None,
    weights: str = "rademacher",
    B: int = 999,
    seed=None,
    alpha: float = 0.05,
    impose_null: bool = True,
    beta0: float = 0.0,
    conf_int: bool = True,
) -> WildBootstrapResult:
    r"""Wild cluster bootstrap-t test and interval for the static TWFE DiD coefficient.

    Tests :math:`H_0: \beta = \beta_0` in ``y = a_i + l_t + beta * D_it + u`` (the
    regression of :func:`analysis.estimators.twfe.twfe`) with errors clustered by
    ``cluster``; see the module docstring for the algorithm, its exactness and caveats.

    Parameters
    ----------
    data : pandas.DataFrame
        Long unit x period panel (balanced or not). Not modified.
    outcome, unit, time, cohort : str
        Column names; ``cohort`` is the first treated period, 0 for never treated.
    cluster : str, optional
        Cluster column (the study uses townships); default ``unit``. Units must be
        nested in clusters.
    weights : {"rademacher", "webb"}, default "rademacher"
        Wild weights, one per cluster and draw. Rademacher with ``G <= 12`` clusters
        (or ``2**G <= B``) enumerates all ``2**G`` sign vectors.
    B : int, default 999
        Number of bootstrap draws (ignored when enumerating).
    seed : int, numpy.random.SeedSequence or None
        Root seed of the draws (blocks spawned from ``SeedSequence(seed)``).
    alpha : float, default 0.05
        One minus the confidence level of the interval.
    impose_null : bool, default True
        WCR (null imposed; recommended) or WCU.
    beta0 : float, default 0
        Value of :math:`\beta` under the null.
    conf_int : bool, default True
        Compute the test-inversion interval (cheap; False skips it and reports NaN).

    Returns
    -------
    WildBootstrapResult
        Estimate, CRV1 standard error, t-statistic, bootstrap p-value, test-inversion
        interval, the bootstrap t-statistics and options; ``.tidy()`` gives one row in
        the fixed tidy schema (estimator ``"twfe"``, term ``"D (wild bootstrap)"``).

    Raises
    ------
    ValueError
        Missing or malformed columns (see :func:`analysis.estimators.inputs.prepare_panel`),
        fewer than two clusters, units not nested in clusters, a treatment collinear with
        the fixed effects, or invalid ``weights``, ``B`` or ``alpha``.

    Notes
    -----
    The p-value is :math:`\#\{|t^*_b| \ge |t|\}/B`. With enumeration it is exact under
    the wild bootstrap's symmetric-error model; with sampling it has Monte Carlo error
    about :math:`\sqrt{p(1-p)/B}`. The test does not account for multiple testing.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"id": np.repeat(np.arange(60), 6), "year": np.tile(np.arange(2018, 2024), 60)})
    >>> df["town"] = df["id"] // 6
    >>> df["g"] = np.where(df["town"] < 5, 2021, 0)
    >>> df["y"] = 0.1 * df["id"] + 2.0 * ((df["g"] > 0) & (df["year"] >= df["g"])) + rng.normal(0, 1, 360)
    >>> res = wild_cluster_bootstrap(df, "y", "id", "year", "g", cluster="town", seed=1)
    >>> res.B, res.enumerated, res.p_value < 0.01
    (1024, True, True)
    """
    _check_weights(weights)
    B = _check_B(B)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not np.isfinite(beta0):
        raise ValueError(f"beta0 must be a finite number, got {beta0!r}")
    beta0 = float(beta0)
    des = _design(data, outcome, unit, time, cohort, cluster)
    enumerated = _enumerates(weights, des.G, B)
    root, _ = block_seeds(seed, _n_draws(weights, des.G, B))
    coef = _bootstrap_coefficients(des, weights, B, root, impose_null)
    n_draws = len(coef[0])

    def p_of(b0: float) -> float:
        t_obs = (des.beta_hat - b0) / des.se
        return _p_value(t_obs, _t_boot(coef, b0, des, impose_null))

    t_stat = (des.beta_hat - beta0) / des.se
    t_star = _t_boot(coef, beta0, des, impose_null)
    p = _p_value(t_stat, t_star)
    p0 = p if beta0 == 0.0 else p_of(0.0)
    lo = hi = float("nan")
    if conf_int:
        scale = des.se * stats.norm.ppf(1 - alpha / 2)
        if not (np.isfinite(scale) and scale > 0):
            scale = max(abs(des.beta_hat), 1.0)
        lo = _invert(p_of, des.beta_hat, scale, alpha, -1)
        hi = _invert(p_of, des.beta_hat, scale, alpha, +1)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            warnings.warn(
                f"the wild bootstrap confidence interval is unbounded (G={des.G} clusters): the "
                "p-value never falls below alpha on at least one side",
                stacklevel=2,
            )
    if enumerated and 2.0 / n_draws > alpha:
        warnings.warn(
            f"with G={des.G} clusters the enumerated Rademacher p-value is at least "
            f"{2.0 / n_draws:.3g} > alpha={alpha}: the test cannot reject; use weights='webb'",
            stacklevel=2,
        )
    entropy = root.entropy
    options = {
        "outcome": outcome, "unit": unit, "time": time, "cohort": cohort,
        "cluster": cluster if cluster is not None else unit,
        "inference": "wild cluster bootstrap-t (WCR)" if impose_null else "wild cluster bootstrap-t (WCU)",
        "weights": weights, "B": int(n_draws), "B_requested": B, "enumerated": bool(enumerated),
        "seed": seed if isinstance(seed, int | np.integer | None) else str(seed),
        "seed_entropy": int(entropy) if isinstance(entropy, int | np.integer) else str(entropy),
        "alpha": alpha, "beta0": beta0, "p_value_beta0": p,
        "ci": "test inversion (bisection on the bootstrap p-value, same draws)",
        "ssc": {"factor": des.ssc, "K": des.K, "N": des.N, "G": des.G,
                "rule": "G/(G-1)*(N-1)/(N-K), K = 1 + T (as twfe.py)"},
        "n_dropped_singletons": des.n_dropped_singletons,
        "n_dropped_missing": des.n_dropped_missing,
    }
    return WildBootstrapResult(
        outcome=outcome, estimate=des.beta_hat, std_error=des.se, t_stat=float(t_stat),
        p_value=p, p_value_zero=p0, conf_low=float(lo), conf_high=float(hi), beta0=beta0,
        B=int(n_draws), weights=weights, enumerated=bool(enumerated), impose_null=bool(impose_null),
        n_clusters=des.G, n_obs=des.N, n_units=des.n_units, alpha=float(alpha), t_boot=t_star,
        options=options,
    )


# ----------------------------------------------------------------------------------
# score version: influence functions
# ----------------------------------------------------------------------------------
def _cluster_arrays(influence, jacobian, clusters):
    """Cluster sums of the influence functions and Jacobian weights, as ``(G, k)`` arrays."""
    psi = np.asarray(influence, dtype=float)
    a = np.asarray(jacobian, dtype=float)
    if psi.ndim == 1:
        psi = psi[:, None]
    if a.ndim == 1:
        a = a[:, None]
    n, k = psi.shape
    if a.shape != (n, k):
        raise ValueError(f"jacobian must have the shape of influence {psi.shape}, got {a.shape}")
    if not (np.all(np.isfinite(psi)) and np.all(np.isfinite(a))):
        raise ValueError("influence functions and Jacobian weights must be finite")
    if clusters is None:
        codes = np.arange(n)
    else:
        codes = pd.factorize(np.asarray(clusters), sort=True)[0]
        if len(codes) != n:
            raise ValueError(f"clusters has {len(codes)} entries for {n} units")
    G = int(codes.max()) + 1 if n else 0
    if G < 2:
        raise ValueError(f"the wild score bootstrap needs at least 2 clusters, found {G}")
    S = np.column_stack([np.bincount(codes, weights=psi[:, j], minlength=G) for j in range(k)])
    A = np.column_stack([np.bincount(codes, weights=a[:, j], minlength=G) for j in range(k)])
    return S, A, n, G


def _score_coefficients(s: np.ndarray, a: np.ndarray, n: int, weights: str, B: int, seed):
    """Per-draw coefficients of t*(theta0) for the scalar score bootstrap.

    With ``delta = theta_hat - theta0``: ``theta* - theta0 = (P + delta Q) / n`` and
    ``sum_c s*_c^2 = xx + 2 delta xy + delta^2 yy``.
    """
    parts = []
    for _, V in _weight_blocks(weights, len(s), B, seed):
        P, Q = V @ s, V @ a
        X = V * s - np.outer(P / n, a)
        Y = V * a - np.outer(Q / n, a)
        parts.append((P, Q, np.einsum("bg,bg->b", X, X), np.einsum("bg,bg->b", X, Y),
                      np.einsum("bg,bg->b", Y, Y)))
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(5))


def wild_score_bootstrap(
    estimate: float,
    influence,
    jacobian,
    clusters=None,
    weights: str = "rademacher",
    B: int = 9999,
    seed=None,
    alpha: float = 0.05,
    beta0: float = 0.0,
    small_sample: str = "cr1_t",
    conf_int: bool = True,
    outcome: str = "",
    estimator: str = "cs",
    term: str = "ATT",
    options: dict[str, Any] | None = None,
) -> WildBootstrapResult:
    r"""Restricted wild cluster score bootstrap-t for one asymptotically linear estimate.

    The score version of the WCR (module docstring): p-value for
    :math:`H_0: \theta = \theta_0` and the test-inversion interval, from the per-unit
    influence functions of :math:`\hat\theta` and their Jacobian weights.

    Parameters
    ----------
    estimate : float
        :math:`\hat\theta`.
    influence : array_like
        ``(n,)`` per-unit influence functions, scaled so that the analytic variance is
        ``sum_c s_c^2 / n**2`` (R ``did``'s and :func:`~analysis.estimators.callaway_santanna.aggregate`'s
        convention).
    jacobian : array_like
        ``(n,)`` per-unit Jacobian weights :math:`a_i` (summing to ``n``): the unit's share
        of the derivative of the moment condition in :math:`\theta` (module docstring).
    clusters : array_like, optional
        ``(n,)`` cluster labels or codes; ``None`` makes every unit a cluster.
    weights : {"rademacher", "webb"}, default "rademacher"
        Wild weights, one per cluster and draw; Rademacher with ``G <= 12`` (or
        ``2**G <= B``) enumerates all ``2**G`` sign vectors.
    B : int, default 9999
        Number of draws (ignored when enumerating).
    seed : int, numpy.random.SeedSequence or None
        Root seed of sampled draws.
    alpha : float, default 0.05
        One minus the confidence level.
    beta0 : float, default 0
        :math:`\theta_0` of the reported test.
    small_sample : {"cr1_t", "asymptotic"}, default "cr1_t"
        Whether the standard error carries :math:`G/(G-1)` (it cancels from the bootstrap
        p-value; it sets the reported ``std_error`` and ``t_stat``).
    conf_int : bool, default True
        Compute the test-inversion interval.
    outcome, estimator, term : str
        Labels of the tidy row.
    options : dict, optional
        Extra entries recorded in the result's ``options`` (e.g. the estimator's own).

    Returns
    -------
    WildBootstrapResult
        As :func:`wild_cluster_bootstrap`: estimate, CR1 standard error, t-statistic,
        bootstrap p-value, interval, bootstrap t-statistics and options
        (``options["inference"]`` names the method).

    Raises
    ------
    ValueError
        Fewer than two clusters, shapes that do not match, non-finite inputs, or invalid
        ``weights``, ``B``, ``alpha`` or ``small_sample``.

    Notes
    -----
    With enumeration the p-value is exact under the bootstrap's symmetric-error model;
    sampled, it has Monte Carlo error about :math:`\sqrt{p(1-p)/B}`. Not adjusted for
    multiple testing.

    Examples
    --------
    The mean of 40 clustered observations (influence ``y - ybar``, Jacobian 1):

    >>> rng = np.random.default_rng(0)
    >>> cl = np.repeat(np.arange(8), 5)
    >>> y = 0.3 + rng.normal(size=8)[cl] + rng.normal(size=40)
    >>> res = wild_score_bootstrap(y.mean(), y - y.mean(), np.ones(40), cl)
    >>> res.B, res.enumerated, bool(res.conf_low < y.mean() < res.conf_high)
    (256, True, True)
    """
    _check_weights(weights)
    B = _check_B(B)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not (np.isfinite(beta0) and np.isfinite(estimate)):
        raise ValueError("estimate and beta0 must be finite numbers")
    S, A, n, G = _cluster_arrays(influence, jacobian, clusters)
    s, a = S[:, 0], A[:, 0]
    f = cluster_factor(G, small_sample)
    se = float(np.sqrt(f * np.sum(s**2)) / n)
    if not se > 0:
        raise ValueError("the influence functions have zero variance")
    enumerated = _enumerates(weights, G, B)
    root, _ = block_seeds(seed, _n_draws(weights, G, B))
    P, Q, xx, xy, yy = _score_coefficients(s, a, n, weights, B, root)
    est = float(estimate)

    def t_star(b0: float) -> np.ndarray:
        d = est - b0
        num = (P + d * Q) / n
        den = np.sqrt(f * np.maximum(xx + 2 * d * xy + d * d * yy, 0.0)) / n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = num / den
        return np.where(den > 0, t, 0.0)

    def p_of(b0: float) -> float:
        return _p_value((est - b0) / se, t_star(b0))

    t0 = t_star(float(beta0))
    t_stat = (est - float(beta0)) / se
    p = _p_value(t_stat, t0)
    p0 = p if beta0 == 0.0 else p_of(0.0)
    lo = hi = float("nan")
    if conf_int:
        scale = se * stats.norm.ppf(1 - alpha / 2)
        lo = _invert(p_of, est, scale, alpha, -1)
        hi = _invert(p_of, est, scale, alpha, +1)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            warnings.warn(f"the wild score bootstrap interval is unbounded (G={G} clusters)", stacklevel=2)
    n_draws = len(P)
    entropy = root.entropy
    opts = {
        **(options or {}),
        "inference": f"wild cluster score bootstrap-t (WCR, {weights}, {n_draws} "
                     f"{'enumerated' if enumerated else 'sampled'} draws, G={G})",
        "weights": weights, "B": int(n_draws), "B_requested": B, "enumerated": bool(enumerated),
        "seed": seed if isinstance(seed, int | np.integer | None) else str(seed),
        "seed_entropy": int(entropy) if isinstance(entropy, int | np.integer) else str(entropy),
        "alpha": alpha, "beta0": float(beta0), "p_value_beta0": p, "small_sample": small_sample,
        "ci": "test inversion (bisection on the bootstrap p-value, same draws)",
    }
    return WildBootstrapResult(
        outcome=outcome, estimate=est, std_error=se, t_stat=float(t_stat), p_value=p, p_value_zero=p0,
        conf_low=float(lo), conf_high=float(hi), beta0=float(beta0), B=int(n_draws), weights=weights,
        enumerated=bool(enumerated), impose_null=True, n_clusters=G, n_obs=int(n), n_units=int(n),
        alpha=float(alpha), t_boot=t0, options=opts, estimator=estimator, term=term,
    )


@dataclass(frozen=True)
class WildWaldTest:
    r"""Result of :func:`wild_score_wald`.

    Attributes
    ----------
    statistic : float
        :math:`W = \hat\theta' \hat V_{CR1}^{-1} \hat\theta`.
    df : int
        Number of parameters tested ``k``.
    p_value : float
        :math:`\#\{W^*_b \ge W\} / B`.
    B : int
        Draws used.
    weights : str
        ``"rademacher"`` or ``"webb"``.
    enumerated : bool
        Whether all ``2**G`` sign vectors were used.
    n_clusters : int
        Clusters ``G``.
    w_boot : numpy.ndarray
        ``(B,)`` bootstrap Wald statistics.
    """

    statistic: float
    df: int
    p_value: float
    B: int
    weights: str
    enumerated: bool
    n_clusters: int
    w_boot: np.ndarray = field(repr=False)


def wild_score_wald(
    theta,
    influence,
    jacobian,
    clusters=None,
    weights: str = "rademacher",
    B: int = 999,
    seed=None,
) -> WildWaldTest:
    r"""Restricted wild cluster score bootstrap of the Wald test that ``theta`` is zero.

    The covariance is re-estimated from the bootstrap scores in every draw (module
    docstring, "Score version"), so the test accounts for the noise of a clustered
    covariance estimated from few or unequal clusters.

    Parameters
    ----------
    theta : array_like
        ``(k,)`` estimates.
    influence : array_like
        ``(n, k)`` per-unit influence functions (analytic variance ``S'S / n**2``).
    jacobian : array_like
        ``(n, k)`` per-unit Jacobian weights of each parameter (each column sums to ``n``).
    clusters : array_like, optional
        ``(n,)`` cluster labels; ``None`` makes every unit a cluster.
    weights : {"rademacher", "webb"}, default "rademacher"
        Wild weights (Rademacher with ``G <= 12`` enumerates).
    B : int, default 999
        Number of draws.
    seed : int, numpy.random.SeedSequence or None
        Root seed.

    Returns
    -------
    WildWaldTest
        Wald statistic, bootstrap p-value and the bootstrap statistics; NaN (with a
        warning) if the covariance is singular.

    Raises
    ------
    ValueError
        As :func:`wild_score_bootstrap`.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> psi = rng.normal(size=(300, 2))
    >>> res = wild_score_wald(psi.mean(0), psi - psi.mean(0), np.ones((300, 2)), np.arange(300) // 10, seed=1)
    >>> res.df, res.B, 0 <= res.p_value <= 1
    (2, 999, True)
    """
    _check_weights(weights)
    B = _check_B(B)
    th = np.atleast_1d(np.asarray(theta, dtype=float))
    S, A, n, G = _cluster_arrays(influence, jacobian, clusters)
    k = S.shape[1]
    if th.size != k:
        raise ValueError(f"theta has {th.size} entries for {k} influence columns")
    Vh = S.T @ S
    enumerated = _enumerates(weights, G, B)
    root, _ = block_seeds(seed, _n_draws(weights, G, B))
    if 1.0 / np.linalg.cond(Vh, 1) <= np.finfo(float).eps:
        warnings.warn("wild Wald test not computed: singular covariance", stacklevel=2)
        return WildWaldTest(float("nan"), k, float("nan"), 0, weights, enumerated, G, np.empty(0))
    W = float(n**2 * th @ np.linalg.solve(Vh, th))
    SR = S + A * th[None, :]
    # A draw's cluster scores are s*_g = v_g SR_g - A_g o T (o: entry by entry), so their cross-product
    # sum_g s*_g s*_g' expands into G x k^2 products made once and two (m x G) @ (G x k^2) products per block;
    # forming the m x G x k scores (two 0.2 GB arrays per block of 128 draws with 27,600 clusters) took
    # 35 times as long
    P = (SR[:, :, None] * SR[:, None, :]).reshape(G, k * k)
    Q = (SR[:, :, None] * A[:, None, :]).reshape(G, k * k)
    AA = A.T @ A
    pieces = []
    for _, V in _weight_blocks(weights, G, B, root):
        m = V.shape[0]
        T = V @ SR / n  # (m, k): theta* under the null
        VQT = (V @ Q).reshape(m, k, k) * T[:, None, :]  # sum_g v_g SR_gi A_gj T_j
        Vs = ((V * V) @ P).reshape(m, k, k) - VQT - VQT.transpose(0, 2, 1) + T[:, :, None] * T[:, None, :] * AA
        with np.errstate(all="ignore"):
            try:
                x = np.linalg.solve(Vs, T[:, :, None])[:, :, 0]
                w = n**2 * np.einsum("mi,mi->m", T, x)
            except np.linalg.LinAlgError:  # a singular draw: evaluate draw by draw
                w = np.array([n**2 * t @ np.linalg.lstsq(v, t, rcond=None)[0] for t, v in zip(T, Vs, strict=True)])
        pieces.append(np.where(np.isfinite(w), w, np.inf))
    w_boot = np.concatenate(pieces)
    p = float(np.mean(w_boot >= W * (1.0 - _TIE_RTOL)))
    return WildWaldTest(W * (G - 1) / G, k, p, len(w_boot), weights, enumerated, G, w_boot)
