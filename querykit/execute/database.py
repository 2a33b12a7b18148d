# Generated from querykit/execute/database_async.py by tools/async_to_sync.py; do not edit.
"""``Database``: run querykit queries on a pool of psycopg connections.

    >>> db = connect("postgresql://app@localhost/app")
    >>> db.all(select(run.c.id, run.c.cost).where(eq(run.c.status, Status.FAILED)))
    [('c1x...', Decimal('0.120000'))]

Rows are plain tuples typed from the query (``list[tuple[str, Decimal]]``),
or instances of an ``as_=`` class. ``one()`` wants exactly one row,
``first()`` returns ``None`` for none, ``scalar()``/``scalars()`` take the
first column of a single-column query, ``execute()`` returns the rowcount and
``stream()`` reads through a server-side cursor in batches.

Inside ``with db.transaction():`` every query of this database in the
same thread or task (and the tasks it starts) runs in that transaction;
nested blocks are savepoints. Do not run the queries of one transaction from
concurrent tasks: they take turns on one connection.

The async module is the source; the sync one is generated from it by
``tools/async_to_sync.py``. Both share :mod:`querykit.execute.plan` (and its neighbours), which decide
what is sent and how rows are read.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextvars import Token
from typing import Any, LiteralString, TypeVar, TypeVarTuple, overload

import psycopg
import sqlalchemy as sa
from psycopg import capabilities, pq
from psycopg.generators import execute
from psycopg.pq.abc import PGresult
from psycopg_pool import PoolClosed, PoolTimeout

from ..arguments import count_argument
from ..build.nested import NestedQuery
from ..build.query import Query
from ..errors import ArgumentError, ExecuteError, QueryKitError
from ..settings import Settings
from .bulk import BulkJob
from .bulk_run import run_bulk
from .connect import describe_target
from .diagnose import DISCARD_PREPARED, database_error, is_stale_plan, placeholder_error
from .loading import TableQueries, load
from .plan import (
    Fetch,
    Plan,
    check_one,
    compile_for,
    logger,
    nested_result,
    no_rows_error,
    now,
    restore_settings_sql,
    set_local_sql,
    settings_sql,
)
from .pool import (
    Connection,
    Pool,
    PoolOptions,
    pool_timeout_error,
    probe_kwargs,
    resolve_url,
)
from .prepared import PreparedPlan
from .prepared_query import PreparedQuery
from .progress import Progress, progress_counter
from .querylog import Listeners, QueryCallback, ensure_log_handler, log_enabled
from .replica_monitor import ReplicaMonitor  # routing: replicas, read-your-writes, poolers
from .replica_reads import acquire_read, check_pooler, note_commit, run_read
from .routing import Consistency, Pooler, Router, RoutingOptions, pooled_refusal, session_feature
from .statements import Statement, Statements, result_of, rowcount
from .transactions import (
    CURRENT,
    ActiveTransaction,
    AttemptState,
    TransactionOptions,
    active_transaction,
    ended_error,
    with_retries_error,
)

__all__ = [
    "Attempt",
    "Database",
    "Transaction",
    "TransactionBlock",
    "connect",
]

T = TypeVar("T")
C = TypeVar("C")
Ts = TypeVarTuple("Ts")

_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_IDLE = pq.TransactionStatus.IDLE
_INTRANS = pq.TransactionStatus.INTRANS
_FIRST, _ROWCOUNT = Fetch.FIRST, Fetch.ROWCOUNT
_NO_STATEMENT = "26000"  # invalid_sql_statement_name: "prepared statement ... does not exist"
_CAN_CLOSE = capabilities.has_send_close_prepared()  # libpq >= 17
_ONE_ROW = frozenset({Fetch.ONE, Fetch.SCALAR})
_MANY_ROWS = frozenset({Fetch.ALL, Fetch.SCALARS})
_stream_names = itertools.count(1)


def connect(
    url: str | Settings | None = None,
    *,
    replicas: Sequence[str | Settings] = (),
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 30.0,
    connect_timeout: float = 10.0,
    max_idle: float = 600.0,
    max_lifetime: float = 3600.0,
    prepare: bool | None = None,
    consistency: Consistency = "eventual",
    max_replica_wait: float = 0.02,
    max_lag: float = 5.0,
    pooler: Pooler = "none",
) -> Database:
    """Open a :class:`Database` on a pool of connections to ``url``.

    ``url`` is a PostgreSQL URL or a ``Settings``; without one, the project's
    settings decide (and the embedded server starts when none is configured).
    ``replicas`` are URLs of read replicas: plain SELECTs outside transactions
    go there, round-robin; everything else goes to ``url``.

    Pool: ``min_size``/``max_size`` connections, ``timeout`` seconds to wait for
    a free one, ``connect_timeout`` to open one, ``max_idle`` and
    ``max_lifetime`` seconds before one is closed or replaced. ``prepare=False``
    turns server-side prepared statements off (PgBouncer in transaction mode).

    Opening waits for ``min_size`` connections, so an unreachable server is a
    ``ConnectError`` here, naming host and port, not on the first query.

    ``with connect(url) as db:`` opens it and closes it on the way out;
    ``db = connect(url)`` opens it, and you ``close()`` it yourself.
    """
    routing = RoutingOptions(consistency, max_replica_wait, max_lag, pooler=pooler)
    options = PoolOptions(
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        connect_timeout=connect_timeout,
        max_idle=max_idle,
        max_lifetime=max_lifetime,
        prepare=routing.server_prepare(prepare),
    )
    db = Database(resolve_url(url), [resolve_url(r) for r in replicas], options, routing)
    db._open()
    return db


class _Runner:
    """The query methods, shared by :class:`Database` and :class:`Transaction`."""

    __slots__ = ()

    _db: Database

    # -- the hooks each subclass implements ---------------------------------------

    def _run(
        self,
        plan: Plan,
        params: Sequence[Any],
        fetch: int,
        as_: type | None,
        settings: Sequence[tuple[str, str]],
    ) -> Any:
        raise NotImplementedError

    def _stream_rows(
        self,
        plan: Plan,
        params: Sequence[Any],
        batch: int,
        as_: type | None,
        settings: Sequence[tuple[str, str]],
    ) -> Generator[Any, None, None]:
        raise NotImplementedError

    def _bulk(self, job: BulkJob, advance: Callable[[int], None] | None) -> int:
        raise NotImplementedError

    def _pipeline(self, work: list[tuple[Plan, Sequence[Any]]]) -> list[Any]:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------

    def _query(self, query: Query[*tuple[Any, ...]], fetch: int, as_: type | None) -> Any:
        if isinstance(query, NestedQuery):
            return nested_result(self._load(query), fetch, as_, Fetch.METHOD[fetch])
        plan, params = compile_for(query, fetch)
        if self._db._pooled and (what := session_feature(plan.sql)):  # routing: poolers
            raise pooled_refusal(plan.sql, what)
        return self._run(plan, params, fetch, as_, query.settings)

    def _load(self, query: NestedQuery[Any]) -> list[Any]:
        """The results of a nested query, level by level."""
        return load(query, self._rows, self._rows_many)

    def _rows(self, query: Query[Any]) -> Any:
        """The decoded rows of one plain query (a level of a nested query)."""
        plan, params = compile_for(query, Fetch.ALL)
        return self._run(plan, params, Fetch.ALL, None, query.settings)

    def _rows_many(self, queries: list[Query[Any]]) -> list[Any]:
        """The rows of several independent queries, sent together in one pipeline."""
        return self._pipeline([compile_for(q, Fetch.ALL) for q in queries])

    def _stream(
        self,
        plan: Plan,
        params: Sequence[Any],
        batch: int,
        as_: type | None,
        settings: Sequence[tuple[str, str]],
    ) -> Generator[Any, None, None]:
        if plan.returns_rows is False:
            raise no_rows_error("stream", plan)
        count_argument(batch, "stream(batch=...)", ArgumentError, minimum=1)
        if self._db._pooled and (what := session_feature(plan.sql)):  # routing: poolers
            raise pooled_refusal(plan.sql, what)
        return self._stream_rows(plan, params, batch, as_, settings)

    # -- the public query methods -----------------------------------------------------

    @overload
    def all(self, query: NestedQuery[T], *, as_: None = None) -> list[T]: ...  # type: ignore[overload-overlap]
    @overload
    def all(self, query: Query[*Ts], *, as_: None = None) -> list[tuple[*Ts]]: ...
    @overload
    def all(self, query: Query[*tuple[Any, ...]], *, as_: type[C]) -> list[C]: ...
    def all(self, query: Query[*tuple[Any, ...]], *, as_: type[Any] | None = None) -> list[Any]:
        """Every row, as tuples (or ``as_`` instances)."""
        result: list[Any] = self._query(query, Fetch.ALL, as_)
        return result

    @overload
    def one(self, query: NestedQuery[T], *, as_: None = None) -> T: ...  # type: ignore[overload-overlap]
    @overload
    def one(self, query: Query[*Ts], *, as_: None = None) -> tuple[*Ts]: ...
    @overload
    def one(self, query: Query[*tuple[Any, ...]], *, as_: type[C]) -> C: ...
    def one(self, query: Query[*tuple[Any, ...]], *, as_: type[Any] | None = None) -> Any:
        """Exactly one row; ``NoResultError`` or ``MultipleResultsError`` otherwise."""
        return self._query(query, Fetch.ONE, as_)

    @overload
    def first(self, query: NestedQuery[T], *, as_: None = None) -> T | None: ...  # type: ignore[overload-overlap]
    @overload
    def first(self, query: Query[*Ts], *, as_: None = None) -> tuple[*Ts] | None: ...
    @overload
    def first(self, query: Query[*tuple[Any, ...]], *, as_: type[C]) -> C | None: ...
    def first(self, query: Query[*tuple[Any, ...]], *, as_: type[Any] | None = None) -> Any:
        """The first row, or ``None`` when there is none."""
        return self._query(query, Fetch.FIRST, as_)

    def scalar(self, query: Query[T]) -> T:
        """The value of a single-column query that returns exactly one row.

        Typed for single-column queries (``Query[T]``): the type checker cannot
        take the first of several column types.
        """
        result: T = self._query(query, Fetch.SCALAR, None)
        return result

    def scalars(self, query: Query[T]) -> list[T]:
        """The values of a single-column query, one per row."""
        result: list[T] = self._query(query, Fetch.SCALARS, None)
        return result

    def execute(self, query: Query[*tuple[Any, ...]]) -> int:
        """Run a statement; the number of rows it returned or changed."""
        result: int = self._query(query, Fetch.ROWCOUNT, None)
        return result

    @overload
    def stream(
        self, query: Query[*Ts], *, batch: int = ..., as_: None = None
    ) -> Generator[tuple[*Ts], None, None]: ...
    @overload
    def stream(
        self, query: Query[*tuple[Any, ...]], *, batch: int = ..., as_: type[C]
    ) -> Generator[C, None, None]: ...
    def stream(
        self, query: Query[*tuple[Any, ...]], *, batch: int = 1000, as_: type[Any] | None = None
    ) -> Generator[Any, None, None]:
        """Rows through a server-side cursor, ``batch`` at a time: memory stays flat.

        The connection is held until the loop ends; leaving early is fine
        (``break``), and ``with contextlib.closing(db.stream(q)) as rows:``
        releases it at once.
        """
        plan, params = compile_for(query, "stream")
        return self._stream(plan, params, batch, as_, query.settings)

    def query(self, table: sa.Table) -> TableQueries:
        """Nested results from ``table``, Drizzle style: ``db.query(t).find_many(with_=...)``."""
        return TableQueries(self, table)

    def prepare(self, query: Query[*Ts]) -> PreparedQuery[*Ts]:
        """Build and compile ``query`` once; call the result with its placeholders' values."""
        return PreparedQuery(self, PreparedPlan(query, server_prepare=self._db._options.prepare))

    def insert_many(
        self, table: sa.Table, rows: Iterable[Mapping[Any, Any]], *, progress: Progress = None
    ) -> int:
        """Insert rows (mappings of column name to value) by binary COPY; the row count.

        Every row is checked against the table; a bad row is a ``ValidationError``
        naming its index, and nothing is written. An iterator is streamed, a chunk
        at a time, in flat memory. ``progress``: a callback ``(done, total)`` or
        ``True`` for a bar on a terminal (:mod:`querykit.execute.progress`). See
        :mod:`querykit.execute.bulk`.
        """
        job = BulkJob(table, rows)
        with progress_counter(progress, job.total, f"insert_many({table.name})") as advance:
            return self._bulk(job, advance)

    def upsert_many(
        self,
        table: sa.Table,
        rows: Iterable[Mapping[Any, Any]],
        *,
        conflict: Sequence[Any] | str,
        update: Sequence[Any] | None = None,
        progress: Progress = None,
    ) -> int:
        """Insert rows, updating those whose ``conflict`` columns match an existing row.

        ``update`` names the columns to overwrite (default: every given column
        that is not a conflict column); ``update=()`` skips existing rows
        instead. Returns the number of rows inserted or updated. An iterator is
        streamed as by :meth:`insert_many`, one statement per chunk: a conflict
        key repeated within a chunk is an error, in a later chunk it updates again.
        """
        job = BulkJob(table, rows, method="upsert_many", conflict=conflict, update=update)
        with progress_counter(progress, job.total, f"upsert_many({table.name})") as advance:
            return self._bulk(job, advance)


