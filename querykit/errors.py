"""The querykit error tree.

Every error querykit raises on purpose derives from :class:`QueryKitError`, so
``except QueryKitError`` catches them all. Database errors keep psycopg's
exception as ``__cause__``.

    QueryKitError
    ├── ConfigError            settings, pyproject.toml, environment
    ├── EmbeddedError          the embedded PostgreSQL server
    ├── CompileError           a query that cannot be built or rendered
    │   └── SchemaError        a name or value that does not fit the schema
    ├── ExecuteError           running a statement
    │   ├── ConnectError       the server cannot be reached
    │   ├── DatabaseError      the server rejected a statement (has .sqlstate, .sql)
    │   ├── NoResultError      one() found no row
    │   ├── MultipleResultsError  one() found several rows
    │   ├── MappingError       a row does not fit the as_= class
    │   └── DecodeError        a value read has no Python form (an unknown enum label)
    ├── ValidationError        a value that does not fit its column (has .column, .row)
    ├── MigrationError         the migration runner
    │   ├── MigrationFileError a bad file name, header or SQL file (has .path, .line)
    │   ├── MigrationRefused   an edited, missing or out-of-order file
    │   ├── MigrationFailed    a statement failed (has .path, .line, .sqlstate)
    │   └── LockTimeout        another runner holds the migration lock
    └── IsolationError         a test did what the qk_tx fixture cannot isolate (querykit.testing)
"""

from __future__ import annotations

__all__ = [
    "CompileError",
    "ConfigError",
    "ConnectError",
    "DatabaseError",
    "DecodeError",
    "EmbeddedError",
    "ExecuteError",
    "IsolationError",
    "LockTimeout",
    "MappingError",
    "MigrationError",
    "MigrationFailed",
    "MigrationFileError",
    "MigrationRefused",
    "MultipleResultsError",
    "NoResultError",
    "QueryKitError",
    "SchemaError",
    "ValidationError",
]


class QueryKitError(Exception):
    """Root of every error querykit raises on purpose."""


class ConfigError(QueryKitError):
    """Settings that cannot be resolved: a bad key, file or value."""


class EmbeddedError(QueryKitError):
    """The embedded PostgreSQL server could not be started, found or stopped."""


class CompileError(QueryKitError):
    """A query that cannot be built or rendered as SQL."""


class SchemaError(CompileError):
    """A name or value that does not fit the schema (unknown column, wrong table)."""

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class ExecuteError(QueryKitError):
    """A failure while running a statement."""


class ConnectError(ExecuteError):
    """The server cannot be reached. The message names host and port, never a password."""


class DatabaseError(ExecuteError):
    """The server rejected a statement. Carries the SQLSTATE and the SQL.

    ``.row`` is, for a bulk write, the index of the row the server refused, where known.
    """

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        sql: str | None = None,
        row: int | None = None,
    ) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.sql = sql
        self.row = row


class NoResultError(ExecuteError):
    """``one()`` expected exactly one row and found none."""


class MultipleResultsError(ExecuteError):
    """``one()`` expected exactly one row and found more."""


class MappingError(ExecuteError):
    """Result columns do not match the fields of the ``as_=`` class."""


class DecodeError(ExecuteError):
    """A value the database returned has no Python form in the schema.

    For example, an enum label that a migration added but the ``Enum`` class in
    the schema does not have yet.
    """


class ValidationError(QueryKitError):
    """A value that does not fit its column. ``.row`` is the row index in a bulk write."""

    def __init__(self, message: str, *, column: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.row = row


class MigrationError(QueryKitError):
    """Base of the migration runner's errors."""


class MigrationFileError(MigrationError):
    """A migration file that cannot be used: bad name, mixed schemes, unparsable SQL."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class MigrationRefused(MigrationError):
    """The runner refuses to proceed: an applied file changed or vanished, or order is broken."""


class MigrationFailed(MigrationError):
    """A migration statement failed on the server."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.sqlstate = sqlstate


class LockTimeout(MigrationError):
    """The migration lock was not acquired in time."""


class IsolationError(QueryKitError):
    """A test under ``qk_tx`` committed, ran a statement that cannot run in a transaction,
    or opened a second connection: things a rolled-back transaction cannot isolate.
    The message names ``qk_db``, which gives the test a database of its own."""
