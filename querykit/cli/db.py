"""``querykit db``: manage the embedded PostgreSQL and inspect the configured database."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from ..embedded import EmbeddedServer
from ..errors import ConfigError
from ..settings import mask_url
from ._common import (
    CONFIG,
    DATABASE_URL,
    EXIT_FAILED,
    JSON,
    QUIET,
    SHARED,
    VERBOSE,
    Common,
    option,
    with_options,
)

app = typer.Typer(
    help="Manage the embedded PostgreSQL (data in .querykit/pgdata) and inspect the database.",
    no_args_is_help=True,
)
_embedded_options = with_options(Common, CONFIG, JSON, QUIET, VERBOSE)
"""The embedded server's own commands: no --database-url, the server is always the embedded one."""


@app.command()
@_embedded_options
def start(common: Common) -> None:
    """Start the embedded PostgreSQL, or reuse the one already running."""
    with common.errors():
        server = EmbeddedServer.for_project(common.settings().project_dir)
        status = server.start()
        state = "started" if status.started else "already running"
        if common.json:
            common.emit_json({"state": state, **_embedded_payload(server)})
        else:
            common.echo(
                f"embedded PostgreSQL {state}: {status.url} (pid {status.pid}); "
                "it keeps running until: querykit db stop"
            )


@app.command()
@_embedded_options
def stop(common: Common) -> None:
    """Stop the embedded PostgreSQL. Its data stays in .querykit/pgdata."""
    with common.errors():
        server = EmbeddedServer.for_project(common.settings().project_dir)
        stopped = server.stop()
        if common.json:
            common.emit_json({"state": "stopped" if stopped else "not running"})
        else:
            common.echo(
                "embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running"
            )


@app.command()
@with_options(Common, *SHARED)
def status(common: Common) -> None:
    """Show the database querykit uses: its URL (password masked), server and pgvector versions.

    Exits 1 if the database cannot be reached or the embedded server is stopped.
    """
    with common.errors():
        settings = common.settings()
        payload: dict[str, Any]
        if settings.database_url:
            url = settings.database_url
            payload = {"source": settings.sources.get("database_url", "cli"), "url": mask_url(url)}
        else:
            server = EmbeddedServer.for_project(settings.project_dir)
            payload = {"source": "embedded", **_embedded_payload(server)}
            if not payload["running"]:
                if common.json:
                    common.emit_json(payload)
                else:
                    typer.echo(f"embedded PostgreSQL: stopped (data in {server.data_dir})")
                    typer.echo("start it with: querykit db start", err=True)
                raise typer.Exit(EXIT_FAILED)
            url = payload["url"]
        from ..execute.connect import server_info  # psycopg: loaded when a command connects

        info = server_info(url)
        payload.update(
            server_version=info.server_version,
            database=info.database,
            user=info.user,
            pgvector_available=info.pgvector_available,
            pgvector_installed=info.pgvector_installed,
        )
        if common.json:
            common.emit_json(payload)
            return
        common.echo(f"database:   {payload['url']}")
        source = payload["source"]
        if source == "embedded":
            common.echo(
                f"source:     embedded (pid {payload['pid']}, up {payload['uptime']}, "
                f"data in {payload['data_dir']}); it runs until: querykit db stop"
            )
        else:
            common.echo(f"source:     {source}")
        common.echo(f"PostgreSQL: {info.server_version}")
        vector = info.pgvector_available or "not available"
        installed = info.pgvector_installed or "not yet created in this database"
        common.echo(f"pgvector:   {vector} (extension: {installed})")


