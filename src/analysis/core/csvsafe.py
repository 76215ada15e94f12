"""CSV files that a spreadsheet opens as data, never as formulas: the one CSV writer of the project.

A spreadsheet (Excel, WPS, LibreOffice) that opens a CSV file evaluates a text cell that
starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and a leading tab or carriage
return can hide such a start (CSV or formula injection: a cell
``-2+3+cmd|" /C calc"!A0`` runs a program). Every CSV the project writes goes through
:func:`write_csv` (frames) or :func:`neutralise_value` (cell by cell), which apply the
OWASP rule: such a text cell is written with a single quote in front
(``'-2+3+cmd|...``), which the spreadsheet shows as text.

What is left as it is
    Numbers in numeric columns (``-0.25`` in a float column is a number, not text), and
    text that is exactly a plain decimal number (``-5``, ``+1.5``, ``-2.5e-3``): a
    spreadsheet reads it as that number and it cannot hold a formula. Missing values
    stay missing.

The CSV files of benchmarks (``bench/``) are outside the rule; the ingest reads files as
they came and never rewrites them.
"""

from __future__ import annotations

import os
import re
from typing import IO, Any, overload

import numpy as np
import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A text cell starting with one of these is neutralised."""

_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def neutralise_value(value: object) -> object:
    """Return a cell value safe to write into a CSV file.

    Parameters
    ----------
    value : object
        The cell value.

    Returns
    -------
    object
        ``"'" + value`` for text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
        carriage return and is not a plain number; any other value unchanged.

    Examples
    --------
    >>> print(neutralise_value('-2+3+cmd|" /C calc"!A0'))
    '-2+3+cmd|" /C calc"!A0
    >>> neutralise_value("-5"), neutralise_value(-5), neutralise_value("村")
    ('-5', -5, '村')
    """
    return "'" + str(value) if _needs_quote(value) else value


def _needs_quote(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value)


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a frame whose text cells are safe to write into a CSV file.

    Parameters
    ----------
    frame : pandas.DataFrame
        The frame; not modified.

    Returns
    -------
    pandas.DataFrame
        ``frame`` itself if no cell needs a change (so the written bytes are exactly those
        of ``frame.to_csv``), else a copy whose text cells are neutralised by
        :func:`neutralise_value` (numeric, boolean and date columns are never changed).
        Column names are neutralised too; repeated column names are handled by position.
    """
    changes: dict[int, pd.Series] = {}
    for j in range(frame.shape[1]):
        col = frame.iloc[:, j]
        if not (pd.api.types.is_object_dtype(col.dtype) or pd.api.types.is_string_dtype(col.dtype)):
            continue
        values = col.to_numpy(dtype=object)
        hit = np.array([_needs_quote(v) for v in values], dtype=bool)
        if hit.any():
            values = values.copy()
            values[hit] = ["'" + v for v in values[hit]]
            changes[j] = pd.Series(values, index=col.index, name=col.name).astype(col.dtype)
    names = [neutralise_value(c) if isinstance(c, str) else c for c in frame.columns]
    renamed = names != list(frame.columns)
    if not changes and not renamed:
        return frame
    out = frame.copy()
    for j, col in changes.items():
        out.isetitem(j, col)
    if renamed:
        out.columns = names
    return out


@overload
def write_csv(frame: pd.DataFrame, path_or_buf: None = None, **kwargs: Any) -> str: ...


@overload
def write_csv(frame: pd.DataFrame, path_or_buf: str | os.PathLike | IO[str], **kwargs: Any) -> None: ...


def write_csv(frame: pd.DataFrame, path_or_buf: str | os.PathLike | IO[str] | None = None, **kwargs: Any) -> str | None:
    """Write a frame as CSV with its text cells neutralised (:func:`neutralise`).

    Parameters
    ----------
    frame : pandas.DataFrame
        The frame; not modified.
    path_or_buf : str, path-like or text buffer, optional
        Where to write, as for :meth:`pandas.DataFrame.to_csv`; None returns the text.
    **kwargs
        Passed to :meth:`pandas.DataFrame.to_csv` (``index``, ``float_format``,
        ``lineterminator``, ``encoding``, ...).

    Returns
    -------
    str or None
        The CSV text if ``path_or_buf`` is None, else None.

    Examples
    --------
    >>> print(write_csv(pd.DataFrame({"v": ["=1+1", "ok"], "x": [-1.5, 2.0]}), index=False), end="")
    v,x
    '=1+1,-1.5
    ok,2.0
    """
    return neutralise(frame).to_csv(path_or_buf, **kwargs)
