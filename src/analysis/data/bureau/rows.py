"""Which rows under a bureau header are data: empty, subtotal and footnote rows are dropped.

Rows dropped (and counted in the ingest report)
    Empty rows (a row whose cells are formulas with no saved value is not empty);
    subtotal and total rows, i.e. rows whose code, name or first cell is ``合计``,
    ``小计``, ``总计``, ends with one of them (``东山县小计``), starts with ``其中`` or is
    ``全市``/``全县``/``全区``/``全镇``... (spaces inside do not matter: ``合  计``), and rows
    that say so in any other *leading* text column (the columns before the first numeric
    one: county, township, sequence number, ...) while their village-code cell holds no
    code; footnote rows, i.e. rows with one non-empty cell that starts with ``注``,
    ``说明``, ``备注``, ``填表``, ``填报``, ``制表``, ``审核``, ``负责人``, ``联系人``,
    ``数据来源`` or ``资料来源``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

_SUBTOTAL = re.compile(r"^(其中.*|.*(合计|小计|总计)|全(省|市|县|区|镇|乡|旗)(合计|总计)?)$")
_FOOTNOTE = re.compile(r"^(注|说明|备注|填表|填报|制表|审核|负责人|联系人|数据来源|资料来源)")


@dataclass
class RowKinds:
    """What each row under a header is.

    Attributes
    ----------
    empty, subtotal, footnote : numpy.ndarray
        Boolean masks of the rows dropped (a subtotal row is never counted as a
        footnote).
    keep : numpy.ndarray
        The data rows.
    """

    empty: np.ndarray
    subtotal: np.ndarray
    footnote: np.ndarray
    keep: np.ndarray


def row_kinds(
    cells: dict[int, pd.Series],
    label_columns: Iterable[int],
    leading_columns: Iterable[int] = (),
    code_columns: Iterable[int] = (),
    formulas: np.ndarray | None = None,
) -> RowKinds:
    """Tell the data rows of a sheet body from empty, subtotal and footnote rows.

    Parameters
    ----------
    cells : dict of int to pandas.Series
        Normalised cells of the body, by column position.
    label_columns : iterable of int
        Positions of the columns that label a row (code, name; the first column is
        always one): a total word there makes the row a subtotal row.
    leading_columns : iterable of int
        Positions of the text columns before the first numeric column (county, township,
        ...): a total word there makes the row a subtotal row if its code cells hold no
        code (a village is never dropped for its county's name).
    code_columns : iterable of int
        Positions of the village-code columns.
    formulas : numpy.ndarray, optional
        Rows that hold formulas with no saved value (not empty, although their cells read
        as empty).

    Returns
    -------
    RowKinds
        The masks.
    """
    n = len(next(iter(cells.values()))) if cells else 0
    nonempty = np.zeros(n, dtype=int)
    for s in cells.values():
        nonempty += (s != "").to_numpy(dtype=int)
    empty = nonempty == 0
    if formulas is not None:
        empty &= ~formulas

    def says_total(j: int) -> np.ndarray:
        return cells[j].str.replace(r"\s", "", regex=True).str.fullmatch(
            _SUBTOTAL.pattern).fillna(False).to_numpy(dtype=bool)

    labels = {j for j in label_columns if j in cells}
    subtotal = np.zeros(n, dtype=bool)
    for j in labels:
        subtotal |= says_total(j)
    has_code = np.zeros(n, dtype=bool)
    for j in code_columns:
        if j in cells:
            has_code |= cells[j].str.contains(r"\d{6}", regex=True).fillna(False).to_numpy(dtype=bool)
    for j in set(leading_columns) - labels:
        if j in cells:
            subtotal |= says_total(j) & ~has_code
    first_text = pd.Series([""] * n, dtype=object)
    for j in sorted(cells, reverse=True):
        s = cells[j]
        first_text = s.where(s != "", first_text)
    footnote = (nonempty == 1) & first_text.str.match(_FOOTNOTE.pattern).fillna(False).to_numpy(dtype=bool)
    footnote &= ~subtotal
    return RowKinds(empty, subtotal, footnote, ~empty & ~subtotal & ~footnote)
