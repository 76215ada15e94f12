"""From the store to the analysis frame: the window, panel + treatment timing, covariate design.

Notebooks and the ``study estimate`` command go through :func:`load_analysis_panel`, so
every estimate starts from the same frame: the canonical panel of the chosen years,
the cohort and cadre type derived from the postings by the documented rule
(:mod:`analysis.core.treatment`), and baseline covariates expanded to numeric columns.

Only what an analysis needs is required: the identification keys and at least one outcome.
An outcome or covariate no file supplied (a column with no value) is left out where it would be
used (:func:`present_columns`), and every notebook says what is missing and what that rules
out (:func:`missing_data_notes`).

The analysis window follows the data: unless a first or last year is given, it runs from
the first to the last year the store holds (:func:`resolve_window`), so a newly ingested
year enters the estimates without a flag. A year the store does not hold is refused with
a message naming the years it does hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core.params import ParameterError
from analysis.core.spec import TIME, UNIT, check_covariates
from analysis.core.treatment import attach_treatment, derive_treatment
from analysis.data import schema


def format_years(years: Sequence[int]) -> str:
    """Write a set of years compactly: runs of consecutive years as ``first-last``.

    Parameters
    ----------
    years : sequence of int
        Years, in any order.

    Returns
    -------
    str
        E.g. ``"2018-2024"`` or ``"2016-2018, 2020-2024"``; ``"none"`` if empty.

    Examples
    --------
    >>> format_years([2020, 2016, 2017, 2018, 2021])
    '2016-2018, 2020-2021'
    """
    ys = sorted({int(y) for y in years})
    if not ys:
        return "none"
    runs: list[list[int]] = [[ys[0], ys[0]]]
    for y in ys[1:]:
        if y == runs[-1][1] + 1:
            runs[-1][1] = y
        else:
            runs.append([y, y])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


@dataclass(frozen=True)
class Window:
    """The analysis window and where it comes from.

    Attributes
    ----------
    first_year, last_year : int
        The window (both years included).
    store_years : tuple of int
        Every panel year the store holds.
    narrowed : bool
        Whether a first or last year was given that narrows the window to less than the
        store's years (False: the window is every year the store holds).
    """

    first_year: int
    last_year: int
    store_years: tuple[int, ...]
    narrowed: bool

    def describe(self) -> str:
        """Say in one sentence which years are analysed and why.

        Returns
        -------
        str
            E.g. ``"Analysis window 2018-2024: every year the store holds."``.
        """
        held = format_years(self.store_years)
        if not self.narrowed:
            return f"Analysis window {self.first_year}-{self.last_year}: every year the store holds."
        return (f"Analysis window {self.first_year}-{self.last_year}, narrowed by the parameters "
                f"(the store holds {held}).")

    def record(self) -> dict[str, object]:
        """Return the window as a ``results.json`` record.

        Returns
        -------
        dict
            ``first_year``, ``last_year``, ``store_years`` (list) and ``source``
            (``"store"``: every year the store holds; ``"parameters"``: narrowed).
        """
        return {"first_year": self.first_year, "last_year": self.last_year, "store_years": list(self.store_years),
                "source": "parameters" if self.narrowed else "store"}


def resolve_window(store: Path, first_year: int | None = None, last_year: int | None = None) -> Window:
    """Resolve the analysis window against the years the store holds.

    Parameters
    ----------
    store : pathlib.Path
        DuckDB store (opened read-only).
    first_year, last_year : int, optional
        Narrow the window; ``None`` (the default) takes the store's first or last year.

    Returns
    -------
    Window
        The window and the store's years.

    Raises
    ------
    analysis.core.params.ParameterError
        If the store holds no panel year, a given year is not one the store holds (the
        message names the years it holds), or the first year is after the last.

    Examples
    --------
    >>> resolve_window("data/study.duckdb").describe()  # doctest: +SKIP
    'Analysis window 2018-2024: every year the store holds.'
    """
    from analysis.data import store as db

    stored = db.summary(store)["panel_years"]
    years = tuple(sorted(int(y) for y in stored)) if isinstance(stored, list | tuple) else ()
    if not years:
        raise ParameterError(f"the store {store} holds no panel year: ingest a panel file first (study ingest FILE)")
    for name, year in (("first_year", first_year), ("last_year", last_year)):
        if year is not None and int(year) not in years:
            raise ParameterError(
                f"{name} = {year} is outside the data: the store {store} holds the years {format_years(years)}. "
                f"Choose one of them, or leave {name} out to use every year the store holds."
            )
    first = years[0] if first_year is None else int(first_year)
    last = years[-1] if last_year is None else int(last_year)
    if first > last:
        raise ParameterError(f"first_year = {first} is after last_year = {last}")
    return Window(first, last, years, narrowed=(first, last) != (years[0], years[-1]))


def load_analysis_panel(
    store: Path, first_year: int | None = None, last_year: int | None = None, min_months: float = 6.0
) -> pd.DataFrame:
    """Read the panel and postings from the store and attach treatment timing.

    Parameters
    ----------
    store : pathlib.Path
        DuckDB store (opened read-only).
    first_year, last_year : int, optional
        Analysis window; by default the store's first and last year (:func:`resolve_window`,
        which also refuses a year the store does not hold).
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

    window = resolve_window(store, first_year, last_year)
    first_year, last_year = window.first_year, window.last_year
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
    out = panel.copy(deep=False)  # columns are added, never written (copy-on-write)
    if not covariates:
        return out, []
    # each village's row in its first observed year, found from integer codes of the villages (a lookup of
    # the village codes in an index of them made 4.5 million Python strings at national size, 0.5 GB), and
    # each row's village, found once for every covariate
    unit = pd.factorize(out[UNIT], use_na_sentinel=False)[0]
    order = np.argsort(out[TIME].to_numpy(), kind="stable")
    first_row = order[np.unique(unit[order], return_index=True)[1]]  # by village code
    names: list[str] = []
    levels = {c.name: c.levels for c in schema.PANEL_COLUMNS if c.kind == "category"}
    for c in covariates:
        values = out[c].iloc[first_row]
        if values.nunique(dropna=True) < 2:
            raise ValueError(
                f"covariate {c!r} has no variation across villages (every value is {values.iloc[0]!r}); "
                "remove it from the covariates"
            )
        if c in levels:
            present = [lev for lev in levels[c] if (values == lev).any()]
            for lev in present[1:]:
                name = f"base_{c}_{lev}"
                out[name] = (values == lev).astype(float).to_numpy()[unit]
                names.append(name)
        else:
            name = f"base_{c}"
            out[name] = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()[unit]
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
    out = data.copy(deep=False)
    years = sorted(out[TIME].unique())
    cols = [f"{c}_x{y}" for c in names for y in years[1:]]
    if not cols:
        return out, cols
    # one (columns x rows) block filled in place: the frame is built on it without a copy, so the
    # interactions (1.4 GB at national size) are held once, not twice while the frame is made
    block = np.empty((len(cols), len(out)))
    time_values = out[TIME].to_numpy()
    i = 0
    for c in names:
        x = out[c].to_numpy()
        for y in years[1:]:
            np.multiply(x, time_values == y, out=block[i])
            i += 1
    new = pd.DataFrame(block.T, index=out.index, columns=cols, copy=False)
    return pd.concat([out, new], axis=1), cols