class Database(_Runner):
    """A pool of connections to one PostgreSQL database (and its read replicas).

    Make one with :func:`connect`; close it with ``db.close()`` or by
    leaving its ``with`` block. It is safe to share between threads (async:
    between the tasks of one event loop).
    """

    __slots__ = (
        "_closed",
        "_db",
        "_listeners",
        "_monitor",
        "_options",
        "_pool",
        "_pooled",
        "_replicas",
        "_router",
        "_target",
        "_url",
    )

    def __init__(
        self,
        url: str,
        replicas: Sequence[str],
        options: PoolOptions,
        routing: RoutingOptions | None = None,
    ) -> None:
        self._db = self
        self._url = url
        self._target = describe_target(url)
        self._options = options
        self._pool = Pool(url, name="querykit", options=options)
        self._replicas = [Pool(r, name="querykit replica", options=options) for r in replicas]
        # routing: replicas, read-your-writes, poolers
        self._router = Router(
            routing or RoutingOptions(), self._target, [p.qk_target for p in self._replicas]
        )
        self._pooled = self._router.options.pooler != "none"
        self._monitor = ReplicaMonitor(self._router, url, list(replicas)) if replicas else None
        self._listeners = Listeners()
        self._closed = False
        if log_enabled():
            ensure_log_handler()

    def __repr__(self) -> str:
        replicas = f", {len(self._replicas)} replicas" if self._replicas else ""
        return f"<Database {self._target}{replicas}>"

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> None:
        try:
            for pool in (self._pool, *self._replicas):
                url = pool.qk_url
                # One plain connection first: an unreachable server fails here, at once,
                # with libpq's reason, instead of after the pool's retries time out.
                failure = _probe(url, self._options)
                if failure is not None:
                    raise pool_timeout_error(url, self._options, failure) from failure
                check_pooler(self._router, url, self._options)  # routing
                try:
                    pool.open(
                        wait=self._options.min_size > 0, timeout=self._options.connect_timeout
                    )
                except PoolTimeout as exc:
                    probe = _probe(url, self._options)
                    raise pool_timeout_error(url, self._options, probe, opening=True) from exc
            if self._monitor is not None:
                self._monitor.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close every connection. Queries after this raise ``ExecuteError``."""
        if self._closed:
            return
        self._closed = True
        if self._monitor is not None:
            self._monitor.stop()
        for pool in (self._pool, *self._replicas):
            pool.close()

    def on_query(self, callback: QueryCallback, *, mask_params: bool = False) -> Callable[[], None]:
        """Call ``callback(record)`` after every statement; returns a function that stops it.

        The :class:`QueryRecord` has the SQL, the parameters (each ``"***"`` with
        ``mask_params=True``), the duration, the rowcount, the server and the error.
        """
        return self._listeners.add(callback, mask_params)

    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False, retries: int = 0
    ) -> TransactionBlock:
        """A transaction block: ``with db.transaction() as tx:``.

        Inside, every query of this database (through ``db`` or ``tx``) runs in
        the transaction; an exception rolls it back. A nested block is a
        savepoint. ``isolation`` is "read committed", "repeatable read" or
        "serializable"; ``readonly=True`` starts a READ ONLY transaction.

        With ``retries=N`` the block reruns on a serialization failure or a
        deadlock, after a short random backoff, up to N more times::

            for attempt in db.transaction(isolation="serializable", retries=3):
                with attempt as tx:
                    ...
        """
        return TransactionBlock(self, TransactionOptions.of(isolation, readonly, retries))

    # -- read-your-writes (routing) ---------------------------------------------------

    def consistency_token(self) -> str:
        """The primary's WAL position after this context's last write; see ``Database``."""
        return self._router.consistency_token()

    def after(self, token: str) -> contextlib.AbstractContextManager[None]:
        """Inside the block, replica reads wait until ``token`` (a ``consistency_token()``) is replayed."""
        return self._router.after(token)

    def _getconn(self, pool: Pool) -> Connection:
        try:
            return pool.getconn()
        except (PoolTimeout, PoolClosed) as exc:
            raise self._pool_error(pool, exc) from exc

    def _pool_error(self, pool: Pool, exc: Exception) -> QueryKitError:
        if isinstance(exc, PoolClosed):
            return ExecuteError(f"{self!r} is closed; connect() again")
        url = pool.qk_url
        return pool_timeout_error(url, self._options, _probe(url, self._options))

    # -- the hooks ----------------------------------------------------------------------

    def _load(self, query: NestedQuery[Any]) -> list[Any]:
        if CURRENT.get() is not None and active_transaction(self) is not None:
            return super()._load(query)
        # A plain read: every level from one connection, so a replica serves all of
        # them or none (levels from two replicas could disagree).
        listeners = self._listeners

        def levels(conn: Connection, target: str) -> list[Any]:
            def rows(level: Query[Any]) -> Any:
                plan, params = compile_for(level, Fetch.ALL)
                return _execute(
                    conn, plan, params, Fetch.ALL, None, level.settings, False, target, listeners
                )

            def rows_many(levels: list[Query[Any]]) -> list[Any]:
                work = [compile_for(q, Fetch.ALL) for q in levels]
                return _pipelined(conn, work, target, listeners)

            return load(query, rows, rows_many)

        if not self._replicas:
            with self._connection() as conn:
                return levels(conn, self._target)
        return run_read(self._router, self._pool, self._replicas, self._getconn, levels)

    def _run(
        self,
        plan: Plan,
        params: Sequence[Any],
        fetch: int,
        as_: type | None,
        settings: Sequence[tuple[str, str]],
    ) -> Any:
        if CURRENT.get() is not None:
            state = active_transaction(self)
            if state is not None:
                return _run_in(state, plan, params, fetch, as_, settings, self)
        if plan.read and self._replicas:  # routing: a replica, or the primary with a reason
            listeners = self._listeners

            def read(conn: Connection, target: str) -> Any:
                return _execute(conn, plan, params, fetch, as_, settings, False, target, listeners)

            return run_read(self._router, self._pool, self._replicas, self._getconn, read)
        pool = self._pool
        try:
            conn = pool.getconn()
        except (PoolTimeout, PoolClosed) as exc:
            raise self._pool_error(pool, exc) from exc
        try:
            result = _execute(
                conn, plan, params, fetch, as_, settings, False, pool.qk_target, self._listeners
            )
            if self._router.tracks_writes:  # routing: read-your-writes
                note_commit(self._router, conn)
            return result
        finally:
            pool.putconn(conn)

    def _stream_rows(
        self,
        plan: Plan,
        params: Sequence[Any],
        batch: int,
        as_: type | None,
        settings: Sequence[tuple[str, str]],
    ) -> Generator[Any, None, None]:
        state = active_transaction(self)
        if state is not None:
            state.check_open()
            for row in _stream_on(
                state.conn, plan, params, batch, as_, settings, True, self._target, self
            ):
                yield row
            return
        if plan.read and self._replicas:  # routing: a replica, or the primary with a reason
            pool, conn, target, _ = acquire_read(
                self._router, self._pool, self._replicas, self._getconn
            )
        else:
            pool = self._pool
            conn = self._getconn(pool)
            target = pool.qk_target
        try:
            with _Translated("COMMIT", target, conn), conn.transaction():
                for row in _stream_on(
                    conn, plan, params, batch, as_, settings, False, target, self
                ):
                    yield row
        finally:
            pool.putconn(conn)

    def _bulk(self, job: BulkJob, advance: Callable[[int], None] | None) -> int:
        with self._connection() as conn:
            count = run_bulk(conn, job, self._listeners, self._target, advance)
            if self._router.tracks_writes:  # routing: read-your-writes
                note_commit(self._router, conn)
            return count

    def _pipeline(self, work: list[tuple[Plan, Sequence[Any]]]) -> list[Any]:
        with self._connection() as conn:
            return _pipelined(conn, work, self._target, self._listeners)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Connection]:
        """The running transaction's connection (under its lock), else one from the pool."""
        state = active_transaction(self) if CURRENT.get() is not None else None
        if state is not None:
            state.check_open()
            with state.lock:
                yield state.conn
            return
        conn = self._getconn(self._pool)
        try:
            yield conn
        finally:
            self._pool.putconn(conn)


