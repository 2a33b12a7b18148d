"""``querykit migrate lint``: 500 files statically, and the live probe per statement.

Static: 500 files of mixed DDL (tables, columns, indexes, type changes,
constraints), linted with ``--all`` and no database, next to parsing the same
files (``discover``) as the baseline. Target: 2 s or less for the 500 files.

Probe: 40 pending files of 5 transactional statements each (each file changes
its own table), linted with ``--probe``: a shadow built by the runner from the
history, one clone, BEGIN ... ROLLBACK per statement. Measured twice: when the
history file holds the schema only (as migrations usually do), and when it also
fills each table with 5,000 rows (the shadow then builds that data too). Target:
50 ms or less per statement, everything included (building the shadow with the runner,
cloning it, observing, and the lint). Next to it: the same statements applied
plainly, and observed without the rest.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from psycopg import sql

from querykit import load_settings, migrate
from querykit.execute.connect import connect
from querykit.migrate.files import discover
from querykit.migrate.lint import LintResult, lint, probe_statements
from querykit.migrate.shadow import with_database

from ._harness import Row, median_seconds, report

NAME = "lint"
STATIC_FILES = 500
PROBE_FILES = 40
REPEATS = 3


def _static_file(n: int) -> str:
    return (
        f"CREATE TABLE t{n} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text,\n"
        f"    cost numeric(12,6), created timestamptz NOT NULL DEFAULT now());\n"
        f"ALTER TABLE t{max(n - 1, 1)} ADD COLUMN note_{n} text;\n"
        f"CREATE INDEX t{max(n - 1, 1)}_name_{n} ON t{max(n - 1, 1)} (name);\n"
        f"ALTER TABLE t{max(n - 1, 1)} ALTER COLUMN cost TYPE numeric(14,6);\n"
        f"ALTER TABLE t{n} ADD CONSTRAINT t{n}_cost CHECK (cost >= 0) NOT VALID;\n"
        f"-- querykit:down\nDROP TABLE t{n};\n"
    )


def _probe_file(n: int) -> str:
    return (
        f"ALTER TABLE big{n} ADD COLUMN c text;\n"
        f"ALTER TABLE big{n} ALTER COLUMN c SET DEFAULT 'x';\n"
        f"ALTER TABLE big{n} ADD CONSTRAINT big{n}_c CHECK (c <> '') NOT VALID;\n"
        f"CREATE INDEX big{n}_v ON big{n} (v);\n"
        f"ALTER TABLE big{n} ALTER COLUMN v TYPE varchar(100);\n"
    )


def _probe_tables(rows: int) -> str:
    fill = "INSERT INTO big{n} SELECT g, 'v' || g FROM generate_series(1, {rows}) g;\n"
    return "".join(
        f"CREATE TABLE big{n} (id bigint PRIMARY KEY, v text);\n"
        + (fill.format(n=n, rows=rows) if rows else "")
        for n in range(2, PROBE_FILES + 2)
    )


def _probe_directory(root: Path, rows: int) -> Path:
    directory = root / f"probe_{rows}"
    directory.mkdir()
    (directory / "0001_big.sql").write_text(_probe_tables(rows))
    for n in range(2, PROBE_FILES + 2):
        (directory / f"{n:04d}_change_{n}.sql").write_text(_probe_file(n))
    return directory


def _lint_probe_seconds(
    admin: str, name: str, directory: Path, tmp: str
) -> tuple[float, float, LintResult]:
    """(lint --probe seconds, static lint seconds, result) with 0001 applied to a fresh database."""
    ident = sql.Identifier(name)
    with connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    try:
        settings = load_settings(
            cwd=tmp, env={}, migrations=directory, database_url=with_database(admin, name)
        )
        migrate.up(settings, to=1)
        started = time.perf_counter()
        probed = lint(settings, probe=True)
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        lint(settings)
        return elapsed, time.perf_counter() - started, probed
    finally:
        with connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def _median_seconds(fn: Callable[[], object]) -> float:
    return median_seconds(fn, REPEATS)


def _on_clone(admin: str, template: str, work: Callable[[str], object]) -> float:
    """Seconds ``work`` takes on a fresh clone of ``template`` (the clone is dropped)."""
    ident = sql.Identifier(f"{template}_clone")
    with connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(ident, sql.Identifier(template))
        )
    try:
        started = time.perf_counter()
        work(with_database(admin, f"{template}_clone"))
        return time.perf_counter() - started
    finally:
        with connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def run(url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="querykit-bench-lint-") as tmp:
        directory = Path(tmp) / "static"
        directory.mkdir()
        for n in range(1, STATIC_FILES + 1):
            (directory / f"{n:04d}_step_{n}.sql").write_text(_static_file(n))
        settings = load_settings(cwd=tmp, env={}, migrations=directory)
        found = lint(settings, all_files=True)
        parse = _median_seconds(lambda: discover(directory))
        static = _median_seconds(lambda: lint(settings, all_files=True))
        report(
            f"lint {STATIC_FILES} migration files statically ({len(found.findings)} findings)",
            [
                Row("parse the files (discover)", parse, 1.0, "run"),
                Row("querykit migrate lint --all (static)", static, static / parse, "run"),
            ],
            "parse the files (discover)",
        )
        verdict = "ok" if static <= 2.0 else "MISSED"
        print(f"  static lint of {STATIC_FILES} files: {static:.2f} s (target ≤ 2 s: {verdict})")

        statements = PROBE_FILES * 5
        name = "querykit_bench_lint"
        data_dir = _probe_directory(Path(tmp), 5000)
        ident = sql.Identifier(name)
        with connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        try:
            seeded = load_settings(
                cwd=tmp, env={}, migrations=data_dir, database_url=with_database(url, name)
            )
            migrate.up(seeded, to=1)
            texts = [(st.text, True) for m in discover(data_dir) if m.version > 1 for st in m.up]
            plain = _on_clone(
                url, name, lambda u: probe_statements(u, [(t, False) for t, _ in texts])
            )
            observed = _on_clone(url, name, lambda u: probe_statements(u, texts))
        finally:
            with connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        seeded_probe, _, _ = _lint_probe_seconds(url, name, data_dir, tmp)
        schema_dir = _probe_directory(Path(tmp), 0)
        elapsed, static_db, probed = _lint_probe_seconds(url, name, schema_dir, tmp)
        per = elapsed / statements
        confirmed = sum(1 for f in probed.findings if f.probe and f.probe.confirmed)
        report(
            f"lint --probe: {PROBE_FILES} pending files x 5 statements",
            [
                Row("apply the statements (no probe)", plain / statements, 1.0, "statement"),
                Row(
                    "observe in BEGIN..ROLLBACK, then apply",
                    observed / statements,
                    observed / plain,
                    "statement",
                ),
                Row(
                    "lint, static, with the database",
                    static_db / statements,
                    static_db / plain,
                    "statement",
                ),
                Row(
                    "lint --probe, history holds 5,000-row tables",
                    seeded_probe / statements,
                    seeded_probe / plain,
                    "statement",
                ),
                Row(
                    "lint --probe, history holds the schema only", per, elapsed / plain, "statement"
                ),
            ],
            "apply the statements (no probe)",
        )
        verdict = "ok" if per <= 0.050 else "MISSED"
        print(
            f"  --probe: {per * 1000:.1f} ms per statement (target ≤ 50 ms: {verdict}); "
            f"{confirmed} of {len(probed.findings)} findings confirmed by the probe"
        )
