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
        "vectors",
    }
    assert sorted(public - set(querykit.__all__) - modules) == []
    for name in querykit.__all__:
        assert hasattr(querykit, name), name
