"""Pinned types of the builders (checked by mypy --strict in make test, never run).

Rows carry the Python types of the selected columns, from the TypedColumns
declarations in schema.py, without code generation.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, assert_type

from pgvector import Vector
from sqlalchemy import Column, ForeignKey, Integer
from sqlalchemy.sql.elements import ColumnElement

from querykit import (
    CompiledSQL,
    CompoundQuery,
    Condition,
    DeleteQuery,
    InsertQuery,
    RawQuery,
    SelectQuery,
    UpdateQuery,
    avg,
    count,
    count_distinct,
    delete,
    eq,
    excluded,
    fn,
    gt,
    gte,
    insert,
    lt,
    lte,
    ne,
    raw,
    select,
    sql,
    union_all,
    update,
)
from schema import RunMetadata, Status, embedding, pipeline_run, pipeline_step

run, step = pipeline_run, pipeline_step

# columns know their Python types, JSONB payloads and vectors included
assert_type(run.c.cost, Column[Decimal])
assert_type(run.c.metadata, Column[RunMetadata | None])
assert_type(embedding.c.embedding, Column[Vector])
assert_type(step.c.input, Column[dict[str, Any] | None])

# selects carry the row type through every builder method
q = select(run.c.id, run.c.status, run.c.cost).where(eq(run.c.name, "x")).order_by("-cost").limit(5)
assert_type(q, SelectQuery[str, Status, Decimal])
assert_type(select(run.c.metadata), SelectQuery[RunMetadata | None])
assert_type(select(embedding.c.id, embedding.c.embedding), SelectQuery[int, Vector])
assert_type(
    select(run),
    SelectQuery[
        str, str, Status, dt.datetime, dt.datetime | None, float | None, Decimal, RunMetadata | None
    ],
)
assert_type(
    select(step.c.run_id, step.c.name).from_(step).join(run, eq(step.c.run_id, run.c.id)),
    SelectQuery[str, str],
)

# comparisons: a nullable foreign key against the non-null key it references, both ways,
# and a nullable column against a value; a value of another type is still refused
order_user_id: Column[int | None] = Column("user_id", Integer, ForeignKey("users.id"))
user_id: Column[int] = Column("id", Integer, primary_key=True)
for compare in (eq, ne, gt, gte, lt, lte):
    assert_type(compare(order_user_id, user_id), Condition)
    assert_type(compare(user_id, order_user_id), Condition)
    assert_type(compare(order_user_id, 1), Condition)
    assert_type(compare(1, order_user_id), Condition)
eq(order_user_id, "x")  # type: ignore[misc]  # str against an int column

# aggregates: count is int, sum/min/max keep the column type and may be NULL, avg of int is Decimal
assert_type(count(), ColumnElement[int])
assert_type(count_distinct(step.c.model), ColumnElement[int])
assert_type(fn.sum(run.c.cost), ColumnElement[Decimal | None])
assert_type(fn.sum(step.c.tokens), ColumnElement[int | None])
assert_type(avg(step.c.tokens), ColumnElement[Decimal | None])
assert_type(avg(run.c.cost), ColumnElement[Decimal | None])
assert_type(fn.min(run.c.started_at), ColumnElement[dt.datetime | None])
assert_type(fn.max(run.c.cost), ColumnElement[Decimal | None])
assert_type(
    select(run.c.name, fn.sum(run.c.cost), count()).group_by(run.c.name),
    SelectQuery[str, Decimal | None, int],
)

# RETURNING types
assert_type(insert(run), InsertQuery[()])
assert_type(
    insert(run).values(name="x").returning(run.c.id, run.c.started_at),
    InsertQuery[str, dt.datetime],
)
assert_type(
    insert(run)
    .values(name="x")
    .on_conflict_do_update([run.c.id], set_={"name": excluded(run).c.name}),
    InsertQuery[()],
)
assert_type(update(run).set(cost=Decimal(1)).returning(run.c.cost), UpdateQuery[Decimal])
assert_type(delete(step).returning(step.c.id, step.c.tokens), DeleteQuery[str, int])

# set operations, raw SQL with an explicit result type
assert_type(union_all(select(run.c.name), select(step.c.name)), CompoundQuery[str])
assert_type(
    raw("SELECT name, cost FROM pipeline_run").returns(str, Decimal), RawQuery[str, Decimal]
)
assert_type(sql("now()"), ColumnElement[Any])
assert_type(q.to_sql(), CompiledSQL)
assert_type(q.to_sql().params, tuple[Any, ...])
