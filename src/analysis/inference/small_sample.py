r"""Inference with a finite number of clusters: the study's one small-sample convention.

Every estimator of the study (TWFE, Callaway-Sant'Anna, Sun-Abraham, the BJS imputation
estimator, Poisson ETWFE, and the subgroup effects built on Callaway-Sant'Anna) reports
clustered standard errors, intervals and p-values by the same rule, chosen with the
estimators' ``small_sample`` argument. This module holds that rule, in code and here.

The convention (``small_sample="cr1_t"``, the default)
------------------------------------------------------
With ``G`` clusters (the units themselves when no cluster column is given):

1. **Variance: the CR1 factor** :math:`G/(G-1)`. The cluster-robust variance
   :math:`\sum_c s_c s_c'` of the cluster sums :math:`s_c` of the scores (or influence
   functions) is multiplied by :math:`G/(G-1)`, the factor of Stata's ``vce(cluster)``
   and of R ``fixest``/pyfixest. Regression estimators fitted with pyfixest (TWFE,
   Sun-Abraham, Poisson, the BJS and Poisson pre-trend regressions) also carry
   pyfixest's :math:`(N-1)/(N-K)` for the ``K`` parameters not nested in the clusters
   (:mod:`analysis.estimators.twfe` derives ``K``); it is 1.0004 on the study's panel.
   Influence-function estimators (Callaway-Sant'Anna) and the BJS imputation variance
   have no ``K`` and carry :math:`G/(G-1)` alone. Multiplier-bootstrap standard errors
   are scaled by the same :math:`\sqrt{G/(G-1)}`.
2. **Critical values: Student t with** :math:`G - 1` **degrees of freedom** for every
   pointwise interval and p-value (R ``fixest``'s default ``t.df = "min"``; Stata's
   ``reghdfe``/``regress`` with ``vce(cluster)``; Cameron & Miller 2015, section VI.C;
   Bester, Conley & Hansen 2011 show that :math:`t_{G-1}` is the right reference when
   clusters are few and of similar size). Simultaneous (sup-t) bands keep the
   bootstrap's own critical value.
3. **Joint tests** of several coefficients (the pre-trend tests) are F tests, not
   chi-square ones (below): the Callaway-Sant'Anna pre-test bootstraps its Wald statistic
   (:func:`analysis.estimators.callaway_santanna.pretest`); the regression pre-tests use
   Hotelling's :math:`F(k, G - k)`.
4. **Few clusters.** The headline Callaway-Sant'Anna estimate switches to the wild
   cluster score bootstrap (:func:`analysis.inference.wild.wild_score_bootstrap`) when
   ``G`` is below :data:`WILD_BELOW` (see
   :func:`analysis.estimators.callaway_santanna.aggregate`); the method used is named in
   the result's ``options["inference"]``.

With 178 township clusters the convention widens a 95% interval by a factor
:math:`\sqrt{178/177}\,t_{177,0.975}/z_{0.975} = 1.0097`; with 9 county clusters by
:math:`\sqrt{9/8}\,t_{8,0.975}/z_{0.975} = 1.248`.

The alternative (``small_sample="asymptotic"``)
-----------------------------------------------
No factor at all (pyfixest fits are divided by theirs) and normal critical values: R
``did``'s analytic convention, kept to reproduce its published numbers (the mpdta
reference tests use it) and to show what the old convention printed. R ``fixest``'s
default is the convention above, so its reference numbers are reproduced by the default.

Joint tests (:func:`joint_test`)
--------------------------------
Why the chi-square test over-rejects. The Wald statistic
:math:`W = \hat\theta'\hat V^{-1}\hat\theta` of ``k`` coefficients is :math:`\chi^2_k` only
when :math:`\hat V` is estimated precisely. On the default synthetic city (the
Callaway-Sant'Anna pre-test on 9 pre-period ATT(g,t), 178 township clusters, 500 cities;
:mod:`analysis.inference.calibration`) it rejects 7.0-11.2% of true nulls at 5%. The
diagnostics of the calibration (``diagnostics=True``, 301 cities) locate the cause in the
covariance. Not in the estimates: with the Monte Carlo covariance of the pre-period
estimates the same test rejects 4.3-7.3%. Not in the doubly robust influence function:
with the unclustered covariance of the same influence functions (3,224 units) it rejects
1.7-5.0%. The clustered variances are about unbiased (their mean is 0.83-1.25 times the
Monte Carlo variance, cell by cell) but noisy: their coefficient of variation is 0.15-0.28
for income, cases and team reorganisation, that of a chi-square with 25-90 degrees of
freedom rather than 178, and 0.48-1.6 for collective income, whose cluster sums are
heavy-tailed; the pilot cohort is treated in one county (about 34 townships). Inverting a
noisy :math:`9 \times 9` matrix inflates :math:`W`: for a Wishart :math:`\hat V` with
:math:`\eta` degrees of freedom :math:`P(W > \chi^2_{9,0.95})` is about 10% at
:math:`\eta = 90`. With 60 townships and 12 cells the chi-square test rejects 27-32% (an
exploratory run of 500 cities of 1,200 villages, not repeated by the test tiers).

The tests (rejection rates at 5% under a true null, 500 default cities with the arrival year
kept, ``anticipation=0``: the README has the headline's; income / criminal
cases / collective income / team reorganisation; Monte Carlo standard errors 0.8-1.4 points):

* ``"hotelling"``: :math:`F = W_{CR1}(G-k)/(k(G-1)) \sim F(k, G - k)`, Hotelling's
  :math:`T^2`, exact for identically distributed normal clusters. Callaway-Sant'Anna
  pre-test 8.0 / 7.2 / 6.4 / 5.2%; BJS pre-trend test (5 leads) 5.6 / 6.4 / 4.2 / 3.2%: the
  default of the regression pre-tests (BJS, Poisson), whose chi-square test over-rejects less
  (6.2 / 8.2 / 6.0 / 4.2%).
* ``"htz"``: the Hotelling approximation with estimated degrees of freedom of Pustejovsky &
  Tipton (2018, after Zhang 2012): :math:`\hat V` is approximated by a Wishart with
  :math:`\eta` degrees of freedom whose total variance matches that of :math:`\hat V`, and

  .. math:: F = \frac{\eta - k + 1}{k\,\eta}\, W_{CR1} \sim F(k,\ \eta - k + 1).

  :math:`\eta` is estimated from the cluster sums themselves (their empirical fourth
  moments), with the cluster "leverages" :math:`h_c = s_c' (\sum_d s_d s_d')^{-1} s_c`
  (:math:`\sum_c h_c = k`):

  .. math:: \hat\eta = \min\Big(G - 1,\ \frac{k(k+1)}{\sum_c h_c^2 - k/G}\Big),

  ``G`` for identically distributed normal clusters, lower for unequal or heavy-tailed ones
  (median 97 / 94 / 64 / 94 on the city); Pustejovsky & Tipton compute :math:`\eta` under a
  working model instead. It is reported as ``effective_clusters`` by every test. Measured:
  Callaway-Sant'Anna 6.8 / 5.0 / 1.4 / 3.2%, BJS 4.8 / 6.2 / 2.2 / 3.0%: too conservative
  when the cluster sums are heavy-tailed (collective income), so it is not a default.
* ``"wald_chi2"``: :math:`W` against :math:`\chi^2_k` (R ``did``'s ``W``/``Wpval``).

The Callaway-Sant'Anna pre-test's default is none of these but the restricted wild cluster
score bootstrap of :math:`W`, which re-estimates the covariance in every draw
(:func:`analysis.inference.wild.wild_score_wald`): 6.4 / 4.6 / 5.8 / 3.4% (at 10%: 11.4 /
11.0 / 10.2 / 7.0%); with 60 townships and 12 cells 5.6-7.8% where Hotelling's test rejects
10-12% and HTZ 4.6-7.8%.

References
----------
Bester, C. A., Conley, T. G. and Hansen, C. B. (2011). Inference with dependent data using
cluster covariance estimators. *Journal of Econometrics*, 165(2), 137-151.

Cameron, A. C. and Miller, D. L. (2015). A practitioner's guide to cluster-robust
inference. *Journal of Human Resources*, 50(2), 317-372.

Pustejovsky, J. E. and Tipton, E. (2018). Small-sample methods for cluster-robust variance
estimation and hypothesis testing in fixed effects models. *Journal of Business & Economic
Statistics*, 36(4), 672-683.

Zhang, J.-T. (2012). An approximate Hotelling T2-test for heteroscedastic one-way MANOVA.
*Open Journal of Statistics*, 2(1), 1-11.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "DEFAULT",
    "JOINT_TESTS",
    "RULES",
    "WILD_BELOW",
    "WILD_SEED",
    "JointTest",
    "check_rule",
    "cluster_factor",
    "effective_clusters",
    "intervals",
    "joint_test",
    "regression_vcov",
    "t_df",
    "wald_p_value",
]

RULES: tuple[str, ...] = ("cr1_t", "asymptotic")
"""The small-sample rules: the study's convention and R ``did``'s asymptotic one."""
DEFAULT = "cr1_t"
"""The study's convention (module docstring)."""
JOINT_TESTS: tuple[str, ...] = ("htz", "hotelling", "wald_chi2")
"""Joint tests of :func:`joint_test`; ``htz`` is the default."""
WILD_BELOW = 50
"""The headline switches to the wild cluster score bootstrap below this many clusters.

Cameron & Miller (2015) and MacKinnon & Webb (2017) find analytic cluster-robust t-tests
unreliable with fewer than about 20-50 clusters, more so when clusters differ in size or
treatment. On the synthetic city (500 cities, arrival year kept;
:mod:`analysis.inference.calibration` and the README for the headline's) the
analytic convention covers 94.2-97.0% with 178 townships, but with the 9 counties (one of
which holds the whole pilot cohort) t(8) with ``G/(G-1)`` covers criminal cases only 92.8%
(normal without the factor: 87.6%) where the wild bootstrap covers 97.4%."""
WILD_SEED = 20230601
"""Seed of the headline's sampled wild draws when the caller gives none (so that the
study's tables are reproducible). With Rademacher weights and at most 12 clusters every
sign vector is enumerated and no seed is used."""


