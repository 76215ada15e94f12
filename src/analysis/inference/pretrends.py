r"""Power of pre-trend tests and the bias that survives them (Roth 2022, "Pretest with Caution").

An event study's pre-period coefficients :math:`\hat\beta_{pre} \sim N(\delta_{pre}, \Sigma_{pre})`
estimate the difference in trends :math:`\delta` before treatment. Researchers often proceed
only if a *pre-test* finds no significant pre-trend. Two pre-tests are supported:

* ``test="individual"`` (Roth's and the R/Stata ``pretrends`` packages' default): the
  pre-test *rejects* ("detects a pre-trend") if any pre-period coefficient is individually
  significant, :math:`|\hat\beta_t| > c\,se_t` for some :math:`t`, with
  :math:`c = z_{1-\alpha/2}` (R ``pretrends`` hard-codes :math:`c = 1.96`; pass
  ``threshold=1.96`` to reproduce it). Its size under parallel trends exceeds ``alpha``
  when there are several pre-periods.
* ``test="wald"``: the joint Wald test rejects if
  :math:`\hat\beta_{pre}'\Sigma_{pre}^{-1}\hat\beta_{pre} > \chi^2_{K, 1-\alpha}`.

For a linear differential trend :math:`\delta_t = \gamma\,t` (``t`` = event time minus the
reference period, so :math:`\delta = 0` at the reference period), the power of the pre-test
increases with :math:`|\gamma|` (Anderson's inequality). :func:`pretrend_power` returns the
slope :math:`\gamma` that the pre-test detects with a given probability (50% or 80%):
violations smaller than that slip through more often than not. Such a trend biases the
post-period estimates by :math:`\gamma t` for :math:`t > 0`; conditional on *passing* the
pre-test the bias is :math:`E[\hat\beta_{post} \mid pass] = \delta_{post} +
\Sigma_{post,pre}\Sigma_{pre}^{-1}(E[\hat\beta_{pre} \mid pass] - \delta_{pre})` (with no
treatment effect), which :func:`pretrends_analysis` reports as ``mean_after_pretest``.

Assumptions: asymptotic normality with known covariance; the hypothesised trend is the
truth; no anticipation. The results describe the pre-test, not the data: a pre-test with
low power against economically relevant trends is weak evidence for parallel trends (use
:mod:`analysis.inference.honest` for inference robust to such trends).

References
----------
Roth, J. (2022). Pretest with caution: event-study estimates after testing for parallel
trends. *American Economic Review: Insights*, 4(3), 305-322.

Tallis, G. M. (1961). The moment generating function of the truncated multi-normal
distribution. *Journal of the Royal Statistical Society B*, 23(1), 223-229.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import integrate, optimize, stats

from analysis.inference.event_study import event_study_inputs
from analysis.results import DiDResult

__all__ = [
    "PretrendsResult",
    "pretest_pass_mean",
    "pretrend_power",
    "pretrend_power_from_result",
    "pretrends_analysis",
    "rejection_probability",
]

_TESTS = ("individual", "wald")
#: Absolute error requested from the Genz integration of the multivariate normal.
MVN_ABSEPS = 1e-6


# ----------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------
def _check_cov(sigma, name="sigma_pre") -> np.ndarray:
    S = np.atleast_2d(np.asarray(sigma, dtype=float))
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {S.shape}")
    if not np.all(np.isfinite(S)):
        raise ValueError(f"{name} has missing or infinite values")
    scale = float(np.max(np.abs(S)))
    if not np.allclose(S, S.T, rtol=1e-8, atol=1e-10 * scale):
        raise ValueError(f"{name} must be symmetric")
    S = (S + S.T) / 2
    eig = np.linalg.eigvalsh(S)
    if eig[0] <= 1e-12 * max(eig[-1], 0.0) or eig[-1] <= 0:
        raise ValueError(f"{name} must be positive definite (smallest eigenvalue {eig[0]:.3g})")
    return S


def _check_delta(delta, S: np.ndarray) -> np.ndarray:
    d = np.asarray(delta, dtype=float).ravel()
    if d.size != S.shape[0] or not np.all(np.isfinite(d)):
        raise ValueError(f"delta_pre must have {S.shape[0]} finite entries, got {d.size}")
    return d


def _check_alpha(alpha) -> float:
    if not isinstance(alpha, int | float | np.floating) or not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
    return float(alpha)


def _check_test(test: str) -> str:
    if test not in _TESTS:
        raise ValueError(f"test must be one of {_TESTS}, got {test!r}")
    return test


def _pre_times(t, K: int) -> np.ndarray:
    if t is None:
        return np.arange(-K, 0, dtype=float)
    tt = np.asarray(t, dtype=float).ravel()
    if tt.size != K or not np.all(np.isfinite(tt)):
        raise ValueError(f"t must have one finite entry per pre-period ({K}), got {tt.size}")
    if np.any(tt == 0):
        raise ValueError("t is measured from the reference period and cannot be 0 for a coefficient")
    return tt


def _threshold(alpha: float, threshold) -> float:
    if threshold is None:
        return float(stats.norm.ppf(1 - alpha / 2))
    c = float(threshold)
    if not np.isfinite(c) or c <= 0:
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    return c


# ----------------------------------------------------------------------------------
# multivariate normal box probabilities and truncated means
# ----------------------------------------------------------------------------------
def _box_prob(lo, hi, mean, cov) -> float:
    """P(lo <= X <= hi) for X ~ N(mean, cov); deterministic (seeded quasi-Monte Carlo)."""
    k = len(mean)
    if k == 0:
        return 1.0
    if k == 1:
        sd = np.sqrt(cov[0, 0])
        return float(stats.norm.cdf((hi[0] - mean[0]) / sd) - stats.norm.cdf((lo[0] - mean[0]) / sd))
    p = stats.multivariate_normal.cdf(hi, mean=mean, cov=cov, lower_limit=lo, abseps=MVN_ABSEPS,
                                      releps=0.0, maxpts=2_000_000 * k,
                                      rng=np.random.default_rng(20220101))
    return float(np.clip(p, 0.0, 1.0))


def _box_mean(lo, hi, mean, cov):
    """E[X | lo <= X <= hi] and the box probability, by Tallis's (1961) formula."""
    k = len(mean)
    P = _box_prob(lo, hi, mean, cov)
    if P <= 0:
        raise ValueError("the pre-test is passed with probability zero under this trend")
    F = np.zeros(k)
    for i in range(k):
        sd_i = np.sqrt(cov[i, i])
        others = np.delete(np.arange(k), i)
        c_io = cov[others, i]
        cond_cov = cov[np.ix_(others, others)] - np.outer(c_io, c_io) / cov[i, i]
        for bound, sign in ((lo[i], 1.0), (hi[i], -1.0)):
            dens = stats.norm.pdf((bound - mean[i]) / sd_i) / sd_i
            if dens == 0:
                continue
            cond_mean = mean[others] + c_io * (bound - mean[i]) / cov[i, i]
            F[i] += sign * dens * _box_prob(lo[others], hi[others], cond_mean, cond_cov)
    return mean + cov @ F / P, P


