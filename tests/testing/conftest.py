"""A project under test for the querykit.testing plugin, run by real pytest subprocesses.

Each test writes a small project (pyproject.toml with [tool.querykit], migrations)
into pytester's directory and runs pytest on it, with DATABASE_URL set to this
session's server, so the runs share one PostgreSQL and can be checked from outside
through the catalog. Every database the project's runs leave is dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from querykit.testing import names

PYPROJECT = """\
[tool.querykit]
migrations = "migrations"

[tool.pytest.ini_options]
asyncio_default_fixture_loop_scope = "function"
"""

MIGRATIONS = {
    "0001_items.sql": """\
CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE tag (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id int NOT NULL REFERENCES item (id) DEFERRABLE INITIALLY DEFERRED,
    label text NOT NULL
);
""",
    "0002_item_price.sql": """\
ALTER TABLE item ADD COLUMN price_cents int;
""",
    "0003_backfill_price.sql": """\
UPDATE item SET price_cents = 100 * length(name) WHERE price_cents IS NULL;
ALTER TABLE item ALTER COLUMN price_cents SET NOT NULL, ALTER COLUMN price_cents SET DEFAULT 0;
""",
}


@dataclass
class Project:
    """The project pytester runs, and the server its runs use."""

    path: Path
    server: str

    @property
    def tag(self) -> str:
        return names.project_tag(self.path)

    def databases(self, kind: str = "") -> dict[str, int]:
        """This project's databases on the server (``kind``: "t" templates, "c" clones), by oid."""
        pattern = f"qk\\_{kind or '_'}%\\_{self.tag}\\_%" if kind else f"qk\\_%\\_{self.tag}\\_%"
        with psycopg.connect(self.server, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT datname, oid FROM pg_database WHERE datname LIKE %s", [pattern]
            ).fetchall()
        return {name: int(oid) for name, oid in rows}


@pytest.fixture
def project(
    pytester: pytest.Pytester, pg_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    pytester.makefile(".toml", pyproject=PYPROJECT)
    (pytester.path / "migrations").mkdir()
    for name, text in MIGRATIONS.items():
        (pytester.path / "migrations" / name).write_text(text)
    monkeypatch.setenv("DATABASE_URL", pg_server_url)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    found = Project(pytester.path.resolve(), pg_server_url)
    yield found
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in found.databases():
            if name.startswith("qk_t_"):
                conn.execute(
                    sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name))
                )
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
