"""The desired database: schema.py created by SQLAlchemy's own DDL compiler.

``metadata.create_all`` emits ``CREATE TYPE`` for enums, ``CREATE TABLE`` and
``CREATE INDEX`` (with ``postgresql_using``/``ops``/``with``/``where``) exactly as
an application using SQLAlchemy would, so querykit renders no DDL of its own.
The extensions the migrations installed are created first (the same start).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
import sqlalchemy as sa
import sqlalchemy.exc
from psycopg import sql

from ..._project import import_project_module
from ...errors import ConfigError, MigrationError
from ...execute.connect import connect
from ...settings import Settings

__all__ = ["create_desired", "schema_metadata"]


def schema_metadata(settings: Settings) -> sa.MetaData:
    """The ``MetaData`` of the configured schema module (``schema = "..."``)."""
    module = import_project_module(settings.schema, settings)
    found = getattr(module, "metadata", None)
    if isinstance(found, sa.MetaData):
        return found
    candidates = [v for v in vars(module).values() if isinstance(v, sa.MetaData)]
    if len(candidates) != 1:
        raise ConfigError(
            f"module {settings.schema!r} has {len(candidates)} MetaData objects and none named "
            "'metadata'; name the one that holds the tables 'metadata'"
        )
    return candidates[0]


def create_desired(url: str, metadata: sa.MetaData, extensions: Iterable[str]) -> None:
    """Create ``extensions`` and then every table, type and index of ``metadata`` in ``url``."""
    with connect(url, autocommit=True) as conn:
        for name in sorted(extensions):
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))

    def creator() -> Any:
        return psycopg.connect(url)

    engine = sa.create_engine("postgresql+psycopg://", creator=creator, poolclass=sa.NullPool)
    try:
        with engine.begin() as sa_conn:
            metadata.create_all(sa_conn)
    except sqlalchemy.exc.DBAPIError as exc:
        raise MigrationError(
            f"schema.py cannot be created on PostgreSQL: {exc.orig}; fix the declaration "
            "(SQLAlchemy's CREATE statement is in the message)"
        ) from exc
    finally:
        engine.dispose()
