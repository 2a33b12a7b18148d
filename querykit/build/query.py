"""Typed, immutable query builders: select, insert, update, delete, set operations.

Every method returns a new builder; the original never changes. The Python
types of the selected (or returned) columns travel with the builder, so
``db.all(select(run.c.id, run.c.cost))`` is a ``list[tuple[str, Decimal]]``.

    >>> q = select(run.c.id, run.c.name).from_(run).where(eq(run.c.status, "FAILED")).limit(10)
    >>> print(q.to_sql().sql)
    SELECT pipeline_run.id, pipeline_run.name
    FROM pipeline_run
    WHERE pipeline_run.status = %s
     LIMIT %s

Builders hold a light description of the query. The SQLAlchemy Core statement
is built, and compiled, once per query *shape* (see :mod:`querykit.compile`);
``.statement`` gives it whenever you want Core itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, Self, TypeVar, TypeVarTuple, overload

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators, schema
from sqlalchemy.sql._annotated_cols import HasRowPos
from sqlalchemy.sql.elements import ColumnClause, ColumnElement, UnaryExpression
from sqlalchemy.sql.schema import ColumnDefault
from sqlalchemy.sql.selectable import FromClause, NamedFromClause, Subquery
from sqlalchemy.sql.visitors import replacement_traverse

from ..arguments import count_argument
from ..codegen import generate
from ..errors import CompileError, SchemaError
from ..schema.naming import column_label
from .binding import (
    TABLE_COLUMNS,
    VALUE,
    Binder,
    Node,
    is_table_column,
    operand_core,
    operand_key,
)
from .operators import Condition, as_condition
from .placeholder import Placeholder
from .sqltext import CompiledSQL, render

__all__ = [
    "CompoundQuery",
    "DeleteQuery",
    "InsertQuery",
    "Query",
    "SelectQuery",
    "UpdateQuery",
    "asc",
    "delete",
    "desc",
    "except_",
    "except_all",
    "excluded",
    "insert",
    "intersect",
    "intersect_all",
    "select",
    "union",
    "union_all",
    "update",
]

Ts = TypeVarTuple("Ts")
_T0 = TypeVar("_T0")
_T1 = TypeVar("_T1")
_T2 = TypeVar("_T2")
_T3 = TypeVar("_T3")
_T4 = TypeVar("_T4")
_T5 = TypeVar("_T5")
_T6 = TypeVar("_T6")
_T7 = TypeVar("_T7")
_T8 = TypeVar("_T8")
_T9 = TypeVar("_T9")
_TC = TypeVar("_TC")

_Col = ColumnElement  # what a selected or returned column may be
Where = Condition | ColumnElement[bool] | None

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _setting_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float | str) and "\x00" not in str(value):
        return str(value)
    raise CompileError(f"setting {name}: expected a str, int, float or bool, got {value!r}")


_ORDER_NAME = re.compile(r"^([+-]?)([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?$")


class Query(Generic[*Ts]):
    """Base of every builder. ``Ts`` are the Python types of one result row."""

    __slots__ = ()

    def _key(self, values: list[Any]) -> Hashable:
        raise NotImplementedError

    def _core(self, binder: Binder) -> Any:
        raise NotImplementedError

    _slot_names: tuple[str, ...] = ()

    plain_read: ClassVar[bool] = False
    """Only reads, takes no row locks: outside a transaction a read replica may run it.
    The compiler copies it onto the shape (``Shape.read``); execution reads it there."""

    rows_known: ClassVar[bool] = True
    """Whether the compiled statement says if it returns rows (raw SQL does not)."""

    def _reads_only(self) -> bool:
        """This query's ``plain_read`` (a ``SELECT ... FOR UPDATE`` is not one)."""
        return self.plain_read

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._slot_names = tuple(
            name for klass in reversed(cls.__mro__) for name in getattr(klass, "__slots__", ())
        )
        cls._clone = _make_clone(cls, cls._slot_names)  # type: ignore[method-assign]

    def _clone(self) -> Self:
        raise NotImplementedError  # replaced per subclass by _make_clone

    def _copy(self, **changes: Any) -> Self:
        """A copy with some fields changed: how every builder method returns a new query."""
        new = self._clone()
        for name, value in changes.items():
            setattr(new, name, value)
        return new

    @property
    def settings(self) -> tuple[tuple[str, str], ...]:
        """Server settings to apply, with ``SET LOCAL`` semantics, around this query only."""
        return ()

    def to_sql(self) -> CompiledSQL:
        """The SQL text and parameters the executor sends; ``.inline()`` for psql."""
        compiled = render(self)
        settings = self.settings
        return replace(compiled, settings=settings) if settings else compiled

    @property
    def statement(self) -> Any:
        """The equivalent SQLAlchemy Core statement, with the current values bound.

        On its own a query may be a correlated subquery of some outer query, so
        the FROM-list check is left to the query that finally runs.
        """
        values: list[Any] = []
        self._key(values)
        binder = Binder(values)
        binder.push_scope(None)
        return self._core(binder)

    def __clause_element__(self) -> Any:
        return self.statement

    def __str__(self) -> str:
        return self.to_sql().sql


def _make_clone(cls: type, slot_names: tuple[str, ...]) -> Any:
    """A fast field-by-field copier for one builder class (as dataclasses generate theirs).

    A memoised key (``_memo``) is not copied: it belongs to the query it was made for,
    and a copy is made to be changed.
    """
    lines = ["def _clone(self):", "    new = _new(cls)"]
    lines += [
        f"    new.{name} = None" if name == "_memo" else f"    new.{name} = self.{name}"
        for name in slot_names
    ]
    lines.append("    return new")
    namespace: dict[str, Any] = {"_new": object.__new__, "cls": cls}
    generate("builder clone", lines, namespace)  # names come from __slots__ literals
    return namespace["_clone"]


def _init(obj: Any, **fields: Any) -> None:
    for name, value in fields.items():
        object.__setattr__(obj, name, value)  # the only writes a builder ever gets


def _conditions(conditions: tuple[Where, ...]) -> tuple[Condition, ...]:
    """The conditions given to where() or having(), without the ``None`` ones."""
    if len(conditions) == 1:  # the usual case, without a generator
        return () if conditions[0] is None else (as_condition(conditions[0]),)
    return tuple([as_condition(c) for c in conditions if c is not None])


def _check_limit(value: Any, what: str) -> Any:
    """A non-negative int, None, or a ``placeholder()`` (of ``int``) for ``db.prepare()``."""

    if value is None:
        return None
    if isinstance(value, Placeholder) and value.type in (None, int):
        return value  # bound as a parameter like the int; the server refuses a negative one
    return count_argument(value, what, CompileError, hint=" (or a placeholder(name, int))")


class Order(Node):
    """One ORDER BY item: an expression with a direction and a NULLS placement.

    A :class:`Node`, so the key walk and ``operand_core`` reach it by their fast path."""

    __slots__ = ("_known", "descending", "expr", "nulls")

    def __init__(self, expr: Any, descending: bool, nulls: str | None) -> None:
        if nulls is not None and nulls not in ("first", "last"):
            raise CompileError(f"nulls must be 'first' or 'last', got {nulls!r}")
        self.expr, self.descending, self.nulls = expr, descending, nulls
        # a table's own column (the usual) binds no value: the key is known now
        self._known = None
        try:  # is_table_column(expr), without its call for a known column
            if expr in TABLE_COLUMNS or is_table_column(expr):
                self._known = ("order", descending, nulls, expr)
        except TypeError:  # unhashable: a value, not a column
            pass

    def _key(self, values: list[Any]) -> Hashable:
        if self._known is not None:
            return self._known
        return ("order", self.descending, self.nulls, operand_key(self.expr, values))

    def _core(self, binder: Binder) -> Any:
        expr = operand_core(self.expr, binder, None, "order_by")
        expr = expr.desc() if self.descending else expr.asc()
        if self.nulls == "first":
            expr = expr.nulls_first()
        elif self.nulls == "last":
            expr = expr.nulls_last()
        return expr


