"""What a notebook shows of a table: the columns a reader needs, formatted for reading.

The tidy tables (``tables/*.csv``) keep every column at six significant digits; a notebook shows
:func:`readable_table` of them instead:

* the few columns a reader needs (:data:`VIEWS`; a table without a view shows all its columns);
* readable headings with units, from the label catalogue (:func:`analysis.report.tables.heading`);
* names translated (outcomes, families, groups, estimators: their labels);
* meaningful digits (:func:`format_number`): estimates to three significant digits (whole units
  from 100 on, thousands separated), p-values to three decimals and ``<0.001``, shares as
  percentages, counts as integers, years as they are;
* at most :data:`MAX_ROWS` rows, with a line saying where the rest is.

The result renders as an HTML table in a notebook and as aligned text elsewhere; both are
deterministic.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from analysis.data import schema
from analysis.i18n import check_lang, column_label, lookup, t
from analysis.report.tables import heading

MAX_ROWS = 40
"""Most rows shown; the full table is in ``tables/``."""

VIEWS: dict[str, tuple[str, ...]] = {
    "01_baseline_balance": ("variable", "group", "mean", "mean_reference", "difference", "std_diff"),
    "01_pilot_balance": ("variable", "group", "mean", "mean_reference", "difference", "std_diff"),
    "01_pretrend_gaps": ("outcome", "group", "comparison", "estimate", "std_error", "conf_low", "conf_high",
                         "p_value"),
    "01_pilot_gaps": ("outcome", "group", "comparison", "estimate", "std_error", "conf_low", "conf_high", "p_value"),
    "01_propensity_logit": ("term", "estimate", "odds_ratio", "p_value"),
    "01_propensity_overlap": ("group", "villages", "min", "median", "max", "share_outside_support"),
    "02_main_effects": ("family", "outcome", "estimate", "conf_low", "conf_high", "p_value", "rw_p", "effect_pct",
                        "twfe_estimate", "truth"),
    "02_romano_wolf": ("family", "outcome", "estimate", "p_unadjusted", "p_romano_wolf", "p_holm", "p_bonferroni"),
    "03_event_studies": ("outcome", "estimator", "event_time", "estimate", "conf_low", "conf_high", "band_low",
                         "band_high", "p_value"),
    "03_summary": ("outcome", "cs_pretest_p", "bjs_pretest_p", "cs_e0", "cs_e_last", "cs_simple", "twfe_static",
                   "forbidden_weight"),
    "03_bacon": ("outcome", "type", "treated", "control", "weight", "estimate", "contribution"),
    "04_cadre_type": ("outcome", "level", "estimate", "conf_low", "conf_high", "p_value", "equality_p", "pct_of_pre",
                      "truth"),
    "04_cohort": ("dimension", "outcome", "level", "batch", "estimate", "conf_low", "conf_high", "equality_p",
                  "truth"),
    "04_baseline_weakness": ("outcome", "level", "estimate", "conf_low", "conf_high", "p_value", "equality_p",
                             "pct_of_pre", "truth"),
    "04_contrasts": ("level", "outcome", "estimate_level", "estimate_others", "difference", "conf_low", "conf_high",
                     "p_value", "truth_difference"),
    "05_alternatives": ("outcome", "spec", "estimate", "conf_low", "conf_high", "p_value", "diff_vs_headline"),
    "05_pretrend_power": ("outcome", "slope_50", "slope_80", "avg_bias_80", "average_effect", "bias_share_80"),
    "05_wild_bootstrap": ("outcome", "estimate", "p_value", "conf_low", "conf_high", "crv1_conf_low",
                          "crv1_conf_high", "n_clusters"),
    "05_randomisation": ("outcome", "observed", "p_value", "B", "strata", "share_as_extreme"),
    "05_check_calibration": ("scenario", "check", "method", "outcome", "null_true", "replications", "rejection_rate",
                             "mc_se"),
    "05_spillover": ("outcome", "estimate", "conf_low", "conf_high", "p_value", "exposed_villages",
                     "comparison_villages"),
    "05_robustness_summary": ("outcome", "check", "estimate", "conf_low", "conf_high", "p_value", "meaning"),
    "06_estimates_vs_truth": ("outcome", "estimator", "estimate", "conf_low", "conf_high", "truth", "covered",
                              "bias", "relative_bias"),
    "06_monte_carlo": ("outcome", "estimator", "replications", "bias", "relative_bias", "rmse", "coverage"),
    "07_specification_curve": ("outcome", "rank", "estimator", "control_group", "covariates", "anticipation",
                               "min_months", "window", "headline", "estimate", "conf_low", "conf_high"),
    "07_curve_summary": ("outcome", "estimated", "headline_estimate", "median", "share_same_sign",
                         "share_significant", "share_significant_same_sign", "null_draws", "p_median",
                         "p_share_significant"),
}
"""Table name -> the columns a notebook shows (those the table has, in this order)."""

P_VALUES = frozenset({"p_value", "p_boot", "rw_p", "p_unadjusted", "p_romano_wolf", "p_holm", "p_bonferroni",
                      "twfe_p_value", "crv1_p_value", "equality_p", "cs_pretest_p", "bjs_pretest_p", "p_median",
                      "p_share_significant"})
SHARES = frozenset({"share_complete", "share_missing", "share_zero", "share_treated", "share_below_low",
                    "share_above_high", "share_outside_support", "share_as_extreme", "weight", "forbidden_weight",
                    "coverage", "coverage_mc_se", "relative_bias", "bias_share_80", "treated_share", "share_same_sign",
                    "share_significant", "share_significant_same_sign"})
"""Fractions shown as percentages."""
PERCENTS = frozenset({"effect_pct", "effect_pct_low", "effect_pct_high", "twfe_pct", "truth_pct", "ppml_pct",
                      "ppml_pct_low", "ppml_pct_high", "pct_of_pre"})
"""Columns already in percent."""
LABELS_YEARS = frozenset({"year", "cohort", "seed", "event_time", "e_last", "level", "term", "control", "treated",
                          "county_code", "batch"})
"""Columns whose numbers are codes or years: shown as they are, without thousands separators."""


def format_number(value: object, column: str = "") -> str:
    """Format one cell for reading, by the kind of column it is in.

    Parameters
    ----------
    value : object
        The cell.
    column : str
        Its column's name (p-values, shares, percentages, codes and counts are formatted apart).

    Returns
    -------
    str
        The text (empty for a missing value).

    Examples
    --------
    >>> format_number(169.801121, "estimate"), format_number(1.355121e-14, "p_value")
    ('170', '<0.001')
    >>> format_number(0.0975218, "estimate"), format_number(0.4522, "share_treated"), format_number(2023, "cohort")
    ('0.0975', '45.2%', '2023')
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "✓" if value else "–"
    if not isinstance(value, int | float) or isinstance(value, str):
        try:
            if pd.isna(value):
                return ""
        except (TypeError, ValueError):
            pass
        if hasattr(value, "item"):  # numpy scalar
            return format_number(value.item(), column)
        return str(value)
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if column in LABELS_YEARS:
        return f"{value:g}" if isinstance(value, float) else str(value)
    if column in P_VALUES:
        return "<0.001" if value < 0.001 else f"{value:.3f}"
    if column in SHARES:
        return f"{100 * value:.1f}%"
    if column in PERCENTS:
        return f"{value:+.1f}"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def _name(column: str, value: object, lang: str) -> object:
    """Translate a code that a reader knows by its label (an outcome, a family, a group, an estimator)."""
    if not isinstance(value, str):
        return value
    if column in ("outcome", "variable", "column"):
        if column == "variable" and value.startswith("terrain_") and value[8:] in schema.TERRAIN_LEVELS:
            return t(f"covariate.terrain.levels.{value[8:]}.share", lang)
        return column_label(value, lang)
    if column == "family":
        return lookup(f"family.{value}.label", lang, value)
    if column == "estimator":
        return lookup(f"estimator.{value}.abbrev", lang, value)
    if column in ("group", "reference", "level"):
        if value in schema.UNIT_TYPES:
            return t(f"cadre.{value}.group" if column != "level" else f"cadre.{value}.label", lang)
        return lookup(f"group.{value}.label", lang, lookup(f"weakness.{value}.label", lang, value))
    if column == "dimension":
        return lookup(f"dimension.{value}.label", lang, value)
    return value


