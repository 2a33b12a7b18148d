"""Read replicas, round-robin: several replicas, each serving its share of the reads.

Two more databases on the same server stand in for two replicas; each database
holds a row naming itself, so a query's answer shows which one served it (real
replicas hold the same rows). What goes to the primary, read-your-writes, lag
and failover are tested on a real streaming standby: ``test_replication.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSVECTOR

from querykit import (
    QueryRecord,
    eq,
    find_first,
    find_many,
    hybrid_search,
    include,
    insert,
    placeholder,
    select,
    vector,
)
from schema import pipeline_run, pipeline_step

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


# -- nested reads and hybrid search are plain reads too ----------------------------------------

DOC_DDL = (
    "CREATE TABLE replica_doc (id int PRIMARY KEY, title text NOT NULL, "
    "embedding vector(3) NOT NULL, search tsvector GENERATED ALWAYS AS "
    "(to_tsvector('english', title)) STORED)"
)
doc = sa.Table(
    "replica_doc",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("embedding", vector(3), nullable=False),
    sa.Column("search", TSVECTOR),
)


@pytest.fixture
async def routed_with_steps(make_db: Any, url: str, new_url: Callable[[], str]) -> Any:
    """Each database: run "who" named after it, one step named after it, one document."""
    replica_a, replica_b = new_url(), new_url()
    for target, name in ((url, "primary"), (replica_a, "replica a"), (replica_b, "replica b")):
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(DOC_DDL)
        plain = await make_db(target)
        await plain.execute(insert(run).values(id="who", name=name))
        await plain.execute(insert(pipeline_step).values(run_id="who", name=f"{name} step"))
        await plain.execute(insert(doc).values(id=1, title=f"{name} vacuum", embedding=[1, 0, 0]))
    return await make_db(url, replicas=[replica_a, replica_b])


@pytest.mark.parametrize("strategy", ["json", "batched"])
async def test_find_many_and_find_first_go_to_a_replica(
    routed_with_steps: Any, url: str, strategy: str
) -> None:
    db = routed_with_steps
    records: list[QueryRecord] = []
    db.on_query(records.append)
    nested = find_many(
        run,
        columns=["name"],
        where=eq(run.c.id, "who"),
        with_={"steps": include(columns=["name"])},
        strategy=strategy,  # type: ignore[arg-type]
    )
    served = [await db.all(nested) for _ in range(2)]
    # Every level comes from the same server: the run and its step name one database.
    assert served == [
        [{"name": "replica a", "steps": [{"name": "replica a step"}]}],
        [{"name": "replica b", "steps": [{"name": "replica b step"}]}],
    ]
    first = await db.first(find_first(run, columns=["name"], where=eq(run.c.id, "who")))
    assert first == {"name": "replica a"}
    via_table = db.query(run).find_many(columns=["name"], where=eq(run.c.id, "who"))
    if inspect.isawaitable(via_table):  # AsyncDatabase; the sync one answers at once
        via_table = await via_table
    assert via_table == [{"name": "replica b"}]
    primary_db = url.rsplit("/", 1)[1]
    assert records and all(r.target.rsplit("/", 1)[1] != primary_db for r in records)
    async with db.transaction():
        assert await db.all(nested) == [{"name": "primary", "steps": [{"name": "primary step"}]}]


async def test_hybrid_search_goes_to_a_replica(routed_with_steps: Any, url: str) -> None:
    db = routed_with_steps
    records: list[QueryRecord] = []
    db.on_query(records.append)
    q = hybrid_search(doc.c.embedding, [1, 0, 0], doc.c.search, "vacuum", columns=[doc.c.title])
    titles = [(await db.all(q))[0][0] for _ in range(2)]
    assert titles == ["replica a vacuum", "replica b vacuum"]
    primary_target = url.rsplit("/", 1)[1]
    assert [r.target.rsplit("/", 1)[1] != primary_target for r in records] == [True, True]
    async with db.transaction():
        assert (await db.all(q))[0][0] == "primary vacuum"
