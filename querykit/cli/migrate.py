"""``querykit migrate``: apply hand-written SQL files; each command calls one ``querykit.migrate`` function.

Exit codes: 0 done (also when there was nothing to do), 1 failed, 2 usage or bad
files, 3 refused; with ``--exit-code``, 4 when there was nothing to do.

The library is imported when a command runs, not when the CLI starts, so that
``--help`` answers at once.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import MigrationFileError
from ._common import (
    DIRECTORY,
    EXIT_NOTHING_TO_DO,
    EXIT_REFUSED,
    EXIT_USAGE,
    SHARED,
    Common,
    option,
    with_options,
)
from .migrate_diff import diff
from .migrate_lint import StrictOpt, lint

if TYPE_CHECKING:
    from .. import migrate as lib
    from ..settings import Settings

DEFAULT_LOCK_WAIT = 60.0
"""Seconds to wait for another runner's lock; the library's DEFAULT_LOCK_WAIT (a test checks)."""

app = typer.Typer(
    help="Apply the SQL files of the migrations directory (default migrations/sql) in order.",
    no_args_is_help=True,
)

LayoutOpt = Annotated[
    str | None,
    typer.Option(
        "--layout",
        help="Whose layout the directory follows: auto, querykit, prisma, drizzle, diesel, "
        "sqlx, golang-migrate, dbmate or flyway. Overrides the 'migrations_layout' setting.",
        show_default=False,
    ),
]
ToOpt = Annotated[
    str | None,
    typer.Option("--to", help="Stop at this version (e.g. 0003).", show_default=False),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print the SQL plan; run nothing, take no lock.")
]
LockWaitOpt = Annotated[
    float,
    typer.Option("--lock-wait", min=0, help="Seconds to wait for another runner's lock."),
]
LockTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--lock-timeout",
        min=0.001,
        help="Seconds a statement may wait for a table lock (SET lock_timeout). "
        "Default: the lock_timeout setting (5).",
        show_default=False,
    ),
]
ExitCodeOpt = Annotated[
    bool,
    typer.Option(
        "--exit-code",
        help="Exit 4 instead of 0 when there is nothing to do, for scripts that want to know.",
    ),
]
LockRetriesOpt = Annotated[
    int,
    typer.Option(
        "--lock-retries", min=0, help="Retry a file this often when it hits lock_timeout (55P03)."
    ),
]


class _Command(Common):
    """Common options plus the migrations directory, and progress printed on stderr."""

    def __init__(
        self,
        directory: Path | None = None,
        *args: Any,
        layout: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(*args, **common)
        self.directory = directory
        self.layout = layout
        self._open_line = False
        self._held: list[str] = []
        self._line = ""  # the open line's text, to redraw it with the elapsed time
        self._ticked = False

    def settings(self) -> Settings:
        settings = super().settings()
        if self.directory is not None:
            settings = settings.with_overrides(migrations=self.directory.resolve())
        return settings.with_overrides(migrations_layout=self.layout)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        try:
            with super().errors():
                try:
                    yield
                except MigrationFileError as exc:
                    self._end_line()
                    self.fail(exc, EXIT_USAGE)  # bad names, bad SQL: the input is wrong
                except BaseException:
                    self._end_line()
                    raise
        finally:
            self._end_line()

    def progress(self, event: lib.Progress) -> None:
        """One line per file: ``applying 0003_add_index.sql ... ok (12 ms)``.

        Server notes that arrive while a file runs are held and printed under
        its line, so that they do not split it.
        """
        if self.quiet:
            return
        if event.event == "note":
            if self.verbose or not event.message.startswith(("NOTICE", "INFO", "DEBUG", "LOG")):
                if self._open_line:
                    self._held.append(event.message)
                else:
                    typer.echo(f"  {event.message}", err=True)
            return
        if event.event == "running":
            self._running(event)
            return
        if event.event in ("done", "failed"):
            text = f" {event.message}" if self._open_line else f"{event.filename} {event.message}"
            if self._ticked:  # redraw the line without the elapsed time
                text = f"\r{self._line}{text}\x1b[K"
            typer.echo(text, err=True)
            self._open_line = self._ticked = False
            self._flush_notes()
            return
        self._end_line()
        if event.event == "start":
            self._line = _numbered(event) if on_terminal() else event.message
            typer.echo(self._line, err=True, nl=False)
            self._open_line = True
        else:
            typer.echo(event.message, err=True)

    # -- progress on a terminal (begin) --------------------------------------------------
    def _running(self, event: lib.Progress) -> None:
        """A statement running long (an index build): the elapsed time, redrawn in place."""
        if not (self._open_line and on_terminal()):
            return  # logs and pipes get the file's line and its total time only
        seconds = (event.duration_ms or 0) / 1000
        typer.echo(f"\r{self._line} {seconds:.0f} s\x1b[K", err=True, nl=False)
        self._ticked = True

    # -- progress on a terminal (end) ----------------------------------------------------

    def _flush_notes(self) -> None:
        for message in self._held:
            typer.echo(f"  {message}", err=True)
        self._held.clear()

    def _end_line(self) -> None:
        if self._open_line:
            typer.echo("", err=True)
            self._open_line = self._ticked = False
        self._flush_notes()


_with_options = with_options(_Command, DIRECTORY, option("layout", LayoutOpt, None), *SHARED)
"""--dir, --layout and the shared options, gathered into the command's :class:`_Command`."""