def asc(expr: ColumnElement[Any], *, nulls: str | None = None) -> Order:
    """Ascending order, optionally ``nulls="first"`` or ``"last"``."""
    return Order(expr, False, nulls)


def desc(expr: ColumnElement[Any], *, nulls: str | None = None) -> Order:
    """Descending order, optionally ``nulls="first"`` or ``"last"``."""
    return Order(expr, True, nulls)


_CORE_DIRECTIONS = {operators.asc_op: False, operators.desc_op: True}
_CORE_NULLS = {operators.nulls_first_op: "first", operators.nulls_last_op: "last"}


def order_item(item: Any) -> Order:
    """An ORDER BY item as an :class:`Order`: ``asc()``/``desc()`` as they are, and a Core
    ``col.desc().nulls_last()`` read for its direction and NULLS placement (so it is not
    wrapped again into ``DESC ASC``); anything else ascending."""
    if isinstance(item, Order):
        return item
    nulls = None
    if isinstance(item, UnaryExpression) and item.modifier in _CORE_NULLS:
        nulls, item = _CORE_NULLS[item.modifier], item.element
    descending = False
    if isinstance(item, UnaryExpression) and item.modifier in _CORE_DIRECTIONS:
        descending, item = _CORE_DIRECTIONS[item.modifier], item.element
    return Order(item, descending, nulls)


def _tables_of(items: Iterable[Any]) -> list[Any]:
    found: list[Any] = []
    for item in items:
        for f in getattr(item, "_from_objects", ()):
            if f not in found:
                found.append(f)
    return found


def resolve_order_string(spec: str, tables: Sequence[Any], labels: Mapping[str, Any]) -> Order:
    match = _ORDER_NAME.match(spec) if isinstance(spec, str) else None
    valid = sorted(
        {f"{t.name}.{k}" if len(tables) > 1 else k for t in tables for k in t.c.keys()}  # noqa: SIM118
        | set(labels)
    )
    hint = (
        f"valid: {', '.join(valid)}" if valid else "the query has no tables yet; call from_() first"
    )
    if match is None:
        raise SchemaError(
            f"order_by({spec!r}) is not a column name (optionally prefixed with '-'); {hint}",
            column=str(spec),
        )
    sign, first, second = match.groups()
    descending = sign == "-"
    if second is not None:
        candidates = [
            t.c[second] for t in tables if getattr(t, "name", None) == first and second in t.c
        ]
    elif first in labels:
        return Order(labels[first], descending, None)
    else:
        candidates = [t.c[first] for t in tables if first in t.c]
    if not candidates:
        raise SchemaError(f"order_by({spec!r}): no such column; {hint}", column=spec.lstrip("+-"))
    if len(candidates) > 1:
        raise SchemaError(
            f"order_by({spec!r}) is ambiguous between "
            f"{', '.join(column_label(c) for c in candidates)}; write table.column",
            column=spec.lstrip("+-"),
        )
    return Order(candidates[0], descending, None)


class _RightJoin(sa.Join):
    """``left RIGHT OUTER JOIN right``: Core has no right join, PostgreSQL does."""

    inherit_cache = True


@compiles(_RightJoin)
def _compile_right_join(join: _RightJoin, compiler: Any, **kw: Any) -> str:
    kw["asfrom"] = True
    left = join.left._compiler_dispatch(compiler, **kw)
    right = join.right._compiler_dispatch(compiler, **kw)
    kw.pop("asfrom")
    assert join.onclause is not None
    return f"{left} RIGHT OUTER JOIN {right} ON {join.onclause._compiler_dispatch(compiler, **kw)}"


_JOIN_KINDS = ("inner", "left", "right", "full")


@dataclass(frozen=True, slots=True)
class _SelectExtras:
    """The parts of a SELECT most queries leave empty, kept together in one field.

    Every builder method copies the query's fields; with these in one immutable
    record, ``where()``/``order_by()``/``limit()`` copy half as many, and the key
    walk tests them all with one ``is``.
    """

    joins: tuple[tuple[str, Any, Condition | None, bool], ...] = ()
    group_by: tuple[Any, ...] = ()
    having: tuple[Condition, ...] = ()
    offset: int | None = None
    distinct: bool = False
    distinct_on: tuple[Any, ...] = ()
    for_update: tuple[Any, ...] | None = None
    settings: tuple[tuple[str, str], ...] = ()


_NO_EXTRAS = _SelectExtras()