def check_rule(small_sample: str) -> str:
    """Return ``small_sample`` if it is a known rule, else raise.

    Parameters
    ----------
    small_sample : str
        ``"cr1_t"`` or ``"asymptotic"``.

    Returns
    -------
    str
        The rule.

    Raises
    ------
    ValueError
        For an unknown rule.
    """
    if small_sample not in RULES:
        raise ValueError(f"small_sample must be one of {RULES}, got {small_sample!r}")
    return small_sample


def cluster_factor(n_clusters: int, small_sample: str = DEFAULT) -> float:
    """Return the factor the cluster-robust variance is multiplied by.

    Parameters
    ----------
    n_clusters : int
        Number of clusters ``G`` (units when not clustering).
    small_sample : {"cr1_t", "asymptotic"}
        Rule.

    Returns
    -------
    float
        ``G / (G - 1)`` under ``cr1_t``, 1 under ``asymptotic`` (and for ``G < 2``).

    Examples
    --------
    >>> cluster_factor(9)
    1.125
    >>> cluster_factor(9, "asymptotic")
    1.0
    """
    G = int(n_clusters)
    if check_rule(small_sample) == "asymptotic" or G < 2:
        return 1.0
    return G / (G - 1)


def t_df(n_clusters: int, small_sample: str = DEFAULT) -> float:
    """Return the degrees of freedom of the t reference distribution.

    Parameters
    ----------
    n_clusters : int
        Number of clusters ``G``.
    small_sample : {"cr1_t", "asymptotic"}
        Rule.

    Returns
    -------
    float
        ``G - 1`` under ``cr1_t``; ``inf`` (the normal) under ``asymptotic`` or for ``G < 2``.
    """
    G = int(n_clusters)
    if check_rule(small_sample) == "asymptotic" or G < 2:
        return float("inf")
    return float(G - 1)


