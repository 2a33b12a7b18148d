"""The querykit.testing plugin, run as users run it: real pytest runs on real PostgreSQL.

Each test here writes test files into the project of ``conftest.py`` and runs
pytest on them in a subprocess; the assertions read the run's outcome and the
server's catalog.
"""

from __future__ import annotations

import collections
import os
import tempfile
from pathlib import Path
from xml.etree import ElementTree

import psycopg
import pytest

from querykit.testing.server import scratch_root

from .conftest import Project

pytestmark = pytest.mark.xdist_group("querykit-testing")

GENERATED = """\
import os

import pytest

from querykit import raw


@pytest.mark.parametrize("n", range(200))
def test_generated(n, {fixture}):
    db = {fixture}
    assert db.scalar(raw("SELECT count(*) FROM item")) == 0
    assert db.scalar(raw("SELECT count(*) FROM tag")) == 0
    db.execute(raw(
        "INSERT INTO item (id, name) SELECT g, 'item ' || g FROM generate_series(1, :k) g",
        k=n % 5 + 1,
    ))
    db.execute(raw("INSERT INTO tag (item_id, label) VALUES (1, :label)", label=f"t{{n}}"))
    name = db.scalar(raw("SELECT current_database()"))
    with open(os.environ["QK_RESULTS"], "a") as out:
        out.write(f"{{os.environ.get('PYTEST_XDIST_WORKER', 'main')}} {{name}} {{n}}\\n")
"""


def run_generated(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fixture: str, *args: str
) -> list[tuple[str, str, str]]:
    """Run the 200 generated tests under ``fixture``; return (worker, database, n) per test."""
    results = pytester.path / f"results-{fixture}-{len(args)}.txt"
    monkeypatch.setenv("QK_RESULTS", str(results))
    pytester.makepyfile(test_generated=GENERATED.format(fixture=fixture))
    outcome = pytester.runpytest("-q", "-p", "no:cacheprovider", *args)
    outcome.assert_outcomes(passed=200)
    lines = [line.split() for line in results.read_text().splitlines()]
    return [(w, d, n) for w, d, n in lines]


