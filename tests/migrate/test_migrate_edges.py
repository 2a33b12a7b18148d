"""The runner's hard edges (issue 14, section 3): each test failed on the runner before it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from migrate_helpers import Write, ledger, run_querykit, table_exists

from querykit import Settings, migrate
from querykit.errors import MigrationFailed, MigrationFileError, MigrationRefused
from querykit.migrate.files import new_migration

Conn = psycopg.Connection[tuple[object, ...]]


def cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    """``querykit migrate ARGS`` as a process, on the test's database and directory."""
    done = run_querykit(
        "migrate",
        *args,
        "--database-url",
        str(settings.database_url),
        "--dir",
        str(settings.migrations),
        cwd=settings.project_dir,
    )
    return done.returncode, done.stdout, done.stderr


# -- 1. exit codes -----------------------------------------------------------------------


def test_up_to_date_exits_0_and_says_so_and_exit_code_keeps_4(
    write: Write, settings: Settings
) -> None:
    write("0001_a.sql", "CREATE TABLE a (id int);\n-- querykit:down\nDROP TABLE a;\n")
    assert cli(settings, "up")[0] == 0
    code, out, _ = cli(settings, "up")
    assert (code, out) == (0, "nothing to apply: the database is up to date\n")
    code, out, _ = cli(settings, "up", "--json")
    assert code == 0 and json.loads(out)["nothing_to_do"] is True
    assert cli(settings, "up", "--exit-code", "-q")[:2] == (4, "")
    assert cli(settings, "repair")[0] == 0
    assert cli(settings, "repair", "--exit-code")[0] == 4
    assert cli(settings, "down", "--to", "0")[0] == 0
    assert cli(settings, "down")[0] == 0
    assert cli(settings, "down", "--exit-code")[0] == 4


# -- 3. resume after repair checks each applied statement -----------------------------------


def test_a_resume_refuses_when_an_applied_statement_was_edited(
    write: Write, settings: Settings, db: Conn
) -> None:
    path = write(
        "0001_idx.sql",
        """
        -- querykit:no-transaction
        CREATE TABLE t (a int);
        CREATE TABLE u (a int);
        INSERT INTO nowhere VALUES (1);
        CREATE TABLE v (a int);
        """,
    )
    with pytest.raises(MigrationFailed):
        migrate.up(settings)
    assert ledger(db) == [(1, "0001_idx.sql", "no-transaction", 2, False)]

    # The "fix" also edits statement 2, which already ran: resuming at 3 would skip it.
    path.write_text(
        "-- querykit:no-transaction\nCREATE TABLE t (a int);\nCREATE TABLE w (a int);\n"
        "CREATE TABLE nowhere (a int);\nCREATE TABLE v (a int);\n"
    )
    assert migrate.repair(settings).resumable == ("0001_idx.sql",)
    with pytest.raises(MigrationRefused) as caught:
        migrate.up(settings)
    message = str(caught.value)
    assert "0001_idx.sql:3: statement 2 of this partly applied file has changed" in message
    assert "CREATE TABLE w (a int)" in message
    assert not table_exists(db, "nowhere") and not table_exists(db, "v")

    # Restoring the applied statements and fixing only the failed one resumes.
    path.write_text(
        "-- querykit:no-transaction\nCREATE TABLE t (a int);\nCREATE TABLE u (a int);\n"
        "CREATE TABLE nowhere (a int);\nCREATE TABLE v (a int);\n"
    )
    migrate.repair(settings)
    done = migrate.up(settings).done
    assert [(d.filename, d.resumed_at) for d in done] == [("0001_idx.sql", 3)]
    assert table_exists(db, "v") and migrate.verify(settings).verified


