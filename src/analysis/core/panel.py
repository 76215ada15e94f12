"""From the store to the analysis frame: panel + treatment timing + covariate design.

Notebooks and the ``study estimate`` command go through :func:`load_analysis_panel`, so
every estimate starts from the same frame: the canonical panel of the chosen years,
the cohort and cadre type derived from the postings by the documented rule
(:mod:`analysis.core.treatment`), and baseline covariates expanded to numeric columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis.core.spec import TIME, UNIT, check_covariates
from analysis.core.treatment import attach_treatment, derive_treatment
from analysis.data import schema


def load_analysis_panel(store: Path, first_year: int, last_year: int, min_months: float = 6.0) -> pd.DataFrame:
    """Read the panel and postings from the store and attach treatment timing.

    Parameters
    ----------
    store : pathlib.Path
        DuckDB store (opened read-only).
    first_year, last_year : int
        Analysis window.
    min_months : float, default 6
        Exposure rule of :func:`analysis.core.treatment.derive_treatment`.

    Returns
    -------
    pandas.DataFrame
        Panel with ``cohort``, ``cadre_type``, ``batch``, ``event_time`` and ``treated``.
        Optional columns the store holds as missing are NaN (numbers, as ``float64``) or
        missing text (:func:`analysis.data.schema.plain_dtypes`); complete integer columns
        are ``int64``.
    """
    from analysis.data import store as db

    panel = schema.plain_dtypes(db.read_panel(store, years=range(first_year, last_year + 1)))
    if panel.empty:
        raise ValueError(f"the store {store} has no panel rows for {first_year}-{last_year}")
    postings = db.read_postings(store)
    treatment = derive_treatment(postings, first_year, last_year, min_months=min_months)
    return attach_treatment(panel, treatment)


def covariate_columns(panel: pd.DataFrame, covariates: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Expand covariates into numeric columns measured at the first year of the panel.

    Categorical covariates (``terrain``) become 0/1 indicators, dropping the first level.
    Every covariate is taken at the village's first observed year (its baseline), so a
    covariate that the programme could affect does not become a bad control.

    Parameters
    ----------
    panel : pandas.DataFrame
        Analysis panel.
    covariates : sequence of str
        Canonical covariate names.

    Returns
    -------
    (pandas.DataFrame, list of str)
        A copy of the panel with the added columns ``base_<name>`` (or
        ``base_<name>_<level>``), and their names.

    Raises
    ------
    ValueError
        For a name that is not a canonical covariate.
    """
    covariates = check_covariates(covariates)
    out = panel.copy()
    if not covariates:
        return out, []
    base = out.sort_values(TIME, kind="mergesort").drop_duplicates(UNIT)[[UNIT, *covariates]].set_index(UNIT)
    names: list[str] = []
    levels = {c.name: c.levels for c in schema.PANEL_COLUMNS if c.kind == "category"}
    for c in covariates:
        values = base[c]
        if values.nunique(dropna=True) < 2:
            raise ValueError(
                f"covariate {c!r} has no variation across villages (every value is {values.iloc[0]!r}); "
                "remove it from the covariates"
            )
        if c in levels:
            present = [lev for lev in levels[c] if (values == lev).any()]
            for lev in present[1:]:
                name = f"base_{c}_{lev}"
                out[name] = out[UNIT].map((values == lev).astype(float))
                names.append(name)
        else:
            name = f"base_{c}"
            out[name] = out[UNIT].map(pd.to_numeric(values, errors="coerce").astype(float))
            names.append(name)
    return out, names


def covariate_year_interactions(data: pd.DataFrame, names: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Interact baseline covariates with year indicators (covariate-specific year effects).

    Regression estimators with unit fixed effects (TWFE, Sun-Abraham, imputation) absorb a
    time-invariant covariate entirely; conditional parallel trends then enter as
    covariate-by-year terms, which is what this builds (the first year is the reference).

    Parameters
    ----------
    data : pandas.DataFrame
        Panel with the columns ``names`` (from :func:`covariate_columns`).
    names : sequence of str
        Numeric baseline covariate columns.

    Returns
    -------
    (pandas.DataFrame, list of str)
        A copy with the added ``<name>_x<year>`` columns, and their names.
    """
    out = data.copy()
    years = sorted(out[TIME].unique())
    cols: list[str] = []
    new = {}
    for c in names:
        for y in years[1:]:
            n = f"{c}_x{y}"
            new[n] = out[c].to_numpy() * (out[TIME].to_numpy() == y)
            cols.append(n)
    if new:
        out = pd.concat([out, pd.DataFrame(new, index=out.index)], axis=1)
    return out, cols
