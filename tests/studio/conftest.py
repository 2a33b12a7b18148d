"""The Studio under test: a seeded database, two running Studios (read-only and --write), Chromium.

Seeded once per session, with querykit's own bulk COPY: 100,000 pipeline runs
(the first 2,000 with three steps each), 1,000 embeddings of 384 dimensions,
and one agent context whose jsonb document is 1 MB. Each Studio is the real
``querykit studio`` command in a subprocess; the browser is Debian's chromium
driven by Playwright (which cannot download its own browsers here).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from querykit import connect, load_settings, migrate
from querykit.execute.connect import connect as pg_connect
from querykit.testing.clones import CloneFactory
from schema import Status, agent_context, content_item, embedding, pipeline_run, pipeline_step

ROOT = Path(__file__).resolve().parents[2]
SCREENS = ROOT / ".querykit" / "studio-screens"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RUNS, RUNS_WITH_STEPS, EMBEDDINGS, DIMS = 100_000, 2_000, 1_000, 384
BIG_DOC_BYTES = 1_000_000


def seed(url: str) -> None:
    settings = load_settings(cwd=ROOT, env={}, database_url=url)
    migrate.up(settings)
    rng = random.Random(17)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    statuses = [Status.COMPLETED, Status.COMPLETED, Status.FAILED, Status.RUNNING, Status.PENDING]
    runs = (
        {
            "id": f"run{i:06d}",
            "name": ["video-production", "podcast-summary", "doc-translation"][i % 3],
            "status": statuses[i % 5],
            "started_at": start + dt.timedelta(minutes=i),
            "ended_at": None if i % 4 == 3 else start + dt.timedelta(minutes=i + i % 7),
            "cost": Decimal(rng.randint(0, 1_000_000)) / 1000,
            "metadata": {"topic": "AI automation", "n": i},
        }
        for i in range(RUNS)
    )
    steps = (
        {
            "id": f"step{i:06d}-{k}",
            "run_id": f"run{i:06d}",
            "name": name,
            "status": Status.COMPLETED,
            "tokens": 100 * k,
            "model": "whisper-tiny",
        }
        for i in range(RUNS_WITH_STEPS)
        for k, name in enumerate(["transcription", "summary", "thumbnail"])
    )
    vectors = np.random.default_rng(5).standard_normal((EMBEDDINGS, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunk = {"text": "x" * 980, "tags": ["a", "b"]}
    big = {"agent": "archivist", "chunks": [dict(chunk, i=i) for i in range(BIG_DOC_BYTES // 1000)]}
    with connect(url) as db:
        db.insert_many(pipeline_run, runs)
        db.insert_many(pipeline_step, steps)
        db.insert_many(
            embedding,
            (
                {"content": f"text {i}", "embedding": v, "metadata": {"i": i}}
                for i, v in enumerate(vectors)
            ),
        )
        db.insert_many(
            agent_context,
            [
                {"session": "s-big", "context": big},
                {"session": "s-1", "context": {"agent": "shuri", "tools": ["cad"]}},
            ],
        )
        db.insert_many(content_item, [{"type": "video", "metadata": {"duration": 312}}])
    with pg_connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


@pytest.fixture(scope="session")
def seeded_url(template_clones: CloneFactory) -> Iterator[str]:
    clone = template_clones.take()
    started = time.perf_counter()
    seed(clone.url)
    print(f"\nstudio tests: seeded in {time.perf_counter() - started:.1f} s")
    try:
        yield clone.url
    finally:
        template_clones.discard(clone)


@dataclass
class RunningStudio:
    url: str
    """The URL with its token, as the command printed it."""
    port: int
    process: subprocess.Popen[str]
    database_url: str
    requests: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_studio(database_url: str, *extra: str) -> RunningStudio:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "QUERYKIT_"))}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "querykit",
            "studio",
            "--port",
            "0",
            "--json",
            "--database-url",
            database_url,
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    text = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        text += line
        try:
            info = json.loads(text)
        except json.JSONDecodeError:
            continue
        return RunningStudio(info["url"], info["port"], process, database_url)
    process.kill()
    raise AssertionError(
        f"querykit studio did not start: {text}{process.stderr.read() if process.stderr else ''}"
    )


def stop_studio(studio: RunningStudio) -> None:
    studio.process.terminate()
    try:
        studio.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        studio.process.kill()


@pytest.fixture(scope="session")
def studio(seeded_url: str) -> Iterator[RunningStudio]:
    running = start_studio(seeded_url)
    yield running
    stop_studio(running)


@pytest.fixture(scope="session")
def write_studio(seeded_url: str) -> Iterator[RunningStudio]:
    running = start_studio(seeded_url, "--write")
    yield running
    stop_studio(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium through Playwright's sync API, for one test module only: while it runs,
    the API keeps an event loop marked running in this thread, and tests that run their
    own loop (asyncio.run, run_until_complete) fail until it stops."""
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "chromium is not installed and could not be (make system-deps installs Debian's "
            "chromium where apt-get and root are available): browser tests skipped"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_context(browser: Any, studio: RunningStudio) -> Any:
    """A fresh browser profile signed in with the printed URL; every request is logged."""
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    context.set_default_timeout(10_000)
    context.on("request", lambda request: studio.requests.append(request.url))
    page = context.new_page()
    response = page.goto(studio.url)
    assert response is not None and response.ok
    return context, page


@pytest.fixture
def page(browser: Any, studio: RunningStudio) -> Iterator[Any]:
    context, page = open_context(browser, studio)
    yield page
    context.close()


def server_ms(response: Any) -> float:
    """The app's own time for a response, from its Server-Timing header."""
    header = response.headers["server-timing"]
    return float(header.split("dur=")[1])


def screenshot(page: Any, name: str, **kw: Any) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path), **kw)
    return path
