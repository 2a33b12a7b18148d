"""Which PostgreSQL the tests use, and its life.

``DATABASE_URL`` (or ``database_url`` in ``[tool.querykit]``) when set: the role
needs CREATEDB. Otherwise an embedded PostgreSQL, in one of two ways:

- by default, one server for the whole test run in a temporary directory, started
  by the first process that needs it (pytest-xdist workers share it: the
  directory is named after the run) and stopped by the controller at the end.
  It runs with :data:`TEST_SETTINGS`, and its directory is on the RAM disk
  (``/dev/shm``) when there is one with room (:func:`scratch_root`);
- with ``--qk-keep``, the project's own embedded server (``querykit db start``), left
  running, so the template cache survives between runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..embedded import EmbeddedServer, database_url
from ..settings import Settings

TEST_SETTINGS = {
    # The standard for a throwaway test cluster: durability is not under test, and a
    # crash loses nothing anyone keeps. Without them every commit, CREATE DATABASE
    # and checkpoint waits for the disk.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # The WAL lives in RAM on the RAM disk: checkpoint before it grows past this
    # (checkpoints are cheap without fsync).
    "max_wal_size": "256MB",
    "max_connections": "300",
}
"""Settings of the embedded servers started for tests (never of ``querykit db start``'s)."""

RAM_DISK = Path("/dev/shm")
RAM_DISK_ROOM = 1 << 30
"""Free bytes the RAM disk needs for a test server to go there: a template, its
clones in flight and the WAL take tens of megabytes; a gigabyte leaves a margin."""


def scratch_root() -> Path:
    """Where a throwaway test server keeps its data: the RAM disk when it has room.

    ``CREATE DATABASE`` makes and ``DROP DATABASE`` deletes some 300 files per clone.
    On a disk, that is file-system work: on this project's ext4 (no journal) the
    kernel's inode allocator scanned every recently deleted inode at each file
    creation, so after a few hundred clones one ``CREATE DATABASE`` cost 100 ms of
    kernel CPU, and 0.3-1.5 s under load. On tmpfs it cost 10 ms (37-46 ms of
    wall time under the same load). The data is thrown away at the end anyway.
    """
    try:
        fits = RAM_DISK.is_dir() and os.access(RAM_DISK, os.W_OK | os.X_OK)
        free = os.statvfs(RAM_DISK) if fits else None
    except OSError:
        free = None
    if free is not None and free.f_bavail * free.f_frsize >= RAM_DISK_ROOM:
        return RAM_DISK
    return Path(tempfile.gettempdir())


def run_directory(run_id: str) -> Path:
    """The temporary directory of one test run's embedded server.

    Where it already is, if anywhere (so that xdist workers and the controller agree
    even when the RAM disk filled up in between), else where a new one goes.
    """
    name = f"querykit-testing-{run_id}"
    for root in (RAM_DISK, Path(tempfile.gettempdir())):
        if (root / name).is_dir():
            return root / name
    return scratch_root() / name


def server_url(settings: Settings, *, run_id: str, keep: bool) -> str:
    """An admin URL of the server for this run, starting an embedded one when needed."""
    if settings.database_url or keep or not settings.embedded:
        return database_url(settings)  # embedded = false without a URL: a ConfigError
    server = EmbeddedServer(run_directory(run_id) / "pgdata", server_settings=TEST_SETTINGS)
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
