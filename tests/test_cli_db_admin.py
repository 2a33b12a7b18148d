"""``querykit db reset``, ``db seed`` and ``db psql`` on a real database."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from querykit import load_settings
from querykit.admin import psql_command
from tests.cli import querykit


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.querykit]\nmigrations = "migrations"\n'
        'seed = "seed.sql"\n'
    )
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0001_note.sql").write_text(
        "CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL);\n"
    )
    (tmp_path / "seed.sql").write_text(
        "INSERT INTO note VALUES (1, 'first');\nINSERT INTO note VALUES (2, 'second');\n"
    )
    (tmp_path / "seeding.py").write_text(
        "from querykit import raw\n\n\n"
        "def load(db):\n"
        "    db.execute(raw(\"INSERT INTO note VALUES (3, 'from python')\"))\n"
    )
    return tmp_path


def notes(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, body FROM note ORDER BY id").fetchall()


def test_reset_asks_and_without_a_terminal_needs_yes(project: Path, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (x int)")
    refused = querykit("db", "reset", cwd=project, env={"DATABASE_URL": database_url})
    assert refused.returncode == 2
    assert "--yes" in refused.stderr and "precious" not in refused.stderr
    with psycopg.connect(database_url) as conn:  # nothing was dropped
        assert conn.execute("SELECT to_regclass('precious')").fetchone() == ("precious",)


def test_reset_yes_drops_recreates_and_migrates_then_seed_runs(
    project: Path, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (x int)")
    done = querykit(
        "db", "reset", "--yes", "--json", cwd=project, env={"DATABASE_URL": database_url}
    )
    assert done.returncode == 0, done.stderr
    assert '"applied": 1' in done.stdout
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('precious')").fetchone() == (None,)
    assert notes(database_url) == []

    seeded = querykit("db", "seed", cwd=project, env={"DATABASE_URL": database_url})
    assert seeded.returncode == 0, seeded.stderr
    assert notes(database_url) == [(1, "first"), (2, "second")]

    by_function = querykit(
        "db",
        "seed",
        cwd=project,
        env={"DATABASE_URL": database_url, "QUERYKIT_SEED": "seeding:load"},
    )
    assert by_function.returncode == 0, by_function.stderr
    assert notes(database_url)[-1] == (3, "from python")


def test_a_failing_seed_file_leaves_nothing(project: Path, database_url: str) -> None:
    assert (
        querykit("db", "reset", "-y", cwd=project, env={"DATABASE_URL": database_url}).returncode
        == 0
    )
    (project / "seed.sql").write_text(
        "INSERT INTO note VALUES (1, 'first');\nINSERT INTO note VALUES (1, 'duplicate');\n"
    )
    failed = querykit("db", "seed", cwd=project, env={"DATABASE_URL": database_url})
    assert failed.returncode == 1 and "duplicate key" in failed.stderr
    assert notes(database_url) == []  # one transaction: the first row is gone too


def test_seed_without_configuration_says_how(project_dir: Path, database_url: str) -> None:
    proc = querykit("db", "seed", cwd=project_dir, env={"DATABASE_URL": database_url})
    assert proc.returncode == 2 and 'seed = "module:function"' in proc.stderr


def test_psql_runs_on_the_database_with_the_password_out_of_argv(
    project: Path, database_url: str
) -> None:
    proc = querykit(
        "db", "psql", "-tAc", "SELECT 40 + 2", cwd=project, env={"DATABASE_URL": database_url}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "42"
    with_password = database_url.replace("postgres@", "postgres:s3cret@", 1)
    command = psql_command(load_settings(cwd=project, env={}, database_url=with_password))
    assert not any("s3cret" in arg for arg in command.argv)
    assert command.env == {"PGPASSWORD": "s3cret"}
