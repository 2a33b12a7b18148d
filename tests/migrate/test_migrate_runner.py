"""The library API on real PostgreSQL: order, refusals, errors, transactions, timeouts, ledger."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from migrate_helpers import Write, ledger, table_exists

from querykit import Settings, migrate
from querykit.errors import (
    ConfigError,
    LockTimeout,
    MigrationFailed,
    MigrationFileError,
    MigrationRefused,
)
from querykit.migrate import Progress, load_migration
from querykit.migrate.ledger import parse_table_name
from querykit.migrate.lock import MigrationLock, check_same_backend, lock_key

Conn = psycopg.Connection[tuple[object, ...]]


def three_files(write: Write) -> None:
    write(
        "0001_create_log.sql",
        """
        CREATE TABLE log (version int, at timestamptz DEFAULT clock_timestamp());
        INSERT INTO log (version) VALUES (1);
        -- querykit:down
        DROP TABLE log;
        """,
    )
    write(
        "0002_two.sql",
        "INSERT INTO log (version) VALUES (2);\n-- querykit:down\nDELETE FROM log WHERE version = 2;\n",
    )
    write(
        "0010_ten.sql",
        "INSERT INTO log (version) VALUES (10);\n-- querykit:down\nDELETE FROM log WHERE version = 10;\n",
    )


# -- order ----------------------------------------------------------------------------


def test_files_apply_in_version_order_and_are_recorded(
    write: Write, settings: Settings, db: Conn
) -> None:
    three_files(write)
    result = migrate.up(settings)
    assert [d.filename for d in result.done] == [
        "0001_create_log.sql",
        "0002_two.sql",
        "0010_ten.sql",
    ]
    assert db.execute("SELECT version FROM log ORDER BY at").fetchall() == [(1,), (2,), (10,)]
    assert ledger(db) == [
        (1, "0001_create_log.sql", "transaction", 2, True),
        (2, "0002_two.sql", "transaction", 1, True),
        (10, "0010_ten.sql", "transaction", 1, True),
    ]
    row = db.execute(
        "SELECT checksum, applied_by = current_user, duration_ms >= 0, applied_at <= now() "
        "FROM public.querykit_migrations WHERE version = '1'"
    ).fetchone()
    assert row is not None and len(str(row[0])) == 64 and row[1:] == (True, True, True)
    assert migrate.up(settings).nothing_to_do


def test_up_to_stops_at_that_version(write: Write, settings: Settings, db: Conn) -> None:
    three_files(write)
    assert [d.version for d in migrate.up(settings, to="0002").done] == [1, 2]
    assert [r[0] for r in ledger(db)] == [1, 2]
    with pytest.raises(ConfigError, match="--to 7: no migration has version 7"):
        migrate.up(settings, to=7)
    assert [d.version for d in migrate.up(settings, to="0010_ten.sql").done] == [10]


# -- refusals ----------------------------------------------------------------------------


def test_an_edited_applied_file_is_refused_by_name(
    write: Write, settings: Settings, db: Conn
) -> None:
    three_files(write)
    migrate.up(settings, to=2)
    write("0002_two.sql", "INSERT INTO log (version) VALUES (22);\n")
    with pytest.raises(MigrationRefused) as caught:
        migrate.up(settings)
    message = str(caught.value)
    assert "0002_two.sql" in message and "changed since they were applied" in message
    assert "0010" not in message
    assert [r[0] for r in ledger(db)] == [1, 2]  # 0010 was not applied either
    with pytest.raises(MigrationRefused, match=r"0002_two\.sql"):
        migrate.verify(settings)


def test_a_missing_applied_file_is_refused_by_name(
    write: Write, settings: Settings, mig_dir: Path, db: Conn
) -> None:
    three_files(write)
    migrate.up(settings, to=2)
    (mig_dir / "0001_create_log.sql").unlink()
    with pytest.raises(MigrationRefused, match=r"missing from the directory: 0001_create_log.sql"):
        migrate.up(settings)
    assert [e.state for e in migrate.status(settings).entries] == ["missing", "applied", "pending"]
    assert [r[0] for r in ledger(db)] == [1, 2]


def test_out_of_order_is_refused_unless_allowed(write: Write, settings: Settings, db: Conn) -> None:
    three_files(write)
    migrate.up(settings)
    write("0005_late_branch.sql", "INSERT INTO log (version) VALUES (5);\n")
    with pytest.raises(
        MigrationRefused, match=r"out of order: .*0005_late_branch.sql is pending but 0010_ten.sql"
    ):
        migrate.up(settings)
    entry = next(e for e in migrate.status(settings).entries if e.version == 5)
    assert entry.state == "pending" and entry.out_of_order
    done = migrate.up(settings, allow_out_of_order=True).done
    assert [d.version for d in done] == [5]
    assert [r[0] for r in ledger(db)] == [1, 2, 5, 10]


def test_a_mixed_file_is_refused_with_the_reason(
    write: Write, settings: Settings, db: Conn
) -> None:
    write("0001_mixed.sql", "CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n")
    with pytest.raises(
        MigrationRefused,
        match=r"0001_mixed.sql:2: CREATE INDEX CONCURRENTLY cannot run inside a transaction",
    ):
        migrate.up(settings)
    assert not table_exists(db, "t")


# -- errors ----------------------------------------------------------------------------


def test_a_syntax_error_gives_file_line_and_nothing_is_applied(
    write: Write, settings: Settings, db: Conn
) -> None:
    write("0001_ok.sql", "CREATE TABLE fine (id int);\n")
    write("0002_typo.sql", "CREATE TABLE other (id int);\n\nINSERT INTO other VALUES (1)),\n")
    with pytest.raises(MigrationFileError, match=r"0002_typo.sql:3:29: syntax error at or near"):
        migrate.up(settings)
    assert not table_exists(db, "fine")  # files are all parsed before anything runs
    assert not table_exists(db, "public.querykit_migrations")


def test_a_failing_statement_reports_file_line_column_sqlstate_and_rolls_back(
    write: Write, settings: Settings, db: Conn
) -> None:
    write("0001_ok.sql", "CREATE TABLE fine (id int);\n")
    write(
        "0002_bad.sql",
        """
        CREATE TABLE half (id int);
        INSERT INTO half VALUES (1);
        INSERT INTO half (id)
            VALUES (2), (no_such_column);
        """,
    )
    with pytest.raises(MigrationFailed) as caught:
        migrate.up(settings)
    exc = caught.value
    message = str(exc)
    assert message.startswith(
        f'{exc.path}:4:18: ERROR 42703: column "no_such_column" does not exist'
    )
    assert exc.sqlstate == "42703" and exc.line == 4 and exc.path is not None
    assert (
        "in statement 3 of 3 (up part): INSERT INTO half (id) VALUES (2), (no_such_column)"
        in message
    )
    assert "nothing of this file was applied" in message
    assert table_exists(db, "fine") and not table_exists(db, "half")
    assert [r[0] for r in ledger(db)] == [1]


def test_an_error_inside_a_do_block_maps_to_the_file_line(write: Write, settings: Settings) -> None:
    write(
        "0001_do.sql",
        """
        CREATE TABLE t (id int);
        DO $$
        DECLARE
          n int;
        BEGIN
          SELECT count(*) INTO n FROM t;
          RAISE EXCEPTION 'found % rows', n;
        END
        $$;
        """,
    )
    with pytest.raises(MigrationFailed, match=r"0001_do.sql:7:1: ERROR P0001: found 0 rows"):
        migrate.up(settings)


def test_dollar_quoted_plpgsql_functions_and_do_blocks_apply(
    write: Write, settings: Settings, db: Conn
) -> None:
    write(
        "0001_functions.sql",
        """
        CREATE TABLE item (id int PRIMARY KEY, name text);
        CREATE FUNCTION item_name_lower() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          -- semicolons; and 'quotes' inside the body
          NEW.name := lower(NEW.name);
          RETURN NEW;
        END
        $fn$;
        CREATE TRIGGER item_lower BEFORE INSERT ON item
            FOR EACH ROW EXECUTE FUNCTION item_name_lower();
        DO $$
        BEGIN
          INSERT INTO item VALUES (1, 'MiXeD; -- not a comment');
        END $$;
        CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE
            RETURN a + b;
        """,
    )
    migrate.up(settings)
    assert db.execute("SELECT name FROM item").fetchall() == [("mixed; -- not a comment",)]
    assert db.execute("SELECT add(2, 3)").fetchone() == (5,)


# -- non-transactional files ----------------------------------------------------------


def test_create_index_concurrently_runs_outside_a_transaction(
    write: Write, settings: Settings, db: Conn
) -> None:
    write(
        "0001_table.sql", "CREATE TABLE t (a int);\nINSERT INTO t SELECT generate_series(1, 100);\n"
    )
    write(
        "0002_index.sql",
        "CREATE INDEX CONCURRENTLY t_a ON t (a);\n-- querykit:down\nDROP INDEX CONCURRENTLY t_a;\n",
    )
    result = migrate.up(settings)
    assert [d.transactional for d in result.done] == [True, False]
    assert db.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a'::regclass"
    ).fetchone() == (True,)
    assert ledger(db)[1] == (2, "0002_index.sql", "no-transaction", 1, True)
    migrate.down(settings)
    assert not table_exists(db, "t_a")


def test_a_failed_concurrent_index_is_dropped_before_the_retry(
    write: Write, settings: Settings, db: Conn
) -> None:
    write("0001_table.sql", "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1), (1), (2);\n")
    write(
        "0002_unique.sql",
        """
        -- querykit:no-transaction
        CREATE TABLE audit (note text);
        CREATE UNIQUE INDEX CONCURRENTLY t_a_key ON t (a);
        INSERT INTO audit VALUES ('after the index');
        """,
    )
    with pytest.raises(MigrationFailed) as caught:
        migrate.up(settings)
    assert caught.value.sqlstate == "23505"
    assert "statements 1 to 1 are applied" in str(caught.value)
    assert db.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a_key'::regclass"
    ).fetchone() == (False,)
    entry = migrate.status(settings).entries[1]
    assert entry.state == "failed" and entry.row is not None and entry.row.statements_done == 1

    with pytest.raises(
        MigrationRefused, match=r"0002_unique.sql failed at statement 2 of 3.*migrate repair"
    ):
        migrate.up(settings)

    db.execute("DELETE FROM t WHERE ctid = (SELECT min(ctid) FROM t WHERE a = 1)")  # the fix
    repaired = migrate.repair(settings)
    assert repaired.resumable == ("0002_unique.sql",)
    events: list[Progress] = []
    result = migrate.up(settings, on_progress=events.append)
    assert result.done[0].resumed_at == 2 and result.done[0].statements == 2
    assert any("dropped the INVALID index t_a_key" in e.message for e in events)
    assert db.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_a_key'::regclass"
    ).fetchone() == (True,)
    assert db.execute("SELECT count(*) FROM audit").fetchone() == (1,)  # statement 1 ran once
    assert ledger(db)[1] == (2, "0002_unique.sql", "no-transaction", 3, True)


# -- timeouts and the lock ----------------------------------------------------------------


def test_lock_timeout_makes_a_blocked_ddl_fail_fast(
    write: Write, settings: Settings, db: Conn, database_url: str
) -> None:
    db.execute("CREATE TABLE busy (id int)")
    write("0001_alter.sql", "CREATE TABLE side (id int);\nALTER TABLE busy ADD COLUMN note text;\n")
    with psycopg.connect(database_url) as blocker:
        blocker.execute("SELECT * FROM busy")  # holds ACCESS SHARE until rollback
        with pytest.raises(MigrationFailed) as caught:
            migrate.up(settings, lock_timeout=0.2)
        blocker.rollback()
    assert caught.value.sqlstate == "55P03"
    assert "0001_alter.sql:2:1: ERROR 55P03: canceling statement due to lock timeout" in str(
        caught.value
    )
    assert "--lock-retries" in str(caught.value)
    assert not table_exists(db, "side")


def test_lock_retries_retry_the_file_after_55p03(
    write: Write, settings: Settings, db: Conn, database_url: str
) -> None:
    db.execute("CREATE TABLE busy (id int)")
    write("0001_alter.sql", "ALTER TABLE busy ADD COLUMN note text;\n")
    blocker = psycopg.connect(database_url)
    blocker.execute("SELECT * FROM busy")
    released = threading.Event()

    def on_progress(event: Progress) -> None:
        if event.event == "retry" and not released.is_set():
            blocker.rollback()  # the blocker goes away while the runner waits to retry
            released.set()

    try:
        result = migrate.up(settings, lock_timeout=0.2, lock_retries=3, on_progress=on_progress)
    finally:
        blocker.close()
    assert released.is_set() and result.done[0].retries == 1
    assert db.execute(
        "SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'"
    ).fetchone() == (1,)


def test_a_second_runner_waits_for_the_lock_then_gives_up(
    write: Write, settings: Settings, database_url: str
) -> None:
    write("0001_a.sql", "SELECT 1;\n")
    with psycopg.connect(database_url, autocommit=True, application_name="other runner") as holder:
        holder.execute(
            "SELECT pg_advisory_lock(%s)",
            (lock_key(parse_table_name("public.querykit_migrations")),),
        )
        events: list[Progress] = []
        with pytest.raises(
            LockTimeout,
            match=r"'other runner' \(pid \d+.*holds the migration lock of public.querykit_migrations.*--lock-wait",
        ):
            migrate.up(settings, lock_wait=0.3, on_progress=events.append)
        assert [e.event for e in events] == ["waiting"]
    assert [d.filename for d in migrate.up(settings, lock_wait=0.3).done] == ["0001_a.sql"]


def test_ledgers_in_other_schemas_have_their_own_lock(
    write: Write, settings: Settings, db: Conn, database_url: str
) -> None:
    write("0001_a.sql", "CREATE TABLE a (id int);\n")
    other = settings.with_overrides(migrations_table="ops.Ledger")
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute(
            "SELECT pg_advisory_lock(%s)",
            (lock_key(parse_table_name("public.querykit_migrations")),),
        )
        migrate.up(other, lock_wait=0.1)
    assert db.execute("SELECT version, name FROM ops.ledger").fetchall() == [("1", "0001_a.sql")]
    assert not table_exists(db, "public.querykit_migrations")


def test_pooler_detection_refuses_when_the_backend_changes(database_url: str) -> None:
    table = parse_table_name("public.querykit_migrations")
    with MigrationLock(database_url, table, wait=1) as lock:
        assert lock.conn is not None
        lock.ensure_held()  # same backend, lock held: fine
        check_same_backend(lock.conn, lock.pid, lock.key)
        # A transaction-mode pooler would answer the next statement from another
        # backend; a second real connection is exactly that other backend.
        with (
            psycopg.connect(database_url, autocommit=True) as elsewhere,
            pytest.raises(MigrationRefused) as caught,
        ):
            check_same_backend(elsewhere, lock.pid, lock.key)
    message = str(caught.value)
    assert f"pid {lock.pid}, then" in message
    assert "use a direct connection (not a transaction-mode pooler such as PgBouncer)" in message


def test_a_released_lock_is_noticed_before_the_next_file(database_url: str) -> None:
    table = parse_table_name("public.querykit_migrations")
    with MigrationLock(database_url, table, wait=1) as lock:
        assert lock.conn is not None
        lock.conn.execute("SELECT pg_advisory_unlock_all()")
        with pytest.raises(MigrationFailed, match="no longer holds the migration lock"):
            lock.ensure_held()


# -- baseline, verify, down, repair, dry run -------------------------------------------


def test_baseline_marks_files_applied_without_running_them(
    write: Write, settings: Settings, db: Conn
) -> None:
    db.execute("CREATE TABLE log (version int, at timestamptz DEFAULT clock_timestamp())")
    three_files(write)
    result = migrate.baseline("0002", settings)
    assert result.marked == ("0001_create_log.sql", "0002_two.sql")
    assert db.execute("SELECT count(*) FROM log").fetchone() == (0,)
    assert [(r[0], r[2]) for r in ledger(db)] == [(1, "baseline"), (2, "baseline")]
    assert [d.version for d in migrate.up(settings).done] == [10]
    assert db.execute("SELECT version FROM log").fetchall() == [(10,)]
    with pytest.raises(MigrationRefused, match="already has 3 row"):
        migrate.baseline(10, settings)
    stopped = migrate.down(settings, to=0)  # reverts 10, then stops at the baseline
    assert [d.version for d in stopped.done] == [10]
    assert stopped.stopped_at_baseline == "0002_two.sql"
    assert db.execute("SELECT count(*) FROM log").fetchone() == (0,)
    with pytest.raises(MigrationRefused, match="marked applied by querykit migrate baseline"):
        migrate.down(settings)  # the latest is the baseline itself


def test_verify_passes_when_files_match(write: Write, settings: Settings) -> None:
    three_files(write)
    migrate.up(settings)
    report = migrate.verify(settings)
    assert report.verified and report.counts()["applied"] == 3


def test_down_reverts_the_latest_or_down_to_a_version(
    write: Write, settings: Settings, db: Conn
) -> None:
    three_files(write)
    migrate.up(settings)
    assert [d.version for d in migrate.down(settings).done] == [10]
    assert [r[0] for r in ledger(db)] == [1, 2]
    assert db.execute("SELECT version FROM log ORDER BY version").fetchall() == [(1,), (2,)]
    assert [d.version for d in migrate.down(settings, to=0).done] == [2, 1]
    assert not table_exists(db, "log") and ledger(db) == []
    assert migrate.down(settings).nothing_to_do
    assert [d.version for d in migrate.up(settings).done] == [1, 2, 10]


def test_down_refuses_a_file_without_a_down_part(
    write: Write, settings: Settings, db: Conn
) -> None:
    write("0001_a.sql", "CREATE TABLE a (id int);\n-- querykit:down\nDROP TABLE a;\n")
    write("0002_b.sql", "CREATE TABLE b (id int);\n")
    migrate.up(settings)
    with pytest.raises(
        MigrationRefused,
        match=r"0002_b\.sql has no down part with statements \(a '-- querykit:down' section",
    ):
        migrate.down(settings, to=0)
    assert table_exists(db, "a") and table_exists(db, "b")  # refused before reverting anything


def test_a_failing_down_part_rolls_back_and_the_file_stays_applied(
    write: Write, settings: Settings, db: Conn
) -> None:
    write(
        "0001_a.sql",
        "CREATE TABLE a (id int);\n-- querykit:down\nDROP TABLE a;\nDROP TABLE nope;\n",
    )
    migrate.up(settings)
    with pytest.raises(
        MigrationFailed, match=r"0001_a.sql:4:1: ERROR 42P01.*the file stays applied"
    ):
        migrate.down(settings)
    assert table_exists(db, "a") and [r[0] for r in ledger(db)] == [1]


def test_dry_run_prints_the_plan_and_changes_nothing(
    write: Write, settings: Settings, db: Conn
) -> None:
    three_files(write)
    write(
        "0011_index.sql",
        "CREATE INDEX CONCURRENTLY log_v ON log (version);\n-- querykit:down\nDROP INDEX log_v;\n",
    )
    result = migrate.up(settings, dry_run=True, lock_timeout=2)
    assert result.dry_run and not result.done and len(result.steps) == 4
    script = result.sql()
    assert (
        "-- 0001_create_log.sql: one transaction, 2 statement(s)\n"
        "SET lock_timeout = '2000ms';\nBEGIN;\nCREATE TABLE log" in script
    )
    assert "-- 0011_index.sql: no transaction, statement by statement" in script
    assert "CREATE INDEX CONCURRENTLY log_v ON log (version);" in script
    assert not table_exists(db, "log") and not table_exists(db, "public.querykit_migrations")

    migrate.up(settings)
    down_plan = migrate.down(settings, to=1, dry_run=True)
    assert [s.migration.version for s in down_plan.steps] == [11, 10, 2]
    assert "DELETE FROM log WHERE version = 10;" in down_plan.sql()
    assert [r[0] for r in ledger(db)] == [1, 2, 10, 11]


def test_repair_accepts_changed_and_forgets_missing_files(
    write: Write, settings: Settings, mig_dir: Path
) -> None:
    three_files(write)
    migrate.up(settings)
    write("0002_two.sql", "-- reformatted\nINSERT INTO log (version) VALUES (2);\n")
    (mig_dir / "0010_ten.sql").unlink()
    untouched = migrate.repair(settings)
    assert untouched.nothing_to_do and len(untouched.untouched) == 2
    result = migrate.repair(settings, accept_changed=True, forget_missing=True)
    assert result.accepted == ("0002_two.sql",) and result.forgotten == ("0010_ten.sql",)
    assert migrate.verify(settings).verified


def test_new_creates_the_next_file_in_the_settings_directory(
    settings: Settings, mig_dir: Path
) -> None:
    assert migrate.new("add users", settings) == mig_dir / "0001_add_users.sql"
    assert migrate.new("add posts", settings) == mig_dir / "0002_add_posts.sql"


def test_a_table_that_is_not_a_ledger_is_reported(
    write: Write, settings: Settings, db: Conn
) -> None:
    db.execute("CREATE TABLE querykit_migrations (id int)")
    write("0001_a.sql", "SELECT 1;\n")
    with pytest.raises(Exception, match="exists but is not a querykit migration ledger"):
        migrate.status(settings)


def test_a_read_only_database_is_one_clear_error(
    write: Write, settings: Settings, db: Conn
) -> None:
    name = db.execute("SELECT current_database()").fetchone()
    assert name is not None
    db.execute(f'ALTER DATABASE "{name[0]}" SET default_transaction_read_only = on')
    write("0001_a.sql", "CREATE TABLE a (id int);\n")
    with pytest.raises(MigrationFailed) as caught:
        migrate.up(settings)
    assert caught.value.sqlstate == "25006"
    assert "read-only transaction" in str(caught.value)
    assert "the ledger public.querykit_migrations" in str(caught.value)


def test_a_no_transaction_file_failing_at_its_first_statement_stays_pending(
    write: Write, settings: Settings, db: Conn
) -> None:
    write("0001_table.sql", "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1), (1);\n")
    write("0002_unique.sql", "CREATE UNIQUE INDEX CONCURRENTLY t_a_key ON t (a);\n")
    with pytest.raises(MigrationFailed, match="left the INVALID index t_a_key behind"):
        migrate.up(settings)
    assert [e.state for e in migrate.status(settings).entries] == ["applied", "pending"]
    db.execute("TRUNCATE t")
    events: list[Progress] = []
    assert [d.version for d in migrate.up(settings, on_progress=events.append).done] == [2]
    assert any("dropped the INVALID index t_a_key" in e.message for e in events)


def test_a_repaired_file_resumes_with_its_edited_content(
    write: Write, settings: Settings, db: Conn
) -> None:
    write("0001_table.sql", "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1), (1);\n")
    write(
        "0002_steps.sql",
        "CREATE TABLE u (a int);\nCREATE UNIQUE INDEX CONCURRENTLY t_a ON t (a);\n"
        "-- querykit:no-transaction\n",
    )
    with pytest.raises(MigrationFailed, match="statements 1 to 1 are applied"):
        migrate.up(settings)
    # The person decides a plain index is enough: drops the INVALID one the failed
    # CONCURRENTLY left, edits the file, and repairs.
    db.execute("DROP INDEX t_a")
    write("0002_steps.sql", "CREATE TABLE u (a int);\nCREATE INDEX t_a ON t (a);\n")
    with pytest.raises(MigrationRefused, match="failed at statement 2 of 2"):
        migrate.up(settings)
    assert migrate.repair(settings).resumable == ("0002_steps.sql",)
    done = migrate.up(settings).done
    assert [(d.version.text, d.resumed_at, d.transactional) for d in done] == [("2", 2, False)]
    assert ledger(db)[1] == (2, "0002_steps.sql", "no-transaction", 2, True)
    assert migrate.verify(settings).verified


def test_a_lock_lost_mid_run_rolls_back_the_file_it_was_lost_in(
    write: Write, settings: Settings, db: Conn
) -> None:
    """A transactional file's ledger write checks the lock in the same statement: the
    file during which the lock went away is rolled back, and nothing after it runs,
    although the runner had already sent the files after it (they are pipelined)."""
    for n in (1, 2, 3):
        write(f"000{n}_t{n}.sql", f"CREATE TABLE lost_{n} (id int);\n")
    # The second file ends the lock's connection itself, while it runs: an INSERT keeps
    # the session, so the third file is in the same pipeline, sent before the second ran.
    write(
        "0002_t2.sql",
        "CREATE TABLE lost_2 (id int);\n"
        "INSERT INTO lost_2 SELECT pid FROM pg_stat_activity WHERE application_name LIKE "
        "'querykit migrate lock%' AND pg_terminate_backend(pid, 5000);\n",
    )
    assert all(s.keeps_session for s in load_migration(settings.migrations / "0002_t2.sql").up)

    with pytest.raises(MigrationFailed, match="no longer holds the migration lock") as caught:
        migrate.up(settings)
    assert "this file was rolled back and nothing after it ran" in str(caught.value)
    assert [row[1] for row in ledger(db)] == ["0001_t1.sql"]
    assert [table_exists(db, f"lost_{n}") for n in (1, 2, 3)] == [True, False, False]
    write("0002_t2.sql", "CREATE TABLE lost_2 (id int);\n")
    assert [d.filename for d in migrate.up(settings).done] == ["0002_t2.sql", "0003_t3.sql"]


def test_a_deferred_constraint_failing_at_commit_leaves_nothing_applied(
    write: Write, settings: Settings, db: Conn
) -> None:
    """COMMIT is sent with the file's statements (one round trip); its failure is still
    reported as a COMMIT failure, and neither the file nor its ledger row is kept."""
    write("0001_ok.sql", "CREATE TABLE parent (id int PRIMARY KEY);\n")
    write(
        "0002_deferred.sql",
        "CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n"
        "INSERT INTO child VALUES (1);\n",
    )
    with pytest.raises(
        MigrationFailed, match=r"0002_deferred\.sql: COMMIT failed: 23503"
    ) as caught:
        migrate.up(settings)
    assert "nothing of this file was applied" in str(caught.value)
    assert [row[1] for row in ledger(db)] == ["0001_ok.sql"]
    assert not table_exists(db, "child")


def test_a_pipelined_run_stops_exactly_at_the_failing_file(
    write: Write, settings: Settings, db: Conn
) -> None:
    """Plain DDL files go through one pipeline, the next ones sent while one commits. A
    failure in the middle leaves the files before it applied and recorded, rolls it back,
    and the server skips the files already sent after it; the next run goes on from it.
    The live catalog and the ledger are the oracle."""
    from querykit.migrate.runner import PIPELINE_WINDOW

    total = PIPELINE_WINDOW + 4  # more files than are in flight at once
    bad = 3
    for n in range(1, total + 1):
        body = f"CREATE TABLE piped_{n} (id int PRIMARY KEY);\nINSERT INTO piped_{n} VALUES (1);\n"
        if n == bad:
            body += "INSERT INTO piped_3 VALUES (1);\n"  # 23505 in its third statement
        write(f"{n:04d}_piped_{n}.sql", body)
    events: list[tuple[str, str | None]] = []
    with pytest.raises(MigrationFailed, match=r"0003_piped_3\.sql:3:1: ERROR 23505") as caught:
        migrate.up(settings, on_progress=lambda e: events.append((e.event, e.filename)))
    assert "in statement 3 of 3" in str(caught.value)
    assert "nothing of this file was applied" in str(caught.value)
    assert [row[1] for row in ledger(db)] == ["0001_piped_1.sql", "0002_piped_2.sql"]
    exists = [table_exists(db, f"piped_{n}") for n in range(1, total + 1)]
    assert exists == [True, True] + [False] * (total - 2)
    assert events[-2:] == [("start", "0003_piped_3.sql"), ("failed", "0003_piped_3.sql")]

    write(f"{bad:04d}_piped_{bad}.sql", f"CREATE TABLE piped_{bad} (id int);\n")
    done = migrate.up(settings).done
    assert [d.filename for d in done] == [f"{n:04d}_piped_{n}.sql" for n in range(bad, total + 1)]
    assert all(d.transactional and d.statements >= 1 for d in done)
    assert all(table_exists(db, f"piped_{n}") for n in range(1, total + 1))
    rows = db.execute("SELECT count(*) FROM querykit_migrations WHERE success").fetchone()
    assert rows == (total,)


def test_up_applies_the_files_as_read_for_the_lint(
    write: Write, settings: Settings, db: Conn
) -> None:
    """``migrate up`` reads the directory once: the lint and the runner see the same files,
    so a file edited between the two is applied (and checksummed) as it was linted."""
    from querykit.migrate.lint import lint

    write("0001_read_once.sql", "CREATE TABLE read_once (id bigint);\n")
    files = migrate.read_migrations(settings)
    assert [m.filename for m in files] == ["0001_read_once.sql"]
    assert len(lint(settings, migrations=files).files) == 1  # pending: linted
    write("0001_read_once.sql", "CREATE TABLE read_twice (id bigint);\n")
    done = migrate.up(settings, migrations=files).done
    assert [d.filename for d in done] == ["0001_read_once.sql"]
    assert table_exists(db, "read_once") and not table_exists(db, "read_twice")
    [(checksum,)] = db.execute("SELECT checksum FROM querykit_migrations").fetchall()
    assert checksum == files[0].checksum
    assert migrate.status(settings).of("changed")  # the file on disk now differs: status says so


def test_a_connection_lost_in_a_pipelined_file_is_reported_at_that_file(
    write: Write, settings: Settings, db: Conn
) -> None:
    """The migration connection dies while a pipelined file runs (here the file ends its
    own backend): that file is reported, with file:line, and is neither applied nor
    recorded; the files before it stay applied, and the next run goes on from it."""
    write("0001_before.sql", "CREATE TABLE lost_conn_1 (id int);\n")
    write(
        "0002_dies.sql",
        "CREATE TABLE lost_conn_2 (id int);\nSELECT pg_terminate_backend(pg_backend_pid());\n",
    )
    write("0003_after.sql", "CREATE TABLE lost_conn_3 (id int);\n")
    with pytest.raises(MigrationFailed, match=r"0002_dies\.sql:2:") as caught:
        migrate.up(settings)
    assert "57P01" in str(caught.value), str(caught.value)
    assert [row[1] for row in ledger(db)] == ["0001_before.sql"]
    assert [table_exists(db, f"lost_conn_{n}") for n in (1, 2, 3)] == [True, False, False]
    write("0002_dies.sql", "CREATE TABLE lost_conn_2 (id int);\n")
    assert [d.filename for d in migrate.up(settings).done] == ["0002_dies.sql", "0003_after.sql"]
