"""``placeholder("name")``: a value given when a prepared query runs (``db.prepare(query)``).

It lives with the builders because a placeholder goes wherever a value goes: conditions,
``insert().values()``, ``update().set()``, ``limit()`` and ``offset()``.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

from ..errors import CompileError

__all__ = ["Placeholder", "placeholder"]

T = TypeVar("T")


class Placeholder(Generic[T]):
    """A value given when a prepared query runs. Build it with :func:`placeholder`."""

    __slots__ = ("name", "type")

    def __init__(self, name: str, type_: type[T] | None = None) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise CompileError(f"placeholder name must be a Python identifier, got {name!r}")
        if name in _RESERVED:
            raise CompileError(
                f"placeholder name {name!r} is taken by the query methods' own arguments"
            )
        self.name = name
        self.type = type_

    def __repr__(self) -> str:
        return f"placeholder({self.name!r})"


_RESERVED = frozenset({"as_", "batch", "self"})


@overload
def placeholder(name: str) -> Any: ...
@overload
def placeholder(name: str, type_: type[T]) -> T: ...
def placeholder(name: str, type_: type[Any] | None = None) -> Any:
    """A named value for ``db.prepare(query)``: ``eq(run.c.id, placeholder("id"))``.

    With a type, ``placeholder("id", str)``, each call checks that the value is
    one. For the type checker it stands in for a value of that type (so it fits
    where such a value goes); at run time it is a :class:`Placeholder`.
    """
    return Placeholder(name, type_)
