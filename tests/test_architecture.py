"""Architecture rules of the package, checked on the source of every module under src/analysis.

1. No module uses another module's private names: no ``from analysis... import _name`` and
   no ``module._name`` on an ``analysis`` module (``import analysis.x as m``,
   ``from analysis import x``, or the dotted path ``analysis.x._name``).
2. A third-party library's private attributes are read in one adapter module only. pyfixest
   is read in :mod:`analysis.estimators.fixest`: anywhere else, a read of ``._beta_hat``,
   ``._vcov``, ``._data``, ``._coefnames``, ``._ssc``, ``._df_k``, ``._N`` (the attributes
   a pyfixest fit keeps), or of any ``._x`` attribute on an object that is not ``self``,
   ``cls`` or ``super()``, fails. The public namedtuple methods (``_asdict``, ...) are not
   private.

The checker itself is tested on synthetic snippets, so a rule that stopped detecting
anything would fail here too.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "analysis"

PYFIXEST_ADAPTER = "analysis.estimators.fixest"
PYFIXEST_PRIVATE = frozenset({"_beta_hat", "_vcov", "_data", "_coefnames", "_ssc", "_df_k", "_N"})

# Modules allowed to read a third-party library's private attributes: the library's one adapter.
ADAPTERS: dict[str, str] = {
    PYFIXEST_ADAPTER: "pyfixest",
    # python-docx has no public API for footers' fields, part blobs and row properties.
    "analysis.report.brief.docx_writer": "python-docx",
}

# Underscore names that are public API (namedtuple).
PUBLIC_UNDERSCORE = frozenset({"_asdict", "_replace", "_fields", "_field_defaults", "_make"})

# Known violations, each with the name it uses (none left). The test fails if one of them
# disappears (remove it from this list) or if any other violation appears.
KNOWN: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Violation:
    """One breach of the rules."""

    module: str
    line: int
    rule: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.rule}: {self.name}"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    base = SRC.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _resolve(node: ast.ImportFrom, module: str) -> str:
    """Absolute module of a (possibly relative) ``from ... import``."""
    if not node.level:
        return node.module or ""
    pkg = module.split(".")
    if not SRC.joinpath(*pkg, "__init__.py").is_file():
        pkg = pkg[:-1]  # a plain module: its package
    pkg = pkg[: len(pkg) - (node.level - 1)]
    return ".".join([*pkg, *([node.module] if node.module else [])])


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attribute accesses on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def check_source(source: str, module: str) -> list[Violation]:
    """Return the rule violations in the source of ``module``.

    Parameters
    ----------
    source : str
        Python source.
    module : str
        Its dotted module name (decides which adapter rules apply).

    Returns
    -------
    list of Violation
    """
    tree = ast.parse(source)
    out: list[Violation] = []
    aliases: dict[str, str] = {}  # local name -> analysis module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == PACKAGE or a.name.startswith(PACKAGE + "."):
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(node, module)
            if not (src == PACKAGE or src.startswith(PACKAGE + ".")):
                continue
            for a in node.names:
                if _private(a.name):
                    out.append(Violation(module, node.lineno, "private import", f"{src}.{a.name}"))
                elif _is_module(f"{src}.{a.name}"):
                    aliases[a.asname or a.name] = f"{src}.{a.name}"
    own_adapter_of = ADAPTERS.get(module)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not _private(node.attr):
            continue
        chain = _dotted(node.value)
        if chain is not None:
            head, _, rest = chain.partition(".")
            if head in aliases:
                target = aliases[head] if head != PACKAGE else PACKAGE
                target = f"{target}.{rest}" if rest else target
                if _is_module(target):
                    if target != module:
                        out.append(Violation(module, node.lineno, "private name of another module",
                                             f"{target}.{node.attr}"))
                    continue
        if own_adapter_of is not None or node.attr in PUBLIC_UNDERSCORE:
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        if (isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "super"):
            continue
        rule = ("pyfixest private attribute outside the adapter" if node.attr in PYFIXEST_PRIVATE
                else "private attribute of an object outside an adapter")
        out.append(Violation(module, node.lineno, rule, f"{chain or '<expr>'}.{node.attr}"))
    return out


def _all_violations() -> list[Violation]:
    found = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        found += check_source(path.read_text(encoding="utf-8"), _module_name(path))
    return found


def test_the_checker_sees_every_module():
    names = {_module_name(p) for p in (SRC / PACKAGE).rglob("*.py")}
    assert {PYFIXEST_ADAPTER, "analysis.estimators.twfe", "analysis.results"} <= names


def test_no_module_uses_another_modules_private_names_or_a_librarys_private_attributes():
    found = _all_violations()
    unexpected = [v for v in found if (v.module, v.name) not in KNOWN]
    assert not unexpected, "\n".join(map(str, unexpected))
    gone = KNOWN - {(v.module, v.name) for v in found}
    assert not gone, f"fixed, remove from KNOWN: {sorted(gone)}"


def test_pyfixest_private_attributes_are_read_in_the_adapter():
    text = (SRC / "analysis" / "estimators" / "fixest.py").read_text(encoding="utf-8")
    assert all(f"._{a.lstrip('_')}" in text for a in ("_vcov", "_data", "_N", "_ssc", "_df_k"))
    assert check_source(text, PYFIXEST_ADAPTER) == []


# ---------------------------------------------------------------------------------- the checker
@pytest.mark.parametrize(("snippet", "rule", "name"), [
    ("from analysis.estimators.twfe import _feols\n", "private import", "analysis.estimators.twfe._feols"),
    ("from .twfe import prepare_panel, _as_list as al\n", "private import",
     "analysis.estimators.twfe._as_list"),
    ("from analysis.inference import honest\nx = honest._event_study_inputs\n",
     "private name of another module", "analysis.inference.honest._event_study_inputs"),
    ("import analysis.estimators.twfe as tw\ntw._ssc_record(1, 2)\n",
     "private name of another module", "analysis.estimators.twfe._ssc_record"),
    ("import analysis.estimators.twfe\nanalysis.estimators.twfe._feols(p, [])\n",
     "private name of another module", "analysis.estimators.twfe._feols"),
    ("def f(fit):\n    return fit._beta_hat\n", "pyfixest private attribute outside the adapter", "fit._beta_hat"),
    ("def f(res):\n    return res.extras['fit']._vcov\n", "pyfixest private attribute outside the adapter",
     "<expr>._vcov"),
    ("def f(self):\n    return self.model._N\n", "pyfixest private attribute outside the adapter", "self.model._N"),
    ("def f(obj):\n    return obj._Y_hat_response\n", "private attribute of an object outside an adapter",
     "obj._Y_hat_response"),
])
def test_the_checker_catches_an_offending_snippet(snippet, rule, name):
    found = check_source(snippet, "analysis.estimators.poisson")
    assert [(v.rule, v.name) for v in found] == [(rule, name)]


@pytest.mark.parametrize("snippet", [
    "from analysis.estimators.fixest import feols\n",
    "from analysis.data.formats import cell_text as _cell_text\n",
    "class A:\n    def f(self):\n        return self._x\n",
    "class A:\n    @classmethod\n    def f(cls):\n        return cls._x\n",
    "class B(A):\n    def f(self):\n        return super()._x()\n",
    "def f(rows):\n    return [r._asdict() for r in rows]\n",
    "import numpy as np\nx = np.__version__\n",
])
def test_the_checker_lets_legitimate_code_through(snippet):
    assert check_source(snippet, "analysis.estimators.poisson") == []


def test_the_adapter_may_read_pyfixest_privates_but_not_other_modules_privates():
    assert check_source("def f(fit):\n    return fit._vcov\n", PYFIXEST_ADAPTER) == []
    found = check_source("from analysis.estimators.twfe import _x\n", PYFIXEST_ADAPTER)
    assert [v.rule for v in found] == ["private import"]
