"""``--write`` stores .querykit/queries.lock; ``--offline`` checks against it with no database."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from querykit import Settings, load_settings
from querykit.check import check, lock_path
from querykit.cli import app
from querykit.errors import ConfigError
from tests.check.conftest import COST_FLOAT, add_migration

NO_SERVER = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"

QUERIES = """
from querykit import eq, select
from schema import pipeline_run as run

names = select(run.c.id, run.c.name).where(eq(run.c.name, "x"))
costs = select(run.c.id, run.c.cost)
"""


def offline_settings(project: Path, module: str) -> Settings:
    """Settings whose database cannot be reached: --offline must not need one."""
    return load_settings(cwd=project, env={}, database_url=NO_SERVER, queries=[module])


def write_module(project: Path, module: str, text: str) -> None:
    (project / f"{module}.py").write_text(text)
    sys.modules.pop(module, None)  # the next load reads the file again


def test_the_lock_is_written_then_checked_without_a_database(
    project: Path, database_url: str, request: pytest.FixtureRequest
) -> None:
    module = f"offline_q_{abs(hash(request.node.nodeid))}"
    write_module(project, module, QUERIES)
    online = load_settings(cwd=project, env={}, database_url=database_url, queries=[module])
    from querykit.migrate import up

    up(online)
    written = check(online, write=True)
    assert written.ok and written.written == lock_path(online)
    lock = json.loads(lock_path(online).read_text())
    entry = lock["queries"][f"{module}:costs"][0]
    assert [c["type"] for c in entry["columns"]] == ["text", "numeric(12,6)"]
    assert entry["columns"][1]["source"] == "public.pipeline_run.cost"

    offline = offline_settings(project, module)
    result = check(offline, offline=True)
    assert result.ok, result.text()
    assert result.against == [f"lock ({lock_path(offline)})"]

    # the SQL changed and the lock was not refreshed
    write_module(
        project, module, QUERIES.replace('"x"', '"y"').replace("run.c.cost", "run.c.ended_at")
    )
    changed = check(offline, offline=True)
    assert {(f.query, f.kind) for f in changed.findings} == {(f"{module}:costs", "lock")}
    assert "changed since the lock was written" in changed.findings[0].message
    # a changed parameter value is not a changed statement
    assert not [f for f in changed.findings if f.query.endswith(":names")]

    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "check",
            "--offline",
            "--config",
            str(project / "pyproject.toml"),
            "--database-url",
            NO_SERVER,
        ],
        env={"QUERYKIT_QUERIES": module},
    )
    assert out.exit_code == 1, out.output
    assert f"{module}:costs [1/1] lock (lock)" in out.stdout


def test_the_lock_keeps_the_described_types_for_offline_findings(
    migrated: Settings, request: pytest.FixtureRequest
) -> None:
    """Written against head + pending where cost is double precision: offline still sees it."""
    add_migration(migrated, "0005_cost_float.sql", COST_FLOAT)
    written = check(migrated, pending=True, write=True)
    online = sorted(f.statement for f in written.findings)
    offline = check(offline_settings(migrated.project_dir, "queries"), offline=True)
    assert sorted(f.statement for f in offline.findings) == online
    assert all(f.against == "lock" and "Decimal" in f.message for f in offline.findings)


def test_offline_without_a_lock_is_one_line_and_exit_2(project: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"queries.lock does not exist; run `querykit check --write`"
    ):
        check(offline_settings(project, "queries"), offline=True)
    out = CliRunner().invoke(
        app, ["check", "--offline", "--config", str(project / "pyproject.toml")]
    )
    assert out.exit_code == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ")
    verbose = CliRunner().invoke(
        app, ["check", "--offline", "-v", "--config", str(project / "pyproject.toml")]
    )
    assert verbose.exit_code == 2 and "Traceback" in verbose.stderr
    bad = CliRunner().invoke(
        app, ["check", "--offline", "--write", "--config", str(project / "pyproject.toml")]
    )
    assert bad.exit_code == 2 and "cannot be combined" in bad.stderr


def test_git_sees_the_lock_despite_the_embedded_servers_ignore_file(migrated: Settings) -> None:
    """The embedded server's .querykit/.gitignore ignores its data; the lock must stay tracked."""
    import subprocess

    from querykit.embedded import IGNORE_FILE

    project = migrated.project_dir
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / ".querykit").mkdir()
    old_file = "".join(IGNORE_FILE.splitlines(keepends=True)[:2])  # as querykit wrote it before
    (project / ".querykit/.gitignore").write_text(old_file + "# mine\n")
    (project / ".querykit/pgdata").mkdir()
    (project / ".querykit/pgdata/PG_VERSION").write_text("18\n")
    check(migrated, write=True)
    ignored = subprocess.run(
        ["git", "-C", str(project), "status", "--porcelain", "--untracked-files=all", ".querykit"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert ".querykit/queries.lock" in ignored and ".querykit/pgdata/PG_VERSION" not in ignored
    assert (project / ".querykit/.gitignore").read_text().startswith(old_file + "# mine\n")
    check(migrated, write=True)  # once only
    assert (project / ".querykit/.gitignore").read_text().count("!queries.lock") == 1
