"""Changes → a safe draft migration, split into files the way the lint asks.

The draft takes the shadow database (the migrations) to the desired one
(schema.py) without an unsafe lock and without losing data:

- ``<name>_enums``: ``ALTER TYPE ... ADD VALUE`` (a new label is usable only
  after its transaction commits), new extensions and enum types;
- ``<name>``: tables (SQLAlchemy's ``CreateTable``), columns (SQLAlchemy's
  column specification), defaults, safe type changes, and new foreign keys and
  CHECKs ``NOT VALID``;
- ``<name>_validate``: ``VALIDATE CONSTRAINT`` in a later transaction, and
  ``SET NOT NULL`` proven by a validated CHECK;
- ``<name>_index_<index>``: each ``CREATE INDEX CONCURRENTLY`` in a file of its
  own (a changed index is built under a new name, the old one dropped
  concurrently, and the new one renamed in ``<name>_finish``).

Drops, rewriting type changes and enum label removals are commented out, each
with a warning that says why; a probable rename is a question in a comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.named_types import CreateEnumType
from sqlalchemy.schema import CreateIndex, CreateTable

from ..lint.knowledge import ColumnType
from ..lint.typechange import rewrites
from .compare import Change
from .snapshot import Column, Constraint, Index

__all__ = ["Commented", "Draft", "DraftFile", "build_draft"]

_DIALECT = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


@dataclass
class DraftFile:
    """One migration file of a draft, with the statements it will hold."""

    suffix: str
    """Appended to the draft's name: ``""``, ``"_validate"``, ``"_index_<name>"``..."""
    statements: list[str] = field(default_factory=list)

    @property
    def live(self) -> bool:
        """Whether it holds a statement that is not commented out (the runner refuses empty files)."""
        return any(
            line.strip() and not line.lstrip().startswith("--")
            for statement in self.statements
            for line in statement.splitlines()
        )

    def text(self, header: str) -> str:
        """The file's content: ``header`` then the statements."""
        return header + "\n".join(self.statements).rstrip("\n") + "\n"


@dataclass(frozen=True)
class Commented:
    """A change the draft leaves to a human: the statement is there, commented out."""

    change: Change
    reason: str
    statement: str
    remains: tuple[tuple[str, str, str], ...]
    """The difference keys this leaves behind after the draft is applied."""


@dataclass
class Draft:
    """The files ``migrate diff --write`` would write, and the changes it leaves to a human."""

    files: list[DraftFile]
    commented: list[Commented]

    @property
    def empty(self) -> bool:
        """True when there is nothing to write."""
        return not self.files


def _ident(name: str) -> str:
    """Quoted only where PostgreSQL needs it (SQLAlchemy's preparer knows the reserved words)."""
    quote = _DIALECT.identifier_preparer.quote
    return ".".join(quote(part) for part in name.split("."))


def _literal(value: str) -> str:
    return sql.Literal(value).as_string(None)


def _comment(statement: str, why: str) -> str:
    body = "\n".join(f"-- {line}" for line in statement.splitlines())
    return f"-- WARNING: {why}\n{body}\n"


def _mods(type_: str) -> tuple[int, ...]:
    found = re.search(r"\(([\d,\s]+)\)", type_)
    return tuple(int(x) for x in found.group(1).split(",")) if found else ()


