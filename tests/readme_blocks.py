"""The README's fenced code blocks, with the headings they stand under.

The README runners (``test_readme_tour.py`` for Python, ``test_readme_commands.py``
for shell) walk the same file the same way; this is that walk, once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Block:
    """One fenced block: its first code line (1-based), headings and body lines."""

    line: int
    section: str
    subsection: str
    body: list[str]


def fenced_blocks(readme: Path, language: str, skip: Collection[str]) -> list[Block]:
    """Every ```<language> block in README order, except those under a heading in ``skip``."""
    out: list[Block] = []
    section = subsection = ""
    lines = readme.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section, subsection = line[3:].strip(), ""
        elif line.startswith("### "):
            subsection = line[4:].strip()
        if line.strip() == f"```{language}":
            start = i + 2
            body: list[str] = []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            if section not in skip and subsection not in skip:
                out.append(Block(start, section, subsection, body))
        i += 1
    return out
