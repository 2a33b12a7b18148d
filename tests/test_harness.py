"""The harness itself: per-test databases are isolated and have pgvector."""

from __future__ import annotations

import psycopg


def test_each_test_gets_pgvector(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert row is not None and str(row[0]).startswith("0.8")
    assert conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector").fetchone() == (1.0,)


def test_databases_are_isolated_first(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute("CREATE TABLE leaked (id int)")


def test_databases_are_isolated_second(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    assert conn.execute("SELECT to_regclass('leaked')").fetchone() == (None,)