class SelectQuery(Query[*Ts]):
    """A SELECT. Build it with :func:`select`."""

    _columns: tuple[Any, ...]
    _from: tuple[Any, ...]
    _where: tuple[Condition, ...]
    _order_by: tuple[Any, ...]
    _limit: int | None
    _extras: _SelectExtras
    """JOINs, GROUP BY, HAVING, OFFSET, DISTINCT, FOR UPDATE, settings: ``_NO_EXTRAS`` when none."""

    __slots__ = ("_columns", "_extras", "_from", "_limit", "_order_by", "_where")

    def _reads_only(self) -> bool:
        return self._extras.for_update is None

    def __init__(self, columns: Sequence[Any]) -> None:
        self._columns = tuple(columns)
        self._from = self._order_by = self._where = ()
        self._limit = None
        self._extras = _NO_EXTRAS

    def _with_extras(self, **changes: Any) -> SelectQuery[*Ts]:
        """A copy with some of the rarely used parts changed."""
        return self._copy(_extras=replace(self._extras, **changes))

    # -- building ------------------------------------------------------------

    def from_(self, *tables: FromClause | Any) -> SelectQuery[*Ts]:
        """FROM these tables (or subqueries). With no columns selected, selects all of theirs."""
        return self._copy(_from=self._from + tuple(tables))

    def where(self, *conditions: Where) -> SelectQuery[*Ts]:
        """Add conditions, ANDed with any before. ``None`` conditions are dropped."""
        new: tuple[Condition, ...]
        for condition in conditions:  # where() is the hottest: querykit conditions as given
            if not isinstance(condition, Condition):
                new = _conditions(conditions)
                break
        else:
            new = conditions  # type: ignore[assignment]  # each one is a Condition
        if not new:
            return self
        query = self._clone()  # _copy() without keyword arguments
        query._where = self._where + new
        return query

    def join(
        self,
        target: FromClause | Any,
        on: Where = None,
        *,
        kind: str = "inner",
        lateral: bool = False,
    ) -> SelectQuery[*Ts]:
        """JOIN ``target`` ON ``on``; ``kind`` is inner, left, right or full.

        Without ``on``, the foreign key between the tables is used, as in Core.
        ``lateral=True`` joins a subquery LATERAL; it may refer to earlier tables.
        """
        if kind not in _JOIN_KINDS:
            raise CompileError(f"join kind must be one of {', '.join(_JOIN_KINDS)}, got {kind!r}")
        if not self._from:
            raise CompileError("call from_() before join(): a join needs a left side")
        on_condition = None if on is None else as_condition(on)
        joins = self._extras.joins
        return self._with_extras(joins=(*joins, (kind, target, on_condition, lateral)))

    def inner_join(self, target: FromClause | Any, on: Where = None) -> SelectQuery[*Ts]:
        """``INNER JOIN target ON on``: ``join(target, on)``."""
        return self.join(target, on, kind="inner")

    def left_join(self, target: FromClause | Any, on: Where = None) -> SelectQuery[*Ts]:
        """``LEFT OUTER JOIN target ON on``: the target's columns may be NULL."""
        return self.join(target, on, kind="left")

    def right_join(self, target: FromClause | Any, on: Where = None) -> SelectQuery[*Ts]:
        """``RIGHT OUTER JOIN target ON on``."""
        return self.join(target, on, kind="right")

    def full_join(self, target: FromClause | Any, on: Where = None) -> SelectQuery[*Ts]:
        """``FULL OUTER JOIN target ON on``."""
        return self.join(target, on, kind="full")

    def group_by(self, *exprs: ColumnElement[Any]) -> SelectQuery[*Ts]:
        """``GROUP BY exprs``, added to any given before."""
        return self._with_extras(group_by=self._extras.group_by + exprs)

    def having(self, *conditions: Where) -> SelectQuery[*Ts]:
        """``HAVING conditions``, ANDed with any given before."""
        new = _conditions(conditions)
        return self._with_extras(having=self._extras.having + new) if new else self

    def order_by(self, *items: ColumnElement[Any] | Order | str | None) -> SelectQuery[*Ts]:
        """ORDER BY columns, ``asc()``/``desc()`` items, or names from user input.

        A string is a column name of a table in the query, ``-`` in front for
        descending (``"-created_at"``), or ``table.column``; anything else is
        rejected, so request parameters can be passed safely.
        """
        if len(items) == 1 and type(items[0]) is Order:  # asc()/desc() of one column
            query = self._clone()
            query._order_by = self._order_by + items
            return query
        resolved: list[Any] = []
        for item in items:
            if item is None:
                continue
            if isinstance(item, str):
                labels = {c.name: c for c in self._columns if isinstance(c, sa.Label)}
                resolved.append(resolve_order_string(item, self._known_tables(), labels))
            elif isinstance(item, Order):
                resolved.append(item)
            else:
                resolved.append(Order(item, False, None) if _is_column(item) else item)
        return self._copy(_order_by=self._order_by + tuple(resolved))

    def limit(self, n: int | None) -> SelectQuery[*Ts]:
        """LIMIT n, bound as a parameter; ``None`` removes it."""
        query = self._clone()
        # the usual int without _check_limit's call: its own first test
        query._limit = n if type(n) is int and n >= 0 else _check_limit(n, "limit")
        return query

    def offset(self, n: int | None) -> SelectQuery[*Ts]:
        """OFFSET n, bound as a parameter; ``None`` removes it."""
        return self._with_extras(offset=_check_limit(n, "offset"))

    def distinct(self) -> SelectQuery[*Ts]:
        """``SELECT DISTINCT``."""
        return self._with_extras(distinct=True)

    def distinct_on(self, *exprs: ColumnElement[Any]) -> SelectQuery[*Ts]:
        """DISTINCT ON (exprs): the first row of each group, in ORDER BY order."""
        if not exprs:
            raise CompileError("distinct_on() needs at least one expression")
        return self._with_extras(distinct_on=self._extras.distinct_on + exprs)

    def for_update(
        self,
        *,
        nowait: bool = False,
        skip_locked: bool = False,
        of: FromClause | Sequence[FromClause] | None = None,
        key_share: bool = False,
        read: bool = False,
    ) -> SelectQuery[*Ts]:
        """``FOR UPDATE [OF tables] [NOWAIT | SKIP LOCKED]``; ``read=True`` gives FOR SHARE."""
        if nowait and skip_locked:
            raise CompileError("for_update(): nowait and skip_locked exclude each other")
        of_tuple = (of,) if isinstance(of, FromClause) else tuple(of or ())
        return self._with_extras(for_update=(nowait, skip_locked, of_tuple, key_share, read))

    def with_settings(self, settings: Mapping[str, Any] | None = None, /, **kw: Any) -> Self:
        """Run this query with server settings changed for it alone.

        The executor applies them with ``set_config(name, value, true)`` (the
        ``SET LOCAL`` of a parameter) inside the query's transaction, so they
        never leak to other queries on the pooled connection::

            q.with_settings({"hnsw.ef_search": 100})
        """
        merged = dict(self._extras.settings)
        for name, value in {**(settings or {}), **kw}.items():
            if not isinstance(name, str) or not _SETTING_NAME.match(name):
                raise CompileError(f"{name!r} is not a valid PostgreSQL setting name")
            merged[name] = _setting_value(name, value)
        return self._with_extras(settings=tuple(merged.items()))  # type: ignore[return-value]

    @property
    def settings(self) -> tuple[tuple[str, str], ...]:
        """The ``SET LOCAL`` settings the query runs with, as (name, value) pairs."""
        return self._extras.settings

    # -- set operations ------------------------------------------------------

    def union(self, *others: SelectQuery[*Ts]) -> CompoundQuery[*Ts]:
        """``self UNION others``: distinct rows of both."""
        return CompoundQuery("union", (self, *others))

    def union_all(self, *others: SelectQuery[*Ts]) -> CompoundQuery[*Ts]:
        """``self UNION ALL others``: every row of both."""
        return CompoundQuery("union_all", (self, *others))

    def intersect(self, *others: SelectQuery[*Ts]) -> CompoundQuery[*Ts]:
        """``self INTERSECT others``: rows found in each."""
        return CompoundQuery("intersect", (self, *others))

    def except_(self, *others: SelectQuery[*Ts]) -> CompoundQuery[*Ts]:
        """``self EXCEPT others``: rows of self found in none of the others."""
        return CompoundQuery("except", (self, *others))

    # -- using it inside other queries -----------------------------------------

    def subquery(self, name: str | None = None) -> Any:
        """This query as a named subquery (a Core ``Subquery``) for FROM or JOIN."""
        return self.statement.subquery(name)

    def scalar_subquery(self) -> Any:
        """This query as a scalar value, e.g. a column or a comparison operand."""
        return self.statement.scalar_subquery()

    def cte(self, name: str | None = None, *, recursive: bool = False) -> Any:
        """This query as a common table expression (WITH); use ``.union_all()`` for recursion."""
        return self.statement.cte(name, recursive=recursive)

    def lateral(self, name: str | None = None) -> Any:
        """This query as a LATERAL subquery, to join with ``join(q.lateral("x"), true())``."""
        return self.statement.lateral(name)

    # -- compilation -------------------------------------------------------------

    def _known_tables(self) -> list[Any]:
        froms = list(self._from) + [j[1] for j in self._extras.joins]
        return _tables_of(froms) if froms else _tables_of(self._columns)

    def _key(self, values: list[Any]) -> Hashable:
        # On the hot path: empty parts cost nothing, and tables' own columns key as themselves.
        # The values go in the order _core binds them: parts in SQL order.
        columns = self._columns
        try:  # _keys() inline, for the usual select list
            plain = TABLE_COLUMNS.issuperset(columns)
        except TypeError:  # an unhashable item: a value
            plain = False
        key: list[Hashable] = [columns if plain else _keys(columns, values)]
        if self._from:
            key.append(("from", _keys(self._from, values)))
        extras = self._extras
        if extras is not _NO_EXTRAS and extras.joins:
            key.append(
                tuple(
                    (kind, operand_key(t, values), None if on is None else on._key(values), lat)
                    for kind, t, on, lat in extras.joins
                )
            )
        # WHERE and ORDER BY items go into the key itself, after a mark and their count:
        # no tuple per part to make, hash and compare. The count keeps the key unambiguous.
        where = self._where
        if where:  # loops, not comprehensions: before 3.12 each of those is a call
            key.append("where")
            key.append(len(where))
            for c in where:
                known = c._known  # Condition._known: the usual condition, keyed when made
                if known is None:
                    key.append(c._key(values))
                else:
                    values.append(c._value)
                    key.append(known)
        if extras is not _NO_EXTRAS:
            if extras.group_by:
                key.append(("group", _keys(extras.group_by, values)))
            if extras.having:
                key.append(_conditions_key("having", extras.having, values))
        order_by = self._order_by
        if order_by:
            key.append("order")
            key.append(len(order_by))
            for o in order_by:
                if type(o) is not Order:
                    key.append(operand_key(o, values))
                else:
                    known = o._known  # a table's own column: keyed when made
                    key.append(o._key(values) if known is None else known)
        if self._limit is not None:
            values.append(self._limit)
            key.append("limit")
        if extras is not _NO_EXTRAS:
            if extras.offset is not None:
                values.append(extras.offset)
                key.append("offset")
            if extras.distinct or extras.distinct_on:
                key.append(("distinct", extras.distinct, _keys(extras.distinct_on, values)))
            if extras.for_update is not None:
                nowait, skip_locked, of, key_share, read = extras.for_update
                # the FROM items themselves (identity-hashed, kept alive by the key): an
                # id() could name a freed alias's successor at the same address
                key.append(("for", nowait, skip_locked, of, key_share, read))
        return tuple(key)

    def _core(self, binder: Binder) -> Any:
        extras = self._extras
        binder.push_scope(None)  # the select list defines the FROM list; nothing to check
        columns = [operand_core(c, binder, None, "select") for c in self._columns]
        froms = [operand_core(f, binder, None, "from") for f in self._from]
        binder.pop_scope()
        if not columns:
            if not froms:
                raise CompileError("select() needs columns or a from_() table")
            columns = [c for f in froms for c in f.c]
        stmt = sa.select(*columns)
        made_lateral: dict[Any, Any] = {}
        if froms:
            source = froms[0]
            for kind, target, on, lateral in extras.joins:
                target_core = operand_core(target, binder, None, "join")
                if lateral and not getattr(target_core, "_is_lateral", False):
                    lateral_core = _lateral(target_core)
                    made_lateral[target_core] = lateral_core
                    target_core = lateral_core
                binder.push_scope([source, target_core, *froms[1:]])
                on_core = None if on is None else on._core(binder)
                binder.pop_scope()
                if kind == "right":
                    source = _RightJoin(source, target_core, on_core)
                else:
                    source = source.join(
                        target_core, on_core, isouter=kind == "left", full=kind == "full"
                    )
            stmt = stmt.select_from(source, *froms[1:])
            scope = [source, *froms[1:]]
        else:
            scope = _tables_of(columns)
        binder.push_scope(scope)
        # some()/none()/every() resolve relations against the one table queried, if one
        single = scope[0] if len(scope) == 1 else None
        binder.push_relation_source(single if isinstance(single, sa.Table) else None)
        if self._where:
            stmt = stmt.where(*(c._core(binder) for c in self._where))
        if extras.group_by:
            stmt = stmt.group_by(
                *(operand_core(g, binder, None, "group_by") for g in extras.group_by)
            )
        if extras.having:
            stmt = stmt.having(*(c._core(binder) for c in extras.having))
        if self._order_by:
            stmt = stmt.order_by(
                *(operand_core(o, binder, None, "order_by") for o in self._order_by)
            )
        binder.pop_relation_source()
        binder.pop_scope()
        if self._limit is not None:
            stmt = stmt.limit(binder.bind(sa.Integer(), "limit"))
        if extras.offset is not None:
            stmt = stmt.offset(binder.bind(sa.Integer(), "offset"))
        if extras.distinct_on:
            exprs = [operand_core(d, binder, None, "distinct_on") for d in extras.distinct_on]
            stmt = stmt.ext(postgresql.distinct_on(*exprs))
        elif extras.distinct:
            stmt = stmt.distinct()
        if extras.for_update is not None:
            nowait, skip_locked, of, key_share, read = extras.for_update
            stmt = stmt.with_for_update(
                nowait=nowait,
                skip_locked=skip_locked,
                of=list(of) or None,
                key_share=key_share,
                read=read,
            )
        if made_lateral:
            stmt = _refer_to_laterals(stmt, made_lateral)
        return stmt


