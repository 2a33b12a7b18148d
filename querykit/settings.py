"""One resolved settings object, and URL masking.

Sources, highest precedence first:

1. explicit overrides (the CLI's options, or keyword arguments);
2. environment variables: ``DATABASE_URL``, ``QUERYKIT_DATABASE_URL``,
   ``QUERYKIT_SCHEMA``, ``QUERYKIT_QUERIES`` (comma separated),
   ``QUERYKIT_MIGRATIONS``, ``QUERYKIT_MIGRATIONS_TABLE``, ``QUERYKIT_MIGRATIONS_LAYOUT``,
   ``QUERYKIT_LOCK_TIMEOUT``, ``QUERYKIT_EMBEDDED`` (0 or 1), ``QUERYKIT_SEED``,
   ``QUERYKIT_LINT`` (``warn``, ``strict`` or ``off``), ``QUERYKIT_TESTING_SEED``;
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
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError

__all__ = [
    "LintSettings",
    "Settings",
    "TestingSettings",
    "check_database_url",
    "find_pyproject",
    "load_settings",
    "mask_secrets",
    "mask_url",
    "masked_repr",
]

MASK = "***"
UNPARSABLE = "<a database URL that does not parse>"
"""What is shown of a connection string that does not parse: nothing of it."""

# key in [tool.querykit] -> (environment variable, kind)
_KEYS: dict[str, tuple[str, str]] = {
    "database_url": ("QUERYKIT_DATABASE_URL", "str"),
    "schema": ("QUERYKIT_SCHEMA", "str"),
    "queries": ("QUERYKIT_QUERIES", "list"),
    "migrations": ("QUERYKIT_MIGRATIONS", "path"),
    "migrations_table": ("QUERYKIT_MIGRATIONS_TABLE", "str"),
    "migrations_layout": ("QUERYKIT_MIGRATIONS_LAYOUT", "str"),
    "lock_timeout": ("QUERYKIT_LOCK_TIMEOUT", "float"),
    "embedded": ("QUERYKIT_EMBEDDED", "bool"),
    "seed": ("QUERYKIT_SEED", "str"),
    "lint": ("QUERYKIT_LINT", "lint"),
    "testing": ("QUERYKIT_TESTING_SEED", "testing"),
}
LINT_MODES = ("warn", "strict", "off")
LINT_LEVELS = ("error", "warning", "info", "off")


@dataclass(frozen=True)
class LintSettings:
    """How ``migrate up`` uses the migration linter, and per-rule levels.

    In pyproject.toml either ``lint = "strict"`` under ``[tool.querykit]``, or a
    table ``[tool.querykit.lint]`` with ``mode = "strict"`` and ``rule-id = "warning"``
    lines. ``warn`` prints findings, ``strict`` refuses files with an error-level
    finding, ``off`` skips the lint in ``up``.
    """

    mode: str = "warn"
    levels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TestingSettings:
    """The pytest plugin's ``[tool.querykit.testing]`` table (see :mod:`querykit.testing`).

    ``seed`` fills the test template after the migrations: ``"module:function"``
    (called with a ``Database``) or a ``.sql`` file, relative to the project. It is
    apart from ``[tool.querykit] seed`` because development data is rarely test data.
    """

    __test__ = False  # not a pytest test class, despite its name

    seed: str | None = None


def masked_repr(self: Any) -> str:
    """A dataclass's repr with every ``*url`` field masked: for ``__repr__ = masked_repr``."""
    parts = []
    for f in fields(self):
        if not f.repr:
            continue
        value = getattr(self, f.name)
        if f.name.endswith("url") and isinstance(value, str):
            value = mask_url(value)
        parts.append(f"{f.name}={value!r}")
    return f"{type(self).__name__}({', '.join(parts)})"


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
    embedded: bool = True
    """Whether a missing database URL may start the embedded server (a development default);
    ``QUERYKIT_EMBEDDED=0`` or ``embedded = false`` makes a missing URL an error instead."""
    seed: str | None = None
    """What ``querykit db seed`` runs: ``"module:function"`` (given a ``Database``) or a
    ``.sql`` file, relative to the project."""
    lint: LintSettings = field(default_factory=LintSettings)
    testing: TestingSettings = field(default_factory=TestingSettings)
    config_path: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    """Where each non-default value came from: ``"cli"``, ``"env:NAME"`` or the file path."""

    __repr__ = masked_repr

    @property
    def masked_url(self) -> str | None:
        """The database URL with its password masked, for messages and ``--json``."""
        return None if self.database_url is None else mask_url(self.database_url)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some values replaced; ``None`` values are ignored."""
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(given) - set(_KEYS)
        if unknown:
            raise ConfigError(_unknown_keys_message(sorted(unknown), "overrides"))
        values = {k: _coerce(k, v, _override_source(k)) for k, v in given.items()}
        if "migrations" in values:
            values["migrations"] = _absolute(values["migrations"], self.project_dir)
        sources = {**self.sources, **dict.fromkeys(values, "cli")}
        return replace(self, **values, sources=sources)


def _override_source(key: str) -> str:
    """Where an override comes from, for messages: the CLI option or the keyword argument."""
    return f"--{key.replace('_', '-')} (or {key}=)"


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
    if kind == "lint":
        return _lint(value, where)
    if kind == "testing":
        return _testing(value, where)
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
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ConfigError(f"{key} in {where} must be true or false (1 or 0), got {value!r}")
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
    if key == "database_url":
        check_database_url(value, where)
    return value


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _lint(value: Any, where: str) -> LintSettings:
    if isinstance(value, LintSettings):
        return value
    if isinstance(value, str):
        value = {"mode": value}
    if not isinstance(value, dict):
        raise ConfigError(
            f"lint in {where} must be one of {', '.join(LINT_MODES)} or a table of rule levels"
        )
    mode = value.get("mode", "warn")
    if mode not in LINT_MODES:
        raise ConfigError(
            f"lint mode in {where} must be one of {', '.join(LINT_MODES)}, got {mode!r}"
        )
    levels = {k: v for k, v in value.items() if k != "mode"}
    for rule, level in levels.items():
        if level not in LINT_LEVELS:
            raise ConfigError(
                f"lint level of {rule!r} in {where} must be one of {', '.join(LINT_LEVELS)}, got {level!r}"
            )
    return LintSettings(mode, levels)


def _testing(value: Any, where: str) -> TestingSettings:
    if isinstance(value, TestingSettings):
        return value
    if isinstance(value, str):
        value = {"seed": value}
    if not isinstance(value, dict):
        raise ConfigError(f"testing in {where} must be a table: [tool.querykit.testing]")
    unknown = sorted(set(value) - {"seed"})
    if unknown:
        raise ConfigError(
            f"unknown setting {', '.join(map(repr, unknown))} in {where} [tool.querykit.testing]; "
            "valid keys are: seed"
        )
    seed = value.get("seed")
    if seed is not None and (not isinstance(seed, str) or not seed):
        raise ConfigError(
            f'seed in {where} [tool.querykit.testing] must be "module:function" or a .sql file'
        )
    return TestingSettings(seed)


def _absolute(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else (base / path).resolve()


_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URL_FORMS = (
    "Write it as postgresql://user:password@host:port/dbname, with special characters "
    "of the password percent-encoded (%40 for @, %3A for :, %2F for /, %25 for %, %20 "
    "for a space), or as key=value pairs, quoting a value that has spaces "
    "(password='a b')"
)


def parses(url: str) -> bool:
    """Does libpq read ``url`` (and, for a ``scheme://`` URL, ``urlsplit`` too)?"""
    from psycopg import Error as PsycopgError  # here: the CLI's --help loads no database code
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
        if "://" in url:
            urlsplit(url)
    except (PsycopgError, ValueError):
        return False
    return True


def check_database_url(url: str, where: str) -> None:
    """A ``ConfigError`` naming ``where`` when ``url`` does not parse; it shows none of ``url``.

    libpq's own parse errors quote the offending part, which may be the password,
    so they are not passed on, and the error has no cause or context to carry them.
    """
    if parses(url):
        return
    raise ConfigError(
        f"the database URL from {where} does not parse, so none of it is shown. {_URL_FORMS}."
    )


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``; nothing of a URL that does not parse.

    Handles ``postgresql://user:pw@host/db`` URLs, ``?password=`` query
    parameters and ``key=value`` connection strings.
    """
    if not parses(url):
        return UNPARSABLE
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
        if not parses(url):
            # No password can be told apart: hide the string and every piece of it.
            text = text.replace(url, UNPARSABLE)
            for piece in sorted(set(_PIECES.split(url)), key=len, reverse=True):
                if len(piece) >= 3 and piece.lower() not in _KEYWORDS:
                    text = text.replace(piece, MASK)
            continue
        password = _password_of(url)
        if password:
            text = text.replace(password, MASK)
        text = text.replace(url, mask_url(url))
    return text


_PIECES = re.compile(r"[\s=:@/?&'\"\[\]]+")
_KEYWORDS = frozenset({"postgresql", "postgres", "host", "port", "user", "password", "dbname"})


def _password_of(url: str) -> str | None:
    if "://" not in url:
        m = _KV_PASSWORD.search(url)
        return m.group(2).strip("'") if m else None
    parts = urlsplit(url)
    if parts.password:
        return parts.password
    m = re.search(r"(?:^|&)password=([^&]*)", parts.query)
    return m.group(1) if m and m.group(1) else None
