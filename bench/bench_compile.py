"""The compile cache: a cache hit against a fresh SQLAlchemy compile of the same query.

Ratios here are speed-ups over SQLAlchemy Core's build + compile (how many times
faster, higher is better). Target: a cache hit >= 25x.

Nothing here waits for I/O, so the cases are timed by the CPU time they use
(``time.process_time``): on a loaded 2-CPU machine, wall time also counts other
processes' time slices, which land on a cache hit's short half-rounds by chance
(at load 7, wall-clock rounds of this comparison spread over 11-34x; CPU-time
rounds over 16-20x).
"""

from __future__ import annotations

import time

import sqlalchemy as sa

import querykit.compile as qk_compile
from querykit import desc, eq, gte, in_array, select
from querykit.codecs.dialect import DIALECT  # the dialect querykit compiles with
from schema import Status, pipeline_run

from ._harness import at_least, compare

T = pipeline_run


def _query(n: int) -> object:
    return (
        select(T.c.id, T.c.name, T.c.cost)
        .where(eq(T.c.status, Status.FAILED), gte(T.c.cost, n), in_array(T.c.name, ["a", "b"]))
        .order_by(desc(T.c.started_at))
        .limit(10)
    )


def run(url: str) -> None:
    counter = iter(range(10**9))

    def cache_hit() -> object:
        return qk_compile.to_sql(_query(next(counter)))  # type: ignore[arg-type]

    def fresh_compile() -> object:
        qk_compile.clear_cache()
        return qk_compile.to_sql(_query(next(counter)))  # type: ignore[arg-type]

    def sqlalchemy_core() -> object:
        stmt = (
            sa.select(T.c.id, T.c.name, T.c.cost)
            .where(T.c.status == Status.FAILED, T.c.cost >= next(counter), T.c.name.in_(["a", "b"]))
            .order_by(T.c.started_at.desc())
            .limit(10)
        )
        compiled = stmt.compile(dialect=DIALECT)
        # what querykit's CompiledSQL holds: the SQL and the parameters (Core makes its
        # parameters only when asked: .params builds them)
        return compiled.string, compiled.params

    compare(
        "compile: build a query and get its SQL + params (no database)",
        {
            "SQLAlchemy Core build + compile": sqlalchemy_core,
            "querykit, compile cache hit": cache_hit,
            "querykit, fresh compile (cache cleared)": fresh_compile,
        },
        baseline="SQLAlchemy Core build + compile",
        number=100,
        speedup=True,
        clock=time.process_time,
        target={"querykit, compile cache hit": at_least(25)},
    )

    def build_only() -> object:
        return _query(next(counter))

    def column_lookups() -> object:
        return (T.c.id, T.c.name, T.c.cost, T.c.status, T.c.cost, T.c.name, T.c.started_at)

    # Where a hit's time goes: the share of it (ratio to the hit) that is the case's own
    # seven SQLAlchemy column lookups (`T.c.x`, the same on both sides), and the builder
    # calls with them; the rest is to_sql (key walk, cache lookup, parameters).
    compare(
        "compile: where a cache hit's time goes (share of the hit)",
        {
            "querykit, compile cache hit": cache_hit,
            "building the query (T.c lookups included)": build_only,
            "the seven T.c.x lookups alone (SQLAlchemy)": column_lookups,
        },
        baseline="querykit, compile cache hit",
        number=1000,
        clock=time.process_time,
        min_rounds=10,
        max_rounds=40,
        budget=8.0,
    )
