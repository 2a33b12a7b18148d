"""The README's "Change the schema" section runs as written: edit, diff, draft, lint, up, in sync."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTION = "### Change the schema: `querykit migrate diff`"


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    return text[start : text.index("\n### ", start + 1)]


def test_the_change_the_schema_loop_runs_as_written(database_url: str) -> None:
    block = re.search(r"```sh\n(.*?)```", _section(), re.S)
    assert block is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "QUERYKIT_"))}
    env["DATABASE_URL"] = database_url  # a fresh database: `migrate up` applies all six files
    run = subprocess.run(
        ["bash", "-ec", block[1]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "exit 3: schema.py is ahead of the migrations" in out
    assert "added    table      tag" in out
    assert "CREATE INDEX CONCURRENTLY pipeline_step_model_idx ON public.pipeline_step" in out
    assert "lint: 6 file(s), no findings" in out
    assert "applying 0006_add_x_index_pipeline_step_model_idx.sql (no transaction) ... ok" in out
    assert (
        out.rstrip().endswith("are in sync")
        or "migrations and schema.py (schema) are in sync" in out
    )
    with __import__("psycopg").connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('tag') IS NOT NULL").fetchone() == (True,)


def test_the_migrate_table_lists_diff() -> None:
    assert (
        "| `diff [--check] [--write NAME] [--database URL]` |" in (ROOT / "README.md").read_text()
    )
