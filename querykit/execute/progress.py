"""``progress=`` of long work (``insert_many``, ``upsert_many``): a callback, or a bar.

``progress`` is one of:

- ``None`` (the default): the ambient choice (:func:`ambient_progress`; the CLI
  turns it on around ``querykit db seed``), else nothing;
- ``False``: nothing, whatever the ambient choice;
- a callable ``progress(done, total)``: called after each chunk of rows sent,
  with the rows done so far and the total (``None`` when the input is an
  iterator that does not know its length); it runs inside the load, so an
  exception it raises rolls the load back;
- ``True``: a rich progress bar on stderr when stderr is a terminal, nothing
  otherwise (logs and CI stay clean). rich comes with typer, a dependency of
  querykit; an install without it gets an ``ArgumentError`` naming
  ``pip install rich`` before anything is sent.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from ..errors import ArgumentError

__all__ = ["Progress", "ProgressCallback", "ambient_progress", "progress_counter"]

ProgressCallback = Callable[[int, int | None], object]
"""``callback(done, total)``: rows done so far, and the total when it is known."""

Progress = ProgressCallback | bool | None

_AMBIENT: ContextVar[bool] = ContextVar("querykit_progress", default=False)


@contextlib.contextmanager
def ambient_progress(on: bool = True) -> Iterator[None]:
    """Within this block, ``progress=None`` means ``progress=on`` (the CLI's seed uses it)."""
    token = _AMBIENT.set(on)
    try:
        yield
    finally:
        _AMBIENT.reset(token)


@contextlib.contextmanager
def progress_counter(
    progress: Progress, total: int | None, label: str
) -> Iterator[Callable[[int], None] | None]:
    """An ``advance(rows)`` function that reports to ``progress``, or None for no reporting.

    Checked before the work starts: a bad ``progress=`` is an ``ArgumentError``.
    """
    if progress is None:
        progress = _AMBIENT.get()
    if progress is False:
        yield None
        return
    if progress is True:
        with _bar(total, label) as advance:
            yield advance
        return
    if not callable(progress):
        raise ArgumentError(
            f"progress= takes a callable progress(done, total), True or False; "
            f"got {type(progress).__name__}"
        )
    callback = progress
    done = 0

    def count(rows: int) -> None:
        nonlocal done
        done += rows
        callback(done, total)

    yield count


@contextlib.contextmanager
def _bar(total: int | None, label: str) -> Iterator[Callable[[int], None] | None]:
    """A rich bar on stderr (a spinner and a count when the total is unknown)."""
    if not sys.stderr.isatty():
        yield None
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:
        raise ArgumentError(
            "progress=True draws its bar with rich, which is not installed: "
            "pip install rich (or pass a callback: progress=lambda done, total: ...)"
        ) from None
    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns.append(BarColumn())
    columns += [MofNCompleteColumn(), TextColumn("rows"), TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total)

        def advance(rows: int) -> None:
            bar.advance(task, rows)

        yield advance
