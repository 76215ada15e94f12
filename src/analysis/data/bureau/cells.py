"""Where the cells of a bureau file are: problems and notes about them, by row, sheet and header."""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.data.problems import Note, Problem, note


def rows_text(rows: np.ndarray, sheets: np.ndarray | None, limit: int = 5) -> str:
    """Return rows as a short list for a note (``5, 9, 12 and 3 more``; ``sheet!row`` across sheets).

    Parameters
    ----------
    rows : numpy.ndarray
        Row numbers.
    sheets : numpy.ndarray or None
        Their sheets.
    limit : int, default 5
        Rows listed before "and N more".

    Returns
    -------
    str
        The list.
    """
    if sheets is not None and len(set(sheets.tolist())) > 1:
        items = [f"{s}!{r}" for s, r in zip(sheets[:limit], rows[:limit], strict=False)]
    else:
        items = [str(r) for r in rows[:limit]]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(items) + more


class CellLog:
    """Where the cells of one bureau file are, and the problems and notes about them.

    Parameters
    ----------
    name : str
        File name.
    rows : numpy.ndarray
        Row of every data row as the user sees it.
    sheets : numpy.ndarray or None
        Worksheet of every data row (XLSX), or None.
    headers : dict of str to str
        Canonical column to its header in the file.

    Attributes
    ----------
    problems : list of Problem
        Problems found so far.
    notes : list of Note
        Rules applied so far.
    """

    def __init__(self, name: str, rows: np.ndarray, sheets: np.ndarray | None, headers: dict[str, str]):
        self.name = name
        self.rows = rows
        self.sheets = sheets
        self.headers = headers
        self.problems: list[Problem] = []
        self.notes: list[Note] = []

    def cells(
        self,
        column: str,
        mask: np.ndarray,
        shown: np.ndarray,
        problem: str,
        action: str,
        problem_zh: str,
        action_zh: str,
        severity: str = "error",
    ) -> None:
        """Record one problem per cell of ``column`` selected by ``mask``.

        Parameters
        ----------
        column : str
            Canonical column.
        mask : numpy.ndarray
            Rows concerned.
        shown : numpy.ndarray
            The cells as written (the value of each problem).
        problem, action, problem_zh, action_zh : str
            What is wrong and what to do.
        severity : {"error", "warning"}
            Severity.
        """
        for i in np.flatnonzero(mask):
            self.problems.append(
                Problem(
                    self.name,
                    int(self.rows[i]),
                    column,
                    str(shown[i]),
                    problem,
                    action,
                    sheet=None if self.sheets is None else str(self.sheets[i]),
                    header=self.headers.get(column),
                    problem_zh=problem_zh,
                    action_zh=action_zh,
                    severity=severity,
                )
            )

    def column(self, column: str | None, problem: str, action: str, problem_zh: str, action_zh: str, row=None,
               sheet=None, header=None) -> None:
        """Record a problem of a whole column (or of the file, ``column=None``).

        Parameters
        ----------
        column : str or None
            Canonical column.
        problem, action, problem_zh, action_zh : str
            What is wrong and what to do.
        row, sheet, header : optional
            The header row and sheet, and the header text (default: the column's header).
        """
        self.problems.append(
            Problem(self.name, row, column, None, problem, action, sheet=sheet,
                    header=header if header is not None else self.headers.get(column or ""),
                    problem_zh=problem_zh, action_zh=action_zh)
        )

    def note(self, key: str, /, **fields: Any) -> None:
        """Record a rule that was applied: the note ``<key>.note`` of the catalogue (:func:`note`).

        Parameters
        ----------
        key : str
            Dotted key of the note's message (``"ingest.bureau.code_spaces"``).
        **fields
            Values of the note's fields.
        """
        self.notes.append(note(key, **fields))

    def where(self, mask: np.ndarray) -> str:
        """Return the rows selected by ``mask`` as a short list (:func:`rows_text`)."""
        idx = np.flatnonzero(mask)
        return rows_text(self.rows[idx], None if self.sheets is None else self.sheets[idx])
