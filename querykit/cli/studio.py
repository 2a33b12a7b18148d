"""``querykit studio``: serve the local data browser (needs the ``studio`` extra)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import ConfigError
from ._common import SHARED, Common, with_options

_EXTRA = ("starlette", "jinja2", "uvicorn", "markupsafe", "multipart", "python_multipart")


@with_options(Common, *SHARED)
def studio(
    common: Common,
    port: Annotated[
        int, typer.Option("--port", help="Port on 127.0.0.1; 0 picks any free port.")
    ] = 4983,
    write: Annotated[
        bool,
        typer.Option(
            "--write", help="Allow editing cells, inserting and deleting rows. Default: read-only."
        ),
    ] = False,
    open_: Annotated[
        bool, typer.Option("--open", help="Open the Studio in the default web browser.")
    ] = False,
) -> None:
    """Browse the database in a local web app: tables, rows, JSON, vectors, named queries.

    It listens on 127.0.0.1 only and prints a URL with a secret token; open that
    URL (or pass --open). Without --write its database sessions are read-only.
    Stop it with Ctrl-C.
    """
    with common.errors():
        try:
            from ..studio import StudioServer
        except ImportError as exc:
            if exc.name and exc.name.split(".")[0] in _EXTRA:
                raise ConfigError(
                    f"querykit studio needs the studio extra ({exc.name} is missing): "
                    "pip install 'querykit[studio]'"
                ) from exc
            raise
        server = StudioServer(common.settings(), port=port, write=write)

        def ready() -> None:
            mode = "read-write" if write else "read-only"
            if common.json:
                common.emit_json({"url": server.url, "port": server.port, "write": write})
            else:
                typer.echo(f"querykit studio ({mode}) at {server.url}")
                common.info("Ctrl-C stops it.")

        try:
            server.run(open_browser=open_, ready=ready)
        except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: success
            common.info("studio stopped")
