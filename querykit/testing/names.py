"""Names of the databases the plugin makes, so that runs, workers and projects never collide.

Every name starts with ``qk_`` and the project's tag (a hash of its directory), so
one server can serve several projects:

- ``qk_t_<tag>_<variant>_<key>``: a template of all migrations or of those up to a
  version (the variant), ``<key>`` a hash of what it was built from;
- ``qk_b_<tag>_<key>_<pid>``: a template being built (renamed when complete);
- ``qk_c_<tag>_<host>_<pid>_<worker>_<n>``: a test's clone. The host and process id
  say whose it is, so the next run can drop the clones of a worker that crashed.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.conninfo


def tag(text: str, length: int = 8) -> str:
    """A short hex digest of ``text``: names stay within PostgreSQL's 63 bytes."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def project_tag(project_dir: Path) -> str:
    """A tag for the project directory, so two projects on one server never share names."""
    return tag(str(project_dir.resolve()), 6)


def host_tag() -> str:
    """A tag for this host, for clone names on a shared server."""
    return tag(socket.gethostname(), 4)


def worker_id() -> str:
    """``gw0``, ``gw1``... under pytest-xdist, else ``main``."""
    return re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "main").lower())[:8]


def variant(upto: str | None) -> str:
    """Which migrations a template holds: ``all``, or ``u`` and a hash of the ``upto`` version."""
    return "all" if upto is None else "u" + tag(upto, 4)


def template_name(project: str, upto: str | None, key: str) -> str:
    """The template's name: project, migration target and the cache key."""
    return f"qk_t_{project}_{variant(upto)}_{key[:12]}"


def building_name(project: str, key: str) -> str:
    """The name a template is built under before it is renamed into place."""
    return f"qk_b_{project}_{key[:16]}_{os.getpid()}"


def clone_prefix(project: str) -> str:
    """The prefix of this process's clones: host, pid and xdist worker, so none collide."""
    return f"qk_c_{project}_{host_tag()}_{os.getpid()}_{worker_id()}_"


def clone_owner(name: str, project: str) -> int | None:
    """The process id in a clone's name, when the clone is this project's and this host's."""
    match = re.fullmatch(rf"qk_c_{project}_{host_tag()}_(\d+)_[a-z0-9]+_\w+", name)
    return int(match.group(1)) if match else None


def clone_url(url: str, dbname: str) -> str:
    """``url`` pointing at the database ``dbname`` (a URL stays a URL, key=value stays so)."""
    if "://" in url:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (its clones are not leftovers yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
