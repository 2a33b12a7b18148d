"""The background check of read replicas: up or down, replay position, lag.

One daemon thread per database with replicas, for both faces (a thread, not an
asyncio task, so a busy event loop cannot delay it and it never holds one of
the pools' connections). Queries never wait for it: they read the last
values it wrote into :class:`~querykit.execute.routing.ReplicaState`.

Lag is measured in time without trusting clocks or idle periods: each check
samples the primary's WAL position, and a replica's lag is the age of the
oldest sample it has not replayed yet (0 when it has replayed them all). The
common ``now() - pg_last_xact_replay_timestamp()`` reads as minutes after an
idle period, and as zero when the standby lost its primary.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import psycopg

from ..settings import mask_secrets
from ..trusted_sql import trusted
from .routing import CURRENT_LSN_SQL, Router, parse_lsn

__all__ = ["ReplicaMonitor"]

REPLICA_SQL = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"
_KEEP_SAMPLES = 4096


class ReplicaMonitor:
    """Checks every replica each ``check_interval`` seconds until ``stop()``."""

    def __init__(self, router: Router, primary_url: str, replica_urls: list[str]) -> None:
        self.router = router
        self.primary_url = primary_url
        self.replica_urls = replica_urls
        self.samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=_KEEP_SAMPLES)
        self._conns: dict[str, psycopg.Connection[Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="querykit replica monitor", daemon=True
        )

    def start(self) -> None:
        """Check once now (a replica down at startup is skipped at once), then in the background."""
        self.check()  # the first answer before any query: a replica down at startup is skipped
        self._thread.start()

    def stop(self) -> None:
        """Stop the background checks and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def _loop(self) -> None:
        interval = self.router.options.check_interval
        while not self._stop.wait(interval):
            self.check()

    # -- one round -----------------------------------------------------------------------------

    def check(self) -> None:
        """One round: the primary's WAL position, then each replica's replay position and health."""
        primary = self._ask(self.primary_url, CURRENT_LSN_SQL)
        if primary is not None and primary[0] is not None:
            self.samples.append((time.monotonic(), parse_lsn(primary[0])))
        for index, url in enumerate(self.replica_urls):
            state = self.router.replicas[index]
            try:
                row = self._query(url, REPLICA_SQL)
            except psycopg.Error as exc:
                self.router.mark_down(index, _reason(exc, url))
                continue
            in_recovery, replayed = row
            state.in_recovery = bool(in_recovery)
            if replayed is not None:
                lsn = parse_lsn(replayed)
                state.saw_replayed(lsn)
                state.lag = self.lag_of(lsn)
            else:
                state.lag = 0.0  # not a standby: no replay to measure
            if not state.up:
                state.revived = True
            state.up = True

    def lag_of(self, replayed: int) -> float:
        """Seconds since the primary was at the oldest position the replica has not replayed."""
        for taken, lsn in self.samples:
            if lsn > replayed:
                return time.monotonic() - taken
        return 0.0

    def _ask(self, url: str, sql: str) -> tuple[Any, ...] | None:
        try:
            return self._query(url, sql)
        except psycopg.Error:
            return None

    def _query(self, url: str, sql: str) -> tuple[Any, ...]:
        conn = self._conns.get(url)
        if conn is None or conn.closed:
            timeout = max(1, round(self.router.options.check_interval * 4))
            conn = psycopg.connect(url, autocommit=True, connect_timeout=timeout)
            self._conns[url] = conn
        try:
            row = conn.execute(trusted(sql)).fetchone()
        except psycopg.Error:
            conn.close()
            raise
        assert row is not None
        return tuple(row)


def _reason(exc: psycopg.Error, url: str) -> str:
    """libpq's first line, without the 'connection to server at ... failed:' preamble."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    reason = lines[0] if lines else type(exc).__name__
    return mask_secrets(reason.rsplit("failed:", 1)[-1].strip(), url)
