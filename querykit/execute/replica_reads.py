# Generated from querykit/execute/replica_reads_async.py by tools/async_to_sync.py; do not edit.
"""The I/O of routing for ``Database``: pick a read connection, record write positions.

The decisions are :mod:`querykit.execute.routing`'s; this module only talks to the
servers. The async module is the source; the sync one is generated from it by
``tools/async_to_sync.py``.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import pq
from psycopg_pool import PoolClosed, PoolTimeout

from ..errors import QueryKitError
from .connect import describe_target
from .plan import logger
from .pool import Connection, Pool, PoolOptions, probe_kwargs
from .routing import (
    CURRENT_LSN_SQL,
    REPLAY_LSN_SQL,
    Router,
    next_pause,
    not_replayed_reason,
    parse_lsn,
    pooler_warning,
    primary_note,
    replica_failed,
    waited_note,
)

__all__ = ["acquire_read", "check_pooler", "note_commit", "run_read"]

T = TypeVar("T")
REPLICA_CONNECTION_WAIT = 0.5
"""Seconds a read waits for a free replica connection before taking the primary's."""
_IDLE = pq.TransactionStatus.IDLE


def acquire_read(
    router: Router,
    primary: Pool,
    replicas: list[Pool],
    getconn: Callable[[Pool], Connection],
) -> tuple[Pool, Connection, str, int | None]:
    """A connection for a plain read: ``(pool, connection, log target, replica index or None)``.

    A replica that qualifies (up, within ``max_lag``, and with read-your-writes
    has replayed the context's token within ``max_replica_wait``), else the primary.
    """
    token = router.token() if router.options.consistency == "read-your-writes" else 0
    order, reason = router.candidates()
    for index in order:
        if router.take_revival(index):
            replicas[index] = _reopened(replicas[index])
        pool = replicas[index]
        if router.cannot_verify(index, token):
            reason = f"{pool.qk_target} is not a standby: a write position cannot be checked there"
            continue
        try:
            conn = pool.getconn(REPLICA_CONNECTION_WAIT)
        except PoolTimeout:
            reason = f"no free connection to replica {pool.qk_target}"
            continue
        except PoolClosed:  # replaced by another read, just now (see _reopened)
            reason = f"replica {pool.qk_target} is reconnecting"
            continue
        target = pool.qk_target
        if token and router.needs_wait(index, token):
            started = time.perf_counter()
            try:
                replayed = _wait_replayed(conn, router, index, token)
            except psycopg.Error as exc:
                pool.putconn(conn)
                router.mark_down(index, str(exc).strip().splitlines()[0] if str(exc) else "error")
                reason = f"replica {target} failed: {router.replicas[index].down_reason}"
                continue
            if not replayed:
                pool.putconn(conn)
                # Another replica would make the read wait again: the primary answers now.
                reason = not_replayed_reason(target, token, router.options.max_replica_wait)
                break
            target = waited_note(target, time.perf_counter() - started, token)
        return pool, conn, target, index
    return primary, getconn(primary), primary_note(router, reason or "no replica"), None


def _reopened(pool: Pool) -> Pool:
    """A new pool for a replica that came back; the old one closes in the background."""
    fresh = Pool(pool.qk_url, name=pool.name, options=pool.qk_options)
    fresh.open(wait=False)
    threading.Thread(target=pool.close, name="querykit pool close", daemon=True).start()
    return fresh


def _wait_replayed(conn: Connection, router: Router, index: int, token: int) -> bool:
    """Poll the replica's replay position until it reaches ``token`` or the wait is over."""
    deadline = router.wait_deadline()
    state = router.replicas[index]
    attempt = 0
    while True:
        row = (conn.execute(REPLAY_LSN_SQL)).fetchone()
        if row is None or row[0] is None:
            state.in_recovery = False
            return False
        lsn = parse_lsn(row[0])
        state.saw_replayed(lsn)
        if lsn >= token:
            return True
        pause = next_pause(attempt, deadline)
        if pause is None:
            return False
        time.sleep(pause)
        attempt += 1


def run_read(
    router: Router,
    primary: Pool,
    replicas: list[Pool],
    getconn: Callable[[Pool], Connection],
    work: Callable[[Connection, str], T],
) -> T:
    """``work(connection, target)`` on a read connection; again on the primary if a replica fails."""
    pool, conn, target, index = acquire_read(router, primary, replicas, getconn)
    try:
        return work(conn, target)
    except QueryKitError as exc:
        if index is None or not replica_failed(exc, conn.closed):
            raise
        failure = str(exc).splitlines()[0]
        if conn.closed:
            router.mark_down(index, failure)
    finally:
        pool.putconn(conn)
    conn = getconn(primary)
    try:
        return work(conn, primary_note(router, f"replica {pool.qk_target} failed: {failure}"))
    finally:
        primary.putconn(conn)


def note_commit(router: Router, conn: Connection) -> None:
    """After a committed write outside a transaction: the context's token moves to the primary's
    position now. A separate statement, because a pipelined one would run before the COMMIT."""
    if conn.pgconn.transaction_status != _IDLE:
        return  # inside a transaction block: its end records the position
    try:
        row = (conn.execute(CURRENT_LSN_SQL)).fetchone()
    except psycopg.Error as exc:  # the write is committed; do not report it as failed
        logger.warning("querykit: could not read the WAL position after a write: %s", exc)
        return
    router.wrote(row[0] if row else None)


def check_pooler(router: Router, url: str, options: PoolOptions) -> None:
    """Warn once when a pooler answers but ``connect(pooler=...)`` does not say so.

    Before the pool opens: behind an unmentioned transaction pooler, preparing
    connections may fail to open at all (DuplicatePreparedStatement).
    """
    if router.options.pooler != "none":
        return
    try:
        conn = psycopg.Connection.connect(url, **probe_kwargs(options))
    except psycopg.Error:
        return  # opening the pool reports it, with the reason
    try:
        row = (conn.execute("SELECT pg_backend_pid()")).fetchone()
        announced = conn.info.backend_pid
    finally:
        conn.close()
    assert row is not None
    message = pooler_warning(describe_target(url), announced, row[0])
    if message is not None:
        warnings.warn(message, RuntimeWarning, stacklevel=4)
