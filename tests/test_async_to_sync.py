"""tools/async_to_sync.py: the sync modules are what their async sources give, rule by rule.

The generated modules are checked byte for byte (``--check``); each rule is
proven on a small input; and the two faces that come out are compared by
``inspect``, so a method, a parameter or a docstring cannot go missing on one
side. What the generated code *does* is proven by the execute tests, which
run the sync and the async face against a live server.
"""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "async_to_sync.py"


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("async_to_sync", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["async_to_sync"] = module
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def _unasync(source: str) -> str:
    result: str = tool.unasync(inspect.cleandoc(source) + "\n")
    return result


# -- the repository's generated modules ------------------------------------------------------


def test_generated_modules_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(TOOL), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "source", sorted(p.relative_to(ROOT).as_posix() for p in tool.sources()), ids=str
)
def test_each_generated_module_says_where_it_comes_from(source: str) -> None:
    target = tool.target_of(ROOT / source)
    first = target.read_text().splitlines()[0]
    assert first == f"# Generated from {source} by tools/async_to_sync.py; do not edit."


def test_the_sources_cover_the_faces() -> None:
    names = {p.name for p in tool.sources()}
    assert {"database_async.py", "prepared_query_async.py", "bulk_run_async.py"} <= names
    assert "loading_async.py" in names


def test_check_names_a_stale_file_and_writing_fixes_it(tmp_path: Path) -> None:
    source = tmp_path / "thing_async.py"
    source.write_text("async def get_async(db: AsyncDatabase) -> int:\n    return await db.one()\n")
    assert tool.main([str(source)]) == 0
    generated = tmp_path / "thing.py"
    assert "def get(db: Database) -> int:\n    return db.one()\n" in generated.read_text()
    assert tool.main(["--check", str(source)]) == 0

    generated.write_text(generated.read_text() + "\nEDITED = True\n")
    check = subprocess.run(
        [sys.executable, str(TOOL), "--check", str(source)], capture_output=True, text=True
    )
    assert check.returncode == 1
    assert "thing.py: stale" in check.stdout and "+EDITED = True" not in check.stdout
    assert "-EDITED = True" in check.stdout  # the hand edit the generator would undo

    assert tool.main([str(source)]) == 0
    assert "EDITED" not in generated.read_text()


# -- each rule ---------------------------------------------------------------------------------


def test_async_keywords_go() -> None:
    out = _unasync(
        """
        async def f(conn):
            async with conn.transaction() as tx, lock:
                async for row in tx.stream(q):
                    await handle(await row)
        """
    )
    assert out == (
        "def f(conn):\n"
        "    with conn.transaction() as tx, lock:\n"
        "        for row in tx.stream(q):\n"
        "            handle(row)\n"
    )


def test_async_as_a_plain_word_stays() -> None:
    # "async" before anything but def/with/for is not a keyword use to strip.
    assert _unasync("mode = async_mode\nasync_ = 1") == "mode = async_mode\nasync_ = 1\n"


@pytest.mark.parametrize(
    ("name", "sync"),
    [
        ("AsyncDatabase", "Database"),
        ("AsyncTransaction", "Transaction"),
        ("AsyncConnection", "Connection"),
        ("AsyncPool", "Pool"),
        ("AsyncIterator", "Iterator"),
        ("_AsyncRunner", "_Runner"),
        ("__aenter__", "__enter__"),
        ("__aexit__", "__exit__"),
        ("__aiter__", "__iter__"),
        ("aclose", "close"),
        ("aclosing", "closing"),
        ("asynccontextmanager", "contextmanager"),
        ("StopAsyncIteration", "StopIteration"),
        ("connect_async", "connect"),
        ("db_async", "db"),
        ("run_bulk_async", "run_bulk"),
        ("asyncio", "asyncio"),  # a module, not a name with a sync twin
        ("Asynchronous", "Asynchronous"),  # no capital after "Async"
        ("_async", "_async"),
    ],
)
def test_names(name: str, sync: str) -> None:
    assert tool.sync_name(name) == sync


def test_names_in_code_imports_and_attributes() -> None:
    out = _unasync(
        """
        from .db_async import AsyncDatabase, connect_async
        from .loading_async import load_async
        x = psycopg.AsyncConnection.connect(url)
        await self._cm.__aexit__(None, None, None)
        """
    )
    assert out == (
        "from .db import Database, connect\n"
        "from .loading import load\n"
        "x = psycopg.Connection.connect(url)\n"
        "self._cm.__exit__(None, None, None)\n"
    )


def test_dotted_names_move_module() -> None:
    out = _unasync("await asyncio.sleep(delay)\nlock = asyncio.Lock()\nasyncio.gather(a)")
    assert out == "time.sleep(delay)\nlock = threading.Lock()\nasyncio.gather(a)\n"


def test_async_generator_gets_its_return_type() -> None:
    out = _unasync("def f() -> AsyncGenerator[tuple[int, str], None]: ...")
    assert out == "def f() -> Generator[tuple[int, str], None, None]: ...\n"


def test_awaitable_is_unwrapped() -> None:
    out = _unasync("Run = Callable[[Query[Any]], Awaitable[Sequence[Sequence[Any]]]]")
    assert out == "Run = Callable[[Query[Any]], Sequence[Sequence[Any]]]\n"


def test_strings_and_comments_follow_the_word_rules() -> None:
    out = _unasync(
        '''
        def f():
            """``async with db.transaction() as tx:`` on an ``AsyncDatabase``; ``await tx.one(q)``."""
            x = 1  # an AsyncTransaction, from connect_async(); asyncio stays
        '''
    )
    assert '"""``with db.transaction() as tx:`` on an ``Database``; ``tx.one(q)``."""' in out
    assert "x = 1  # an Transaction, from connect(); asyncio stays" in out


