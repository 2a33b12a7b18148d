"""What the package says about itself: its version, licence and classifiers."""

from __future__ import annotations

import tomllib
from importlib import metadata

import querykit
from tests.cli import ROOT
from tests.cli import querykit as run_querykit


def test_the_version_comes_from_the_package_metadata() -> None:
    assert querykit.__version__ == metadata.version("querykit")
    proc = run_querykit("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"querykit {metadata.version('querykit')}"


def test_licence_and_classifiers() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    classifiers = set(project["classifiers"])
    assert {"Typing :: Typed"} <= classifiers
    for minor in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {minor}" in classifiers
    assert (ROOT / "querykit" / "py.typed").exists()
