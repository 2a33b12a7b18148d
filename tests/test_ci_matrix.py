"""The Python matrix of ``.ci/run``: the versions pyproject.toml declares, found or explained."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from tests.cli import ROOT


def declared_versions() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    prefix = "Programming Language :: Python :: "
    return [
        c.removeprefix(prefix)
        for c in project["classifiers"]
        if re.fullmatch(re.escape(prefix) + r"3\.\d+", c)
    ]


def test_the_matrix_is_what_pyproject_declares() -> None:
    makefile = (ROOT / "Makefile").read_text()
    matrix = re.search(r"^MATRIX := (.*)$", makefile, flags=re.M)
    assert matrix is not None
    assert matrix.group(1).split() == declared_versions() == ["3.11", "3.12", "3.13"]
    assert "make matrix" in (ROOT / ".ci/run").read_text()


def test_find_python_finds_this_interpreter_s_version() -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = subprocess.run(
        [str(ROOT / "tools/find_python.sh"), version], capture_output=True, text=True
    )
    assert found.returncode == 0, found.stderr
    reported = subprocess.run(
        [found.stdout.strip(), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    assert reported.stdout.strip() == version


def test_a_version_that_cannot_be_had_is_explained() -> None:
    missing = subprocess.run(
        [str(ROOT / "tools/find_python.sh"), "3.1"], capture_output=True, text=True
    )
    assert missing.returncode == 1 and missing.stdout == ""
    assert "no Python 3.1 here" in missing.stderr
