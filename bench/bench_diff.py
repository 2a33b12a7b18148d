"""``querykit migrate diff`` on the example app: the drift check, and a draft proven on a clone.

Baseline: building the shadow database alone (CREATE DATABASE, the example's
migrations applied by querykit's runner, DROP DATABASE), which every diff
pays. Then the whole in-sync check (shadow, desired database from schema.py
through SQLAlchemy, two snapshots, compare), and a run with --write on an
edited schema.py (the draft applied to a clone of the shadow, re-snapshotted
and linted before it is written). Target: the check in 2 s or less.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from querykit import load_settings
from querykit.migrate.diff import diff
from querykit.migrate.files import discover
from querykit.migrate.shadow import Shadow

from ._harness import Row, median_seconds, report

NAME = "diff"
ROOT = Path(__file__).resolve().parent.parent
REPEATS = 5


def _median_seconds(fn: Callable[[], object]) -> float:
    return median_seconds(fn, REPEATS)


def run(url: str) -> None:
    settings = load_settings(cwd=ROOT, env={}, database_url=url)
    last = discover(settings.migrations)[-1].version

    def shadow_only() -> None:
        with Shadow(settings) as shadow:
            shadow.apply_through(last)

    def check() -> None:
        assert diff(settings).in_sync

    with tempfile.TemporaryDirectory(prefix="querykit-bench-diff-") as tmp:
        project = Path(tmp)
        shutil.copy(ROOT / "schema.py", project / "schema_edited.py")
        shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
        text = (project / "schema_edited.py").read_text()
        (project / "schema_edited.py").write_text(
            text.replace("Numeric(12, 6)", "Numeric(14, 6)").replace(
                "    model: Column[str | None] = Column(Text)\n",
                "    model: Column[str | None] = Column(Text)\n    note: Column[str | None] = Column(Text)\n",
            )
        )
        edited = load_settings(cwd=project, env={}, database_url=url, schema="schema_edited")
        drafts = project / "drafts"

        def draft() -> None:
            shutil.rmtree(drafts, ignore_errors=True)
            shutil.copytree(ROOT / "migrations/sql", drafts)
            result = diff(edited.with_overrides(migrations=drafts), write="bench")
            assert result.written

        base = _median_seconds(shadow_only)
        checked = _median_seconds(check)
        drafted = _median_seconds(draft)
    report(
        "querykit migrate diff on the example app (4 migrations, 5 tables)",
        [
            Row("build the shadow database only", base, 1.0, "run"),
            Row("migrate diff (in sync)", checked, checked / base, "run"),
            Row("migrate diff --write (2 changes, loop closed)", drafted, drafted / base, "run"),
        ],
        "build the shadow database only",
    )
    verdict = "ok" if checked <= 2.0 else "MISSED"
    print(f"  migrate diff on the example: {checked:.2f} s (target ≤ 2 s: {verdict})")
