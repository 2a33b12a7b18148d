"""Pinned types of the migration API (checked by mypy --strict, not run)."""

from __future__ import annotations

from pathlib import Path
from typing import assert_type

from querykit import load_settings, migrate

settings = load_settings(database_url="postgresql://u@h/d")

result = migrate.up(settings, to="0003", lock_timeout=2.0, lock_retries=3)
assert_type(result, migrate.RunResult)
assert_type(result.done, tuple[migrate.Done, ...])
assert_type(result.nothing_to_do, bool)
assert_type(result.sql(), str)
assert_type(migrate.down(settings, to=0), migrate.RunResult)

report = migrate.status(settings)
assert_type(report, migrate.Status)
assert_type(report.entries, tuple[migrate.Entry, ...])
assert_type(report.entries[0].state, migrate.State)
assert_type(report.entries[0].row, migrate.LedgerRow | None)
assert_type(report.verified, bool)
assert_type(migrate.verify(settings), migrate.Status)

assert_type(migrate.baseline("0002", settings), migrate.BaselineResult)
assert_type(migrate.repair(settings, accept_changed=True), migrate.RepairResult)
assert_type(migrate.new("add users", settings), Path)

files = migrate.discover(Path("migrations/sql"))
assert_type(files, list[migrate.Migration])
assert_type(files[0].up, tuple[migrate.Statement, ...])
assert_type(files[0].down, tuple[migrate.Statement, ...] | None)


def on_progress(event: migrate.Progress) -> None:
    assert_type(event.message, str)


migrate.up(settings, on_progress=on_progress)
