"""Probe corpus cases on clones of the seeded database (shared by the tests and the recorder)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lint_corpus import SEED, Case
from psycopg import sql

from querykit.execute.connect import connect
from querykit.migrate.files import Migration, parse_migration
from querykit.migrate.lint.catalog import read_catalog
from querykit.migrate.lint.knowledge import Knowledge
from querykit.migrate.lint.model import Effect
from querykit.migrate.lint.probe import probe_statements
from querykit.migrate.shadow import with_database

_n = itertools.count()


@contextmanager
def seeded_template(admin_url: str) -> Iterator[str]:
    name = f"qk_lint_seed_{os.getpid()}_{next(_n)}"
    ident = sql.Identifier(name)
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    try:
        with connect(with_database(admin_url, name), autocommit=True) as conn:
            conn.execute(SEED.encode())
        yield name
    finally:
        with connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def case_migration(c: Case) -> Migration:
    return parse_migration(Path(f"0001_{c.id.replace('-', '_')}.sql"), c.sql.encode())


def effect_dict(effect: Effect | None) -> dict[str, Any] | None:
    if effect is None:
        return None
    return {"locks": dict(effect.locks), "rewrite": list(effect.rewrite), "scan": list(effect.scan)}


def probe_case(admin_url: str, template: str, c: Case) -> tuple[list[dict[str, Any]], Knowledge]:
    """The probe's observation of each statement of ``c`` (on a fresh clone), and the clone's catalog."""
    name = f"qk_lint_case_{os.getpid()}_{next(_n)}"
    ident = sql.Identifier(name)
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(ident, sql.Identifier(template))
        )
    try:
        url = with_database(admin_url, name)
        if c.setup:
            with connect(url, autocommit=True) as conn:
                for statement in parse_migration(Path("0000_setup.sql"), c.setup.encode()).up:
                    conn.execute(statement.text.encode())
                conn.execute("ANALYZE")
        with connect(url, autocommit=True) as conn:
            know = read_catalog(conn)
        m = case_migration(c)
        seen = probe_statements(url, [(s.text, s.no_transaction is None) for s in m.up])
        return (
            [
                {"statement": o.statement, "observed": effect_dict(o.effect), "error": o.error}
                for o in seen
            ],
            know,
        )
    finally:
        with connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