def describe(n_clusters: int, small_sample: str = DEFAULT, regression: bool = False) -> str:
    """Name the small-sample rule of an analytic clustered result, for ``options["inference"]``.

    Parameters
    ----------
    n_clusters : int
        Number of clusters ``G``.
    small_sample : {"cr1_t", "asymptotic"}, default "cr1_t"
        The rule (:func:`check_rule`).
    regression : bool, default False
        The covariance is a pyfixest regression's, which keeps fixest's ``(N-1)/(N-K)``
        factor besides ``G/(G-1)`` under ``cr1_t``.

    Returns
    -------
    str
        For example ``"CR1 G/(G-1), t(177)"`` or ``"no small-sample factor, normal"``.

    Examples
    --------
    >>> describe(178)
    'CR1 G/(G-1), t(177)'
    >>> describe(9, regression=True)
    'CR1 G/(G-1) (N-1)/(N-K), t(8)'
    >>> describe(178, "asymptotic")
    'no small-sample factor, normal'
    """
    if check_rule(small_sample) != "cr1_t":
        return "no small-sample factor, normal"
    factor = "G/(G-1) (N-1)/(N-K)" if regression else "G/(G-1)"
    return f"CR1 {factor}, t({int(n_clusters) - 1})"


def regression_vcov(vcov, applied_factor: float, small_sample: str = DEFAULT):
    """Return a pyfixest CRV1 covariance under the rule ``small_sample``.

    Parameters
    ----------
    vcov : array_like
        Covariance as pyfixest returns it, already multiplied by its small-sample factor.
    applied_factor : float
        That factor, ``G/(G-1) * (N-1)/(N-K)`` (``FixestFit.ssc.factor``).
    small_sample : {"cr1_t", "asymptotic"}
        ``cr1_t`` keeps pyfixest's covariance (fixest's default); ``asymptotic`` divides
        the factor out.

    Returns
    -------
    numpy.ndarray
        The covariance.
    """
    V = np.asarray(vcov, dtype=float)
    return V if check_rule(small_sample) == "cr1_t" else V / float(applied_factor)


