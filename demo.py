"""``make demo``: the main job, end to end, on the embedded PostgreSQL.

1. connect (``make demo`` has started the embedded server and run ``querykit migrate up``);
2. seed example data, once: pipeline runs and their steps, 1,000 embeddings,
   agent contexts and content items, with bulk COPY writes;
3. run every named query of ``queries.py``, printing its SQL and its results.

Run it again and it reuses the data; ``make clean`` starts over.
"""

from __future__ import annotations

import datetime as dt
import inspect
import itertools
import random
import sys
from decimal import Decimal
from typing import Any

import queries
from querykit import Database, NestedQuery, RawQuery, connect, count, load_settings, select
from querykit.codecs import json_safe
from querykit.named import format_params, load_named, statements_of
from schema import Status, agent_context, content_item, embedding, pipeline_run, pipeline_step

SUBJECTS = [
    "agents",
    "pipelines",
    "embeddings",
    "models",
    "prompts",
    "workers",
    "queries",
    "indexes",
    "traces",
    "tokens",
]
VERBS = [
    "monitor",
    "summarise",
    "rank",
    "cache",
    "retry",
    "stream",
    "label",
    "route",
    "score",
    "index",
]
OBJECTS = ["vector", "video", "audio", "document", "chat"]
NOUNS = ["pipelines", "transcripts"]


def seed(db: Database) -> None:
    if db.scalar(select(count()).from_(pipeline_run)) == 0:
        _seed_runs(db)
    have = db.scalar(select(count()).from_(embedding))
    if have < 1000:
        texts = [" ".join(words) for words in itertools.product(SUBJECTS, VERBS, OBJECTS, NOUNS)][
            have:
        ]
        db.insert_many(
            embedding,
            (
                {"content": t, "embedding": queries.embed(t), "metadata": {"source": "demo"}}
                for t in texts
            ),
        )
    if db.scalar(select(count()).from_(agent_context)) == 0:
        db.insert_many(
            agent_context,
            [
                {
                    "session": "s-1",
                    "context": {"agent": "shuri", "task": "design", "tools": ["cad"]},
                },
                {"session": "s-2", "context": {"agent": "okoye", "task": "security"}},
                {
                    "session": "s-3",
                    "context": {"agent": "shuri", "task": "review"},
                    "metadata": {"priority": 1},
                },
            ],
        )
    if db.scalar(select(count()).from_(content_item)) == 0:
        db.insert_many(
            content_item,
            [
                {"type": "video", "metadata": {"duration": 312, "resolution": "1080p"}},
                {"type": "article", "metadata": {"words": 1200, "language": "en"}},
                {"type": "podcast", "metadata": {"duration": 2710, "hosts": ["ana", "ben"]}},
            ],
        )


def _seed_runs(db: Database) -> None:
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    runs, steps = [], []
    for i in range(12):
        status = [Status.COMPLETED, Status.COMPLETED, Status.FAILED, Status.RUNNING][i % 4]
        started = now - dt.timedelta(hours=3 * i + 1)
        run_id = f"run{i:02d}"
        runs.append(
            {
                "id": run_id,
                "name": ["video-production", "podcast-summary", "doc-translation"][i % 3],
                "status": status,
                "started_at": started,
                "ended_at": None if status is Status.RUNNING else started + dt.timedelta(minutes=7),
                "duration": None if status is Status.RUNNING else 420.0,
                "cost": Decimal(rng.randint(5, 500)) / 100,
                "metadata": {"topic": "AI automation", "tags": ["demo"]},
            }
        )
        for k, name in enumerate(["transcription", "summary", "thumbnail"]):
            failed = status is Status.FAILED and k == 2
            steps.append(
                {
                    "run_id": run_id,
                    "name": name,
                    "status": Status.FAILED if failed else Status.COMPLETED,
                    "input": {"step": k},
                    "output": {"error": "timeout"} if failed else {"text": f"{name} done"},
                    "tokens": rng.randint(100, 4000),
                    "model": ["whisper-tiny", "gpt-4o-mini", "sdxl"][k],
                    "created_at": started + dt.timedelta(minutes=k),
                }
            )
    db.insert_many(pipeline_run, runs)
    db.insert_many(pipeline_step, steps)


def print_row(row: Any) -> None:
    """One result row; a nested result shows its own fields, then each related row."""
    if not isinstance(row, dict):
        print("    " + show(row))
        return
    nested = {k: v for k, v in row.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
    own = {k: v for k, v in row.items() if k not in nested}
    print("    " + show(own))
    for name, children in nested.items():
        print(f"      {name}: {len(children)}")
        for child in children[:5]:
            brief = {
                k: v
                for k, v in child.items()
                if k in ("name", "status", "model", "tokens", "created_at")
            }
            print("        " + show(brief))


def show(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list) and len(value) > 4:
        return "[" + ", ".join(show(v) for v in value[:2]) + f", ... {len(value)} items]"
    if isinstance(value, list | tuple):
        return (
            ("[" if isinstance(value, list) else "(")
            + ", ".join(show(v) for v in value)
            + ("]" if isinstance(value, list) else ")")
        )
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if hasattr(value, "name") and hasattr(value, "value") and not isinstance(value, type):
        return str(value.name)  # an Enum member
    if isinstance(value, float):
        return f"{value:.4f}"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 70 else text[:67] + "..."


SHOWN = 5
"""Rows printed per query; the rest are counted, never silently dropped."""


def main() -> int:
    settings = load_settings()
    context: dict[str, Any] = {}
    with connect(settings) as db:
        seed(db)
        for named in load_named(None, settings):
            query = named.query
            if named.factory is not None:  # feed earlier results in (a created run's id)
                wanted = inspect.signature(named.factory).parameters
                given = {k: v for k, v in context.items() if k in wanted}
                query = named.factory(**given) if given else query
            print(f"\n=== {named.target}{named.signature}")
            if named.doc:
                print("    " + named.doc.splitlines()[0])
            for statement in statements_of(query):
                print("\n".join("    " + line for line in statement.pretty().splitlines()))
                if statement.params:
                    print(
                        "    -- params: " + format_params([json_safe(p) for p in statement.params])
                    )
            rows = db.all(query) if _returns_rows(query) else None
            if rows is None:
                print(f"--> {db.execute(query)} row(s) written")
                continue
            print(f"--> {len(rows)} row(s)")
            for row in rows[:SHOWN]:
                print_row(row)
            if len(rows) > SHOWN:
                print(
                    f"    … {len(rows) - SHOWN} more (querykit sql {named.target} --run shows them)"
                )
            if named.name == "create_run" and rows:
                context["run_id"] = rows[0][0]
    print("\nEvery named query ran. Show any one again with: .venv/bin/querykit sql queries:<name>")
    print("Browse the data in the Studio (Ctrl-C stops it): .venv/bin/querykit studio --open")
    return 0


def _returns_rows(query: Any) -> bool:
    from querykit.compile import compile_query

    if isinstance(query, RawQuery | NestedQuery):
        return True
    return compile_query(query)[0].returns_rows is not False


if __name__ == "__main__":
    sys.exit(main())