def on_terminal() -> bool:
    """Whether progress goes to a terminal (redrawn lines, file counts) or to a log."""
    return sys.stderr.isatty()


def _numbered(event: lib.Progress) -> str:
    """``[3/40] applying 0003_add_index.sql ...`` when a run has several files."""
    if event.position is None or not event.count or event.count < 2:
        return event.message
    return f"[{event.position}/{event.count}] {event.message}"


def _finish_run(command: _Command, result: lib.RunResult, exit_code: bool) -> None:
    if command.json:
        command.emit_json(result.to_dict())
    elif result.dry_run:
        typer.echo(result.sql(), nl=False)
    elif result.nothing_to_do:
        verb = "apply" if result.direction == "up" else "revert"
        command.echo(f"nothing to {verb}: the database is up to date")
    else:
        verb = "applied" if result.direction == "up" else "reverted"
        command.echo(f"{verb} {len(result.done)} migration(s)")
    if result.stopped_at_baseline and not command.json:
        command.echo(
            f"stopped at {result.stopped_at_baseline}: it and the files before it were marked "
            "applied by querykit migrate baseline, never run by querykit, so down leaves them"
        )
    if result.nothing_to_do and exit_code:
        raise typer.Exit(EXIT_NOTHING_TO_DO)


@app.command()
@_with_options
def up(
    command: _Command,
    to: ToOpt = None,
    dry_run: DryRunOpt = False,
    allow_out_of_order: Annotated[
        bool,
        typer.Option("--allow-out-of-order", help="Apply pending files older than an applied one."),
    ] = False,
    lock_wait: LockWaitOpt = DEFAULT_LOCK_WAIT,
    lock_timeout: LockTimeoutOpt = None,
    lock_retries: LockRetriesOpt = 0,
    strict: StrictOpt = False,
    exit_code: ExitCodeOpt = False,
) -> None:
    """Apply pending migrations in version order, after linting them. Exit 0 when up to date
    (4 with --exit-code)."""
    from .. import migrate as lib

    with command.errors(), _few_collections():
        settings = command.settings()
        files = None
        if not dry_run:  # read once: the lint sees the files up applies
            files = lib.read_migrations(settings)
            lint_pending(settings, strict=strict, report=command.info, migrations=files)
        result = lib.up(
            settings,
            migrations=files,
            to=to,
            dry_run=dry_run,
            allow_out_of_order=allow_out_of_order,
            lock_wait=lock_wait,
            lock_timeout=lock_timeout,
            lock_retries=lock_retries,
            on_progress=command.progress,
        )
        _finish_run(command, result, exit_code)


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """Collect cyclic garbage rarely while ``up`` parses and applies the files.

    pglast's syntax trees are many small objects without cycles; at the default
    threshold the collector ran ~170 times over them for 500 files (~60 ms of CPU).
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 50_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def lint_pending(
    settings: Settings,
    *,
    strict: bool,
    report: Callable[[str], None],
    migrations: Sequence[lib.Migration] | None = None,
) -> None:
    """Lint the pending files on the database ``up`` uses; strict mode refuses on errors."""
    from ..embedded import database_url
    from ..migrate.lint import lint_before_up

    url = database_url(settings)
    lint_before_up(settings, url, strict=strict, report=report, migrations=migrations)


app.command()(lint)
app.command()(diff)


@app.command()
@_with_options
def down(
    command: _Command,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Revert every migration above this version (0: all). Default: only the latest.",
            show_default=False,
        ),
    ] = None,
    dry_run: DryRunOpt = False,
    lock_wait: LockWaitOpt = DEFAULT_LOCK_WAIT,
    lock_timeout: LockTimeoutOpt = None,
    lock_retries: LockRetriesOpt = 0,
    exit_code: ExitCodeOpt = False,
) -> None:
    """Run the '-- querykit:down' part of the latest migration (or all above --to)."""
    from .. import migrate as lib

    with command.errors():
        result = lib.down(
            command.settings(),
            to=to,
            dry_run=dry_run,
            lock_wait=lock_wait,
            lock_timeout=lock_timeout,
            lock_retries=lock_retries,
            on_progress=command.progress,
        )
        _finish_run(command, result, exit_code)


_MARK = {
    "applied": "applied",
    "baseline": "baseline",
    "pending": "pending",
    "changed": "CHANGED",
    "missing": "MISSING",
    "failed": "FAILED",
    "interrupted": "INTERRUPTED",
}


@app.command()
@_with_options
def status(
    command: _Command,
) -> None:
    """List applied, pending, changed, missing, failed and interrupted migrations."""
    from .. import migrate as lib

    with command.errors():
        report = lib.status(command.settings())
        if command.json:
            command.emit_json(report.to_dict())
            return
        _print_status(command, report)


def _print_status(command: _Command, report: lib.Status) -> None:
    command.echo(f"directory: {report.directory}")
    command.echo(f"layout:    {report.layout.name} ({report.layout.reason})")
    command.echo(f"ledger:    {report.table} on {report.database}")
    width = max((len(e.filename) for e in report.entries), default=0)
    for e in report.entries:
        detail = ""
        row = e.row
        if e.state in ("applied", "baseline") and row is not None:
            detail = f"{row.applied_at:%Y-%m-%d %H:%M:%S} by {row.applied_by}"
        elif e.state in ("failed", "interrupted") and row is not None:
            detail = f"stopped after statement {row.statements_done} of {row.statements_total}"
            if row.error:
                detail += f": {' '.join(row.error.split())[:200]}"
        elif e.state == "missing" and row is not None:
            detail = f"applied {row.applied_at:%Y-%m-%d %H:%M:%S}, file not found"
        elif e.problem:
            detail = e.problem
        if e.out_of_order:
            detail = "out of order" + (f"; {detail}" if detail else "")
        command.echo(f"  {e.filename:<{width}}  {_MARK[e.state]:<11}  {detail}".rstrip())
    counts = ", ".join(f"{n} {state}" for state, n in report.counts().items() if n)
    command.echo(f"{counts or 'no migrations'}")


@app.command()
@_with_options
def verify(
    command: _Command,
) -> None:
    """Check that every applied migration's file exists unchanged. Exit 3 if not."""
    from .. import migrate as lib

    with command.errors():
        report = lib.status(command.settings())
        bad = report.of("changed", "missing")
        if command.json:
            command.emit_json(
                {
                    "verified": report.verified,
                    "problems": [e.to_dict() for e in bad],
                    "checked": len(report.of("applied", "baseline", "changed", "missing")),
                }
            )
        elif report.verified:
            checked = len(report.of("applied", "baseline"))
            command.echo(f"ok: {checked} applied migration(s) match their files")
        for e in bad:
            typer.echo(f"{e.state}: {e.filename}: {e.problem or 'file not found'}", err=True)
        if not report.verified:
            raise typer.Exit(EXIT_REFUSED)


