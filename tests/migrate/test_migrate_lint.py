"""``querykit migrate lint``: context, suppression, levels, sizes, reporters, the CLI and ``up``.

The corpus (test_migrate_lint_corpus.py) proves the predictions against the
probe; these tests prove the rest on real files and a real PostgreSQL.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import psycopg
import pytest
from migrate_helpers import Write, run_querykit, table_exists

from querykit import Settings, load_settings, migrate
from querykit.errors import ConfigError, MigrationFileError
from querykit.migrate.files import parse_migration, read_migration
from querykit.migrate.lint import LintResult, github, lint
from querykit.migrate.lint.engine import lint_migrations
from querykit.migrate.lint.knowledge import Knowledge

ROOT = Path(__file__).resolve().parents[2]

INDEX_ON_USERS = "CREATE INDEX users_email ON users (email);\n"
USERS = "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text);\n"


def _rules(result: LintResult) -> list[tuple[str, str, str]]:
    return [(f.rule, f.level, f.where) for f in result.findings]


def _project(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.querykit]\nmigrations = "migrations/sql"\n' + extra
    )
    return tmp_path


# -- the project's own migrations ----------------------------------------------------


def test_the_projects_migrations_lint_clean_statically() -> None:
    result = lint(load_settings(cwd=ROOT, env={}), all_files=True)
    assert len(result.files) >= 4
    assert result.findings == ()


def test_the_projects_migrations_lint_clean_with_a_database(database_url: str) -> None:
    settings = load_settings(cwd=ROOT, env={}, database_url=database_url)
    migrate.up(settings, to=3)
    pending = lint(settings)
    assert pending.files == ("migrations/sql/0004_pipeline_step_model.sql",)
    assert pending.database is not None and pending.findings == ()
    assert lint(settings, all_files=True).findings == ()


# -- file context --------------------------------------------------------------------


def test_tables_new_in_this_run_are_exempt_and_applied_ones_are_not(
    write: Write, settings: Settings, database_url: str
) -> None:
    write("0001_users.sql", USERS)
    write("0002_index.sql", INDEX_ON_USERS)
    static = load_settings(cwd=settings.project_dir, env={}, migrations=settings.migrations)
    assert lint(static).findings == ()  # no database: both pending, users is new
    migrate.up(settings, to=1)
    result = lint(settings)
    assert result.files[0].endswith("0002_index.sql")
    # users exists and is empty (pg_relation_size 0): the finding is info.
    assert [(r, lvl) for r, lvl, _ in _rules(result)] == [("create-index-not-concurrent", "info")]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (email) SELECT 'u' || g FROM generate_series(1, 50) g")
        conn.execute("ANALYZE users")
    f = lint(settings).findings[0]
    assert (f.level, f.tables) == ("error", {"users": 50.0})
    assert f.where.endswith("0002_index.sql:1:1")
    assert "CREATE INDEX CONCURRENTLY users_email ON users (email);" in f.safe


def test_a_large_table_makes_any_lock_finding_an_error() -> None:
    m = parse_migration(
        Path("0002_x.sql"), b"ALTER TABLE users DROP COLUMN email;\nDROP INDEX users_email;\n"
    )
    know = Knowledge(columns={"users": {}}, indexes={"users_email": "users"}, rows={"users": 2e6})
    found = lint_migrations([m], targets={str(m.path)}, base=know)
    assert [(f.rule, f.level) for f in found] == [
        ("drop-column", "warning"),  # not a lock rule: its level stays
        ("drop-index-not-concurrent", "error"),
    ]
    assert "~2,000,000 rows" in found[1].message


def test_files_after_the_last_target_are_not_parsed(tmp_path: Path) -> None:
    """Knowledge flows forward only: an up-to-date database lints (and parses) nothing,
    and a broken file after the target neither fails the lint nor gets parsed."""
    sql = {
        "0001_users.sql": "CREATE TABLE users (id int, email text);\n",
        "0002_index.sql": "CREATE INDEX users_email ON users (email);\n",
        "0003_broken.sql": "CREATE TABLE oops (;\n",
    }
    for name, text in sql.items():
        (tmp_path / name).write_text(text)
    files = [read_migration(tmp_path / name) for name in sql]
    applied = {files[0].version}
    assert lint_migrations(files, targets=set(), applied=applied) == []
    assert not [m.filename for m in files if "parsed" in m.__dict__]
    found = lint_migrations(files, targets={str(files[1].path)}, applied=applied)
    assert [(f.rule, f.line) for f in found] == [("create-index-not-concurrent", 1)]
    assert "parsed" not in files[2].__dict__
    with pytest.raises(MigrationFileError, match=re.escape("0003_broken.sql:1")):
        lint_migrations(files, targets={str(files[2].path)}, applied=applied)


def test_no_transaction_files_and_down_parts_change_what_applies() -> None:
    sql = (
        "-- querykit:no-transaction\n"
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
        "ALTER TABLE t VALIDATE CONSTRAINT c;\n"
        "ALTER TYPE mood ADD VALUE 'meh';\n"
        "UPDATE t SET m = 'meh';\n"
        "-- querykit:down\n"
        "CREATE INDEX t_a ON t (a);\n"
        "DROP TABLE t;\n"
    )
    m = parse_migration(Path("0002_x.sql"), sql.encode())
    found = lint_migrations([m], targets={str(m.path)}, base=Knowledge(columns={"t": {}}))
    # Each statement commits on its own: no same-transaction findings; the down
    # part may drop (that is its job) but still gets the lock rules.
    assert [(f.rule, f.part, f.line) for f in found] == [("create-index-not-concurrent", "down", 7)]
    tx = parse_migration(
        Path("0002_x.sql"), sql.replace("-- querykit:no-transaction\n", "").encode()
    )
    rules = [
        f.rule
        for f in lint_migrations([tx], targets={str(tx.path)}, base=Knowledge(columns={"t": {}}))
    ]
    assert rules == [
        "validate-same-transaction",
        "enum-value-used-same-transaction",
        "create-index-not-concurrent",
    ]


def test_volatility_comes_from_pg_proc_when_a_database_is_given(
    write: Write, settings: Settings
) -> None:
    write(
        "0001_t.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY);\n"
        "CREATE FUNCTION next_code() RETURNS bigint LANGUAGE sql VOLATILE AS 'SELECT 1';\n",
    )
    write("0002_col.sql", "ALTER TABLE t ADD COLUMN code bigint DEFAULT next_code();\n")
    static = load_settings(cwd=settings.project_dir, env={}, migrations=settings.migrations)
    assert lint(static, all_files=True).findings == ()  # unknown function: not in the built-in list
    migrate.up(settings, to=1)
    found = lint(settings).findings
    assert [f.rule for f in found] == ["add-column-rewrite"]
    assert "next_code()" in found[0].message and "volatile" in found[0].message


# -- suppression and levels ---------------------------------------------------------


def test_inline_suppression_needs_a_known_rule_and_a_reason(tmp_path: Path) -> None:
    def findings(sql: str) -> list[str]:
        m = parse_migration(tmp_path / "0002_x.sql", sql.encode())
        return [
            f.rule
            for f in lint_migrations(
                [m], targets={str(m.path)}, base=Knowledge(columns={"users": {}})
            )
        ]

    assert findings(INDEX_ON_USERS) == ["create-index-not-concurrent"]
    ignored = (
        "-- querykit:lint-ignore create-index-not-concurrent users has 12 rows\n" + INDEX_ON_USERS
    )
    assert findings(ignored) == []
    with pytest.raises(MigrationFileError, match=r"0002_x.sql:1: .*needs a reason"):
        findings("-- querykit:lint-ignore create-index-not-concurrent\n" + INDEX_ON_USERS)
    with pytest.raises(MigrationFileError, match=r"0002_x.sql:2: .*names no lint rule"):
        findings("SELECT 1;\n-- querykit:lint-ignore no-such-rule because\n" + INDEX_ON_USERS)


def test_levels_from_pyproject(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        '\n[tool.querykit.lint]\nmode = "strict"\ncreate-index-not-concurrent = "warning"\n'
        'drop-table = "off"\n',
    )
    d = project / "migrations" / "sql"
    d.mkdir(parents=True)
    (d / "0001_x.sql").write_text("CREATE INDEX users_email ON users (email);\nDROP TABLE users;\n")
    settings = load_settings(cwd=project, env={})
    assert settings.lint.mode == "strict"
    [(rule, level, where)] = _rules(lint(settings))
    assert (rule, level) == ("create-index-not-concurrent", "warning")
    assert where.endswith("migrations/sql/0001_x.sql:1:1")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.querykit.lint]\nno-such-rule = "error"\n'
    )
    with pytest.raises(ConfigError, match=r"unknown lint rule 'no-such-rule'.*known rules"):
        lint(load_settings(cwd=project, env={}))
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.querykit]\nlint = "loud"\n'
    )
    with pytest.raises(ConfigError, match=r"lint mode .* must be one of warn, strict, off"):
        load_settings(cwd=project, env={})


# -- reporters ---------------------------------------------------------------------


def test_github_annotations_escape_newlines_and_commas(tmp_path: Path) -> None:
    m = parse_migration(tmp_path / "a,b" / "0002_x.sql", INDEX_ON_USERS.encode())
    found = lint_migrations([m], targets={str(m.path)}, base=Knowledge(columns={"users": {}}))
    line = github(found).rstrip("\n")
    assert line.startswith("::error file=") and "%2C" in line.split("::")[1]
    assert ",line=1,col=1,title=create-index-not-concurrent::CREATE INDEX without" in line
    assert "\n" not in line and "%0ASafe way:%0A" in line


# -- the CLI -------------------------------------------------------------------------


def test_cli_lint_exit_codes_json_and_github(tmp_path: Path) -> None:
    project = _project(tmp_path)
    d = project / "migrations" / "sql"
    d.mkdir(parents=True)
    (d / "0001_users.sql").write_text(USERS)
    clean = run_querykit("migrate", "lint", cwd=project)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == "lint: 1 file(s), no findings\n"
    bad = d / "0002_bad.sql"
    bad.write_text("ALTER TABLE accounts ADD COLUMN token uuid DEFAULT gen_random_uuid();\n")
    text = run_querykit("migrate", "lint", cwd=project)
    assert text.returncode == 1
    assert "migrations/sql/0002_bad.sql:1:1: error add-column-rewrite:" in text.stdout
    assert "ACCESS EXCLUSIVE on accounts (blocks reads and writes" in text.stdout
    as_json = run_querykit("migrate", "lint", "--json", str(bad), cwd=project)
    payload = json.loads(as_json.stdout)
    assert payload["counts"] == {"error": 1, "warning": 0, "info": 0}
    f = payload["findings"][0]
    assert (f["rule"], f["line"], f["column"], f["rewrite"]) == (
        "add-column-rewrite",
        1,
        1,
        ["accounts"],
    )
    assert (
        f["locks"][0]["mode"] == "ACCESS EXCLUSIVE" and "SET DEFAULT gen_random_uuid()" in f["safe"]
    )
    gh = run_querykit("migrate", "lint", "--format", "github", cwd=project)
    assert gh.stdout.startswith(
        "::error file=migrations/sql/0002_bad.sql,line=1,col=1,title=add-column-rewrite::"
    )
    syntax = d / "0003_broken.sql"
    syntax.write_text("ALTER TABLE;\n")
    broken = run_querykit("migrate", "lint", cwd=project)
    assert broken.returncode == 2 and "0003_broken.sql:1:" in broken.stderr


def test_up_prints_findings_and_strict_refuses_before_anything_runs(
    tmp_path: Path, database_url: str
) -> None:
    project = _project(tmp_path)
    d = project / "migrations" / "sql"
    d.mkdir(parents=True)
    (d / "0001_users.sql").write_text(USERS)
    url = ("--database-url", database_url)
    assert run_querykit("migrate", "up", "-q", *url, cwd=project).returncode == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (email) VALUES ('a'), ('b')")
        conn.execute("ANALYZE users")
    (d / "0002_index.sql").write_text(INDEX_ON_USERS)
    (d / "0003_more.sql").write_text("CREATE TABLE more (id bigint PRIMARY KEY);\n")
    refused = run_querykit("migrate", "up", "--strict", *url, cwd=project)
    assert refused.returncode == 3, refused.stderr
    assert "0002_index.sql:1:1: error create-index-not-concurrent" in refused.stderr
    assert "lint is strict, so nothing was applied" in refused.stderr
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert not table_exists(conn, "more")
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text() + 'lint = "strict"\n'
    )
    assert run_querykit("migrate", "up", *url, cwd=project).returncode == 3
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text().replace('lint = "strict"', 'lint = "warn"')
    )
    applied = run_querykit("migrate", "up", *url, cwd=project)
    assert applied.returncode == 0, applied.stderr
    assert "error create-index-not-concurrent" in applied.stderr
    assert "applying 0002_index.sql ... ok" in applied.stderr
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert table_exists(conn, "more")


def test_cli_probe_confirms_on_a_shadow_and_leaves_no_database_behind(
    tmp_path: Path, database_url: str, pg_server_url: str
) -> None:
    project = _project(tmp_path)
    d = project / "migrations" / "sql"
    d.mkdir(parents=True)
    (d / "0001_users.sql").write_text(USERS)
    (d / "0002_change.sql").write_text(
        textwrap.dedent(
            """\
            ALTER TABLE users ALTER COLUMN email TYPE varchar(200);
            CREATE INDEX CONCURRENTLY users_email ON users (email);
            """
        ).replace(
            "CREATE INDEX CONCURRENTLY", "-- querykit:no-transaction\nCREATE INDEX CONCURRENTLY"
        )
    )
    url = ("--database-url", database_url)
    assert run_querykit("migrate", "up", "--to", "0001", "-q", *url, cwd=project).returncode == 0
    run = run_querykit("migrate", "lint", "--probe", "--json", *url, cwd=project)
    payload = json.loads(run.stdout)
    assert payload["probed"] is True
    [f] = payload["findings"]
    assert f["rule"] == "column-type-rewrite"
    assert f["probe"]["confirmed"] is True and f["probe"]["note"] == "confirmed"
    assert f["probe"]["observed"]["rewrite"] == ["users"]
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'qk_shadow%'"
        ).fetchall()
    assert left == []


def test_drop_database_is_an_error_and_concurrent_statements_are_judged_statically() -> None:
    sql = b"-- querykit:no-transaction\nDROP DATABASE app;\nDROP INDEX CONCURRENTLY users_email;\n"
    m = parse_migration(Path("0002_x.sql"), sql)
    found = lint_migrations([m], targets={str(m.path)}, base=Knowledge(columns={"users": {}}))
    assert [(f.rule, f.level) for f in found] == [("drop-database", "error")]


def test_every_safe_way_is_sql_that_parses() -> None:
    """The SQL a finding proposes parses (placeholders like <type> aside; info rules give a column definition)."""
    from corpus_db import case_migration
    from lint_corpus import CASES
    from pglast import parser

    base = Knowledge(
        columns={"account": {}, "owner": {}, "event": {}, "tag": {}, "measure": {}},
        indexes={"account_owner_idx": "account"},
        enums={"mood": ["sad", "ok", "happy"]},
    )
    checked = 0
    for c in CASES:
        m = case_migration(c)
        for f in lint_migrations([m], targets={str(m.path)}, base=base):
            if f.level == "info":
                continue
            code = "\n".join(
                line for line in f.safe.splitlines() if not line.lstrip().startswith("--")
            )
            if not code.strip() or re.search(r"<\w+>|\.\.\.", code):
                continue
            parser.parse_sql(code)
            checked += 1
    assert checked >= 15


def test_the_probe_reports_a_rewrite_no_rule_predicted(
    write: Write, settings: Settings, db: psycopg.Connection[tuple[object, ...]]
) -> None:
    write("0001_users.sql", USERS)
    write(
        "0002_unlogged.sql",
        "ALTER TABLE users SET UNLOGGED;\nALTER TABLE users ADD COLUMN note text;\n",
    )
    migrate.up(settings, to=1)
    db.execute("INSERT INTO users (email) VALUES ('a')")  # rows, size not analyzed: level kept
    assert lint(settings).findings == ()
    [f] = lint(settings, probe=True).findings
    assert (f.rule, f.level, f.line) == ("probe-rewrite", "error", 1)
    assert f.probe is not None and not f.probe.confirmed
    assert f.effect.rewrite == ("users",) and f.effect.lock_map == {"users": "ACCESS EXCLUSIVE"}
    assert "the probe saw this statement rewrite users (ACCESS EXCLUSIVE on users)" in f.message


def test_findings_say_how_long_the_runner_waits_for_the_lock() -> None:
    def message(sql: str, lock_timeout: float = 5.0) -> str:
        m = parse_migration(Path("0002_x.sql"), sql.encode())
        base = Knowledge(columns={"users": {}})
        found = lint_migrations([m], targets={str(m.path)}, base=base, lock_timeout=lock_timeout)
        return found[-1].message

    assert message(INDEX_ON_USERS).endswith(
        "it waits at most lock_timeout (5 s) for the lock, then fails with 55P03 "
        "(querykit migrate up --lock-retries N retries)"
    )
    assert "lock_timeout (2 s)" in message(INDEX_ON_USERS, lock_timeout=2)
    assert "lock_timeout (0.25 s)" in message("SET lock_timeout = '250ms';\n" + INDEX_ON_USERS)
    assert "lock_timeout (60 s)" in message("SET LOCAL lock_timeout = '1min';\n" + INDEX_ON_USERS)
    assert "without limit" in message("SET lock_timeout = 0;\n" + INDEX_ON_USERS)
