"""Run a :class:`querykit.execute.bulk.BulkJob` on one connection: COPY, or INSERT where COPY cannot.

:class:`~querykit.execute.bulk.BulkJob` decides everything that is not I/O (checked
rows, COPY forms, the INSERT and upsert statements); these drivers only talk
to the server. The async module is the source; the sync one is generated from
it by ``tools/async_to_sync.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from ..compile import compile_query
from . import diagnose, plan, querylog
from .bulk import BulkJob, NeedsInsert, copy_cursor, temp_table_name

__all__ = ["run_bulk_async"]


async def run_bulk_async(
    conn: psycopg.AsyncConnection[Any], job: BulkJob, listeners: querylog.Listeners, target: str
) -> int:
    """Run a job on a connection, in one transaction (or savepoint); returns the row count."""
    if not job.rows:
        return 0
    try:
        parts = job.parts()
        if len(parts) == 1:
            return await _run_part_async(conn, job, listeners, target)
        total = 0
        async with conn.transaction():
            for part in parts:
                total += await _run_part_async(conn, part, listeners, target)
        return total
    except psycopg.Error as exc:  # the block's own BEGIN, SAVEPOINT or COMMIT
        raise diagnose.database_error(exc, "COMMIT", target, lost=conn.closed) from exc


async def _run_part_async(
    conn: psycopg.AsyncConnection[Any], job: BulkJob, listeners: querylog.Listeners, target: str
) -> int:
    """One job by COPY, or by INSERT where COPY cannot express it, in its own savepoint."""
    if job.reason is None:
        try:
            async with conn.transaction():
                return await _copy_async(conn, job, listeners, target)
        except NeedsInsert:
            pass  # rolled back: nothing was written; INSERT below
    rows = list(job.encoded(for_copy=False))
    async with conn.transaction():
        return await _insert_async(conn, job, rows, listeners, target)


async def _insert_async(
    conn: psycopg.AsyncConnection[Any],
    job: BulkJob,
    rows: Sequence[tuple[Any, ...]],
    listeners: querylog.Listeners,
    target: str,
) -> int:
    """The multi-row INSERT fallback, chunk by chunk."""
    total = 0
    cur = conn.cursor()
    for query in job.insert_queries(rows):
        shape, values = compile_query(query)
        params = shape.params(values)
        started = plan.now()
        try:
            await cur.execute(shape.sql, params)
        except psycopg.Error as exc:
            row = job.failing_row(exc, rows)
            raise diagnose.database_error(
                exc, shape.sql, target, lost=conn.closed, row=row
            ) from exc
        total += max(cur.rowcount, 0)
        if listeners.callbacks:
            listeners.notify(shape.sql, params, started, cur.rowcount, target)
    return total


async def _copy_async(
    conn: psycopg.AsyncConnection[Any], job: BulkJob, listeners: querylog.Listeners, target: str
) -> int:
    """Binary COPY into the table (or, for an upsert, into a temporary table, then INSERT)."""
    statement = ""
    try:
        cur = copy_cursor(conn)
        upsert = job.method == "upsert_many"
        temp = temp_table_name() if upsert else None
        if temp is not None:
            await cur.execute(job.temp_table_sql(temp))
        copy_sql = job.copy_sql(temp if temp is not None else job.table_sql())
        statement = copy_sql.as_string(conn)
        started = plan.now()
        async with cur.copy(copy_sql) as copy:
            copy.set_types(job.copy_types())
            if True:  # ASYNC
                # write_row is a coroutine here: one await a row.
                for row in job.encoded(for_copy=True):
                    await copy.write_row(row)
                count = len(job.rows)
            else:
                # The job's generated loop hands each row to write_row itself.
                count = job.copy_to(copy.write_row)  # type: ignore[unreachable]
        if listeners.callbacks:
            listeners.notify(statement, (), started, count, target)
        if temp is None:
            return count
        upsert_sql = job.upsert_sql(temp)
        statement = upsert_sql.as_string(conn)
        started = plan.now()
        await cur.execute(upsert_sql)
        written = max(cur.rowcount, 0)
        if listeners.callbacks:
            listeners.notify(statement, (), started, written, target)
        await cur.execute(sql.SQL("DROP TABLE {}").format(temp))
        return written
    except psycopg.Error as exc:
        raise diagnose.database_error(
            exc, statement, target, lost=conn.closed, row=job.failing_row(exc)
        ) from exc
