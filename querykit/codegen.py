"""The one place querykit turns generated source into functions (``exec``).

The hot paths (copying a builder, adapting a shape's parameters, decoding a row,
filling a prepared query, encoding a COPY row) run a small function written for
their exact shape: one line per column, no loop, no lookups. Every such function
is made here, so the rules hold in one place:

- only names and indices that querykit wrote go into the source; values, and
  anything that came from input, are passed in through ``namespace``;
- the source is registered with :mod:`linecache` under a readable file name, so
  a traceback through generated code shows the generated line, not ``<string>``.

This module imports nothing of querykit's: every layer may use it.
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Iterable
from typing import Any

__all__ = ["generate"]

_counter = itertools.count()


def generate(label: str, source: str | Iterable[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """Run ``source`` (text, or lines) in ``namespace`` and return the namespace.

    ``label`` names what is generated (``"params"``, ``"clone SelectQuery"``...): it
    becomes the file name tracebacks show, ``<querykit generated N: label>``.
    """
    text = source if isinstance(source, str) else "\n".join(source)
    if not text.endswith("\n"):
        text += "\n"
    filename = f"<querykit generated {next(_counter)}: {label}>"
    code = compile(text, filename, "exec")
    # Kept for tracebacks; one small entry per distinct shape (each is made once).
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    exec(code, namespace)  # the source holds only names querykit wrote; values are in namespace
    return namespace
