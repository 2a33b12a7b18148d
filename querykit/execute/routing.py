"""Where a query runs: the primary or a read replica, and what a pooler allows.

Pure decisions and the state they read, shared by ``Database`` and
``AsyncDatabase`` (the I/O lives in :mod:`querykit.execute.replica_reads`, its
async twin, and :mod:`querykit.execute.replica_monitor`).

- **Read-your-writes.** After a committed write the primary's WAL position
  (``pg_current_wal_lsn()`` read *after* COMMIT: ``pg_current_wal_insert_lsn()``
  may point past WAL not yet sent, and stalled readers for 20 s here) becomes
  the context's *token*, kept in a :class:`contextvars.ContextVar`: per thread,
  per asyncio task, per request, never per process. A replica serves a read
  only once it has replayed the token; past ``max_replica_wait`` the read goes
  to the primary.
- **Lag and health.** A background monitor records each replica's replay
  position, lag and reachability; a replica that is down, or more than
  ``max_lag`` seconds behind, is skipped until it recovers. A failed read on a
  replica marks it down at once and runs again on the primary.
- **Poolers.** ``pooler="transaction"`` (PgBouncer in transaction mode, pgcat,
  Supavisor...) turns server-side prepares off and refuses statements that need
  a session: ``LISTEN``, session advisory locks, ``WITH HOLD`` cursors, session
  ``SET``/``PREPARE``. ``"pgbouncer-prepared"`` is PgBouncer >= 1.22 with
  ``max_prepared_statements``, where psycopg (libpq >= 17) may keep preparing.

Every decision has a reason, and a read that did not simply go to a replica
names it in the query log's ``target``, e.g.
``127.0.0.1:5432/app (read on the primary: replica 127.0.0.1:5433/app is down)``.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

import psycopg
from psycopg import pq

from ..arguments import seconds_argument
from ..errors import ConfigError, ExecuteError, QueryKitError

__all__ = [
    "Consistency",
    "Pooler",
    "ReplicaState",
    "Router",
    "RoutingOptions",
    "format_lsn",
    "parse_lsn",
    "pooler_warning",
    "session_feature",
]

Consistency = Literal["eventual", "read-your-writes"]
Pooler = Literal["none", "transaction", "pgbouncer-prepared"]

CURRENT_LSN_SQL = "SELECT pg_current_wal_lsn()::text"
"""The position a reader must reach to see every transaction committed so far."""
REPLAY_LSN_SQL = "SELECT pg_last_wal_replay_lsn()::text"
"""How far a standby has replayed (NULL on a server that is not in recovery)."""


# -- WAL positions ------------------------------------------------------------------------------

_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def parse_lsn(text: str) -> int:
    """``'16/B374D848'`` → an int that orders like the WAL; a ``ConfigError`` for anything else."""
    match = _LSN.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(
            f"not a consistency token: {text!r}; expected what db.consistency_token() "
            "returned, a WAL position such as '0/3000148'"
        )
    return (int(match[1], 16) << 32) | int(match[2], 16)


def format_lsn(lsn: int) -> str:
    """The PostgreSQL text form of a WAL position: ``format_lsn(parse_lsn(t)) == t.upper()``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoutingOptions:
    """How reads are routed and what the pooler allows; checked once, in ``connect()``."""

    consistency: Consistency = "eventual"
    max_replica_wait: float = 0.02
    """Seconds a read with a token may wait for a replica to replay it."""
    max_lag: float = 5.0
    """Seconds of replay lag past which a replica serves no reads."""
    check_interval: float = 0.25
    """Seconds between two background checks of the replicas."""
    pooler: Pooler = "none"

    def __post_init__(self) -> None:
        if self.consistency not in get_args(Consistency):
            raise ConfigError(
                f"connect(consistency={self.consistency!r}): expected 'eventual' or "
                "'read-your-writes'"
            )
        if self.pooler not in get_args(Pooler):
            raise ConfigError(
                f"connect(pooler={self.pooler!r}): expected 'none', 'transaction' "
                "(PgBouncer or another transaction-mode pooler) or 'pgbouncer-prepared' "
                "(PgBouncer >= 1.22 with max_prepared_statements)"
            )
        for name, low in (("max_replica_wait", 0.0), ("max_lag", 0.0), ("check_interval", 0.01)):
            value = getattr(self, name)
            seconds_argument(value, f"connect({name}=...)", ConfigError, minimum=low)

    def server_prepare(self, prepare: bool | None) -> bool:
        """Whether statements may be prepared on the server, given ``connect(prepare=)``."""
        if self.pooler == "transaction":
            if prepare:
                raise ConfigError(
                    "connect(pooler='transaction', prepare=True): a transaction-mode pooler "
                    "hands each transaction to any server connection, where a statement "
                    "prepared on another one is missing (or a name is taken twice: "
                    "DuplicatePreparedStatement). Drop prepare=True, or use "
                    "pooler='pgbouncer-prepared' with PgBouncer >= 1.22"
                )
            return False
        if self.pooler == "pgbouncer-prepared":
            libpq = pq.version()
            if libpq < 170000:
                raise ConfigError(
                    f"connect(pooler='pgbouncer-prepared') needs libpq >= 17 (this psycopg "
                    f"uses libpq {libpq // 10000}.{libpq % 100}), which closes prepared "
                    "statements by protocol message as PgBouncer expects; use "
                    "pooler='transaction' instead"
                )
        return True if prepare is None else prepare


