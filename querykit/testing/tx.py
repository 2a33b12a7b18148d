"""``qk_tx``: one pinned connection, one transaction per test, rolled back afterwards.

A rollback costs a fraction of a millisecond, but it isolates only what runs on
that one connection inside that one transaction. So ``qk_tx`` checks, and fails
the test with a message naming ``qk_db`` (a database of the test's own), when:

- the test ended the transaction (a COMMIT or ROLLBACK statement): seen because
  ``now()``, the transaction's start time, changed;
- a statement cannot run in a transaction block (``CREATE INDEX CONCURRENTLY``...);
- a second connection logs in to the database (a pool growing, a thread, the
  migration runner, an app given the URL): a *login event trigger* in the
  worker's qk_tx database refuses it while the pinned connection holds an
  advisory lock. It needs a superuser (the embedded server's ``postgres`` is one);
  without one, such connections simply see none of the test's rows.

Before the rollback it runs ``SET CONSTRAINTS ALL IMMEDIATE``, which checks the
deferred constraints as COMMIT would, so a deferred foreign-key violation fails
the test.

The pinned connection prepares no statements. After a rollback psycopg (and
querykit's own statements with it) drops every prepared statement of the
connection with a ``DEALLOCATE ALL``, and every test ends in one: a statement
prepared in one test is gone in the next, so preparing it cost round trips for
nothing (``make bench``: 0.81 ms a test prepared, 0.60 ms not).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg import sql

from .. import (
    AsyncDatabase,
    Database,
    DatabaseError,
    IsolationError,
    RawQuery,
    connect,
    connect_async,
    raw,
)

APPLICATION_NAME = "querykit qk_tx"
GUARD_SCHEMA = "querykit_testing"
_LOCK = (0x716B, 0x7478)  # "qk", "tx": pg_locks shows them as classid, objid
FIX = (
    "Use the qk_db fixture instead: it gives the test a database of its own, where "
    "commits, several connections, CONCURRENTLY and migrations work as in production."
)
NOT_IN_A_TRANSACTION = "25001"

_GUARD = f"""
CREATE FUNCTION {GUARD_SCHEMA}.refuse_second_connection() RETURNS event_trigger
LANGUAGE plpgsql AS $guard$
BEGIN
  IF EXISTS (
    SELECT FROM pg_locks
    WHERE locktype = 'advisory' AND classid = {_LOCK[0]} AND objid = {_LOCK[1]}
      AND objsubid = 2 AND granted AND pid <> pg_backend_pid()
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  ) THEN
    RAISE EXCEPTION USING
      MESSAGE = format(
        'qk_tx: a second connection (application_name %L) to the test database was refused: '
        'qk_tx runs each test on one connection inside a transaction that is rolled back, '
        'so no other connection could see its rows. {FIX}', current_setting('application_name'));
  END IF;
END
$guard$
"""


def install_guard(url: str) -> bool:
    """Create the login trigger in the qk_tx database; False without the privilege."""
    try:
        with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(GUARD_SCHEMA)))
            conn.execute(_GUARD.encode())
            conn.execute(
                f"CREATE EVENT TRIGGER querykit_qk_tx_guard ON login "
                f"EXECUTE FUNCTION {GUARD_SCHEMA}.refuse_second_connection()".encode()
            )
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


# max_size=2: a second connection is attempted, so the guard's message reaches the
# test; max_lifetime: the pinned connection is never replaced mid-session.
PINNED_LIFETIME = 10**7
HOLD_GUARD = raw(f"SELECT pg_advisory_lock({_LOCK[0]}, {_LOCK[1]})")
"""Held by the pinned connection for its life: the login trigger refuses every other."""


def pinned_conninfo(url: str) -> str:
    """``url`` with qk_tx's application name, which the guard's message shows."""
    return psycopg.conninfo.make_conninfo(url, application_name=APPLICATION_NAME)


class PinnedDatabase:
    """A worker's qk_tx database, and a ``Database`` that holds its one connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.guarded = install_guard(url)
        self.db = connect(
            pinned_conninfo(url),
            min_size=1,
            max_size=2,
            timeout=1.0,
            max_lifetime=PINNED_LIFETIME,
            prepare=False,  # see the module docstring
        )
        if self.guarded:
            self.db.execute(HOLD_GUARD)

    def begin(self) -> TestTransaction:
        """The test's transaction on the pinned connection."""
        return TestTransaction(self.db)

    def close(self) -> None:
        """Close the pinned connection."""
        self.db.close()


class _RollBack(Exception):
    """Thrown into the transaction block to make it roll back."""


TRANSACTION_START = raw("SELECT now()").returns(datetime.datetime)
"""The transaction's start time; built once, as it runs at the start of every test."""
COMMITTED = "QKTX1"
"""The SQLSTATE :func:`end_check` raises when the transaction is not the test's any more."""
IN_FAILED_TRANSACTION = "25P02"


def end_check(started: datetime.datetime) -> RawQuery[()]:
    """One statement, so one round trip, that checks what ``qk_tx`` checks after a test.

    First that the transaction is still the one the fixture began (``now()``, its
    start time, did not move; else the test committed); then ``SET CONSTRAINTS ALL
    IMMEDIATE``, which checks the deferred constraints as COMMIT would. A DO block
    takes no parameters: ``started`` is our own ``timestamptz``, rendered ISO 8601.
    """
    return raw(
        f"DO $qk_tx$ BEGIN "
        f"IF now() <> '{started.isoformat()}'::timestamptz THEN "
        f"RAISE EXCEPTION 'qk_tx: the transaction ended' USING ERRCODE = '{COMMITTED}'; "
        f"END IF; SET CONSTRAINTS ALL IMMEDIATE; END $qk_tx$"
    )


