"""``connect_async()``'s result: awaitable, and an async context manager, as asyncpg's pool is.

Both of these open the database, and the second closes it too::

    db = await connect_async(url)
    async with connect_async(url) as db:
        ...

(``async with await connect_async(url)`` keeps working.) A coroutine function
alone cannot serve ``async with`` ("'coroutine' object does not support the
asynchronous context manager protocol"), so :func:`opening` wraps one: the call
returns an :class:`Opening`, which runs the coroutine when it is first awaited or
entered. Nothing runs, and nothing warns, if it is never used.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

__all__ = ["Opening", "opening"]


class _Closable(Protocol):
    async def close(self) -> None: ...


P = ParamSpec("P")
T = TypeVar("T", bound=_Closable)


class Opening(Generic[T]):
    """An opening resource: ``await`` it for the resource, or ``async with`` it to close
    it on the way out. Awaiting it again gives the same resource, opened once."""

    __slots__ = ("_open", "_opened")

    def __init__(self, open_: Callable[[], Awaitable[T]]) -> None:
        self._open = open_
        self._opened: T | None = None

    async def _get(self) -> T:
        if self._opened is None:
            self._opened = await self._open()
        return self._opened

    def __await__(self) -> Generator[Any, None, T]:
        return self._get().__await__()

    async def __aenter__(self) -> T:
        return await self._get()

    async def __aexit__(self, *exc: object) -> None:
        if self._opened is not None:
            await self._opened.close()


def opening(fn: Callable[P, Awaitable[T]]) -> Callable[P, Opening[T]]:
    """Make a coroutine function return an :class:`Opening` (same arguments, run lazily)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Opening[T]:
        return Opening(lambda: fn(*args, **kwargs))

    return wrapper
