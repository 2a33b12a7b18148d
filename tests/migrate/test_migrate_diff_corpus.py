"""The drift corpus against querykit's diff, its safe draft, and two independent oracles.

For every injected change: querykit reports exactly the expected differences
(recall 100%, nothing more); the draft, applied to a clone of the migrated
example by querykit's runner, leaves no difference but what it commented out
and lints clean; Alembic's ``compare_metadata`` and ``results`` (migra's
successor) find nothing that querykit misses.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pgvector.sqlalchemy  # noqa: F401  (teaches SQLAlchemy's reflection the vector types)
import psycopg
import pytest
import sqlalchemy as sa
from diff_corpus import CASES, Case
from psycopg.conninfo import conninfo_to_dict

from querykit import Settings, load_settings
from querykit.migrate.diff import Change, close_loop
from querykit.migrate.diff.compare import compare, same_default_on
from querykit.migrate.diff.draft import build_draft
from querykit.migrate.diff.snapshot import Snapshot, take_snapshot
from querykit.migrate.files import discover
from querykit.migrate.shadow import Shadow
from querykit.migrate.version import Version

ROOT = Path(__file__).resolve().parents[2]
EXCLUDED = frozenset({"querykit_migrations", "public.querykit_migrations"})


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(url), poolclass=sa.NullPool
    )


def _snapshot(url: str) -> Snapshot:
    with psycopg.connect(url, autocommit=True) as conn:
        return take_snapshot(conn, exclude_tables=EXCLUDED)


class Example:
    """The migrated example (plus a case's setup) as a shadow database, and clones of it."""

    def __init__(self, settings: Settings, shadow: Shadow) -> None:
        self.settings = settings
        self.shadow = shadow
        self.snapshot = _snapshot(shadow.url)


@pytest.fixture(scope="module")
def example(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    settings = load_settings(cwd=ROOT, env={}, database_url=pg_server_url)
    with Shadow(settings) as shadow:
        shadow.apply_through(discover(settings.migrations)[-1].version)
        yield Example(settings, shadow)


@pytest.fixture
def start(case: Case, example: Example, tmp_path: Path) -> Iterator[Example]:
    """The current side: the example, or the example plus the case's setup as a migration."""
    if not case.setup:
        yield example
        return
    directory = tmp_path / "migrations"
    shutil.copytree(example.settings.migrations, directory)
    (directory / "0100_setup.sql").write_text(case.setup + ";\n")
    settings = example.settings.with_overrides(migrations=directory)
    with Shadow(settings) as shadow:
        shadow.apply_through(Version.parse("100"))
        yield Example(settings, shadow)


@pytest.fixture
def drifted(case: Case, start: Example) -> Iterator[str]:
    with start.shadow.clone() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(case.change)
        yield url


def _changes(start: Example, drifted: str) -> list[Change]:
    with psycopg.connect(drifted, autocommit=True) as conn:
        return compare(start.snapshot, _snapshot(drifted), same_default_on(conn))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_querykit_finds_exactly_the_injected_change(
    start: Example, drifted: str, case: Case
) -> None:
    found = {c.key for c in _changes(start, drifted)}
    assert found == set(case.expected)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_draft_closes_the_loop(start: Example, drifted: str, case: Case) -> None:
    changes = _changes(start, drifted)
    metadata = sa.MetaData()
    with _engine(drifted).connect() as conn:
        metadata.reflect(conn)
    draft = build_draft(changes, metadata)
    target = _snapshot(drifted)
    with psycopg.connect(drifted, autocommit=True) as conn:
        # raises DraftNotClosed when the draft fails, leaves a difference or does not lint clean
        close_loop(
            start.settings, start.shadow, draft, "drift", target, same_default_on(conn), EXCLUDED
        )
    assert bool(draft.commented) == case.destructive, [c.reason for c in draft.commented]
    live = "\n".join(line for f in draft.files for s in f.statements for line in s.splitlines()
                     if not line.startswith("--"))  # fmt: skip
    assert "DROP TABLE" not in live and "DROP COLUMN" not in live and "DROP TYPE" not in live


def test_the_clean_example_has_no_finding(example: Example) -> None:
    with example.shadow.clone() as url:
        assert _changes(example, url) == []


# -- the oracles --------------------------------------------------------------------------


def _alembic(current: str, target: str) -> set[str]:
    """The objects Alembic's compare_metadata says differ: reflected target vs the current db."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    metadata = sa.MetaData()
    with _engine(target).connect() as conn:
        metadata.reflect(conn)
    with _engine(current).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    return {_alembic_object(d) for d in diffs} - {"querykit_migrations"}


def _alembic_object(diff: Any) -> str:
    entry = diff[0] if isinstance(diff, list) else diff
    op, *args = entry
    if op.endswith("_column"):
        return f"{args[1]}.{args[2].name}"
    if op.startswith("modify_"):
        return f"{args[1]}.{args[2]}"
    if op.endswith("_table"):
        return str(args[0].name)
    if op.endswith("_index"):
        return str(args[0].name)
    if op.endswith(("_fk", "_constraint")):
        return str(args[0].table.name)
    raise AssertionError(f"unknown Alembic diff {entry!r}")


def _touches(changes: list[Change]) -> set[str]:
    return {c.name for c in changes} | {str(c.table) for c in changes if c.table}


def _results(current: str, target: str) -> list[str]:
    """The statements ``results`` (migra) would run to take ``current`` to ``target``."""
    import results
    from results.database import close_pool

    a, b = _as_url(current), _as_url(target)
    try:
        statements = results.db(a).schemadiff_as_statements(results.db(b))
    finally:  # results pools its connections; a pooled one would block CREATE DATABASE ... TEMPLATE
        close_pool(a)
        close_pool(b)
    return [s for s in statements if s.strip()]


def _as_url(conninfo: str) -> str:
    p = conninfo_to_dict(conninfo)
    auth = str(p.get("user", "postgres")) + (f":{p['password']}" if p.get("password") else "")
    return f"postgresql://{auth}@{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{p['dbname']}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_querykit_finds_what_alembic_and_results_find(
    start: Example, drifted: str, case: Case
) -> None:
    if not case.expected:
        pytest.skip("not drift by design (a name, a default's spelling, serial vs identity)")
    ours = _touches(_changes(start, drifted))
    noise = _alembic(start.shadow.url, start.shadow.url)
    theirs = _alembic(start.shadow.url, drifted) - noise
    assert theirs <= ours, f"Alembic found {theirs - ours} that querykit missed"
    with start.shadow.clone() as same:  # what results reports between two equal databases
        results_noise = set(_results(start.shadow.url, same))
    # results drops and re-creates a foreign key whenever a table it touches changes; a
    # constraint whose definition is the same on both sides is that artefact, not a finding
    unchanged = _unchanged_constraints(start.snapshot, _snapshot(drifted))
    for statement in set(_results(start.shadow.url, drifted)) - results_noise:
        words = set(statement.replace('"', " ").replace(".", " ").replace("(", " ").split())
        if "constraint" in words and words & unchanged:
            continue
        names = {n.rpartition(".")[2] for n in ours} | {n.partition(".")[0] for n in ours}
        # results recreates an enum through a temporary "<name>__old_version..." type
        assert any(w.startswith(n) for w in words for n in names), (
            f"results found {statement!r}; querykit found {sorted(ours)}"
        )


def _unchanged_constraints(a: Snapshot, b: Snapshot) -> set[str]:
    return {
        con.name
        for table, cons in a.constraints.items()
        for key, con in cons.items()
        if b.constraints.get(table, {}).get(key) == con
    }