def _probe(url: str, options: PoolOptions) -> BaseException | None:
    """Open one connection outside the pool, to tell "unreachable" from "all busy"."""
    try:
        conn = psycopg.Connection.connect(url, **probe_kwargs(options))
    except psycopg.Error as exc:
        return exc
    conn.close()
    return None


class _Translated:
    """Turn psycopg errors raised by a block (a COMMIT, a BEGIN) into ``DatabaseError``."""

    __slots__ = ("conn", "statement", "target")

    def __init__(self, statement: str, target: str, conn: psycopg.Connection[Any]) -> None:
        self.statement = statement
        self.target = target
        self.conn = conn

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, psycopg.Error):
            raise database_error(exc, self.statement, self.target, lost=self.conn.closed) from exc


# -- running one statement ---------------------------------------------------------------------


def _execute(
    conn: Connection,
    plan: Plan,
    params: Sequence[Any],
    fetch: int,
    as_: type | None,
    settings: Sequence[tuple[str, str]],
    in_transaction: bool,
    target: str,
    listeners: Listeners,
    rerun: bool = True,
) -> Any:
    """Send one statement on ``conn`` and read what ``fetch`` asks for. The hot path.

    A repeated statement goes as querykit's own prepared statement
    (:mod:`querykit.execute.statements`) where nothing needs psycopg's cursor;
    the rest goes through the connection's reusable cursor.
    """
    if plan.returns_rows is False and fetch != _ROWCOUNT:
        raise no_rows_error(fetch, plan)
    statements = conn.qk_statements
    if (
        statements is not None
        and (as_ is None or plan.columns)  # raw() with as_=: names come from the cursor
        and (
            plan.prepare
            or (
                plan.prepare is None
                # raw SQL without parameters may hold several statements: psycopg's
                # cursor sends it by the simple protocol, which runs them all
                and (params or plan.returns_rows is not None)
                and not statements.first_time(plan.sql)
            )
        )
    ):
        pgconn = conn.pgconn
        status = pgconn.transaction_status
        if (
            not pgconn.pipeline_status
            and (status == _INTRANS or (status == _IDLE and conn.autocommit))
            and (not settings or _settings_here(conn, in_transaction, status == _INTRANS))
        ):
            return _execute_statement(
                conn,
                statements,
                plan,
                params,
                fetch,
                as_,
                settings,
                in_transaction,
                target,
                listeners,
                rerun,
            )
    cur = conn.qk_cur
    factory = plan.factories[fetch] if as_ is None else plan.mapped(as_, fetch)
    if conn.qk_factory is not factory:  # cheaper than the cursor's row_factory property
        cur.row_factory = conn.qk_factory = factory
    callbacks = listeners.callbacks
    started = now() if callbacks else 0.0
    result: Any
    try:
        if settings:
            _execute_with_settings(conn, cur, plan, params, settings, in_transaction)
        else:
            cur.execute(plan.sql, params, prepare=plan.prepare)
        if plan.returns_rows is None and fetch != _ROWCOUNT and _no_result_rows(cur):
            raise no_rows_error(fetch, plan)
        if fetch in _ONE_ROW:
            if cur.rowcount != 1:
                check_one(cur.rowcount, fetch, plan)
            result = cur.fetchone()
        elif fetch == _FIRST:
            result = cur.fetchone()
        elif fetch == _ROWCOUNT:
            result = cur.rowcount
        else:
            result = cur.fetchall()
    except psycopg.Error as exc:
        if rerun and not in_transaction and _is_stale(conn, exc):
            # A migration changed a column type under this connection's prepared
            # statement; nothing ran, so the statement runs again, prepared anew.
            return _execute(
                conn, plan, params, fetch, as_, settings, False, target, listeners, False
            )
        raise _failed(exc, conn, plan, params, started, target, listeners) from exc
    except QueryKitError as error:
        if callbacks:
            listeners.notify(plan.sql, params, started, cur.rowcount, target, error)
        raise
    if callbacks:
        listeners.notify(plan.sql, params, started, cur.rowcount, target)
    return result


