"""Apply and revert migrations under the lock, and report status.

Each public function takes resolved :class:`~querykit.settings.Settings`
(``None`` loads them from the environment and ``pyproject.toml``) and returns
a plain result object; the CLI only formats it::

    >>> result = up(load_settings(database_url="postgresql://app@db/app"))
    >>> [(d.filename, d.transactional) for d in result.done]
    [('0001_create_users.sql', True), ('0002_add_email_index.sql', False)]
"""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from ..errors import MigrationFailed, MigrationFileError, MigrationRefused
from ..execute.connect import connect, describe_target
from ..settings import Settings, load_settings, mask_secrets, masked_repr
from ..trusted_sql import trusted
from .files import (
    Migration,
    Statement,
    display_path,
    line_column,
    new_migration,
    snippet,
)
from .layouts import Layout, discover_layout, read_directory, resolve_layout
from .ledger import (
    KIND_BASELINE,
    KIND_TRANSACTION,
    Ledger,
    LedgerRow,
    LedgerTable,
    parse_table_name,
)
from .lock import MigrationLock, application_name
from .pipeline import Query, TransactionPipeline, succeeded
from .plan import (
    Entry,
    Step,
    baseline_floor,
    check_drift,
    entries,
    plan_down,
    plan_up,
    resolve_version,
)
from .version import Version

__all__ = [
    "BaselineResult",
    "Done",
    "Progress",
    "RepairResult",
    "RunResult",
    "Status",
    "baseline",
    "down",
    "new",
    "read_migrations",
    "repair",
    "status",
    "up",
    "verify",
]

DEFAULT_LOCK_WAIT = 60.0
LOCK_NOT_AVAILABLE = "55P03"
# The backend of a killed runner notices the dead socket within this interval and
# rolls back, instead of holding its locks until the statement ends by itself.
_CLIENT_CHECK_MS = 1000


@dataclass(frozen=True)
class Progress:
    """One progress event; ``message`` is ready to print.

    A transactional file's "start" comes when the runner begins to wait for its
    result: the server may already be running it, sent while the file before it
    committed (see :mod:`.pipeline`). "done" comes once its COMMIT has returned.
    """

    event: Literal["waiting", "start", "done", "failed", "retry", "note", "running"]
    message: str
    filename: str | None = None
    duration_ms: float | None = None
    """For "done": the file's time; for "running": how long its statement has run."""
    position: int | None = None
    """For "start": the file's number in this run (1-based), of ``count``."""
    count: int | None = None


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class Done:
    """One file applied or reverted."""

    version: Version
    filename: str
    direction: Literal["up", "down"]
    transactional: bool
    statements: int
    """Statements run by this call (fewer than the file has when it resumed)."""
    resumed_at: int | None
    """1-based statement a resumed file started at, else None."""
    duration_ms: float
    retries: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "version": self.version.to_json(),
            "name": self.filename,
            "direction": self.direction,
            "mode": "transaction" if self.transactional else "no-transaction",
            "statements": self.statements,
            "resumed_at": self.resumed_at,
            "duration_ms": round(self.duration_ms, 3),
            "retries": self.retries,
        }


@dataclass(frozen=True)
class RunResult:
    """What ``up`` or ``down`` did, or with ``dry_run`` would do."""

    direction: Literal["up", "down"]
    steps: tuple[Step, ...]
    done: tuple[Done, ...]
    dry_run: bool
    table: str
    lock_timeout: float
    stopped_at_baseline: str | None = None
    """``down --to``: the baseline file it stopped at (files up to it were never run by querykit)."""

    @property
    def nothing_to_do(self) -> bool:
        """True when the plan has no step (exit 0, or 4 under ``--exit-code``)."""
        return not self.steps

    def sql(self) -> str:
        """The plan as an SQL script: what runs, in which transactions, in order."""
        return render_plan(self)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "direction": self.direction,
            "dry_run": self.dry_run,
            "nothing_to_do": self.nothing_to_do,
            "table": self.table,
            "planned": [_step_dict(s) for s in self.steps],
            "done": [d.to_dict() for d in self.done],
            "stopped_at_baseline": self.stopped_at_baseline,
        }


def _step_dict(step: Step) -> dict[str, Any]:
    m = step.migration
    return {
        "version": m.version.to_json(),
        "name": m.filename,
        "mode": "transaction" if step.transactional else "no-transaction",
        "statements": len(step.statements),
        "resume_at": step.start + 1 if step.start else None,
    }


@dataclass(frozen=True)
class Status:
    """Files and ledger side by side."""

    directory: Path
    table: str
    database: str
    entries: tuple[Entry, ...]
    layout: Layout

    def of(self, *states: str) -> list[Entry]:
        """The entries in any of ``states``."""
        return [e for e in self.entries if e.state in states]

    @property
    def verified(self) -> bool:
        """True when no applied file has changed or gone missing."""
        return not self.of("changed", "missing")

    def counts(self) -> dict[str, int]:
        """How many files are in each state."""
        names = ("applied", "baseline", "pending", "changed", "missing", "failed", "interrupted")
        return {name: len(self.of(name)) for name in names}

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "directory": str(self.directory),
            "layout": self.layout.name,
            "layout_reason": self.layout.reason,
            "table": self.table,
            "database": self.database,
            "verified": self.verified,
            "counts": self.counts(),
            "migrations": [e.to_dict() for e in self.entries],
        }


