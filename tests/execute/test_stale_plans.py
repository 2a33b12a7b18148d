"""Prepared statements outlive a migration that changes a column's type.

PostgreSQL refuses to run a statement prepared before ``ALTER COLUMN ... TYPE``
when its result type changed (SQLSTATE 0A000, "cached plan must not change
result type"). Every pooled connection that had prepared the shape would fail
until it is recycled. Outside a transaction querykit drops the connection's
prepared statements and runs the statement again, once; inside a transaction,
which the error has aborted, it says what happened and what to do.

The migration runs on its own connection, as ``querykit migrate up`` would,
while the pool stays open.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from querykit import (
    DatabaseError,
    QueryRecord,
    eq,
    find_many,
    include,
    insert,
    placeholder,
    raw,
    relation,
    select,
)
from schema import pipeline_run, pipeline_step

step = pipeline_step
POOL = 4
TOKENS = select(step.c.name, step.c.tokens).where(eq(step.c.run_id, "r1")).order_by(step.c.name)
MIGRATION = "ALTER TABLE pipeline_step ALTER COLUMN tokens TYPE bigint"


async def seed(db: Any) -> None:
    await db.execute(insert(pipeline_run).values(id="r1", name="ingest"))
    await db.execute(insert(step).values(run_id="r1", name="a", tokens=7))


def migrate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(MIGRATION)


async def test_a_type_change_under_a_live_pool_fails_no_query(
    make_db: Any, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = await make_db(url, min_size=POOL, max_size=POOL)
    await seed(db)
    backends = [await db.scalar(select(sa.func.pg_backend_pid())) for _ in range(POOL)]
    assert len(set(backends)) == POOL  # each call in turn goes to the next connection
    by_run = db.prepare(
        select(step.c.name, step.c.tokens).where(eq(step.c.run_id, placeholder("run")))
    )
    # The pool hands out its idle connections in turn: each one runs both shapes
    # three times, so each has prepared them.
    for _ in range(3 * POOL):
        assert await db.all(TOKENS) == [("a", 7)]
        assert await by_run.all(run="r1") == [("a", 7)]
    records: list[QueryRecord] = []
    db.on_query(records.append)

    migrate(url)
    caplog.set_level(logging.INFO, logger="querykit")

    failed = 0
    for _ in range(3 * POOL):
        for run_query in (lambda: db.all(TOKENS), lambda: by_run.all(run="r1")):
            try:
                assert await run_query() == [("a", 7)]  # type: ignore[no-untyped-call]
            except DatabaseError:
                failed += 1
    assert failed == 0
    assert [r.error for r in records if r.error is not None] == []
    assert len(records) == 2 * 3 * POOL  # one record per call: the rerun is not a second query
    # Every connection met the stale plan once, and dropped both shapes at once.
    reruns = [r for r in caplog.records if "column type changed" in r.getMessage()]
    assert len(reruns) == POOL


async def test_a_pipelined_batched_load_runs_again_too(make_db: Any, url: str) -> None:
    # Two sibling relations: the batched strategy sends their statements in one pipeline.
    meta = sa.MetaData()
    run_copy, step_copy = pipeline_run.to_metadata(meta), step.to_metadata(meta)
    relation(run_copy, "same_steps", step_copy, on=[(run_copy.c.id, step_copy.c.run_id)], many=True)
    nested = find_many(
        run_copy,
        columns=["name"],
        with_={
            "steps": include(columns=["tokens"]),
            "same_steps": include(columns=["tokens"]),
        },
        strategy="batched",
    )
    expected = [{"name": "ingest", "steps": [{"tokens": 7}], "same_steps": [{"tokens": 7}]}]
    db = await make_db(url, min_size=1, max_size=1)
    await seed(db)
    for _ in range(3):
        assert await db.all(nested) == expected
    migrate(url)
    assert await db.all(nested) == expected


async def test_inside_a_transaction_the_error_says_what_to_do(make_db: Any, url: str) -> None:
    db = await make_db(url, min_size=1, max_size=1)
    await seed(db)
    for _ in range(3):
        await db.all(TOKENS)
    migrate(url)
    with pytest.raises(DatabaseError) as caught:
        async with db.transaction():
            await db.all(TOKENS)
    error = caught.value
    assert error.sqlstate == "0A000"
    message = str(error)
    assert "prepared" in message and "column" in message and "type" in message
    assert "retries=" in message
    assert isinstance(error.__cause__, psycopg.errors.FeatureNotSupported)
    # The rollback dropped the connection's prepared statements: the next run plans anew.
    async with db.transaction():
        assert await db.all(TOKENS) == [("a", 7)]


async def test_transaction_retries_rerun_a_block_that_met_a_stale_plan(
    make_db: Any, url: str
) -> None:
    db = await make_db(url, min_size=1, max_size=1)
    await seed(db)
    for _ in range(3):
        await db.all(TOKENS)
    migrate(url)
    attempts = []
    async for attempt in db.transaction(retries=1):
        async with attempt as tx:
            attempts.append(attempt.number)
            assert await tx.all(TOKENS) == [("a", 7)]
    assert attempts == [1, 2]


async def test_other_feature_errors_keep_their_own_message(db: Any) -> None:
    with pytest.raises(DatabaseError) as caught:  # 0A000 as well, but no stale plan
        await db.all(raw("SELECT count(*) FROM pipeline_run FOR UPDATE").returns(int))
    assert caught.value.sqlstate == "0A000"
    assert "FOR UPDATE is not allowed" in str(caught.value)
    assert "prepared statement" not in str(caught.value)
