"""One entry point for every estimator: ``estimate(panel, outcome, estimator, ...)``.

Used by ``study estimate`` and the notebooks. It maps the study's vocabulary (control
group ``never``/``notyet``, clustering ``township``/``county``/``village``, canonical
covariate names) onto the estimators' arguments, and returns one :class:`DiDResult`
whose tidy table holds the overall effect and the event study. :func:`output_rows` gives the
rows the command writes: the tidy rows, tests in their own columns, and the window.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.core.panel import Window, covariate_columns, covariate_year_interactions
from analysis.core.spec import HEADLINE, Spec
from analysis.data import schema
from analysis.results import DiDResult, make_tidy


def _combine(parts: list[DiDResult], estimator: str, outcome: str, options: dict) -> DiDResult:
    table = make_tidy(pd.concat([p.tidy() for p in parts], ignore_index=True))
    return DiDResult(table=table, estimator=estimator, outcome=outcome, options=options, parts=tuple(parts))


def estimate(
    panel: pd.DataFrame,
    outcome: str,
    estimator: str = "cs",
    control_group: str = "notyet",
    covariates: Sequence[str] = (),
    cluster: str = "township",
    by: str | None = None,
    bootstrap: int = 0,
    seed: int | None = None,
    anticipation: int = HEADLINE.anticipation,
) -> DiDResult:
    """Estimate the effect of a first secretary on one outcome.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel from :func:`analysis.core.panel.load_analysis_panel`.
    outcome : str
        Canonical outcome name.
    estimator : {"cs", "twfe", "sa", "bjs", "ppml"}
        Callaway-Sant'Anna (doubly robust with covariates, else unconditional), TWFE
        (static and event study), Sun-Abraham, Borusyak-Jaravel-Spiess imputation, or
        Poisson (extended TWFE) for counts.
    control_group : {"never", "notyet"}
        Comparison villages for Callaway-Sant'Anna. Sun-Abraham always uses the
        never-treated villages; TWFE and imputation use every untreated observation.
    covariates : sequence of str
        Canonical covariates, used at their baseline value: as covariates of the
        propensity score and outcome regression (Callaway-Sant'Anna), and as
        covariate-by-year terms in the estimators with unit fixed effects.
    cluster : {"township", "county", "village"}
        Clustering level of standard errors.
    by : str, optional
        A column (e.g. ``cadre_type``) for effects by subgroup with a test of equality
        (Callaway-Sant'Anna only).
    bootstrap : int, default 0
        Multiplier-bootstrap draws (Callaway-Sant'Anna; 0 = analytic standard errors).
    seed : int, optional
        Seed of the bootstrap.
    anticipation : int, default ``HEADLINE.anticipation`` (1)
        Years before the cohort year left out of Callaway-Sant'Anna's comparisons (the
        arrival year, :mod:`analysis.core.spec`); 0 uses the six-month coding alone. The other
        estimators, and effects by subgroup (``by``, as notebook 04), have no such option and
        ignore it.

    Returns
    -------
    DiDResult
        Tidy rows: the overall effect (``simple`` or ``coef``) and the event study;
        ``parts`` holds the estimators' own results they come from.

    Raises
    ------
    ValueError
        For an unknown outcome, estimator, control group, covariate or cluster level,
        and whatever the estimator rejects (no never-treated villages, no variation in
        a covariate, overlap failure), with a message naming it.
    """
    if outcome not in panel.columns:
        raise ValueError(f"outcome {outcome!r} is not in the data; choose from {', '.join(schema.OUTCOMES)}")
    spec = Spec(estimator, control_group, tuple(covariates), cluster, anticipation)  # checks every choice
    data, covs = covariate_columns(panel, list(spec.covariates))
    options = {"control_group": control_group, "covariates": list(covariates), "cluster": cluster,
               "bootstrap": bootstrap, "seed": seed, "by": by}
    if estimator == "cs" and by is None:
        options["anticipation"] = spec.anticipation
    common = spec.columns
    if by is not None:
        if estimator != "cs":
            raise ValueError("--by is available with the Callaway-Sant'Anna estimator ('cs') only")
        from analysis.estimators.heterogeneity import by_group

        # Effects by subgroup keep the six-month coding (anticipation 0), as notebook 04 does.
        return by_group(data, outcome, by=by, covariates=covs or None, control_group=control_group, **common)
    if estimator == "cs":
        from analysis.estimators.callaway_santanna import aggregate, att_gt

        # doubly robust; without covariates it is the unconditional 2x2 DiD
        r = att_gt(data, outcome, **spec.cs_arguments(covs), bootstrap=bootstrap, seed=seed)
        parts = [aggregate(r, "simple"), aggregate(r, "event", bootstrap=bootstrap, seed=seed)]
        return _combine(parts, "cs", outcome, {**options, "method": spec.METHOD})
    # Regression estimators with unit fixed effects absorb baseline covariates; conditional
    # parallel trends enter as covariate-by-year terms instead.
    data, trend_covs = covariate_year_interactions(data, covs)
    if estimator == "twfe":
        from analysis.estimators.twfe import twfe, twfe_event_study

        parts = [twfe(data, outcome, covariates=trend_covs or None, **common),
                 twfe_event_study(data, outcome, covariates=trend_covs or None, **common)]
        return _combine(parts, "twfe", outcome, options)
    if estimator == "sa":
        from analysis.estimators.sun_abraham import sun_abraham

        # Sun-Abraham's alternative control, the last-treated cohort, drops that cohort from the
        # estimand (with two cohorts only the first would remain), so never-treated villages are used.
        r = sun_abraham(data, outcome, control="never", covariates=trend_covs or None, **common)
        return _combine([r], "sa", outcome, {**options, "control_group": "never"})
    if estimator == "bjs":
        from analysis.estimators.imputation import imputation

        r = imputation(data, outcome, covariates=trend_covs or None, **common)
        return _combine([r], "bjs", outcome, options)
    from analysis.estimators.poisson import ppml

    # ppml interacts baseline covariates with the year and cell dummies itself.
    r = ppml(data, outcome, covariates=covs or None, event_study=False, **common)
    return _combine([r], "ppml", outcome, options)


def output_rows(result: DiDResult, window: Window | None = None, min_months: float | None = None) -> pd.DataFrame:
    """Return the rows ``study estimate`` writes as CSV or JSON: every estimate, every test, the window.

    Parameters
    ----------
    result : DiDResult
        From :func:`estimate`.
    window : analysis.core.panel.Window, optional
        The analysis window the panel was loaded with (added as ``first_year`` and ``last_year``).
    min_months : float, optional
        The exposure rule the panel was loaded with.

    Returns
    -------
    pandas.DataFrame
        The tidy rows (:data:`analysis.results.TIDY_COLUMNS`, each with its p-value), then the
        columns ``statistic`` and ``df``, filled only on test rows (aggregation ending in
        ``_test``, e.g. ``equality_test``): a test row holds its statistic, degrees of freedom and
        p-value and leaves ``estimate`` empty, so no column mixes estimates with test statistics.
        Then ``first_year``, ``last_year`` and ``min_months`` when given.
    """
    t = result.tidy()
    is_test = t["aggregation"].astype(str).str.endswith("_test")
    t["statistic"] = t["estimate"].where(is_test)
    t.loc[is_test, "estimate"] = float("nan")
    t.loc[is_test, "band"] = None
    df = pd.Series(pd.NA, index=t.index, dtype="Int64")
    if result.equality_test is not None:
        df[t["aggregation"] == "equality_test"] = int(result.equality_test.df)
    t["df"] = df
    if window is not None:
        t["first_year"], t["last_year"] = window.first_year, window.last_year
    if min_months is not None:
        t["min_months"] = float(min_months)
    return t
