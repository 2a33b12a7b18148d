"""The relation graph: named paths between Core tables, from foreign keys and declarations.

Every ForeignKey gives two relations, named by this rule:

- on the referencing table, a *many-to-one* named after the foreign-key column without
  its ``_id`` suffix (``pipeline_step.run_id`` → ``run``), or after the referenced table
  when the column has no such suffix;
- on the referenced table, a *one-to-many* named after the referencing table, minus the
  leading words it shares with the referenced table, made plural (``pipeline_step``
  under ``pipeline_run`` → ``steps``; ``category`` → ``categories``, ``box`` → ``boxes``);
  a name that already ends in ``s`` (``orders``) is kept as it is; a table that references
  itself gets ``children``. When two foreign keys of one table point at the same table,
  the one-to-many names end in ``_by_<column>`` (``posts_by_author``, ``posts_by_editor``).

:func:`relation` and :func:`many_to_many` declare the rest in the schema module (they are
kept in ``Table.info``) and override automatic names. The nested-query builders
(:mod:`querykit.build.nested`) and the Studio read the graph through :func:`relations_of`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import schema

from ..errors import SchemaError
from .naming import column_label

__all__ = ["Relation", "many_to_many", "relation", "relation_named", "relations_of"]

_INFO_KEY = "querykit.relations"


# -- the relation graph -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Relation:
    """A named path from ``source`` rows to ``target`` rows."""

    name: str
    source: sa.Table
    target: sa.Table
    many: bool
    pairs: tuple[tuple[schema.Column[Any], schema.Column[Any]], ...]
    """(source column, column it equals) — on ``through`` for many-to-many, else on ``target``."""
    through: sa.Table | None = None
    through_pairs: tuple[tuple[schema.Column[Any], schema.Column[Any]], ...] = ()
    """(through column, target column) for many-to-many."""

    @property
    def self_referencing(self) -> bool:
        """Whether the relation joins a table to itself (a tree: parent, children)."""
        return self.source is self.target

    def __repr__(self) -> str:
        kind = "many" if self.many else "one"
        return f"<Relation {self.source.name}.{self.name} -> {kind} {self.target.name}>"


def relation(
    source: sa.Table,
    name: str,
    target: sa.Table,
    *,
    on: Sequence[tuple[schema.Column[Any], schema.Column[Any]]],
    many: bool,
) -> Relation:
    """Declare a relation the foreign keys do not give (or rename one): kept in ``source.info``.

    ``on`` pairs a source column with the target column it equals.
    """
    for left, right in on:
        if left.table is not source or right.table is not target:
            raise SchemaError(
                f"relation {source.name}.{name}: {column_label(left)} = {column_label(right)} "
                f"must pair a {source.name} column with a {target.name} column"
            )
    rel = Relation(name, source, target, many, tuple(on))
    _declared(source)[name] = rel
    return rel


def many_to_many(source: sa.Table, name: str, target: sa.Table, *, through: sa.Table) -> Relation:
    """Declare ``source`` ⇄ ``target`` through a join table, using the join table's foreign keys."""
    to_source = [fk for fk in through.foreign_keys if fk.column.table is source]
    to_target = [fk for fk in through.foreign_keys if fk.column.table is target]
    if not to_source or not to_target or (source is target and len(to_source) < 2):
        raise SchemaError(
            f"many_to_many {source.name}.{name}: {through.name} needs foreign keys to both "
            f"{source.name} and {target.name}"
        )
    pairs: tuple[tuple[schema.Column[Any], schema.Column[Any]], ...]
    through_pairs: tuple[tuple[schema.Column[Any], schema.Column[Any]], ...]
    if source is target:
        src_fk, tgt_fk = to_source[0], to_source[1]
        pairs = ((src_fk.column, src_fk.parent),)
        through_pairs = ((tgt_fk.parent, tgt_fk.column),)
    else:
        pairs = tuple((fk.column, fk.parent) for fk in to_source)
        through_pairs = tuple((fk.parent, fk.column) for fk in to_target)
    rel = Relation(name, source, target, True, pairs, through, through_pairs)
    _declared(source)[name] = rel
    return rel


