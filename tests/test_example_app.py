"""The example app: its migrations create exactly the tables schema.py declares."""

from __future__ import annotations

from pathlib import Path

from querykit import load_settings, migrate
from querykit.migrate.diff import diff as migrate_diff

ROOT = Path(__file__).resolve().parent.parent


def migrated(database_url: str) -> None:
    settings = load_settings(cwd=ROOT, env={}, database_url=database_url)
    result = migrate.up(settings)
    assert [d.filename for d in result.done] == sorted(
        p.name for p in (ROOT / "migrations/sql").glob("*.sql")
    )


def test_migrations_create_exactly_the_declared_schema(pg_server_url: str) -> None:
    """``querykit migrate diff``: the migrated shadow and schema.py agree, object by object.

    (It replaced a hand-written comparison through SQLAlchemy's reflection, which
    saw neither operator classes, enum labels, CHECKs nor index definitions.)
    """
    result = migrate_diff(load_settings(cwd=ROOT, env={}, database_url=pg_server_url))
    assert result.in_sync, result.text()


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
