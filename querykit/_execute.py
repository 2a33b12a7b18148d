"""The core shared by ``Database`` and ``AsyncDatabase``: everything about running a
query that does no I/O.

The sync and async faces (``db.py``, ``db_async.py``) only get a connection,
send, and fetch. What they send and how they read it is decided here:

- a :class:`Plan` per compiled query shape: the SQL, whether rows come back,
  whether a replica may serve it, and the row factories that decode values;
- the checks of ``one()`` / ``scalar()`` and of ``as_=`` classes;
- the translation of psycopg errors into the querykit error tree;
- the query log (``on_query`` records, ``QUERYKIT_LOG``);
- transaction options and the retry policy;
- the context variable that routes queries inside a transaction block to its
  connection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
import random
import threading
import typing
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, NamedTuple

import psycopg
from psycopg import IsolationLevel, sql
from psycopg.rows import tuple_row

from . import codecs
from .compile import Shape, compile_query
from .errors import (
    ArgumentError,
    CompileError,
    DatabaseError,
    ExecuteError,
    MappingError,
    MultipleResultsError,
    NoResultError,
    QueryKitError,
    ValidationError,
)
from .query import CompoundQuery, Query, SelectQuery

__all__ = [
    "DISCARD_PREPARED",
    "ActiveTransaction",
    "Fetch",
    "Plan",
    "QueryRecord",
    "RetryPolicy",
    "TransactionOptions",
    "active_transaction",
    "check_query",
    "compile_for",
    "database_error",
    "is_stale_plan",
    "plan_for",
]

logger = logging.getLogger("querykit")

RowMaker = Callable[[Sequence[Any]], Any]
RowFactory = Callable[[Any], RowMaker]


class Fetch:
    """What a query method reads back from the cursor (small ints: this is the hot path)."""

    ALL = 0
    ONE = 1
    FIRST = 2
    SCALAR = 3
    SCALARS = 4
    ROWCOUNT = 5
    METHOD = ("all", "one", "first", "scalar", "scalars", "execute")


# -- plans -----------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Plan:
    """How to run one compiled query shape."""

    sql: str
    returns_rows: bool | None
    """True/False for builders; None for ``raw()``, known only once it has run."""
    read: bool
    """A plain SELECT, which a read replica may serve outside transactions."""
    prepare: bool | None
    """psycopg's ``prepare=``: None lets the connection's threshold decide."""
    columns: tuple[str, ...]
    decoders: tuple[codecs.Decoder | None, ...]
    factories: tuple[RowFactory, ...]
    """The row factory for each ``Fetch`` (tuples, or the first column for scalars)."""
    _mapped: dict[type, RowFactory] = field(default_factory=dict)

    def mapped(self, as_: type, fetch: int) -> RowFactory:
        """The row factory for an ``as_=`` class."""
        if fetch == Fetch.SCALAR or fetch == Fetch.SCALARS:
            return self.factories[fetch]
        found = self._mapped.get(as_)
        if found is None:
            found = self._mapped[as_] = _mapped_factory(self.columns, self.decoders, as_)
        return found

    def excerpt(self) -> str:
        return sql_excerpt(self.sql)


_PLANS: dict[int, tuple[Shape, Plan]] = {}
_MAX_PLANS = 4096


def plan_for(shape: Shape, query: Query[Any]) -> Plan:
    """The plan of a compiled shape, built once per shape."""
    entry = _PLANS.get(id(shape))
    if entry is not None and entry[0] is shape:
        return entry[1]
    plan = _build_plan(shape, query)
    if not shape.cached:  # compiled for this call only (Core's tuple IN)
        return plan
    if len(_PLANS) >= _MAX_PLANS:  # another thread may be evicting too
        with contextlib.suppress(KeyError, RuntimeError, StopIteration):
            del _PLANS[next(iter(_PLANS))]
    _PLANS[id(shape)] = (shape, plan)  # holding the shape keeps its id from being reused
    return plan


def _build_plan(shape: Shape, query: Query[Any]) -> Plan:
    from .raw import RawQuery

    is_raw = isinstance(query, RawQuery)
    read = (
        query.plain_read
        or isinstance(query, CompoundQuery)
        or (isinstance(query, SelectQuery) and query._for_update is None)
    )
    decoders = shape.decoders
    rows = _decoding_factory(decoders)
    scalar = _scalar_factory(decoders[0] if decoders else None)
    return Plan(
        sql=shape.sql,
        returns_rows=None if is_raw else shape.returns_rows,
        read=read,
        prepare=None,
        columns=shape.columns,
        decoders=decoders,
        factories=(rows, rows, rows, scalar, scalar, rows),
    )


def compile_for(query: object, method: str | int) -> tuple[Plan, Sequence[Any]]:
    """The plan of ``query`` and its parameters, adapted and checked: what the faces send.

    ``method`` (a name, or a ``Fetch``) is only for error messages. On the hot path.
    """
    if not isinstance(query, Query):
        raise not_a_query(query, method if isinstance(method, str) else Fetch.METHOD[method])
    shape, values = compile_query(query)
    entry = _PLANS.get(id(shape))
    plan = entry[1] if entry is not None and entry[0] is shape else plan_for(shape, query)
    try:
        params = shape.params(values)
    except ValidationError:
        error = placeholder_error(values)
        if error is not None:
            raise error from None
        raise
    return plan, params


def check_query(query: object, method: str) -> None:
    """A clear error for things that are not querykit queries (a str, a Core statement)."""
    if not isinstance(query, Query):
        raise not_a_query(query, method)


def not_a_query(query: object, method: str) -> CompileError:
    if isinstance(query, str):
        return CompileError(
            f"{method}() takes a query, not a string; wrap SQL text in raw(): "
            f'{method}(raw("SELECT ... WHERE id = :id", id=...))'
        )
    return CompileError(
        f"{method}() takes a querykit query (select(), insert(), update(), delete(), raw()), "
        f"got {type(query).__name__}; a Core statement can be embedded with raw(':stmt', stmt=...)"
    )


# -- rows ------------------------------------------------------------------------------


def _decoding_factory(decoders: Sequence[codecs.Decoder | None]) -> RowFactory:
    """Plain tuples when psycopg's values are final, else a maker that finishes them."""
    if all(d is None for d in decoders):
        return tuple_row
    make = _decoding_maker(decoders)
    return lambda cursor: make