def _execute_statement(
    conn: Connection,
    statements: Statements,
    plan: Plan,
    params: Sequence[Any],
    fetch: int,
    as_: type | None,
    settings: Sequence[tuple[str, str]],
    in_transaction: bool,
    target: str,
    listeners: Listeners,
    rerun: bool,
) -> Any:
    """:func:`_execute` for a statement querykit prepares itself: the same results and errors."""
    factory = plan.factories[fetch] if as_ is None else plan.mapped(as_, fetch)
    callbacks = listeners.callbacks
    started = now() if callbacks else 0.0
    count = -1
    result: Any
    try:
        if settings:
            res, statement = _send_with_settings(
                conn, statements, plan, params, settings, in_transaction
            )
        else:
            with conn.lock:
                res, statement = _send_prepared(conn, statements, plan.sql, params)
        if res.status != _TUPLES_OK:
            count = rowcount(res)
            if fetch != _ROWCOUNT:
                raise no_rows_error(fetch, plan)  # raw SQL: builders know their rows
            result = count
        elif fetch == _ROWCOUNT:
            result = count = res.ntuples
        else:
            count = res.ntuples
            if fetch in _ONE_ROW and count != 1:
                check_one(count, fetch, plan)
            tx = statement.tx
            if statement.nfields == res.nfields:  # the statement's loaders are set
                tx.set_pgresult(res, set_loaders=False)
            else:
                tx.set_pgresult(res)
                statement.nfields = res.nfields
            try:
                if fetch in _MANY_ROWS:
                    result = tx.load_rows(0, count, factory(conn.qk_cur))
                else:
                    result = tx.load_row(0, factory(conn.qk_cur)) if count else None
            finally:
                tx.set_pgresult(None, set_loaders=False)  # the rows are out: let the result go
    except psycopg.Error as exc:
        gone = exc.sqlstate == _NO_STATEMENT  # a DEALLOCATE ALL psycopg did not see, a pooler...
        if gone:
            statements.forget()
        if rerun and not in_transaction and (gone or _is_stale(conn, exc)):
            # Nothing ran: the statement runs again, prepared anew.
            return _execute(
                conn, plan, params, fetch, as_, settings, False, target, listeners, False
            )
        raise _failed(exc, conn, plan, params, started, target, listeners) from exc
    except QueryKitError as error:
        if callbacks:
            listeners.notify(plan.sql, params, started, count, target, error)
        raise
    if callbacks:
        listeners.notify(plan.sql, params, started, count, target)
    return result