@app.command()
@_with_options
def baseline(
    command: _Command,
    version: Annotated[str, typer.Argument(help="Mark every migration up to this one applied.")],
    lock_wait: LockWaitOpt = DEFAULT_LOCK_WAIT,
) -> None:
    """Record migrations up to VERSION as applied without running them (existing databases)."""
    from .. import migrate as lib

    with command.errors():
        result = lib.baseline(version, command.settings(), lock_wait=lock_wait)
        if command.json:
            command.emit_json(result.to_dict())
            return
        for name in result.marked:
            command.info(f"marked {name} as applied")
        command.echo(f"baseline at {result.version}: {len(result.marked)} migration(s) marked")


@app.command()
@_with_options
def adopt(
    command: _Command,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="The tool whose ledger to read: prisma, drizzle, diesel, sqlx, golang-migrate, "
            "dbmate or flyway. Default: the directory's layout.",
            show_default=False,
        ),
    ] = None,
    lock_wait: LockWaitOpt = DEFAULT_LOCK_WAIT,
    exit_code: ExitCodeOpt = False,
) -> None:
    """Take over from another tool: record what its ledger says it applied, run nothing."""
    from .. import migrate as lib

    with command.errors():
        result = lib.adopt(command.settings(), source=source, lock_wait=lock_wait)
        if command.json:
            command.emit_json(result.to_dict())
        elif result.already:
            command.echo(f"nothing to adopt: the ledger already has what {result.tool} applied")
        else:
            for name in result.recorded:
                command.info(f"recorded {name} as applied by {result.tool}")
            command.echo(
                f"adopted {len(result.recorded)} migration(s) from {result.tool} "
                f"({result.table}); querykit migrate up applies the rest"
            )
        if result.nothing_to_do and exit_code:
            raise typer.Exit(EXIT_NOTHING_TO_DO)


