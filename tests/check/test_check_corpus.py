"""The query-check corpus: pending migrations that break (or do not break) the example's
named queries, each finding proven against what the database really does."""

from __future__ import annotations

import json
from decimal import Decimal

import psycopg
import pytest
from pgvector.psycopg import register_vector
from typer.testing import CliRunner

import querykit
from querykit import Settings
from querykit.check import check, compile_statements, describe_all
from querykit.cli import app
from querykit.errors import DatabaseError
from querykit.migrate import up
from querykit.named import load_named
from tests.check.conftest import COST_FLOAT, add_migration

RENAME = """
-- the pipeline's display name becomes its title
ALTER TABLE pipeline_run RENAME COLUMN name TO title;
"""


def failing_with(url: str, settings: Settings, sqlstate: str) -> set[str]:
    """The oracle: named queries whose statements the server refuses, by plain psycopg EXPLAIN."""
    failing = set()
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        for statement in compile_statements(load_named(None, settings)):
            try:
                conn.execute("EXPLAIN " + statement.compiled.sql, statement.compiled.params)
            except psycopg.Error as exc:
                assert exc.sqlstate == sqlstate, exc
                failing.add(statement.query)
    return failing


def test_the_clean_example_has_no_findings(migrated: Settings) -> None:
    result = check(migrated, pending=True)
    assert result.ok, result.text()
    named = load_named(None, migrated)
    assert result.queries == len(named) >= 10
    assert result.statements > result.queries  # the nested query's levels are checked too


def test_described_types_are_those_execution_returns(migrated: Settings) -> None:
    """Describe (nothing run) against an independent path: each read run for real, rolled back."""
    statements = compile_statements(load_named(None, migrated))
    described = describe_all(migrated.database_url or "", statements)
    compared = 0
    with psycopg.connect(migrated.database_url or "") as conn:
        register_vector(conn)
        for statement, d in zip(statements, described, strict=True):
            assert d.ok, (statement.where, d.error)
            with conn.transaction(force_rollback=True):
                # create_step's run id is a placeholder: no foreign-key triggers in this sandbox
                conn.execute("SET LOCAL session_replication_role = replica")
                cur = conn.execute(statement.compiled.sql, statement.compiled.params)
                if cur.description is None:
                    continue
                names = conn.execute(
                    "SELECT typname::text FROM unnest(%s::oid[]) WITH ORDINALITY AS u(t, i)"
                    " JOIN pg_type ON pg_type.oid = u.t ORDER BY i",
                    ([c.type_code for c in cur.description],),
                ).fetchall()
            assert [c.name for c in d.columns] == [c.name for c in cur.description]
            assert [c.typname for c in d.columns] == [n[0] for n in names], statement.where
            compared += 1
    assert compared >= 10


