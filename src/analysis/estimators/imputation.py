"""Borusyak, Jaravel & Spiess (2024) imputation estimator.

Steps
-----
1. Fit ``y_it = a_i + l_t (+ x_it'c) + e_it`` by OLS on the *untreated* observations
   ``Omega_0`` (never-treated units and the not-yet-treated periods of later-treated
   units).
2. Impute the untreated potential outcome of every treated observation,
   ``yhat0_it = ahat_i + lhat_t (+ x_it'chat)``, and its effect ``tauhat_it = y_it - yhat0_it``.
3. Average: an estimand ``tau_w = sum_{it in Omega_1} w_it tau_it`` with weights summing
   to one is estimated by ``sum w_it tauhat_it``. Reported: each event time ``e >= 0``
   (equal weights on the treated observations with ``t - g = e``), each cohort, and the
   overall ATT (equal weights on all treated observations).

The fixed effects are solved exactly (sparse LU of the normal equations), not
iteratively. A treated observation can be imputed only if its unit and its period
both have untreated observations; the others (e.g. a cohort treated in the first
period, or periods in which every unit is treated) are dropped with a warning and
counted in ``options``. A unit with a single untreated period is kept: its effect is
identified from that period (pyfixest's ``did2s`` drops such "singleton" units in its
first stage, which changes the estimand and, in 0.60, makes its variance step fail).

Standard errors: the BJS conservative variance
---------------------------------------------
The estimator is linear in the outcomes, ``tauhat_w = sum_it v_it y_it``, with
``v_it = w_it`` on treated observations and
``v_0 = -Z_0 (Z_0'Z_0)^{-1} Z_1' w`` on untreated ones (``Z`` the unit, period and
covariate design). BJS (2024, section on inference; Theorem 3) estimate its variance,
clustered, by

    sigma^2 = sum_clusters ( sum_{it in cluster} v_it epstilde_it )^2,

with ``epstilde_it`` the step-1 residual for untreated observations and
``epstilde_it = tauhat_it - tautilde_it`` for treated ones, where ``tautilde_it`` is the
``v``-weighted average of ``tauhat`` in the observation's (cohort, event time) cell (the
grouping BJS propose by default). Subtracting cell averages rather than the target
average keeps the variance from absorbing effect heterogeneity *between* cells;
heterogeneity *within* cells remains in it, which makes it conservative (it is
consistent when effects are homogeneous within cells). With ``leaveout=True``
``tautilde_it`` excludes the observation's own cluster (BJS's leave-out refinement for
small cells). The study's small-sample convention (:mod:`analysis.inference.small_sample`)
multiplies it by ``G/(G-1)`` and uses t(G-1) intervals and p-values; with
``small_sample="asymptotic"`` it is BJS's formula as written (no factor) with normal
intervals.

Finite-sample behaviour (Monte Carlo in ``tests/test_imputation.py``, township-clustered
panels, measured without the ``G/(G-1)`` factor): with 600 units in 120 clusters the 95%
interval of the overall ATT covers about 94% (mean SE / Monte Carlo SD about 0.99); with
200 units the SE is about 10% too small (coverage about 92%; leave-out recovers about a
fifth of the gap), because the residuals of units with few untreated periods are shrunk
by the fit of their unit effects.

Pre-trend test (optional, ``pretrends=k``): BJS's test regresses ``y`` on unit and
period effects and dummies for ``e = -1, ..., -k`` on ``Omega_0`` only (pyfixest, CRV1 as
in :mod:`analysis.estimators.twfe`); the coefficients are reported as pre-period
``event`` rows and their joint test is in ``pretrend_test``: by default the Hotelling F test
:math:`F(k, G - k)` of :func:`analysis.inference.small_sample.joint_test`, which holds its
level on the synthetic city where the chi-square Wald test (``pretrend_test="wald_chi2"``)
over-rejects (measured in :mod:`analysis.inference.calibration`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import linalg
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from analysis.estimators import lean_fe
from analysis.estimators.fixest import Indicators, choose_engine, feols
from analysis.estimators.inputs import prepare_panel
from analysis.inference.small_sample import DEFAULT as SMALL_SAMPLE
from analysis.inference.small_sample import (
    check_rule,
    cluster_factor,
    describe,
    intervals,
    joint_test,
    regression_vcov,
    t_df,
)
from analysis.results import DiDResult, ImputationDetails, PretrendTest, make_tidy

__all__ = ["imputation"]


def _design(frame: pd.DataFrame, covs: Sequence[str] = ()) -> sp.csr_matrix:
    """Sparse design: unit dummies, period dummies without the base level, covariates."""
    n = len(frame)
    rows = np.arange(n)
    u = frame["u_code"].to_numpy()
    t = frame["t_code"].to_numpy()
    n_u, n_t = int(u.max()) + 1, int(t.max()) + 1
    U = sp.csr_matrix((np.ones(n), (rows, u)), shape=(n, n_u))
    keep = t > 0
    T = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], t[keep] - 1)), shape=(n, n_t - 1))
    blocks = [U, T]
    if len(covs):
        blocks.append(sp.csr_matrix(frame[list(covs)].to_numpy(float)))
    return sp.hstack(blocks, format="csr")


def _independent_covariates(Zf0: sp.csr_matrix, X0: np.ndarray) -> list[int]:
    """Return the covariates not collinear with the fixed effects or each other on Omega_0."""
    lu_f = splu((Zf0.T @ Zf0).tocsc())
    R = X0 - Zf0 @ lu_f.solve(np.asarray(Zf0.T @ X0))
    _, r, piv = linalg.qr(R, mode="economic", pivoting=True)
    scale = max(1.0, float(np.abs(X0).max()) * np.sqrt(len(X0)))
    rank = int(np.sum(np.abs(np.diag(r)) > 1e-9 * scale))
    return sorted(piv[:rank].tolist())


def imputation(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    cluster: str | None = None,
    covariates: str | Sequence[str] | None = None,
    horizons: Sequence[int] | None = None,
    pretrends: int = 0,
    leaveout: bool = False,
    small_sample: str = SMALL_SAMPLE,
    pretrend_test: str = "hotelling",
) -> DiDResult:
    """Estimate the Borusyak-Jaravel-Spiess imputation DiD with its conservative variance.

    Parameters
    ----------
    data : pandas.DataFrame
        Long unit x period panel (balanced or not). Not modified.
    outcome, unit, time, cohort : str
        Column names; ``cohort`` is the first treated period, 0 for never treated.
    cluster : str, optional
        Cluster column; default ``unit``. The study clusters by township.
    covariates : str or sequence of str, optional
        Time-varying numeric controls in the untreated-outcome model. Covariates
        collinear with the unit and period effects on the untreated observations
        (e.g. time-invariant ones) are dropped with a warning.
    horizons : sequence of int, optional
        Event times ``e >= 0`` to report; default all observed. The overall ATT and
        the cohort rows average over the treated observations at these horizons.
    pretrends : int, default 0
        Number of pre-periods for the BJS pre-trend test (0 = none).
    leaveout : bool, default False
        Compute each treated observation's ``tautilde`` without its own cluster (BJS's
        leave-out variance, recommended when cells have few clusters). Cells with a
        single cluster fall back to the ordinary average (counted in
        ``options["leaveout_fallback_obs"]``).
    small_sample : {"cr1_t", "asymptotic"}, default "cr1_t"
        Small-sample rule (:mod:`analysis.inference.small_sample`): ``G/(G-1)`` and t(G-1),
        or neither.
    pretrend_test : {"hotelling", "htz", "wald_chi2"}, default "hotelling"
        Joint test of the pre-trend coefficients
        (:func:`analysis.inference.small_sample.joint_test`).

    Returns
    -------
    DiDResult
        Estimator ``"bjs"``, control group ``"notyet"`` (all untreated observations).
        Rows: ``simple`` (term ``"ATT"``), ``event`` (``"e=0"``, ...; with
        ``pretrends``, also ``"pre e=-1"``, ... from the pre-trend regression) and
        ``group`` (``"g=2023"``). ``details`` (an
        :class:`~analysis.results.ImputationDetails`): ``tau`` (the imputed effect of
        every treated observation, with unit, period, cohort and event time, in the
        caller's row index) and ``weights`` (the ``v`` vectors of every reported
        estimate, over the estimation sample); ``pretrend_test`` (a
        :class:`~analysis.results.PretrendTest`: test, statistic, df, p-value) if
        requested.

    Raises
    ------
    ValueError
        Bad columns or panel (see :func:`analysis.estimators.inputs.prepare_panel`); no
        imputable treated observation; unit and period effects not identified on the
        untreated observations (a disconnected panel);
        a horizon with no treated observation; ``pretrends`` negative.

    Notes
    -----
    **Assumptions.** Parallel trends for the untreated potential outcomes of *all*
    units and periods (a stronger, "all-period" version than Callaway-Sant'Anna's),
    no anticipation, and the two-way (plus covariates) model for ``Y(0)``. Effects may
    be arbitrarily heterogeneous. Under homoskedastic errors the estimator is the
    efficient linear unbiased one (BJS Theorem 2). **Caveats.** The variance is
    conservative (see the module docstring); p-values are pointwise, not adjusted for
    multiple testing. Without covariates, the point estimates equal Gardner's
    two-stage (``did2s``) estimates.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"id": np.repeat(np.arange(60), 6), "t": np.tile(np.arange(1, 7), 60)})
    >>> df["g"] = np.select([df["id"] < 20, df["id"] < 40], [3, 5], 0)
    >>> e = df["t"] - df["g"]
    >>> df["y"] = df["id"] % 7 + np.where((df["g"] > 0) & (e >= 0), 1.0 + e, 0.0) + rng.normal(0, .01, 360)
    >>> res = imputation(df, "y", "id", "t", "g")
    >>> res.tidy("event")["estimate"].round(1).tolist()
    [1.0, 2.0, 3.0, 4.0]
    """
    if isinstance(pretrends, bool) or not isinstance(pretrends, int | np.integer) or pretrends < 0:
        raise ValueError(f"pretrends must be a non-negative integer, got {pretrends!r}")
    check_rule(small_sample)
    panel = prepare_panel(data, outcome, unit, time, cohort, cluster, covariates)
    n_cov = len(panel.names["covariates"])
    df = panel.frame.copy(deep=False)  # columns are added, never written: no copy of the data (copy-on-write)
    df["e"] = (df["time"] - df["cohort"]).where(df["cohort"] > 0)
    untreated = df["D"] == 0
    u0 = set(df.loc[untreated, "unit"])
    t0 = set(df.loc[untreated, "time"])
    imputable = df["unit"].isin(u0) & df["time"].isin(t0)
    dropped = df.loc[~untreated & ~imputable]
    n_dropped = len(dropped)
    if n_dropped:
        warnings.warn(
            f"{n_dropped} treated observation(s) cannot be imputed (their unit or period has "
            "no untreated observation) and are left out of every average",
            stacklevel=2,
        )
    kept = (untreated | imputable).to_numpy()
    if not kept.all():
        df = df.loc[kept]
    treated = (df["D"] == 1).to_numpy()
    if not treated.any():
        raise ValueError("no treated observation can be imputed: no unit is observed untreated "
                         "before and treated after")
    # codes over the retained sample; the period base level is the first untreated period
    df["u_code"] = pd.factorize(df["unit"], sort=True)[0]
    times0 = np.sort(df.loc[~treated, "time"].unique())
    t_map = {t: i for i, t in enumerate(times0)}
    df["t_code"] = df["time"].map(t_map).astype("int64")

    # the untreated rows' codes only (a copy of every column of those rows was 1.6 GB at national size)
    u0_codes, t0_codes = df.loc[~treated, "u_code"].to_numpy(), df.loc[~treated, "t_code"].to_numpy()
    graph = sp.coo_matrix(
        (np.ones(len(u0_codes)), (u0_codes, t0_codes)),
        shape=(df["u_code"].max() + 1, len(times0)),
    )
    n_comp = connected_components(sp.bmat([[None, graph], [graph.T, None]]), directed=False)[0]
    if n_comp > 1:
        raise ValueError(
            f"the untreated observations form {n_comp} disconnected unit-period groups, so unit "
            "and period effects are not identified; restrict the sample"
        )
    covs = [f"x{j}" for j in range(n_cov)]
    cov_dropped: list[str] = []
    # from lean_fe.LEAN_ROWS rows on, the untreated-outcome model absorbs the effects exactly
    # (lean_fe.UntreatedModel) instead of factorising a sparse design with a column per unit
    lean = choose_engine(len(df)) == "lean"
    y = df["y"].to_numpy()
    y0, y1 = y[~treated], y[treated]
    model = None
    if n_cov and lean:
        # the untreated rows' covariates, read from the frame one column at a time (lean_fe.RowSelection:
        # the n0 x k copy was 1.6 GB at national size); the model drops the collinear ones from the same
        # residuals it fits with
        x0_cols = lean_fe.RowSelection([df[c].to_numpy(float) for c in covs], np.flatnonzero(~treated))
        scale = max(1.0, max(float(np.abs(x).max()) for x in x0_cols) * np.sqrt(len(u0_codes)))
        model = lean_fe.UntreatedModel(u0_codes, t0_codes, x0_cols, y0, rank_tol=1e-9 * scale)
        keep_j = model.kept
        del x0_cols
    elif n_cov:
        Zf0 = _design(df.loc[~treated])
        keep_j = _independent_covariates(Zf0, df.loc[~treated, covs].to_numpy(float))
    if n_cov:
        cov_dropped = [panel.names["covariates"][j] for j in range(n_cov) if j not in keep_j]
        if cov_dropped:
            warnings.warn(
                f"covariates {cov_dropped} are collinear with the unit and period effects (or "
                "with each other) on the untreated observations and were dropped",
                stacklevel=2,
            )
        covs = [covs[j] for j in keep_j]
    if lean:
        rows1 = np.flatnonzero(treated)
        u1_codes, t1_codes = df["u_code"].to_numpy()[rows1], df["t_code"].to_numpy()[rows1]
        x1_cols = lean_fe.RowSelection([df[c].to_numpy(float) for c in covs], rows1)
        if model is None:
            model = lean_fe.UntreatedModel(u0_codes, t0_codes, [], y0)
        eps0 = y0 - model.predict(u0_codes, t0_codes, model.columns)
        tau = y1 - model.predict(u1_codes, t1_codes, x1_cols)
    else:
        Z = _design(df, covs)
        Z0, Z1 = Z[~treated], Z[treated]
        A = (Z0.T @ Z0).tocsc()
        try:
            lu = splu(A)
            coef = lu.solve(np.asarray(Z0.T @ y0).ravel())
        except RuntimeError as err:
            raise ValueError(f"the untreated-outcome model is not identified ({err}); "
                             "are covariates collinear with the unit and period effects?") from err
        if not np.all(np.isfinite(coef)) or np.linalg.norm(A @ coef - Z0.T @ y0) > 1e-6 * (
            1 + np.linalg.norm(Z0.T @ y0)
        ):
            raise ValueError("the untreated-outcome model is not identified (singular normal equations)")
        eps0 = y0 - Z0 @ coef
        tau = y1 - Z1 @ coef

    t1 = df.loc[treated, ["unit", "time", "cohort", "e", "cl"]].copy()
    t1["e"] = t1["e"].astype("int64")
    t1["tau"] = tau
    observed_e = sorted(t1["e"].unique().tolist())
    if horizons is None:
        hz = observed_e
    else:
        hz = sorted({int(h) for h in horizons})
        bad = [h for h in hz if h not in observed_e]
        if bad:
            raise ValueError(f"horizons {bad} have no imputable treated observation "
                             f"(observed event times: {observed_e})")
    in_h = t1["e"].isin(hz).to_numpy()

    targets: list[tuple[str, str, dict[str, Any], np.ndarray]] = []
    w = np.where(in_h, 1.0, 0.0)
    targets.append(("simple", "ATT", {}, w / w.sum()))
    for h in hz:
        w = (t1["e"] == h).to_numpy(float)
        targets.append(("event", f"e={h}", {"event_time": h}, w / w.sum()))
    for g in sorted(t1["cohort"].unique().tolist()):
        sel = in_h & (t1["cohort"] == g).to_numpy()
        if sel.any():
            w = sel.astype(float)
            targets.append(("group", f"g={g}", {"cohort": g}, w / w.sum()))
    W1 = np.column_stack([t[3] for t in targets])  # n1 x m
    if lean:
        assert model is not None
        V0 = -model.weights(u1_codes, t1_codes, x1_cols, W1)
        del model, x1_cols
    else:
        H = lu.solve(np.asarray((Z1.T @ sp.csr_matrix(W1)).todense()))
        V0 = -(Z0 @ H)  # n0 x m

    cell = pd.factorize(pd.MultiIndex.from_frame(t1[["cohort", "e"]]))[0]
    n_cell = cell.max() + 1
    cl0 = df.loc[~treated, "cl"].to_numpy()
    cl1 = t1["cl"].to_numpy()
    n_cl_codes = int(df["cl"].max()) + 1
    pair = pd.factorize(pd.MultiIndex.from_arrays([cell, cl1]))[0]
    n_pair = pair.max() + 1
    n_fallback = 0
    ests, ses = [], []
    for j in range(W1.shape[1]):
        v1, v0 = W1[:, j], V0[:, j]
        sv = np.bincount(cell, weights=v1, minlength=n_cell)
        svt = np.bincount(cell, weights=v1 * tau, minlength=n_cell)
        plain = np.bincount(cell, weights=tau, minlength=n_cell) / np.bincount(cell, minlength=n_cell)
        with np.errstate(invalid="ignore", divide="ignore"):
            tt = np.where(np.abs(sv) > 0, svt / sv, plain)
        tt_obs = tt[cell]
        if leaveout:
            sv_cc = np.bincount(pair, weights=v1, minlength=n_pair)
            svt_cc = np.bincount(pair, weights=v1 * tau, minlength=n_pair)
            den = sv[cell] - sv_cc[pair]
            ok = np.abs(den) > 1e-12 * np.maximum(np.abs(sv[cell]), 1e-300)
            with np.errstate(invalid="ignore", divide="ignore"):
                tt_obs = np.where(ok, (svt[cell] - svt_cc[pair]) / den, tt_obs)
            n_fallback += int(np.sum(~ok & (v1 != 0)))
        eps1 = tau - tt_obs
        s = (np.bincount(cl0, weights=v0 * eps0, minlength=n_cl_codes)
             + np.bincount(cl1, weights=v1 * eps1, minlength=n_cl_codes))
        ests.append(float(v1 @ tau))
        ses.append(float(np.sqrt(np.sum(s**2))))

    G = int(df["cl"].nunique())
    root_f = np.sqrt(cluster_factor(G, small_sample))
    ses = [se * root_f for se in ses]
    df_t = t_df(G, small_sample)
    n_obs = len(df)
    common = {
        "outcome": outcome, "estimator": "bjs", "control_group": "notyet", "band": "pointwise",
        "n_obs": n_obs, "n_units": int(df["unit"].nunique()), "n_clusters": G,
    }
    rows: list[dict[str, Any]] = []
    for (agg, term, kw, _), est, se in zip(targets, ests, ses, strict=True):
        lo, hi, p = intervals(est, se, df=df_t)
        rows.append({**common, "aggregation": agg, "term": term, "estimate": est, "std_error": se,
                     "conf_low": float(lo), "conf_high": float(hi), "p_value": float(p), **kw})

    pre_test = None
    options = {
        **panel.base_options(),
        "variance": "BJS conservative, tautilde by cohort x event time, "
        f"{'leave-out (by cluster)' if leaveout else 'no leave-out'}, "
        + ("G/(G-1) small-sample factor" if small_sample == "cr1_t" else "no small-sample factor"),
        "small_sample": small_sample, "t_df": df_t, "inference": describe(G, small_sample),
        "leaveout": bool(leaveout), "leaveout_fallback_obs": n_fallback, "horizons": hz,
        "n_treated_not_imputable": n_dropped, "n_treated_obs": int(in_h.sum()),
        "n_untreated_obs": int((~treated).sum()), "pretrends": int(pretrends),
        "covariates_dropped": cov_dropped,
    }
    if pretrends:
        unused = [f"x{j}" for j in range(n_cov) if f"x{j}" not in covs]
        # the untreated rows are selected inside the fit: a copy of them with their covariates was
        # the stage's peak at national size
        pre_rows, test, pre_ssc = _pretrend_test(
            df.drop(columns=unused), ~treated, pretrends, common, small_sample, pretrend_test
        )
        rows = pre_rows + rows
        pre_test = test
        options["pretrend_ssc"] = pre_ssc
    tau_out = t1.drop(columns=["cl"]).rename(columns={
        "unit": "unit_code", "time": panel.names["time"], "cohort": panel.names["cohort"],
        "e": "event_time",
    })
    tau_out.insert(0, panel.names["unit"], data.loc[tau_out.index, panel.names["unit"]].to_numpy())
    idx0, idx1 = df.index[~treated], df.index[treated]
    weights = pd.DataFrame(
        np.vstack([V0, W1]), index=idx0.append(idx1),
        columns=[t[1] for t in targets],
    )
    return DiDResult(make_tidy(rows), "bjs", outcome, options, pretrend_test=pre_test,
                     details=ImputationDetails(tau=tau_out, weights=weights))


def _pretrend_test(frame: pd.DataFrame, untreated: np.ndarray, k: int, common: dict[str, Any], small_sample: str,
                   test_name: str):
    """BJS pre-trend regression on the ``untreated`` rows of ``frame``: y ~ 1{e=-1..-k} | unit + period."""
    df = frame.drop(columns=["u_code", "t_code", "e", "D"])
    e = frame["e"].to_numpy()
    names: list[str] = []
    code = np.full(len(df), -1, dtype=np.int64)  # the dummies 1{e = -h}, one per row at most (fixest.Indicators)
    for h in range(1, k + 1):
        if (e[untreated] == -h).any():
            code[e == -h] = len(names)
            names.append(f"pre_{h}")
    if not names:
        raise ValueError(f"no untreated observation of a treated unit at e = -1..-{k}")
    fit = feols(df, [], rows=untreated, indicators=Indicators(code, tuple(names)))
    cn = fit.names
    idx = [cn.index(n) for n in names if n in cn]
    b = fit.coefficients.to_numpy()[idx]
    V_fit = fit.vcov[np.ix_(idx, idx)]
    V = regression_vcov(V_fit, fit.ssc.factor, small_sample)
    df_t = t_df(fit.ssc.G, small_sample)
    ssc = fit.ssc.as_dict()
    rows = []
    kept = [n for n in names if n in cn]
    for j, n in enumerate(kept):
        h = int(n.split("_")[1])
        se = float(np.sqrt(V[j, j]))
        lo, hi, p = intervals(b[j], se, df=df_t)
        rows.append({**common, "aggregation": "event", "term": f"pre e={-h}", "event_time": -h,
                     "estimate": float(b[j]), "std_error": se, "conf_low": float(lo),
                     "conf_high": float(hi), "p_value": float(p), "n_obs": fit.n_obs,
                     "n_clusters": fit.ssc.G})
    rows.sort(key=lambda r: r["event_time"])
    scores = None if fit.cluster_scores is None else fit.cluster_scores[:, idx]
    jt = joint_test(b, V_fit, scores, test=test_name)
    test = PretrendTest(statistic=jt.statistic, df=len(kept), p_value=jt.p_value, terms=kept,
                        coefficients=dict(zip(kept, b.tolist(), strict=True)), test=jt.test,
                        df_denominator=jt.df_denominator, wald=jt.wald, n_clusters=jt.n_clusters,
                        effective_clusters=jt.effective_clusters)
    return rows, test, ssc
