"""Send transactional files ahead on one libpq pipeline, each in its own transaction.

psql sends a statement and waits for it; a runner that sends a whole file and
waits for its COMMIT before sending the next still leaves the server idle for a
round trip per file, and adds its own work between files to the wall time.
Here the next files are already queued on the server while one commits (its
WAL flush), so the server runs them back to back::

    BEGIN; <file 1>; <ledger row 1>; COMMIT; Flush
    BEGIN; <file 2>; <ledger row 2>; COMMIT; Flush
    ...                                           Sync

libpq's pipeline rules keep every file atomic and stop exactly at a failing
file: the transactions committed before an error stay committed, the failing
one is rolled back, and the server skips every message after the error up to
the Sync, the later files' transactions included (PostgreSQL's "Pipeline Mode"
documentation, on pipelines with several explicit transactions). The Flush
after each file makes the server send that file's results at once, so
progress is still reported file by file, as each commits.

This talks to ``psycopg``'s documented libpq wrapper (``conn.pgconn``) directly:
psycopg's own pipeline only flushes at a Sync, which would end the skipping of
later files after an error. The connection is idle before and after.
"""

from __future__ import annotations

import select
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import psycopg
from psycopg import pq

__all__ = ["Query", "TransactionPipeline"]

Query = tuple[bytes, Sequence[bytes | None] | None]
"""SQL text with ``$1``-style placeholders, and its values as text (or None for NULL)."""

_OK = frozenset({pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY})


def succeeded(result: pq.abc.PGresult) -> bool:
    """Whether one query's result is a success (a command, rows, or an empty query)."""
    return result.status in _OK


class TransactionPipeline:
    """Queue files' queries on a connection in pipeline mode; read their results in order.

    ``send()`` queues one file's queries and a Flush request; ``receive()`` waits
    for the results of the oldest file not yet received, one result per query
    (``PIPELINE_ABORTED`` for the queries the server skipped after an error).
    Leaving the ``with`` block sends the Sync, drops the results nobody asked
    for and leaves pipeline mode, so the connection is idle again (in a failed
    transaction when a file failed: the caller rolls it back).
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.pgconn = conn.pgconn
        self._sent: deque[int] = deque()  # queries per file sent and not yet received

    def __enter__(self) -> TransactionPipeline:
        self.pgconn.enter_pipeline_mode()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pgconn = self.pgconn
        if pgconn.status != pq.ConnStatus.OK:
            return  # the connection is gone: nothing to sync; the caller closes it
        if exc is not None and not isinstance(exc, Exception):
            # Ctrl-C: do not wait for the files in flight; closing the connection ends them
            # (each commits with its ledger row, or not at all).
            return
        try:
            pgconn.pipeline_sync()
            self._flush()
            while True:  # everything up to the Sync's own result
                self._wait_readable()
                result = pgconn.get_result()
                if result is not None and result.status == pq.ExecStatus.PIPELINE_SYNC:
                    break
            self._sent.clear()
            pgconn.exit_pipeline_mode()
        except psycopg.Error:
            if exc is None:
                raise
            # The file's own error is what the caller reports; the connection is closed after it.

    @property
    def in_flight(self) -> int:
        """Files sent whose results have not been received yet."""
        return len(self._sent)

    def send(self, queries: Sequence[Query]) -> None:
        """Queue one file's queries, then a Flush request so its results come back at once."""
        pgconn = self.pgconn
        for text, values in queries:
            pgconn.send_query_params(text, values)
        pgconn.send_flush_request()
        self._sent.append(len(queries))
        self._flush()

    def receive(self) -> list[pq.abc.PGresult]:
        """The results of the oldest file sent and not yet received, one per query."""
        count = self._sent.popleft()
        results: list[pq.abc.PGresult] = []
        pgconn = self.pgconn
        for _ in range(count):
            first: pq.abc.PGresult | None = None
            while True:  # a query's results end with None
                self._wait_readable()
                result = pgconn.get_result()
                if result is None:
                    break
                if first is None:
                    first = result
            assert first is not None, "libpq returned no result for a pipelined query"
            results.append(first)
        return results

    def _flush(self) -> None:
        """Send what libpq buffered, reading meanwhile so that neither side blocks the other."""
        pgconn = self.pgconn
        while pgconn.flush():
            readable, _, _ = select.select([pgconn.socket], [pgconn.socket], [])
            if readable:
                pgconn.consume_input()

    def _wait_readable(self) -> None:
        """Block until ``get_result()`` would not block."""
        pgconn = self.pgconn
        while pgconn.is_busy():
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