def intervals(estimate, std_error, alpha: float = 0.05, df: float = float("inf"), crit: float | None = None):
    """Return ``(conf_low, conf_high, p_value)`` with t(``df``) critical values and p-values.

    Parameters
    ----------
    estimate, std_error : array_like
        Point estimates and standard errors.
    alpha : float, default 0.05
        One minus the confidence level.
    df : float, default inf
        Degrees of freedom (:func:`t_df`); ``inf`` gives normal intervals.
    crit : float, optional
        Critical value of the interval instead of the t quantile (a sup-t value for a
        simultaneous band); the p-value stays the t one.

    Returns
    -------
    tuple of numpy.ndarray
        Lower bound, upper bound and two-sided p-value against zero.

    Examples
    --------
    >>> lo, hi, p = intervals(1.0, 0.5, df=8)
    >>> round(float(lo), 4), round(float(p), 4)
    (-0.153, 0.0805)
    """
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_error, dtype=float)
    dist = stats.norm if not np.isfinite(df) else stats.t(df)
    c = float(dist.ppf(1 - alpha / 2)) if crit is None else float(crit)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * dist.sf(np.abs(est / se))
    return est - c * se, est + c * se, p


@dataclass(frozen=True)
class JointTest:
    r"""A joint test that ``k`` coefficients are all zero.

    Attributes
    ----------
    test : str
        ``"htz"``, ``"hotelling"`` or ``"wald_chi2"`` (:data:`JOINT_TESTS`).
    statistic : float
        ``F`` for the F tests, ``W`` for ``wald_chi2``.
    df : int
        Number of coefficients tested ``k`` (numerator degrees of freedom).
    df_denominator : float
        Denominator degrees of freedom of the F test (``eta - k + 1``); ``inf`` for
        ``wald_chi2``.
    p_value : float
        P-value of the test.
    wald : float
        :math:`W = \hat\theta' \hat V^{-1} \hat\theta` with the covariance passed.
    n_clusters : int
        Clusters ``G`` behind the covariance.
    effective_clusters : float
        :math:`\hat\eta` of the ``htz`` test (:func:`effective_clusters`), computed for
        every test when the cluster sums are given (a diagnostic of how many clusters the
        covariance effectively rests on); NaN without them.
    """

    test: str
    statistic: float
    df: int
    df_denominator: float
    p_value: float
    wald: float
    n_clusters: int
    effective_clusters: float


def effective_clusters(cluster_scores) -> float:
    r"""Estimate the Wishart degrees of freedom :math:`\eta` of a cluster-robust covariance.

    Parameters
    ----------
    cluster_scores : array_like
        ``(G, k)`` cluster sums of the scores or influence functions (any common scale).

    Returns
    -------
    float
        :math:`\hat\eta = \min(G - 1, k(k+1) / (\sum_c h_c^2 - k/G))` with
        :math:`h_c = s_c'(\sum_d s_d s_d')^{-1} s_c` (module docstring); NaN if the
        cluster sums have rank below ``k``.

    Examples
    --------
    Many identically distributed normal clusters give about ``G``:

    >>> s = np.random.default_rng(0).normal(size=(400, 3))
    >>> 340 < effective_clusters(s) <= 399
    True
    """
    S = np.asarray(cluster_scores, dtype=float)
    if S.ndim == 1:
        S = S[:, None]
    G, k = S.shape
    A = S.T @ S
    if G <= k or not np.all(np.isfinite(A)) or np.linalg.matrix_rank(A) < k:
        return float("nan")
    h = np.einsum("ci,ij,cj->c", S, np.linalg.inv(A), S)
    denom = float(np.sum(h**2) - k / G)
    eta = k * (k + 1) / denom if denom > 0 else float("inf")
    return float(min(G - 1, eta))


