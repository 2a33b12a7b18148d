"""Fixtures of the differential suite: one seeded database per module, and three ways in.

A module says what its database holds with a module-level ``SEED``: a callable giving
``{table name: rows}`` for the tables of ``tests.tables``. The database is created from
the session template (querykit.testing's clone-ahead), filled through SQLAlchemy,
and dropped after the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

import querykit
from querykit.testing.clones import CloneFactory
from tests.tables import metadata


def _sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="module")
def diff_url(request: pytest.FixtureRequest, template_clones: CloneFactory) -> Iterator[str]:
    """The module's database: the test tables, seeded once from its ``SEED`` (read-only after)."""
    clone = template_clones.take()
    engine = sa.create_engine(_sa_url(clone.url))
    with engine.begin() as c:
        metadata.create_all(c)
        for table, rows in request.module.SEED().items():
            c.execute(metadata.tables[table].insert(), rows)
    engine.dispose()
    try:
        yield clone.url
    finally:
        template_clones.discard(clone)


@pytest.fixture(scope="module")
def db(diff_url: str) -> Iterator[querykit.Database]:
    """querykit's way in."""
    with querykit.connect(diff_url, max_size=2) as database:
        yield database


@pytest.fixture(scope="module")
def engine(diff_url: str) -> Iterator[sa.Engine]:
    """The oracle's way in: SQLAlchemy's own engine."""
    eng = sa.create_engine(_sa_url(diff_url))
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def simple(diff_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain connection: a statement without parameters goes over the simple protocol."""
    with psycopg.connect(diff_url, autocommit=True, prepare_threshold=None) as conn:
        yield conn