def _send_prepared(
    conn: Connection, statements: Statements, sql: LiteralString, params: Sequence[Any]
) -> tuple[PGresult, Statement]:
    """Run ``sql`` as querykit's prepared statement on ``conn`` (prepared first if new).

    The caller holds ``conn.lock``.
    """
    pgconn = conn.pgconn
    statement = statements.table.get(sql)
    if statement is None or len(params) != statement.nparams:
        # (a wrong count gets psycopg's own error, from its parse of the placeholders)
        statement = statements.new(sql, conn.qk_cur, params)
    tx = statement.tx
    values = tx.dump_sequence(params, statement.formats)
    formats = tx.formats
    types = tx.types
    if types != statement.types:  # psycopg's dumpers chose other types (int2, int8...)
        statement = statements.variant(statement, types)
    else:
        statement.used = True
    if not statement.prepared:
        _prepare(conn, statements, statement)
    pgconn.send_query_prepared(statement.name, values, param_formats=formats)
    return result_of(conn.wait(execute(pgconn)), conn.qk_cur), statement


def _settings_here(conn: Connection, in_transaction: bool, inside: bool) -> bool:
    """Whether a query with settings can run as querykit's statements on ``conn`` now.

    In the user's transaction, or in one of the query's own started by a plain
    ``BEGIN``: a connection with an isolation level, ``read_only`` or
    ``deferrable`` of its own keeps psycopg's ``conn.transaction()``, which
    starts with them.
    """
    if in_transaction or inside:
        return in_transaction and inside
    return conn.isolation_level is None and conn.read_only is None and conn.deferrable is None


