"""Fixtures for the migration tests: a migrations directory, settings and a CLI runner."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from migrate_helpers import Write

from querykit import Settings, load_settings


@pytest.fixture
def mig_dir(tmp_path: Path) -> Path:
    path = tmp_path / "migrations" / "sql"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def write(mig_dir: Path) -> Write:
    """``write("0001_x.sql", sql)``: a migration file, dedented."""

    def _write(name: str, sql: str) -> Path:
        path = mig_dir / name
        path.write_text(textwrap.dedent(sql).lstrip("\n"))
        return path

    return _write


@pytest.fixture
def settings(database_url: str, mig_dir: Path, tmp_path: Path) -> Settings:
    return load_settings(cwd=tmp_path, env={}, database_url=database_url, migrations=mig_dir)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn
