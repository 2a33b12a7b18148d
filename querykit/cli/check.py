"""``querykit check``: prepare and describe every named query on a shadow database.

Exit codes: 0 when every statement checks out, 1 when there are findings (one
line each), 2 usage or configuration (a missing lock file with --offline).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import EXIT_FAILED, SHARED, Common, with_options


@with_options(Common, *SHARED)
def check(
    command: Common,
    pending: Annotated[
        bool,
        typer.Option(
            "--pending",
            help="Also check against head plus the pending migrations: does the code deployed "
            "now survive the migration about to run?",
        ),
    ] = False,
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Store each statement's SQL hash and described types in .querykit/queries.lock "
            "for --offline.",
        ),
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Check against .querykit/queries.lock without a database (for CI); fails when "
            "a query's SQL changed and the lock was not refreshed.",
        ),
    ] = False,
) -> None:
    """Prove every named query against the migrated schema, like sqlx's checked queries.

    Each statement a named query sends is prepared and described on a shadow
    database (the migrations applied to a scratch database, dropped afterwards;
    nothing is executed). Reported: statements that do not prepare (with the
    migration file:line that dropped or renamed what they need), result types
    that differ from the query's Python types, parameters the codecs cannot
    send, columns promised non-null that can be NULL (outer joins included),
    and as_= classes that do not fit. "head" is what the database has applied.

    Exit 0 when every statement checks out, 1 with findings (one line each),
    2 on a usage or configuration error (such as --offline without a lock).
    """
    from ..check import check as run_check  # imported when the command runs: a fast CLI start

    with command.errors():
        result = run_check(command.settings(), pending=pending, write=write, offline=offline)
        if command.json:
            command.emit_json(result.to_dict())
        elif result.ok:
            command.echo(result.text())
        else:
            typer.echo(result.text())
        if not result.ok:
            raise typer.Exit(EXIT_FAILED)