@app.command()
@with_options(Common, DATABASE_URL, CONFIG, JSON, VERBOSE)
def url(
    common: Common,
    show_password: Annotated[
        bool,
        typer.Option(
            "--show-password",
            help='Print the password too, for another program: psql "$(querykit db url '
            '--show-password)". Without it the password is ***, and printing a URL that has '
            "one into a pipe or a file is refused (the masked URL would not connect).",
        ),
    ] = False,
) -> None:
    """Print the database URL, password masked. Starts the embedded server if it is the default.

    The password is shown only with --show-password. On a terminal the masked
    URL is printed for you to read; into a pipe or a file (psql "$(querykit db
    url)") a masked URL would fail to connect, so that is refused (exit 2) with
    what to do. --json always masks unless --show-password is given.
    """
    with common.errors():
        settings = common.settings()
        if settings.database_url:
            full, source = settings.database_url, settings.sources.get("database_url", "cli")
        else:
            full, source = EmbeddedServer.for_project(settings.project_dir).url(), "embedded"
        masked = mask_url(full)
        has_password = masked != full
        if has_password and not show_password and not common.json and not sys.stdout.isatty():
            raise ConfigError(
                "the database URL has a password, which querykit prints only when asked: "
                'give --show-password explicitly (psql "$(querykit db url --show-password)"); '
                "without it the URL is masked, and a masked URL would not connect"
            )
        shown = full if show_password else masked
        if common.json:
            common.emit_json({"url": shown, "source": source, "password_masked": shown != full})
        else:
            typer.echo(shown)


def _embedded_payload(server: EmbeddedServer) -> dict[str, Any]:
    status = server.status()
    return {
        "running": status.running,
        "url": status.url,
        "pid": status.pid,
        "port": status.port,
        "data_dir": str(status.data_dir),
        "up_since": status.since,
        "uptime": _uptime(status.since),
    }


def _uptime(since: float | None) -> str | None:
    if since is None:
        return None
    seconds = int(time.time() - since)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours or days else []
    return " ".join([*parts, f"{minutes}m"])


PsqlJsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Run psql without a terminal and print its exit code and output as JSON; "
        "needs a command for psql (-c SQL or -f FILE).",
    ),
]


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@with_options(Common, DATABASE_URL, CONFIG, option("json", PsqlJsonOpt, False), VERBOSE)
def psql(common: Common, ctx: typer.Context) -> None:
    """Open psql on the database querykit uses. Arguments after the options go to psql
    (querykit db psql -c 'SELECT 1'). Uses the system's psql, else the embedded one;
    the password goes in PGPASSWORD, never on the command line."""
    from ..admin import capture_psql, psql_command, run_psql

    with common.errors():
        args = list(ctx.args)
        command = psql_command(common.settings(), args)
        if not common.json:
            raise typer.Exit(run_psql(command))
        if not any(a in ("-c", "-f") or a.startswith(("--command", "--file")) for a in args):
            raise ConfigError(
                "db psql --json runs psql without a terminal: give it what to run, "
                "e.g. querykit db psql --json -c 'SELECT 1' (or -f FILE)"
            )
        result = capture_psql(command)
        common.emit_json(
            {"exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}
        )
    raise typer.Exit(result.exit_code)


@app.command()
@with_options(Common, *SHARED)
def reset(
    common: Common,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask: drop without a confirmation.")
    ] = False,
) -> None:
    """Drop the database, create it empty and apply every migration. Asks first, unless --yes;
    without a terminal to ask on, --yes is required."""
    from ..admin import reset as reset_database
    from ..embedded import database_url as resolve_url
    from ..settings import mask_url

    with common.errors():
        settings = common.settings()
        where = mask_url(resolve_url(settings))
        if not yes:
            if not sys.stdin.isatty():
                raise ConfigError(
                    f"db reset drops {where} and everything in it; give --yes to confirm "
                    "(no terminal to ask on)"
                )
            if not typer.confirm(f"Drop {where} and everything in it, then migrate?"):
                common.echo("nothing was changed")
                return
        result = reset_database(settings)
        if common.json:
            common.emit_json({"database": result.database, "applied": result.applied})
        else:
            common.echo(
                f"reset {result.database}: dropped, created, {result.applied} migration(s) applied"
            )


@app.command()
@with_options(Common, *SHARED)
def seed(common: Common) -> None:
    """Run the configured seed: seed = "module:function" (called with a Database) or
    seed = "seed.sql" in [tool.querykit] of pyproject.toml, or QUERYKIT_SEED.

    On a terminal, the seed's insert_many / upsert_many calls show a progress bar."""
    from ..admin import seed as run_seed
    from ..execute.progress import ambient_progress

    with common.errors(), ambient_progress(not (common.quiet or common.json)):
        ran = run_seed(common.settings())
        if common.json:
            common.emit_json({"seeded": ran})
        else:
            common.echo(f"seeded: {ran}")
