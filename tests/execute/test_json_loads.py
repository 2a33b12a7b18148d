"""json and jsonb results parsed by orjson (querykit[orjson]) are what ``json.loads`` gives.

The oracle is the standard library: for any JSON text, querykit's loads returns
the value ``json.loads`` returns, of the same types (an integer beyond 64 bits
stays an exact ``int``; orjson alone would make it a float). On a live server the
oracle is a plain psycopg connection, which parses with ``json.loads``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.types.json import set_json_loads

from querykit import raw
from querykit.codecs import json_loads

pytestmark = pytest.mark.skipif(json_loads.fast_loads is None, reason="orjson not installed")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: 20-digit and larger integers too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON types (``1`` is not ``1.0``)."""
    return json.dumps(a) == json.dumps(b)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_fast_loads_returns_what_json_loads_returns(value: Any) -> None:
    text = json.dumps(value).encode()
    assert json_loads.fast_loads is not None
    assert same(json_loads.fast_loads(text), json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        b"123456789012345678901234567890",  # beyond 64 bits: orjson would give a float
        b'{"id": -98765432109876543210, "tag": "x"}',
        b'"12345678901234567890123"',  # long digits in a string: json.loads, same answer
        b"1e400",  # orjson refuses; json.loads gives inf
        b"[NaN, -Infinity]",  # orjson refuses what json.loads reads
        b"9223372036854775807",
        b"0.1",
    ],
)
def test_text_orjson_would_read_otherwise_is_read_by_json_loads(text: bytes) -> None:
    assert json_loads.fast_loads is not None
    assert same(json_loads.fast_loads(text), json.loads(text))


BIG = "123456789012345678901234567890"
QUERY = (
    "SELECT CAST(jsonb_build_object('n', CAST('" + BIG + "' AS numeric), 'f', 0.1, "
    "'t', 'ü ☃', 'a', jsonb_build_array(1, 2.5, true)) AS jsonb), "
    "CAST(json_build_object('k', 9007199254740993) AS json)"
)


async def test_results_match_plain_psycopg_on_a_live_server(db: Any, url: str) -> None:
    with psycopg.connect(url) as plain:  # psycopg's own loaders: json.loads
        expected = plain.execute(QUERY).fetchone()
    got = await db.one(raw(QUERY).returns(dict, dict))
    assert expected is not None and same(got, tuple(expected))
    assert got[0]["n"] == int(BIG) and type(got[0]["n"]) is int
    assert got[1]["k"] == 9007199254740993


async def test_a_loads_the_application_set_for_psycopg_is_kept(make_db: Any, url: str) -> None:
    set_json_loads(lambda data: json.loads(data, parse_float=Decimal))
    try:
        db = await make_db(url)
        value = await db.scalar(raw("SELECT CAST(jsonb_build_object('f', 0.1) AS jsonb)"))
    finally:
        set_json_loads(json.loads)
    assert value == {"f": Decimal("0.1")}
