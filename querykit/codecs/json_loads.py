"""JSON and JSONB results parsed with orjson when it is installed (``querykit[orjson]``).

Decoding a result is mostly parsing its JSON: on 200,000 rows of six columns, one
small jsonb object each, psycopg's ``json.loads`` is about 85% of the time. orjson
parses the same text 5-8 times faster. It is used only where its answer is the
one ``json.loads`` gives:

- a run of 19 or more digits may be an integer beyond 64 bits, which orjson turns
  into a float (``json.loads`` keeps the exact ``int``): such text goes to
  ``json.loads``, as does anything orjson refuses (``1e400``, very deep nesting);
- a ``loads`` set with psycopg's ``set_json_loads`` before querykit opened the
  connection (``parse_float=Decimal``...) is kept: querykit only replaces the default.

Without orjson, connections keep psycopg's loaders.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import JsonbLoader, JsonLoader, set_json_loads

__all__ = ["fast_loads", "use_fast_loads"]

_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def _orjson_loads() -> Callable[[str | bytes], Any] | None:
    """``json.loads``, by orjson wherever the two agree; None without orjson."""
    try:  # an optional extra: querykit[orjson]
        import orjson
    except ImportError:  # pragma: no cover - exercised where orjson is absent
        return None

    def loads(data: str | bytes) -> Any:
        if isinstance(data, bytes) and _LONG_DIGITS.search(data) is None:  # psycopg: bytes
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass
        return json.loads(data)

    return loads


fast_loads: Callable[[str | bytes], Any] | None = _orjson_loads()
"""The loads querykit gives its connections, or None when orjson is not installed."""


def use_fast_loads(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """Parse this connection's json and jsonb results with :data:`fast_loads`, unless
    orjson is absent or the application chose its own ``loads`` for psycopg."""
    if fast_loads is None:
        return
    default = JsonLoader._loads is json.loads and JsonbLoader._loads is json.loads
    if default:
        set_json_loads(fast_loads, conn)
