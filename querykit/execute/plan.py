"""The core shared by ``Database`` and ``AsyncDatabase``: everything about running a
query that does no I/O.

The sync and async faces (``database.py``, ``database_async.py``) only get a connection,
send, and fetch. What they send and how they read it is decided here:

- a :class:`Plan` per compiled query shape: the SQL, whether rows come back,
  whether a replica may serve it, and the row factories that decode values;
- the checks of ``one()`` / ``scalar()``;
- the ``SET LOCAL`` statements around a query with settings, and nested results.

Beside it: ``rows`` (row factories, ``as_=`` mapping), ``diagnose`` (psycopg errors
into the querykit tree), ``querylog`` (``on_query``, ``QUERYKIT_LOG``) and
``transactions`` (options, retries, the routing context variable).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, LiteralString

from psycopg import sql

from .. import codecs
from ..build.query import Query
from ..build.rowtype import check_row_class, python_type_of
from ..compile import Shape, compile_query
from ..errors import (
    CompileError,
    ExecuteError,
    MultipleResultsError,
    NoResultError,
    ValidationError,
)
from ..trusted_sql import trusted
from .diagnose import placeholder_error, sql_excerpt
from .rows import RowFactory, decoding_factory, mapped_factory, scalar_factory

__all__ = [
    "Fetch",
    "Plan",
    "check_query",
    "compile_for",
    "plan_for",
]

logger = logging.getLogger("querykit")


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

    sql: LiteralString
    """The compiled SQL (values are bound as parameters; see ``trusted_sql``)."""
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
    python_types: tuple[Any, ...] = ()
    """The Python type of each result column (None: unknown), for the ``as_=`` type check."""

    def mapped(self, as_: type, fetch: int) -> RowFactory:
        """The row factory for an ``as_=`` class."""
        if fetch == Fetch.SCALAR or fetch == Fetch.SCALARS:
            return self.factories[fetch]
        found = self._mapped.get(as_)
        if found is None:
            # -- as_= field types, checked once per (plan, class): see querykit.build.rowtype --
            if self.python_types:
                check_row_class(as_, self.columns, self.python_types)
            found = self._mapped[as_] = mapped_factory(self.columns, self.decoders, as_)
        return found

    def excerpt(self) -> str:
        """The SQL, short enough for an error message."""
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
    decoders = shape.decoders
    rows = decoding_factory(decoders)
    scalar = scalar_factory(decoders[0] if decoders else None)
    return Plan(
        sql=trusted(shape.sql),
        returns_rows=shape.returns_rows,
        read=shape.read,
        prepare=None,
        columns=shape.columns,
        decoders=decoders,
        factories=(rows, rows, rows, scalar, scalar, rows),
        python_types=tuple(python_type_of(t) for t in shape.column_types),
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


# -- settings around one query (SelectQuery.with_settings) --------------------------------


def set_local_sql(settings: Sequence[tuple[str, str]]) -> tuple[LiteralString, list[str]]:
    """``SELECT set_config(n, v, true), ...``: the settings, for a query in its own transaction."""
    return _set_config_sql(len(settings), False), [x for pair in settings for x in pair]


def settings_sql(settings: Sequence[tuple[str, str]]) -> tuple[LiteralString, list[str]]:
    """``SELECT current_setting(n, true), set_config(n, v, true), ...``: old values, then set."""
    params: list[str] = []
    for name, value in settings:
        params += [name, name, value]
    return _set_config_sql(len(settings), True), params


@functools.lru_cache(maxsize=64)
def _set_config_sql(count: int, old_values: bool) -> LiteralString:
    item: LiteralString = "set_config(%s, %s, true)"
    if old_values:
        item = "current_setting(%s, true), " + item
    items: list[LiteralString] = [item] * count
    return "SELECT " + ", ".join(items)


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
