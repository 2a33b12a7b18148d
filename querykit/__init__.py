"""querykit: a SQL-first, typed query-builder toolkit for PostgreSQL.

Not an ORM: tables are SQLAlchemy Core tables, queries are immutable builders
that always show their SQL, execution goes straight to psycopg 3.
"""

from . import migrate
from .errors import (
    CompileError,
    ConfigError,
    ConnectError,
    DatabaseError,
    EmbeddedError,
    ExecuteError,
    LockTimeout,
    MappingError,
    MigrationError,
    MigrationFailed,
    MigrationFileError,
    MigrationRefused,
    MultipleResultsError,
    NoResultError,
    QueryKitError,
    SchemaError,
    ValidationError,
)
from .settings import Settings, load_settings, mask_url

__version__ = "0.1.0"

__all__ = [
    "CompileError",
    "ConfigError",
    "ConnectError",
    "DatabaseError",
    "EmbeddedError",
    "ExecuteError",
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
    "Settings",
    "ValidationError",
    "__version__",
    "load_settings",
    "mask_url",
    "migrate",
]
