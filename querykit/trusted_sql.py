"""Marking SQL text that querykit sends as text it trusts, in one place.

psycopg types the query argument of ``execute()`` as ``LiteralString`` (PEP 675): a type
checker then refuses SQL pasted together from runtime strings, the classic injection.
querykit does send runtime strings, but only of three kinds: SQL its compiler produced
(every value bound as a parameter), SQL assembled from identifiers checked against the
schema or quoted by ``psycopg.sql``, and SQL the user wrote in a migration or ``raw()``.
Each such call site passes its text through :func:`trusted` so the claim is made
deliberately and ``grep trusted(`` lists every one of them.

This module imports nothing from querykit: every layer may use it.
"""

from __future__ import annotations

from typing import Any, LiteralString, cast

__all__ = ["trusted"]


def trusted(text: str) -> LiteralString:
    """``text`` typed as ``LiteralString``: SQL from the compiler, checked names or the user's files."""
    marked: LiteralString = cast(Any, text)  # mypy treats LiteralString as str; pyright does not
    return marked
