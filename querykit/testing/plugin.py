"""The pytest entry point (``pytest11``: ``querykit``): options, marker, and switching on.

The plugin is installed with querykit but does something only in a project whose
``pyproject.toml`` (found from pytest's rootdir) has a ``[tool.querykit]`` table;
``-p no:querykit`` turns it off. Under pytest-xdist, the controller gives its
workers one run id, so that they share one embedded server, which it stops at the end.
"""

from __future__ import annotations

import secrets
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ..errors import QueryKitError
from ..settings import Settings, find_pyproject, load_settings

RUN_ID = "querykit_run_id"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's command-line options (``--qk-keep``)."""
    group = parser.getgroup("querykit", "querykit.testing: a migrated database per test")
    group.addoption(
        "--qk-keep",
        action="store_true",
        default=False,
        help="without DATABASE_URL, use the project's embedded server (querykit db start) "
        "and leave it running, so the next run reuses its cached template",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``qk_migrations`` marker."""
    config.addinivalue_line(
        "markers",
        'qk_migrations(upto="0003"): qk_db/qk_url get a database migrated only up to that version',
    )
    settings = project_settings(config.rootpath)
    if settings is None:
        return
    from . import fixtures
    from .session import TestSession

    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    run_id = workerinput[RUN_ID] if workerinput and RUN_ID in workerinput else secrets.token_hex(6)
    keep = bool(config.getoption("--qk-keep"))
    config.stash[fixtures.SESSION] = TestSession(settings, run_id=run_id, keep=keep)
    config.pluginmanager.register(fixtures, "querykit.testing.fixtures")


def project_settings(rootpath: Path) -> Settings | None:
    """The project's settings when its pyproject.toml has ``[tool.querykit]``, else None."""
    path = find_pyproject(rootpath)
    if path is None:
        return None
    try:
        with path.open("rb") as f:
            if "querykit" not in tomllib.load(f).get("tool", {}):
                return None
        return load_settings(config=path)
    except (OSError, tomllib.TOMLDecodeError, QueryKitError) as exc:
        raise pytest.UsageError(f"querykit.testing: {exc}") from exc


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, in the controller: every worker gets this run's id."""
    from . import fixtures

    session = node.config.stash.get(fixtures.SESSION, None)
    if session is not None:
        node.workerinput[RUN_ID] = session.run_id


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the session's server and drop what this process cloned."""
    from . import fixtures

    state = session.config.stash.get(fixtures.SESSION, None)
    if state is not None:
        state.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    """In the controller (or a run without xdist): stop the run's temporary server."""
    from . import fixtures
    from .server import stop_run_server

    state = config.stash.get(fixtures.SESSION, None)
    if state is not None and not hasattr(config, "workerinput"):
        stop_run_server(state.run_id)
