"""Clone-ahead: background threads keep clones of the template ready and drop used ones.

``CREATE DATABASE ... TEMPLATE`` takes tens of milliseconds on a quiet machine
(hundreds on a busy one), more than a typical test. Two threads create clones
while tests run, so a test waits only when it outruns them; two creations at once
finished 2-3x sooner than one after another on a loaded 2-vCPU machine (their
checkpoints and I/O overlap).
Used clones are dropped when the ready queue is full, or at once when more than
:data:`MAX_PENDING_DROPS` wait, so disk use stays bounded.
"""

from __future__ import annotations

import collections
import itertools
import threading
from typing import Any

import psycopg

from ..errors import QueryKitError
from .template import Template, create_clone, drop_database

MAX_PENDING_DROPS = 4


class CloneFactory:
    """Clones of one template, named ``<prefix><n>``; ``ahead`` of them kept ready."""

    def __init__(
        self, admin_url: str, template: Template, prefix: str, ahead: int = 2, threads: int = 2
    ) -> None:
        self.admin_url = admin_url
        self.template = template
        self.prefix = prefix
        self.ahead = ahead
        self.threads = threads
        self._creating = 0
        self._numbers = itertools.count(1)
        self._ready: collections.deque[str] = collections.deque()
        self._drops: collections.deque[str] = collections.deque()
        self._waiting = 0
        self._stop = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._workers: list[threading.Thread] = []

    def take(self) -> str:
        """The name of a ready clone, now the caller's (waiting for one if needed)."""
        if self.ahead == 0:
            return self._create_now()
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
                    raise QueryKitError(
                        f"querykit.testing: cloning {self.template.name} failed: {self._error}"
                    ) from self._error
                name = self._ready.popleft()
            finally:
                self._waiting -= 1
            self._cond.notify_all()
            return name

    def discard(self, name: str) -> None:
        """Drop ``name`` later, in the background."""
        if self.ahead == 0:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                drop_database(conn, name)
            return
        with self._cond:
            self._drops.append(name)
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
                for name in leftovers:
                    drop_database(conn, name)

    def _create_now(self) -> str:
        name = f"{self.prefix}{next(self._numbers)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            create_clone(conn, self.template, name)
        return name

    def _next_job(self) -> tuple[str, str] | None:
        """("create" | "drop", name), or None to stop; waits under the condition."""
        with self._cond:
            while True:
                if self._stop:
                    return None
                coming = len(self._ready) + self._creating
                short = coming < max(self.ahead, self._waiting + (self.ahead > 0))
                if self._drops and (len(self._drops) > MAX_PENDING_DROPS or not short):
                    return "drop", self._drops.popleft()
                if short:
                    self._creating += 1
                    return "create", f"{self.prefix}{next(self._numbers)}"
                self._cond.wait()

    def _work(self) -> None:
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                while (job := self._next_job()) is not None:
                    kind, name = job
                    if kind == "drop":
                        drop_database(conn, name)
                        continue
                    try:
                        create_clone(conn, self.template, name)
                    finally:
                        with self._cond:
                            self._creating -= 1
                    with self._cond:
                        self._ready.append(name)
                        self._cond.notify_all()
        except BaseException as exc:  # the waiting test reports it
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def __enter__(self) -> CloneFactory:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