def test_a_pending_rename_lists_every_affected_query_with_the_migration_line(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = add_migration(migrated, "0005_rename_run_name.sql", RENAME)
    assert check(migrated).ok  # head (what is deployed) is still fine
    result = check(migrated, pending=True)
    assert not result.ok
    assert {f.kind for f in result.findings} == {"prepare"}
    assert all(f.against == "pending" and f.sqlstate == "42703" for f in result.findings)
    assert all(f.migration == f"{path}:2" for f in result.findings), result.text()

    up(migrated)  # the oracle: the same statements on a database that ran the rename
    expected = failing_with(migrated.database_url or "", migrated, "42703")
    assert {f.query for f in result.findings} == expected
    assert {"queries:cost_by_pipeline", "queries:run_overview", "queries:failed_runs"} <= expected

    runner = CliRunner()
    monkeypatch.chdir(migrated.project_dir)  # file:line is shown relative to the project
    url = migrated.database_url or ""
    out = runner.invoke(app, ["check", "--pending", "--database-url", url])
    as_json = runner.invoke(app, ["check", "--json", "--database-url", url])
    print(out.stdout)
    # after `up`, head has the rename: the deployed code is broken at head too
    assert out.exit_code == 1, out.output
    lines = [line for line in out.stdout.splitlines() if "42703" in line]
    assert sorted({line.split()[0] for line in lines}) == sorted(expected)
    assert all("migrations/sql/0005_rename_run_name.sql:2" in line for line in lines)
    payload = json.loads(as_json.stdout)
    assert as_json.exit_code == 1 and payload["ok"] is False
    assert {f["query"] for f in payload["findings"]} == expected


def test_cost_becoming_double_precision_is_decimal_against_float(migrated: Settings) -> None:
    path = add_migration(
        migrated,
        "0005_cost_float.sql",
        "-- floats are fine for costs (they are not)\n" + COST_FLOAT,
    )
    result = check(migrated, pending=True)
    typed = [f for f in result.findings if f.kind == "type"]
    assert all(f.against == "pending" for f in typed)
    # the table column is traced to the migration's line; sum(cost) is an expression
    assert {(f.query, f.migration) for f in typed} == {
        ("queries:failed_runs", f"{path}:2"),
        ("queries:cost_by_pipeline", None),
    }
    assert typed and not [f for f in result.findings if f.kind != "type"], result.text()
    assert {f.query for f in typed} == {"queries:failed_runs", "queries:cost_by_pipeline"}
    for f in typed:
        assert "Decimal" in f.message and "float" in f.message, f.text()
    assert any("column cost (pipeline_run.cost, double precision)" in f.message for f in typed)

    # the oracle: after the migration the promised Decimal really arrives as a float
    up(migrated)
    from schema import pipeline_run as run

    with querykit.connect(migrated.database_url or "") as db:
        db.execute(querykit.insert(run).values(name="x", cost=Decimal("1.5")))
        value: object = db.scalar(querykit.select(run.c.cost))
    assert type(value) is float


def test_a_nullable_column_added_is_fine(migrated: Settings) -> None:
    add_migration(migrated, "0005_run_note.sql", "ALTER TABLE pipeline_run ADD COLUMN note text;\n")
    result = check(migrated, pending=True)
    assert result.ok, result.text()
    assert any(a.startswith("pending (0005_run_note.sql") for a in result.against)


def test_a_parameter_the_codec_cannot_send_is_reported(migrated: Settings) -> None:
    """started_at as text: the server infers text for the parameter, but querykit sends a
    timestamptz, and text >= timestamptz does not exist."""
    add_migration(
        migrated,
        "0005_started_at_text.sql",
        "ALTER TABLE pipeline_run ALTER COLUMN started_at TYPE text;\n",
    )
    result = check(migrated, pending=True)
    params = [f for f in result.findings if f.kind == "param"]
    assert params and {f.query for f in params} == {"queries:failed_runs"}, result.text()
    assert all(f.sqlstate == "42883" and "datetime" in f.message for f in params)

    up(migrated)  # the oracle: the query really fails when run
    from queries import failed_runs

    with querykit.connect(migrated.database_url or "") as db, pytest.raises(DatabaseError) as err:
        db.all(failed_runs())
    assert err.value.sqlstate == "42883"


AS_QUERIES = """
import dataclasses
from decimal import Decimal

from querykit import find_many
from schema import pipeline_run as run


@dataclasses.dataclass
class RunCost:
    name: str
    cost: Decimal


runs = find_many(run, columns=["name", "cost"], as_=RunCost)
"""


def test_an_as_class_that_the_pending_migration_makes_wrong_is_reported(
    migrated: Settings,
) -> None:
    (migrated.project_dir / "as_queries.py").write_text(AS_QUERIES)
    settings = migrated.with_overrides(queries=["as_queries"])
    assert check(settings).ok  # RunCost fits schema.py and head
    add_migration(settings, "0005_cost_float.sql", COST_FLOAT)
    result = check(settings, pending=True)
    found = [f for f in result.findings if f.kind == "as_"]
    assert [f.message for f in found] == [
        "as_=RunCost field cost is Decimal, but the column gives float"
    ], result.text()
    assert found[0].statement == "as_queries:runs [2/2 level 1]"
