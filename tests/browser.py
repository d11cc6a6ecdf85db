"""Headless Chromium (Debian's package, scripts/setup.sh) driven by Playwright, for the report tests.

``chromium()`` launches the browser; ``open_page`` gives a tab that records every console
error, page error and failed HTTP response (with its URL) in ``page.problems``, so a test asserts the page ran cleanly.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
READY = "window.affectflowReady === true"  # set by the report page once its plots are drawn


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), "no chromium: scripts/setup.sh installs Debian's package"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Any, **options: Any) -> Any:
    """A new tab whose ``problems`` list collects console errors and uncaught page errors."""
    page = browser.new_page(**options)
    page.problems = []
    page.on("console", lambda m: page.problems.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda err: page.problems.append(f"page error: {err}"))
    page.on("response", lambda r: page.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    return page
