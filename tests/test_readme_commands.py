"""Every shell block of the README runs as written, in order, after the demo's setup.

The README is the contract: a command it shows must work. Each ```sh block runs as
one bash script (``set -eo pipefail``) in a copy of this repository whose ``.venv``
is the real one, against a fresh database that is migrated and seeded as
``make demo`` leaves it (``DATABASE_URL``). A command whose comment starts with
``exit N:`` must exit with N. Blocks that a test of their own runs (and the
Quickstart's ``make demo`` / ``make test``, which CI itself runs) are listed in
``RUN_ELSEWHERE`` with that test. The blocks run in README order, as a reader
would run them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import ROOT, clean_env
from tests.readme_blocks import fenced_blocks

# Shares /tmp paths or the Studio's default port with the other README runners: one worker.
pytestmark = pytest.mark.xdist_group("readme")

README = ROOT / "README.md"
_EXIT = re.compile(r"^(?P<cmd>.*?\S)\s+#\s*exit (?P<code>\d+):")


# heading -> the test that runs that heading's blocks (they start servers, or need a state
# of their own)
RUN_ELSEWHERE = {
    "Quickstart": ".ci/run (make test) and tests/test_demo.py (make demo)",
    "Studio: browse the data": "tests/studio/test_readme_studio.py",
    "Linting migrations: `querykit migrate lint`": "tests/migrate/test_migrate_lint_readme.py",
    "Coming from Prisma / Drizzle / diesel / sqlx / golang-migrate / dbmate / Flyway": (
        "tests/migrate/test_migrate_readme.py"
    ),
    # its files and its pytest command, in a project of their own
    "Testing your app": "tests/testing/test_readme.py",
    "Read replicas and poolers": "tests/test_readme_replicas.py",
}


def shell_blocks() -> list[tuple[str, str]]:
    """(heading, script) for every ```sh block not run elsewhere, in README order."""
    return [
        (f"{b.section} / {b.subsection}", "\n".join(b.body))
        for b in fenced_blocks(README, "sh", RUN_ELSEWHERE)
    ]


def test_the_blocks_run_elsewhere_have_their_tests() -> None:
    headings = {
        line.lstrip("#").strip()
        for line in README.read_text().splitlines()
        if line.startswith("##")
    }
    for heading, test in RUN_ELSEWHERE.items():
        assert heading in headings, heading
        assert (ROOT / test.split(" ")[0]).exists(), test


def expecting_exit_codes(script: str) -> str:
    """``cmd  # exit 4: ...`` becomes ``cmd || [ $? -eq 4 ]``, so ``set -e`` accepts it."""
    out = []
    for line in script.splitlines():
        m = _EXIT.match(line)
        out.append(f"{m['cmd']} || [ $? -eq {m['code']} ]" if m else line)
    return "\n".join(out)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The tracked files of this repository, as they are now, with the real ``.venv``."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    copy = tmp_path / "querykit"
    for name in files:
        source = ROOT / name
        if source.is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (copy / ".venv").symlink_to(Path(sys.prefix))
    return copy


@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="runs on the embedded server")
def test_every_readme_shell_block_runs(checkout: Path) -> None:
    """As a reader after ``make demo``: the copy's own embedded server, migrated and seeded."""
    env = clean_env()
    env.pop("VIRTUAL_ENV", None)
    shutil.rmtree("/tmp/myapp", ignore_errors=True)  # the own-project block starts from nothing
    blocks = shell_blocks()
    assert len(blocks) >= 8
    try:
        for setup in (
            [".venv/bin/querykit", "db", "start"],
            [".venv/bin/querykit", "migrate", "up"],
            [".venv/bin/python", "demo.py"],
        ):
            done = subprocess.run(setup, cwd=checkout, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        for number, (heading, script) in enumerate(blocks, 1):
            done = subprocess.run(
                ["bash", "-c", "set -eo pipefail\n" + expecting_exit_codes(script)],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, (
                f"README block {number} ({heading}) exited {done.returncode}:\n{script}\n"
                f"--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-2000:]}"
            )
    finally:
        for project in (checkout, Path("/tmp/myapp")):
            if project.exists():
                subprocess.run(
                    [str(checkout / ".venv/bin/querykit"), "db", "stop", "-q"],
                    cwd=project,
                    env=env,
                    capture_output=True,
                )