_NO_SELECT: SelectQuery[*tuple[Any, ...]] = SelectQuery(())


def _lateral(target: Any) -> Any:
    """``target`` joined LATERAL: a subquery becomes a LATERAL subquery of the same name."""
    if isinstance(target, Subquery):
        return sa.lateral(target.element, name=target.name)
    return sa.lateral(target)


_NO_OPTIONS: dict[str, Any] = {}


def _refer_to_laterals(stmt: Any, made: Mapping[Any, Any]) -> Any:
    """``stmt`` with every reference to a subquery joined LATERAL pointed at its LATERAL form.

    The select list and conditions name the subquery the user made (``q.subquery("x")``);
    left alone, that subquery would also land in FROM, uncorrelated: a silent cross join.
    """

    def replace(element: Any, **kw: Any) -> Any:
        lateral = made.get(element)
        if lateral is not None:
            return lateral
        table = getattr(element, "table", None)
        if table is not None and isinstance(element, ColumnClause) and table in made:
            return made[table].c[element.key]
        return None

    return replacement_traverse(stmt, _NO_OPTIONS, replace)


def _conditions_key(part: str, conditions: tuple[Condition, ...], values: list[Any]) -> Hashable:
    return (part, *[c._key(values) for c in conditions])


def _keys(items: tuple[Any, ...], values: list[Any]) -> Hashable:
    try:
        if TABLE_COLUMNS.issuperset(items):
            return items  # a table's own columns key as themselves: one test for them all
    except TypeError:  # an unhashable item: a value
        pass
    return tuple([operand_key(x, values) for x in items])


def _is_column(item: Any) -> bool:
    return isinstance(item, schema.Column)


def _value_key(value: Any, values: list[Any]) -> Hashable:
    if value is None:
        return None
    values.append(value)
    return VALUE


# GENERATED select overloads (tools/gen_overloads.py) BEGIN
@overload
def select(__c0: _Col[_T0], /) -> SelectQuery[_T0]: ...


@overload
def select(__c0: _Col[_T0], __c1: _Col[_T1], /) -> SelectQuery[_T0, _T1]: ...


@overload
def select(__c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], /) -> SelectQuery[_T0, _T1, _T2]: ...


@overload
def select(
    __c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], __c3: _Col[_T3], /
) -> SelectQuery[_T0, _T1, _T2, _T3]: ...


@overload
def select(
    __c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], __c3: _Col[_T3], __c4: _Col[_T4], /
) -> SelectQuery[_T0, _T1, _T2, _T3, _T4]: ...


@overload
def select(
    __c0: _Col[_T0],
    __c1: _Col[_T1],
    __c2: _Col[_T2],
    __c3: _Col[_T3],
    __c4: _Col[_T4],
    __c5: _Col[_T5],
    /,
) -> SelectQuery[_T0, _T1, _T2, _T3, _T4, _T5]: ...


