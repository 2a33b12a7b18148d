"""The querykit error tree.

Every error querykit raises on purpose derives from :class:`QueryKitError`, so
``except QueryKitError`` catches them all. Database errors keep psycopg's
exception as ``__cause__``.

Each class has a stable code (``.code``, e.g. ``qk-E004``), printed at the end of
its message with the README anchor that says what to do: codes are short enough
to search for and do not change when a message is reworded.

    QueryKitError
    ├── ConfigError            settings, pyproject.toml, environment, connect() arguments
    ├── EmbeddedError          the embedded PostgreSQL server
    ├── CompileError           a query that cannot be built or rendered
    │   └── SchemaError        a name or value that does not fit the schema
    │       └── ColumnTypeError  a column type that cannot exist (vector(0)); also a ValueError
    ├── ExecuteError           running a statement
    │   ├── ArgumentError      transaction() / insert_many() / copy arguments that cannot work
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

Two more live beside the code that raises them: ``migrate.diff.DraftNotClosed``
(a MigrationError, qk-E020) and the Studio's ``Refused`` (qk-E021).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ArgumentError",
    "ColumnTypeError",
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
    """Root of every error querykit raises on purpose.

    Never raised itself: each subclass sets ``code``, and the message ends with
    ``(qk-E004; see README#qk-e004)`` so that a user can look up what to do.
    """

    code: ClassVar[str] = ""
    """The stable code of this kind of error, ``qk-E`` and three digits."""

    def __str__(self) -> str:
        message = super().__str__()
        if not self.code:
            return message
        return f"{message} ({self.code}; see README#{self.code.lower()})"


class ConfigError(QueryKitError):
    """Settings that cannot be resolved: a bad key, file or value."""

    code = "qk-E001"


class EmbeddedError(QueryKitError):
    """The embedded PostgreSQL server could not be started, found or stopped."""

    code = "qk-E002"


class CompileError(QueryKitError):
    """A query that cannot be built or rendered as SQL."""

    code = "qk-E003"


class SchemaError(CompileError):
    """A name or value that does not fit the schema (unknown column, wrong table)."""

    code = "qk-E004"

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


class ColumnTypeError(SchemaError, ValueError):
    """A column type that cannot exist, such as ``vector(0)``.

    Also a ``ValueError``, which is what ``vector(0)`` raised before it had a class.
    """

    code = "qk-E005"


class ExecuteError(QueryKitError):
    """A failure while running a statement."""

    code = "qk-E006"


class ArgumentError(ExecuteError):
    """Arguments of ``transaction()``, ``insert_many()``, ``copy_*`` or a stream that cannot work.

    Raised before anything is sent: nothing was written.
    """

    code = "qk-E007"


class ConnectError(ExecuteError):
    """The server cannot be reached. The message names host and port, never a password."""

    code = "qk-E008"


class DatabaseError(ExecuteError):
    """The server rejected a statement. Carries the SQLSTATE and the SQL.

    ``.row`` is, for a bulk write, the index of the row the server refused, where known.
    """

    code = "qk-E009"

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

    code = "qk-E010"


class MultipleResultsError(ExecuteError):
    """``one()`` expected exactly one row and found more."""

    code = "qk-E011"


class MappingError(ExecuteError):
    """Result columns do not match the fields of the ``as_=`` class."""

    code = "qk-E012"


class DecodeError(ExecuteError):
    """A value the database returned has no Python form in the schema.

    For example, an enum label that a migration added but the ``Enum`` class in
    the schema does not have yet.
    """

    code = "qk-E013"


class ValidationError(QueryKitError):
    """A value that does not fit its column. ``.row`` is the row index in a bulk write."""

    code = "qk-E014"

    def __init__(self, message: str, *, column: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.row = row


class MigrationError(QueryKitError):
    """Base of the migration runner's errors."""

    code = "qk-E015"


class MigrationFileError(MigrationError):
    """A migration file that cannot be used: bad name, mixed schemes, unparsable SQL."""

    code = "qk-E016"

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class MigrationRefused(MigrationError):
    """The runner refuses to proceed: an applied file changed or vanished, or order is broken."""

    code = "qk-E017"


class MigrationFailed(MigrationError):
    """A migration statement failed on the server."""

    code = "qk-E018"

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

    code = "qk-E019"


class IsolationError(QueryKitError):
    """A test under ``qk_tx`` committed, ran a statement that cannot run in a transaction,
    or opened a second connection: things a rolled-back transaction cannot isolate.
    The message names ``qk_db``, which gives the test a database of its own."""

    code = "qk-E022"
