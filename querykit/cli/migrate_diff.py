"""``querykit migrate diff``: do the migrations build what schema.py declares?

Exit codes: 0 in sync (or a report without --check), 3 with --check when they
differ, 1 when a draft cannot be written (it did not close the loop), 2 usage.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import EXIT_REFUSED, SHARED, Common, with_options


@with_options(Common, *SHARED)
def diff(
    command: Common,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 3 when they differ (for CI); 0 when in sync.")
    ] = False,
    write: Annotated[
        str | None,
        typer.Option(
            "--write",
            metavar="NAME",
            help="Write a safe draft migration NAME (and NAME_validate, NAME_index_*...) once it "
            "is proven on a clone of the shadow database; drops and rewrites stay commented out.",
            show_default=False,
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            metavar="URL",
            help="Compare this live database with the migrations instead of schema.py: has it "
            "drifted from the history?",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compare the migrated schema with schema.py, object by object, in the catalog's terms.

    Two scratch databases are built on the server of --database-url (or on the
    embedded one, also when that role may not create databases): one with every
    migration applied, one with schema.py created by SQLAlchemy. Both are
    dropped afterwards.
    """
    from ..migrate.diff import diff as run_diff  # imported when the command runs: a fast CLI start

    with command.errors():
        result = run_diff(command.settings(), database_url=database, write=write)
        if command.json:
            command.emit_json(result.to_dict())
        else:
            command.echo(result.text())
        if check and not result.in_sync:
            raise typer.Exit(EXIT_REFUSED)
