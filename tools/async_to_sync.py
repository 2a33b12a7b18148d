"""Generate querykit's sync modules from their async sources: ``python tools/async_to_sync.py``.

The database face, the transaction blocks, the prepared queries, the bulk
(COPY) drivers and the nested loader are written once, for asyncio, in
``querykit/**/*_async.py``. Each source ``X_async.py`` gives ``X.py`` beside it,
with a header saying so; ``--check`` exits 1 (naming each stale file and how
many lines differ) when a generated file is not what its source gives. The
test suite and ``make lint`` run ``--check``.

**Why tokens, not the AST.** The sources are mostly sync code with ``async``
and ``await`` sprinkled in. A token pass (the ``unasync`` approach) changes
only the tokens it must and copies every other character: comments, blank
lines, the layout of long calls and the docstrings come out as written, so a
generated file reads like the hand-written one it replaces and a diff of the
source maps line for line onto a diff of the output. ``ast.unparse`` drops
comments and re-lays everything; keeping them would need a comment-aware AST
library and a pass to put them back. The rules below are all local (a token
and its neighbours, or a bracketed group), which is what tokens do well.

**The rules.**

- ``async def`` / ``async with`` / ``async for`` lose ``async``; ``await`` goes.
- Names: ``AsyncX`` (and ``_AsyncX``) become ``X``, ``x_async`` becomes ``x``
  (functions and the ``_async`` module names), plus the fixed map in
  :data:`NAMES` (``__aenter__`` -> ``__enter__``, ``aclose`` -> ``close``...).
- Dotted names in :data:`DOTTED`: ``asyncio.sleep`` -> ``time.sleep``,
  ``asyncio.Lock`` -> ``threading.Lock``.
- ``AsyncGenerator[Y, S]`` -> ``Generator[Y, S, None]``; ``Awaitable[T]`` -> ``T``.
- Strings and comments get the same word rules (``async with db.transaction()``
  in a docstring reads ``with db.transaction()``).
- Where behaviour truly differs, a psycopg-style block::

      if True:  # ASYNC
          ...async-only code...
      else:
          ...sync-only code...

  keeps the ``if`` body in the source's own (async) module and only the
  ``else`` body, dedented, in the generated one (no ``else``: nothing). mypy
  (``warn_unreachable``) calls the ``else`` body unreachable in the source: its
  first statement carries ``# type: ignore[unreachable]``, which the generator
  removes. A single async-only line (a decorator, which no ``if`` can hold)
  ends with ``# ASYNC only`` and is left out of the generated module.

The output goes through ruff's own fixes: imports sorted (dropping the
``noqa: F401`` that the source puts on its ``else`` imports), and ``async for x
in y: yield x`` made the ``yield from y`` that only sync code can say (UP028).
Then ``ruff format``,
so it is stable and passes ``make lint`` like any module.
"""

from __future__ import annotations

import argparse
import difflib
import io
import re
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "querykit"

HEADER = "# Generated from {source} by tools/async_to_sync.py; do not edit.\n"

NAMES = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "aclose": "close",
    "aclosing": "closing",
    "asynccontextmanager": "contextmanager",
    "StopAsyncIteration": "StopIteration",
}
"""Names that the ``Async``/``_async`` rules do not cover."""

DOTTED = {
    ("asyncio", "sleep"): "time.sleep",
    ("asyncio", "Lock"): "threading.Lock",
}
"""``module.name`` pairs whose sync form lives in another module."""

_ASYNC_PREFIX = re.compile(r"(_*)Async([A-Z]\w*)")
_ASYNC_SUFFIX = re.compile(r"(\w+?)_async")
_ASYNC_BLOCK = re.compile(r"([ ]*)if True:\s*# ASYNC\s*")
_ASYNC_LINE = re.compile(r"\S.*#\s*ASYNC only\s*$")
_UNREACHABLE = re.compile(r"  # type: ignore\[unreachable\]")
_WORD = re.compile(r"\b(?:async (?=(?:def|with|for)\b)|await |[A-Za-z_]\w*)")


def sync_name(name: str) -> str:
    """The sync form of one identifier (the same name when no rule applies)."""
    if name in NAMES:
        return NAMES[name]
    if match := _ASYNC_PREFIX.fullmatch(name):
        return match[1] + match[2]
    if match := _ASYNC_SUFFIX.fullmatch(name):
        return match[1]
    return name


def sync_text(text: str) -> str:
    """The word rules applied to prose: a docstring, a comment."""

    def one(match: re.Match[str]) -> str:
        word = match[0]
        if word.startswith(("async ", "await ")):
            return ""
        return sync_name(word)

    return _WORD.sub(one, text)


# -- ASYNC blocks (lines) ------------------------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _block(lines: list[str], start: int, indent: int) -> int:
    """The end (exclusive) of the block whose body starts at ``start``; trailing blanks stay out."""
    end = start
    last = start
    while end < len(lines):
        line = lines[end]
        if line.strip():
            if _indent(line) <= indent:
                break
            last = end + 1
        end += 1
    return last


