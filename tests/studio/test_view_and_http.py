"""The Studio without a browser: keyset pages against SQL, export, the guard, reflection, the CLI.

The keyset walk is the proof that pages never lose or repeat a row, NULL sort
values included: every page of a sorted, filtered view, followed by its
cursor, must add up to the rows of one ORDER BY in SQL.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg.types.json import Jsonb

from querykit import (
    InsertQuery,
    and_,
    asc,
    connect,
    count,
    desc,
    eq,
    gte,
    load_settings,
    lte,
    select,
)
from querykit.errors import ValidationError
from querykit.execute.connect import connect as pg_connect
from querykit.studio.catalog import catalog_of, load_catalog
from querykit.studio.view import PAGE_SIZE, parse_view
from schema import Status, metadata, pipeline_run

from .conftest import ROOT, RunningStudio

run = pipeline_run
FILTER = [("name.eq", "podcast-summary"), ("cost.gte", "100"), ("cost.lte", "160")]


def rows_of(db: Any, view: Any) -> list[dict[str, Any]]:
    names = list(view.table.columns)
    return [dict(zip(names, r, strict=True)) for r in db.all(view.page_query())]


@pytest.mark.parametrize("sort", ["-ended_at", "ended_at", "-cost", "status", None])
def test_keyset_pages_add_up_to_the_sql_order(seeded_url: str, sort: str | None) -> None:
    table = catalog_of(list(metadata.tables.values()), "test").table("pipeline_run")
    params = FILTER + ([("sort", sort)] if sort else [])
    where = and_(
        eq(run.c.name, "podcast-summary"),
        gte(run.c.cost, Decimal(100)),
        lte(run.c.cost, Decimal(160)),
    )
    with connect(seeded_url) as db:
        if sort is None:
            order: list[Any] = [asc(run.c.id)]
        else:
            column = run.c[sort.lstrip("-")]
            order = (
                [desc(column), desc(run.c.id)]
                if sort.startswith("-")
                else [asc(column), asc(run.c.id)]
            )
        expected = db.scalars(select(run.c.id).where(where).order_by(*order))
        assert len(expected) > 3 * PAGE_SIZE
        seen: list[str] = []
        view = parse_view(table, params)
        while True:
            page = rows_of(db, view)
            seen += [r["id"] for r in page[:PAGE_SIZE]]
            if len(page) <= PAGE_SIZE:
                break
            view = parse_view(table, [*params, ("after", view.cursor_of(page[PAGE_SIZE - 1]))])
        assert seen == expected
        # and back: 'before' the first row of the last page gives the page before it
        last_start = (len(expected) - 1) // PAGE_SIZE * PAGE_SIZE
        cursor_row = db.all(select(run).where(eq(run.c.id, expected[last_start])))[0]
        back = parse_view(
            table,
            [
                *params,
                ("before", view.cursor_of(dict(zip(table.columns, cursor_row, strict=True)))),
            ],
        )
        previous = [r["id"] for r in rows_of(db, back)][:PAGE_SIZE]
        assert list(reversed(previous)) == expected[last_start - PAGE_SIZE : last_start]


def test_bad_view_input_is_a_clear_error() -> None:
    table = catalog_of(list(metadata.tables.values()), "test").table("pipeline_run")
    with pytest.raises(
        ValidationError, match="pipeline_run has no column 'nope'; its columns: id, name"
    ):
        parse_view(table, [("nope.eq", "1")])
    with pytest.raises(
        ValidationError, match=r"cost \(numeric\(12, 6\)\) takes the operators: gte, lte, eq"
    ):
        parse_view(table, [("cost.contains", "1")])
    with pytest.raises(ValidationError, match="cost: 'abc' is not a valid numeric"):
        parse_view(table, [("cost.gte", "abc")]).where()
    with pytest.raises(
        ValidationError, match=r"status: 'DONE' is not a valid status \(one of PENDING"
    ):
        parse_view(table, [("status.eq", "DONE")]).where()
    # sorted by jsonb, the cursor names the row by its key alone
    with pytest.raises(ValidationError, match=r"has 2 values; this view pages by 1 columns \(id\)"):
        parse_view(table, [("sort", "metadata"), ("after", '["{}", "run1"]')]).page_query()
    # a value that looks like SQL is only ever a bound parameter
    view = parse_view(table, [("name.contains", "x'; DROP TABLE pipeline_run; --")])
    compiled = view.page_query().to_sql()
    assert "DROP" not in compiled.sql
    assert compiled.params[0] == "%x'; DROP TABLE pipeline\\_run; --%"  # escape_like()d


def cookie_client(studio: RunningStudio) -> httpx.Client:
    client = httpx.Client(base_url=studio.base, follow_redirects=False, timeout=30)
    signed = client.get(studio.url)
    assert signed.status_code == 303 and "HttpOnly" in signed.headers["set-cookie"]
    assert "token" not in signed.headers["location"]
    return client


def test_export_streams_the_whole_filtered_view(studio: RunningStudio, seeded_url: str) -> None:
    client = cookie_client(studio)
    query = "status.eq=FAILED&cost.lte=100&sort=-cost"
    exported = client.get(f"/t/pipeline_run/export.csv?{query}")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    lines = client.get(f"/t/pipeline_run/export.jsonl?{query}").text.splitlines()
    with connect(seeded_url) as db:
        expected = db.all(
            select(run.c.id, run.c.cost, run.c.metadata)
            .where(eq(run.c.status, Status.FAILED), lte(run.c.cost, Decimal(100)))
            .order_by(desc(run.c.cost), desc(run.c.id))
        )
    assert len(expected) > PAGE_SIZE  # the whole view, not one page
    assert [(r["id"], Decimal(r["cost"]), json.loads(r["metadata"])) for r in table] == expected
    assert [
        (d["id"], Decimal(d["cost"]), d["metadata"]) for d in map(json.loads, lines)
    ] == expected


def test_the_guard_refuses_foreign_hosts_origins_and_tokens(studio: RunningStudio) -> None:
    client = cookie_client(studio)
    assert client.get("/t/pipeline_run").status_code == 200
    rebound = client.get("/t/pipeline_run", headers={"host": f"evil.example:{studio.port}"})
    assert rebound.status_code == 400 and "Host" in rebound.text
    cross = client.post("/q/queries:run_overview/run", headers={"origin": "http://evil.example"})
    assert cross.status_code == 403
    no_cookie = httpx.get(f"{studio.base}/t/pipeline_run")
    assert no_cookie.status_code == 403 and "token" in no_cookie.text
    timing = client.get("/").headers["server-timing"]
    assert timing.startswith("app;dur=")


def test_errors_are_messages_not_tracebacks(studio: RunningStudio) -> None:
    client = cookie_client(studio)
    for path in (
        "/t/nope",
        "/t/pipeline_run?cost.gte=abc",
        "/t/pipeline_run?after=garbage",
        "/q/queries:nope",
    ):
        page = client.get(path)
        assert page.status_code == 400, path
        assert 'class="msg error"' in page.text and "Traceback" not in page.text, path


def test_reflected_tables_when_there_is_no_schema_module(seeded_url: str, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.querykit]\nschema = "no_such_schema"\n')
    catalog = load_catalog(load_settings(cwd=tmp_path, env={}), seeded_url)
    assert catalog.source == "reflected from the database"
    assert set(metadata.tables) <= set(catalog.tables)
    emb = catalog.table("embedding").columns["embedding"]
    assert emb.kind == "vector" and emb.sql_type == "vector(384)" and emb.metric == "cosine"
    assert catalog.table("pipeline_run").columns["status"].choices == tuple(s.name for s in Status)
    assert "steps" in catalog.table("pipeline_run").children
    with connect(seeded_url) as db:
        view = parse_view(catalog.table("pipeline_run"), [("status.eq", "FAILED")])
        total = db.scalar(
            select(count()).from_(catalog.table("pipeline_run").table).where(*view.where())
        )
        assert total == db.scalar(select(count()).from_(run).where(eq(run.c.status, Status.FAILED)))


def test_the_cli_says_which_extra_is_missing() -> None:
    code = (
        "import sys; sys.modules['starlette'] = None\n"
        "from querykit.cli import main; sys.argv = ['querykit', 'studio', '--port', '0']; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "pip install 'querykit[studio]'" in proc.stderr and "Traceback" not in proc.stderr


def test_the_cli_help_a_dead_database_and_a_busy_port(studio: RunningStudio) -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "querykit", "studio", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert helped.returncode == 0 and "--write" in helped.stdout and "127.0.0.1" in helped.stdout
    busy = subprocess.run(
        [
            sys.executable,
            "-m",
            "querykit",
            "studio",
            "--port",
            str(studio.port),
            "--database-url",
            "postgresql://127.0.0.1:1/x",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert busy.returncode == 1 and busy.stderr.startswith("error: cannot connect to PostgreSQL")
    assert "Traceback" not in busy.stderr and not busy.stdout  # no URL printed for a dead database
    taken = subprocess.run(
        [sys.executable, "-m", "querykit", "studio", "--port", str(studio.port)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "DATABASE_URL": studio.database_url},
    )
    assert taken.returncode == 2 and f"cannot listen on 127.0.0.1:{studio.port}" in taken.stderr


def test_the_vendored_htmx_matches_its_notice() -> None:
    """tools/vendor_studio.py --check: the file is the npm package's, with version and licence noted."""
    proc = subprocess.run(
        [sys.executable, "tools/vendor_studio.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout
    notice = (ROOT / "querykit" / "studio" / "static" / "VENDORED.md").read_text()
    assert "| htmx.min.js | htmx.org | 2.0.11 | 0BSD" in notice
    assert (ROOT / "querykit" / "studio" / "static" / "htmx.min.js.LICENSE").read_text().strip()


def test_the_cli_does_not_import_the_web_stack_until_studio_runs() -> None:
    code = "import sys, querykit.cli; print(sorted({'starlette', 'uvicorn', 'jinja2'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_every_named_query_runs_or_says_why_in_a_read_only_studio(studio: RunningStudio) -> None:
    from querykit.named import load_named

    client = cookie_client(studio)
    csrf = re.search(r'"x-studio-csrf": "([0-9a-f]+)"', client.get("/").text)
    assert csrf is not None
    headers = {"x-studio-csrf": csrf.group(1), "hx-request": "true"}
    named = load_named(None, load_settings(cwd=ROOT, env={}))
    for q in named:
        for action in ("run", "explain"):
            page = client.post(f"/q/{q.target}/{action}", headers=headers)
            assert "Traceback" not in page.text and "unexpected" not in page.text, (
                q.target,
                page.text,
            )
            if isinstance(q.query, InsertQuery):  # a write, refused by the read-only session
                assert page.status_code == 400 and "read-only transaction" in page.text
            else:
                assert page.status_code == 200, (q.target, page.text)
                assert (
                    ("row(s) in" in page.text) if action == "run" else ("actual time" in page.text)
                )


@pytest.mark.parametrize(
    ("params", "sql", "args"),
    [
        ([("name.contains", "PODCAST")], "name ILIKE %s", ["%podcast%"]),
        ([("name.eq", "doc-translation")], "name = %s", ["doc-translation"]),
        (
            [
                ("started_at.gte", "2026-01-10T00:00"),
                ("started_at.lte", "2026-01-20T12:30:00+00:00"),
            ],
            "started_at >= %s AND started_at <= %s",
            ["2026-01-10T00:00Z", "2026-01-20T12:30Z"],
        ),
        ([("status.eq", "RUNNING")], "status = %s", ["RUNNING"]),
        ([("metadata.json", '{"n": 7}')], "metadata @> %s::jsonb", ['{"n": 7}']),
        ([("metadata.has", "topic")], "metadata ? %s", ["topic"]),
        ([("ended_at.lte", "2026-01-02")], "ended_at <= %s", ["2026-01-02T00:00Z"]),
    ],
)
def test_each_filter_kind_counts_what_hand_written_sql_counts(
    seeded_url: str, params: list[tuple[str, str]], sql: str, args: list[str]
) -> None:
    """The oracle is hand-written SQL through plain psycopg, not querykit."""
    import psycopg

    table = catalog_of(list(metadata.tables.values()), "test").table("pipeline_run")
    view = parse_view(table, params)
    with connect(seeded_url) as db:
        shown = db.scalar(select(count()).from_(run).where(*view.where()))
    with psycopg.connect(seeded_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM pipeline_run WHERE {sql}", args).fetchone()
    assert row is not None and shown == row[0] > 0


def test_the_package_data_ships_every_template_and_static_file() -> None:
    """A wheel without them would start and then fail on the first page."""
    import fnmatch
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["querykit"]
    package = ROOT / "querykit"
    files = [
        p.relative_to(package).as_posix()
        for folder in ("studio/templates", "studio/static")
        for p in (package / folder).iterdir()
    ]
    assert len(files) > 10
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert missing == []


# -- sorting by jsonb and vector: the cursor names the row, the query reads its value -------

EXTRA_CONTEXTS = 130
"""agent_context rows added for the jsonb walks: duplicates and NULLs, beside the 1 MB one."""


@pytest.fixture
def contexts(seeded_url: str) -> Iterator[None]:
    """agent_context with 132 rows: repeated documents, a third of metadata NULL; removed after."""
    docs = [{"agent": "a"}, {"agent": "b", "n": 1}, [1, 2], "text", 7, {"agent": "a", "z": None}]
    rows = [
        (
            f"s{i}",
            Jsonb(docs[i % len(docs)]),
            None if i % 3 == 0 else Jsonb({"k": i % 5}),
        )
        for i in range(EXTRA_CONTEXTS)
    ]
    with pg_connect(seeded_url, autocommit=True) as conn:
        top = conn.execute("SELECT max(id) FROM agent_context").fetchone()
        assert top is not None
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO agent_context (session, context, metadata) VALUES (%s, %s, %s)", rows
            )
        try:
            yield
        finally:
            conn.execute("DELETE FROM agent_context WHERE id > %s", top)


def hand_order(url: str, table: str, column: str, descending: bool, where: str = "") -> list[Any]:
    """The ids of one ``ORDER BY column, id`` written by hand (PostgreSQL's NULL placement)."""
    direction = "DESC" if descending else "ASC"
    query = f"SELECT id FROM {table} {where} ORDER BY {column} {direction}, id {direction}"
    with pg_connect(url) as conn:
        return [str(r[0]) for r in conn.execute(query)]


def walk(db: Any, table: Any, params: list[tuple[str, str]]) -> list[list[str]]:
    """Every page forward by ``after``; then back by ``before`` from the last, which must agree."""
    forward: list[list[str]] = []
    view = parse_view(table, params)
    while True:
        page = rows_of(db, view)
        forward.append([str(r["id"]) for r in page[:PAGE_SIZE]])
        if len(page) <= PAGE_SIZE:
            break
        cursor = view.cursor_of(page[PAGE_SIZE - 1])
        assert len(cursor) < 100, cursor  # the key alone, never the document or vector
        view = parse_view(table, [*params, ("after", cursor)])
    backward = [forward[-1]]
    first = rows_of(db, view)[0]
    while True:
        view = parse_view(table, [*params, ("before", view.cursor_of(first))])
        page = rows_of(db, view)[:PAGE_SIZE][::-1]
        if not page:
            break
        backward.insert(0, [str(r["id"]) for r in page])
        first = page[0]
    assert backward == forward
    return forward


WALKS = [
    ("pipeline_run", "metadata", FILTER),
    ("pipeline_run", "-metadata", FILTER),
    ("embedding", "embedding", []),
    ("embedding", "-embedding", []),
    ("agent_context", "context", []),
    ("agent_context", "-context", []),
    ("agent_context", "metadata", []),
    ("agent_context", "-metadata", []),
]


@pytest.mark.parametrize(("table_name", "sort", "params"), WALKS)
@pytest.mark.usefixtures("contexts")
def test_jsonb_and_vector_sorts_page_forward_and_back_as_the_sql_order(
    seeded_url: str, table_name: str, sort: str, params: list[tuple[str, str]]
) -> None:
    table = catalog_of(list(metadata.tables.values()), "test").table(table_name)
    where = (
        "WHERE name = 'podcast-summary' AND cost >= 100 AND cost <= 160"
        if table_name == "pipeline_run"
        else ""
    )
    expected = hand_order(seeded_url, table_name, sort.lstrip("-"), sort.startswith("-"), where)
    assert len(expected) > 2 * PAGE_SIZE
    with connect(seeded_url) as db:
        pages = walk(db, table, [*params, ("sort", sort)])
    assert [i for p in pages for i in p] == expected


def page_ids(text: str) -> list[str]:
    return [json.loads(html.unescape(k))[0] for k in re.findall(r'<tr data-key="([^"]+)"', text)]


def link(text: str, rel: str) -> str | None:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', text)
    return html.unescape(found.group(1)) if found else None


@pytest.mark.usefixtures("contexts")
@pytest.mark.parametrize("sort", ["context", "-context"])
def test_a_jsonb_sort_links_pages_with_small_urls(
    studio: RunningStudio, seeded_url: str, sort: str
) -> None:
    """The header is a sort link; next/previous links hold the key, even past the 1 MB row."""
    client = cookie_client(studio)
    first = client.get("/t/agent_context")
    assert 'href="/t/agent_context?sort=context"' in first.text  # the header links the sort
    expected = hand_order(seeded_url, "agent_context", "context", sort.startswith("-"))
    with pg_connect(seeded_url) as conn:
        found = conn.execute("SELECT id FROM agent_context WHERE session = 's-big'").fetchone()
    assert found is not None
    big = str(found[0])
    pages: list[list[str]] = []
    links: list[str] = []
    url: str | None = f"/t/agent_context?sort={sort}"
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.text
        assert "OFFSET" not in response.text.upper()
        pages.append(page_ids(response.text))
        url = link(response.text, "next")
        links += [url] if url else []
    assert [i for p in pages for i in p] == expected
    # the page after the 1 MB row: its cursor is its key
    after_big = client.get(
        "/t/agent_context", params={"sort": sort, "after": json.dumps([big]), "page": "2"}
    )
    start = expected.index(big) + 1
    assert page_ids(after_big.text) == expected[start : start + PAGE_SIZE]
    # back from the last page by the previous links: the same pages
    back: list[list[str]] = [pages[-1]]
    url = link(response.text, "prev")
    while url is not None:
        links.append(url)
        response = client.get(url)
        back.insert(0, page_ids(response.text))
        url = link(response.text, "prev")
    assert back == pages
    assert max(len(u) for u in links) < 200, links  # no document in any URL


def test_page_500_sorted_by_jsonb_still_uses_no_offset(
    studio: RunningStudio, seeded_url: str
) -> None:
    client = cookie_client(studio)
    with pg_connect(seeded_url) as conn:
        expected = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM pipeline_run"
                " WHERE (metadata, id) > (SELECT metadata, id FROM pipeline_run WHERE id = %s)"
                " ORDER BY metadata, id LIMIT %s",
                ("run024950", PAGE_SIZE),
            )
        ]
    after = json.dumps(["run024950"])
    response = client.get(
        "/t/pipeline_run", params={"sort": "metadata", "after": after, "page": "500"}
    )
    assert response.status_code == 200
    assert page_ids(response.text) == expected
    assert "page 500" in response.text
    shown = html.unescape(response.text)
    assert "OFFSET" not in shown.upper() and "LIMIT" in shown.upper()
    assert "FROM pipeline_run AS cursor_row" in shown  # the sort value read by key, in SQL
    assert len(str(response.url)) < 200
