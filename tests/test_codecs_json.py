"""JSON values are serialised once, by an encoder built once: the text is the standard library's.

The json/jsonb adapters send ``json.dumps(value, allow_nan=False)``'s text, made by a
C encoder built at import instead of one per value. The oracle is ``json.dumps``
itself; what it refuses, the adapters refuse with a ``ValueRejected`` that says why
(a cycle and deep nesting included, which used to escape as ``RecursionError``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from querykit import codecs

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def no_surrogates(value: Any) -> bool:
    return "\\ud" not in json.dumps(value)  # a lone surrogate is refused (tested elsewhere)


@settings(max_examples=300, deadline=None)
@given(json_values.filter(no_surrogates))
def test_the_text_sent_is_json_dumps_text(value: Any) -> None:
    expected = json.dumps(value, allow_nan=False)
    if "\\u0000" in expected:
        return  # NUL is refused: jsonb cannot hold it
    for type_ in (postgresql.JSONB(), sa.JSON()):
        adapter = codecs.adapter_for(type_)
        assert adapter is not None and adapter(value).obj == expected
    copy = codecs.json_copy_adapter(postgresql.JSONB())
    assert copy is not None and copy(value) == b"\x01" + expected.encode()


def deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


cycle: list[Any] = []
cycle.append(cycle)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": math.nan}, "Out of range float values"),
        ({"a": {1, 2}}, "Object of type set is not JSON serializable"),
        ({"a": cycle}, "refers to itself"),
        (deep(100_000), "nests deeper than Python's recursion limit"),
    ],
)
def test_what_json_cannot_say_is_refused_with_the_reason(value: Any, message: str) -> None:
    for adapter in (
        codecs.adapter_for(postgresql.JSONB()),
        codecs.json_copy_adapter(postgresql.JSONB()),
    ):
        assert adapter is not None
        with pytest.raises(codecs.ValueRejected, match=f"not JSON-serialisable: .*{message}"):
            adapter(value)
