"""``querykit db``: manage the embedded PostgreSQL and inspect the configured database."""

from __future__ import annotations

from typing import Any

import typer

from ..embedded import EmbeddedServer
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
            common.echo(f"embedded PostgreSQL {state}: {status.url} (pid {status.pid})")


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
        from .._conninfo import server_info  # psycopg: loaded when a command connects

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
                f"source:     embedded (pid {payload['pid']}, data in {payload['data_dir']})"
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
    verbose: VerboseOpt = False,
) -> None:
    """Print the database URL, password masked. Starts the embedded server if it is the default."""
    common = Common(database_url=database_url, config=config, verbose=verbose)
    with common.errors():
        settings = common.settings()
        if settings.database_url:
            typer.echo(mask_url(settings.database_url))
        else:
            typer.echo(EmbeddedServer.for_project(settings.project_dir).url())


def _embedded_payload(server: EmbeddedServer) -> dict[str, Any]:
    status = server.status()
    return {
        "running": status.running,
        "url": status.url,
        "pid": status.pid,
        "port": status.port,
        "data_dir": str(status.data_dir),
    }
