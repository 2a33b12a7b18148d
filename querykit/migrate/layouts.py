"""Other tools' migration directories, read in place: no renaming, no flattening.

``migrations_layout`` (or ``--layout``) names the layout; ``auto`` (the default)
looks at the directory and says what it chose and why. Each layout maps its
files to :class:`~querykit.migrate.files.Migration` objects and honours that
tool's own "no transaction" marker, on top of querykit's detection from the
parsed SQL (``CREATE INDEX CONCURRENTLY`` and the like):

============== ============================================== ===============================
layout         files                                          no-transaction marker
============== ============================================== ===============================
querykit       ``0001_name.sql``, ``-- querykit:down``        ``-- querykit:no-transaction``
prisma         ``<timestamp>_<name>/migration.sql``           (none)
drizzle        ``<NNNN>_<name>.sql`` + ``meta/_journal.json`` (none)
diesel         ``<version>_<name>/up.sql`` + ``down.sql``     ``metadata.toml``: ``run_in_transaction = false``
sqlx           ``<version>_<name>.sql`` or ``.up.sql/.down.sql`` first line ``-- no-transaction``
golang-migrate ``<version>_<name>.up.sql`` / ``.down.sql``    (none; a BEGIN ... COMMIT wrapper is dropped)
dbmate         ``-- migrate:up`` / ``-- migrate:down`` parts  ``-- migrate:up transaction:false``
flyway         ``V<version>__<description>.sql`` + ``U...``   ``V1__x.sql.conf``: ``executeInTransaction=false``
============== ============================================== ===============================

Flyway's versions may be dotted (``V1.1__``, ``V2.0.3__``, ``V1_1__`` with
underscores read as dots) and compare part by part as numbers, as Flyway does;
its ``U<version>__`` undo file is the down part of the ``V`` file of the same
version (``querykit migrate down``). Repeatable ``R__`` files are refused with
a message: querykit applies each file once, in version order.

    >>> chosen = resolve_layout(Path("prisma/migrations"), "auto")
    >>> chosen.name, chosen.reason
    ('prisma', 'found migration_lock.toml')
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, MigrationFileError
from .files import (
    Migration,
    Parsed,
    decode_sql,
    discover,
    display_path,
    migration_paths,
    no_statements,
    read_bytes,
    split_section,
    split_statements,
)
from .version import Version

__all__ = ["LAYOUTS", "Layout", "discover_layout", "resolve_layout"]

LAYOUTS = ("querykit", "prisma", "drizzle", "diesel", "sqlx", "golang-migrate", "dbmate", "flyway")


@dataclass(frozen=True)
class Layout:
    """The layout a directory is read with, and why."""

    name: str
    reason: str


def resolve_layout(directory: Path, setting: str) -> Layout:
    """The layout named by ``setting``, or for ``auto`` the one the directory's files show."""
    if setting != "auto":
        if setting not in LAYOUTS:
            raise ConfigError(
                f"migrations_layout {setting!r} is not a layout; use auto or one of "
                + ", ".join(LAYOUTS)
            )
        return Layout(setting, "set by migrations_layout")
    migration_paths_exist(directory)
    return _detect(directory)


def migration_paths_exist(directory: Path) -> None:
    """The same error as querykit's own layout for a directory that is not there."""
    if not directory.is_dir():
        migration_paths(directory)  # raises, naming the path


def discover_layout(directory: Path, layout: str) -> list[Migration]:
    """Every migration of ``directory`` read as ``layout``, sorted by version."""
    if layout == "querykit":
        return discover(directory)
    migration_paths_exist(directory)
    found = _READERS[layout](directory)
    return _checked(directory, found.migrations, found.problems)


def read_directory(directory: Path, setting: str) -> list[Migration]:
    """The files of ``directory`` in the layout ``setting`` names (or ``auto`` detects)."""
    return discover_layout(directory, resolve_layout(directory, setting).name)


# -- detection --------------------------------------------------------------------------


