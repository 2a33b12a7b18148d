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


def test_functions_that_cannot_be_shown_are_reported_and_the_others_shown(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.querykit]\nqueries = ["myq"]\n')
    (tmp_path / "myq.py").write_text(
        "from querykit import SelectQuery, select, eq\nfrom schema import pipeline_run as r\n"
        "def by_name(name: str) -> SelectQuery[str]:\n    return select(r.c.id).where(eq(r.c.name, name))\n"
        "def unannotated(limit=5):\n    return select(r.c.id).limit(limit)\n"
        "def all_ids() -> SelectQuery[str]:\n    return select(r.c.id)\n"
        "def helper(x: int) -> int:\n    return x\n"
    )
    env = {"PYTHONPATH": str(ROOT)}
    proc = querykit("sql", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "-- myq:all_ids()" in proc.stdout and "by_name" not in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, proc.stderr  # helper() returns an int: not a query, no warning
    assert "skipped myq:by_name: needs arguments (name)" in warnings[0]
    assert "give it a default (or a placeholder()) in by_name(name: str)" in warnings[0]
    assert "skipped myq:unannotated: no return annotation" in warnings[1]
    assert "-> SelectQuery[...]" in warnings[1]
    one = querykit("sql", "myq:by_name", cwd=tmp_path, env=env)
    assert one.returncode == 2
    assert "myq:by_name cannot be shown: needs arguments (name)" in one.stderr
    as_json = querykit("sql", "--json", cwd=tmp_path, env=env)
    assert [q["name"] for q in json.loads(as_json.stdout)] == ["myq:all_ids"]


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


def test_placeholder_styles_are_named_where_both_appear() -> None:
    proc = querykit("sql", "queries:cost_by_pipeline")
    assert proc.returncode == 0, proc.stderr
    legend, _, rest = proc.stdout.partition("\n\n")
    assert "$1, $2" in legend and "%s" in legend and ".to_sql().sql" in legend
    assert "WHERE pipeline_run.status = $1" in rest and "-- params: $1 = 'COMPLETED'" in rest
    assert "%s" not in rest  # the pretty SQL has one style only
    inline = querykit("sql", "queries:cost_by_pipeline", "--inline")
    assert "$1" not in inline.stdout and "%s" not in inline.stdout  # values, no placeholders


def test_run_prints_the_rows_the_database_gives(app_db: str) -> None:
    with psycopg.connect(app_db) as conn:
        expected = conn.execute(  # the oracle: the same question in hand-written SQL
            "SELECT id, name FROM pipeline_run WHERE status = 'FAILED' "
            "AND started_at >= now() - interval '48 hours' ORDER BY started_at DESC"
        ).fetchall()
    assert len(expected) == 2
    proc = querykit(
        "sql", "queries:failed_runs", "--run", "-p", "hours=48", "--json", "--database-url", app_db
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert sorted((r["id"], r["name"]) for r in result["rows"]) == sorted(expected)  # ties
    assert result["row_count"] == 2 and result["more"] == 0
    by_id = {r["id"]: r for r in result["rows"]}
    assert [s["id"] for s in by_id["r1"]["steps"]] == ["s1", "s2"]  # nested, in order
    table = querykit("sql", "queries:cost_by_pipeline", "--run", "--database-url", app_db)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split(" | ") == ["name ", "total_cost", "runs"]
    assert lines[2].split() == ["video", "|", "2.000000", "|", "1"] and lines[-1] == "(1 row)"


def test_run_cuts_rows_with_a_visible_count_of_the_rest(app_db: str) -> None:
    proc = querykit(
        "sql", "queries:run_overview", "--run", "--limit", "2", "--database-url", app_db
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 + 2 + 1  # heading, rule, 2 rows, the count
    assert lines[-1] == "… 1 more (3 rows in all; --limit 0 shows them all)"
    every = querykit(
        "sql", "queries:run_overview", "--run", "--limit", "0", "--json", "--database-url", app_db
    )
    assert json.loads(every.stdout)["shown"] == 3


def test_run_a_write_commits_it_and_says_how_many(app_db: str) -> None:
    proc = querykit(
        "sql", "queries:create_many_runs", "--run", "--param", "count=2", "--database-url", app_db
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2 row(s) written"
    with psycopg.connect(app_db) as conn:
        assert conn.execute("SELECT count(*) FROM pipeline_run").fetchone() == (5,)


def test_run_arguments_are_typed_and_checked(app_db: str) -> None:
    unknown = querykit(
        "sql", "queries:failed_runs", "--run", "-p", "hourz=1", "--database-url", app_db
    )
    assert unknown.returncode == 2
    assert "has no parameter 'hourz'; its parameters: hours: int" in unknown.stderr
    bad = querykit(
        "sql", "queries:failed_runs", "--run", "-p", "hours=soon", "--database-url", app_db
    )
    assert bad.returncode == 2 and "'soon' is not a valid int" in bad.stderr
    shape = querykit("sql", "queries:failed_runs", "--run", "-p", "hours", "--database-url", app_db)
    assert shape.returncode == 2 and "expected NAME=VALUE" in shape.stderr
    objects = querykit(
        "sql", "queries:cost_by_pipeline", "--run", "-p", "x=1", "--database-url", app_db
    )
    assert objects.returncode == 2 and "is a query object: it takes no parameters" in objects.stderr
    several = querykit("sql", "--run", "--database-url", app_db)
    assert several.returncode == 2 and "--run runs one named query" in several.stderr
    module = querykit("sql", "queries", "--run", "--database-url", app_db)
    assert (
        module.returncode == 2 and "give module:name (found: queries:failed_runs" in module.stderr
    )
    mixed = querykit("sql", "queries:failed_runs", "--run", "--explain")
    assert mixed.returncode == 2 and "use one or the other" in mixed.stderr
    alone = querykit("sql", "queries:failed_runs", "-p", "hours=1")
    assert alone.returncode == 2 and "add --run" in alone.stderr


def test_an_unmigrated_database_is_named_as_such(database_url: str) -> None:
    """Not "unexpected UndefinedTable": the migrations are pending, and here is the command."""
    explain = querykit(
        "sql", "queries:cost_by_pipeline", "--explain", "--database-url", database_url
    )
    assert explain.returncode == 1
    assert 'relation "pipeline_run" does not exist' in explain.stdout
    hint = "hint: the database is not migrated: 4 of 4 migration(s) are pending"
    assert hint in explain.stderr and "querykit migrate up" in explain.stderr
    run = querykit("sql", "queries:run_overview", "--run", "--database-url", database_url)
    assert run.returncode == 1 and hint in run.stderr, run.stderr
    assert "unexpected" not in explain.stderr + run.stderr and "Traceback" not in run.stderr


def test_run_gives_a_function_the_arguments_it_needs(app_db: str, tmp_path: Path) -> None:
    """A function without defaults cannot be shown, but runs once --param gives each argument."""
    (tmp_path / "pyproject.toml").write_text('[tool.querykit]\nqueries = ["myq"]\n')
    (tmp_path / "myq.py").write_text(
        "from querykit import SelectQuery, select, eq\nfrom schema import pipeline_run as r\n"
        "def by_name(name: str, limit: int) -> SelectQuery[str]:\n"
        "    return select(r.c.id).where(eq(r.c.name, name)).order_by(r.c.id).limit(limit)\n"
    )
    env = {"PYTHONPATH": str(ROOT)}
    run = ("sql", "myq:by_name", "--run", "--json", "--database-url", app_db)
    short = querykit(*run, "-p", "name=video", cwd=tmp_path, env=env)
    assert short.returncode == 2
    assert "needs arguments (limit): --param limit=VALUE" in short.stderr
    done = querykit(*run, "-p", "name=video", "-p", "limit=1", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(app_db) as conn:
        first = conn.execute(
            "SELECT id FROM pipeline_run WHERE name = 'video' ORDER BY id"
        ).fetchone()
    assert json.loads(done.stdout)["rows"] == [list(first or ())]
