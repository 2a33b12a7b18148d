"""The harness itself: per-test databases are isolated and have pgvector."""

from __future__ import annotations

import psycopg

from querykit.testing.template import Template
from tests.conftest import ROOT


def test_each_test_gets_pgvector(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert row is not None and str(row[0]).startswith("0.8")
    assert conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector").fetchone() == (1.0,)


def test_databases_are_isolated_first(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute("CREATE TABLE leaked (id int)")


def test_databases_are_isolated_second(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    assert conn.execute("SELECT to_regclass('leaked')").fetchone() == (None,)


def test_the_execution_tests_run_on_the_schema_the_migrations_ship(
    migrated_template: Template, tables_conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """The example app's tables come from ``migrations/sql`` applied by querykit's runner
    (querykit.testing's template), not from ``schema.py``: its ledger lists every file."""
    files = sorted(
        int(p.name.split("_", 1)[0]) for p in (ROOT / "migrations" / "sql").glob("*.sql")
    )
    ledger = tables_conn.execute(
        "SELECT version FROM public.querykit_migrations ORDER BY version"
    ).fetchall()
    assert [int(str(v)) for (v,) in ledger] == files and len(files) >= 4
    assert migrated_template.name.startswith("qk_")  # the plugin's cached-template name
    assert tables_conn.execute("SELECT to_regclass('pipeline_run')").fetchone() == ("pipeline_run",)
