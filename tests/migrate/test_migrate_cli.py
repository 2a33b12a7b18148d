"""``querykit migrate`` as real processes: exit codes, output, concurrency and SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from migrate_helpers import ledger, popen_querykit, run_querykit, table_exists

from querykit.migrate.ledger import parse_table_name
from querykit.migrate.lock import lock_key

Conn = psycopg.Connection[tuple[object, ...]]


def write(project_dir: Path, name: str, sql: str) -> Path:
    directory = project_dir / "migrations" / "sql"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(sql)
    return path


def wait_for_query(db: Conn, pattern: str, proc: object, timeout: float = 60) -> None:
    """Poll pg_stat_activity until another session is running a statement like ``pattern``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND query LIKE %s AND pid <> pg_backend_pid()",
            (pattern,),
        ).fetchone()
        if row and row[0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"no session ran {pattern!r} in time; runner: {proc}")


def test_exit_codes_and_progress_of_up_status_verify_and_down(
    project_dir: Path, database_url: str
) -> None:
    url = ("--database-url", database_url)
    write(
        project_dir,
        "0001_users.sql",
        "CREATE TABLE users (id int);\n-- querykit:down\nDROP TABLE users;\n",
    )
    write(
        project_dir,
        "0002_posts.sql",
        "CREATE TABLE posts (id int);\n-- querykit:down\nDROP TABLE posts;\n",
    )

    up = run_querykit("migrate", "up", *url, cwd=project_dir)
    assert up.returncode == 0, up.stderr
    lines = up.stderr.splitlines()
    assert lines[0].startswith("applying 0001_users.sql ... ok (")
    assert lines[1].startswith("applying 0002_posts.sql ... ok (")
    assert up.stdout == "applied 2 migration(s)\n"

    again = run_querykit("migrate", "up", "-q", *url, cwd=project_dir)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")

    status = run_querykit("migrate", "status", "--json", *url, cwd=project_dir)
    assert status.returncode == 0, status.stderr
    payload = json.loads(status.stdout)
    assert payload["counts"]["applied"] == 2 and payload["verified"] is True
    assert [m["state"] for m in payload["migrations"]] == ["applied", "applied"]

    assert run_querykit("migrate", "verify", *url, cwd=project_dir).returncode == 0

    down = run_querykit("migrate", "down", "--json", *url, cwd=project_dir)
    assert down.returncode == 0, down.stderr
    assert [d["name"] for d in json.loads(down.stdout)["done"]] == ["0002_posts.sql"]
    assert run_querykit("migrate", "down", "--to", "0", *url, cwd=project_dir).returncode == 0
    nothing = run_querykit("migrate", "down", *url, cwd=project_dir)
    assert nothing.returncode == 0 and "nothing to revert" in nothing.stdout


