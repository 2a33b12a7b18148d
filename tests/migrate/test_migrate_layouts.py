"""Other tools' histories, read in place, and taken over from their ledgers.

Each history is written here in its tool's layout. A database is migrated half
way "by the other tool": its first files applied with psycopg, and its ledger
table created and filled as that tool does. ``migrate adopt`` then takes over,
``migrate up`` finishes, and ``pg_dump --schema-only`` of the result equals that
of a second database where psql applied every up part.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import textwrap
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from querykit import Settings, load_settings, migrate
from querykit.embedded import bin_dir
from querykit.errors import MigrationFileError, MigrationRefused
from querykit.migrate.adopt import flyway_checksum
from querykit.migrate.layouts import resolve_layout

Conn = psycopg.Connection[tuple[object, ...]]

UPS = [
    "CREATE TABLE author (id bigint PRIMARY KEY, name text NOT NULL);\n",
    "CREATE TABLE book (id bigint PRIMARY KEY, author_id bigint REFERENCES author (id),\n"
    "    title text NOT NULL);\nALTER TABLE author ADD COLUMN email text;\n",
    "CREATE INDEX CONCURRENTLY book_title ON book (title);\n",
]
DOWNS = [
    "DROP TABLE author;\n",
    "ALTER TABLE author DROP COLUMN email;\nDROP TABLE book;\n",
    "DROP INDEX book_title;\n",
]
LEDGERS = [
    "querykit_migrations",
    "_prisma_migrations",
    "__diesel_schema_migrations",
    "_sqlx_migrations",
    "schema_migrations",
    "flyway_schema_history",
]


@dataclass
class History:
    directory: Path
    applied_by_tool: Callable[[Conn, int], None]
    """Write the tool's ledger rows for the first N migrations, as the tool does."""


def _sha(path: Path, algorithm: str = "sha256") -> str:
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# -- the layouts --------------------------------------------------------------------------


def prisma(root: Path) -> History:
    directory = root / "prisma" / "migrations"
    names = ["20240101000000_init", "20240102000000_books", "20240103000000_title_index"]
    for name, up in zip(names, UPS, strict=True):
        _write(directory / name / "migration.sql", f"-- CreateTable\n{up}")
    _write(directory / "migration_lock.toml", 'provider = "postgresql"\n')

    def applied(conn: Conn, n: int) -> None:
        conn.execute(
            'CREATE TABLE "_prisma_migrations" ("id" VARCHAR(36) PRIMARY KEY NOT NULL, '
            '"checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ, '
            '"migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ, '
            '"started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), '
            '"applied_steps_count" INTEGER NOT NULL DEFAULT 0)'
        )
        for name in names[:n]:
            conn.execute(
                "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, "
                "applied_steps_count) VALUES (%s, %s, now(), %s, 1)",
                (str(uuid.uuid4()), _sha(directory / name / "migration.sql"), name),
            )

    return History(directory, applied)


def drizzle(root: Path) -> History:
    directory = root / "drizzle"
    tags = ["0000_init", "0001_books", "0002_title_index"]
    whens = [1704067200000, 1704153600000, 1704240000000]
    for tag, up in zip(tags, UPS, strict=True):
        statements = [s.strip() + ";" for s in up.split(";") if s.strip()]
        _write(directory / f"{tag}.sql", "\n--> statement-breakpoint\n".join(statements) + "\n")
    journal = {
        "version": "7",
        "dialect": "postgresql",
        "entries": [
            {"idx": i, "version": "7", "when": when, "tag": tag, "breakpoints": True}
            for i, (tag, when) in enumerate(zip(tags, whens, strict=True))
        ],
    }
    _write(directory / "meta" / "_journal.json", json.dumps(journal, indent=2))

    def applied(conn: Conn, n: int) -> None:
        conn.execute('CREATE SCHEMA IF NOT EXISTS "drizzle"')
        conn.execute(
            'CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations" '
            "(id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)"
        )
        for tag, when in list(zip(tags, whens, strict=True))[:n]:
            conn.execute(
                'INSERT INTO "drizzle"."__drizzle_migrations" ("hash", "created_at") '
                "VALUES (%s, %s)",
                (_sha(directory / f"{tag}.sql"), when),
            )

    return History(directory, applied)