@dataclass(frozen=True)
class BaselineResult:
    """What ``migrate baseline`` recorded as applied without running it."""

    version: Version
    marked: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {"version": self.version.to_json(), "marked": list(self.marked)}


@dataclass(frozen=True)
class RepairResult:
    """What ``migrate repair`` cleared, accepted or forgot."""

    resumable: tuple[str, ...] = ()
    """Partly applied files whose failure was cleared; ``up`` resumes them."""
    accepted: tuple[str, ...] = ()
    """Changed files whose new checksum was recorded."""
    forgotten: tuple[str, ...] = ()
    """Missing files dropped from the ledger."""
    untouched: tuple[str, ...] = ()
    """Problems left as they were, with the option that would handle them."""

    @property
    def nothing_to_do(self) -> bool:
        """True when there was nothing to repair."""
        return not (self.resumable or self.accepted or self.forgotten)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "nothing_to_do": self.nothing_to_do,
            "resumable": list(self.resumable),
            "accepted": list(self.accepted),
            "forgotten": list(self.forgotten),
            "untouched": list(self.untouched),
        }


@dataclass(frozen=True)
class Target:
    url: str
    directory: Path
    ledger: Ledger
    lock_timeout: float
    layout_setting: str = "auto"

    @cached_property
    def layout(self) -> Layout:
        return resolve_layout(self.directory, self.layout_setting)

    def files(self) -> list[Migration]:
        return discover_layout(self.directory, self.layout.name)

    __repr__ = masked_repr

    @property
    def table(self) -> LedgerTable:
        return self.ledger.table


def resolve_target(settings: Settings | None, lock_timeout: float | None = None) -> Target:
    # Imported here: resolving the URL may start the embedded server, which only
    # the database-facing commands need.
    from ..embedded import database_url

    s = settings if settings is not None else load_settings()
    if lock_timeout is not None:
        s = s.with_overrides(lock_timeout=lock_timeout)
    table = parse_table_name(s.migrations_table)
    return Target(database_url(s), s.migrations, Ledger(table), s.lock_timeout, s.migrations_layout)


# -- public API -------------------------------------------------------------------


def read_migrations(settings: Settings | None = None) -> list[Migration]:
    """The migrations directory's files in its layout, read and checksummed, sorted by version."""
    s = settings if settings is not None else load_settings()
    return read_directory(s.migrations, s.migrations_layout)


def status(settings: Settings | None = None) -> Status:
    """Applied, pending, changed, missing, failed and interrupted files. Reads only.

    >>> status(settings).counts()["pending"]
    2
    """
    target = resolve_target(settings)
    files = target.files()
    with database_errors(target), reading_connection(target) as conn:
        rows = target.ledger.rows(conn)
    return Status(
        target.directory,
        str(target.table),
        describe_target(target.url),
        tuple(entries(files, rows)),
        target.layout,
    )


def verify(settings: Settings | None = None) -> Status:
    """Like :func:`status`, but raise ``MigrationRefused`` if an applied file changed or vanished."""
    report = status(settings)
    check_drift(list(report.entries))
    return report


def up(
    settings: Settings | None = None,
    *,
    to: int | str | Version | None = None,
    dry_run: bool = False,
    allow_out_of_order: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT,
    lock_timeout: float | None = None,
    lock_retries: int = 0,
    on_progress: ProgressCallback | None = None,
    migrations: Sequence[Migration] | None = None,
) -> RunResult:
    """Apply the pending files in version order, each in its own transaction when it can.

    ``to`` stops after that version. ``lock_timeout`` (seconds) overrides the
    setting; ``lock_retries`` retries a file (or the statement of a
    no-transaction file) that hit it, with a growing pause. ``migrations`` are
    the directory's files as :func:`read_migrations` gave them to a caller that
    looked at them first (``migrate up`` lints them): each file is then read and
    checksummed once, and what was linted is what runs. None reads the directory.
    """
    target = resolve_target(settings, lock_timeout)
    files = list(migrations) if migrations is not None else target.files()
    version = None
    if to is not None:
        version = resolve_version(to, [m.version for m in files], what="--to")

    def plan(rows: dict[Version, LedgerRow]) -> list[Step]:
        found = entries(files, rows)
        return plan_up(found, to=version, allow_out_of_order=allow_out_of_order)

    return _run("up", target, plan, dry_run, lock_wait, lock_retries, on_progress)


