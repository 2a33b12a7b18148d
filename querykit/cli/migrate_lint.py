"""``querykit migrate lint``: the migration linter's command; ``up`` uses :func:`lint_before_up`.

Exit codes: 0 no error-level finding, 1 at least one, 2 usage or bad files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import MigrationFileError
from ._common import (
    CONFIG,
    DIRECTORY,
    EXIT_FAILED,
    EXIT_USAGE,
    JSON,
    QUIET,
    VERBOSE,
    Common,
    option,
    with_options,
)

if TYPE_CHECKING:
    from ..settings import Settings

LintDatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Database whose ledger, catalog and table sizes the lint reads. Default: "
        "DATABASE_URL or pyproject.toml; without one the lint is static.",
        show_default=False,
    ),
]


class _LintCommand(Common):
    def __init__(
        self,
        directory: Path | None,
        database_url: str | None,
        config: Path | None,
        json: bool,
        quiet: bool,
        verbose: bool,
    ) -> None:
        super().__init__(database_url, config, json, quiet, verbose)
        self.directory = directory

    def settings(self) -> Settings:
        settings = super().settings()
        if self.directory is not None:
            settings = settings.with_overrides(migrations=self.directory.resolve())
        return settings

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        with super().errors():
            try:
                yield
            except MigrationFileError as exc:
                self.fail(exc, EXIT_USAGE)


class Format(StrEnum):
    """How ``migrate lint`` prints findings: plain text, or GitHub annotations."""

    text = "text"
    github = "github"


StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Refuse to apply when the pending files have an error-level lint finding "
        '(also: lint = "strict" in [tool.querykit]).',
    ),
]


@with_options(
    _LintCommand,
    DIRECTORY,
    option("database_url", LintDatabaseOpt, None),
    CONFIG,
    JSON,
    QUIET,
    VERBOSE,
)
def lint(
    command: _LintCommand,
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Files to lint. Default: the pending files.", show_default=False),
    ] = None,
    all_files: Annotated[bool, typer.Option("--all", help="Lint every migration file.")] = False,
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="Replay each statement on a scratch clone of a shadow database inside "
            "BEGIN ... ROLLBACK and confirm or correct each finding (needs CREATEDB).",
        ),
    ] = False,
    output: Annotated[
        Format, typer.Option("--format", help="text, or github for workflow annotations.")
    ] = Format.text,
) -> None:
    """Check migrations for locks, rewrites and scans that stall the application.

    Without a database every file counts as pending (a fresh database). With
    one (--database-url or configured) applied files are history, column types
    come from the catalog and table sizes weigh the findings.
    """
    with command.errors():
        from ..migrate import lint as lib

        result = lib.lint(command.settings(), files or (), all_files=all_files, probe=probe)
        if command.json:
            command.emit_json(result.to_dict())
        elif output is Format.github:
            typer.echo(result.github(), nl=False)
        elif result.findings:
            command.echo(result.text().rstrip("\n"))
        else:
            command.echo(lib.summary(result.findings, len(result.files)))
        if result.errors:
            raise typer.Exit(EXIT_FAILED)
