"""``querykit db``: manage the embedded PostgreSQL and inspect the configured database."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from ..embedded import EmbeddedServer
from ..errors import ConfigError
from ..settings import mask_url
from ._common import EXIT_FAILED, Common, ConfigOpt, DatabaseUrlOpt, JsonOpt, QuietOpt, VerboseOpt

app = typer.Typer(
    help="Manage the embedded PostgreSQL (data in .querykit/pgdata) and inspect the database.",
    no_args_is_help=True,
)


@app.command()
def start(
    config: ConfigOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Start the embedded PostgreSQL, or reuse the one already running."""
    common = Common(config=config, json=json, quiet=quiet, verbose=verbose)
    with common.errors():
        server = EmbeddedServer.for_project(common.settings().project_dir)
        status = server.start()
        state = "started" if status.started else "already running"
        if json:
            common.emit_json({"state": state, **_embedded_payload(server)})
        else:
            common.echo(
                f"embedded PostgreSQL {state}: {status.url} (pid {status.pid}); "
                "it keeps running until: querykit db stop"
            )


@app.command()
def stop(
    config: ConfigOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Stop the embedded PostgreSQL. Its data stays in .querykit/pgdata."""
    common = Common(config=config, json=json, quiet=quiet, verbose=verbose)
    with common.errors():
        server = EmbeddedServer.for_project(common.settings().project_dir)
        stopped = server.stop()
        if json:
            common.emit_json({"state": "stopped" if stopped else "not running"})
        else:
            common.echo(
                "embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running"
            )


@app.command()
def status(
    database_url: DatabaseUrlOpt = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show the database querykit uses: its URL (password masked), server and pgvector versions.

    Exits 1 if the database cannot be reached or the embedded server is stopped.
    """
    common = Common(database_url, config, json, quiet, verbose)
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
                if json:
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
        if json:
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
def url(
    database_url: DatabaseUrlOpt = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print the database URL, password masked. Starts the embedded server if it is the default."""
    common = Common(database_url=database_url, config=config, json=json, verbose=verbose)
    with common.errors():
        settings = common.settings()
        if settings.database_url:
            shown = mask_url(settings.database_url)
            source = settings.sources.get("database_url", "cli")
        else:
            shown, source = EmbeddedServer.for_project(settings.project_dir).url(), "embedded"
        if json:
            common.emit_json({"url": shown, "source": source})
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


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def psql(
    ctx: typer.Context,
    database_url: DatabaseUrlOpt = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Open psql on the database querykit uses. Arguments after the options go to psql
    (querykit db psql -c 'SELECT 1'). Uses the system's psql, else the embedded one;
    the password goes in PGPASSWORD, never on the command line."""
    from ..admin import psql_command, run_psql

    common = Common(database_url=database_url, config=config, verbose=verbose)
    with common.errors():
        code = run_psql(psql_command(common.settings(), list(ctx.args)))
    raise typer.Exit(code)


@app.command()
def reset(
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask: drop without a confirmation.")
    ] = False,
    database_url: DatabaseUrlOpt = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Drop the database, create it empty and apply every migration. Asks first, unless --yes;
    without a terminal to ask on, --yes is required."""
    from ..admin import reset as reset_database
    from ..embedded import database_url as resolve_url
    from ..settings import mask_url

    common = Common(database_url, config, json, quiet, verbose)
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
        if json:
            common.emit_json({"database": result.database, "applied": result.applied})
        else:
            common.echo(
                f"reset {result.database}: dropped, created, {result.applied} migration(s) applied"
            )


@app.command()
def seed(
    database_url: DatabaseUrlOpt = None,
    config: ConfigOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the configured seed: seed = "module:function" (called with a Database) or
    seed = "seed.sql" in the querykit table of pyproject.toml, or QUERYKIT_SEED.

    On a terminal, the seed's insert_many / upsert_many calls show a progress bar."""
    from ..admin import seed as run_seed
    from ..execute.progress import ambient_progress

    common = Common(database_url, config, json, quiet, verbose)
    with common.errors(), ambient_progress(not (quiet or json)):
        ran = run_seed(common.settings())
        if json:
            common.emit_json({"seeded": ran})
        else:
            common.echo(f"seeded: {ran}")