def test_exit_codes_of_refusals_failures_and_usage_errors(
    project_dir: Path, database_url: str, db: Conn
) -> None:
    url = ("--database-url", database_url)
    first = write(project_dir, "0001_users.sql", "CREATE TABLE users (id int);\n")
    assert run_querykit("migrate", "up", *url, cwd=project_dir).returncode == 0

    first.write_text("CREATE TABLE users (id bigint);\n")  # edited after it was applied
    for command in ("up", "verify"):
        refused = run_querykit("migrate", command, *url, cwd=project_dir)
        assert refused.returncode == 3, refused.stderr
        assert "0001_users.sql" in refused.stderr
    first.write_text("CREATE TABLE users (id int);\n")

    bad_to = run_querykit("migrate", "up", "--to", "9", *url, cwd=project_dir)
    assert bad_to.returncode == 2 and "--to 9: no migration has version 9" in bad_to.stderr

    bad_name = write(project_dir, "V2__oops.sql", "SELECT 1;\n")
    named = run_querykit("migrate", "up", *url, cwd=project_dir)
    assert named.returncode == 2 and "V2__oops.sql: not a migration file name" in named.stderr
    bad_name.unlink()

    typo = write(project_dir, "0002_typo.sql", "SELECT 1;\nSELEC 2;\n")
    syntax = run_querykit("migrate", "up", *url, cwd=project_dir)
    assert syntax.returncode == 2
    assert 'migrations/sql/0002_typo.sql:2:1: syntax error at or near "SELEC"' in syntax.stderr

    typo.write_text("INSERT INTO users VALUES (1);\nINSERT INTO nowhere VALUES (1);\n")
    failed = run_querykit("migrate", "up", *url, cwd=project_dir)
    assert failed.returncode == 1
    assert failed.stderr.startswith("applying 0002_typo.sql ... failed\nerror: ")
    assert '0002_typo.sql:2:13: ERROR 42P01: relation "nowhere" does not exist' in failed.stderr
    assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)

    typo.write_text(
        "CREATE TABLE tags (id int);\nCREATE INDEX CONCURRENTLY tags_id ON tags (id);\n"
    )
    mixed = run_querykit("migrate", "up", *url, cwd=project_dir)
    assert mixed.returncode == 3 and "-- querykit:no-transaction" in mixed.stderr

    key = lock_key(parse_table_name("public.querykit_migrations"))
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        typo.write_text("CREATE TABLE tags (id int);\n")
        locked = run_querykit("migrate", "up", "--lock-wait", "0.2", *url, cwd=project_dir)
    assert locked.returncode == 1 and "holds the migration lock" in locked.stderr

    dry = run_querykit("migrate", "up", "--dry-run", *url, cwd=project_dir)
    assert dry.returncode == 0 and "CREATE TABLE tags (id int);" in dry.stdout
    assert not table_exists(db, "tags")

    assert run_querykit("migrate", "baseline", "1", *url, cwd=project_dir).returncode == 3
    assert run_querykit("migrate", "repair", *url, cwd=project_dir).returncode == 0


def test_new_and_baseline_through_the_cli(project_dir: Path, database_url: str) -> None:
    url = ("--database-url", database_url)
    created = run_querykit("migrate", "new", "Add users", "--dir", "db/migrations", cwd=project_dir)
    assert created.returncode == 0, created.stderr
    path = Path(created.stdout.strip())
    assert path == project_dir / "db" / "migrations" / "0001_add_users.sql"
    untouched = run_querykit("migrate", "up", "--dir", "db/migrations", *url, cwd=project_dir)
    assert untouched.returncode == 2 and "has no SQL statements" in untouched.stderr

    path.write_text("CREATE TABLE users (id int);\n")
    marked = run_querykit(
        "migrate", "baseline", "0001", "--json", "--dir", "db/migrations", *url, cwd=project_dir
    )
    assert marked.returncode == 0, marked.stderr
    assert json.loads(marked.stdout) == {"version": 1, "marked": ["0001_add_users.sql"]}
    status = run_querykit("migrate", "status", "--dir", "db/migrations", *url, cwd=project_dir)
    assert "0001_add_users.sql  baseline" in status.stdout