class TestTransaction:
    """The transaction of one test: opened now, checked after the test, rolled back.

    It costs four round trips: BEGIN, ``SELECT now()``, the :func:`end_check` and
    ROLLBACK. No statement of its own runs twice in a test, so psycopg prepares none,
    and the rollback does not make it send a ``DEALLOCATE ALL`` as well.
    """

    __test__ = False

    def __init__(self, db: Database) -> None:
        self.db = db
        self._block: AbstractContextManager[Any] | None = db.transaction()
        self._block.__enter__()
        self.started: datetime.datetime = db.scalar(TRANSACTION_START)
        self.checked = False
        self.dirty = False

    def check(self) -> None:
        """After the test body: the transaction is still ours, and deferred constraints hold."""
        self.checked = True
        try:
            self.db.execute(end_check(self.started))
        except DatabaseError as exc:
            self.dirty = exc.sqlstate == COMMITTED
            failure = check_failure(exc)
            if failure is not None:
                raise failure from (None if self.dirty else exc)

    def committed(self) -> bool:
        """Whether the test committed: ``now()`` moved, so the transaction is not the test's."""
        try:
            now = self.db.scalar(TRANSACTION_START)
        except DatabaseError:
            return False  # the transaction is aborted: still ours, and rolled back next
        return now != self.started

    def end(self) -> bool:
        """Roll back. True when the test had committed (the database is then dirty)."""
        dirty = self.dirty or (not self.checked and self.committed())
        block, self._block = self._block, None
        if block is not None:
            block.__exit__(_RollBack, _RollBack(), None)
        return dirty


def check_failure(exc: DatabaseError) -> IsolationError | None:
    """What a failed :func:`end_check` means for the test (None: nothing wrong)."""
    if exc.sqlstate == IN_FAILED_TRANSACTION:
        return None  # the test caught a failed statement: still ours, rolled back next
    if exc.sqlstate == COMMITTED:
        return IsolationError(
            "qk_tx: the test ended the fixture's transaction (a COMMIT, END or ROLLBACK "
            "statement ran), so its writes were committed and would leak into later tests. " + FIX
        )
    return IsolationError(
        f"qk_tx: a deferred constraint does not hold at the end of the test "
        f"(checked before the rollback, as COMMIT would check it): {exc}"
    )


class AsyncPinnedDatabase:
    """qk_async_tx's database, and an ``AsyncDatabase`` that holds its one connection.

    A second clone, not qk_tx's: each pinned connection holds the guard's lock on
    its own database. The ``AsyncDatabase`` belongs to one event loop.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.guarded = install_guard(url)
        self.db: AsyncDatabase | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> AsyncDatabase:
        """Connect (on the running event loop) and take the guard's lock."""
        self.loop = asyncio.get_running_loop()
        self.db = await connect_async(
            pinned_conninfo(self.url),
            min_size=1,
            max_size=2,
            timeout=1.0,
            max_lifetime=PINNED_LIFETIME,
            prepare=False,  # see the module docstring
        )
        if self.guarded:
            await self.db.execute(HOLD_GUARD)
        return self.db

    async def close(self) -> None:
        """Close the pinned connection (on the loop that opened it)."""
        if self.db is not None:
            db, self.db = self.db, None
            await db.close()


class AsyncTestTransaction:
    """:class:`TestTransaction` for an ``AsyncDatabase``: begun with :meth:`begin`."""

    __test__ = False

    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db
        self._block: AbstractAsyncContextManager[Any] | None = None
        self.started = datetime.datetime.min
        self.checked = False
        self.dirty = False
        self.context = contextvars.copy_context()

    async def begin(self) -> AsyncTestTransaction:
        """BEGIN, and note the transaction's start time and the context that knows it."""
        self._block = self.db.transaction()
        await self._block.__aenter__()
        started = await self.db.scalar(TRANSACTION_START)
        assert started is not None
        self.started = started
        self.context = contextvars.copy_context()  # the transaction is in this context
        return self

    def check_now(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run :meth:`check` from a sync hook, on ``loop`` (not running between the test
        and its teardown) and in the context the transaction was begun in."""
        loop.run_until_complete(loop.create_task(self.check(), context=self.context))

    async def check(self) -> None:
        """After the test body: the transaction is still ours, and deferred constraints hold."""
        self.checked = True
        try:
            await self.db.execute(end_check(self.started))
        except DatabaseError as exc:
            self.dirty = exc.sqlstate == COMMITTED
            failure = check_failure(exc)
            if failure is not None:
                raise failure from (None if self.dirty else exc)

    async def end(self) -> bool:
        """Roll back (checking first, if the test body did not get checked). True when dirty."""
        if not self.checked:
            with contextlib.suppress(IsolationError):
                await self.check()
        block, self._block = self._block, None
        if block is not None:
            await block.__aexit__(_RollBack, _RollBack(), None)
        return self.dirty


def explain(exc: BaseException) -> IsolationError | None:
    """A loud error for a statement that cannot run in qk_tx's transaction, else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "sqlstate", None) == NOT_IN_A_TRANSACTION:
            return IsolationError(
                f"qk_tx: {seen} -- qk_tx runs the whole test inside one transaction, "
                f"which such a statement cannot run in. {FIX}"
            )
        seen = seen.__cause__
    return None
