"""Take over from another tool's ledger: record what it applied, run nothing.

``querykit migrate adopt`` reads the ledger table of the tool whose layout the
directory follows (or ``--from``), and records each migration it applied in
querykit's ledger, with querykit's checksum of the file, as a baseline row: it
was run, but not by querykit. ``up`` then applies only the rest, so nothing is
applied twice after switching. The other tool's table is left as it was.

It refuses, changing nothing, when that ledger records a failed or dirty
migration, when a migration it records has no file here, and (for Prisma,
drizzle, sqlx and Flyway, whose ledgers keep a hash of the file) when a file
changed since that tool applied it; the message names the file and both hashes
where the tool's ledger holds a comparable one (Flyway's CRC32)::

    >>> [name for name in adopt(settings).recorded]
    ['20240101000000_init', '20240102000000_users']
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ..errors import ConfigError, MigrationRefused
from ..settings import Settings
from .files import Migration, display_path
from .layouts import LAYOUTS, drizzle_journal
from .lock import MigrationLock, application_name
from .runner import (
    DEFAULT_LOCK_WAIT,
    Target,
    database_errors,
    mark_applied,
    migration_connection,
    resolve_target,
)
from .version import Version

__all__ = ["FOREIGN_LEDGERS", "AdoptResult", "adopt"]

FOREIGN_LEDGERS = {
    "prisma": "public._prisma_migrations",
    "drizzle": "drizzle.__drizzle_migrations",
    "diesel": "public.__diesel_schema_migrations",
    "sqlx": "public._sqlx_migrations",
    "golang-migrate": "public.schema_migrations",
    "dbmate": "public.schema_migrations",
    "flyway": "public.flyway_schema_history",
}
"""Where each tool keeps its ledger by default."""


@dataclass(frozen=True)
class AdoptResult:
    """What ``migrate adopt`` recorded from another tool's ledger."""

    tool: str
    table: str
    recorded: tuple[str, ...]
    """The migrations recorded as applied, in version order."""
    already: bool = False
    """querykit's ledger already had them all: nothing to do."""

    @property
    def nothing_to_do(self) -> bool:
        """True when nothing was recorded (exit 4 under ``--exit-code``)."""
        return self.already or not self.recorded

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "from": self.tool,
            "table": self.table,
            "recorded": list(self.recorded),
            "nothing_to_do": self.nothing_to_do,
        }