def drop_async_blocks(source: str, where: str = "<source>") -> str:
    """Replace each ``if True:  # ASYNC`` block by its ``else`` body, dedented."""
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _ASYNC_LINE.search(lines[i].rstrip("\n")):  # one async-only line, e.g. a decorator
            i += 1
            continue
        match = _ASYNC_BLOCK.fullmatch(lines[i].rstrip("\n"))
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = len(match[1])
        body_end = _block(lines, i + 1, indent)
        if body_end == i + 1:
            raise SyntaxError(f"{where}:{i + 1}: an 'if True:  # ASYNC' block without a body")
        i = body_end
        while i < len(lines) and not lines[i].strip():
            i += 1
        is_else = i < len(lines) and re.fullmatch(r"[ ]*else:\s*(#.*)?", lines[i].rstrip("\n"))
        if not (is_else and _indent(lines[i]) == indent):
            i = body_end  # no else: the sync module has nothing here
            continue
        else_end = _block(lines, i + 1, indent)
        body = lines[i + 1 : else_end]
        shift = min(_indent(line) for line in body if line.strip()) - indent
        out.extend(_UNREACHABLE.sub("", line[shift:]) if line.strip() else line for line in body)
        i = else_end
    return "".join(out)


# -- tokens --------------------------------------------------------------------------------


def _offsets(source: str) -> list[int]:
    starts = [0, 0]  # tokenize counts rows from 1
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _closing(tokens: list[tokenize.TokenInfo], open_at: int) -> int:
    """The index of the bracket that closes the one at ``open_at``."""
    depth = 0
    for j in range(open_at, len(tokens)):
        if tokens[j].type == tokenize.OP:
            if tokens[j].string in "([{":
                depth += 1
            elif tokens[j].string in ")]}":
                depth -= 1
                if depth == 0:
                    return j
    raise SyntaxError(f"line {tokens[open_at].start[0]}: unbalanced bracket")


# Text the word rules apply to: strings, comments, and (Python 3.12+, where an f-string
# is tokenized in parts) the literal parts of f-strings.
_TEXT_TOKENS = frozenset(
    {tokenize.STRING, tokenize.COMMENT}
    | ({tokenize.FSTRING_MIDDLE} if hasattr(tokenize, "FSTRING_MIDDLE") else set())
)


def _edits(source: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, replacement) character edits, in source order."""
    at = _offsets(source)
    tokens = [
        t
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type not in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT)
    ]

    def pos(point: tuple[int, int]) -> int:
        return at[point[0]] + point[1]

    closers: dict[int, str] = {}  # token index -> text to put before it
    dropped: set[int] = set()  # closing brackets to remove
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        start, end = pos(tok.start), pos(tok.end)
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        after = tokens[i + 2] if i + 2 < len(tokens) else None
        if i in dropped:
            yield start, end, ""
        elif i in closers:
            yield start, start, closers[i]
        if tok.type == tokenize.NAME:
            keyword = tok.string == "await" or (
                tok.string == "async" and nxt is not None and nxt.string in ("def", "with", "for")
            )
            if keyword and nxt is not None:
                yield start, pos(nxt.start), ""
            elif (
                nxt is not None
                and nxt.string == "."
                and after is not None
                and ((tok.string, after.string) in DOTTED)
            ):
                yield start, pos(after.end), DOTTED[tok.string, after.string]
                i += 3
                continue
            elif tok.string == "AsyncGenerator" and nxt is not None and nxt.string == "[":
                yield start, end, "Generator"
                close = _closing(tokens, i + 1)
                closers[close] = closers.get(close, "") + ", None"
            elif tok.string == "Awaitable" and nxt is not None and nxt.string == "[":
                yield start, pos(nxt.end), ""
                dropped.add(_closing(tokens, i + 1))
                i += 2
                continue
            elif (name := sync_name(tok.string)) != tok.string:
                yield start, end, name
        elif tok.type in _TEXT_TOKENS:
            original = source[start:end]  # as written (an f-string part's token unescapes {{ }})
            text = sync_text(original)
            if text != original:
                yield start, end, text
        i += 1


def unasync(source: str, where: str = "<source>") -> str:
    """The sync module text for an async source, before sorting and formatting."""
    source = drop_async_blocks(source, where)
    out: list[str] = []
    done = 0
    for start, end, text in sorted(_edits(source), key=lambda e: (e[0], e[1])):
        out.append(source[done:start])
        out.append(text)
        done = end
    out.append(source[done:])
    return "".join(out)


# -- files ---------------------------------------------------------------------------------


def _ruff(args: list[str], text: str, filename: Path) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(filename), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"ruff {args[0]} failed on the output for {filename}:\n{run.stderr}")
    return run.stdout


def target_of(source: Path) -> Path:
    """``X_async.py`` -> ``X.py`` in the same folder."""
    return source.with_name(source.name.removesuffix("_async.py") + ".py")


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it is inside it."""
    path = path.resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def generate(source: Path) -> str:
    """The full text of the generated module for ``source``: header, code, sorted, formatted."""
    relative = _shown(source)
    text = HEADER.format(source=relative) + unasync(source.read_text(), relative)
    target = target_of(source)
    fixes = ["--fix", "--unsafe-fixes", "--select", "I,F401,RUF100,UP028", "--quiet"]
    text = _ruff(["check", *fixes], text, target)
    return _ruff(["format", "--quiet"], text, target)


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*_async.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    parser.add_argument("files", nargs="*", type=Path, help="async sources (default: all)")
    args = parser.parse_args(argv)
    stale = 0
    for source in [f.resolve() for f in args.files] or sources():
        target = target_of(source)
        wanted = generate(source)
        current = target.read_text() if target.exists() else ""
        if wanted == current:
            continue
        if args.check:
            diff = list(
                difflib.unified_diff(
                    current.splitlines(), wanted.splitlines(), str(target), "generated", n=0
                )
            )
            changed = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
            print(f"{_shown(target)}: stale, {changed} lines differ from {source.name}")
            print("\n".join(diff[2:12]))
            stale += 1
        else:
            target.write_text(wanted)
            print(f"wrote {_shown(target)}")
    if stale:
        print(f"{stale} generated file(s) stale: run `python tools/async_to_sync.py`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