def _send_with_settings(
    conn: Connection,
    statements: Statements,
    plan: Plan,
    params: Sequence[Any],
    settings: Sequence[tuple[str, str]],
    in_transaction: bool,
) -> tuple[PGresult, Statement]:
    """:func:`_execute_with_settings` with querykit's prepared statements.

    Outside a transaction: ``BEGIN``, ``set_config(..., true)``, the statement,
    ``COMMIT``, under one hold of the lock, and a rollback on any error (the
    ``set_config`` SQL is the same for the same number of settings: a prepared
    statement too). Inside one: the old values read, the statement, the old
    values put back (not on error: the transaction is aborted).
    """
    pgconn = conn.pgconn
    cur = conn.qk_cur
    if in_transaction:
        set_sql, set_params = settings_sql(settings)
        with conn.lock:
            res, setter = _send_prepared(conn, statements, set_sql, set_params)
            setter.tx.set_pgresult(res)
            old = setter.tx.load_row(0, tuple)  # the values as psycopg loads them: str or None
            setter.tx.set_pgresult(None, set_loaders=False)
            sent = _send_prepared(conn, statements, plan.sql, params)
            previous = old[0::2]
            if None not in previous:  # set_config back to each: one statement of querykit's
                back_sql, back_params = set_local_sql(
                    [(name, value) for (name, _), value in zip(settings, previous, strict=True)]
                )
                _send_prepared(conn, statements, back_sql, back_params)
                return sent
        for restore, values in restore_settings_sql(settings, old):  # SET LOCAL ... TO DEFAULT
            conn.execute(restore, values)
        return sent
    set_sql, set_params = set_local_sql(settings)
    try:
        with conn.lock:
            pgconn.send_query(b"BEGIN")
            result_of(conn.wait(execute(pgconn)), cur)
            _send_prepared(conn, statements, set_sql, set_params)
            sent = _send_prepared(conn, statements, plan.sql, params)
            pgconn.send_query(b"COMMIT")
            result_of(conn.wait(execute(pgconn)), cur)
    except BaseException:
        if not conn.closed and pgconn.transaction_status != _IDLE:
            conn.rollback()  # psycopg's: it also drops the prepared statements, as ever
        raise
    return sent


def _prepare(conn: Connection, statements: Statements, statement: Statement) -> None:
    """PREPARE (a Parse message) ``statement``, after closing those pushed out of the cache."""
    pgconn = conn.pgconn
    while statements.closing and (_CAN_CLOSE or pgconn.transaction_status == _IDLE):
        name = statements.closing.pop()
        if _CAN_CLOSE:  # a Close message: no error if the server dropped it already
            pgconn.send_close_prepared(name)
        else:
            pgconn.send_query(b"DEALLOCATE " + name)
        result_of(conn.wait(execute(pgconn)), conn.qk_cur)
    statement.name = statements.next_name()
    pgconn.send_prepare(statement.name, statement.query, param_types=statement.types)
    result_of(conn.wait(execute(pgconn)), conn.qk_cur)
    statement.prepared = True


def _is_stale(conn: Connection, exc: psycopg.Error) -> bool:
    """A migration changed a column type under the statement: drop the prepared ones."""
    return is_stale_plan(exc) and _discard_prepared(conn)


