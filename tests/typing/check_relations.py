"""Pinned types of nested results: each level a TypedDict or dataclass mypy sees."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any, TypedDict, assert_type

from querykit import (
    AsyncDatabase,
    Database,
    NestedQuery,
    count_of,
    eq,
    find_first,
    find_many,
    include,
)
from schema import Status, pipeline_run, pipeline_step


@dataclasses.dataclass
class Step:
    name: str
    tokens: int
    created_at: dt.datetime


class RunWithSteps(TypedDict):
    id: str
    status: Status
    cost: Decimal
    steps: list[Step]
    step_count: int


query = find_many(
    pipeline_run,
    columns=["id", "status", "cost"],
    where=eq(pipeline_run.c.status, Status.FAILED),
    with_={
        "steps": include(columns=["name", "tokens", "created_at"], order_by=["created_at"]),
        "step_count": count_of("steps"),
    },
    as_=RunWithSteps,
)
assert_type(query, NestedQuery[RunWithSteps])
assert_type(find_many(pipeline_step), NestedQuery[dict[str, Any]])
assert_type(find_first(pipeline_run, as_=RunWithSteps), NestedQuery[RunWithSteps])


def sync_face(db: Database) -> None:
    assert_type(db.all(query), list[RunWithSteps])
    assert_type(db.first(query), RunWithSteps | None)
    assert_type(db.one(query), RunWithSteps)
    assert_type(db.query(pipeline_run).find_many(as_=RunWithSteps), list[RunWithSteps])
    assert_type(db.query(pipeline_run).find_many(), list[dict[str, Any]])
    assert_type(db.query(pipeline_run).find_first(as_=RunWithSteps), RunWithSteps | None)
    rows = db.all(query)
    assert_type(rows[0]["steps"][0].created_at, dt.datetime)


async def async_face(db: AsyncDatabase) -> None:
    assert_type(await db.all(query), list[RunWithSteps])
    assert_type(await db.first(query), RunWithSteps | None)
    assert_type(await db.query(pipeline_run).find_many(as_=RunWithSteps), list[RunWithSteps])
