"""What ``.to_sql()`` returns: the SQL text and parameters exactly as the executor sends them.

The builders show their SQL through :func:`render`, which the compile layer provides:
``querykit.compile`` registers its renderer when it is imported (``import querykit``
loads it with the first builder), so the build layer never imports the compiler.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.types import TypeEngine

from .. import codecs
from ..errors import CompileError

__all__ = ["CompiledSQL", "compiled_sql", "prettify", "register_renderer", "render"]


@dataclass(frozen=True)
class CompiledSQL:
    """SQL and parameters exactly as the executor sends them.

    ``sql`` uses psycopg's ``%s`` placeholders and ``params`` holds the adapted
    values. ``inline()`` renders literal SQL for psql; ``pretty()`` formats it.
    """

    sql: str
    params: tuple[Any, ...]
    _types: tuple[TypeEngine[Any], ...] = field(repr=False, compare=False)
    _raw: Sequence[Any] = field(repr=False, compare=False)
    settings: tuple[tuple[str, str], ...] = ()
    """Server settings applied around the query (``SET LOCAL``), e.g. ``hnsw.ef_search``."""

    def __str__(self) -> str:
        return self.sql

    def inline(self) -> str:
        """The SQL with every parameter rendered as a quoted, cast literal (pastes into psql)."""
        literals = iter([codecs.literal(t, v) for t, v in zip(self._types, self._raw, strict=True)])
        return _PLACEHOLDER.sub(lambda m: "%" if m.group(0) == "%%" else next(literals), self.sql)

    def numbered(self) -> str:
        """The SQL with ``$1, $2...`` placeholders, as PostgreSQL's own logs show it."""
        counter = iter(range(1, len(self.params) + 1))
        return _PLACEHOLDER.sub(
            lambda m: "%" if m.group(0) == "%%" else f"${next(counter)}", self.sql
        )

    def script(self) -> str:
        """A psql-ready script: the settings as ``SET LOCAL`` in a transaction, then the query."""
        if not self.settings:
            return self.inline() + ";"
        sets = "".join(
            f"SET LOCAL {name} = {codecs.quote_text(value)};\n" for name, value in self.settings
        )
        return f"BEGIN;\n{sets}{self.inline()};\nCOMMIT;"

    def pretty(self, *, inline: bool = False) -> str:
        """Formatted for humans by pglast; placeholders as ``$n`` (or literals with inline=True)."""
        return prettify(self.inline() if inline else self.numbered())


_PLACEHOLDER = re.compile(r"%%|%s")

_new = object.__new__


def compiled_sql(
    sql: str, params: tuple[Any, ...], types: tuple[TypeEngine[Any], ...], raw: Sequence[Any]
) -> CompiledSQL:
    """``CompiledSQL(sql, params, types, raw)`` without settings, made the fast way.

    Every ``to_sql()`` makes one; a frozen dataclass's ``__init__`` pays an
    ``object.__setattr__`` call per field, a few times the cost of filling the
    instance's dict at once. The result is the same object (equal, same repr).
    """
    made = _new(CompiledSQL)
    fields = made.__dict__
    fields["sql"] = sql
    fields["params"] = params
    fields["_types"] = types
    fields["_raw"] = raw
    fields["settings"] = ()
    return made


def prettify(sql: str) -> str:
    """Pretty-print SQL with pglast; SQL pglast cannot parse is returned as is."""
    try:
        from pglast import prettify as pg_prettify

        return str(pg_prettify(sql, preserve_comments=True))
    except Exception:  # pglast raises several parser error types; pretty is best effort
        return sql


_renderer: Callable[[Any], CompiledSQL] | None = None


def register_renderer(renderer: Callable[[Any], CompiledSQL]) -> None:
    """Called once by :mod:`querykit.compile`: how a builder becomes :class:`CompiledSQL`."""
    global _renderer
    _renderer = renderer


def render(query: Any) -> CompiledSQL:
    """The builder's SQL and parameters, through the compile layer's cached shapes."""
    if _renderer is None:
        raise CompileError(
            "the compiler is not loaded: import querykit (or querykit.compile) before "
            "calling .to_sql() on a builder"
        )
    return _renderer(query)
