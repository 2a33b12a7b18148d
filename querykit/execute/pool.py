"""Pooled psycopg connections for ``Database`` and ``AsyncDatabase``.

- :class:`PoolOptions`: the pool settings ``connect()`` takes, checked once.
- The connection classes keep one reusable client cursor: a new psycopg cursor
  builds its loaders again, which costs as much as a fifth of a primary-key
  select.
- The pool classes are psycopg_pool pools with a fast path for the common case:
  a connection is free, nobody waits, nothing to expire. That path keeps the
  pool's state the way psycopg_pool does, under the pool's own lock, in a
  fraction of the time (the full path, with its logging and statistics, costs
  about 15% of a primary-key select). It does not count requests: the
  ``requests_*`` figures of ``get_stats()`` cover the full path only. Anything
  else goes through psycopg_pool unchanged. The internals it relies on are
  those of psycopg_pool 3.3, the range pyproject.toml pins; a test fails loudly
  when the installed release is outside it or its internals differ, and at run
  time the fast path switches itself off (a warning says so) if they are
  missing. ``make bench`` measures what the fast path saves.
- A connection that sat idle in the pool for more than 0.1 s is checked for a
  dead server before use: a non-blocking poll of its socket. A server restart
  or ``pg_terminate_backend`` leaves idle connections with a pending error and
  end-of-file; those are discarded and replaced instead of failing a query.
  (A restart takes longer than 0.1 s, so every connection it killed gets
  checked; a busy pool skips the system call.)
- ``configure`` registers pgvector on every new connection when the ``vector``
  extension exists. Where it does not exist yet (before migrations), pgvector
  values are still sent, as text of unknown type that the server casts, and
  vector results are decoded from text by the column's type. (Bulk writes send
  vectors in their binary form themselves, and need no registration.)
"""

from __future__ import annotations

import select
import warnings
from dataclasses import dataclass
from time import monotonic
from typing import Any

import psycopg
import psycopg_pool
from pgvector import Bit, HalfVector, SparseVector, Vector
from pgvector.psycopg import register_vector, register_vector_async
from psycopg.adapt import Dumper, PyFormat
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from .. import codecs
from ..arguments import count_argument, seconds_argument
from ..codecs import CheckedVector
from ..errors import ConfigError, ConnectError
from ..settings import Settings, check_database_url, load_settings
from .connect import connect_error, describe_target
from .statements import Statements, install

__all__ = [
    "AsyncConnection",
    "AsyncPool",
    "Connection",
    "Pool",
    "PoolOptions",
    "configure",
    "configure_async",
    "pool_timeout_error",
    "register_pgvector",
    "resolve_url",
]

_IDLE = TransactionStatus.IDLE
_OK = ConnStatus.OK


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """Pool settings. Times are in seconds."""

    min_size: int = 1
    max_size: int = 10
    timeout: float = 30.0
    """How long a query waits for a free connection before a ``ConnectError``."""
    connect_timeout: float = 10.0
    """How long opening one connection may take."""
    max_idle: float = 600.0
    """A connection unused this long is closed (down to ``min_size``)."""
    max_lifetime: float = 3600.0
    """A connection is replaced after this long (staggered by psycopg_pool)."""
    prepare: bool = True
    """Prepare repeated statements on the server. False for PgBouncer in transaction mode."""

    def __post_init__(self) -> None:
        for name in ("min_size", "max_size"):
            value = getattr(self, name)
            count_argument(value, f"connect({name}=...)", ConfigError)
        if self.max_size < max(1, self.min_size):
            raise ConfigError(
                f"connect(max_size={self.max_size}): must be at least 1 and at least "
                f"min_size ({self.min_size})"
            )
        for name in ("timeout", "connect_timeout", "max_idle", "max_lifetime"):
            value = getattr(self, name)
            seconds_argument(value, f"connect({name}=...)", ConfigError, strict=True)

    def connection_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of every connection the pool opens."""
        return {
            "autocommit": True,  # transactions are explicit: db.transaction()
            # Prepare a statement the second time a connection runs it: one-off SQL
            # never costs a prepare, repeated shapes skip parse and plan from then on.
            "prepare_threshold": 1 if self.prepare else None,
            "connect_timeout": max(1, round(self.connect_timeout)),
        }

    def pool_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of psycopg_pool's pool."""
        return {
            "min_size": self.min_size,
            "max_size": self.max_size,
            "timeout": self.timeout,
            "max_idle": self.max_idle,
            "max_lifetime": self.max_lifetime,
            "kwargs": self.connection_kwargs(),
        }


