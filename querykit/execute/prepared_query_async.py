"""``AsyncPreparedQuery``: what ``db.prepare(query)`` returns, called with the placeholders' values.

    >>> by_id = db.prepare(select(run.c.id, run.c.name).where(eq(run.c.id, placeholder("id"))))
    >>> await by_id.one(id="c123")
    ('c123', 'nightly')

The query was built and compiled once (:class:`querykit.execute.prepared.PreparedPlan`);
a call fills the placeholders and runs the plan on the database or
transaction that prepared it, with the same methods and rules as theirs. The
async module is the source; the sync one is generated from it by
``tools/async_to_sync.py``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any, Generic, Protocol, TypeVar, TypeVarTuple, overload

from .plan import Fetch, Plan
from .prepared import PreparedPlan

__all__ = ["AsyncPreparedQuery"]

T = TypeVar("T")
C = TypeVar("C")
Ts = TypeVarTuple("Ts")


class _AsyncRunner(Protocol):
    """What a prepared query runs on: an ``AsyncDatabase`` or ``AsyncTransaction``."""

    async def _run(
        self,
        plan: Plan,
        params: Sequence[Any],
        fetch: int,
        as_: type | None,
        settings: Sequence[tuple[str, str]],
    ) -> Any: ...

    def _stream(
        self,
        plan: Plan,
        params: Sequence[Any],
        batch: int,
        as_: type | None,
        settings: Sequence[tuple[str, str]],
    ) -> AsyncGenerator[Any, None]: ...


class AsyncPreparedQuery(Generic[*Ts]):
    """A query compiled once; each call gives the placeholders' values as keywords."""

    __slots__ = ("_fill", "_plan", "_prepared", "_run", "_runner", "_settings")

    def __init__(self, runner: _AsyncRunner, prepared: PreparedPlan) -> None:
        self._runner = runner
        self._prepared = prepared
        # Each call runs: fill the placeholders, then run the plan. Kept at hand.
        self._run = runner._run
        self._plan = prepared.plan
        self._fill = prepared.filler()
        self._settings = prepared.settings

    @property
    def sql(self) -> str:
        """The statement as sent, with ``%s`` where the values go."""
        return self._prepared.plan.sql

    @overload
    async def all(self, *, as_: None = None, **params: Any) -> list[tuple[*Ts]]: ...
    @overload
    async def all(self, *, as_: type[C], **params: Any) -> list[C]: ...
    async def all(self, *, as_: type[Any] | None = None, **params: Any) -> list[Any]:
        """Every row, as tuples (or ``as_`` instances)."""
        result: list[Any] = await self._run(
            self._plan, self._fill(params), Fetch.ALL, as_, self._settings
        )
        return result

    @overload
    async def one(self, *, as_: None = None, **params: Any) -> tuple[*Ts]: ...
    @overload
    async def one(self, *, as_: type[C], **params: Any) -> C: ...
    async def one(self, *, as_: type[Any] | None = None, **params: Any) -> Any:
        """Exactly one row; ``NoResultError`` or ``MultipleResultsError`` otherwise."""
        return await self._run(self._plan, self._fill(params), Fetch.ONE, as_, self._settings)

    @overload
    async def first(self, *, as_: None = None, **params: Any) -> tuple[*Ts] | None: ...
    @overload
    async def first(self, *, as_: type[C], **params: Any) -> C | None: ...
    async def first(self, *, as_: type[Any] | None = None, **params: Any) -> Any:
        """The first row, or ``None`` when there is none."""
        return await self._run(self._plan, self._fill(params), Fetch.FIRST, as_, self._settings)

    async def scalar(self: AsyncPreparedQuery[T], **params: Any) -> T:
        """The value of a single-column query that returns exactly one row."""
        result: T = await self._run(
            self._plan, self._fill(params), Fetch.SCALAR, None, self._settings
        )
        return result

    async def scalars(self: AsyncPreparedQuery[T], **params: Any) -> list[T]:
        """The values of a single-column query, one per row."""
        result: list[T] = await self._run(
            self._plan, self._fill(params), Fetch.SCALARS, None, self._settings
        )
        return result

    async def execute(self, **params: Any) -> int:
        """Run the statement; the number of rows it returned or changed."""
        result: int = await self._run(
            self._plan, self._fill(params), Fetch.ROWCOUNT, None, self._settings
        )
        return result

    @overload
    def stream(
        self, *, batch: int = ..., as_: None = None, **params: Any
    ) -> AsyncGenerator[tuple[*Ts], None]: ...
    @overload
    def stream(
        self, *, batch: int = ..., as_: type[C], **params: Any
    ) -> AsyncGenerator[C, None]: ...
    def stream(
        self, *, batch: int = 1000, as_: type[Any] | None = None, **params: Any
    ) -> AsyncGenerator[Any, None]:
        """Rows through a server-side cursor, ``batch`` at a time (see ``db.stream``)."""
        p = self._prepared
        return self._runner._stream(p.plan, p.params(params), batch, as_, p.settings)