@overload
def select(
    __c0: _Col[_T0],
    __c1: _Col[_T1],
    __c2: _Col[_T2],
    __c3: _Col[_T3],
    __c4: _Col[_T4],
    __c5: _Col[_T5],
    __c6: _Col[_T6],
    /,
) -> SelectQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6]: ...


@overload
def select(
    __c0: _Col[_T0],
    __c1: _Col[_T1],
    __c2: _Col[_T2],
    __c3: _Col[_T3],
    __c4: _Col[_T4],
    __c5: _Col[_T5],
    __c6: _Col[_T6],
    __c7: _Col[_T7],
    /,
) -> SelectQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7]: ...


@overload
def select(
    __c0: _Col[_T0],
    __c1: _Col[_T1],
    __c2: _Col[_T2],
    __c3: _Col[_T3],
    __c4: _Col[_T4],
    __c5: _Col[_T5],
    __c6: _Col[_T6],
    __c7: _Col[_T7],
    __c8: _Col[_T8],
    /,
) -> SelectQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8]: ...


@overload
def select(
    __c0: _Col[_T0],
    __c1: _Col[_T1],
    __c2: _Col[_T2],
    __c3: _Col[_T3],
    __c4: _Col[_T4],
    __c5: _Col[_T5],
    __c6: _Col[_T6],
    __c7: _Col[_T7],
    __c8: _Col[_T8],
    __c9: _Col[_T9],
    /,
) -> SelectQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9]: ...


# GENERATED select overloads END


@overload
def select(__table: FromClause[HasRowPos[*Ts]], /) -> SelectQuery[*Ts]: ...  # type: ignore[type-var]


@overload
def select(*columns: Any) -> SelectQuery[*tuple[Any, ...]]: ...


def select(*columns: Any) -> Any:
    """SELECT columns, expressions or whole tables (all their columns, typed via ``__row_pos__``).

    ``select()`` with no arguments selects every column of the ``from_()`` tables.
    """
    try:
        if TABLE_COLUMNS.issuperset(columns):  # the usual case: tables' own columns, known
            query = _NO_SELECT._clone()  # SelectQuery(columns) without __init__'s call
            query._columns = columns
            return query
    except TypeError:  # an unhashable item: a value, not a table
        pass
    for c in columns:
        if isinstance(c, FromClause):
            break
        is_table_column(c)  # remembered: the next select() of it takes the test above
    else:
        return SelectQuery(columns)  # no table to expand
    expanded: list[Any] = []
    for c in columns:
        if isinstance(c, FromClause):
            expanded.extend(c.c)
        else:
            expanded.append(c)
    return SelectQuery(expanded)


class CompoundQuery(Query[*Ts]):
    """UNION / UNION ALL / INTERSECT / EXCEPT of selects, with its own ORDER BY and LIMIT."""

    _op: str
    _parts: tuple[Query[*Ts], ...]
    _order_by: tuple[Any, ...]
    _limit: int | None
    _offset: int | None

    __slots__ = ("_limit", "_offset", "_op", "_order_by", "_parts")

    plain_read = True

    def __init__(self, op: str, parts: Sequence[Query[*Ts]]) -> None:
        if len(parts) < 2:
            raise CompileError(f"{op} needs at least two queries")
        _init(self, _op=op, _parts=tuple(parts), _order_by=(), _limit=None, _offset=None)

    def order_by(self, *items: ColumnElement[Any] | Order | str) -> CompoundQuery[*Ts]:
        """ORDER BY result columns (by name, ``-name`` for descending, or a column)."""
        first = self._parts[0]
        names = (
            {c.key: c for c in first.statement.selected_columns} if isinstance(first, Query) else {}
        )
        resolved: list[Any] = []
        for item in items:
            if isinstance(item, str):
                match = _ORDER_NAME.match(item)
                if match is None or match.group(3) or match.group(2) not in names:
                    raise SchemaError(
                        f"order_by({item!r}): not a result column; valid: {', '.join(names)}",
                        column=item,
                    )
                resolved.append(
                    Order(sa.literal_column(match.group(2)), match.group(1) == "-", None)
                )
            else:
                resolved.append(item if isinstance(item, Order) else Order(item, False, None))
        return self._copy(_order_by=self._order_by + tuple(resolved))

    def limit(self, n: int | None) -> CompoundQuery[*Ts]:
        """``LIMIT n`` on the whole compound query."""
        return self._copy(_limit=_check_limit(n, "limit"))

    def offset(self, n: int | None) -> CompoundQuery[*Ts]:
        """``OFFSET n`` on the whole compound query."""
        return self._copy(_offset=_check_limit(n, "offset"))

    def subquery(self, name: str | None = None) -> Any:
        """The compound query as a subquery to select from."""
        return self.statement.subquery(name)

    def cte(self, name: str | None = None, *, recursive: bool = False) -> Any:
        """The compound query as a CTE (``recursive=True`` for WITH RECURSIVE)."""
        return self.statement.cte(name, recursive=recursive)

    def _key(self, values: list[Any]) -> Hashable:
        return (
            self._op,
            tuple(p._key(values) for p in self._parts),
            tuple(o._key(values) for o in self._order_by),
            _value_key(self._limit, values),
            _value_key(self._offset, values),
        )

    def _core(self, binder: Binder) -> Any:
        parts = [p._core(binder) for p in self._parts]
        stmt = getattr(sa, self._op if self._op != "except" else "except_")(*parts)
        if self._order_by:
            stmt = stmt.order_by(*(o._core(binder) for o in self._order_by))
        if self._limit is not None:
            stmt = stmt.limit(binder.bind(sa.Integer(), "limit"))
        if self._offset is not None:
            stmt = stmt.offset(binder.bind(sa.Integer(), "offset"))
        return stmt


def union(*queries: SelectQuery[*Ts]) -> CompoundQuery[*Ts]:
    """``q1 UNION q2 ...`` (duplicates removed)."""
    return CompoundQuery("union", queries)


def union_all(*queries: SelectQuery[*Ts]) -> CompoundQuery[*Ts]:
    """``q1 UNION ALL q2 ...`` (duplicates kept)."""
    return CompoundQuery("union_all", queries)


def intersect(*queries: SelectQuery[*Ts]) -> CompoundQuery[*Ts]:
    """``q1 INTERSECT q2 ...``: rows found in each query."""
    return CompoundQuery("intersect", queries)


def intersect_all(*queries: SelectQuery[*Ts]) -> CompoundQuery[*Ts]:
    """``q1 INTERSECT ALL q2 ...``: rows found in each, with duplicates."""
    return CompoundQuery("intersect_all", queries)


def except_(*queries: SelectQuery[*Ts]) -> CompoundQuery[*Ts]:
    """``q1 EXCEPT q2 ...``: rows of the first found in none of the others."""
    return CompoundQuery("except", queries)


def except_all(*queries: SelectQuery[*Ts]) -> CompoundQuery[*Ts]:
    """``q1 EXCEPT ALL q2 ...``: the same, counting duplicates."""
    return CompoundQuery("except_all", queries)


# -- DML -------------------------------------------------------------------------------


def _check_table(table: Any, what: str) -> sa.Table:
    if not isinstance(table, sa.Table):
        raise CompileError(f"{what}() takes a Table, got {type(table).__name__}")
    return table


def _column_for(table: sa.Table, key: Any, what: str) -> schema.Column[Any]:
    if isinstance(key, schema.Column):
        if key.table is not table:
            raise SchemaError(
                f"{what}: column {column_label(key)} is not a column of {table.name}",
                column=column_label(key),
            )
        return key
    if isinstance(key, str) and key in table.c:
        return table.c[key]
    raise SchemaError(
        f"{what}: {table.name} has no column {key!r}; valid columns: {', '.join(table.c.keys())}",
        column=f"{table.name}.{key}",
    )


