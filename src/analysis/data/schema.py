"""The data contract: the canonical village-year panel and the postings table.

This module is the data dictionary in code; ``data/README.md`` renders the same
specification for people (a test checks the two agree). Money is in yuan
(元) throughout the canonical format; bureau files in 万元 are converted on ingest.

Two tables enter the study:

``panel``
    One row per village and year, keyed by (``village_code``, ``year``).
``postings``
    One row per first secretary posted to a village, keyed by ``secretary_id``.
    Treatment timing (cohort, event time, cadre type) is *derived* from postings by
    :func:`analysis.core.treatment.derive_treatment`; it is never typed into the panel.

Village codes follow the national statistical-division format: 12 digits, the
first six the county (区县), the next three the township (乡镇/街道), the last three
the village (村/居委会). ``township_code`` is the first nine digits and
``county_code`` the first six; ingest checks that they agree with the village code.

What a file must have
---------------------
Only what the analysis needs. A ``panel`` file must have the keys (``village_code``,
``year``), ``village_name`` and at least one outcome (:data:`OUTCOMES`) holding a value;
``township_code`` and ``county_code`` may be left out (they are the first digits of the
village code, and are derived from it); every other column (the covariates and the
other outcomes) may be absent or have empty cells, stored as missing. A ``postings`` file
must have every column (treatment timing and cadre type are derived from them), and
``end_date`` may be empty. :attr:`Column.required` says whether a column must be in a
file, :attr:`Column.nullable` whether its cells may be empty.

In pandas the canonical tables have the dtypes of :func:`canonical_dtypes`;
:func:`to_canonical` gives any frame with the canonical columns exactly that form. The
ingest validates files against these specifications (:mod:`analysis.data.validate`
generates its pandera schema from them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

CODE_PATTERN = r"^\d{12}$"
TOWNSHIP_PATTERN = r"^\d{9}$"
COUNTY_PATTERN = r"^\d{6}$"

TERRAIN_LEVELS = ("plain", "hill", "mountain")
UNIT_TYPES = ("law", "agriculture", "economic", "other")
"""Sending-unit types. ``law``: police, procuratorate, courts, justice (公检法司);
``agriculture``: agriculture, aquatic products, animal husbandry (农业/水产/畜牧);
``economic``: financially strong units (经济实力强的单位: finance, state enterprises);
``other``: any other party or government office (党政机关)."""


@dataclass(frozen=True)
class Column:
    """Specification of one canonical column.

    Parameters
    ----------
    name : str
        Canonical column name.
    kind : {"code", "int", "float", "str", "date", "category", "binary"}
        Logical type. ``code`` is a digit string matched by ``pattern``.
    unit : str
        Unit, for the data dictionary ("yuan", "km", "count", ...).
    label_zh : str
        Chinese label, as a statistics bureau would head the column.
    description : str
        What the column holds.
    required : bool
        Whether the column must be present in a file. An optional column that is absent
        is stored as missing, except ``prefix_of`` codes, which are derived from the code
        they prefix.
    nullable : bool
        Whether missing values are allowed (empty cells are stored as missing).
    min, max : float or None
        Inclusive bounds for numeric columns.
    pattern : str or None
        Regular expression for ``code`` columns.
    levels : tuple of str
        Allowed values for ``category`` columns.
    prefix_of : str or None
        ``code`` columns: the code column whose first digits this code must equal
        (``township_code`` and ``county_code``: ``village_code``).
    not_before : str or None
        ``date`` columns: the date column this date may not precede (``end_date``:
        ``start_date``).
    """

    name: str
    kind: str
    unit: str
    label_zh: str
    description: str
    required: bool = True
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    levels: tuple[str, ...] = field(default_factory=tuple)
    prefix_of: str | None = None
    not_before: str | None = None

    @property
    def digits(self) -> int:
        """Number of digits of a ``code`` column (from its pattern; 0 for other kinds)."""
        m = re.search(r"\d+", self.pattern or "")
        return int(m.group()) if m else 0


PANEL_KEY = ("village_code", "year")
POSTINGS_KEY = ("secretary_id",)
KEYS: dict[str, tuple[str, ...]] = {"panel": PANEL_KEY, "postings": POSTINGS_KEY}
"""Primary key of each canonical table."""

PANEL_COLUMNS: tuple[Column, ...] = (
    Column("village_code", "code", "-", "村代码", "12-digit statistical-division code of the village", pattern=CODE_PATTERN),
    Column("year", "int", "year", "年份", "Calendar year of the observation", min=1990, max=2100),
    Column("village_name", "str", "-", "村名称", "Village (or residents' committee) name"),
    Column("township_code", "code", "-", "乡镇代码", "9-digit township code; equals the first 9 digits of village_code", required=False, pattern=TOWNSHIP_PATTERN, prefix_of="village_code"),
    Column("county_code", "code", "-", "区县代码", "6-digit county-level district code; equals the first 6 digits of village_code", required=False, pattern=COUNTY_PATTERN, prefix_of="village_code"),
    Column("population", "int", "persons", "户籍人口（人）", "Registered population at year end", required=False, nullable=True, min=1, max=200_000),
    Column("income_per_capita", "float", "yuan per person per year", "农民人均纯收入（元）", "Rural per-capita net income", required=False, nullable=True, min=0, max=1_000_000),
    Column("collective_income", "float", "yuan per year", "村集体收入（元）", "Village collective income", required=False, nullable=True, min=0, max=1e9),
    Column("projects", "int", "count per year", "引进项目数（个）", "Projects brought into the village", required=False, nullable=True, min=0, max=1_000),
    Column("funds_attracted", "float", "yuan per year", "引进资金（元）", "Funds brought into the village", required=False, nullable=True, min=0, max=1e9),
    Column("roads_km", "float", "km per year", "修复道路（公里）", "Village roads built or repaired", required=False, nullable=True, min=0, max=1_000),
    Column("team_reorganised", "binary", "0/1", "班子调整（是=1）", "Village leadership team reorganised during the year", required=False, nullable=True, min=0, max=1),
    Column("activists", "int", "count (year end)", "入党积极分子（人）", "Party activists (入党积极分子)", required=False, nullable=True, min=0, max=10_000),
    Column("new_members", "int", "count per year", "发展党员（人）", "New party members admitted", required=False, nullable=True, min=0, max=10_000),
    Column("criminal_cases", "int", "count per year", "刑事案件数（起）", "Criminal cases filed", required=False, nullable=True, min=0, max=10_000),
    Column("disputes", "int", "count per year", "矛盾纠纷数（起）", "Civil disputes registered for mediation", required=False, nullable=True, min=0, max=10_000),
    Column("petitions", "int", "count per year", "群体性上访（起）", "Mass petitions", required=False, nullable=True, min=0, max=10_000),
    Column("distance_km", "float", "km", "距县城距离（公里）", "Road distance to the county seat", required=False, nullable=True, min=0, max=1_000),
    Column("terrain", "category", "-", "地形", "Terrain class", required=False, nullable=True, levels=TERRAIN_LEVELS),
    Column("distinctive_industry", "binary", "0/1", "特色产业（有=1）", "Village has a distinctive industry (特色产业)", required=False, nullable=True, min=0, max=1),
    Column("party_members", "int", "persons (year end)", "党员人数（人）", "Party members registered in the village branch", required=False, nullable=True, min=0, max=10_000),
    Column("share_members_over60", "float", "share (0-1)", "60岁以上党员占比", "Share of party members aged over 60", required=False, nullable=True, min=0, max=1),
)

POSTINGS_COLUMNS: tuple[Column, ...] = (
    Column("village_code", "code", "-", "村代码", "Village the first secretary is posted to", pattern=CODE_PATTERN),
    Column("secretary_id", "str", "-", "第一书记编号", "Unique identifier of the first secretary posting"),
    Column("start_date", "date", "date", "到岗日期", "First day in post"),
    Column("end_date", "date", "date", "离岗日期", "Last day in post; empty while still in post", nullable=True, not_before="start_date"),
    Column("sending_unit", "str", "-", "派出单位", "Name of the sending unit"),
    Column("unit_type", "category", "-", "派出单位类型", "Type of sending unit (law, agriculture, economic, other)", levels=UNIT_TYPES),
    Column("batch", "str", "-", "批次", "Batch label, e.g. pilot-2022, city-2023, city-2025"),
)

OUTCOMES: tuple[str, ...] = (
    "income_per_capita", "collective_income", "projects", "funds_attracted", "roads_km",
    "team_reorganised", "activists", "new_members", "criminal_cases", "disputes", "petitions",
)
COVARIATES: tuple[str, ...] = (
    "population", "distance_km", "terrain", "distinctive_industry", "party_members",
    "share_members_over60",
)
OUTCOME_FAMILIES: dict[str, tuple[str, ...]] = {
    "income": ("income_per_capita", "collective_income", "projects", "funds_attracted", "roads_km"),
    "cases": ("criminal_cases", "disputes", "petitions"),
    "organisation": ("team_reorganised", "activists", "new_members"),
}
COUNT_OUTCOMES: tuple[str, ...] = ("criminal_cases", "disputes", "petitions", "new_members", "activists", "projects")
YEARLY_MEASURES: tuple[str, ...] = (*OUTCOMES, "population", "party_members", "share_members_over60")
"""Numeric panel columns measured anew every year (not the village's fixed attributes: distance, terrain,
industry); two years of real data never agree on most of them."""


def columns(table: str) -> tuple[Column, ...]:
    """Return the column specifications of a canonical table.

    Parameters
    ----------
    table : {"panel", "postings"}
        Which table.

    Returns
    -------
    tuple of Column
        The specifications, in canonical order.

    Raises
    ------
    ValueError
        If ``table`` is not a canonical table name.
    """
    if table == "panel":
        return PANEL_COLUMNS
    if table == "postings":
        return POSTINGS_COLUMNS
    raise ValueError(f"unknown table {table!r}: use 'panel' or 'postings'")


def column_names(table: str) -> list[str]:
    """Return the canonical column names of ``table`` in order.

    Parameters
    ----------
    table : {"panel", "postings"}
        Which table.

    Returns
    -------
    list of str
        Column names.
    """
    return [c.name for c in columns(table)]


DATE_DTYPE = "datetime64[us]"
"""pandas dtype of the canonical date columns."""


def canonical_dtypes(table: str) -> dict[str, str]:
    """Return the pandas dtype of every canonical column of ``table``.

    Codes, strings and categories are pandas strings (``"str"``), integers and binary
    flags ``int64`` (``Int64`` if the column may be empty), measures ``float64`` and
    dates ``datetime64[us]``.

    Parameters
    ----------
    table : {"panel", "postings"}
        Which canonical table.

    Returns
    -------
    dict of str to str
        Column name to dtype, in canonical column order.
    """
    out = {}
    for c in columns(table):
        if c.kind in ("code", "str", "category"):
            out[c.name] = "str"
        elif c.kind in ("int", "binary"):
            out[c.name] = "Int64" if c.nullable else "int64"
        elif c.kind == "float":
            out[c.name] = "float64"
        elif c.kind == "date":
            out[c.name] = DATE_DTYPE
        else:  # pragma: no cover - guarded by the schema
            raise ValueError(f"unknown column kind {c.kind!r} of {table}.{c.name}")
    return out


def to_canonical(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Return a new frame with exactly the canonical columns, order and dtypes.

    The input is not modified. Optional columns that are absent are added empty.

    Parameters
    ----------
    df : pandas.DataFrame
        A frame with the canonical columns of ``table``.
    table : {"panel", "postings"}
        Which canonical table.

    Returns
    -------
    pandas.DataFrame
        A copy with a fresh ``RangeIndex``.

    Raises
    ------
    ValueError
        If a required column is missing, an unknown column is present, or a column
        cannot be converted (for example an empty value in a non-nullable integer).
    """
    specs = columns(table)
    names = [c.name for c in specs]
    missing = [c.name for c in specs if c.required and c.name not in df.columns]
    extra = [str(c) for c in df.columns if c not in names]
    if missing or extra:
        raise ValueError(
            f"{table} frame does not have the canonical columns: missing {missing}, unknown {extra}"
        )
    dtypes = canonical_dtypes(table)
    out = {}
    n = len(df)
    for c in specs:
        if c.name not in df.columns:
            col = pd.Series([None] * n, dtype="object")
        else:
            col = df[c.name].reset_index(drop=True)
        try:
            if c.kind == "date":
                col = pd.to_datetime(col).astype(DATE_DTYPE)
            elif dtypes[c.name] == "str":
                col = col.astype("str")
            else:
                col = col.astype(dtypes[c.name])
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{table}.{c.name} cannot be converted to {dtypes[c.name]}: {exc}"
            ) from exc
        out[c.name] = col
    return pd.DataFrame(out, columns=names)


