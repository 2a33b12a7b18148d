"""querykit.testing: what its fixtures cost a test, and what the template cache saves.

- **Per-test overhead**: a generated suite runs in-process under pytest with the
  plugin; a hook records each test's setup and teardown durations, which is the
  critical path the fixture adds as the test sees it (its body is not counted).
  ``qk_db`` is measured with tests back to back, tests of 50 ms and tests of
  400 ms: clone-ahead hides ``CREATE DATABASE`` only when tests give its two
  threads the time. A test with no fixture at all is the floor: pytest's own
  setup and teardown. Targets: qk_db with clone-ahead ≤ 10 ms, qk_tx ≤ 1 ms
  (medians). Both servers are measured: the plugin's own (test settings, data on
  the RAM disk) and one like a DATABASE_URL's (the bench's: fsync=on, on disk).
- **Template cache**: ensuring the template when it is cached, next to building it
  (dropping it first), with the example app's migrations.
- **Clone strategy**: ``CREATE DATABASE ... STRATEGY WAL_LOG`` next to ``FILE_COPY``
  for templates of growing size; it decided ``FILE_COPY_ABOVE``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from querykit import load_settings
from querykit.testing import names
from querykit.testing.template import drop_database, ensure_template

from ._harness import Row, report

NAME = "testing"
TESTS = 80
ROOT = Path(__file__).resolve().parent.parent

SUITE = """\
import time

import pytest

from querykit import raw


@pytest.mark.parametrize("n", range({tests}))
def test_case(n, {fixture}):
    assert {fixture}.scalar(raw("SELECT count(*) FROM pipeline_run")) == 0
    {fixture}.execute(raw("INSERT INTO pipeline_run (id, name) VALUES (:id, 'bench')", id=str(n)))
    time.sleep({work})
"""


class _Durations:
    """A pytest plugin that keeps each test's setup + teardown time."""

    def __init__(self) -> None:
        self.per_test: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when in ("setup", "teardown"):
            self.per_test[report.nodeid] = self.per_test.get(report.nodeid, 0.0) + report.duration


READY = 0.005
"""A test whose setup + teardown took less found its clone ready (it did not wait)."""
WAITS: dict[str, float] = {}
_RUNS = itertools.count(1)


def _project(base: Path) -> Path:
    project = base / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.querykit]\nmigrations = "migrations"\n')
    shutil.copytree(ROOT / "migrations" / "sql", project / "migrations")
    return project


NO_FIXTURE = """\
import pytest


@pytest.mark.parametrize("n", range({tests}))
def test_case(n):
    pass
"""


def _overhead(project: Path, fixture: str, work: float, tests: int = TESTS) -> float:
    """The median setup + teardown seconds of a test under ``fixture`` (the first excluded)."""
    # A new module name for each run: pytest.main in one process would otherwise
    # find the earlier suite in sys.modules (same path, same name) and run it again.
    test_file = project / f"test_bench_{fixture or 'none'}_{next(_RUNS)}.py"
    suite = SUITE if fixture else NO_FIXTURE
    test_file.write_text(suite.format(tests=tests, fixture=fixture, work=work))
    durations = _Durations()
    code = pytest.main(
        [
            str(test_file),
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(project),
            "-p",
            "no:xdist",
        ],
        plugins=[durations],
    )
    if code != 0:
        raise SystemExit(f"the generated {fixture or 'plain'} suite failed (pytest exit {code})")
    values = list(durations.per_test.values())[1:]  # the first pays for the template
    if len(values) != tests - 1:
        raise SystemExit(f"the generated suite ran {len(values) + 1} tests, not {tests}")
    if fixture:
        WAITS[f"{fixture}/{work}"] = sum(v < READY for v in values) / len(values)
    return statistics.median(values)


def _server_url(url: str) -> str:
    return names.clone_url(url, "postgres")


def _unpin(url: str) -> None:
    """Let this process, and the server behind ``url``, use every CPU again.

    The harness pins the client, and servers started after that inherit it; a test
    session is no latency probe: its clone-ahead threads and the server's
    ``CREATE DATABASE`` work must overlap with the tests, as they do in a user's run.
    """
    if not hasattr(os, "sched_setaffinity"):
        return
    every = set(range(os.cpu_count() or 1))
    os.sched_setaffinity(0, every)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    postmaster = _parent(int(row[0]))
    for pid in [postmaster, *(p for p in _pids() if _parent(p) == postmaster)]:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, every)


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def run(url: str) -> None:
    _unpin(url)
    server = _server_url(url)
    base = Path(tempfile.mkdtemp(prefix="querykit-bench-testing-"))
    saved = os.environ.get("DATABASE_URL")
    project = _project(base)
    try:
        # What a user gets by default: the plugin's own embedded server...
        os.environ.pop("DATABASE_URL", None)
        _per_test(project, "the plugin's embedded server (test settings, RAM disk)")
        # ... and a server like a DATABASE_URL one (the bench's, fsync=on).
        os.environ["DATABASE_URL"] = server
        _per_test(project, "a DATABASE_URL server, fsync=on")
        _cache(server, project)
        _strategies(server)
    finally:
        if saved is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = saved
        _drop_project(server, project)
        shutil.rmtree(base, ignore_errors=True)


