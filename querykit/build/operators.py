"""Conditions as functions, Drizzle style: ``eq(t.c.status, "FAILED")``.

Each function returns a :class:`Condition`: a small immutable description
that becomes a SQLAlchemy Core expression only when its query shape is first
compiled. Building one costs about a microsecond; Core's own ``t.c.x == 1``
costs ten. Core expressions are accepted everywhere a condition is.

``None`` means "no condition", so optional filters compose::

    where(and_(eq(run.c.status, status) if status else None, gte(run.c.cost, min_cost)))

``and_``/``or_`` drop ``None`` operands and return ``None`` when nothing is
left; ``where(None)`` adds nothing.

    >>> to_sql(select(run.c.id).where(in_array(run.c.status, ["FAILED", "RUNNING"]))).sql
    'SELECT pipeline_run.id FROM pipeline_run WHERE pipeline_run.status = ANY (%s)'
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any, TypeAlias, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.sql import operators as sa_ops
from sqlalchemy.sql.elements import BindParameter, ClauseElement, ColumnElement

from ..errors import CompileError
from ..schema.naming import column_label
from .binding import (
    TABLE_COLUMNS,
    VALUE,
    VALUE_TYPES,
    Binder,
    any_array,
    is_table_column,
    operand_core,
    operand_key,
    type_of,
)

__all__ = [
    "Condition",
    "and_",
    "array_contained",
    "array_contains",
    "array_overlaps",
    "between",
    "eq",
    "escape_like",
    "exists",
    "gt",
    "gte",
    "ilike",
    "in_array",
    "is_not_null",
    "is_null",
    "like",
    "lt",
    "lte",
    "ne",
    "not_",
    "not_exists",
    "not_ilike",
    "not_in_array",
    "not_like",
    "or_",
]

T = TypeVar("T")

# Anything usable where a boolean condition goes.
Predicate = "Condition | ColumnElement[bool]"


class Condition:
    """A boolean condition. Combine with ``&``, ``|`` and ``~``, or and_/or_/not_."""

    __slots__ = ()

    _known: Hashable | None = None
    """The key, when made with the condition: its key walk is then always this key and
    the one value ``_value``. Query walks take it without calling ``_key`` (the usual
    comparison of a table's column with a value, ``in_array`` of a column)."""
    _value: Any = None

    def _key(self, values: list[Any]) -> Hashable:
        raise NotImplementedError

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        raise NotImplementedError

    def __and__(self, other: Condition | ColumnElement[bool]) -> Condition:
        return _And((self, other))

    def __or__(self, other: Condition | ColumnElement[bool]) -> Condition:
        return _Or((self, other))

    def __invert__(self) -> Condition:
        return _Not(self)

    def __bool__(self) -> bool:
        raise TypeError("a querykit condition has no truth value; combine with and_/or_, & or |")

    def __clause_element__(self) -> ColumnElement[bool]:
        """The Core expression, for use inside plain SQLAlchemy constructs."""
        values: list[Any] = []
        self._key(values)
        return self._core(Binder(values))

    def __repr__(self) -> str:
        from ..codecs.dialect import DIALECT

        return f"<Condition {self.__clause_element__().compile(dialect=DIALECT)}>"


def _label(x: Any) -> str:
    return column_label(x) if hasattr(x, "table") else "value"


class _Compare(Condition):
    __slots__ = ("_known", "_value", "left", "op", "right")

    def __init__(self, left: Any, op: str, right: Any) -> None:
        if right is None or left is None:
            raise CompileError(
                f"comparing {_label(left if left is not None else right)} {op} None is never true "
                "in SQL; use is_null() / is_not_null()"
            )
        self.left = left
        self.op = op
        self.right = self._value = right
        # The usual comparison, a table's own column against a plain value, keyed now
        # as operand_key keys it: the column as itself, the value bound.
        self._known = None
        if type(right) in VALUE_TYPES:
            try:  # is_table_column(left), without its call for a known column
                if left in TABLE_COLUMNS or is_table_column(left):
                    self._known = (op, left, VALUE)
            except TypeError:  # unhashable: a value, not a column
                pass

    def _key(self, values: list[Any]) -> Hashable:
        if self._known is not None:
            values.append(self.right)
            return self._known
        return (self.op, operand_key(self.left, values), operand_key(self.right, values))

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        left_type, right_type = type_of(self.left), type_of(self.right)
        left = operand_core(self.left, binder, right_type, _label(self.right))
        right = operand_core(self.right, binder, left_type, _label(self.left))
        return _COMPARE[self.op](left, right)  # type: ignore[no-any-return]


# The comparison overloads: column and value of one type, or two columns whose types
# differ only in NULL (a nullable foreign key against the primary key it references:
# ColumnElement is invariant, so Column[int | None] is no ColumnElement[int]).
_COMPARE = {
    "=": sa_ops.eq,
    "<>": sa_ops.ne,
    ">": sa_ops.gt,
    ">=": sa_ops.ge,
    "<": sa_ops.lt,
    "<=": sa_ops.le,
}


@overload
def eq(left: ColumnElement[T], right: ColumnElement[T] | T, /) -> Condition: ...
@overload
def eq(left: ColumnElement[T | None], right: ColumnElement[T], /) -> Condition: ...
@overload
def eq(left: ColumnElement[T], right: ColumnElement[T | None], /) -> Condition: ...
@overload
def eq(left: T, right: ColumnElement[T], /) -> Condition: ...
def eq(left: Any, right: Any, /) -> Condition:
    """``left = right``. Each side is a column, an expression or a value bound as a parameter."""
    return _Compare(left, "=", right)


@overload
def ne(left: ColumnElement[T], right: ColumnElement[T] | T, /) -> Condition: ...
@overload
def ne(left: ColumnElement[T | None], right: ColumnElement[T], /) -> Condition: ...
@overload
def ne(left: ColumnElement[T], right: ColumnElement[T | None], /) -> Condition: ...
@overload
def ne(left: T, right: ColumnElement[T], /) -> Condition: ...
def ne(left: Any, right: Any, /) -> Condition:
    """``left <> right``."""
    return _Compare(left, "<>", right)


@overload
def gt(left: ColumnElement[T], right: ColumnElement[T] | T, /) -> Condition: ...
@overload
def gt(left: ColumnElement[T | None], right: ColumnElement[T], /) -> Condition: ...
@overload
def gt(left: ColumnElement[T], right: ColumnElement[T | None], /) -> Condition: ...
@overload
def gt(left: T, right: ColumnElement[T], /) -> Condition: ...
def gt(left: Any, right: Any, /) -> Condition:
    """``left > right``."""
    return _Compare(left, ">", right)


@overload
def gte(left: ColumnElement[T], right: ColumnElement[T] | T, /) -> Condition: ...
@overload
def gte(left: ColumnElement[T | None], right: ColumnElement[T], /) -> Condition: ...
@overload
def gte(left: ColumnElement[T], right: ColumnElement[T | None], /) -> Condition: ...
@overload
def gte(left: T, right: ColumnElement[T], /) -> Condition: ...
def gte(left: Any, right: Any, /) -> Condition:
    """``left >= right``."""
    return _Compare(left, ">=", right)


@overload
def lt(left: ColumnElement[T], right: ColumnElement[T] | T, /) -> Condition: ...
@overload
def lt(left: ColumnElement[T | None], right: ColumnElement[T], /) -> Condition: ...
@overload
def lt(left: ColumnElement[T], right: ColumnElement[T | None], /) -> Condition: ...
@overload
def lt(left: T, right: ColumnElement[T], /) -> Condition: ...
def lt(left: Any, right: Any, /) -> Condition:
    """``left < right``."""
    return _Compare(left, "<", right)


@overload
def lte(left: ColumnElement[T], right: ColumnElement[T] | T, /) -> Condition: ...
@overload
def lte(left: ColumnElement[T | None], right: ColumnElement[T], /) -> Condition: ...
@overload
def lte(left: ColumnElement[T], right: ColumnElement[T | None], /) -> Condition: ...
@overload
def lte(left: T, right: ColumnElement[T], /) -> Condition: ...
def lte(left: Any, right: Any, /) -> Condition:
    """``left <= right``."""
    return _Compare(left, "<=", right)


class _InArray(Condition):
    __slots__ = ("_known", "_value", "column", "items", "negate")

    def __init__(self, column: Any, items: Iterable[Any], negate: bool) -> None:
        if type(items) is list:  # the usual: a copy, so a later change to the list is not seen
            self.items = items[:]
        elif isinstance(items, str | bytes):
            raise CompileError("in_array() takes a list of values, not a single string")
        else:
            self.items = list(items)
        self.column = column
        self.negate = negate
        self._value = self.items
        self._known = None
        try:  # is_table_column(column), without its call for a known column
            if self.items and (column in TABLE_COLUMNS or is_table_column(column)):
                self._known = ("in", negate, column)
        except TypeError:  # unhashable: a value, not a column
            pass

    def _key(self, values: list[Any]) -> Hashable:
        if not self.items:
            return ("in", self.negate, None)
        column_key = operand_key(self.column, values)
        values.append(self.items)
        return ("in", self.negate, column_key)

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        if not self.items:
            return sa.true() if self.negate else sa.false()
        column = operand_core(self.column, binder, None, "")
        item_type = type_of(self.column) or sa.types.NULLTYPE
        array = binder.bind(sa.ARRAY(item_type), _label(self.column))
        return any_array(column, array, negate=self.negate)  # type: ignore[no-any-return]


def in_array(column: ColumnElement[T], items: Iterable[T]) -> Condition:
    """``column = ANY(%s)`` with ONE array parameter: one prepared plan for any list length.

    An empty list is plain ``false``.
    """
    return _InArray(column, items, False)


def not_in_array(column: ColumnElement[T], items: Iterable[T]) -> Condition:
    """``column <> ALL(%s)``; an empty list is plain ``true``."""
    return _InArray(column, items, True)


class _IsNull(Condition):
    __slots__ = ("negate", "operand")

    def __init__(self, operand: Any, negate: bool) -> None:
        self.operand = operand
        self.negate = negate

    def _key(self, values: list[Any]) -> Hashable:
        return ("null", self.negate, operand_key(self.operand, values))

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        operand = operand_core(self.operand, binder, None, "")
        return operand.is_not(None) if self.negate else operand.is_(None)  # type: ignore[no-any-return]


def is_null(operand: ColumnElement[Any]) -> Condition:
    """``operand IS NULL``."""
    return _IsNull(operand, negate=False)


def is_not_null(operand: ColumnElement[Any]) -> Condition:
    """``operand IS NOT NULL``."""
    return _IsNull(operand, negate=True)


class _Between(Condition):
    __slots__ = ("high", "low", "negate", "operand")

    def __init__(self, operand: Any, low: Any, high: Any, negate: bool) -> None:
        if low is None or high is None:
            raise CompileError("between() needs both bounds; use gte() or lte() for one")
        self.operand, self.low, self.high, self.negate = operand, low, high, negate

    def _key(self, values: list[Any]) -> Hashable:
        return (
            "between",
            self.negate,
            operand_key(self.operand, values),
            operand_key(self.low, values),
            operand_key(self.high, values),
        )

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        t = type_of(self.operand)
        label = _label(self.operand)
        operand = operand_core(self.operand, binder, None, "")
        low = operand_core(self.low, binder, t, label)
        high = operand_core(self.high, binder, t, label)
        expr = operand.between(low, high)
        return ~expr if self.negate else expr  # type: ignore[no-any-return]


def between(
    operand: ColumnElement[T], low: ColumnElement[T] | T, high: ColumnElement[T] | T
) -> Condition:
    """``operand BETWEEN low AND high`` (both bounds included)."""
    return _Between(operand, low, high, negate=False)


class _Like(Condition):
    __slots__ = ("case_insensitive", "negate", "operand", "pattern")

    def __init__(self, operand: Any, pattern: Any, case_insensitive: bool, negate: bool) -> None:
        if pattern is None:
            raise CompileError("like() needs a pattern, not None")
        self.operand, self.pattern = operand, pattern
        self.case_insensitive, self.negate = case_insensitive, negate

    def _key(self, values: list[Any]) -> Hashable:
        return (
            "like",
            self.case_insensitive,
            self.negate,
            operand_key(self.operand, values),
            operand_key(self.pattern, values),
        )

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        operand = operand_core(self.operand, binder, None, "")
        pattern = operand_core(self.pattern, binder, sa.Text(), _label(self.operand))
        if self.case_insensitive:
            expr = operand.not_ilike(pattern) if self.negate else operand.ilike(pattern)
        else:
            expr = operand.not_like(pattern) if self.negate else operand.like(pattern)
        return expr  # type: ignore[no-any-return]


def like(operand: ColumnElement[str], pattern: str | ColumnElement[str]) -> Condition:
    """``operand LIKE pattern``; the pattern is a bound parameter. See :func:`escape_like`."""
    return _Like(operand, pattern, case_insensitive=False, negate=False)


def not_like(operand: ColumnElement[str], pattern: str | ColumnElement[str]) -> Condition:
    """``operand NOT LIKE pattern``."""
    return _Like(operand, pattern, case_insensitive=False, negate=True)


def ilike(operand: ColumnElement[str], pattern: str | ColumnElement[str]) -> Condition:
    """``operand ILIKE pattern`` (case-insensitive)."""
    return _Like(operand, pattern, case_insensitive=True, negate=False)


def not_ilike(operand: ColumnElement[str], pattern: str | ColumnElement[str]) -> Condition:
    """``operand NOT ILIKE pattern`` (case-insensitive)."""
    return _Like(operand, pattern, case_insensitive=True, negate=True)


def escape_like(text: str) -> str:
    r"""``text`` with LIKE's wildcards escaped, to match it literally.

    >>> like(t.c.name, "%" + escape_like("50%_off") + "%")   # contains "50%_off"
    """
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _Exists(Condition):
    __slots__ = ("negate", "query")

    def __init__(self, query: Any, negate: bool) -> None:
        self.query = query
        self.negate = negate

    def _key(self, values: list[Any]) -> Hashable:
        return ("exists", self.negate, operand_key(self.query, values))

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        query = operand_core(self.query, binder, None, "")
        expr = sa.exists(query)
        return ~expr if self.negate else expr


def exists(query: Any) -> Condition:
    """``EXISTS (query)``; the subquery may refer to the outer query's tables."""
    return _Exists(query, negate=False)


def not_exists(query: Any) -> Condition:
    """``NOT EXISTS (query)``."""
    return _Exists(query, negate=True)


class _ArrayOp(Condition):
    __slots__ = ("column", "items", "op")

    def __init__(self, column: Any, op: str, items: Any) -> None:
        if items is None:
            raise CompileError(f"array {op} needs a list, not None")
        self.column, self.op, self.items = column, op, items

    def _key(self, values: list[Any]) -> Hashable:
        return ("array", self.op, operand_key(self.column, values), operand_key(self.items, values))

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        column = operand_core(self.column, binder, None, "")
        array_type = type_of(self.column)
        items = operand_core(self.items, binder, array_type, _label(self.column))
        if isinstance(items, BindParameter) and isinstance(array_type, sa.ARRAY):
            # psycopg picks the element type from the values (small ints go as
            # smallint[]), and `integer[] @> smallint[]` has no operator: say the type.
            items = sa.cast(items, array_type)
        # precedence 5, as = and <: no parentheses needed among AND/OR
        return column.op(self.op, is_comparison=True, precedence=5)(items)  # type: ignore[no-any-return]


ArrayOf: TypeAlias = (
    ColumnElement[list[T]]
    | ColumnElement[list[T] | None]
    | ColumnElement[Sequence[T]]
    | ColumnElement[Sequence[T] | None]
    | ColumnElement[tuple[T, ...]]
    | ColumnElement[tuple[T, ...] | None]
)
"""An array column of ``T`` as a type checker sees it: ``ColumnElement`` is invariant, so a
``Column[list[str]]`` is not a ``ColumnElement[Sequence[str]]``; each spelling is listed."""


def array_contains(column: ArrayOf[T], items: Sequence[T]) -> Condition:
    """``column @> items``: the array column holds every item."""
    return _ArrayOp(column, "@>", items)


def array_contained(column: ArrayOf[T], items: Sequence[T]) -> Condition:
    """``column <@ items``: every element of the array column is among the items."""
    return _ArrayOp(column, "<@", items)


def array_overlaps(column: ArrayOf[T], items: Sequence[T]) -> Condition:
    """``column && items``: the array column shares at least one element with items."""
    return _ArrayOp(column, "&&", items)


class _Bool(Condition):
    __slots__ = ("parts",)
    _name = ""

    def __init__(self, parts: Sequence[Any]) -> None:
        self.parts = tuple(parts)

    def _key(self, values: list[Any]) -> Hashable:
        return (self._name, *(operand_key(p, values) for p in self.parts))

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        parts = [operand_core(p, binder, None, "") for p in self.parts]
        return sa.and_(*parts) if self._name == "and" else sa.or_(*parts)


class _And(_Bool):
    __slots__ = ()
    _name = "and"


class _Or(_Bool):
    __slots__ = ()
    _name = "or"


class _Not(Condition):
    __slots__ = ("operand",)

    def __init__(self, operand: Any) -> None:
        self.operand = operand

    def _key(self, values: list[Any]) -> Hashable:
        return ("not", operand_key(self.operand, values))

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        result: ColumnElement[bool] = sa.not_(operand_core(self.operand, binder, None, ""))
        return result


def and_(*conditions: Condition | ColumnElement[bool] | None) -> Condition | None:
    """All conditions; ``None`` ones are dropped, and no condition at all gives ``None``."""
    parts = [c for c in conditions if c is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return as_condition(parts[0])
    return _And(parts)


def or_(*conditions: Condition | ColumnElement[bool] | None) -> Condition | None:
    """Any of the conditions; ``None`` ones are dropped, and none at all gives ``None``."""
    parts = [c for c in conditions if c is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return as_condition(parts[0])
    return _Or(parts)


def not_(condition: Condition | ColumnElement[bool] | None) -> Condition | None:
    """The negation; ``not_(None)`` is ``None``."""
    return None if condition is None else _Not(condition)


class _CoreCondition(Condition):
    """A Core boolean expression used as a querykit condition."""

    __slots__ = ("element",)

    def __init__(self, element: Any) -> None:
        self.element = element

    def _key(self, values: list[Any]) -> Hashable:
        return operand_key(self.element, values)

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        element: ColumnElement[bool] = operand_core(self.element, binder, None, "")
        return element


def as_condition(value: Condition | ColumnElement[bool] | Any) -> Condition:
    """A querykit condition from a condition or any Core boolean expression."""
    if isinstance(value, Condition):
        return value
    if isinstance(value, ClauseElement) or hasattr(value, "__clause_element__"):
        return _CoreCondition(value)
    raise CompileError(
        f"expected a condition (eq(), and_(), a Core expression...), got {type(value).__name__}; "
        "a plain Python bool is not a condition"
    )
