"""What one pytest process holds: the server, the templates, the clone factory, qk_tx's database.

Everything starts on first use, so a run whose tests use none of the fixtures
starts no server and builds no template.
"""

from __future__ import annotations

import psycopg

from ..settings import Settings
from . import names
from .clones import Clone, CloneFactory
from .server import run_directory, server_url
from .template import Template, create_clone, drop_database, ensure_template
from .tx import AsyncPinnedDatabase, PinnedDatabase

AHEAD = 2
"""Clones kept ready by the background thread."""


class TestSession:
    """One pytest session's server, templates and clone factory."""

    __test__ = False

    def __init__(self, settings: Settings, *, run_id: str, keep: bool) -> None:
        self.settings = settings
        self.run_id = run_id
        self.keep = keep
        self._admin_url: str | None = None
        self._templates: dict[str | None, Template] = {}
        self._factory: CloneFactory | None = None
        self._pinned: PinnedDatabase | None = None
        self._pinned_clone: Clone | None = None
        self._async_pinned: AsyncPinnedDatabase | None = None
        self._async_pinned_clone: Clone | None = None
        self.prefix = names.clone_prefix(names.project_tag(settings.project_dir))

    @property
    def admin_url(self) -> str:
        """The server's admin URL; the server starts on first use."""
        if self._admin_url is None:
            self._admin_url = server_url(self.settings, run_id=self.run_id, keep=self.keep)
        return self._admin_url

    def url(self, dbname: str) -> str:
        """The URL of database ``dbname`` on the session's server."""
        return names.clone_url(self.admin_url, dbname)

    def template(self, upto: str | None = None) -> Template:
        """The template migrated up to ``upto`` (all files when None), built once."""
        if upto not in self._templates:
            url = self.admin_url
            run = run_directory(self.run_id)  # a server of this run's own: its lock goes there
            lock = run / "template.lock" if run.is_dir() else None
            self._templates[upto] = ensure_template(url, self.settings, upto, lock)
        return self._templates[upto]

    def templates(self) -> list[Template]:
        """The templates this process used so far."""
        return list(self._templates.values())

    @property
    def factory(self) -> CloneFactory:
        """The clone-ahead factory for the full template."""
        if self._factory is None:
            self._factory = CloneFactory(self.admin_url, self.template(), self.prefix, AHEAD)
        return self._factory

    def take(self, upto: str | None = None) -> Clone:
        """A fresh clone: from the clone-ahead queue, or made now for ``upto``."""
        if upto is None:
            return self.factory.take()
        name = f"{self.prefix}u{names.tag(upto, 6)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            drop_database(conn, name)
            create_clone(conn, self.template(upto), name)
        return Clone(name, self.url(name))

    def discard(self, clone: Clone, upto: str | None = None) -> None:
        """Drop a used clone (in the background for the full template)."""
        if upto is None:
            self.factory.discard(clone)
            return
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            drop_database(conn, clone.name)

    def _bare_clone(self) -> Clone:
        """A clone without its ``Database``: the pinned ones open their own.

        Made now unless clone-ahead runs already (for qk_db): a session of qk_tx
        tests needs one clone, and two more being created in the background slow
        its first tests' round trips (on an fsync=on server, for hundreds of ms).
        """
        if not self.factory.running:
            return self.factory.make()
        clone = self.factory.take()
        if clone.db is not None:
            clone.db.close()
            clone.db = None
        return clone

    def pinned(self) -> PinnedDatabase:
        """qk_tx's database: one clone for the whole session, made clean again when dirtied."""
        if self._pinned is None:
            self._pinned_clone = self._bare_clone()
            self._pinned = PinnedDatabase(self._pinned_clone.url)
        return self._pinned

    def async_pinned(self) -> AsyncPinnedDatabase:
        """qk_async_tx's database (a clone of its own); its fixture connects on its loop."""
        if self._async_pinned is None:
            self._async_pinned_clone = self._bare_clone()
            self._async_pinned = AsyncPinnedDatabase(self._async_pinned_clone.url)
        return self._async_pinned

    def reset_async_pinned(self) -> None:
        """After a test committed under qk_async_tx (its connection closed): a new clone next."""
        if self._async_pinned_clone is not None:
            self.factory.discard(self._async_pinned_clone)
        self._async_pinned, self._async_pinned_clone = None, None

    def reset_pinned(self) -> None:
        """After a test committed under qk_tx: drop its database; the next test gets a new one."""
        if self._pinned is not None and self._pinned_clone is not None:
            self._pinned.close()
            self.factory.discard(self._pinned_clone)
        self._pinned, self._pinned_clone = None, None

    def close(self) -> None:
        """Close the pinned connection and stop the clone-ahead threads."""
        if self._pinned is not None:
            self._pinned.close()
            if self._pinned_clone is not None:
                self.factory.discard(self._pinned_clone)
        if self._async_pinned_clone is not None:  # its connection is closed on its loop
            self.factory.discard(self._async_pinned_clone)
        if self._factory is not None:
            self._factory.close()
