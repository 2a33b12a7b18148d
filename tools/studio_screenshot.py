"""Regenerate docs/studio.png, the README's Studio screenshot, from the demo data.

Run after ``make demo``: it starts ``querykit studio`` on the configured
database, opens the completed pipeline runs sorted by cost, with their SQL, and saves a
small PNG through Debian's chromium (Playwright, executable_path).

    .venv/bin/python tools/studio_screenshot.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "studio.png"


def main() -> int:
    process = subprocess.Popen(
        [sys.executable, "-m", "querykit", "studio", "--port", "0", "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    text = ""
    while True:
        text += process.stdout.readline()
        try:
            info = json.loads(text)
            break
        except json.JSONDecodeError:
            continue
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1180, "height": 760})
            page.goto(info["url"])
            page.goto(
                f"http://127.0.0.1:{info['port']}/t/pipeline_run?status.eq=COMPLETED&sort=-cost"
            )
            page.locator("details.filters summary").click()  # closed: the grid shows more
            page.locator("details.sql summary").click()
            page.locator("td.rel .badge").first.wait_for()
            TARGET.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(TARGET))
            browser.close()
    finally:
        process.terminate()
        process.wait()
    print(f"{TARGET.relative_to(ROOT)}: {TARGET.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
