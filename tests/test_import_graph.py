"""The package's import graph: no cycles, and every import goes down the layers.

The graph counts every import statement in ``querykit/``: module level, inside functions
(lazy imports) and under ``if TYPE_CHECKING:``. A lazy or type-only import still couples
two modules; hiding a cycle behind one does not remove it.

The layers are the folders (see the README's "How the code is laid out" and
``../shared/ARCHITECTURE.md``)::

    support  (codegen, arguments, trusted_sql) imports only errors; everyone may import it
    codecs   may import  errors
    schema   may import  codecs
    build    may import  schema, codecs
    compile  may import  build, schema, codecs
    execute  may import  compile, build (statement types only), schema, codecs, settings, embedded
    migrate  may import  settings, errors, the connection helpers
    tools (check, named, studio, testing, cli, admin)  import the public library
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "querykit"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(current: str, is_package: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


def imports_of(path: Path) -> Iterator[tuple[str, int]]:
    """Every querykit module ``path`` imports, with the line, lazy and TYPE_CHECKING included."""
    current = module_name(path)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("querykit"):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(current, is_package, node.level, node.module)
            if not target.startswith("querykit"):
                continue
            for alias in node.names:
                # ``from . import codecs`` imports the submodule, not a name of the package.
                sub = f"{target}.{alias.name}"
                yield (sub if _exists(sub) else target), node.lineno


def _exists(name: str) -> bool:
    rel = Path(*name.split("."))
    root = PACKAGE.parent
    return (root / rel).with_suffix(".py").exists() or (root / rel / "__init__.py").exists()


def graph() -> dict[str, dict[str, int]]:
    edges: dict[str, dict[str, int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        out = edges.setdefault(name, {})
        for target, line in imports_of(path):
            if target != name and not name.startswith(target + "."):
                out.setdefault(target, line)
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


# Which layer each module belongs to: the first matching prefix wins.
LAYER_OF: list[tuple[str, str]] = [
    ("querykit.errors", "errors"),
    ("querykit.codegen", "support"),
    ("querykit.arguments", "support"),
    ("querykit.trusted_sql", "support"),
    ("querykit.codecs", "codecs"),
    ("querykit.schema", "schema"),
    ("querykit.build", "build"),
    ("querykit.compile", "compile"),
    ("querykit.execute", "execute"),
    ("querykit.settings", "settings"),
    ("querykit.embedded", "embedded"),
    ("querykit.columns", "columns"),
    ("querykit.migrate", "migrate"),
    ("querykit.testing", "tool"),
    ("querykit.studio", "tool"),
    ("querykit.cli", "tool"),
    ("querykit.check", "tool"),
    ("querykit.named", "tool"),
    ("querykit.admin", "tool"),
    ("querykit._project", "settings"),
    ("querykit.__main__", "tool"),
    ("querykit", "api"),
]

_BELOW_API = {"errors", "codecs", "columns", "schema", "build", "compile", "execute", "settings"}
_BELOW_API |= {"embedded"}

_BELOW_API = {"errors", "codecs", "columns", "schema", "build", "compile", "execute", "settings"}
_BELOW_API |= {"embedded"}

# What each layer may import (its own layer is always allowed).
ALLOWED: dict[str, set[str]] = {
    "support": {"errors"},
    "errors": set(),
    "settings": {"errors"},
    "embedded": {"errors", "settings"},
    "codecs": {"errors"},
    # columns.py: the user-facing column helpers; they name codecs' types.
    "columns": {"errors", "codecs"},
    "schema": {"errors", "codecs", "columns"},
    "build": {"errors", "codecs", "columns", "schema"},
    "compile": {"errors", "codecs", "columns", "schema", "build"},
    "execute": {
        "errors",
        "codecs",
        "columns",
        "schema",
        "build",
        "compile",
        "settings",
        "embedded",
    },
    # migrate: the connection helpers only, never the builders.
    "migrate": {"errors", "settings", "embedded", "execute.connect"},
    "api": {"migrate", *_BELOW_API},
    "tool": {"api", "migrate", "tool", *_BELOW_API},
}


def layer(module: str) -> str:
    for prefix, name in LAYER_OF:
        if module == prefix or module.startswith(prefix + "."):
            return name
    raise AssertionError(f"{module} has no layer: add it to LAYER_OF")


def allowed(source: str, target: str) -> bool:
    src, dst = layer(source), layer(target)
    if (
        src == dst or dst == "support"
    ):  # support (codegen, arguments, trusted_sql) imports only errors
        return True
    rules = ALLOWED[src]
    if src == "migrate" and dst == "execute":
        return target in {"querykit.execute.connect"}
    return dst in rules


def test_every_module_has_a_layer() -> None:
    for name in graph():
        layer(name)


def test_no_import_cycles() -> None:
    found = cycles(graph())
    assert found == [], "import cycles (lazy and TYPE_CHECKING imports count):\n" + "\n".join(
        " -> ".join(c) for c in found
    )


def test_imports_follow_the_layers() -> None:
    wrong = [
        f"{source} (line {line}) imports {target}: {layer(source)} may not import {layer(target)}"
        for source, targets in graph().items()
        for target, line in targets.items()
        if not allowed(source, target)
    ]
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize(
    ("source", "target", "ok"),
    [
        ("querykit.build.select", "querykit.compile.shape", False),
        ("querykit.compile.shape", "querykit.build.select", True),
        ("querykit.codecs", "querykit.schema", False),
        ("querykit.migrate.runner", "querykit.build.select", False),
        ("querykit.migrate.runner", "querykit.execute.connect", True),
        ("querykit.execute.database", "querykit.compile.shape", True),
    ],
)
def test_the_rule_table_itself(source: str, target: str, ok: bool) -> None:
    assert allowed(source, target) is ok


def test_the_graph_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    # The walker must see imports hidden in functions and TYPE_CHECKING blocks,
    # or a cycle could hide there.
    src = tmp_path / "m.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from querykit.errors import QueryKitError\n"
        "def f():\n    from querykit import settings\n"
    )
    found = {t for t, _ in imports_of_foreign(src)}
    assert found == {"querykit.errors", "querykit.settings"}


def imports_of_foreign(path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("querykit"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield (sub if _exists(sub) else node.module), node.lineno


def private_imports() -> list[str]:
    """``from querykit.x import _name`` across modules: reach-through into another's privates."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        current = module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            target = _resolve(current, path.name == "__init__.py", node.level, node.module)
            if not target.startswith("querykit") or target == current:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{current} (line {node.lineno}) imports {target}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    # What two modules share gets a deliberate internal API (a public name in the
    # module that owns it), not a reach into its underscore names.
    assert private_imports() == []
