r"""Multiplier bootstrap on influence functions, with sup-t critical values.

For an asymptotically linear estimator :math:`\hat\theta` (a vector of ``k``
parameters) with per-unit influence functions :math:`\psi_i` (``n x k``), the
multiplier bootstrap draws, for ``b = 1..B``,

.. math::

    \hat\theta^*_b - \hat\theta = \frac{1}{n} \sum_{c=1}^{C} V_{bc} S_c,
    \qquad S_c = \sum_{i \in c} \psi_i,

with i.i.d. multipliers :math:`V_{bc}` of mean 0 and variance 1 drawn per cluster
``c`` (per unit when there is no clustering, so that :math:`S_i = \psi_i`). This is
R ``did``'s ``mboot`` (Callaway & Sant'Anna 2021, Algorithm 1 and Remark 10: the
influence function is summed, not averaged, within clusters).

From the draws it reports, as R does,

* the bootstrap standard error of each column, robust to outlying draws:
  ``(q75 - q25) / (qnorm(0.75) - qnorm(0.25))`` with the type-1 (inverse empirical
  CDF) quantiles R uses;
* the sup-t critical value for a simultaneous band: the ``1 - alpha`` quantile of
  :math:`\max_j |\hat\theta^*_{bj} - \hat\theta_j| / se_j`.

Reproducibility and parallel work
---------------------------------
Draws are made in fixed blocks of :data:`BLOCK_SIZE` draws. Block ``j`` uses its own
generator, ``numpy.random.Generator(PCG64(SeedSequence(seed).spawn(n_blocks)[j]))``,
and consumes its stream of float32 uniforms row by row (one row of ``C`` uniforms per
draw, mapped to multipliers by thresholding), so a block's draws do not depend on how
many blocks exist, on which process makes them, or on the memory chunking. Splitting
the ``B`` draws into tasks (:func:`task_blocks`), running :func:`bootstrap_draws` for
each task's block range (in one process or several) and stacking the pieces in block
order gives exactly the draws of one call; :func:`summarize` then gives the same
standard errors and critical value. Memory stays bounded: at most ``max_bytes`` of
multipliers exist at a time, whatever ``B`` and ``n``. (Tasks must use the same
``max_bytes``: a different value draws the same multipliers but changes the shape of
the matrix products, hence the floating-point summation order, by ~1e-16.)

Caveat: the sup-t band controls the family-wise coverage only of the columns it is
computed over; p-values are pointwise and not adjusted for multiple testing.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "BLOCK_SIZE",
    "BootstrapResult",
    "block_seeds",
    "bootstrap_draws",
    "cluster_sums",
    "multiplier_bootstrap",
    "n_blocks",
    "summarize",
    "task_blocks",
]

#: Number of draws made from one independently seeded generator. Part of the
#: reproducibility contract: changing it changes the draws for a given seed.
BLOCK_SIZE = 128

_SQRT5 = np.sqrt(5.0)
# Mammen's two-point distribution: mean 0, variance 1, third moment 1.
_MAMMEN_LOW = (1.0 - _SQRT5) / 2.0
_MAMMEN_HIGH = (1.0 + _SQRT5) / 2.0
_MAMMEN_P_LOW = (_SQRT5 + 1.0) / (2.0 * _SQRT5)
_IQR_NORMAL = stats.norm.ppf(0.75) - stats.norm.ppf(0.25)
# R did's threshold below which a standard error is treated as zero (degenerate).
_TINY = np.sqrt(np.finfo(float).eps) * 10


@dataclass(frozen=True)
class BootstrapResult:
    r"""Outcome of a multiplier bootstrap.

    Parameters
    ----------
    draws : numpy.ndarray
        ``(B, k)`` bootstrap perturbations :math:`\hat\theta^* - \hat\theta`.
    se : numpy.ndarray
        ``(k,)`` IQR-based bootstrap standard errors (NaN for degenerate columns).
    crit_value : float
        Sup-t critical value over the band columns (NaN if none is usable).
    n_clusters : int
        Number of independent multipliers per draw (clusters, or units).
    weights : str
        ``"mammen"`` or ``"rademacher"``.
    entropy : int
        Entropy of the root :class:`numpy.random.SeedSequence`; passing it as ``seed``
        reproduces the draws (useful when ``seed=None`` was given).
    alpha : float
        Level used for the critical value.
    """

    draws: np.ndarray
    se: np.ndarray
    crit_value: float
    n_clusters: int
    weights: str
    entropy: int | Sequence[int] | None
    alpha: float

    @property
    def n_draws(self) -> int:
        """Number of bootstrap draws ``B``."""
        return int(self.draws.shape[0])


def n_blocks(n_draws: int) -> int:
    """Return how many seed blocks ``n_draws`` draws occupy.

    Parameters
    ----------
    n_draws : int
        Total number of bootstrap draws ``B``.

    Returns
    -------
    int
        ``ceil(B / BLOCK_SIZE)``.
    """
    return -(-int(n_draws) // BLOCK_SIZE)


def task_blocks(n_draws: int, n_tasks: int) -> list[range]:
    """Split the blocks of ``n_draws`` draws into ``n_tasks`` contiguous ranges.

    Parameters
    ----------
    n_draws : int
        Total number of bootstrap draws.
    n_tasks : int
        Number of tasks (processes, jobs) to split the work into.

    Returns
    -------
    list of range
        Block ranges, in order; pass each to :func:`bootstrap_draws` and stack the
        results with :func:`numpy.vstack` in this order.
    """
    nb = n_blocks(n_draws)
    edges = np.linspace(0, nb, max(1, int(n_tasks)) + 1).round().astype(int)
    return [range(a, b) for a, b in itertools.pairwise(edges) if b > a]


def block_seeds(seed, n_draws: int) -> tuple[np.random.SeedSequence, list[np.random.SeedSequence]]:
    """Return the root seed sequence and one spawned child per block.

    Parameters
    ----------
    seed : int, numpy.random.SeedSequence or None
        Root seed. ``None`` draws fresh entropy (recorded in the root).
    n_draws : int
        Total number of draws ``B``.

    Returns
    -------
    tuple
        ``(root, children)`` with ``children = SeedSequence(seed).spawn(n_blocks(B))``.
    """
    if isinstance(seed, np.random.SeedSequence):
        root = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key)
    else:
        root = np.random.SeedSequence(seed)
    return root, root.spawn(n_blocks(n_draws))


def cluster_sums(influence: np.ndarray, clusters: np.ndarray | None = None) -> np.ndarray:
    """Sum per-unit influence functions within clusters.

    Parameters
    ----------
    influence : numpy.ndarray
        ``(n,)`` or ``(n, k)`` per-unit influence functions.
    clusters : numpy.ndarray, optional
        ``(n,)`` integer cluster codes ``0..C-1``. ``None`` leaves units as clusters.

    Returns
    -------
    numpy.ndarray
        ``(C, k)`` cluster sums (``(n, k)`` unchanged values without clustering).
    """
    psi = np.asarray(influence, dtype=float)
    if psi.ndim == 1:
        psi = psi[:, None]
    if clusters is None:
        return psi
    codes = np.asarray(clusters)
    n_c = int(codes.max()) + 1 if codes.size else 0
    out = np.empty((n_c, psi.shape[1]))
    for j in range(psi.shape[1]):
        out[:, j] = np.bincount(codes, weights=psi[:, j], minlength=n_c)
    return out


def _multipliers(u: np.ndarray, weights: str) -> np.ndarray:
    """Map float32 uniforms on [0, 1) to Mammen or Rademacher multipliers (float64).

    The uniforms have 24-bit resolution, so Mammen's probability is matched to ~6e-8.
    """
    if weights == "mammen":
        return np.where(u < np.float32(_MAMMEN_P_LOW), _MAMMEN_LOW, _MAMMEN_HIGH)
    return np.where(u < np.float32(0.5), -1.0, 1.0)


def _check_weights(weights: str) -> str:
    if weights not in ("mammen", "rademacher"):
        raise ValueError(
            f"weights must be 'mammen' or 'rademacher', got {weights!r}"
        )
    return weights


def bootstrap_draws(
    sums: np.ndarray,
    n: int,
    n_draws: int,
    seed=None,
    blocks: range | None = None,
    weights: str = "mammen",
    max_bytes: int = 64 * 2**20,
) -> np.ndarray:
    r"""Make the bootstrap perturbations for a range of seed blocks.

    Parameters
    ----------
    sums : numpy.ndarray
        ``(C, k)`` cluster sums of the influence functions (:func:`cluster_sums`).
    n : int
        Number of units ``n`` (the influence functions' normalisation).
    n_draws : int
        Total number of draws ``B`` of the whole bootstrap (not of this task).
    seed : int, numpy.random.SeedSequence or None
        Root seed; every task of one bootstrap must get the same value.
    blocks : range, optional
        Block indices to draw (see :func:`task_blocks`); default all blocks.
    weights : {"mammen", "rademacher"}
        Multiplier distribution.
    max_bytes : int
        Upper bound on the memory held by multipliers at one time.

    Returns
    -------
    numpy.ndarray
        ``(b, k)`` draws of :math:`\hat\theta^* - \hat\theta` for the requested
        blocks, in block order.
    """
    _check_weights(weights)
    s = np.asarray(sums, dtype=float)
    if s.ndim == 1:
        s = s[:, None]
    n_c = s.shape[0]
    _, children = block_seeds(seed, n_draws)
    if blocks is None:
        blocks = range(len(children))
    rows_per_chunk = max(1, int(max_bytes) // max(1, 12 * n_c))  # float32 + float64
    pieces = []
    for j in blocks:
        if not 0 <= j < len(children):
            raise ValueError(f"block {j} is outside 0..{len(children) - 1} for {n_draws} draws")
        rng = np.random.Generator(np.random.PCG64(children[j]))
        todo = min(BLOCK_SIZE, n_draws - j * BLOCK_SIZE)
        while todo > 0:
            m = min(todo, rows_per_chunk)
            v = _multipliers(rng.random((m, n_c), dtype=np.float32), weights)
            pieces.append(v @ s)
            todo -= m
    if not pieces:
        return np.empty((0, s.shape[1]))
    return np.vstack(pieces) / float(n)


def _quantile1(x: np.ndarray, q, axis=0):
    """Type-1 (inverse empirical CDF) quantile, as R's ``quantile(type = 1)``."""
    return np.quantile(x, q, axis=axis, method="inverted_cdf")


def summarize(
    draws: np.ndarray, alpha: float = 0.05, band_columns=None
) -> tuple[np.ndarray, float]:
    """Turn bootstrap draws into standard errors and a sup-t critical value.

    Parameters
    ----------
    draws : numpy.ndarray
        ``(B, k)`` perturbations from :func:`bootstrap_draws`.
    alpha : float
        One minus the simultaneous coverage.
    band_columns : array_like of int or bool, optional
        Columns the simultaneous band covers; default all.

    Returns
    -------
    tuple
        ``(se, crit_value)``: IQR-based standard errors (NaN for degenerate columns)
        and the ``1 - alpha`` type-1 quantile of the max absolute t-statistic.
    """
    d = np.asarray(draws, dtype=float)
    if d.ndim == 1:
        d = d[:, None]
    k = d.shape[1]
    q25, q75 = _quantile1(d, [0.25, 0.75], axis=0)
    se = (q75 - q25) / _IQR_NORMAL
    degenerate = ~np.isfinite(d.sum(axis=0)) | ((d**2).sum(axis=0) <= _TINY) | (se <= _TINY)
    se = np.where(degenerate, np.nan, se)
    cols = np.arange(k) if band_columns is None else np.arange(k)[np.asarray(band_columns)]
    cols = cols[np.isfinite(se[cols])]
    if cols.size == 0 or d.shape[0] == 0:
        return se, float("nan")
    t_max = np.max(np.abs(d[:, cols] / se[cols]), axis=1)
    t_max = t_max[np.isfinite(t_max)]
    crit = float(_quantile1(t_max, 1 - alpha)) if t_max.size else float("nan")
    return se, crit


def multiplier_bootstrap(
    influence: np.ndarray,
    n_draws: int = 999,
    seed=None,
    clusters: np.ndarray | None = None,
    weights: str = "mammen",
    alpha: float = 0.05,
    band_columns=None,
    max_bytes: int = 64 * 2**20,
) -> BootstrapResult:
    """Run the multiplier bootstrap on per-unit influence functions.

    Parameters
    ----------
    influence : numpy.ndarray
        ``(n, k)`` (or ``(n,)``) per-unit influence functions, scaled so that the
        analytic variance is ``psi.T @ psi / n**2`` (R ``did``'s convention).
    n_draws : int, default 999
        Number of draws ``B``.
    seed : int, numpy.random.SeedSequence or None
        Root seed; the same seed gives identical results.
    clusters : numpy.ndarray, optional
        ``(n,)`` integer cluster codes ``0..C-1``: one multiplier per cluster.
    weights : {"mammen", "rademacher"}, default "mammen"
        Multiplier distribution (R ``did`` uses Mammen).
    alpha : float, default 0.05
        One minus the simultaneous coverage of the sup-t band.
    band_columns : array_like, optional
        Columns covered by the simultaneous band; default all.
    max_bytes : int
        Upper bound on the memory held by multipliers at one time.

    Returns
    -------
    BootstrapResult
        Draws, standard errors and the sup-t critical value.

    Raises
    ------
    ValueError
        If ``n_draws`` is not positive or ``weights`` is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> psi = np.random.default_rng(0).normal(size=(500, 3))
    >>> res = multiplier_bootstrap(psi, n_draws=999, seed=1)
    >>> bool(np.allclose(res.se, np.sqrt((psi**2).sum(0)) / 500, rtol=0.15))
    True
    """
    if int(n_draws) < 1:
        raise ValueError(f"n_draws must be a positive number of bootstrap draws, got {n_draws}")
    _check_weights(weights)
    psi = np.asarray(influence, dtype=float)
    if psi.ndim == 1:
        psi = psi[:, None]
    n = psi.shape[0]
    sums = cluster_sums(psi, clusters)
    root, _ = block_seeds(seed, n_draws)
    draws = bootstrap_draws(sums, n, int(n_draws), root, weights=weights, max_bytes=max_bytes)
    se, crit = summarize(draws, alpha, band_columns)
    entropy = root.entropy
    return BootstrapResult(
        draws=draws,
        se=se,
        crit_value=crit,
        n_clusters=int(sums.shape[0]),
        weights=weights,
        entropy=int(entropy) if isinstance(entropy, int | np.integer) else entropy,
        alpha=float(alpha),
    )
