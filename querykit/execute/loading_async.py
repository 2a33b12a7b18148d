"""Run a nested query: the loading conversation's I/O, and ``db.query(table)``.

:func:`querykit.execute.nested_rows.load_steps` says which statements a nested query
needs and turns their rows into results, with no I/O; :func:`load_async` only
runs what it asks for on the executor's functions. The async module is the
source; the sync one is generated from it by ``tools/async_to_sync.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, overload

import sqlalchemy as sa

from ..build.nested import NestedQuery, find_first, find_many
from ..build.query import Query
from .nested_rows import load_steps

__all__ = ["AsyncRunAll", "AsyncRunMany", "AsyncTableQueries", "load_async"]

T = TypeVar("T")

AsyncRunAll = Callable[[Query[Any]], Awaitable[Sequence[Sequence[Any]]]]
"""Runs one query and returns its rows, decoded (``db.all`` without the nesting)."""
AsyncRunMany = Callable[[list[Query[Any]]], Awaitable[Sequence[Sequence[Sequence[Any]]]]]
"""Runs several independent queries (in one pipeline) and returns their rows, in order."""


async def load_async(
    query: NestedQuery[T], run_all: AsyncRunAll, run_many: AsyncRunMany | None = None
) -> list[T]:
    """Run a nested query with the executor's ``run_all`` (and ``run_many`` for a pipeline)."""
    steps = load_steps(query)
    batch = next(steps)
    while True:
        if run_many is not None and len(batch) > 1:
            results = list(await run_many(batch))
        else:
            results = [await run_all(q) for q in batch]
        try:
            batch = steps.send(results)
        except StopIteration as done:
            result: list[T] = done.value
            return result


# -- db.query(table): Drizzle's db.query.table.findMany ------------------------------------


class AsyncTableQueries:
    """``db.query(table)``: ``find_many`` / ``find_first`` that run at once on ``db``.

    runs = await db.query(pipeline_run).find_many(with_={"steps": include()})
    """

    __slots__ = ("_runner", "_table")

    def __init__(self, runner: Any, table: sa.Table) -> None:
        self._runner = runner
        self._table = table

    @overload
    async def find_many(self, *, as_: None = None, **options: Any) -> list[dict[str, Any]]: ...
    @overload
    async def find_many(self, *, as_: type[T], **options: Any) -> list[T]: ...
    async def find_many(self, *, as_: type[Any] | None = None, **options: Any) -> list[Any]:
        """``find_many(table, ...)``, run: the list of results."""
        result: list[Any] = await self._runner.all(find_many(self._table, as_=as_, **options))
        return result

    @overload
    async def find_first(self, *, as_: None = None, **options: Any) -> dict[str, Any] | None: ...
    @overload
    async def find_first(self, *, as_: type[T], **options: Any) -> T | None: ...
    async def find_first(self, *, as_: type[Any] | None = None, **options: Any) -> Any:
        """``find_first(table, ...)``, run: the first result or ``None``."""
        return await self._runner.first(find_first(self._table, as_=as_, **options))