def resolve_url(url: str | Settings | None) -> str:
    """A database URL from a URL, a ``Settings``, or (None) the project's settings.

    Without a configured URL, the project's embedded PostgreSQL is started.
    """
    from ..embedded import database_url

    if url is None:
        url = load_settings()
    if isinstance(url, Settings):
        return database_url(url)
    if not isinstance(url, str) or not url:
        raise ConfigError(f"connect() takes a database URL or Settings, got {type(url).__name__}")
    check_database_url(url, "connect()")
    return url


def pool_timeout_error(
    url: str, options: PoolOptions, probe_error: BaseException | None, *, opening: bool = False
) -> ConnectError:
    """Why no connection came: the server is unreachable (``probe_error``), or all are busy."""
    if probe_error is not None:
        return connect_error(url, probe_error)
    target = describe_target(url)
    if opening:
        return ConnectError(
            f"cannot open a connection pool to {target}: no connection was ready within "
            f"{options.connect_timeout:g}s although the server accepts connections. "
            "Check the server's max_connections and log."
        )
    return ConnectError(
        f"no free connection to {target} within {options.timeout:g}s: all {options.max_size} "
        "pooled connections are in use. Raise max_size or timeout, or look for transactions "
        "or streams that hold connections too long."
    )


def probe_kwargs(options: PoolOptions) -> dict[str, Any]:
    return {"connect_timeout": max(1, round(options.connect_timeout)), "autocommit": True}


# -- connections -------------------------------------------------------------------------


class Connection(psycopg.Connection[Any]):
    """A pooled connection with one reusable client cursor, ``qk_cur`` (made by ``configure``)."""

    qk_cur: psycopg.Cursor[Any]
    qk_factory: Any = None
    """The row factory ``qk_cur`` has now (set together with it)."""
    qk_statements: Statements | None = None
    """querykit's own prepared statements (:mod:`querykit.execute.statements`), made by ``configure``."""
    _qk_returned: float = 0.0
    """When it last went back to the pool by the fast path (``monotonic()``)."""
    _qk_poll: Any = None


class AsyncConnection(psycopg.AsyncConnection[Any]):
    """The async twin of :class:`Connection`."""

    qk_cur: psycopg.AsyncCursor[Any]
    qk_factory: Any = None
    qk_statements: Statements | None = None
    _qk_returned: float = 0.0
    _qk_poll: Any = None


# A connection idle for less than this is not polled: a server restart takes longer,
# and a busy pool cycles its connections far faster.
CHECK_IDLE_AFTER = 0.1


def is_dead(conn: Connection | AsyncConnection) -> bool:
    """True if an idle pooled connection was closed by the server (restart, terminate).

    An idle connection has nothing to read. If its socket is readable, the server
    sent something: usually a FATAL error followed by end-of-file; read it to know.
    """
    pgconn = conn.pgconn
    if pgconn.status != _OK:
        return True
    poller = conn._qk_poll
    if poller is None:
        if not hasattr(select, "poll"):  # pragma: no cover - non-POSIX
            return False
        poller = conn._qk_poll = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
    for _ in range(3):  # the error message, then end-of-file
        if not poller.poll(0):
            return False
        try:
            pgconn.consume_input()
        except psycopg.OperationalError:
            return True
        if pgconn.status != _OK:
            return True
    return False  # still readable after reading: notifications; the connection is fine


def check_connection(conn: Connection) -> None:
    """psycopg_pool's ``check=`` hook, for connections handed out by its own path."""
    if is_dead(conn):
        raise psycopg.OperationalError("the server closed this idle connection")


