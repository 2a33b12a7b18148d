"""The SQL of nested queries: both strategies of ``find_many`` / ``include``.

The build layer resolves a nested spec into :class:`~querykit.build.nested.Level` trees
and validates it; this module turns those levels into SQLAlchemy Core statements, and
registers itself with the spec (:func:`querykit.build.nested.register_sql`) so that a
``NestedQuery`` compiles and shows its SQL (``.to_sql()``, ``.statements()``) without
the build layer importing the compiler.

- ``"json"``: ONE statement; each relation is a correlated subquery aggregating its rows
  with ``json_agg(json_build_array(...))``, in order and limited per parent.
- ``"batched"``: one statement per level; :class:`ChildQuery` fetches the children of
  many parents with ``fk = ANY(%s)`` on the parents' keys (a LATERAL subquery per
  parent key when a level has a limit or an offset).

Values are bound in the order of the spec's key walk (``querykit.build.nested.level_key``):
order_by, where, limit, offset, counts, then children. :func:`_parts` binds them so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from .. import codecs
from ..build.binding import Binder
from ..build.nested import (
    Level,
    NestedQuery,
    NestedSQL,
    adapt_to,
    key_columns,
    level_key,
    ref_column,
    register_sql,
    related_rows,
)
from ..build.operators import Condition
from ..build.query import Query
from ..errors import CompileError
from ..schema.relations import Relation

__all__ = ["ChildQuery", "RootQuery", "batched_levels", "nested_statement", "parent_link"]

_ORD = "qk_ord"


def nested_statement(query: NestedQuery[Any], binder: Binder) -> Any:
    """The Core statement a nested query sends first: all of it (json), or its top level."""
    root = query.root
    if query.strategy == "json":
        return _json_statement(root, binder)
    return _level_select(root, binder, keys=key_columns(root))


class RootQuery(Query[Any]):
    """A nested query's own (first) statement, as a plain query the executor runs.

    Its key is the nested query's; its statement comes from here, so running a nested
    query never goes back up through the spec to find its SQL.
    """

    plain_read = True

    __slots__ = ("nested",)
    nested: NestedQuery[Any]

    def __init__(self, nested: NestedQuery[Any]) -> None:
        self.nested = nested

    def _key(self, values: list[Any]) -> Hashable:
        return self.nested._key(values)

    def _core(self, binder: Binder) -> Any:
        return nested_statement(self.nested, binder)


def level_queries(query: NestedQuery[Any]) -> list[Query[Any]]:
    """The batched strategy's per-level queries, as ``.statements()`` shows them (no keys yet)."""
    return [ChildQuery(child, parent, ()) for child, parent in batched_levels(query.root)]


# -- the clauses of one level, in the key walk's order ------------------------------------------


@dataclasses.dataclass
class _Parts:
    """A level's clauses as Core, built in the canonical order (see ``level_key``)."""

    order: list[Any]
    where: list[Any]
    limit: Any
    offset: Any
    counts: list[Any]


def _parts(level: Level, binder: Binder, table_ref: Any) -> _Parts:
    """``table_ref`` is the level's table, or the alias it is read through."""
    binder.push_scope([level.table])
    order = [adapt_to(o._core(binder), level.table, table_ref) for o in level.order_by]
    where: list[Any] = []
    if level.where is not None:
        binder.push_relation_source(level.table)
        where.append(adapt_to(level.where._core(binder), level.table, table_ref))
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
    inner, target = related_rows(rel, parent)
    inner = inner.with_only_columns(sa.func.count())
    if where is not None:
        binder.push_scope([rel.target])
        inner = inner.where(adapt_to(where._core(binder), rel.target, target))
        binder.pop_scope()
    return inner.scalar_subquery()


# -- the json strategy ------------------------------------------------------------------------


def _join_to_parent(level: Level, stmt: Any, parent: Any, ref: Any) -> Any:
    rel = level.relation
    assert rel is not None
    if rel.through is None:
        stmt = stmt.select_from(ref)
        cond = [ref_column(ref, right) == parent.c[left.key] for left, right in rel.pairs]
    else:
        on = sa.and_(*(t == ref_column(ref, g) for t, g in rel.through_pairs))
        stmt = stmt.select_from(rel.through.join(ref, on))
        cond = [right == parent.c[left.key] for left, right in rel.pairs]
    return stmt.where(*cond)


def _json_statement(root: Level, binder: Binder) -> Any:
    table = root.table
    parts = _parts(root, binder, table)
    nested = [
        _json_children(child, table, binder, {table}, as_text=True).label(child.name)
        for child in root.children
    ]
    stmt = sa.select(*root.columns, *parts.counts, *nested)
    return _apply(stmt.select_from(table), parts)