def test_200_tests_under_qk_db_see_no_leaks_and_each_its_own_database(
    project: Project, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = run_generated(pytester, monkeypatch, "qk_db")
    databases = [d for _, d, _ in rows]
    assert len(set(databases)) == 200  # 0 collisions
    assert all(d.startswith(f"qk_c_{project.tag}_") for d in databases)
    assert project.databases("c") == {}  # every clone dropped at the end


def test_200_tests_under_qk_tx_see_no_leaks(
    project: Project, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = run_generated(pytester, monkeypatch, "qk_tx")
    assert len({d for _, d, _ in rows}) == 1  # one database, isolated by rollbacks
    assert project.databases("c") == {}


def test_200_tests_under_xdist_collide_nowhere(
    project: Project, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = run_generated(pytester, monkeypatch, "qk_db", "-n", "2")
    by_worker = collections.Counter(w for w, _, _ in rows)
    assert set(by_worker) == {"gw0", "gw1"}
    databases = [d for _, d, _ in rows]
    assert len(set(databases)) == 200
    assert all(f"_{w}_" in d for w, d, _ in rows)  # clone names carry the worker id
    assert len(project.databases("t")) == 1  # one template, built under the file lock
    assert project.databases("c") == {}


def test_a_commit_under_qk_tx_fails_the_test_naming_qk_db(
    project: Project, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from querykit import DatabaseError, raw

        def test_commits(qk_tx):
            qk_tx.execute(raw("INSERT INTO item (id, name) VALUES (1, 'kept')"))
            qk_tx.execute(raw("COMMIT"))

        def test_next_one_starts_clean(qk_tx):
            assert qk_tx.scalar(raw("SELECT count(*) FROM item")) == 0

        def test_commits_and_begins_again(qk_tx):
            qk_tx.execute(raw("INSERT INTO item (id, name) VALUES (2, 'kept too')"))
            qk_tx.execute(raw("COMMIT"))
            qk_tx.execute(raw("BEGIN"))

        def test_a_caught_error_is_not_a_commit(qk_tx):
            qk_tx.execute(raw("INSERT INTO item (id, name) VALUES (3, 'rolled back')"))
            with pytest.raises(DatabaseError):
                qk_tx.execute(raw("SELECT 1 / 0"))

        def test_the_last_one_starts_clean_too(qk_tx):
            assert qk_tx.scalar(raw("SELECT count(*) FROM item")) == 0
        """
    )
    report = pytester.path / "report.xml"
    outcome = pytester.runpytest("-p", "no:cacheprovider", f"--junitxml={report}")
    outcome.assert_outcomes(passed=3, failed=2)
    messages = failure_messages(report)
    assert set(messages) == {"test_commits", "test_commits_and_begins_again"}
    for message in messages.values():
        assert "qk_tx: the test ended the fixture's transaction" in message
        assert "Use the qk_db fixture" in message


def test_a_deferred_foreign_key_violation_fails_under_qk_tx(
    project: Project, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        """
        from querykit import raw

        def test_dangling_tag(qk_tx):
            qk_tx.execute(raw("INSERT INTO tag (item_id, label) VALUES (42, 'orphan')"))

        def test_tag_with_its_item(qk_tx):
            qk_tx.execute(raw("INSERT INTO tag (item_id, label) VALUES (42, 'fine')"))
            qk_tx.execute(raw("INSERT INTO item (id, name) VALUES (42, 'late')"))
        """
    )
    outcome = pytester.runpytest("-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=1, failed=1)
    outcome.stdout.fnmatch_lines(
        ["*test_dangling_tag*", "*a deferred constraint does not hold*tag_item_id_fkey*"]
    )


def test_qk_tx_prepares_no_statement_a_rollback_would_throw_away(
    project: Project, pytester: pytest.Pytester
) -> None:
    # Every qk_tx test ends in a rollback, which drops the connection's prepared
    # statements (DEALLOCATE ALL): the pinned connection prepares none, so a statement
    # repeated across tests costs no prepare and no DEALLOCATE round trip.
    pytester.makepyfile(
        """
        import pytest
        from querykit import raw

        @pytest.mark.parametrize("n", range(3))
        def test_repeats(qk_tx, n):
            for i in range(3):
                qk_tx.execute(raw("INSERT INTO item (id, name) VALUES (:id, 'x')", id=10 * n + i))
            assert qk_tx.scalar(raw("SELECT count(*) FROM item")) == 3
            assert qk_tx.scalar(raw("SELECT count(*) FROM pg_prepared_statements")) == 0
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)


def test_what_qk_tx_cannot_isolate_fails_loudly(
    project: Project, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        """
        import threading

        import pytest
        from querykit import load_settings, migrate, raw

        def test_concurrently(qk_tx):
            qk_tx.execute(raw("CREATE INDEX CONCURRENTLY item_name_idx ON item (name)"))

        def test_second_pooled_connection(qk_tx):
            errors = []
            def other_thread():
                try:
                    qk_tx.scalar(raw("SELECT 1"))
                except Exception as exc:
                    errors.append(exc)
            thread = threading.Thread(target=other_thread)
            thread.start()
            thread.join()
            raise errors[0]

        def test_migrations(qk_tx, qk_url):
            migrate.up(load_settings(database_url=qk_url))

        @pytest.mark.qk_migrations(upto="0001")
        def test_marker(qk_tx):
            pass

        def test_savepoints_are_fine(qk_tx):
            with qk_tx.transaction():
                qk_tx.execute(raw("INSERT INTO item (id, name) VALUES (1, 'a')"))
            assert qk_tx.scalar(raw("SELECT count(*) FROM item")) == 1
        """
    )
    report = pytester.path / "report.xml"
    outcome = pytester.runpytest("-p", "no:cacheprovider", f"--junitxml={report}")
    outcome.assert_outcomes(passed=1, failed=3, errors=1)
    messages = failure_messages(report)
    assert set(messages) == {"test_concurrently", "test_second_pooled_connection",
                             "test_migrations", "test_marker"}  # fmt: skip
    for test, message in messages.items():
        assert "IsolationError" in message or "qk_tx: a second connection" in message, test
        assert "use the qk_db fixture" in message.lower(), test
    assert "cannot run inside a transaction block" in messages["test_concurrently"]
    assert "application_name 'querykit migrate" in messages["test_migrations"]


def failure_messages(junit_xml: Path) -> dict[str, str]:
    """Each failed or erroring test's message, from pytest's JUnit XML report."""
    messages = {}
    for case in ElementTree.parse(junit_xml).getroot().iter("testcase"):
        for problem in (*case.iter("failure"), *case.iter("error")):
            messages[case.attrib["name"]] = problem.attrib.get("message", "")
    return messages


def test_the_template_is_cached_and_rebuilt_when_a_migration_changes(
    project: Project, pytester: pytest.Pytester
) -> None:
    # the session's template, as qk_db would clone it (without making clones here)
    pytester.makepyfile("def test_one(qk_session):\n    qk_session.template()\n")
    first = pytester.runpytest("-p", "no:cacheprovider")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["querykit: template qk_t_* built in *"])
    built = project.databases("t")
    assert len(built) == 1

    second = pytester.runpytest("-p", "no:cacheprovider")
    second.stdout.fnmatch_lines(["querykit: template qk_t_* reused from the cache in *"])
    assert project.databases("t") == built  # the same database: same name, same oid

    path = project.path / "migrations" / "0002_item_price.sql"
    path.write_text(path.read_text() + "CREATE INDEX item_price_idx ON item (price_cents);\n")
    third = pytester.runpytest("-p", "no:cacheprovider")
    third.stdout.fnmatch_lines(["querykit: template qk_t_* built in *"])
    rebuilt = project.databases("t")
    assert len(rebuilt) == 1 and rebuilt.keys() != built.keys()  # the old one is gone
    with psycopg.connect(project.server, autocommit=True) as conn:
        row = conn.execute(
            "SELECT datistemplate, datallowconn FROM pg_database WHERE datname = %s",
            [next(iter(rebuilt))],
        ).fetchone()
    assert row == (True, False)


def test_qk_migrations_gives_a_database_migrated_up_to_a_version(
    project: Project, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from querykit import load_settings, migrate, raw

        @pytest.mark.qk_migrations(upto="0002")
        def test_backfill(qk_db, qk_url):
            qk_db.execute(raw("INSERT INTO item (id, name) VALUES (1, 'four')"))
            assert qk_db.scalar(raw("SELECT price_cents FROM item")) is None
            done = migrate.up(load_settings(database_url=qk_url)).done
            assert [d.filename for d in done] == ["0003_backfill_price.sql"]
            assert qk_db.scalar(raw("SELECT price_cents FROM item")) == 400

        def test_fully_migrated(qk_db):
            versions = qk_db.scalars(raw("SELECT version FROM querykit_migrations ORDER BY 1"))
            assert [int(v) for v in versions] == [1, 2, 3]
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert len(project.databases("t")) == 2  # one per variant


def test_the_test_seed_fills_the_template_and_editing_it_rebuilds_it(
    project: Project, pytester: pytest.Pytester
) -> None:
    pyproject = project.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.querykit.testing]\nseed = "seeddata:load"\n'
    )
    seed = project.path / "seeddata.py"
    seed.write_text(
        "from querykit import raw\n\n"
        "def load(db):\n"
        "    db.execute(raw(\"INSERT INTO item (id, name) VALUES (7, 'seeded')\"))\n"
    )
    pytester.makepyfile(
        """
        from querykit import raw

        def test_seeded(qk_db):
            assert qk_db.all(raw("SELECT id, name FROM item")) == [(7, "seeded")]

        def test_seeded_under_qk_tx(qk_tx):
            assert qk_tx.scalar(raw("SELECT count(*) FROM item")) == 1
        """
    )
    first = pytester.runpytest("-p", "no:cacheprovider")
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(["querykit: template qk_t_* built in *"])
    seed.write_text(seed.read_text().replace("'seeded'", "'reseeded'"))
    second = pytester.runpytest("-p", "no:cacheprovider")
    second.assert_outcomes(passed=1, failed=1)  # the new seed is in the rebuilt template
    second.stdout.fnmatch_lines(["querykit: template qk_t_* built in *"])


def test_qk_async_db(project: Project, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from querykit import raw

        @pytest.mark.asyncio
        async def test_async(qk_async_db, qk_url):
            await qk_async_db.execute(raw("INSERT INTO item (id, name) VALUES (1, 'a')"))
            assert await qk_async_db.scalar(raw("SELECT current_database()")) in qk_url
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_crashed_workers_clones_are_dropped_by_the_next_run(
    project: Project, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(
        test_crash="""
        import os

        def test_crash(qk_db):
            os.kill(os.getpid(), 9)
        """
    )
    pytester.runpytest("-p", "no:cacheprovider", "-n", "1", "--max-worker-restart=0")
    left = project.databases("c")
    assert left  # the crashed worker's clones (the one in use and those made ahead)
    owners = {int(name.split("_")[4]) for name in left}
    for pid in owners:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the worker is gone

    pytester.makepyfile(test_crash="def test_fine(qk_db):\n    pass\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert project.databases("c") == {}


def test_the_plugin_is_off_without_tool_querykit_and_with_p_no_querykit(
    project: Project, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile("def test_one(qk_db):\n    pass\n")
    outcome = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:querykit")
    outcome.assert_outcomes(errors=1)
    outcome.stdout.fnmatch_lines(["*fixture 'qk_db' not found*"])
    (project.path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    outcome = pytester.runpytest("-p", "no:cacheprovider")
    outcome.assert_outcomes(errors=1)


def test_without_database_url_an_embedded_server_serves_the_run_and_stops(
    project: Project, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    roots = {scratch_root(), Path(tempfile.gettempdir())}
    before = {p for root in roots for p in root.glob("querykit-testing-*/")}
    pytester.makepyfile(
        f"""
        from querykit import raw

        def test_embedded(qk_db, qk_url):
            assert "127.0.0.1" in qk_url
            assert qk_db.scalar(raw("SELECT count(*) FROM item")) == 0
            # a throwaway server: test settings, its data on the RAM disk when there is one
            assert qk_db.scalar(raw("SHOW fsync")) == "off"
            assert qk_db.scalar(raw("SHOW full_page_writes")) == "off"
            data = qk_db.scalar(raw("SHOW data_directory"))
            assert data.startswith("{scratch_root()}/querykit-testing-"), data
        """
    )
    outcome = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=1)
    outcome.stdout.fnmatch_lines(["querykit: template qk_t_* built in *"])
    after = {p for root in roots for p in root.glob("querykit-testing-*/") if p.is_dir()}
    assert after <= before  # the run's server was stopped and its directory removed


def test_embedded_false_without_a_url_is_an_error_not_a_server(
    project: Project, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("QUERYKIT_EMBEDDED", "0")
    pytester.makepyfile("def test_one(qk_db):\n    pass\n")
    outcome = pytester.runpytest("-p", "no:cacheprovider")
    outcome.assert_outcomes(errors=1)
    outcome.stdout.fnmatch_lines(["*ConfigError: no database URL is configured*set DATABASE_URL*"])


ASYNC_TX_TESTS = """
import asyncio
import contextvars

import pytest
from querykit import DatabaseError, raw

pytestmark = pytest.mark.asyncio{loop}


@pytest.mark.parametrize("n", range(3))
async def test_rows_are_rolled_back(qk_async_tx, n):
    assert await qk_async_tx.scalar(raw("SELECT count(*) FROM item")) == 0
    async with qk_async_tx.transaction():  # a savepoint
        await qk_async_tx.execute(raw("INSERT INTO item (id, name) VALUES (:n, 'a')", n=n))
    assert await qk_async_tx.scalar(raw("SELECT count(*) FROM item")) == 1
    with open("pids.txt", "a") as out:
        out.write(f"{{await qk_async_tx.scalar(raw('SELECT pg_backend_pid()'))}}\\n")


async def test_commits(qk_async_tx):
    await qk_async_tx.execute(raw("INSERT INTO item (id, name) VALUES (1, 'kept')"))
    await qk_async_tx.execute(raw("COMMIT"))


async def test_after_the_commit_a_clean_database(qk_async_tx):
    assert await qk_async_tx.scalar(raw("SELECT count(*) FROM item")) == 0


async def test_dangling_tag(qk_async_tx):
    await qk_async_tx.execute(raw("INSERT INTO tag (item_id, label) VALUES (42, 'orphan')"))


async def test_second_connection(qk_async_tx):
    # a task outside the test's context is outside its transaction: it needs a connection
    await asyncio.create_task(qk_async_tx.scalar(raw("SELECT 1")), context=contextvars.Context())


async def test_concurrently(qk_async_tx):
    await qk_async_tx.execute(raw("CREATE INDEX CONCURRENTLY item_name_idx ON item (name)"))


async def test_caught_error(qk_async_tx):
    with pytest.raises(DatabaseError):
        await qk_async_tx.execute(raw("SELECT 1 / 0"))
"""


@pytest.mark.parametrize("loop", ["session", "function"])
def test_qk_async_tx_rolls_back_and_fails_loudly_like_qk_tx(
    project: Project, pytester: pytest.Pytester, loop: str
) -> None:
    """On the session's loop the pinned connection serves every test; on a loop of each
    test's own, each test connects; either way the checks of qk_tx hold."""
    pyproject = project.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'asyncio_default_fixture_loop_scope = "function"',
            f'asyncio_default_fixture_loop_scope = "{loop}"\n'
            f'asyncio_default_test_loop_scope = "{loop}"',
        )
    )
    pytester.makepyfile(ASYNC_TX_TESTS.format(loop=f'(loop_scope="{loop}")'))
    report = pytester.path / "report.xml"
    outcome = pytester.runpytest("-p", "no:cacheprovider", f"--junitxml={report}")
    outcome.assert_outcomes(passed=5, failed=4)
    messages = failure_messages(report)
    assert set(messages) == {"test_commits", "test_dangling_tag", "test_second_connection",
                             "test_concurrently"}  # fmt: skip
    for test, message in messages.items():
        assert "use the qk_db fixture" in message.lower() or "deferred" in message, test
    assert "the test ended the fixture's transaction" in messages["test_commits"]
    assert "a deferred constraint does not hold" in messages["test_dangling_tag"]
    assert "qk_tx: a second connection" in messages["test_second_connection"]
    pids = (pytester.path / "pids.txt").read_text().split()
    assert len(set(pids)) == (1 if loop == "session" else 3)  # one pinned connection per loop
    assert project.databases("c") == {}
