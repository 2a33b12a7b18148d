"""``querykit migrate diff`` as a user runs it, on a copy of the example project."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.cli import example_project, querykit


def run_querykit(project: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return querykit(*args, cwd=project, env={"DATABASE_URL": database_url})


EDITS = (
    # a nullable column, a wider numeric, a new enum label and a new index
    ("    metadata: Column[dict[str, Any]] = Column(jsonb(dict[str, Any]), nullable=False)\n\n"
     "    __row_pos__: tuple[str, str, dict[str, Any]]",
     "    metadata: Column[dict[str, Any]] = Column(jsonb(dict[str, Any]), nullable=False)\n"
     "    title: Column[str | None] = Column(Text)\n\n"
     "    __row_pos__: tuple[str, str, dict[str, Any], str | None]"),
    ("Numeric(12, 6)", "Numeric(14, 6)"),
    ('    FAILED = "FAILED"\n', '    FAILED = "FAILED"\n    CANCELLED = "CANCELLED"\n'),
    ('content_item = Table("content_item", metadata, content_item_cols)',
     'content_item = Table(\n    "content_item", metadata, content_item_cols, '
     'Index("content_item_type_idx", "type")\n)'),
)  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return example_project(tmp_path)


def _edit_schema(project: Path) -> None:
    path = project / "schema.py"
    text = path.read_text()
    for old, new in EDITS:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)


def test_in_sync_exits_0(project: Path, database_url: str) -> None:
    done = run_querykit(project, database_url, "migrate", "diff", "--check")
    assert done.returncode == 0, done.stderr
    assert "in sync" in done.stdout


def test_an_edited_schema_is_reported_drafted_applied_and_then_in_sync(
    project: Path, database_url: str
) -> None:
    _edit_schema(project)
    checked = run_querykit(project, database_url, "migrate", "diff", "--check", "--json")
    assert checked.returncode == 3, checked.stderr
    found = {(c["action"], c["kind"], c["name"]) for c in json.loads(checked.stdout)["changes"]}
    assert found == {
        ("added", "column", "content_item.title"),
        ("changed", "column", "pipeline_run.cost"),
        ("changed", "enum", "status"),
        ("added", "index", "content_item_type_idx"),
    }

    wrote = run_querykit(project, database_url, "migrate", "diff", "--write", "add_x")
    assert wrote.returncode == 0, wrote.stderr
    drafts = sorted(p.name for p in (project / "migrations/sql").glob("000[5-9]_*.sql"))
    assert drafts == ["0005_add_x_enums.sql", "0006_add_x.sql", "0007_add_x_index_content_item_type_idx.sql"]  # fmt: skip
    sql_dir = project / "migrations/sql"
    assert "ADD VALUE IF NOT EXISTS 'CANCELLED' AFTER 'FAILED'" in (sql_dir / drafts[0]).read_text()
    main = (sql_dir / drafts[1]).read_text()
    assert "ALTER TABLE content_item ADD COLUMN title TEXT;" in main
    assert "ALTER TABLE pipeline_run ALTER COLUMN cost TYPE numeric(14,6);" in main
    index = (sql_dir / drafts[2]).read_text()
    assert "CREATE INDEX CONCURRENTLY content_item_type_idx ON public.content_item" in index

    assert run_querykit(project, database_url, "migrate", "lint", "--all").returncode == 0
    up = run_querykit(project, database_url, "migrate", "up")
    assert up.returncode == 0, up.stderr
    again = run_querykit(project, database_url, "migrate", "diff", "--check")
    assert again.returncode == 0, again.stdout + again.stderr
    # and the live database, migrated with the drafts, matches the history
    live = run_querykit(project, database_url, "migrate", "diff", "--check", "--database", database_url)  # fmt: skip
    assert live.returncode == 0, live.stdout + live.stderr


def test_a_drifted_live_database_is_reported(project: Path, database_url: str) -> None:
    assert run_querykit(project, database_url, "migrate", "up").returncode == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE INDEX hotfix_idx ON pipeline_step (model)")
        conn.execute("ALTER TABLE pipeline_run ALTER COLUMN name DROP NOT NULL")
    done = run_querykit(
        project, database_url, "migrate", "diff", "--database", database_url, "--check", "--json"
    )
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert report["current"].endswith(database_url.rsplit("/", 1)[1])
    found = {(c["action"], c["kind"], c["name"]) for c in report["changes"]}
    # the live database is the current side: what the migrations would change back
    assert found == {
        ("removed", "index", "hotfix_idx"),
        ("changed", "column", "pipeline_run.name"),
    }


def test_a_destructive_change_is_commented_out_and_a_rename_is_a_question(
    project: Path, database_url: str
) -> None:
    path = project / "schema.py"
    text = path.read_text().replace("    model: Column[str | None] = Column(Text)\n",
                                    "    model_name: Column[str | None] = Column(Text)\n")  # fmt: skip
    path.write_text(text)
    done = run_querykit(project, database_url, "migrate", "diff", "--write", "rename_model")
    assert done.returncode == 0, done.stderr
    [draft] = sorted((project / "migrations/sql").glob("0005_*.sql"))
    body = draft.read_text()
    assert "ALTER TABLE pipeline_step ADD COLUMN model_name TEXT;" in body
    assert "-- ALTER TABLE pipeline_step DROP COLUMN model;" in body
    assert "-- QUESTION: was pipeline_step.model renamed to pipeline_step.model_name" in body
    assert "not drafted (review by hand): pipeline_step.model" in done.stdout
