"""Bilingual labels for outcomes, covariates and common terms (zh/en)."""

from __future__ import annotations

from analysis.data import schema

_EN: dict[str, str] = {
    "income_per_capita": "Per-capita net income (yuan)",
    "collective_income": "Collective income (yuan)",
    "projects": "Projects brought in",
    "funds_attracted": "Funds brought in (yuan)",
    "roads_km": "Roads repaired (km)",
    "team_reorganised": "Leadership team reorganised (share)",
    "activists": "Party activists",
    "new_members": "New party members",
    "criminal_cases": "Criminal cases",
    "disputes": "Disputes",
    "petitions": "Mass petitions",
    "population": "Population",
    "distance_km": "Distance to county seat (km)",
    "terrain": "Terrain",
    "distinctive_industry": "Distinctive industry",
    "party_members": "Party members",
    "share_members_over60": "Share of members over 60",
}
_TERMS: dict[str, tuple[str, str]] = {
    "year": ("年份", "Year"),
    "villages": ("村数", "Villages"),
    "cohort": ("开始年份（队列）", "Cohort (first treated year)"),
    "never": ("从未派驻", "Never treated"),
    "treated_villages": ("已派驻第一书记的村", "Villages with a first secretary"),
    "county": ("区县", "County"),
    "share_treated": ("派驻比例", "Share treated"),
    "rollout_title": ("第一书记派驻进度（按开始年份）", "Roll-out of first secretaries by cohort"),
    "distribution_title": ("结果变量分布", "Outcome distributions"),
    "count": ("村数", "Villages"),
}


def label(name: str, lang: str = "zh") -> str:
    """Return the display label of a column or term.

    Parameters
    ----------
    name : str
        Column name (schema) or a term key.
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        The label; the name itself if none is known.
    """
    if name in _TERMS:
        return _TERMS[name][0 if lang == "zh" else 1]
    if lang == "en":
        return _EN.get(name, name)
    for c in schema.PANEL_COLUMNS:
        if c.name == name:
            return c.label_zh
    return name
