"""The contract every stage follows, and the one writer of a stage's outputs.

Each study stage is one module of :mod:`analysis.stages`, named as its notebook, exposing one entry
point::

    run(panel, params, truth=None) -> StageResult

``panel`` is the analysis panel (:func:`analysis.core.panel.load_analysis_panel`), ``params`` the
notebook's validated parameters (:func:`analysis.core.params.validate_params`) and ``truth`` what
is known of the true effects (:class:`Truth`; only the stages that compare with it read it). The
:class:`StageResult` holds everything the notebook shows and the run folder receives; :func:`save`
writes it: tables as CSV, Markdown and LaTeX, figures as PNG and SVG (and each figure as PNG in
both languages, drawn again with :attr:`StageResult.draw`), the payload as the stage's section of
``results.json``. Stages compute; they never open the store or write files.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.data.synthetic.truth import load_truth, truth_status
from analysis.i18n import LANGS
from analysis.report.display import ReadableTable, readable_table
from analysis.report.figures import save_figure
from analysis.report.results_json import write_section
from analysis.report.tables import save_table


@dataclass(frozen=True)
class Truth:
    """What is known of the true effects: the synthetic city's truth, or nothing (real data).

    Attributes
    ----------
    available : bool
        Whether the store holds exactly the synthetic city whose truth is on disk.
    status : str
        Why the truth applies or not, in one sentence (:func:`analysis.data.synthetic.truth.truth_status`).
    aggregates : pandas.DataFrame or None
        ``truth_aggregates.csv``: simple, event-time, cohort and cadre-type truths.
    cells : pandas.DataFrame or None
        ``truth.csv``: the cell truths ATT(g,t) (for the first-year effects ATT(g,g)).
    """

    available: bool
    status: str
    aggregates: pd.DataFrame | None = field(default=None, repr=False)
    cells: pd.DataFrame | None = field(default=None, repr=False)

    @classmethod
    def load(cls, store: Path, truth_dir: Path) -> Truth:
        """Read the synthetic city's truth if it applies to the store.

        Parameters
        ----------
        store : pathlib.Path
            The DuckDB store.
        truth_dir : pathlib.Path
            Folder written by ``study simulate``.

        Returns
        -------
        Truth
            With the aggregates and cell truths when the store holds exactly that city.
        """
        ok, status = truth_status(store, truth_dir)
        if not ok:
            return cls(False, status)
        cells = Path(truth_dir) / "truth.csv"
        return cls(True, status, load_truth(store, truth_dir), pd.read_csv(cells) if cells.is_file() else None)

    @classmethod
    def unknown(cls, reason: str = "no truth was given") -> Truth:
        """Return "no known truth", with the reason.

        Parameters
        ----------
        reason : str
            Why.

        Returns
        -------
        Truth
            Not available.
        """
        return cls(False, reason)


@dataclass
class StageResult:
    """Everything one stage computed: what its notebook shows and what its run folder receives.

    Attributes
    ----------
    stage : str
        The notebook's name (``"02_main_effects"``).
    section : str
        The stage's section of ``results.json`` (``"main_effects"``).
    tables : dict of str -> pandas.DataFrame
        File stem -> table, in display order (written to ``tables/`` as CSV, Markdown, LaTeX).
    figures : dict of str -> matplotlib.figure.Figure
        File stem -> figure, in display order (written to ``figures/`` as PNG and SVG). They are
        closed in pyplot when the result is made, so a notebook shows each one once, where it asks
        for it; they can still be drawn and saved.
    payload : dict
        The ``results.json`` section.
    findings : list of str
        What the results show, computed from them, one paragraph per item.
    notes : list of str
        Context the notebook prints before the results: the data, the truth, what was skipped.
    lang : {"zh", "en"}
        The language of the figures and findings, and of the table headings it shows and writes.
    draw : callable, optional
        ``draw(lang) -> {stem: figure}``: draws the stage's figures again in any language, from
        what the stage computed (the stage's ``draw_figures`` with its inputs bound). :func:`save`
        uses it to write every figure in both languages; None: only ``lang``'s are written.
    """

    stage: str
    section: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lang: str = "zh"
    draw: Callable[[str], dict[str, Any]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not all(isinstance(x, list) and all(isinstance(s, str) for s in x) for x in (self.findings, self.notes)):
            raise TypeError("findings and notes must be lists of str (one paragraph per item)")
        if self.figures:
            from matplotlib import pyplot as plt

            for fig in self.figures.values():
                plt.close(fig)

    def table(self, name: str) -> ReadableTable:
        """Return one table formatted for reading (:func:`analysis.report.display.readable_table`).

        Parameters
        ----------
        name : str
            The table's name (``"02_main_effects"``).

        Returns
        -------
        ReadableTable
            The columns a reader needs, readable headings with units, meaningful digits.
        """
        return readable_table(self.tables[name], name, self.lang)

    def show(self, *patterns: str, tables: bool = True, figures: bool = True) -> None:
        """Display the tables, then the figures, whose names match any of ``patterns`` (in a notebook).

        Tables are shown formatted for reading (:meth:`table`: the columns a reader needs,
        meaningful digits); the full tidy table is in ``tables/``. A pattern that matches nothing
        (a table the run skipped, e.g. the wild bootstrap with ``bootstrap_draws = 0``) is said so
        in one line; the notes say why.

        Parameters
        ----------
        *patterns : str
            Names or shell-style patterns (``"03_event_*"``).
        tables, figures : bool, default True
            Whether to show matching tables, matching figures.
        """
        from IPython.display import display

        kinds = [kind for kind, wanted in ((self.tables, tables), (self.figures, figures)) if wanted]
        for kind in kinds:
            for name, obj in kind.items():
                if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                    display(self.table(name) if kind is self.tables else obj)
        names = [name for kind in kinds for name in kind]
        for p in patterns:
            if not fnmatch.filter(names, p):
                print(f"{self.stage}: no {p} in this run (see the notes above)")


def save(result: StageResult, out_dir: Path) -> list[Path]:
    """Write a stage's tables, figures and ``results.json`` section into a run folder.

    Parameters
    ----------
    result : StageResult
        The stage's result.
    out_dir : pathlib.Path
        The run folder: tables go to ``tables/`` (headings of the Markdown and LaTeX files in the
        result's language), figures to ``figures/`` (PNG and SVG in the result's language), the
        payload to ``results/<section>.json``; then every figure goes as PNG to
        ``figures/zh/`` and ``figures/en/`` (the result's language copied, the other drawn again
        with ``result.draw``, if the result has it).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    written: list[Path] = []
    for name, table in result.tables.items():
        written += save_table(table, name, out_dir, result.lang).values()
    for name, fig in result.figures.items():
        written += save_figure(fig, name, out_dir).values()
    written.append(write_section(out_dir, result.section, result.payload))
    written += save_figures_in_languages(result, out_dir)
    return written


def save_figures_in_languages(result: StageResult, out_dir: Path) -> list[Path]:
    """Write every figure of a stage as PNG in each language: ``figures/<lang>/<stem>.png``.

    The result's own language is copied from ``figures/<stem>.png`` (same bytes, drawn once); the
    other language is drawn again with ``result.draw`` from what the stage computed, so labels,
    titles and legends are in that language and the numbers are the same. Run after the tables
    and ``results.json`` section are written: drawing cannot change them.

    Parameters
    ----------
    result : StageResult
        The stage's result (its figures already saved by :func:`save`).
    out_dir : pathlib.Path
        The run folder.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    import shutil

    from matplotlib import pyplot as plt

    if not result.figures:
        return []
    figures_dir = Path(out_dir) / "figures"
    written: list[Path] = []
    for lang in LANGS:
        folder = figures_dir / lang
        folder.mkdir(parents=True, exist_ok=True)
        if lang == result.lang:
            for name in result.figures:
                written.append(Path(shutil.copyfile(figures_dir / f"{name}.png", folder / f"{name}.png")))
        elif result.draw is not None:
            for name, fig in result.draw(lang).items():
                if name in result.figures:
                    written += save_figure(fig, name, out_dir, formats=("png",), lang=lang).values()
                plt.close(fig)
    return written