def _detect(directory: Path) -> Layout:
    subdirs = [d for d in directory.iterdir() if d.is_dir() and not d.name.startswith(".")]
    files = sorted(f for f in directory.iterdir() if f.is_file() and f.suffix == ".sql")
    if (directory / "migration_lock.toml").is_file():
        return Layout("prisma", "found migration_lock.toml")
    if any((d / "migration.sql").is_file() for d in subdirs):
        return Layout("prisma", "found <name>/migration.sql")
    if (directory / "meta" / "_journal.json").is_file():
        return Layout("drizzle", "found meta/_journal.json")
    if any((d / "up.sql").is_file() for d in subdirs):
        return Layout("diesel", "found <name>/up.sql")
    # A look at every file: one stray name must not switch a whole directory's layout.
    numbered = [f for f in files if f.name[:1].isdigit()]
    if not numbered and any(_FLYWAY.match(f.name) or f.name.startswith("R__") for f in files):
        return Layout("flyway", "found V<version>__<description>.sql")
    texts = {f: _text(f) for f in files}  # each file read once
    no_tx = any(_first_line(texts[f]) == _SQLX_NO_TX for f in numbered)
    if numbered and all(f.name.endswith((".up.sql", ".down.sql")) for f in numbered):
        if no_tx:
            return Layout("sqlx", "found .up.sql files and a '-- no-transaction' first line")
        return Layout(
            "golang-migrate",
            "found .up.sql/.down.sql pairs (sqlx writes the same names: set "
            "migrations_layout = 'sqlx' for its ledger)",
        )
    if any(_DBMATE_UP.search(texts[f]) for f in files):
        return Layout("dbmate", "found '-- migrate:up'")
    if no_tx:
        return Layout("sqlx", "found a '-- no-transaction' first line")
    return Layout("querykit", "no other tool's layout found")


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0].strip()


def _text(path: Path) -> str:
    try:
        return decode_sql(path, path.read_bytes())[0]
    except OSError:
        return ""


# -- shared -----------------------------------------------------------------------------


@dataclass
class _Found:
    migrations: list[Migration]
    problems: list[str]


def _checked(directory: Path, found: list[Migration], problems: list[str]) -> list[Migration]:
    """All bad names and shared versions of a directory in one error, else sorted migrations."""
    by_version: dict[Version, list[Migration]] = {}
    for m in found:
        by_version.setdefault(m.version, []).append(m)
    for version, same in sorted(by_version.items()):
        if len(same) > 1:
            names = " and ".join(sorted(m.filename for m in same))
            problems.append(
                f"{display_path(directory)}: {names} share version {version}; every migration "
                "needs its own version, rename all but one"
            )
    if problems:
        head = f"{len(problems)} problem(s) with migration names: " if len(problems) > 1 else ""
        raise MigrationFileError(head + "; ".join(problems), path=str(directory))
    return sorted(found, key=lambda m: m.version)


def _read(path: Path) -> tuple[str, MigrationFileError | None]:
    return decode_sql(path, read_bytes(path))


def _migration(
    path: Path,
    digits: str,
    name: str,
    reader: Callable[[Migration], Parsed],
    *,
    label: str | None = None,
    down_path: Path | None = None,
) -> Migration:
    text, error = _read(path)
    down_text = None
    if down_path is not None:
        down_text, down_error = _read(down_path)
        error = error or down_error
    whole = text if down_text is None else f"{text}\0{down_text}"
    return Migration(
        path=path,
        version=Version.parse(digits),
        version_text=digits,
        name=name,
        checksum=hashlib.sha256(whole.encode()).hexdigest(),
        text=text,
        decode_error=error,
        label=label,
        down_path=down_path,
        down_text=down_text,
        reader=reader,
    )


def _up(m: Migration, *, unwrap: bool = False) -> Parsed:
    """The whole file as the up part (and the down file as the down part, when there is one)."""
    up = split_statements(m.path, m.text, unwrap_transaction=unwrap)
    if not up:
        raise no_statements(m.path)
    down = None
    if m.down_path is not None and m.down_text is not None:
        down = split_statements(m.down_path, m.down_text, unwrap_transaction=unwrap) or None
    return Parsed(up=up, down=down)


def _plain(m: Migration) -> Parsed:
    return _up(m)


def _unwrapped(m: Migration) -> Parsed:
    return _up(m, unwrap=True)


def _not_a_name(path: Path, expected: str) -> str:
    return f"{display_path(path)}: not a migration name of this layout; expected {expected}"


def _sql_files(directory: Path) -> Iterable[Path]:
    return sorted(
        p for p in directory.iterdir() if p.is_file() and p.suffix == ".sql" and p.name[0] != "."
    )


# -- prisma -----------------------------------------------------------------------------

_DIR_NAME = re.compile(r"^(?P<version>[0-9]+)_(?P<name>.+)$")


