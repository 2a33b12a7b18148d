"""The fixtures and the hook that checks ``qk_tx`` after each test.

Registered by :mod:`querykit.testing.plugin` when the project has ``[tool.querykit]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from .. import AsyncDatabase, Database, IsolationError, connect, connect_async
from .clones import Clone
from .session import TestSession
from .tx import AsyncPinnedDatabase, AsyncTestTransaction, TestTransaction, explain


def _async_fixture(function: Callable[..., AsyncIterator[Any]], *, session: bool = False) -> object:
    """pytest-asyncio's fixture decorator (needed in its strict mode), else pytest's.

    ``session=True``: a session fixture on pytest-asyncio's session loop.
    """
    try:
        from pytest_asyncio import fixture
    except ImportError:  # pragma: no cover - then only an auto-mode plugin (anyio) runs it
        return pytest.fixture(function, scope="session" if session else "function")
    if session:
        return fixture(function, scope="session", loop_scope="session")
    return fixture(function)


SESSION = pytest.StashKey[TestSession]()
TRANSACTION = pytest.StashKey[TestTransaction]()
ASYNC_TRANSACTION = pytest.StashKey[tuple[AsyncTestTransaction, asyncio.AbstractEventLoop]]()
MARKER = "qk_migrations"
OWN_DATABASE = ("qk_db", "qk_async_db")


def _upto(request: pytest.FixtureRequest) -> str | None:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return None
    upto = marker.kwargs.get("upto", marker.args[0] if marker.args else None)
    if upto is None:
        raise pytest.UsageError(f'@pytest.mark.{MARKER} needs a version: {MARKER}(upto="0003")')
    return str(upto)


@pytest.fixture(scope="session")
def qk_session(pytestconfig: pytest.Config) -> TestSession:
    """The plugin's state for this process: the server, templates and clone factory."""
    return pytestconfig.stash[SESSION]


@pytest.fixture
def qk_clone(request: pytest.FixtureRequest, qk_session: TestSession) -> Iterator[Clone]:
    """A database of this test's own, cloned from the (marker's) template, dropped after."""
    upto = _upto(request)
    clone = qk_session.take(upto)
    try:
        yield clone
    finally:
        qk_session.discard(clone, upto)


@pytest.fixture
def qk_url(request: pytest.FixtureRequest, qk_session: TestSession) -> str:
    """The URL of the test's database, for code under test that connects by itself.

    With ``qk_tx`` it is qk_tx's database, and connecting to it fails with a message
    that says to use ``qk_db``: another connection could not see the test's rows.
    """
    own = set(OWN_DATABASE) & set(request.fixturenames)
    if "qk_tx" in request.fixturenames and not own:
        return qk_session.pinned().url
    if "qk_async_tx" in request.fixturenames and not own:
        return qk_session.async_pinned().url
    clone: Clone = request.getfixturevalue("qk_clone")
    return clone.url


@pytest.fixture
def qk_db(qk_clone: Clone) -> Iterator[Database]:
    """A ``Database`` on a fresh database cloned from the migrated template for this test.

    Made ahead, it is connected already; the clone-ahead threads close it afterwards.
    """
    if qk_clone.db is not None:
        yield qk_clone.db
        return
    with connect(qk_clone.url) as db:
        yield db


@_async_fixture
async def qk_async_db(qk_clone: Clone) -> AsyncIterator[AsyncDatabase]:
    """An ``AsyncDatabase`` on a fresh database of this test's own (needs pytest-asyncio)."""
    db = await connect_async(qk_clone.url)
    try:
        yield db
    finally:
        await db.close()


def _refuse_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker(MARKER) is not None:
        raise IsolationError(
            f"qk_tx: @pytest.mark.{MARKER} tests run migrations, which commit and need a "
            "database of their own; use the qk_db fixture"
        )