@dataclass
class _Foreign:
    """What the other ledger says: the migrations it applied, and what stops a takeover."""

    applied: list[Migration] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def adopt(
    settings: Settings | None = None,
    *,
    source: str | None = None,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> AdoptResult:
    """Record what ``source`` (default: the directory's layout) applied, without running it."""
    target = resolve_target(settings)
    tool = source or target.layout.name
    if tool not in FOREIGN_LEDGERS:
        known = ", ".join(name for name in LAYOUTS if name in FOREIGN_LEDGERS)
        raise ConfigError(
            f"adopt reads another tool's ledger; {tool!r} is not one of {known}: give "
            "--from TOOL, or set migrations_layout"
        )
    files = target.files()
    table = FOREIGN_LEDGERS[tool]
    with (
        database_errors(target),
        MigrationLock(target.url, target.table, wait=lock_wait) as lock,
        migration_connection(target) as conn,
    ):
        lock.wait_for_orphans(application_name(target.table, "run"), conn.info.backend_pid)
        if not _exists(conn, table):
            raise MigrationRefused(
                f"there is no table {table} in this database: nothing to adopt from {tool}. "
                "Is this the database it migrated? For a database without any ledger, "
                "querykit migrate baseline VERSION marks files applied"
            )
        foreign = _READ[tool](conn, target, files)
        if foreign.problems:
            raise MigrationRefused(
                f"cannot take over from {tool} ({table}): "
                + "; ".join(foreign.problems)
                + ". Nothing was recorded"
            )
        return _record(conn, target, lock, tool, table, foreign.applied)


def _record(
    conn: psycopg.Connection[Any],
    target: Target,
    lock: MigrationLock,
    tool: str,
    table: str,
    applied: list[Migration],
) -> AdoptResult:
    ledger = target.ledger
    ledger.ensure(conn)
    rows = ledger.rows(conn)
    names = tuple(m.filename for m in applied)
    if rows:
        if all(m.version in rows and rows[m.version].name == m.filename for m in applied):
            return AdoptResult(tool, table, names, already=True)
        latest = rows[max(rows)]
        raise MigrationRefused(
            f"the ledger {target.table} already has {len(rows)} row(s), the latest "
            f"{latest.name}, which differ from what {tool} applied; adopt is for the switch "
            "from another tool to querykit, before querykit has migrated this database"
        )
    mark_applied(conn, target, lock, applied)
    return AdoptResult(tool, table, names)


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _raw_sha(m: Migration, algorithm: str = "sha256") -> str:
    """The hash the other tool took of the file's bytes as they are on disk."""
    return hashlib.new(algorithm, m.path.read_bytes()).hexdigest()


def _missing(tool: str, names: list[str], target: Target) -> str:
    return (
        f"{tool} applied {', '.join(names)}, which {'is' if len(names) == 1 else 'are'} not in "
        f"{display_path(target.directory)}; restore the files (e.g. from version control)"
    )


def _changed(tool: str, m: Migration) -> str:
    return (
        f"{display_path(m.path)} changed since {tool} applied it (its hash in {tool}'s ledger "
        "differs); restore the file as it was applied"
    )


def _by_versions(
    tool: str, target: Target, files: list[Migration], versions: list[Version]
) -> _Foreign:
    by_version = {m.version: m for m in files}
    found = _Foreign()
    missing = [str(v) for v in versions if v not in by_version]
    if missing:
        found.problems.append(_missing(tool, [f"version {v}" for v in missing], target))
    found.applied = [by_version[v] for v in sorted(set(versions)) if v in by_version]
    return found


def _prisma(conn: psycopg.Connection[Any], target: Target, files: list[Migration]) -> _Foreign:
    rows = conn.execute(
        "SELECT migration_name, checksum, finished_at IS NOT NULL, rolled_back_at IS NOT NULL "
        "FROM _prisma_migrations ORDER BY started_at"
    ).fetchall()
    by_name = {m.filename: m for m in files}
    found = _Foreign()
    missing: list[str] = []
    for name, checksum, finished, rolled_back in rows:
        if rolled_back:
            continue
        if not finished:
            found.problems.append(
                f"prisma recorded {name} as failed (started, never finished); resolve it first "
                "(fix the database, then prisma migrate resolve --applied or --rolled-back)"
            )
            continue
        m = by_name.get(name)
        if m is None:
            missing.append(name)
        elif _raw_sha(m) != checksum:
            found.problems.append(_changed("prisma", m))
        else:
            found.applied.append(m)
    if missing:
        found.problems.append(_missing("prisma", missing, target))
    return found


def _drizzle(conn: psycopg.Connection[Any], target: Target, files: list[Migration]) -> _Foreign:
    rows = conn.execute("SELECT hash, created_at FROM drizzle.__drizzle_migrations").fetchall()
    found = _Foreign()
    if not rows:
        return found
    last = max(int(created) for _, created in rows if created is not None)
    hashes = {h for h, _ in rows}
    by_tag = {m.path.stem: m for m in files}
    for entry in drizzle_journal(target.directory):
        when = int(str(entry.get("when", 0)))
        if when > last:
            continue  # drizzle applies journal entries newer than its last row
        m = by_tag.get(str(entry.get("tag")))
        if m is None:
            found.problems.append(_missing("drizzle", [f"{entry.get('tag')}.sql"], target))
        elif _raw_sha(m) not in hashes:
            found.problems.append(_changed("drizzle", m))
        else:
            found.applied.append(m)
    return found


def _diesel(conn: psycopg.Connection[Any], target: Target, files: list[Migration]) -> _Foreign:
    rows = conn.execute("SELECT version FROM __diesel_schema_migrations").fetchall()
    versions = [Version.parse(v.replace("-", "")) for (v,) in rows]
    return _by_versions("diesel", target, files, versions)


def _sqlx(conn: psycopg.Connection[Any], target: Target, files: list[Migration]) -> _Foreign:
    rows = conn.execute("SELECT version, success, checksum FROM _sqlx_migrations").fetchall()
    failed = [str(v) for v, success, _ in rows if not success]
    versions = [Version((v,)) for v, success, _ in rows if success]
    found = _by_versions("sqlx", target, files, versions)
    if failed:
        found.problems.append(
            f"sqlx recorded version {', '.join(failed)} as failed (dirty); fix the database "
            "and delete that row from _sqlx_migrations, or rerun it with sqlx first"
        )
    checksums = {v: bytes(c).hex() for v, _, c in rows}
    for m in found.applied:
        if checksums.get(m.version) != _raw_sha(m, "sha384"):
            found.problems.append(_changed("sqlx", m))
    return found


def _golang_migrate(
    conn: psycopg.Connection[Any], target: Target, files: list[Migration]
) -> _Foreign:
    try:
        rows = conn.execute("SELECT version, dirty FROM schema_migrations").fetchall()
    except psycopg.errors.UndefinedColumn:
        raise MigrationRefused(
            "schema_migrations has no dirty column: it is not golang-migrate's (dbmate's?); "
            "give --from dbmate"
        ) from None
    if not rows:
        return _Foreign()
    version, dirty = rows[0]
    if dirty:
        return _Foreign(
            problems=[
                f"golang-migrate marked version {version} dirty: it failed part way. Fix the "
                f"database, then migrate force {version} (or the version before it)"
            ]
        )
    wanted = [m.version for m in files if m.version <= version]
    if version not in {m.version for m in files}:
        return _by_versions("golang-migrate", target, files, [*wanted, Version((version,))])
    return _by_versions("golang-migrate", target, files, wanted)


def _dbmate(conn: psycopg.Connection[Any], target: Target, files: list[Migration]) -> _Foreign:
    rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
    try:
        versions = [Version.parse(str(v)) for (v,) in rows]
    except ValueError:
        raise MigrationRefused(
            "schema_migrations holds versions that are not numbers: it is not dbmate's"
        ) from None
    return _by_versions("dbmate", target, files, versions)


def flyway_checksum(data: bytes) -> int:
    """Flyway's checksum of a file: CRC32 over its lines without their line endings.

    Flyway reads the file as UTF-8 text line by line (a line ends at LF, CR or
    CRLF), drops a BOM, feeds each line's UTF-8 bytes to a CRC32 and stores the
    result as a signed 32-bit integer. Lines joined without separators are the
    text without its CR and LF characters, so that is what is hashed here.
    """
    text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    crc = zlib.crc32(text.replace("\r", "").replace("\n", "").encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def _flyway(conn: psycopg.Connection[Any], target: Target, files: list[Migration]) -> _Foreign:
    rows = conn.execute(
        "SELECT version, type, success, script, checksum FROM flyway_schema_history "
        "WHERE version IS NOT NULL AND type <> 'SCHEMA' ORDER BY installed_rank"
    ).fetchall()
    applied: dict[Version, int | None] = {}
    """Version -> the checksum Flyway recorded when it applied it (None: a baseline)."""
    problems: list[str] = []
    for version, kind, success, script, checksum in rows:
        if not Version.is_version(str(version)):
            problems.append(f"{script} has version {version}, which is not a version of digits")
            continue
        number = Version.parse(str(version))
        if not success:
            problems.append(f"flyway recorded {script} as failed; run flyway repair first")
        elif kind == "BASELINE":
            applied.update((m.version, None) for m in files if m.version <= number)
        elif kind in ("UNDO_SQL", "DELETE"):
            applied.pop(number, None)
        else:
            applied[number] = checksum
    found = _by_versions("flyway", target, files, sorted(applied))
    for m in found.applied:
        recorded = applied[m.version]
        if recorded is None:
            continue
        computed = flyway_checksum(m.path.read_bytes())
        if computed != recorded:
            problems.append(
                f"{display_path(m.path)} changed since flyway applied it: flyway_schema_history "
                f"records checksum {recorded}, the file now has {computed} (Flyway's CRC32); "
                "restore the file as it was applied, or, if the change is deliberate and the "
                "database already matches it, run flyway repair to record the new checksum"
            )
    found.problems[:0] = problems
    return found


_READ: dict[str, Callable[[psycopg.Connection[Any], Target, list[Migration]], _Foreign]] = {
    "prisma": _prisma,
    "drizzle": _drizzle,
    "diesel": _diesel,
    "sqlx": _sqlx,
    "golang-migrate": _golang_migrate,
    "dbmate": _dbmate,
    "flyway": _flyway,
}
