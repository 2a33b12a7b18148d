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
from test_migrate_layouts import UPS, prisma

ROOT = Path(__file__).resolve().parents[2]


def _section_block(title: str, language: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"### {title}", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    found = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert found is not None, f"no {language} block in {title}"
    return found.group(1)


def test_the_coming_from_commands_run_as_written(
    tmp_path: Path, database_url: str, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    history = prisma(tmp_path)
    for up in UPS[:2]:
        db.execute(up)
    history.applied_by_tool(db, 2)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n')
    script = _section_block("Coming from Prisma", "sh")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUERYKIT_")}
    env["DATABASE_URL"] = database_url
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "layout:    prisma (found migration_lock.toml)" in done.stdout
    assert "adopted 2 migration(s) from prisma" in done.stdout
    assert "applying 20240103000000_title_index" in done.stderr
    assert db.execute("SELECT count(*) FROM public.querykit_migrations").fetchone() == (3,)

    # The pyproject.toml of the README, then plain commands.
    toml = _section_block("Coming from Prisma", "toml")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n\n' + toml)
    again = subprocess.run(
        [".venv/bin/querykit", "migrate", "status"], cwd=tmp_path, env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "layout:    prisma (set by migrations_layout)" in again.stdout
    assert again.stdout.splitlines()[-1] == "1 applied, 2 baseline"
