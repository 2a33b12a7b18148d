"""Vendor the Studio's browser-side files from their npm packages into querykit/studio/static/.

The Studio runs offline: no CDN, no build step and no Node at run time. This
script (run by hand when upgrading; Node's ``npm`` needed only here) fetches
each pinned package with ``npm pack``, checks the tarball against the
registry's integrity hash, copies the one file the Studio serves, and writes
``VENDORED.md`` with name, version, licence and SHA-256 of every vendored file.

    python tools/vendor_studio.py          # fetch and write
    python tools/vendor_studio.py --check  # the files on disk match VENDORED.md
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "querykit" / "studio" / "static"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    file: str
    """Path inside the package tarball (under ``package/``)."""
    target: str
    """File name under querykit/studio/static/."""


PACKAGES = [Package("htmx.org", "2.0.11", "dist/htmx.min.js", "htmx.min.js")]


def fetch(pkg: Package, workdir: Path) -> tuple[bytes, bytes, str]:
    """The file's bytes, the package's LICENSE bytes and its licence name, from ``npm pack``."""
    out = subprocess.run(
        ["npm", "pack", f"{pkg.name}@{pkg.version}", "--json", "--pack-destination", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    meta = json.loads(out)[0]
    tarball = workdir / meta["filename"]
    algo, _, digest = meta["integrity"].partition("-")
    actual = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
    if actual != digest:
        raise SystemExit(f"{tarball.name}: integrity mismatch ({algo})")
    with tarfile.open(tarball) as tar:
        data = _member(tar, f"package/{pkg.file}")
        licence_text = _member(tar, "package/LICENSE")
        manifest = json.loads(_member(tar, "package/package.json"))
    return data, licence_text, str(manifest.get("license", "see LICENSE"))


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    if handle is None:
        raise SystemExit(f"{name} missing from the tarball")
    return handle.read()


def notice(rows: list[tuple[Package, str, str]]) -> str:
    lines = [
        "# Vendored browser files",
        "",
        "Written by `tools/vendor_studio.py` from the npm packages below; do not edit by hand.",
        "",
        "| file | package | version | licence | sha256 |",
        "|---|---|---|---|---|",
    ]
    for pkg, licence, sha in rows:
        lines.append(
            f"| {pkg.target} | {pkg.name} | {pkg.version} | {licence} "
            f"(`{pkg.target}.LICENSE`) | {sha} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the vendored files' hashes")
    args = parser.parse_args(argv)
    if args.check:
        text = (STATIC / "VENDORED.md").read_text()
        for pkg in PACKAGES:
            sha = hashlib.sha256((STATIC / pkg.target).read_bytes()).hexdigest()
            if f"| {pkg.name} | {pkg.version} |" not in text or sha not in text:
                print(f"{pkg.target}: does not match VENDORED.md; run tools/vendor_studio.py")
                return 1
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in PACKAGES:
            data, licence_text, licence = fetch(pkg, Path(tmp))
            (STATIC / pkg.target).write_bytes(data)
            (STATIC / f"{pkg.target}.LICENSE").write_bytes(licence_text)
            rows.append((pkg, licence, hashlib.sha256(data).hexdigest()))
            print(f"vendored {pkg.name}@{pkg.version} -> {pkg.target} ({len(data)} bytes)")
    (STATIC / "VENDORED.md").write_text(notice(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
