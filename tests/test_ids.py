"""Ids (issue 21 §5): ``uuid7()`` checked against PostgreSQL 18's own UUIDv7 functions,
``func.uuidv7()`` as a server default, and ``cuid2()``."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import time
import uuid
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from querykit import connect, cuid, cuid2, insert, select, uuid7


def test_uuid7_fields_read_back_by_postgresql(conn: psycopg.Connection[Any]) -> None:
    before = dt.datetime.now(dt.UTC)
    ids = [uuid7() for _ in range(50)]
    after = dt.datetime.now(dt.UTC)
    rows = conn.execute(
        "SELECT uuid_extract_version(u), uuid_extract_timestamp(u) FROM unnest(%s::uuid[]) u",
        (ids,),
    ).fetchall()
    for version, stamp in rows:
        assert version == 7
        assert before - dt.timedelta(milliseconds=1) <= stamp <= after
    assert all(u.variant == uuid.RFC_4122 for u in ids)


def test_uuid7_sorts_by_time_in_python_and_in_postgresql(conn: psycopg.Connection[Any]) -> None:
    mine = [uuid7() for _ in range(20_000)]  # many per millisecond: the counter orders them
    assert len(set(mine)) == len(mine) and mine == sorted(mine)
    time.sleep(0.002)
    (server,) = conn.execute("SELECT uuidv7()").fetchone() or (None,)
    time.sleep(0.002)
    later = uuid7()
    ordered = [
        r[0]
        for r in conn.execute(
            "SELECT unnest(%s::uuid[]) ORDER BY 1", ([later, server, mine[-1], mine[0]],)
        )
    ]
    assert ordered == [mine[0], mine[-1], server, later]  # PostgreSQL's uuid order agrees


def test_uuid7_in_a_forked_child_does_not_repeat_the_parents() -> None:
    uuid7()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its ids and leave at once
        os.write(write, "\n".join(str(uuid7()) for _ in range(1000)).encode())
        os._exit(0)
    os.close(write)
    parent = {uuid7() for _ in range(1000)}
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    child = {uuid.UUID(line) for line in b"".join(chunks).decode().splitlines()}
    assert len(child) == 1000 and not parent & child


def test_server_side_uuidv7_default_and_python_uuid7_default(database_url: str) -> None:
    meta = sa.MetaData()
    server = sa.Table(
        "id_server",
        meta,
        sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.func.uuidv7()),
        sa.Column("name", sa.Text),
    )
    client = sa.Table("id_client", meta, sa.Column("id", sa.Uuid, primary_key=True, default=uuid7))
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    meta.create_all(engine)  # SQLAlchemy's own DDL: DEFAULT uuidv7()
    engine.dispose()
    with connect(database_url) as db:
        made = db.scalars(
            insert(server).values([{"name": "a"}, {"name": "b"}]).returning(server.c.id)
        )
        given = db.scalars(insert(client).values([{}, {}]).returning(client.c.id))
        assert [u.version for u in made + given] == [7, 7, 7, 7]
        assert made[0] < made[1] and given[0] < given[1]
        assert db.scalars(select(server.c.id).order_by(server.c.id)) == made


def test_cuid2_ids() -> None:
    ids = [cuid2() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z][0-9a-z]{23}", i) for i in ids)
    assert {i[0] for i in ids} == set("abcdefghijklmnopqrstuvwxyz")  # a random letter first
    # nothing time-ordered or shared: consecutive ids share no prefix, unlike cuid v1
    assert sum(a[:4] == b[:4] for a, b in itertools.pairwise(ids)) < 5
    v1 = [cuid() for _ in range(2)]
    assert v1[0][:5] == v1[1][:5]  # cuid v1's time prefix: what cuid2 hides
    assert len(cuid2(10)) == 10
    with pytest.raises(ValueError, match="between 2 and 32"):
        cuid2(1)
