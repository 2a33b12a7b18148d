"""The ledger table: one row per applied migration.

Its name comes from the ``migrations_table`` setting (``public.querykit_migrations``
by default); the schema and the table are created on first use::

    >>> ledger = Ledger(parse_table_name("public.querykit_migrations"))
    >>> ledger.ensure(conn)
    >>> sorted(ledger.rows(conn))
    [Version('1'), Version('2'), Version('3')]

The version column is text (``"3"``, Flyway's ``"1.10"``); rows are ordered by
:class:`~querykit.migrate.version.Version`, part by part. A ledger made by an
earlier querykit (``version bigint``) is converted on first write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from pglast import ast, parser
from psycopg import sql

from ..errors import ConfigError, MigrationError
from ..trusted_sql import trusted
from .version import Version

__all__ = ["Ledger", "LedgerRow", "LedgerTable", "parse_table_name"]

KIND_TRANSACTION = "transaction"
KIND_NO_TRANSACTION = "no-transaction"
KIND_BASELINE = "baseline"

_COLUMNS = (
    "version",
    "name",
    "checksum",
    "kind",
    "applied_at",
    "duration_ms",
    "applied_by",
    "statements_done",
    "statements_total",
    "success",
    "error",
    "statement_hashes",
)

_CREATE = """
CREATE TABLE {table} (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('transaction', 'no-transaction', 'baseline')),
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms double precision NOT NULL DEFAULT 0,
    applied_by text NOT NULL DEFAULT current_user,
    statements_done integer NOT NULL,
    statements_total integer NOT NULL,
    success boolean NOT NULL,
    error text,
    statement_hashes text[] NOT NULL DEFAULT '{{}}'
);
COMMENT ON TABLE {table} IS 'querykit migrate: one row per applied migration file';
COMMENT ON COLUMN {table}.version IS
    'the version: digits, or dotted digits compared part by part (Flyway''s 1.10 > 1.9)';
COMMENT ON COLUMN {table}.checksum IS 'sha256 of the file (CRLF read as LF)';
COMMENT ON COLUMN {table}.statements_done IS
    'index (1-based) of the last completed statement; a rerun of a no-transaction file resumes after it';
COMMENT ON COLUMN {table}.statement_hashes IS
    'sha256 of each completed statement of a no-transaction file; a resume refuses when one changed';
COMMENT ON COLUMN {table}.success IS
    'false while a no-transaction file is partly applied (interrupted, or failed when error is set)';
"""


_SHAPE = """
SELECT to_regclass(%(t)s) IS NOT NULL, EXISTS (
    SELECT FROM pg_attribute WHERE attrelid = to_regclass(%(t)s)
      AND attname = 'statement_hashes' AND NOT attisdropped), EXISTS (
    SELECT FROM pg_attribute WHERE attrelid = to_regclass(%(t)s)
      AND attname = 'version' AND atttypid = 'text'::regtype AND NOT attisdropped)
