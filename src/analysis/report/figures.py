"""Figure conventions: a CJK font that the project installs itself, and deterministic saving.

Chinese labels are rendered with Noto Sans SC (SIL Open Font License), which comes
from PyPI through the lock (package ``pylopdf-fonts-zh-cn``), so no system font and
no root access are needed. If that package is missing, :func:`setup_fonts` falls back
to any installed font whose name contains "CJK", "SC" or "Hei", and raises if none
can render Chinese, rather than drawing missing-glyph boxes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

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


def save_figure(fig, name: str, out_dir: Path) -> dict[str, Path]:
    """Save a figure as PNG and SVG with deterministic metadata.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    name : str
        File stem (no extension).
    out_dir : pathlib.Path
        Run folder; files go to ``out_dir / "figures"``.

    Returns
    -------
    dict
        ``{"png": path, "svg": path}``.
    """
    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"png": folder / f"{name}.png", "svg": folder / f"{name}.svg"}
    fig.savefig(paths["png"], bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths["svg"], bbox_inches="tight", metadata={"Date": None, "Creator": None})
    return paths
