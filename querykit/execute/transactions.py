"""Transaction options, the retry policy, and the context variable that routes
queries inside a ``transaction()`` block to its connection.
"""

from __future__ import annotations

import logging
import math
import random
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import IsolationLevel

from ..arguments import count_argument
from ..errors import ArgumentError, DatabaseError, ExecuteError
from .diagnose import is_stale_plan

logger = logging.getLogger("querykit")

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
        """Check ``transaction()``'s arguments; an ``ArgumentError`` says what is wrong."""
        level = None
        if isolation is not None:
            key = " ".join(str(isolation).lower().replace("_", " ").replace("-", " ").split())
            level = _ISOLATION.get(key)
            if level is None:
                raise ArgumentError(
                    f"transaction(isolation={isolation!r}): expected one of "
                    f"{', '.join(repr(k) for k in _ISOLATION)}"
                )
        count_argument(retries, "transaction(retries=...)", ArgumentError)
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
    """The error for ``transaction(retries=N)`` used as a ``with`` block."""
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
        """Whether ``exc`` (a serialization failure or deadlock) earns another attempt."""
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
        """Refuse a query on a transaction block that has ended."""
        if self.closed:
            raise ended_error()


def ended_error() -> ExecuteError:
    """The error for a query on a transaction block that has ended."""
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