def _prisma(directory: Path) -> _Found:
    found, problems = [], []
    for sub in sorted(p for p in directory.iterdir() if p.is_dir() and p.name[0] != "."):
        match = _DIR_NAME.match(sub.name)
        sql = sub / "migration.sql"
        if match is None or not sql.is_file():
            problems.append(_not_a_name(sub, "<timestamp>_<name>/migration.sql"))
            continue
        found.append(_migration(sql, match["version"], match["name"], _plain, label=sub.name))
    return _Found(found, problems)


# -- drizzle ----------------------------------------------------------------------------


def drizzle_journal(directory: Path) -> list[dict[str, object]]:
    """The entries of ``meta/_journal.json``, in its order."""
    path = directory / "meta" / "_journal.json"
    try:
        entries = json.loads(path.read_text())["entries"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MigrationFileError(
            f"{display_path(path)}: cannot read drizzle's journal ({exc}); it lists the "
            "migrations in order: restore it from version control",
            path=str(path),
        ) from None
    return list(entries)


def _drizzle(directory: Path) -> _Found:
    found, problems = [], []
    listed = set()
    for entry in drizzle_journal(directory):
        tag = str(entry.get("tag", ""))
        listed.add(f"{tag}.sql")
        path = directory / f"{tag}.sql"
        match = _DIR_NAME.match(tag)
        if match is None or not path.is_file():
            problems.append(
                f"{display_path(path)}: listed in meta/_journal.json but "
                + ("missing" if match else "not named <NNNN>_<name>")
            )
            continue
        found.append(_migration(path, match["version"], match["name"], _plain))
    for path in _sql_files(directory):
        if path.name not in listed:
            problems.append(
                f"{display_path(path)}: not listed in meta/_journal.json, so drizzle would never "
                "apply it; generate migrations with drizzle-kit, or delete the file"
            )
    return _Found(found, problems)


# -- diesel -----------------------------------------------------------------------------

_DIESEL_DIR = re.compile(r"^(?P<version>[0-9][0-9-]*)_(?P<name>.+)$")


def _diesel(directory: Path) -> _Found:
    found, problems = [], []
    for sub in sorted(p for p in directory.iterdir() if p.is_dir() and p.name[0] != "."):
        match = _DIESEL_DIR.match(sub.name)
        up = sub / "up.sql"
        if match is None or not up.is_file():
            problems.append(_not_a_name(sub, "<version>_<name>/up.sql"))
            continue
        down = sub / "down.sql"
        digits = match["version"].replace("-", "")
        found.append(
            _migration(
                up,
                digits,
                match["name"],
                _diesel_reader,
                label=sub.name,
                down_path=down if down.is_file() else None,
            )
        )
    return _Found(found, problems)


def _diesel_reader(m: Migration) -> Parsed:
    parsed = _plain(m)
    metadata = m.path.parent / "metadata.toml"
    if metadata.is_file():
        try:
            settings = tomllib.loads(metadata.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise MigrationFileError(
                f"{display_path(metadata)}: not valid TOML: {exc}", path=str(metadata)
            ) from None
        if settings.get("run_in_transaction") is False:
            return Parsed(parsed.up, parsed.down, no_transaction_marker=True)
    return parsed


# -- sqlx and golang-migrate ------------------------------------------------------------

_SQLX = re.compile(r"^(?P<version>[0-9]+)_(?P<name>.+?)(?P<part>\.up|\.down)?\.sql$")
_SQLX_NO_TX = "-- no-transaction"


def _pairs(
    directory: Path, *, reversible_only: bool, reader: Callable[[Migration], Parsed]
) -> _Found:
    found, problems = [], []
    ups: dict[str, tuple[Path, str, str]] = {}
    downs: dict[str, Path] = {}
    expected = (
        "<version>_<name>.up.sql / .down.sql"
        if reversible_only
        else "<version>_<name>.sql or <version>_<name>.up.sql / .down.sql"
    )
    for path in _sql_files(directory):
        match = _SQLX.match(path.name)
        if match is None or (reversible_only and not match["part"]):
            problems.append(_not_a_name(path, expected))
            continue
        key = f"{match['version']}_{match['name']}"
        if match["part"] == ".down":
            downs[key] = path
        else:
            ups[key] = (path, match["version"], match["name"])
    for key, down in downs.items():
        if key not in ups:
            problems.append(f"{display_path(down)}: a down file without its up file")
    for key, (path, digits, name) in ups.items():
        found.append(_migration(path, digits, name, reader, down_path=downs.get(key)))
    return _Found(found, problems)


def _sqlx(directory: Path) -> _Found:
    return _pairs(directory, reversible_only=False, reader=_sqlx_reader)


def _sqlx_reader(m: Migration) -> Parsed:
    parsed = _plain(m)
    if m.text.split("\n", 1)[0].strip() == _SQLX_NO_TX:
        return Parsed(parsed.up, parsed.down, no_transaction_marker=True)
    return parsed


def _golang_migrate(directory: Path) -> _Found:
    return _pairs(directory, reversible_only=True, reader=_unwrapped)


# -- dbmate -----------------------------------------------------------------------------

_DBMATE_UP = re.compile(r"^--\s*migrate:up\b(?P<options>.*)$", re.MULTILINE)
_DBMATE_DOWN = re.compile(r"^--\s*migrate:down\b.*$", re.MULTILINE)
_PLAIN_NAME = re.compile(r"^(?P<version>[0-9]+)_(?P<name>.+)\.sql$")


def _dbmate(directory: Path) -> _Found:
    found, problems = [], []
    for path in _sql_files(directory):
        match = _PLAIN_NAME.match(path.name)
        if match is None:
            problems.append(_not_a_name(path, "<version>_<name>.sql"))
            continue
        found.append(_migration(path, match["version"], match["name"], _dbmate_reader))
    return _Found(found, problems)


def _dbmate_reader(m: Migration) -> Parsed:
    up_marker = _DBMATE_UP.search(m.text)
    if up_marker is None:
        raise MigrationFileError(
            f"{display_path(m.path)}: no '-- migrate:up' line; dbmate files start their up part "
            "with one",
            path=str(m.path),
        )
    down_marker = _DBMATE_DOWN.search(m.text, up_marker.end())
    up_end = down_marker.start() if down_marker else len(m.text)
    up = split_section(m.path, m.text, up_marker.end(), up_end)
    if not up:
        raise no_statements(m.path, " after '-- migrate:up'")
    down = split_section(m.path, m.text, down_marker.end(), len(m.text)) if down_marker else ()
    no_tx = "transaction:false" in up_marker["options"].replace(" ", "")
    return Parsed(up=up, down=down or None, no_transaction_marker=no_tx)


# -- flyway -----------------------------------------------------------------------------

_FLYWAY = re.compile(r"^(?P<prefix>[VU])(?P<version>[0-9]+(?:[._][0-9]+)*)__(?P<name>.+)\.sql$")


def _flyway(directory: Path) -> _Found:
    found, problems = [], []
    ups: dict[Version, tuple[Path, str, str]] = {}
    undos: dict[Version, Path] = {}
    for path in _sql_files(directory):
        match = _FLYWAY.match(path.name)
        if path.name.startswith("R__"):
            problems.append(
                f"{display_path(path)}: Flyway's repeatable migrations (R__) are not supported: "
                "querykit applies each file once, in version order. Put the current SQL of "
                "the view or function in a versioned V<version>__ file (CREATE OR REPLACE), "
                "and a new one each time it changes"
            )
        elif match is None:
            problems.append(
                _not_a_name(path, "V<version>__<description>.sql (or U<version>__ for its undo)")
            )
        elif match["prefix"] == "U":
            undos[Version.parse(match["version"])] = path
        else:
            version = Version.parse(match["version"])
            if version in ups:
                problems.append(
                    f"{display_path(directory)}: {ups[version][0].name} and {path.name} share "
                    f"version {version}; every migration needs its own version, rename all "
                    "but one"
                )
                continue
            ups[version] = (path, match["version"], match["name"])
    for version, undo in undos.items():
        if version not in ups:
            problems.append(f"{display_path(undo)}: an undo (U) file without its V file")
    for version, (path, digits, name) in ups.items():
        found.append(_migration(path, digits, name, _flyway_reader, down_path=undos.get(version)))
    return _Found(found, problems)


def _flyway_reader(m: Migration) -> Parsed:
    parsed = _plain(m)
    conf = m.path.with_name(m.path.name + ".conf")
    if conf.is_file():
        lines = [line.split("=", 1) for line in conf.read_text().splitlines() if "=" in line]
        options = {k.strip(): v.strip().lower() for k, v in lines}
        if options.get("executeInTransaction") == "false":
            return Parsed(parsed.up, parsed.down, no_transaction_marker=True)
    return parsed


_READERS: dict[str, Callable[[Path], _Found]] = {
    "prisma": _prisma,
    "drizzle": _drizzle,
    "diesel": _diesel,
    "sqlx": _sqlx,
    "golang-migrate": _golang_migrate,
    "dbmate": _dbmate,
    "flyway": _flyway,
}