def _declared(table: sa.Table) -> dict[str, Relation]:
    """The relations declared on ``table`` itself.

    They live in ``table.info`` with the table they belong to: ``Table.to_metadata()``
    copies ``info`` shallowly, so a copy would otherwise share (and add to) the
    original's relations.
    """
    entry = table.info.get(_INFO_KEY)
    if entry is None or entry[0] is not table:
        entry = table.info[_INFO_KEY] = (table, {})
    declared: dict[str, Relation] = entry[1]
    return declared


def relations_of(table: sa.Table) -> dict[str, Relation]:
    """Every relation of ``table``: from foreign keys (both directions) and declarations.

    The graph is built once per table and kept while its MetaData is unchanged (the
    same tables, foreign keys and declarations); a nested query asks for it at every
    level of every call.
    """
    tables = list(table.metadata.tables.values()) if table.metadata is not None else [table]
    signature = (
        tuple(map(id, tables)),
        sum(len(t.foreign_key_constraints) for t in tables),
        len(_declared(table)),
    )
    cached = table.info.get(_GRAPH_KEY)
    if cached is not None and cached[0] is table and cached[1] == signature:
        return dict(cached[2])
    found = _build_relations(table, tables)
    table.info[_GRAPH_KEY] = (table, signature, found)
    return dict(found)


_GRAPH_KEY = "querykit.relations.graph"


def _build_relations(table: sa.Table, metadata_tables: list[sa.Table]) -> dict[str, Relation]:
    found: dict[str, Relation] = {}
    # many-to-one: this table's own foreign keys
    for fkc in sorted(table.foreign_key_constraints, key=_fk_sort_key):
        target = fkc.referred_table
        name = _many_to_one_name(fkc)
        pairs = tuple((fk.parent, fk.column) for fk in fkc.elements)
        found.setdefault(name, Relation(name, table, target, False, pairs))
    # one-to-many: foreign keys of other tables (or this one) that point here
    for other in sorted(metadata_tables, key=lambda t: t.fullname):
        referring = [fkc for fkc in other.foreign_key_constraints if fkc.referred_table is table]
        for fkc in sorted(referring, key=_fk_sort_key):
            name = _one_to_many_name(table, other, fkc, ambiguous=len(referring) > 1)
            pairs = tuple((fk.column, fk.parent) for fk in fkc.elements)
            found.setdefault(name, Relation(name, table, other, True, pairs))
    found.update(_declared(table))
    return found


def _fk_sort_key(fkc: sa.ForeignKeyConstraint) -> tuple[str, ...]:
    return tuple(c.name for c in fkc.columns)


def _many_to_one_name(fkc: sa.ForeignKeyConstraint) -> str:
    columns = list(fkc.columns)
    if len(columns) == 1 and columns[0].name.endswith("_id") and len(columns[0].name) > 3:
        return columns[0].name[:-3]
    return fkc.referred_table.name


def _one_to_many_name(
    parent: sa.Table, child: sa.Table, fkc: sa.ForeignKeyConstraint, ambiguous: bool
) -> str:
    if child is parent:
        base = "children"
    else:
        parent_words, child_words = parent.name.split("_"), child.name.split("_")
        shared = 0
        while (
            shared < min(len(parent_words), len(child_words)) - 1
            and parent_words[shared] == child_words[shared]
        ):
            shared += 1
        base = _plural("_".join(child_words[shared:]))
    if ambiguous:
        column = next(iter(fkc.columns)).name
        base += "_by_" + (column[:-3] if column.endswith("_id") else column)
    return base


def _plural(word: str) -> str:
    """``step`` → ``steps``; a name that already ends in ``s`` (``orders``) is kept."""
    if word.endswith("s"):
        return word
    if re.search(r"(x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


def relation_named(table: sa.Table, name: str) -> Relation:
    """The relation ``name`` of ``table``; a ``SchemaError`` lists the valid ones."""
    rels = relations_of(table)
    if name not in rels:
        valid = ", ".join(sorted(rels)) or "none (declare one with querykit.relation)"
        raise SchemaError(
            f"{table.name} has no relation {name!r}; its relations: {valid}", column=name
        )
    return rels[name]