def _failed(
    exc: psycopg.Error,
    conn: Connection,
    plan: Plan,
    params: Sequence[Any],
    started: float,
    target: str,
    listeners: Listeners,
) -> QueryKitError:
    """The querykit error for a psycopg error of one statement, told to the query log."""
    error = placeholder_error(params) or database_error(exc, plan.sql, target, lost=conn.closed)
    if listeners.callbacks:
        listeners.notify(plan.sql, params, started, -1, target, error)
    return error


def _no_result_rows(cur: psycopg.Cursor[Any]) -> bool:
    result = cur.pgresult
    return result is None or result.status != _TUPLES_OK


def _discard_prepared(conn: psycopg.Connection[Any]) -> bool:
    """Drop the prepared statements of ``conn`` (outside a transaction); False if that fails."""
    logger.info(
        "querykit: a column type changed under a prepared statement; dropping this "
        "connection's prepared statements and running the statement again"
    )
    try:
        conn.execute(DISCARD_PREPARED, prepare=False)  # never a prepared DEALLOCATE
    except psycopg.Error:
        return False
    statements = getattr(conn, "qk_statements", None)
    if statements is not None:
        statements.forget()
    return True


def _execute_with_settings(
    conn: psycopg.Connection[Any],
    cur: psycopg.Cursor[Any],
    plan: Plan,
    params: Sequence[Any],
    settings: Sequence[tuple[str, str]],
    in_transaction: bool,
) -> None:
    """Apply ``set_config(name, value, true)`` around one statement, and only it."""
    if not in_transaction:
        set_sql, set_params = set_local_sql(settings)
        with conn.transaction():
            cur.execute(set_sql, set_params)  # the query's own cursor: no new one to set up
            cur.execute(plan.sql, params, prepare=plan.prepare)
        return
    set_sql, set_params = settings_sql(settings)
    old = (conn.execute(set_sql, set_params)).fetchone()
    assert old is not None
    cur.execute(plan.sql, params, prepare=plan.prepare)
    for statement, values in restore_settings_sql(settings, old):
        conn.execute(statement, values)


def _run_in(
    state: ActiveTransaction,
    plan: Plan,
    params: Sequence[Any],
    fetch: int,
    as_: type | None,
    settings: Sequence[tuple[str, str]],
    db: Database,
) -> Any:
    state.check_open()
    with state.lock:
        return _execute(
            state.conn, plan, params, fetch, as_, settings, True, db._target, db._listeners
        )


def _stream_on(
    conn: psycopg.Connection[Any],
    plan: Plan,
    params: Sequence[Any],
    batch: int,
    as_: type | None,
    settings: Sequence[tuple[str, str]],
    in_transaction: bool,
    target: str,
    db: Database,
) -> Generator[Any, None, None]:
    """Rows of one statement through a server-side cursor, inside a transaction."""
    listeners = db._listeners
    started = now()
    count = 0
    try:
        old = None
        if settings:
            set_sql, set_params = settings_sql(settings)
            old = (conn.execute(set_sql, set_params)).fetchone()
        name = f"querykit_stream_{next(_stream_names)}"
        factory = plan.factories[Fetch.ALL] if as_ is None else plan.mapped(as_, Fetch.ALL)
        with conn.cursor(name, row_factory=factory) as cur:
            cur.itersize = batch
            cur.execute(plan.sql, params)
            if plan.returns_rows is None and cur.description is None:
                raise no_rows_error("stream", plan)
            while rows := cur.fetchmany(batch):
                count += len(rows)
                yield from rows
        if settings and in_transaction and old is not None:
            for statement, values in restore_settings_sql(settings, old):
                conn.execute(statement, values)
    except psycopg.Error as exc:
        error = database_error(exc, plan.sql, target, lost=conn.closed)
        if listeners.callbacks:
            listeners.notify(plan.sql, params, started, -1, target, error)
        raise error from exc
    if listeners.callbacks:
        listeners.notify(plan.sql, params, started, count, target)


def _pipelined(
    conn: psycopg.Connection[Any],
    work: list[tuple[Plan, Sequence[Any]]],
    target: str,
    listeners: Listeners,
    rerun: bool = True,
) -> list[Any]:
    """Send every statement, then read every result: one round trip (psycopg pipeline mode)."""
    started = now()
    cursors: list[psycopg.Cursor[Any]] = []
    current = work[0][0].sql if work else ""
    try:
        with conn.pipeline():
            for plan, params in work:
                current = plan.sql
                cur = conn.cursor(row_factory=plan.factories[Fetch.ALL])
                cur.execute(plan.sql, params, prepare=plan.prepare)
                cursors.append(cur)
        results = [cur.fetchall() for cur in cursors]
    except psycopg.Error as exc:
        if (
            rerun
            and is_stale_plan(exc)
            and conn.pgconn.transaction_status == _IDLE  # not inside a transaction block
            and _discard_prepared(conn)
        ):
            return _pipelined(conn, work, target, listeners, False)
        raise database_error(exc, current, target, lost=conn.closed) from exc
    if listeners.callbacks:
        for (plan, params), cur in zip(work, cursors, strict=True):
            listeners.notify(plan.sql, params, started, cur.rowcount, target)
    return results


# -- transactions ----------------------------------------------------------------------------


