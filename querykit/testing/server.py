"""Which PostgreSQL the tests use, and its life.

``DATABASE_URL`` (or ``database_url`` in ``[tool.querykit]``) when set: the role
needs CREATEDB. Otherwise an embedded PostgreSQL, in one of two ways:

- by default, one server for the whole test run in a temporary directory, started
  by the first process that needs it (pytest-xdist workers share it: the
  directory is named after the run) and stopped by the controller at the end;
- with ``--qk-keep``, the project's own embedded server (``querykit db start``), left
  running, so the template cache survives between runs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..embedded import EmbeddedServer, database_url
from ..settings import Settings

# Durability is not under test; speed is welcome.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}


def run_directory(run_id: str) -> Path:
    """The temporary directory of one test run's embedded server."""
    return Path(tempfile.gettempdir()) / f"querykit-testing-{run_id}"


def server_url(settings: Settings, *, run_id: str, keep: bool) -> str:
    """An admin URL of the server for this run, starting an embedded one when needed."""
    if settings.database_url or keep or not settings.embedded:
        return database_url(settings)  # embedded = false without a URL: a ConfigError
    server = EmbeddedServer(run_directory(run_id) / "pgdata", server_settings=FAST_SETTINGS)
    url = server.start().url
    assert url is not None
    return url


def stop_run_server(run_id: str) -> None:
    """Stop this run's temporary server, if one was started, and delete its directory."""
    directory = run_directory(run_id)
    if not directory.exists():
        return
    EmbeddedServer(directory / "pgdata").stop()
    shutil.rmtree(directory, ignore_errors=True)
