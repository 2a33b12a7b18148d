"""``querykit check`` as a user runs it: a real process, and ``make demo`` showing it pass."""

from __future__ import annotations

import json
import re

from querykit import Settings
from tests.check.conftest import ROOT, add_migration
from tests.cli import querykit


def test_make_demo_checks_the_queries_after_migrating() -> None:
    recipe = re.search(r"^demo:.*?\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe is not None
    steps = [line.strip() for line in recipe.group(1).splitlines()]
    assert steps.index("$(QK) check") == steps.index("$(QK) migrate up") + 1


def test_the_command_passes_on_the_example_and_fails_one_line_per_finding(
    migrated: Settings,
) -> None:
    env = {"DATABASE_URL": migrated.database_url or ""}
    ok = querykit("check", cwd=migrated.project_dir, env=env)
    assert ok.returncode == 0, ok.stderr
    assert re.fullmatch(
        r"10 named queries \(12 statements\) check out against head \(0004_\S+\)\n", ok.stdout
    )

    add_migration(
        migrated, "0005_drop_tokens.sql", "ALTER TABLE pipeline_step DROP COLUMN tokens;\n"
    )
    failed = querykit("check", "--pending", cwd=migrated.project_dir, env=env)
    assert failed.returncode == 1, failed.stderr
    findings = failed.stdout.splitlines()[1:]
    assert findings and all(
        "prepare 42703 (pending)" in line and "0005_drop_tokens.sql:1" in line for line in findings
    ), failed.stdout
    as_json = querykit("check", "--pending", "--json", cwd=migrated.project_dir, env=env)
    payload = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and len(payload["findings"]) == len(findings)
    assert {f["migration"] for f in payload["findings"]} == {
        "migrations/sql/0005_drop_tokens.sql:1"
    }

    helped = querykit("check", "--help")
    assert helped.returncode == 0 and "--pending" in helped.stdout and "--offline" in helped.stdout