async def check_connection_async(conn: AsyncConnection) -> None:
    if is_dead(conn):
        raise psycopg.OperationalError("the server closed this idle connection")


# -- pgvector --------------------------------------------------------------------------------


class _PgvectorTextDumper(Dumper):
    """pgvector values as text of unknown type, for connections without the registered types.

    The server casts the text from the context (a vector column, a ``<->``
    operand), so vectors work before ``CREATE EXTENSION vector`` reached this
    connection, e.g. when migrations ran after the pool opened.
    """

    def dump(self, obj: Any) -> bytes:
        text: str = obj.to_text()
        return text.encode()


_HAS_VECTOR = "SELECT to_regtype('vector') IS NOT NULL"


def _register_fallback(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    for cls in (Vector, CheckedVector, HalfVector, SparseVector, Bit):
        conn.adapters.register_dumper(cls, _PgvectorTextDumper)


def _register_checked_vector(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """pgvector's dumpers for querykit's CheckedVector too: found at once, not by the MRO."""
    adapters = conn.adapters
    for fmt in (PyFormat.TEXT, PyFormat.BINARY):  # binary last: the AUTO choice
        adapters.register_dumper(CheckedVector, adapters.get_dumper(Vector, fmt))


def register_pgvector(conn: psycopg.Connection[Any]) -> None:
    """pgvector's types on ``conn``, or the text fallback where the extension is missing.

    Every connection that sends querykit's parameters needs it: the pool's, and the
    one ``querykit sql --explain`` opens.
    """
    _register_fallback(conn)
    row = conn.execute(_HAS_VECTOR).fetchone()
    if row is not None and row[0]:
        register_vector(conn)
        _register_checked_vector(conn)


def configure(conn: Connection) -> None:
    """psycopg_pool's ``configure=`` hook: runs once on every new connection."""
    conn.qk_statements = install(conn)  # first: before the connection prepares anything
    codecs.register_loaders(conn)
    register_pgvector(conn)
    conn.qk_cur = conn.cursor()  # last: a cursor takes the adapters registered so far


async def configure_async(conn: AsyncConnection) -> None:
    """Set up a new async connection: loaders, pgvector's adapters, session settings."""
    conn.qk_statements = install(conn)
    codecs.register_loaders(conn)
    _register_fallback(conn)
    cur = await conn.execute(_HAS_VECTOR)
    row = await cur.fetchone()
    if row is not None and row[0]:
        await register_vector_async(conn)
        _register_checked_vector(conn)
    conn.qk_cur = conn.cursor()


# -- pools ------------------------------------------------------------------------------------

# What the fast paths read and write inside psycopg_pool (checked on each pool).
_POOL_INTERNALS = ("_lock", "_pool", "_waiting", "_closed", "_nconns_min", "_drained_at")
# psycopg_pool's async pool makes its lock in open(), in the event loop: its fast path
# looks for the lock on each call instead (_qk_unlocked).
_ASYNC_POOL_INTERNALS = tuple(name for name in _POOL_INTERNALS if name != "_lock")


def _has_internals(pool: object, names: tuple[str, ...] = _POOL_INTERNALS) -> bool:
    missing = [name for name in names if not hasattr(pool, name)]
    if missing and not _warned:
        _warned.append(True)
        warnings.warn(
            f"psycopg_pool {psycopg_pool.__version__} lacks {', '.join(missing)}: querykit's "
            "pool fast path is off (each query pays psycopg_pool's full path; `make bench` "
            "shows the cost); install the psycopg-pool version querykit pins",
            RuntimeWarning,
            stacklevel=3,
        )
    return not missing


_warned: list[bool] = []


class _Origin:
    """Where a querykit pool connects and with which options: the part both pool classes share.

    A replica's pool is rebuilt from these after a failure, and messages name
    ``qk_target`` (host, port and database; never a password).
    """

    qk_url: str
    qk_target: str
    qk_options: PoolOptions

    def _qk_origin(self, conninfo: str, name: str, options: PoolOptions) -> dict[str, Any]:
        """Remember the origin; the psycopg_pool arguments that follow from it (opened later)."""
        self.qk_url = conninfo
        self.qk_target = describe_target(conninfo)
        self.qk_options = options
        return {"open": False, "name": name, **options.pool_kwargs()}


class Pool(_Origin, ConnectionPool[Connection]):
    """psycopg_pool's ``ConnectionPool`` with a fast path for the uncontended case."""

    def __init__(self, conninfo: str, *, name: str, options: PoolOptions) -> None:
        super().__init__(
            conninfo,
            connection_class=Connection,
            configure=configure,
            check=check_connection,
            **self._qk_origin(conninfo, name, options),
        )
        self._qk_fast = _has_internals(self)

    def getconn(self, timeout: float | None = None) -> Connection:
        """A connection from the pool; idle ones are handed out without psycopg_pool's queue."""
        if self._qk_fast:
            conn = None
            lock = self._lock  # acquire() and release(): half the cost of a with-block
            lock.acquire()
            try:
                if self._pool and not self._closed:
                    conn = self._pool.popleft()
                    if len(self._pool) < self._nconns_min:
                        self._nconns_min = len(self._pool)
            finally:
                lock.release()
            if conn is not None:
                conn._pool = self
                if monotonic() - conn._qk_returned < CHECK_IDLE_AFTER or not is_dead(conn):
                    return conn
                self.putconn(conn)  # psycopg_pool discards it and opens a replacement
        return super().getconn(timeout)

    def putconn(self, conn: Connection) -> None:
        """Give a connection back; an idle one goes straight back to the pool's deque."""
        if self._qk_fast and conn._pool is self and conn.pgconn.transaction_status == _IDLE:
            now = monotonic()
            if conn._expire_at > now and conn._created_at > self._drained_at:
                lock = self._lock
                lock.acquire()
                try:
                    if not self._waiting and not self._closed:
                        conn._pool = None
                        conn._qk_returned = now
                        self._pool.append(conn)
                        return
                finally:
                    lock.release()
        super().putconn(conn)


class AsyncPool(_Origin, AsyncConnectionPool[AsyncConnection]):
    """The async twin of :class:`Pool`.

    In the event loop no other task runs between two awaits, so the fast path
    needs no lock of its own; it steps aside whenever psycopg_pool holds its lock.
    """

    def __init__(self, conninfo: str, *, name: str, options: PoolOptions) -> None:
        super().__init__(
            conninfo,
            connection_class=AsyncConnection,
            configure=configure_async,
            check=check_connection_async,
            **self._qk_origin(conninfo, name, options),
        )
        self._qk_fast = _has_internals(self, _ASYNC_POOL_INTERNALS)

    def _qk_unlocked(self) -> bool:
        lock = getattr(self, "_lock", None)
        return lock is not None and not lock.locked()

    async def getconn(self, timeout: float | None = None) -> AsyncConnection:
        """A connection from the pool; idle ones are handed out without psycopg_pool's queue."""
        if self._qk_fast and self._pool and not self._closed and self._qk_unlocked():
            conn = self._pool.popleft()
            if len(self._pool) < self._nconns_min:
                self._nconns_min = len(self._pool)
            conn._pool = self
            if monotonic() - conn._qk_returned < CHECK_IDLE_AFTER or not is_dead(conn):
                return conn
            await self.putconn(conn)
        return await super().getconn(timeout)

    async def putconn(self, conn: AsyncConnection) -> None:
        """Give a connection back; an idle one goes straight back to the pool's deque."""
        if (
            self._qk_fast
            and conn._pool is self
            and not self._waiting
            and not self._closed
            and conn.pgconn.transaction_status == _IDLE
            and self._qk_unlocked()
        ):
            now = monotonic()
            if conn._expire_at > now and conn._created_at > self._drained_at:
                conn._pool = None
                conn._qk_returned = now
                self._pool.append(conn)
                return
        await super().putconn(conn)
