"""A real PgBouncer in transaction mode, with its default settings, is refused.

Runs where the ``pgbouncer`` binary is installed (``make system-deps`` installs
Debian's). The detection must not depend on the pooler's settings: with the
default ``server_round_robin = 0`` a lone client keeps reaching the same
backend, so only the pid the connection announced at start gives it away.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from migrate_helpers import Write, popen_querykit

from querykit import Settings, migrate
from querykit.errors import MigrationRefused
from querykit.migrate.ledger import parse_table_name
from querykit.migrate.lock import lock_key
from tests.realservers import PGBOUNCER, pgbouncer

pytestmark = pytest.mark.skipif(PGBOUNCER is None, reason="pgbouncer is not installed")


@pytest.fixture(params=["defaults", "pool of 1", "round robin"])
def pooled_url(database_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """``database_url`` through a PgBouncer in transaction mode: its defaults, a pool of one
    server connection (eight runners share one backend), or round robin."""
    settings = {
        "defaults": "",
        "pool of 1": "default_pool_size = 1\n",
        # Round robin: each statement takes the longest-idle server connection.
        "round robin": "server_round_robin = 1\ndefault_pool_size = 4\n",
    }[request.param]
    with pgbouncer(database_url, settings) as url:
        # Warm the pool: server connections busy at once (as many as it has), then idle.
        clients = [psycopg.connect(url) for _ in range(1 if request.param == "pool of 1" else 3)]
        for c in clients:
            c.execute("SELECT 1")
        for c in clients:
            c.commit()
            c.close()
        yield url


def _advisory_locks(direct: psycopg.Connection[tuple[object, ...]]) -> object:
    key = lock_key(parse_table_name("public.querykit_migrations"))
    row = direct.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s::oid",
        (key & 0xFFFF_FFFF,),
    ).fetchone()
    return row[0] if row else None


def test_a_transaction_mode_pooler_is_refused_and_leaves_no_lock(
    pooled_url: str, write: Write, settings: Settings, database_url: str
) -> None:
    write("0001_a.sql", "CREATE TABLE a (id int);\n")
    write("0002_b.sql", "CREATE TABLE b (id int);\n")
    through_pooler = settings.with_overrides(database_url=pooled_url)
    with pytest.raises(MigrationRefused) as caught:
        migrate.up(through_pooler)
    message = str(caught.value)
    assert message.startswith("a connection pooler is between querykit and PostgreSQL")
    assert "nothing was locked or applied" in message and "direct connection" in message
    # Reading the ledger through the pooler still works: status, dry runs.
    for _ in range(6):
        assert migrate.status(through_pooler).counts()["pending"] == 2

    with psycopg.connect(database_url, autocommit=True) as direct:
        assert direct.execute("SELECT to_regclass('a')").fetchone() == (None,)
        assert _advisory_locks(direct) == 0  # refused before locking
    assert [d.filename for d in migrate.up(settings).done] == ["0001_a.sql", "0002_b.sql"]


def test_eight_runners_through_the_pooler_are_all_refused_with_one_message(
    pooled_url: str, write: Write, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    for n in range(1, 7):
        write(f"{n:04d}_t{n}.sql", f"CREATE TABLE t{n} (id int);\nSELECT pg_sleep(0.02);\n")
    args = ("migrate", "up", "--database-url", pooled_url, "--dir", str(settings.migrations))
    procs = [popen_querykit(*args, cwd=tmp_path) for _ in range(8)]
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        results.append((proc.returncode, err))
    assert [code for code, _ in results] == [3] * 8, results
    shapes = {re.sub(r"-?[0-9]+", "N", err) for _, err in results}
    assert len(shapes) == 1, shapes  # one message (only the pids differ)
    (shape,) = shapes
    assert shape.startswith("error: a connection pooler is between querykit and PostgreSQL")
    assert shape.count("\n") == 1  # one line
    with psycopg.connect(database_url, autocommit=True) as direct:
        tables = direct.execute("SELECT count(*) FROM pg_class WHERE relname ~ '^t[0-9]$'")
        assert tables.fetchone() == (0,)
        assert direct.execute("SELECT to_regclass('public.querykit_migrations')").fetchone() == (
            None,
        )
        assert _advisory_locks(direct) == 0
