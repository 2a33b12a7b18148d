"""The repository itself: no merge leftovers in what a newcomer reads or runs."""

from __future__ import annotations

import ast
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


def _imports(path: Path) -> set[str]:
    """The modules a querykit source file imports, as absolute names (module-level or not)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return out


def test_the_pure_layers_never_touch_a_connection() -> None:
    """schema, build and compile do no I/O: they do not even import psycopg.

    (Which layer may import which is held by tests/test_import_graph.py.)
    """
    for layer in ("schema", "build", "compile"):
        for path in (ROOT / "querykit" / layer).glob("*.py"):
            found = {name.split(".")[0] for name in _imports(path)}
            assert not {"psycopg", "psycopg_pool"} & found, f"{layer}/{path.name} imports psycopg"
