"""A shadow database: a scratch database with the migrations applied by querykit's own runner.

Tools that must see what migrations *do* (the lint probe, the drift check)
build one on the same server as the target, never touching the target::

    >>> with Shadow(settings) as shadow:
    ...     shadow.apply_through(3)          # 0001..0003 by querykit migrate up
    ...     with shadow.clone() as url:      # CREATE DATABASE ... TEMPLATE shadow
    ...         ...                          # a scratch copy, dropped afterwards

Both databases are dropped on exit, also after an error. The role needs CREATEDB.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import TracebackType

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import MigrationError
from ..execute.connect import connect, describe_target
from ..settings import Settings, mask_secrets
from .version import Version

__all__ = ["Shadow", "scratch_shadow", "with_database"]

_counter = itertools.count()


def with_database(url: str, dbname: str) -> str:
    """``url`` pointing at the database ``dbname`` on the same server."""
    return make_conninfo(url, dbname=dbname)


class Shadow:
    """A scratch database on the server of ``settings``' database, with migrations applied on demand."""

    def __init__(self, settings: Settings, *, server_url: str | None = None) -> None:
        from ..embedded import database_url

        self.settings = settings
        self.server_url = server_url or database_url(settings)
        base = conninfo_to_dict(self.server_url).get("dbname") or "postgres"
        self.name = f"qk_shadow_{base}_{os.getpid()}_{next(_counter)}"[:63]
        self.url = with_database(self.server_url, self.name)
        self.applied_through: Version | None = None

    def __enter__(self) -> Shadow:
        self._create(self.name, None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._drop(self.name)

    def apply_through(self, version: Version | None) -> None:
        """Apply the migrations up to ``version`` (None: none) with ``querykit migrate up``."""
        from .runner import up

        if version is None or version == self.applied_through:
            return
        up(self.settings.with_overrides(database_url=self.url), to=version)
        self.applied_through = version

    @contextmanager
    def clone(self) -> Iterator[str]:
        """A fresh copy of the shadow (``CREATE DATABASE ... TEMPLATE``), dropped afterwards."""
        name = f"{self.name[:50]}_c{next(_counter)}"
        self._create(name, self.name)
        try:
            yield with_database(self.server_url, name)
        finally:
            self._drop(name)

    def _create(self, name: str, template: str | None) -> None:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        try:
            with connect(self.server_url, autocommit=True) as conn:
                conn.execute(statement)
        except psycopg.Error as exc:
            message = mask_secrets(exc.diag.message_primary or str(exc), self.server_url)
            raise MigrationError(
                f"cannot create the shadow database {name} on {describe_target(self.server_url)}: "
                f"{message}; the probe needs a role with CREATEDB on a server it may use for "
                "scratch databases"
            ) from exc

    def _drop(self, name: str) -> None:
        with connect(self.server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def scratch_shadow(stack: ExitStack, settings: Settings) -> Shadow:
    """A shadow on the configured server (or the embedded one when the role may not CREATE
    DATABASE), entered on ``stack`` so it is dropped when the stack closes."""
    try:
        return stack.enter_context(Shadow(settings))
    except MigrationError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.InsufficientPrivilege):
            raise
    from ..embedded import EmbeddedServer

    url = EmbeddedServer.for_project(settings.project_dir).start().url
    if url is None:
        raise MigrationError("the embedded PostgreSQL did not report its URL")
    return stack.enter_context(Shadow(settings, server_url=url))
