"""Passwords never leak: not from malformed connection strings, tracebacks, JSON or reprs.

Every command that reads the database URL runs as a real subprocess, with each
malformed form of the URL in DATABASE_URL, with and without ``-v`` and
``--json``; the secret appears nowhere in what it prints.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

import querykit
from querykit import ConfigError, QueryKitError, load_settings, mask_url
from querykit.settings import mask_secrets
from tests.cli import querykit_many

SECRET = "SECRET"
MALFORMED = {
    # a space in a key=value password: libpq stops at "-SECRET" and names it
    "key=value": "host=127.0.0.1 port=1 user=u password=pw -SECRET dbname=x",
    # urlsplit raises "Invalid IPv6 URL"; libpq quotes the whole URL
    "bracket": "postgresql://bob:pwSECRET@[bad/db",
    # libpq quotes the bad %-escape, password and all
    "percent": "postgresql://bob:pw%zzSECRET@localhost/db",
    "space": "postgresql://bob:pw SECRET@localhost/db",
}
UNREACHABLE = "postgresql://bob:pwSECRET@127.0.0.1:1/x"
COMMANDS = [("db", "url"), ("db", "status"), ("migrate", "up", "--dry-run"), ("migrate", "verify")]
# Plain: the one-line error. -v --json: the traceback on stderr and the JSON error on stdout.
FLAGS = [(), ("-v", "--json")]


def test_no_command_prints_the_password_of_any_form(project_dir: Path) -> None:
    (project_dir / "migrations" / "sql").mkdir(parents=True)  # so migrate gets to connecting
    runs = [
        ((*command, *flags), {"DATABASE_URL": url})
        for url in [*MALFORMED.values(), UNREACHABLE]
        for command in COMMANDS
        for flags in FLAGS
    ]
    for (args, env), proc in zip(runs, querykit_many(runs, cwd=project_dir), strict=True):
        printed = proc.stdout + proc.stderr
        where = f"{args} with DATABASE_URL={env['DATABASE_URL']!r}:\n{printed}"
        assert SECRET not in printed, where
        if "-v" not in args:
            assert "Traceback" not in printed, where
        if env["DATABASE_URL"] == UNREACHABLE:
            if args[:2] == ("db", "url") and "--json" in args:
                assert proc.returncode == 0 and "bob:***@127.0.0.1:1/x" in printed, where
            elif args[:2] == ("db", "url"):  # into a pipe a masked URL is refused, not printed
                assert proc.returncode == 2 and "--show-password" in printed, where
            else:
                assert proc.returncode == 1 and "127.0.0.1:1" in printed, where
            continue
        # A malformed URL: a configuration error that names the setting, and shows none of it.
        assert proc.returncode == 2, where
        assert "environment variable DATABASE_URL" in printed, where
        assert "does not parse" in printed, where
        assert "pw" not in printed.replace("pwd", ""), where


@pytest.mark.parametrize("url", [*MALFORMED.values(), UNREACHABLE])
def test_library_errors_carry_no_cause_that_holds_the_url(url: str) -> None:
    errors: list[QueryKitError] = []
    for attempt in (
        lambda: querykit.connect(url, connect_timeout=1),
        lambda: load_settings(env={"DATABASE_URL": url}, cwd="/"),
    ):
        try:
            attempt()
        except QueryKitError as exc:
            errors.append(exc)
    assert errors  # a malformed URL fails both; an unreachable server fails connect()
    for error in errors:
        assert SECRET not in "".join(traceback.format_exception(error))
        for link in (error.__cause__, error.__context__):
            assert link is None or SECRET not in str(link)
        if url in MALFORMED.values():
            assert isinstance(error, ConfigError)
            assert error.__cause__ is None and error.__context__ is None
            assert "does not parse" in str(error)


@pytest.mark.parametrize("url", [*MALFORMED.values(), UNREACHABLE])
def test_masking_never_fails_and_never_shows_a_malformed_url(url: str) -> None:
    masked = mask_url(url)
    assert SECRET not in masked
    assert SECRET not in mask_secrets(f"could not use {url}: {url}", url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:pwSECRET@db/app",
        "postgresql://app@db/app?password=pwSECRET",
        "host=db user=app password=pwSECRET",
        "host=db user=app password='pw SECRET'",
    ],
)
def test_objects_that_hold_a_url_mask_it_in_their_repr(url: str) -> None:
    settings = load_settings(env={"DATABASE_URL": url}, cwd="/")
    assert settings.database_url == url  # the value itself is intact
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert "***" in repr(settings)
    from querykit.cli._common import Common

    assert SECRET not in repr(Common(database_url=url))