# -- poolers -----------------------------------------------------------------------------------

_SESSION_FEATURES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE | re.DOTALL), what)
    for pattern, what in (
        (r"^\s*(UN)?LISTEN\b", "LISTEN/UNLISTEN (notifications belong to a session)"),
        (r"\bpg_(try_)?advisory_(un)?lock(_shared)?\s*\(", "a session advisory lock"),
        (r"\bWITH\s+HOLD\b", "a WITH HOLD cursor (it outlives the transaction)"),
        (r"^\s*SET\s+(?!(LOCAL|TRANSACTION)\b)", "a session SET (use SET LOCAL or .settings())"),
        (r"^\s*(PREPARE|DEALLOCATE)\b", "a PREPARE/DEALLOCATE statement"),
    )
)


@lru_cache(maxsize=1024)
def session_feature(sql_text: str) -> str | None:
    """What in ``sql_text`` needs a session of its own, or ``None``.

    Behind a transaction-mode pooler the next transaction may run on another
    server connection, so session state silently vanishes or leaks to another
    client. Transaction-scoped forms are fine: ``pg_advisory_xact_lock``,
    ``SET LOCAL``, and ``stream()``'s cursor, which lives in its transaction.
    """
    for pattern, what in _SESSION_FEATURES:
        if pattern.search(sql_text):
            return what
    return None


def pooled_refusal(sql_text: str, what: str) -> ExecuteError:
    return ExecuteError(
        f"refused behind a transaction-mode pooler (connect(pooler=...)): {what} needs a "
        f"session, and the pooler gives each transaction any server connection. Run it on "
        f"a direct connection to PostgreSQL (a second connect() without the pooler). "
        f"Statement: {sql_text[:200]}"
    )


_WARNED: set[str] = set()
_WARNED_LOCK = threading.Lock()


def pooler_warning(target: str, announced: int, actual: int) -> str | None:
    """The one-time warning for a pooler that ``connect()`` was not told about, else None."""
    if announced == actual:
        return None
    with _WARNED_LOCK:
        if target in _WARNED:
            return None
        _WARNED.add(target)
    return (
        f"querykit: a connection pooler answers at {target} (the connection announced "
        f"backend pid {announced}, the server runs it in pid {actual}), but connect() was "
        "not told: pass pooler='transaction' for PgBouncer in transaction mode (or "
        "pooler='pgbouncer-prepared' for PgBouncer >= 1.22 with max_prepared_statements); "
        "otherwise prepared statements fail with DuplicatePreparedStatement"
    )


# -- replicas ----------------------------------------------------------------------------------


class ReplicaState:
    """What is known of one replica: written by the monitor and by failed reads.

    Plain attribute writes, read without a lock: a read that sees a value one
    check old routes as well as one that sees the newest.
    """

    __slots__ = ("down_reason", "in_recovery", "lag", "replayed", "revived", "target", "up")

    def __init__(self, target: str) -> None:
        self.target = target
        self.up = True  # the pool opened; the monitor's first check confirms or denies
        self.down_reason = ""
        self.lag = 0.0
        self.replayed = 0
        """The highest replay position seen (0: unknown)."""
        self.in_recovery = True
        """False for a server that is not a physical standby: its LSNs are not the primary's."""
        self.revived = False
        """Down, then answering again: its pool is replaced (psycopg_pool would wait out its
        reconnection backoff, up to minutes, before trying again)."""

    def skip_reason(self, max_lag: float) -> str | None:
        """Why this replica must not serve a read now (down, or lagging past ``max_lag``), or None."""
        if not self.up:
            return f"replica {self.target} is down ({self.down_reason})"
        if self.lag > max_lag:
            return f"replica {self.target} lags {self.lag:.1f}s > max_lag {max_lag:g}s"
        return None

    def saw_replayed(self, lsn: int) -> None:
        """Record a replay position the replica reported (it only moves forward)."""
        if lsn > self.replayed:
            self.replayed = lsn


# Errors after which a read on a replica runs again on the primary: the connection is
# gone (08), the server is shutting down (57), or a recovery conflict cancelled it (40001).
_RETRY_CLASSES = ("08", "57")
_RECOVERY_CONFLICT = "40001"


