"""The adapter to pyfixest: every call into pyfixest, and every read of a pyfixest fit.

The regression estimators (:mod:`~analysis.estimators.twfe`,
:mod:`~analysis.estimators.sun_abraham`, the pre-trend test of
:mod:`~analysis.estimators.imputation`, :mod:`~analysis.estimators.poisson`) fit their
models through :func:`feols` and :func:`fepois` and read the results from the
:class:`FixestFit` these return, never from the pyfixest object itself.

What is read, and how
---------------------
* coefficients and their names: the public ``Feols.coef()`` (the same float64 array
  pyfixest stores, bit for bit);
* the clustered covariance (``_vcov``), the estimation sample (``_data``: the rows
  pyfixest kept after dropping singletons and, for Poisson, separated observations),
  the number of observations (``_N``), the small-sample correction (``_ssc``, ``_df_k``,
  ``_G``), the per-observation scores and bread (``_scores``, ``_bread``: their cluster
  sums give :attr:`FixestFit.cluster_scores`, which the joint tests of
  :mod:`analysis.inference.small_sample` need) and, for Poisson, the fitted means
  (``_Y_hat_response``): pyfixest 0.60 has no public accessor that returns these stored
  numbers (``Feols.vcov()`` re-estimates the covariance and replaces it), so they are
  read from its private attributes, here and in no other module
  (``tests/test_architecture.py`` checks that). A pyfixest release that renames them
  breaks this module only.

Frames
------
The frames passed in follow the columns of :class:`analysis.estimators.inputs.Panel`:
``y`` (outcome), ``unit`` and ``time`` (the two fixed effects), ``cl`` (cluster codes
for the CRV1 covariance), optionally ``w`` (weights, :func:`feols` only) and
``x0, x1, ...`` (covariates, added to the regressors by :func:`feols`), plus the
regressors named in ``rhs``.

Small-sample correction
-----------------------
pyfixest's default for CRV1, ``ssc(k_adj=True, k_fixef="nonnested", G_adj=True,
G_df="min")``: ``c = G/(G-1) * (N-1)/(N-K)``, with ``K`` the regressors plus the
fixed-effect levels not nested in the clusters; it equals R fixest's default and Stata
``reghdfe ..., vce(cluster)``. :mod:`analysis.estimators.twfe` derives it; each fit
records it as a :class:`~analysis.results.SmallSampleCorrection`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version

import numpy as np
import pandas as pd

from analysis.results import SmallSampleCorrection

__all__ = ["ENGINES", "FIXEF_TOL", "IWLS_MAXITER", "FixestFit", "Indicators", "choose_engine", "feols", "fepois",
           "pyfixest_version", "use_engine"]

ENGINES = ("auto", "pyfixest", "lean")
"""Engines :func:`feols` and :func:`fepois` can use: ``"auto"`` chooses by the frame's size
(:func:`choose_engine`), ``"pyfixest"`` or ``"lean"`` force one."""

_forced: list[str] = []

FIXEF_TOL = 1e-10
"""Convergence tolerance of pyfixest's alternating-projection demeaner (its default is 1e-6).

At 1e-10 the estimates are exact to about 1e-10 on unbalanced panels too."""

FIXEF_TOL_FALLBACK = (1e-9, 1e-8)
"""Looser tolerances :func:`feols` retries with, in order, when the demeaner cannot reach
:data:`FIXEF_TOL`. The tolerance is absolute, so an outcome measured in millions (collective
income of about 2.4 million yuan in one simulated city) cannot reach 1e-10 in float64
arithmetic: pyfixest then stops after its iteration limit with an error. The retry is made
with a warning that names the tolerance used; fits that converge are unaffected."""

IWLS_MAXITER = 100
"""Maximum number of IRLS iterations of :func:`fepois`."""

SSC_RULE = ("pyfixest default ssc(k_adj=True, k_fixef='nonnested', G_adj=True, G_df='min'): "
            "G/(G-1)*(N-1)/(N-K); = fixest default and reghdfe vce(cluster)")
"""How the small-sample factor is computed, as recorded in every estimate's options."""



