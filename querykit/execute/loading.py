# Generated from querykit/execute/loading_async.py by tools/async_to_sync.py; do not edit.
"""Run a nested query: the loading conversation's I/O, and ``db.query(table)``.

:func:`querykit.execute.nested_rows.load_steps` says which statements a nested query
needs and turns their rows into results, with no I/O; :func:`load` only
runs what it asks for on the executor's functions. The async module is the
source; the sync one is generated from it by ``tools/async_to_sync.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

import sqlalchemy as sa

from ..build.nested import NestedQuery, find_first, find_many
from ..build.query import Query
from .nested_rows import load_steps

__all__ = ["RunAll", "RunMany", "TableQueries", "load"]

T = TypeVar("T")

RunAll = Callable[[Query[Any]], Sequence[Sequence[Any]]]
"""Runs one query and returns its rows, decoded (``db.all`` without the nesting)."""
RunMany = Callable[[list[Query[Any]]], Sequence[Sequence[Sequence[Any]]]]
"""Runs several independent queries (in one pipeline) and returns their rows, in order."""


def load(query: NestedQuery[T], run_all: RunAll, run_many: RunMany | None = None) -> list[T]:
    """Run a nested query with the executor's ``run_all`` (and ``run_many`` for a pipeline)."""
    steps = load_steps(query)
    batch = next(steps)
    while True:
        if run_many is not None and len(batch) > 1:
            results = list(run_many(batch))
        else:
            results = [run_all(q) for q in batch]
        try:
            batch = steps.send(results)
        except StopIteration as done:
            result: list[T] = done.value
            return result


# -- db.query(table): Drizzle's db.query.table.findMany ------------------------------------


class TableQueries:
    """``db.query(table)``: ``find_many`` / ``find_first`` that run at once on ``db``.

    runs = db.query(pipeline_run).find_many(with_={"steps": include()})
    """

    __slots__ = ("_runner", "_table")

    def __init__(self, runner: Any, table: sa.Table) -> None:
        self._runner = runner
        self._table = table

    @overload
    def find_many(self, *, as_: None = None, **options: Any) -> list[dict[str, Any]]: ...
    @overload
    def find_many(self, *, as_: type[T], **options: Any) -> list[T]: ...
    def find_many(self, *, as_: type[Any] | None = None, **options: Any) -> list[Any]:
        """``find_many(table, ...)``, run: the list of results."""
        result: list[Any] = self._runner.all(find_many(self._table, as_=as_, **options))
        return result

    @overload
    def find_first(self, *, as_: None = None, **options: Any) -> dict[str, Any] | None: ...
    @overload
    def find_first(self, *, as_: type[T], **options: Any) -> T | None: ...
    def find_first(self, *, as_: type[Any] | None = None, **options: Any) -> Any:
        """``find_first(table, ...)``, run: the first result or ``None``."""
        return self._runner.first(find_first(self._table, as_=as_, **options))