def diesel(root: Path) -> History:
    directory = root / "migrations"
    names = [
        "00000000000000_diesel_initial_setup",
        "2024-01-02-000000_books",
        "2024-01-03-000000_title_index",
    ]
    for name, up, down in zip(names, UPS, DOWNS, strict=True):
        _write(directory / name / "up.sql", up)
        _write(directory / name / "down.sql", down)
    _write(directory / names[2] / "metadata.toml", "run_in_transaction = false\n")

    def applied(conn: Conn, n: int) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) "
            "PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        for name in names[:n]:
            version = name.split("_", 1)[0].replace("-", "")
            conn.execute("INSERT INTO __diesel_schema_migrations (version) VALUES (%s)", (version,))

    return History(directory, applied)


def sqlx(root: Path) -> History:
    directory = root / "migrations"
    names = ["1_init.sql", "2_books.sql", "3_title_index.sql"]
    for name, up in zip(names, UPS, strict=True):
        _write(directory / name, ("-- no-transaction\n" if name.startswith("3") else "") + up)

    def applied(conn: Conn, n: int) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _sqlx_migrations (version BIGINT PRIMARY KEY, "
            "description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), "
            "success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)"
        )
        for name in names[:n]:
            version, description = name.removesuffix(".sql").split("_", 1)
            conn.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, "
                "execution_time) VALUES (%s, %s, true, %s, 1000)",
                (
                    int(version),
                    description.replace("_", " "),
                    bytes.fromhex(_sha(directory / name, "sha384")),
                ),
            )

    return History(directory, applied)


def golang_migrate(root: Path) -> History:
    directory = root / "db" / "migrations"
    names = ["000001_init", "000002_books", "000003_title_index"]
    for i, (name, up, down) in enumerate(zip(names, UPS, DOWNS, strict=True)):
        wrapped = f"BEGIN;\n{up}COMMIT;\n" if i == 1 else up  # golang-migrate runs files as is
        _write(directory / f"{name}.up.sql", wrapped)
        _write(directory / f"{name}.down.sql", down)

    def applied(conn: Conn, n: int) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version bigint not null primary key, dirty boolean not null)"
        )
        conn.execute("INSERT INTO schema_migrations (version, dirty) VALUES (%s, false)", (n,))

    return History(directory, applied)


def dbmate(root: Path) -> History:
    directory = root / "db" / "migrations"
    names = ["20240101000000_init", "20240102000000_books", "20240103000000_title_index"]
    for i, (name, up, down) in enumerate(zip(names, UPS, DOWNS, strict=True)):
        option = " transaction:false" if i == 2 else ""
        _write(directory / f"{name}.sql", f"-- migrate:up{option}\n{up}\n-- migrate:down\n{down}")

    def applied(conn: Conn, n: int) -> None:
        conn.execute(
            "create table if not exists schema_migrations (version varchar(128) primary key)"
        )
        for name in names[:n]:
            conn.execute("insert into schema_migrations (version) values (%s)", (name[:14],))

    return History(directory, applied)


FLYWAY_DDL = [
    # flyway_schema_history as Flyway creates it on PostgreSQL (createMetaDataTable.sql)
    'CREATE TABLE "public"."flyway_schema_history" ("installed_rank" INT NOT NULL, '
    '"version" VARCHAR(50), "description" VARCHAR(200) NOT NULL, "type" VARCHAR(20) NOT NULL, '
    '"script" VARCHAR(1000) NOT NULL, "checksum" INTEGER, "installed_by" VARCHAR(100) NOT NULL, '
    '"installed_on" TIMESTAMP NOT NULL DEFAULT now(), "execution_time" INTEGER NOT NULL, '
    '"success" BOOLEAN NOT NULL)',
    'ALTER TABLE "public"."flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" '
    'PRIMARY KEY ("installed_rank")',
    'CREATE INDEX "flyway_schema_history_s_idx" ON "public"."flyway_schema_history" ("success")',
]


