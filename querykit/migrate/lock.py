"""The migration lock: a session-level advisory lock on a connection of its own.

Only one runner applies migrations to a ledger at a time. The lock lives on a
dedicated, idle connection, so ``CREATE INDEX CONCURRENTLY`` on the migration
connection never waits on our own lock (it waits for other transactions, and
an idle session holding an advisory lock has none)::

    >>> with MigrationLock(url, parse_table_name("public.querykit_migrations"), wait=60) as lock:
    ...     lock.ensure_held()  # before each file: still ours, same backend
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import psycopg

from ..errors import LockTimeout, MigrationFailed, MigrationRefused
from ..execute.connect import connect, describe_target
from .ledger import LedgerTable

__all__ = [
    "POOLER_ADVICE",
    "PROXY_ADVICE",
    "MigrationLock",
    "check_same_backend",
    "lock_key",
    "refuse_proxies",
]

POOLER_ADVICE = (
    "use a direct connection (not a transaction-mode pooler such as PgBouncer) for migrations: "
    "a session-level advisory lock cannot be held through one"
)
PROXY_ADVICE = (
    "run migrations over a direct connection to PostgreSQL (e.g. --database-url with the "
    "server's own host and port, as Prisma's directUrl does): through a pooler in transaction "
    "mode, the migration lock and the session a file runs in would be shared with other clients"
)
_POLL_FIRST, _POLL_MAX = 0.05, 0.5


def lock_key(table: LedgerTable) -> int:
    """The advisory lock key of a ledger: runners of different ledgers do not block each other."""
    digest = hashlib.sha256(f"querykit migrate {table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def application_name(table: LedgerTable, role: str) -> str:
    """What ``pg_stat_activity`` shows for our connections (PostgreSQL keeps 63 bytes)."""
    return f"querykit migrate {role} {table}"[:63]


def _lock_parts(key: int) -> tuple[int, int]:
    """How ``pg_locks`` shows a bigint advisory key: (classid, objid)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


_HELD_BY_TEMPLATE = """EXISTS (
    SELECT FROM pg_locks WHERE locktype = 'advisory' AND pid = {} AND granted
      AND classid = {}::oid AND objid = {}::oid AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"""
_HELD_BY = _HELD_BY_TEMPLATE.format("%s", "%s", "%s")

_HOLDS = "SELECT pg_backend_pid(), " + _HELD_BY

_HOLDER = """
SELECT a.pid, a.application_name, a.client_addr::text, a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid AND l.objid = %s::oid
  AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
LIMIT 1
"""

_ORPHANS = """
SELECT pid, state, left(regexp_replace(query, '\\s+', ' ', 'g'), 100)
FROM pg_stat_activity
WHERE datname = current_database() AND application_name = %s AND pid <> %s AND state <> 'idle'
ORDER BY pid
"""


def check_same_backend(conn: psycopg.Connection[Any], expected_pid: int, key: int) -> None:
    """Refuse when ``conn`` no longer reaches the backend ``expected_pid`` that holds lock ``key``.

    A transaction-mode pooler hands each statement to whichever server
    connection is free, so the backend pid changes between statements and the
    session-level lock stays behind on a backend we no longer talk to.
    """
    row = conn.execute(_HOLDS, (expected_pid, *_lock_parts(key))).fetchone()
    assert row is not None
    pid, holds = row
    if pid != expected_pid:
        raise MigrationRefused(
            f"the backend process changed between two statements on one connection "
            f"(pid {expected_pid}, then {pid}): a transaction-mode pooler is between querykit "
            f"and PostgreSQL; {POOLER_ADVICE}"
        )
    if not holds:
        raise MigrationFailed(
            f"backend {pid} no longer holds the migration lock (was it released by hand?); "
            "stopped before the next file; run querykit migrate up again"
        )


def refuse_proxies(conn: psycopg.Connection[Any]) -> None:
    """Refuse, before taking any lock, when a pooler or proxy answers instead of PostgreSQL.

    PostgreSQL announces the pid of the backend serving a connection when the
    connection starts; a pooler (PgBouncer, pgcat, Supavisor, RDS Proxy) makes up
    its own, since it hands the client's statements to server connections of
    its choosing. Comparing that pid with ``pg_backend_pid()`` detects one
    whatever its settings, before anything is locked or applied.
    """
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    announced, actual = conn.info.backend_pid, row[0]
    if announced != actual:
        raise MigrationRefused(
            f"a connection pooler is between querykit and PostgreSQL: the connection announced "
            f"backend pid {announced}, but the server runs it in pid {actual}; nothing was "
            f"locked or applied. {PROXY_ADVICE}"
        )


