"""The repository itself: no merge leftovers in what a newcomer reads or runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKERS = ("<" * 7 + " ", ">" * 7 + " ", "=" * 7 + "\n")


def test_no_merge_conflict_markers_in_tracked_files() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    if not files:  # not a git checkout (e.g. an sdist): check what is there
        files = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.suffix in {".py", ".md", ".sql", ".toml"}
        ]
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".sql", ".toml", ""} or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for line in text.splitlines(keepends=True):
            if line.startswith(MARKERS):
                offenders.append(name)
                break
    assert offenders == []
