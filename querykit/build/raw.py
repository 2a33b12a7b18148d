"""Hand-written SQL with bound parameters, like Drizzle's sql`` or Prisma's $queryRaw.

``sql()`` makes an expression for use inside builders; ``raw()`` a whole
statement. Both take ``:name`` placeholders, as SQLAlchemy's ``text()`` does:
a value becomes a bound parameter (never pasted into the text), while a
column, expression or query is rendered in place. ``\\:`` is a literal colon;
``::`` casts and anything inside quotes are left alone.

    >>> q = raw("SELECT name, sum(cost) FROM pipeline_run WHERE started_at > :since GROUP BY 1",
    ...         since=yesterday).returns(str, Decimal)
    >>> db.all(q)        # list[tuple[str, Decimal]]
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any, TypeVar, TypeVarTuple, overload

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ClauseElement, ColumnElement, Grouping
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeEngine

from ..errors import CompileError
from .binding import Binder, operand_core, operand_key
from .query import Query

__all__ = ["RawQuery", "raw", "sql"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
_T0 = TypeVar("_T0")
_T1 = TypeVar("_T1")
_T2 = TypeVar("_T2")
_T3 = TypeVar("_T3")
_T4 = TypeVar("_T4")
_T5 = TypeVar("_T5")

# A placeholder is :name outside quotes; "::" casts and "\:" are left alone.
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(?<![:\w\\]):([A-Za-z_]\w*)")


class RawSQL(ColumnElement[Any]):
    """Literal SQL text interleaved with Core elements (bound values or expressions)."""

    __visit_name__ = "querykit_raw_sql"
    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's own declaration style)
        ("texts", InternalTraversal.dp_plain_obj),
        ("elements", InternalTraversal.dp_clauseelement_tuple),
        ("type", InternalTraversal.dp_type),
    ]

    def __init__(self, texts: tuple[str, ...], elements: tuple[Any, ...], type_: Any) -> None:
        self.texts = texts
        self.elements = elements
        self.type = type_

    def self_group(self, against: Any = None) -> Any:
        """Parenthesised inside any operator: ``and_(a, sql("x OR y"))`` is ``a AND (x OR y)``,
        never ``a AND x OR y``. Alone (a statement, a select-list item) it stays as written."""
        return self if against in _UNGROUPED else Grouping(self)


# alone, labelled, an argument, or the whole WHERE clause
_UNGROUPED = (None, operators.as_, operators.comma_op, operators._asbool)


@compiles(RawSQL)
def _compile_raw(element: RawSQL, compiler: Any, **kw: Any) -> str:
    out: list[str] = []
    for i, text in enumerate(element.texts):
        out.append(compiler.post_process_text(text))
        if i < len(element.elements):
            part = element.elements[i]
            from_kw = {**kw, "asfrom": True} if isinstance(part, FromClause) else kw
            out.append(compiler.process(part, **from_kw))
    return "".join(out)


def _parse(template: str, values: dict[str, Any]) -> RawSQL:
    if not isinstance(template, str):
        raise CompileError(f"sql() takes a template string, got {type(template).__name__}")
    texts: list[str] = []
    elements: list[Any] = []
    pos = 0
    used: set[str] = set()
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        if name is None:  # a quoted string or identifier: not ours to touch
            continue
        if name not in values:
            raise CompileError(
                f"sql(): placeholder :{name} has no value; give it as a keyword argument "
                f"(or write \\:{name} for a literal colon)"
            )
        texts.append(template[pos : match.start()].replace("\\:", ":"))
        elements.append(_element(values[name], name))
        used.add(name)
        pos = match.end()
    texts.append(template[pos:].replace("\\:", ":"))
    unused = sorted(set(values) - used)
    if unused:
        raise CompileError(f"sql(): values without a placeholder: {', '.join(unused)}")
    return RawSQL(tuple(texts), tuple(elements), sa.types.NULLTYPE)


def _element(value: Any, name: str) -> Any:
    if isinstance(value, Query):
        return value.statement.scalar_subquery()
    if isinstance(value, ClauseElement):
        return value
    if hasattr(value, "__clause_element__"):
        return value.__clause_element__()
    return sa.bindparam(name, value, unique=True)


@overload
def sql(template: str, /, *, type_: TypeEngine[T], **values: Any) -> ColumnElement[T]: ...
@overload
def sql(template: str, /, **values: Any) -> ColumnElement[Any]: ...
def sql(
    template: str, /, *, type_: TypeEngine[Any] | None = None, **values: Any
) -> ColumnElement[Any]:
    """A SQL fragment for use inside builders: ``sql("cost * :rate", rate=1.2)``.

    ``type_`` gives the fragment's SQL type, which types and decodes its results.
    """
    element = _parse(template, values)
    if type_ is not None:
        element.type = type_
    return element


class RawQuery(Query[*Ts]):
    """A hand-written statement. Its row type is what ``.returns(...)`` declares."""

    __slots__ = ("_element",)
    _element: RawSQL

    rows_known = False

    def __init__(self, element: RawSQL) -> None:
        object.__setattr__(self, "_element", element)

    @overload
    def returns(self, t0: type[_T0], /) -> RawQuery[_T0]: ...
    @overload
    def returns(self, t0: type[_T0], t1: type[_T1], /) -> RawQuery[_T0, _T1]: ...
    @overload
    def returns(
        self, t0: type[_T0], t1: type[_T1], t2: type[_T2], /
    ) -> RawQuery[_T0, _T1, _T2]: ...
    @overload
    def returns(
        self, t0: type[_T0], t1: type[_T1], t2: type[_T2], t3: type[_T3], /
    ) -> RawQuery[_T0, _T1, _T2, _T3]: ...
    @overload
    def returns(
        self, t0: type[_T0], t1: type[_T1], t2: type[_T2], t3: type[_T3], t4: type[_T4], /
    ) -> RawQuery[_T0, _T1, _T2, _T3, _T4]: ...
    @overload
    def returns(
        self,
        t0: type[_T0],
        t1: type[_T1],
        t2: type[_T2],
        t3: type[_T3],
        t4: type[_T4],
        t5: type[_T5],
        /,
    ) -> RawQuery[_T0, _T1, _T2, _T3, _T4, _T5]: ...
    @overload
    def returns(self, *types: type[Any]) -> RawQuery[*tuple[Any, ...]]: ...
    def returns(self, *types: type[Any]) -> Any:
        """Declare the Python types of a row's columns, for the type checker."""
        return RawQuery(self._element)

    def _key(self, values: list[Any]) -> Hashable:
        return operand_key(self._element, values)

    def _core(self, binder: Binder) -> Any:
        return operand_core(self._element, binder, None, "raw")


def raw(template: str, /, **values: Any) -> RawQuery[*tuple[Any, ...]]:
    """A whole hand-written statement with ``:name`` parameters; see :meth:`RawQuery.returns`."""
    return RawQuery(_parse(template, values))