def test_comments_and_layout_are_kept() -> None:
    source = """
        # a leading comment

        async def f(
            a,  # the first
            b,
        ):
            # inside

            return await g(a, b)  # trailing
        """
    out = _unasync(source)
    assert out == (
        "# a leading comment\n\n"
        "def f(\n"
        "    a,  # the first\n"
        "    b,\n"
        "):\n"
        "    # inside\n\n"
        "    return g(a, b)  # trailing\n"
    )


def test_async_block_keeps_the_else_branch_dedented() -> None:
    out = _unasync(
        """
        async def f(copy, rows):
            if True:  # ASYNC
                for row in rows:
                    await copy.write_row(row)
            else:
                # the sync writer takes them all
                copy.write_all(rows)  # type: ignore[unreachable]
                if rows:
                    done()
            return len(rows)
        """
    )
    assert out == (
        "def f(copy, rows):\n"
        "    # the sync writer takes them all\n"
        "    copy.write_all(rows)\n"
        "    if rows:\n"
        "        done()\n"
        "    return len(rows)\n"
    )


def test_async_block_without_else_leaves_nothing() -> None:
    out = _unasync(
        """
        if True:  # ASYNC
            import asyncio

        import time
        """
    )
    assert out == "\nimport time\n"


def test_an_else_of_an_inner_if_is_not_the_blocks_else() -> None:
    out = _unasync(
        """
        def f():
            if True:  # ASYNC
                if a:
                    x()
                else:
                    y()
            z()
        """
    )
    assert out == "def f():\n    z()\n"


def test_async_block_without_body_is_an_error() -> None:
    with pytest.raises(SyntaxError, match=r"m_async.py:1: .*without a body"):
        tool.unasync("if True:  # ASYNC\nx = 1\n", "m_async.py")


def test_generate_sorts_and_formats(tmp_path: Path) -> None:
    source = tmp_path / "m_async.py"
    source.write_text(
        "from .x_async import AsyncZeta, Alpha\n"
        "if True:  # ASYNC\n"
        "    import asyncio\n"
        "else:\n"
        "    import time  # type: ignore[unreachable]  # noqa: F401\n"
        "async def f(z: AsyncZeta, a: Alpha) -> None:\n"
        "    async for row in z.rows():\n"
        "        yield row\n"
        "    await asyncio.sleep(a)\n"
    )
    out = tool.generate(source)
    assert out.startswith(f"# Generated from {source} by tools/async_to_sync.py; do not edit.\n")
    assert "import time\n" in out and "noqa" not in out and "type: ignore" not in out
    assert "from .x import Alpha, Zeta\n" in out  # sorted after renaming
    assert "    yield from z.rows()\n    time.sleep(a)\n" in out
    assert tool.generate(source) == out  # stable


# -- the faces that come out match --------------------------------------------------------------


def _members(cls: type) -> dict[str, object]:
    return {
        tool.sync_name(name): member
        for klass in reversed(cls.__mro__[:-1])
        for name, member in vars(klass).items()
        if not name.startswith("_") or name in ("__enter__", "__aenter__", "__iter__", "__aiter__")
    }


def _signature(function: object, *, unasync: bool = False) -> list[tuple[object, ...]]:
    """Each parameter (and the return) as name, kind, default and annotation text."""
    signature = inspect.signature(function)  # type: ignore[arg-type]

    def text(annotation: object) -> str:
        code = str(annotation)
        return tool.unasync(code).strip() if unasync else code

    parts: list[tuple[object, ...]] = [
        (p.name, p.kind, p.default, text(p.annotation)) for p in signature.parameters.values()
    ]
    return [*parts, ("return", text(signature.return_annotation))]


@pytest.mark.parametrize(
    ("sync", "async_"),
    [
        ("querykit.execute.database:Database", "querykit.execute.database_async:AsyncDatabase"),
        (
            "querykit.execute.database:Transaction",
            "querykit.execute.database_async:AsyncTransaction",
        ),
        (
            "querykit.execute.database:TransactionBlock",
            "querykit.execute.database_async:AsyncTransactionBlock",
        ),
        ("querykit.execute.database:Attempt", "querykit.execute.database_async:AsyncAttempt"),
        (
            "querykit.execute.prepared_query:PreparedQuery",
            "querykit.execute.prepared_query_async:AsyncPreparedQuery",
        ),
        (
            "querykit.execute.loading:TableQueries",
            "querykit.execute.loading_async:AsyncTableQueries",
        ),
    ],
)
def test_sync_and_async_faces_have_the_same_methods_and_docs(sync: str, async_: str) -> None:
    def get(ref: str) -> type:
        module, name = ref.split(":")
        cls: type = getattr(importlib.import_module(module), name)
        return cls

    sync_members, async_members = _members(get(sync)), _members(get(async_))
    assert sync_members.keys() == async_members.keys()
    for name, member in sync_members.items():
        twin = async_members[name]
        if callable(member):
            assert _signature(member) == _signature(twin, unasync=True), name
        assert inspect.getdoc(member) == tool.sync_text(inspect.getdoc(twin) or "") or (
            inspect.getdoc(member) is None and inspect.getdoc(twin) is None
        ), name


def test_a_line_marked_async_only_is_left_out_of_the_sync_module() -> None:
    source = "@opening  # ASYNC only\nasync def connect_async():\n    return 1\n"
    assert tool.drop_async_blocks(source) == "async def connect_async():\n    return 1\n"
