"""``check_row_pos``: a table's ``__row_pos__`` declaration checked against its columns.

``select(table)`` is typed from the ``__row_pos__`` of the table's ``TypedColumns``
class (SQLAlchemy's ``HasRowPos`` protocol): Python's type system cannot turn a
class's column annotations into the tuple of a row, so without it a type checker
sees ``SelectQuery[Any, ...]``. Written by hand, it can drift from the columns;
this check, run in a test, says where::

    def test_row_types_match_the_columns() -> None:
        check_row_pos(pipeline_run, pipeline_run_cols)
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

import sqlalchemy as sa
from sqlalchemy import TypedColumns

from ..errors import SchemaError

__all__ = ["check_row_pos"]


def check_row_pos(table: sa.Table, columns_class: type[TypedColumns]) -> None:
    """Raise :class:`SchemaError` unless ``columns_class.__row_pos__`` lists the Python type
    of each column of ``table``, in order (the message says what to write)."""
    hints = _own_hints(columns_class)
    name = columns_class.__name__
    columns = list(table.columns)
    declared = {key: _column_type(hint) for key, hint in hints.items() if key != "__row_pos__"}
    expected = [declared.get(c.key) for c in columns]
    suggestion = f"__row_pos__: tuple[{', '.join(_spell(t) for t in expected)}]"
    if "__row_pos__" not in hints:
        raise SchemaError(
            f"{name} declares no __row_pos__, so select({table.name}) is typed "
            f"SelectQuery[Any, ...]; add to {name}:\n    {suggestion}"
        )
    row = typing.get_args(hints["__row_pos__"])
    if len(row) != len(columns):
        raise SchemaError(
            f"{name}.__row_pos__ has {len(row)} types, but {table.name} has {len(columns)} "
            f"columns ({', '.join(c.key for c in columns)}); write:\n    {suggestion}"
        )
    for position, (given, column, wanted) in enumerate(zip(row, columns, expected, strict=True)):
        if wanted is not None and _normal(given) != _normal(wanted):
            raise SchemaError(
                f"{name}.__row_pos__[{position}] is {_spell(given)}, but column "
                f"{table.name}.{column.key} is Column[{_spell(wanted)}]; write:\n    {suggestion}",
                column=f"{table.name}.{column.key}",
            )


def _own_hints(cls: type) -> dict[str, Any]:
    """The annotations of ``cls`` and its TypedColumns bases, resolved in their modules."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, TypedColumns)):
            continue
        if klass is TypedColumns:
            continue
        namespace = vars(sys.modules[klass.__module__])
        for key, value in vars(klass).get("__annotations__", {}).items():
            hints[key] = eval(value, namespace) if isinstance(value, str) else value
    return hints


def _column_type(hint: Any) -> Any:
    """``X`` from ``Column[X]`` or ``Named[X]``; None when the annotation says nothing."""
    args = typing.get_args(hint)
    return args[0] if len(args) == 1 else None


def _normal(hint: Any) -> Any:
    """``X | None`` and ``Optional[X]`` alike; member order ignored."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return frozenset(_normal(a) for a in typing.get_args(hint))
    return hint


def _spell(hint: Any) -> str:
    if hint is None:
        return "Any"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__qualname__ if hint.__module__ in ("builtins",) else hint.__name__
    return repr(hint).replace("typing.", "").replace("NoneType", "None")