def python_default(column: schema.Column[Any]) -> tuple[bool, Any]:
    default = column.default
    if default is None or not isinstance(default, schema.ColumnDefault):
        return False, None
    if default.is_callable:
        return True, default.arg(None)
    return True, default.arg


def _values_dict(
    table: sa.Table, values: Mapping[Any, Any], what: str
) -> dict[schema.Column[Any], Any]:
    if not isinstance(values, Mapping):
        raise CompileError(
            f"{what}: expected a mapping of column -> value, got {type(values).__name__}"
        )
    return {_column_for(table, k, what): v for k, v in values.items()}


class _DML(Query[*Ts]):
    _table: sa.Table
    _returning: tuple[Any, ...]
    __slots__ = ("_returning", "_table")

    def cte(self, name: str | None = None) -> Any:
        """This statement as a data-modifying common table expression (``WITH x AS (UPDATE ...
        RETURNING ...)``), for ``select(x.c.id)``; give it ``returning(...)`` columns to select."""
        return self.statement.cte(name)

    def _returning_key(self, values: list[Any]) -> Hashable:
        return tuple(operand_key(c, values) for c in self._returning)

    def _returning_core(self, stmt: Any, binder: Binder) -> Any:
        if not self._returning:
            return stmt
        return stmt.returning(
            *(operand_core(c, binder, None, "returning") for c in self._returning)
        )


def _require_where(
    query: UpdateQuery[*tuple[Any, ...]] | DeleteQuery[*tuple[Any, ...]], verb: str
) -> None:
    """Refuse an UPDATE or DELETE with no WHERE unless ``all_rows()`` says it is meant.

    A forgotten ``.where()`` would otherwise change every row of the table, silently
    (Drizzle users get the same guard from an ESLint rule). Checked when the statement
    is built, so nothing is sent.
    """
    if not query._where and not query._all_rows:
        name = query._table.name
        raise CompileError(
            f"{verb} {name} has no where(): it would {verb} every row of {name}. "
            f"Add .where(...), or call .all_rows() if every row is meant"
        )


def _set_key(items: Sequence[tuple[Any, Any]], values: list[Any]) -> Hashable:
    return tuple((col, operand_key(v, values)) for col, v in items)


def _set_core(items: Sequence[tuple[Any, Any]], binder: Binder) -> dict[Any, Any]:
    return {col.key: operand_core(v, binder, col.type, column_label(col)) for col, v in items}


class InsertQuery(_DML[*Ts]):
    """An INSERT. Build it with :func:`insert`."""

    _columns: tuple[schema.Column[Any], ...]
    _rows: tuple[tuple[Any, ...], ...]
    _from_select: Any
    _conflict: tuple[str, Any, tuple[tuple[Any, Any], ...], Condition | None] | None
    _defaulted: frozenset[tuple[int, int]]
    """(row, column position) of values that a callable Python default gave."""

    __slots__ = ("_columns", "_conflict", "_defaulted", "_from_select", "_rows")

    def __init__(self, table: sa.Table) -> None:
        _init(
            self,
            _table=_check_table(table, "insert"),
            _returning=(),
            _columns=(),
            _rows=(),
            _from_select=None,
            _conflict=None,
            _defaulted=frozenset(),
        )

    def values(
        self, rows: Mapping[Any, Any] | Sequence[Mapping[Any, Any]] | None = None, /, **kw: Any
    ) -> InsertQuery[*Ts]:
        """One row (a mapping or keyword arguments) or many (a list of mappings).

        Keys are column names or columns, checked against the table. Columns with
        a Python-side default (``default=cuid``) get it when absent; a column absent
        from some rows of a multi-row insert gets DEFAULT.
        """
        if rows is None:
            batch: list[Mapping[Any, Any]] = [kw]
        elif isinstance(rows, Mapping):
            batch = [{**rows, **kw}]
        else:
            if kw:
                raise CompileError("values(): give keyword values or a list of rows, not both")
            batch = list(rows)
        if not batch:
            raise CompileError("values() got no rows")
        table = self._table
        dicts = [_values_dict(table, row, f"insert into {table.name}") for row in batch]
        called: set[tuple[int, schema.Column[Any]]] = set()
        for i, row in enumerate(dicts):
            for column in table.columns:
                if column not in row:
                    has, value = python_default(column)
                    if has:
                        row[column] = value
                        if getattr(column.default, "is_callable", False):
                            called.add((i, column))  # computed now: prepare() recomputes it
        ordered = [c for c in table.columns if any(c in row for row in dicts)]
        rows_tuple = tuple(tuple(row.get(c, _DEFAULT) for c in ordered) for row in dicts)
        defaulted = frozenset((i, ordered.index(c)) for i, c in called)
        return self._copy(
            _columns=tuple(ordered), _rows=rows_tuple, _from_select=None, _defaulted=defaulted
        )

    def from_select(
        self, query: SelectQuery[Any] | Any, columns: Sequence[Any]
    ) -> InsertQuery[*Ts]:
        """INSERT INTO table (columns) SELECT ...; the select's columns fill them in order."""
        cols = tuple(
            _column_for(self._table, c, f"insert into {self._table.name}") for c in columns
        )
        return self._copy(_columns=cols, _rows=(), _from_select=query, _defaulted=frozenset())

    def on_conflict_do_nothing(self, target: Sequence[Any] | str | None = None) -> InsertQuery[*Ts]:
        """ON CONFLICT [(target)] DO NOTHING; ``target`` is columns or a constraint name."""
        return self._copy(_conflict=("nothing", self._conflict_target(target), (), None))

    def on_conflict_do_update(
        self,
        target: Sequence[Any] | str,
        set_: Mapping[Any, Any],
        where: Where = None,
    ) -> InsertQuery[*Ts]:
        """ON CONFLICT (target) DO UPDATE SET ... [WHERE ...].

        Values in ``set_`` may be plain values, expressions, or ``excluded(t).c.col``
        for the row that was proposed for insertion.
        """
        if not set_:
            raise CompileError(
                "on_conflict_do_update() needs set_ values; use on_conflict_do_nothing()"
            )
        items = tuple(_values_dict(self._table, set_, "on_conflict_do_update").items())
        cond = None if where is None else as_condition(where)
        return self._copy(_conflict=("update", self._conflict_target(target), items, cond))

    def _conflict_target(self, target: Sequence[Any] | str | None) -> Any:
        if target is None or isinstance(target, str):
            return target
        return tuple(_column_for(self._table, c, "on conflict target") for c in target)

    # GENERATED insert returning overloads (tools/gen_overloads.py) BEGIN
    @overload
    def returning(self, __c0: _Col[_T0], /) -> InsertQuery[_T0]: ...

    @overload
    def returning(self, __c0: _Col[_T0], __c1: _Col[_T1], /) -> InsertQuery[_T0, _T1]: ...

    @overload
    def returning(
        self, __c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], /
    ) -> InsertQuery[_T0, _T1, _T2]: ...

    @overload
    def returning(
        self, __c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], __c3: _Col[_T3], /
    ) -> InsertQuery[_T0, _T1, _T2, _T3]: ...

    @overload
    def returning(
        self, __c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], __c3: _Col[_T3], __c4: _Col[_T4], /
    ) -> InsertQuery[_T0, _T1, _T2, _T3, _T4]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        /,
    ) -> InsertQuery[_T0, _T1, _T2, _T3, _T4, _T5]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        /,
    ) -> InsertQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        __c7: _Col[_T7],
        /,
    ) -> InsertQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        __c7: _Col[_T7],
        __c8: _Col[_T8],
        /,
    ) -> InsertQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        __c7: _Col[_T7],
        __c8: _Col[_T8],
        __c9: _Col[_T9],
        /,
    ) -> InsertQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9]: ...

    # GENERATED insert returning overloads END

    @overload
    def returning(self, *cols: Any) -> InsertQuery[*tuple[Any, ...]]: ...

    def returning(self, *cols: Any) -> Any:
        """RETURNING these columns (a whole table returns all its columns)."""
        return self._copy(_returning=_expand(cols))

    def _key(self, values: list[Any]) -> Hashable:
        # The walk order must match _core's: rows or select, conflict, returning.
        rows = tuple(tuple(_row_value_key(v, values) for v in row) for row in self._rows)
        source = None if self._from_select is None else operand_key(self._from_select, values)
        conflict_key: Hashable = None
        if self._conflict is not None:
            kind, target, items, cond = self._conflict
            set_key = _set_key(items, values)
            conflict_key = (kind, target, set_key, None if cond is None else cond._key(values))
        return (self._table, self._columns, rows, source, conflict_key, self._returning_key(values))

    def _core(self, binder: Binder) -> Any:
        table = self._table
        # inline(): no implicit RETURNING of generated keys; querykit returns what you ask.
        stmt: Any = postgresql.insert(table).inline()
        if self._from_select is not None:
            source = operand_core(self._from_select, binder, None, "from_select")
            stmt = stmt.from_select([c.key for c in self._columns], source)
        elif self._rows:
            rows = [
                {
                    c.key: sa.literal_column("DEFAULT")
                    if v is _DEFAULT
                    else operand_core(v, binder, c.type, column_label(c))
                    for c, v in zip(self._columns, row, strict=True)
                }
                for row in self._rows
            ]
            stmt = stmt.values(rows[0] if len(rows) == 1 else rows)
        elif self._conflict is None and not self._returning:
            raise CompileError(f"insert into {table.name}: call values() or from_select()")
        else:
            stmt = stmt.values({})
        if self._conflict is not None:
            kind, target, items, cond = self._conflict
            target_args: dict[str, Any] = {}
            if isinstance(target, str):
                target_args["constraint"] = target
            elif target:
                target_args["index_elements"] = list(target)
            if kind == "nothing":
                stmt = stmt.on_conflict_do_nothing(**target_args)
            else:
                binder.push_scope([table, excluded(table)])
                set_ = _set_core(items, binder)
                where = None if cond is None else cond._core(binder)
                binder.pop_scope()
                stmt = stmt.on_conflict_do_update(**target_args, set_=set_, where=where)
        return self._returning_core(stmt, binder)


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


