"""migrate diff's guarantees beyond the corpus: nothing written when the loop stays open, and
scratch databases on the embedded server when the configured role may not create databases."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from querykit import load_settings
from querykit.embedded import EmbeddedServer
from querykit.migrate.diff import DraftNotClosed, close_loop, diff
from querykit.migrate.diff.compare import compare, same_default_on
from querykit.migrate.diff.draft import build_draft
from querykit.migrate.diff.snapshot import take_snapshot
from querykit.migrate.shadow import Shadow
from querykit.migrate.version import Version

ROOT = Path(__file__).resolve().parents[2]
EXCLUDED = frozenset({"querykit_migrations"})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("schema.py", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    return tmp_path


def test_a_draft_that_does_not_reach_the_target_writes_nothing(
    project: Path, pg_server_url: str
) -> None:
    settings = load_settings(cwd=project, env={}, database_url=pg_server_url)
    before = sorted(p.name for p in settings.migrations.iterdir())
    with Shadow(settings) as shadow:
        shadow.apply_through(Version.parse("4"))
        with shadow.clone() as drifted, psycopg.connect(drifted, autocommit=True) as conn:
            conn.execute("CREATE INDEX run_name_idx ON pipeline_run (name)")
            conn.execute("ALTER TABLE pipeline_step ALTER COLUMN tokens SET DEFAULT 7")
            target = take_snapshot(conn, exclude_tables=EXCLUDED)
            with psycopg.connect(shadow.url) as current:
                changes = compare(
                    take_snapshot(current, exclude_tables=EXCLUDED), target, same_default_on(conn)
                )
            draft = build_draft(changes, None)
            draft.files = [f for f in draft.files if "_index_" not in f.suffix]  # lose the index
            with pytest.raises(
                DraftNotClosed, match=r"still different: added +index +run_name_idx"
            ):
                close_loop(settings, shadow, draft, "x", target, same_default_on(conn), EXCLUDED)
    assert sorted(p.name for p in settings.migrations.iterdir()) == before


def test_write_and_database_together_is_refused(project: Path, pg_server_url: str) -> None:
    settings = load_settings(cwd=project, env={}, database_url=pg_server_url)
    with pytest.raises(Exception, match="cannot be combined with --database"):
        diff(settings, database_url=pg_server_url, write="x")


def test_without_createdb_the_scratch_databases_come_from_the_embedded_server(
    project: Path, database_url: str
) -> None:
    role = f"qk_nocreatedb_{os.getpid()}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB").format(sql.Identifier(role)))
    try:
        settings = load_settings(
            cwd=project, env={}, database_url=make_conninfo(database_url, user=role)
        )
        result = diff(settings)
        assert result.in_sync, result.text()
        server = EmbeddedServer.for_project(project)
        assert server.status().running
        server.stop()
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