def replica_failed(exc: BaseException, closed: bool) -> bool:
    """True when a read failed because of the replica, not the query: rerun it on the primary."""
    cause = exc.__cause__ if isinstance(exc, QueryKitError) else exc
    if closed or isinstance(cause, psycopg.OperationalError):
        return True
    state = getattr(cause, "sqlstate", None) or ""
    return state.startswith(_RETRY_CLASSES) or state == _RECOVERY_CONFLICT


class Router:
    """The routing state of one database: its token variable and its replicas' health."""

    __slots__ = ("_revival", "_token", "_turn", "options", "primary", "replicas", "tracks_writes")

    def __init__(self, options: RoutingOptions, primary: str, replicas: Sequence[str]) -> None:
        self.options = options
        self.primary = primary
        self.replicas = tuple(ReplicaState(t) for t in replicas)
        self.tracks_writes = bool(replicas) and options.consistency == "read-your-writes"
        """Whether writes record the primary's position (a plain attribute: the hot path reads it)."""
        self._turn = itertools.count()
        self._revival = threading.Lock()
        # One variable per database: a token of one cluster means nothing to another.
        self._token: ContextVar[int] = ContextVar(f"querykit_lsn_{id(self)}", default=0)

    # -- tokens --------------------------------------------------------------------------

    def token(self) -> int:
        """This context's last write position (0: none), the one replica reads wait for."""
        return self._token.get()

    def wrote(self, lsn_text: str | None) -> None:
        """A write committed on the primary at ``lsn_text``: later reads of this context wait for it."""
        if lsn_text:
            lsn = parse_lsn(lsn_text)
            if lsn > self._token.get():
                self._token.set(lsn)

    def consistency_token(self) -> str:
        """This context's last write position as text (``0/16B3748``), to carry elsewhere."""
        return format_lsn(self._token.get())

    @contextlib.contextmanager
    def after(self, token: str) -> Iterator[None]:
        """Inside the block, replica reads wait until ``token`` is replayed."""
        lsn = parse_lsn(token)
        reset = self._token.set(max(lsn, self._token.get()))
        try:
            yield
        finally:
            self._token.reset(reset)

    # -- choosing --------------------------------------------------------------------------

    def candidates(self) -> tuple[list[int], str]:
        """Replicas that may serve a read now, in round-robin order, and why the others may not."""
        states = self.replicas
        n = len(states)
        start = next(self._turn) % n
        order: list[int] = []
        reasons: list[str] = []
        max_lag = self.options.max_lag
        for offset in range(n):
            index = (start + offset) % n
            reason = states[index].skip_reason(max_lag)
            if reason is None:
                order.append(index)
            else:
                reasons.append(reason)
        return order, "; ".join(reasons)

    def needs_wait(self, index: int, token: int) -> bool:
        """Whether replica ``index`` must be asked before serving a read that needs ``token``."""
        state = self.replicas[index]
        return token > state.replayed

    def cannot_verify(self, index: int, token: int) -> bool:
        """A token, and a server that is not a standby: its positions cannot be compared."""
        return token > 0 and not self.replicas[index].in_recovery

    def take_revival(self, index: int) -> bool:
        """True once after replica ``index`` came back: the caller replaces its pool."""
        state = self.replicas[index]
        if not state.revived:
            return False
        with self._revival:
            revived, state.revived = state.revived, False
        return revived

    def mark_down(self, index: int, reason: str) -> None:
        """Take replica ``index`` out of rotation, with the reason the query log shows."""
        state = self.replicas[index]
        state.down_reason = reason
        state.up = False

    def wait_deadline(self) -> float:
        """When a read stops waiting for a replica to replay and goes to the primary."""
        return time.perf_counter() + self.options.max_replica_wait


def primary_note(router: Router, reason: str) -> str:
    """The log ``target`` of a read the primary serves instead of a replica."""
    return f"{router.primary} (read on the primary: {reason})"


def waited_note(target: str, waited: float, token: int) -> str:
    return f"{target} (waited {waited * 1000:.1f} ms to replay {format_lsn(token)})"


def not_replayed_reason(target: str, token: int, wait: float) -> str:
    return f"replica {target} had not replayed {format_lsn(token)} within {wait * 1000:g} ms"


def time_left(deadline: float) -> float:
    return deadline - time.perf_counter()


WAIT_STEPS = (0.0002, 0.0005, 0.001, 0.002)
"""Pauses between two polls of a replica's replay position (then 2 ms each)."""


def next_pause(attempt: int, deadline: float) -> float | None:
    """How long to sleep before poll ``attempt + 1``, or None when the wait is over."""
    pause = WAIT_STEPS[min(attempt, len(WAIT_STEPS) - 1)]
    return pause if time_left(deadline) > pause else None