def _per_test(project: Path, where: str) -> None:
    floor = _overhead(project, "", 0.0)
    tx = _overhead(project, "qk_tx", 0.0)
    back_to_back = _overhead(project, "qk_db", 0.0)
    short = _overhead(project, "qk_db", 0.05)
    ahead = _overhead(project, "qk_db", 0.4, tests=20)
    rows = [
        Row("qk_tx", tx, 1.0, "test"),
        Row("no fixture (pytest's own setup + teardown)", floor, floor / tx, "test"),
        Row("qk_db, tests back to back", back_to_back, back_to_back / tx, "test"),
        Row("qk_db, tests of 50 ms", short, short / tx, "test"),
        Row("qk_db, tests of 400 ms", ahead, ahead / tx, "test"),
    ]
    report(f"querykit.testing on {where}: per-test setup + teardown (median)", rows, "qk_tx")
    print(f"  targets: qk_db with clone-ahead ≤ 10 ms: {_verdict(ahead, 0.010)} "
          f"(with 50 ms tests: {_verdict(short, 0.010)}); qk_tx ≤ 1 ms: {_verdict(tx, 0.001)}")  # fmt: skip
    print("  qk_db tests whose clone was ready (setup + teardown < 5 ms): "
          + ", ".join(f"{work}: {share:.0%}" for work, share in WAITS.items() if "qk_db" in work))  # fmt: skip
    WAITS.clear()


def _verdict(seconds: float, target: float) -> str:
    return f"{seconds * 1000:.2f} ms {'ok' if seconds <= target else 'MISSED'}"


def _cache(server: str, project: Path) -> None:
    settings = load_settings(config=project / "pyproject.toml")
    hits, builds = [], []
    for _ in range(3):
        template = ensure_template(server, settings)
        with psycopg.connect(server, autocommit=True) as conn:
            drop_database(conn, template.name)
        started = time.perf_counter()
        ensure_template(server, settings)
        builds.append(time.perf_counter() - started)
        for _ in range(3):
            started = time.perf_counter()
            assert not ensure_template(server, settings).built
            hits.append(time.perf_counter() - started)
    hit, build = statistics.median(hits), statistics.median(builds)
    report(
        "querykit.testing: the template (the example app's 4 migrations)",
        [Row("cache hit", hit, 1.0, "session"), Row("rebuild", build, build / hit, "session")],
        "cache hit",
    )


def _strategies(server: str) -> None:
    rows = []
    with psycopg.connect(server, autocommit=True) as conn:
        for megabytes in (0, 32, 96):
            name = f"qk_bench_template_{megabytes}"
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            if megabytes:
                with psycopg.connect(names.clone_url(server, name), autocommit=True) as filler:
                    filler.execute(
                        "CREATE TABLE filler AS SELECT g, repeat('x', 900) AS pad"
                        " FROM generate_series(1, %s) g",
                        [megabytes * 1024 * 1024 // 1000],
                    )
                conn.execute("CHECKPOINT")  # FILE_COPY's checkpoint should not pay for the filler
            size = conn.execute("SELECT pg_database_size(%s)", [name]).fetchone()
            assert size is not None
            times = {}
            for strategy in ("WAL_LOG", "FILE_COPY", "WAL_LOG", "FILE_COPY"):
                samples = times.setdefault(strategy, [])
                for i in range(2):
                    clone = sql.Identifier(f"{name}_clone_{i}")
                    started = time.perf_counter()
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY {}").format(
                            clone, sql.Identifier(name), sql.SQL(strategy)
                        )
                    )
                    samples.append(time.perf_counter() - started)
                    conn.execute(sql.SQL("DROP DATABASE {}").format(clone))
            wal, copy = statistics.median(times["WAL_LOG"]), statistics.median(times["FILE_COPY"])
            label = f"{int(size[0]) / 1e6:.0f} MB"
            rows += [Row(f"{label} WAL_LOG", wal, 1.0, "clone"),
                     Row(f"{label} FILE_COPY", copy, copy / wal, "clone")]  # fmt: skip
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
        fsync = conn.execute("SHOW fsync").fetchone()
    report(
        f"querykit.testing: clone strategy by template size (server fsync={fsync and fsync[0]})",
        rows,
        "",
    )


def _drop_project(server: str, project: Path) -> None:
    tag = names.project_tag(project)
    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"qk\\_%\\_{tag}\\_%"]
        ).fetchall()
        for (name,) in rows:
            drop_database(conn, name)