class _Builder:
    def __init__(self, changes: list[Change], metadata: sa.MetaData | None) -> None:
        self.changes = changes
        self.metadata = metadata
        self.enums = DraftFile("_enums")
        self.main = DraftFile("")
        self.validate = DraftFile("_validate")
        self.indexes: list[DraftFile] = []
        self.finish = DraftFile("_finish")
        self.commented: list[Commented] = []
        self.new_tables = {c.name for c in changes if c.kind == "table" and c.action == "added"}
        self.gone_tables = {c.name for c in changes if c.kind == "table" and c.action == "removed"}

    def build(self) -> Draft:
        for change in self.changes:
            if change.table in self.new_tables or change.table in self.gone_tables:
                continue  # the table's own CREATE (or commented DROP) covers it
            handler = getattr(self, f"_{change.kind}_{change.action}")
            handler(change)
        self._renames()
        files = [self.enums, self.main, self.validate, *self.indexes, self.finish]
        return Draft([f for f in files if f.live], self.commented)

    def _leave(self, change: Change, statement: str, why: str, *remains: tuple[str, str, str]) -> None:  # fmt: skip
        self.main.statements.append(_comment(statement, why))
        self.commented.append(Commented(change, why, statement, remains or (change.key,)))

    # -- extensions, enums, sequences ---------------------------------------------------
    def _extension_added(self, c: Change) -> None:
        self.enums.statements.append(f"CREATE EXTENSION IF NOT EXISTS {_ident(c.name)};\n")

    def _extension_removed(self, c: Change) -> None:
        self._leave(c, f"DROP EXTENSION {_ident(c.name)};",
                    "dropping an extension drops what uses its types; do it by hand")  # fmt: skip

    def _enum_added(self, c: Change) -> None:
        schema, _, name = c.name.rpartition(".")
        enum = postgresql.ENUM(*c.new, name=name, schema=schema or None)
        self.enums.statements.append(f"{CreateEnumType(enum).compile(dialect=_DIALECT)};\n")

    def _enum_removed(self, c: Change) -> None:
        self._leave(
            c, f"DROP TYPE {_ident(c.name)};", "dropping a type fails while a column uses it"
        )

    def _enum_changed(self, c: Change) -> None:
        old, new = list(c.old), list(c.new)
        if [x for x in old if x not in new] or [x for x in new if x in old] != old:
            labels = ", ".join(_literal(x) for x in new)
            self._leave(
                c,
                f"-- recreate {c.name} as ({labels}) and convert every column that uses it",
                "PostgreSQL cannot remove or reorder enum labels; rows may hold the removed "
                "labels. Recreate the type by hand (new type, ALTER COLUMN ... TYPE with USING, "
                "drop the old type) after checking the data",
            )
            return
        for i, label in enumerate(new):
            if label in old:
                continue
            where = f"AFTER {_literal(new[i - 1])}" if i else f"BEFORE {_literal(old[0])}"
            self.enums.statements.append(
                f"ALTER TYPE {_ident(c.name)} ADD VALUE IF NOT EXISTS {_literal(label)} {where};\n"
            )

    def _sequence_added(self, c: Change) -> None:
        self.main.statements.append(f"CREATE SEQUENCE {_ident(c.name)} {_sequence_options(c.new)};\n")  # fmt: skip

    def _sequence_changed(self, c: Change) -> None:
        self.main.statements.append(f"ALTER SEQUENCE {_ident(c.name)} {_sequence_options(c.new)};\n")  # fmt: skip

    def _sequence_removed(self, c: Change) -> None:
        self._leave(c, f"DROP SEQUENCE {_ident(c.name)};", "a drop loses the sequence's position")

    # -- tables and columns -------------------------------------------------------------
    def _sa_table(self, name: str) -> sa.Table:
        if self.metadata is None or name not in self.metadata.tables:
            raise LookupError(name)
        return self.metadata.tables[name]

    def _table_added(self, c: Change) -> None:
        table = self._sa_table(c.name)
        self.main.statements.append(f"{str(CreateTable(table).compile(dialect=_DIALECT)).strip()};\n")  # fmt: skip
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            self.main.statements.append(f"{CreateIndex(index).compile(dialect=_DIALECT)};\n")

    def _table_removed(self, c: Change) -> None:
        owned = [o.key for o in self.changes if o.table == c.name]
        self._leave(c, f"DROP TABLE {_ident(c.name)};",
                    "dropping a table loses its rows; deploy code that no longer uses it first",
                    c.key, *owned)  # fmt: skip

    def _column_added(self, c: Change) -> None:
        table, _, name = c.name.rpartition(".")
        col: Column = c.new
        spec = _column_specification(self._sa_table(table).c[name])
        if not col.nullable and col.default is None and col.identity is None:
            nullable = spec.replace(" NOT NULL", "")
            self.main.statements.append(f"ALTER TABLE {_ident(table)} ADD COLUMN {nullable};\n")
            self._leave(
                c,
                f"ALTER TABLE {_ident(table)} ALTER COLUMN {_ident(name)} SET NOT NULL;",
                "a NOT NULL column without a default cannot be added to a table with rows: it "
                "is added nullable above; backfill it, then make it NOT NULL "
                "(CHECK ... NOT VALID, VALIDATE, SET NOT NULL)",
                ("changed", "column", c.name),
            )
            return
        self.main.statements.append(f"ALTER TABLE {_ident(table)} ADD COLUMN {spec};\n")

    def _column_removed(self, c: Change) -> None:
        table, _, name = c.name.rpartition(".")
        self._leave(c, f"ALTER TABLE {_ident(table)} DROP COLUMN {_ident(name)};",
                    "dropping a column loses its data; deploy code that no longer reads it, "
                    "then drop it in a later migration")  # fmt: skip

    def _column_changed(self, c: Change) -> None:
        table, _, name = c.name.rpartition(".")
        old: Column = c.old
        new: Column = c.new
        alter = f"ALTER TABLE {_ident(table)} ALTER COLUMN {_ident(name)}"
        if old.generated != new.generated or (new.generated and old.default != new.default):
            self._leave(c, f"{alter} -- drop and re-add as {new.generated or 'a plain column'}",
                        "a generated column's expression cannot be changed in place; "
                        "drop and re-add the column by hand")  # fmt: skip
            return
        if old.type != new.type or old.collation != new.collation:
            collate = f" COLLATE {_ident(new.collation)}" if new.collation else ""
            statement = f"{alter} TYPE {new.type}{collate} USING {_ident(name)}::{new.type};"
            rewrite, why = rewrites(
                ColumnType(old.typname, _mods(old.type)),
                ColumnType(new.typname, _mods(new.type)),
                None,
            )
            if rewrite or old.collation != new.collation:
                self._leave(c, statement,
                            f"{old.type} → {new.type}{collate}: {why}; this rewrites the table "
                            "under an ACCESS EXCLUSIVE lock (and may fail on existing values). "
                            "Add a new column, backfill in batches, swap names")  # fmt: skip
                return
            self.main.statements.append(f"{alter} TYPE {new.type};\n")
        if old.identity != new.identity:
            if new.identity is None:
                self.main.statements.append(f"{alter} DROP IDENTITY;\n")
            elif old.identity is None:
                self.main.statements.append(f"{alter} ADD GENERATED {new.identity.upper()} AS IDENTITY;\n")  # fmt: skip
            else:
                self.main.statements.append(f"{alter} SET GENERATED {new.identity.upper()};\n")
        if old.default != new.default and new.generated is None:
            if new.default is None:
                if new.identity is None or old.identity is not None:
                    self.main.statements.append(f"{alter} DROP DEFAULT;\n")
            else:
                self.main.statements.append(f"{alter} SET DEFAULT {new.default};\n")
        if old.nullable and not new.nullable:
            check = _ident(f"{table.rpartition('.')[2]}_{name}_not_null"[:63])
            self.main.statements.append(
                f"ALTER TABLE {_ident(table)} ADD CONSTRAINT {check} "
                f"CHECK ({_ident(name)} IS NOT NULL) NOT VALID;\n"
            )
            self.validate.statements.append(
                f"ALTER TABLE {_ident(table)} VALIDATE CONSTRAINT {check};\n"
                f"{alter} SET NOT NULL;\n"
                f"ALTER TABLE {_ident(table)} DROP CONSTRAINT {check};\n"
            )
        elif new.nullable and not old.nullable:
            self.main.statements.append(f"{alter} DROP NOT NULL;\n")

    # -- constraints --------------------------------------------------------------------
    def _constraint_added(self, c: Change) -> None:
        assert c.table is not None
        self._add_constraint(c, c.table, c.new, drop=None)

    def _add_constraint(self, c: Change, table: str, new: Constraint, drop: str | None) -> None:
        prefix = f"ALTER TABLE {_ident(table)} "
        dropping = f"DROP CONSTRAINT {_ident(drop)}, " if drop else ""
        if new.kind in ("c", "f"):
            self.main.statements.append(
                f"{prefix}{dropping}ADD CONSTRAINT {_ident(new.name)} {new.definition} NOT VALID;\n"
            )
            self.validate.statements.append(f"{prefix}VALIDATE CONSTRAINT {_ident(new.name)};\n")
            return
        found = re.fullmatch(r"(UNIQUE|PRIMARY KEY) (\([^()]*\))", new.definition)
        if found is None or drop is not None:
            self._leave(c, f"{prefix}{dropping}ADD CONSTRAINT {_ident(new.name)} {new.definition};",
                        "this constraint builds its index under a lock that blocks writes; "
                        "build the index CONCURRENTLY first and add it USING INDEX")  # fmt: skip
            return
        kind, columns = found.groups()
        index = _ident(new.name)
        self.indexes.append(
            DraftFile(
                f"_index_{new.name}",
                [f"CREATE UNIQUE INDEX CONCURRENTLY {index} ON {_ident(table)} {columns};\n"],
            )
        )
        self.finish.statements.append(
            f"{prefix}ADD CONSTRAINT {index} {kind} USING INDEX {index};\n"
        )

    def _constraint_removed(self, c: Change) -> None:
        old: Constraint = c.old
        self._leave(c, f"ALTER TABLE {_ident(str(c.table))} DROP CONSTRAINT {_ident(old.name)};",
                    "dropping a constraint lets rows in that it kept out; drop it by hand "
                    "once nothing relies on it")  # fmt: skip

    def _constraint_changed(self, c: Change) -> None:
        old: Constraint = c.old
        new: Constraint = c.new
        assert c.table is not None
        if old.definition == new.definition:  # only the validation differs
            self.validate.statements.append(
                f"ALTER TABLE {_ident(c.table)} VALIDATE CONSTRAINT {_ident(old.name)};\n"
            )
            return
        self._add_constraint(c, c.table, new, drop=old.name)

    # -- indexes ------------------------------------------------------------------------
    def _index_added(self, c: Change) -> None:
        new: Index = c.new
        self.indexes.append(DraftFile(f"_index_{new.name}", [_concurrently(new.definition, new.name)]))  # fmt: skip

    def _index_removed(self, c: Change) -> None:
        old: Index = c.old
        self._leave(c, f"DROP INDEX CONCURRENTLY {_ident(old.name)};",
                    "queries that use this index get slower; drop it in a file of its own "
                    "once no plan needs it")  # fmt: skip

    def _index_changed(self, c: Change) -> None:
        old: Index = c.old
        new: Index = c.new
        temporary = f"{new.name[:55]}_new"
        self.indexes.append(
            DraftFile(f"_index_{new.name}", [_concurrently(new.definition, temporary)])
        )
        self.indexes.append(
            DraftFile(f"_drop_{old.name}", [f"DROP INDEX CONCURRENTLY {_ident(old.name)};\n"])
        )
        self.finish.statements.append(
            f"ALTER INDEX {_ident(temporary)} RENAME TO {_ident(new.name)};\n"
        )

    # -- probable renames ---------------------------------------------------------------
    def _renames(self) -> None:
        added = [c for c in self.changes if c.kind == "column" and c.action == "added"]
        for gone in (c for c in self.changes if c.kind == "column" and c.action == "removed"):
            for new in added:
                if new.table == gone.table and new.new.type == gone.old.type:
                    table = _ident(str(gone.table))
                    old_name = gone.name.rpartition(".")[2]
                    new_name = new.name.rpartition(".")[2]
                    self.main.statements.append(
                        f"-- QUESTION: was {gone.name} renamed to {new.name} (same type "
                        f"{new.new.type})? Then replace the ADD COLUMN and the commented DROP with:\n"
                        f"-- ALTER TABLE {table} RENAME COLUMN {_ident(old_name)} TO {_ident(new_name)};\n"
                    )  # fmt: skip


