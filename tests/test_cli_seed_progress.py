"""``querykit db seed`` shows the seed's bulk loads as progress bars on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.cli import clean_env

SEED = """
import sqlalchemy as sa
from querykit import raw

items = sa.Table(
    "seed_item", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.Text, nullable=False),
)


def load(db):
    db.execute(raw("CREATE TABLE seed_item (id int PRIMARY KEY, body text NOT NULL)"))
    db.insert_many(items, ({"id": i, "body": f"item {i}"} for i in range(2500)))
"""


def seed_on_a_terminal(project: Path, url: str, *flags: str) -> tuple[int, str]:
    """Run ``querykit db seed`` with stderr on a pseudo-terminal; its exit code and stderr."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "querykit", "db", "seed", *flags],
        cwd=project,
        env=clean_env(DATABASE_URL=url, QUERYKIT_SEED="seeding:load", COLUMNS="100"),
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.stdout is not None
    proc.stdout.read()
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (tmp_path / "seeding.py").write_text(SEED)
    return tmp_path


def test_db_seed_draws_a_bar_for_insert_many_on_a_terminal(
    project: Path, database_url: str
) -> None:
    code, err = seed_on_a_terminal(project, database_url)
    assert code == 0, err
    assert "insert_many(seed_item)" in err and "2500/?" in err
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM seed_item").fetchone() == (2500,)
        conn.execute("DROP TABLE seed_item")
    code, err = seed_on_a_terminal(project, database_url, "--quiet")
    assert code == 0, err
    assert "insert_many" not in err
