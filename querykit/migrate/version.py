"""Migration versions: one number, or dotted numbers compared part by part (Flyway's ``1.10``).

Most tools number a migration with one run of digits (``0001``, ``20240101120000``);
Flyway also allows ``V1.1__``, ``V2.0.3__`` and ``V1_1__`` (underscores read as
dots). A :class:`Version` holds the parts as numbers, so ``1.9 < 1.10 < 2``, and
trailing zero parts do not count (``1.0`` is ``1``, as Flyway compares them). A
one-part version compares, hashes and prints like the integer it is, so the
integer versions of every other layout behave as they always have::

    >>> Version.parse("1.10") > Version.parse("1.9")
    True
    >>> Version.parse("0003") == 3, str(Version.parse("2_0_3"))
    (True, '2.0.3')
"""

from __future__ import annotations

import re
from functools import total_ordering

__all__ = ["Version"]

_TEXT = re.compile(r"^[0-9]+(?:[._][0-9]+)*$")


@total_ordering
class Version:
    """A migration version; ``text`` is how the ledger stores it (``"3"``, ``"1.10"``)."""

    __slots__ = ("key", "parts")

    def __init__(self, parts: tuple[int, ...]) -> None:
        if not parts or any(p < 0 for p in parts):
            raise ValueError(f"a version needs one or more numbers >= 0, not {parts!r}")
        self.parts: tuple[int, ...] = parts
        key = parts
        while len(key) > 1 and key[-1] == 0:
            key = key[:-1]
        self.key: tuple[int, ...] = key
        """The parts without trailing zeros: what comparisons use."""

    @classmethod
    def parse(cls, text: str) -> Version:
        """``"0003"``, ``"1.10"`` or ``"1_1"`` (Flyway's underscores as dots)."""
        if not _TEXT.match(text):
            raise ValueError(f"{text!r} is not a version (digits, optionally dotted: 1, 1.1)")
        return cls(tuple(int(p) for p in re.split(r"[._]", text)))

    @staticmethod
    def is_version(text: str) -> bool:
        """Whether ``text`` reads as a version (digits, optionally dotted)."""
        return _TEXT.match(text) is not None

    @property
    def dotted(self) -> bool:
        """True for a version of more than one part (``1.1``)."""
        return len(self.key) > 1

    @property
    def text(self) -> str:
        """The version as written in the ledger: parts joined by dots."""
        return ".".join(map(str, self.parts))

    def to_json(self) -> int | str:
        """An integer for a one-part version (as before dotted versions existed), else text."""
        return self.key[0] if not self.dotted else self.text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Version({self.text!r})"

    def _other(self, other: object) -> tuple[int, ...] | None:
        if isinstance(other, Version):
            return other.key
        if isinstance(other, int) and not isinstance(other, bool) and other >= 0:
            return (other,)
        return None

    def __eq__(self, other: object) -> bool:
        key = self._other(other)
        return NotImplemented if key is None else self.key == key

    def __lt__(self, other: object) -> bool:
        key = self._other(other)
        if key is None:
            return NotImplemented
        return self.key < key

    def __hash__(self) -> int:
        # Equal to the int's hash for a one-part version: dict lookups by int keep working.
        return hash(self.key[0]) if len(self.key) == 1 else hash(self.key)

    def __int__(self) -> int:
        if self.dotted:
            raise ValueError(f"version {self.text} has several parts; it is not one integer")
        return self.key[0]
