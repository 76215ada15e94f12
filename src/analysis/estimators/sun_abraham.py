"""Sun & Abraham (2021) interaction-weighted (IW) event study.

Step 1 (saturated regression). On the units that are treated inside the window and
the control units, estimate by OLS with unit and period fixed effects

    y_it = a_i + l_t + sum_{g in treated cohorts} sum_{e != ref} b_{g,e} 1{G_i = g} 1{t - g = e}
           (+ x_it'c) + u_it,

one coefficient per cohort and relative period (all observed relative periods but the
reference ``ref``, default -1). Control units have every interaction 0. Under parallel
trends and no anticipation, ``b_{g,e}`` is the cohort-specific effect CATT(g, e)
relative to period ``g + ref``; it is not contaminated by other cohorts' effects,
unlike the TWFE event-study coefficients.

Step 2 (aggregation with cohort shares). The event-time effect is

    delta_e = sum_g w_{g,e} b_{g,e},   w_{g,e} = n_{g,e} / sum_{g'} n_{g',e},

with ``n_{g,e}`` the number of estimation-sample observations of cohort ``g`` at
relative period ``e`` (in a balanced panel: the cohort's number of units among the
cohorts observed at ``e``). The overall ATT (``simple``) averages the post-period
``b_{g,e}`` (e >= 0) with weights proportional to ``n_{g,e}``, i.e. over treated
observations; the cohort aggregation (``group``) averages each cohort's post-period
coefficients the same way.

Inference. ``V`` is the cluster-robust (CRV1) covariance of the ``b_{g,e}`` from
pyfixest, with the small-sample factor of :mod:`analysis.estimators.twfe`
(``G/(G-1) (N-1)/(N-K)``, fixed effects nested in clusters counted once). Aggregates
are linear, ``delta = w'b``, so ``se = sqrt(w' V w)`` (the delta method is exact for a
linear map). The shares ``w`` are treated as fixed: Sun & Abraham's variance adds a
term for the estimation of the shares, which this omits, as do fixest's ``sunab``
aggregation and pyfixest's ``SaturatedEventStudy.aggregate``. Intervals and p-values use
t(G-1), the study's convention (:mod:`analysis.inference.small_sample`;
``small_sample="asymptotic"`` divides pyfixest's factor out and uses the normal).

Controls. ``control="never"`` (default) uses never-treated units (cohort 0, or a
cohort after the last period). ``control="last"`` uses the last-treated cohort as the
control and drops every period from its adoption on; never-treated units, if any,
stay in as controls too. Always-treated units (cohort at or before the first period)
have no pre-period and are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.estimators.fixest import Indicators, feols
from analysis.estimators.inputs import prepare_panel
from analysis.inference.small_sample import DEFAULT as SMALL_SAMPLE
from analysis.inference.small_sample import check_rule, describe, intervals, regression_vcov, t_df
from analysis.results import DiDResult, make_tidy

__all__ = ["sun_abraham"]


def _name(gi: int, e: int) -> str:
    return f"sa{gi}_{'m' if e < 0 else 'p'}{abs(e)}"


def sun_abraham(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    control: str = "never",
    ref: int = -1,
    cluster: str | None = None,
    covariates: str | Sequence[str] | None = None,
    small_sample: str = SMALL_SAMPLE,
) -> DiDResult:
    """Estimate the Sun-Abraham interaction-weighted event study.

    Parameters
    ----------
    data : pandas.DataFrame
        Long unit x period panel. Not modified.
    outcome, unit, time, cohort : str
        Column names; ``cohort`` is the first treated period, 0 for never treated.
    control : {"never", "last"}, default "never"
        Control cohort: never-treated units, or the last-treated cohort (with the
        periods from its adoption on dropped).
    ref : int, default -1
        Reference relative period, omitted for every cohort.
    cluster : str, optional
        Cluster column; default ``unit``. The study clusters by township.
    covariates : str or sequence of str, optional
        Time-varying numeric controls (entered linearly, common slopes).
    small_sample : {"cr1_t", "asymptotic"}, default "cr1_t"
        Small-sample rule (:mod:`analysis.inference.small_sample`).

    Returns
    -------
    DiDResult
        Estimator ``"sa"``; control group ``"never"`` (``control="never"``) or
        ``"notyet"`` (``control="last"``: the last cohort is not yet treated in every
        kept period; ``options["control"]`` says ``"last"``). Rows:

        * ``event``: one per relative period, including ``ref`` (term
          ``"e=-1 (ref)"``, estimate 0, NaN SE);
        * ``simple``: the overall post-treatment ATT (term ``"ATT"``);
        * ``group``: one per treated cohort (term ``"g=2023"``);
        * ``att_gt``: every cohort x relative-period coefficient ``b_{g,e}`` (term
          ``"g=2023,t=2024"``, with cohort, year and event time).

        The result also holds the pyfixest fit (``fit``), the coefficient table with
        cell counts and shares (``cells``), the covariance of the ``b_{g,e}``
        (``vcov``) and of the event-time aggregates (``event_vcov``, for pre-trend
        tests and sensitivity analysis) and the small-sample record (``ssc``).

    Raises
    ------
    ValueError
        Bad columns or panel; no control units; a cohort with no observation at
        ``ref``; unknown ``control``.

    Notes
    -----
    **Assumptions.** Parallel trends between every treated cohort and the control
    cohort, no anticipation (before ``g + ref + 1``). Effects may differ arbitrarily
    across cohorts and over time. **Caveats.** Pre-period ``delta_e`` are placebo
    estimates relative to ``ref``; the p-values do not account for multiple testing;
    the shares are treated as known (see the module docstring).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"id": np.repeat(np.arange(60), 6), "t": np.tile(np.arange(1, 7), 60)})
    >>> df["g"] = np.select([df["id"] < 20, df["id"] < 40], [3, 5], 0)
    >>> e = df["t"] - df["g"]
    >>> df["y"] = df["id"] % 7 + np.where((df["g"] > 0) & (e >= 0), 1.0 + e, 0.0) + rng.normal(0, .01, 360)
    >>> res = sun_abraham(df, "y", "id", "t", "g")
    >>> res.tidy("event").set_index("event_time").loc[[0, 1, 2], "estimate"].round(1).tolist()
    [1.0, 2.0, 3.0]
    """
    if control not in ("never", "last"):
        raise ValueError(f"control must be 'never' or 'last', got {control!r}")
    check_rule(small_sample)
    if not isinstance(ref, int | np.integer) or isinstance(ref, bool):
        raise ValueError(f"ref must be an integer relative period, got {ref!r}")
    panel = prepare_panel(data, outcome, unit, time, cohort, cluster, covariates)
    df = panel.frame
    first = int(df["time"].min())
    always = (df["cohort"] > 0) & (df["cohort"] <= first)
    n_always = int(df.loc[always, "unit"].nunique())
    if always.any():  # (a boolean selection copies every column even when it keeps every row)
        df = df.loc[~always]
    cohorts = sorted(int(g) for g in df["cohort"].unique() if g > 0)
    control_cohort = None
    if control == "last":
        if not cohorts:
            raise ValueError("no treated cohort after the first period")
        control_cohort = cohorts[-1]
        df = df.loc[df["time"] < control_cohort]
        df.loc[df["cohort"] == control_cohort, "cohort"] = 0
        cohorts = cohorts[:-1]
    if not (df["cohort"] == 0).any():
        raise ValueError(
            "no control units: there are no never-treated units (cohort 0); use control='last' "
            "to use the last-treated cohort as control"
        )
    if not cohorts:
        raise ValueError("no treated cohort left to estimate (besides the control cohort)")
    df = df.copy(deep=False)  # copy-on-write: columns added here never touch the caller's frame
    e = (df["time"] - df["cohort"]).where(df["cohort"] > 0)
    df["e"] = e
    cells = (
        df.loc[df["cohort"] > 0, ["cohort", "e"]]
        .groupby(["cohort", "e"]).size().rename("n").reset_index()
        .astype({"cohort": "int64", "e": "int64"})
    )
    no_ref = sorted(set(cohorts) - set(cells.loc[cells["e"] == ref, "cohort"]))
    if no_ref:
        raise ValueError(f"cohort(s) {no_ref} have no observation at the reference period ref={ref}")
    cells = cells.loc[cells["e"] != ref].reset_index(drop=True)
    if cells.empty:
        raise ValueError(f"the treated cohorts are observed at the reference period ref={ref} only")
    gi = {g: i for i, g in enumerate(cohorts)}
    cells["name"] = [_name(gi[g], v) for g, v in zip(cells["cohort"], cells["e"], strict=True)]
    # each row is in at most one cohort x relative-period cell: the dummies are given by a code per row
    # (the lean engine at national size never makes them; pyfixest gets the 0/1 columns)
    in_cell = (df["cohort"] > 0).to_numpy() & (df["e"] != ref).to_numpy()
    g_arr = df["cohort"].to_numpy()[in_cell].astype(np.int64)
    e_arr = df["e"].to_numpy()[in_cell].astype(np.int64)
    e_min = int(cells["e"].min())
    span = int(cells["e"].max()) - e_min + 1
    cell_key = cells["cohort"].to_numpy(np.int64) * span + (cells["e"].to_numpy(np.int64) - e_min)
    order = np.argsort(cell_key)
    code = np.full(len(df), -1, dtype=np.int64)
    code[in_cell] = order[np.searchsorted(cell_key[order], g_arr * span + (e_arr - e_min))]
    fit = feols(df.drop(columns=["e"]), [], indicators=Indicators(code, tuple(cells["name"])))
    names = fit.names
    missing = [n for n in cells["name"] if n not in names]
    if missing:
        bad = cells.loc[cells["name"].isin(missing), ["cohort", "e"]].to_records(index=False).tolist()
        raise ValueError(f"cohort x relative-period cells {bad} are collinear with the fixed effects")
    idx = [names.index(n) for n in cells["name"]]
    beta = fit.coefficients.to_numpy()[idx]
    V = regression_vcov(fit.vcov, fit.ssc.factor, small_sample)[np.ix_(idx, idx)]
    df_t = t_df(fit.ssc.G, small_sample)
    cells["estimate"] = beta
    cells["std_error"] = np.sqrt(np.diag(V))
    cells["share"] = cells["n"] / cells.groupby("e")["n"].transform("sum")

    ssc = fit.ssc.as_dict()
    common = {
        "outcome": outcome, "estimator": "sa",
        "control_group": "never" if control == "never" else "notyet", "band": "pointwise",
        "n_obs": fit.n_obs, "n_units": int(fit.sample["unit"].nunique()), "n_clusters": fit.ssc.G,
    }
    rows: list[dict[str, Any]] = []

    def lincomb(w: np.ndarray) -> tuple[float, float]:
        return float(w @ beta), float(np.sqrt(w @ V @ w))

    def add(agg: str, term: str, est: float, se: float, **kw: Any) -> None:
        lo, hi, p = intervals(est, se, df=df_t)
        rows.append({**common, "aggregation": agg, "term": term, "estimate": est,
                     "std_error": se, "conf_low": float(lo), "conf_high": float(hi),
                     "p_value": float(p), **kw})

    event_times = sorted({*cells["e"].tolist(), ref})
    W_event = []
    for v in event_times:
        if v == ref:
            add("event", f"e={v} (ref)", 0.0, np.nan, event_time=v)
            continue
        w = np.where(cells["e"] == v, cells["share"], 0.0)
        W_event.append(w)
        add("event", f"e={v}", *lincomb(w), event_time=v)
    post = (cells["e"] >= 0).to_numpy()
    if post.any():
        w = np.where(post, cells["n"], 0.0)
        add("simple", "ATT", *lincomb(w / w.sum()))
        for g in cohorts:
            sel = post & (cells["cohort"] == g).to_numpy()
            if sel.any():
                w = np.where(sel, cells["n"], 0.0)
                add("group", f"g={g}", *lincomb(w / w.sum()), cohort=g)
    for r, b, s in zip(cells.itertuples(), beta, cells["std_error"], strict=True):
        add("att_gt", f"g={r.cohort},t={r.cohort + r.e}", float(b), float(s),
            cohort=r.cohort, year=r.cohort + r.e, event_time=r.e)

    est_e = [v for v in event_times if v != ref]
    W = np.vstack(W_event)
    event_vcov = pd.DataFrame(W @ V @ W.T, index=est_e, columns=est_e)
    vcov = pd.DataFrame(V, index=pd.MultiIndex.from_frame(cells[["cohort", "e"]]),
                        columns=pd.MultiIndex.from_frame(cells[["cohort", "e"]]))
    options = {
        **panel.base_options(), "control": control, "control_cohort": control_cohort,
        "ref": int(ref), "n_always_treated_units_dropped": n_always,
        "weights_for_aggregation": "cohort shares n_{g,e}/sum_g n_{g,e}, treated as fixed",
        "engine": fit.engine, "ssc": ssc, "small_sample": small_sample, "t_df": df_t,
        "inference": describe(fit.ssc.G, small_sample, regression=True),
    }
    return DiDResult(make_tidy(rows), "sa", outcome, options, fit=fit.model, cells=cells.drop(columns=["name"]),
                     vcov=vcov, event_vcov=event_vcov, ssc=fit.ssc)