_DEFAULT = _Default()


def _row_value_key(value: Any, values: list[Any]) -> Hashable:
    return "DEFAULT" if value is _DEFAULT else operand_key(value, values)


def _expand(cols: Sequence[Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for c in cols:
        if isinstance(c, FromClause):
            out.extend(c.c)
        else:
            out.append(c)
    return tuple(out)


@functools.cache
def _excluded(table: sa.Table) -> NamedFromClause:
    return table.alias("excluded")


def excluded(table: sa.Table[_TC]) -> NamedFromClause[_TC]:  # type: ignore[type-var]
    """The row proposed for insertion, inside ``on_conflict_do_update``: ``excluded(t).c.cost``."""
    return _excluded(table)  # type: ignore[return-value]


def insert(table: sa.Table) -> InsertQuery[()]:
    """INSERT INTO table; add ``.values(...)`` and optionally ``.returning(...)``."""
    return InsertQuery(table)


class UpdateQuery(_DML[*Ts]):
    """An UPDATE. Build it with :func:`update`."""

    _set: tuple[tuple[schema.Column[Any], Any], ...]
    _where: tuple[Condition, ...]
    _from: tuple[Any, ...]
    _all_rows: bool

    __slots__ = ("_all_rows", "_from", "_set", "_where")

    def __init__(self, table: sa.Table) -> None:
        _init(
            self,
            _table=_check_table(table, "update"),
            _returning=(),
            _set=(),
            _where=(),
            _from=(),
            _all_rows=False,
        )

    def set(self, values: Mapping[Any, Any] | None = None, /, **kw: Any) -> UpdateQuery[*Ts]:
        """SET columns: a mapping of column (or name) to value or expression, or keywords."""
        items = _values_dict(self._table, {**(values or {}), **kw}, f"update {self._table.name}")
        merged = dict(self._set)
        merged.update(items)
        return self._copy(_set=tuple(merged.items()))

    def where(self, *conditions: Where) -> UpdateQuery[*Ts]:
        """``WHERE conditions``, ANDed with any given before."""
        new = _conditions(conditions)
        return self._copy(_where=self._where + new) if new else self

    def all_rows(self) -> UpdateQuery[*Ts]:
        """Update every row on purpose: without it, an update with no ``where()`` is refused."""
        return self._copy(_all_rows=True)

    def from_(self, *tables: FromClause) -> UpdateQuery[*Ts]:
        """UPDATE ... FROM other tables, to use their columns in SET and WHERE."""
        return self._copy(_from=self._from + tables)

    # GENERATED update returning overloads (tools/gen_overloads.py) BEGIN
    @overload
    def returning(self, __c0: _Col[_T0], /) -> UpdateQuery[_T0]: ...

    @overload
    def returning(self, __c0: _Col[_T0], __c1: _Col[_T1], /) -> UpdateQuery[_T0, _T1]: ...

    @overload
    def returning(
        self, __c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], /
    ) -> UpdateQuery[_T0, _T1, _T2]: ...

    @overload
    def returning(
        self, __c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], __c3: _Col[_T3], /
    ) -> UpdateQuery[_T0, _T1, _T2, _T3]: ...

    @overload
    def returning(
        self, __c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], __c3: _Col[_T3], __c4: _Col[_T4], /
    ) -> UpdateQuery[_T0, _T1, _T2, _T3, _T4]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        /,
    ) -> UpdateQuery[_T0, _T1, _T2, _T3, _T4, _T5]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        /,
    ) -> UpdateQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        __c7: _Col[_T7],
        /,
    ) -> UpdateQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        __c7: _Col[_T7],
        __c8: _Col[_T8],
        /,
    ) -> UpdateQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        __c7: _Col[_T7],
        __c8: _Col[_T8],
        __c9: _Col[_T9],
        /,
    ) -> UpdateQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9]: ...

    # GENERATED update returning overloads END

    @overload
    def returning(self, *cols: Any) -> UpdateQuery[*tuple[Any, ...]]: ...

    def returning(self, *cols: Any) -> Any:
        """RETURNING these columns (new values)."""
        return self._copy(_returning=_expand(cols))

    def _key(self, values: list[Any]) -> Hashable:
        return (
            self._table,
            _set_key(self._set, values),
            tuple(c._key(values) for c in self._where),
            tuple(operand_key(f, values) for f in self._from),
            self._returning_key(values),
            self._all_rows,
        )

    def _core(self, binder: Binder) -> Any:
        if not self._set:
            raise CompileError(f"update {self._table.name}: call set() with at least one column")
        _require_where(self, "update")
        froms = [operand_core(f, binder, None, "from") for f in self._from]
        binder.push_scope([self._table, *froms])
        stmt: Any = sa.update(self._table).values(_set_core(self._set, binder))
        if self._where:
            stmt = stmt.where(*(c._core(binder) for c in self._where))
        stmt = self._returning_core(stmt, binder)
        binder.pop_scope()
        return stmt


