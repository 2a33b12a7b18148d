"""Real servers for scale-out tests: a streaming replica, and Debian's PgBouncer.

- :class:`ReplicatedCluster`: an embedded PostgreSQL primary and a hot standby
  made from it with ``pg_basebackup -R -X stream`` (shipped with the embedded
  wheel), each on its own port. The standby can be killed (``pg_ctl stop -m
  immediate``), started again on the same port, and given a replay delay.
- :func:`pgbouncer`: PgBouncer in front of a server, in transaction mode with
  its default settings unless told otherwise.

Both run as the embedded server's service user when the tests run as root
(PostgreSQL and PgBouncer refuse to run as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from querykit.embedded import SERVICE_USER, EmbeddedServer, bin_dir

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
)

# The primary keeps synchronous_commit on (the default): with it off, a commit returns
# before its WAL is flushed, and a standby receives only flushed WAL.
PRIMARY_SETTINGS = {"fsync": "off", "max_connections": "100", "wal_level": "replica"}


def service_user() -> pwd.struct_passwd | None:
    """The user servers run as when we are root (the embedded server creates it)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return None


def _run(argv: list[str], *, timeout: float = 120) -> None:
    user = service_user()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()}")


def with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, "", ""))


class ReplicatedCluster:
    """A primary and one streaming standby in a temporary directory."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="querykit-replication-"))
        self.home.chmod(0o777)  # the service user writes the standby's data directory here
        self.primary = EmbeddedServer(self.home / "primary", server_settings=PRIMARY_SETTINGS)
        self.standby_dir = self.home / "standby"
        self.standby = EmbeddedServer(self.standby_dir, server_settings={"fsync": "off"})
        self.primary_url = ""
        self.standby_url = ""

    def start(self) -> None:
        status = self.primary.start()
        assert status.url is not None
        self.primary_url = status.url
        port = urlsplit(self.primary_url).port
        _run(
            [
                str(bin_dir() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(port),
                "-U", "postgres", "-D", str(self.standby_dir), "-R", "-X", "stream",
                "-c", "fast",
            ]
        )  # fmt: skip
        self.start_standby()

    def start_standby(self) -> None:
        status = self.standby.start()
        assert status.url is not None
        self.standby_url = status.url
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.standby_url, connect_timeout=2) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    assert row == (True,), "the standby is not in recovery"
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def kill_standby(self) -> None:
        """Stop the standby at once, as a crash would: no shutdown checkpoint, connections cut."""
        _run([str(bin_dir() / "pg_ctl"), "stop", "-D", str(self.standby_dir), "-m", "immediate"])

    def set_apply_delay(self, delay: str) -> None:
        """``recovery_min_apply_delay`` on the standby (reloaded, no restart)."""
        with psycopg.connect(self.standby_url, autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("ALTER SYSTEM SET recovery_min_apply_delay = {}").format(
                    psycopg.sql.Literal(delay)
                )
            )
            conn.execute("SELECT pg_reload_conf()")

    def create_database(self, name: str, ddl: list[str]) -> tuple[str, str]:
        """A database on the primary with ``ddl`` run in it, once the standby has it too."""
        with psycopg.connect(self.primary_url, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        primary, standby = with_db(self.primary_url, name), with_db(self.standby_url, name)
        with psycopg.connect(primary, autocommit=True) as conn:
            for statement in ddl:
                conn.execute(statement)
            lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        assert lsn is not None
        self.wait_replayed(standby, str(lsn[0]))
        return primary, standby

    @staticmethod
    def wait_replayed(standby: str, lsn: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with (
                contextlib.suppress(psycopg.OperationalError),
                psycopg.connect(standby, connect_timeout=2) as conn,
            ):
                row = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))
                if row.fetchone() == (True,):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby did not replay {lsn} within {timeout}s")
            time.sleep(0.05)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.standby.stop()
        with contextlib.suppress(Exception):
            self.primary.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def pgbouncer(database_url: str, settings: str = "") -> Iterator[str]:
    """``database_url`` through a PgBouncer in transaction mode: its defaults, plus ``settings``
    (lines for the ``[pgbouncer]`` section)."""
    if PGBOUNCER is None:
        pytest.skip("pgbouncer is not installed (make system-deps installs it)")
    target = urlsplit(database_url)
    run_as = service_user()
    if os.geteuid() == 0 and run_as is None:
        pytest.skip("running as root without a non-root user for pgbouncer")
    home = Path(tempfile.mkdtemp(prefix="querykit-pgbouncer-"))
    home.chmod(home.stat().st_mode | stat.S_IRWXO)
    port = _free_port()
    password = f" password={target.password}" if target.password else ""
    (home / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={target.hostname} port={target.port or 5432} "
        f"user={target.username or 'postgres'}{password}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        "auth_type = any\npool_mode = transaction\n"
        f"logfile = {home}/pgbouncer.log\npidfile = {home}/pgbouncer.pid\n" + settings
    )
    proc = subprocess.Popen(
        [PGBOUNCER, str(home / "pgbouncer.ini")],
        user=run_as.pw_uid if run_as else None,
        group=run_as.pw_gid if run_as else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    user = target.username or "postgres"
    url = urlunsplit(("postgresql", f"{user}@127.0.0.1:{port}", target.path, "", ""))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(url, connect_timeout=2):
                    break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    log = home / "pgbouncer.log"
                    pytest.fail(
                        f"pgbouncer did not start: {log.read_text() if log.exists() else ''}"
                    )
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)
