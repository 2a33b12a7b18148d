"""``querykit migrate diff``: does the migration history build what schema.py declares?

Two real databases are compared in the catalog's own terms (see
:mod:`.snapshot`): the *shadow* (every migration applied by querykit's runner)
and the *desired* (the same extensions, plus schema.py created by SQLAlchemy's
DDL compiler). With ``database_url`` the live database is compared with the
shadow instead: has it drifted from the history?

``write=NAME`` drafts safe migration files (see :mod:`.draft`) and closes the
loop before writing anything: the draft is applied to a clone of the shadow,
the clone is snapshotted again and must equal the desired database except for
what the draft left commented out; the draft must also lint without an error.

    >>> result = diff(settings)                 # doctest: +SKIP
    >>> [c.text() for c in result.changes]      # doctest: +SKIP
    ['changed  column     pipeline_run.cost: type numeric(12,6) → numeric(14,6)']
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import MigrationError, QueryKitError
from ...execute.connect import connect, describe_target
from ...settings import Settings
from ..files import discover, display_path, new_migration
from ..shadow import Shadow, scratch_shadow
from .compare import Change, SameDefault, compare, same_default_on
from .desired import create_desired, schema_metadata
from .draft import Commented, Draft, build_draft
from .snapshot import Snapshot, take_snapshot

__all__ = ["Change", "DiffResult", "DraftNotClosed", "close_loop", "diff"]


class DraftNotClosed(MigrationError):
    """The drafted migration did not take the shadow database to schema.py: nothing was written."""

    code = "qk-E020"


@dataclass
class DiffResult:
    """What ``migrate diff`` found, and the files it wrote or left commented out."""

    changes: list[Change]
    current: str
    """What was compared: ``"migrations"`` or the live database's ``host:port/db``."""
    target: str
    written: list[Path] = field(default_factory=list)
    commented: list[Commented] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        """True when the two schemas have no difference."""
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "current": self.current,
            "target": self.target,
            "in_sync": self.in_sync,
            "changes": [c.to_dict() for c in self.changes],
            "written": [display_path(p) for p in self.written],
            "commented_out": [{**c.change.to_dict(), "reason": c.reason} for c in self.commented],
        }

    def text(self) -> str:
        """The differences as the CLI prints them."""
        if self.in_sync:
            lines = [f"{self.current} and {self.target} are in sync"]
        else:
            lines = [f"{len(self.changes)} difference(s), {self.current} → {self.target}:"]
            lines += [f"  {c.text()}" for c in self.changes]
        lines += [f"wrote {display_path(p)}" for p in self.written]
        for c in self.commented:
            lines.append(f"not drafted (review by hand): {c.change.name}: {c.reason}")
            lines += [f"    {line}" for line in c.statement.splitlines()]
        return "\n".join(lines)


def diff(
    settings: Settings, *, database_url: str | None = None, write: str | None = None
) -> DiffResult:
    """Compare the migrations with schema.py (or, with ``database_url``, the live database)."""
    if write is not None and database_url is not None:
        raise MigrationError(
            "--write drafts a migration from schema.py; it cannot be combined with --database"
        )
    excluded = frozenset({settings.migrations_table, settings.migrations_table.split(".")[-1]})
    migrations = discover(settings.migrations)
    with ExitStack() as stack:
        shadow = scratch_shadow(stack, settings)
        if migrations:
            shadow.apply_through(migrations[-1].version)
        with connect(shadow.url, autocommit=True) as conn:
            history = take_snapshot(conn, exclude_tables=excluded)
        if database_url is not None:
            with connect(database_url, autocommit=True) as conn:
                live = take_snapshot(conn, exclude_tables=excluded)
                changes = compare(live, history, same_default_on(conn))
            return DiffResult(changes, describe_target(database_url), "migrations")
        metadata = schema_metadata(settings)
        with Shadow(settings, server_url=shadow.server_url) as desired:
            create_desired(desired.url, metadata, history.extensions)
            with connect(desired.url, autocommit=True) as conn:
                target = take_snapshot(conn, exclude_tables=excluded)
                same = same_default_on(conn)
                changes = compare(history, target, same)
                result = DiffResult(changes, "migrations", f"schema.py ({settings.schema})")
                if write is None or not changes:
                    return result
                draft = build_draft(changes, metadata)
                close_loop(settings, shadow, draft, write, target, same, excluded)
        result.written = _write(settings.migrations, write, draft)
        result.commented = draft.commented
        return result


def close_loop(
    settings: Settings,
    shadow: Shadow,
    draft: Draft,
    name: str,
    target: Snapshot,
    same: SameDefault,
    excluded: frozenset[str],
) -> None:
    """Apply ``draft`` to a clone of the shadow; refuse unless it leaves only what it commented out."""
    from ..lint import lint
    from ..runner import up

    with tempfile.TemporaryDirectory(prefix="qk_draft_") as scratch, shadow.clone() as url:
        directory = Path(scratch) / "migrations"
        shutil.copytree(settings.migrations, directory)
        trial = settings.with_overrides(database_url=url, migrations=directory)
        paths = _write(directory, name, draft)
        try:
            up(trial)
        except QueryKitError as exc:
            raise DraftNotClosed(
                f"the draft failed on a clone of the shadow database, nothing written: {exc}"
            ) from exc
        with connect(url, autocommit=True) as conn:
            after = take_snapshot(conn, exclude_tables=excluded)
        allowed = {key for c in draft.commented for key in c.remains}
        left = [c for c in compare(after, target, same) if c.key not in allowed]
        if left:
            listed = "; ".join(c.text().strip() for c in left)
            raise DraftNotClosed(
                f"the draft does not reach schema.py, nothing written; still different: {listed}"
            )
        findings = lint(trial, paths, database_url=None).errors if paths else []
        if findings:
            listed = "; ".join(f"{f.rule} at line {f.line}" for f in findings)
            raise DraftNotClosed(f"the draft does not lint clean, nothing written: {listed}")


_HEADER = (
    "-- Drafted by `querykit migrate diff --write` from schema.py: review before `migrate up`.\n"
)


def _write(directory: Path, name: str, draft: Draft) -> list[Path]:
    paths = []
    for part in draft.files:
        path = new_migration(directory, f"{name}{part.suffix}")
        path.write_text(part.text(_HEADER), encoding="utf-8")
        paths.append(path)
    return paths
