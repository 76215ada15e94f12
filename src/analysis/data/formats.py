r"""Bureau formats into the canonical tables: Chinese headers, units, Excel quirks.

The statistics bureau sends a village table and the organisation department a list of
first secretaries, in the formats those offices use: XLSX or CSV in UTF-8, GBK or
GB18030, Chinese headers over one or two rows under a title, units in the headers,
subtotal rows, full-width digits, missing markers. :func:`read_bureau` turns such a file
into canonical columns (:mod:`analysis.data.schema`) and lists every problem it finds;
:mod:`analysis.data.ingest` then applies the canonical checks (types, bounds, keys) and
writes the store. Nothing here writes anything.

Headers are matched through the YAML files of ``data/mappings/`` (:func:`load_mappings`),
which the analysts edit: ``panel.yaml``, ``postings.yaml``, ``crosswalk.yaml`` (aliases
of every canonical column, accepted words) and ``units.yaml`` (unit factors).

Reading rules (fixed; the ingest report notes every rule it applied)
--------------------------------------------------------------------
Encodings
    CSV is read as UTF-8 (with or without BOM), else GB18030 (a superset of GBK and
    GB2312, the default of Chinese Excel), else UTF-16 with BOM (Excel's "Unicode
    text", tab-separated). The separator is a comma, or a tab if the first line has
    tabs and no commas.
Sheets
    Every worksheet of an XLSX file whose header can be found is read (one sheet per
    county is fine); sheets without a recognisable header (a 说明 sheet) are skipped and
    named in the report.
Header
    The header row is the row among the first 30 with the most cells that match an
    alias (at least two). Rows above it (titles, group headers such as 经济发展 over
    several columns) are used only for header cells that are empty in the header row
    (vertically merged cells). Rows right under it whose village-code cell holds no
    code and whose cells are all units (元, 万元, 公里, 单位：万元) or column numbers
    (甲, 乙, 1, 2, ...) belong to the header; their units apply to their columns.
Text
    Every cell is normalised with Unicode NFKC (full-width digits, letters and
    punctuation become half-width: ``１２３`` -> ``123``, ``（`` -> ``(``) and stripped of
    spaces, including the ideographic space.
Missing markers
    A cell that is empty or equals one of :data:`MISSING_MARKERS` (``—``, ``——``, ``-``,
    ``--``, ``/``, ``\``, ``无``, ``空``, ``暂无``, ``不详``, ``NA``, ``N/A``, ``#N/A``,
    ``null``, ``...``) is missing. Exception: in yes/no columns ``无`` means 0 (no),
    and in the end-date column of a postings list the words of ``in_post`` (``至今``,
    ``在岗``...) mean "still in post". Missing values are then refused by the canonical
    checks where a value is required (write 0 when there were none), except the
    ``carry_forward`` attributes of ``panel.yaml``, which are taken from the village's
    latest stored year.
Rows dropped (and counted in the report)
    Empty rows; subtotal rows, i.e. rows whose code, name or first cell is ``合计``,
    ``小计``, ``总计``, ends with one of them (``东山县小计``), starts with ``其中`` or is
    ``全市``/``全县``/``全区``...; footnote rows, i.e. rows with one non-empty cell that
    starts with ``注``, ``说明``, ``备注``, ``填表``, ``填报``, ``制表``, ``审核``,
    ``负责人``, ``联系人``, ``数据来源`` or ``资料来源``.
Numbers
    Thousands separators (``1,234,567``) are removed; a percent string (``35%``) is
    divided by 100 (share columns only); a number followed by a unit of the column's
    family (``12.5万元``) is converted with that unit; otherwise the header's unit
    (``（万元）``, or a unit row) is applied, else the column's ``default_unit``.
    Converted values are rounded to 6 decimals (binary rounding noise only).
Codes
    Spaces inside a code are removed. ``110101001001.0`` (a code stored as a number)
    is recoverable: the ``.0`` is dropped and the report notes the rows.
    ``1.10101E+11`` (scientific notation, as Excel shows and exports long numbers) has
    lost its last digits: the rows are refused and named. A code in scientific
    notation that still has all its digits (``9.90101001001E+11``) is converted.
Years
    ``2023``, ``2023年``, ``2023年度`` and ``2023.0`` are the year 2023. A panel file with
    no year column takes the year from the ``year`` argument (``--year``), else from the
    file name: the one four-digit number from 1900 to 2099 in the name that is not part
    of a longer number (``2025年村级统计.xlsx`` -> 2025). No year, two different years
    in the name, or a year argument that disagrees with the file's year column is an
    error.
Dates
    ``2023-07-15``, ``2023/7/15``, ``2023.7.15``, ``2023年7月15日``, ``20230715``, Excel
    date cells and Excel serial numbers (``45122``, from 1954 to 2119). A date without
    a day (``2023年7月``) is refused: the six-month rule of :mod:`analysis.treatment`
    needs the day.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import hashlib
import io
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paths
from analysis.data import schema
from analysis.data.problems import Problem

DEFAULT_MAPPING_DIR = paths.MAPPINGS_DIR
"""Where the analyst-editable mappings live (``data/mappings/``)."""

MAPPING_FILES = ("panel.yaml", "postings.yaml", "crosswalk.yaml", "units.yaml")

MISSING_MARKERS: tuple[str, ...] = (
    "",
    "—",
    "——",
    "―",
    "–",
    "-",
    "--",
    "/",
    "\\",
    "无",
    "空",
    "暂无",
    "不详",
    "NA",
    "N/A",
    "n/a",
    "#N/A",
    "null",
    "NULL",
    "...",
)
"""Cells (after NFKC normalisation and stripping) that mean "missing" (module docstring)."""

HEADER_SEARCH_ROWS = 30
"""The header is looked for among this many rows at the top of each sheet."""

_SUBTOTAL = re.compile(r"^(其中.*|.*(合计|小计|总计)|全(省|市|县|区|镇|乡|旗)(合计|总计)?)$")
_FOOTNOTE = re.compile(r"^(注|说明|备注|填表|填报|制表|审核|负责人|联系人|数据来源|资料来源)")
_NUMBERING = re.compile(r"^(甲|乙|丙|丁|戊|己|庚|辛|[0-9]{1,3}|[A-Za-z])$")
_UNIT_CELL = re.compile(r"^\(?(单位[:：]?)?([^()]{1,8})\)?$")
_YEAR_CELL = re.compile(r"^(\d{4})(?:\.0+)?(?:年度?)?$")
_YEAR_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
_CODE_FLOAT = re.compile(r"^(\d+)\.0+$")
_CODE_SCI = re.compile(r"^(\d)(?:\.(\d+))?[eE]\+?(\d+)$")
_DATE_YMD = re.compile(
    r"^(\d{4})\s*[年./-]\s*(\d{1,2})\s*[月./-]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
)
_DATE_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DATE_SERIAL = re.compile(r"^(\d{5})(?:\.0+)?$")
_DATE_MONTH = re.compile(r"^(\d{4})\s*[年./-]\s*(\d{1,2})\s*月?$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_PERCENT = re.compile(r"^([+-]?\d+(?:\.\d+)?)%$")
_NUMBER_UNIT = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*([^\d\s.+-][^\d]*)$")
_EXCEL_EPOCH = dt.date(1899, 12, 30)

_TABLE_ZH = {"panel": "村级统计表", "postings": "第一书记名单", "crosswalk": "村代码变更对照表"}


# ----------------------------------------------------------------------------- text


def normalise_text(value: str) -> str:
    """Return a cell's text with NFKC normalisation and surrounding spaces removed.

    Parameters
    ----------
    value : str
        The cell as read.

    Returns
    -------
    str
        Full-width characters made half-width (``１２３`` -> ``123``), stripped.

    Examples
    --------
    >>> normalise_text("　１２，３４５ ")
    '12,345'
    """
    if value.isascii():
        return value.strip()
    return unicodedata.normalize("NFKC", value).strip()


def normalise_header(value: str) -> str:
    r"""Return a header in the form aliases are compared in.

    NFKC, no spaces or line breaks, no ``*`` or ``※`` markers, lower case.

    Parameters
    ----------
    value : str
        A header cell or an alias.

    Returns
    -------
    str
        The normalised header.

    Examples
    --------
    >>> normalise_header("村集体收入\\n（万元）*")
    '村集体收入(万元)'
    """
    text = unicodedata.normalize("NFKC", str(value))
    return re.sub(r"[\s*※]+", "", text).lower()


def split_unit(header: str) -> tuple[str, str | None]:
    """Split a normalised header into its name and the unit in brackets at its end.

    Parameters
    ----------
    header : str
        Output of :func:`normalise_header`.

    Returns
    -------
    tuple of (str, str or None)
        The name and the unit (None if the header has no bracket at its end). A
        ``单位:`` prefix inside the bracket is dropped.

    Examples
    --------
    >>> split_unit("村集体收入(万元)")
    ('村集体收入', '万元')
    >>> split_unit("年份")
    ('年份', None)
    """
    m = re.fullmatch(r"(.+?)[(\[]([^()\[\]]*)[)\]]", header)
    if not m:
        return header, None
    unit = re.sub(r"^单位[:：]?", "", m.group(2))
    return m.group(1), unit


def cell_text(v: object) -> str:
    """Text of one spreadsheet cell as a user would read it in the file.

    Parameters
    ----------
    v : object
        A value from openpyxl, pyarrow or pandas.

    Returns
    -------
    str
        Stripped text; ``""`` for an empty cell; integral floats without ``.0``; dates
        as ``YYYY-MM-DD``.
    """
    if v is None:
        return ""
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, bool | np.bool_):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        if math.isnan(v):
            return ""
        if float(v).is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(float(v))
    if isinstance(v, pd.Timestamp | dt.datetime):
        if (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0):
            return v.date().isoformat()
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dt.time):
        return v.isoformat()
    if v is pd.NaT or (not isinstance(v, list | tuple | dict) and pd.isna(v)):
        return ""
    return str(v).strip()


def _normalise_series(s: pd.Series) -> tuple[pd.Series, int]:
    """NFKC-normalise and strip a text column; return it and the number of cells changed by NFKC."""
    s = s.astype(object).fillna("").astype(str)
    wide = s.str.contains(r"[^\x00-\x7f]", regex=True).to_numpy(dtype=bool)
    changed = 0
    if wide.any():
        before = s[wide]
        uniq = pd.unique(before.to_numpy(dtype=object))
        table = {u: unicodedata.normalize("NFKC", u) for u in uniq}
        after = before.map(table)
        changed = int((after.str.strip() != before.str.strip()).sum())
        s = s.copy()
        s[wide] = after
    return s.str.strip(), changed


# ----------------------------------------------------------------------------- mappings


@dataclass(frozen=True)
class ColumnMap:
    """How one canonical column is recognised in a bureau file.

    Attributes
    ----------
    name : str
        Canonical column (or ``name`` in postings lists: the secretary's name, used for
        the id only).
    aliases : tuple of str
        Normalised headers that mean this column.
    family : str or None
        Unit family (``units.yaml``) or None.
    default_unit : str or None
        Unit assumed when the header names none.
    values : dict of str to object
        Accepted words in cells (normalised) and the canonical value they stand for.
    """

    name: str
    aliases: tuple[str, ...]
    family: str | None = None
    default_unit: str | None = None
    values: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TableMap:
    """The mapping of one kind of file (``panel.yaml``, ``postings.yaml``, ``crosswalk.yaml``).

    Attributes
    ----------
    table : str
        ``panel``, ``postings`` or ``crosswalk``.
    source : pathlib.Path
        The YAML file.
    columns : dict of str to ColumnMap
        By canonical column.
    alias_index : dict of str to str
        Normalised alias to canonical column.
    ignore : frozenset of str
        Normalised headers recognised and not used.
    carry_forward : tuple of str
        Panel attributes taken from the latest stored year when missing.
    unit_types : dict of str to tuple of str
        Postings: words of each sending-unit type (normalised).
    batches : dict of str to str
        Postings: batch word to label template (``city-{year}``).
    default_batch : str
        Postings: label template for lists without a batch column.
    in_post : tuple of str
        Postings: end-date words meaning "still in post".
    """

    table: str
    source: Path
    columns: dict[str, ColumnMap]
    alias_index: dict[str, str]
    ignore: frozenset[str] = frozenset()
    carry_forward: tuple[str, ...] = ()
    unit_types: dict[str, tuple[str, ...]] = field(default_factory=dict)
    batches: dict[str, str] = field(default_factory=dict)
    default_batch: str = "city-{year}"
    in_post: tuple[str, ...] = ()

    def match(self, header: str) -> tuple[str | None, str | None]:
        """Return the canonical column a header means, and the unit it names.

        Parameters
        ----------
        header : str
            A header cell as written.

        Returns
        -------
        tuple of (str or None, str or None)
            Column (None if the header matches no alias) and unit (None if none).
        """
        h = normalise_header(header)
        if not h:
            return None, None
        if h in self.alias_index:
            return self.alias_index[h], None
        base, unit = split_unit(h)
        if base in self.alias_index:
            return self.alias_index[base], unit
        return None, None


@dataclass(frozen=True)
class Mappings:
    """All mappings of a mapping folder.

    Attributes
    ----------
    panel, postings, crosswalk : TableMap
        The three kinds of file.
    units : dict of str to dict of str to float
        Unit family to normalised unit to factor.
    folder : pathlib.Path
        Where they were read from.
    """

    panel: TableMap
    postings: TableMap
    crosswalk: TableMap
    units: dict[str, dict[str, float]]
    folder: Path

    def table(self, name: str) -> TableMap:
        """Return the mapping of ``panel``, ``postings`` or ``crosswalk``.

        Parameters
        ----------
        name : str
            The kind of file.

        Returns
        -------
        TableMap
            Its mapping.
        """
        return {"panel": self.panel, "postings": self.postings, "crosswalk": self.crosswalk}[name]


class MappingError(Exception):
    """The mapping files cannot be used; ``.problems`` says where and why.

    Parameters
    ----------
    problems : list of Problem
        What is wrong, with the YAML file and line.
    """

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


_CROSSWALK_COLUMNS = ("old_code", "new_code", "year_effective", "type", "weight")
_POSTINGS_EXTRA = ("name",)


def _yaml_problem(path: Path, line: int | None, problem: str, action: str, problem_zh: str, action_zh: str) -> Problem:
    return Problem(path.name, line, None, None, problem, action, problem_zh=problem_zh, action_zh=action_zh)


def _load_yaml(path: Path) -> tuple[object, list[Problem]]:
    import yaml

    if not path.exists():
        return None, [
            _yaml_problem(
                path,
                None,
                f"the mapping file {path} does not exist",
                "restore it from the repository (git checkout data/mappings) or point mapping_dir to the folder "
                "that holds panel.yaml, postings.yaml, crosswalk.yaml and units.yaml",
                f"映射文件 {path} 不存在",
                "从代码仓库恢复该文件（git checkout data/mappings），或指定包含这四个映射文件的文件夹",
            )
        ]
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")), []
    except UnicodeDecodeError:
        return None, [
            _yaml_problem(
                path,
                None,
                "the mapping file is not UTF-8 text",
                "save it as UTF-8 (any text editor can; Notepad: Save as, Encoding UTF-8)",
                "映射文件不是 UTF-8 编码",
                "用文本编辑器另存为 UTF-8 编码",
            )
        ]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, [
            _yaml_problem(
                path,
                line,
                f"the mapping file is not valid YAML ({what})",
                "correct the line (indent with spaces, not tabs; put a space after every ':' and ','; "
                "quote values that start with special characters such as % or *)",
                f"映射文件的 YAML 格式有误（{what}）",
                "修改该行：用空格缩进（不要用制表符），冒号和逗号后加空格，以 % 或 * 等特殊字符开头的值加引号",
            )
        ]


def _as_list(value: object) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None]
    if isinstance(value, str):
        return [value]
    return None


def _table_map(
    path: Path, doc: object, table: str, known_families: set[str], problems: list[Problem]
) -> TableMap:
    def bad(problem: str, action: str, problem_zh: str, action_zh: str) -> None:
        problems.append(_yaml_problem(path, None, problem, action, problem_zh, action_zh))

    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), dict):
        bad(
            "the mapping file has no 'columns:' section",
            "restore the file from the repository and add your aliases again",
            "映射文件缺少“columns:”部分",
            "从代码仓库恢复该文件后重新添加别名",
        )
        return TableMap(table, path, {}, {})
    if table == "crosswalk":
        allowed: tuple[str, ...] = _CROSSWALK_COLUMNS
        specs = {}
    else:
        specs = {c.name: c for c in schema.columns(table)}
        allowed = tuple(specs) + (_POSTINGS_EXTRA if table == "postings" else ())
    columns: dict[str, ColumnMap] = {}
    alias_index: dict[str, str] = {}
    for name, entry in doc["columns"].items():
        name = str(name)
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            bad(
                f"'{name}' is not a column of the {table} table{hint}",
                f"use one of {', '.join(allowed)}",
                f"“{name}”不是{_TABLE_ZH[table]}的标准列名",
                f"只能使用这些列名：{', '.join(allowed)}",
            )
            continue
        if isinstance(entry, list):
            entry = {"aliases": entry}
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            bad(
                f"the entry of {name} must be a list of aliases or a section with 'aliases:'",
                "write it like the other columns of the file",
                f"{name} 的写法有误：应为别名列表或包含“aliases:”的小节",
                "参照文件中其他列的写法修改",
            )
            continue
        aliases = _as_list(entry.get("aliases"))
        if aliases is None:
            bad(
                f"the aliases of {name} are not a list",
                "write them as [别名1, 别名2]",
                f"{name} 的别名不是列表",
                "写成 [别名1, 别名2] 的形式",
            )
            aliases = []
        family = entry.get("unit")
        if family is not None and str(family) not in known_families:
            bad(
                f"the unit family {family!r} of {name} is not in units.yaml",
                f"use one of {', '.join(sorted(known_families))}, or add the family to units.yaml",
                f"{name} 的单位类别“{family}”在 units.yaml 中不存在",
                f"改用 {', '.join(sorted(known_families))} 之一，或在 units.yaml 中添加该类别",
            )
            family = None
        values = entry.get("values") or {}
        if not isinstance(values, dict):
            bad(
                f"the values of {name} must be a section of word: value pairs",
                "write them as {是: 1, 否: 0}",
                f"{name} 的 values 应为“词: 值”的形式",
                "写成 {是: 1, 否: 0} 的形式",
            )
            values = {}
        spec = specs.get(name)
        if spec is not None and spec.kind == "category":
            for word, target in values.items():
                if target not in spec.levels:
                    bad(
                        f"the word {word!r} of {name} maps to {target!r}, which is not one of {', '.join(spec.levels)}",
                        f"map it to one of {', '.join(spec.levels)}",
                        f"{name} 中“{word}”对应的值“{target}”不是允许的取值",
                        f"改为 {', '.join(spec.levels)} 之一",
                    )
        all_aliases = [name, *aliases]
        if spec is not None:
            all_aliases.append(split_unit(normalise_header(spec.label_zh))[0])
        normed = []
        for a in all_aliases:
            n = normalise_header(a)
            if not n:
                continue
            other = alias_index.get(n)
            if other is not None and other != name:
                bad(
                    f"the alias {a!r} is listed under both {other} and {name}",
                    "keep it under one column only",
                    f"别名“{a}”同时出现在 {other} 和 {name} 下",
                    "只在一个列下保留该别名",
                )
                continue
            alias_index[n] = name
            if n not in normed:
                normed.append(n)
        columns[name] = ColumnMap(
            name,
            tuple(normed),
            str(family) if family is not None else None,
            normalise_header(str(entry["default_unit"])) if entry.get("default_unit") is not None else None,
            {normalise_text(str(k)): v for k, v in values.items()},
        )
    required = [c.name for c in schema.columns(table)] if table != "crosswalk" else list(_CROSSWALK_COLUMNS)
    for name in required:
        if name not in columns:
            columns[name] = ColumnMap(name, (normalise_header(name),))
            alias_index.setdefault(normalise_header(name), name)
    ignore = frozenset(normalise_header(h) for h in (_as_list(doc.get("ignore")) or []))
    carry = tuple(str(c) for c in (_as_list(doc.get("carry_forward")) or []))
    for c in carry:
        if c not in specs:
            bad(
                f"carry_forward names {c!r}, which is not a panel column",
                "list canonical panel columns only",
                f"carry_forward 中的“{c}”不是村级统计表的标准列名",
                "只列出标准列名",
            )
    unit_types: dict[str, tuple[str, ...]] = {}
    batches: dict[str, str] = {}
    if table == "postings":
        raw_types = doc.get("unit_types") or {}
        if not isinstance(raw_types, dict):
            raw_types = {}
        for t, words in raw_types.items():
            if t not in schema.UNIT_TYPES:
                bad(
                    f"unit_types has {t!r}, which is not a unit type",
                    f"use {', '.join(schema.UNIT_TYPES)}",
                    f"unit_types 中的“{t}”不是允许的单位类型",
                    f"只能使用 {', '.join(schema.UNIT_TYPES)}",
                )
                continue
            unit_types[t] = tuple(normalise_header(w) for w in (_as_list(words) or []))
        raw_batches = doc.get("batches") or {}
        if isinstance(raw_batches, dict):
            batches = {normalise_header(k): str(v) for k, v in raw_batches.items()}
    return TableMap(
        table,
        path,
        columns,
        alias_index,
        ignore,
        carry,
        unit_types,
        batches,
        str(doc.get("default_batch") or "city-{year}"),
        tuple(normalise_text(str(w)) for w in (_as_list(doc.get("in_post")) or [])),
    )


def load_mappings(mapping_dir: str | Path | None = None) -> Mappings:
    """Read and check the header mappings of a folder.

    Parameters
    ----------
    mapping_dir : str or pathlib.Path, optional
        Folder with ``panel.yaml``, ``postings.yaml``, ``crosswalk.yaml`` and
        ``units.yaml`` (default :data:`DEFAULT_MAPPING_DIR`, ``data/mappings``).

    Returns
    -------
    Mappings
        The mappings.

    Raises
    ------
    MappingError
        If a file is missing, is not valid YAML, lists an alias under two columns,
        names an unknown column, unit family or category value.

    Examples
    --------
    >>> m = load_mappings()
    >>> m.panel.match("村集体收入（万元）")
    ('collective_income', '万元')
    """
    folder = Path(mapping_dir) if mapping_dir is not None else DEFAULT_MAPPING_DIR
    problems: list[Problem] = []
    docs = {}
    for name in MAPPING_FILES:
        doc, probs = _load_yaml(folder / name)
        problems.extend(probs)
        docs[name] = doc
    if problems:
        raise MappingError(problems)
    units: dict[str, dict[str, float]] = {}
    units_doc = docs["units.yaml"]
    if not isinstance(units_doc, dict):
        problems.append(
            _yaml_problem(
                folder / "units.yaml",
                None,
                "units.yaml must hold unit families (money:, length:, ...)",
                "restore it from the repository",
                "units.yaml 应包含单位类别（money:、length: 等）",
                "从代码仓库恢复该文件",
            )
        )
        units_doc = {}
    for family, table in units_doc.items():
        units[str(family)] = {}
        for unit, factor in (table or {}).items():
            try:
                f = float(factor)
                if not math.isfinite(f) or f <= 0:
                    raise ValueError
            except (TypeError, ValueError):
                problems.append(
                    _yaml_problem(
                        folder / "units.yaml",
                        None,
                        f"the factor of {unit!r} in {family} is not a positive number ({factor!r})",
                        "write how many canonical units one of this unit is (万元: 10000)",
                        f"{family} 中“{unit}”的换算系数不是正数",
                        "写出一个该单位等于多少个标准单位（如 万元: 10000）",
                    )
                )
                continue
            units[str(family)][normalise_header(str(unit))] = f
    families = set(units)
    tables = {
        t: _table_map(folder / f"{t}.yaml", docs[f"{t}.yaml"], t, families, problems)
        for t in ("panel", "postings", "crosswalk")
    }
    for t, tm in tables.items():
        if isinstance(docs[f"{t}.yaml"], dict) and docs[f"{t}.yaml"].get("table", t) != t:
            problems.append(
                _yaml_problem(
                    folder / f"{t}.yaml",
                    None,
                    f"the file says table: {docs[f'{t}.yaml'].get('table')!r}, expected {t!r}",
                    f"write table: {t}",
                    f"文件中的 table 应为 {t}",
                    f"改为 table: {t}",
                )
            )
        for col in tm.columns.values():
            if col.family and col.default_unit and col.default_unit not in units.get(col.family, {}):
                problems.append(
                    _yaml_problem(
                        tm.source,
                        None,
                        f"the default unit {col.default_unit!r} of {col.name} is not in the {col.family} family of "
                        "units.yaml",
                        "add it to units.yaml or correct the default unit",
                        f"{col.name} 的默认单位“{col.default_unit}”不在 units.yaml 的 {col.family} 类别中",
                        "在 units.yaml 中添加该单位，或修改默认单位",
                    )
                )
    if problems:
        raise MappingError(problems)
    return Mappings(tables["panel"], tables["postings"], tables["crosswalk"], units, folder)


# ----------------------------------------------------------------------------- reading grids


@dataclass
class Note:
    """A rule the reader applied to a file, for the ingest report.

    Attributes
    ----------
    text : str
        In English.
    text_zh : str
        In Chinese.
    """

    text: str
    text_zh: str

    def __post_init__(self) -> None:
        # Row lists are built once, in English ("rows 5, 9 and 3 more"); say the tail in Chinese.
        self.text_zh = re.sub(r" and (\d+) more", r" 等（另有 \1 处）", self.text_zh)

    def __str__(self) -> str:
        return f"{self.text} / {self.text_zh}"


@dataclass
class _Sheet:
    name: str | None
    cells: pd.DataFrame  # text, columns 0..k-1
    first_row: int = 1  # spreadsheet row number of cells.iloc[0]


def _file_problem(name: str, problem: str, action: str, problem_zh: str, action_zh: str, **kw) -> Problem:
    return Problem(name, None, None, None, problem, action, problem_zh=problem_zh, action_zh=action_zh, **kw)


def _decode(data: bytes) -> tuple[str | None, str]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            return None, ""
    try:
        return data.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "GB18030/GBK"
    except UnicodeDecodeError:
        return None, ""


def _read_csv_grid(name: str, data: bytes) -> tuple[list[_Sheet], list[Problem], list[Note]]:
    text, encoding = _decode(data)
    if text is None:
        return [], [
            _file_problem(
                name,
                "the file is neither UTF-8, GBK/GB18030 nor UTF-16 text",
                "open it in Excel and save it again as 'CSV UTF-8' or as an .xlsx workbook",
                "文件编码无法识别（不是 UTF-8、GBK/GB18030 或 UTF-16）",
                "用 Excel 打开后另存为“CSV UTF-8”或 .xlsx 工作簿",
            )
        ], []
    notes = [] if encoding == "UTF-8" else [Note(f"read as {encoding} text", f"按 {encoding} 编码读取")]
    if not text.strip():
        return [], [
            _file_problem(
                name,
                "the file is empty",
                "export the table again with its header and data rows",
                "文件是空的",
                "重新导出带表头和数据的表格",
            )
        ], []
    first = text.split("\n", 1)[0]
    sep = "\t" if ("\t" in first and "," not in first) else ","
    try:
        width = max((len(r) for r in csv.reader(io.StringIO(text), delimiter=sep)), default=0)
        df = pd.read_csv(
            io.StringIO(text),
            header=None,
            names=list(range(width)),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
            quoting=csv.QUOTE_MINIMAL,
        )
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        return [], [
            _file_problem(
                name,
                f"the file cannot be read as CSV ({exc})",
                "open it in Excel and save it again as 'CSV UTF-8' or as an .xlsx workbook",
                "文件无法按 CSV 读取",
                "用 Excel 打开后另存为“CSV UTF-8”或 .xlsx 工作簿",
            )
        ], notes
    return [_Sheet(None, df.fillna(""), 1)], [], notes


def _read_xlsx_grid(name: str, data: bytes) -> tuple[list[_Sheet], list[Problem], list[Note]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, XML and its own errors
        return [], [
            _file_problem(
                name,
                f"the file cannot be read as an Excel workbook ({type(exc).__name__})",
                "open it in Excel and save it again as .xlsx (old .xls files are not read)",
                "文件无法按 Excel 工作簿读取",
                "用 Excel 打开后另存为 .xlsx（不读取旧的 .xls 格式）",
            )
        ], []
    sheets = []
    try:
        for ws in wb.worksheets:
            rows = [[cell_text(v) for v in r] for r in ws.iter_rows(values_only=True)]
            width = max((len(r) for r in rows), default=0)
            rows = [r + [""] * (width - len(r)) for r in rows]
            sheets.append(_Sheet(ws.title, pd.DataFrame(rows, columns=range(width), dtype=object), 1))
    finally:
        wb.close()
    return sheets, [], []


# ----------------------------------------------------------------------------- header


@dataclass
class _Header:
    row: int  # index of the header row in the sheet's cells
    first_data: int  # index of the first row under the header block
    columns: dict[int, tuple[str, str, str | None]]  # position -> (canonical, header text, unit)
    unmatched: list[tuple[int, str]]  # position, header text of columns not used
    table: str


def _row_texts(cells: pd.DataFrame, i: int) -> list[str]:
    return [normalise_text(str(v)) for v in cells.iloc[i].tolist()]


_Columns = dict[int, tuple[str, str, str | None]]


def _assign(sheet: _Sheet, h: int, tm: TableMap) -> tuple[_Columns, list[tuple[int, str]]]:
    """Map the columns of header row ``h`` (with the rows above it for empty cells) to canonical columns."""
    texts = _row_texts(sheet.cells, h)
    original = [re.sub(r"\s+", "", str(v)) for v in sheet.cells.iloc[h].tolist()]
    # Upper rows of the header block (group headers, vertically merged cells): at most 3.
    upper: list[list[str]] = []
    i = h - 1
    while i >= 0 and len(upper) < 3:
        row = _row_texts(sheet.cells, i)
        if not any(row):
            break
        upper.append(row)
        i -= 1
    columns: dict[int, tuple[str, str, str | None]] = {}
    unmatched: list[tuple[int, str]] = []
    for j, t in enumerate(texts):
        header = original[j] if j < len(original) else t
        col, unit = tm.match(t) if t else (None, None)
        if col is None and not t:
            for k, row in enumerate(upper):
                if j < len(row) and row[j]:
                    header = re.sub(r"\s+", "", str(sheet.cells.iat[h - 1 - k, j]))
                    col, unit = tm.match(row[j])
                    break
        if col is None:
            if header:
                unmatched.append((j, header))
            continue
        columns[j] = (col, header, unit)
    return columns, unmatched


def _detect_header(sheet: _Sheet, mappings: Mappings, tables: Sequence[str]) -> _Header | None:
    n = min(HEADER_SEARCH_ROWS, len(sheet.cells))
    best: tuple[int, int, str] | None = None  # (score, row, table)
    for i in range(n):
        if not any(_row_texts(sheet.cells, i)):
            continue
        for t in tables:
            columns, _ = _assign(sheet, i, mappings.table(t))
            score = len({c for c, _, _ in columns.values()})
            if score >= 2 and (best is None or score > best[0]):
                best = (score, i, t)
    if best is None:
        return None
    _, h, table = best
    tm = mappings.table(table)
    columns, unmatched = _assign(sheet, h, tm)
    # Rows under the header that hold units or column numbers belong to the header.
    code_pos = next((j for j, (c, _, _) in columns.items() if c in ("village_code", "old_code")), None)
    first_data = h + 1
    while first_data < len(sheet.cells) and first_data <= h + 3:
        row = _row_texts(sheet.cells, first_data)
        if not any(row):
            break
        code = row[code_pos] if code_pos is not None and code_pos < len(row) else ""
        if re.search(r"\d{6}", code):
            break
        units_here = {}
        ok = True
        for j, v in enumerate(row):
            if not v:
                continue
            m = _UNIT_CELL.fullmatch(normalise_header(v))
            unit = m.group(2) if m else None
            family = tm.columns[columns[j][0]].family if j in columns else None
            if family and unit and unit in mappings.units.get(family, {}):
                units_here[j] = unit
            elif _NUMBERING.fullmatch(v) or (m and m.group(1)):
                continue
            else:
                ok = False
                break
        if not ok:
            break
        for j, unit in units_here.items():
            col, header, old = columns[j]
            columns[j] = (col, f"{header}（{unit}）" if old is None else header, old or unit)
        first_data += 1
    return _Header(h, first_data, columns, unmatched, table)


# ----------------------------------------------------------------------------- the result


@dataclass
class BureauTable:
    """A bureau file read into canonical columns (not yet checked against the schema).

    Attributes
    ----------
    name : str
        File name.
    sha256 : str
        sha256 of the file's bytes.
    table : str
        ``panel``, ``postings`` or ``crosswalk``.
    values : dict of str to pandas.Series
        Canonical column to values: text for codes, names, categories and dates
        (``""`` = missing), float64 for numbers (NaN = missing), in canonical units.
    shown : dict of str to numpy.ndarray
        Canonical column to the cells as written in the file (for messages).
    reported : dict of str to numpy.ndarray
        Canonical column to a mask of cells already reported as problems.
    headers : dict of str to str
        Canonical column to its header in the file.
    rows : numpy.ndarray
        Spreadsheet row (XLSX) or line (CSV) of every data row.
    sheets : numpy.ndarray or None
        Worksheet of every data row (XLSX) or None (CSV).
    problems : list of Problem
        Every problem found while reading.
    notes : list of Note
        Every rule applied (encoding, units converted, rows dropped, ...).
    absent : set of str
        Canonical columns the file does not have.
    """

    name: str
    sha256: str
    table: str
    values: dict[str, pd.Series]
    shown: dict[str, np.ndarray]
    reported: dict[str, np.ndarray]
    headers: dict[str, str]
    rows: np.ndarray
    sheets: np.ndarray | None
    problems: list[Problem] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    absent: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.rows)


def _rows_text(rows: np.ndarray, sheets: np.ndarray | None, limit: int = 5) -> str:
    if sheets is not None and len(set(sheets.tolist())) > 1:
        items = [f"{s}!{r}" for s, r in zip(sheets[:limit], rows[:limit], strict=False)]
    else:
        items = [str(r) for r in rows[:limit]]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(items) + more


class _Context:
    """Where the cells of one bureau file are, for problems and notes."""

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
        self.problems.append(
            Problem(self.name, row, column, None, problem, action, sheet=sheet,
                    header=header if header is not None else self.headers.get(column or ""),
                    problem_zh=problem_zh, action_zh=action_zh)
        )

    def note(self, text: str, text_zh: str) -> None:
        self.notes.append(Note(text, text_zh))

    def where(self, mask: np.ndarray) -> str:
        idx = np.flatnonzero(mask)
        return _rows_text(self.rows[idx], None if self.sheets is None else self.sheets[idx])


# ----------------------------------------------------------------------------- converters


def _missing_mask(s: pd.Series) -> np.ndarray:
    return s.isin(MISSING_MARKERS).to_numpy(dtype=bool)


def _convert_code(ctx: _Context, col: str, s: pd.Series, shown: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    reported = np.zeros(len(s), dtype=bool)
    s = s.where(~pd.Series(_missing_mask(s), index=s.index), "")
    spaced = s.str.contains(r"\s", regex=True).to_numpy(dtype=bool)
    if spaced.any():
        s = s.str.replace(r"\s+", "", regex=True)
        ctx.note(f"{col}: spaces removed inside {int(spaced.sum())} codes",
                 f"{col}：删除了 {int(spaced.sum())} 个代码中的空格")
    floaty = s.str.fullmatch(_CODE_FLOAT.pattern).fillna(False).to_numpy(dtype=bool)
    if floaty.any():
        s = s.str.replace(r"\.0+$", "", regex=True)
        ctx.note(
            f"{col}: {int(floaty.sum())} codes were written as numbers with '.0' (rows {ctx.where(floaty)}); "
            "the '.0' was dropped",
            f"{col}：{int(floaty.sum())} 个代码被存成了带“.0”的数字（第 {ctx.where(floaty)} 行），已去掉“.0”",
        )
    sci = s.str.fullmatch(_CODE_SCI.pattern).fillna(False).to_numpy(dtype=bool)
    if sci.any():
        out = s.to_numpy(dtype=object).copy()
        lost = np.zeros(len(s), dtype=bool)
        fixed = np.zeros(len(s), dtype=bool)
        for i in np.flatnonzero(sci):
            m = _CODE_SCI.fullmatch(out[i])
            lead, frac, exp = m.group(1), m.group(2) or "", int(m.group(3))
            if len(frac.rstrip("0")) <= exp and len(lead + frac) >= exp + 1:
                out[i] = (lead + frac + "0" * (exp - len(frac)))[: exp + 1]
                fixed[i] = True
            else:
                lost[i] = True
        s = pd.Series(out, index=s.index, dtype=object)
        if fixed.any():
            ctx.note(
                f"{col}: {int(fixed.sum())} codes in scientific notation still had all their digits and were "
                f"converted (rows {ctx.where(fixed)})",
                f"{col}：{int(fixed.sum())} 个科学计数法代码的数字完整，已转换（第 {ctx.where(fixed)} 行）",
            )
        if lost.any():
            ctx.cells(
                col,
                lost,
                shown,
                "is a code in scientific notation (as Excel shows long numbers): its last digits are lost and "
                "cannot be recovered",
                "in the original workbook format the code column as Text, then save the CSV again (or send "
                "the .xlsx file itself, where the full codes are kept)",
                "是科学计数法形式的代码（Excel 显示长数字的方式），末尾数字已经丢失，无法恢复",
                "在原始工作簿中把代码列设置为“文本”格式后重新另存为 CSV（或直接提交保留完整代码的 .xlsx 文件）",
            )
            reported |= lost
            s = s.where(~pd.Series(lost, index=s.index), "")
    return s.astype(object), reported


def _convert_year(ctx: _Context, col: str, s: pd.Series, shown: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    missing = _missing_mask(s)
    m = s.str.extract(_YEAR_CELL.pattern, expand=False)
    ok = m.notna().to_numpy(dtype=bool)
    bad = ~ok & ~missing
    ctx.cells(
        col,
        bad,
        shown,
        "is not a year",
        "write the year as 2025 or 2025年",
        "不是年份",
        "年份写成 2025 或 2025年",
    )
    suffixed = ok & ~s.str.fullmatch(r"\d{4}").fillna(False).to_numpy(dtype=bool)
    if suffixed.any():
        ctx.note(
            f"{col}: {int(suffixed.sum())} years written with 年 (2025年) or as 2025.0 read as numbers",
            f"{col}：{int(suffixed.sum())} 个带“年”字（如 2025年）或形如 2025.0 的年份已按数字读取",
        )
    out = m.where(pd.Series(ok, index=s.index), "").astype(object)
    return out.fillna(""), bad


def _convert_text(ctx: _Context, col: str, s: pd.Series, shown: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    missing = _missing_mask(s)
    return s.where(pd.Series(~missing, index=s.index), "").astype(object), np.zeros(len(s), dtype=bool)


def _convert_category(
    ctx: _Context, col: str, s: pd.Series, shown: np.ndarray, cm: ColumnMap
) -> tuple[pd.Series, np.ndarray]:
    if cm.values:
        lookup = {k: str(v) for k, v in cm.values.items()}
        mapped = s.map(lookup)
        hit = mapped.notna().to_numpy(dtype=bool)
        s = s.where(pd.Series(~hit, index=s.index), mapped)
        if hit.any():
            ctx.note(
                f"{col}: Chinese words mapped to the canonical values ({', '.join(sorted(set(mapped[hit])))})",
                f"{col}：中文取值已换成标准取值",
            )
    lower = s.str.lower()
    s = s.where(~lower.isin(_levels_of(col)), lower)
    return _convert_text(ctx, col, s, shown)


def _levels_of(col: str) -> tuple[str, ...]:
    for t in ("panel", "postings"):
        for c in schema.columns(t):
            if c.name == col:
                return c.levels
    return ()


def _convert_number(
    ctx: _Context,
    col: str,
    s: pd.Series,
    shown: np.ndarray,
    cm: ColumnMap,
    units: dict[str, dict[str, float]],
    header_unit: str | None,
) -> tuple[pd.Series, np.ndarray]:
    """Parse a numeric column: separators, percent, units; float64 out (NaN = missing)."""
    reported = np.zeros(len(s), dtype=bool)
    family = units.get(cm.family or "", {})
    factor = 1.0
    if cm.values:
        lookup = {k: v for k, v in cm.values.items()}
        mapped = s.map(lookup)
        hit = mapped.notna().to_numpy(dtype=bool)
        if hit.any():
            s = s.where(pd.Series(~hit, index=s.index), mapped.astype(object).map(str))
            ctx.note(
                f"{col}: {int(hit.sum())} words such as 是/否/有/无 read as 1/0",
                f"{col}：{int(hit.sum())} 个“是/否/有/无”已按 1/0 读取",
            )
    missing = _missing_mask(s)
    if header_unit is not None and cm.family:
        if header_unit in family:
            factor = family[header_unit]
            if factor != 1:
                ctx.note(
                    f"{col}: header unit {header_unit} converted to the canonical unit (x {factor:g})",
                    f"{col}：表头单位 {header_unit} 已换算为标准单位（乘以 {factor:g}）",
                )
        else:
            ctx.column(
                col,
                f"the unit {header_unit!r} in the header is not a known {cm.family} unit",
                f"add it with its factor to the {cm.family} section of data/mappings/units.yaml, or write the "
                f"header with one of {', '.join(family)}",
                f"表头中的单位“{header_unit}”不是已知的单位",
                f"在 data/mappings/units.yaml 的 {cm.family} 部分添加该单位及换算系数，"
                f"或把表头单位改为 {'、'.join(family)} 之一",
            )
            reported[:] = True
            return pd.Series(np.full(len(s), np.nan), index=s.index), reported
    elif header_unit is None and cm.default_unit:
        factor = family.get(cm.default_unit, 1.0)
        if cm.family == "money":
            ctx.note(
                f"{col}: the header names no unit; read as {cm.default_unit}",
                f"{col}：表头未注明单位，按 {cm.default_unit} 读取",
            )
    text = s.where(pd.Series(~missing, index=s.index), "")
    num = pd.to_numeric(text.where(text != "", None), errors="coerce").astype("float64").to_numpy()
    vals = num * factor
    slow = np.isnan(num) & ~missing
    counts = {"thousands": 0, "percent": 0, "unit": 0}
    bad_idx: list[int] = []
    pct_bad: list[int] = []
    if slow.any():
        # Vectorised first: thousands separators and percent strings (the common cases).
        sub = text[slow]
        thousands = sub.str.fullmatch(_THOUSANDS.pattern).fillna(False).to_numpy(dtype=bool)
        if thousands.any():
            idx = np.flatnonzero(slow)[thousands]
            vals[idx] = pd.to_numeric(sub[thousands].str.replace(",", "", regex=False)).to_numpy(dtype=float) * factor
            counts["thousands"] = int(thousands.sum())
            slow[idx] = False
        if cm.family == "share":
            sub = text[slow]
            pct = sub.str.extract(_PERCENT.pattern, expand=False)
            hit = pct.notna().to_numpy(dtype=bool)
            if hit.any():
                idx = np.flatnonzero(slow)[hit]
                vals[idx] = pd.to_numeric(pct[hit]).to_numpy(dtype=float) / 100.0
                counts["percent"] = int(hit.sum())
                slow[idx] = False
        arr = text.to_numpy(dtype=object)
        for i in np.flatnonzero(slow):
            v = str(arr[i])
            m = _PERCENT.fullmatch(v)
            if m:
                if cm.family == "share":
                    vals[i] = float(m.group(1)) / 100.0
                    counts["percent"] += 1
                else:
                    pct_bad.append(i)
                continue
            m = _NUMBER_UNIT.fullmatch(v)
            if m and normalise_header(m.group(2)) in family:
                vals[i] = float(m.group(1)) * family[normalise_header(m.group(2))]
                counts["unit"] += 1
                continue
            bad_idx.append(i)
    if counts["thousands"]:
        ctx.note(f"{col}: thousands separators removed in {counts['thousands']} cells",
                 f"{col}：{counts['thousands']} 个单元格去掉了千位分隔符")
    if counts["percent"]:
        ctx.note(f"{col}: {counts['percent']} percent values divided by 100",
                 f"{col}：{counts['percent']} 个百分数已除以 100")
    if counts["unit"]:
        ctx.note(f"{col}: {counts['unit']} cells with a unit after the number converted",
                 f"{col}：{counts['unit']} 个数字后带单位的单元格已换算")
    if factor != 1 or counts["unit"] or counts["percent"]:
        vals = np.round(vals, 6)
    mask = np.zeros(len(s), dtype=bool)
    mask[bad_idx] = True
    if mask.any():
        ctx.cells(
            col,
            mask,
            shown,
            "is not a number",
            "write a plain number (digits, '.' for decimals; thousands separators, a unit of the column such as "
            "万元 and, in share columns, % are fine)",
            "不是数字",
            "填写数字（可用千位分隔符、本列的单位如“万元”，占比列可用 %），不要写“约”“以上”等文字",
        )
        reported |= mask
    pmask = np.zeros(len(s), dtype=bool)
    pmask[pct_bad] = True
    if pmask.any():
        ctx.cells(
            col,
            pmask,
            shown,
            "is a percentage, but this column is not a share",
            "write the value itself, not a percentage",
            "是百分数，但本列不是占比",
            "填写数值本身，不要写成百分数",
        )
        reported |= pmask
    vals[reported] = np.nan
    return pd.Series(vals, index=s.index, dtype="float64"), reported


def _excel_serial(n: int) -> str:
    return (_EXCEL_EPOCH + dt.timedelta(days=n)).isoformat()


def _convert_date(
    ctx: _Context, col: str, s: pd.Series, shown: np.ndarray, in_post: Sequence[str] = ()
) -> tuple[pd.Series, np.ndarray]:
    reported = np.zeros(len(s), dtype=bool)
    still = s.isin(list(in_post)).to_numpy(dtype=bool) if in_post else np.zeros(len(s), dtype=bool)
    if still.any():
        ctx.note(f"{col}: {int(still.sum())} cells such as 至今 read as 'still in post' (empty)",
                 f"{col}：{int(still.sum())} 个“至今”等单元格按“仍在岗”（空）读取")
    missing = _missing_mask(s) | still
    out = pd.Series("", index=s.index, dtype=object)
    ymd = s.str.extract(_DATE_YMD.pattern)
    hit = ymd[0].notna().to_numpy(dtype=bool) & ~missing
    if hit.any():
        out[hit] = (
            ymd.loc[hit, 0] + "-" + ymd.loc[hit, 1].str.zfill(2) + "-" + ymd.loc[hit, 2].str.zfill(2)
        ).to_numpy()
    comp = s.str.extract(_DATE_COMPACT.pattern)
    hit2 = comp[0].notna().to_numpy(dtype=bool) & ~missing & ~hit
    if hit2.any():
        out[hit2] = (comp.loc[hit2, 0] + "-" + comp.loc[hit2, 1] + "-" + comp.loc[hit2, 2]).to_numpy()
    ser = s.str.extract(_DATE_SERIAL.pattern, expand=False)
    serial_ok = ser.notna().to_numpy(dtype=bool) & ~missing & ~hit & ~hit2
    n_serial = 0
    for i in np.flatnonzero(serial_ok):
        n = int(ser.iloc[i])
        if 20_000 <= n <= 80_000:
            out.iloc[i] = _excel_serial(n)
            n_serial += 1
        else:
            serial_ok[i] = False
    if n_serial:
        ctx.note(f"{col}: {n_serial} Excel serial numbers read as dates",
                 f"{col}：{n_serial} 个 Excel 日期序号已转换为日期")
    done = hit | hit2 | serial_ok | missing
    month_only = s.str.fullmatch(_DATE_MONTH.pattern).fillna(False).to_numpy(dtype=bool) & ~done
    ctx.cells(
        col,
        month_only,
        shown,
        "has no day: the six-month rule that decides the cohort needs the exact date",
        "write the full date, e.g. 2025年3月15日 or 2025-03-15",
        "没有具体日期（日）：判断批次年份的“满六个月”规则需要准确日期",
        "填写完整日期，如 2025年3月15日 或 2025-03-15",
    )
    other = ~done & ~month_only
    ctx.cells(
        col,
        other,
        shown,
        "is not a date",
        "write the date as 2025年3月15日, 2025.3.15, 2025/3/15 or 2025-03-15",
        "不是日期",
        "日期写成 2025年3月15日、2025.3.15、2025/3/15 或 2025-03-15",
    )
    reported |= month_only | other
    parsed = pd.to_datetime(out.where(out != "", None), format="%Y-%m-%d", errors="coerce")
    invalid = parsed.isna().to_numpy() & (out != "").to_numpy(dtype=bool)
    ctx.cells(
        col,
        invalid,
        shown,
        "is not a valid calendar date",
        "correct the day or month",
        "不是有效的日期（该月没有这一天）",
        "更正日或月",
    )
    reported |= invalid
    out[invalid] = ""
    return out, reported


# ----------------------------------------------------------------------------- postings extras


def match_unit_type(text: str, tm: TableMap) -> tuple[str | None, list[str]]:
    """Return the sending-unit type a cell or a unit name stands for.

    Parameters
    ----------
    text : str
        A unit-type cell (``政法``) or the name of a sending unit (``北湖市公安局``).
    tm : TableMap
        The postings mapping (its ``unit_types``).

    Returns
    -------
    tuple of (str or None, list of str)
        The type (None if none or several match) and the types that matched.

    Examples
    --------
    >>> match_unit_type("公检法司", load_mappings().postings)
    ('law', ['law'])
    """
    t = normalise_header(text)
    if t in schema.UNIT_TYPES:
        return t, [t]
    exact = [k for k, words in tm.unit_types.items() if t in words]
    if len(exact) == 1:
        return exact[0], exact
    found = [k for k, words in tm.unit_types.items() if any(w and w in t for w in words)]
    if len(found) == 1:
        return found[0], found
    return None, found


def _unit_types(
    ctx: _Context, values: pd.Series, shown: np.ndarray, tm: TableMap, from_unit_names: bool
) -> tuple[pd.Series, np.ndarray]:
    reported = np.zeros(len(values), dtype=bool)
    out = values.copy()
    cache: dict[str, tuple[str | None, list[str]]] = {}
    col = "unit_type" if not from_unit_names else "sending_unit"
    for v in pd.unique(values.to_numpy(dtype=object)):
        if v != "":
            cache[v] = match_unit_type(v, tm)
    arr = values.to_numpy(dtype=object)
    unmatched = np.zeros(len(values), dtype=bool)
    several = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(arr):
        if v == "":
            continue
        t, found = cache[v]
        if t is None:
            (several if found else unmatched)[i] = True
        else:
            out.iloc[i] = t
    words = "; ".join(f"{k}: {'、'.join(w[:4])}" for k, w in tm.unit_types.items())
    what = "unit type" if not from_unit_names else "sending unit's name"
    ctx.cells(
        col,
        unmatched,
        shown,
        f"does not tell the sending-unit type: the {what} contains none of the words of unit_types in postings.yaml",
        f"write one of the types ({words}), or add a word of this name to unit_types in data/mappings/postings.yaml",
        "无法判断派出单位类型：不含 postings.yaml 中 unit_types 的任何词",
        "填写单位类型（政法、农业、经济实力强的单位、党政机关等），"
        "或在 data/mappings/postings.yaml 的 unit_types 中添加相应的词",
    )
    ctx.cells(
        col,
        several,
        shown,
        "matches words of several sending-unit types",
        "write the type itself (政法, 农业, 经济实力强的单位 or 党政机关) in the unit-type column",
        "同时符合几种派出单位类型",
        "在派出单位类型列直接填写类型（政法、农业、经济实力强的单位或党政机关）",
    )
    reported |= unmatched | several
    if from_unit_names and (~reported & (values != "").to_numpy(dtype=bool)).any():
        ctx.note(
            "unit_type: the list has no unit-type column; the type was read from the sending unit's name",
            "unit_type：名单中没有派出单位类型列，类型根据派出单位名称判断",
        )
    out[reported] = ""
    return out, reported


def _batches(values: pd.Series, start: pd.Series, tm: TableMap) -> tuple[pd.Series, int]:
    years = start.str.slice(0, 4)
    out = values.copy()
    mapped = 0
    for i, v in enumerate(values.to_numpy(dtype=object)):
        y = years.iloc[i] if isinstance(years.iloc[i], str) and years.iloc[i] else "unknown"
        if v == "":
            out.iloc[i] = tm.default_batch.replace("{year}", y)
            mapped += 1
            continue
        key = normalise_header(v)
        for word, template in tm.batches.items():
            if word in key:
                out.iloc[i] = template.replace("{year}", y)
                mapped += 1
                break
    return out, mapped


def secretary_id(village_code: str, name: str, start_date: str) -> str:
    """Return the id of a posting listed without one.

    Parameters
    ----------
    village_code, name, start_date : str
        Canonical village code, the secretary's name as written (normalised), and the
        start date ``YYYY-MM-DD``.

    Returns
    -------
    str
        ``FS-`` and the first 10 hexadecimal digits (upper case) of the SHA-256 of
        ``village_code|name|start_date``: the same list gives the same ids; the name
        is not stored.

    Examples
    --------
    >>> secretary_id("990101001001", "张三", "2025-03-15")[:3]
    'FS-'
    """
    digest = hashlib.sha256(f"{village_code}|{name}|{start_date}".encode()).hexdigest()
    return "FS-" + digest[:10].upper()


# ----------------------------------------------------------------------------- the reader


def _year_from_name(name: str) -> list[int]:
    stem = Path(name).stem
    return sorted({int(m.group(1)) for m in _YEAR_IN_NAME.finditer(stem)})


def read_grid(path: Path, data: bytes) -> tuple[list[_Sheet], list[Problem], list[Note]]:
    """Read a CSV or XLSX file as text cells, one grid per sheet.

    Parameters
    ----------
    path : pathlib.Path
        The file (its suffix decides the reader).
    data : bytes
        Its bytes.

    Returns
    -------
    tuple
        Sheets, problems (unreadable file) and notes (encoding).
    """
    if path.suffix.lower() == ".xlsx":
        return _read_xlsx_grid(path.name, data)
    return _read_csv_grid(path.name, data)


def read_bureau(
    path: str | Path,
    mappings: Mappings,
    year: int | None = None,
    data: bytes | None = None,
    tables: Sequence[str] = ("panel", "postings"),
) -> tuple[BureauTable | None, list[Problem]]:
    """Read a bureau file (village table, postings list or crosswalk) into canonical columns.

    Every rule of the module docstring is applied; every problem is collected (none
    raises). The canonical checks (types, bounds, keys) are applied afterwards by
    :mod:`analysis.data.ingest`.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.csv`` or ``.xlsx`` file.
    mappings : Mappings
        From :func:`load_mappings`.
    year : int, optional
        Year of a panel file without a year column (else taken from the file name).
    data : bytes, optional
        The file's bytes, if already read.
    tables : sequence of str
        The kinds of file to recognise (``("crosswalk",)`` for a crosswalk file).

    Returns
    -------
    tuple of (BureauTable or None, list of Problem)
        The table (None if the file cannot be read at all) and the problems that stop
        it from being read at all.
    """
    path = Path(path)
    name = path.name
    if data is None:
        data = path.read_bytes()
    sheets, problems, notes = read_grid(path, data)
    if problems:
        return None, problems
    found: list[tuple[_Sheet, _Header]] = []
    skipped: list[str] = []
    for sh in sheets:
        header = _detect_header(sh, mappings, tables)
        if header is None:
            if sh.name is not None:
                skipped.append(sh.name)
            continue
        found.append((sh, header))
    if not found:
        kinds = " or ".join(_TABLE_ZH[t] for t in tables)
        examples = {
            "panel": "村代码, 年份, 农民人均纯收入（元）",
            "postings": "村代码, 姓名, 派出单位, 到岗日期",
            "crosswalk": "原代码, 新代码, 生效年份, 类型",
        }
        return None, [
            _file_problem(
                name,
                "no header row was found: no row among the first 30 has two or more headers of the mappings",
                "check that this is a village table, a list of first secretaries or a crosswalk; if its headers are "
                f"different, add them as aliases in {mappings.folder}/*.yaml (e.g. "
                f"{'; '.join(examples[t] for t in tables)})",
                f"找不到表头：前 30 行中没有一行含有两个以上映射文件中的表头（应为{kinds}）",
                f"确认这是村级统计表、第一书记名单或村代码变更对照表；如果表头写法不同，"
                f"在 {mappings.folder} 的 yaml 文件中添加别名",
            )
        ]
    table_kinds = {h.table for _, h in found}
    if len(table_kinds) > 1:
        return None, [
            _file_problem(
                name,
                f"the sheets hold different kinds of table ({', '.join(sorted(table_kinds))})",
                "put the village table and the list of first secretaries in separate files",
                "各工作表的表格种类不同",
                "把村级统计表和第一书记名单分别存成两个文件",
            )
        ]
    table = found[0][1].table
    tm = mappings.table(table)
    if skipped:
        notes.append(Note(f"sheets without a recognisable header skipped: {', '.join(skipped)}",
                          f"跳过了没有可识别表头的工作表：{'、'.join(skipped)}"))

    # Column positions per sheet, and header-level problems.
    per_col: dict[str, list[pd.Series]] = {}
    header_of: dict[str, str] = {}
    unit_of: dict[str, str | None] = {}
    rows_parts: list[np.ndarray] = []
    sheet_parts: list[np.ndarray] = []
    header_problems: list[Problem] = []
    dropped = {"subtotal": [], "footnote": [], "empty": 0}
    unused: set[str] = set()
    sheet_parts_cols: list[tuple[dict[str, pd.Series], int]] = []
    for sh, hd in found:
        by_col: dict[str, list[tuple[int, str, str | None]]] = {}
        for j, (col, header, unit) in hd.columns.items():
            by_col.setdefault(col, []).append((j, header, unit))
        for col, items in by_col.items():
            if len(items) > 1:
                header_problems.append(
                    Problem(
                        name,
                        sh.first_row + hd.row,
                        col,
                        None,
                        f"several columns mean {col}: {', '.join(h for _, h, _ in items)}",
                        "keep one of them, or rename the others (a header may match one canonical column only)",
                        sheet=sh.name,
                        header=" / ".join(h for _, h, _ in items),
                        problem_zh=f"有多列都对应 {col}：{'、'.join(h for _, h, _ in items)}",
                        action_zh="只保留其中一列，或修改其他列的表头",
                    )
                )
        for _, h in hd.unmatched:
            if normalise_header(h) not in tm.ignore and split_unit(normalise_header(h))[0] not in tm.ignore:
                unused.add(h)
        body = sh.cells.iloc[hd.first_data :].reset_index(drop=True)
        rownum = np.arange(hd.first_data, len(sh.cells)) + sh.first_row
        if body.shape[0] == 0:
            continue
        norm_cols: dict[int, pd.Series] = {}
        changed_total = 0
        for j in range(body.shape[1]):
            norm_cols[j], changed = _normalise_series(body[j])
            changed_total += changed
        if changed_total:
            notes.append(Note(f"{changed_total} cells had full-width characters (１２３, ，) made half-width"
                              + (f" in sheet {sh.name}" if sh.name else ""),
                              f"{changed_total} 个单元格中的全角字符（１２３、，）已转为半角"))
        nonempty = np.zeros(len(body), dtype=int)
        for s in norm_cols.values():
            nonempty += (s != "").to_numpy(dtype=int)
        empty = nonempty == 0
        label_cols = {j for j, (c, _, _) in hd.columns.items() if c in ("village_code", "village_name", "old_code")}
        label_cols.add(0)
        subtotal = np.zeros(len(body), dtype=bool)
        for j in label_cols:
            if j in norm_cols:
                subtotal |= norm_cols[j].str.replace(r"\s", "", regex=True).str.fullmatch(
                    _SUBTOTAL.pattern).fillna(False).to_numpy(dtype=bool)
        first_text = pd.Series([""] * len(body), dtype=object)
        for j in sorted(norm_cols, reverse=True):
            s = norm_cols[j]
            first_text = s.where(s != "", first_text)
        footnote = (nonempty == 1) & first_text.str.match(_FOOTNOTE.pattern).fillna(False).to_numpy(dtype=bool)
        footnote &= ~subtotal
        keep = ~empty & ~subtotal & ~footnote
        dropped["subtotal"].extend(
            (f"{sh.name}!{r}" if sh.name and len(found) > 1 else str(r)) for r in rownum[subtotal & ~empty]
        )
        dropped["footnote"].extend(str(r) for r in rownum[footnote])
        dropped["empty"] += int(empty.sum())
        idx = np.flatnonzero(keep)
        for col, items in by_col.items():
            j, header, unit = items[0]
            header_of.setdefault(col, header)
            if col in unit_of and unit_of[col] != unit:
                header_problems.append(
                    Problem(
                        name,
                        sh.first_row + hd.row,
                        col,
                        None,
                        f"the sheets give {col} in different units ({unit_of[col] or 'none'} and {unit or 'none'})",
                        "use the same unit in every sheet",
                        sheet=sh.name,
                        header=header,
                        problem_zh="各工作表中该列的单位不一致",
                        action_zh="各工作表使用相同的单位",
                    )
                )
            unit_of.setdefault(col, unit)
        part = {col: norm_cols[items[0][0]].iloc[idx].reset_index(drop=True) for col, items in by_col.items()}
        sheet_parts_cols.append((part, len(idx)))
        rows_parts.append(rownum[idx])
        sheet_parts.append(np.full(len(idx), sh.name if sh.name is not None else "", dtype=object))
    all_cols = {c for part, _ in sheet_parts_cols for c in part}
    for col in all_cols:
        per_col[col] = [
            part.get(col, pd.Series([""] * length, dtype=object)) for part, length in sheet_parts_cols
        ]
    rows = np.concatenate(rows_parts) if rows_parts else np.array([], dtype=int)
    sheets_arr = np.concatenate(sheet_parts) if sheet_parts and found[0][0].name is not None else None
    if dropped["subtotal"]:
        n = len(dropped["subtotal"])
        shown_rows = ", ".join(dropped["subtotal"][:8]) + (f" and {n - 8} more" if n > 8 else "")
        notes.append(Note(f"{n} subtotal rows (合计/小计) dropped: rows {shown_rows}",
                          f"删除了 {n} 个合计/小计行：第 {shown_rows} 行"))
    if dropped["footnote"]:
        notes.append(Note(f"{len(dropped['footnote'])} footnote rows (注/填表人...) dropped: rows "
                          f"{', '.join(dropped['footnote'][:8])}",
                          f"删除了 {len(dropped['footnote'])} 个表注行"))
    if unused:
        notes.append(Note(f"columns not used: {', '.join(sorted(unused))}", f"未使用的列：{'、'.join(sorted(unused))}"))

    values_text = {c: pd.concat(parts, ignore_index=True) for c, parts in per_col.items()}
    ctx = _Context(name, rows, sheets_arr, header_of)
    ctx.problems.extend(header_problems)
    ctx.notes.extend(notes)
    n = len(rows)
    if n == 0:
        ctx.column(
            None,
            "the file has a header but no data rows",
            "export the table again with its data rows",
            "文件只有表头，没有数据行",
            "重新导出带数据行的表格",
        )
        return None, ctx.problems

    if table == "crosswalk":
        spec_kinds = {"old_code": "code", "new_code": "code", "year_effective": "int", "type": "category",
                      "weight": "float"}
    else:
        spec_kinds = {c.name: c.kind for c in schema.columns(table)}
    out_values: dict[str, pd.Series] = {}
    shown: dict[str, np.ndarray] = {}
    reported: dict[str, np.ndarray] = {}
    absent: set[str] = set()
    empty_col = pd.Series([""] * n, dtype=object)

    # year of a panel file
    if table == "panel":
        if "year" not in values_text:
            from_name = _year_from_name(name)
            if year is not None:
                values_text["year"] = pd.Series([str(int(year))] * n, dtype=object)
                ctx.note(f"year: the file has no year column; the year {year} was given",
                         f"年份：文件中没有年份列，使用指定的年份 {year}")
            elif len(from_name) == 1:
                values_text["year"] = pd.Series([str(from_name[0])] * n, dtype=object)
                ctx.note(f"year: the file has no year column; {from_name[0]} taken from the file name",
                         f"年份：文件中没有年份列，根据文件名取 {from_name[0]} 年")
            else:
                why = "has no year" if not from_name else f"has several years ({', '.join(map(str, from_name))})"
                ctx.column(
                    "year",
                    f"the file has no year column and its name {why}",
                    "add a 年份 column, give the year (study ingest --year 2025), or put the year in the file "
                    "name (e.g. 2025年村级统计.xlsx)",
                    "文件中没有年份列，文件名中也" + ("没有年份" if not from_name else "有多个年份"),
                    "添加“年份”列，或在导入时指定年份（study ingest --year 2025），或在文件名中写明年份"
                    "（如 2025年村级统计.xlsx）",
                )
                values_text["year"] = empty_col.copy()
                reported["year"] = np.ones(n, dtype=bool)
        elif year is not None:
            yrs = values_text["year"].str.extract(_YEAR_CELL.pattern, expand=False)
            other = yrs.notna() & (yrs != str(int(year)))
            if other.any():
                ctx.column(
                    "year",
                    f"the year column holds {', '.join(sorted(set(yrs[other])))} but the year {year} was given",
                    "give the year only for files without a year column, or correct it",
                    f"年份列中的年份（{'、'.join(sorted(set(yrs[other])))}）与指定的年份 {year} 不一致",
                    "只对没有年份列的文件指定年份，或更正指定的年份",
                )

    cols_order = list(spec_kinds) + (["name"] if table == "postings" else [])
    for col in cols_order:
        if col not in values_text:
            absent.add(col)
            continue
        s = values_text[col]
        shown[col] = s.to_numpy(dtype=object)
        kind = spec_kinds.get(col, "str")
        cm = tm.columns.get(col, ColumnMap(col, ()))
        pre = reported.get(col, np.zeros(n, dtype=bool))
        if col in ("year", "year_effective"):
            v, r = _convert_year(ctx, col, s, shown[col])
        elif kind == "code":
            v, r = _convert_code(ctx, col, s, shown[col])
        elif kind in ("int", "float", "binary"):
            v, r = _convert_number(ctx, col, s, shown[col], cm, mappings.units, unit_of.get(col))
        elif kind == "date":
            v, r = _convert_date(ctx, col, s, shown[col], tm.in_post if col == "end_date" else ())
        elif kind == "category" and col != "unit_type":
            v, r = _convert_category(ctx, col, s, shown[col], cm)
        else:
            v, r = _convert_text(ctx, col, s, shown[col])
        out_values[col] = v
        reported[col] = pre | r

    # Columns the file does not have.
    derivable = {"township_code": 9, "county_code": 6}
    for col in [c for c in spec_kinds if c in absent]:
        fill: pd.Series | None = None
        if table == "panel" and col in derivable and "village_code" in out_values:
            fill = out_values["village_code"].str.slice(0, derivable[col]).where(out_values["village_code"] != "", "")
            reported[col] = np.array(reported.get("village_code", np.zeros(n, dtype=bool)), dtype=bool) | (
                out_values["village_code"] == "").to_numpy(dtype=bool)
            ctx.note(f"{col}: not in the file; taken from the first {derivable[col]} digits of the village code",
                     f"{col}：文件中没有该列，取村代码的前 {derivable[col]} 位")
        elif table == "panel" and col in tm.carry_forward:
            fill = empty_col.copy()  # filled from the store by the ingest
        elif table == "postings" and col == "end_date":
            fill = empty_col.copy()
            ctx.note("end_date: the list has no end-date column; every secretary is taken as still in post",
                     "end_date：名单中没有离岗日期列，全部按仍在岗处理")
        elif table == "postings" and col in ("unit_type", "batch", "secretary_id"):
            fill = empty_col.copy()  # derived below
        elif table == "crosswalk" and col == "weight":
            fill = pd.Series(np.full(n, np.nan))
        if fill is not None:
            out_values[col] = fill.astype(object) if fill.dtype != "float64" else fill
            shown[col] = np.full(n, "", dtype=object)
            reported.setdefault(col, np.zeros(n, dtype=bool))
            continue
        cm = tm.columns.get(col)
        aliases = ", ".join(a for a in (cm.aliases if cm else ()) if not a.isascii())[:120]
        guess = difflib.get_close_matches(
            col if not cm else (cm.aliases[-1] if cm.aliases else col), sorted(unused), n=1, cutoff=0.5
        )
        hint = f"; the file has a column {guess[0]!r} that may be it" if guess else ""
        ctx.column(
            col,
            f"the required column {col} is missing: no header of the file matches its aliases ({aliases}){hint}",
            f"add the column, or add the file's header for it to the aliases of {col} in "
            f"{tm.source.name} (data/mappings)",
            f"缺少必需的列 {col}：文件中没有与其别名（{aliases}）相符的表头",
            f"添加该列；如果文件中该列用了别的表头，把这个表头加到 data/mappings/{tm.source.name} 中 {col} 的别名里",
            row=int(found[0][0].first_row + found[0][1].row),
            sheet=found[0][0].name,
            header="",
        )
        out_values[col] = empty_col.copy() if spec_kinds[col] not in ("int", "float", "binary") else pd.Series(
            np.full(n, np.nan))
        shown[col] = np.full(n, "", dtype=object)
        reported[col] = np.ones(n, dtype=bool)

    if table == "postings":
        _postings_extras(ctx, tm, out_values, shown, reported, absent, n)

    bt = BureauTable(
        name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        table=table,
        values={c: out_values[c] for c in spec_kinds if c in out_values},
        shown=shown,
        reported=reported,
        headers=header_of,
        rows=rows,
        sheets=sheets_arr,
        problems=ctx.problems,
        notes=ctx.notes,
        absent=absent,
    )
    return bt, []


def _postings_extras(
    ctx: _Context,
    tm: TableMap,
    values: dict[str, pd.Series],
    shown: dict[str, np.ndarray],
    reported: dict[str, np.ndarray],
    absent: set[str],
    n: int,
) -> None:
    """Derive unit types, batches and ids of a postings list."""
    from_names = "unit_type" in absent
    source = values["sending_unit"] if from_names else values["unit_type"]
    src_shown = shown["sending_unit"] if from_names else shown["unit_type"]
    types, bad = _unit_types(ctx, source.astype(object), src_shown, tm, from_names)
    values["unit_type"] = types
    reported["unit_type"] = reported.get("unit_type", np.zeros(n, dtype=bool)) | bad
    if from_names:
        reported["unit_type"] |= reported.get("sending_unit", np.zeros(n, dtype=bool))
    batches, mapped = _batches(values["batch"].astype(object), values["start_date"].astype(object), tm)
    values["batch"] = batches
    if "batch" in absent:
        ctx.note(f"batch: the list has no batch column; labelled {tm.default_batch} by start year",
                 f"batch：名单中没有批次列，按到岗年份标为 {tm.default_batch}")
    elif mapped:
        ctx.note(f"batch: {mapped} batch names mapped to labels (batches in postings.yaml)",
                 f"batch：{mapped} 个批次名称已按 postings.yaml 换成标准批次标签")
    if "secretary_id" in absent:
        if "name" in absent:
            ctx.column(
                "secretary_id",
                "the list has neither an id (编号) nor a name (姓名) column, so the postings cannot be told apart",
                "add the 姓名 column (names are used only to make the id and are not stored) or a 编号 column",
                "名单中既没有编号列也没有姓名列，无法区分各条派驻记录",
                "添加“姓名”列（姓名只用于生成编号，不会保存）或“编号”列",
                header="",
            )
            reported["secretary_id"] = np.ones(n, dtype=bool)
            values["secretary_id"] = pd.Series([""] * n, dtype=object)
            return
        names = values["name"].astype(object)
        empty = (names == "").to_numpy(dtype=bool)
        ctx.cells(
            "name",
            empty,
            shown["name"],
            "is empty: without an id column every posting needs the secretary's name",
            "fill in the name",
            "为空：名单没有编号列时，每条记录都需要填写姓名",
            "填写姓名",
        )
        vc = values["village_code"].astype(object).to_numpy()
        st = values["start_date"].astype(object).to_numpy()
        ids = np.array(
            [secretary_id(v, nm, s) if (nm and v and s) else "" for v, nm, s in zip(vc, names.to_numpy(), st,
                                                                                   strict=True)],
            dtype=object,
        )
        values["secretary_id"] = pd.Series(ids, dtype=object)
        shown["secretary_id"] = names.to_numpy(dtype=object)
        ctx.headers["secretary_id"] = ctx.headers.get("name", "姓名")
        reported["secretary_id"] = empty | reported.get("village_code", np.zeros(n, bool)) | reported.get(
            "start_date", np.zeros(n, bool)) | (vc == "") | (st == "")
        ctx.note("secretary_id: made from the village code, the name and the start date (names are not stored)",
                 "secretary_id：根据村代码、姓名和到岗日期生成（姓名不保存）")
