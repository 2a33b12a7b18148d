"""CLI conventions: secrets in ``db url``, help texts as written, advice that does not lead astray."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

from querykit import load_settings, migrate
from tests.cli import ROOT, clean_env, querykit

SECRET_URL = "postgresql://app:s3cr3t-pw@127.0.0.1:5432/appdb"


def on_a_terminal(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``querykit`` with its stdout on a pseudo-terminal, as a person at a shell would."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "querykit", *args],
            cwd=cwd,
            env=clean_env(**env),
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal is closed once everything was read
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
    return proc.returncode, out.decode().replace("\r\n", "\n")


def test_db_url_masks_on_a_terminal(project_dir: Path) -> None:
    code, out = on_a_terminal("db", "url", cwd=project_dir, env={"DATABASE_URL": SECRET_URL})
    assert code == 0
    assert out.strip() == "postgresql://app:***@127.0.0.1:5432/appdb"


def test_db_url_into_a_pipe_is_refused_without_show_password(project_dir: Path) -> None:
    """psql "$(querykit db url)" with a masked password would fail to log in: say what to do."""
    proc = querykit("db", "url", cwd=project_dir, env={"DATABASE_URL": SECRET_URL})
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "give --show-password explicitly" in proc.stderr
    assert "s3cr3t-pw" not in proc.stdout + proc.stderr


def test_db_url_show_password_prints_it_for_another_program(project_dir: Path) -> None:
    proc = querykit(
        "db", "url", "--show-password", cwd=project_dir, env={"DATABASE_URL": SECRET_URL}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == SECRET_URL + "\n"
    code, out = on_a_terminal(
        "db", "url", "--show-password", cwd=project_dir, env={"DATABASE_URL": SECRET_URL}
    )
    assert code == 0 and out.strip() == SECRET_URL


def test_db_url_json_masks_unless_asked(project_dir: Path) -> None:
    import json

    masked = querykit("db", "url", "--json", cwd=project_dir, env={"DATABASE_URL": SECRET_URL})
    assert masked.returncode == 0, masked.stderr
    assert json.loads(masked.stdout) == {
        "url": "postgresql://app:***@127.0.0.1:5432/appdb",
        "source": "env:DATABASE_URL",
        "password_masked": True,
    }
    shown = querykit(
        "db", "url", "--json", "--show-password", cwd=project_dir, env={"DATABASE_URL": SECRET_URL}
    )
    assert json.loads(shown.stdout)["url"] == SECRET_URL
    assert json.loads(shown.stdout)["password_masked"] is False


def test_a_url_without_password_goes_into_a_pipe(project_dir: Path) -> None:
    url = "postgresql://app@127.0.0.1:5432/appdb"
    proc = querykit("db", "url", cwd=project_dir, env={"DATABASE_URL": url})
    assert proc.returncode == 0 and proc.stdout == url + "\n"


def test_db_url_show_password_works_with_psql(database_url: str, project_dir: Path) -> None:
    """The documented use: psql "$(querykit db url --show-password)" logs in with the password."""
    import psycopg
    from psycopg import sql

    from querykit.embedded import bin_dir

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS qk_pw_user")
        conn.execute("CREATE ROLE qk_pw_user LOGIN PASSWORD 'p@ss w0rd'")
        try:
            url = psycopg.conninfo.conninfo_to_dict(database_url)
            with_pw = (
                f"postgresql://qk_pw_user:p%40ss%20w0rd@{url['host']}:{url['port']}/{url['dbname']}"
            )
            shown = querykit(
                "db", "url", "--show-password", cwd=project_dir, env={"DATABASE_URL": with_pw}
            ).stdout.strip()
            psql = subprocess.run(
                [str(bin_dir() / "psql"), shown, "-Atc", "SELECT current_user"],
                capture_output=True,
                text=True,
                env={**clean_env(), "PGPASSWORD": ""},
            )
            assert psql.stdout.strip() == "qk_pw_user", psql.stderr
        finally:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier("qk_pw_user")))


def test_help_texts_keep_their_brackets() -> None:
    """Rich markup used to swallow "[tool.querykit]" from --config's help."""
    proc = querykit("db", "url", "--help")
    assert "pyproject.toml to read [tool.querykit] from." in proc.stdout
    assert 'psql "$(querykit db url --show-password)"' in " ".join(proc.stdout.split())
    strict = querykit("migrate", "up", "--help")
    assert 'lint = "strict" in [tool.querykit]' in " ".join(strict.stdout.split())


def test_a_wrong_migrations_directory_is_suspected_before_forgetting(
    database_url: str, tmp_path: Path
) -> None:
    """Every applied file missing is a wrong --dir far more often than deleted history."""
    migrate.up(load_settings(cwd=ROOT, env={}, database_url=database_url))
    empty = tmp_path / "migrations"
    empty.mkdir()
    wrong = querykit("migrate", "up", "--dir", str(empty), "--database-url", database_url)
    assert wrong.returncode == 3
    message = " ".join(wrong.stderr.split())
    assert "None of the 4 applied migration(s) is in it" in message
    assert "most likely the wrong directory or database. Check the path" in message
    assert message.index("Check the path") < message.index("--forget-missing")
    assert "Only if the files were removed on purpose" in message
    some = tmp_path / "some"
    some.mkdir()
    for path in sorted((ROOT / "migrations/sql").glob("*.sql"))[:2]:
        shutil.copy(path, some / path.name)
    partly = querykit("migrate", "up", "--dir", str(some), "--database-url", database_url)
    assert partly.returncode == 3
    text = " ".join(partly.stderr.split())
    assert (
        f"Check that this is the right migrations directory (the directory read is {some}" in text
    )


def test_every_option_explains_itself() -> None:
    """``--help`` explains each option and argument of every command, the shared ones too
    (``--json``, ``--database-url``, ``-v``... are declared once and given to each command)."""
    from tests.test_cli_json import commands

    silent = [
        f"{name} {p.name}" for name, command in commands() for p in command.params if not p.help
    ]
    assert silent == []
    up = dict(commands())["migrate up"]
    shared = ["directory", "layout", "database_url", "config", "json", "quiet", "verbose"]
    assert [p.name for p in up.params][-len(shared) :] == shared  # listed last, in this order
