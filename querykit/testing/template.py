"""The template database: the project's migrations (and test seed) applied once, then cloned.

A template is built by querykit's own migration runner, so tests run against the
schema that ships, not one made from ``schema.py``. It is cached on the server
under a name holding a hash of everything it depends on:

- the bytes of every file in the migrations directory, and the ``upto`` version;
- the seed (its name, and the bytes of its file);
- the server's version and the versions of the extensions it has available.

When none of them changed, the next run reuses it without connecting to it. It is
built under a different name and renamed when complete, so a crash never leaves a
half-built template that looks finished. Building holds a file lock, so
pytest-xdist workers build it once; the others wait and reuse it.

Clones use ``STRATEGY WAL_LOG`` up to :data:`FILE_COPY_ABOVE` bytes and
``FILE_COPY`` above, or on a server without fsync: WAL_LOG copies block by block
through the WAL, which is the fastest for small databases, and FILE_COPY copies
files between two checkpoints, whose cost is the sync of everything dirty.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo
from psycopg import sql

from .. import migrate
from ..admin import seed as run_seed
from ..errors import QueryKitError
from ..settings import Settings
from ..trusted_sql import trusted
from . import names

FILE_COPY_ABOVE = 64 * 1024 * 1024
"""Measured on a busy 2-vCPU machine (``python -m bench testing``). On a server with
fsync=on, FILE_COPY (whose two checkpoints flush and sync) took 1.40x, 1.12x and 0.78x
WAL_LOG's time for 8, 42 and 111 MB templates: the lines cross near 65 MB. With
fsync=off, as on the plugin's own server, checkpoints skip the sync: FILE_COPY was
even with WAL_LOG at 7-25 MB on a quiet machine, 1.2-2.5x faster on 8 MB under load,
and 1.5x and 2x faster at 77 and 283 MB. So: FILE_COPY above 64 MB, or without fsync."""


@dataclass(frozen=True)
class Template:
    """A template database: its name, size and whether the server fsyncs."""

    name: str
    size: int
    """Bytes, from ``pg_database_size``."""
    built: bool
    """True when this call built it; False when it came from the cache."""
    fsync: bool
    """The server's ``fsync`` setting: without it a checkpoint is cheap, and so is FILE_COPY."""
    seconds: float
    """How long ensuring it took (looking up, or building)."""

    @property
    def strategy(self) -> str:
        """``FILE_COPY`` above the measured size (or without fsync), else ``WAL_LOG``."""
        return "FILE_COPY" if self.size > FILE_COPY_ABOVE or not self.fsync else "WAL_LOG"


def ensure_template(
    admin_url: str, settings: Settings, upto: str | None = None, lock: Path | None = None
) -> Template:
    """The template for these migrations (up to ``upto``) on this server: cached or built now.

    ``lock`` is the file that serialises builders; by default one per server in the
    temporary directory (a run's own server passes one in its run directory).
    """
    started = time.perf_counter()
    project = names.project_tag(settings.project_dir)
    with _admin(admin_url) as conn:
        key = cache_key(conn, settings, upto)
    name = names.template_name(project, upto, key)
    with _file_lock(lock or server_lock(admin_url)), _admin(admin_url) as conn:
        drop_leftovers(conn, project, keep=name, upto=upto)
        built = not _exists(conn, name)
        if built:
            _build(conn, admin_url, settings, upto, key, name)
        row = conn.execute(
            "SELECT pg_database_size(%s), current_setting('fsync') = 'on'", [name]
        ).fetchone()
    assert row is not None
    return Template(name, int(row[0]), built, bool(row[1]), time.perf_counter() - started)


def cache_key(conn: psycopg.Connection[Any], settings: Settings, upto: str | None) -> str:
    """A hash of the migration files, ``upto``, the seed, the server and its extensions."""
    digest = hashlib.sha256()
    directory = settings.migrations
    if directory.is_dir():
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(directory)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(f"upto={upto}\0layout={settings.migrations_layout}\0".encode())
    digest.update(f"table={settings.migrations_table}\0".encode())
    seed = settings.testing.seed
    digest.update(f"seed={seed}\0".encode())
    seed_file = _seed_file(settings)
    if seed_file is not None:
        digest.update(hashlib.sha256(seed_file.read_bytes()).digest())
    row = conn.execute(
        "SELECT current_setting('server_version_num'),"
        " string_agg(name || '=' || coalesce(default_version, ''), ',' ORDER BY name)"
        " FROM pg_available_extensions"
    ).fetchone()
    assert row is not None
    digest.update(f"server={row[0]}\0extensions={row[1]}".encode())
    return digest.hexdigest()