def _column_specification(column: sa.Column[Any]) -> str:
    """``name TYPE DEFAULT ... NOT NULL`` as SQLAlchemy's own DDL compiler writes it in CREATE TABLE."""
    compiler = _DIALECT.ddl_compiler(_DIALECT, CreateTable(column.table))
    spec: str = compiler.get_column_specification(column)  # type: ignore[no-untyped-call]
    return spec


def _concurrently(definition: str, name: str) -> str:
    """``CREATE INDEX ON t ...`` (the name taken out) → ``CREATE INDEX CONCURRENTLY name ON t ...``."""
    return definition.replace(" INDEX ON ", f" INDEX CONCURRENTLY {_ident(name)} ON ", 1) + ";\n"


def _sequence_options(definition: str) -> str:
    words = definition.split()
    type_, options = words[0], dict(zip(words[1:-1:2], words[2::2], strict=False))
    cycle = " CYCLE" if words[-1] == "cycle" else " NO CYCLE"
    return (
        f"AS {type_} START {options['start']} INCREMENT {options['increment']} "
        f"MINVALUE {options['min']} MAXVALUE {options['max']}{cycle}"
    )


def build_draft(changes: list[Change], metadata: sa.MetaData | None) -> Draft:
    """The draft for ``changes``; ``metadata`` (schema.py) renders new tables and columns."""
    return _Builder(changes, metadata).build()
