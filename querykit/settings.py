"""One resolved settings object, and URL masking.

Sources, highest precedence first:

1. explicit overrides (the CLI's options, or keyword arguments);
2. environment variables: ``DATABASE_URL``, ``QUERYKIT_DATABASE_URL``,
   ``QUERYKIT_SCHEMA``, ``QUERYKIT_QUERIES`` (comma separated),
   ``QUERYKIT_MIGRATIONS``, ``QUERYKIT_MIGRATIONS_TABLE``, ``QUERYKIT_MIGRATIONS_LAYOUT``,
   ``QUERYKIT_LOCK_TIMEOUT``;
3. ``[tool.querykit]`` in the nearest ``pyproject.toml``;
4. defaults.

Example::

    >>> settings = load_settings(database_url="postgresql://app:pw@db:5432/app")
    >>> mask_url(settings.database_url)
    'postgresql://app:***@db:5432/app'
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError

__all__ = ["Settings", "find_pyproject", "load_settings", "mask_secrets", "mask_url"]

MASK = "***"

# key in [tool.querykit] -> (environment variable, kind)
_KEYS: dict[str, tuple[str, str]] = {
    "database_url": ("QUERYKIT_DATABASE_URL", "str"),
    "schema": ("QUERYKIT_SCHEMA", "str"),
    "queries": ("QUERYKIT_QUERIES", "list"),
    "migrations": ("QUERYKIT_MIGRATIONS", "path"),
    "migrations_table": ("QUERYKIT_MIGRATIONS_TABLE", "str"),
    "migrations_layout": ("QUERYKIT_MIGRATIONS_LAYOUT", "str"),
    "lock_timeout": ("QUERYKIT_LOCK_TIMEOUT", "float"),
}


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Paths are absolute, relative ones resolved against ``project_dir``."""

    project_dir: Path
    database_url: str | None = None
    schema: str = "schema"
    queries: tuple[str, ...] = ()
    migrations: Path = Path("migrations/sql")
    migrations_table: str = "public.querykit_migrations"
    migrations_layout: str = "auto"
    """Whose file layout the migrations directory follows; see querykit.migrate.layouts."""
    lock_timeout: float = 5.0
    config_path: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    """Where each non-default value came from: ``"cli"``, ``"env:NAME"`` or the file path."""

    @property
    def masked_url(self) -> str | None:
        return None if self.database_url is None else mask_url(self.database_url)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some values replaced; ``None`` values are ignored."""
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - set(_KEYS)
        if unknown:
            raise ConfigError(_unknown_keys_message(sorted(unknown), "overrides"))
        values = {k: _coerce(k, v, "override") for k, v in given.items()}
        if "migrations" in values:
            values["migrations"] = _absolute(values["migrations"], self.project_dir)
        sources = {**self.sources, **dict.fromkeys(values, "cli")}
        return replace(self, **values, sources=sources)


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start``."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(
    *,
    config: Path | str | None = None,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings from overrides, the environment and ``pyproject.toml``.

    ``config`` names a pyproject.toml explicitly; otherwise the nearest one at or
    above ``cwd`` is used, if any. ``None`` overrides are ignored, so CLI options
    that were not given fall through to the next source.
    """
    env = os.environ if env is None else env
    here = Path(cwd) if cwd is not None else Path.cwd()
    if config is not None:
        config_path: Path | None = Path(config).resolve()
        assert config_path is not None
        if not config_path.is_file():
            raise ConfigError(f"config file not found: {config_path}")
    else:
        config_path = find_pyproject(here)
    project_dir = config_path.parent if config_path is not None else here.resolve()

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if config_path is not None:
        for key, value in _read_table(config_path).items():
            values[key] = _coerce(key, value, str(config_path))
            sources[key] = str(config_path)
    for key, (var, _kind) in _KEYS.items():
        raw = env.get(var)
        if key == "database_url" and not raw:
            raw, var = env.get("DATABASE_URL"), "DATABASE_URL"
        if raw:
            values[key] = _coerce(key, raw, f"environment variable {var}")
            sources[key] = f"env:{var}"
    values["migrations"] = _absolute(values.get("migrations", Path("migrations/sql")), project_dir)
    settings = Settings(project_dir=project_dir, config_path=config_path, sources=sources, **values)
    return settings.with_overrides(**overrides)


def _read_table(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    table = data.get("tool", {}).get("querykit", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.querykit] must be a table")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(_unknown_keys_message(unknown, f"{path} [tool.querykit]"))
    return table


def _unknown_keys_message(unknown: list[str], where: str) -> str:
    names = ", ".join(repr(k) for k in unknown)
    valid = ", ".join(sorted(_KEYS))
    return f"unknown setting {names} in {where}; valid keys are: {valid}"


def _coerce(key: str, value: Any, where: str) -> Any:
    kind = _KEYS[key][1]
    if kind == "list":
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{key} in {where} must be a module name or a list of module names")
    if kind == "path":
        if isinstance(value, str | Path):
            return Path(value)
        raise ConfigError(f"{key} in {where} must be a directory path")
    if kind == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{key} in {where} must be a number of seconds, got {value!r}"
            ) from None
        if number <= 0:
            raise ConfigError(f"{key} in {where} must be positive, got {value!r}")
        return number
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} in {where} must be a non-empty string")
    return value


def _absolute(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else (base / path).resolve()


_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``.

    Handles ``postgresql://user:pw@host/db`` URLs, ``?password=`` query
    parameters and ``key=value`` connection strings.
    """
    if "://" not in url:
        return _KV_PASSWORD.sub(lambda m: m.group(1) + MASK, url)
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            user, _, password = userinfo.partition(":")
            if password:
                userinfo = f"{user}:{MASK}"
        netloc = f"{userinfo}@{hostinfo}"
    query = re.sub(r"(^|&)(password=)[^&]*", lambda m: m.group(1) + m.group(2) + MASK, parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_secrets(text: str, *urls: str | None) -> str:
    """``text`` with the password of each URL (and any URL-looking secret) masked."""
    for url in urls:
        if not url:
            continue
        password = _password_of(url)
        if password:
            text = text.replace(password, MASK)
        text = text.replace(url, mask_url(url))
    return text


def _password_of(url: str) -> str | None:
    if "://" not in url:
        m = _KV_PASSWORD.search(url)
        return m.group(2).strip("'") if m else None
    parts = urlsplit(url)
    if parts.password:
        return parts.password
    m = re.search(r"(?:^|&)password=([^&]*)", parts.query)
    return m.group(1) if m and m.group(1) else None
