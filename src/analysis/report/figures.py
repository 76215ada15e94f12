"""Figure conventions: a CJK font that the project installs itself, one seaborn theme, deterministic saving.

Chinese labels are rendered with Noto Sans SC (SIL Open Font License), which comes
from PyPI through the lock (package ``pylopdf-fonts-zh-cn``), so no system font and
no root access are needed. If that package is missing, :func:`setup_fonts` falls back
to any installed font whose name contains "CJK", "SC" or "Hei", and raises if none
can render Chinese, rather than drawing missing-glyph boxes.

Every figure of the study stages is drawn inside :func:`theme` (or by a function decorated
with :func:`themed`): seaborn's ``whitegrid`` style and ``notebook`` context with the
colour-blind palette, carrying the CJK font. The statistical figures are drawn with seaborn
itself (distributions, pre-trend paths, propensity overlap, balance, subgroup panels); the
bespoke ones (forest, event study, Goodman-Bacon, HonestDiD, Monte Carlo) with matplotlib on the
same theme. The theme is a context, never global, so the brief's own charts
(:mod:`analysis.report.brief.charts`) keep their look and their bytes.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib
from matplotlib import font_manager
from matplotlib import pyplot as plt

CJK_SANS = "Noto Sans SC"
CJK_SERIF = "Noto Serif SC"
_FALLBACK_HINTS = ("CJK", " SC", "Hei", "Song", "Fang", "WenQuanYi")
_configured: str | None = None


def font_files() -> list[Path]:
    """Return the CJK font files shipped by the locked font package.

    Returns
    -------
    list of pathlib.Path
        OpenType files (Noto Sans SC, Noto Serif SC); empty if the package is absent.
    """
    spec = importlib.util.find_spec("pylopdf_fonts_zh_cn")
    if spec is None or spec.origin is None:
        return []
    return sorted(Path(spec.origin).parent.glob("*.otf"))


def setup_fonts() -> str:
    """Register the CJK fonts with matplotlib and make them the default sans-serif.

    Returns
    -------
    str
        The family name used for Chinese text.

    Raises
    ------
    RuntimeError
        If no font able to render Chinese is available.
    """
    global _configured
    if _configured is not None:
        return _configured
    for f in font_files():
        font_manager.fontManager.addfont(str(f))
    names = {f.name for f in font_manager.fontManager.ttflist}
    family = (
        CJK_SANS
        if CJK_SANS in names
        else next((n for n in sorted(names) if any(h in n for h in _FALLBACK_HINTS)), None)
    )
    if family is None:
        raise RuntimeError(
            "No CJK font found: install the project's lock (pip install -r requirements.lock), "
            "which brings Noto Sans SC from PyPI (package pylopdf-fonts-zh-cn)."
        )
    plt.rcParams["font.family"] = "sans-serif"
    plt.rcParams["font.sans-serif"] = [family, "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    plt.rcParams["svg.hashsalt"] = "first-secretary-study"
    plt.rcParams["savefig.dpi"] = 150
    plt.rcParams["figure.dpi"] = 100
    _configured = family
    return family


PALETTE = "colorblind"
"""The theme's colour palette (seaborn's colour-blind safe palette)."""


def theme_rc() -> dict[str, Any]:
    """Return the matplotlib settings of the study's figure theme.

    Returns
    -------
    dict
        seaborn's ``whitegrid`` style and ``notebook`` context (fonts scaled by 0.85), the
        :data:`PALETTE` colour cycle, and the CJK font of :func:`setup_fonts` as the sans-serif font.
    """
    import seaborn as sns
    from cycler import cycler

    family = setup_fonts()
    rc: dict[str, Any] = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.85)}
    rc.update({"font.family": ["sans-serif"], "font.sans-serif": [family, "DejaVu Sans"], "axes.unicode_minus": False,
               "axes.prop_cycle": cycler(color=sns.color_palette(PALETTE))})
    return rc


@contextlib.contextmanager
def theme() -> Iterator[None]:
    """Draw inside the study's figure theme (:func:`theme_rc`); the settings are restored afterwards.

    Yields
    ------
    None
        Figures created in the block carry the theme.
    """
    rc: Any = theme_rc()  # matplotlib types its keys as literals; the theme's come from seaborn
    with matplotlib.rc_context(rc):
        yield


P = ParamSpec("P")
R = TypeVar("R")


def themed(draw: Callable[P, R]) -> Callable[P, R]:
    """Decorate a function that draws a figure so that it draws inside :func:`theme`.

    Parameters
    ----------
    draw : callable
        Function returning a figure.

    Returns
    -------
    callable
        The same function, drawing inside the theme.
    """

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with theme():
            return draw(*args, **kwargs)

    return wrapper


def save_figure(fig, name: str, out_dir: Path, formats: tuple[str, ...] = ("png", "svg"),
                lang: str | None = None) -> dict[str, Path]:
    """Save a figure as PNG and SVG with deterministic metadata.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    name : str
        File stem (no extension).
    out_dir : pathlib.Path
        Run folder; files go to ``out_dir / "figures"``.
    formats : tuple of str, default ("png", "svg")
        Which of the two formats to write.
    lang : {"zh", "en"}, optional
        The figure's language, for the copies in every language: files then go to
        ``out_dir / "figures" / lang``.

    Returns
    -------
    dict
        ``{"png": path, "svg": path}`` (the formats written).
    """
    folder = Path(out_dir) / "figures" / (lang or "")
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
    paths: dict[str, Path] = {fmt: folder / f"{name}.{fmt}" for fmt in ("png", "svg") if fmt in formats}
    for fmt, path in paths.items():
        fig.savefig(path, bbox_inches="tight", metadata=metadata[fmt])
    return paths
