"""Every word the study shows a reader, in Chinese and English: one catalogue, one key per concept.

The catalogue is the YAML files of this folder (``vocabulary.yaml``: the concepts every layer
names -- outcomes, covariates, groups, cadre types, estimators, specifications, units;
``stages.yaml``: the figure texts and findings sentences of each study stage; ``brief.yaml``:
the fixed wording of the findings brief; ``tables.yaml``: table headings; ``messages.yaml``:
the ingest messages). Each file is a tree whose leaves hold both languages::

    outcome:
      income_per_capita:
        label: {zh: 农民人均纯收入（元）, en: Per-capita net income (yuan)}
        brief: {zh: 农民人均纯收入, en: rural per-capita net income}

A key is the dotted path to a leaf (``outcome.income_per_capita.label``). A concept is one node
(``outcome.income_per_capita``); where readers need it worded differently (a figure label, the
plain words of the brief), the node holds one leaf per *form* (``label``, ``brief``, ...), so
there is one place per concept and the forms sit side by side. A text may hold ``str.format``
fields (``{year}``, ``{share:.1%}``) that :func:`t` fills from keyword arguments.

This package imports nothing else of :mod:`analysis`, so every layer may use it -- the stages,
the figures, the brief, and the data layer: ``messages.yaml`` holds the messages of the ingest
(the problems found in input files and what to do about them, and the notes on reading rules
applied). A message is the node ``ingest.<area>.<kind>`` (``<area>``: the step that finds it --
``file``, ``header``, ``value``, ``table``, ...; ``<kind>``: what is wrong) with the leaves
``problem`` and ``action`` (or ``note``), and leaves for optional fragments a message may carry
(``hint``, ...); :func:`analysis.data.problems.message` turns one into the texts of a problem.
Ingest texts are always filled with ``str.format`` (a literal brace is written ``{{``), and a
message's fields are the same in both languages.

Examples
--------
>>> t("term.year", "en")
'Year'
>>> t("data_audit.figure.distribution_title", "zh", year=2023)
'结果变量分布（2023）'
>>> lookup("outcome.not_in_the_catalogue.label", "en", "not_in_the_catalogue")
'not_in_the_catalogue'
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

LANGS: tuple[str, ...] = ("zh", "en")
"""The languages of the catalogue (every leaf holds both)."""
FILES: tuple[str, ...] = ("vocabulary.yaml", "stages.yaml", "tables.yaml", "brief.yaml", "messages.yaml")
"""The catalogue's files, in this folder; a top-level namespace lives in one file only."""
FOLDER = Path(__file__).resolve().parent


def check_lang(lang: str) -> str:
    """Validate a language code.

    Parameters
    ----------
    lang : str
        ``"zh"`` or ``"en"``.

    Returns
    -------
    str
        The code.

    Raises
    ------
    ValueError
        For any other value.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def _is_leaf(node: Any) -> bool:
    return isinstance(node, Mapping) and bool(node) and set(node) <= set(LANGS)


def _flatten(node: Mapping[str, Any], prefix: str, out: dict[str, dict[str, str]], source: str) -> None:
    for name, child in node.items():
        name = str(name)
        if "." in name:
            raise ValueError(f"{source}: key part {name!r} under {prefix or '(top)'} contains a dot")
        key = f"{prefix}.{name}" if prefix else name
        if _is_leaf(child):
            if set(child) != set(LANGS):
                raise ValueError(f"{source}: {key} lacks {sorted(set(LANGS) - set(child))}")
            if not all(isinstance(child[lang], str) for lang in LANGS):
                raise ValueError(f"{source}: {key} has a text that is not a string")
            out[key] = {lang: child[lang] for lang in LANGS}
        elif isinstance(child, Mapping) and child:
            _flatten(child, key, out, source)
        else:
            raise ValueError(f"{source}: {key} is neither a group of keys nor a {{zh, en}} leaf")


@cache
def catalogue() -> Mapping[str, Mapping[str, str]]:
    """Read the catalogue: every key with its Chinese and English text.

    Returns
    -------
    mapping of str -> mapping of str -> str
        Key -> ``{"zh": ..., "en": ...}``, in file order.

    Raises
    ------
    ValueError
        If a leaf lacks a language, a top-level namespace spans two files, or a key is not a string path.
    """
    out: dict[str, dict[str, str]] = {}
    owner: dict[str, str] = {}
    for name in FILES:
        tree = yaml.safe_load((FOLDER / name).read_text(encoding="utf-8")) or {}
        for top in tree:
            if top in owner:
                raise ValueError(f"namespace {top!r} is in both {owner[top]} and {name}")
            owner[top] = name
        _flatten(tree, "", out, name)
    return out


def keys() -> list[str]:
    """Return every key of the catalogue.

    Returns
    -------
    list of str
        Dotted keys, in file order.
    """
    return list(catalogue())


def has(key: str) -> bool:
    """Return whether the catalogue holds ``key``.

    Parameters
    ----------
    key : str
        Dotted key.

    Returns
    -------
    bool
        True if it is a leaf of the catalogue.
    """
    return key in catalogue()


def t(key: str, lang: str = "zh", /, **values: Any) -> str:
    """Return the text of ``key`` in ``lang``, its ``{fields}`` filled from ``values``.

    Parameters
    ----------
    key : str
        Dotted key of the catalogue (``"term.year"``).
    lang : {"zh", "en"}
        Language.
    **values
        Values of the text's ``str.format`` fields (the text is returned as stored when none is given).

    Returns
    -------
    str
        The text.

    Raises
    ------
    KeyError
        For a key the catalogue does not hold (a misspelt key fails here, not in a reader's hands).
    ValueError
        For an unknown language.
    """
    check_lang(lang)
    try:
        text = catalogue()[key][lang]
    except KeyError:
        raise KeyError(f"{key!r} is not a key of the label catalogue (analysis/i18n/*.yaml)") from None
    return text.format(**values) if values else text


def lookup(key: str, lang: str, fallback: str, /, **values: Any) -> str:
    """Return the text of ``key``, or ``fallback`` when the catalogue has no such key.

    For names that come from the data (an outcome a real pipeline adds, a level of a subgroup):
    the name itself is the best label the study has for them.

    Parameters
    ----------
    key : str
        Dotted key.
    lang : {"zh", "en"}
        Language.
    fallback : str
        Returned as is when ``key`` is unknown.
    **values
        As in :func:`t`.

    Returns
    -------
    str
        The text, or the fallback.
    """
    return t(key, lang, **values) if has(key) else fallback


def column_label(name: str, lang: str = "zh") -> str:
    """Return the display label of a panel column: an outcome's or a covariate's ``label``.

    Parameters
    ----------
    name : str
        Canonical column name (``"income_per_capita"``, ``"distance_km"``).
    lang : {"zh", "en"}
        Language.

    Returns
    -------
    str
        ``outcome.<name>.label`` or ``covariate.<name>.label``; the name itself for any other column.

    Examples
    --------
    >>> column_label("roads_km", "en"), column_label("village_code", "en")
    ('Roads repaired (km)', 'village_code')
    """
    return lookup(f"outcome.{name}.label", lang, lookup(f"covariate.{name}.label", lang, name))