def _decoding_maker(decoders: Sequence[codecs.Decoder | None]) -> RowMaker:
    # A small generated function per shape: one line per column, no loop, no lookups.
    # Only indices go into the source; decoders are passed in as names d0, d1...
    lines = [
        f"def make(values):\n    ({', '.join(f'v{i}' for i in range(len(decoders)))},) = values"
    ]
    items = []
    for i, d in enumerate(decoders):
        items.append(f"v{i}" if d is None else f"(None if v{i} is None else d{i}(v{i}))")
    lines.append(f"    return ({', '.join(items)},)")
    namespace: dict[str, Any] = {f"d{i}": d for i, d in enumerate(decoders) if d is not None}
    exec("\n".join(lines), namespace)
    maker: RowMaker = namespace["make"]
    return maker


def _scalar_factory(decoder: codecs.Decoder | None) -> RowFactory:
    if decoder is None:
        return lambda cursor: _first
    return lambda cursor: lambda values: None if values[0] is None else decoder(values[0])


def _first(values: Sequence[Any]) -> Any:
    return values[0]


def _mapped_factory(
    columns: tuple[str, ...], decoders: tuple[codecs.Decoder | None, ...], cls: type
) -> RowFactory:
    if columns:  # a builder: names known now, checked now
        to_row = _mapper(columns, cls)
        decode = _decoding_maker(decoders) if any(decoders) else None
        if decode is None:
            return lambda cursor: to_row
        return lambda cursor: lambda values: to_row(decode(values))

    def from_description(cursor: Any) -> RowMaker:  # raw(): names come with the result
        names = tuple(c.name for c in cursor.description or ())
        try:
            return _mapper(names, cls)
        except MappingError as exc:
            # psycopg also calls this for the previous result when the factory is set;
            # the error is for the rows of this result, when there are any.
            error = exc

            def fail(values: Sequence[Any]) -> Any:
                raise error

            return fail

    return from_description


_MAPPERS: dict[tuple[tuple[str, ...], type], RowMaker] = {}


def _mapper(names: tuple[str, ...], cls: type) -> RowMaker:
    found = _MAPPERS.get((names, cls))
    if found is None:
        found = _MAPPERS[(names, cls)] = _build_mapper(names, cls)
    return found


