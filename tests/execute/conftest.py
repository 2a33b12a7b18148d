"""Fixtures for the execution tests: one suite, run against ``Database`` and ``AsyncDatabase``.

Tests are written once, in async style, against the fixture ``db``. For the
async run it is an ``AsyncDatabase``; for the sync run it is a ``Database``
seen through :class:`AsyncView`, which calls the sync method and hands back its
result as an awaitable (and turns ``with``/``for``/generators into their async
forms). So both faces run the same assertions, on real PostgreSQL.

``url`` is a fresh database with the tables of ``schema.py``, cloned from the
template querykit.testing builds from the project's migrations;
``make_db`` opens more databases (or replicas) in the same mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

import querykit
from querykit.testing.clones import Clone, CloneFactory
from schema import Status, metadata

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def schema_ddl(meta: sa.MetaData = metadata) -> list[str]:
    """CREATE TYPE / TABLE / INDEX statements for a MetaData, as SQLAlchemy writes them."""
    out: list[str] = []
    enums: dict[str, sa.Enum] = {}
    for table in meta.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, sa.Enum) and column.type.name:
                enums.setdefault(column.type.name, column.type)
    for enum_type in enums.values():
        out.append(str(postgresql.CreateEnumType(enum_type).compile(dialect=_DIALECT)))
    for table in meta.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=_DIALECT)))
        for index in table.indexes:
            out.append(str(CreateIndex(index).compile(dialect=_DIALECT)))
    return out


@pytest.fixture
def url(migrated_clones: CloneFactory) -> Iterator[str]:
    """A fresh database migrated by the project's migrations (schema.py's tables), for this
    test only."""
    clone = migrated_clones.take()
    try:
        yield clone.url
    finally:
        migrated_clones.discard(clone)


@pytest.fixture
def new_url(migrated_clones: CloneFactory) -> Iterator[Callable[[], str]]:
    """Make more fresh databases (e.g. a stand-in read replica); dropped after the test."""
    made: list[Clone] = []

    def make() -> str:
        made.append(migrated_clones.take())
        return made[-1].url

    yield make
    for clone in made:
        migrated_clones.discard(clone)


@pytest.fixture
def admin(url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A plain autocommit psycopg connection to the test's database, outside querykit."""
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


# -- sync/async parity ---------------------------------------------------------------------


async def _value(x: Any) -> Any:
    return x


class AsyncView:
    """A sync querykit object seen with the async API: ``await view.all(q)`` etc."""

    _AWAITED = frozenset(
        {
            "all",
            "one",
            "first",
            "scalar",
            "scalars",
            "execute",
            "insert_many",
            "upsert_many",
            "close",
        }
    )

    def __init__(self, target: Any) -> None:
        self._target = target

    @property
    def target(self) -> Any:
        return self._target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name in self._AWAITED:

            def call(*args: Any, **kwargs: Any) -> Awaitable[Any]:
                return _value(attr(*args, **kwargs))

            return call
        if name == "stream":

            def stream(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                return _agen(attr(*args, **kwargs))

            return stream
        if name == "transaction":
            return lambda *a, **k: _BlockView(attr(*a, **k))
        if name == "prepare":
            return lambda *a, **k: AsyncView(attr(*a, **k))
        return attr

    def __repr__(self) -> str:
        return f"AsyncView({self._target!r})"


class _AGen:
    """An async generator face over a sync generator (with ``aclose``)."""

    def __init__(self, gen: Iterator[Any]) -> None:
        self._gen = gen

    def __aiter__(self) -> _AGen:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._gen)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        close = getattr(self._gen, "close", None)
        if close is not None:
            close()


def _agen(gen: Iterator[Any]) -> _AGen:
    return _AGen(gen)


class _BlockView:
    def __init__(self, block: Any) -> None:
        self._block = block

    async def __aenter__(self) -> AsyncView:
        return AsyncView(self._block.__enter__())

    async def __aexit__(self, *exc: Any) -> Any:
        return self._block.__exit__(*exc)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._attempts()

    async def _attempts(self) -> AsyncIterator[Any]:
        for attempt in self._block:
            yield _AttemptView(attempt)

    def __enter__(self) -> Any:  # so that misuse can be tested through the view too
        return self._block.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._block.__exit__(*exc)


class _AttemptView:
    def __init__(self, attempt: Any) -> None:
        self._attempt = attempt

    @property
    def number(self) -> int:
        return int(self._attempt.number)

    async def __aenter__(self) -> AsyncView:
        return AsyncView(self._attempt.__enter__())

    async def __aexit__(self, *exc: Any) -> Any:
        return self._attempt.__exit__(*exc)


MODES = ["sync", "async"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Opener:
    """Open databases in the test's mode; all are closed after the test."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.opened: list[Any] = []

    async def __call__(self, url: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            db: Any = AsyncView(querykit.connect(url, **kwargs))
        else:
            db = await querykit.connect_async(url, **kwargs)
        self.opened.append(db)
        return db

    async def close_all(self) -> None:
        for db in self.opened:
            await db.close()


@pytest.fixture
async def make_db(mode: str) -> AsyncIterator[Opener]:
    opener = Opener(mode)
    yield opener
    await opener.close_all()


@pytest.fixture
async def db(make_db: Opener, url: str) -> Any:
    """The test's database, in the test's mode (sync through AsyncView, or async)."""
    return await make_db(url)


def raw_database(db: Any) -> Any:
    """The querykit Database or AsyncDatabase behind the fixture."""
    return db.target if isinstance(db, AsyncView) else db


__all__ = ["MODES", "AsyncView", "Status", "raw_database", "schema_ddl"]
