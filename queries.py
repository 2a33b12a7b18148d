"""Named queries for the example app, taken from the seed articles.

``querykit sql`` prints each one; ``make demo`` runs them all.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from querykit import (
    InsertQuery,
    NestedQuery,
    RawQuery,
    SelectQuery,
    count,
    eq,
    find_many,
    gte,
    include,
    insert,
    raw,
    select,
    sum,
)
from schema import Status, pipeline_run, pipeline_step

run, step = pipeline_run, pipeline_step


def failed_runs(hours: int = 24) -> NestedQuery[dict[str, Any]]:
    """Failed runs of the last `hours` hours, with their steps in creation order."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
    return find_many(
        run,
        where=eq(run.c.status, Status.FAILED) & gte(run.c.started_at, since),
        with_={"steps": include(order_by=["created_at"])},
        order_by=["-started_at"],
    )


cost_by_pipeline: SelectQuery[str, Decimal | None, int] = (
    select(run.c.name, sum(run.c.cost).label("total_cost"), count().label("runs"))
    .where(eq(run.c.status, Status.COMPLETED))
    .group_by(run.c.name)
    .order_by("-total_cost")
)
"""Completed runs: cost summed and runs counted per pipeline name (Prisma's groupBy)."""

run_overview: SelectQuery[str, str, Status] = select(run.c.id, run.c.name, run.c.status).order_by(
    "-started_at"
)
"""Only some fields of each run (Prisma's select)."""

daily_tokens: RawQuery[dt.date, str | None, int] = raw(
    """
    SELECT date_trunc('day', s.created_at)::date AS day, s.model, sum(s.tokens)::bigint AS tokens
    FROM pipeline_step s
    WHERE s.created_at >= now() - make_interval(days => :days)
    GROUP BY 1, 2
    ORDER BY 1, 3 DESC
    """,
    days=7,
).returns(dt.date, str, int)
"""Tokens per model per day, in hand-written SQL (Prisma's $queryRaw)."""


def create_run(
    name: str = "video-production", topic: str = "AI automation"
) -> InsertQuery[str, Status]:
    """Create a run and return its generated id and status (Prisma's create)."""
    return (
        insert(run)
        .values(name=name, status=Status.RUNNING, metadata={"topic": topic})
        .returning(run.c.id, run.c.status)
    )


def create_step(
    run_id: str = "<id from create_run>", name: str = "transcription"
) -> InsertQuery[str, str, dt.datetime]:
    """Add a finished step to a run, returning it."""
    return (
        insert(step)
        .values(
            run_id=run_id,
            name=name,
            status=Status.COMPLETED,
            model="whisper-tiny",
            tokens=0,
            output={"text": "Transcribed content..."},
        )
        .returning(step.c.id, step.c.name, step.c.created_at)
    )


def create_many_runs(count: int = 3) -> InsertQuery[()]:
    """Create several runs in one statement (Prisma's createMany)."""
    rows = [{"name": f"batch-{i}", "status": Status.PENDING} for i in range(count)]
    return insert(run).values(rows)
