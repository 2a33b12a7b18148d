"""PostgreSQL's table lock modes: their order, and what each one blocks.

The strongest lock a statement takes on a table decides what the application
feels while the statement waits and runs::

    >>> strongest(["SHARE", "ACCESS EXCLUSIVE"])
    'ACCESS EXCLUSIVE'
    >>> blocks("SHARE")
    'writes (INSERT, UPDATE, DELETE) and DDL; reads go on'
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["MODES", "blocks", "from_pg_locks", "rank", "strongest"]

MODES = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)

_BLOCKS = {
    "ACCESS SHARE": "only ACCESS EXCLUSIVE (DDL that rewrites or drops)",
    "ROW SHARE": "EXCLUSIVE and ACCESS EXCLUSIVE locks",
    "ROW EXCLUSIVE": "SHARE and stronger locks (CREATE INDEX, most DDL); reads and writes go on",
    "SHARE UPDATE EXCLUSIVE": "other DDL, VACUUM and ANALYZE; reads and writes go on",
    "SHARE": "writes (INSERT, UPDATE, DELETE) and DDL; reads go on",
    "SHARE ROW EXCLUSIVE": "writes (INSERT, UPDATE, DELETE) and DDL; reads go on",
    "EXCLUSIVE": "writes (INSERT, UPDATE, DELETE), SELECT ... FOR UPDATE and DDL; plain reads go on",
    "ACCESS EXCLUSIVE": "reads and writes: every query on the table waits",
}


def rank(mode: str) -> int:
    """Position in PostgreSQL's order of table lock modes, 0 (ACCESS SHARE) to 7."""
    return MODES.index(mode)


def strongest(modes: Iterable[str]) -> str:
    """The strongest of some table lock modes."""
    return max(modes, key=rank)


def blocks(mode: str) -> str:
    """What a lock of ``mode`` held by a migration makes the application wait for."""
    return _BLOCKS[mode]


def from_pg_locks(mode: str) -> str:
    """``AccessExclusiveLock`` (pg_locks.mode) as ``ACCESS EXCLUSIVE``."""
    words = []
    current = ""
    for ch in mode.removesuffix("Lock"):
        if ch.isupper() and current:
            words.append(current)
            current = ""
        current += ch
    words.append(current)
    return " ".join(words).upper()