def _wald_pass_mean(delta, S, crit):
    """E[b | b'S^{-1}b <= crit] for b ~ N(delta, S), via a one-dimensional integral."""
    K = len(delta)
    L = np.linalg.cholesky(S)
    mu = np.linalg.solve(L, delta)
    a = float(np.linalg.norm(mu))
    r = np.sqrt(crit)
    if a == 0:
        return np.zeros(K)

    def rest(x):  # P(chi2_{K-1} <= crit - x^2)
        return 1.0 if K == 1 else stats.chi2.cdf(max(crit - x * x, 0.0), K - 1)

    den = integrate.quad(lambda x: stats.norm.pdf(x - a) * rest(x), -r, r, epsabs=1e-13, epsrel=1e-11)[0]
    num = integrate.quad(lambda x: x * stats.norm.pdf(x - a) * rest(x), -r, r, epsabs=1e-13,
                         epsrel=1e-11)[0]
    return L @ (mu / a * (num / den))


# ----------------------------------------------------------------------------------
# power
# ----------------------------------------------------------------------------------
def rejection_probability(delta_pre, sigma_pre, alpha: float = 0.05, test: str = "individual",
                          threshold: float | None = None) -> float:
    r"""Probability that the pre-test detects a pre-trend when :math:`E[\hat\beta_{pre}] = \delta_{pre}`.

    Parameters
    ----------
    delta_pre : array_like
        Hypothesised pre-period differences in trends (one per pre-period coefficient).
    sigma_pre : array_like
        Covariance matrix of the pre-period coefficients (positive definite).
    alpha : float, default 0.05
        Level of the pre-test.
    test : {"individual", "wald"}, default "individual"
        Any coefficient individually significant, or the joint Wald test.
    threshold : float, optional
        Critical t-statistic of the individual test; default :math:`z_{1-\alpha/2}`.

    Returns
    -------
    float
        Rejection probability (power; the size if ``delta_pre`` is zero).

    Examples
    --------
    >>> round(rejection_probability([0.0], [[1.0]]), 4)
    0.05
    """
    S = _check_cov(sigma_pre)
    d = _check_delta(delta_pre, S)
    alpha = _check_alpha(alpha)
    if _check_test(test) == "wald":
        K = d.size
        lam = float(d @ np.linalg.solve(S, d))
        crit = stats.chi2.ppf(1 - alpha, K)
        return float(stats.ncx2.sf(crit, K, lam)) if lam > 0 else float(stats.chi2.sf(crit, K))
    ub = _threshold(alpha, threshold) * np.sqrt(np.diag(S))
    return 1.0 - _box_prob(-ub, ub, d, S)


