"""The README's ``migrate lint`` section runs as written, and its rules table is the code's."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import psycopg
import pytest

from querykit.migrate.lint import LintResult
from querykit.migrate.lint.rules import readme_table

# Shares /tmp paths or the Studio's default port with the other README runners: one worker.
pytestmark = pytest.mark.xdist_group("readme")

ROOT = Path(__file__).resolve().parents[2]
SECTION = "### Linting migrations: `querykit migrate lint`"


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    return text[start : text.index("\n### ", start + 1)]


def test_the_readme_lists_every_rule_with_its_safe_way() -> None:
    assert readme_table() in _section()


def test_the_readme_python_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    block = re.search(r"```python\n(.*?)```", _section(), re.S)
    assert block is not None
    monkeypatch.chdir(ROOT)
    for name in ("DATABASE_URL", "QUERYKIT_DATABASE_URL", "QUERYKIT_MIGRATIONS"):
        monkeypatch.delenv(name, raising=False)
    namespace: dict[str, object] = {}
    exec(compile(block[1], "README.md (lint example)", "exec"), namespace)
    result = namespace["result"]
    assert isinstance(result, LintResult) and result.files


def test_the_readme_lint_commands_run_as_written(database_url: str) -> None:
    block = re.search(r"```sh\n(.*?)```", _section(), re.S)
    assert block is not None
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if not k.startswith(("DATABASE_URL", "QUERYKIT_"))
    }
    env["DATABASE_URL"] = database_url  # `querykit db url` prints it instead of starting a server
    run = subprocess.run(
        ["bash", "-c", block[1]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    files = len(list((ROOT / "migrations" / "sql").glob("*.sql")))
    assert f"lint: {files} file(s), no findings" in out
    assert "lint: 2 file(s), no findings" in out
    assert "exit 1: 0002 is pending" in out
    assert "0002_users_email.sql:1:1: error create-index-not-concurrent" in out
    assert "0002_users_email.sql:2:1: error column-type-rewrite" in out
    assert (
        "::error file=/tmp/qk-lint/0002_users_email.sql,line=2,col=1,title=column-type-rewrite::"
        in out
    )
    assert "exit 3 (refused, nothing applied)" in out
    probe = json.loads(Path("/tmp/qk-lint/probe.json").read_text())
    assert [(f["rule"], f["probe"]["note"]) for f in probe["findings"]] == [
        ("create-index-not-concurrent", "confirmed"),
        ("column-type-rewrite", "confirmed"),
    ]
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM lintdemo.querykit_migrations").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('lint_users')").fetchone() == (None,)
