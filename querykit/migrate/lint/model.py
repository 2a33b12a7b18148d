"""What a statement does to tables (an :class:`Effect`) and what the linter says about it.

An Effect is the same shape whether it was predicted from the syntax tree or
observed by the live probe, so the two compare with ``==``::

    >>> Effect.of({"users": "SHARE"}, scan={"users"})
    Effect(locks=(('users', 'SHARE'),), rewrite=(), scan=('users',))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .locks import blocks, rank

__all__ = ["LEVELS", "Effect", "Finding", "Level", "ProbeVerdict"]

Level = Literal["error", "warning", "info", "off"]
LEVELS: tuple[Level, ...] = ("error", "warning", "info", "off")


@dataclass(frozen=True)
class Effect:
    """Strongest lock per existing table, tables rewritten, tables read in full (seq scan)."""

    locks: tuple[tuple[str, str], ...] = ()
    rewrite: tuple[str, ...] = ()
    scan: tuple[str, ...] = ()

    @staticmethod
    def of(
        locks: Mapping[str, str] | None = None,
        *,
        rewrite: Iterable[str] = (),
        scan: Iterable[str] = (),
    ) -> Effect:
        """Effects from a table -> lock mode map and the tables rewritten or scanned."""
        return Effect(
            tuple(sorted((locks or {}).items())),
            tuple(sorted(set(rewrite))),
            tuple(sorted(set(scan))),
        )

    def merge(self, other: Effect) -> Effect:
        """Both effects together: the stronger lock per table, the union of rewrites and scans."""
        locks = dict(self.locks)
        for table, mode in other.locks:
            if table not in locks or rank(mode) > rank(locks[table]):
                locks[table] = mode
        return Effect.of(
            locks, rewrite=(*self.rewrite, *other.rewrite), scan=(*self.scan, *other.scan)
        )

    @property
    def lock_map(self) -> dict[str, str]:
        """The locks as a table -> mode dict."""
        return dict(self.locks)

    def describe(self) -> str:
        """``ACCESS EXCLUSIVE on users (blocks reads and writes...); rewrites users``."""
        parts = [f"{mode} on {table} (blocks {blocks(mode)})" for table, mode in self.locks]
        if self.rewrite:
            parts.append("rewrites " + ", ".join(self.rewrite))
        if self.scan:
            parts.append("reads every row of " + ", ".join(self.scan))
        return "; ".join(parts) or "no table lock"

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "locks": [{"table": t, "mode": m, "blocks": blocks(m)} for t, m in self.locks],
            "rewrite": list(self.rewrite),
            "scan": list(self.scan),
        }


@dataclass(frozen=True)
class ProbeVerdict:
    """What the live probe saw for the statement of a finding, next to the prediction."""

    observed: Effect
    confirmed: bool
    note: str
    """``confirmed``, or what differed: ``corrected: no rewrite (relfilenode kept)``."""

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {"confirmed": self.confirmed, "note": self.note, "observed": self.observed.to_dict()}


@dataclass(frozen=True)
class Finding:
    """One problem in one statement, with the lock it takes and the safe way to write it."""

    rule: str
    level: Level
    path: str
    line: int
    column: int
    statement: str
    message: str
    effect: Effect
    safe: str
    """The safe way, as SQL (may hold several statements and comments)."""
    part: Literal["up", "down"] = "up"
    tables: Mapping[str, float] = field(default_factory=dict)
    """Estimated rows (pg_class.reltuples) of the tables involved, when a database was given."""
    probe: ProbeVerdict | None = None

    @property
    def where(self) -> str:
        """``path:line:column`` of the statement."""
        return f"{self.path}:{self.line}:{self.column}"

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "rule": self.rule,
            "level": self.level,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "part": self.part,
            "statement": self.statement,
            "message": self.message,
            **self.effect.to_dict(),
            "rows": dict(self.tables),
            "safe": self.safe,
            "probe": self.probe.to_dict() if self.probe else None,
        }