def pretrend_power(sigma_pre, alpha: float = 0.05, power: float = 0.5, t=None,
                   test: str = "individual", threshold: float | None = None) -> float:
    r"""Slope of a linear pre-trend that the pre-test detects with probability ``power``.

    Solves :math:`P(\text{pre-test rejects} \mid \delta_{pre} = \gamma t) = power` for
    :math:`\gamma > 0` (R ``pretrends::slope_for_power``).

    Parameters
    ----------
    sigma_pre : array_like
        Covariance matrix of the pre-period coefficients.
    alpha : float, default 0.05
        Level of the pre-test.
    power : float, default 0.5
        Target power, e.g. 0.5 or 0.8; must exceed the size of the test.
    t : array_like, optional
        Event times of the pre-period coefficients measured from the reference period
        (negative); default ``-K, ..., -1``.
    test : {"individual", "wald"}, default "individual"
        See the module docstring.
    threshold : float, optional
        Critical t-statistic of the individual test (default :math:`z_{1-\alpha/2}`; R uses
        1.96).

    Returns
    -------
    float
        The slope :math:`\gamma > 0` (a magnitude: the power is symmetric in its sign), in
        units of the outcome per period.

    Raises
    ------
    ValueError
        Bad covariance, ``t`` of the wrong length, or ``power`` not above the test's size.

    Examples
    --------
    One pre-period with unit variance: a trend is detected half the time when its slope is
    about the critical value.

    >>> round(pretrend_power([[1.0]], power=0.5), 2)
    1.96
    """
    S = _check_cov(sigma_pre)
    K = S.shape[0]
    alpha = _check_alpha(alpha)
    tt = _pre_times(t, K)
    test = _check_test(test)
    if not isinstance(power, int | float | np.floating) or not 0 < float(power) < 1:
        raise ValueError(f"power must be strictly between 0 and 1, got {power!r}")
    size = rejection_probability(np.zeros(K), S, alpha, test, threshold)
    if power <= size:
        raise ValueError(f"power={power} is not above the size of the pre-test ({size:.4f})")
    if test == "wald":
        crit = stats.chi2.ppf(1 - alpha, K)
        q = float(tt @ np.linalg.solve(S, tt))
        hi = 1.0
        while stats.ncx2.sf(crit, K, hi) < power:
            hi *= 2
        lam = optimize.brentq(lambda x: stats.ncx2.sf(crit, K, x) - power, 0.0, hi, xtol=1e-14,
                              rtol=1e-14)
        return float(np.sqrt(lam / q))

    def f(g):
        return rejection_probability(g * tt, S, alpha, test, threshold) - power

    hi = 8 * float(np.max(np.sqrt(np.diag(S)))) / float(np.max(np.abs(tt)))
    while f(hi) < 0:
        hi *= 2
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-12 * hi, rtol=1e-12))


