"""Discovering, naming, parsing and splitting migration files: no database needed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from migrate_helpers import Write

from querykit.errors import ConfigError, MigrationFileError
from querykit.migrate import Scheme, discover, load_migration
from querykit.migrate.files import new_migration, parse_migration
from querykit.migrate.ledger import LedgerTable, parse_table_name


def test_files_sort_by_version_number_not_by_name(write: Write, mig_dir: Path) -> None:
    write("10000_late.sql", "SELECT 3;")
    write("0002_b.sql", "SELECT 2;")
    write("0001_a.sql", "SELECT 1;")
    (mig_dir / "README.md").write_text("not a migration")
    (mig_dir / ".0003_editor_swap.sql").write_text("ignored: hidden")
    found = discover(mig_dir)
    assert [m.filename for m in found] == ["0001_a.sql", "0002_b.sql", "10000_late.sql"]
    assert [m.version for m in found] == [1, 2, 10000]
    assert {m.scheme for m in found} == {Scheme.SEQUENTIAL}


def test_a_missing_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match=r"migrations directory .*/nope does not exist"):
        discover(tmp_path / "nope")


def test_real_world_names_and_versions_are_accepted(write: Write, mig_dir: Path) -> None:
    """diesel's all-zero version, 60-63 "seconds", free-text names, any width of digits."""
    names = [
        "00000000000000_diesel_initial_setup.sql",
        "20191115182353_Add email notifications to crate owners.sql",
        "20200101120060_leap_second_like.sql",
        "20200101120063_sixty_three.sql",
        "1_init.sql",
        "0002_second.sql",
        "10_tenth.sql",
    ]
    for name in names:
        write(name, "SELECT 1;")
    found = discover(mig_dir)
    assert [m.version for m in found] == [
        0,
        1,
        2,
        10,
        20191115182353,
        20200101120060,
        20200101120063,
    ]
    assert found[4].name == "Add email notifications to crate owners"
    assert [m.scheme for m in found][:2] == [Scheme.TIMESTAMP, Scheme.SEQUENTIAL]


def test_every_bad_name_is_reported_at_once(write: Write, mig_dir: Path) -> None:
    for name in ["add_users.sql", "0001-add.sql", "0003_.sql", "V4__flyway.sql", "0005_ok.sql"]:
        write(name, "SELECT 1;")
    with pytest.raises(MigrationFileError) as caught:
        discover(mig_dir)
    message = str(caught.value)
    assert message.startswith("4 problem(s) with migration file names: ")
    for name in ["add_users.sql", "0001-add.sql", "0003_.sql", "V4__flyway.sql"]:
        assert f"{name}: not a migration file name; name migration files <version>_<name>.sql" in (
            message
        )
    assert "0005_ok.sql" not in message


def test_two_files_may_not_share_a_version(write: Write, mig_dir: Path) -> None:
    write("0001_a.sql", "SELECT 1;")
    write("1_b.sql", "SELECT 2;")
    write("0002_c.sql", "SELECT 3;")
    with pytest.raises(MigrationFileError, match=r"0001_a\.sql and 1_b\.sql share version 1"):
        discover(mig_dir)


def test_timestamp_scheme(write: Write, mig_dir: Path) -> None:
    write("20240101120000_a.sql", "SELECT 1;")
    write("20240102090000_b.sql", "SELECT 2;")
    found = discover(mig_dir)
    assert [m.scheme for m in found] == [Scheme.TIMESTAMP, Scheme.TIMESTAMP]
    assert found[1].version == 20240102090000


def test_split_handles_dollar_quotes_do_blocks_and_comments(write: Write) -> None:
    path = write(
        "0001_functions.sql",
        """
        -- a comment; with a semicolon
        CREATE TABLE t (id int, note text DEFAULT 'a;b -- not a comment');
        /* block; comment */
        CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$
        BEGIN
          -- querykit:down   (inside a function body: not a marker)
          RETURN 1;
        END
        $body$;
        DO $$ BEGIN PERFORM f(); END $$;
        SELECT $q$;$q$;;
        """,
    )
    m = load_migration(path)
    assert m.down is None
    assert [s.line for s in m.up] == [2, 4, 10, 11]
    assert m.up[0].text == "CREATE TABLE t (id int, note text DEFAULT 'a;b -- not a comment')"
    assert m.up[1].text.startswith("CREATE FUNCTION f()") and m.up[1].text.endswith("$body$")
    assert m.up[2].do_body_line == 10
    assert m.up[3].text == "SELECT $q$;$q$"
    assert m.up_transactional