@dataclass(frozen=True)
class Indicators:
    """Regressors that are 0/1 indicators of disjoint cells, given by one code per row.

    Regressor ``names[j]`` is ``1{codes == j}``; a row with code -1 is in no cell (every
    indicator 0). The event-time dummies of the Sun-Abraham, TWFE event-study and
    imputation pre-trend regressions are of this kind. pyfixest is given the 0/1 columns
    themselves (:meth:`columns`); the lean engine fits them from the codes without making
    them (:func:`analysis.estimators.lean_fe.feols`).

    Attributes
    ----------
    codes : numpy.ndarray
        Integer code of each row of the frame, ``-1 .. len(names) - 1``.
    names : tuple of str
        The regressors' names, in the order they enter the model (before ``rhs``).
    """

    codes: np.ndarray = field(repr=False)
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        codes = np.asarray(self.codes)
        if codes.ndim != 1 or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError("indicator codes must be a one-dimensional integer array")
        if len(codes) and (codes.min() < -1 or codes.max() >= len(self.names)):
            raise ValueError(f"indicator codes must lie in -1..{len(self.names) - 1}")
        object.__setattr__(self, "codes", codes.astype(np.int64, copy=False))
        object.__setattr__(self, "names", tuple(self.names))

    def columns(self) -> dict[str, np.ndarray]:
        """Return the 0/1 columns (``int8``) by name."""
        return {name: (self.codes == j).astype("int8") for j, name in enumerate(self.names)}


@dataclass(frozen=True)
class FixestFit:
    """What the estimators read from a pyfixest fit.

    Attributes
    ----------
    model : object
        The pyfixest ``Feols`` or ``Fepois`` object, kept for inspection (its
        ``summary()``, ``tidy()``); read its numbers from the other attributes.
    coefficients : pandas.Series
        Estimates by regressor name, in pyfixest's order. Regressors pyfixest dropped
        as collinear are absent.
    vcov : numpy.ndarray
        The clustered (CRV1) covariance of ``coefficients``, same order, with the
        small-sample factor ``ssc.factor`` applied.
    sample : pandas.DataFrame
        The rows of the frame used in the estimation, in the order pyfixest used them.
    n_obs : int
        Number of observations used.
    ssc : SmallSampleCorrection
        The small-sample correction of ``vcov``.
    fitted : numpy.ndarray or None
        Poisson fits: the fitted means ``E[y | x]`` of the rows of ``sample``; ``None``
        for linear fits.
    cluster_scores : numpy.ndarray or None
        ``(G, p)`` cluster sums of the coefficients' influence functions (the scores
        times the bread), in the order of the sorted cluster codes: ``vcov`` equals
        ``ssc.factor * cluster_scores.T @ cluster_scores``.
    engine : str
        What fitted the model, as recorded in an estimate's ``engine`` option:
        ``"pyfixest <version>"`` or :data:`analysis.estimators.lean_fe.ENGINE`. ``model`` is
        None for the lean engine.
    """

    model: object = field(repr=False)
    coefficients: pd.Series
    vcov: np.ndarray = field(repr=False)
    sample: pd.DataFrame = field(repr=False)
    n_obs: int
    ssc: SmallSampleCorrection
    fitted: np.ndarray | None = field(default=None, repr=False)
    cluster_scores: np.ndarray | None = field(default=None, repr=False)
    engine: str = ""

    @property
    def names(self) -> list[str]:
        """Return the names of the estimated coefficients, in order.

        Returns
        -------
        list of str
            The index of :attr:`coefficients`.
        """
        return list(self.coefficients.index)


def pyfixest_version() -> str:
    """Return the installed pyfixest version (recorded in every estimate's ``engine`` option).

    Returns
    -------
    str
        For example ``"0.60.0"``.
    """
    return version("pyfixest")


def choose_engine(n_rows: int, engine: str = "auto") -> str:
    """Return the engine that fits a frame of ``n_rows`` rows: ``"pyfixest"`` or ``"lean"``.

    Parameters
    ----------
    n_rows : int
        Rows of the frame to fit.
    engine : {"auto", "pyfixest", "lean"}, default "auto"
        ``"auto"``: the lean engine from :data:`analysis.estimators.lean_fe.LEAN_ROWS` rows
        on, pyfixest below, unless :func:`use_engine` forces one; the others force it.

    Returns
    -------
    str
        ``"pyfixest"`` or ``"lean"``.

    Raises
    ------
    ValueError
        If ``engine`` is not one of :data:`ENGINES`.
    """
    from analysis.estimators import lean_fe

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "auto" and _forced:
        engine = _forced[-1]
    if engine == "auto":
        return "lean" if n_rows >= lean_fe.LEAN_ROWS else "pyfixest"
    return engine


