"""Development operations on the configured database: reset, seed and psql.

The CLI's ``querykit db reset|seed|psql`` are thin shells over these functions.

    >>> reset(settings)          # DROP DATABASE ... WITH (FORCE); CREATE DATABASE; migrate up
    >>> seed(settings)           # [tool.querykit] seed = "app.seed:load" or "seed.sql"
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import psycopg.conninfo
from psycopg import sql

from . import migrate
from .embedded import bin_dir, database_url
from .errors import ConfigError, EmbeddedError
from .execute.connect import connect
from .settings import Settings

__all__ = [
    "PsqlCommand",
    "PsqlResult",
    "ResetResult",
    "capture_psql",
    "psql_command",
    "reset",
    "seed",
]


@dataclass(frozen=True)
class ResetResult:
    """What ``reset()`` did: the database it recreated and how many migrations it applied."""

    database: str
    applied: int
    """Migration files applied to the new, empty database."""


def reset(settings: Settings) -> ResetResult:
    """Drop the configured database, create it empty, and apply every migration.

    The database is dropped ``WITH (FORCE)``: open connections to it are ended. The
    connection that drops it goes to another database of the same server
    (``template1``), so the default database ``postgres`` can be reset too.
    """
    url = database_url(settings)
    name = _dbname(url)
    admin_url = psycopg.conninfo.make_conninfo(url, dbname="template1")
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    result = migrate.up(settings)
    return ResetResult(database=name, applied=len(result.done))


def seed(settings: Settings) -> str:
    """Run the configured seed: ``seed = "module:function"`` (called with an open
    ``Database``) or ``seed = "path/to/seed.sql"`` (run as one script in a transaction).
    Returns what ran."""
    target = settings.seed
    if not target:
        raise ConfigError(
            'no seed is configured: set seed = "module:function" or seed = "seed.sql" '
            "in [tool.querykit] (or QUERYKIT_SEED)"
        )
    url = database_url(settings)
    if target.endswith(".sql"):
        path = Path(target) if Path(target).is_absolute() else settings.project_dir / target
        if not path.is_file():
            raise ConfigError(f"seed file not found: {path}")
        with connect(url) as conn, conn.transaction():
            conn.execute(path.read_text().encode())  # a script of several statements
        return str(path)
    module_name, _, function_name = target.partition(":")
    if not function_name:
        raise ConfigError(f"seed {target!r}: expected module:function or a .sql file")
    sys.path.insert(0, str(settings.project_dir))
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"seed {target!r} cannot be loaded: {exc}") from exc
    finally:
        sys.path.remove(str(settings.project_dir))
    from .execute.database import connect as connect_db

    with connect_db(url) as db:
        function(db)
    return target


@dataclass(frozen=True)
class PsqlCommand:
    """How to run psql on the configured database: ``argv`` and extra environment.

    The password travels in ``PGPASSWORD``, never on the command line (where ``ps``
    shows it to every user of the machine).
    """

    argv: list[str]
    env: dict[str, str]


def psql_command(settings: Settings, args: list[str] = []) -> PsqlCommand:  # noqa: B006
    """psql on the configured database: the system's psql, else the embedded wheel's."""
    url = database_url(settings)
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise ConfigError("the database URL does not parse; check DATABASE_URL") from None
    password = info.pop("password", None)
    exe = shutil.which("psql")
    if exe is None:
        try:
            exe = str(bin_dir() / "psql")
        except EmbeddedError:
            raise ConfigError(
                "psql is not installed: install PostgreSQL's client (apt-get install "
                "postgresql-client) or querykit[embedded], which ships one"
            ) from None
    env = {"PGPASSWORD": str(password)} if password else {}
    conninfo = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})
    return PsqlCommand([exe, conninfo, *args], env)


def run_psql(command: PsqlCommand) -> int:
    """Run psql in this terminal; returns its exit code."""
    import subprocess

    return subprocess.call(command.argv, env={**os.environ, **command.env})


@dataclass(frozen=True)
class PsqlResult:
    """What a psql run without a terminal printed, for ``querykit db psql --json``."""

    exit_code: int
    stdout: str
    stderr: str


def capture_psql(command: PsqlCommand) -> PsqlResult:
    """Run psql with no terminal (stdin closed), keeping what it prints; psql's ``-c`` or
    ``-f`` says what to run."""
    import subprocess

    done = subprocess.run(
        command.argv,
        env={**os.environ, **command.env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    return PsqlResult(done.returncode, done.stdout, done.stderr)


def _dbname(url: str) -> str:
    try:
        name = str(psycopg.conninfo.conninfo_to_dict(url).get("dbname") or "")
    except psycopg.ProgrammingError:
        raise ConfigError("the database URL does not parse; check DATABASE_URL") from None
    if not name:
        raise ConfigError("the database URL names no database; reset needs one to drop")
    return name
