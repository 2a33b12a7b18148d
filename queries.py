"""Named queries for the example app, taken from the seed articles.

``querykit sql`` prints each one; ``make demo`` runs them all. A named query is
a public query object of this module, or a public function returning one
(called with its defaults by ``querykit sql``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from decimal import Decimal
from typing import Any

from querykit import (
    InsertQuery,
    NestedQuery,
    RawQuery,
    SelectQuery,
    cosine_distance,
    count,
    eq,
    find_many,
    fn,
    gte,
    has_key,
    include,
    insert,
    json_contains,
    lt,
    nearest,
    raw,
    select,
)
from schema import Status, agent_context, content_item, embedding, pipeline_run, pipeline_step

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
    select(run.c.name, fn.sum(run.c.cost).label("total_cost"), count().label("runs"))
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


def similar_embeddings(
    text: str = "agents monitor vector pipelines", max_distance: float = 0.3, k: int = 5
) -> SelectQuery[int, str, float]:
    """The k stored texts most similar to `text`, closer than `max_distance` (cosine)."""
    vector = embed(text)
    return nearest(
        embedding.c.embedding,
        vector,
        k,
        columns=[embedding.c.id, embedding.c.content],
        where=lt(cosine_distance(embedding.c.embedding, vector), max_distance),
    )


def agent_contexts(agent: str = "shuri") -> SelectQuery[int, str, dict[str, Any]]:
    """Agent contexts whose JSON context contains {"agent": <agent>} (a GIN index serves @>)."""
    return select(agent_context.c.id, agent_context.c.session, agent_context.c.context).where(
        json_contains(agent_context.c.context, {"agent": agent})
    )


content_with_duration: SelectQuery[str, str, dict[str, Any]] = select(
    content_item.c.id, content_item.c.type, content_item.c.metadata
).where(has_key(content_item.c.metadata, "duration"))
"""Content items whose free-form metadata has a "duration" key."""


# -- a deterministic stand-in for an embedding model -------------------------------------

DIMENSIONS = 384


def embed(text: str) -> list[float]:
    """A 384-d unit vector for `text`: the normalised sum of one random vector per word.

    Texts that share words point the same way, so cosine distance behaves like a
    real model's on this data. No model is downloaded; the same text always
    gives the same vector.
    """
    total = [0.0] * DIMENSIONS
    for word in text.lower().split():
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big")
        rng = random.Random(seed)
        for i in range(DIMENSIONS):
            total[i] += rng.gauss(0.0, 1.0)
    norm = math.sqrt(math.fsum(v * v for v in total)) or 1.0
    return [v / norm for v in total]
