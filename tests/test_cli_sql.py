"""``querykit sql`` as a user runs it, from the repository root."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from querykit import connect, load_settings, migrate
from querykit.embedded import bin_dir
from tests.cli import querykit

ROOT = Path(__file__).resolve().parent.parent


def test_lists_every_named_query_with_sql_and_params() -> None:
    proc = querykit("sql")
    assert proc.returncode == 0, proc.stderr
    for name in ("failed_runs", "cost_by_pipeline", "create_run", "create_step", "daily_tokens"):
        assert f"-- queries:{name}" in proc.stdout
    assert "-- params: $1 = 'COMPLETED'" in proc.stdout
    assert "-- queries:failed_runs(hours: int = 24)" in proc.stdout
    assert "-- Completed runs: cost summed" in proc.stdout  # the docstring under the assignment


def test_json_is_machine_readable() -> None:
    proc = querykit("sql", "--json")
    assert proc.returncode == 0, proc.stderr
    tool = subprocess.run(
        [sys.executable, "-m", "json.tool"], input=proc.stdout, capture_output=True, text=True
    )
    assert tool.returncode == 0
    items = json.loads(proc.stdout)
    by_name = {item["name"]: item for item in items}
    assert by_name["queries:cost_by_pipeline"]["params"] == ["COMPLETED"]
    assert "%s" in by_name["queries:cost_by_pipeline"]["sql"]
    assert all({"name", "sql", "params"} <= set(item) for item in items)


def test_one_query_by_name_and_errors() -> None:
    proc = querykit("sql", "queries:cost_by_pipeline", "--inline")
    assert proc.returncode == 0
    assert "WHERE pipeline_run.status = 'COMPLETED'::status" in proc.stdout
    assert "failed_runs" not in proc.stdout
    missing = querykit("sql", "queries:nope")
    assert missing.returncode == 2
    assert "queries has no named query 'nope'; it has: failed_runs" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_module = querykit("sql", "no_such_module")
    assert (
        bad_module.returncode == 2 and "cannot import module 'no_such_module'" in bad_module.stderr
    )


def test_a_query_function_needs_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.querykit]\nqueries = ["myq"]\n')
    (tmp_path / "myq.py").write_text(
        "from querykit import SelectQuery, select, eq\nfrom schema import pipeline_run as r\n"
        "def by_name(name: str) -> SelectQuery[str]:\n    return select(r.c.id).where(eq(r.c.name, name))\n"
    )
    env = {"PYTHONPATH": str(ROOT)}
    proc = querykit("sql", cwd=tmp_path, env=env)
    assert proc.returncode == 2
    assert "myq:by_name(name: str) needs arguments (name)" in proc.stderr


def test_ddl_is_valid_sql_that_creates_the_schema(database_url: str) -> None:
    proc = querykit("sql", "--ddl")
    assert proc.returncode == 0, proc.stderr
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(proc.stdout)
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert tables == {"pipeline_run", "pipeline_step", "embedding", "agent_context", "content_item"}


@pytest.fixture
def app_db(database_url: str) -> str:
    migrate.up(load_settings(cwd=ROOT, env={}, database_url=database_url))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pipeline_run (id, name, status, cost, metadata) VALUES "
            "('r1', 'video', 'FAILED', 1.5, '{\"topic\": \"it''s\"}'), ('r2', 'video', 'COMPLETED', 2, null), "
            "('r3', 'audio', 'FAILED', 0, null)"
        )
        conn.execute(
            "INSERT INTO pipeline_step (id, run_id, name, status, tokens, created_at) VALUES "
            "('s1', 'r1', 'a', 'COMPLETED', 5, now() - interval '1 min'), ('s2', 'r1', 'b', 'FAILED', 7, now())"
        )
    return database_url


def test_inline_pasted_into_psql_returns_the_library_rows(app_db: str) -> None:
    from queries import failed_runs

    proc = querykit("sql", "queries:failed_runs", "--inline")
    assert proc.returncode == 0, proc.stderr
    psql = subprocess.run(
        [str(bin_dir() / "psql"), app_db, "--csv", "-v", "ON_ERROR_STOP=1"],
        input=proc.stdout,
        capture_output=True,
        text=True,
    )
    assert psql.returncode == 0, psql.stderr
    pasted = list(csv.DictReader(io.StringIO(psql.stdout)))
    with connect(app_db) as db:
        library = db.all(failed_runs())
    assert [r["id"] for r in pasted] == [r["id"] for r in library] and len(library) == 2
    for row, lib in zip(pasted, library, strict=True):
        steps = json.loads(row["steps"])
        assert [s[0] for s in steps] == [s["id"] for s in lib["steps"]]
        assert row["name"] == lib["name"] and row["status"] == lib["status"].name


def test_explain_and_analyze(app_db: str) -> None:
    proc = querykit("sql", "queries:cost_by_pipeline", "--explain", "--database-url", app_db)
    assert proc.returncode == 0, proc.stderr
    assert "-- plan:" in proc.stdout and "pipeline_run" in proc.stdout
    analyzed = querykit("sql", "queries:create_many_runs", "--analyze", "--database-url", app_db)
    assert analyzed.returncode == 0, analyzed.stderr
    assert "actual time=" in analyzed.stdout
    with psycopg.connect(app_db) as conn:
        assert conn.execute("SELECT count(*) FROM pipeline_run").fetchone() == (3,)  # rolled back


def test_explain_binds_a_vector_parameter(app_db: str) -> None:
    """EXPLAIN's own connection adapts vectors as the pool's do (it used to fail to adapt one)."""
    proc = querykit("sql", "queries:similar_embeddings", "--explain", "--database-url", app_db)
    assert proc.returncode == 0, proc.stderr
    assert "-- plan:" in proc.stdout and "::vector" in proc.stdout


@pytest.mark.parametrize("flag", ["--explain", "--analyze"])
def test_every_named_query_explains(app_db: str, flag: str) -> None:
    """Each query `querykit sql` prints, vector searches included, gets a plan from the server.

    With --analyze the statements run (rolled back): create_step's default run id,
    a stand-in, is no run, so the server refuses that one insert; the others are
    still analyzed, and the refusal is reported in its place with exit code 1.
    """
    names = {item["name"] for item in json.loads(querykit("sql", "--json").stdout)}
    assert "queries:similar_embeddings" in names  # a pgvector query is among them
    proc = querykit("sql", flag, "--json", "--database-url", app_db)
    items = json.loads(proc.stdout)
    assert {item["name"] for item in items} == names
    refused = {"queries:create_step"} if flag == "--analyze" else set()
    assert proc.returncode == (1 if refused else 0), proc.stderr
    for item in items:
        for statement in item["statements"]:
            if item["name"] in refused:
                assert statement["plan"] is None
                assert "foreign key" in statement["error"] and "23503" in statement["error"]
                continue
            assert statement["plan"].strip(), item["name"]
            if flag == "--analyze":
                assert "actual" in statement["plan"], item["name"]
    by_name = {item["name"]: item for item in items}
    assert "embedding" in by_name["queries:similar_embeddings"]["statements"][0]["plan"]
    with psycopg.connect(app_db) as conn:  # --analyze ran the inserts, rolled back
        assert conn.execute("SELECT count(*) FROM pipeline_run").fetchone() == (3,)


def test_a_refused_plan_is_reported_in_its_place(app_db: str) -> None:
    proc = querykit("sql", "queries:create_step", "--analyze", "--database-url", app_db)
    assert proc.returncode == 1
    assert "-- plan failed: insert or update on table" in proc.stdout
    assert "error: EXPLAIN ANALYZE failed for queries:create_step (see above)" in proc.stderr
    assert "Traceback" not in proc.stderr