def test_down_part_follows_the_marker_line(write: Write) -> None:
    m = load_migration(
        write(
            "0001_users.sql",
            """
            CREATE TABLE users (id int);
            CREATE INDEX users_id ON users (id);
            -- querykit:down
            DROP TABLE users;
            """,
        )
    )
    assert [s.text for s in m.up] == [
        "CREATE TABLE users (id int)",
        "CREATE INDEX users_id ON users (id)",
    ]
    assert m.down is not None and [(s.text, s.line) for s in m.down] == [("DROP TABLE users", 4)]


def test_an_empty_down_part_counts_as_none(write: Write) -> None:
    m = load_migration(write("0001_a.sql", "SELECT 1;\n-- querykit:down\n-- nothing yet\n"))
    assert m.down is None


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1;\n-- querykit:down\nSELECT 2;\n-- querykit:down\n", r"0001_a.sql:4: a second"),
        ("SELECT 1;\n-- querykit:no-transactions\n", r"0001_a.sql:2: unknown directive"),
        ("SELECT 1; -- querykit:down\nSELECT 2;\n", "must be on a line of its own"),
        ("-- only a comment\n", "has no SQL statements"),
        ("BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n", r"0001_a.sql:1:1: 'BEGIN' controls"),
    ],
)
def test_bad_file_content_is_an_error_with_the_line(write: Write, sql: str, expected: str) -> None:
    with pytest.raises(MigrationFileError, match=expected):
        load_migration(write("0001_a.sql", sql))


def test_syntax_error_names_file_line_and_column(write: Write) -> None:
    path = write("0003_typo.sql", "CREATE TABLE a (id int);\n\nSELECT id\n  FORM a;\n")
    with pytest.raises(MigrationFileError) as caught:
        load_migration(path)
    assert '0003_typo.sql:4:8: syntax error at or near "a"' in str(caught.value)
    assert caught.value.line == 4 and caught.value.path == str(path)


def test_syntax_error_in_the_down_part_maps_to_the_file_line(write: Write) -> None:
    path = write("0001_a.sql", "SELECT 1;\n-- querykit:down\nDROP TABLEE x;\n")
    with pytest.raises(MigrationFileError, match=r"0001_a.sql:3:6: syntax error"):
        load_migration(path)


def test_unterminated_dollar_quote_is_a_syntax_error(write: Write) -> None:
    with pytest.raises(MigrationFileError, match=r"0001_a.sql:2:4: unterminated dollar-quoted"):
        load_migration(write("0001_a.sql", "SELECT 1;\nDO $$ BEGIN\n"))


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX CONCURRENTLY"),
        ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)", "CREATE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
        ("REINDEX (CONCURRENTLY) TABLE t", "REINDEX CONCURRENTLY"),
        ("REINDEX DATABASE", "REINDEX DATABASE"),
        ("VACUUM t", "VACUUM"),
        ("VACUUM (ANALYZE) t", "VACUUM"),
        ("CREATE DATABASE other", "CREATE DATABASE"),
        ("DROP DATABASE other", "DROP DATABASE"),
        ("ALTER SYSTEM SET work_mem = '8MB'", "ALTER SYSTEM"),
        ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", "DETACH PARTITION CONCURRENTLY"),
        ("CREATE INDEX i ON t (a)", None),
        ("ANALYZE t", None),
        ("REINDEX TABLE t", None),
        ("REINDEX (CONCURRENTLY false) TABLE t", None),
    ],
)
def test_statements_that_cannot_run_in_a_transaction(
    write: Write, sql: str, reason: str | None
) -> None:
    m = load_migration(write("0001_a.sql", sql + ";\n"))
    assert m.up[0].no_transaction == reason
    assert m.up_transactional is (reason is None)


def test_mixing_both_kinds_needs_the_marker(write: Write) -> None:
    mixed = load_migration(
        write(
            "0001_a.sql",
            "CREATE TABLE t (a int);\nSET maintenance_work_mem = '64MB';\n"
            "CREATE INDEX CONCURRENTLY t_a ON t (a);\n",
        )
    )
    problem = mixed.mixing_problem()
    assert problem is not None
    assert "0001_a.sql:3: CREATE INDEX CONCURRENTLY cannot run inside a transaction" in problem
    assert "(line 1)" in problem and "-- querykit:no-transaction" in problem

    marked = load_migration(
        write("0002_b.sql", "-- querykit:no-transaction\nCREATE TABLE u (a int);\nVACUUM u;\n")
    )
    assert marked.mixing_problem() is None and not marked.up_transactional

    set_only = load_migration(
        write("0003_c.sql", "SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY c ON t (a);\n")
    )
    assert set_only.mixing_problem() is None and not set_only.up_transactional


