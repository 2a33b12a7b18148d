"""Helpers shared by the migration tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

from querykit.migrate import Version

Write = Callable[[str, str], Path]
"""The ``write`` fixture: ``write("0001_x.sql", sql)`` makes a migration file."""


def run_querykit(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m querykit ARGS`` in ``cwd``, with no querykit settings from our environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "QUERYKIT_"))}
    return subprocess.run(
        [sys.executable, "-m", "querykit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def popen_querykit(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "QUERYKIT_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "querykit", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ledger(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """(version, name, kind, statements_done, success) of every ledger row, in version order.

    The version column is text; it is read back as a Version, which equals the
    integer of a one-part version.
    """
    rows = conn.execute(
        "SELECT version, name, kind, statements_done, success "
        "FROM public.querykit_migrations ORDER BY string_to_array(version, '.')::numeric[]"
    ).fetchall()
    return [(Version.parse(str(r[0])), *r[1:]) for r in rows]


def table_exists(conn: psycopg.Connection[tuple[object, ...]], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])
