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
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from analysis import paths
from analysis.data import schema
from analysis.data.bureau.text import normalise_header, normalise_text, split_unit
from analysis.data.problems import Problem, Words, both, file_problem, message

DEFAULT_MAPPING_DIR = paths.MAPPINGS_DIR
"""Where the analyst-editable mappings live (``data/mappings/``)."""

MAPPING_FILES = ("panel.yaml", "postings.yaml", "crosswalk.yaml", "units.yaml")

TABLE_NAMES: dict[str, dict[str, str]] = {
    "panel": both("ingest.table_name.panel"),
    "postings": both("ingest.table_name.postings"),
    "crosswalk": both("ingest.table_name.crosswalk"),
}
"""Each kind of bureau file, by language (Chinese: as the offices name it; English: the table's name)."""

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
            file_problem(path.name, **message("ingest.mapping.missing_file", path=path))
        ]
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")), []
    except UnicodeDecodeError:
        return None, [
            file_problem(path.name, **message("ingest.mapping.not_utf8"))
        ]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, [
            file_problem(path.name, row=line, **message("ingest.mapping.not_yaml", what=what))
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
    def bad(words: Words) -> None:
        problems.append(file_problem(path.name, **words))

    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), dict):
        bad(message("ingest.mapping.no_columns"))
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
            hint = both("ingest.did_you_mean", close=close[0]) if close else ""
            bad(message("ingest.mapping.unknown_column", name=name, table=TABLE_NAMES[table],
                        hint=hint, allowed=", ".join(allowed)))
            continue
        if isinstance(entry, list):
            entry = {"aliases": entry}
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            bad(message("ingest.mapping.bad_entry", name=name))
            continue
        aliases = _as_list(entry.get("aliases"))
        if aliases is None:
            bad(message("ingest.mapping.aliases_not_a_list", name=name))
            aliases = []
        family = entry.get("unit")
        if family is not None and str(family) not in known_families:
            bad(message("ingest.mapping.unknown_family", name=name, family=family,
                        families=", ".join(sorted(known_families))))
            family = None
        values = entry.get("values") or {}
        if not isinstance(values, dict):
            bad(message("ingest.mapping.values_not_pairs", name=name))
            values = {}
        spec = specs.get(name)
        if spec is not None and spec.kind == "category":
            for word, target in values.items():
                if target not in spec.levels:
                    bad(message("ingest.mapping.unknown_level", name=name, word=word, target=target,
                                levels=", ".join(spec.levels)))
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
                bad(message("ingest.mapping.alias_twice", alias=a, other=other, name=name))
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
            bad(message("ingest.mapping.carry_forward_column", column=c))
    unit_types: dict[str, tuple[str, ...]] = {}
    batches: dict[str, str] = {}
    if table == "postings":
        raw_types = doc.get("unit_types") or {}
        if not isinstance(raw_types, dict):
            raw_types = {}
        for t, words in raw_types.items():
            if t not in schema.UNIT_TYPES:
                bad(message("ingest.mapping.unknown_unit_type", type=t, types=", ".join(schema.UNIT_TYPES)))
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


def load_mappings(mapping_dir: str | os.PathLike | None = None) -> Mappings:
    """Read and check the header mappings of a folder.

    Parameters
    ----------
    mapping_dir : str or path-like, optional
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
            file_problem("units.yaml", **message("ingest.mapping.no_unit_families"))
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
                    file_problem("units.yaml", **message("ingest.mapping.bad_factor", unit=unit, family=family,
                                                         factor=factor))
                )
                continue
            units[str(family)][normalise_header(str(unit))] = f
    families = set(units)
    tables = {
        t: _table_map(folder / f"{t}.yaml", docs[f"{t}.yaml"], t, families, problems)
        for t in ("panel", "postings", "crosswalk")
    }
    for t, tm in tables.items():
        doc = docs[f"{t}.yaml"]
        if isinstance(doc, dict) and doc.get("table", t) != t:
            problems.append(
                file_problem(f"{t}.yaml", **message("ingest.mapping.wrong_table", said=doc.get("table"), table=t))
            )
        for col in tm.columns.values():
            if col.family and col.default_unit and col.default_unit not in units.get(col.family, {}):
                problems.append(
                    file_problem(tm.source.name, **message("ingest.mapping.unknown_default_unit", unit=col.default_unit,
                                                           column=col.name, family=col.family))
                )
    if problems:
        raise MappingError(problems)
    return Mappings(tables["panel"], tables["postings"], tables["crosswalk"], units, folder)
