"""Aggregates with honest types: ``count`` is ``int``, ``sum`` of numeric is ``Decimal | None``.

They are SQLAlchemy Core functions (``func.count``...); querykit only pins
their result types, which PostgreSQL decides as follows:

- ``count`` and ``count_distinct``: bigint, never NULL → ``int``;
- ``sum``: the column's type (numeric → ``Decimal``, int → ``int``; a sum of
  bigint is numeric on the server and is returned as an exact ``int``), NULL
  for no rows;
- ``avg``: numeric for integer and numeric columns → ``Decimal``, double for
  float columns → ``float``; NULL for no rows;
- ``min`` / ``max``: the column's type, NULL for no rows.

    >>> select(run.c.name, fn.sum(run.c.cost), fn.count()).group_by(run.c.name)

They live in the ``fn`` namespace (like SQLAlchemy's ``func``) so that
``from querykit import *`` never shadows Python's own ``sum``, ``min`` and
``max``. ``count``, ``count_distinct`` and ``avg`` shadow nothing and are also
exported by name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar, cast, overload

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["avg", "count", "count_distinct", "fn"]

T = TypeVar("T")


class _Aggregates:
    """The SQL aggregates, as ``fn.count()``, ``fn.sum(col)``, ``fn.max(col)``...

    A namespace rather than module-level names: ``sum``, ``min`` and ``max`` would
    shadow the builtins wherever ``from querykit import *`` is used.
    """

    __slots__ = ()

    @staticmethod
    def count(expr: ColumnElement[Any] | None = None) -> ColumnElement[int]:
        """``count(*)``, or ``count(expr)`` (non-NULL values of expr)."""
        return sa.func.count() if expr is None else sa.func.count(expr)

    @staticmethod
    def count_distinct(expr: ColumnElement[Any]) -> ColumnElement[int]:
        """``count(DISTINCT expr)``."""
        return sa.func.count(sa.distinct(expr))

    @staticmethod
    def sum(expr: ColumnElement[T]) -> ColumnElement[T | None]:
        """``sum(expr)``: NULL (``None``) when there are no rows."""
        return cast(ColumnElement[T | None], sa.func.sum(expr))

    @overload
    @staticmethod
    def avg(expr: ColumnElement[int]) -> ColumnElement[Decimal | None]: ...
    @overload
    @staticmethod
    def avg(expr: ColumnElement[Decimal]) -> ColumnElement[Decimal | None]: ...
    @overload
    @staticmethod
    def avg(expr: ColumnElement[float]) -> ColumnElement[float | None]: ...
    @staticmethod
    def avg(expr: ColumnElement[Any]) -> ColumnElement[Any]:
        """``avg(expr)``: ``Decimal`` for integer and numeric columns, ``float`` for float ones."""
        if isinstance(expr.type, sa.Integer):
            return sa.func.avg(expr, type_=sa.Numeric(asdecimal=True))
        return sa.func.avg(expr, type_=expr.type)

    @staticmethod
    def min(expr: ColumnElement[T]) -> ColumnElement[T | None]:
        """``min(expr)``: NULL (``None``) when there are no rows."""
        return cast(ColumnElement[T | None], sa.func.min(expr))

    @staticmethod
    def max(expr: ColumnElement[T]) -> ColumnElement[T | None]:
        """``max(expr)``: NULL (``None``) when there are no rows."""
        return cast(ColumnElement[T | None], sa.func.max(expr))


fn = _Aggregates()
"""The aggregates: ``fn.count()``, ``fn.count_distinct(c)``, ``fn.sum(c)``, ``fn.avg(c)``,
``fn.min(c)``, ``fn.max(c)``."""

count = fn.count
count_distinct = fn.count_distinct
avg = fn.avg