def pretest_pass_mean(delta_pre, sigma_pre, alpha: float = 0.05, test: str = "individual",
                      threshold: float | None = None) -> np.ndarray:
    r"""Return the expected pre-period coefficients conditional on passing the pre-test.

    Parameters
    ----------
    delta_pre, sigma_pre, alpha, test, threshold
        As in :func:`rejection_probability`.

    Returns
    -------
    numpy.ndarray
        :math:`E[\hat\beta_{pre} \mid \text{pre-test passed}]` when
        :math:`\hat\beta_{pre} \sim N(\delta_{pre}, \Sigma_{pre})`: a truncated normal mean
        (Tallis's formula over the box for the individual test, a one-dimensional integral
        over the ellipsoid for the Wald test).
    """
    S = _check_cov(sigma_pre)
    d = _check_delta(delta_pre, S)
    alpha = _check_alpha(alpha)
    if _check_test(test) == "wald":
        return _wald_pass_mean(d, S, stats.chi2.ppf(1 - alpha, d.size))
    ub = _threshold(alpha, threshold) * np.sqrt(np.diag(S))
    return _box_mean(-ub, ub, d, S)[0]


# ----------------------------------------------------------------------------------
# full analysis of a hypothesised trend
# ----------------------------------------------------------------------------------
@dataclass
class PretrendsResult:
    """Power of the pre-test against a hypothesised trend and the distortion it causes.

    Attributes
    ----------
    power : float
        Probability that the pre-test rejects under the hypothesised trend.
    bayes_factor : float
        P(pass | hypothesised trend) / P(pass | parallel trends).
    likelihood_ratio : float
        Density of the observed pre-period coefficients under the hypothesised trend over
        their density under parallel trends.
    table : pandas.DataFrame
        One row per coefficient: ``event_time`` (from the reference period), ``betahat``,
        ``se``, ``delta`` (hypothesised trend = bias of the estimate without pre-testing),
        ``mean_after_pretest`` (expected estimate given the pre-test is passed and no
        treatment effect, i.e. the bias conditional on passing), ``post``.
    test : str
        Pre-test used.
    slope : float or None
        Slope of the hypothesised linear trend, if one was given.
    """

    power: float
    bayes_factor: float
    likelihood_ratio: float
    table: pd.DataFrame = field(repr=False)
    test: str
    slope: float | None = None