def test_a_ledger_from_before_statement_hashes_is_upgraded_in_place(
    write: Write, settings: Settings, db: Conn
) -> None:
    """An earlier querykit's ledger: no statement_hashes, and versions as bigint."""
    write("0001_a.sql", "CREATE TABLE a (id int);\n")
    migrate.up(settings)
    db.execute("ALTER TABLE public.querykit_migrations DROP COLUMN statement_hashes")
    db.execute("ALTER TABLE public.querykit_migrations ALTER COLUMN version TYPE bigint "
               "USING version::bigint")  # fmt: skip
    assert migrate.status(settings).counts()["applied"] == 1  # reading needs no upgrade
    write("0002_b.sql", "-- querykit:no-transaction\nCREATE TABLE b (id int);\n")
    assert [d.version for d in migrate.up(settings).done] == [2]
    hashes = db.execute(
        "SELECT statement_hashes FROM public.querykit_migrations WHERE version = '2'"
    ).fetchone()
    assert hashes is not None and len(hashes[0]) == 1  # type: ignore[arg-type]
    assert db.execute(
        "SELECT atttypid::regtype::text FROM pg_attribute "
        "WHERE attrelid = 'public.querykit_migrations'::regclass AND attname = 'version'"
    ).fetchone() == ("text",)
    assert [row[:2] for row in ledger(db)] == [(1, "0001_a.sql"), (2, "0002_b.sql")]


# -- 4. a directory that does not exist -----------------------------------------------------


def test_a_missing_directory_is_an_error_naming_it(settings: Settings, tmp_path: Path) -> None:
    gone = settings.with_overrides(migrations=tmp_path / "migratoins")
    for command in (migrate.status, migrate.up):
        with pytest.raises(MigrationFileError, match=r"migratoins does not exist"):
            command(gone)
    code, _, err = cli(gone, "up")
    assert code == 2 and "migratoins does not exist" in err


# -- 5. an empty or unfilled file -------------------------------------------------------------


def test_status_reports_an_unfilled_file_and_up_refuses_only_it(
    write: Write, settings: Settings, db: Conn
) -> None:
    write("0001_a.sql", "CREATE TABLE a (id int);\n")
    template = new_migration(settings.migrations, "not yet")
    report = migrate.status(settings)
    assert [(e.filename, e.state) for e in report.entries] == [
        ("0001_a.sql", "pending"),
        (template.name, "pending"),
    ]
    assert report.entries[1].problem is not None
    assert "has no SQL statements" in report.entries[1].problem
    with pytest.raises(MigrationFileError, match=f"{template.name}: has no SQL statements"):
        migrate.up(settings)
    assert not table_exists(db, "a")
    assert [d.filename for d in migrate.up(settings, to="0001").done] == ["0001_a.sql"]
    code, out, _ = cli(settings, "status")
    assert code == 0 and "has no SQL statements" in out


# -- 6. each file starts from a clean session ------------------------------------------------


@pytest.fixture
def role(db: Conn) -> Iterator[str]:
    """A role the test's user may SET ROLE to, with no rights on the ledger."""
    name = f"qk_owner_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {name}")
    db.execute(f"GRANT {name} TO current_user")
    db.execute(f"GRANT CREATE ON SCHEMA public TO {name}")
    yield name
    db.execute(f"DROP OWNED BY {name}")
    db.execute(f"DROP ROLE {name}")


def test_session_settings_do_not_leak_into_the_next_file(
    write: Write, settings: Settings, db: Conn, role: str
) -> None:
    db.execute("CREATE SCHEMA other")
    write(
        "0001_settings.sql",
        f"SET search_path = other, public;\nSET timezone = 'Asia/Tokyo';\nSET ROLE {role};\n"
        "CREATE TABLE owned (id int);\n",
    )
    write(
        "0002_probe.sql",
        "CREATE TABLE probe AS SELECT current_setting('search_path') AS path, "
        "current_setting('TimeZone') AS tz, current_user::text AS who;\n",
    )
    write(
        "0003_local.sql",
        f"-- querykit:no-transaction\nSET ROLE {role};\nCREATE TABLE late (id int);\n"
        "CREATE TABLE later (id int);\n",
    )
    assert [d.version for d in migrate.up(settings).done] == [1, 2, 3]
    fresh = db.execute(
        "SELECT current_setting('search_path'), current_setting('TimeZone'), current_user::text"
    ).fetchone()
    assert db.execute("SELECT path, tz, who FROM public.probe").fetchone() == fresh
    assert db.execute("SELECT to_regclass('other.probe')").fetchone() == (None,)
    owners = db.execute(
        "SELECT relname, pg_get_userbyid(relowner) FROM pg_class "
        "WHERE relname IN ('owned', 'late', 'later') ORDER BY relname"
    ).fetchall()
    assert owners == [("late", role), ("later", role), ("owned", role)]
    assert [r[4] for r in ledger(db)] == [True, True, True]