@dataclass(frozen=True)
class ReadableTable:
    """A table formatted for reading: headings, cells (all text) and a note on the rows left out.

    Attributes
    ----------
    name : str
        The table's name (its file stem in ``tables/``).
    headings : tuple of str
        Column headings.
    rows : tuple of tuple of str
        Formatted cells.
    numeric : tuple of bool
        Whether each column holds numbers (right-aligned).
    note : str
        Empty, or the line saying how many rows are not shown.
    """

    name: str
    headings: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    note: str = ""

    def to_frame(self) -> pd.DataFrame:
        """Return the shown cells as a frame of strings (columns: the headings).

        Returns
        -------
        pandas.DataFrame
            The table as shown.
        """
        return pd.DataFrame(list(self.rows), columns=list(self.headings))

    def _repr_html_(self) -> str:
        def cell(tag: str, text: str, right: bool) -> str:
            style = ' style="text-align: right"' if right else ' style="text-align: left"'
            return f"<{tag}{style}>{html.escape(text)}</{tag}>"

        head = "".join(cell("th", h, r) for h, r in zip(self.headings, self.numeric, strict=True))
        body = "".join("<tr>" + "".join(cell("td", c, r) for c, r in zip(row, self.numeric, strict=True)) + "</tr>"
                       for row in self.rows)
        note = f"<p><small>{html.escape(self.note)}</small></p>" if self.note else ""
        return f'<table class="readable-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}'

    def __repr__(self) -> str:
        return self.to_frame().to_string(index=False) + (f"\n{self.note}" if self.note else "")


