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
