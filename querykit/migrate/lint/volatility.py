"""Is a column default volatile? A volatile DEFAULT makes ``ADD COLUMN`` rewrite the table.

From ``pg_proc.provolatile`` when a database was given, else from this list
of the volatile built-ins people put in defaults::

    >>> volatile_calls(parse_sql("SELECT gen_random_uuid()")[0].stmt, {})
    ['gen_random_uuid']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pglast import ast

from .knowledge import walk

__all__ = ["BUILTIN_VOLATILE", "volatile_calls"]

BUILTIN_VOLATILE = frozenset(
    {
        "random",
        "random_normal",
        "gen_random_uuid",
        "uuidv4",
        "uuidv7",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "clock_timestamp",
        "timeofday",
        "nextval",
        "setval",
        "txid_current",
        "pg_current_xact_id",
        "gen_random_bytes",
    }
)


def volatile_calls(node: Any, catalog: Mapping[str, str]) -> list[str]:
    """Names of the volatile functions called in ``node`` (``catalog``: name → provolatile)."""

    def is_volatile(name: str) -> bool:
        if name in catalog:
            return catalog[name] == "v"
        return name in BUILTIN_VOLATILE

    names = [
        (n.funcname[-1].sval or "").lower()
        for n in walk(node)
        if isinstance(n, ast.FuncCall) and n.funcname and isinstance(n.funcname[-1], ast.String)
    ]
    return [name for name in names if is_volatile(name)]
