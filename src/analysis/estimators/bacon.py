"""Goodman-Bacon (2021) decomposition of the static TWFE DiD coefficient.

With a balanced panel, staggered absorbing treatment and no covariates, the TWFE
coefficient of :func:`analysis.estimators.twfe.twfe` is *exactly* a weighted average
of simple 2x2 DiD estimates, one for every pair of timing groups (cohorts):

* **treated vs never treated** (k vs U): cohort ``k`` against the never-treated units,
  over all periods;
* **earlier vs later treated** (k vs l, ``g_k < g_l``): the earlier cohort ``k``
  treated, the later cohort ``l`` as control, in the periods before ``l`` is treated;
* **later vs earlier treated** (l vs k): the later cohort ``l`` treated and the
  *already treated* cohort ``k`` as control, in the periods from ``g_k`` on. These are
  the "forbidden" comparisons: if ``k``'s effect changes over time, that change is
  subtracted from ``l``'s effect, which is how TWFE can be biased, even in sign.

Always-treated units (cohort at or before the first period) behave as a cohort with
``D = 1`` throughout: they appear only as the already-treated control in "later vs
earlier treated" comparisons. Units treated after the last period are never treated
within the window.

Formulas
--------
Periods ``t = 1..T``; ``n_k`` the share of units in group ``k``; ``Dbar_k`` the share of
periods group ``k`` is treated; ``ybar_k(W)`` the mean outcome of group ``k`` over the
periods in window ``W``; ``PRE(k) = {t < g_k}``, ``MID(k,l) = {g_k <= t < g_l}``,
``POST(l) = {t >= g_l}``. ``V^D`` is the variance of the two-way demeaned treatment
indicator, ``sum_it (D_it - Dbar_i - Dbar_t + Dbar)^2 / (N T)``. Goodman-Bacon (2021,
Theorem 1)::

    b_kU   = [ybar_k(POST(k)) - ybar_k(PRE(k))] - [ybar_U(POST(k)) - ybar_U(PRE(k))]
    b_kl^k = [ybar_k(MID) - ybar_k(PRE(k))]     - [ybar_l(MID) - ybar_l(PRE(k))]
    b_kl^l = [ybar_l(POST(l)) - ybar_l(MID)]    - [ybar_k(POST(l)) - ybar_k(MID)]

    s_kU   = (n_k + n_U)^2 n_kU (1 - n_kU) Dbar_k (1 - Dbar_k) / V^D
    s_kl^k = ((n_k + n_l)(1 - Dbar_l))^2 n_kl (1 - n_kl)
             * (Dbar_k - Dbar_l)/(1 - Dbar_l) * (1 - Dbar_k)/(1 - Dbar_l) / V^D
    s_kl^l = ((n_k + n_l) Dbar_k)^2 n_kl (1 - n_kl)
             * Dbar_l/Dbar_k * (Dbar_k - Dbar_l)/Dbar_k / V^D

with ``n_kU = n_k/(n_k + n_U)`` and ``n_kl = n_k/(n_k + n_l)``. The weights are
non-negative and sum to one, and ``sum s * b`` equals the TWFE coefficient (checked
to 1e-10 in the tests). Each weight grows with the size of the two groups and with
the variance of treatment in the pair's window, so cohorts treated in the middle of
the panel get the most weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.estimators.inputs import prepare_panel

__all__ = ["BaconDecomposition", "bacon_decomposition"]

TYPES = ("treated vs never treated", "earlier vs later treated", "later vs earlier treated")


@dataclass
class BaconDecomposition:
    """The 2x2 comparisons of a Goodman-Bacon decomposition.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per comparison with columns ``type`` (one of :data:`TYPES`),
        ``treated`` (cohort used as treated), ``control`` (cohort used as control,
        0 = never treated), ``estimate`` (the 2x2 DiD), ``weight``, ``n_treated`` and
        ``n_control`` (units), ``periods`` (first and last period of the window).
    total : float
        ``sum(weight * estimate)``, equal to the TWFE coefficient.
    twfe_estimate : float
        The TWFE coefficient computed directly (within transformation), as a check.
    outcome : str
        Outcome column.
    options : dict
        Column names and panel facts.
    """

    table: pd.DataFrame
    total: float
    twfe_estimate: float
    outcome: str
    options: dict[str, Any] = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        """Return a copy of the comparison table.

        Returns
        -------
        pandas.DataFrame
            See :attr:`table`.
        """
        return self.table.copy()

    def by_type(self) -> pd.DataFrame:
        """Summarise by comparison type: total weight and weighted mean estimate.

        Returns
        -------
        pandas.DataFrame
            Index ``type``; columns ``weight`` (sum of weights) and ``estimate``
            (weight-averaged 2x2 estimate within the type); types with no
            comparison are omitted.
        """
        t = self.table.assign(wb=self.table["weight"] * self.table["estimate"])
        g = t.groupby("type", sort=False)[["weight", "wb"]].sum()
        g["estimate"] = g["wb"] / g["weight"]
        return g[["weight", "estimate"]]

    def summary(self) -> str:
        """Return a plain-text summary by comparison type.

        Returns
        -------
        str
            Weight and weighted estimate per type, and the total.
        """
        lines = [f"Goodman-Bacon decomposition of TWFE for {self.outcome}"]
        for typ, r in self.by_type().iterrows():
            lines.append(f"  {typ:<26} weight {r['weight']:.4f}  estimate {r['estimate']:.4f}")
        lines.append(f"  {'total (= TWFE)':<26} {self.total:.6f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _mean_over(ybar: np.ndarray, mask: np.ndarray) -> float:
    return float(ybar[mask].mean())


def bacon_decomposition(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
) -> BaconDecomposition:
    """Decompose the static TWFE DiD coefficient into its 2x2 comparisons.

    Parameters
    ----------
    data : pandas.DataFrame
        Balanced long panel (every unit observed in every period, no missing
        outcome). Not modified.
    outcome, unit, time, cohort : str
        Column names; ``cohort`` is the first treated period, 0 for never treated.

    Returns
    -------
    BaconDecomposition
        The comparisons with their 2x2 estimates and weights, and the total, which
        equals the TWFE coefficient (see the module docstring for the formulas).

    Raises
    ------
    ValueError
        Bad columns (see :func:`analysis.estimators.inputs.prepare_panel`), an
        unbalanced panel or missing outcomes, or no variation in treatment timing.

    Notes
    -----
    The decomposition is exact only for the TWFE regression without covariates or
    weights on a balanced panel; that is the only case handled. The weights
    describe how TWFE combines comparisons, they are not a statement about which
    comparison is right. A large weight on "later vs earlier treated" comparisons
    is the warning sign: those estimates are biased whenever effects change with
    time since treatment.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"id": np.repeat(np.arange(30), 5), "t": np.tile(np.arange(5), 30)})
    >>> df["g"] = np.select([df["id"] < 10, df["id"] < 20], [2, 4], 0)
    >>> df["y"] = np.sin(df["id"] + df["t"]) + ((df["g"] > 0) & (df["t"] >= df["g"]))
    >>> dec = bacon_decomposition(df, "y", "id", "t", "g")
    >>> bool(abs(dec.table["weight"].sum() - 1) < 1e-12), bool(abs(dec.total - dec.twfe_estimate) < 1e-12)
    (True, True)
    """
    panel = prepare_panel(data, outcome, unit, time, cohort)
    df = panel.frame
    if panel.info["n_dropped_missing"]:
        raise ValueError(
            f"the Bacon decomposition needs a balanced panel: {panel.info['n_dropped_missing']} "
            f"row(s) have a missing {outcome!r}"
        )
    times = np.sort(df["time"].unique())
    n_t = len(times)
    n_units = df["unit"].nunique()
    if len(df) != n_units * n_t:
        per_unit = df.groupby("unit").size()
        raise ValueError(
            f"the Bacon decomposition needs a balanced panel: {int((per_unit < n_t).sum())} of "
            f"{n_units} units are not observed in all {n_t} periods"
        )
    first = int(times[0])
    # group = cohort; always-treated units (cohort <= first period) form one group, coded first.
    grp = np.where((df["cohort"] > 0) & (df["cohort"] <= first), first, df["cohort"])
    df = df.assign(grp=grp)
    unit_grp = df.groupby("unit")["grp"].first()
    counts = unit_grp.value_counts()
    n_share = counts / n_units
    ybar = df.pivot_table(index="grp", columns="time", values="y", aggfunc="mean").reindex(columns=times)
    dbar = {int(g): float(np.mean(times >= g)) if g > 0 else 0.0 for g in counts.index}

    D = df.pivot(index="unit", columns="time", values="D").reindex(columns=times).to_numpy(float)
    dt = D - D.mean(axis=1, keepdims=True) - D.mean(axis=0, keepdims=True) + D.mean()
    var_d = float((dt**2).mean())
    if var_d <= 1e-14:
        raise ValueError("treatment does not vary within units and periods: nothing to decompose")

    timing = sorted(g for g in dbar if g > 0)
    rows: list[dict[str, Any]] = []

    def add(typ, k, c, est, w, window):
        rows.append({
            "type": typ, "treated": k, "control": c, "estimate": est, "weight": w,
            "n_treated": int(counts[k]), "n_control": int(counts[c]),
            "periods": f"{int(window.min())}-{int(window.max())}",
        })

    if 0 in dbar:
        nu = n_share[0]
        yu = ybar.loc[0].to_numpy()
        for k in timing:
            if dbar[k] >= 1.0:
                continue  # always treated vs never treated: no variation in D
            nk = n_share[k]
            pre, post = times < k, times >= k
            yk = ybar.loc[k].to_numpy()
            est = (_mean_over(yk, post) - _mean_over(yk, pre)) - (_mean_over(yu, post) - _mean_over(yu, pre))
            nku = nk / (nk + nu)
            w = (nk + nu) ** 2 * nku * (1 - nku) * dbar[k] * (1 - dbar[k]) / var_d
            add(TYPES[0], k, 0, est, w, times)
    for i, k in enumerate(timing):
        for l_ in timing[i + 1:]:
            nk, nl, dk, dl = n_share[k], n_share[l_], dbar[k], dbar[l_]
            nkl = nk / (nk + nl)
            yk, yl = ybar.loc[k].to_numpy(), ybar.loc[l_].to_numpy()
            pre, mid, post = times < k, (times >= k) & (times < l_), times >= l_
            if dk < 1.0:
                est = (_mean_over(yk, mid) - _mean_over(yk, pre)) - (_mean_over(yl, mid) - _mean_over(yl, pre))
                w = (((nk + nl) * (1 - dl)) ** 2 * nkl * (1 - nkl)
                     * (dk - dl) / (1 - dl) * (1 - dk) / (1 - dl) / var_d)
                add(TYPES[1], k, l_, est, w, times[times < l_])
            est = (_mean_over(yl, post) - _mean_over(yl, mid)) - (_mean_over(yk, post) - _mean_over(yk, mid))
            w = ((nk + nl) * dk) ** 2 * nkl * (1 - nkl) * dl / dk * (dk - dl) / dk / var_d
            add(TYPES[2], l_, k, est, w, times[times >= k])

    table = pd.DataFrame(rows, columns=[
        "type", "treated", "control", "estimate", "weight", "n_treated", "n_control", "periods",
    ])
    table["treated"] = table["treated"].astype("Int64")
    table["control"] = table["control"].astype("Int64")
    total = float((table["weight"] * table["estimate"]).sum())

    # direct TWFE coefficient on the balanced panel: exact two-way demeaning
    Y = df.pivot(index="unit", columns="time", values="y").reindex(columns=times).to_numpy(float)
    twfe_est = float((dt * Y).sum() / (dt**2).sum())
    options = {
        "unit": unit, "time": time, "cohort": cohort, "n_units": int(n_units), "n_periods": int(n_t),
        "n_always_treated_units": int(counts.get(first, 0)) if first in timing else 0,
        "n_never_treated_units": int(counts.get(0, 0)),
        "weight_sum": float(table["weight"].sum()),
    }
    return BaconDecomposition(table, total, twfe_est, outcome, options)
