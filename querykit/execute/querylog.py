"""The query log: ``on_query`` listeners, :class:`QueryRecord`, the ``querykit`` logger.

Statements are logged at DEBUG on the ``querykit`` logger whenever that logger
is enabled for DEBUG, as SQLAlchemy's ``sqlalchemy.engine`` logger logs at its
level: ``logging.getLogger("querykit").setLevel(logging.DEBUG)`` is all it takes.
The level is looked up per statement (``Logger.isEnabledFor`` is a cached dict
read), so turning it on or off later takes effect at once. ``QUERYKIT_LOG=1``
is the shortcut: the same level, and a stderr handler when logging is not
configured at all.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any, NamedTuple

from ..errors import (
    QueryKitError,
)
from .diagnose import sql_excerpt

__all__ = [
    "LOG_ENV",
    "MASK",
    "Listeners",
    "QueryCallback",
    "QueryRecord",
    "ensure_log_handler",
    "log_enabled",
    "log_query",
    "logger",
]

logger = logging.getLogger("querykit")
# ``Logger.isEnabledFor``'s memo of level -> enabled. logging clears it in place whenever a
# level changes (``Manager._clear_cache``); a False found in it is what the call would return.
# A logging without it leaves an empty dict here: every statement then asks isEnabledFor.
_LEVEL_MEMO: dict[int, bool] = getattr(logger, "_cache", {})


class QueryRecord(NamedTuple):
    """What ``db.on_query(callback)`` receives after each statement."""

    sql: str
    params: tuple[Any, ...]
    """The parameters as sent; each one ``"***"`` when the callback asked for masking."""
    duration: float
    """Seconds, from sending the statement to having read its result."""
    rowcount: int
    """Rows returned or affected; -1 when the statement failed."""
    target: str
    """``host:port/dbname`` of the server that ran it (a replica or the primary)."""
    error: QueryKitError | None = None


MASK = "***"
QueryCallback = Callable[[QueryRecord], object]


class Listeners:
    """The ``on_query`` callbacks of one database (shared by its transactions and replicas)."""

    __slots__ = ("_added", "_lock")

    def __init__(self) -> None:
        self._added: tuple[tuple[QueryCallback, bool], ...] = ()
        """Replaced, never changed in place: queries read it without a lock."""
        self._lock = threading.Lock()

    @property
    def callbacks(self) -> tuple[tuple[QueryCallback, bool], ...]:
        """The callbacks to tell about a statement: those added, and the logger's when
        ``querykit`` is enabled for DEBUG. Empty means the executor skips timing too."""
        if _LEVEL_MEMO.get(logging.DEBUG) is False:  # isEnabledFor's own memo, without its call
            return self._added
        if logger.isEnabledFor(logging.DEBUG):
            return (*self._added, _LOG_ENTRY)
        return self._added

    def add(self, callback: QueryCallback, mask_params: bool) -> Callable[[], None]:
        """Register ``callback`` for every statement; returns the function that removes it."""
        entry = (callback, mask_params)
        with self._lock:
            self._added = (*self._added, entry)

        def remove() -> None:
            with self._lock:
                self._added = tuple(e for e in self._added if e is not entry)

        return remove

    def notify(
        self,
        sql_text: str,
        params: Sequence[Any],
        started: float,
        rowcount: int,
        target: str,
        error: QueryKitError | None = None,
    ) -> None:
        """Tell every listener (and the ``querykit`` logger when enabled) about one statement."""
        duration = perf_counter() - started
        plain = tuple(params)
        masked = tuple(None if p is None else MASK for p in plain)
        for callback, mask in self.callbacks:
            record = QueryRecord(
                sql_text, masked if mask else plain, duration, rowcount, target, error
            )
            try:
                callback(record)
            except Exception:  # a broken logger must not break the application's queries
                logger.exception("querykit: on_query callback %r failed", callback)


LOG_ENV = "QUERYKIT_LOG"


def log_enabled() -> bool:
    """Whether ``QUERYKIT_LOG`` asks for statements on the ``querykit`` logger."""
    return os.environ.get(LOG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def log_query(record: QueryRecord) -> None:
    """The logger's listener: one DEBUG line per statement, parameters masked."""
    if record.error is not None:
        logger.debug(
            "%.3f ms on %s, failed: %s | params: %s",
            record.duration * 1000,
            record.target,
            sql_excerpt(record.sql, 2000),
            list(record.params),
        )
        return
    logger.debug(
        "%.3f ms on %s, %d rows: %s | params: %s",
        record.duration * 1000,
        record.target,
        record.rowcount,
        sql_excerpt(record.sql, 2000),
        list(record.params),
    )


_LOG_ENTRY: tuple[QueryCallback, bool] = (log_query, True)  # parameters always masked


def ensure_log_handler() -> None:
    """``QUERYKIT_LOG=1``: the ``querykit`` logger at DEBUG, to stderr when logging is
    not configured at all (as ``echo=True``). A level set on the logger is kept."""
    root = logging.getLogger()
    if logger.handlers or root.handlers:
        if logger.level == logging.NOTSET and root.level > logging.DEBUG:
            logger.setLevel(logging.DEBUG)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s querykit: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