def flyway_crc32(path: Path) -> int:
    """Flyway's checksum, computed here as Flyway does it and independently of querykit:
    a CRC32 updated with each line's UTF-8 bytes (read line by line as Java's readLine
    does: LF, CR or CRLF end a line, and are not hashed), BOM dropped, as a signed int."""
    text = path.read_bytes().decode("utf-8")
    crc = 0
    for n, line in enumerate(re.split(r"\r\n|\r|\n", text)):
        if n == 0:
            line = line.removeprefix("\ufeff")
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc if crc < 2**31 else crc - 2**32


def flyway(root: Path) -> History:
    """Dotted versions (one with underscores, as Flyway allows) and U undo files."""
    directory = root / "src" / "main" / "resources" / "db" / "migration"
    names = ["V1__init.sql", "V1.1__books.sql", "V1_10__title_index.sql"]
    versions = ["1", "1.1", "1.10"]
    for name, up, down in zip(names, UPS, DOWNS, strict=True):
        _write(directory / name, up)
        _write(directory / ("U" + name[1:]), down)
    _write(directory / "V1_10__title_index.sql.conf", "executeInTransaction=false\n")

    def applied(conn: Conn, n: int) -> None:
        for statement in FLYWAY_DDL:
            conn.execute(statement)
        for rank, (name, version) in enumerate(zip(names[:n], versions, strict=False), 1):
            description = name.removesuffix(".sql").split("__")[1].replace("_", " ")
            conn.execute(
                "INSERT INTO flyway_schema_history (installed_rank, version, description, type, "
                "script, checksum, installed_by, execution_time, success) "
                "VALUES (%s, %s, %s, 'SQL', %s, %s, current_user, 10, true)",
                (rank, version, description, name, flyway_crc32(directory / name)),
            )

    return History(directory, applied)


LAYOUTS: dict[str, Callable[[Path], History]] = {
    "prisma": prisma,
    "drizzle": drizzle,
    "diesel": diesel,
    "sqlx": sqlx,
    "golang-migrate": golang_migrate,
    "dbmate": dbmate,
    "flyway": flyway,
}


# -- the oracle: psql applies every up part to a database of its own -----------------------


