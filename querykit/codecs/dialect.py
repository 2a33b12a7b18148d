"""The one SQLAlchemy dialect querykit compiles with: PostgreSQL for psycopg, ``%s`` placeholders.

Every layer that renders SQL text (the index helpers, the builders' operator rendering,
the compiler, ``sql_type_name``) uses this object, so they agree on quoting and types.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg, PGIdentifierPreparer_psycopg
from sqlalchemy.engine.interfaces import BindTyping

__all__ = ["DIALECT"]


class _QuoteCache(dict[str, str]):
    """SQLAlchemy's per-dialect cache of quoted identifiers, bounded.

    Core keeps every identifier it ever quoted; with label names made from data (one
    per distinct alias), one module-level dialect would grow without end.
    """

    MAX = 4096

    def __setitem__(self, key: str, value: str) -> None:
        if len(self) >= self.MAX:
            del self[next(iter(self))]
        super().__setitem__(key, value)


class _Preparer(PGIdentifierPreparer_psycopg):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._strings = _QuoteCache()


class _Dialect(PGDialect_psycopg):
    """PostgreSQL for psycopg with plain ``%s`` placeholders and no automatic casts.

    querykit adapts every value to the exact psycopg type itself (see codecs),
    so the server infers parameter types from the SQL, and the SQL stays readable.
    """

    bind_typing = BindTyping.NONE
    preparer = _Preparer


DIALECT = _Dialect(paramstyle="format")  # type: ignore[no-untyped-call]
