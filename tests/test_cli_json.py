"""``--json`` on every command: found by walking the typer app, so a new command is covered.

Each command is run as a user would (a subprocess) with ``--json`` on a migrated
database, and what it prints on stdout must be one JSON document. Commands that
need arguments, a state or a server of their own get them from ``HOW_TO_RUN``;
any other command (one added later) runs with ``--json`` and, when it takes one,
``--database-url``, and must exit 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer.main

from querykit.cli import app
from querykit.embedded import EmbeddedServer
from tests.cli import ROOT, clean_env, querykit


def commands() -> Iterator[tuple[str, Any]]:
    """Every runnable command of the ``querykit`` app, as ``"db url"``, in a stable order.

    (Typer builds click-style command objects; a group is one with ``commands``.)
    """

    def walk(prefix: str, command: Any) -> Iterator[tuple[str, Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands is not None:
            for name in sorted(subcommands):
                yield from walk(f"{prefix} {name}".strip(), subcommands[name])
        else:
            yield prefix, command

    yield from walk("", typer.main.get_command(app))


def options_of(command: Any) -> set[str]:
    return {opt for p in command.params for opt in p.opts}


def test_every_command_has_json() -> None:
    found = dict(commands())
    assert {"db url", "db psql", "sql", "studio", "migrate up", "migrate diff"} <= set(found)
    missing = [name for name, command in found.items() if "--json" not in options_of(command)]
    assert not missing, f"commands without --json: {missing}"


@dataclass
class Run:
    """How to run one command with ``--json``: its arguments, where, and its exit code."""

    args: tuple[str, ...] = ()
    cwd: str = "root"  # "root": this repository; "project": an empty project directory
    exit_code: int = 0
    env: dict[str, str] = field(default_factory=dict)
    url: bool = True  # give --database-url


# In the order they run: reset and seed first (the later ones see the demo's data).
HOW_TO_RUN: dict[str, Run] = {
    "db reset": Run(("--yes",)),
    "db seed": Run(),
    "db start": Run(cwd="project", url=False),
    "db status": Run(),
    "db stop": Run(cwd="project", url=False),
    "db psql": Run(("-c", "SELECT 1 AS one")),
    "migrate baseline": Run(("0001",), env={"QUERYKIT_MIGRATIONS_TABLE": "json_audit.ledger"}),
    "migrate new": Run(("create notes", "--dir", "{tmp}/new"), url=False),
    "migrate lint": Run(("--all",)),
    "migrate down": Run(),
    "migrate up": Run(),
    "migrate adopt": Run(exit_code=2),  # the example is in querykit's own layout: refused, as JSON
}


def planned(name: str, command: Any, tmp: Path, url: str) -> tuple[list[str], Run]:
    run = HOW_TO_RUN.get(name, Run())
    args = [*name.split(), "--json", *(a.replace("{tmp}", str(tmp)) for a in run.args)]
    if run.url and "--database-url" in options_of(command):
        args += ["--database-url", url]
    if name == "db psql":  # psql's own arguments come after querykit's options
        args = [*name.split(), "--json", "--database-url", url, *run.args]
    return args, run


def one_json_document(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"{what} printed no JSON document ({exc}):\n{text[:2000]}") from None


@pytest.mark.slow
def test_every_command_prints_json(database_url: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.querykit]\n")
    order = list(HOW_TO_RUN)
    found = sorted(commands(), key=lambda c: order.index(c[0]) if c[0] in order else len(order))
    try:
        for name, command in found:
            if name == "studio":
                continue  # a server: below
            args, run = planned(name, command, tmp_path, database_url)
            cwd = project if run.cwd == "project" else ROOT
            proc = querykit(*args, cwd=cwd, env=run.env)
            assert proc.returncode == run.exit_code, (name, proc.stdout, proc.stderr)
            payload = one_json_document(proc.stdout, f"querykit {' '.join(args)}")
            if run.exit_code:
                assert isinstance(payload, dict) and payload["exit_code"] == run.exit_code
    finally:
        EmbeddedServer.for_project(project).stop()
    studio_prints_json(database_url)


def studio_prints_json(url: str) -> None:
    """The studio serves until stopped: its first line of stdout is its address, as JSON."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "querykit",
            "studio",
            "--json",
            "--port",
            "0",
            "--database-url",
            url,
        ],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1].strip() != "}":
            line = proc.stdout.readline()
            assert line, f"studio --json ended without JSON: {''.join(lines)}"
            lines.append(line)
        payload = one_json_document("".join(lines), "querykit studio --json")
        assert isinstance(payload, dict) and payload["port"] > 0 and payload["write"] is False
        assert payload["url"].startswith(f"http://127.0.0.1:{payload['port']}/")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_errors_are_json_too(project_dir: Path) -> None:
    proc = querykit("db", "status", "--json", "--database-url", "postgresql://x@127.0.0.1:1/x")
    assert proc.returncode == 1
    payload = one_json_document(proc.stdout, "an error")
    assert (
        isinstance(payload, dict)
        and payload["exit_code"] == 1
        and "127.0.0.1:1" in payload["error"]
    )
    assert os.linesep not in proc.stdout.strip()  # one line, for tools that read lines
