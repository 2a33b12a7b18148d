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

This module is the spec: what to fetch, resolved against the relation graph and
checked when it is built. The SQL of both strategies is the compile layer's
(:mod:`querykit.compile.nested`), which registers itself here (:func:`register_sql`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, Literal

import sqlalchemy as sa
from sqlalchemy.sql import schema
from sqlalchemy.sql import util as sql_util
from sqlalchemy.sql.elements import ColumnElement
from typing_extensions import TypeVar

from ..arguments import count_argument
from ..errors import CompileError, MappingError, SchemaError
from ..schema.naming import column_label
from ..schema.relations import Relation, relation_named
from .binding import Binder
from .operators import Condition, as_condition
from .query import Order, Query, order_item, resolve_order_string
from .rowclass import element_class, field_hints, require_row_fields
from .rowtype import check_row_class, python_type_of
from .sqltext import CompiledSQL, render

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
R = TypeVar("R", default=dict[str, Any])
"""The row type of ``find_many``/``find_first``: the ``as_=`` class, else dicts."""
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
    if depth is not None:
        count_argument(depth, "include(depth=...)", CompileError, minimum=1)
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
    return None if value is None else count_argument(value, what, CompileError)


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
        inner, target = related_rows(rel, source)
        binder.push_scope([rel.target, *([rel.through] if rel.through is not None else [])])
        cond = (
            None if self.where is None else adapt_to(self.where._core(binder), rel.target, target)
        )
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


def related_rows(rel: Relation, parent: Any) -> tuple[Any, Any]:
    """(SELECT 1 FROM target [JOIN through] WHERE <joined to the parent row>, the target's alias).

    The select is correlated to ``parent``; a relation from a table to itself
    gets an alias for the target, so the two sides stay apart. The relation filters
    use it, and so does ``count_of``'s SQL in :mod:`querykit.compile.nested`.
    """
    target: Any = rel.target
    if rel.target is _base_table(parent):
        target = rel.target.alias(f"qk_{rel.name}")
    source: Any = target
    if rel.through is not None:
        on = sa.and_(*(t == ref_column(target, g) for t, g in rel.through_pairs))
        source = rel.through.join(target, on)
        cond = sa.and_(*(right == parent.c[left.key] for left, right in rel.pairs))
    else:
        cond = sa.and_(
            *(ref_column(target, right) == parent.c[left.key] for left, right in rel.pairs)
        )
    stmt: Any = sa.select(sa.literal_column("1")).select_from(source).where(cond)
    return stmt.correlate(parent), target


def _base_table(ref: Any) -> Any:
    return getattr(ref, "element", ref) if isinstance(ref, sa.Alias) else ref


def ref_column(ref: Any, column: schema.Column[Any]) -> Any:
    """``column`` as read through ``ref``: the column itself, or the alias's copy of it."""
    return column if ref is column.table else ref.c[column.key]


def adapt_to(expr: Any, table: sa.Table, ref: Any) -> Any:
    """``expr`` with ``table``'s columns read from ``ref`` (an alias of it), if it is one."""
    return expr if ref is table else sql_util.ClauseAdapter(ref).traverse(expr)


# -- building the nested query --------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Level:
    """One resolved level of a nested query: a table, what to select, and its children."""

    table: sa.Table
    name: str  # relation name ("" for the root)
    relation: Relation | None
    columns: tuple[schema.Column[Any], ...]
    where: Condition | None
    order_by: tuple[Order, ...]
    limit: int | None
    offset: int | None
    children: tuple[Level, ...]
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
) -> Level:
    columns = _resolve_columns(table, spec.columns, path)
    children: list[Level] = []
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
    return Level(
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


def _resolve_self(rel: Relation, spec: Include, key: str, path: str, depth: int) -> Level:
    nested = dict(spec.with_)
    if depth > 1:
        nested[key] = dataclasses.replace(spec, depth=depth - 1)
    else:
        nested.pop(key, None)
    return _resolve(rel.target, dataclasses.replace(spec, with_=nested, depth=None), key, rel, path)


def level_key(level: Level, values: list[Any], *, nested: bool = True) -> Hashable:
    """The shape key of a level, its values appended in the order the compile layer binds
    them (``querykit.compile.nested._parts``): order_by, where, limit, offset, counts,
    then children."""
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
        key.append(tuple(level_key(child, values) for child in level.children))
    return tuple(key)


def key_columns(level: Level) -> tuple[schema.Column[Any], ...]:
    """Columns a level must fetch (beyond those asked for) so children can be joined to it."""
    needed: list[schema.Column[Any]] = []
    for child in level.children:
        rel = child.relation
        assert rel is not None
        for left, _ in rel.pairs:
            if left not in needed:
                needed.append(left)
    return tuple(c for c in needed if c not in level.columns)


@dataclasses.dataclass(frozen=True)
class NestedSQL:
    """How a nested spec becomes statements: supplied by :mod:`querykit.compile.nested`.

    The spec holds none of the strategies' SQL, and the build layer does not import the
    compiler: as for every builder's ``.to_sql()`` (see :mod:`querykit.build.sqltext`),
    the compile layer registers this when it is imported.
    """

    statement: Callable[[NestedQuery[Any], Binder], Any]
    """The Core statement a nested query sends first: all of it (json), or its top level."""
    level_queries: Callable[[NestedQuery[Any]], list[Query[Any]]]
    """The batched strategy's per-level queries, in fetch order, before any key is known."""


_sql: NestedSQL | None = None


def register_sql(sql: NestedSQL) -> None:
    """Called once by :mod:`querykit.compile.nested`: how nested specs become SQL."""
    global _sql
    _sql = sql


def _nested_sql() -> NestedSQL:
    if _sql is None:
        raise CompileError(
            "the compiler is not loaded: import querykit (or querykit.compile) before "
            "compiling a nested query"
        )
    return _sql


class NestedQuery(Query[T], Generic[T]):
    """A nested, relational query. Rows come back as ``T`` (dicts, or the ``as_`` class)."""

    plain_read = True

    __slots__ = ("_as", "_first", "_root", "_strategy")
    _root: Level
    _strategy: Strategy
    _as: Any
    _first: bool

    def __init__(self, root: Level, strategy: Strategy, as_: Any, first: bool) -> None:
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
            key_columns(self._root),
            level_key(self._root, values, nested=nested),
        )

    def _core(self, binder: Binder) -> Any:
        return _nested_sql().statement(self, binder)

    def to_sql(self) -> CompiledSQL:
        """The statement (json), or the first of the per-level statements (batched)."""
        return render(self)

    def statements(self) -> list[CompiledSQL]:
        """Every statement this query sends, in order; batched children bind the parents' keys."""
        compiled = self.to_sql()
        if self._strategy == "json":
            return [compiled]
        return [compiled] + [render(q) for q in _nested_sql().level_queries(self)]

    @property
    def root(self) -> Level:
        """The top level of the resolved spec: its table, columns and nested levels."""
        return self._root

    @property
    def first_only(self) -> bool:
        """True for ``find_first``: one row or None instead of a list."""
        return self._first

    @property
    def row_class(self) -> Any:
        """The ``as_=`` class given to find_many()/find_first(), or None for dicts."""
        return self._as


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
    as_: type[R] | None = None,
) -> NestedQuery[R]:
    """Rows of ``table`` with their related rows nested, in one round trip by default.

    find_many(pipeline_run,
              where=eq(pipeline_run.c.status, Status.FAILED),
              with_={"steps": include(order_by=["created_at"])})
    """
    spec = include(
        columns=columns, where=where, order_by=order_by, limit=limit, offset=offset, with_=with_
    )
    return NestedQuery(_resolve(table, spec, "", None, table.name), strategy, as_, first=False)


