"""The README's Studio commands run as written: each serves the printed URL until Ctrl-C."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time

import httpx
import pytest

from .conftest import ROOT

# Shares /tmp paths or the Studio's default port with the other README runners: one worker.
pytestmark = pytest.mark.xdist_group("readme")


def studio_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Studio: browse the data\n")
    section = text[start : text.index("\n## ", start + 1)]
    block = re.findall(r"```sh\n(.*?)```", section, flags=re.S)[0]
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize("command", studio_commands())
def test_the_readme_studio_command_serves_until_ctrl_c(command: str, seeded_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "QUERYKIT_"))}
    env.update(DATABASE_URL=seeded_url, BROWSER="true")  # --open runs `true`, not a browser
    # Another test's Studio may hold the README's port for a moment (the suite runs on
    # two workers): wait for it rather than skip; skip only if it stays busy.
    for _attempt in range(40):
        process = subprocess.Popen(
            shlex.split(command),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline()
        if line:
            break
        error = process.stderr.read()
        process.wait()
        if "cannot listen on" not in error:
            raise AssertionError(error)
        time.sleep(0.5)
    else:
        pytest.skip(f"the README's port stayed busy on this machine for 20 s: {error.strip()}")
    try:
        url = line.split(" at ")[1].strip()
        assert url.startswith("http://127.0.0.1:4983/?token=")
        page = httpx.get(url, follow_redirects=True, timeout=30)
        assert page.status_code == 200 and "pipeline_run" in page.text
        assert ("read-write" in page.text) == ("--write" in command)
    finally:
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)  # Ctrl-C
        code = process.wait(timeout=20)
    assert code == 0, process.stderr.read()