class MigrationLock:
    """Take the lock by polling ``pg_try_advisory_lock`` for up to ``wait`` seconds."""

    def __init__(
        self,
        url: str,
        table: LedgerTable,
        *,
        wait: float,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.table = table
        self.key = lock_key(table)
        self.wait = wait
        self.on_wait = on_wait
        self.deadline = 0.0
        self.conn: psycopg.Connection[Any] | None = None
        self.pid = 0

    def __enter__(self) -> MigrationLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the advisory lock on its own connection, waiting until the deadline."""
        self.deadline = time.monotonic() + self.wait
        conn = connect(
            self.url,
            autocommit=True,
            prepare_threshold=None,
            application_name=application_name(self.table, "lock"),
        )
        self.conn = conn
        try:
            refuse_proxies(conn)
            if conn.info.server_version >= 140000:
                # This connection idles for the whole run; a server-side idle timeout
                # would end it and silently hand the lock to the next runner.
                conn.execute("SET idle_session_timeout = 0")
            # Before locking: a pooler that hands out another backend per statement is
            # refused here, without leaving a lock behind on one of its backends.
            pids = {self._backend_pid(conn) for _ in range(3)}
            if len(pids) > 1:
                raise MigrationRefused(
                    f"three statements on one connection reached backends {sorted(pids)}: a "
                    "transaction-mode pooler is between querykit and PostgreSQL; "
                    f"{POOLER_ADVICE}"
                )
            self.pid = pids.pop()
            delay = _POLL_FIRST
            told = False
            while not self._try(conn):
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    raise LockTimeout(
                        f"{self._holder(conn)} holds the migration lock of {self.table} on "
                        f"{describe_target(self.url)}; gave up after {self.wait:g} s. Wait for "
                        "it to finish and run again, or wait longer with --lock-wait SECONDS"
                    )
                if not told and self.on_wait is not None:
                    self.on_wait(f"waiting for the migration lock, held by {self._holder(conn)}")
                    told = True
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, _POLL_MAX)
            check_same_backend(conn, self.pid, self.key)
        except BaseException:
            self.release()
            raise

    @staticmethod
    def _backend_pid(conn: psycopg.Connection[Any]) -> int:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        pid: int = row[0]
        return pid

    def _try(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s), pg_backend_pid()", (self.key,)
        ).fetchone()
        assert row is not None
        locked, pid = row
        if locked and pid != self.pid:
            raise MigrationRefused(
                f"the migration lock was taken by backend {pid}, not by backend {self.pid} that "
                "answered the statements before: a transaction-mode pooler is between querykit "
                f"and PostgreSQL; {POOLER_ADVICE}. The lock stays with backend {pid} until the "
                f"pooler closes that connection; SELECT pg_terminate_backend({pid}) frees it"
            )
        return bool(locked)

    def _holder(self, conn: psycopg.Connection[Any]) -> str:
        row = conn.execute(_HOLDER, _lock_parts(self.key)).fetchone()
        if row is None:
            return "another runner"
        pid, app, addr, since = row
        who = f"{app!r}" if app else "a session"
        where = f" from {addr}" if addr else ""
        return f"{who} (pid {pid}{where}, connected {since:%Y-%m-%d %H:%M:%S %Z})"

    def held_by_runner(self, first: int) -> tuple[str, tuple[int, int, int]]:
        """An SQL condition, true while our lock connection's backend holds the lock,
        with its placeholders numbered from ``$first``, and their values.

        The ledger write of a transactional file carries it (``INSERT ... WHERE``),
        so the check and the record are one statement in the file's transaction:
        a lock lost meanwhile leaves the file unrecorded and rolled back, with no
        round trip of its own per file.
        """
        numbers = [f"${first + n}" for n in range(3)]
        return _HELD_BY_TEMPLATE.format(*numbers), (self.pid, *_lock_parts(self.key))

    def lost(self) -> MigrationFailed:
        """The error for a ledger write that found the lock gone."""
        return MigrationFailed(
            f"backend {self.pid} no longer holds the migration lock (was it released by hand, "
            "or its connection lost?); another runner may take over, so this file was rolled "
            "back and nothing after it ran; run querykit migrate up again"
        )

    def ensure_held(self) -> None:
        """Check, before each file, that the lock is still ours on the same backend."""
        if self.conn is None:
            raise MigrationFailed("the migration lock is not held; this is a bug in the caller")
        try:
            check_same_backend(self.conn, self.pid, self.key)
        except psycopg.OperationalError as exc:
            raise MigrationFailed(
                f"lost the connection that holds the migration lock ({exc}); another runner "
                "may take over, so this one stopped before the next file; run it again"
            ) from exc

    def wait_for_orphans(self, migration_app: str, own_pid: int) -> None:
        """Wait until no migration backend of an earlier, dead runner is still working.

        A runner killed mid-statement loses its connections, but its backend may
        go on with the statement for a while, still holding table locks.
        """
        assert self.conn is not None
        told = False
        while True:
            rows = self.conn.execute(_ORPHANS, (migration_app, own_pid)).fetchall()
            if not rows:
                return
            pid, state, query = rows[0]
            if time.monotonic() >= self.deadline:
                raise LockTimeout(
                    f"backend {pid} of an earlier migration run is still {state} ({query!r}) "
                    "although its runner is gone; wait for it to finish, or end it with "
                    f"SELECT pg_terminate_backend({pid})"
                )
            if not told and self.on_wait is not None:
                self.on_wait(f"waiting for backend {pid} of an earlier, interrupted run to end")
                told = True
            time.sleep(0.1)

    def release(self) -> None:
        """Release the lock and close its connection; safe to call twice."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if not conn.closed and not conn.broken:
                conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.Error:
            pass  # closing the connection below releases a session lock anyway
        finally:
            conn.close()
