"""Bilingual labels (zh/en): the shared ones (outcomes, covariates, common terms) and one shape for a module's own.

:func:`label` holds the labels every module uses. A module with labels of its own (groups, figure
titles, specification names) keeps them in one :class:`Labels` catalogue and looks them up as
``LABELS(key, lang, **values)``; a key it does not hold falls back to :func:`label`.
"""

from __future__ import annotations

from collections.abc import Mapping

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


class Labels:
    """A module's own bilingual labels, looked up as ``labels(key, lang, **values)``.

    Parameters
    ----------
    entries : mapping of str -> (str, str)
        Key -> (Chinese, English) text; a text may hold ``{placeholders}`` filled from ``values``.

    Examples
    --------
    >>> LABELS = Labels({"title": ("{name}：事件研究", "{name}: event study")})
    >>> LABELS("title", "en", name="Income")
    'Income: event study'
    >>> LABELS("year", "zh")
    '年份'
    """

    def __init__(self, entries: Mapping[str, tuple[str, str]]) -> None:
        self.entries: dict[str, tuple[str, str]] = dict(entries)

    def __call__(self, key: str, lang: str = "zh", **values: object) -> str:
        """Return the label of ``key`` in ``lang``.

        Parameters
        ----------
        key : str
            Key of this catalogue, else a column or term known to :func:`label`.
        lang : {"zh", "en"}
            Language.
        **values
            Values of the text's ``{placeholders}``.

        Returns
        -------
        str
            The label (the key itself if nobody knows it).
        """
        if key not in self.entries:
            return label(key, lang)
        text = self.entries[key][0 if lang == "zh" else 1]
        return text.format(**values) if values else text

    def __contains__(self, key: object) -> bool:
        return key in self.entries
