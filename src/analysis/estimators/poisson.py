r"""Count outcomes: Poisson extended TWFE (Wooldridge 2023) and a linear rate alternative.

Criminal cases, disputes, petitions and new party members are small counts with many
zeros. A linear DiD on the count (or on the rate per 1,000 residents) is valid under
*additive* parallel trends; a Poisson model is the natural choice under
*multiplicative* (ratio) parallel trends. This module estimates the latter without the
bias of the single-dummy Poisson TWFE under staggered, heterogeneous effects.

Model (:func:`ppml`)
--------------------
Poisson pseudo-maximum likelihood (PPML; only the conditional mean must be right, the
counts need not be Poisson, any non-negative outcome is allowed) of the extended TWFE
of Wooldridge (2023, *Econometrics Journal* 26(3), "Simple approaches to nonlinear
difference-in-differences with panel data"):

.. math::

    E[Y_{it} \mid \cdot] = \exp\Big(\alpha_i + \lambda_t
        + \sum_{g} \sum_{s \ge g} \tau_{gs}\, 1\{G_i = g, t = s\}\Big),

one interaction for every treated cohort-year cell ``(g, s)`` with ``s >= g``. The
untreated cells (never-treated units, and treated units before their cohort year)
identify the unit and year effects, so never-treated *and* not-yet-treated
observations are the comparison (``control_group = "notyet"``). Because every
post-treatment cell has its own parameter, already-treated units never serve as
controls, and effects may differ freely by cohort and year. With ``event_study=True``
the pre-treatment cells ``t < g - 1`` get interactions too (period ``g - 1`` is the
reference): their effects are placebo leads, and since every cohort's own
pre-periods are then fitted by their own parameters the comparison becomes the
never-treated units (``control_group = "never"``, etwfe's ``cgroup = "never"``).

Covariates (optional, time-invariant within unit, e.g. distance or terrain dummies)
enter as in Wooldridge (2023) and etwfe: ``x_i`` times every year dummy (their own
year paths, so parallel trends need only hold conditional on ``x``), and every
treatment interaction times ``x_i - xbar_g`` (the mean of cohort ``g``), so effects may
vary with ``x``.

Estimands and aggregation
-------------------------
The ETWFE coefficients are on the log scale. Following Wooldridge (2023, section 6) and
etwfe's ``emfx``, effects are reported on the **level scale** from the fitted model:
for every treated observation ``i t`` the predicted mean with the treatment terms,
``mu1 = exp(eta_it)``, and without them, ``mu0 = exp(eta_it - treat_it'tau)``; then

* ``att_gt``: the mean of ``mu1 - mu0`` over the units of cohort ``g`` in year ``t``;
* ``event``: the mean of ``mu1 - mu0`` over all treated observations with ``t - g = e``
  (cohort-size weighted, as R ``did::aggte(type = "dynamic")``);
* ``simple``: the mean of ``mu1 - mu0`` over all treated observations, i.e. the average
  of ``E[Y(1)] - E[Y(0)]`` over treated cells weighted by cohort size (R
  ``did::aggte(type = "simple")``'s weights).

The means of the level effects are over **every** treated observation of the panel,
including those of units whose outcome is zero in every year (dropped from the fit, see
*Zeros*): the model predicts ``mu1 = mu0 = 0`` for them, so they add nothing to the sum of
``mu1 - mu0`` but count in its denominator. The level effect is therefore the average over
all treated villages, as the simulator's truth and R ``did`` weights define it, not over the
villages that happened to have a case.

Each has a **percentage-change** version, reported in the rows whose aggregation has
the suffix ``_pct`` (``simple_pct``, ``event_pct``, ``att_gt_pct``): the ratio of the
two predicted means minus one, ``sum mu1 / sum mu0 - 1`` over the same observations,
as a fraction (``-0.25`` = 25% fewer). The percentage change is the proportional
effect ``att_prop`` / ``value_prop`` of :mod:`analysis.data.synthetic`. The sum of
``mu1`` over a cohort-year cell equals the observed sum of ``Y`` there (the Poisson
score of ``tau_gs``), so the level effect is "observed minus the model's
counterfactual".

Assumptions: staggered, absorbing adoption; no anticipation; parallel trends in ratios,
``E[Y_it(0)] = exp(alpha_i + lambda_t (+ x_i'b_t))`` for every cohort, which is not
the same as additive parallel trends (one can hold without the other); the conditional
mean of the model is correct for the treated cells (automatic: they are saturated);
independence across clusters.

Inference (delta method)
------------------------
The coefficient covariance is pyfixest's cluster-robust CRV1 with the small-sample
factor of :mod:`analysis.estimators.twfe` (``G/(G-1) (N-1)/(N-K)``, ``K`` = regressors
plus the year levels when units are nested in clusters). The level and percentage
effects are smooth functions of the coefficients ``beta`` with **the fixed effects
held fixed at their estimates**: the gradient of ``mean(mu1 - mu0)`` is
``mean(mu1 x1 - mu0 x0)`` (``x1`` the observation's regressors, ``x0`` the same with
the treatment terms set to 0), and ``se = sqrt(grad' V grad)``. This is what
Wooldridge (2023) and R ``etwfe::emfx`` (through ``marginaleffects``, which
differentiates predictions with ``fixest``'s fixed effects fixed) do. It ignores the
sampling noise of ``alpha_i`` and ``lambda_t`` in the predicted levels; for the
percentage change of a single cell (``exp(tau) - 1``) it is exact, and with many
units per cell the omitted term is of smaller order. Intervals and p-values use t(G-1),
the study's convention (:mod:`analysis.inference.small_sample`; ``small_sample="asymptotic"``
divides pyfixest's factor out and uses the normal). The joint test of the leads
(``event_study=True``) is the Hotelling F test of
:func:`analysis.inference.small_sample.joint_test` by default, as for the BJS pre-trend test.

Zeros
-----
Units whose outcome is zero in every period carry no information in fixed-effects
Poisson (their unit effect is minus infinity); they are dropped before estimation and
counted in ``options["n_units_all_zero_dropped"]``. Their predicted means are zero with and
without treatment: they enter the level effects' denominators (the number of treated
observations, ``options["level_denominator"]``) with a zero effect, and leave the
percentage changes (ratios of sums) unchanged. The denominator is treated as fixed (the
design's number of treated village-years) in the delta method. A treated cohort-year cell in
which every outcome is zero has an effect of minus infinity on the log scale and is an
error.

Comparison (:func:`twfe_poisson`)
---------------------------------
The single-dummy TWFE Poisson, ``exp(alpha_i + lambda_t + b D_it)``, is reported for
comparison only. With staggered adoption and effects that change with exposure it
uses already-treated units as controls (as linear TWFE does) and ``exp(b) - 1`` is
not a proportional ATT: with effects that grow with exposure it is biased towards
zero.

Linear alternative (:func:`linear_rate_did`)
--------------------------------------------
Callaway-Sant'Anna on the rate per 1,000 residents (:func:`rate_per_1000`): additive
parallel trends in the rate instead of ratio parallel trends in the count.

References
----------
Wooldridge, J. M. (2023). Simple approaches to nonlinear difference-in-differences with
panel data. *The Econometrics Journal*, 26(3), C31-C66.

McDermott, G. (2023). etwfe: Extended two-way fixed effects. R package.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.estimators.callaway_santanna import aggregate, att_gt
from analysis.estimators.fixest import FIXEF_TOL, FixestFit, fepois
from analysis.estimators.inputs import as_list, prepare_panel
from analysis.inference.small_sample import DEFAULT as SMALL_SAMPLE
from analysis.inference.small_sample import check_rule, describe, intervals, joint_test, regression_vcov, t_df
from analysis.results import DiDResult, PoissonDetails, PretrendTest, make_tidy

__all__ = ["linear_rate_did", "ppml", "rate_per_1000", "twfe_poisson"]

ESTIMATOR = "ppml"
TWFE_ESTIMATOR = "twfe_ppml"
IWLS_TOL = 1e-10
"""Relative deviance change at which pyfixest's IRLS stops (its default is 1e-8)."""
LEVEL_DENOMINATOR = "all treated observations, units with an all-zero outcome included (predicted 0)"
"""What the level effects average over (recorded in ``options``)."""


