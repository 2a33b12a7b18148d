"""Format lint results: human text, and GitHub workflow annotations (``--json`` is ``to_dict``).

>>> print(github(result))
::error file=migrations/sql/0005_x.sql,line=3,col=1,title=create-index-not-concurrent::CREATE INDEX ...
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from .model import Finding

__all__ = ["github", "summary", "text"]

_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _first_line(statement: str, limit: int = 100) -> str:
    line = " ".join(statement.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def text(findings: Sequence[Finding], files: int) -> str:
    """One block per finding, then a summary line."""
    out = []
    for f in findings:
        part = " (down part)" if f.part == "down" else ""
        out.append(f"{f.where}: {f.level} {f.rule}{part}: {f.message}")
        out.append(f"    statement: {_first_line(f.statement)}")
        out.append(f"    effect:    {f.effect.describe()}")
        if f.probe is not None:
            out.append(f"    probe:     {f.probe.note}")
        out.append("    safe way:")
        out.append(textwrap.indent(f.safe, "      "))
    out.append(summary(findings, files))
    return "\n".join(out) + "\n"


def summary(findings: Sequence[Finding], files: int) -> str:
    """One line: how many files, and the findings per level."""
    if not findings:
        return f"lint: {files} file(s), no findings"
    counts = {
        level: sum(f.level == level for f in findings) for level in ("error", "warning", "info")
    }
    shown = ", ".join(f"{n} {level}" for level, n in counts.items() if n)
    return f"lint: {files} file(s), {len(findings)} finding(s): {shown}"


def _escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands: one annotation per finding, on its file and line."""
    lines = []
    for f in findings:
        body = f"{f.message}\nEffect: {f.effect.describe()}\nSafe way:\n{f.safe}"
        if f.probe is not None:
            body += f"\nProbe: {f.probe.note}"
        lines.append(
            f"::{_GITHUB_LEVEL[f.level]} file={_escape(f.path, prop=True)},line={f.line},"
            f"col={f.column},title={_escape(f.rule, prop=True)}::{_escape(body)}"
        )
    return "\n".join(lines) + ("\n" if lines else "")
