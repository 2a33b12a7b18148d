"""The example app: its migrations create exactly the tables schema.py declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pgvector.sqlalchemy  # noqa: F401  (teaches SQLAlchemy's reflection the vector type)
import sqlalchemy as sa

import schema
from querykit import load_settings, migrate

ROOT = Path(__file__).resolve().parent.parent


def migrated(database_url: str) -> sa.Inspector:
    settings = load_settings(cwd=ROOT, env={}, database_url=database_url)
    result = migrate.up(settings)
    assert [d.filename for d in result.done] == sorted(
        p.name for p in (ROOT / "migrations/sql").glob("*.sql")
    )
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    return sa.inspect(engine)


def test_migrations_create_exactly_the_declared_schema(database_url: str) -> None:
    inspector = migrated(database_url)
    tables = set(inspector.get_table_names()) - {"querykit_migrations"}
    assert tables == set(schema.metadata.tables)
    for table in schema.metadata.sorted_tables:
        reflected = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(reflected) == set(table.c.keys()), table.name
        for column in table.columns:
            found = reflected[column.name]
            assert found["nullable"] == column.nullable, f"{table.name}.{column.name} nullability"
            assert _same_type(found["type"], column.type), (
                f"{table.name}.{column.name}: database {found['type']!r}, schema.py {column.type!r}"
            )
            has_default = column.server_default is not None or column.autoincrement is True
            db_default = found["default"] is not None or found.get("identity") is not None
            if not column.primary_key or column.autoincrement is True:
                assert db_default == has_default, f"{table.name}.{column.name} default"
        reflected_fks = {
            (tuple(fk["constrained_columns"]), fk["referred_table"])
            for fk in inspector.get_foreign_keys(table.name)
        }
        declared_fks = {
            (tuple(c.name for c in fkc.columns), fkc.referred_table.name)
            for fkc in table.foreign_key_constraints
        }
        assert reflected_fks == declared_fks, table.name
        reflected_indexes = {ix["name"] for ix in inspector.get_indexes(table.name)}
        assert reflected_indexes == {ix.name for ix in table.indexes}, table.name


def test_the_hnsw_index_is_valid_and_cosine(database_url: str) -> None:
    migrated(database_url)
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'embedding_embedding_hnsw_idx'"
        ).fetchone()
    assert row is not None and row[0] is True
    assert "USING hnsw (embedding vector_cosine_ops)" in row[1]


def _same_type(reflected: Any, declared: sa.types.TypeEngine[Any]) -> bool:
    dialect = sa.dialects.postgresql.psycopg.dialect()
    return bool(
        reflected.compile(dialect=dialect).lower() == declared.compile(dialect=dialect).lower()
    )