# ----------------------------------------------------------------------------------
# preparation
# ----------------------------------------------------------------------------------
def _prepare_counts(data, outcome, unit, time, cohort, cluster, covariates):
    """Validate, drop all-zero units and always-treated units; return (panel, info, cohort/time of all rows).

    The third frame has the ``cohort`` and ``time`` of every row kept before the all-zero units
    were dropped: the level effects are averaged over its treated rows.
    """
    covs = as_list(covariates)
    panel = prepare_panel(data, outcome, unit, time, cohort, cluster, covs)
    df = panel.frame
    if (df["y"] < 0).any():
        n_neg = int((df["y"] < 0).sum())
        raise ValueError(
            f"outcome column {outcome!r} has {n_neg} negative value(s); Poisson PML needs a "
            "non-negative outcome (counts, or non-negative reals)"
        )
    info: dict[str, Any] = {}
    first = int(df["time"].min())
    always = (df["cohort"] > 0) & (df["cohort"] <= first)
    info["n_units_treated_first_period_dropped"] = int(df.loc[always, "unit"].nunique())
    if always.any():
        warnings.warn(
            f"dropped {info['n_units_treated_first_period_dropped']} unit(s) already treated in the "
            f"first period ({first}); they have no pre-treatment period",
            stacklevel=3,
        )
        df = df.loc[~always]
    total = df.groupby("unit")["y"].transform("sum")
    zero = total == 0
    panel_rows = df[["cohort", "time"]].copy()
    info["n_units_all_zero_dropped"] = int(df.loc[zero, "unit"].nunique())
    info["n_units_all_zero_dropped_treated"] = int(df.loc[zero & (df["cohort"] > 0), "unit"].nunique())
    df = df.loc[~zero]
    if df.empty:
        raise ValueError(f"outcome column {outcome!r} is zero for every unit: nothing to estimate")
    if df["D"].sum() == 0:
        raise ValueError(
            f"no treated observations with a non-zero outcome history: no unit with {cohort!r} > 0 "
            "is left after dropping all-zero units"
        )
    for j, c in enumerate(covs):
        if (df.groupby("unit")[f"x{j}"].nunique() > 1).any():
            raise ValueError(
                f"covariate {c!r} varies within a unit; ppml takes time-invariant covariates "
                "(they enter interacted with the year dummies, Wooldridge 2023)"
            )
        if df[f"x{j}"].nunique() < 2:
            raise ValueError(f"covariate {c!r} has no variation; remove it")
    panel.frame = df.copy(deep=False)
    return panel, info, panel_rows


