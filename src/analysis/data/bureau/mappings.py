"""The analysts' header mappings: which bureau header means which canonical column.

Headers are matched through the YAML files of ``data/mappings/`` (:func:`load_mappings`),
which the analysts edit: ``panel.yaml``, ``postings.yaml``, ``crosswalk.yaml`` (aliases of
every canonical column, accepted words in cells, ``carry_forward`` attributes, unit types
and batches of postings lists) and ``units.yaml`` (unit factors by family). Every mistake
in them (a missing file, invalid YAML, an alias under two columns, an unknown column,
unit family or category value) is reported with the file and, where known, the line.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from analysis import paths
from analysis.data import schema
from analysis.data.bureau.text import normalise_header, normalise_text, split_unit
from analysis.data.problems import Problem, file_problem

DEFAULT_MAPPING_DIR = paths.MAPPINGS_DIR
"""Where the analyst-editable mappings live (``data/mappings/``)."""

MAPPING_FILES = ("panel.yaml", "postings.yaml", "crosswalk.yaml", "units.yaml")

TABLE_ZH = {"panel": "村级统计表", "postings": "第一书记名单", "crosswalk": "村代码变更对照表"}
"""Each kind of bureau file, as the offices name it."""

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


def _load_yaml(path: Path) -> tuple[object, list[Problem]]:
    import yaml

    if not path.exists():
        return None, [
            file_problem(
                path.name,
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
            file_problem(
                path.name,
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
            file_problem(
                path.name,
                f"the mapping file is not valid YAML ({what})",
                "correct the line (indent with spaces, not tabs; put a space after every ':' and ','; "
                "quote values that start with special characters such as % or *)",
                f"映射文件的 YAML 格式有误（{what}）",
                "修改该行：用空格缩进（不要用制表符），冒号和逗号后加空格，以 % 或 * 等特殊字符开头的值加引号",
                row=line,
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
        problems.append(file_problem(path.name, problem, action, problem_zh, action_zh))

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
                f"“{name}”不是{TABLE_ZH[table]}的标准列名",
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
            file_problem(
                "units.yaml",
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
                    file_problem(
                        "units.yaml",
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
                file_problem(
                    f"{t}.yaml",
                    f"the file says table: {docs[f'{t}.yaml'].get('table')!r}, expected {t!r}",
                    f"write table: {t}",
                    f"文件中的 table 应为 {t}",
                    f"改为 table: {t}",
                )
            )
        for col in tm.columns.values():
            if col.family and col.default_unit and col.default_unit not in units.get(col.family, {}):
                problems.append(
                    file_problem(
                        tm.source.name,
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