def readable_table(df: pd.DataFrame, name: str = "", lang: str = "zh", columns: Sequence[str] | None = None,
                   max_rows: int = MAX_ROWS) -> ReadableTable:
    """Format a tidy table for reading in a notebook.

    Parameters
    ----------
    df : pandas.DataFrame
        The tidy table (not modified).
    name : str, optional
        Its name, which chooses the columns shown (:data:`VIEWS`) and is named in the note.
    lang : {"zh", "en"}
        Language of the headings and names.
    columns : sequence of str, optional
        Columns to show instead of the table's view.
    max_rows : int, default :data:`MAX_ROWS`
        Most rows shown.

    Returns
    -------
    ReadableTable
        Headings, formatted cells and a note on the rows not shown.

    Examples
    --------
    >>> tab = pd.DataFrame({"outcome": ["income_per_capita"], "estimate": [169.801121], "p_value": [1.4e-14]})
    >>> readable_table(tab, lang="en").rows
    (('Per-capita net income (yuan)', '170', '<0.001'),)
    """
    check_lang(lang)
    wanted = list(columns) if columns is not None else list(VIEWS.get(name, df.columns))
    cols = [c for c in wanted if c in df.columns] or list(df.columns)
    shown = df.head(max_rows)
    rows = tuple(tuple(format_number(_name(c, v, lang), c) for c, v in zip(cols, r, strict=True))
                 for r in shown[cols].itertuples(index=False))
    numeric = tuple(pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
                    and c not in LABELS_YEARS for c in cols)
    note = (t("display.more_rows", lang, shown=len(shown), n=len(df), name=name or "?")
            if len(df) > len(shown) else "")
    return ReadableTable(name, tuple(heading(c, lang) for c in cols), rows, numeric, note)
