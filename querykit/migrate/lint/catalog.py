"""Read what the linter needs from a live database: columns, indexes, constraints, enums, sizes.

One connection, a handful of catalog queries, no locks on user tables::

    >>> know = read_catalog(conn)
    >>> know.columns["pipeline_run"]["cost"], know.rows["pipeline_run"]
    (ColumnType(name='numeric', mods=(12, 6)), 5000.0)
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from .knowledge import ColumnType, Constraint, Knowledge

__all__ = ["read_catalog"]

_NAME = "CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END"
_USER = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
    "AND n.nspname NOT LIKE 'pg_temp%'"
)
_COLUMNS = f"""
SELECT {_NAME}, a.attname, t.typname, a.atttypmod, a.attnotnull
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND {_USER}
"""
_TABLES = f"""
SELECT {_NAME}, CASE WHEN c.reltuples >= 0 THEN c.reltuples
                    WHEN pg_relation_size(c.oid) = 0 THEN 0 END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND {_USER}
"""
_INDEXES = f"""
SELECT ci.relname, {_NAME},
       ARRAY(SELECT a.attname FROM unnest(i.indkey) k JOIN pg_attribute a
             ON a.attrelid = c.oid AND a.attnum = k)::text[]
FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER}
"""
_CONSTRAINTS = f"""
SELECT {_NAME}, co.conname, co.contype, co.convalidated, pg_get_constraintdef(co.oid),
       (SELECT CASE WHEN rn.nspname = 'public' THEN r.relname ELSE rn.nspname || '.' || r.relname END
        FROM pg_class r JOIN pg_namespace rn ON rn.oid = r.relnamespace WHERE r.oid = co.confrelid),
       ARRAY(SELECT a.attname FROM unnest(co.conkey) k JOIN pg_attribute a
             ON a.attrelid = c.oid AND a.attnum = k)::text[]
FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER}
"""
_ENUMS = """
SELECT CASE WHEN n.nspname = 'public' THEN t.typname ELSE n.nspname || '.' || t.typname END,
       array_agg(e.enumlabel ORDER BY e.enumsortorder)::text[]
FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
GROUP BY 1
"""
# The most volatile overload decides: v (volatile) > s (stable) > i (immutable).
_VOLATILITY = 'SELECT proname, max(provolatile::text COLLATE "C") FROM pg_proc GROUP BY proname'
_KINDS = {"c": "check", "f": "foreign", "u": "unique", "p": "primary", "n": "notnull"}
_NOT_NULL_CHECK = re.compile(r'^CHECK \(\(?"?([^"() ]+)"? IS NOT NULL\)?\)$')


def _type(typname: str, typmod: int) -> ColumnType:
    name = typname[1:] + "[]" if typname.startswith("_") else typname
    if typmod < 0:
        return ColumnType(name)
    if name in ("varchar", "bpchar"):
        return ColumnType(name, (typmod - 4,))
    if name == "numeric":
        return ColumnType(name, ((typmod - 4) >> 16, (typmod - 4) & 0xFFFF))
    if name in ("timestamp", "timestamptz", "time", "timetz"):
        return ColumnType(name, (typmod,))
    return ColumnType(name)


def read_catalog(conn: psycopg.Connection[Any]) -> Knowledge:
    """The schema facts of the database ``conn`` is connected to."""
    know = Knowledge()
    for table, column, typname, typmod, not_null in conn.execute(_COLUMNS):
        know.columns.setdefault(table, {})[column] = _type(typname, typmod)
        if not_null:
            know.not_null.add((table, column))
    for table, tuples in conn.execute(_TABLES):
        know.columns.setdefault(table, {})
        if tuples is not None:  # never analyzed and not empty: size unknown
            know.rows[table] = float(tuples)
    for index, table, columns in conn.execute(_INDEXES):
        know.indexes[index] = table
        know.index_columns[index] = tuple(columns)
    for table, name, kind, validated, definition, references, columns in conn.execute(_CONSTRAINTS):
        match = _NOT_NULL_CHECK.match(definition) if kind == "c" else None
        know.constraints[(table, name)] = Constraint(
            table,
            _KINDS.get(kind, "other"),
            references,
            validated,
            match[1] if match else None,
            tuple(columns),
        )
    for name, labels in conn.execute(_ENUMS):
        know.enums[name] = list(labels)
    know.volatile = dict(conn.execute(_VOLATILITY).fetchall())
    row = conn.execute("SELECT current_setting('TimeZone')").fetchone()
    know.timezone = row[0] if row else None
    return know