def down(
    settings: Settings | None = None,
    *,
    to: int | str | Version | None = None,
    dry_run: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT,
    lock_timeout: float | None = None,
    lock_retries: int = 0,
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Revert the latest applied file, or every file above ``to`` (``0`` reverts all).

    Runs each file's ``-- querykit:down`` part, newest first, and removes its
    ledger row in the same transaction.
    """
    target = resolve_target(settings, lock_timeout)
    files = target.files()

    floor: list[Entry] = []

    def plan(rows: dict[Version, LedgerRow]) -> list[Step]:
        version = None
        if to is not None:
            known = sorted({m.version for m in files} | set(rows))
            version = resolve_version(to, known, what="--to", allow_zero=True)
        found = entries(files, rows)
        floor[:] = [e for e in [baseline_floor(found, version)] if e is not None]
        return plan_down(found, to=version)

    result = _run("down", target, plan, dry_run, lock_wait, lock_retries, on_progress)
    if floor:
        return replace(result, stopped_at_baseline=floor[0].filename)
    return result


def baseline(
    version: int | str,
    settings: Settings | None = None,
    *,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> BaselineResult:
    """Record every file up to ``version`` as applied, without running it.

    For a database whose schema already exists; refused once the ledger has rows.
    """
    target = resolve_target(settings)
    files = target.files()
    wanted = resolve_version(version, [m.version for m in files], what="baseline version")
    marked = [m for m in files if m.version <= wanted]
    with (
        database_errors(target),
        MigrationLock(target.url, target.table, wait=lock_wait) as lock,
        migration_connection(target) as conn,
    ):
        lock.wait_for_orphans(application_name(target.table, "run"), conn.info.backend_pid)
        target.ledger.ensure(conn)
        rows = target.ledger.rows(conn)
        if rows:
            latest = rows[max(rows)]
            raise MigrationRefused(
                f"the ledger {target.table} already has {len(rows)} row(s), the latest "
                f"{latest.name}; baseline is only for a database querykit has not migrated yet"
            )
        mark_applied(conn, target, lock, marked)
    return BaselineResult(wanted, tuple(m.filename for m in marked))


def repair(
    settings: Settings | None = None,
    *,
    accept_changed: bool = False,
    forget_missing: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> RepairResult:
    """Clear the failed state of partly applied no-transaction files after a person fixed them.

    ``up`` then resumes each at its failed statement, with the file's current
    content. ``accept_changed`` records the new checksum of edited applied
    files; ``forget_missing`` drops ledger rows whose file is gone.
    """
    target = resolve_target(settings)
    files = target.files()
    resumable: list[str] = []
    accepted: list[str] = []
    forgotten: list[str] = []
    untouched: list[str] = []
    with (
        database_errors(target),
        MigrationLock(target.url, target.table, wait=lock_wait) as lock,
        migration_connection(target) as conn,
    ):
        lock.wait_for_orphans(application_name(target.table, "run"), conn.info.backend_pid)
        ledger = target.ledger
        found = entries(files, ledger.rows(conn))
        lock.ensure_held()
        with conn.transaction():
            for e in found:
                m = e.migration
                if e.state in ("failed", "interrupted") and m is not None:
                    if e.state == "failed" or e.problem is not None:
                        ledger.clear_failure(conn, e.version, m.filename, m.checksum, len(m.up))
                        resumable.append(m.filename)
                elif e.state == "changed" and m is not None:
                    if accept_changed:
                        ledger.accept_checksum(conn, e.version, m.filename, m.checksum)
                        accepted.append(m.filename)
                    else:
                        untouched.append(f"{m.filename} changed (--accept-changed)")
                elif e.state == "missing":
                    if forget_missing:
                        ledger.delete(conn, e.version)
                        forgotten.append(e.filename)
                    else:
                        untouched.append(f"{e.filename} missing (--forget-missing)")
    return RepairResult(tuple(resumable), tuple(accepted), tuple(forgotten), tuple(untouched))


def mark_applied(
    conn: psycopg.Connection[Any], target: Target, lock: MigrationLock, marked: list[Migration]
) -> None:
    """Record ``marked`` as applied without running them (baseline, adopt), in one transaction."""
    lock.ensure_held()
    with conn.transaction():
        for m in marked:
            target.ledger.record(
                conn,
                m.version,
                m.filename,
                m.checksum,
                kind=KIND_BASELINE,
                duration_ms=0.0,
                statements=len(m.parsed.up),
            )


def new(name: str, settings: Settings | None = None) -> Path:
    """Create the next migration file from a short template; see :func:`files.new_migration`."""
    s = settings if settings is not None else load_settings()
    if s.migrations.is_dir():
        layout = resolve_layout(s.migrations, s.migrations_layout)
        if layout.name != "querykit":
            raise MigrationFileError(
                f"{display_path(s.migrations)} follows {layout.name}'s layout ({layout.reason}); "
                f"querykit migrate new writes querykit's own format: create the migration with "
                f"{layout.name}'s tooling, or by hand in its layout",
                path=str(s.migrations),
            )
    return new_migration(s.migrations, name)


# -- running ------------------------------------------------------------------------


@contextmanager
def database_errors(target: Target) -> Iterator[None]:
    """A psycopg error outside any migration statement: the ledger or lock queries failed."""
    try:
        yield
    except psycopg.Error as exc:
        message = " ".join((exc.diag.message_primary or str(exc)).split())
        code = f"{exc.sqlstate}: " if exc.sqlstate else ""
        raise MigrationFailed(
            f"{describe_target(target.url)}: {code}{mask_secrets(message, target.url)} "
            f"(while using the lock or the ledger {target.table}); check the server, the "
            "connection and the role's privileges, then run again",
            sqlstate=exc.sqlstate,
        ) from exc


def reading_connection(target: Target) -> psycopg.Connection[Any]:
    """A connection for reading the ledger (status, dry runs); no prepared statements."""
    return connect(target.url, autocommit=True, prepare_threshold=None)


@contextmanager
def migration_connection(target: Target) -> Iterator[psycopg.Connection[Any]]:
    # Never a server-side prepared statement: through a pooler, another client's
    # connection may already hold one of the same name (42P05).
    conn = connect(
        target.url,
        autocommit=True,
        prepare_threshold=None,
        application_name=application_name(target.table, "run"),
    )
    try:
        yield conn
    finally:
        conn.close()


def _run(
    direction: Literal["up", "down"],
    target: Target,
    plan: Callable[[dict[Version, LedgerRow]], list[Step]],
    dry_run: bool,
    lock_wait: float,
    lock_retries: int,
    on_progress: ProgressCallback | None,
) -> RunResult:
    emit = on_progress or (lambda _event: None)

    def result(steps: list[Step], done: list[Done]) -> RunResult:
        return RunResult(
            direction, tuple(steps), tuple(done), dry_run, str(target.table), target.lock_timeout
        )

    if dry_run:
        with database_errors(target), reading_connection(target) as conn:
            return result(plan(target.ledger.rows(conn)), [])

    def waiting(message: str) -> None:
        emit(Progress("waiting", message))

    with (
        database_errors(target),
        MigrationLock(target.url, target.table, wait=lock_wait, on_wait=waiting) as lock,
        migration_connection(target) as conn,
    ):
        lock.wait_for_orphans(application_name(target.table, "run"), conn.info.backend_pid)
        # Planned first: a file that cannot run leaves no ledger behind in a new database.
        steps = plan(target.ledger.rows(conn))
        if direction == "up" and steps:  # down, with no ledger yet, has nothing to revert
            target.ledger.ensure(conn)
        runner = _Runner(conn, target, lock, lock_retries, emit)
        with _StillRunning(emit) as ticker:
            runner.ticker = ticker
            done = runner.run_all(steps)
    return result(steps, done)


RUNNING_AFTER = 2.0
"""Seconds a statement runs before "running" events say so (an index build, a backfill)."""
RUNNING_EVERY = 1.0
PIPELINE_WINDOW = 8
"""Transactional files in flight at once: the server runs the next while one commits."""


def _pipelined(step: Step) -> bool:
    """Whether a step goes through the pipeline: a transactional file applied from its start."""
    return step.transactional and step.direction == "up" and not step.start


def _keeps_session(step: Step) -> bool:
    """Whether the session after ``step`` is as clean as before it (no reset needed)."""
    return all(s.keeps_session for s in step.statements)


class _StillRunning:
    """A thread that emits ``Progress("running", ...)`` while one statement runs long.

    One thread for the whole run, asleep unless a statement is in progress, so
    short statements cost two attribute writes.
    """

    def __init__(self, emit: ProgressCallback) -> None:
        self.emit = emit
        self.current: tuple[str, int, float] | None = None  # filename, line, started
        self._lock = threading.Lock()  # no "running" event once its statement has ended
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="querykit-migrate-progress")
        self._thread.daemon = True

    def __enter__(self) -> _StillRunning:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def statement(self, filename: str, line: int) -> Iterator[None]:
        self.current = (filename, line, time.perf_counter())
        try:
            yield
        finally:
            with self._lock:
                self.current = None

    def _loop(self) -> None:
        reported: tuple[str, int, float] | None = None
        next_at = 0.0
        while not self._stop.wait(0.1):
            with self._lock:
                current = self.current
                if current is None:
                    continue
                filename, line, started = current
                elapsed = time.perf_counter() - started
                if current is not reported:
                    reported, next_at = current, RUNNING_AFTER
                if elapsed >= next_at:
                    next_at = elapsed + RUNNING_EVERY
                    message = f"still running the statement at line {line}: {elapsed:.0f} s"
                    self.emit(Progress("running", message, filename, elapsed * 1000))


class _Runner:
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        target: Target,
        lock: MigrationLock,
        retries: int,
        emit: ProgressCallback,
    ) -> None:
        self.conn = conn
        self.ledger = target.ledger
        self.lock = lock
        self.retries = retries
        self.emit = emit
        self.encoding = conn.info.encoding
        self.table = str(target.table)
        self.session = session_setup(target.lock_timeout, conn.info.server_version)
        conn.execute(self.session)
        self.fresh = True
        self.role_changed = False
        conn.add_notice_handler(self._notice)
        condition, self._held = lock.held_by_runner(6)
        self._record = self.ledger.record_while_query(conn, condition)
        self._current: str | None = None
        self.ticker: _StillRunning | None = None

    def _notice(self, diag: psycopg.errors.Diagnostic) -> None:
        self.emit(Progress("note", f"{diag.severity}: {diag.message_primary}", self._current))

    def run(self, step: Step, position: int | None = None, count: int | None = None) -> Done:
        m = step.migration
        self._current = m.filename
        if not (step.transactional and step.direction == "up"):
            self.lock.ensure_held()  # a transactional up checks it in its ledger write
        verb = "applying" if step.direction == "up" else "reverting"
        mode = "" if step.transactional else " (no transaction)"
        if step.start >= len(step.statements):
            verb = "recording"  # killed after its last statement, before the ledger said so
        elif step.start:
            verb = "resuming"
            mode = f" at statement {step.start + 1} of {len(step.statements)}{mode}"
        start = Progress("start", f"{verb} {m.filename}{mode} ...", m.filename)
        self.emit(replace(start, position=position, count=count))
        started = time.perf_counter()
        self._clean_session(step)
        try:
            if step.transactional:
                retries = self._transactional(step, started)
            else:
                retries = self._statement_by_statement(step, started)
        except MigrationFailed:
            self.emit(Progress("failed", "failed", m.filename))
            raise
        ms = (time.perf_counter() - started) * 1000
        self.emit(Progress("done", f"ok ({_ms(ms)})", m.filename, ms))
        return Done(
            m.version,
            m.filename,
            step.direction,
            step.transactional,
            len(step.statements) - step.start,
            step.start + 1 if step.start else None,
            ms,
            retries,
        )

    def _clean_session(self, step: Step) -> None:
        """Each file starts from a fresh session, as under psql: what the last one SET is gone.

        After a file of plain DDL and DML (most files) the session is still clean, and
        the reset's two round trips are skipped.
        """
        if not self.fresh:
            self.conn.execute("DISCARD ALL")
            self.conn.execute(self.session)
        self.fresh = all(s.keeps_session for s in step.statements)
        self.role_changed = False

    def _transactional(self, step: Step, started: float) -> int:
        attempt = 0
        while True:
            try:
                with self.conn.transaction():
                    for statement in step.statements:
                        self._execute(step, statement)
                    if any(s.sets_role for s in step.statements):
                        self.conn.execute(_RESET_ROLE)  # write the ledger as the runner's role
                    self._write_ledger(step, started)
                return attempt
            except MigrationFailed as exc:
                if not self._retry(exc, attempt):
                    raise
                attempt += 1
            except psycopg.Error as exc:  # COMMIT itself failed, e.g. a deferred constraint
                raise _commit_failed(step, exc) from exc

    def run_all(self, steps: list[Step]) -> list[Done]:
        """Every step in order; runs of transactional files go through one pipeline each.

        A run ends before a file that needs a fresh session (the file before it
        changed the session) or cannot run in one transaction: those start
        after the pipeline is drained, as they always did.
        """
        done: list[Done] = []
        n, count = 0, len(steps)
        while n < count:
            end = n + 1
            if _pipelined(steps[n]):
                while end < count and _pipelined(steps[end]) and _keeps_session(steps[end - 1]):
                    end += 1
                self._run_pipelined(steps[n:end], n + 1, count, done)
            else:
                done.append(self.run(steps[n], n + 1, count))
            n = end
        return done

    def _run_pipelined(self, steps: list[Step], first: int, count: int, done: list[Done]) -> None:
        """Apply transactional files with the next ones already sent (:mod:`.pipeline`).

        Each file is BEGIN, its statements, the ledger insert (which fails unless the
        lock's backend still holds the lock, so a file during which it was lost never
        commits) and COMMIT. The server runs them in order and stops at the first error:
        that file is rolled back, the files sent after it are skipped, and the error is
        reported at its statement's file:line. A lock timeout (55P03) with
        ``--lock-retries`` retries that file and goes on from it.
        """
        ok = len(done)
        attempt = 0
        while len(done) - ok < len(steps):
            rest = steps[len(done) - ok :]
            self._clean_session(rest[0])
            try:
                self._pipeline(rest, first + len(done) - ok, count, attempt, done)
            except MigrationFailed as exc:
                failed = steps[len(done) - ok]
                self._rollback()
                self.fresh = _keeps_session(failed)
                if isinstance(exc, _StatementFailed) and self._retry(exc, attempt):
                    attempt += 1
                    continue
                self.emit(Progress("failed", "failed", failed.migration.filename))
                raise
            attempt = 0

    def _pipeline(
        self, steps: list[Step], position: int, count: int, attempt: int, done: list[Done]
    ) -> None:
        sent: deque[tuple[Step, float]] = deque()
        following = iter(steps)
        previous_done = 0.0
        with TransactionPipeline(self.conn) as pipe:
            for number in range(len(steps)):
                for step in itertools.islice(following, max(0, PIPELINE_WINDOW - pipe.in_flight)):
                    pipe.send(self._queries(step))
                    sent.append((step, time.perf_counter()))
                step, sent_at = sent.popleft()
                m = step.migration
                self._current = m.filename
                start = Progress("start", f"applying {m.filename} ...", m.filename)
                self.emit(replace(start, position=position + number, count=count))
                started = max(sent_at, previous_done)
                running = (  # one round trip: its time is the first statement's to show
                    self.ticker.statement(m.filename, step.statements[0].line)
                    if self.ticker is not None
                    else contextlib.nullcontext()
                )
                try:
                    with running:
                        results = pipe.receive()
                except psycopg.Error as exc:  # the connection is gone
                    raise _statement_failed(step, step.statements[0], exc) from exc
                self._check_results(step, results)
                previous_done = time.perf_counter()
                self.fresh = _keeps_session(step)
                ms = (previous_done - started) * 1000
                self.emit(Progress("done", f"ok ({_ms(ms)})", m.filename, ms))
                retries = attempt if not number else 0
                done.append(
                    Done(m.version, m.filename, "up", True, len(step.statements), None, ms, retries)
                )

    def _queries(self, step: Step) -> list[Query]:
        """A transactional file as the pipeline sends it: BEGIN, statements, ledger row, COMMIT."""
        m = step.migration
        queries: list[Query] = [(b"BEGIN", None)]
        queries += [(s.text.encode(self.encoding), None) for s in step.statements]
        if any(s.sets_role for s in step.statements):  # the ledger is written as the runner
            queries += [(reset.encode(), None) for reset in _RESET_ROLE.split("; ")]
        queries.append(self._record(m.version, m.filename, m.checksum, len(m.up), self._held))
        queries.append((b"COMMIT", None))
        return queries

    def _check_results(self, step: Step, results: list[Any]) -> None:
        """Raise the error of the first query that failed: a statement, the ledger row or COMMIT."""
        bad = next((n for n, r in enumerate(results) if not succeeded(r)), None)
        if bad is None:
            return
        exc = psycopg.errors.error_from_result(results[bad], encoding=self.encoding)
        statements = step.statements
        if bad <= len(statements):  # BEGIN (0) failing means the first statement never ran
            raise _statement_failed(step, statements[max(bad, 1) - 1], exc) from exc
        if bad == len(results) - 1:
            raise _commit_failed(step, exc) from exc
        if self.ledger.refused(exc):
            raise self.lock.lost() from exc
        raise _ledger_failed(step, self.table, exc) from exc

    def _rollback(self) -> None:
        with contextlib.suppress(psycopg.Error):  # a lost connection rolled back by itself
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")

    def _write_ledger(self, step: Step, started: float) -> None:
        m = step.migration
        try:
            if step.direction == "up":
                self.ledger.record(
                    self.conn,
                    m.version,
                    m.filename,
                    m.checksum,
                    kind=KIND_TRANSACTION,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    statements=len(m.up),
                )
            else:
                self.ledger.delete(self.conn, m.version)
        except psycopg.Error as exc:
            raise _ledger_failed(step, self.table, exc) from exc

    def _statement_by_statement(self, step: Step, started: float) -> int:
        m = step.migration
        if step.direction == "up" and not step.resume:
            self.ledger.start(self.conn, m.version, m.filename, m.checksum, len(m.up))
        attempts = 0
        for statement in step.statements[step.start :]:
            attempt = 0
            while True:
                self._drop_invalid_leftovers(statement)
                try:
                    self._execute(step, statement)
                    break
                except _StatementFailed as exc:
                    if self._retry(exc, attempt):
                        attempt += 1
                        continue
                    if step.direction == "up":
                        self._record_failure(m, statement.index - 1, exc.cause)
                    raise self._with_leftovers(exc, statement) from exc.__cause__
            attempts += attempt
            self.role_changed = self.role_changed or statement.sets_role
            if step.direction == "up":
                with self._as_runner():
                    self.ledger.progress(self.conn, m.version, statement.index, statement.sha256)
        with self._as_runner():
            if step.direction == "up":
                self.ledger.finish(self.conn, m.version, (time.perf_counter() - started) * 1000)
            else:
                self.ledger.delete(self.conn, m.version)
        return attempts

    @contextmanager
    def _as_runner(self) -> Iterator[None]:
        """Write the ledger as the runner's own role, after a statement did SET ROLE."""
        if not self.role_changed:
            yield
            return
        row = self.conn.execute(_CURRENT_ROLE).fetchone()
        assert row is not None
        self.conn.execute(_RESET_ROLE)
        try:
            yield
        finally:
            self.conn.execute(
                sql.SQL("SET SESSION AUTHORIZATION {}; SET ROLE {}").format(
                    sql.Literal(row[0]), sql.Literal(row[1])
                )
            )

    def _with_leftovers(self, exc: _StatementFailed, statement: Statement) -> _StatementFailed:
        """Say so when the failed statement left an INVALID index behind."""
        left = self._invalid_leftovers(statement)
        if not left:
            return exc
        left_behind = (
            f"the failed statement left the INVALID index {', '.join(left)} behind, which the "
            "next run of querykit migrate up drops before it tries again"
        )
        rest = exc.outcome.removeprefix(f"{_NOTHING_APPLIED}; ")
        return exc.with_outcome(f"{left_behind}; {rest}")

    def _record_failure(self, m: Migration, done: int, error: str) -> None:
        # If the connection is gone, the row reads "interrupted", which resumes too.
        with contextlib.suppress(psycopg.Error), self._as_runner():
            if done == 0:  # nothing applied: the file is simply pending again
                self.ledger.delete(self.conn, m.version)
            else:
                self.ledger.fail(self.conn, m.version, done, error)

    def _retry(self, exc: MigrationFailed, attempt: int) -> bool:
        if exc.sqlstate != LOCK_NOT_AVAILABLE or attempt >= self.retries:
            return False
        # Exponential backoff with jitter, so that retries do not line up with the blocker's.
        delay = min(0.5 * 2**attempt, 10.0) * random.uniform(0.8, 1.2)
        self.emit(
            Progress(
                "retry",
                f"lock timeout ({LOCK_NOT_AVAILABLE}); retry {attempt + 1} of {self.retries} "
                f"in {delay:.1f} s",
                self._current,
            )
        )
        time.sleep(delay)
        return True

    def _execute(self, step: Step, statement: Statement) -> None:
        """Run one statement; its failure becomes a :class:`_StatementFailed` naming file:line."""
        running = (
            self.ticker.statement(step.migration.filename, statement.line)
            if self.ticker is not None
            else contextlib.nullcontext()
        )
        try:
            with running:
                self.conn.execute(statement.text.encode(self.encoding))
        except psycopg.Error as exc:
            raise _statement_failed(step, statement, exc) from exc

    def _invalid_leftovers(self, statement: Statement) -> list[str]:
        """The INVALID indexes a failed CONCURRENTLY attempt of ``statement`` left behind."""
        target = statement.concurrent_index
        if target is None:
            return []
        relation = sql.Identifier(
            *((target.schema, target.relation) if target.schema else (target.relation,))
        ).as_string(self.conn)
        if target.index is not None:
            query = _INVALID_NAMED
            params: dict[str, Any] = {"name": target.index, "rel": relation}
        else:
            query = _INVALID_REINDEX
            params = {"rel": relation, "is_index": target.reindex_index, "name": target.relation}
        try:
            return [name for (name,) in self.conn.execute(query, params).fetchall()]
        except psycopg.Error:
            return []  # the connection is gone: the next run looks again

    def _drop_invalid_leftovers(self, statement: Statement) -> None:
        """Drop the INVALID index a failed CONCURRENTLY attempt left, before trying again."""
        for name in self._invalid_leftovers(statement):
            self.conn.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.SQL(trusted(name)))
            )
            self.emit(
                Progress(
                    "note",
                    f"dropped the INVALID index {name} left by an earlier failed attempt",
                    self._current,
                )
            )


