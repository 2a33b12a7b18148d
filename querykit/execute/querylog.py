"""The query log: ``on_query`` listeners, :class:`QueryRecord` and ``QUERYKIT_LOG``."""

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

logger = logging.getLogger("querykit")


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

    __slots__ = ("_lock", "callbacks")

    def __init__(self) -> None:
        self.callbacks: tuple[tuple[QueryCallback, bool], ...] = ()
        """Replaced, never changed in place: queries read it without a lock."""
        self._lock = threading.Lock()

    def add(self, callback: QueryCallback, mask_params: bool) -> Callable[[], None]:
        """Register ``callback`` for every statement; returns the function that removes it."""
        entry = (callback, mask_params)
        with self._lock:
            self.callbacks = (*self.callbacks, entry)

        def remove() -> None:
            with self._lock:
                self.callbacks = tuple(e for e in self.callbacks if e is not entry)

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
    """The ``QUERYKIT_LOG=1`` listener: one INFO line per statement, parameters masked."""
    if record.error is not None:
        logger.info(
            "%.3f ms on %s, failed: %s | params: %s",
            record.duration * 1000,
            record.target,
            sql_excerpt(record.sql, 2000),
            list(record.params),
        )
        return
    logger.info(
        "%.3f ms on %s, %d rows: %s | params: %s",
        record.duration * 1000,
        record.target,
        record.rowcount,
        sql_excerpt(record.sql, 2000),
        list(record.params),
    )


def ensure_log_handler() -> None:
    """With ``QUERYKIT_LOG=1`` and logging not configured at all, log to stderr (as ``echo``)."""
    root = logging.getLogger()
    if logger.handlers or root.handlers:
        if logger.level == logging.NOTSET and root.level > logging.INFO:
            logger.setLevel(logging.INFO)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s querykit: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