"""


@dataclass(frozen=True)
class LedgerTable:
    """A schema-qualified table name, as PostgreSQL reads it (unquoted parts fold to lower case)."""

    schema: str
    name: str

    @property
    def identifier(self) -> sql.Identifier:
        """The ledger table as a quoted ``schema.name`` for psycopg's ``sql`` module."""
        return sql.Identifier(self.schema, self.name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def parse_table_name(value: str) -> LedgerTable:
    """``"public.querykit_migrations"`` → ``LedgerTable("public", "querykit_migrations")``.

    A name without a schema is in ``public``. Quoted parts keep their case.
    """
    problem = (
        f"migrations_table {value!r} is not a table name; "
        "use schema.table, e.g. public.querykit_migrations"
    )
    try:
        statements = parser.parse_sql(f"SELECT FROM {value}")
    except parser.ParseError:
        raise ConfigError(problem) from None
    if len(statements) != 1:
        raise ConfigError(problem)
    sources: Any = getattr(statements[0].stmt, "fromClause", None) or ()
    if len(sources) != 1 or not isinstance(sources[0], ast.RangeVar):
        raise ConfigError(problem)
    target = sources[0]
    if target.catalogname or target.alias or not target.relname:
        raise ConfigError(problem)
    return LedgerTable(target.schemaname or "public", target.relname)


@dataclass(frozen=True)
class LedgerRow:
    """One row of the ledger."""

    version: Version
    name: str
    checksum: str
    kind: str
    applied_at: datetime
    duration_ms: float
    applied_by: str
    statements_done: int
    """Index (1-based) of the last completed statement."""
    statements_total: int
    success: bool
    error: str | None
    statement_hashes: tuple[str, ...] = ()
    """sha256 of each completed statement of a no-transaction file, in order."""

    @property
    def failed(self) -> bool:
        """A file that failed partway (a no-transaction file awaiting ``repair``)."""
        return not self.success and self.error is not None

    @property
    def interrupted(self) -> bool:
        """A file whose run stopped without recording an error (a killed runner)."""
        return not self.success and self.error is None


def _row(record: tuple[Any, ...]) -> LedgerRow:
    values: dict[str, Any] = dict(zip(_COLUMNS, record, strict=True))
    values["statement_hashes"] = tuple(values["statement_hashes"] or ())
    values["version"] = Version.parse(str(values["version"]))
    return LedgerRow(**values)


class Ledger:
    """Reads and writes the ledger table through a connection the caller owns."""

    def __init__(self, table: LedgerTable) -> None:
        self.table = table
        ident = table.identifier
        self._select = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)), ident
        )
        self._select_old = sql.SQL("SELECT {}, '{{}}'::text[] FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, _COLUMNS[:-1])), ident
        )
        self._insert = sql.SQL(
            "INSERT INTO {} (version, name, checksum, kind, duration_ms, "
            "statements_done, statements_total, success) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(ident)
        self._progress = sql.SQL(
            "UPDATE {} SET statements_done = %s, "
            "statement_hashes = statement_hashes[:%s - 1] || %s::text WHERE version = %s"
        ).format(ident)
        self._fail = sql.SQL(
            "UPDATE {} SET statements_done = %s, error = %s WHERE version = %s"
        ).format(ident)
        self._finish = sql.SQL(
            "UPDATE {} SET statements_done = statements_total, success = true, error = NULL, "
            "applied_at = clock_timestamp(), duration_ms = %s WHERE version = %s"
        ).format(ident)
        self._delete = sql.SQL("DELETE FROM {} WHERE version = %s").format(ident)
        self._clear = sql.SQL(
            "UPDATE {} SET error = NULL, checksum = %s, name = %s, statements_total = %s "
            "WHERE version = %s AND NOT success"
        ).format(ident)
        self._accept = sql.SQL(
            "UPDATE {} SET checksum = %s, name = %s WHERE version = %s AND success"
        ).format(ident)

    def exists(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether the ledger table exists yet."""
        return self._shape(conn)[0]

    def _shape(self, conn: psycopg.Connection[Any]) -> tuple[bool, bool, bool]:
        """Whether the table exists, has the statement_hashes column yet, and a text version."""
        row = conn.execute(_SHAPE, {"t": self.identifier_text(conn)}).fetchone()
        return (bool(row[0]), bool(row[1]), bool(row[2])) if row else (False, False, False)

    def identifier_text(self, conn: psycopg.Connection[Any]) -> str:
        """The ledger table's quoted name, as SQL text for messages."""
        return self.table.identifier.as_string(conn)

    def ensure(self, conn: psycopg.Connection[Any]) -> None:
        """Create the schema and the table when missing.

        Existence is checked first so that a role without CREATE on the database
        can run migrations once someone has made the ledger.
        """
        exists, current, text_version = self._shape(conn)
        if exists and not current:  # a ledger made by an earlier querykit
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {} ADD COLUMN IF NOT EXISTS statement_hashes text[] "
                    "NOT NULL DEFAULT '{{}}'"
                ).format(self.table.identifier)
            )
        if exists and not text_version:  # integer versions only, before dotted ones
            conn.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN version TYPE text USING version::text").format(
                    self.table.identifier
                )
            )
        if exists:
            return
        with conn.transaction():
            schema = conn.execute(
                "SELECT to_regnamespace(%s) IS NOT NULL",
                (sql.Identifier(self.table.schema).as_string(conn),),
            ).fetchone()
            if not (schema and schema[0]):
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                        sql.Identifier(self.table.schema)
                    )
                )
            conn.execute(sql.SQL(_CREATE).format(table=self.table.identifier))

    def rows(self, conn: psycopg.Connection[Any]) -> dict[Version, LedgerRow]:
        """Every row by version, in version order; empty when the table does not exist yet."""
        exists, current, _ = self._shape(conn)
        if not exists:
            return {}
        try:
            records = conn.execute(self._select if current else self._select_old).fetchall()
        except psycopg.errors.UndefinedColumn as exc:
            raise MigrationError(
                f"the table {self.table} exists but is not a querykit migration ledger "
                f"({exc.diag.message_primary}); set migrations_table to another name"
            ) from exc
        rows = sorted((_row(r) for r in records), key=lambda row: row.version)
        return {row.version: row for row in rows}

    def record(
        self,
        conn: psycopg.Connection[Any],
        version: Version,
        name: str,
        checksum: str,
        *,
        kind: str,
        duration_ms: float,
        statements: int,
    ) -> None:
        """Insert a completed row (inside the caller's transaction for a transactional file)."""
        conn.execute(
            self._insert,
            (version.text, name, checksum, kind, duration_ms, statements, statements, True),
        )

    def record_while_query(
        self, conn: psycopg.Connection[Any], condition: str
    ) -> Callable[[Version, str, str, int, tuple[int, ...]], tuple[bytes, list[bytes]]]:
        """Insert a transactional file's row, failing unless ``condition`` holds (the lock):
        the INSERT's text, built once per run, and a function giving one file's query
        and values (bound as parameters, as text) for :mod:`.pipeline`.

        When the condition does not hold, the checksum is NULL and its NOT NULL
        constraint fails the insert, and so the file's transaction, on the server: the
        COMMIT queued after it never runs, and no round trip waits for the check (see
        :meth:`refused`). The duration is the server's time since the transaction
        began, so the insert can be sent before the file's statements have run.
        ``condition`` uses the placeholders ``$6`` on (see
        :meth:`~querykit.migrate.lock.MigrationLock.held_by_runner`).
        """
        query = (
            sql.SQL(
                "INSERT INTO {} (version, name, checksum, kind, duration_ms, statements_done, "
                "statements_total, success) SELECT $1, $2, CASE WHEN {} THEN $3::text END, $4, "
                "extract(epoch FROM clock_timestamp() - now()) * 1000, $5, $5, true"
            )
            .format(self.table.identifier, sql.SQL(trusted(condition)))
            .as_bytes(conn)
        )
        encoding = conn.info.encoding
        kind = KIND_TRANSACTION.encode()

        def values(
            version: Version, name: str, checksum: str, statements: int, params: tuple[int, ...]
        ) -> tuple[bytes, list[bytes]]:
            total = str(statements).encode()
            return query, [
                version.text.encode(encoding),
                name.encode(encoding),
                checksum.encode(encoding),
                kind,
                total,
                *(str(p).encode() for p in params),
            ]

        return values

    def refused(self, exc: psycopg.Error) -> bool:
        """Whether ``exc`` is :meth:`record_while_query`'s condition failing (its NULL checksum)."""
        diag = exc.diag
        return (
            isinstance(exc, psycopg.errors.NotNullViolation)
            and diag.table_name == self.table.name
            and diag.schema_name == self.table.schema
            and diag.column_name == "checksum"
        )

    def start(
        self, conn: psycopg.Connection[Any], version: Version, name: str, checksum: str, total: int
    ) -> None:
        """Insert the row of a no-transaction file before its first statement runs."""
        conn.execute(
            self._insert, (version.text, name, checksum, KIND_NO_TRANSACTION, 0.0, 0, total, False)
        )

    def progress(
        self, conn: psycopg.Connection[Any], version: Version, done: int, statement_hash: str
    ) -> None:
        """Statement ``done`` (1-based) completed; its hash joins those of the ones before."""
        self._one(conn.execute(self._progress, (done, done, statement_hash, version.text)), version)

    def fail(self, conn: psycopg.Connection[Any], version: Version, done: int, error: str) -> None:
        """Record that ``version`` failed after ``done`` statements, with the error."""
        self._one(conn.execute(self._fail, (done, error, version.text)), version)

    def finish(self, conn: psycopg.Connection[Any], version: Version, duration_ms: float) -> None:
        """Record that ``version`` completed, and how long it took."""
        self._one(conn.execute(self._finish, (duration_ms, version.text)), version)

    def delete(self, conn: psycopg.Connection[Any], version: Version) -> None:
        """Remove the row of ``version`` (after its down part ran, or ``--forget-missing``)."""
        self._one(conn.execute(self._delete, (version.text,)), version)

    def clear_failure(
        self, conn: psycopg.Connection[Any], version: Version, name: str, checksum: str, total: int
    ) -> None:
        """Let a partly applied file resume, accepting its current content."""
        self._one(conn.execute(self._clear, (checksum, name, total, version.text)), version)

    def accept_checksum(
        self, conn: psycopg.Connection[Any], version: Version, name: str, checksum: str
    ) -> None:
        """Record the new checksum of an edited applied file (``repair --accept-changed``)."""

        self._one(conn.execute(self._accept, (checksum, name, version.text)), version)

    def _one(self, cursor: psycopg.Cursor[Any], version: Version) -> None:
        # Another writer under our lock would be a bug; say so rather than carry on.
        if cursor.rowcount != 1:
            raise MigrationError(
                f"the ledger {self.table} has no row for version {version} any more; "
                "was it edited while querykit migrate was running?"
            )
