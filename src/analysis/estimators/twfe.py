"""Two-way fixed-effects (TWFE) benchmarks: the static DiD regression and the event study.

These are the *benchmarks* the modern estimators are compared with. With staggered
adoption and effects that differ across cohorts or grow with time since treatment,
neither regression estimates a convex average of treatment effects (Goodman-Bacon
2021; de Chaisemartin & D'Haultfoeuille 2020; Sun & Abraham 2021; Borusyak, Jaravel
& Spiess 2024). They are reported so that the size and direction of that bias can be
seen next to the robust estimates (:mod:`analysis.estimators.bacon` decomposes it).

Engine
------
Both regressions are estimated with :func:`pyfixest.feols`, called through the adapter
:func:`analysis.estimators.fixest.feols` (unit and year fixed effects absorbed by
alternating projections, tolerance 1e-10 instead of pyfixest's default 1e-6, so that
estimates are exact to about 1e-10 on unbalanced panels too).

Small-sample correction of the clustered standard errors
--------------------------------------------------------
The cluster-robust (CRV1) variance is pyfixest's default, read from
``pyfixest/utils/utils.py::get_ssc`` and ``estimation/models/feols_.py`` (0.60.0)::

    V = c * (X'X)^-1 [ sum_g (X_g' u_g)(X_g' u_g)' ] (X'X)^-1,
    c = G / (G - 1) * (N - 1) / (N - K),

where ``X`` holds the regressors after the fixed effects are partialled out, ``u``
the residuals, ``N`` the observations used (after pyfixest drops singleton
fixed-effect observations, which a balanced panel never has), ``G`` the number of
clusters, and ``K`` the number of regressors *plus the fixed-effect parameters
not nested in the clusters* (``ssc(k_adj=True, k_fixef="nonnested", G_adj=True,
G_df="min")``):

* a fixed effect whose every level lies inside one cluster (the village effects
  when clustering by village, or by township, since villages are nested in
  townships) counts **one** parameter (it stands in for the intercept);
* a fixed effect that is not nested (the year effects) counts its levels, less
  one for every fixed effect after the first.

For the study's design (village and year effects, clusters = villages or
townships) this gives ``K = k + T``: the ``k`` regressors plus ``T`` year
effects (equivalently ``k`` + intercept + ``T - 1`` year dummies). If the unit
effects were *not* nested in the clusters (clustering by something that cuts
across units), ``K = k + U + T - 1`` with ``U`` units.

This is R fixest's default ``ssc(adj = TRUE, fixef.K = "nested", cluster.adj =
TRUE, cluster.df = "min")`` (pyfixest's code cites fixest issue #554 for the
rule), and it equals Stata ``reghdfe ..., vce(cluster)``: reghdfe uses
``(N - 1)/(N - K) * G/(G - 1)`` with ``K`` = regressors + constant + absorbed
degrees of freedom, and it counts zero degrees of freedom for an absorbed effect
nested in the cluster variable and ``T - 1`` for the year effects, i.e. the same
``K = k + T``. (Statsmodels' ``cov_type="cluster"`` on explicit unit and year
dummies uses the same ``c`` but with all dummies counted, ``K = k + U + T - 1``;
``tests/test_twfe.py`` shows how to reconcile the two.) The nesting check is made
on the estimation sample and recorded in ``options["ssc"]``.

Confidence intervals and p-values in the tidy frame follow the study's small-sample
convention (:mod:`analysis.inference.small_sample`): by default the covariance above and
a t distribution with ``G - 1`` degrees of freedom, as pyfixest's and fixest's own
summaries; ``small_sample="asymptotic"`` divides the factor ``c`` out and uses normal
critical values.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.estimators.fixest import Indicators, feols
from analysis.estimators.inputs import prepare_panel
from analysis.inference.small_sample import DEFAULT as SMALL_SAMPLE
from analysis.inference.small_sample import check_rule, describe, intervals, regression_vcov, t_df
from analysis.results import DiDResult, TWFEEventStudyDetails, make_tidy

__all__ = ["twfe", "twfe_event_study"]


def twfe(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    cluster: str | None = None,
    covariates: str | Sequence[str] | None = None,
    weights: str | None = None,
    *,
    treatment: str | None = None,
    small_sample: str = SMALL_SAMPLE,
) -> DiDResult:
    """Estimate the static two-way fixed-effects DiD ``y = a_i + l_t + b*D_it (+ x_it.c) + e``.

    ``D_it = 1{cohort_i > 0 and t >= cohort_i}`` (absorbing treatment).

    Parameters
    ----------
    data : pandas.DataFrame
        Long unit x period panel (balanced or not). Not modified.
    outcome, unit, time, cohort : str
        Column names; ``cohort`` is the first treated period, 0 for never treated.
    cluster : str, optional
        Cluster column for the CRV1 standard errors; default ``unit``. The study
        clusters by township.
    covariates : str or sequence of str, optional
        Time-varying numeric controls added linearly.
    weights : str, optional
        Analytic (regression) weights.
    treatment : str, optional
        A 0/1 column to check against ``cohort`` (see
        :func:`analysis.estimators.inputs.prepare_panel`).
    small_sample : {"cr1_t", "asymptotic"}, default "cr1_t"
        Small-sample rule (:mod:`analysis.inference.small_sample`): pyfixest's CRV1 factor
        and t(G-1) intervals, or no factor and normal intervals.

    Returns
    -------
    DiDResult
        One row, aggregation ``"coef"``, term ``"D"``, estimator ``"twfe"``,
        control group ``"all"``. The result also holds the pyfixest fit (``fit``), the
        full coefficient vector (``coefficients``), their covariance (``vcov``) and the
        small-sample record (``ssc``, also in ``options``).

    Raises
    ------
    ValueError
        Bad columns or panel (see :func:`analysis.estimators.inputs.prepare_panel`), or a
        treatment indicator that is collinear with the fixed effects.

    Notes
    -----
    **Estimand.** Under parallel trends and *homogeneous, constant* effects, ``b`` is
    the ATT. Otherwise ``b`` is a weighted average of all 2x2 DiD comparisons
    (Goodman-Bacon 2021), including "forbidden" ones that use already-treated units
    as controls; with effects that grow over time this biases ``b`` towards zero
    and can flip its sign. Treat it as a benchmark, not as the study's estimate.

    **Inference.** CRV1 clustered by ``cluster`` with the small-sample factor
    ``G/(G-1) * (N-1)/(N-K)`` documented in the module docstring; t(G-1) intervals and
    p-values (the study's convention).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"id": np.repeat(np.arange(40), 6), "year": np.tile(np.arange(2018, 2024), 40)})
    >>> df["g"] = np.where(df["id"] < 20, 2021, 0)
    >>> df["y"] = 0.1 * df["id"] + 2.0 * ((df["g"] > 0) & (df["year"] >= df["g"])) + rng.normal(0, 0.1, 240)
    >>> res = twfe(df, "y", "id", "year", "g")
    >>> round(float(res.tidy()["estimate"].iloc[0]), 1)
    2.0
    """
    check_rule(small_sample)
    panel = prepare_panel(data, outcome, unit, time, cohort, cluster, covariates, weights, treatment)
    fit = feols(panel.frame, ["D"])
    coefs = fit.coefficients
    if "D" not in coefs.index:
        raise ValueError(
            "the treatment indicator is collinear with the fixed effects (no unit changes "
            "treatment status within the sample), so TWFE cannot estimate an effect"
        )
    i = list(coefs.index).index("D")
    V = regression_vcov(fit.vcov, fit.ssc.factor, small_sample)
    se = float(np.sqrt(V[i, i]))
    est = float(coefs["D"])
    df = t_df(fit.ssc.G, small_sample)
    lo, hi, p = intervals(est, se, df=df)
    ssc = fit.ssc.as_dict()
    options = {**panel.base_options(), "engine": fit.engine, "ssc": ssc,
               "small_sample": small_sample, "t_df": df,
               "inference": describe(fit.ssc.G, small_sample, regression=True)}
    row = {
        "outcome": outcome, "estimator": "twfe", "control_group": "all", "aggregation": "coef",
        "term": "D", "estimate": est, "std_error": se, "conf_low": float(lo),
        "conf_high": float(hi), "p_value": float(p), "band": "pointwise",
        "n_obs": fit.n_obs, "n_units": int(fit.sample["unit"].nunique()),
        "n_clusters": fit.ssc.G,
    }
    vcov = pd.DataFrame(V, index=coefs.index, columns=coefs.index)
    return DiDResult(make_tidy([row]), "twfe", outcome, options, fit=fit.model, coefficients=coefs, vcov=vcov,
                     ssc=fit.ssc)


def _event_label(e: int, lo_bin: int | None, hi_bin: int | None) -> str:
    if lo_bin is not None and e == lo_bin:
        return f"e<={e}"
    if hi_bin is not None and e == hi_bin:
        return f"e>={e}"
    return f"e={e}"


def _dummy_name(e: int) -> str:
    return f"ev_m{-e}" if e < 0 else f"ev_p{e}"


def twfe_event_study(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    ref: int = -1,
    leads: int | None = None,
    lags: int | None = None,
    bin_endpoints: bool = True,
    cluster: str | None = None,
    covariates: str | Sequence[str] | None = None,
    weights: str | None = None,
    small_sample: str = SMALL_SAMPLE,
) -> DiDResult:
    """Dynamic TWFE event study with relative-time dummies and binned endpoints.

    ``y_it = a_i + l_t + sum_{e != ref} b_e * 1{t - cohort_i = e} (+ x_it'c) + u_it``;
    never-treated units have every dummy 0.

    Parameters
    ----------
    data : pandas.DataFrame
        Long unit x period panel. Not modified.
    outcome, unit, time, cohort : str
        Column names; ``cohort`` is the first treated period, 0 for never treated.
    ref : int, default -1
        Omitted (reference) event time; its row has estimate 0 and missing SE.
    leads : int, optional
        Earliest event time kept is ``-leads``. Default: the earliest observed.
    lags : int, optional
        Latest event time kept is ``lags``. Default: the latest observed.
    bin_endpoints : bool, default True
        If True, every event time ``e <= -leads`` shares one dummy (labelled
        ``"e<=-leads"``) and every ``e >= lags`` another (``"e>=lags"``). If False,
        treated-unit observations outside ``[-leads, lags]`` are **dropped** (not
        given zero dummies, which would silently pool them with the reference).
    cluster : str, optional
        Cluster column; default ``unit``.
    covariates : str or sequence of str, optional
        Time-varying numeric controls.
    weights : str, optional
        Analytic weights.
    small_sample : {"cr1_t", "asymptotic"}, default "cr1_t"
        Small-sample rule, as in :func:`twfe`.

    Returns
    -------
    DiDResult
        One row per event time, aggregation ``"event"``, including the reference
        period (term ``"e=-1 (ref)"``, estimate 0, NaN SE). Event times whose dummy
        pyfixest drops as collinear are reported with NaN and a ``(dropped:
        collinear)`` term, with a warning (their event times are in
        ``details.dropped``). ``vcov`` is the clustered covariance of the event-time
        coefficients, indexed by event time (for pre-trend tests and sensitivity
        analysis), ``fit`` the pyfixest fit, ``ssc`` its small-sample record.

    Raises
    ------
    ValueError
        Bad columns or panel, ``leads``/``lags`` not positive, or ``ref`` outside the
        window or inside a binned endpoint.

    Notes
    -----
    **Estimand and caveat.** With homogeneous dynamic effects across cohorts, ``b_e``
    is the effect ``e`` periods after adoption relative to ``e = ref``. With effects
    that differ across cohorts, each ``b_e`` is contaminated by effects at other
    event times (Sun & Abraham 2021), pre-period coefficients can be non-zero under
    parallel trends, and binning adds further contamination. Use
    :func:`analysis.estimators.sun_abraham.sun_abraham` or the imputation estimator
    for interpretable dynamics. Without never-treated units, the fully dynamic
    specification is not identified unless endpoints are binned (Borusyak et al.
    2024): pyfixest then drops a collinear dummy, which is reported.

    **Inference.** As :func:`twfe`: CRV1, ``G/(G-1)*(N-1)/(N-K)``, t(G-1) intervals.
    """
    check_rule(small_sample)
    panel = prepare_panel(data, outcome, unit, time, cohort, cluster, covariates, weights)
    df = panel.frame.copy(deep=False)  # copy-on-write: no copy of the data
    treated_unit = df["cohort"] > 0
    e = (df["time"] - df["cohort"]).where(treated_unit)
    e_min, e_max = int(e.min()), int(e.max())
    for name, val in (("leads", leads), ("lags", lags)):
        if val is not None and (not isinstance(val, int | np.integer) or isinstance(val, bool) or val < 0):
            raise ValueError(f"{name} must be a non-negative integer, got {val!r}")
    if not isinstance(ref, int | np.integer) or isinstance(ref, bool):
        raise ValueError(f"ref must be an integer event time, got {ref!r}")
    lo = -int(leads) if leads is not None else e_min
    hi = int(lags) if lags is not None else e_max
    if not lo <= ref <= hi:
        raise ValueError(f"ref={ref} is outside the event window [{lo}, {hi}]")

    if bin_endpoints:
        lo_bin = lo if e_min < lo else None
        hi_bin = hi if e_max > hi else None
        if (lo_bin is not None and ref == lo) or (hi_bin is not None and ref == hi):
            raise ValueError(f"ref={ref} falls in a binned endpoint; choose a reference inside the window")
        eb = e.clip(lower=lo, upper=hi)
    else:
        lo_bin = hi_bin = None
        outside = treated_unit & ((e < lo) | (e > hi))
        if outside.any():  # (a boolean selection copies every column even when it keeps every row)
            df = df.loc[~outside]
            e = e.loc[~outside]
        eb = e
    df["eb"] = eb
    present = sorted(int(v) for v in df["eb"].dropna().unique())
    if ref not in present:
        raise ValueError(f"no treated-unit observation at the reference event time ref={ref}")
    terms = [v for v in present if v != ref]
    if not terms:
        raise ValueError("no event time other than the reference is observed")
    # one event-time dummy per row at most: given by a code per row (see fixest.Indicators)
    eb_arr = df["eb"].to_numpy(dtype=float)
    code = np.full(len(df), -1, dtype=np.int64)
    for j, v in enumerate(terms):
        code[eb_arr == v] = j
    fit = feols(df.drop(columns=["eb"]), [], indicators=Indicators(code, tuple(_dummy_name(v) for v in terms)))
    names = fit.names
    beta = fit.coefficients.to_numpy()
    vc = regression_vcov(fit.vcov, fit.ssc.factor, small_sample)
    df = t_df(fit.ssc.G, small_sample)
    dropped = [v for v in terms if _dummy_name(v) not in names]
    if dropped:
        warnings.warn(
            f"event-time dummies {dropped} are collinear with the fixed effects and were dropped "
            "(with no never-treated units, bin endpoints or drop a second reference period)",
            stacklevel=2,
        )
    ssc = fit.ssc.as_dict()
    n_obs, n_units, n_cl = fit.n_obs, int(fit.sample["unit"].nunique()), fit.ssc.G
    rows = []
    kept = []
    for v in present:
        label = _event_label(v, lo_bin, hi_bin)
        if v == ref:
            est, se, term = 0.0, np.nan, f"{label} (ref)"
        elif v in dropped:
            est, se, term = np.nan, np.nan, f"{label} (dropped: collinear)"
        else:
            j = names.index(_dummy_name(v))
            est, se, term = beta[j], float(np.sqrt(vc[j, j])), label
            kept.append((v, j))
        lo_ci, hi_ci, p = intervals(est, se, df=df)
        rows.append({
            "outcome": outcome, "estimator": "twfe", "control_group": "all",
            "aggregation": "event", "term": term, "event_time": v, "estimate": est,
            "std_error": se, "conf_low": float(lo_ci), "conf_high": float(hi_ci),
            "p_value": float(p), "band": "pointwise", "n_obs": n_obs, "n_units": n_units,
            "n_clusters": n_cl,
        })
    idx = [v for v, _ in kept]
    jj = [j for _, j in kept]
    vcov = pd.DataFrame(vc[np.ix_(jj, jj)], index=idx, columns=idx)
    options = {
        **panel.base_options(), "ref": int(ref), "leads": -lo, "lags": hi,
        "bin_endpoints": bool(bin_endpoints), "binned_low": lo_bin is not None,
        "binned_high": hi_bin is not None, "engine": fit.engine,
        "ssc": ssc, "small_sample": small_sample, "t_df": df,
        "inference": describe(n_cl, small_sample, regression=True),
    }
    return DiDResult(make_tidy(rows), "twfe", outcome, options, fit=fit.model, vcov=vcov, ssc=fit.ssc,
                     details=TWFEEventStudyDetails(dropped=dropped))