def plain_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    """Return a frame whose nullable integer columns are plain numpy columns, for analysis code.

    Optional integer and 0/1 columns are ``Int64`` in the canonical frame (they may be
    empty). Estimation code works on numpy dtypes: a column without missing values becomes
    ``int64`` (exactly the column a store without missing values always gave), a column
    with missing values ``float64`` with NaN.

    Parameters
    ----------
    df : pandas.DataFrame
        A frame (typically :func:`analysis.data.store.read_panel`); not modified.

    Returns
    -------
    pandas.DataFrame
        ``df`` itself if it has no nullable integer column, else a copy with those columns
        converted.

    Examples
    --------
    >>> plain_dtypes(pd.DataFrame({"a": pd.array([1, None], dtype="Int64")}))["a"].dtype
    dtype('float64')
    """
    nullable = [c for c in df.columns if isinstance(df[c].dtype, pd.Int64Dtype)]
    if not nullable:
        return df
    # A shallow copy: the other columns are shared with ``df`` (copy-on-write keeps ``df`` as
    # it is), so only the converted columns take new memory.
    out = df.copy(deep=False)
    for c in nullable:
        out[c] = out[c].astype("float64") if out[c].isna().any() else out[c].astype("int64")
    return out


def data_dictionary_markdown() -> str:
    """Render the data dictionary as Markdown tables (one per canonical table).

    Returns
    -------
    str
        Markdown text; ``data/README.md`` embeds it between marker comments. The
        ``required`` column says whether a file must have the column; "may be empty"
        whether its cells may be empty.
    """
    out: list[str] = []
    for table, key in (("panel", PANEL_KEY), ("postings", POSTINGS_KEY)):
        out.append(f"### `{table}` (key: {', '.join(f'`{k}`' for k in key)})\n")
        out.append("| column | required | type | unit | 中文表头 | description | allowed |")
        out.append("|---|---|---|---|---|---|---|")
        for c in columns(table):
            allowed = []
            if c.pattern:
                allowed.append(f"`{c.pattern}`")
            if c.min is not None or c.max is not None:
                allowed.append(f"{c.min:g} to {c.max:g}")
            if c.levels:
                allowed.append(", ".join(c.levels))
            if c.nullable:
                allowed.append("may be empty")
            if c.required:
                need = "yes"
            elif c.prefix_of:
                need = f"no (from `{c.prefix_of}`)"
            elif table == "panel" and c.name in OUTCOMES:
                need = "no (at least one outcome)"
            else:
                need = "no"
            out.append(
                f"| `{c.name}` | {need} | {c.kind} | {c.unit} | {c.label_zh} | {c.description} | "
                f"{'; '.join(allowed) or '-'} |"
            )
        out.append("")
    return "\n".join(out)