def _cells(df: pd.DataFrame, event_study: bool, outcome: str) -> list[tuple[int, int]]:
    """Cohort-year cells that get an interaction, checked for identification."""
    years = np.sort(df["time"].unique())
    cohorts = np.sort(df.loc[df["cohort"] > 0, "cohort"].unique())
    ysum = df.groupby(["cohort", "time"])["y"].sum()
    untreated_years = set(df.loc[df["D"] == 0, "time"].unique())
    if event_study and not (df["cohort"] == 0).any():
        raise ValueError(
            "event_study=True needs never-treated units (cohort 0): with leads for every "
            "pre-treatment year the comparison group is the never treated"
        )
    cells = []
    for g in cohorts:
        for t in years:
            post = t >= g
            if not post and not (event_study and t < g - 1):
                continue
            if (g, t) not in ysum.index:
                continue
            if post and t not in untreated_years:
                raise ValueError(
                    f"cohort {g} in year {t} has no untreated comparison observation in that year "
                    "(every unit is treated by then); restrict the years to those with "
                    "untreated units"
                )
            if ysum.loc[(g, t)] == 0:
                raise ValueError(
                    f"outcome {outcome!r} is zero for every unit of cohort {g} in year {t}: its "
                    "proportional effect is minus infinity (not identified); pool or drop that year"
                )
            cells.append((int(g), int(t)))
    if event_study:
        for g in cohorts:
            if not ((df["cohort"] == g) & (df["time"] == g - 1)).any():
                raise ValueError(f"cohort {g} is not observed in its reference year {g - 1}")
    return cells


def _cell_name(g: int, t: int) -> str:
    return f"tau_{g}_{t}"


def _design(df: pd.DataFrame, cells, n_cov: int):
    """Add regressors to a copy of the frame; return (frame, names, treatment names)."""
    out = df.copy(deep=False)  # copy-on-write: the regressors are new columns
    treat_names: list[str] = []
    years = np.sort(out["time"].unique())
    g = out["cohort"].to_numpy()
    t = out["time"].to_numpy()
    names = [f"xy{j}_{s}" for j in range(n_cov) for s in years[1:]]
    for gg, tt in cells:
        names.append(_cell_name(gg, tt))
        names.extend(f"{_cell_name(gg, tt)}_x{j}" for j in range(n_cov))
    # the regressors are written column by column into one array, which the frame holds without a copy
    # (one block): at national size every n x k copy is 2 GB
    design = np.empty((len(out), len(names)), order="F")
    col = iter(range(len(names)))
    xbar = {}
    for j in range(n_cov):
        x = out[f"x{j}"].to_numpy(float)
        for s in years[1:]:
            np.multiply(x, t == s, out=design[:, next(col)])
        unit_x = out.groupby("unit")[f"x{j}"].first()
        unit_g = out.groupby("unit")["cohort"].first()
        xbar[j] = unit_x.groupby(unit_g).mean()
    for gg, tt in cells:
        d = ((g == gg) & (t == tt)).astype(float)
        design[:, next(col)] = d
        treat_names.append(_cell_name(gg, tt))
        for j in range(n_cov):
            np.multiply(d, out[f"x{j}"].to_numpy(float) - xbar[j].loc[gg], out=design[:, next(col)])
            treat_names.append(f"{_cell_name(gg, tt)}_x{j}")
    reg = pd.DataFrame(design, index=out.index, columns=names, copy=False)
    out = pd.concat([out, reg], axis=1)
    return out, names, treat_names