def test_eight_concurrent_runners_apply_each_file_exactly_once(
    project_dir: Path, database_url: str, db: Conn
) -> None:
    write(project_dir, "0001_effects.sql", "CREATE TABLE effects (file text NOT NULL);\n")
    for n in range(2, 7):
        write(
            project_dir,
            f"{n:04d}_effect.sql",
            f"INSERT INTO effects VALUES ('{n:04d}');\nSELECT pg_sleep(0.05);\n",
        )
    procs = [
        popen_querykit(
            "migrate", "up", "--exit-code", "--database-url", database_url, cwd=project_dir
        )
        for _ in range(8)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    for p in procs:
        for stream in (p.stdout, p.stderr):
            if stream:
                stream.close()
    codes = sorted(code for code, _ in results)
    assert codes == [0] + [4] * 7, results
    assert db.execute(
        "SELECT file, count(*) FROM effects GROUP BY file ORDER BY file"
    ).fetchall() == [(f"{n:04d}", 1) for n in range(2, 7)]
    assert [r[0] for r in ledger(db)] == [1, 2, 3, 4, 5, 6]


def test_sigkill_in_a_transactional_file_leaves_it_unapplied_and_the_rerun_completes(
    project_dir: Path, database_url: str, db: Conn
) -> None:
    db.execute("CREATE TABLE gate (seconds float8)")
    db.execute("INSERT INTO gate VALUES (300)")
    write(project_dir, "0001_first.sql", "CREATE TABLE first (id int);\n")
    write(
        project_dir,
        "0002_slow.sql",
        "CREATE TABLE slow_side (id int);\nINSERT INTO slow_side VALUES (1);\n"
        "SELECT pg_sleep(seconds) FROM gate;\nINSERT INTO slow_side VALUES (2);\n",
    )
    proc = popen_querykit("migrate", "up", "--database-url", database_url, cwd=project_dir)
    try:
        wait_for_query(db, "SELECT pg_sleep(seconds) FROM gate%", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not table_exists(db, "slow_side")
    assert [r[0] for r in ledger(db)] == [1]

    # The killed runner's backend is still inside pg_sleep(300); it notices its
    # client is gone and rolls back, and the rerun waits for that, not 300 s.
    db.execute("UPDATE gate SET seconds = 0")
    rerun = run_querykit("migrate", "up", "--database-url", database_url, cwd=project_dir)
    assert rerun.returncode == 0, rerun.stderr
    assert db.execute("SELECT id FROM slow_side ORDER BY id").fetchall() == [(1,), (2,)]
    assert [r[0] for r in ledger(db)] == [1, 2]


def test_sigkill_in_a_no_transaction_file_resumes_after_the_last_completed_statement(
    project_dir: Path, database_url: str, db: Conn
) -> None:
    db.execute("CREATE TABLE gate (seconds float8)")
    db.execute("INSERT INTO gate VALUES (300)")
    write(
        project_dir,
        "0001_steps.sql",
        "-- querykit:no-transaction\nCREATE TABLE step_one (id int);\n"
        "SELECT pg_sleep(seconds) FROM gate;\nCREATE TABLE step_three (id int);\n",
    )
    proc = popen_querykit("migrate", "up", "--database-url", database_url, cwd=project_dir)
    try:
        wait_for_query(db, "SELECT pg_sleep(seconds) FROM gate%", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert ledger(db) == [(1, "0001_steps.sql", "no-transaction", 1, False)]
    status = run_querykit("migrate", "status", "--database-url", database_url, cwd=project_dir)
    assert "INTERRUPTED  stopped after statement 1 of 3" in status.stdout

    db.execute("UPDATE gate SET seconds = 0")
    rerun = run_querykit("migrate", "up", "--database-url", database_url, cwd=project_dir)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming 0001_steps.sql at statement 2 of 3 (no transaction) ... ok" in rerun.stderr
    assert table_exists(db, "step_one") and table_exists(db, "step_three")
    assert ledger(db) == [(1, "0001_steps.sql", "no-transaction", 3, True)]


@pytest.mark.parametrize("command", ["up", "down", "status", "verify", "baseline", "repair", "new"])
def test_every_command_has_help(project_dir: Path, command: str) -> None:
    shown = run_querykit("migrate", command, "--help", cwd=project_dir)
    assert shown.returncode == 0 and "Usage:" in shown.stdout


_MODULES_AFTER = """
import sys
from querykit.cli import app
sys.argv = ["querykit", *sys.argv[1:]]
try:
    app()
except SystemExit:
    pass
heavy = ("sqlalchemy", "psycopg", "pglast", "querykit.migrate", "querykit.execute.database")
print(",".join(m for m in heavy if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("args", "loaded"),
    [
        (["--help"], ""),
        (["migrate", "--help"], ""),
        (["migrate", "up", "--help"], ""),
        (["migrate", "status"], "psycopg,pglast,querykit.migrate"),
    ],
)
def test_the_cli_loads_only_what_a_command_needs(
    project_dir: Path, database_url: str, args: list[str], loaded: str
) -> None:
    """Start-up time is import time: --help loads no database code, status no query builder."""
    if args[-1] == "status":
        write(project_dir, "0001_a.sql", "SELECT 1;\n")
        args = [*args, "--database-url", database_url]
    done = subprocess.run(
        [sys.executable, "-c", _MODULES_AFTER, *args],
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stderr.splitlines()[-1] == loaded, done.stderr
