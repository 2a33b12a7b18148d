"""Progress of long migrations: file counts, and the elapsed time of a long statement."""

from __future__ import annotations

import pytest
from migrate_helpers import Write

from querykit import Settings, migrate
from querykit.cli import migrate as cli_migrate
from querykit.migrate import runner

LONG = "SELECT pg_sleep(0.8);\n"


@pytest.fixture
def quick_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "RUNNING_AFTER", 0.2)
    monkeypatch.setattr(runner, "RUNNING_EVERY", 0.2)


def test_the_runner_reports_file_numbers_and_long_statements(
    write: Write, settings: Settings, quick_ticks: None
) -> None:
    write("0001_quick.sql", "CREATE TABLE quick (id int);\n")
    write("0002_slow.sql", "CREATE TABLE slow (id int);\n" + LONG)
    events: list[migrate.Progress] = []
    migrate.up(settings, on_progress=events.append)
    starts = [(e.filename, e.position, e.count) for e in events if e.event == "start"]
    assert starts == [("0001_quick.sql", 1, 2), ("0002_slow.sql", 2, 2)]
    running = [e for e in events if e.event == "running"]
    assert running, "a 0.8 s statement reports that it is running"
    assert {e.filename for e in running} == {"0002_slow.sql"}
    # A transactional file goes to the server as one pipeline: which of its statements is
    # running is not known until it ends, so the report points at the file's start.
    assert all("line 1" in e.message for e in running)
    elapsed = [e.duration_ms or 0 for e in running]
    assert elapsed == sorted(elapsed) and 150 < elapsed[0] < 800
    # every "running" event comes between its file's start and done
    kinds = [(e.event, e.filename) for e in events if e.event != "note"]
    first, last = kinds.index(("start", "0002_slow.sql")), kinds.index(("done", "0002_slow.sql"))
    assert all(first < kinds.index(("running", e.filename)) < last for e in running)


def test_the_cli_redraws_the_elapsed_time_on_a_terminal_only(
    write: Write,
    settings: Settings,
    database_url: str,
    quick_ticks: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write("0001_quick.sql", "CREATE TABLE quick (id int);\n")
    write("0002_slow.sql", LONG)
    monkeypatch.setattr(cli_migrate, "on_terminal", lambda: True)
    command = cli_migrate._Command(None, database_url)
    migrate.up(settings, on_progress=command.progress)
    err = capsys.readouterr().err
    lines = err.split("\n")
    assert lines[0].startswith("[1/2] applying 0001_quick.sql ... ok (")
    slow = lines[1].split("\r")
    assert slow[0] == "[2/2] applying 0002_slow.sql ..."
    assert slow[1].startswith(
        "[2/2] applying 0002_slow.sql ... 0 s"
    )  # click drops \x1b[K off a tty
    assert slow[-1].startswith("[2/2] applying 0002_slow.sql ... ok (")  # redrawn at the end
    # in a log (not a terminal): one plain line per file, as before
    monkeypatch.setattr(cli_migrate, "on_terminal", lambda: False)
    write("0003_slow.sql", LONG)
    write("0004_quick.sql", "CREATE TABLE quick2 (id int);\n")
    migrate.up(settings, on_progress=cli_migrate._Command(None, database_url).progress)
    err = capsys.readouterr().err
    assert "\r" not in err and "[" not in err
    lines = err.splitlines()
    assert lines[0].startswith("applying 0003_slow.sql ... ok (")
    assert lines[1].startswith("applying 0004_quick.sql ... ok (")
