"""Fixtures for ``querykit check``: the example project copied to a temporary directory,
its migrations applied to a fresh database, and a way to add a pending migration."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from querykit import Settings, load_settings
from querykit.migrate import up
from tests.cli import example_project

ROOT = Path(__file__).resolve().parents[2]
COST_FLOAT = "ALTER TABLE pipeline_run ALTER COLUMN cost TYPE double precision;\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return example_project(tmp_path)


@pytest.fixture
def migrated(project: Path, database_url: str) -> Settings:
    """The example's settings on a fresh database with every migration file applied."""
    settings = load_settings(cwd=project, env={}, database_url=database_url)
    up(settings)
    return settings


def add_migration(settings: Settings, name: str, sql: str) -> Path:
    """A new (pending) migration file after the example's."""
    path = settings.migrations / name
    path.write_text(textwrap.dedent(sql).lstrip("\n"), encoding="utf-8")
    return path
