"""The ``querykit`` command line: a thin typer shell over the library.

Each command resolves settings, calls one library function and prints its
result as text, or as JSON with ``--json``. Errors are one line on stderr
(``-v`` adds the traceback) with the exit codes listed in ``_common``.
"""

from __future__ import annotations

import gc

import typer

from . import db, migrate
from .check import check
from .sql import sql
from .studio import studio

app = typer.Typer(
    name="querykit",
    help="querykit: SQL-first PostgreSQL toolkit. See the README for a tour.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Help texts are plain text: with Rich markup, "[tool.querykit]" would vanish as a tag.
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"querykit {version('querykit')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print querykit's version and exit.",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """querykit: SQL-first PostgreSQL toolkit. See the README for a tour."""


app.add_typer(db.app, name="db")
app.add_typer(migrate.app, name="migrate")
app.command("sql")(sql)
app.command("check")(check)
app.command("studio")(studio)


def main() -> None:
    """The ``querykit`` console script."""
    # What the imports built lives as long as the process: the cyclic garbage collector
    # need not scan it again at every collection (and the one at exit).
    gc.freeze()
    app()


__all__ = ["app", "main"]