class _Fitted:
    """The quantities of a fitted Poisson model the delta method needs, aligned by row."""

    def __init__(self, fit: FixestFit, frame: pd.DataFrame, treat_names: Sequence[str], requested: Sequence[str],
                 small_sample: str):
        names = fit.names
        missing = [c for c in requested if c not in names]
        bad = [c for c in missing if c in treat_names]
        if bad:
            raise ValueError(
                f"treatment terms {bad} are collinear with the fixed effects and were dropped; "
                "the corresponding cohort-year effects are not identified"
            )
        self.names = names
        self.beta = fit.coefficients.to_numpy()
        self.vcov = regression_vcov(fit.vcov, fit.ssc.factor, small_sample)
        self.fit_vcov = fit.vcov
        self.cluster_scores = fit.cluster_scores
        used = fit.sample["rowid"].to_numpy()
        if len(used) == len(frame) and np.array_equal(used, frame["rowid"].to_numpy()):
            self.frame = frame  # every row, in order: no copy of the design (2 GB at national size)
        else:
            self.frame = frame.set_index("rowid").loc[used].reset_index()
        if fit.fitted is None:
            raise RuntimeError("internal error: the Poisson fit returned no fitted values")
        self.mu: np.ndarray = fit.fitted
        if len(self.mu) != len(self.frame):
            raise RuntimeError("internal error: fitted values and estimation sample disagree")
        self.X = self.frame[names].to_numpy(float)
        self.is_treat = np.array([c in treat_names for c in names])
        self.treat_index = self.X[:, self.is_treat] @ self.beta[self.is_treat]
        self.mu0 = self.mu * np.exp(-self.treat_index)

    def effect(self, rows: np.ndarray, n: int | None = None) -> tuple[float, float, float, float]:
        """Level and percentage effects over ``rows`` and their delta-method SEs.

        ``n`` is the number of observations the level effect averages over (default
        ``len(rows)``): ``rows`` plus the observations of all-zero units, whose predicted means
        are zero.
        """
        mu1, mu0 = self.mu[rows], self.mu0[rows]
        x1 = self.X[rows]
        g1 = mu1 @ x1
        # the regressors without the treatment terms, only on these rows (not a second n x k copy)
        x0 = np.array(x1, order="C")
        x0[:, self.is_treat] = 0.0
        g0 = mu0 @ x0
        n = len(rows) if n is None else n
        s1, s0 = mu1.sum(), mu0.sum()
        level = (s1 - s0) / n
        grad_level = (g1 - g0) / n
        pct = s1 / s0 - 1.0
        grad_pct = g1 / s0 - s1 * g0 / s0**2
        se_level = float(np.sqrt(grad_level @ self.vcov @ grad_level))
        se_pct = float(np.sqrt(grad_pct @ self.vcov @ grad_pct))
        return float(level), se_level, float(pct), se_pct


def _row(base: dict, est: float, se: float, alpha: float, df: float, **extra) -> dict:
    lo, hi, p = intervals(est, se, alpha, df)
    return {**base, **extra, "estimate": est, "std_error": se, "conf_low": float(lo),
            "conf_high": float(hi), "p_value": float(p), "band": "pointwise"}


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


