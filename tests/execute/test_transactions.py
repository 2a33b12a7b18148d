"""Transactions: commit, rollback, savepoints, isolation, read-only, retries."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from querykit import (
    ArgumentError,
    DatabaseError,
    ExecuteError,
    count,
    eq,
    insert,
    raw,
    select,
    update,
)
from schema import Status, pipeline_run

from .conftest import raw_database

run = pipeline_run


async def names(db: Any) -> list[str]:
    return list(await db.scalars(select(run.c.name).order_by(run.c.name)))


async def test_a_block_commits(db: Any) -> None:
    async with db.transaction() as tx:
        await tx.execute(insert(run).values(name="a"))
        await db.execute(insert(run).values(name="b"))  # db routes to the same transaction
        assert await tx.scalar(select(count()).from_(run)) == 2
    assert await names(db) == ["a", "b"]


async def test_uncommitted_rows_are_invisible_outside(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    async with db.transaction():
        await db.execute(insert(run).values(name="a"))
        assert admin.execute("SELECT count(*) FROM pipeline_run").fetchone() == (0,)
    assert admin.execute("SELECT count(*) FROM pipeline_run").fetchone() == (1,)


async def test_an_exception_rolls_the_block_back(db: Any) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction() as tx:
            await tx.execute(insert(run).values(name="a"))
            raise RuntimeError("boom")
    assert await names(db) == []


async def test_nested_blocks_are_savepoints(db: Any) -> None:
    async with db.transaction() as tx:
        await tx.execute(insert(run).values(name="outer"))
        with pytest.raises(ValueError):
            async with db.transaction() as inner:
                await inner.execute(insert(run).values(name="inner, rolled back"))
                raise ValueError
        async with tx.transaction() as inner:
            await inner.execute(insert(run).values(name="inner, kept"))
        assert await names(db) == ["inner, kept", "outer"]
    assert await names(db) == ["inner, kept", "outer"]


async def test_a_database_error_inside_a_savepoint_leaves_the_transaction_usable(db: Any) -> None:
    async with db.transaction():
        rid = await db.scalar(insert(run).values(name="a").returning(run.c.id))
        with pytest.raises(DatabaseError) as info:
            async with db.transaction():
                await db.execute(insert(run).values(id=rid, name="dup"))
        assert info.value.sqlstate == "23505"
        await db.execute(insert(run).values(name="b"))
    assert await names(db) == ["a", "b"]


async def test_isolation_and_readonly(db: Any) -> None:
    async with db.transaction(isolation="serializable", readonly=True) as tx:
        level = await tx.scalar(raw("SHOW transaction_isolation").returns(str))
        readonly = await tx.scalar(raw("SHOW transaction_read_only").returns(str))
        assert (level, readonly) == ("serializable", "on")
        with pytest.raises(DatabaseError, match="read-only") as info:
            async with tx.transaction():
                await tx.execute(insert(run).values(name="x"))
        assert info.value.sqlstate == "25006"
    # the pooled connection is back to the defaults
    async with db.transaction(isolation="REPEATABLE_READ") as tx:
        assert await tx.scalar(raw("SHOW transaction_isolation").returns(str)) == "repeatable read"
        assert await tx.scalar(raw("SHOW transaction_read_only").returns(str)) == "off"
    async with db.transaction() as tx:
        assert await tx.scalar(raw("SHOW transaction_isolation").returns(str)) == "read committed"


async def test_bad_options_are_clear_errors(db: Any) -> None:
    with pytest.raises(ArgumentError, match="isolation='snapshot'"):
        db.transaction(isolation="snapshot")
    with pytest.raises(ArgumentError, match="retries"):
        db.transaction(retries=-1)
    async with db.transaction():
        with pytest.raises(ArgumentError, match="savepoint and cannot set isolation"):
            async with db.transaction(isolation="serializable"):
                pass
        with pytest.raises(ArgumentError, match="outermost"):
            async for attempt in db.transaction(retries=2):
                async with attempt:
                    pass
    with pytest.raises(ArgumentError, match="must be entered"):
        async for _attempt in db.transaction(retries=2):
            pass


async def test_retries_need_the_loop_form(db: Any, mode: str) -> None:
    with pytest.raises(ArgumentError, match=r"for attempt in db\.transaction"):
        async with db.transaction(retries=2):
            pass


async def test_the_handle_is_dead_after_the_block(db: Any) -> None:
    async with db.transaction() as tx:
        pass
    with pytest.raises(ExecuteError, match="has ended"):
        await tx.all(select(run.c.id))
    # the database itself works, outside any transaction
    assert await db.scalar(select(count()).from_(run)) == 0


async def test_retries_rerun_the_block_on_a_serialization_failure(
    db: Any, admin: psycopg.Connection[Any]
) -> None:
    rid = await db.scalar(insert(run).values(name="counter", cost=Decimal(10)).returning(run.c.id))
    attempts = []
    async for attempt in db.transaction(isolation="repeatable read", retries=3):
        async with attempt as tx:
            attempts.append(attempt.number)
            cost = await tx.scalar(select(run.c.cost).where(eq(run.c.id, rid)))  # snapshot taken
            if attempt.number == 1:
                # Another session changes the row after our snapshot and commits:
                # our UPDATE of the same row must fail with 40001.
                admin.execute("UPDATE pipeline_run SET cost = cost + 100 WHERE id = %s", (rid,))
            await tx.execute(update(run).set(cost=cost + 1).where(eq(run.c.id, rid)))
    assert attempts == [1, 2]
    assert await db.scalar(select(run.c.cost).where(eq(run.c.id, rid))) == Decimal(111)


async def test_retries_give_up_after_n_and_raise(db: Any, admin: psycopg.Connection[Any]) -> None:
    rid = await db.scalar(insert(run).values(name="counter").returning(run.c.id))
    attempts = []
    with pytest.raises(DatabaseError) as info:
        async for attempt in db.transaction(isolation="serializable", retries=1):
            async with attempt as tx:
                attempts.append(attempt.number)
                await tx.scalar(select(run.c.cost).where(eq(run.c.id, rid)))
                admin.execute("UPDATE pipeline_run SET cost = cost + 1 WHERE id = %s", (rid,))
                await tx.execute(update(run).set(name="mine").where(eq(run.c.id, rid)))
    assert attempts == [1, 2]
    assert info.value.sqlstate == "40001"
    assert "run it again" in str(info.value)


async def test_other_errors_are_not_retried(db: Any) -> None:
    attempts = []
    with pytest.raises(DatabaseError) as info:
        async for attempt in db.transaction(retries=3):
            async with attempt as tx:
                attempts.append(attempt.number)
                await tx.all(raw("SELECT * FROM nope"))
    assert attempts == [1] and info.value.sqlstate == "42P01"
    with pytest.raises(KeyError):
        async for attempt in db.transaction(retries=3):
            async with attempt:
                raise KeyError("x")


async def test_a_successful_block_runs_once(db: Any) -> None:
    attempts = []
    async for attempt in db.transaction(retries=5):
        async with attempt as tx:
            attempts.append(attempt.number)
            await tx.execute(insert(run).values(name="once", status=Status.RUNNING))
    assert attempts == [1]
    assert await names(db) == ["once"]


@pytest.mark.parametrize("mode", ["async"])
async def test_transactions_of_concurrent_tasks_are_separate(make_db: Any, url: str) -> None:
    db = await make_db(url, max_size=4)

    async def worker(name: str, fail: bool) -> None:
        async with db.transaction():
            await db.execute(insert(run).values(name=name))
            await asyncio.sleep(0.01)
            if fail:
                raise RuntimeError

    results = await asyncio.gather(
        worker("a", False), worker("b", True), worker("c", False), return_exceptions=True
    )
    assert isinstance(results[1], RuntimeError)
    assert await names(db) == ["a", "c"]


async def test_queries_outside_the_block_use_other_connections(
    make_db: Any, url: str, mode: str
) -> None:
    db = await make_db(url, max_size=2)
    async with db.transaction():
        await db.execute(insert(run).values(name="pending"))
        inside = await db.scalar(raw("SELECT pg_backend_pid()").returns(int))
    async with db.transaction():
        again = await db.scalar(raw("SELECT pg_backend_pid()").returns(int))
    assert isinstance(inside, int) and isinstance(again, int)
    stats = raw_database(db)._pool.get_stats()
    assert stats["pool_available"] == stats["pool_size"]  # every connection is back


def test_transactions_of_concurrent_threads_are_separate(url: str) -> None:
    import threading

    from querykit import connect

    with connect(url, max_size=4) as db:
        errors: list[BaseException] = []
        barrier = threading.Barrier(3)

        def worker(name: str, fail: bool) -> None:
            try:
                with db.transaction():
                    db.execute(insert(run).values(name=name))
                    barrier.wait(timeout=10)  # all three transactions are open at once
                    if fail:
                        raise RuntimeError
            except RuntimeError as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=worker, args=(n, f))
            for n, f in (("a", False), ("b", True), ("c", False))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(errors) == 1
        assert db.scalars(select(run.c.name).order_by(run.c.name)) == ["a", "c"]


async def test_retries_rerun_the_block_on_a_deadlock(db: Any, url: str) -> None:
    import threading

    a = await db.scalar(insert(run).values(name="a").returning(run.c.id))
    b = await db.scalar(insert(run).values(name="b").returning(run.c.id))
    other_has_b = threading.Event()
    other_done = threading.Event()

    def other() -> None:
        # Locks b, waits until our block is blocked on b, then asks for a: a deadlock.
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE pipeline_run SET cost = cost + 1 WHERE id = %s", (b,))
            other_has_b.set()
            with psycopg.connect(url, autocommit=True) as watch:
                for _ in range(500):
                    row = watch.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    ).fetchone()
                    if row and row[0]:
                        break
                    time.sleep(0.01)
            conn.execute("UPDATE pipeline_run SET cost = cost + 1 WHERE id = %s", (a,))
            conn.commit()
        other_done.set()

    attempts = []
    thread = threading.Thread(target=other)
    async for attempt in db.transaction(retries=2):
        async with attempt as tx:
            attempts.append(attempt.number)
            # Our block detects the deadlock first, so it is the one that fails.
            await tx.execute(raw("SET LOCAL deadlock_timeout = '50ms'"))
            await tx.execute(update(run).set(name="a2").where(eq(run.c.id, a)))
            if attempt.number == 1:
                thread.start()
                assert other_has_b.wait(10)
            await tx.execute(update(run).set(name="b2").where(eq(run.c.id, b)))
    thread.join(10)
    assert other_done.is_set()
    assert attempts == [1, 2]
    assert await names(db) == ["a2", "b2"]
