"""The pure parts of routing: WAL positions, settings, what needs a session.

WAL positions are checked against PostgreSQL's own ``pg_lsn`` arithmetic.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from querykit import connect
from querykit.errors import ConfigError
from querykit.execute.routing import RoutingOptions, format_lsn, parse_lsn, session_feature

LSNS = ["0/0", "0/3000148", "16/B374D848", "FFFFFFFF/FFFFFFFF", "1/0"]


def test_wal_positions_order_as_postgresql_orders_them(admin: psycopg.Connection[Any]) -> None:
    for text in LSNS:
        row = admin.execute("SELECT %s::pg_lsn - '0/0'::pg_lsn, %s::pg_lsn::text", (text, text))
        found = row.fetchone()
        assert found is not None
        offset, canonical = found
        assert parse_lsn(text) == int(offset)
        assert format_lsn(parse_lsn(text)) == canonical
    assert parse_lsn("16/b374d848") == parse_lsn("16/B374D848")


@pytest.mark.parametrize("bad", ["", "abc", "0/", "/1", "1/2/3", "123456789/0", " 0/1x"])
def test_a_bad_token_says_what_a_token_looks_like(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"not a consistency token.*'0/3000148'"):
        parse_lsn(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"consistency": "strong"}, r"consistency='strong'.*'eventual' or 'read-your-writes'"),
        ({"pooler": "pgbouncer"}, r"pooler='pgbouncer'.*'none', 'transaction'"),
        ({"max_replica_wait": -1}, r"max_replica_wait=.*seconds >= 0, got -1"),
        ({"max_lag": "5s"}, r"max_lag=.*seconds.*got .5s."),
    ],
)
def test_bad_routing_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RoutingOptions(**kwargs)


def test_connect_checks_routing_settings_before_connecting() -> None:
    with pytest.raises(ConfigError, match="pooler='transaction', prepare=True"):
        connect("postgresql://nobody@127.0.0.1:1/none", pooler="transaction", prepare=True)


def test_prepare_follows_the_pooler() -> None:
    assert RoutingOptions().server_prepare(None) is True
    assert RoutingOptions().server_prepare(False) is False
    assert RoutingOptions(pooler="transaction").server_prepare(None) is False
    assert RoutingOptions(pooler="pgbouncer-prepared").server_prepare(None) is True


@pytest.mark.parametrize(
    "sql",
    [
        "LISTEN jobs",
        "  unlisten *",
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_advisory_unlock_shared(1)",
        "select pg_try_advisory_lock(1, 2)",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "SET search_path = app",
        "SET SESSION statement_timeout = 0",
        "PREPARE p AS SELECT 1",
    ],
)
def test_session_statements_are_recognised(sql: str) -> None:
    assert session_feature(sql) is not None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_advisory_xact_lock(1)",
        "SELECT pg_try_advisory_xact_lock(1)",
        "SET LOCAL statement_timeout = 0",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SELECT 'LISTEN' AS word",
        "SELECT set_config('a.b', 'c', true)",
        "UPDATE t SET n = 1",
    ],
)
def test_transaction_scoped_statements_pass(sql: str) -> None:
    assert session_feature(sql) is None