def joint_test(theta, vcov, cluster_scores=None, test: str = "htz", n_clusters: int | None = None) -> JointTest:
    r"""Test that every coefficient of ``theta`` is zero.

    Parameters
    ----------
    theta : array_like
        ``(k,)`` estimates.
    vcov : array_like
        ``(k, k)`` covariance used in the Wald form. For the F tests this is the study's
        cluster-robust covariance (with :math:`G/(G-1)`); ``wald_chi2`` uses whatever is
        passed (R ``did``'s ``W`` has no factor).
    cluster_scores : array_like, optional
        ``(G, k)`` cluster sums of the scores or influence functions behind ``vcov``; needed
        by ``"htz"`` (for :math:`\hat\eta`). Without them ``n_clusters`` is required.
    test : {"htz", "hotelling", "wald_chi2"}, default "htz"
        See the module docstring.
    n_clusters : int, optional
        ``G``; default the rows of ``cluster_scores``.

    Returns
    -------
    JointTest
        Statistic, degrees of freedom, p-value and the Wald statistic. A singular
        covariance gives NaN with a warning.

    Raises
    ------
    ValueError
        For an unknown test, shapes that do not match, or missing cluster information.

    Examples
    --------
    >>> s = np.random.default_rng(1).normal(size=(30, 2))
    >>> V = s.T @ s / 30**2 * 30 / 29
    >>> jt = joint_test(np.array([0.2, 0.1]), V, s)
    >>> jt.test, jt.df, round(jt.df_denominator, 1) <= 28
    ('htz', 2, True)
    """
    if test not in JOINT_TESTS:
        raise ValueError(f"test must be one of {JOINT_TESTS}, got {test!r}")
    th = np.atleast_1d(np.asarray(theta, dtype=float))
    V = np.atleast_2d(np.asarray(vcov, dtype=float))
    k = th.size
    if V.shape != (k, k):
        raise ValueError(f"vcov must be {k}x{k} to match theta, got {V.shape}")
    S = None if cluster_scores is None else np.asarray(cluster_scores, dtype=float).reshape(-1, k)
    if n_clusters is None:
        if S is None:
            raise ValueError("pass cluster_scores or n_clusters")
        n_clusters = S.shape[0]
    G = int(n_clusters)
    if test == "htz" and S is None:
        raise ValueError("the htz test needs the cluster sums of the scores (cluster_scores)")
    nan = float("nan")
    eta = effective_clusters(S) if S is not None else nan
    if k == 0 or not np.all(np.isfinite(V)) or 1.0 / np.linalg.cond(V, 1) <= np.finfo(float).eps:
        warnings.warn("joint test not computed: singular covariance", stacklevel=2)
        return JointTest(test, nan, k, nan, nan, nan, G, eta)
    W = float(th @ np.linalg.solve(V, th))
    statistic, df2, p = wald_p_value(W, k, G, eta, test)
    if not np.isfinite(p):
        warnings.warn(f"joint {test} test not computed: {G} clusters cannot estimate a {k}x{k} covariance",
                      stacklevel=2)
    return JointTest(test, statistic, k, df2, p, W, G, eta)


def wald_p_value(wald: float, k: int, n_clusters: int, effective: float = float("nan"), test: str = "htz"):
    r"""Turn a Wald statistic into the statistic, denominator df and p-value of a joint test.

    Parameters
    ----------
    wald : float
        :math:`W = \hat\theta' \hat V^{-1} \hat\theta`.
    k : int
        Number of coefficients tested.
    n_clusters : int
        Clusters ``G``.
    effective : float, optional
        :math:`\hat\eta` (:func:`effective_clusters`); needed by ``"htz"``.
    test : {"htz", "hotelling", "wald_chi2"}, default "htz"
        The test (module docstring).

    Returns
    -------
    tuple of float
        ``(statistic, df_denominator, p_value)``: ``F``, ``eta - k + 1`` (``G - k`` for
        ``hotelling``) and the F p-value; for ``wald_chi2`` ``W``, ``inf`` and the
        chi-square p-value. NaN when the degrees of freedom do not allow the test.

    Examples
    --------
    >>> stat, df2, p = wald_p_value(20.0, 9, 178, test="hotelling")
    >>> round(stat, 4), df2, round(p, 4)
    (2.1218, 169.0, 0.0302)
    """
    if test not in JOINT_TESTS:
        raise ValueError(f"test must be one of {JOINT_TESTS}, got {test!r}")
    nan = float("nan")
    if test == "wald_chi2":
        return float(wald), float("inf"), float(stats.chi2.sf(wald, k))
    eta = float(n_clusters - 1) if test == "hotelling" else float(effective)
    if not np.isfinite(eta) or eta < k:
        return nan, nan, nan
    df2 = eta - k + 1
    F = float(wald) * df2 / (k * eta)
    return F, df2, float(stats.f.sf(F, k, df2))