def _build_mapper(names: tuple[str, ...], cls: type) -> RowMaker:
    fields, required, kind = _fields_of(cls)
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise MappingError(
            f"cannot map rows to {cls.__name__}: the query returns column {', '.join(dupes)} "
            "more than once; give the columns distinct names with .label('...')"
        )
    unknown = [n for n in names if n not in fields]
    missing = [f for f in required if f not in names]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"no field for column {', '.join(unknown)}")
        if missing:
            problems.append(f"no column for field {', '.join(missing)}")
        raise MappingError(
            f"cannot map rows to {cls.__name__}: {'; '.join(problems)}. "
            f"Columns: {', '.join(names) or '(none)'}; fields: {', '.join(fields)}. "
            "Rename columns with .label('field') or change the class"
        )
    if kind == "dict":
        return lambda values: dict(zip(names, values, strict=True))
    if list(names) == list(fields[: len(names)]):  # same order: positional is fastest
        return lambda values: cls(*values)
    return lambda values: cls(**dict(zip(names, values, strict=True)))


def _fields_of(cls: type) -> tuple[list[str], list[str], str]:
    """(field names in order, required field names, "dict" | "object") of an as_= class."""
    if dataclasses.is_dataclass(cls):
        fs = [f for f in dataclasses.fields(cls) if f.init]
        required = [
            f.name
            for f in fs
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        return [f.name for f in fs], required, "object"
    if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields"):
        defaults = getattr(cls, "_field_defaults", {})
        names = list(cls._fields)
        return names, [n for n in names if n not in defaults], "object"
    if typing.is_typeddict(cls):
        hints = list(typing.get_type_hints(cls))
        required_keys: frozenset[str] = getattr(cls, "__required_keys__", frozenset(hints))
        return hints, [h for h in hints if h in required_keys], "dict"
    raise MappingError(
        f"as_={getattr(cls, '__name__', cls)!r}: expected a dataclass, a NamedTuple or a TypedDict"
    )


# -- result checks ---------------------------------------------------------------------------


def no_rows_error(method: str | int, plan: Plan) -> ExecuteError:
    if isinstance(method, int):
        method = Fetch.METHOD[method]
    return ExecuteError(
        f"{method}() needs a statement that returns rows, and this one returns none; "
        f"add .returning(...) or call execute(). SQL: {plan.excerpt()}"
    )


def check_one(rowcount: int, fetch: int, plan: Plan) -> None:
    """``one()`` and ``scalar()`` want exactly one row."""
    if rowcount == 1:
        return
    method = Fetch.METHOD[fetch]
    if rowcount == 0:
        raise NoResultError(
            f"{method}() expected exactly one row and found none; use first() when no row "
            f"is a valid answer. SQL: {plan.excerpt()}"
        )
    raise MultipleResultsError(
        f"{method}() expected exactly one row and found {rowcount}; add a condition or "
        f".limit(1), or use first() or all(). SQL: {plan.excerpt()}"
    )


def sql_excerpt(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# -- errors ------------------------------------------------------------------------------

# What to do, for the SQLSTATEs where the server's own message does not say it.
_ADVICE = {
    "40001": "the transaction conflicted with a concurrent one: run it again "
    "(db.transaction(retries=N) does that for you)",
    "40P01": "a deadlock was detected: run the transaction again, and take locks "
    "in the same order everywhere (db.transaction(retries=N) retries it)",
    "57014": "the statement was cancelled (statement_timeout, or a cancel request)",
    "57P01": "the server terminated the connection (an administrator, a restart, or "
    "pg_terminate_backend); the pool replaces it: run the statement again",
    "57P02": "the server is shutting down or crashed; the pool reconnects when it is back",
    "57P03": "the server is starting up or shutting down; try again shortly",
    "25006": "the transaction is read-only (readonly=True, or a read replica)",
    "42P01": "check the table name, and that migrations ran on this database",
    "42703": "check the column name against the table in this database (migrations?)",
}
_LOST = "the connection to the server was lost; the pool replaces it: run the statement again"
_STALE_PLAN = (
    "this connection prepared the statement before a column's type changed (a migration "
    "ran ALTER TABLE ... ALTER COLUMN ... TYPE), and the transaction is aborted. Run the "
    "transaction again: the rollback dropped the connection's prepared statements, so the "
    "statement is planned anew (db.transaction(retries=N) does that for you). Outside a "
    "transaction querykit runs such a statement again by itself"
)
# Where PostgreSQL raises "cached plan must not change result type"; the message itself
# follows lc_messages, the source file does not.
_PLANCACHE = "plancache.c"
_STALE_MESSAGE = "cached plan must not change result type"


def is_stale_plan(exc: psycopg.Error) -> bool:
    """Did a prepared statement fail because a migration changed its result's types?

    Checked only after an error (0A000): the normal path pays nothing for it.
    """
    if exc.sqlstate != "0A000":
        return False
    diag = exc.diag
    return diag.source_file == _PLANCACHE or _STALE_MESSAGE in (diag.message_primary or "")


# Drops a connection's prepared statements. psycopg (3.3.6+) reads the command's status
# and forgets its own statement names too, so the next run prepares anew, without
# anyone reaching into its private cache.
DISCARD_PREPARED = "DEALLOCATE ALL"


def database_error(
    exc: psycopg.Error,
    sql_text: str,
    target: str,
    *,
    lost: bool = False,
    row: int | None = None,
) -> DatabaseError:
    """A ``DatabaseError`` for a psycopg error: SQLSTATE, the server's words, advice, the SQL.

    ``lost`` says the connection is closed now. ``row`` is the index, in the caller's
    list, of the row a bulk write failed on (found by :mod:`querykit.bulk`).
    """
    sqlstate = exc.sqlstate
    diag = exc.diag
    primary = diag.message_primary if sqlstate else None
    if not primary:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        primary = lines[0] if lines else type(exc).__name__
    parts = [primary]
    if sqlstate:
        parts[0] += f" (SQLSTATE {sqlstate})"
    if diag.message_detail:
        parts.append(f"DETAIL: {diag.message_detail}")
    if row is not None:
        parts.append(f"at row {row} of the rows given")
    if diag.message_hint:
        parts.append(f"HINT: {diag.message_hint}")
    advice = _ADVICE.get(sqlstate or "")
    if sqlstate == "0A000" and is_stale_plan(exc):
        advice = _STALE_PLAN
    if not advice and (lost or (sqlstate or "").startswith("08")):
        advice = _LOST
    if advice:
        parts.append(advice)
    message = "; ".join(parts) + f". On {target}. SQL: {sql_excerpt(sql_text)}"
    return DatabaseError(message, sqlstate=sqlstate, sql=sql_text, row=row)


def placeholder_error(values: Iterable[Any]) -> CompileError | None:
    """If a normal call met a ``placeholder()``, the error that says to prepare the query."""
    from .prepared import Placeholder

    names = [v.name for v in values if isinstance(v, Placeholder)]
    if not names:
        return None
    return CompileError(
        f"the query has placeholder {', '.join(repr(n) for n in names)}: "
        "run it through db.prepare(query) and give the values when calling it"
    )


# -- the query log ---------------------------------------------------------------------------


class QueryRecord(NamedTuple):
    """What ``db.on_query(callback)`` receives after each statement."""

    sql: str
    params: tuple[Any, ...]
    """The parameters as sent; each one ``"***"`` when the callback asked for masking."""
    duration: float
    """Seconds, from sending the statement to having read its result."""
    rowcount: int
    """Rows returned or affected; -1 when the statement failed."""
    target: str
    """``host:port/dbname`` of the server that ran it (a replica or the primary)."""
    error: QueryKitError | None = None


MASK = "***"
QueryCallback = Callable[[QueryRecord], object]


class Listeners:
    """The ``on_query`` callbacks of one database (shared by its transactions and replicas)."""

    __slots__ = ("_lock", "callbacks")

    def __init__(self) -> None:
        self.callbacks: tuple[tuple[QueryCallback, bool], ...] = ()
        """Replaced, never changed in place: queries read it without a lock."""
        self._lock = threading.Lock()

    def add(self, callback: QueryCallback, mask_params: bool) -> Callable[[], None]:
        entry = (callback, mask_params)
        with self._lock:
            self.callbacks = (*self.callbacks, entry)

        def remove() -> None:
            with self._lock:
                self.callbacks = tuple(e for e in self.callbacks if e is not entry)

        return remove

    def notify(
        self,
        sql_text: str,
        params: Sequence[Any],
        started: float,
        rowcount: int,
        target: str,
        error: QueryKitError | None = None,
    ) -> None:
        duration = perf_counter() - started
        plain = tuple(params)
        masked = tuple(None if p is None else MASK for p in plain)
        for callback, mask in self.callbacks:
            record = QueryRecord(
                sql_text, masked if mask else plain, duration, rowcount, target, error
            )
            try:
                callback(record)
            except Exception:  # a broken logger must not break the application's queries
                logger.exception("querykit: on_query callback %r failed", callback)


LOG_ENV = "QUERYKIT_LOG"


def log_enabled() -> bool:
    return os.environ.get(LOG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def log_query(record: QueryRecord) -> None:
    """The ``QUERYKIT_LOG=1`` listener: one INFO line per statement, parameters masked."""
    if record.error is not None:
        logger.info(
            "%.3f ms on %s, failed: %s | params: %s",
            record.duration * 1000,
            record.target,
            sql_excerpt(record.sql, 2000),
            list(record.params),
        )
        return
    logger.info(
        "%.3f ms on %s, %d rows: %s | params: %s",
        record.duration * 1000,
        record.target,
        record.rowcount,
        sql_excerpt(record.sql, 2000),
        list(record.params),
    )


def ensure_log_handler() -> None:
    """With ``QUERYKIT_LOG=1`` and logging not configured at all, log to stderr (as ``echo``)."""
    root = logging.getLogger()
    if logger.handlers or root.handlers:
        if logger.level == logging.NOTSET and root.level > logging.INFO:
            logger.setLevel(logging.INFO)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s querykit: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


# -- transactions ---------------------------------------------------------------------------

_ISOLATION = {
    "read uncommitted": IsolationLevel.READ_UNCOMMITTED,
    "read committed": IsolationLevel.READ_COMMITTED,
    "repeatable read": IsolationLevel.REPEATABLE_READ,
    "serializable": IsolationLevel.SERIALIZABLE,
}


@dataclass(frozen=True, slots=True)
class TransactionOptions:
    """Validated arguments of ``db.transaction()``."""

    isolation: IsolationLevel | None = None
    readonly: bool = False
    retries: int = 0

    @classmethod
    def of(cls, isolation: str | None, readonly: bool, retries: int) -> TransactionOptions:
        level = None
        if isolation is not None:
            key = " ".join(str(isolation).lower().replace("_", " ").replace("-", " ").split())
            level = _ISOLATION.get(key)
            if level is None:
                raise ArgumentError(
                    f"transaction(isolation={isolation!r}): expected one of "
                    f"{', '.join(repr(k) for k in _ISOLATION)}"
                )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ArgumentError(f"transaction(retries={retries!r}): expected an int >= 0")
        return cls(level, bool(readonly), retries)

    def check_nested(self) -> None:
        """A block inside another is a savepoint: it cannot change what BEGIN decided."""
        if self.isolation is not None or self.readonly:
            raise ArgumentError(
                "a nested transaction() is a savepoint and cannot set isolation or readonly; "
                "set them on the outermost transaction()"
            )
        if self.retries:
            raise ArgumentError(
                "retries= only works on the outermost transaction(): a serialization failure "
                "aborts the whole transaction, not just a savepoint"
            )


def with_retries_error() -> ArgumentError:
    return ArgumentError(
        "transaction(retries=N) reruns the block, which a with-statement cannot do; write\n"
        "    for attempt in db.transaction(retries=N):\n"
        "        with attempt as tx:\n"
        "            ...\n"
        "(async for / async with for AsyncDatabase)"
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Which failures rerun a transaction, and how long to wait before the next attempt."""

    base: float = 0.01
    cap: float = 1.0
    retryable: frozenset[str] = frozenset({"40001", "40P01"})

    def should_retry(self, exc: BaseException | None, attempt: int, retries: int) -> bool:
        if not isinstance(exc, DatabaseError) or attempt > retries:
            return False
        if exc.sqlstate in self.retryable:
            return True
        # A statement prepared before a column type changed: the rollback dropped the
        # connection's prepared statements, so the next attempt plans it anew.
        cause = exc.__cause__
        return isinstance(cause, psycopg.Error) and is_stale_plan(cause)

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter: 0..min(cap, base * 2**(attempt-1)) seconds."""
        ceiling = min(self.cap, self.base * math.pow(2, attempt - 1))
        return random.uniform(0, ceiling)


RETRY = RetryPolicy()


class AttemptState:
    """The bookkeeping of ``for attempt in db.transaction(retries=N)``, sync or async."""

    __slots__ = ("attempt", "done", "entered", "retries")

    def __init__(self, retries: int) -> None:
        self.retries = retries
        self.attempt = 0
        self.done = False
        self.entered = True

    def next(self) -> bool:
        """Start the next attempt; False when the loop is over."""
        if self.done:
            return False
        if not self.entered:
            raise ArgumentError(
                "each attempt of transaction(retries=N) must be entered: "
                "`with attempt as tx:` inside the for loop"
            )
        self.attempt += 1
        self.entered = False
        return True

    def finished(self, exc: BaseException | None) -> float | None:
        """After an attempt: None to stop (success, or raise), else seconds before retrying."""
        if exc is None:
            self.done = True
            return None
        if RETRY.should_retry(exc, self.attempt, self.retries):
            logger.info(
                "querykit: transaction attempt %d failed (%s); retrying",
                self.attempt,
                getattr(exc, "sqlstate", None),
            )
            return RETRY.delay(self.attempt)
        self.done = True
        return None


@dataclass(eq=False, slots=True)
class ActiveTransaction:
    """The connection of a running transaction block, found through a context variable."""

    owner: object
    conn: Any
    outer: ActiveTransaction | None
    lock: Any
    """Guards the connection's reusable cursor (threading.Lock or asyncio.Lock)."""
    closed: bool = False

    def check_open(self) -> None:
        if self.closed:
            raise ended_error()


def ended_error() -> ExecuteError:
    return ExecuteError(
        "this transaction block has ended; run the query inside the block, "
        "or through the database outside it"
    )


CURRENT: ContextVar[ActiveTransaction | None] = ContextVar("querykit_transaction", default=None)


def active_transaction(owner: object) -> ActiveTransaction | None:
    """The innermost running transaction of ``owner`` in this thread or task, if any."""
    state = CURRENT.get()
    while state is not None:
        if state.owner is owner:
            return state
        state = state.outer
    return None


# -- settings around one query (SelectQuery.with_settings) --------------------------------


def set_local_sql(settings: Sequence[tuple[str, str]]) -> tuple[str, list[str]]:
    """``SELECT set_config(n, v, true), ...``: the settings, for a query in its own transaction."""
    return _set_config_sql(len(settings), False), [x for pair in settings for x in pair]


def settings_sql(settings: Sequence[tuple[str, str]]) -> tuple[str, list[str]]:
    """``SELECT current_setting(n, true), set_config(n, v, true), ...``: old values, then set."""
    params: list[str] = []
    for name, value in settings:
        params += [name, name, value]
    return _set_config_sql(len(settings), True), params


@functools.lru_cache(maxsize=64)
def _set_config_sql(count: int, old_values: bool) -> str:
    item = "set_config(%s, %s, true)"
    if old_values:
        item = "current_setting(%s, true), " + item
    return "SELECT " + ", ".join([item] * count)


def restore_settings_sql(
    settings: Sequence[tuple[str, str]], old: Sequence[Any]
) -> list[tuple[sql.Composed | sql.SQL, list[Any]]]:
    """Statements that put back the settings a query changed inside an outer transaction."""
    out: list[tuple[sql.Composed | sql.SQL, list[Any]]] = []
    for (name, _), previous in zip(settings, old[0::2], strict=True):
        if previous is None:  # it was never set: back to the session's value
            ident = sql.SQL(".").join(sql.Identifier(p) for p in name.split("."))
            out.append((sql.SQL("SET LOCAL {} TO DEFAULT").format(ident), []))
        else:
            out.append((sql.SQL("SELECT set_config(%s, %s, true)"), [name, previous]))
    return out


def now() -> float:
    """The clock of the query log's durations (both faces and bulk writes)."""
    return perf_counter()


# -- nested queries ----------------------------------------------------------------------


def nested_result(results: list[Any], fetch: int, as_: type | None, method: str) -> Any:
    """What ``all``/``one``/``first`` return for a nested query's loaded results."""
    if as_ is not None:
        raise ExecuteError(
            f"{method}(..., as_=): give as_= to find_many()/find_first(), which checks it "
            "against every level"
        )
    if fetch == Fetch.ALL:
        return results
    if fetch == Fetch.FIRST:
        return results[0] if results else None
    if fetch == Fetch.ONE:
        if len(results) != 1:
            kind = NoResultError if not results else MultipleResultsError
            raise kind(f"one() expected exactly one row of the nested query, got {len(results)}")
        return results[0]
    raise ExecuteError(f"{method}() does not apply to a nested query; use all(), one() or first()")
