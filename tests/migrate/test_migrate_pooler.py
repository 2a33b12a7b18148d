"""A real transaction-mode PgBouncer between querykit and PostgreSQL is refused.

Runs only where the ``pgbouncer`` binary is installed (``apt-get install
pgbouncer``); the test suite does not install it. Without it, the detection is
still tested against real backends in test_migrate_runner.py.
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
from migrate_helpers import Write, run_querykit

from querykit import Settings, migrate
from querykit.errors import MigrationRefused
from querykit.migrate.ledger import parse_table_name
from querykit.migrate.lock import lock_key

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
)
pytestmark = pytest.mark.skipif(PGBOUNCER is None, reason="pgbouncer is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def pooled_url(database_url: str) -> Iterator[str]:
    """``database_url`` through a PgBouncer in transaction mode with a warm pool."""
    assert PGBOUNCER is not None
    target = urlsplit(database_url)
    run_as: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        try:
            run_as = pwd.getpwnam("querykit")  # the embedded server's service user
        except KeyError:
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
        # Round robin: each statement takes the longest-idle server connection.
        "server_round_robin = 1\ndefault_pool_size = 4\n"
        f"logfile = {home}/pgbouncer.log\npidfile = {home}/pgbouncer.pid\n"
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
        # Warm the pool: three server connections busy at once, then idle.
        clients = [psycopg.connect(url) for _ in range(3)]
        for c in clients:
            c.execute("SELECT 1")
        for c in clients:
            c.commit()
            c.close()
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)


def test_a_transaction_mode_pooler_is_refused_and_leaves_no_lock(
    pooled_url: str, write: Write, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(pooled_url, autocommit=True) as conn:
        pids = {conn.execute("SELECT pg_backend_pid()").fetchone() for _ in range(4)}
    assert len(pids) > 1  # the pooler really moves us between backends

    write("0001_a.sql", "CREATE TABLE a (id int);\n")
    through_pooler = settings.with_overrides(database_url=pooled_url)
    with pytest.raises(MigrationRefused) as caught:
        migrate.up(through_pooler)
    assert "use a direct connection (not a transaction-mode pooler such as PgBouncer)" in str(
        caught.value
    )

    cli = run_querykit(
        "migrate", "up", "--database-url", pooled_url, "--dir", str(settings.migrations),
        cwd=tmp_path,
    )  # fmt: skip
    assert cli.returncode == 3 and "transaction-mode pooler" in cli.stderr

    key = lock_key(parse_table_name("public.querykit_migrations"))
    with psycopg.connect(database_url, autocommit=True) as direct:
        assert direct.execute("SELECT to_regclass('a')").fetchone() == (None,)
        held = direct.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s::oid",
            (key & 0xFFFF_FFFF,),
        ).fetchone()
        assert held == (0,)  # refused before locking: no lock stranded on a pooled backend
    assert [d.filename for d in migrate.up(settings).done] == ["0001_a.sql"]
