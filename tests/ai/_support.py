"""Helpers for the vector, JSONB and full-text tests.

``execute`` runs a querykit query the way the executor does, with plain
psycopg: the query's server settings are applied with ``set_config(name,
value, true)`` (``SET LOCAL``) inside its own transaction. Swap it for
``db.all(q)`` once the execution layer lands.
"""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from querykit.codecs.dialect import DIALECT

Conn = psycopg.Connection[Any]


def execute(conn: Conn, query: Any) -> list[tuple[Any, ...]]:
    """The rows of ``query`` (none for a statement without results), settings applied locally."""
    compiled = query.to_sql()
    with conn.transaction():
        if compiled.settings:
            calls = ", ".join(["set_config(%s, %s, true)"] * len(compiled.settings))
            conn.execute(f"SELECT {calls}", [x for pair in compiled.settings for x in pair])
        cur = conn.execute(compiled.sql, compiled.params)
        return cur.fetchall() if cur.description else []


def explain(conn: Conn, query: Any) -> str:
    """The plan PostgreSQL chooses for ``query``, under the query's own settings."""
    compiled = query.to_sql()
    with conn.transaction():
        for name, value in compiled.settings:
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        rows = conn.execute("EXPLAIN " + compiled.sql, compiled.params).fetchall()
    return "\n".join(row[0] for row in rows)


def create_tables(conn: Conn, *tables: sa.Table) -> None:
    for table in tables:
        conn.execute(str(CreateTable(table).compile(dialect=DIALECT)))


def vector_table(kind: str, dim: int = 3, name: str = "items") -> sa.Table:
    """A fresh table (own MetaData, so index helpers stay local) with one pgvector column."""
    from querykit.columns import bit, halfvec, sparsevec, vector

    types = {"vector": vector, "halfvec": halfvec, "sparsevec": sparsevec, "bit": bit}
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("cat", sa.Integer, nullable=False, server_default="0"),
        sa.Column("embedding", types[kind](dim), nullable=False),  # type: ignore[arg-type]
    )


def copy_vectors(conn: Conn, table: sa.Table, vectors: Any, cats: Any = None) -> None:
    """Load ``vectors`` (ids 0..n-1) with binary COPY, as the bulk writer does."""
    from pgvector import Vector

    sql = f"COPY {table.name} (id, cat, embedding) FROM STDIN WITH (FORMAT BINARY)"
    with conn.cursor().copy(sql) as copy:
        copy.set_types(["int4", "int4", "vector"])
        for i, v in enumerate(vectors):
            copy.write_row((i, 0 if cats is None else int(cats[i]), Vector(v)))
