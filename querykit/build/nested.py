"""Relational queries: nested results, Prisma ``include`` / Drizzle ``db.query`` style.

Relations come from the schema:

- every ForeignKey gives two relations, named by this rule:
  - on the referencing table, a *many-to-one* named after the foreign-key
    column without its ``_id`` suffix (``pipeline_step.run_id`` → ``run``), or
    after the referenced table when the column has no such suffix;
  - on the referenced table, a *one-to-many* named after the referencing table,
    minus the leading words it shares with the referenced table, made plural
    (``pipeline_step`` under ``pipeline_run`` → ``steps``; ``category`` →
    ``categories``, ``box`` → ``boxes``); a name that already ends in ``s``
    (``orders``) is kept as it is; a table that
    references itself gets ``children``. When two foreign keys of one table
    point at the same table, the one-to-many names end in ``_by_<column>``
    (``posts_by_author``, ``posts_by_editor``).
- :func:`relation` and :func:`many_to_many` declare the rest in the schema
  module (they are kept in ``Table.info``), and override automatic names.

``find_many(table, where=..., with_={"steps": include(order_by=..., limit=...)})``
builds a query; ``db.all(q)`` (or ``db.query(table).find_many(...)``) runs it.
Two strategies, both visible with ``.to_sql()``:

- ``"json"`` (the default): ONE statement; each relation is a correlated
  subquery aggregating its rows with ``json_agg(json_build_array(...))``.
  Values come back exactly as at the top level (see ``codecs.json_decoder_for``).
- ``"batched"``: one statement per level, children fetched with
  ``fk = ANY(%s)`` on the parents' keys and stitched in Python; sibling
  relations of one level go to the server together in a pipeline.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import re
import typing
from collections.abc import (
    Callable,
    Generator,
    Hashable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, Generic, Literal, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import schema
from sqlalchemy.sql import util as sql_util
from sqlalchemy.sql.elements import ColumnElement

from .. import codecs
from .binding import Binder
from .sqltext import CompiledSQL
from ..schema.naming import column_label
from ..schema.relations import Relation, many_to_many, relation, relation_named, relations_of
from .sqltext import render
from ..errors import CompileError, MappingError, SchemaError
from .operators import Condition, as_condition
from .query import Query, Order, resolve_order_string, order_item
from .rowtype import check_row_class, python_type_of

__all__ = [
    "Include",
    "NestedQuery",
    "count_of",
    "every",
    "find_first",
    "find_many",
    "include",
    "none",
    "some",
]

T = TypeVar("T")
Strategy = Literal["json", "batched"]


# -- what to fetch ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Include:
    """Options for one nested relation; see :func:`include`."""

    columns: tuple[Any, ...] | None = None
    where: Condition | None = None
    order_by: tuple[Any, ...] = ()
    limit: int | None = None
    offset: int | None = None
    with_: Mapping[str, Include | _CountOf] = dataclasses.field(default_factory=dict)
    depth: int | None = None


def include(
    *,
    columns: Sequence[Any] | None = None,
    where: Condition | ColumnElement[bool] | None = None,
    order_by: Sequence[Any] | Any = (),
    limit: int | None = None,
    offset: int | None = None,
    with_: Mapping[str, Include | _CountOf] | None = None,
    depth: int | None = None,
) -> Include:
    """Fetch a relation, with its own columns, filter, order, limit and nested relations.

    ``limit`` and ``offset`` apply per parent. A self-referencing relation
    (``children`` of a tree) needs ``depth``: how many levels to follow.
    """
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise CompileError(f"include(depth=...) must be a positive int, got {depth!r}")
    order = tuple(order_by) if isinstance(order_by, list | tuple) else (order_by,)
    return Include(
        columns=None if columns is None else tuple(columns),
        where=None if where is None else as_condition(where),
        order_by=tuple(o for o in order if o is not None),
        limit=_check_count(limit, "limit"),
        offset=_check_count(offset, "offset"),
        with_=dict(with_ or {}),
        depth=depth,
    )


def _check_count(value: Any, what: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise CompileError(f"{what} must be a non-negative int, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class _CountOf:
    relation: str
    where: Condition | None


def count_of(
    relation_name: str, *, where: Condition | ColumnElement[bool] | None = None
) -> _CountOf:
    """The number of related rows, as an int field: ``with_={"step_count": count_of("steps")}``."""
    return _CountOf(relation_name, None if where is None else as_condition(where))


# -- relation filters: some / none / every ------------------------------------------------


class _RelationFilter(Condition):
    __slots__ = ("mode", "name", "where")

    def __init__(self, name: str, where: Any, mode: str) -> None:
        self.name = name
        self.where = None if where is None else as_condition(where)
        self.mode = mode

    def _key(self, values: list[Any]) -> Hashable:
        return (
            "rel",
            self.mode,
            self.name,
            None if self.where is None else self.where._key(values),
        )

    def _core(self, binder: Binder) -> ColumnElement[bool]:
        source = binder.relation_source()
        if source is None:
            raise CompileError(
                f"{self.mode}({self.name!r}) needs one table to resolve the relation against; "
                "use it in find_many(where=...) or in a select from a single table"
            )
        rel = relation_named(source, self.name)
        if not rel.many:
            raise SchemaError(
                f"{self.mode}({self.name!r}): {source.name}.{self.name} is a single row, not a list; "
                f"filter on it with exists() or a join"
            )
        inner, target = _related_rows(rel, source)
        binder.push_scope([rel.target, *([rel.through] if rel.through is not None else [])])
        cond = None if self.where is None else _adapt(self.where._core(binder), rel.target, target)
        binder.pop_scope()
        if self.mode == "every":
            check = sa.not_(sa.func.coalesce(cond, sa.false())) if cond is not None else sa.false()
            return ~sa.exists(inner.where(check))
        exists = sa.exists(inner if cond is None else inner.where(cond))
        return exists if self.mode == "some" else ~exists


def some(relation_name: str, where: Condition | ColumnElement[bool] | None = None) -> Condition:
    """At least one related row (matching ``where``): ``EXISTS (...)``."""
    return _RelationFilter(relation_name, where, "some")


def none(relation_name: str, where: Condition | ColumnElement[bool] | None = None) -> Condition:
    """No related row (matching ``where``): ``NOT EXISTS (...)``."""
    return _RelationFilter(relation_name, where, "none")


def every(relation_name: str, where: Condition | ColumnElement[bool]) -> Condition:
    """Every related row matches ``where`` (true when there are none): ``NOT EXISTS (... NOT where)``."""
    return _RelationFilter(relation_name, where, "every")


def _related_rows(rel: Relation, parent: Any) -> tuple[Any, Any]:
    """(SELECT 1 FROM target [JOIN through] WHERE <joined to the parent row>, the target's alias).

    The select is correlated to ``parent``; a relation from a table to itself
    gets an alias for the target, so the two sides stay apart.
    """
    target: Any = rel.target
    if rel.target is _base_table(parent):
        target = rel.target.alias(f"qk_{rel.name}")
    source: Any = target
    if rel.through is not None:
        on = sa.and_(*(t == _ref_column(target, g) for t, g in rel.through_pairs))
        source = rel.through.join(target, on)
        cond = sa.and_(*(right == parent.c[left.key] for left, right in rel.pairs))
    else:
        cond = sa.and_(
            *(_ref_column(target, right) == parent.c[left.key] for left, right in rel.pairs)
        )
    stmt: Any = sa.select(sa.literal_column("1")).select_from(source).where(cond)
    return stmt.correlate(parent), target


def _base_table(ref: Any) -> Any:
    return getattr(ref, "element", ref) if isinstance(ref, sa.Alias) else ref


def _ref_column(ref: Any, column: schema.Column[Any]) -> Any:
    return column if ref is column.table else ref.c[column.key]


def _adapt(expr: Any, table: sa.Table, ref: Any) -> Any:
    """``expr`` with ``table``'s columns read from ``ref`` (an alias of it), if it is one."""
    return expr if ref is table else sql_util.ClauseAdapter(ref).traverse(expr)


# -- building the nested query --------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class _Level:
    """One resolved level of a nested query: a table, what to select, and its children."""

    table: sa.Table
    name: str  # relation name ("" for the root)
    relation: Relation | None
    columns: tuple[schema.Column[Any], ...]
    where: Condition | None
    order_by: tuple[Order, ...]
    limit: int | None
    offset: int | None
    children: tuple[_Level, ...]
    counts: tuple[tuple[str, Relation, Condition | None], ...]
    fields: tuple[str, ...]
    """The result keys in order: columns, then relations and counts as given."""


def _resolve_columns(
    table: sa.Table, columns: Sequence[Any] | None, where: str
) -> tuple[schema.Column[Any], ...]:
    if columns is None:
        return tuple(table.columns)
    out = []
    for c in columns:
        if isinstance(c, str):
            if c not in table.c:
                raise SchemaError(
                    f"{where}: {table.name} has no column {c!r}; valid: {', '.join(table.c.keys())}",
                    column=f"{table.name}.{c}",
                )
            out.append(table.c[c])
        elif isinstance(c, schema.Column) and c.table is table:
            out.append(c)
        else:
            raise SchemaError(
                f"{where}: {column_label(c)} is not a column of {table.name}",
                column=column_label(c),
            )
    if not out:
        raise SchemaError(f"{where}: columns=[] selects nothing; leave it out to select all")
    return tuple(out)


def _resolve_order(table: sa.Table, items: Iterable[Any], where: str) -> tuple[Order, ...]:
    out: list[Order] = []
    for item in items:
        if isinstance(item, str):
            out.append(resolve_order_string(item, [table], {}))
        else:
            out.append(order_item(item))
    for o in out:
        if isinstance(o.expr, schema.Column) and o.expr.table is not table:
            raise SchemaError(
                f"{where}: order_by {column_label(o.expr)} is not a column of {table.name}",
                column=column_label(o.expr),
            )
    return tuple(out)


def _resolve(
    table: sa.Table,
    spec: Include,
    name: str,
    rel: Relation | None,
    path: str,
) -> _Level:
    columns = _resolve_columns(table, spec.columns, path)
    children: list[_Level] = []
    counts: list[tuple[str, Relation, Condition | None]] = []
    fields = [c.key for c in columns]
    for key, sub in spec.with_.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise SchemaError(f"{path}: with_ key {key!r} is not a valid name")
        if key in fields:
            raise SchemaError(f"{path}: with_ key {key!r} clashes with a column of {table.name}")
        if isinstance(sub, _CountOf):
            counts.append((key, relation_named(table, sub.relation), sub.where))
        elif isinstance(sub, Include):
            child_rel = relation_named(table, key)
            if child_rel.self_referencing:
                if sub.depth is None:
                    raise SchemaError(
                        f"{path}.{key} refers back to {table.name}; give include(depth=N) "
                        "to say how many levels to follow",
                        column=key,
                    )
                children.append(_resolve_self(child_rel, sub, key, f"{path}.{key}", sub.depth))
            else:
                children.append(_resolve(child_rel.target, sub, key, child_rel, f"{path}.{key}"))
        else:
            raise CompileError(f"{path}: with_[{key!r}] must be include(...) or count_of(...)")
        fields.append(key)
    return _Level(
        table=table,
        name=name,
        relation=rel,
        columns=columns,
        where=spec.where,
        order_by=_resolve_order(table, spec.order_by, path),
        limit=spec.limit,
        offset=spec.offset,
        children=tuple(children),
        counts=tuple(counts),
        fields=tuple(fields),
    )


def _resolve_self(rel: Relation, spec: Include, key: str, path: str, depth: int) -> _Level:
    nested = dict(spec.with_)
    if depth > 1:
        nested[key] = dataclasses.replace(spec, depth=depth - 1)
    else:
        nested.pop(key, None)
    return _resolve(rel.target, dataclasses.replace(spec, with_=nested, depth=None), key, rel, path)


def _level_key(level: _Level, values: list[Any], *, nested: bool = True) -> Hashable:
    """The shape key of a level. The walk order is the build order of ``_parts``:
    order_by, where, limit, offset, counts, then children."""
    key: list[Hashable] = [level.table, level.name, level.columns, level.fields]
    key.append(tuple(o._key(values) for o in level.order_by))
    key.append(None if level.where is None else level.where._key(values))
    for n in (level.limit, level.offset):
        if n is None:
            key.append(None)
        else:
            values.append(n)
            key.append("n")
    key.append(
        tuple(
            (name, rel.name, None if w is None else w._key(values)) for name, rel, w in level.counts
        )
    )
    if nested:
        key.append(tuple(_level_key(child, values) for child in level.children))
    return tuple(key)


class NestedQuery(Query[T], Generic[T]):
    """A nested, relational query. Rows come back as ``T`` (dicts, or the ``as_`` class)."""

    plain_read = True

    __slots__ = ("_as", "_first", "_root", "_strategy")
    _root: _Level
    _strategy: Strategy
    _as: Any
    _first: bool

    def __init__(self, root: _Level, strategy: Strategy, as_: Any, first: bool) -> None:
        if strategy not in ("json", "batched"):
            raise CompileError(f"strategy must be 'json' or 'batched', got {strategy!r}")
        self._root = root
        self._strategy = strategy
        self._as = as_
        self._first = first
        if as_ is not None:
            _check_mapping(as_, root)

    @property
    def strategy(self) -> Strategy:
        """How the levels are loaded: ``json`` (one statement) or ``batched``."""
        return self._strategy

    def using(self, strategy: Strategy) -> NestedQuery[T]:
        """The same query with the other loading strategy."""
        return NestedQuery(self._root, strategy, self._as, self._first)

    # -- compilation: the root statement (json: everything; batched: level 0) -------------

    def _key(self, values: list[Any]) -> Hashable:
        nested = self._strategy == "json"
        return (
            self._strategy,
            _key_columns(self._root),
            _level_key(self._root, values, nested=nested),
        )

    def _core(self, binder: Binder) -> Any:
        if self._strategy == "json":
            return _json_statement(self._root, binder)
        return _level_select(self._root, binder, keys=_key_columns(self._root))

    def to_sql(self) -> CompiledSQL:
        """The statement (json), or the first of the per-level statements (batched)."""
        return render(self)

    def statements(self) -> list[CompiledSQL]:
        """Every statement this query sends, in order; batched children bind the parents' keys."""
        compiled = self.to_sql()
        if self._strategy == "json":
            return [compiled]
        return [compiled] + [
            render(_ChildQuery(child, parent, ())) for child, parent in batched_levels(self._root)
        ]

    # -- turning rows into results ----------------------------------------------------------

    def materialize(self, rows: Sequence[Sequence[Any]]) -> list[T]:
        """Results from the root statement's decoded rows (json strategy)."""
        decode = _json_row_decoder(self._root)
        return self._finish([decode(row) for row in rows])

    def _finish(self, results: list[dict[str, Any]]) -> list[T]:
        if self._as is None:
            return results  # type: ignore[return-value]
        build = _builder_for(self._as, self._root)
        return [build(r) for r in results]

    @property
    def first_only(self) -> bool:
        """True for ``find_first``: one row or None instead of a list."""
        return self._first

    @property
    def row_class(self) -> Any:
        """The ``as_=`` class given to find_many()/find_first(), or None for dicts."""
        return self._as


@overload
def find_many(
    table: sa.Table,
    *,
    where: Condition | ColumnElement[bool] | None = ...,
    columns: Sequence[Any] | None = ...,
    with_: Mapping[str, Include | _CountOf] | None = ...,
    order_by: Sequence[Any] | Any = ...,
    limit: int | None = ...,
    offset: int | None = ...,
    strategy: Strategy = ...,
    as_: None = ...,
) -> NestedQuery[dict[str, Any]]: ...
@overload
def find_many(
    table: sa.Table,
    *,
    where: Condition | ColumnElement[bool] | None = ...,
    columns: Sequence[Any] | None = ...,
    with_: Mapping[str, Include | _CountOf] | None = ...,
    order_by: Sequence[Any] | Any = ...,
    limit: int | None = ...,
    offset: int | None = ...,
    strategy: Strategy = ...,
    as_: type[T],
) -> NestedQuery[T]: ...
def find_many(
    table: sa.Table,
    *,
    where: Condition | ColumnElement[bool] | None = None,
    columns: Sequence[Any] | None = None,
    with_: Mapping[str, Include | _CountOf] | None = None,
    order_by: Sequence[Any] | Any = (),
    limit: int | None = None,
    offset: int | None = None,
    strategy: Strategy = "json",
    as_: type[Any] | None = None,
) -> NestedQuery[Any]:
    """Rows of ``table`` with their related rows nested, in one round trip by default.

    find_many(pipeline_run,
              where=eq(pipeline_run.c.status, Status.FAILED),
              with_={"steps": include(order_by=["created_at"])})
    """
    spec = include(
        columns=columns, where=where, order_by=order_by, limit=limit, offset=offset, with_=with_
    )
    root = _resolve(table, spec, "", None, table.name)
    return NestedQuery(root, strategy, as_, first=False)


@overload
def find_first(
    table: sa.Table,
    *,
    where: Condition | ColumnElement[bool] | None = ...,
    columns: Sequence[Any] | None = ...,
    with_: Mapping[str, Include | _CountOf] | None = ...,
    order_by: Sequence[Any] | Any = ...,
    offset: int | None = ...,
    strategy: Strategy = ...,
    as_: None = ...,
) -> NestedQuery[dict[str, Any]]: ...
@overload
def find_first(
    table: sa.Table,
    *,
    where: Condition | ColumnElement[bool] | None = ...,
    columns: Sequence[Any] | None = ...,
    with_: Mapping[str, Include | _CountOf] | None = ...,
    order_by: Sequence[Any] | Any = ...,
    offset: int | None = ...,
    strategy: Strategy = ...,
    as_: type[T],
) -> NestedQuery[T]: ...
def find_first(
    table: sa.Table,
    *,
    where: Condition | ColumnElement[bool] | None = None,
    columns: Sequence[Any] | None = None,
    with_: Mapping[str, Include | _CountOf] | None = None,
    order_by: Sequence[Any] | Any = (),
    offset: int | None = None,
    strategy: Strategy = "json",
    as_: type[Any] | None = None,
) -> NestedQuery[Any]:
    """Like :func:`find_many` with ``limit=1``; ``db.first(q)`` gives the row or None."""
    spec = include(
        columns=columns, where=where, order_by=order_by, limit=1, offset=offset, with_=with_
    )
    root = _resolve(table, spec, "", None, table.name)
    return NestedQuery(root, strategy, as_, first=True)


# -- the json strategy ------------------------------------------------------------------------

_ORD = "qk_ord"


def _key_columns(level: _Level) -> tuple[schema.Column[Any], ...]:
    """Columns a level must fetch (beyond those asked for) so children can be joined to it."""
    needed: list[schema.Column[Any]] = []
    for child in level.children:
        rel = child.relation
        assert rel is not None
        for left, _ in rel.pairs:
            if left not in needed:
                needed.append(left)
    return tuple(c for c in needed if c not in level.columns)


@dataclasses.dataclass
class _Parts:
    """A level's clauses as Core, built in the canonical order (see ``_level_key``)."""

    order: list[Any]
    where: list[Any]
    limit: Any
    offset: Any
    counts: list[Any]


def _parts(level: _Level, binder: Binder, table_ref: Any) -> _Parts:
    """``table_ref`` is the level's table, or the alias it is read through."""
    binder.push_scope([level.table])
    order = [_adapt(o._core(binder), level.table, table_ref) for o in level.order_by]
    where: list[Any] = []
    if level.where is not None:
        binder.push_relation_source(level.table)
        where.append(_adapt(level.where._core(binder), level.table, table_ref))
        binder.pop_relation_source()
    binder.pop_scope()
    limit = None if level.limit is None else binder.bind(sa.Integer(), "limit")
    offset = None if level.offset is None else binder.bind(sa.Integer(), "offset")
    counts = [
        _count_expr(rel, cond, table_ref, binder).label(name) for name, rel, cond in level.counts
    ]
    return _Parts(order, where, limit, offset, counts)


def _apply(stmt: Any, parts: _Parts) -> Any:
    if parts.where:
        stmt = stmt.where(*parts.where)
    if parts.order:
        stmt = stmt.order_by(*parts.order)
    if parts.limit is not None:
        stmt = stmt.limit(parts.limit)
    if parts.offset is not None:
        stmt = stmt.offset(parts.offset)
    return stmt


def _count_expr(rel: Relation, where: Condition | None, parent: Any, binder: Binder) -> Any:
    inner, target = _related_rows(rel, parent)
    inner = inner.with_only_columns(sa.func.count())
    if where is not None:
        binder.push_scope([rel.target])
        inner = inner.where(_adapt(where._core(binder), rel.target, target))
        binder.pop_scope()
    return inner.scalar_subquery()


def _join_to_parent(level: _Level, stmt: Any, parent: Any, ref: Any) -> Any:
    rel = level.relation
    assert rel is not None
    if rel.through is None:
        stmt = stmt.select_from(ref)
        cond = [_ref_column(ref, right) == parent.c[left.key] for left, right in rel.pairs]
    else:
        on = sa.and_(*(t == _ref_column(ref, g) for t, g in rel.through_pairs))
        stmt = stmt.select_from(rel.through.join(ref, on))
        cond = [right == parent.c[left.key] for left, right in rel.pairs]
    return stmt.where(*cond)


def _json_statement(root: _Level, binder: Binder) -> Any:
    table = root.table
    parts = _parts(root, binder, table)
    nested = [
        _json_children(child, table, binder, {table}, as_text=True).label(child.name)
        for child in root.children
    ]
    stmt = sa.select(*root.columns, *parts.counts, *nested)
    return _apply(stmt.select_from(table), parts)


def _json_children(
    level: _Level, parent: Any, binder: Binder, ancestors: set[Any], *, as_text: bool = False
) -> Any:
    """A correlated scalar subquery: the level's rows as JSON, in order, limited per parent.

    The outermost level travels as text, parsed once by querykit; deeper levels
    are JSON inside it. A table already read further up is read through an alias.
    """
    rel = level.relation
    assert rel is not None
    ref: Any = (
        level.table.alias(f"qk_{level.name}_src") if level.table in ancestors else level.table
    )
    parts = _parts(level, binder, ref)
    ordinal = sa.func.row_number().over(order_by=parts.order or None).label(_ORD)
    columns = [_ref_column(ref, c) for c in (*level.columns, *_key_columns(level))]
    inner = sa.select(*columns, *parts.counts, ordinal)
    inner = _apply(_join_to_parent(level, inner, parent, ref), parts)
    sub = inner.correlate(parent).subquery(f"qk_{level.name}")
    items: list[Any] = [codecs.json_expr(sub.c[c.key], c.type) for c in level.columns]
    items += [sub.c[name] for name, _, _ in level.counts]
    items += [
        _json_children(child, sub, binder, ancestors | {level.table}) for child in level.children
    ]
    row = sa.func.json_build_array(*items)
    value: Any = row
    if rel.many:
        agg = sa.func.json_agg(postgresql.aggregate_order_by(row, sub.c[_ORD]))
        value = sa.func.coalesce(agg, sa.literal_column("'[]'::json"))
    if as_text:
        value = sa.cast(value, sa.Text)
    return sa.select(value.label(level.name)).select_from(sub).scalar_subquery()


def _decode_fields(
    label: str, level: _Level, decoders: Sequence[tuple[str, Any]], out: dict[str, Any]
) -> None:
    """Apply each column's decoder in place; a value that does not decode names its column."""
    for name, decode in decoders:
        value = out[name]
        if value is not None:
            try:
                out[name] = decode(value)
            except (ValueError, TypeError, KeyError, OverflowError) as exc:
                raise MappingError(f"{label}.{name}: cannot decode value {value!r}: {exc}") from exc


def _field_getter(level: _Level, offset: int = 0) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Picks a row's values in ``level.fields`` order from [columns, counts, children] order."""
    order = _json_order(level)
    positions = [offset + order.index(name) for name in level.fields]
    if len(positions) == 1:
        only = positions[0]
        return lambda row: (row[only],)
    return operator.itemgetter(*positions)


def _json_order(level: _Level) -> list[str]:
    """The order of a level's values in its rows and JSON items: columns, counts, children."""
    return (
        [c.key for c in level.columns]
        + [name for name, _, _ in level.counts]
        + [child.name for child in level.children]
    )


def _in_order(level: _Level) -> bool:
    """Whether a JSON item's values come in ``level.fields`` order."""
    return _json_order(level) == list(level.fields)


def _json_row_decoder(root: _Level) -> Callable[[Sequence[Any]], dict[str, Any]]:
    fields, pick = root.fields, _field_getter(root)
    children = [(child.name, _json_level_decoder(child)) for child in root.children]

    def decode(row: Sequence[Any]) -> dict[str, Any]:
        out = dict(zip(fields, pick(row), strict=True))
        for name, decode_child in children:
            text = out[name]
            out[name] = decode_child(None if text is None else json.loads(text))
        return out

    return decode


def _json_level_decoder(level: _Level) -> Callable[[Any], Any]:
    fields, pick = level.fields, _field_getter(level)
    label = level.table.name
    decoders = [
        (c.key, d)
        for c in level.columns
        if (d := codecs.json_decoder_for(c.type, f"{label}.{c.name}")) is not None
    ]
    children = [(child.name, _json_level_decoder(child)) for child in level.children]

    def one(item: list[Any]) -> dict[str, Any]:
        out = dict(zip(fields, pick(item), strict=True))
        _decode_fields(label, level, decoders, out)
        for name, decode_child in children:
            out[name] = decode_child(out[name])
        return out

    if not children and _in_order(level):
        # The usual leaf (columns only, in order): one call per related row, no picking,
        # the decoders inline; a value that does not decode goes through _decode_fields
        # again, which names its column.

        def one(item: list[Any]) -> dict[str, Any]:
            out = dict(zip(fields, item, strict=True))
            try:
                for name, decode in decoders:
                    value = out[name]
                    if value is not None:
                        out[name] = decode(value)
            except (ValueError, TypeError, KeyError, OverflowError):
                _decode_fields(label, level, decoders, dict(zip(fields, item, strict=True)))
                raise
            return out

    assert level.relation is not None
    if level.relation.many:
        return lambda items: [] if items is None else [one(x) for x in items]
    return lambda item: None if item is None else one(item)


# -- the batched strategy ------------------------------------------------------------------------


def _level_select(level: _Level, binder: Binder, keys: Sequence[Any]) -> Any:
    parts = _parts(level, binder, level.table)
    stmt = sa.select(*level.columns, *keys, *parts.counts).select_from(level.table)
    return _apply(stmt, parts)


class _ChildQuery(Query[Any]):
    """One batched level: the children of many parents, by the parents' join keys."""

    plain_read = True

    __slots__ = ("_level", "_parent", "_parent_keys")
    _level: _Level
    _parent: _Level
    _parent_keys: tuple[Any, ...]

    def __init__(self, level: _Level, parent: _Level, parent_keys: Sequence[Any]) -> None:
        self._level = level
        self._parent = parent
        self._parent_keys = tuple(parent_keys)

    def _key(self, values: list[Any]) -> Hashable:
        values.append(list(self._parent_keys))
        return (
            "child",
            _level_key(dataclasses.replace(self._level, children=()), values),
            _key_columns(self._level),
        )

    def _core(self, binder: Binder) -> Any:
        level, rel = self._level, self._level.relation
        assert rel is not None
        if len(rel.pairs) != 1:
            raise CompileError(
                f"the batched strategy joins on one column; {rel.source.name}.{rel.name} uses "
                f"{len(rel.pairs)}: use strategy='json'"
            )
        left, right = rel.pairs[0]
        # cast: psycopg sends a list of str untyped, and unnest() must know the element type
        keys_param = sa.cast(
            binder.bind(sa.ARRAY(left.type), f"{rel.source.name}.{left.name}"), sa.ARRAY(left.type)
        )
        parts = _parts(level, binder, level.table)
        columns = [right.label("qk_parent"), *level.columns, *_key_columns(level), *parts.counts]
        if level.limit is None and level.offset is None:
            stmt = _join_to_parent_keys(level, sa.select(*columns), right == sa.any_(keys_param))
            return _apply(stmt, parts)
        # a per-parent limit: one LATERAL subquery per parent key (it can use the FK index)
        parents = sa.func.unnest(keys_param).table_valued("key").render_derived(name="qk_parents")
        inner = _join_to_parent_keys(level, sa.select(*columns), right == parents.c.key)
        lateral = _apply(inner, parts).lateral("qk_children")
        return sa.select(*lateral.c).select_from(parents).join(lateral, sa.true())


def _join_to_parent_keys(level: _Level, stmt: Any, condition: Any) -> Any:
    rel = level.relation
    assert rel is not None
    if rel.through is None:
        source: Any = level.table
    else:
        source = rel.through.join(level.table, sa.and_(*(t == g for t, g in rel.through_pairs)))
    return stmt.select_from(source).where(condition)


def _walk_children(level: _Level) -> Iterable[tuple[_Level, _Level]]:
    for child in level.children:
        yield child, level
        yield from _walk_children(child)


def batched_levels(root: _Level) -> list[tuple[_Level, _Level]]:
    """(child, parent) pairs in the order the batched strategy fetches them: by depth."""
    out: list[tuple[_Level, _Level]] = []
    frontier = [root]
    while frontier:
        nxt = []
        for parent in frontier:
            for child in parent.children:
                out.append((child, parent))
                nxt.append(child)
        frontier = nxt
    return out


class _Layout:
    """Where things sit in one batched level's rows: [parent link?, columns, keys, counts]."""

    def __init__(self, level: _Level, *, linked: bool) -> None:
        base = 1 if linked else 0
        columns = list(level.columns)
        keys = list(_key_columns(level))
        self.level = level
        self.names = [c.key for c in columns] + [name for name, _, _ in level.counts]
        count_base = base + len(columns) + len(keys)
        positions = [base + i for i in range(len(columns))]
        positions += [count_base + i for i in range(len(level.counts))]
        self.pick = operator.itemgetter(*positions) if len(positions) > 1 else None
        self.positions = positions
        self.children = [
            (child.name, child.relation.many if child.relation else False)
            for child in level.children
        ]
        lookup = {c: base + i for i, c in enumerate(columns + keys)}
        self.reorder = self.names + [name for name, _ in self.children] != list(level.fields)
        self.link_position = {
            child.name: lookup[child.relation.pairs[0][0]]
            for child in level.children
            if child.relation is not None
        }

    def row(self, values: Sequence[Any]) -> dict[str, Any]:
        picked = self.pick(values) if self.pick is not None else (values[self.positions[0]],)
        out = dict(zip(self.names, picked, strict=True))
        for name, many in self.children:
            out[name] = [] if many else None
        if self.reorder:  # counts and relations interleave in with_: keep the declared order
            out = {name: out[name] for name in self.level.fields}
        return out

    def rows(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """:meth:`row` of each row; a level without relations below takes a quicker path."""
        if self.children or self.reorder or self.pick is None:
            return [self.row(values) for values in rows]
        names, pick = self.names, self.pick
        return [dict(zip(names, pick(values), strict=True)) for values in rows]


class BatchedLoader:
    """Stitches the batched strategy's per-level results; the executor feeds it rows.

    Protocol: ``start(root rows)``; then while ``pending()`` gives child queries,
    run them (together, in a pipeline) and hand each one's rows to ``feed``. Rows
    arrive decoded, as the executor returns them.
    """

    def __init__(self, query: NestedQuery[Any]) -> None:
        self.query = query
        self.root = query._root
        self.results: list[dict[str, Any]] = []
        # per level: its result dicts, and each row's raw values (for the links to children)
        self._rows: dict[int, list[tuple[dict[str, Any], Sequence[Any]]]] = {}
        self._frontier: list[_Level] = []

    def start(self, rows: Sequence[Sequence[Any]]) -> None:
        self.results = _Layout(self.root, linked=False).rows(rows)
        self._rows[id(self.root)] = list(zip(self.results, rows, strict=True))
        self._frontier = [self.root]

    def pending(self) -> list[_ChildQuery]:
        queries = []
        for parent in self._frontier:
            layout = _Layout(parent, linked=parent is not self.root)
            made = self._rows.get(id(parent), [])
            for child in parent.children:
                position = layout.link_position[child.name]
                keys = list(
                    dict.fromkeys(raw[position] for _, raw in made if raw[position] is not None)
                )
                queries.append(_ChildQuery(child, parent, keys))
        self._frontier = []
        return queries

    def feed(self, query: _ChildQuery, rows: Sequence[Sequence[Any]]) -> None:
        child, parent = query._level, query._parent
        rel = child.relation
        assert rel is not None
        items = _Layout(child, linked=True).rows(rows)
        grouped: dict[Any, list[dict[str, Any]]] = {}
        for item, raw in zip(items, rows, strict=True):
            bucket = grouped.get(raw[0])
            if bucket is None:
                grouped[raw[0]] = [item]
            else:
                bucket.append(item)
        parent_layout = _Layout(parent, linked=parent is not self.root)
        position = parent_layout.link_position[child.name]
        for item, raw in self._rows.get(id(parent), []):
            found = grouped.get(raw[position], [])
            item[child.name] = found if rel.many else (found[0] if found else None)
        if child.children:  # the raw values are kept for the links to the next level
            self._rows[id(child)] = list(zip(items, rows, strict=True))
            self._frontier.append(child)

    def finish(self) -> list[Any]:
        return self.query._finish(self.results)


# -- as_= result classes ------------------------------------------------------------------------


def _fields_of(cls: Any) -> list[str] | None:
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    if isinstance(cls, type) and issubclass(cls, dict) and hasattr(cls, "__annotations__"):
        return list(typing.get_type_hints(cls))
    return None


def _check_mapping(cls: Any, level: _Level) -> None:
    fields = _fields_of(cls)
    if fields is None:
        raise MappingError(f"as_={cls!r}: use a dataclass or a TypedDict for nested results")
    missing = [f for f in level.fields if f not in fields]
    extra = [f for f in fields if f not in level.fields]
    if missing or extra:
        raise MappingError(
            f"as_={cls.__name__} does not match {level.table.name}'s selected fields: "
            + "; ".join(
                p
                for p in (
                    f"no field for {', '.join(missing)}" if missing else "",
                    f"nothing selected for {', '.join(extra)}" if extra else "",
                )
                if p
            )
        )
    # -- field types against the level's columns: see querykit.rowtype --
    types = [python_type_of(c.type) for c in level.columns]
    check_row_class(cls, level.fields[: len(types)], types)
    hints = typing.get_type_hints(cls)
    for child in level.children:
        child_cls = _element_class(hints.get(child.name))
        if child_cls is not None:
            _check_mapping(child_cls, child)


def _element_class(hint: Any) -> Any:
    """``StepRow`` from ``list[StepRow]``, ``StepRow | None`` or ``StepRow``."""
    if hint is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (list, Sequence, typing.Union) or str(origin) == "<class 'types.UnionType'>":
        for arg in typing.get_args(hint):
            found = _element_class(arg)
            if found is not None:
                return found
        return None
    return hint if _fields_of(hint) is not None else None


def _builder_for(cls: Any, level: _Level) -> Callable[[dict[str, Any]], Any]:
    hints = typing.get_type_hints(cls)
    child_builders = {}
    for child in level.children:
        child_cls = _element_class(hints.get(child.name))
        if child_cls is not None:
            child_builders[child.name] = (
                _builder_for(child_cls, child),
                child.relation.many if child.relation else False,
            )
    is_dc = dataclasses.is_dataclass(cls)

    def build(row: dict[str, Any]) -> Any:
        for name, (sub, many) in child_builders.items():
            value = row.get(name)
            if many:
                row[name] = [sub(v) for v in value or []]
            elif value is not None:
                row[name] = sub(value)
        return cls(**row) if is_dc else row

    return build


# -- running it: the conversation; querykit.loading_async does the talking ------------------


def load_steps(query: NestedQuery[T]) -> Generator[list[Query[Any]], list[Sequence[Any]], list[T]]:
    """The loading conversation without I/O: yields queries to run, receives their rows.

    The runners in :mod:`querykit.loading_async` (and the sync
    :mod:`querykit.execute.loading` generated from it) only do the talking, so both
    strategies live here once.
    """
    (rows,) = yield [_Statement(query)]
    if query.strategy == "json":
        return query.materialize(rows)
    loader = BatchedLoader(query)
    loader.start(rows)
    while pending := loader.pending():
        results = yield list(pending)
        for child, child_rows in zip(pending, results, strict=True):
            loader.feed(child, child_rows)
    return loader.finish()


class _Statement(Query[Any]):
    """A nested query's own (first) statement, as a plain query the executor can run."""

    plain_read = True

    __slots__ = ("_nested",)
    _nested: NestedQuery[Any]

    def __init__(self, nested: NestedQuery[Any]) -> None:
        self._nested = nested

    def _key(self, values: list[Any]) -> Hashable:
        return self._nested._key(values)

    def _core(self, binder: Binder) -> Any:
        return self._nested._core(binder)
