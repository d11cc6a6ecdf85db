"""Headless Chromium (Debian's package, scripts/setup.sh) driven by Playwright, for the report tests.

``chromium()`` launches the browser; ``open_page`` gives a tab that records every console
error, page error and failed HTTP response (with its URL) in ``page.problems``, so a test
asserts the page ran cleanly; ``play_past`` plays a report's video until a given time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
READY = "window.affectflowReady === true"  # set by the report page once its plots are drawn
VIEWPORT = {"width": 1100, "height": 1300}  # a report's header, timeline and faces in one screenshot


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


def open_page(browser: Any) -> Any:
    """A new tab whose ``problems`` list collects console errors, uncaught page errors and HTTP errors."""
    page = browser.new_page(viewport=VIEWPORT)
    page.problems = []
    page.on("console", lambda m: page.problems.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda err: page.problems.append(f"page error: {err}"))
    page.on("response", lambda r: page.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    return page


def play_past(page: Any, seconds: float) -> None:
    """Play the report's video (muted: headless Chromium allows no sound) until it passes ``seconds``."""
    page.evaluate("() => { const v = document.getElementById('video'); v.muted = true; return v.play(); }")
    page.wait_for_function(f"document.getElementById('video').currentTime > {seconds}", timeout=15_000)