def present_columns(panel: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """Keep the names that are columns of the panel holding at least one value.

    A store always has every canonical column; an outcome or covariate that no file
    supplied is a column with no value at all, which the analysis treats as absent.

    Parameters
    ----------
    panel : pandas.DataFrame
        The analysis panel.
    names : sequence of str
        Column names.

    Returns
    -------
    list of str
        Those present, in the order given.
    """
    return [n for n in names if n in panel.columns and bool(panel[n].notna().any())]


def absent_columns(panel: pd.DataFrame) -> list[str]:
    """List the canonical outcomes and covariates the panel does not hold (absent or empty).

    Parameters
    ----------
    panel : pandas.DataFrame
        The analysis panel.

    Returns
    -------
    list of str
        Outcomes, then covariates, in the data dictionary's order.
    """
    wanted = [*schema.OUTCOMES, *schema.COVARIATES]
    kept = set(present_columns(panel, wanted))
    return [c for c in wanted if c not in kept]


_BALANCE_ONLY = {
    "population": "whether first secretaries went to larger or smaller villages",
    "party_members": "whether first secretaries went to villages with smaller party branches",
    "share_members_over60": "whether first secretaries went to villages with older party members",
}


def missing_data_notes(panel: pd.DataFrame, covariates: Sequence[str] = ()) -> list[str]:
    """Say which outcomes and covariates the data lack, and what that rules out, one line each.

    Parameters
    ----------
    panel : pandas.DataFrame
        The analysis panel.
    covariates : sequence of str, optional
        The covariates the analysis asked for (conditional parallel trends).

    Returns
    -------
    list of str
        Empty when every canonical outcome and covariate is present.

    Examples
    --------
    >>> import pandas as pd
    >>> notes = missing_data_notes(pd.DataFrame({"income_per_capita": [1.0]}), ["distance_km"])
    >>> notes[0].startswith("Not in the data: collective_income")
    True
    """
    labels = {c.name: c.label_zh for c in schema.PANEL_COLUMNS}
    family = {o: f for f, os_ in schema.OUTCOME_FAMILIES.items() for o in os_}
    absent = absent_columns(panel)
    kept_covariates = [c for c in covariates if c not in absent]
    lines = []
    for c in absent:
        if c in schema.OUTCOMES:
            others = [o for o in schema.OUTCOME_FAMILIES.get(family.get(c, ""), ()) if o not in absent]
            why = (f"no effect on it is estimated; the {family[c]} family is tested on {', '.join(others)}" if others
                   else f"no effect on it is estimated, and the {family.get(c, '')} family has no outcome left")
        elif c in covariates:
            why = ("the conditional parallel-trends assumption cannot adjust for it: the estimates adjust for "
                   f"{', '.join(kept_covariates) or 'no covariate'} only")
        elif c in _BALANCE_ONLY:
            why = f"no estimate uses it; the targeting checks cannot show {_BALANCE_ONLY[c]}"
        else:
            why = "no estimate of this run uses it; it cannot be used as a covariate"
        lines.append(f"Not in the data: {c} ({labels.get(c, c)}): {why}.")
    return lines