# ----------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------
def ppml(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    cluster: str | None = None,
    covariates: str | Sequence[str] | None = None,
    event_study: bool = False,
    *,
    alpha: float = 0.05,
    iwls_tol: float = IWLS_TOL,
    fixef_tol: float = FIXEF_TOL,
    small_sample: str = SMALL_SAMPLE,
    pretrend_test: str = "hotelling",
) -> DiDResult:
    """Poisson extended TWFE (Wooldridge 2023) for count outcomes under staggered adoption.

    See the module docstring for the model, the estimands, the assumptions and the
    delta method.

    Parameters
    ----------
    data : pandas.DataFrame
        Long unit x year panel (balanced or not). Not modified.
    outcome : str
        Non-negative outcome (counts; non-negative reals are allowed, as in any PML).
    unit, time, cohort : str
        Column names; ``cohort`` is the first treated year, 0 for never treated; a
        cohort after the last year counts as never treated.
    cluster : str, optional
        Cluster column for the CRV1 covariance; default ``unit``. The study clusters
        by township.
    covariates : str or sequence of str, optional
        Numeric covariates constant within unit (terrain dummies, distance, ...),
        interacted with the year dummies and with the treatment terms.
    event_study : bool, default False
        Also estimate placebo leads for every pre-treatment year ``t < g - 1`` (reference
        ``g - 1``); the comparison group becomes the never treated.
    alpha : float, default 0.05
        One minus the confidence level.
    iwls_tol, fixef_tol : float
        Convergence tolerances passed to :func:`pyfixest.fepois` (IRLS relative deviance
        change) and to its demeaner.
    small_sample : {"cr1_t", "asymptotic"}, default "cr1_t"
        Small-sample rule (:mod:`analysis.inference.small_sample`).
    pretrend_test : {"hotelling", "htz", "wald_chi2"}, default "hotelling"
        Joint test of the leads with ``event_study``
        (:func:`analysis.inference.small_sample.joint_test`).

    Returns
    -------
    DiDResult
        Estimator ``"ppml"``. Rows (``aggregation``): ``simple`` (term ``"ATT"``, level
        scale) and ``simple_pct`` (term ``"ATT (% change)"``, a fraction); ``event`` and
        ``event_pct`` (one row per event time, ``e < -1`` only with ``event_study``);
        ``att_gt`` and ``att_gt_pct`` (one row per cohort-year cell). ``n_obs``,
        ``n_units`` and ``n_clusters`` are those of the estimation sample; the level
        effects average over every treated observation, all-zero units included.
        Also ``fit`` (pyfixest), ``coefficients`` and ``vcov`` (log-scale
        coefficients and their clustered covariance), ``cells`` (per cell: the log
        coefficient, ``n_units`` fitted and ``n_units_total`` with the all-zero units,
        observed and counterfactual means over all of them), ``ssc`` (the small-sample
        record), ``pretrend_test`` (with ``event_study``: joint test that every lead
        coefficient is 0, on the log scale) and ``details`` (a
        :class:`~analysis.results.PoissonDetails`: ``mu`` and ``mu0``, fitted means
        with and without treatment, by row of its ``frame``).

    Raises
    ------
    ValueError
        A missing column, a negative outcome, a time-varying covariate, no treated
        unit left, a cohort-year cell with no untreated comparison year or with only
        zero outcomes, ``event_study`` without never-treated units, or collinear
        treatment terms.

    Notes
    -----
    ``options`` records ``n_units_all_zero_dropped`` (units with a zero outcome in every
    year: no information in FE Poisson, but counted with a zero effect in the level
    effects, ``level_denominator``), ``n_units_treated_first_period_dropped`` and
    ``n_dropped_missing``. p-values are pointwise and not adjusted for multiple testing.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> n, years = 400, np.arange(2018, 2024)
    >>> df = pd.DataFrame({"id": np.repeat(np.arange(n), 6), "year": np.tile(years, n)})
    >>> df["g"] = np.repeat(rng.choice([0, 2021, 2022], n), 6)
    >>> a = np.repeat(rng.normal(1, 0.5, n), 6)
    >>> post = (df["g"] > 0) & (df["year"] >= df["g"])
    >>> df["y"] = rng.poisson(np.exp(a + 0.05 * (df["year"] - 2018) - 0.4 * post))
    >>> res = ppml(df, "y", "id", "year", "g")
    >>> pct = res.tidy("simple_pct").iloc[0]  # truth: exp(-0.4) - 1 = -0.33
    >>> bool(pct["conf_low"] < np.exp(-0.4) - 1 < pct["conf_high"])
    True
    """
    _check_alpha(alpha)
    check_rule(small_sample)
    if not isinstance(event_study, bool):
        raise ValueError(f"event_study must be True or False, got {event_study!r}")
    panel, info, all_rows = _prepare_counts(data, outcome, unit, time, cohort, cluster, covariates)
    covs = panel.names["covariates"]
    df = panel.frame
    cells = _cells(df, event_study, outcome)
    frame, names, treat_names = _design(df, cells, len(covs))
    frame["rowid"] = np.arange(len(frame))
    fit = fepois(frame, names, iwls_tol, fixef_tol)
    fm = _Fitted(fit, frame, treat_names, names, small_sample)
    ssc = fit.ssc.as_dict()
    df_t = t_df(fit.ssc.G, small_sample)
    est_frame = fm.frame
    n_obs, n_units, n_cl = fit.n_obs, int(est_frame["unit"].nunique()), fit.ssc.G
    control_group = "never" if event_study else "notyet"
    options = {
        **panel.base_options(),
        **info,
        "control_group": control_group,
        "event_study": event_study,
        "inference": describe(n_cl, small_sample, regression=True),
        "reference": "g-1" if event_study else "all untreated cells",
        "scale": "level (mean of E[Y(1)] - E[Y(0)]) and *_pct (sum E[Y(1)] / sum E[Y(0)] - 1)",
        "level_denominator": LEVEL_DENOMINATOR,
        "delta_method": "fixed effects held at their estimates (Wooldridge 2023, etwfe::emfx)",
        "engine": f"{fit.engine} fepois",
        "iwls_tol": iwls_tol,
        "fixef_tol": fixef_tol,
        "ssc": ssc,
        "alpha": alpha,
        "small_sample": small_sample,
        "t_df": df_t,
    }
    base = {"outcome": outcome, "estimator": ESTIMATOR, "control_group": control_group,
            "n_obs": n_obs, "n_units": n_units, "n_clusters": n_cl,
            "options": json.dumps(options, sort_keys=True, default=str)}
    g = est_frame["cohort"].to_numpy()
    t = est_frame["time"].to_numpy()
    post = (g > 0) & (t >= g)
    lead = np.zeros(len(g), dtype=bool)
    if event_study:
        lead = (g > 0) & (t < g - 1)
    # The same selections among all rows, all-zero units included (the level effects' denominators).
    g_all, t_all = all_rows["cohort"].to_numpy(), all_rows["time"].to_numpy()
    post_all = (g_all > 0) & (t_all >= g_all)
    lead_all = (g_all > 0) & (t_all < g_all - 1) if event_study else np.zeros(len(g_all), dtype=bool)
    rows: list[dict] = []

    def add(agg: str, term: str, sel: np.ndarray, n_all: int, **extra) -> tuple[float, float, float, float]:
        lev, se_l, pct, se_p = fm.effect(np.flatnonzero(sel), n_all)
        rows.append(_row(base, lev, se_l, alpha, df_t, aggregation=agg, term=term, **extra))
        rows.append(_row(base, pct, se_p, alpha, df_t, aggregation=f"{agg}_pct", term=f"{term} (% change)",
                         **extra))
        return lev, se_l, pct, se_p

    add("simple", "ATT", post, int(post_all.sum()))
    e_est = np.where(post | lead, t - g, np.iinfo(np.int64).min)
    e_tot = np.where(post_all | lead_all, t_all - g_all, np.iinfo(np.int64).min)
    for e in np.unique(e_est[post | lead]):
        add("event", f"e={e}", (e_est == e) & (post | lead), int((e_tot == e).sum()), event_time=int(e))
    cell_rows = []
    coefs = pd.Series(fm.beta, index=fm.names)
    for gg, tt in cells:
        sel = (g == gg) & (t == tt)
        n_all = int(((g_all == gg) & (t_all == tt)).sum())
        lev, se_l, pct, se_p = add("att_gt", f"g={gg},t={tt}", sel, n_all, cohort=gg, year=tt, event_time=tt - gg)
        cell_rows.append({"cohort": gg, "year": tt, "event_time": tt - gg, "log_coef": coefs[_cell_name(gg, tt)],
                          "n_units": int(sel.sum()), "n_units_total": n_all,
                          "mean_mu1": float(fm.mu[sel].sum() / n_all), "mean_mu0": float(fm.mu0[sel].sum() / n_all),
                          "level": lev, "se_level": se_l, "pct": pct, "se_pct": se_p})
    table = make_tidy(rows)
    order = {"simple": 0, "simple_pct": 1, "event": 2, "event_pct": 3, "att_gt": 4, "att_gt_pct": 5}
    table = table.iloc[np.argsort(table["aggregation"].map(order).to_numpy(), kind="stable")].reset_index(drop=True)
    vcov = pd.DataFrame(fm.vcov, index=fm.names, columns=fm.names)
    pretest = None
    if event_study:
        lead_names = [_cell_name(gg, tt) for gg, tt in cells if tt < gg - 1]
        pretest = _joint_zero(coefs, fm, lead_names, pretrend_test)
    return DiDResult(table, ESTIMATOR, outcome, options, fit=fit.model, coefficients=coefs, vcov=vcov,
                     cells=pd.DataFrame(cell_rows), ssc=fit.ssc, pretrend_test=pretest,
                     details=PoissonDetails(mu=fm.mu, mu0=fm.mu0, frame=est_frame))