@app.command()
@_with_options
def repair(
    command: _Command,
    accept_changed: Annotated[
        bool,
        typer.Option(
            "--accept-changed", help="Record the current checksum of edited applied files."
        ),
    ] = False,
    forget_missing: Annotated[
        bool,
        typer.Option("--forget-missing", help="Drop ledger rows whose file is gone."),
    ] = False,
    lock_wait: LockWaitOpt = DEFAULT_LOCK_WAIT,
    exit_code: ExitCodeOpt = False,
) -> None:
    """Clear a failed no-transaction migration after you fixed it; up then resumes it."""
    from .. import migrate as lib

    with command.errors():
        result = lib.repair(
            command.settings(),
            accept_changed=accept_changed,
            forget_missing=forget_missing,
            lock_wait=lock_wait,
        )
        if command.json:
            command.emit_json(result.to_dict())
        else:
            for name in result.resumable:
                command.echo(f"cleared the failure of {name}: querykit migrate up resumes it")
            for name in result.accepted:
                command.echo(f"recorded the new checksum of {name}")
            for name in result.forgotten:
                command.echo(f"dropped {name} from the ledger")
            for note in result.untouched:
                command.info(f"left as is: {note}")
            if result.nothing_to_do:
                command.echo("nothing to repair")
        if result.nothing_to_do and exit_code:
            raise typer.Exit(EXIT_NOTHING_TO_DO)


@app.command()
@with_options(_Command, DIRECTORY, *SHARED)
def new(
    command: _Command,
    name: Annotated[str, typer.Argument(help="What the migration does, e.g. 'add users'.")],
    from_schema: Annotated[
        bool,
        typer.Option(
            "--from-schema",
            help="Draft it from schema.py instead of a template: the same as "
            "`querykit migrate diff --write NAME` (a safe draft, proven on a clone of the "
            "shadow database before it is written; nothing written when in sync).",
        ),
    ] = False,
) -> None:
    """Create the next migration file from a template (or, with --from-schema, drafted from
    schema.py) and print its path."""
    from .. import migrate as lib

    if from_schema:
        from ..migrate.diff import diff as run_diff

        with command.errors():
            result = run_diff(command.settings(), write=name)
            if command.json:
                command.emit_json(result.to_dict())
            else:
                command.echo(result.text())
        return
    if command.database_url is not None:
        raise typer.BadParameter("--database-url is only used with --from-schema")
    with command.errors():
        path = lib.new(name, command.settings())
        if command.json:
            command.emit_json({"path": str(path)})
        else:
            command.echo(str(path))