@contextmanager
def use_engine(engine: str) -> Iterator[None]:
    """Fit every regression inside the ``with`` block with ``engine``, whatever its size.

    Parameters
    ----------
    engine : {"auto", "pyfixest", "lean"}
        The engine (``"auto"``: by size, as outside the block).

    Yields
    ------
    None
        Inside the block :func:`feols` and :func:`fepois` use ``engine``.

    Raises
    ------
    ValueError
        If ``engine`` is not one of :data:`ENGINES`.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    _forced.append(engine)
    try:
        yield
    finally:
        _forced.pop()


def _read(fit, fitted: bool) -> FixestFit:
    """Collect the numbers of a pyfixest fit into a :class:`FixestFit`."""
    coef = fit.coef()
    coefficients = pd.Series(np.asarray(coef.to_numpy(), dtype=float), index=[str(c) for c in coef.index])
    sample = fit._data
    infl = np.asarray(fit._scores, dtype=float) @ np.asarray(fit._bread, dtype=float)
    codes = pd.factorize(sample["cl"].to_numpy(), sort=True)[0]
    n_cl = int(codes.max()) + 1 if len(codes) else 0
    cluster_scores = np.column_stack([np.bincount(codes, weights=infl[:, j], minlength=n_cl)
                                      for j in range(infl.shape[1])]) if infl.size else np.zeros((n_cl, 0))
    ssc = SmallSampleCorrection(
        rule=SSC_RULE,
        factor=float(np.asarray(fit._ssc).ravel()[0]),
        K=int(fit._df_k),
        N=int(fit._N),
        G=int(np.asarray(fit._G).ravel()[0]),
        unit_fe_nested_in_clusters=bool((sample.groupby("unit")["cl"].nunique() == 1).all()),
    )
    return FixestFit(
        model=fit,
        coefficients=coefficients,
        vcov=np.asarray(fit._vcov, dtype=float),
        sample=sample,
        n_obs=int(fit._N),
        ssc=ssc,
        fitted=np.asarray(fit._Y_hat_response, dtype=float).ravel() if fitted else None,
        cluster_scores=cluster_scores,
        engine=f"pyfixest {pyfixest_version()}",
    )


def feols(frame: pd.DataFrame, rhs: Sequence[str], engine: str = "auto", rows: np.ndarray | None = None,
          indicators: Indicators | None = None) -> FixestFit:
    """Fit ``y ~ [indicators] + rhs (+ x0 + x1 ...) | unit + time`` by OLS with CRV1 standard errors by ``cl``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns as :class:`analysis.estimators.inputs.Panel` (``y``, ``unit``, ``time``,
        ``cl``; ``w`` weights and ``x0, x1, ...`` covariates if present) plus the
        regressors in ``rhs``. Not modified.
    rhs : sequence of str
        Regressors; the covariate columns ``x0, x1, ...`` of ``frame`` are added after them.
    engine : {"auto", "pyfixest", "lean"}, default "auto"
        Which engine fits the model (:func:`choose_engine`): pyfixest, or from
        :data:`analysis.estimators.lean_fe.LEAN_ROWS` rows on the memory-lean
        :func:`analysis.estimators.lean_fe.feols` (same model, sample and covariance).
    rows : numpy.ndarray of bool, optional
        Fit only the rows of ``frame`` where this is True (the engine is chosen by their
        number). The lean engine reads their regressors from ``frame`` without copying
        them, and its ``sample`` then holds only ``unit``, ``time`` and ``cl``.
    indicators : Indicators, optional
        0/1 indicators of disjoint cells (one code per row of ``frame``), entered before
        ``rhs``. pyfixest is given their columns; the lean engine never makes them.

    Returns
    -------
    FixestFit
        The estimates, their clustered covariance and the estimation sample.

    Notes
    -----
    Unit and time effects are absorbed by alternating projections at tolerance
    :data:`FIXEF_TOL` (retried at :data:`FIXEF_TOL_FALLBACK`, with a warning, if the
    demeaner cannot reach it); observations that are singletons in a fixed effect are
    dropped (a balanced panel has none).
    """
    n_rows = len(frame) if rows is None else int(np.count_nonzero(rows))
    if indicators is not None and len(indicators.codes) != len(frame):
        raise ValueError(f"indicator codes have {len(indicators.codes)} rows, the frame {len(frame)}")
    if choose_engine(n_rows, engine) == "lean":
        from analysis.estimators import lean_fe

        return lean_fe.feols(frame, rhs, rows=rows, indicators=indicators)
    if indicators is not None:
        frame = frame.assign(**indicators.columns())
        rhs = [*indicators.names, *rhs]
    if rows is not None:
        frame = frame.loc[np.asarray(rows, dtype=bool)]
    import pyfixest as pf

    cov_terms = [c for c in frame.columns if c.startswith("x") and c[1:].isdigit()]
    fml = "y ~ " + " + ".join([*rhs, *cov_terms]) + " | unit + time"
    for tol in (FIXEF_TOL, *FIXEF_TOL_FALLBACK):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*singleton fixed effect.*")
                # pyfixest 0.60 calls pandas methods with inplace=True, deprecated in pandas 3.1
                warnings.filterwarnings("ignore", message=".*inplace keyword.*")
                fit = pf.feols(
                    fml,
                    data=frame,
                    vcov={"CRV1": "cl"},
                    weights="w" if "w" in frame.columns else None,
                    demeaner=pf.MapDemeaner(fixef_tol=tol),
                )
            break
        except ValueError as err:
            if "Demeaning failed" not in str(err) or tol == FIXEF_TOL_FALLBACK[-1]:
                raise
    if tol != FIXEF_TOL:
        warnings.warn(f"pyfixest's demeaner did not reach the tolerance {FIXEF_TOL:g} (the outcome's scale is "
                      f"large); the fit used {tol:g}", stacklevel=3)
    return _read(fit, fitted=False)


def fepois(frame: pd.DataFrame, rhs: Sequence[str], iwls_tol: float, fixef_tol: float,
           engine: str = "auto") -> FixestFit:
    """Fit the Poisson model ``E[y] = exp(rhs | unit + time)`` by PML with CRV1 standard errors by ``cl``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``y``, ``unit``, ``time``, ``cl`` and the regressors in ``rhs``. Not
        modified.
    rhs : sequence of str
        Regressors (covariate columns are not added: pass them in ``rhs``).
    iwls_tol : float
        Relative deviance change at which the IRLS iterations stop.
    fixef_tol : float
        Tolerance of the demeaner inside each IRLS step (pyfixest; the lean engine
        absorbs the effects exactly).
    engine : {"auto", "pyfixest", "lean"}, default "auto"
        Which engine fits the model (:func:`choose_engine`), as in :func:`feols`.

    Returns
    -------
    FixestFit
        The estimates, their clustered covariance, the estimation sample and the fitted
        means.

    Warns
    -----
    UserWarning
        If IRLS does not reach ``iwls_tol`` in :data:`IWLS_MAXITER` iterations (the
        warning points at the estimator's caller).
    """
    if choose_engine(len(frame), engine) == "lean":
        from analysis.estimators import lean_fe

        return lean_fe.fepois(frame, rhs, iwls_tol, IWLS_MAXITER)
    import pyfixest as pf

    fml = "y ~ " + " + ".join(rhs) + " | unit + time"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*singleton fixed effect.*")
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        fit = pf.fepois(
            fml,
            data=frame,
            vcov={"CRV1": "cl"},
            iwls_tol=iwls_tol,
            iwls_maxiter=IWLS_MAXITER,
            demeaner=pf.MapDemeaner(fixef_tol=fixef_tol),
        )
    if not getattr(fit, "convergence", True):
        warnings.warn(
            f"pyfixest's IRLS did not reach the deviance tolerance {iwls_tol:g} in {IWLS_MAXITER} iterations",
            stacklevel=3,
        )
    return _read(fit, fitted=True)