def _joint_zero(coefs: pd.Series, fm: _Fitted, names: list[str], test: str) -> PretrendTest:
    """Joint test that the named coefficients are zero (pyfixest's CRV1 covariance)."""
    if not names:
        return PretrendTest(statistic=np.nan, df=0, p_value=np.nan, test=test)
    idx = [fm.names.index(c) for c in names]
    b = coefs[names].to_numpy()
    scores = None if fm.cluster_scores is None else fm.cluster_scores[:, idx]
    jt = joint_test(b, fm.fit_vcov[np.ix_(idx, idx)], scores, test=test)
    return PretrendTest(statistic=jt.statistic, df=len(names), p_value=jt.p_value, terms=names,
                        coefficients=dict(zip(names, b.tolist(), strict=True)), test=jt.test,
                        df_denominator=jt.df_denominator, wald=jt.wald, n_clusters=jt.n_clusters,
                        effective_clusters=jt.effective_clusters)


def twfe_poisson(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    cluster: str | None = None,
    covariates: str | Sequence[str] | None = None,
    *,
    alpha: float = 0.05,
    iwls_tol: float = IWLS_TOL,
    fixef_tol: float = FIXEF_TOL,
    small_sample: str = SMALL_SAMPLE,
) -> DiDResult:
    """Single-dummy TWFE Poisson ``exp(a_i + l_t + b D_it)``: a biased benchmark.

    Parameters
    ----------
    data : pandas.DataFrame
        Long unit x year panel. Not modified.
    outcome, unit, time, cohort : str
        As in :func:`ppml`.
    cluster : str, optional
        Cluster column; default ``unit``.
    covariates : str or sequence of str, optional
        Time-invariant covariates, interacted with the year dummies as in :func:`ppml`
        (not with ``D``).
    alpha : float, default 0.05
        One minus the confidence level.
    iwls_tol, fixef_tol : float
        Tolerances passed to :func:`pyfixest.fepois`.
    small_sample : {"cr1_t", "asymptotic"}, default "cr1_t"
        Small-sample rule (:mod:`analysis.inference.small_sample`).

    Returns
    -------
    DiDResult
        Estimator ``"twfe_ppml"``, control group ``"all"``. Rows: ``coef`` (term ``"D"``,
        the log-scale coefficient ``b``), ``coef_pct`` (``exp(b) - 1``, SE by the delta
        method), and ``simple`` / ``simple_pct`` (the implied level and percentage
        effects over treated observations, computed as in :func:`ppml`, for a
        like-for-like comparison).

    Raises
    ------
    ValueError
        As :func:`ppml`.

    Notes
    -----
    **Caveat.** With staggered adoption and effects that vary by cohort or exposure,
    ``b`` mixes comparisons that use already-treated units as controls (the Poisson
    analogue of Goodman-Bacon's forbidden comparisons), so ``exp(b) - 1`` is not a
    proportional ATT. When effects grow with exposure it is biased towards zero (and
    can change sign). It is reported only to show that bias next to :func:`ppml`.
    """
    _check_alpha(alpha)
    check_rule(small_sample)
    panel, info, all_rows = _prepare_counts(data, outcome, unit, time, cohort, cluster, covariates)
    covs = panel.names["covariates"]
    frame, names, _ = _design(panel.frame, [], len(covs))
    frame["D"] = frame["D"].astype(float)
    names = ["D", *names]
    frame["rowid"] = np.arange(len(frame))
    fit = fepois(frame, names, iwls_tol, fixef_tol)
    fm = _Fitted(fit, frame, ["D"], names, small_sample)
    ssc = fit.ssc.as_dict()
    n_obs, n_units, n_cl = fit.n_obs, int(fm.frame["unit"].nunique()), fit.ssc.G
    df_t = t_df(n_cl, small_sample)
    options = {**panel.base_options(), **info, "engine": f"{fit.engine} fepois",
               "ssc": ssc, "alpha": alpha, "small_sample": small_sample, "t_df": df_t,
               "inference": describe(n_cl, small_sample, regression=True),
               "level_denominator": LEVEL_DENOMINATOR,
               "caveat": "biased under staggered heterogeneous effects; benchmark only"}
    base = {"outcome": outcome, "estimator": TWFE_ESTIMATOR, "control_group": "all", "n_obs": n_obs,
            "n_units": n_units, "n_clusters": n_cl, "options": json.dumps(options, sort_keys=True, default=str)}
    j = fm.names.index("D")
    b, se_b = float(fm.beta[j]), float(np.sqrt(fm.vcov[j, j]))
    post = np.flatnonzero(fm.frame["D"].to_numpy() == 1)
    g_all, t_all = all_rows["cohort"].to_numpy(), all_rows["time"].to_numpy()
    lev, se_l, pct, se_p = fm.effect(post, int(((g_all > 0) & (t_all >= g_all)).sum()))
    rows = [
        _row(base, b, se_b, alpha, df_t, aggregation="coef", term="D"),
        _row(base, float(np.expm1(b)), float(np.exp(b) * se_b), alpha, df_t, aggregation="coef_pct",
             term="exp(D) - 1"),
        _row(base, lev, se_l, alpha, df_t, aggregation="simple", term="ATT"),
        _row(base, pct, se_p, alpha, df_t, aggregation="simple_pct", term="ATT (% change)"),
    ]
    coefs = pd.Series(fm.beta, index=fm.names)
    return DiDResult(make_tidy(rows), TWFE_ESTIMATOR, outcome, options, fit=fit.model, coefficients=coefs,
                     vcov=pd.DataFrame(fm.vcov, index=fm.names, columns=fm.names), ssc=fit.ssc)