def _json_children(
    level: Level,
    parent: Any,
    binder: Binder,
    ancestors: set[Any],
    *,
    as_text: bool = False,
    depth: int = 1,
) -> Any:
    """A correlated scalar subquery: the level's rows as JSON, in order, limited per parent.

    The outermost level travels as text, parsed once by querykit; deeper levels
    are JSON inside it. A table already read further up is read through an alias
    (named by its depth below the first level, so a self-reference's levels stay apart).
    A level without a limit or an offset aggregates its rows straight from the
    table, ordered inside ``json_agg``: the server sorts each parent's rows once.
    With one, the rows are limited in a subquery first and numbered there
    (``row_number()``), and ``json_agg`` keeps that order.
    """
    rel = level.relation
    assert rel is not None
    suffix = "" if depth == 1 else str(depth)
    ref: Any = (
        level.table.alias(f"qk_{level.name}_src{suffix}")
        if level.table in ancestors
        else level.table
    )
    parts = _parts(level, binder, ref)
    below = ancestors | {level.table}
    if level.limit is None and level.offset is None:
        items = [codecs.json_expr(ref_column(ref, c), c.type) for c in level.columns]
        items += parts.counts
        items += [
            _json_children(child, ref, binder, below, depth=depth + 1) for child in level.children
        ]
        row = sa.func.json_build_array(*items)
        stmt = _join_to_parent(level, sa.select(), parent, ref).correlate(parent)
        if parts.where:
            stmt = stmt.where(*parts.where)
        if rel.many:
            agg = (
                sa.func.json_agg(postgresql.aggregate_order_by(row, *parts.order))
                if parts.order
                else sa.func.json_agg(row)
            )
            return _json_value(stmt, agg, level.name, many=True, as_text=as_text)
        if parts.order:
            stmt = stmt.order_by(*parts.order)
        return _json_value(stmt, row, level.name, many=False, as_text=as_text)
    ordinal = sa.func.row_number().over(order_by=parts.order or None).label(_ORD)
    columns = [ref_column(ref, c) for c in (*level.columns, *key_columns(level))]
    inner = sa.select(*columns, *parts.counts, ordinal)
    inner = _apply(_join_to_parent(level, inner, parent, ref), parts)
    sub = inner.correlate(parent).subquery(f"qk_{level.name}")
    items = [codecs.json_expr(sub.c[c.key], c.type) for c in level.columns]
    items += [sub.c[name] for name, _, _ in level.counts]
    items += [
        _json_children(child, sub, binder, below, depth=depth + 1) for child in level.children
    ]
    row = sa.func.json_build_array(*items)
    value = sa.func.json_agg(postgresql.aggregate_order_by(row, sub.c[_ORD])) if rel.many else row
    return _json_value(sa.select().select_from(sub), value, level.name, rel.many, as_text)


def _json_value(stmt: Any, value: Any, name: str, many: bool, as_text: bool) -> Any:
    """``stmt`` selecting ``value`` (an empty list for no rows, when many), as a scalar subquery."""
    if many:
        value = sa.func.coalesce(value, sa.literal_column("'[]'::json"))
    if as_text:
        value = sa.cast(value, sa.Text)
    return stmt.add_columns(value.label(name)).scalar_subquery()


# -- the batched strategy ------------------------------------------------------------------------


def _level_select(level: Level, binder: Binder, keys: Sequence[Any]) -> Any:
    parts = _parts(level, binder, level.table)
    stmt = sa.select(*level.columns, *keys, *parts.counts).select_from(level.table)
    return _apply(stmt, parts)


class ChildQuery(Query[Any]):
    """One batched level: the children of many parents, by the parents' join keys."""

    plain_read = True

    __slots__ = ("level", "parent", "parent_keys")
    level: Level
    parent: Level
    parent_keys: tuple[Any, ...]

    def __init__(self, level: Level, parent: Level, parent_keys: Sequence[Any]) -> None:
        self.level = level
        self.parent = parent
        self.parent_keys = tuple(parent_keys)

    def _key(self, values: list[Any]) -> Hashable:
        values.append(list(self.parent_keys))
        return (
            "child",
            level_key(dataclasses.replace(self.level, children=()), values),
            key_columns(self.level),
        )

    def _core(self, binder: Binder) -> Any:
        level, rel = self.level, self.level.relation
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
        columns = [*level.columns, *key_columns(level), *parts.counts]
        if parent_link(level) is None:
            columns.insert(0, right.label("qk_parent"))
        if level.limit is None and level.offset is None:
            stmt = _join_to_parent_keys(level, sa.select(*columns), right == sa.any_(keys_param))
            return _apply(stmt, parts)
        # a per-parent limit: one LATERAL subquery per parent key (it can use the FK index)
        parents = sa.func.unnest(keys_param).table_valued("key").render_derived(name="qk_parents")
        inner = _join_to_parent_keys(level, sa.select(*columns), right == parents.c.key)
        lateral = _apply(inner, parts).lateral("qk_children")
        return sa.select(*lateral.c).select_from(parents).join(lateral, sa.true())


def parent_link(level: Level) -> int | None:
    """Where a batched child level's rows carry their parent's key, if among its own columns.

    When the join column is one the level selects anyway (``pipeline_step.run_id``
    for ``steps``), it is not selected twice: this is its index in the row. Else
    (``None``; a many-to-many's link is the through table's) the rows start with
    the key as an extra ``qk_parent`` column.
    """
    rel = level.relation
    if rel is None or rel.through is not None or len(rel.pairs) != 1:
        return None
    right = rel.pairs[0][1]
    for i, column in enumerate(level.columns):
        if column is right:
            return i
    return None


def _join_to_parent_keys(level: Level, stmt: Any, condition: Any) -> Any:
    rel = level.relation
    assert rel is not None
    if rel.through is None:
        source: Any = level.table
    else:
        source = rel.through.join(level.table, sa.and_(*(t == g for t, g in rel.through_pairs)))
    return stmt.select_from(source).where(condition)


def batched_levels(root: Level) -> list[tuple[Level, Level]]:
    """(child, parent) pairs in the order the batched strategy fetches them: by depth."""
    out: list[tuple[Level, Level]] = []
    frontier = [root]
    while frontier:
        nxt = []
        for parent in frontier:
            for child in parent.children:
                out.append((child, parent))
                nxt.append(child)
        frontier = nxt
    return out


register_sql(NestedSQL(statement=nested_statement, level_queries=level_queries))
