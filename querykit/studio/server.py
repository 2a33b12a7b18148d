"""Serving the Studio: a socket on 127.0.0.1, the URL with its token, uvicorn until Ctrl-C."""

from __future__ import annotations

import socket
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn

from ..embedded import database_url
from ..errors import ConfigError
from ..execute.database import connect
from ..settings import Settings
from .app import create_app
from .security import new_token

__all__ = ["StudioServer", "bind"]

HOST = "127.0.0.1"


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: any free port); a busy port is a clear error."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {HOST}:{port}: {exc.strerror}; pass --port with another "
            "number, or --port 0 for any free port"
        ) from exc
    sock.listen(128)
    return sock


@dataclass
class StudioServer:
    """One Studio: its socket, token and URL; ``run()`` serves until interrupted."""

    settings: Settings
    port: int = 4983
    write: bool = False

    def __post_init__(self) -> None:
        self.url_db = database_url(self.settings)
        # An unreachable database is one clear error here, before any URL is printed.
        connect(self.url_db, min_size=1, max_size=1).close()
        self.sock = bind(self.port)
        self.port = self.sock.getsockname()[1]
        self.token = new_token()
        self.app = create_app(
            self.settings, url=self.url_db, write=self.write, token=self.token, port=self.port
        )

    @property
    def url(self) -> str:
        """The Studio's URL with its token."""
        return f"http://{HOST}:{self.port}/?token={self.token}"

    def run(self, *, open_browser: bool = False, ready: Callable[[], None] | None = None) -> None:
        """Serve on the bound socket until interrupted; ``ready`` is called just before."""
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        if open_browser:
            webbrowser.open(self.url)
        if ready is not None:
            ready()
        server.run(sockets=[self.sock])
