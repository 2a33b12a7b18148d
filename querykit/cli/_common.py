"""Options and error handling shared by every querykit command.

Exit codes (also in the README):

    0  success
    1  failed: the database or a statement reported an error
    2  usage or configuration error
    3  refused: a safety check stopped the command (see querykit migrate)
    4  nothing to do, only with --exit-code (querykit migrate up/down/repair);
       without it, nothing to do is a success: 0
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Concatenate, NoReturn, ParamSpec, TypeVar

import typer

from ..errors import ConfigError, MigrationRefused, QueryKitError
from ..settings import Settings, load_settings, mask_secrets, masked_repr

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_NOTHING_TO_DO = 4

DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL. Overrides DATABASE_URL and pyproject.toml. "
        "Without any, querykit uses its embedded server.",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", help="pyproject.toml to read [tool.querykit] from.", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="More detail; tracebacks on errors.")
]
DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Migrations directory. Overrides the 'migrations' setting.",
        show_default=False,
    ),
]


@dataclass
class Common:
    """The shared options of one command invocation."""

    database_url: str | None = None
    config: Path | None = None
    json: bool = False
    quiet: bool = False
    verbose: bool = False

    __repr__ = masked_repr

    def settings(self) -> Settings:
        return load_settings(config=self.config, database_url=self.database_url)

    def echo(self, text: str = "") -> None:
        """Human output on stdout, silenced by -q and by --json."""
        if not self.quiet and not self.json:
            typer.echo(text)

    def emit_json(self, payload: Any) -> None:
        typer.echo(json.dumps(payload, indent=2, default=str))

    def info(self, text: str) -> None:
        """Progress and notes on stderr, silenced by -q."""
        if not self.quiet:
            typer.echo(text, err=True)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn querykit errors into one line on stderr and a meaningful exit code."""
        try:
            yield
        except typer.Exit:
            raise
        except QueryKitError as exc:
            self.fail(exc)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug, or an error querykit did not foresee: still one line
            hint = "" if self.verbose else " (run again with -v for the traceback)"
            self.fail(exc, EXIT_FAILED, message=f"unexpected {type(exc).__name__}: {exc}{hint}")

    def fail(
        self, exc: BaseException, code: int | None = None, *, message: str | None = None
    ) -> NoReturn:
        if code is None:
            code = exit_code_for(exc)
        if self.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        message = mask_secrets(" ".join((message or str(exc)).split()), self.database_url)
        if self.json:
            typer.echo(
                json.dumps({"error": message, "type": type(exc).__name__, "exit_code": code})
            )
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code)


def option(name: str, annotation: object, default: object) -> inspect.Parameter:
    """An option for :func:`with_options`: the parameter ``name: annotation = default``."""
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


DATABASE_URL = option("database_url", DatabaseUrlOpt, None)
CONFIG = option("config", ConfigOpt, None)
JSON = option("json", JsonOpt, False)
QUIET = option("quiet", QuietOpt, False)
VERBOSE = option("verbose", VerboseOpt, False)
DIRECTORY = option("directory", DirOpt, None)
SHARED = (DATABASE_URL, CONFIG, JSON, QUIET, VERBOSE)
"""The options of almost every command, in the order --help lists them (after its own)."""

C = TypeVar("C", bound=Common)
P = ParamSpec("P")


def with_options(
    make: Callable[..., C], *options: inspect.Parameter
) -> Callable[[Callable[Concatenate[C, P], None]], Callable[..., None]]:
    """Give a command the shared ``options``, gathered into the object ``make(**options)``.

    The command is written as ``def up(command: _Command, to: ToOpt = None)``:
    typer sees its own parameters followed by ``options`` (so ``--help`` lists
    them last, each with its help text), and the command gets the object built
    from their values as its first argument, instead of seven parameters and a
    constructor call repeated in every command.
    """

    def decorate(command: Callable[Concatenate[C, P], None]) -> Callable[..., None]:
        own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]
        names = [o.name for o in options]

        call: Callable[..., None] = command  # typer passes the command's own by keyword

        @functools.wraps(command)
        def run(**values: Any) -> None:
            shared = {name: values.pop(name) for name in names}
            call(make(**shared), **values)

        signature = inspect.Signature([*own, *options], return_annotation=None)
        run.__signature__ = signature  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
        return run

    return decorate


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    if isinstance(exc, MigrationRefused):
        return EXIT_REFUSED
    return EXIT_FAILED
