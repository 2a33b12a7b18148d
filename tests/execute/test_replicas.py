"""Read replicas: plain SELECTs outside transactions go to a replica, everything else to the primary.

A second database on the same server stands in for the replica; each database
holds a row naming itself, so a query's answer shows which one served it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from querykit import QueryRecord, count, eq, insert, placeholder, raw, select, update
from schema import pipeline_run

run = pipeline_run
WHO = select(run.c.name).where(eq(run.c.id, "who"))


@pytest.fixture
async def routed(make_db: Any, url: str, new_url: Callable[[], str]) -> Any:
    replica_a, replica_b = new_url(), new_url()
    for target, name in ((url, "primary"), (replica_a, "replica a"), (replica_b, "replica b")):
        plain = await make_db(target)
        await plain.execute(insert(run).values(id="who", name=name))
    return await make_db(url, replicas=[replica_a, replica_b])


async def test_reads_go_to_the_replicas_in_turn(routed: Any) -> None:
    served = [await routed.scalar(WHO) for _ in range(4)]
    assert served == ["replica a", "replica b", "replica a", "replica b"]
    assert [r async for r in routed.stream(WHO)] in ([("replica a",)], [("replica b",)])
    prepared = routed.prepare(select(run.c.name).where(eq(run.c.id, placeholder("id"))))
    assert (await prepared.scalar(id="who")).startswith("replica")


async def test_writes_locking_reads_and_raw_sql_go_to_the_primary(routed: Any) -> None:
    assert (
        await routed.scalar(
            update(run).set(cost=1).where(eq(run.c.id, "who")).returning(run.c.name)
        )
        == "primary"
    )
    assert await routed.scalar(WHO.for_update()) == "primary"
    assert (
        await routed.scalar(raw("SELECT name FROM pipeline_run WHERE id = 'who'").returns(str))
        == "primary"
    )
    assert await routed.insert_many(run, [{"name": "new"}]) == 1


async def test_inside_a_transaction_everything_goes_to_the_primary(routed: Any) -> None:
    async with routed.transaction() as tx:
        assert await routed.scalar(WHO) == "primary"
        assert await tx.scalar(WHO) == "primary"
        assert [r async for r in routed.stream(WHO)] == [("primary",)]


async def test_the_query_log_names_the_server(routed: Any, url: str) -> None:
    records: list[QueryRecord] = []
    routed.on_query(records.append)
    await routed.scalar(WHO)
    await routed.execute(update(run).set(cost=2).where(eq(run.c.id, "who")))
    read, write = records
    assert read.target != write.target
    assert url.endswith(write.target.split("/", 1)[1])
    assert await routed.scalar(select(count()).from_(run)) == 1
    assert await routed.scalar(select(sa.func.current_database())) != url.rsplit("/", 1)[1]
