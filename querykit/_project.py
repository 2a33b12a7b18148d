"""Importing the user's own modules (schema.py, queries.py) with the project directory on sys.path.

Shared by the named-query tools, the Studio and the schema diff, which must not
depend on one another.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ConfigError, QueryKitError
from .settings import Settings

__all__ = ["import_project_module"]


@contextlib.contextmanager
def _project_on_path(project_dir: Path) -> Iterator[None]:
    path = str(project_dir)
    added = path not in sys.path
    if added:
        sys.path.insert(0, path)
    try:
        yield
    finally:
        if added:
            sys.path.remove(path)


def import_project_module(name: str, settings: Settings) -> Any:
    """Import ``name`` with the project directory on ``sys.path``; errors say which module."""
    with _project_on_path(settings.project_dir):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name or name.startswith(f"{exc.name}."):
                raise ConfigError(
                    f"cannot import module {name!r} from {settings.project_dir}: not found; "
                    "check the queries/schema setting or the TARGET"
                ) from exc
            raise ConfigError(f"importing {name!r} failed: {exc}") from exc
        except QueryKitError as exc:
            raise ConfigError(f"importing {name!r} failed: {exc}") from exc
        except Exception as exc:  # the user's module raised while importing
            raise ConfigError(f"importing {name!r} failed: {type(exc).__name__}: {exc}") from exc
