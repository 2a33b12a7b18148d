"""The fixtures and the hook that checks ``qk_tx`` after each test.

Registered by :mod:`querykit.testing.plugin` when the project has ``[tool.querykit]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from .. import AsyncDatabase, Database, IsolationError, connect, connect_async
from .clones import Clone
from .session import TestSession
from .tx import TestTransaction, explain


def _async_fixture(function: Callable[..., AsyncIterator[AsyncDatabase]]) -> object:
    """pytest-asyncio's fixture decorator (needed in its strict mode), else pytest's."""
    try:
        from pytest_asyncio import fixture
    except ImportError:  # pragma: no cover - then only an auto-mode plugin (anyio) runs it
        return pytest.fixture(function)
    return fixture(function)


SESSION = pytest.StashKey[TestSession]()
TRANSACTION = pytest.StashKey[TestTransaction]()
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
    if "qk_tx" in request.fixturenames and not set(OWN_DATABASE) & set(request.fixturenames):
        return qk_session.pinned().url
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


@pytest.fixture
def qk_tx(request: pytest.FixtureRequest, qk_session: TestSession) -> Iterator[Database]:
    """A ``Database`` pinned to one connection in a transaction rolled back after the test.

    ``db.transaction()`` inside the test is a savepoint. The test fails, naming ``qk_db``,
    when it commits, opens a second connection or runs what cannot run in a transaction.
    """
    if request.node.get_closest_marker(MARKER) is not None:
        raise IsolationError(
            f"qk_tx: @pytest.mark.{MARKER} tests run migrations, which commit and need a "
            "database of their own; use the qk_db fixture"
        )
    transaction = qk_session.pinned().begin()
    request.node.stash[TRANSACTION] = transaction
    try:
        yield transaction.db
    finally:
        del request.node.stash[TRANSACTION]
        if transaction.end():
            qk_session.reset_pinned()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Under qk_tx: explain statements that cannot run in its transaction, then check it."""
    try:
        result = yield
    except Exception as exc:
        loud = explain(exc) if TRANSACTION in item.stash else None
        if loud is not None:
            raise loud from exc
        raise
    transaction = item.stash.get(TRANSACTION, None)
    if transaction is not None:
        transaction.check()
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
