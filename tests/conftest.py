"""Test harness: one PostgreSQL per session, one fresh database per test.

The server is ``DATABASE_URL`` when set (it needs CREATEDB), otherwise an
embedded PostgreSQL 18 in a temporary directory, with querykit.testing's test
settings. Per-test databases come from querykit.testing, as a user's would:

- ``database_url``: an empty database (only pgvector), for tests that bring
  their own migrations or tables, cloned from a bare template;
- ``migrated_template``: the template querykit.testing builds from this
  project's migrations (``migrations/sql``) with querykit's own runner, cached
  by their checksums; the execution tests' ``url`` is a clone of it.

Both clone through querykit.testing's clone-ahead (:class:`CloneFactory`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from querykit.embedded import EmbeddedServer
from querykit.execute.connect import connect
from querykit.settings import load_settings
from querykit.testing.clones import CloneFactory
from querykit.testing.server import TEST_SETTINGS, scratch_root
from querykit.testing.template import Template, ensure_template

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]  # tests/testing runs the querykit.testing plugin in real pytest runs


def with_dbname(url: str, dbname: str) -> str:
    """``url`` pointing at another database."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" in url:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """An admin URL for the session's PostgreSQL server."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    # querykit.testing's test settings and RAM disk: the suite clones a database per test
    tmp = Path(tempfile.mkdtemp(prefix="querykit-test-", dir=scratch_root()))
    server = EmbeddedServer(tmp / "pgdata", server_settings=TEST_SETTINGS)
    status = server.start()
    assert status.url is not None
    try:
        yield status.url
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    """A bare template database with only pgvector created, for cheap per-test clones.

    Not built by the migration runner: a runner leaves its ledger table behind, and
    the tests cloning this one bring their own migrations and ledgers.
    """
    name = f"querykit_template_{os.getpid()}"
    with connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with connect(with_dbname(pg_server_url, name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    yield name
    with connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def migrated_template(pg_server_url: str) -> Template:
    """querykit.testing's template of this project's migrations (the schema that ships,
    equal to schema.py: tests/test_example_app.py checks it), applied by querykit's runner."""
    settings = load_settings(cwd=ROOT, env={}, database_url=pg_server_url)
    return ensure_template(pg_server_url, settings)


def clone_factory(admin_url: str, template: str | Template, prefix: str) -> CloneFactory:
    """querykit.testing's clone-ahead over one of the suite's templates: a background
    thread keeps clones ready and drops used ones, so a test waits for neither."""
    if isinstance(template, str):
        with connect(admin_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT pg_database_size(%s), current_setting('fsync') = 'on'", [template]
            ).fetchone()
        assert row is not None
        template = Template(template, int(row[0]), False, bool(row[1]), 0.0)
    return CloneFactory(
        admin_url,
        template,
        f"{prefix}_{os.getpid()}_",
        ahead=2,
        threads=1,
        connected=False,  # tests connect by themselves (and some count the connections)
    )


@pytest.fixture(scope="session")
def template_clones(pg_server_url: str, template_db: str) -> Iterator[CloneFactory]:
    """Clones of ``template_db``, made ahead."""
    with clone_factory(pg_server_url, template_db, "qk_test") as factory:
        yield factory


@pytest.fixture(scope="session")
def migrated_clones(pg_server_url: str, migrated_template: Template) -> Iterator[CloneFactory]:
    """Clones of the project's migrated template, made ahead."""
    with clone_factory(pg_server_url, migrated_template, "qk_migrated") as factory:
        yield factory


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL to a brand-new database for this test only, with pgvector installed.

    Empty; or, for a test that also asks for ``tables_conn``, already migrated by the
    project's migrations (the example app's tables), so only the test tables are added.
    """
    migrated = "tables_conn" in request.fixturenames
    factory: CloneFactory = request.getfixturevalue(
        "migrated_clones" if migrated else "template_clones"
    )
    clone = factory.take()
    try:
        yield clone.url
    finally:
        factory.discard(clone)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A plain autocommit psycopg connection to the test's database."""
    with psycopg.connect(database_url, autocommit=True) as c:
        yield c


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """An empty project directory with a pyproject.toml, for CLI tests."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    return tmp_path


@pytest.fixture
def sa_url(database_url: str) -> str:
    """The test database as a SQLAlchemy URL (psycopg driver)."""
    return database_url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def tables_conn(database_url: str, sa_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to a database holding the example and test tables.

    The example app's tables come from its migrations (``database_url`` is a clone of
    the migrated template here); the test tables from SQLAlchemy's own DDL.
    """
    import sqlalchemy as sa
    from pgvector.psycopg import register_vector

    from tests import tables

    engine = sa.create_engine(sa_url)
    with engine.begin() as c:
        tables.metadata.create_all(c)
    engine.dispose()
    with psycopg.connect(database_url, autocommit=True) as c:
        register_vector(c)
        yield c


@pytest.fixture(scope="session")
def replicated() -> Iterator[object]:
    """A primary and a streaming standby (``tests.realservers.ReplicatedCluster``), for the
    session. Tests using it carry ``@pytest.mark.xdist_group("replica")``: one worker runs
    them all, against one cluster."""
    from tests.realservers import ReplicatedCluster

    cluster = ReplicatedCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
