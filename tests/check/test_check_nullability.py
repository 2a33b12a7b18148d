"""Outer joins and nested includes: no column is claimed non-null that returns NULL.

Each query below runs on crafted rows that make its outer joins really produce
NULLs (a run without steps, a step too small for a FULL JOIN's condition). The
oracle is the rows themselves, read by plain psycopg: every column that held a
NULL must be described as NULL-able, and, where the query promises non-null
(schema.py's non-null columns, or a declared row type), ``check`` must report
it. The converse keeps the check precise: columns the planner proves non-null
(a LEFT JOIN reduced to an inner one by a strict WHERE or a later inner join,
the preserved side of a join) are not reported. sqlx's issues #367 (a LEFT JOIN
the planner runs as a Right join), #2796 (two LEFT JOINs in a chain) and #2127
(a WHERE on the preserved side) are such shapes, each one a query here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgvector.psycopg import register_vector

import querykit
from querykit import Settings, load_settings
from querykit.check import check, compile_statements, describe_all
from querykit.migrate import up
from querykit.named import load_named

JOIN_QUERIES = '''
from querykit import RawQuery, count, eq, find_many, gt, include, raw, select
from schema import pipeline_run as run, pipeline_step as step

left = select(run.c.id, run.c.name, step.c.name.label("step_name"), step.c.tokens).from_(
    run
).left_join(step, eq(step.c.run_id, run.c.id))

right = select(step.c.name, run.c.name.label("run_name")).from_(step).right_join(
    run, eq(step.c.run_id, run.c.id)
)

full = select(step.c.name, run.c.name.label("run_name")).from_(step).full_join(
    run, eq(step.c.run_id, run.c.id) & gt(step.c.tokens, 100)
)

left_made_inner_by_where = (
    select(run.c.name, step.c.name.label("step_name"))
    .from_(run)
    .left_join(step, eq(step.c.run_id, run.c.id))
    .where(gt(step.c.tokens, 1))
)

left_counted = (
    select(run.c.name, count(step.c.id).label("steps"))
    .from_(run)
    .left_join(step, eq(step.c.run_id, run.c.id))
    .group_by(run.c.name)
)

nested_join_on_the_nullable_side: RawQuery[str, str, str] = raw("""
    SELECT r.name, s.name AS step_name, r2.name AS parent_name
    FROM pipeline_run r
    LEFT JOIN (pipeline_step s JOIN pipeline_run r2 ON r2.id = s.run_id) ON s.run_id = r.id
""")

left_then_inner: RawQuery[str, str, str] = raw("""
    SELECT r.name, s.name AS step_name, r2.name AS again
    FROM pipeline_run r
    LEFT JOIN pipeline_step s ON s.run_id = r.id
    JOIN pipeline_run r2 ON r2.id = s.run_id
""")

left_in_a_subquery: RawQuery[str, str] = raw("""
    SELECT x.run_name, x.step_name
    FROM (SELECT r.name AS run_name, s.name AS step_name
          FROM pipeline_run r LEFT JOIN pipeline_step s ON s.run_id = r.id
          ORDER BY 1 LIMIT 100) x
""")

# sqlx #2796: a second LEFT JOIN hanging off the first one's nullable side
double_left: RawQuery[str, str, str] = raw("""
    SELECT r.name, s.name AS step_name, c.type AS content_type
    FROM pipeline_run r
    LEFT JOIN pipeline_step s ON s.run_id = r.id
    LEFT JOIN content_item c ON c.id = s.model
""")

# sqlx #2127 / #3539: a WHERE on the preserved side keeps the join outer
left_where_preserved = (
    select(run.c.name, step.c.name.label("step_name"))
    .from_(run)
    .left_join(step, eq(step.c.run_id, run.c.id))
    .where(eq(run.c.id, "r2"))
)

# sqlx #367: the planner runs this LEFT JOIN as a Hash Right Join (it hashes the 2 runs,
# not the thousands of steps), so the nullable side is the plan's Outer child
left_run_as_right: RawQuery[str, str] = raw("""
    SELECT r.name, s.name AS step_name
    FROM pipeline_run r LEFT JOIN pipeline_step s ON s.run_id = r.id AND s.tokens > 0
