"""``make demo``'s last step, ``demo.py``, on a freshly migrated database (and run twice)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from querykit import connect, count, load_settings, migrate, select
from querykit.named import load_named
from schema import embedding

ROOT = Path(__file__).resolve().parent.parent


def run_demo(url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "QUERYKIT_"))}
    return subprocess.run(
        [sys.executable, "demo.py"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_runs_every_named_query_with_sql_and_results(database_url: str) -> None:
    settings = load_settings(cwd=ROOT, env={}, database_url=database_url)
    migrate.up(settings)
    first = run_demo(database_url)
    assert first.returncode == 0, first.stderr
    for named in load_named(None, settings):
        assert f"=== {named.target}" in first.stdout
    assert first.stdout.count("--> ") == len(load_named(None, settings))
    assert (
        "SELECT pipeline_run.name" in first.stdout and "-- params: $1 = 'COMPLETED'" in first.stdout
    )
    assert "'agents monitor vector pipelines', 0.0000" in first.stdout  # the exact match first
    assert "steps: 3" in first.stdout
    assert_counts_match_rows_shown(first.stdout)
    assert first.stdout.rstrip().endswith(
        ".venv/bin/querykit studio --open"
    )  # make demo's last line
    with connect(database_url) as db:
        assert db.scalar(select(count()).from_(embedding)) == 1000
    again = run_demo(database_url)
    assert again.returncode == 0, again.stderr
    with connect(database_url) as db:
        assert db.scalar(select(count()).from_(embedding)) == 1000  # seeded once


def assert_counts_match_rows_shown(output: str) -> None:
    """ "--> N row(s)" is followed by N rows, or by 5 and a "… N-5 more" line: never fewer
    rows than the count without saying so."""
    import re

    cut = 0
    for block in output.split("\n=== ")[1:]:
        count_line = re.search(r"^--> (\d+) row\(s\)$", block, flags=re.M)
        if count_line is None:
            continue
        total = int(count_line.group(1))
        more = re.search(r"^    … (\d+) more \(querykit sql (\S+) --run shows them\)$", block, re.M)
        if total > 5:
            assert more is not None and int(more.group(1)) == total - 5, block
            assert block.startswith(more.group(2))  # the command names this query
            cut += 1
        else:
            assert more is None, block
    assert cut, "no query had more than 5 rows: the '… N more' line went untested"