def _seed_file(settings: Settings) -> Path | None:
    """The file the test seed runs, so that editing it rebuilds the template."""
    seed = settings.testing.seed
    if not seed:
        return None
    if seed.endswith(".sql"):
        path = Path(seed) if Path(seed).is_absolute() else settings.project_dir / seed
        return path if path.is_file() else None
    module = seed.partition(":")[0]
    candidate = settings.project_dir / (module.replace(".", "/") + ".py")
    if candidate.is_file():
        return candidate
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            return Path(spec.origin)
    return None


def _build(
    conn: psycopg.Connection[Any],
    admin_url: str,
    settings: Settings,
    upto: str | None,
    key: str,
    name: str,
) -> None:
    building = names.building_name(names.project_tag(settings.project_dir), key)
    ident = sql.Identifier(building)
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
    conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    target = settings.with_overrides(database_url=names.clone_url(admin_url, building), lint="off")
    try:
        migrate.up(target, to=upto)
        if settings.testing.seed:
            run_seed(target.with_overrides(seed=settings.testing.seed))
    except QueryKitError as exc:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        exc.add_note("querykit.testing: building the test template failed; nothing was kept")
        raise
    except BaseException:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        raise
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident, sql.Identifier(name)))
    # No connections: CREATE DATABASE ... TEMPLATE fails while anyone is connected to it.
    conn.execute(
        sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
            sql.Identifier(name)
        )
    )


def drop_leftovers(
    conn: psycopg.Connection[Any], project: str, keep: str, upto: str | None
) -> list[str]:
    """Drop this project's outdated templates (of the same variant), half-built ones,
    and clones of dead processes.

    Runs under the template lock, so no other process of this project is building;
    clones are dropped only when the process named in them is gone from this host.
    """
    _stop_orphaned_creates(conn, project)
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s",
        [f"qk\\_%\\_{project}\\_%"],
    ).fetchall()
    dropped = []
    for (datname,) in rows:
        outdated = datname.startswith(f"qk_t_{project}_{names.variant(upto)}_") and datname != keep
        stale_template = outdated or datname.startswith("qk_b_")
        owner = names.clone_owner(datname, project)
        if stale_template or (owner is not None and not names.pid_alive(owner)):
            drop_database(conn, datname)
            dropped.append(datname)
    return dropped


def _stop_orphaned_creates(conn: psycopg.Connection[Any], project: str) -> None:
    """Cancel a ``CREATE DATABASE`` of a clone whose process is gone, and wait for it.

    A worker killed while its clone-ahead thread was cloning leaves that statement
    running on the server (the server notices the lost client only when it next
    talks to it); the clone would appear after this clean-up and stay.
    """
    pending = []
    for pid, query in conn.execute(
        "SELECT pid, query FROM pg_stat_activity "
        "WHERE query ILIKE 'CREATE DATABASE %%' AND pid <> pg_backend_pid()"
    ).fetchall():
        found = re.search(r'CREATE DATABASE "?(qk_c_\w+?)"?\s', query or "", re.IGNORECASE)
        owner = names.clone_owner(found.group(1), project) if found else None
        if owner is not None and not names.pid_alive(owner):
            conn.execute("SELECT pg_terminate_backend(%s)", [pid])
            pending.append(pid)
    deadline = time.monotonic() + 10
    while pending and time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pending]
        ).fetchone()
        if not row or row[0] == 0:
            break
        time.sleep(0.05)


def drop_database(conn: psycopg.Connection[Any], name: str) -> None:
    """Drop database ``name`` (a template is unmarked first), connections forced out."""
    ident = sql.Identifier(name)
    if name.startswith("qk_t_"):  # a template cannot be dropped
        conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def create_clone(conn: psycopg.Connection[Any], template: Template, name: str) -> None:
    """Clone ``template`` into a new database ``name`` with its strategy."""
    conn.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY {}").format(
            sql.Identifier(name), sql.Identifier(template.name), sql.SQL(trusted(template.strategy))
        )
    )


def _exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
    )


def _admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def server_lock(admin_url: str) -> Path:
    """The lock file of a server, shared by every project and process on this machine."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(admin_url)
        server = f"{info.get('host', '')}:{info.get('port', '')}"
    except psycopg.ProgrammingError:
        server = admin_url
    return Path(tempfile.gettempdir()) / f"querykit-testing-{names.tag(server)}.lock"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """One builder at a time (pytest-xdist workers, parallel runs)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
