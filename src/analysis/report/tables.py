r"""Tables: one tidy frame written as CSV (for machines), Markdown and LaTeX (for people).

The CSV is the tidy data: raw column names, every column, numbers at six significant digits
(:data:`FLOAT_FORMAT`). The Markdown and LaTeX files show the same rows and values under
readable headings in the run's language: each column's heading, with its unit where the column
has one, is ``column.<name>`` of the label catalogue (:func:`heading`). The LaTeX is written by
pandas' ``Styler.to_latex`` (booktabs rules, cells and headings escaped); the Markdown is a
GitHub pipe table. Files are byte-deterministic: fixed column order as given, fixed float
format, ``\n`` line endings.

What a notebook *shows* is formatted for reading instead (fewer columns, meaningful digits):
:mod:`analysis.report.display`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from analysis.core.csvsafe import write_csv
from analysis.data import schema
from analysis.i18n import check_lang, column_label, lookup, t

FLOAT_FORMAT = "%.6g"
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    r"""Escape LaTeX's special characters (``conf_low`` -> ``conf\_low``).

    Parameters
    ----------
    text : str
        Plain text.

    Returns
    -------
    str
        Text safe inside a LaTeX table.

    Examples
    --------
    >>> latex_escape("5% of $x_1$")
    '5\\% of \\$x\\_1\\$'
    """
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], text)


def heading(column: str, lang: str = "zh") -> str:
    """Return the readable heading of a table column, with its unit where it has one.

    Looked up as ``column.<name>`` of the catalogue; a cohort column ``cohort_2023`` and a
    standardised-difference column ``std_diff_law`` through their templates; a group, cadre type,
    outcome or covariate through its label; ``year``, ``villages`` and ``truth`` through ``term.*``.
    A year (``2023``) and an unknown name are returned as they are.

    Parameters
    ----------
    column : str
        Column name of a tidy table.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The heading.

    Examples
    --------
    >>> heading("conf_low", "en"), heading("cohort_2024", "en"), heading("std_diff_law", "en")
    ('95% CI low', 'Cohort 2024 (villages)', 'Std. difference: Law-enforcement cadre')
    """
    check_lang(lang)
    cohort = re.fullmatch(r"cohort_(\d{4})", column)
    if cohort:
        return t("column.cohort_g", lang, cohort=cohort.group(1))
    if column.startswith("std_diff_"):
        return t("column.std_diff_g", lang, group=_group(column.removeprefix("std_diff_"), lang))
    if column in schema.UNIT_TYPES or column in ("never",):
        return _group(column, lang)
    return lookup(f"column.{column}", lang, lookup(f"term.{column}", lang, column_label(column, lang)))


def _group(group: str, lang: str) -> str:
    if group in schema.UNIT_TYPES:
        return t(f"cadre.{group}.group", lang)
    return lookup(f"group.{group}.label", lang, group)


def _cell(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return FLOAT_FORMAT % value
    return str(value)


def to_markdown(df: pd.DataFrame, lang: str = "zh") -> str:
    """Render a frame as a GitHub-flavoured Markdown table under readable headings.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    lang : {"zh", "en"}
        Language of the headings (:func:`heading`).

    Returns
    -------
    str
        Markdown text ending in a newline.
    """
    cols = [heading(str(c), lang).replace("|", "\\|") for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def to_latex(df: pd.DataFrame, lang: str = "zh") -> str:
    """Render a frame as a LaTeX ``tabular`` (booktabs rules) with readable headings, by ``Styler.to_latex``.

    Text columns are left-aligned, numbers right-aligned; headings and cells are escaped.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    lang : {"zh", "en"}
        Language of the headings (:func:`heading`).

    Returns
    -------
    str
        LaTeX text ending in a newline.
    """
    heads = {c: latex_escape(heading(str(c), lang)) for c in df.columns}
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) else "l"
                    for c in df.columns)
    styler = (df.reset_index(drop=True).style.hide(axis="index")
              .format(lambda v: latex_escape(_cell(v)), na_rep="")
              .format_index(lambda c: heads[c], axis=1))
    text = styler.to_latex(hrules=True, column_format=align or "l")
    return text if text.endswith("\n") else text + "\n"


def save_table(df: pd.DataFrame, name: str, out_dir: Path, lang: str = "zh") -> dict[str, Path]:
    """Write a table as CSV (tidy, raw names), Markdown and LaTeX (readable headings) into ``out_dir / "tables"``.

    Parameters
    ----------
    df : pandas.DataFrame
        The table (not modified).
    name : str
        File stem.
    out_dir : pathlib.Path
        Run folder.
    lang : {"zh", "en"}
        Language of the Markdown and LaTeX headings.

    Returns
    -------
    dict
        ``{"csv": path, "md": path, "tex": path}``.
    """
    folder = Path(out_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / f"{name}.csv", "md": folder / f"{name}.md", "tex": folder / f"{name}.tex"}
    write_csv(df, paths["csv"], index=False, float_format=FLOAT_FORMAT, lineterminator="\n", encoding="utf-8")
    paths["md"].write_text(to_markdown(df, lang), encoding="utf-8")
    paths["tex"].write_text(to_latex(df, lang), encoding="utf-8")
    return paths
