"""``querykit db`` as a user runs it: a real subprocess each time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from querykit.embedded import EmbeddedServer
from tests.cli import querykit


def test_unreachable_database_fails_fast_on_one_line_without_the_password(
    project_dir: Path,
) -> None:
    url = "postgresql://nobody:secret@127.0.0.1:1/x"
    proc = querykit("db", "status", cwd=project_dir, env={"DATABASE_URL": url})
    assert proc.returncode != 0
    assert "Connection refused" in proc.stderr  # the first answer, not a timeout or a retry loop
    assert "secret" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "127.0.0.1:1" in lines[0]


def test_verbose_adds_the_traceback_but_still_masks(project_dir: Path) -> None:
    url = "postgresql://nobody:secret@127.0.0.1:1/x"
    proc = querykit("db", "status", "-v", "--database-url", url, cwd=project_dir)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert "127.0.0.1:1" in proc.stderr


def test_status_json_for_a_configured_url_masks_the_password(
    project_dir: Path, database_url: str
) -> None:
    proc = querykit("db", "status", "--json", "--database-url", database_url, cwd=project_dir)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["source"] == "cli"
    assert payload["server_version"].startswith("18")
    assert payload["pgvector_available"].startswith("0.8")
    assert payload["pgvector_installed"].startswith("0.8")


def test_unknown_config_key_is_a_usage_error(project_dir: Path) -> None:
    (project_dir / "pyproject.toml").write_text('[tool.querykit]\nschemaa = "x"\n')
    proc = querykit("db", "url", cwd=project_dir)
    assert proc.returncode == 2
    assert "schemaa" in proc.stderr and "valid keys are" in proc.stderr


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="tests the embedded server")
def test_embedded_lifecycle_through_the_cli(project_dir: Path) -> None:
    try:
        stopped = querykit("db", "status", cwd=project_dir)
        assert stopped.returncode == 1 and "stopped" in stopped.stdout

        url = querykit("db", "url", cwd=project_dir)
        assert url.returncode == 0, url.stderr
        printed = url.stdout.strip()
        assert printed.startswith("postgresql://postgres@127.0.0.1:")
        assert ":" not in printed.removeprefix("postgresql://").split("@")[0]  # no password

        status = querykit("db", "status", cwd=project_dir)
        assert status.returncode == 0, status.stderr
        assert "PostgreSQL: 18" in status.stdout and "pgvector:   0.8" in status.stdout

        stop = querykit("db", "stop", cwd=project_dir)
        assert stop.returncode == 0 and "stopped" in stop.stdout
    finally:
        EmbeddedServer.for_project(project_dir).stop()


def test_help_explains_commands(project_dir: Path) -> None:
    proc = querykit("db", "--help", cwd=project_dir)
    assert proc.returncode == 0
    for command in ("start", "stop", "status", "url"):
        assert command in proc.stdout