def pretrends_analysis(betahat, sigma, num_pre: int, t=None, delta=None, slope: float | None = None,
                       alpha: float = 0.05, test: str = "individual",
                       threshold: float | None = None) -> PretrendsResult:
    r"""Power and post-test bias for a hypothesised trend (R ``pretrends::pretrends``).

    Parameters
    ----------
    betahat : array_like
        Event-study coefficients, pre-periods first, reference period excluded.
    sigma : array_like
        Their covariance matrix.
    num_pre : int
        Number of pre-period coefficients (the first ``num_pre`` entries).
    t : array_like, optional
        Event times of all coefficients measured from the reference period; default
        ``-num_pre, ..., -1, 1, ..., num_post``.
    delta : array_like, optional
        Hypothesised differences in trends for every coefficient.
    slope : float, optional
        Alternatively, a linear trend ``delta = slope * t``. Exactly one of ``delta`` and
        ``slope`` must be given.
    alpha, test, threshold
        As in :func:`rejection_probability`.

    Returns
    -------
    PretrendsResult
        Power, Bayes factor, likelihood ratio and the event-study table with the hypothesised
        trend and the means after pre-testing.

    Raises
    ------
    ValueError
        Dimensions that do not match, a non-positive-definite pre-period covariance, or not
        exactly one of ``delta`` and ``slope``.
    """
    b = np.asarray(betahat, dtype=float).ravel()
    S_all = np.asarray(sigma, dtype=float)
    if S_all.ndim != 2 or S_all.shape != (b.size, b.size):
        raise ValueError(f"sigma must be {b.size}x{b.size} to match betahat, got {S_all.shape}")
    K = num_pre
    if isinstance(K, bool) or not isinstance(K, int | np.integer) or not 1 <= K <= b.size:
        raise ValueError(f"num_pre must be an integer between 1 and {b.size}, got {num_pre!r}")
    T = b.size - K
    if t is None:
        tt = np.concatenate([np.arange(-K, 0), np.arange(1, T + 1)]).astype(float)
    else:
        tt = np.asarray(t, dtype=float).ravel()
        if tt.size != b.size:
            raise ValueError(f"t must have {b.size} entries, got {tt.size}")
    if (delta is None) == (slope is None):
        raise ValueError("give exactly one of delta and slope")
    d = slope * tt if slope is not None else np.asarray(delta, dtype=float).ravel()
    if d.size != b.size or not np.all(np.isfinite(d)):
        raise ValueError(f"delta must have {b.size} finite entries")
    alpha = _check_alpha(alpha)
    test = _check_test(test)
    Spp = _check_cov(S_all[:K, :K], "sigma[:num_pre, :num_pre]")
    power = rejection_probability(d[:K], Spp, alpha, test, threshold)
    size = rejection_probability(np.zeros(K), Spp, alpha, test, threshold)
    dist_alt = stats.multivariate_normal(mean=d[:K], cov=Spp)
    dist_null = stats.multivariate_normal(mean=np.zeros(K), cov=Spp)
    lr = float(np.exp(dist_alt.logpdf(b[:K]) - dist_null.logpdf(b[:K])))
    m_pre = pretest_pass_mean(d[:K], Spp, alpha, test, threshold)
    m_post = d[K:] + S_all[K:, :K] @ np.linalg.solve(Spp, m_pre - d[:K])
    table = pd.DataFrame({
        "event_time": tt, "betahat": b, "se": np.sqrt(np.diag(S_all)), "delta": d,
        "mean_after_pretest": np.concatenate([m_pre, m_post]),
        "post": np.arange(b.size) >= K,
    })
    return PretrendsResult(power, (1 - power) / (1 - size), lr, table, test,
                           None if slope is None else float(slope))


def pretrend_power_from_result(result: DiDResult, alpha: float = 0.05, powers=(0.5, 0.8),
                               test: str = "individual", threshold: float | None = None) -> pd.DataFrame:
    r"""Slopes of linear pre-trends detected with given power, for an event-study result.

    Parameters
    ----------
    result : DiDResult
        An event study with a ``vcov`` (Callaway-Sant'Anna ``aggregate(...,
        kind="event")`` with ``base_period="universal"``, or ``twfe_event_study``); see
        :func:`analysis.inference.event_study.event_study_inputs` for how the reference period
        and the coefficients are found.
    alpha : float, default 0.05
        Level of the pre-test.
    powers : sequence of float, default (0.5, 0.8)
        Target powers.
    test : {"individual", "wald"}, default "individual"
        Pre-test.
    threshold : float, optional
        Critical t-statistic of the individual test.

    Returns
    -------
    pandas.DataFrame
        One row per target power and post-period coefficient: ``power``, ``test``, ``slope``
        (the detectable slope :math:`\gamma`), ``event_time``, ``bias`` (:math:`\gamma t`,
        the bias of that coefficient under the trend) and ``bias_given_pass`` (its expected
        bias conditional on passing the pre-test, with no treatment effect).

    Raises
    ------
    ValueError
        If ``result`` is not a usable event study (see ``event_study_inputs``).
    """
    es = event_study_inputs(result)
    b, S, times, ref = es.betahat, es.sigma, es.event_times, es.reference
    K = int(np.sum(times < ref))
    if K < 1:
        raise ValueError("the event study has no pre-period coefficient before the reference period")
    rel = times - ref
    rows = []
    for p in powers:
        g = pretrend_power(S[:K, :K], alpha, p, rel[:K], test, threshold)
        an = pretrends_analysis(b, S, K, rel, slope=g, alpha=alpha, test=test, threshold=threshold)
        post = an.table[an.table["post"]]
        for (_, r), e in zip(post.iterrows(), times[K:], strict=True):
            rows.append({"power": float(p), "test": test, "slope": g, "event_time": float(e),
                         "bias": r["delta"], "bias_given_pass": r["mean_after_pretest"]})
    return pd.DataFrame(rows, columns=["power", "test", "slope", "event_time", "bias", "bias_given_pass"])
