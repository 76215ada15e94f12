r"""Multiple testing across a family of outcomes: Romano-Wolf stepdown, Holm, Bonferroni.

The study tests the programme's effect on several outcomes (income, collective income,
projects, cases, disputes, petitions, ...). Reporting each outcome's p-value as if it were
the only test inflates the chance of at least one false discovery. The functions here
control the **family-wise error rate** (FWER): the probability of rejecting at least one
true null among the ``K`` hypotheses :math:`H_k: \theta_k = 0`.

Romano-Wolf stepdown (the study's adjustment)
---------------------------------------------
Romano & Wolf (2005, Econometrica; 2016, Statistics & Probability Letters, Algorithm
4.1) use the joint bootstrap distribution of the studentised statistics, so the
adjustment adapts to the correlation between outcomes (outcomes measured on the same
villages are correlated; Bonferroni and Holm ignore that and are conservative). With
observed :math:`t_k` and ``B`` bootstrap draws :math:`t^*_{bk}` that are centred (drawn
under the null, or as :math:`(\hat\theta^*_k - \hat\theta_k)/se_k`):

1. order the hypotheses by :math:`|t_k|`, largest first: :math:`r_1, \dots, r_K`;
2. for step ``j``, :math:`p^{\text{init}}_j = \big(1 + \#\{b : \max_{l \ge j} |t^*_{b r_l}|
   \ge |t_{r_j}|\}\big) / (B + 1)`: the maximum runs over the hypotheses not yet
   rejected at earlier steps;
3. enforce monotonicity: :math:`p^{RW}_{r_j} = \max_{l \le j} p^{\text{init}}_l`.

Rejecting :math:`H_k` when :math:`p^{RW}_k \le \alpha` controls the FWER at
:math:`\alpha` asymptotically (under subset pivotality, which holds for asymptotically
normal estimators with a consistently estimated joint distribution). Properties:
:math:`p^{RW}_k \ge` the unadjusted bootstrap p-value; with perfectly correlated
statistics :math:`p^{RW}` equals it; with independent ones it is close to Holm-Šidák.
This is the max-t stepdown of Westfall & Young (1993) with a bootstrap null
distribution, and the formula of pyfixest's ``rwolf`` and Stata's ``rwolf``.

Sources of the bootstrap draws
------------------------------
* :func:`romano_wolf` takes any ``(B, K)`` matrix of bootstrap t-statistics, e.g. the
  ``t_boot`` of :func:`analysis.inference.wild.wild_cluster_bootstrap` run on each outcome
  **with the same seed and cluster variable** (then every outcome sees the same wild
  weights, which is what makes the draws joint).
* :func:`romano_wolf_influence` draws them with the multiplier bootstrap of
  :mod:`analysis.inference.multiplier` from per-unit influence functions (``n x K``):
  the **same multipliers for all outcomes**, one per cluster;
  :math:`t^*_{bk} = (\hat\theta^*_{bk} - \hat\theta_k)/se_k` with the analytic
  (clustered) influence-function standard error :math:`se_k = \sqrt{f \sum_c S_{ck}^2}/n`
  (``f = G/(G-1)``, the study's convention, :mod:`analysis.inference.small_sample`; it
  scales :math:`t_k` and :math:`t^*_{bk}` alike, so the p-values do not depend on it).
* :func:`romano_wolf_did` does this for Callaway-Sant'Anna results of several outcomes on
  the same units (``aggregate(att_gt(...), "simple")``), reading the influence functions
  from their ``influence``.

Caveats
-------
* The family must be fixed before looking at the results; the adjustment is for the
  hypotheses passed, no more.
* FWER control is asymptotic and relies on the bootstrap approximating the joint
  distribution; with few clusters prefer the wild bootstrap t-statistics.
* Holm and Bonferroni are valid under any dependence but conservative; Šidák and
  Holm-Šidák assume independence (or positive dependence) and are references only.

References
----------
Romano, J. P. and Wolf, M. (2005). Stepwise multiple testing as formalized data snooping.
*Econometrica*, 73(4), 1237-1282.

Romano, J. P. and Wolf, M. (2016). Efficient computation of adjusted p-values for
resampling-based stepdown multiple testing. *Statistics & Probability Letters*, 113, 38-40.

Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian
Journal of Statistics*, 6(2), 65-70.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.inference.multiplier import block_seeds, bootstrap_draws, cluster_sums
from analysis.inference.small_sample import DEFAULT as SMALL_SAMPLE
from analysis.inference.small_sample import cluster_factor
from analysis.results import DiDResult

__all__ = [
    "MultipleTestingResult",
    "bonferroni",
    "holm",
    "holm_sidak",
    "romano_wolf",
    "romano_wolf_did",
    "romano_wolf_influence",
    "sidak",
]


# ----------------------------------------------------------------------------------
# simple references
# ----------------------------------------------------------------------------------
def _p_array(p) -> np.ndarray:
    a = np.asarray(p, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ValueError("p-values must be a non-empty 1-d array")
    if np.any(~np.isfinite(a)) or np.any((a < 0) | (a > 1)):
        raise ValueError("p-values must be finite and in [0, 1]")
    return a


def bonferroni(p) -> np.ndarray:
    """Bonferroni-adjusted p-values, ``min(1, K p)``.

    Parameters
    ----------
    p : array_like
        ``K`` unadjusted p-values.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values (FWER control under any dependence).

    Examples
    --------
    >>> bonferroni([0.01, 0.04, 0.5]).tolist()
    [0.03, 0.12, 1.0]
    """
    a = _p_array(p)
    return np.minimum(1.0, a * a.size)


def sidak(p) -> np.ndarray:
    """Šidák-adjusted p-values, ``1 - (1 - p)^K`` (exact for independent tests).

    Parameters
    ----------
    p : array_like
        ``K`` unadjusted p-values.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values.
    """
    a = _p_array(p)
    return -np.expm1(a.size * np.log1p(-np.minimum(a, 1.0 - 1e-300)))


def _stepdown(p: np.ndarray, adjust) -> np.ndarray:
    order = np.argsort(p, kind="stable")
    k = p.size
    adj = np.array([adjust(p[order[j]], k - j) for j in range(k)])
    adj = np.minimum(1.0, np.maximum.accumulate(adj))
    out = np.empty(k)
    out[order] = adj
    return out


def holm(p) -> np.ndarray:
    """Holm (1979) stepdown Bonferroni adjusted p-values.

    Parameters
    ----------
    p : array_like
        ``K`` unadjusted p-values.

    Returns
    -------
    numpy.ndarray
        ``max_{l <= j} min(1, (K - l + 1) p_(l))`` in the order of the sorted p-values,
        returned in the input order. FWER control under any dependence.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).tolist()
    [0.03, 0.06, 0.06]
    """
    return _stepdown(_p_array(p), lambda pj, m: m * pj)


def holm_sidak(p) -> np.ndarray:
    """Holm-Šidák stepdown adjusted p-values (``1 - (1 - p_(j))^(K - j + 1)``, monotone).

    Parameters
    ----------
    p : array_like
        ``K`` unadjusted p-values.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order (exact FWER for independent tests).
    """
    return _stepdown(_p_array(p), lambda pj, m: -np.expm1(m * np.log1p(-min(pj, 1.0 - 1e-300))))


# ----------------------------------------------------------------------------------
# Romano-Wolf
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MultipleTestingResult:
    """Adjusted p-values for a family of hypotheses.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per hypothesis, in input order: ``hypothesis``, ``estimate`` and
        ``std_error`` (when known), ``t_stat``, ``p_unadjusted`` (bootstrap,
        ``(1 + #{|t*_k| >= |t_k|}) / (B + 1)``), ``p_romano_wolf``, ``p_holm``,
        ``p_bonferroni`` (both applied to ``p_unadjusted``), and ``stepdown_rank`` (1 =
        largest ``|t|``, tested first).
    B : int
        Number of bootstrap draws.
    boot_t : numpy.ndarray
        ``(B, K)`` bootstrap t-statistics used.
    options : dict
        How the draws were made.
    """

    table: pd.DataFrame
    B: int
    boot_t: np.ndarray = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def p_values(self) -> pd.Series:
        """Romano-Wolf adjusted p-values indexed by hypothesis."""
        return self.table.set_index("hypothesis")["p_romano_wolf"]

    def __repr__(self) -> str:
        cols = ["hypothesis", "t_stat", "p_unadjusted", "p_romano_wolf", "p_holm", "p_bonferroni"]
        return f"Romano-Wolf stepdown ({self.B} bootstrap draws)\n" + self.table[cols].to_string(index=False)


def _romano_wolf_p(t_abs: np.ndarray, boot_abs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (adjusted p-values, stepdown ranks) from absolute t-statistics."""
    B, k = boot_abs.shape
    order = np.argsort(-t_abs, kind="stable")
    suffix_max = np.maximum.accumulate(boot_abs[:, order][:, ::-1], axis=1)[:, ::-1]
    p_init = (1.0 + np.sum(suffix_max >= t_abs[order][None, :], axis=0)) / (B + 1.0)
    p_adj = np.minimum(1.0, np.maximum.accumulate(p_init))
    out = np.empty(k)
    out[order] = p_adj
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(1, k + 1)
    return out, rank


def romano_wolf(
    t_stats,
    boot_t,
    names: Sequence[str] | None = None,
    estimates=None,
    std_errors=None,
) -> MultipleTestingResult:
    r"""Romano-Wolf stepdown adjusted p-values from bootstrap t-statistics.

    Parameters
    ----------
    t_stats : array_like
        ``(K,)`` observed t-statistics :math:`t_k` for :math:`H_k: \theta_k = \theta_{0k}`.
    boot_t : array_like
        ``(B, K)`` bootstrap t-statistics drawn **jointly** (the same resampling for all
        ``K`` columns in each row) and centred under the null (e.g. WCR draws, or
        :math:`(\hat\theta^* - \hat\theta)/se`).
    names : sequence of str, optional
        Hypothesis labels; default ``"H1"``, ``"H2"``, ...
    estimates, std_errors : array_like, optional
        ``(K,)`` values carried into the table.

    Returns
    -------
    MultipleTestingResult
        Adjusted p-values (module docstring) with Holm and Bonferroni references.

    Raises
    ------
    ValueError
        Shapes that disagree, fewer than one draw, non-finite values, or duplicate names.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(9999, 1))
    >>> same = romano_wolf([3.0, 0.5], np.hstack([z, z]))  # perfectly correlated outcomes
    >>> bool(np.allclose(same.table["p_romano_wolf"], same.table["p_unadjusted"]))
    True
    """
    t = np.asarray(t_stats, dtype=float).ravel()
    bt = np.asarray(boot_t, dtype=float)
    if bt.ndim == 1:
        bt = bt[:, None]
    if bt.ndim != 2 or bt.shape[1] != t.size:
        raise ValueError(f"boot_t must be (B, K) with K = {t.size} columns, got shape {bt.shape}")
    if t.size == 0 or bt.shape[0] < 1:
        raise ValueError("need at least one hypothesis and one bootstrap draw")
    if not np.all(np.isfinite(t)):
        raise ValueError("t_stats must be finite")
    if not np.all(np.isfinite(bt)):
        raise ValueError("boot_t has non-finite values")
    names = [f"H{k + 1}" for k in range(t.size)] if names is None else [str(n) for n in names]
    if len(names) != t.size or len(set(names)) != len(names):
        raise ValueError(f"names must be {t.size} distinct labels, got {names}")
    t_abs, b_abs = np.abs(t), np.abs(bt)
    B = bt.shape[0]
    p_unadj = (1.0 + np.sum(b_abs >= t_abs[None, :], axis=0)) / (B + 1.0)
    p_rw, rank = _romano_wolf_p(t_abs, b_abs)
    nan = np.full(t.size, np.nan)
    table = pd.DataFrame({
        "hypothesis": names,
        "estimate": nan if estimates is None else np.asarray(estimates, dtype=float).ravel(),
        "std_error": nan if std_errors is None else np.asarray(std_errors, dtype=float).ravel(),
        "t_stat": t,
        "p_unadjusted": p_unadj,
        "p_romano_wolf": p_rw,
        "p_holm": holm(p_unadj),
        "p_bonferroni": bonferroni(p_unadj),
        "stepdown_rank": rank,
    })
    return MultipleTestingResult(table=table, B=B, boot_t=bt, options={"method": "romano-wolf stepdown (max |t|)"})


def romano_wolf_influence(
    estimates,
    influence,
    clusters=None,
    B: int = 999,
    seed=None,
    weights: str = "mammen",
    names: Sequence[str] | None = None,
    null=0.0,
    small_sample: str = SMALL_SAMPLE,
) -> MultipleTestingResult:
    r"""Romano-Wolf adjusted p-values from per-unit influence functions (joint multiplier bootstrap).

    Parameters
    ----------
    estimates : array_like
        ``(K,)`` estimates :math:`\hat\theta_k`.
    influence : array_like
        ``(n, K)`` per-unit influence functions, scaled as in R ``did`` (analytic
        variance ``psi.T @ psi / n**2``), all on the same ``n`` units in the same order.
    clusters : array_like of int, optional
        ``(n,)`` cluster codes ``0..C-1`` (one multiplier per cluster and draw).
    B : int, default 999
        Bootstrap draws.
    seed : int, numpy.random.SeedSequence or None
        Root seed (blocks as :mod:`analysis.inference.multiplier`).
    weights : {"mammen", "rademacher"}, default "mammen"
        Multiplier distribution.
    names : sequence of str, optional
        Hypothesis labels.
    null : float or array_like, default 0
        :math:`\theta_{0k}`.
    small_sample : {"cr1_t", "asymptotic"}, default "cr1_t"
        Whether ``se_k`` carries ``G/(G-1)`` (the p-values do not depend on it).

    Returns
    -------
    MultipleTestingResult
        With ``t_k = (estimate_k - null_k) / se_k`` and
        ``t*_bk = (theta*_bk - theta_k) / se_k``, ``se_k = sqrt(f sum_c S_ck^2) / n``.

    Raises
    ------
    ValueError
        Shapes that disagree, a zero standard error, or bad ``B``/``weights``.

    Examples
    --------
    >>> import numpy as np
    >>> psi = np.random.default_rng(0).normal(size=(400, 3))
    >>> res = romano_wolf_influence([0.3, 0.01, -0.2], psi, B=999, seed=1)
    >>> res.table["stepdown_rank"].tolist()
    [1, 3, 2]
    """
    est = np.asarray(estimates, dtype=float).ravel()
    psi = np.asarray(influence, dtype=float)
    if psi.ndim == 1:
        psi = psi[:, None]
    if psi.ndim != 2 or psi.shape[1] != est.size:
        raise ValueError(f"influence must be (n, K) with K = {est.size} columns, got shape {psi.shape}")
    if isinstance(B, bool) or not isinstance(B, int | np.integer) or B < 1:
        raise ValueError(f"B must be a positive integer, got {B!r}")
    if not np.all(np.isfinite(psi)) or not np.all(np.isfinite(est)):
        raise ValueError("estimates and influence functions must be finite")
    n = psi.shape[0]
    cl = None
    if clusters is not None:
        cl = pd.factorize(np.asarray(clusters), sort=True)[0]
        if cl.size != n:
            raise ValueError(f"clusters has {cl.size} entries for {n} units")
    sums = cluster_sums(psi, cl)
    se = np.sqrt(np.sum(sums**2, axis=0) * cluster_factor(sums.shape[0], small_sample)) / n
    if np.any(se <= 0):
        raise ValueError("an influence function is identically zero within clusters (zero standard error)")
    root, _ = block_seeds(seed, int(B))
    draws = bootstrap_draws(sums, n, int(B), root, weights=weights)
    t = (est - np.broadcast_to(np.asarray(null, dtype=float), est.shape)) / se
    res = romano_wolf(t, draws / se, names=names, estimates=est, std_errors=se)
    entropy = root.entropy
    opts = {**res.options, "draws": "multiplier bootstrap on influence functions, same multipliers for all",
            "weights": weights, "clustered": cl is not None, "n_units": n,
            "n_clusters": int(sums.shape[0]),
            "seed_entropy": int(entropy) if isinstance(entropy, int | np.integer) else str(entropy)}
    return MultipleTestingResult(table=res.table, B=res.B, boot_t=res.boot_t, options=opts)


def romano_wolf_did(
    results: Sequence[DiDResult] | Mapping[str, DiDResult],
    B: int = 999,
    seed=None,
    weights: str = "mammen",
) -> MultipleTestingResult:
    """Romano-Wolf adjusted p-values across Callaway-Sant'Anna results of several outcomes.

    Every row of every result (e.g. the one ``"ATT"`` row of
    ``aggregate(att_gt(...), "simple")`` per outcome, or the event-time rows of
    ``aggregate(..., "event")``) is one hypothesis ``theta = 0``. The per-unit influence
    functions in their ``influence`` are stacked and bootstrapped jointly with the same
    multipliers (per cluster, the clusters of the results).

    Parameters
    ----------
    results : sequence or mapping of DiDResult
        Outputs of :func:`analysis.estimators.callaway_santanna.aggregate` (or
        ``att_gt``) on the same units and clusters. Mapping keys label the results;
        otherwise the outcome names do.
    B : int, default 999
        Bootstrap draws.
    seed : int, numpy.random.SeedSequence or None
        Root seed.
    weights : {"mammen", "rademacher"}, default "mammen"
        Multiplier distribution (R ``did`` uses Mammen).

    Returns
    -------
    MultipleTestingResult
        Hypotheses labelled ``"<label>: <term>"`` (just ``"<label>"`` for one-row results).

    Raises
    ------
    ValueError
        A result without influence functions, results on different units or clusters,
        or fewer than one hypothesis.
    """
    pairs = list(results.items()) if isinstance(results, Mapping) else list(enumerate(results))
    if not pairs:
        raise ValueError("results is empty")
    for key, res in pairs:
        if not isinstance(res, DiDResult):
            raise ValueError(f"result {key!r} is a {type(res).__name__}, not a DiDResult with influence "
                             "functions (pass att_gt/aggregate output)")
    items = pairs if isinstance(results, Mapping) else [(r.outcome, r) for _, r in pairs]
    labels = [k for k, _ in items]
    if len(set(labels)) != len(labels):
        raise ValueError(f"result labels must be distinct, got {labels}; pass a mapping label -> result")
    ref_ids: np.ndarray | None = None
    ref_cl: np.ndarray | None = None
    ests: list[float] = []
    psis: list[np.ndarray] = []
    names: list[str] = []
    rule = items[0][1].options.get("small_sample", SMALL_SAMPLE)
    for label, res in items:
        if res.influence is None or res.unit_ids is None:
            raise ValueError(f"result {label!r} has no influence functions (pass att_gt/aggregate output)")
        ids = np.asarray(res.unit_ids)
        cl = res.clusters
        if ref_ids is None:
            ref_ids, ref_cl = ids, cl
        elif not np.array_equal(ids, ref_ids):
            raise ValueError(f"result {label!r} is on different units from {labels[0]!r}")
        elif (cl is None) != (ref_cl is None) or (cl is not None and ref_cl is not None
                                                   and not np.array_equal(cl, ref_cl)):
            raise ValueError(f"result {label!r} has different clusters from {labels[0]!r}")
        inf = np.asarray(res.influence, dtype=float)
        if inf.ndim == 1:
            inf = inf[:, None]
        t = res.tidy()
        if len(t) != inf.shape[1]:
            raise ValueError(f"result {label!r}: {len(t)} rows but {inf.shape[1]} influence functions")
        for j, row in enumerate(t.itertuples()):
            if not np.isfinite(row.std_error) or not np.all(np.isfinite(inf[:, j])):
                continue  # reference or degenerate rows carry no hypothesis
            ests.append(float(row.estimate))
            psis.append(inf[:, j])
            names.append(str(label) if len(t) == 1 else f"{label}: {row.term}")
    if not ests:
        raise ValueError("no testable row (finite estimate and standard error) in results")
    return romano_wolf_influence(np.array(ests), np.column_stack(psis), clusters=ref_cl, B=B, seed=seed,
                                 weights=weights, names=names, small_sample=rule)
