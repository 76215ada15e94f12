r"""Tables: one tidy frame written as CSV (for machines), Markdown and LaTeX (for people).

Files are byte-deterministic: fixed column order as given, fixed float format,
``\n`` line endings.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.core.csvsafe import write_csv

FLOAT_FORMAT = "%.6g"


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return ""
    if isinstance(value, float):
        return FLOAT_FORMAT % value
    return str(value)


def to_markdown(df: pd.DataFrame) -> str:
    """Render a frame as a GitHub-flavoured Markdown table.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.

    Returns
    -------
    str
        Markdown text ending in a newline.
    """
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def to_latex(df: pd.DataFrame) -> str:
    """Render a frame as a plain LaTeX ``tabular`` (booktabs rules).

    Parameters
    ----------
    df : pandas.DataFrame
        The table.

    Returns
    -------
    str
        LaTeX text ending in a newline.
    """

    def esc(s: str) -> str:
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("$", r"\$")):
            s = s.replace(a, b)
        return s

    cols = [esc(str(c)) for c in df.columns]
    lines = [r"\begin{tabular}{" + "l" * len(cols) + "}", r"\toprule", " & ".join(cols) + r" \\", r"\midrule"]
    for row in df.itertuples(index=False):
        lines.append(" & ".join(esc(_fmt(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def save_table(df: pd.DataFrame, name: str, out_dir: Path) -> dict[str, Path]:
    """Write a table as CSV, Markdown and LaTeX into ``out_dir / "tables"``.

    Parameters
    ----------
    df : pandas.DataFrame
        The table (not modified).
    name : str
        File stem.
    out_dir : pathlib.Path
        Run folder.

    Returns
    -------
    dict
        ``{"csv": path, "md": path, "tex": path}``.
    """
    folder = Path(out_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / f"{name}.csv", "md": folder / f"{name}.md", "tex": folder / f"{name}.tex"}
    write_csv(df, paths["csv"], index=False, float_format=FLOAT_FORMAT, lineterminator="\n", encoding="utf-8")
    paths["md"].write_text(to_markdown(df), encoding="utf-8")
    paths["tex"].write_text(to_latex(df), encoding="utf-8")
    return paths
