"""``querykit migrate lint``: 500 files statically, and the live probe per statement.

Static: 500 files of mixed DDL (tables, columns, indexes, type changes,
constraints), linted with ``--all`` and no database, next to parsing the same
files (``discover``) as the baseline. Target: 2 s or less for the 500 files.

Probe: 40 files of 5 transactional statements each (each file changes its own
table of 5,000 rows), pending on a database, linted with ``--probe`` (a shadow built by the runner,
one clone per file, BEGIN ... ROLLBACK per statement). Target: 50 ms or less
per statement, everything included.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from psycopg import sql

from querykit import load_settings, migrate
from querykit._conninfo import connect
from querykit.migrate.files import discover
from querykit.migrate.lint import lint
from querykit.migrate.shadow import with_database

from ._harness import Row, report

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


def _probe_tables() -> str:
    return "".join(
        f"CREATE TABLE big{n} (id bigint PRIMARY KEY, v text);\n"
        f"INSERT INTO big{n} SELECT g, 'v' || g FROM generate_series(1, 5000) g;\n"
        for n in range(2, PROBE_FILES + 2)
    )


def _median_seconds(fn: object) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


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

        probe_dir = Path(tmp) / "probe"
        probe_dir.mkdir()
        (probe_dir / "0001_big.sql").write_text(_probe_tables())
        for n in range(2, PROBE_FILES + 2):
            (probe_dir / f"{n:04d}_change_{n}.sql").write_text(_probe_file(n))
        name = "querykit_bench_lint"
        ident = sql.Identifier(name)
        with connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        target = with_database(url, name)
        try:
            probe_settings = load_settings(
                cwd=tmp, env={}, migrations=probe_dir, database_url=target
            )
            migrate.up(probe_settings, to=1)
            statements = PROBE_FILES * 5
            started = time.perf_counter()
            probed = lint(probe_settings, probe=True)
            elapsed = time.perf_counter() - started
            started = time.perf_counter()
            lint(probe_settings)
            static_db = time.perf_counter() - started
        finally:
            with connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        per = elapsed / statements
        confirmed = sum(1 for f in probed.findings if f.probe and f.probe.confirmed)
        report(
            f"lint --probe: {PROBE_FILES} files x 5 statements, tables of 5,000 rows",
            [
                Row("lint with the database, static", static_db / statements, 1.0, "statement"),
                Row(
                    "lint --probe (shadow, one clone)",
                    per,
                    per * statements / static_db,
                    "statement",
                ),
            ],
            "lint with the database, static",
        )
        verdict = "ok" if per <= 0.050 else "MISSED"
        print(
            f"  --probe: {per * 1000:.1f} ms per statement (target ≤ 50 ms: {verdict}); "
            f"{confirmed} of {len(probed.findings)} findings confirmed by the probe"
        )
