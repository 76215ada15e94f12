"""The event-study coefficients and covariance that sensitivity analyses take from a result.

:func:`event_study_inputs` reads the ``event`` rows of an event-study
:class:`~analysis.results.DiDResult` (Callaway-Sant'Anna ``aggregate(..., kind="event")``
with a universal base period, or the TWFE event study) with their covariance, and
returns them in event-time order without the reference period (and, by default,
without binned endpoints). :mod:`analysis.inference.honest` (Rambachan & Roth bounds)
and :mod:`analysis.inference.pretrends` (pre-trend power) both start from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.results import DiDResult

__all__ = ["EventStudyInputs", "event_study_inputs"]


@dataclass(frozen=True)
class EventStudyInputs:
    """Event-study coefficients and covariance, reference period excluded.

    Attributes
    ----------
    betahat : numpy.ndarray
        Coefficients in event-time order.
    sigma : numpy.ndarray
        Their covariance.
    event_times : numpy.ndarray
        Event times of ``betahat`` (float).
    reference : float
        The normalised reference period (``-1`` unless the result says otherwise).
    info : dict
        ``dropped`` (rows left out and why), ``reference_period``, ``estimator``,
        ``outcome`` and ``options`` of the result.
    """

    betahat: np.ndarray = field(repr=False)
    sigma: np.ndarray = field(repr=False)
    event_times: np.ndarray
    reference: float
    info: dict[str, Any] = field(default_factory=dict)


def event_study_inputs(result: DiDResult, drop_binned: bool = True) -> EventStudyInputs:
    """Return the event-study coefficients of a result and their covariance, ready for sensitivity analysis.

    Parameters
    ----------
    result : DiDResult
        ``callaway_santanna.aggregate(att_gt(..., base_period="universal"), kind="event")``
        or ``twfe.twfe_event_study(...)``: rows with aggregation ``"event"`` and a
        covariance (an array aligned with the table rows, or a frame indexed by event
        time). The reference period is the row with estimate 0 and no standard error
        (``-1`` if there is none); the overall row is ignored.
    drop_binned : bool, default True
        Drop binned endpoint coefficients (``"e<=-k"``, ``"e>=k"``): they pool several
        event times and break the consecutive-period structure.

    Returns
    -------
    EventStudyInputs
        Coefficients and covariance in event-time order, reference period excluded.

    Raises
    ------
    ValueError
        If ``result`` is not a DiDResult with event rows and a covariance, uses
        Callaway-Sant'Anna's ``base_period="varying"``, an event time is missing from the
        covariance, or the event times are not consecutive.
    """
    if not isinstance(result, DiDResult):
        raise ValueError(f"result must be a DiDResult, got {type(result).__name__}")
    table = result.table.reset_index(drop=True)
    if result.vcov is None:
        raise ValueError("result has no covariance (vcov); pass an event study from "
                         "callaway_santanna.aggregate(..., kind='event') or twfe_event_study()")
    if result.estimator == "cs" and result.options.get("base_period") == "varying":
        raise ValueError(
            "the Callaway-Sant'Anna event study uses base_period='varying', whose pre-period "
            "estimates are one-period placebo differences, not trends relative to a common "
            "reference; re-estimate att_gt(..., base_period='universal') for sensitivity analysis"
        )
    ev_mask = (table["aggregation"] == "event") & table["event_time"].notna()
    if not ev_mask.any():
        raise ValueError("result has no event-study rows (aggregation 'event' with an event time)")
    rows = table.loc[ev_mask].copy()
    rows["event_time"] = rows["event_time"].astype(float)
    se = pd.to_numeric(rows["std_error"], errors="coerce").to_numpy(float)
    est = pd.to_numeric(rows["estimate"], errors="coerce").to_numpy(float)
    is_ref = ~np.isfinite(se) & (est == 0)
    refs = rows.loc[is_ref, "event_time"].to_numpy()
    info: dict[str, Any] = {"dropped": []}
    if refs.size > 1:
        raise ValueError(f"more than one normalised reference period: {sorted(refs.tolist())}")
    ref = float(refs[0]) if refs.size else -1.0
    keep = ~is_ref
    dropped_coll = np.isnan(est) & keep
    if np.any(dropped_coll):
        info["dropped"] += [f"e={e:g} (not estimated)" for e in rows["event_time"][dropped_coll]]
        keep &= ~dropped_coll
    opts = result.options or {}
    if drop_binned:
        terms = rows["term"].astype(str)
        binned = terms.str.startswith("e<=") | terms.str.startswith("e>=")
        if binned.any():
            info["dropped"] += [f"{t} (binned endpoint)" for t in terms[binned & keep]]
            keep &= ~binned.to_numpy()
    sel = rows.loc[keep]
    times = sel["event_time"].to_numpy(float)
    order = np.argsort(times)
    times = times[order]
    b = sel["estimate"].to_numpy(float)[order]
    V = result.vcov
    if isinstance(V, pd.DataFrame):
        labels = [float(x) for x in V.index]
        pos = []
        for t in times:
            if t not in labels:
                raise ValueError(f"event time {t:g} is not in the result's vcov")
            pos.append(labels.index(t))
        S = V.to_numpy(float)[np.ix_(pos, pos)]
    else:
        Vm = np.asarray(V, dtype=float)
        if Vm.shape != (len(table), len(table)):
            raise ValueError(f"the result's vcov has shape {Vm.shape}, expected one row per "
                             f"table row ({len(table)})")
        pos = sel.index.to_numpy()[order]
        S = Vm[np.ix_(pos, pos)]
    all_t = np.sort(np.append(times, ref))
    if not np.allclose(np.diff(all_t), 1.0):
        raise ValueError(
            f"event times {all_t.tolist()} are not consecutive; sensitivity analysis needs "
            "equally spaced, consecutive periods (drop or re-estimate the missing ones)"
        )
    info.update({"reference_period": ref, "estimator": result.estimator,
                 "outcome": result.outcome, "options": opts})
    return EventStudyInputs(b, S, times, ref, info)
