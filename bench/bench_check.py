"""``querykit check`` on the example app: every named query, against head and head + pending.

Two shadow databases are built first (head: the example's 4 migrations; head +
pending: a fifth file adding a nullable column), outside the timing, as
"once the shadow database exists" asks. Timed: compiling every statement of
the named queries, preparing and describing each on both databases (with
EXPLAIN for the outer-join nullability) and comparing. The baseline is one
round of plain psycopg PREPARE-less ``EXPLAIN`` of the same statements on one
database, the least any server-side check costs. For context, the whole
``check(pending=True)`` also builds its shadow. Target: ≤ 1 s.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
from pgvector.psycopg import register_vector

from querykit import load_settings
from querykit.check import check, check_statements, compile_statements, schema_columns
from querykit.migrate import discover
from querykit.migrate.shadow import Shadow
from querykit.named import load_named

from ._harness import Row, median_seconds, report

NAME = "check"
ROOT = Path(__file__).resolve().parent.parent
REPEATS = 5


def run(url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="querykit-bench-check-") as tmp:
        migrations = Path(tmp) / "sql"
        shutil.copytree(ROOT / "migrations/sql", migrations)
        (migrations / "0005_run_note.sql").write_text(
            "ALTER TABLE pipeline_run ADD COLUMN note text;\n"
        )
        settings = load_settings(cwd=ROOT, env={}, database_url=url, migrations=migrations)
        files = discover(migrations)
        named = load_named(None, settings)
        columns = schema_columns(settings)
        with Shadow(settings) as head, Shadow(settings) as pending:
            head.apply_through(files[-2].version)
            pending.apply_through(files[-1].version)

            def explain_only() -> None:
                with psycopg.connect(head.url, autocommit=True) as conn:
                    register_vector(conn)
                    for s in compile_statements(named):
                        conn.execute("EXPLAIN " + s.compiled.sql, s.compiled.params)

            def both() -> None:
                statements = compile_statements(load_named(None, settings))
                found = check_statements(head.url, statements, columns, "head", files)
                found += check_statements(pending.url, statements, columns, "pending", files)
                assert not found, [f.text() for f in found]

            statements = len(compile_statements(named))
            base = median_seconds(explain_only, REPEATS)
            checked = median_seconds(both, REPEATS)
        whole = median_seconds(lambda: check(settings, pending=True), 3)
    report(
        f"querykit check on the example app ({len(named)} named queries, {statements} statements)",
        [
            Row("EXPLAIN each statement once (psycopg)", base, 1.0, "run"),
            Row("check, head and pending (shadows exist)", checked, checked / base, "run"),
            Row("check --pending, shadow built too", whole, whole / base, "run"),
        ],
        "EXPLAIN each statement once (psycopg)",
    )
    verdict = "ok" if checked <= 1.0 else "MISSED"
    print(
        f"  check of all named queries, head and pending: {checked:.3f} s (target ≤ 1 s: {verdict})"
    )