@pytest.fixture
def qk_tx(request: pytest.FixtureRequest, qk_session: TestSession) -> Iterator[Database]:
    """A ``Database`` pinned to one connection in a transaction rolled back after the test.

    ``db.transaction()`` inside the test is a savepoint. The test fails, naming ``qk_db``,
    when it commits, opens a second connection or runs what cannot run in a transaction.
    """
    _refuse_marker(request)
    transaction = qk_session.pinned().begin()
    request.node.stash[TRANSACTION] = transaction
    try:
        yield transaction.db
    finally:
        del request.node.stash[TRANSACTION]
        if transaction.end():
            qk_session.reset_pinned()


def _on_session_loop(request: pytest.FixtureRequest) -> bool:
    """Whether the test runs on pytest-asyncio's session loop (so the pinned connection,
    which belongs to a loop, can serve the next test too)."""
    marker = request.node.get_closest_marker("asyncio")
    scope = marker.kwargs.get("loop_scope") if marker is not None else None
    if scope is None:
        try:
            scope = request.config.getini("asyncio_default_test_loop_scope")
        except ValueError:  # no pytest-asyncio
            scope = None
    return scope == "session"


async def _qk_async_pinned(qk_session: TestSession) -> AsyncIterator[AsyncPinnedDatabase]:
    """qk_async_tx's database, closed at the end on the session's loop (if it is open there)."""
    pinned = qk_session.async_pinned()
    yield pinned
    pinned = qk_session.async_pinned()
    if pinned.loop is asyncio.get_running_loop():
        await pinned.close()


qk_async_pinned = _async_fixture(_qk_async_pinned, session=True)


async def _qk_async_tx(
    request: pytest.FixtureRequest, qk_session: TestSession, qk_async_pinned: AsyncPinnedDatabase
) -> AsyncIterator[AsyncDatabase]:
    """An ``AsyncDatabase`` pinned to one connection in a transaction rolled back
    after the test: ``qk_tx`` for async tests (pytest-asyncio).

    It keeps its connection from test to test on pytest-asyncio's session loop
    (``asyncio_default_test_loop_scope = "session"``, and the same for fixtures);
    on a loop of each test's own it connects for each test.
    """
    _refuse_marker(request)
    loop = asyncio.get_running_loop()
    pinned = qk_session.async_pinned()
    db = pinned.db if pinned.db is not None and pinned.loop is loop else await pinned.open()
    transaction = await AsyncTestTransaction(db).begin()
    request.node.stash[ASYNC_TRANSACTION] = (transaction, loop)
    try:
        yield transaction.db
    finally:
        del request.node.stash[ASYNC_TRANSACTION]
        dirty = await transaction.end()
        if dirty or not _on_session_loop(request):  # the loop may end with the test
            await pinned.close()
        if dirty:
            qk_session.reset_async_pinned()


qk_async_tx = _async_fixture(_qk_async_tx)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Under qk_tx: explain statements that cannot run in its transaction, then check it."""
    under_tx = TRANSACTION in item.stash or ASYNC_TRANSACTION in item.stash
    try:
        result = yield
    except Exception as exc:
        loud = explain(exc) if under_tx else None
        if loud is not None:
            raise loud from exc
        raise
    transaction = item.stash.get(TRANSACTION, None)
    if transaction is not None:
        transaction.check()
    pending = item.stash.get(ASYNC_TRANSACTION, None)
    if pending is not None and not pending[1].is_running() and not pending[1].is_closed():
        pending[0].check_now(pending[1])  # else its teardown checks it
    return result


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say which templates this process used, and whether they came from the cache."""
    session = config.stash.get(SESSION, None)
    if session is None:
        return
    for template in session.templates():
        how = "built" if template.built else "reused from the cache"
        terminalreporter.write_line(
            f"querykit: template {template.name} {how} in {template.seconds * 1000:.0f} ms "
            f"({template.size / 1e6:.1f} MB, cloned with {template.strategy})"
        )