def find_first(
    table: sa.Table,
    *,
    where: Condition | ColumnElement[bool] | None = None,
    columns: Sequence[Any] | None = None,
    with_: Mapping[str, Include | _CountOf] | None = None,
    order_by: Sequence[Any] | Any = (),
    offset: int | None = None,
    strategy: Strategy = "json",
    as_: type[R] | None = None,
) -> NestedQuery[R]:
    """Like :func:`find_many` with ``limit=1``; ``db.first(q)`` gives the row or None."""
    found = find_many(
        table,
        where=where,
        columns=columns,
        with_=with_,
        order_by=order_by,
        limit=1,
        offset=offset,
        strategy=strategy,
    )
    return NestedQuery(found.root, strategy, as_, first=True)


# -- as_= result classes: checked against the levels when the query is built ----------------------


def _check_mapping(cls: Any, level: Level) -> None:
    fields = require_row_fields(cls)
    missing = [f for f in level.fields if f not in fields.names]
    extra = [f for f in fields.required if f not in level.fields]
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
    # -- field types against the level's columns: see querykit.build.rowtype --
    types = [python_type_of(c.type) for c in level.columns]
    check_row_class(cls, level.fields[: len(types)], types)
    hints = field_hints(cls)
    for child in level.children:
        child_cls = element_class(hints.get(child.name))
        if child_cls is not None:
            _check_mapping(child_cls, child)