""")

runs_with_steps = find_many(run, with_={"steps": include()})
steps_with_run = find_many(step, with_={"run": include()})
runs_with_steps_batched = find_many(run, with_={"steps": include()}, strategy="batched")
'''


@pytest.fixture
def joined(project: Path, database_url: str) -> Settings:
    (project / "join_queries.py").write_text(textwrap.dedent(JOIN_QUERIES))
    settings = load_settings(
        cwd=project, env={}, database_url=database_url, queries=["join_queries"]
    )
    up(settings)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pipeline_run (id, name) VALUES ('r1', 'with steps'), ('r2', 'no steps')"
        )
        conn.execute(
            "INSERT INTO pipeline_step (id, run_id, name, tokens, model) VALUES"
            " ('s1', 'r1', 'big', 500, 'c1'), ('s2', 'r1', 'small', 5, NULL)"
        )
        conn.execute("INSERT INTO content_item (id, type, metadata) VALUES ('c1', 'video', '{}')")
        conn.execute(  # enough steps that the planner hashes the runs (a Right join)
            "INSERT INTO pipeline_step (id, run_id, name, tokens)"
            " SELECT 'x' || i, 'r1', 'filler', 1 FROM generate_series(1, 3000) AS i"
        )
        conn.execute("ANALYZE")
    return settings


def nulls_by_column(url: str, sql: str, params: Any) -> tuple[list[str], set[str]]:
    with psycopg.connect(url) as conn:
        register_vector(conn)
        cur = conn.execute(sql, params)
        names = [c.name for c in cur.description or []]
        rows = cur.fetchall()
    return names, {names[i] for row in rows for i, v in enumerate(row) if v is None}


EXPECTED_NULLABLE = {
    # query: the columns the crafted rows really make NULL
    "left": {"step_name", "tokens"},
    "right": {"name"},
    "full": {"name", "run_name"},
    "nested_join_on_the_nullable_side": {"step_name", "parent_name"},
    "left_in_a_subquery": {"step_name"},
    "double_left": {"step_name", "content_type"},
    "left_where_preserved": {"step_name"},
    "left_run_as_right": {"step_name"},
}
NEVER_NULL = {
    "left": {"id", "name"},
    "right": {"run_name"},
    "left_made_inner_by_where": {"name", "step_name"},
    "left_counted": {"name"},
    "nested_join_on_the_nullable_side": {"name"},
    "left_then_inner": {"name", "step_name", "again"},
    "double_left": {"name"},
    "left_where_preserved": {"name"},
    "left_run_as_right": {"name"},
}
JOINS = set(EXPECTED_NULLABLE) | set(NEVER_NULL)


def test_columns_that_return_null_are_described_as_nullable(joined: Settings) -> None:
    url = joined.database_url or ""
    statements = [s for s in compile_statements(load_named(None, joined)) if "json" not in s.where]
    described = describe_all(url, statements)
    seen = set()
    for statement, d in zip(statements, described, strict=True):
        assert d.ok, (statement.where, d.error)
        short = statement.query.split(":")[1]
        if short not in JOINS:  # the nested queries: see the last test
            continue
        _, null = nulls_by_column(url, statement.compiled.sql, statement.compiled.params)
        nullable = {c.name for c in d.columns if c.nullable is not False}
        assert null <= nullable, (statement.where, null - nullable)
        assert null == EXPECTED_NULLABLE.get(short, set()), (short, null)  # the rows do it
        assert not (NEVER_NULL.get(short, set()) & nullable), (short, nullable)
        seen.add(short)
    assert seen == JOINS


def test_the_planner_really_runs_a_left_join_as_a_right_join(joined: Settings) -> None:
    """The case sqlx's #367 is about must be the plan's shape here, or the test proves nothing."""
    [query] = load_named("join_queries:left_run_as_right", joined)
    with psycopg.connect(joined.database_url or "") as conn:
        plan = conn.execute(
            "EXPLAIN (GENERIC_PLAN, FORMAT JSON) " + query.query.to_sql().sql
        ).fetchone()
    assert plan is not None and plan[0][0]["Plan"]["Join Type"] == "Right"


def test_check_reports_every_column_that_returned_null_against_a_non_null_promise(
    joined: Settings,
) -> None:
    result = check(joined)
    reported = {
        (f.query.split(":")[1], f.message.split()[1]) for f in result.findings if f.kind == "null"
    }
    assert {f.kind for f in result.findings} == {"null"}, result.text()
    promised = {  # non-null in schema.py, or in the declared RawQuery[...] row type
        ("left", "step_name"),
        ("left", "tokens"),
        ("right", "name"),
        ("full", "name"),
        ("full", "run_name"),
        ("nested_join_on_the_nullable_side", "step_name"),
        ("nested_join_on_the_nullable_side", "parent_name"),
        ("left_in_a_subquery", "step_name"),
        ("double_left", "step_name"),
        ("double_left", "content_type"),
        ("left_where_preserved", "step_name"),
        ("left_run_as_right", "step_name"),
    }
    assert reported == promised


def test_nested_includes_return_no_null_where_a_level_is_described_non_null(
    joined: Settings,
) -> None:
    """The nested levels, run for real by querykit (both strategies), against the describe."""
    url = joined.database_url or ""
    named = {q.name: q for q in load_named(None, joined)}
    statements = compile_statements(list(named.values()))
    described = dict(zip([s.where for s in statements], describe_all(url, statements), strict=True))
    with querykit.connect(url) as db:
        for name, child in (
            ("runs_with_steps", "steps"),
            ("steps_with_run", "run"),
            ("runs_with_steps_batched", "steps"),
        ):
            results: list[Any] = db.all(named[name].query)
            assert results
            prefix = f"join_queries:{name} ["
            levels = [d for w, d in described.items() if w.startswith(prefix) and "json" not in w]
            assert len(levels) == 2
            root, nested = levels[0], levels[1]
            rows = [(root, r) for r in results] + [
                (nested, c)
                for r in results
                for c in (r[child] if isinstance(r[child], list) else [r[child]])
                if c is not None
            ]
            for level, row in rows:
                non_null = {c.name for c in level.columns if c.nullable is False}
                assert not {k for k in non_null if k in row and row[k] is None}, (name, row)
            # the crafted run without steps has an empty list, never a NULL row
            assert any(r.get("steps") == [] for r in results) or child == "run"