# An index of that name, INVALID, in the schema of the indexed table.
_INVALID_NAMED = """
SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE NOT i.indisvalid AND c.relname = %(name)s
  AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass(%(rel)s))
"""
# A failed REINDEX CONCURRENTLY leaves <index>_ccnew (or _ccold) behind, INVALID.
_INVALID_REINDEX = """
SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE NOT i.indisvalid AND c.relname ~ '_cc(new|old)[0-9]*$'
  AND (NOT %(is_index)s OR starts_with(c.relname, %(name)s))
  AND i.indrelid = CASE WHEN %(is_index)s
      THEN (SELECT indrelid FROM pg_index WHERE indexrelid = to_regclass(%(rel)s))
      ELSE to_regclass(%(rel)s) END
"""


def _ms(ms: float) -> str:
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


_NOTHING_APPLIED = "nothing of this file was applied"
# Resets what a file may have done with SET ROLE / SET SESSION AUTHORIZATION.
_RESET_ROLE = "RESET SESSION AUTHORIZATION; RESET ROLE"
_CURRENT_ROLE = "SELECT current_setting('session_authorization'), current_setting('role')"


def session_setup(lock_timeout: float, server_version: int) -> sql.Composed:
    """What every file's session starts with: the lock timeout, and dead-client detection."""
    ms = max(1, round(lock_timeout * 1000))
    parts = [sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{ms}ms"))]
    if server_version >= 140000:
        parts.append(
            sql.SQL("SET client_connection_check_interval = {}").format(
                sql.Literal(f"{_CLIENT_CHECK_MS}ms")
            )
        )
    return sql.SQL("; ").join(parts)


class _StatementFailed(MigrationFailed):
    """A statement failed: ``cause`` is the server's error where it happened (what the ledger
    keeps), ``outcome`` what became of the file and what to do (said once, to the user)."""

    def __init__(
        self, cause: str, outcome: str, *, path: str, line: int, sqlstate: str | None
    ) -> None:
        super().__init__(f"{cause}; {outcome}", path=path, line=line, sqlstate=sqlstate)
        self.cause = cause
        self.outcome = outcome

    def with_outcome(self, outcome: str) -> _StatementFailed:
        assert self.path is not None and self.line is not None
        return _StatementFailed(
            self.cause, outcome, path=self.path, line=self.line, sqlstate=self.sqlstate
        )


_PLPGSQL_LINE = re.compile(r"inline_code_block line (\d+)")


def _statement_failed(step: Step, statement: Statement, exc: psycopg.Error) -> _StatementFailed:
    """The server's error as file:line:column, the statement, the SQLSTATE and what to do."""
    m = step.migration
    path, text = m.path, m.text
    if step.direction == "down" and m.down_path is not None and m.down_text is not None:
        path, text = m.down_path, m.down_text  # diesel, sqlx, golang-migrate: a file of its own
    diag = exc.diag
    line, column = statement.line, statement.column
    position = diag.statement_position
    context = diag.context
    if position and position.isdigit():
        line, column = line_column(text, statement.offset + int(position) - 1)
    elif statement.do_body_line is not None and context:
        found = _PLPGSQL_LINE.search(context)
        if found:
            line, column = statement.do_body_line + int(found[1]) - 1, 1
    message = diag.message_primary or str(exc).strip()
    code = f" {exc.sqlstate}" if exc.sqlstate else ""
    parts = [f"{display_path(path)}:{line}:{column}: {diag.severity or 'ERROR'}{code}: {message}"]
    for label, value in (
        ("DETAIL", diag.message_detail),
        ("HINT", diag.message_hint),
        ("CONTEXT", context),
    ):
        if value:
            parts.append(f"{label}: {' '.join(value.split())}")
    total = len(step.statements)
    parts.append(
        f"in statement {statement.index} of {total} ({step.direction} part): "
        f"{snippet(statement.text)}"
    )
    outcome = []
    if exc.sqlstate == LOCK_NOT_AVAILABLE:
        outcome.append(
            "another session holds a conflicting lock: run again later, or give it more "
            "time with --lock-timeout SECONDS or --lock-retries N"
        )
    if step.transactional and step.direction == "up":
        outcome.append(
            f"{_NOTHING_APPLIED} (its transaction was rolled back); fix it "
            "and run querykit migrate up again"
        )
    elif step.transactional:
        outcome.append("the file stays applied (its down transaction was rolled back)")
    elif step.direction == "up":
        applied = statement.index - 1
        outcome.append(
            f"this file runs outside a transaction: statements 1 to {applied} are applied "
            f"and recorded. Fix the cause, run querykit migrate repair, then querykit "
            f"migrate up resumes at statement {statement.index}"
            if applied
            else f"{_NOTHING_APPLIED}; fix it and run querykit migrate up again"
        )
    else:
        outcome.append(
            "this down part runs outside a transaction: the statements before this one ran, "
            "and the file stays recorded as applied; make them idempotent (IF EXISTS) and "
            "run down again"
        )
    return _StatementFailed(
        "; ".join(parts),
        "; ".join(outcome),
        path=str(m.path),
        line=line,
        sqlstate=exc.sqlstate,
    )


def _ledger_failed(step: Step, table: str, exc: psycopg.Error) -> MigrationFailed:
    """The file's statements ran, but its ledger row could not be written: say that."""
    m = step.migration
    what = "recording" if step.direction == "up" else "removing"
    undone = "applied" if step.direction == "up" else "reverted"
    return MigrationFailed(
        f"{display_path(m.path)}: its statements ran, but {what} it in the ledger {table} "
        f"failed: {exc.sqlstate or ''} {' '.join((exc.diag.message_primary or str(exc)).split())}; "
        f"nothing of this file was {undone} (its transaction was rolled back). Check that the "
        f"role running querykit migrate may write {table}, then run again",
        path=str(m.path),
        sqlstate=exc.sqlstate,
    )


def _commit_failed(step: Step, exc: psycopg.Error) -> MigrationFailed:
    m = step.migration
    return MigrationFailed(
        f"{display_path(m.path)}: COMMIT failed: {exc.sqlstate or ''} "
        f"{exc.diag.message_primary or exc}; nothing of this file was applied "
        "(check deferred constraints); fix it and run querykit migrate up again",
        path=str(m.path),
        sqlstate=exc.sqlstate,
    )


def render_plan(result: RunResult) -> str:
    """The SQL a run executes, with the transactions and ledger writes as comments."""
    ms = max(1, round(result.lock_timeout * 1000))
    verb = "apply" if result.direction == "up" else "revert"
    if not result.steps:
        return f"-- nothing to {verb}\n"
    out = [
        f"-- querykit migrate {result.direction}: {verb} {len(result.steps)} file(s), "
        f"ledger {result.table}"
    ]
    for number, step in enumerate(result.steps):
        m = step.migration
        statements = step.statements[step.start :]
        out.append("")
        if step.transactional:
            out.append(f"-- {m.filename}: one transaction, {len(statements)} statement(s)")
        else:
            resume = f", resuming at statement {step.start + 1}" if step.start else ""
            out.append(
                f"-- {m.filename}: no transaction, statement by statement{resume}; "
                "progress recorded after each"
            )
        previous = result.steps[number - 1].statements if number else ()
        if not all(s.keeps_session for s in previous):
            out.append("DISCARD ALL;  -- the file before changed the session: a fresh one")
        if not number or not all(s.keeps_session for s in previous):
            out.append(f"SET lock_timeout = '{ms}ms';")
        if step.transactional:
            out.append("BEGIN;")
        out.extend(f"{s.text};" for s in statements)
        ledger = "record" if step.direction == "up" else "delete"
        out.append(f"-- {ledger} version {m.version} in {result.table}")
        if step.transactional:
            out.append("COMMIT;")
    return "\n".join(out) + "\n"