@pytest.fixture
def oracle_url(pg_server_url: str, template_db: str) -> Iterator[str]:
    name = f"qk_oracle_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    yield psycopg.conninfo.make_conninfo(pg_server_url, dbname=name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def psql_apply(url: str, tmp: Path) -> None:
    files = []
    for n, up in enumerate(UPS):
        files += ["-f", str(_write(tmp / "oracle" / f"{n}.sql", up))]
    subprocess.run(
        [str(bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, *files],
        check=True,
        capture_output=True,
    )


def schema_dump(url: str) -> str:
    """The public schema as pg_dump prints it, without querykit's and the tools' ledgers."""
    excluded = [arg for table in LEDGERS for arg in ("-T", f"public.{table}")]
    done = subprocess.run(
        [str(bin_dir() / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
         "-n", "public", *excluded, "-d", url],
        check=True,
        capture_output=True,
        text=True,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    return "\n".join(ln for ln in lines if not re.match(r"^(--|\\restrict|\\unrestrict)", ln))


def settings_for(history: History, database_url: str, root: Path) -> Settings:
    return load_settings(cwd=root, env={}, database_url=database_url, migrations=history.directory)


# -- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_auto_detects_each_layout_and_says_why(tmp_path: Path, layout: str) -> None:
    history = LAYOUTS[layout](tmp_path)
    chosen = resolve_layout(history.directory, "auto")
    assert chosen.name == layout, chosen
    assert chosen.reason


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_half_migrated_database_is_adopted_and_finished(
    tmp_path: Path, database_url: str, oracle_url: str, layout: str, db: Conn
) -> None:
    history = LAYOUTS[layout](tmp_path)
    settings = settings_for(history, database_url, tmp_path)
    for up in UPS[:2]:  # "the other tool" applied the first two migrations
        db.execute(up)
    history.applied_by_tool(db, 2)

    report = migrate.status(settings)
    assert report.layout.name == layout
    assert [e.state for e in report.entries] == ["pending"] * 3

    adopted = migrate.adopt(settings)
    assert adopted.tool == layout and len(adopted.recorded) == 2
    assert [e.state for e in migrate.status(settings).entries] == [
        "baseline",
        "baseline",
        "pending",
    ]
    done = migrate.up(settings).done
    assert len(done) == 1 and done[0].version == migrate.status(settings).entries[2].version
    assert done[0].transactional is False  # CREATE INDEX CONCURRENTLY, or the tool's marker
    assert migrate.adopt(settings).already  # a second adopt changes nothing
    assert migrate.up(settings).nothing_to_do

    psql_apply(oracle_url, tmp_path)
    assert schema_dump(database_url) == schema_dump(oracle_url)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_fresh_database_applies_every_layout_with_no_renaming(
    tmp_path: Path, database_url: str, oracle_url: str, layout: str
) -> None:
    history = LAYOUTS[layout](tmp_path)
    settings = settings_for(history, database_url, tmp_path)
    assert len(migrate.up(settings).done) == 3
    psql_apply(oracle_url, tmp_path)
    assert schema_dump(database_url) == schema_dump(oracle_url)


@pytest.mark.parametrize("layout", ["diesel", "golang-migrate", "dbmate", "flyway"])
def test_down_parts_of_other_layouts_revert(
    tmp_path: Path, database_url: str, layout: str, db: Conn
) -> None:
    history = LAYOUTS[layout](tmp_path)
    settings = settings_for(history, database_url, tmp_path)
    migrate.up(settings)
    reverted = [migrate.down(settings).done[0].filename for _ in range(3)]  # newest first
    assert reverted == [e.filename for e in reversed(migrate.status(settings).entries)]
    assert db.execute("SELECT to_regclass('author'), to_regclass('book')").fetchone() == (
        None,
        None,
    )


def test_adopt_refuses_a_dirty_or_failed_ledger_and_missing_files(
    tmp_path: Path, database_url: str, db: Conn
) -> None:
    history = golang_migrate(tmp_path)
    settings = settings_for(history, database_url, tmp_path)
    history.applied_by_tool(db, 2)
    db.execute("UPDATE schema_migrations SET dirty = true")
    with pytest.raises(MigrationRefused, match="marked version 2 dirty"):
        migrate.adopt(settings)
    assert db.execute("SELECT to_regclass('public.querykit_migrations')").fetchone() == (None,)

    prisma_history = prisma(tmp_path / "p")
    p_settings = settings_for(prisma_history, database_url, tmp_path / "p")
    prisma_history.applied_by_tool(db, 2)
    db.execute(
        "UPDATE _prisma_migrations SET finished_at = NULL WHERE migration_name = "
        "'20240102000000_books'"
    )
    with pytest.raises(MigrationRefused, match="prisma recorded 20240102000000_books as failed"):
        migrate.adopt(p_settings)
    db.execute("UPDATE _prisma_migrations SET finished_at = now()")
    (prisma_history.directory / "20240101000000_init" / "migration.sql").write_text("-- gone\n")
    with pytest.raises(MigrationRefused, match="changed since prisma applied it"):
        migrate.adopt(p_settings)
    shutil.rmtree(prisma_history.directory / "20240101000000_init")
    with pytest.raises(MigrationRefused, match=r"prisma applied 20240101000000_init, which is not"):
        migrate.adopt(p_settings)


def test_flyway_checksum_is_the_published_crc32_line_by_line(tmp_path: Path) -> None:
    # CRC-32's published check value: crc32("123456789") = 0xCBF43926, stored signed.
    assert flyway_checksum(b"123456789\n") == 0xCBF43926 - 2**32 == -873187034
    # Line endings and a BOM do not count, as in Flyway; the lines themselves do.
    assert flyway_checksum(b"\xef\xbb\xbf1234\r\n56789\r\n") == -873187034
    assert flyway_checksum(b"1234\r56789") == -873187034
    assert flyway_checksum(b"12345 6789\n") != -873187034
    history = flyway(tmp_path)
    for path in sorted(history.directory.glob("*.sql")):
        assert flyway_checksum(path.read_bytes()) == flyway_crc32(path), path.name


def test_flyway_dotted_versions_apply_in_flyway_order(
    tmp_path: Path, database_url: str, db: Conn
) -> None:
    directory = tmp_path / "db" / "migration"
    names = ["V1_1__a.sql", "V1.9__b.sql", "V1.10__c.sql", "V2__d.sql", "V2.0.3__e.sql"]
    for name in reversed(names):
        _write(directory / name, f"INSERT INTO seen VALUES ('{name}');\n")
        _write(directory / f"U{name[1:]}", f"DELETE FROM seen WHERE name = '{name}';\n")
    _write(directory / "V0__seen.sql", "CREATE TABLE seen (name text, at serial);\n")
    settings = load_settings(cwd=tmp_path, env={}, database_url=database_url, migrations=directory)
    report = migrate.status(settings)
    assert report.layout.name == "flyway"
    assert [str(e.version) for e in report.entries] == ["0", "1.1", "1.9", "1.10", "2", "2.0.3"]
    assert [d.filename for d in migrate.up(settings, to="1.10").done] == [
        "V0__seen.sql",
        *names[:3],
    ]
    assert [d.filename for d in migrate.up(settings).done] == names[3:]
    assert db.execute("SELECT name FROM seen ORDER BY at").fetchall() == [(n,) for n in names]
    status = json.loads(json.dumps(migrate.status(settings).to_dict()))
    assert [m["version"] for m in status["migrations"]] == [0, "1.1", "1.9", "1.10", 2, "2.0.3"]
    assert db.execute(
        "SELECT version FROM querykit_migrations WHERE name = 'V1.10__c.sql'"
    ).fetchone() == ("1.10",)
    assert [d.filename for d in migrate.down(settings, to="V1.9__b.sql").done] == [
        "V2.0.3__e.sql", "V2__d.sql", "V1.10__c.sql"
    ]  # fmt: skip
    assert db.execute("SELECT name FROM seen ORDER BY at").fetchall() == [(n,) for n in names[:2]]

    _write(directory / "V1.1.0__same.sql", "SELECT 1;\n")  # 1.1.0 is 1.1, as Flyway compares
    with pytest.raises(
        MigrationFileError, match=r"V1\.1\.0__same\.sql and V1_1__a\.sql share version 1\.1"
    ):
        migrate.status(settings)


def test_flyway_undo_files_are_the_down_parts(tmp_path: Path) -> None:
    history = flyway(tmp_path)
    found = migrate.layouts.discover_layout(history.directory, "flyway")
    assert [(m.filename, m.down_path.name if m.down_path else None) for m in found] == [
        ("V1__init.sql", "U1__init.sql"),
        ("V1.1__books.sql", "U1.1__books.sql"),
        ("V1_10__title_index.sql", "U1_10__title_index.sql"),
    ]
    _write(history.directory / "U7__orphan.sql", "SELECT 1;\n")
    with pytest.raises(MigrationFileError, match=r"U7__orphan\.sql: an undo \(U\) file without"):
        migrate.layouts.discover_layout(history.directory, "flyway")


def test_flyway_repeatable_migrations_are_refused_with_what_to_do(tmp_path: Path) -> None:
    history = flyway(tmp_path)
    _write(history.directory / "R__views.sql", "CREATE VIEW v AS SELECT 1;\n")
    _write(history.directory / "V4-bad.sql", "SELECT 1;\n")
    with pytest.raises(MigrationFileError) as caught:
        migrate.layouts.discover_layout(history.directory, "flyway")
    message = str(caught.value)
    assert message.startswith("2 problem(s)")
    assert "R__views.sql: Flyway's repeatable migrations (R__) are not supported" in message
    assert "in a versioned V<version>__ file (CREATE OR REPLACE)" in message
    assert "V4-bad.sql: not a migration name of this layout" in message


def test_adopt_verifies_flyway_checksums(tmp_path: Path, database_url: str, db: Conn) -> None:
    history = flyway(tmp_path)
    settings = settings_for(history, database_url, tmp_path)
    for up in UPS[:2]:
        db.execute(up)
    history.applied_by_tool(db, 2)
    books = history.directory / "V1.1__books.sql"
    recorded = flyway_crc32(books)
    books.write_text(UPS[1].replace("title text", "title varchar(200)"))
    computed = flyway_crc32(books)
    with pytest.raises(MigrationRefused) as caught:
        migrate.adopt(settings)
    assert (
        f"V1.1__books.sql changed since flyway applied it: flyway_schema_history records "
        f"checksum {recorded}, the file now has {computed} (Flyway's CRC32)"
    ) in str(caught.value)
    assert "Nothing was recorded" in str(caught.value)
    assert db.execute("SELECT to_regclass('public.querykit_migrations')").fetchone() == (None,)

    # The same lines with CRLF endings and a BOM: Flyway's checksum is unchanged.
    books.write_bytes(b"\xef\xbb\xbf" + UPS[1].replace("\n", "\r\n").encode())
    assert flyway_crc32(books) == recorded
    assert migrate.adopt(settings).recorded == ("V1__init.sql", "V1.1__books.sql")

    db.execute("UPDATE flyway_schema_history SET success = false WHERE version = '1.1'")
    with pytest.raises(MigrationRefused, match=r"flyway recorded V1\.1__books\.sql as failed"):
        migrate.adopt(settings)


def test_adopt_from_a_flyway_baseline(tmp_path: Path, database_url: str, db: Conn) -> None:
    history = flyway(tmp_path)
    settings = settings_for(history, database_url, tmp_path)
    for up in UPS[:2]:
        db.execute(up)
    for statement in FLYWAY_DDL:
        db.execute(statement)
    db.execute(  # flyway baseline -baselineVersion=1.1: no checksum, nothing ran
        "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
        "checksum, installed_by, execution_time, success) VALUES "
        "(1, '1.1', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, "
        "current_user, 0, true)"
    )
    assert migrate.adopt(settings).recorded == ("V1__init.sql", "V1.1__books.sql")
    assert [d.filename for d in migrate.up(settings).done] == ["V1_10__title_index.sql"]


def test_layout_setting_and_option(tmp_path: Path, database_url: str) -> None:
    history = sqlx(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.querykit]\nmigrations = "migrations"\nmigrations_layout = "golang-migrate"\n'
    )
    settings = load_settings(cwd=tmp_path, env={}, database_url=database_url)
    assert settings.migrations_layout == "golang-migrate"
    with pytest.raises(MigrationFileError, match=r"expected <version>_<name>\.up\.sql"):
        migrate.status(settings)
    sqlx_settings = settings.with_overrides(migrations_layout="sqlx")
    assert migrate.status(sqlx_settings).layout.reason == "set by migrations_layout"
    assert history.directory == settings.migrations