def rate_per_1000(data: pd.DataFrame, outcome: str, population: str = "population") -> pd.Series:
    """Return the outcome per 1,000 residents, ``1000 * outcome / population``.

    Parameters
    ----------
    data : pandas.DataFrame
        Frame with both columns. Not modified.
    outcome : str
        Count column.
    population : str, default "population"
        Resident population column (positive).

    Returns
    -------
    pandas.Series
        Float series on ``data``'s index, named ``"<outcome>_per_1000"``; missing where
        either input is missing.

    Raises
    ------
    ValueError
        If a column is missing or not numeric, or a population is zero or negative.

    Examples
    --------
    >>> df = pd.DataFrame({"cases": [1, 0, 3], "population": [500, 1000, 1500]})
    >>> rate_per_1000(df, "cases").tolist()
    [2.0, 0.0, 2.0]
    """
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    for role, col in (("outcome", outcome), ("population", population)):
        if col not in data.columns:
            raise ValueError(f"{role} column {col!r} not in data (available: {list(data.columns)[:20]})")
        s = data[col]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            raise ValueError(f"{role} column {col!r} must be numeric, got dtype {s.dtype}")
    pop = data[population].astype("float64")
    if (pop.dropna() <= 0).any():
        raise ValueError(f"population column {population!r} has zero or negative values")
    out = 1000.0 * data[outcome].astype("float64") / pop
    out.name = f"{outcome}_per_1000"
    return out


