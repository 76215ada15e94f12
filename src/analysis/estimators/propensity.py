"""Village-level selection: who was assigned a first secretary, and the propensity of it.

The programme chose villages on purpose (weak economic base, many disputes, poor public
order), so several parts of the study need the same village-level view of the assignment:
the targeting stage describes it (notebook ``01_targeting``), and randomisation inference
permutes cohorts only among villages with a similar propensity of selection
(:func:`analysis.inference.randomisation.propensity_strata`). This module holds that view once:

* :func:`village_groups`: one row per village with its codes, cohort, ever-treated flag,
  cadre group and pilot flag;
* :func:`baseline_year`, :func:`baseline_values`, :func:`village_covariates`: baseline-year
  values, one row per village;
* :func:`propensity_design` and :func:`fit_propensity`: a logit of ever-treated (within the
  window) on baseline covariates and baseline outcomes (statsmodels), returning a
  :class:`PropensityModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from analysis.core.panel import covariate_columns
from analysis.core.spec import COHORT, DEFAULT_COVARIATES, TIME, UNIT, check_covariates, check_outcomes
from analysis.core.treatment import pilot_counties
from analysis.data import schema

PROPENSITY_OUTCOMES: tuple[str, ...] = ("income_per_capita", "disputes", "criminal_cases")
"""Baseline outcomes entering the propensity model besides the covariates (the report's
targeting criteria: a weak economic base, many disputes, poor public order). Income enters
as ``log(1 + income)``, the counts as they are."""

NEVER = "never"
"""Group label of the never-treated villages."""


def check_assignment(panel: pd.DataFrame) -> None:
    """Check that the panel has the columns of the assignment and both treated and never-treated villages.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel (:func:`analysis.core.panel.load_analysis_panel`).

    Raises
    ------
    ValueError
        If a column is missing, or no village (or every village) is treated in the window.
    """
    need = [UNIT, TIME, COHORT, "cadre_type", "township_code", "county_code"]
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise ValueError(
            f"the panel lacks column(s) {', '.join(missing)}: load it with analysis.core.panel.load_analysis_panel"
        )
    if not (panel[COHORT] > 0).any():
        raise ValueError("no village is treated in the window: there is no selection to describe")
    if not (panel[COHORT] == 0).any():
        raise ValueError("every village is treated in the window: there are no never-treated villages to compare")


def baseline_year(panel: pd.DataFrame) -> int:
    """Return the baseline year: the first year of the panel.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel.

    Returns
    -------
    int
        The first year.
    """
    return int(panel[TIME].min())


def village_groups(panel: pd.DataFrame) -> pd.DataFrame:
    """One row per village: codes, cohort, ever-treated flag, cadre group and pilot flag.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel.

    Returns
    -------
    pandas.DataFrame
        ``village_code, township_code, county_code, cohort, ever_treated`` (0/1),
        ``group`` (the cadre type, or ``"never"``) and ``pilot`` (0/1, village in a
        pilot county, see :func:`analysis.core.treatment.pilot_counties`), sorted by village.
    """
    check_assignment(panel)
    v = (
        panel.sort_values([UNIT, TIME], kind="mergesort")
        .drop_duplicates(UNIT)[[UNIT, "township_code", "county_code", COHORT, "cadre_type"]]
        .reset_index(drop=True)
    )
    v["ever_treated"] = (v[COHORT] > 0).astype("int64")
    v["group"] = np.where(v[COHORT] > 0, v["cadre_type"].astype(str), NEVER)
    v["pilot"] = v["county_code"].isin(pilot_counties(panel)).astype("int64")
    return v.drop(columns="cadre_type")


def baseline_values(panel: pd.DataFrame, variables: Sequence[str]) -> pd.DataFrame:
    """Numeric values of ``variables`` in the baseline year, one row per village (terrain expanded)."""
    year = baseline_year(panel)
    b = panel.loc[panel[TIME] == year, [UNIT, *variables]].drop_duplicates(UNIT).set_index(UNIT)
    out = {}
    for c in variables:
        if c == "terrain":
            for lev in schema.TERRAIN_LEVELS:
                out[f"terrain_{lev}"] = (b[c] == lev).astype(float).where(b[c].notna())
        else:
            out[c] = pd.to_numeric(b[c], errors="coerce").astype(float)
    return pd.DataFrame(out, index=b.index)


def village_covariates(panel: pd.DataFrame, covariates: list[str], index: pd.Index) -> tuple[pd.DataFrame, list[str]]:
    """Return the expanded covariates (terrain as indicators) of each village, aligned on ``index``.

    Parameters
    ----------
    panel : pandas.DataFrame
        Panel rows to read (for example the baseline year only).
    covariates : list of str
        Canonical covariates (:func:`analysis.core.panel.covariate_columns`).
    index : pandas.Index
        Village codes of the rows returned.

    Returns
    -------
    (pandas.DataFrame, list of str)
        The covariate columns and their names.
    """
    if not covariates:
        return pd.DataFrame(index=index), []
    d, names = covariate_columns(panel[[UNIT, TIME, *covariates]], covariates)
    base = d.drop_duplicates(UNIT).set_index(UNIT)[names].reindex(index)
    return base, names


@dataclass
class PropensityModel:
    """A fitted logit of ever-treated on baseline covariates and outcomes.

    Attributes
    ----------
    coefficients : pandas.DataFrame
        ``term, estimate, std_error, z, p_value, conf_low, conf_high, odds_ratio``.
    scores : pandas.DataFrame
        One row per village used: ``village_code, township_code, county_code, cohort,
        group, ever_treated, pscore``.
    terms : list of str
        Regressors besides the intercept, in order.
    n_obs : int
        Villages in the fit.
    pseudo_r2 : float
        McFadden's pseudo R-squared.
    fit : object
        The statsmodels result (for further diagnostics).
    """

    coefficients: pd.DataFrame
    scores: pd.DataFrame
    terms: list[str]
    n_obs: int
    pseudo_r2: float
    fit: object = field(repr=False)


def propensity_design(
    panel: pd.DataFrame,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    outcomes: Sequence[str] = PROPENSITY_OUTCOMES,
) -> tuple[pd.DataFrame, pd.Series]:
    """Build the design of the propensity model: one row per village, baseline-year values.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel.
    covariates : sequence of str, default distance, terrain, industry
        Canonical covariates (expanded by :func:`analysis.core.panel.covariate_columns`:
        ``base_<name>``, terrain as indicators with ``plain`` the reference).
    outcomes : sequence of str, default income, disputes, criminal cases
        Baseline outcomes (``base_<name>``); ``income_per_capita`` enters as
        ``base_log_income_per_capita = log(1 + income)``.

    Returns
    -------
    (pandas.DataFrame, pandas.Series)
        Regressors with a ``const`` column first (index ``village_code``, villages with
        complete data only) and the ever-treated indicator.
    """
    covariates = check_covariates(covariates)
    outcomes = check_outcomes(panel, outcomes) if len(outcomes) else []
    v = village_groups(panel).set_index(UNIT)
    year = baseline_year(panel)
    base = panel[panel[TIME] == year]
    covs, names = village_covariates(base, covariates, v.index)
    X = pd.DataFrame({"const": 1.0}, index=v.index)
    X = X.join(covs[names])
    vals = baseline_values(panel, outcomes).reindex(v.index)
    for o in outcomes:
        if o == "income_per_capita":
            X["base_log_income_per_capita"] = np.log1p(vals[o].clip(lower=0))
        else:
            X[f"base_{o}"] = vals[o]
    keep = X.notna().all(axis=1)
    return X[keep], v.loc[keep, "ever_treated"].astype(float)


def fit_propensity(
    panel: pd.DataFrame,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    outcomes: Sequence[str] = PROPENSITY_OUTCOMES,
) -> PropensityModel:
    """Logit of ever-treated on baseline covariates and baseline outcomes (statsmodels).

    The propensity score is the fitted probability that a village got a first secretary
    within the window given its baseline traits. It describes selection; it is the
    same kind of model the doubly robust Callaway-Sant'Anna estimator fits (there by
    cohort, on the covariates only).

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel.
    covariates : sequence of str, default distance, terrain, industry
        Canonical covariates.
    outcomes : sequence of str, default income, disputes, criminal cases
        Baseline outcomes (see :func:`propensity_design`).

    Returns
    -------
    PropensityModel
        Coefficients (with odds ratios and 95% Wald intervals), scores, fit statistics.
    """
    X, y = propensity_design(panel, covariates, outcomes)
    fit = sm.Logit(y.to_numpy(), X.to_numpy(float)).fit(disp=0, maxiter=200)
    z = stats.norm.ppf(0.975)
    params, bse = np.asarray(fit.params), np.asarray(fit.bse)
    coef = pd.DataFrame({"term": list(X.columns), "estimate": params, "std_error": bse})
    coef["z"] = coef["estimate"] / coef["std_error"]
    coef["p_value"] = 2 * stats.norm.sf(coef["z"].abs())
    coef["conf_low"] = coef["estimate"] - z * coef["std_error"]
    coef["conf_high"] = coef["estimate"] + z * coef["std_error"]
    coef["odds_ratio"] = np.exp(coef["estimate"])
    v = village_groups(panel).set_index(UNIT).loc[X.index]
    scores = v[["township_code", "county_code", COHORT, "group", "ever_treated"]].copy()
    scores["pscore"] = np.asarray(fit.predict(X.to_numpy(float)))
    return PropensityModel(coefficients=coef, scores=scores.reset_index(), terms=list(X.columns[1:]),
                           n_obs=len(X), pseudo_r2=float(fit.prsquared), fit=fit)
