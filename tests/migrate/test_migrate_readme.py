"""The README's "Coming from Prisma / Drizzle / ..." commands run as written.

A project whose database Prisma migrated half way: the first two migrations
applied and recorded in ``_prisma_migrations`` as Prisma does. The README's
commands run in it with bash -e, against the test's database.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import psycopg
from test_migrate_layouts import UPS, flyway, prisma

ROOT = Path(__file__).resolve().parents[2]


def _section_block(title: str, language: str, index: int = 0) -> str:
    """The ``index``-th ``language`` block of the README section ``title``."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"### {title}", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    found = re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert len(found) > index, f"no {language} block {index} in {title}"
    return str(found[index])


def _run(script: str, cwd: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYKIT_")}
    env["DATABASE_URL"] = database_url
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_the_coming_from_commands_run_as_written(
    tmp_path: Path, database_url: str, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    history = prisma(tmp_path)
    for up in UPS[:2]:
        db.execute(up)
    history.applied_by_tool(db, 2)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    done = _run(_section_block("Coming from Prisma", "sh"), tmp_path, database_url)
    assert done.returncode == 0, done.stderr
    assert "layout:    prisma (found migration_lock.toml)" in done.stdout
    assert "adopted 2 migration(s) from prisma" in done.stdout
    assert "applying 20240103000000_title_index" in done.stderr
    assert db.execute("SELECT count(*) FROM public.querykit_migrations").fetchone() == (3,)

    # The pyproject.toml of the README, then plain commands.
    toml = _section_block("Coming from Prisma", "toml")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n\n' + toml)
    again = _run(".venv/bin/querykit migrate status", tmp_path, database_url)
    assert again.returncode == 0, again.stderr
    assert "layout:    prisma (set by migrations_layout)" in again.stdout
    assert again.stdout.splitlines()[-1] == "1 applied, 2 baseline"


def test_the_flyway_commands_run_as_written(
    tmp_path: Path, database_url: str, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    """Flyway applied V1 and V1.1 (rows with their real CRC32); the README's commands adopt
    them, apply V1_10 (after V1.1: part by part), and revert it with its U file."""
    history = flyway(tmp_path)
    for up in UPS[:2]:
        db.execute(up)
    history.applied_by_tool(db, 2)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    done = _run(_section_block("Coming from Prisma", "sh", 1), tmp_path, database_url)
    assert done.returncode == 0, done.stderr
    assert "adopted 2 migration(s) from flyway" in done.stdout
    assert "applying V1_10__title_index.sql (no transaction)" in done.stderr
    assert "reverting V1_10__title_index.sql" in done.stderr
    assert db.execute("SELECT to_regclass('book_title')").fetchone() == (None,)
    assert done.stdout.splitlines()[-1] == "2 baseline, 1 pending"