def linear_rate_did(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    population: str = "population",
    covariates: str | Sequence[str] | None = None,
    control_group: str = "notyet",
    method: str = "dr",
    cluster: str | None = None,
    kind: str = "simple",
) -> DiDResult:
    """Callaway-Sant'Anna DiD on the rate per 1,000 residents: the linear alternative to :func:`ppml`.

    Parameters
    ----------
    data : pandas.DataFrame
        Balanced unit x year panel. Not modified.
    outcome : str
        Count column; the DiD is on ``1000 * outcome / population``.
    unit, time, cohort : str
        Column names (``cohort`` 0 = never treated).
    population : str, default "population"
        Resident population column.
    covariates : str or sequence of str, optional
        Covariates for conditional parallel trends (see
        :func:`analysis.estimators.callaway_santanna.att_gt`).
    control_group : {"notyet", "never"}, default "notyet"
        Comparison group.
    method : {"dr", "ipw", "reg"}, default "dr"
        2x2 estimator.
    cluster : str, optional
        Cluster column for the analytic SEs.
    kind : {"simple", "event", "group", "calendar"}, default "simple"
        Aggregation.

    Returns
    -------
    DiDResult
        The output of :func:`~analysis.estimators.callaway_santanna.aggregate` with
        outcome ``"<outcome>_per_1000"`` (estimator ``"cs"``); ``att_gt`` holds the cell
        estimates.

    Raises
    ------
    ValueError
        If ``population`` or ``outcome`` is missing or invalid, or as ``att_gt``.

    Notes
    -----
    Estimand: the ATT on the rate, ``E[R(1) - R(0) | treated]`` averaged as ``kind``
    says, under additive parallel trends in the rate (not in ratios, as :func:`ppml`).
    A population that itself responds to treatment would move the rate without any
    change in the count.
    """
    rate = rate_per_1000(data, outcome, population)
    if rate.name in data.columns:
        raise ValueError(f"data already has a column {rate.name!r}; rename it first")
    work = data.assign(**{rate.name: rate})
    res = att_gt(work, rate.name, unit, time, cohort, covariates=covariates, control_group=control_group,
                 method=method, cluster=cluster)
    return aggregate(res, kind)
