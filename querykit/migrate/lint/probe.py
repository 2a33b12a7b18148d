"""The live probe: run each statement on a scratch clone and watch what the server does.

For every statement, in order, on one connection to a scratch database::

    BEGIN;  snapshot (relfilenode, seq scans) of every user table
    <statement>;
    read this backend's relation locks from pg_locks, and the snapshot again
    ROLLBACK;
    <statement>;     -- applied for real, so the next statement sees its effect

The strongest lock per table, a changed ``relfilenode`` (the table was
rewritten) and a grown ``seq_scan`` in ``pg_stat_xact_user_tables`` (the table
was read in full) make an :class:`~.model.Effect`, the same shape the static
analysis predicts. Statements that cannot run in a transaction (CONCURRENTLY)
are applied but not observed: they are judged statically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ...execute.connect import connect
from .locks import from_pg_locks, rank
from .model import Effect

__all__ = ["Observation", "probe_statements"]

# Tables and partitioned tables outside the system schemas.
_TABLES = """
SELECT c.oid, CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END,
       c.relfilenode, pg_stat_get_xact_numscans(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
"""
_LOCKS = """
SELECT relation, mode FROM pg_locks
WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted AND relation = ANY(%s)
"""


@dataclass(frozen=True)
class Observation:
    """What one statement did on the clone; ``effect`` is None when it was not observed."""

    statement: str
    effect: Effect | None
    error: str | None = None
    """The server's error when the statement failed (the probe stops applying after it)."""


def probe_statements(
    url: str, statements: Sequence[tuple[str, bool]], *, lock_timeout_ms: int = 2000
) -> list[Observation]:
    """Observe each ``(sql, transactional)`` statement on the database at ``url``, in order.

    ``url`` must be a scratch database: the statements are applied to it.
    """
    out: list[Observation] = []
    with connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{int(lock_timeout_ms)}ms"))
        )
        failed: str | None = None
        for text, transactional in statements:
            if failed is not None:
                out.append(
                    Observation(text, None, f"not run: an earlier statement failed ({failed})")
                )
                continue
            effect = None
            try:
                if transactional:
                    effect = _observe(conn, text)
                conn.execute(text.encode(conn.info.encoding))
            except psycopg.Error as exc:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.rollback()
                failed = f"{exc.sqlstate}: {exc.diag.message_primary or exc}"
                out.append(Observation(text, effect, failed))
                continue
            out.append(Observation(text, effect))
    return out


def _observe(conn: psycopg.Connection[Any], text: str) -> Effect:
    with conn.transaction(force_rollback=True):
        before = {oid: (name, node, scans) for oid, name, node, scans in conn.execute(_TABLES)}
        conn.execute(text.encode(conn.info.encoding))
        oids = list(before)
        held: dict[str, str] = {}
        for oid, mode in conn.execute(_LOCKS, (oids,)):
            name, mode = before[oid][0], from_pg_locks(mode)
            if name not in held or rank(mode) > rank(held[name]):
                held[name] = mode
        after = {oid: (node, scans) for oid, _, node, scans in conn.execute(_TABLES)}
    rewrite = [
        before[o][0] for o, (node, _) in after.items() if o in before and node != before[o][1]
    ]
    scan = [before[o][0] for o, (_, n) in after.items() if o in before and n > before[o][2]]
    return Effect.of(held, rewrite=rewrite, scan=scan)
