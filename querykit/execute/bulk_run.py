# Generated from querykit/execute/bulk_run_async.py by tools/async_to_sync.py; do not edit.
"""Run a :class:`querykit.execute.bulk.BulkJob` on one connection: COPY, or INSERT where COPY cannot.

:class:`~querykit.execute.bulk.BulkJob` decides everything that is not I/O (checked
rows, COPY forms, the INSERT and upsert statements); these drivers only talk
to the server. The async module is the source; the sync one is generated from
it by ``tools/async_to_sync.py``.

A list is sent as one job. An iterator (a generator, a file reader...) is
streamed: it is read ``STREAM_CHUNK`` rows at a time, each chunk checked and
encoded, then written into a COPY that stays open while the chunks keep the
same columns, so memory stays flat however many rows come. After a chunk whose
rows all have the same keys, the rows that follow with those keys are read,
checked and written a small batch at a time (:meth:`BulkJob.stream_rows`),
never held as a chunk; the first row that differs starts the next chunk. A chunk that
cannot go by COPY (a SQL expression, a column set COPY cannot say) closes the
COPY and goes by INSERT; the next chunk opens a new COPY. All of it runs in
one transaction (a savepoint inside one), so a bad row anywhere, even the last
one, leaves nothing written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ..compile import compile_query
from ..trusted_sql import trusted
from . import diagnose, plan, querylog
from .bulk import STREAM_CHUNK, BulkJob, NeedsInsert, copy_cursor, temp_table_name

__all__ = ["run_bulk"]


Advance = Callable[[int], None] | None


def run_bulk(
    conn: psycopg.Connection[Any],
    job: BulkJob,
    listeners: querylog.Listeners,
    target: str,
    advance: Advance = None,
) -> int:
    """Run a job on a connection, in one transaction (or savepoint); returns the row count.

    ``advance(n)`` is told of each chunk of rows sent (``progress=``).
    """
    if not job.rows:
        return 0
    try:
        if job.streamed:
            with conn.transaction():
                return _stream(conn, job, listeners, target, advance)
        parts = job.parts()
        if len(parts) == 1:
            return _run_part(conn, job, listeners, target, advance)
        total = 0
        with conn.transaction():
            for part in parts:
                total += _run_part(conn, part, listeners, target, advance)
        return total
    except psycopg.Error as exc:  # the block's own BEGIN, SAVEPOINT or COMMIT
        raise diagnose.database_error(exc, "COMMIT", target, lost=conn.closed) from exc


def _stream(
    conn: psycopg.Connection[Any],
    job: BulkJob,
    listeners: querylog.Listeners,
    target: str,
    advance: Advance,
) -> int:
    """An iterator's rows, chunk by chunk, inside the caller's transaction."""
    total = 0
    chunk: BulkJob | None = job
    while chunk is not None:
        if chunk.method == "insert_many" and chunk.reason is None:
            count, chunk = _copy_stream(conn, chunk, listeners, target, advance)
            total += count
            continue
        # upsert_many: each chunk (each of its column sets) through its own temporary table
        for part in chunk.parts():
            total += _run_part(conn, part, listeners, target, None)
        if advance is not None:
            advance(len(chunk.rows))
        chunk = chunk.next_chunk()
    return total


def _copy_stream(
    conn: psycopg.Connection[Any],
    first: BulkJob,
    listeners: querylog.Listeners,
    target: str,
    advance: Advance,
) -> tuple[int, BulkJob | None]:
    """One COPY for ``first`` and the chunks after it that have its columns.

    Returns the rows written and the first chunk that needs something else
    (other columns, or INSERT: its ``reason`` says why), or None at the end.
    """
    count = 0
    chunk: BulkJob | None = first
    try:
        rows = first.encode_all()  # before the COPY opens: it may turn out to need INSERT
    except NeedsInsert:
        rows = []
    if rows:
        cur = copy_cursor(conn)
        copy_sql = first.copy_sql(first.table_sql())
        statement = copy_sql.as_string(conn)
        started = plan.now()
        last = first
        reported = 0
        try:
            with cur.copy(copy_sql) as copy:
                copy.set_types(first.copy_types())
                while True:
                    # this chunk's rows, then the input's next rows of the same keys, batch by batch
                    while rows:
                        for row in rows:
                            copy.write_row(row)
                        count += len(rows)
                        if advance is not None and count - reported >= STREAM_CHUNK:
                            advance(count - reported)
                            reported = count
                        rows = last.stream_rows()
                    chunk = last.next_chunk()
                    if chunk is None or chunk.reason is not None:
                        break
                    if chunk.signature != first.signature:
                        break
                    try:
                        rows = chunk.encode_all()
                    except NeedsInsert:
                        break
                    last = chunk
                if advance is not None and count > reported:
                    advance(count - reported)
        except psycopg.Error as exc:
            at = last.failing_row_of_copy(exc, first.start)
            raise diagnose.database_error(exc, statement, target, lost=conn.closed, row=at) from exc
        if listeners.callbacks:
            listeners.notify(statement, (), started, count, target)
    if chunk is not None and (chunk is first or chunk.signature == first.signature):
        # a SQL expression in this chunk (or a later one of the same columns): INSERT
        chunk.reason = chunk.reason or "a value is a SQL expression"
    if chunk is not None and chunk.reason is not None:
        rows = list(chunk.encoded(for_copy=False))
        count += _insert(conn, chunk, rows, listeners, target)
        if advance is not None:
            advance(len(rows))
        chunk = chunk.next_chunk()
    return count, chunk


def _run_part(
    conn: psycopg.Connection[Any],
    job: BulkJob,
    listeners: querylog.Listeners,
    target: str,
    advance: Advance,
) -> int:
    """One job by COPY, or by INSERT where COPY cannot express it, in its own savepoint."""
    reported = 0

    def tracked(rows: int) -> None:
        nonlocal reported
        reported += rows
        if advance is not None:
            advance(rows)

    if job.reason is None:
        try:
            with conn.transaction():
                return _copy(conn, job, listeners, target, tracked if advance is not None else None)
        except NeedsInsert:
            pass  # rolled back: nothing was written; INSERT below
    rows = list(job.encoded(for_copy=False))
    with conn.transaction():
        count = _insert(conn, job, rows, listeners, target)
    if advance is not None and len(rows) > reported:
        advance(len(rows) - reported)
    return count


def _insert(
    conn: psycopg.Connection[Any],
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
            cur.execute(trusted(shape.sql), params)
        except psycopg.Error as exc:
            row = job.failing_row(exc, rows)
            raise diagnose.database_error(
                exc, shape.sql, target, lost=conn.closed, row=row
            ) from exc
        total += max(cur.rowcount, 0)
        if listeners.callbacks:
            listeners.notify(shape.sql, params, started, cur.rowcount, target)
    return total


def _copy(
    conn: psycopg.Connection[Any],
    job: BulkJob,
    listeners: querylog.Listeners,
    target: str,
    advance: Advance,
) -> int:
    """Binary COPY into the table (or, for an upsert, into a temporary table, then INSERT)."""
    statement = ""
    try:
        cur = copy_cursor(conn)
        upsert = job.method == "upsert_many"
        temp = temp_table_name() if upsert else None
        if temp is not None:
            cur.execute(job.temp_table_sql(temp))
        copy_sql = job.copy_sql(temp if temp is not None else job.table_sql())
        statement = copy_sql.as_string(conn)
        started = plan.now()
        with cur.copy(copy_sql) as copy:
            copy.set_types(job.copy_types())
            # The job's generated loop hands each row to write_row itself.
            count = job.copy_to(copy.write_row, advance)
        if listeners.callbacks:
            listeners.notify(statement, (), started, count, target)
        if temp is None:
            return count
        upsert_sql = job.upsert_sql(temp)
        statement = upsert_sql.as_string(conn)
        started = plan.now()
        cur.execute(upsert_sql)
        written = max(cur.rowcount, 0)
        if listeners.callbacks:
            listeners.notify(statement, (), started, written, target)
        cur.execute(sql.SQL("DROP TABLE {}").format(temp))
        return written
    except psycopg.Error as exc:
        raise diagnose.database_error(
            exc, statement, target, lost=conn.closed, row=job.failing_row(exc)
        ) from exc
