"""A schema snapshot in the catalog's own terms: what two databases are compared on.

Every definition comes from the server's own rendering (``format_type``,
``pg_get_expr``, ``pg_get_constraintdef``, ``pg_get_indexdef``), so two
databases built by different DDL texts (hand-written migrations, SQLAlchemy's
compiler) compare equal when PostgreSQL stored the same thing. What is not
drift is normalised here, once:

- column order (columns are keyed by name);
- serial against identity (both are ``identity: "by default"``);
- server-generated constraint and index names (keyed by definition, not name);
- PostgreSQL 18's NOT NULL rows in ``pg_constraint`` (nullability is the column's);
- an index's default operator class (``pg_get_indexdef`` elides it on both sides);
- the ledger table and every object an extension owns.

Defaults that read differently (``'0'::numeric`` against ``0``) are settled on
the server by :func:`querykit.migrate.diff.compare.compare`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

__all__ = ["Column", "Constraint", "Index", "Snapshot", "take_snapshot"]


@dataclass(frozen=True)
class Column:
    """A column as the catalog describes it."""

    type: str
    """``format_type``: the type with its modifiers (``numeric(12,6)``, ``vector(384)``)."""
    typname: str
    """The internal type name (``numeric``, ``int4``): what the rewrite table keys on."""
    nullable: bool
    default: str | None
    identity: str | None
    """``"always"`` or ``"by default"`` (a serial counts as ``"by default"``), else None."""
    generated: str | None
    """``"stored"`` or ``"virtual"``; then ``default`` holds the generation expression."""
    collation: str | None
    """Only when it differs from the type's default collation."""


@dataclass(frozen=True)
class Constraint:
    """A table constraint as the catalog describes it (``pg_get_constraintdef``)."""

    name: str
    kind: str  # "p", "u", "f", "c", "x"
    definition: str
    columns: tuple[str, ...]
    validated: bool


@dataclass(frozen=True)
class Index:
    """An index as the catalog describes it."""

    name: str
    definition: str
    """``pg_get_indexdef`` with the index name taken out."""
    full: str
    """``pg_get_indexdef`` as the server prints it, with the name."""
    valid: bool


@dataclass
class Snapshot:
    """The schema of one database, read from the catalog: what ``migrate diff`` compares."""

    extensions: set[str] = field(default_factory=set)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tables: dict[str, dict[str, Column]] = field(default_factory=dict)
    constraints: dict[str, dict[str, Constraint]] = field(default_factory=dict)
    """table → definition key (``kind: definition``) → constraint."""
    indexes: dict[str, dict[str, Index]] = field(default_factory=dict)
    """table → definition without the name → index."""
    sequences: dict[str, str] = field(default_factory=dict)
    """Sequences no column owns: name → ``type start increment min max cycle``."""


_USER = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'"
_NOT_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {oid} AND d.classid = {catalog}::regclass "
    "AND d.deptype = 'e')"
)


def _qualified(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


_EXTENSIONS = "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'"

_ENUMS = f"""
SELECT n.nspname, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
WHERE {_USER} AND {_NOT_EXTENSION.format(oid="t.oid", catalog="'pg_type'")}
GROUP BY n.nspname, t.typname
"""

_TABLES = f"""
SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND {_USER}
  AND {_NOT_EXTENSION.format(oid="c.oid", catalog="'pg_class'")}
"""

_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), t.typname, a.attnotnull,
       pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END,
       EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
               WHERE d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype = 'a')
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
"""

# contype 'n' (PostgreSQL 18) mirrors attnotnull, which the column already carries.
_CONSTRAINTS = """
SELECT c.conrelid, c.conname, c.contype::text, pg_get_constraintdef(c.oid), c.convalidated,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) k JOIN pg_attribute a
             ON a.attrelid = c.conrelid AND a.attnum = k ORDER BY a.attname)
FROM pg_constraint c WHERE c.conrelid = ANY(%s) AND c.contype <> 'n'
"""

_INDEXES = """
SELECT i.indrelid, c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
"""

_SEQUENCES = f"""
SELECT n.nspname, c.relname,
       concat_ws(' ', format_type(s.seqtypid, NULL), 'start', s.seqstart, 'increment', s.seqincrement,
                 'min', s.seqmin, 'max', s.seqmax, CASE WHEN s.seqcycle THEN 'cycle' END)
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER} AND {_NOT_EXTENSION.format(oid="c.oid", catalog="'pg_class'")}
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
"""

_IDENTITY = {"a": "always", "d": "by default"}
_GENERATED = {"s": "stored", "v": "virtual"}


def take_snapshot(conn: psycopg.Connection[Any], *, exclude_tables: frozenset[str]) -> Snapshot:
    """Read the schema of ``conn``'s database; ``exclude_tables`` (e.g. the ledger) is left out."""
    snap = Snapshot()
    snap.extensions = {row[0] for row in conn.execute(_EXTENSIONS)}
    for schema, name, labels in conn.execute(_ENUMS):
        snap.enums[_qualified(schema, name)] = tuple(labels)
    names: dict[int, str] = {}
    for oid, schema, name in conn.execute(_TABLES):
        qualified = _qualified(schema, name)
        if qualified in exclude_tables or f"{schema}.{name}" in exclude_tables:
            continue
        names[oid] = qualified
        snap.tables[qualified] = {}
        snap.constraints[qualified] = {}
        snap.indexes[qualified] = {}
    oids = list(names)
    for row in conn.execute(_COLUMNS, (oids,)):
        relid, name, type_, typname, notnull, default, identity, generated, collation, serial = row
        if serial:  # serial against identity is not drift: both mean "numbered by default"
            default, identity = None, "d"
        snap.tables[names[relid]][name] = Column(
            type=type_,
            typname=typname,
            nullable=not notnull,
            default=default,
            identity=_IDENTITY.get(identity),
            generated=_GENERATED.get(generated),
            collation=collation,
        )
    for relid, name, kind, definition, validated, columns in conn.execute(_CONSTRAINTS, (oids,)):
        snap.constraints[names[relid]][f"{kind}: {definition}"] = Constraint(
            name, kind, definition, tuple(columns), validated
        )
    for relid, name, full, valid in conn.execute(_INDEXES, (oids,)):
        definition = _without_name(full, name)
        snap.indexes[names[relid]][definition] = Index(name, definition, full, valid)
    for schema, name, definition in conn.execute(_SEQUENCES):
        snap.sequences[_qualified(schema, name)] = definition
    return snap


def _without_name(indexdef: str, name: str) -> str:
    """``CREATE INDEX x ON t USING ...`` → ``CREATE INDEX ON t USING ...``."""
    quoted = (
        name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'
    )
    return indexdef.replace(f" INDEX {quoted} ON ", " INDEX ON ", 1)
