"""The examples of the README's "Read replicas and poolers" section run as written.

Against a real primary and streaming standby (``replicated``), and a real
PgBouncer in transaction mode in front of the primary.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import psycopg
import pytest

from tests.execute.conftest import schema_ddl
from tests.realservers import ReplicatedCluster, pgbouncer

README = Path(__file__).resolve().parents[1] / "README.md"
pytestmark = pytest.mark.xdist_group("replica")


def section_examples() -> list[str]:
    text = README.read_text()
    start = text.index("\n## Read replicas and poolers\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_the_read_replica_examples_run(
    replicated: ReplicatedCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, standby = replicated.create_database(
        "readme_replicas", ["CREATE EXTENSION IF NOT EXISTS vector", *schema_ddl()]
    )
    try:
        with pgbouncer(primary) as pooled:
            monkeypatch.setenv("DATABASE_URL", primary)
            monkeypatch.setenv("REPLICA_URL", standby)
            monkeypatch.setenv("PGBOUNCER_URL", pooled)
            examples = section_examples()
            assert len(examples) == 4
            namespace: dict[str, object] = {"__name__": "readme"}
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                for number, code in enumerate(examples, 1):
                    where = f"README.md (Read replicas and poolers, example {number})"
                    exec(compile(code, where, "exec"), namespace)
            printed = out.getvalue().splitlines()
            # The log target: the replica's host:port/db (or, on a loaded machine, the
            # primary, saying the replica had not caught up in time).
            target = printed[0]
            assert target.split(" ")[0] == standby.split("@")[1] or "had not replayed" in target
            assert printed[1].startswith(
                "refused behind a transaction-mode pooler (connect(pooler=...)): LISTEN/UNLISTEN"
            )
            assert namespace["ids"] == ["r1"]
            namespace["db"].close()  # type: ignore[attr-defined]
    finally:
        with psycopg.connect(replicated.primary_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE readme_replicas WITH (FORCE)")