def test_set_local_role_in_a_file_does_not_break_the_ledger_write(
    write: Write, settings: Settings, db: Conn, role: str
) -> None:
    write("0001_a.sql", f"SET LOCAL ROLE {role};\nCREATE TABLE a (id int);\n")
    assert [d.version for d in migrate.up(settings).done] == [1]
    assert ledger(db) == [(1, "0001_a.sql", "transaction", 2, True)]


# -- 7. messages ----------------------------------------------------------------------------


def test_a_failed_ledger_write_is_reported_as_one(
    write: Write, settings: Settings, db: Conn
) -> None:
    write("0001_a.sql", "CREATE TABLE a (id int);\n")
    migrate.up(settings)
    db.execute(
        "CREATE FUNCTION no_more() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the ledger is frozen'; END $$"
    )
    db.execute(
        "CREATE TRIGGER frozen BEFORE INSERT ON public.querykit_migrations "
        "FOR EACH ROW EXECUTE FUNCTION no_more()"
    )
    write("0002_b.sql", "CREATE TABLE b (id int);\n")
    with pytest.raises(MigrationFailed) as caught:
        migrate.up(settings)
    message = str(caught.value)
    assert "0002_b.sql: its statements ran, but recording it in the ledger" in message
    assert "the ledger is frozen" in message and "COMMIT" not in message
    assert not table_exists(db, "b")


def test_a_notice_does_not_split_the_progress_line(write: Write, settings: Settings) -> None:
    write(
        "0001_noisy.sql",
        "DO $$ BEGIN RAISE NOTICE 'hello'; RAISE WARNING 'careful'; END $$;\n",
    )
    code, _, err = cli(settings, "up", "-v")
    lines = err.splitlines()
    assert code == 0, err
    assert lines[0].startswith("applying 0001_noisy.sql ... ok (")
    assert lines[1:] == ["  NOTICE: hello", "  WARNING: careful"]


def test_an_invalid_index_left_behind_is_not_called_nothing_applied(
    write: Write, settings: Settings, db: Conn
) -> None:
    db.execute("CREATE TABLE t (a int); INSERT INTO t VALUES (1), (1)")
    write("0001_idx.sql", "CREATE UNIQUE INDEX CONCURRENTLY t_a ON t (a);\n")
    with pytest.raises(MigrationFailed) as caught:
        migrate.up(settings)
    message = str(caught.value)
    assert "nothing of this file was applied" not in message
    assert "left the INVALID index t_a behind" in message
    invalid = db.execute(
        "SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('t_a') AND NOT indisvalid"
    ).fetchone()
    assert invalid == (1,)


def test_the_refusal_of_a_failed_file_gives_its_advice_once(
    write: Write, settings: Settings
) -> None:
    write(
        "0001_a.sql",
        "-- querykit:no-transaction\nCREATE TABLE a (id int);\nINSERT INTO nowhere VALUES (1);\n",
    )
    with pytest.raises(MigrationFailed):
        migrate.up(settings)
    with pytest.raises(MigrationRefused) as caught:
        migrate.up(settings)
    message = str(caught.value)
    assert 'relation "nowhere" does not exist' in message
    assert message.count("querykit migrate repair") == 1
    assert message.count("resumes") == 1


def test_down_to_0_over_a_baseline_says_what_it_did(
    write: Write, settings: Settings, db: Conn
) -> None:
    db.execute("CREATE TABLE old (id int)")
    write("0001_old.sql", "CREATE TABLE old (id int);\n")
    write("0002_new.sql", "CREATE TABLE new (id int);\n-- querykit:down\nDROP TABLE new;\n")
    migrate.baseline("0001", settings)
    migrate.up(settings)
    code, out, err = cli(settings, "down", "--to", "0")
    assert code == 0, err
    assert out.splitlines() == [
        "reverted 1 migration(s)",
        "stopped at 0001_old.sql: it and the files before it were marked applied by querykit "
        "migrate baseline, never run by querykit, so down leaves them",
    ]
    assert not table_exists(db, "new") and table_exists(db, "old")
    assert [r[0] for r in ledger(db)] == [1]
