"""The specification curve's summary: how much of the grid agrees with the headline.

For each outcome, over the points of the grid (:mod:`analysis.grid.specification`) that gave an
estimate: the headline's estimate, the median estimate, the range, the share of specifications
whose estimate has the headline's sign, the share whose 95% interval excludes zero, and the share
that does both (Simonsohn, Simmons & Nelson 2020, "Specification curve analysis", *Nature Human
Behaviour* 4: 1208-1214, descriptive part). These shares describe the grid; they are not a test:
the specifications are strongly dependent, so a share of significant specifications has no known
null distribution without resampling (the curve's joint test under the null is not implemented yet).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SUMMARY_COLUMNS", "curve_summary"]

SUMMARY_COLUMNS: tuple[str, ...] = ("outcome", "specifications", "estimated", "headline_estimate", "median",
                                    "min", "max", "share_same_sign", "share_significant",
                                    "share_significant_same_sign")
"""Columns of :func:`curve_summary`."""


def curve_summary(grid: pd.DataFrame) -> pd.DataFrame:
    """Summarise the specification curve of every outcome.

    Parameters
    ----------
    grid : pandas.DataFrame
        :func:`analysis.grid.specification.run_grid` output (not modified).

    Returns
    -------
    pandas.DataFrame
        One row per outcome (in the grid's order), :data:`SUMMARY_COLUMNS`. ``estimated``: points with an
        estimate (the shares are over them); ``share_same_sign``: estimates with the headline's sign
        (missing without a headline point); ``share_significant``: 95% intervals that exclude zero.

    Examples
    --------
    >>> g = pd.DataFrame({"outcome": "y", "headline": [True, False, False], "estimate": [2.0, 1.0, -1.0],
    ...                   "conf_low": [1.0, -1.0, -2.0], "conf_high": [3.0, 3.0, -0.5]})
    >>> s = curve_summary(g).iloc[0]
    >>> float(s["median"]), round(float(s["share_same_sign"]), 3), round(float(s["share_significant"]), 3)
    (1.0, 0.667, 0.667)
    """
    rows = []
    for outcome, g in grid.groupby("outcome", sort=False):
        ok = g[g["estimate"].notna()]
        head = g.loc[g["headline"].astype(bool), "estimate"]
        h = float(head.iloc[0]) if len(head) and pd.notna(head.iloc[0]) else np.nan
        est = ok["estimate"].to_numpy(float)
        sig = ((ok["conf_low"] > 0) | (ok["conf_high"] < 0)).to_numpy(bool)
        same = np.sign(est) == np.sign(h) if np.isfinite(h) and h != 0 else np.full(len(est), np.nan)
        n = len(ok)
        rows.append({"outcome": outcome, "specifications": len(g), "estimated": n, "headline_estimate": h,
                     "median": float(np.median(est)) if n else np.nan,
                     "min": float(est.min()) if n else np.nan, "max": float(est.max()) if n else np.nan,
                     "share_same_sign": float(np.mean(same)) if n and np.isfinite(h) and h != 0 else np.nan,
                     "share_significant": float(sig.mean()) if n else np.nan,
                     "share_significant_same_sign": float(np.mean(sig & (same == 1)))
                     if n and np.isfinite(h) and h != 0 else np.nan})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
