"""Pinned types of the execution API (checked by mypy --strict, never run).

Rows are typed from the query: ``tuple[*Ts]`` for the selected columns, the
``as_=`` class, or the single column's type for ``scalar``/``scalars`` (which
take single-column queries only: a type checker cannot pick the first of
several column types).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncGenerator, Callable, Generator
from decimal import Decimal
from typing import Any, NamedTuple, TypedDict, assert_type

from pgvector import Vector

from querykit import (
    AsyncDatabase,
    AsyncPreparedQuery,
    AsyncTransaction,
    Database,
    PreparedQuery,
    QueryRecord,
    Transaction,
    connect,
    connect_async,
    count,
    eq,
    insert,
    placeholder,
    raw,
    select,
    update,
)
from querykit.execute.database import Attempt, TransactionBlock
from querykit.execute.database_async import AsyncAttempt, AsyncTransactionBlock
from schema import RunMetadata, Status, embedding, pipeline_run


@dataclasses.dataclass
class RunDC:
    id: str
    cost: Decimal


class RunNT(NamedTuple):
    id: str
    cost: Decimal


class RunTD(TypedDict):
    id: str
    cost: Decimal


q = select(pipeline_run.c.id, pipeline_run.c.cost)


def sync_api(db: Database) -> None:
    assert_type(connect("postgresql://localhost/app"), Database)
    assert_type(db.all(q), list[tuple[str, Decimal]])
    assert_type(db.one(q), tuple[str, Decimal])
    assert_type(db.first(q), tuple[str, Decimal] | None)
    assert_type(db.all(q, as_=RunDC), list[RunDC])
    assert_type(db.one(q, as_=RunNT), RunNT)
    assert_type(db.first(q, as_=RunTD), RunTD | None)
    assert_type(db.scalar(select(count())), int)
    assert_type(db.scalar(select(pipeline_run.c.status)), Status)
    assert_type(db.scalars(select(pipeline_run.c.metadata)), list[RunMetadata | None])
    assert_type(db.scalars(select(embedding.c.embedding)), list[Vector])
    assert_type(db.execute(update(pipeline_run).set(name="x").all_rows()), int)
    assert_type(
        db.all(insert(pipeline_run).values(name="x").returning(pipeline_run.c.started_at)),
        list[tuple[dt.datetime]],
    )
    assert_type(db.all(raw("SELECT 1, 'a'").returns(int, str)), list[tuple[int, str]])
    assert_type(db.stream(q), Generator[tuple[str, Decimal], None, None])
    assert_type(db.stream(q, batch=10, as_=RunDC), Generator[RunDC, None, None])
    for row in db.stream(q):
        assert_type(row, tuple[str, Decimal])
    assert_type(db.insert_many(pipeline_run, [{"name": "x"}]), int)
    assert_type(db.upsert_many(pipeline_run, [{"id": "a"}], conflict=["id"]), int)

    # What the type checker refuses (an unused ignore would fail mypy --strict):
    db.scalar(q)  # type: ignore[arg-type]  # two columns: scalar() needs one
    db.all("SELECT 1")  # type: ignore[call-overload]  # text needs raw()

    stop = db.on_query(lambda record: assert_type(record, QueryRecord))
    assert_type(stop, Callable[[], None])

    block = db.transaction(isolation="serializable", readonly=True)
    assert_type(block, TransactionBlock)
    with block as tx:
        assert_type(tx, Transaction)
        assert_type(tx.one(q), tuple[str, Decimal])
        assert_type(tx.scalar(select(count())), int)
    for attempt in db.transaction(retries=3):
        assert_type(attempt, Attempt)
        with attempt as tx:
            assert_type(tx.all(q), list[tuple[str, Decimal]])

    by_id = db.prepare(q.where(eq(pipeline_run.c.id, placeholder("id", str))))
    assert_type(by_id, PreparedQuery[str, Decimal])
    assert_type(by_id.one(id="a"), tuple[str, Decimal])
    assert_type(by_id.first(id="a"), tuple[str, Decimal] | None)
    assert_type(by_id.all(id="a", as_=RunDC), list[RunDC])
    assert_type(by_id.execute(id="a"), int)
    total = db.prepare(select(count()).from_(pipeline_run))
    assert_type(total.scalar(), int)
    assert_type(placeholder("n", int), int)  # stands in for an int; a Placeholder at run time
    assert_type(placeholder("n"), Any)


async def async_api(db: AsyncDatabase) -> None:
    assert_type(await connect_async("postgresql://localhost/app"), AsyncDatabase)
    async with connect_async("postgresql://localhost/app", max_size=2) as opened:
        assert_type(opened, AsyncDatabase)
    assert_type(await db.all(q), list[tuple[str, Decimal]])
    assert_type(await db.one(q), tuple[str, Decimal])
    assert_type(await db.first(q), tuple[str, Decimal] | None)
    assert_type(await db.all(q, as_=RunTD), list[RunTD])
    assert_type(await db.scalar(select(count())), int)
    assert_type(await db.scalars(select(pipeline_run.c.cost)), list[Decimal])
    assert_type(await db.execute(update(pipeline_run).set(name="x").all_rows()), int)
    assert_type(db.stream(q), AsyncGenerator[tuple[str, Decimal], None])
    async for row in db.stream(q, as_=RunNT):
        assert_type(row, RunNT)
    assert_type(await db.insert_many(pipeline_run, [{"name": "x"}]), int)

    block = db.transaction()
    assert_type(block, AsyncTransactionBlock)
    async with block as tx:
        assert_type(tx, AsyncTransaction)
        assert_type(await tx.first(q), tuple[str, Decimal] | None)
    async for attempt in db.transaction(retries=2):
        assert_type(attempt, AsyncAttempt)
        async with attempt as tx:
            assert_type(await tx.scalar(select(count())), int)

    by_id = db.prepare(q.where(eq(pipeline_run.c.id, placeholder("id"))))
    assert_type(by_id, AsyncPreparedQuery[str, Decimal])
    assert_type(await by_id.one(id="a"), tuple[str, Decimal])
    assert_type(await by_id.all(id="a", as_=RunNT), list[RunNT])
    async for row2 in by_id.stream(id="a"):
        assert_type(row2, tuple[str, Decimal])