class Transaction(_Runner):
    """A running transaction block: the query methods, on the block's connection.

    ``db`` itself also routes to this connection inside the block, so passing
    ``tx`` around is optional.
    """

    __slots__ = ("_cm", "_db", "_ended", "_outermost", "_state", "_token")

    def __init__(
        self,
        db: Database,
        state: ActiveTransaction,
        cm: Any,
        token: Token[ActiveTransaction | None] | None,
    ) -> None:
        self._db = db
        self._state = state
        self._cm = cm
        self._token = token
        self._outermost = token is not None
        self._ended = False

    def __repr__(self) -> str:
        kind = "transaction" if self._outermost else "savepoint"
        return f"<Transaction ({kind}) on {self._db._target}>"

    def transaction(self) -> TransactionBlock:
        """A nested block: a savepoint in this transaction."""
        return self._db.transaction()

    def _check(self) -> ActiveTransaction:
        if self._ended:
            raise ended_error()
        self._state.check_open()
        return self._state

    def _run(
        self,
        plan: Plan,
        params: Sequence[Any],
        fetch: int,
        as_: type | None,
        settings: Sequence[tuple[str, str]],
    ) -> Any:
        return _run_in(self._check(), plan, params, fetch, as_, settings, self._db)

    def _stream_rows(
        self,
        plan: Plan,
        params: Sequence[Any],
        batch: int,
        as_: type | None,
        settings: Sequence[tuple[str, str]],
    ) -> Generator[Any, None, None]:
        state = self._check()
        db = self._db
        yield from _stream_on(state.conn, plan, params, batch, as_, settings, True, db._target, db)

    def _bulk(self, job: BulkJob, advance: Callable[[int], None] | None) -> int:
        state = self._check()
        with state.lock:
            return run_bulk(state.conn, job, self._db._listeners, self._db._target, advance)

    def _pipeline(self, work: list[tuple[Plan, Sequence[Any]]]) -> list[Any]:
        state = self._check()
        with state.lock:
            return _pipelined(state.conn, work, self._db._target, self._db._listeners)

    def _end(self, exc: BaseException | None) -> None:
        """Commit (or roll back, after ``exc``) and give the connection back."""
        self._ended = True
        state = self._state
        conn = state.conn
        try:
            with _Translated("COMMIT" if exc is None else "ROLLBACK", self._db._target, conn):
                self._cm.__exit__(
                    type(exc) if exc else None, exc, exc.__traceback__ if exc else None
                )
            if self._outermost and exc is None and self._db._router.tracks_writes:
                note_commit(self._db._router, conn)  # routing: read-your-writes
        finally:
            if self._outermost:
                state.closed = True
                assert self._token is not None
                CURRENT.reset(self._token)
                _release(self._db, conn)


def _begin(db: Database, options: TransactionOptions) -> Transaction:
    outer = active_transaction(db)
    if outer is not None:
        options.check_nested()
        outer.check_open()
        with outer.lock, _Translated("SAVEPOINT", db._target, outer.conn):
            cm = outer.conn.transaction()
            cm.__enter__()
        return Transaction(db, outer, cm, None)
    conn = db._getconn(db._pool)
    try:
        if options.isolation is not None:
            conn.set_isolation_level(options.isolation)
        if options.readonly:
            conn.set_read_only(True)
        with _Translated("BEGIN", db._target, conn):
            cm = conn.transaction()
            cm.__enter__()
    except BaseException:
        _release(db, conn)
        raise
    state = ActiveTransaction(db, conn, CURRENT.get(), threading.Lock())
    token = CURRENT.set(state)
    return Transaction(db, state, cm, token)


def _release(db: Database, conn: Connection) -> None:
    """Back to the pool with the defaults restored (the next user starts a plain BEGIN)."""
    try:
        if not conn.closed:
            if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                conn.rollback()
            conn.set_isolation_level(None)
            conn.set_read_only(None)
    except psycopg.Error:
        pass  # a broken connection: the pool sees it and replaces it
    db._pool.putconn(conn)


class TransactionBlock:
    """What ``db.transaction()`` returns: a block to enter, or with retries, a loop of attempts."""

    __slots__ = ("_db", "_options", "_tx")

    def __init__(self, db: Database, options: TransactionOptions) -> None:
        self._db = db
        self._options = options
        self._tx: Transaction | None = None

    def __enter__(self) -> Transaction:
        if self._options.retries:
            raise with_retries_error()
        self._tx = _begin(self._db, self._options)
        return self._tx

    def __exit__(self, et: object, exc: BaseException | None, tb: object) -> None:
        tx, self._tx = self._tx, None
        assert tx is not None
        tx._end(exc)

    def __iter__(self) -> Iterator[Attempt]:
        state = AttemptState(self._options.retries)
        while state.next():
            attempt = Attempt(self._db, self._options, state)
            yield attempt
            if attempt.delay:
                time.sleep(attempt.delay)


class Attempt:
    """One run of a ``transaction(retries=N)`` block; enter it: ``with attempt as tx:``."""

    __slots__ = ("_db", "_options", "_state", "_tx", "delay")

    def __init__(self, db: Database, options: TransactionOptions, state: AttemptState) -> None:
        self._db = db
        self._options = options
        self._state = state
        self._tx: Transaction | None = None
        self.delay = 0.0

    @property
    def number(self) -> int:
        """1 for the first run, 2 for the first retry..."""
        return self._state.attempt

    def __enter__(self) -> Transaction:
        self._state.entered = True
        self._tx = _begin(self._db, self._options)
        return self._tx

    def __exit__(self, et: object, exc: BaseException | None, tb: object) -> bool:
        tx, self._tx = self._tx, None
        assert tx is not None
        try:
            tx._end(exc)
        except QueryKitError as commit_error:
            if exc is not None:
                raise
            delay = self._state.finished(commit_error)
            if delay is None:
                raise
            self.delay = delay
            return True
        delay = self._state.finished(exc)
        if delay is None:
            return False
        self.delay = delay
        return True
