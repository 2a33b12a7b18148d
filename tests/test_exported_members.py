import querykit


def test_all_is_complete_and_importable() -> None:
    public = {name for name in dir(querykit) if not name.startswith("_")}
    modules = {
        "admin",
        "bulk",
        "cli",
        "codecs",
        "columns",
        "compile",
        "db",
        "db_async",
        "embedded",
        "errors",
        "functions",
        "operators",
        "json_ops",
        "named",
        "prepared",
        "query",
        "raw",
        "relations",
        "search",
        "studio",
        "settings",
        "testing",
        "vectors",
    }
    assert sorted(public - set(querykit.__all__) - modules) == []
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
