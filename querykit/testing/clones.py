"""Clone-ahead: background threads keep clones of the template ready and drop used ones.

``CREATE DATABASE ... TEMPLATE`` takes tens of milliseconds on the plugin's own
server (its data on the RAM disk; hundreds on a disk once many clones came and
went), more than a typical test. Two threads create clones
while tests run, so a test waits only when it outruns them; two creations at once
finished 2-3x sooner than one after another on a loaded 2-vCPU machine (their
checkpoints and I/O overlap).
The threads also open each clone's ``Database`` (its pool's first connection), so
``qk_db`` hands a test a connected database, and they close it afterwards: what
remains on the test's critical path is taking a clone from a queue.
Used clones are dropped when the ready queue is full, or at once when more than
:data:`MAX_PENDING_DROPS` wait, so disk use stays bounded.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import threading
from dataclasses import dataclass
from typing import Any

import psycopg

from .. import Database, connect
from ..errors import ExecuteError, QueryKitError
from .names import clone_url
from .template import Template, create_clone, drop_database

MAX_PENDING_DROPS = 4


@dataclass
class Clone:
    """A clone of the template, and a ``Database`` already connected to it (when made ahead)."""

    name: str
    url: str
    db: Database | None = None


class CloneFactory:
    """Clones of one template, named ``<prefix><n>``; ``ahead`` of them kept ready."""

    def __init__(
        self,
        admin_url: str,
        template: Template,
        prefix: str,
        ahead: int = 2,
        threads: int = 2,
        *,
        connected: bool = True,
    ) -> None:
        self.admin_url = admin_url
        self.template = template
        self.prefix = prefix
        self.ahead = ahead
        self.threads = threads
        self.connected = connected
        """Whether a clone made ahead comes with its ``Database`` open (qk_db's);
        False for callers that connect by themselves and count the connections."""
        self._creating = 0
        self._numbers = itertools.count(1)
        self._ready: collections.deque[Clone] = collections.deque()
        self._drops: collections.deque[Clone] = collections.deque()
        self._waiting = 0
        self._stop = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._workers: list[threading.Thread] = []

    def take(self) -> Clone:
        """A ready clone, now the caller's (waiting for one if needed)."""
        if self.ahead == 0:
            return self.make()
        with self._cond:
            if not self._workers:
                self._workers = [
                    threading.Thread(target=self._work, name="querykit clone-ahead", daemon=True)
                    for _ in range(self.threads)
                ]
                for worker in self._workers:
                    worker.start()
            self._waiting += 1
            self._cond.notify_all()
            try:
                while not self._ready and self._error is None:
                    self._cond.wait()
                if self._error is not None:
                    raise ExecuteError(
                        f"querykit.testing: cloning {self.template.name} failed: {self._error}"
                    ) from self._error
                clone = self._ready.popleft()
            finally:
                self._waiting -= 1
            self._cond.notify_all()
            return clone

    def discard(self, clone: Clone) -> None:
        """Close the clone's ``Database`` and drop it, later, in the background."""
        if self.ahead == 0:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                self._drop(conn, clone)
            return
        with self._cond:
            self._drops.append(clone)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the threads and drop every clone they made that is not dropped yet."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for worker in self._workers:
            worker.join()
        leftovers = [*self._ready, *self._drops]
        self._ready.clear()
        self._drops.clear()
        if leftovers:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                for clone in leftovers:
                    self._drop(conn, clone)

    @property
    def running(self) -> bool:
        """Whether the clone-ahead threads started (at the first :meth:`take`)."""
        return bool(self._workers)

    def make(self) -> Clone:
        """A clone made now, without a ``Database``, and without starting clone-ahead."""
        name = f"{self.prefix}{next(self._numbers)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            create_clone(conn, self.template, name)
        return Clone(name, clone_url(self.admin_url, name))

    def _create(self, conn: psycopg.Connection[Any], name: str) -> Clone:
        create_clone(conn, self.template, name)
        url = clone_url(self.admin_url, name)
        return Clone(name, url, connect(url) if self.connected else None)

    @staticmethod
    def _drop(conn: psycopg.Connection[Any], clone: Clone) -> None:
        if clone.db is not None:
            with contextlib.suppress(QueryKitError):
                clone.db.close()
        drop_database(conn, clone.name)

    def _next_job(self) -> str | Clone | None:
        """A name to create, a clone to drop, or None to stop; waits under the condition."""
        with self._cond:
            while True:
                if self._stop:
                    return None
                coming = len(self._ready) + self._creating
                short = coming < max(self.ahead, self._waiting + (self.ahead > 0))
                if self._drops and (len(self._drops) > MAX_PENDING_DROPS or not short):
                    return self._drops.popleft()
                if short:
                    self._creating += 1
                    return f"{self.prefix}{next(self._numbers)}"
                self._cond.wait()

    def _work(self) -> None:
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                while (what := self._next_job()) is not None:
                    if isinstance(what, Clone):
                        self._drop(conn, what)
                        continue
                    try:
                        clone = self._create(conn, what)
                    finally:
                        with self._cond:
                            self._creating -= 1
                    with self._cond:
                        self._ready.append(clone)
                        self._cond.notify_all()
        except BaseException as exc:  # the waiting test reports it
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def __enter__(self) -> CloneFactory:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
