import querykit


def test_all_equals_the_public_names() -> None:
    """``__all__`` is exactly the public surface (as httpx's test holds it): every public
    name of the package is in it, and everything in it exists. Subpackages and modules
    (``querykit.build``, ``querykit.columns``...) are reached by import, not exported,
    except ``migrate`` and ``columns``, which ``__all__`` names on purpose."""
    import pkgutil
    from types import ModuleType

    submodules = {m.name for m in pkgutil.iter_modules(querykit.__path__)}
    public = {
        name
        for name in dir(querykit)
        if not name.startswith("_")
        and name.isidentifier()  # pytest's assert rewriting adds "@py_builtins"
        and not (name in submodules and isinstance(getattr(querykit, name, None), ModuleType))
    }
    exported_modules = querykit._SUBMODULES | {"__version__"}
    assert sorted(public ^ (set(querykit.__all__) - exported_modules)) == []
    for name in querykit.__all__:
        assert hasattr(querykit, name), name


def test_the_lazy_table_matches_the_typed_imports() -> None:
    """querykit imports its modules on first use; type checkers read the TYPE_CHECKING block.

    Both must name the same module for each name, or one of them lies.
    """
    import ast
    from pathlib import Path

    tree = ast.parse(Path(querykit.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If))
    typed: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            module = "." * node.level + (node.module or alias.name)
            typed[alias.asname or alias.name] = module
    assert typed == querykit._EXPORTS
    assert set(typed) | {"__version__"} == set(querykit.__all__)


# Modules that are querykit's public surface in full: the lazy table in querykit/__init__.py
# lists their ``__all__`` again, and a name added to one list must be added to the other.
EXPORTED_IN_FULL = {
    ".errors",
    ".build.functions",
    ".build.jsonb",
    ".build.operators",
    ".build.query",
    ".build.raw",
    ".execute.prepared_query",
    ".execute.prepared_query_async",
    ".schema.row_pos",
}


def test_the_lazy_table_matches_each_module_all() -> None:
    """The lazy table repeats names that each module's ``__all__`` declares: the two must not
    drift. A module exported in full has the same names in both; any other module exports
    a chosen part of its ``__all__`` (``querykit.compile`` keeps ``build_shape`` to itself),
    and never a name its own ``__all__`` leaves out."""
    import importlib

    assert set(querykit._LAZY) >= EXPORTED_IN_FULL
    for module, names in querykit._LAZY.items():
        declared = importlib.import_module(module, "querykit").__all__
        if module in EXPORTED_IN_FULL:
            assert sorted(names) == sorted(declared), module
        else:
            assert set(names) <= set(declared), (module, sorted(set(names) - set(declared)))
            assert set(names) != set(declared), f"{module} is exported in full: list it above"