def test_concurrent_index_targets_for_invalid_index_cleanup(write: Write) -> None:
    m = load_migration(
        write(
            "0001_a.sql",
            "CREATE INDEX CONCURRENTLY i ON app.t (a);\nREINDEX INDEX CONCURRENTLY app.i;\n",
        )
    )
    first, second = (s.concurrent_index for s in m.up)
    assert first is not None and (first.schema, first.relation, first.index) == ("app", "t", "i")
    assert second is not None and second.reindex_index and second.index is None


def test_checksum_ignores_crlf_and_bom_but_covers_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "0001_a.sql"
    lf = parse_migration(path, b"SELECT 1;\n-- querykit:down\nSELECT 2;\n")
    crlf = parse_migration(path, b"\xef\xbb\xbfSELECT 1;\r\n-- querykit:down\r\nSELECT 2;\r\n")
    down_edit = parse_migration(path, b"SELECT 1;\n-- querykit:down\nSELECT 3;\n")
    comment_edit = parse_migration(path, b"SELECT 1; -- why\n-- querykit:down\nSELECT 2;\n")
    assert lf.checksum == crlf.checksum
    assert len({lf.checksum, down_edit.checksum, comment_edit.checksum}) == 3


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match=r"0001_a.sql:2: not valid UTF-8"):
        parse_migration(tmp_path / "0001_a.sql", b"SELECT 1;\nSELECT '\xff';\n")


def test_new_starts_at_0001_and_keeps_the_width(tmp_path: Path) -> None:
    directory = tmp_path / "fresh"
    first = new_migration(directory, "Create users!")
    assert first.name == "0001_create_users.sql"
    content = first.read_text()
    assert "-- querykit:down" in content and "-- querykit:no-transaction" in content
    with pytest.raises(MigrationFileError, match="has no SQL statements"):
        load_migration(first)  # an untouched template is never applied by accident
    (directory / "00041_wide.sql").write_text("SELECT 1;")
    assert new_migration(directory, "next").name == "00042_next.sql"
    with pytest.raises(MigrationFileError, match="cannot make a file name"):
        new_migration(directory, "!!!")


def test_new_keeps_the_timestamp_scheme_and_never_goes_back(tmp_path: Path) -> None:
    (tmp_path / "20300101000000_future.sql").write_text("SELECT 1;")
    path = new_migration(tmp_path, "after", now=datetime(2024, 5, 1, 12, 0, 0))
    assert path.name == "20300101000001_after.sql"
    later = new_migration(tmp_path, "later", now=datetime(2031, 5, 1, 12, 0, 0))
    assert later.name == "20310501120000_later.sql"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("public.querykit_migrations", LedgerTable("public", "querykit_migrations")),
        ("ledger", LedgerTable("public", "ledger")),
        ("Ops.Ledger", LedgerTable("ops", "ledger")),
        ('"Ops"."My Ledger"', LedgerTable("Ops", "My Ledger")),
    ],
)
def test_ledger_table_names_read_like_postgresql(value: str, expected: LedgerTable) -> None:
    assert parse_table_name(value) == expected


@pytest.mark.parametrize("value", ["a.b.c", "x; DROP TABLE y", "t AS alias", "1abc", ""])
def test_bad_ledger_table_names_are_config_errors(value: str) -> None:
    with pytest.raises(ConfigError, match="is not a table name"):
        parse_table_name(value)


@pytest.mark.parametrize(
    ("sql", "keeps"),
    [
        ("CREATE TABLE t (a int)", True),
        ("CREATE INDEX i ON t (a)", True),
        ("INSERT INTO t VALUES (1)", True),
        ("CREATE TEMP TABLE tmp (a int)", False),
        ("SET search_path = other", False),
        ("SET LOCAL lock_timeout = '1s'", False),
        ("SELECT set_config('timezone', 'UTC', false)", False),
        ("DO $$ BEGIN PERFORM 1; END $$", False),
        ("PREPARE p AS SELECT 1", False),
    ],
)
def test_which_statements_leave_the_session_clean(write: Write, sql: str, keeps: bool) -> None:
    """After a file of such statements only, the next file needs no session reset."""
    m = load_migration(write("0001_a.sql", sql + ";\n"))
    assert m.up[0].keeps_session is keeps