def update(table: sa.Table) -> UpdateQuery[()]:
    """UPDATE table; add ``.set(...)``, ``.where(...)`` and optionally ``.returning(...)``.

    An update without ``.where(...)`` is a :class:`CompileError` unless ``.all_rows()``
    says every row is meant.
    """
    return UpdateQuery(table)


class DeleteQuery(_DML[*Ts]):
    """A DELETE. Build it with :func:`delete`."""

    _where: tuple[Condition, ...]
    _using: tuple[Any, ...]
    _all_rows: bool

    __slots__ = ("_all_rows", "_using", "_where")

    def __init__(self, table: sa.Table) -> None:
        _init(
            self,
            _table=_check_table(table, "delete"),
            _returning=(),
            _where=(),
            _using=(),
            _all_rows=False,
        )

    def where(self, *conditions: Where) -> DeleteQuery[*Ts]:
        """``WHERE conditions``, ANDed with any given before."""
        new = _conditions(conditions)
        return self._copy(_where=self._where + new) if new else self

    def all_rows(self) -> DeleteQuery[*Ts]:
        """Delete every row on purpose: without it, a delete with no ``where()`` is refused."""
        return self._copy(_all_rows=True)

    def using(self, *tables: FromClause) -> DeleteQuery[*Ts]:
        """DELETE ... USING other tables, to use their columns in WHERE."""
        return self._copy(_using=self._using + tables)

    # GENERATED delete returning overloads (tools/gen_overloads.py) BEGIN
    @overload
    def returning(self, __c0: _Col[_T0], /) -> DeleteQuery[_T0]: ...

    @overload
    def returning(self, __c0: _Col[_T0], __c1: _Col[_T1], /) -> DeleteQuery[_T0, _T1]: ...

    @overload
    def returning(
        self, __c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], /
    ) -> DeleteQuery[_T0, _T1, _T2]: ...

    @overload
    def returning(
        self, __c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], __c3: _Col[_T3], /
    ) -> DeleteQuery[_T0, _T1, _T2, _T3]: ...

    @overload
    def returning(
        self, __c0: _Col[_T0], __c1: _Col[_T1], __c2: _Col[_T2], __c3: _Col[_T3], __c4: _Col[_T4], /
    ) -> DeleteQuery[_T0, _T1, _T2, _T3, _T4]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        /,
    ) -> DeleteQuery[_T0, _T1, _T2, _T3, _T4, _T5]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        /,
    ) -> DeleteQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        __c7: _Col[_T7],
        /,
    ) -> DeleteQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        __c7: _Col[_T7],
        __c8: _Col[_T8],
        /,
    ) -> DeleteQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8]: ...

    @overload
    def returning(
        self,
        __c0: _Col[_T0],
        __c1: _Col[_T1],
        __c2: _Col[_T2],
        __c3: _Col[_T3],
        __c4: _Col[_T4],
        __c5: _Col[_T5],
        __c6: _Col[_T6],
        __c7: _Col[_T7],
        __c8: _Col[_T8],
        __c9: _Col[_T9],
        /,
    ) -> DeleteQuery[_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9]: ...

    # GENERATED delete returning overloads END

    @overload
    def returning(self, *cols: Any) -> DeleteQuery[*tuple[Any, ...]]: ...

    def returning(self, *cols: Any) -> Any:
        """RETURNING these columns of the deleted rows."""
        return self._copy(_returning=_expand(cols))

    def _key(self, values: list[Any]) -> Hashable:
        return (
            self._table,
            tuple(c._key(values) for c in self._where),
            tuple(operand_key(f, values) for f in self._using),
            self._returning_key(values),
            self._all_rows,
        )

    def _core(self, binder: Binder) -> Any:
        _require_where(self, "delete")
        using = [operand_core(f, binder, None, "using") for f in self._using]
        binder.push_scope([self._table, *using])
        stmt: Any = sa.delete(self._table)
        if self._where:
            stmt = stmt.where(*(c._core(binder) for c in self._where))
        stmt = self._returning_core(stmt, binder)
        binder.pop_scope()
        return stmt


def delete(table: sa.Table) -> DeleteQuery[()]:
    """DELETE FROM table; add ``.where(...)`` and optionally ``.returning(...)``.

    A delete without ``.where(...)`` is a :class:`CompileError` unless ``.all_rows()``
    says every row is meant.
    """
    return DeleteQuery(table)


# -- what other layers ask of a builder (a deliberate internal API) -----------------


def fresh_defaults(
    query: Query[*tuple[Any, ...]],
) -> tuple[Query[*tuple[Any, ...]], tuple[tuple[str, Callable[[Any], Any]], ...]]:
    """An insert's Python-side defaults (``default=cuid``) made anew at each call.

    ``insert().values()`` computes them once, when the query is built; a prepared
    query would send that one value every time. Each becomes a hidden placeholder
    whose value the default's function gives at each call, as a plain insert built
    per call would get.
    """
    if not isinstance(query, InsertQuery) or not query._defaulted:
        return query, ()
    generated = []
    rows = [list(row) for row in query._rows]
    for i, position in sorted(query._defaulted):
        column = query._columns[position]
        default = column.default
        assert isinstance(default, ColumnDefault) and default.is_callable
        hidden = Placeholder.__new__(Placeholder)  # not an identifier: no keyword can clash
        hidden.name, hidden.type = f"{column.name}#default{i}", None
        rows[i][position] = hidden
        generated.append((hidden.name, default.arg))
    fresh = query._copy(_rows=tuple(tuple(row) for row in rows), _defaulted=frozenset())
    return fresh, tuple(generated)


def knn_parts(query: SelectQuery[*tuple[Any, ...]]) -> tuple[tuple[Any, ...], Any]:
    """A select's columns and its LIMIT value: what ``nearest()``'s template reuses."""
    return query._columns, query._limit


def with_columns(
    query: SelectQuery[*tuple[Any, ...]], columns: tuple[Any, ...]
) -> SelectQuery[*tuple[Any, ...]]:
    """A copy of ``query`` selecting ``columns`` instead (no checks: the caller built them)."""
    new = query._clone()
    new._columns = columns
    return new


class _KeyedSelect(SelectQuery[*tuple[Any, ...]]):
    """A select whose key walk's result is known in advance: see :func:`with_known_key`.

    Its own class, so a plain select carries no slot for it (every builder method copies
    every slot). Copies made by the builder methods have no key and walk as any select.
    """

    __slots__ = ("_memo",)
    _memo: tuple[Hashable, tuple[Any, ...]] | None

    def _key(self, values: list[Any]) -> Hashable:
        memo = self._memo
        if memo is None:
            return super()._key(values)
        values.extend(memo[1])
        return memo[0]


_to_keyed = _make_clone(_KeyedSelect, SelectQuery._slot_names)  # a select's fields, copied


def with_known_key(
    query: SelectQuery[*tuple[Any, ...]],
    columns: tuple[Any, ...],
    key: Hashable,
    values: tuple[Any, ...],
) -> SelectQuery[*tuple[Any, ...]]:
    """:func:`with_columns`, for a query whose key walk gives ``key`` and ``values``.

    For a builder that makes many queries differing only in ``values`` and has the key
    of one from ``binding.learn_key`` (``nearest()``): the query takes it instead of
    walking again.
    """
    new: _KeyedSelect = _to_keyed(query)
    new._columns = columns
    new._memo = (key, values)
    return new
