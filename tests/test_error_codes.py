"""Every error querykit raises on purpose has a stable code, shown in its message,
with a README entry that says what to do (as SQLAlchemy's error codes do).

The raise sites are read from the source: a new ``raise ValueError(...)`` in a
public function (what ``vector(0)`` used to do) fails here until it raises a
coded error or is added, with its reason, to ``NOT_REFUSALS``.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import querykit
from querykit.errors import ColumnTypeError, QueryKitError, SchemaError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "querykit"
README = ROOT / "README.md"
CODE = re.compile(r"qk-E\d{3}")

# Raises of exceptions outside the tree, each kept on purpose: (function, exception).
NOT_REFUSALS = {
    ("__getattr__", "AttributeError"): "the module __getattr__ protocol",
    ("__bool__", "TypeError"): "Python's truth-value protocol: `if eq(a, b):` is a bug",
    ("check_connection", "OperationalError"): "psycopg_pool's check callback: the pool replaces it",
    ("check_connection_async", "OperationalError"): "the same, async",
    ("parse_text_array", "ValueError"): "internal; callers turn it into a DecodeError",
    ("_json_datetime", "ValueError"): "internal; the nested decoder turns it into a DecodeError",
    ("_json_bytes", "ValueError"): "internal; the nested decoder turns it into a DecodeError",
    ("_sa_table", "LookupError"): "internal to migrate diff's draft; caught by its caller",
    ("_parse", "ValueError"): "the Studio's form parser; shown next to the cell as a form error",
    ("nested_result", "kind"): "a variable: NoResultError or MultipleResultsError",
    ("new", "BadParameter"): "typer's usage error for `migrate new` options (exit 2)",
    (
        "parse",
        "ValueError",
    ): "migrate.version.Version.parse: callers turn it into a MigrationFileError",
    ("__init__", "ValueError"): "migrate.version.Version(parts): the same signal, from the parts",
    ("__int__", "ValueError"): "Python's int() protocol: a dotted version is not one integer",
    ("_scalar", "TypeError"): "querykit.jsonable on a value it cannot write, as json.dumps does",
    ("cuid2", "ValueError"): "a bad length argument to an id generator, as random.choices does",
    ("count_argument", "error"): "a variable: the caller's class from the tree",
    ("seconds_argument", "error"): "a variable: the caller's class from the tree",
    ("_upto", "UsageError"): "pytest's own error for a bad qk_migrations marker",
    ("project_settings", "UsageError"): "pytest's own error for a bad [tool.querykit] table",
    ("convert_argument", "ValueError"): "as int()/float() do; parse_arguments and the Studio's "
    "form name the argument",
}
# Raised anywhere: typer's way to exit with a code, and codecs' internal signal that the
# executor, COPY and the inline renderer turn into a ValidationError / CompileError.
ANYWHERE = {"Exit", "ValueRejected"}


def _all_modules() -> None:
    for info in pkgutil.walk_packages([str(PACKAGE)], "querykit."):
        if info.name != "querykit.__main__":
            importlib.import_module(info.name)


def _tree() -> list[type[QueryKitError]]:
    _all_modules()
    out: list[type[QueryKitError]] = []
    todo: list[type[QueryKitError]] = [QueryKitError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


def _readme_entries() -> dict[str, str]:
    """anchor -> the heading under it: ``<a id="qk-e004"></a>`` then ``### qk-E004: SchemaError``."""
    found = re.findall(r'<a id="(qk-e\d{3})"></a>\n### (qk-E\d{3}): (\w+)', README.read_text())
    for anchor, code, _ in found:
        assert anchor == code.lower(), (anchor, code)
    return {anchor: name for anchor, _, name in found}


def test_every_class_in_the_tree_has_a_unique_code_and_its_readme_entry() -> None:
    entries = _readme_entries()
    owners: dict[str, str] = {}
    for cls in _tree():
        if cls is QueryKitError:
            assert cls.code == ""  # the root is never raised itself
            continue
        assert CODE.fullmatch(cls.code), f"{cls.__qualname__} has no code"
        if "code" not in vars(cls):
            assert cls.__name__.startswith("_"), f"{cls.__qualname__} shares its parent's code"
            continue
        assert cls.code not in owners, f"{cls.code}: {owners.get(cls.code)} and {cls.__name__}"
        owners[cls.code] = cls.__name__
        assert entries.get(cls.code.lower()) == cls.__name__, f"README has no #{cls.code.lower()}"
    assert set(entries) == {code.lower() for code in owners}, "README lists a code no class has"


def test_the_message_ends_with_the_code_and_its_anchor() -> None:
    error = SchemaError("pipeline_run has no column 'nmae'", column="nmae")
    assert str(error) == ("pipeline_run has no column 'nmae' (qk-E004; see README#qk-e004)")
    assert error.args == ("pipeline_run has no column 'nmae'",)  # the bare message stays


def _function_returns() -> dict[str, set[str]]:
    """Function name -> the names in its return annotation, over the whole package."""
    out: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
                names = {n.id for n in ast.walk(node.returns) if isinstance(n, ast.Name)}
                names |= {
                    n.value
                    for n in ast.walk(node.returns)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)
                }
                out.setdefault(node.name, set()).update(names)
    return out


def _raise_sites() -> list[tuple[str, int, str, str]]:
    """(file, line, enclosing function, name called) for every ``raise Name(...)``."""
    sites: list[tuple[str, int, str, str]] = []

    def visit(node: ast.AST, path: str, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            elif isinstance(child, ast.Raise) and isinstance(child.exc, ast.Call):
                func = child.exc.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "?")
                sites.append((path, child.lineno, function, name))
            visit(child, path, inner)

    for path in sorted(PACKAGE.rglob("*.py")):
        visit(ast.parse(path.read_text()), str(path.relative_to(ROOT)), "<module>")
    return sites


def test_every_raise_site_raises_a_coded_error() -> None:
    coded = {cls.__name__ for cls in _tree() if cls.code}
    returns = _function_returns()
    sites = _raise_sites()
    assert len(sites) > 300  # the scan sees the package
    bad = []
    for path, line, function, name in sites:
        if name in coded or name in ANYWHERE or (function, name) in NOT_REFUSALS:
            continue
        if name[:1].islower() or name.startswith("_"):  # a factory: its annotation says what
            made = returns.get(name, set())
            # The root in an annotation is fine: nothing constructs the root (test below).
            if made and made <= coded | {"None", "QueryKitError"}:
                continue
        bad.append(f"{path}:{line} in {function}(): raise {name}(...)")
    assert bad == [], "raise a QueryKitError subclass (it has a code):\n" + "\n".join(bad)


def test_nothing_raises_the_root_itself() -> None:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "QueryKitError":
                pytest.fail(f"{path}:{node.lineno}: raise a subclass with a code")


@pytest.mark.parametrize("make", [querykit.vector, querykit.halfvec, querykit.bit])
def test_a_vector_type_of_no_dimensions_is_a_coded_error(make: object) -> None:
    assert callable(make)
    for dim in (0, -3, 1.5, True):
        with pytest.raises(
            ColumnTypeError, match=r"must be an int >= 1, got .*; give the length"
        ) as info:
            make(dim)
        assert isinstance(info.value, ValueError)  # what it was before it had a class
        assert str(info.value).endswith("(qk-E005; see README#qk-e005)")
    assert make(3).dim == 3
