"""Load: 200 concurrent tasks of mixed reads and writes on a pool of 10, for a bounded time."""

from __future__ import annotations

import asyncio
import random
import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest

import querykit
from querykit import count, eq, fn, insert, placeholder, select, update
from schema import Status, pipeline_run

from .conftest import raw_database

run = pipeline_run
TASKS = 200
POOL = 10
SECONDS = 2.0


@pytest.mark.parametrize("mode", ["async"])
async def test_two_hundred_tasks_on_a_pool_of_ten(make_db: Any, url: str) -> None:
    db: querykit.AsyncDatabase = await make_db(url, min_size=2, max_size=POOL, timeout=30)
    by_id = db.prepare(select(run.c.name, run.c.cost).where(eq(run.c.id, placeholder("id"))))
    written = [0] * TASKS
    errors: list[BaseException] = []
    deadline = time.monotonic() + SECONDS

    async def worker(n: int) -> None:
        rng = random.Random(n)
        mine: list[str] = []
        try:
            while time.monotonic() < deadline:
                op = rng.random()
                if op < 0.3 or not mine:
                    rid = await db.scalar(
                        insert(run).values(name=f"t{n}", cost=Decimal(1)).returning(run.c.id)
                    )
                    mine.append(rid)
                    written[n] += 1
                elif op < 0.5:
                    async with db.transaction() as tx:
                        await tx.insert_many(run, [{"name": f"t{n}", "cost": 1}] * 2)
                        await tx.execute(
                            update(run).set(status=Status.RUNNING).where(eq(run.c.id, mine[-1]))
                        )
                    written[n] += 2
                elif op < 0.7:
                    assert (await by_id.one(id=rng.choice(mine)))[0] == f"t{n}"
                elif op < 0.85:
                    assert await db.scalar(select(count()).from_(run)) >= 1
                else:
                    rows = [
                        r async for r in db.stream(select(run.c.id).where(eq(run.c.name, f"t{n}")))
                    ]
                    assert len(rows) >= len(mine)
        except BaseException as exc:  # every failure is counted, none is swallowed
            errors.append(exc)

    await asyncio.gather(*(worker(n) for n in range(TASKS)))
    assert errors == []
    assert await db.scalar(select(count()).from_(run)) == sum(written)
    assert await db.scalar(select(fn.sum(run.c.cost))) == Decimal(sum(written))
    assert all(written)  # every task got work done
    assert queued_requests(db) > 0  # tasks really waited for connections

    pool = raw_database(db)._pool
    stats = pool.get_stats()
    assert stats["pool_size"] <= POOL
    assert stats["pool_available"] == stats["pool_size"], stats  # nothing leaked
    with psycopg.connect(url, autocommit=True) as admin:
        open_conns = admin.execute(
            "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        assert open_conns is not None and open_conns[0] <= POOL and open_conns[1] == 0
        await db.close()
        for _ in range(100):
            left = admin.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            if left == (0,):
                break
            await asyncio.sleep(0.02)
        assert left == (0,)


def queued_requests(db: Any) -> int:
    return int(raw_database(db)._pool.get_stats().get("requests_queued", 0))
