"""``querykit migrate new NAME --from-schema``: ``migrate diff --write NAME`` under the name
Prisma and Rails users look for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import example_project, querykit


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return example_project(tmp_path)


def test_new_from_schema_drafts_what_diff_write_drafts(project: Path, database_url: str) -> None:
    env = {"DATABASE_URL": database_url}
    sql_dir = project / "migrations/sql"
    in_sync = querykit("migrate", "new", "nothing", "--from-schema", cwd=project, env=env)
    assert in_sync.returncode == 0, in_sync.stderr
    assert "in sync" in in_sync.stdout and len(list(sql_dir.iterdir())) == 4  # nothing written

    schema = project / "schema.py"
    schema.write_text(
        schema.read_text().replace(
            "    type: Column[str] = Column(Text, nullable=False)\n",
            "    type: Column[str] = Column(Text, nullable=False)\n"
            "    title: Column[str | None] = Column(Text)\n",
        )
    )
    done = querykit("migrate", "new", "add title", "--from-schema", "--json", cwd=project, env=env)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert [c["name"] for c in payload["changes"]] == ["content_item.title"]
    assert payload["written"] == ["migrations/sql/0005_add_title.sql"]
    assert (
        "ALTER TABLE content_item ADD COLUMN title TEXT;"
        in (sql_dir / "0005_add_title.sql").read_text()
    )

    # the oracle: the history, draft included, now builds what schema.py declares
    after = querykit("migrate", "diff", "--check", cwd=project, env=env)
    assert after.returncode == 0, after.stdout + after.stderr


def test_database_url_without_from_schema_is_a_usage_error(project: Path) -> None:
    done = querykit("migrate", "new", "x", "--database-url", "postgresql://h/db", cwd=project)
    assert done.returncode == 2 and "--from-schema" in done.stderr
