"""The report and the index in a real headless Chromium (Debian's package, driven by Playwright).

Checked as a person would use them: the page opens without a console error, the timeline has
one line per face track, playing the video moves the cursor, a click on the timeline or on a
word seeks the video, and the index sorts and filters. Screenshots go to the test's folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from affectflow.tasks.reports import write_reports
from tests.browser import READY, chromium, open_page, play_past
from tests.report_pages import make_clip, write_root

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("browser")
    write_root(folder / "out", make_clip(folder / "clip.mp4", 40.0))
    return write_reports(str(folder / "out"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = open_page(browser)
    yield page
    page.close()


def _open(page: Any, path: str) -> None:
    page.goto(Path(path).as_uri())
    page.wait_for_function(READY, timeout=20_000)


def _state(page: Any) -> dict[str, float]:
    return page.evaluate(
        "() => ({video: document.getElementById('video').currentTime, "
        "cursor: Bokeh.documents[0].get_model_by_name('cursor-valence').location, time: window.affectflowTime})"
    )


def test_the_report_opens_with_one_line_per_face_and_playback_moves_the_cursor(
    page: Any, pages: dict, tmp_path: Path
) -> None:
    _open(page, pages["dialogue0000000b"])  # three face tracks
    lines = page.evaluate(
        "() => [...Bokeh.documents[0].all_models].filter(m => m.name && m.name.startsWith('valence-track-')).length"
    )
    assert lines == 3
    play_past(page, 1.0)
    page.evaluate("() => document.getElementById('video').pause()")
    page.wait_for_timeout(300)
    state = _state(page)
    assert state["video"] > 1.0 and abs(state["cursor"] - state["video"]) < 0.3
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert page.problems == []


def test_a_click_on_the_timeline_or_a_word_seeks_the_video(page: Any, pages: dict) -> None:
    _open(page, pages["dialogue0000000a"])  # 40 s on a 0–40 s axis
    plot = page.locator(".bk-Figure").first.bounding_box()
    frame = page.evaluate(
        "() => { const p = Bokeh.documents[0].get_model_by_name('plot-valence'); "
        "for (const root of Bokeh.index) { const view = root.owner.get_one(p); "
        "if (view) { return {left: view.frame.bbox.left, width: view.frame.bbox.width}; } } }"
    )
    page.mouse.click(plot["x"] + frame["left"] + 0.75 * frame["width"], plot["y"] + plot["height"] / 2)
    page.wait_for_function("Math.abs(document.getElementById('video').currentTime - 30) < 1", timeout=10_000)
    assert abs(_state(page)["cursor"] - 30) < 1
    word = page.locator(".w").nth(5)
    start = float(word.get_attribute("data-start"))
    word.click()
    page.wait_for_function(f"Math.abs(document.getElementById('video').currentTime - {start}) < 0.1", timeout=10_000)
    assert "now" in word.get_attribute("class")  # the word being said is highlighted
    assert page.problems == []


def test_the_index_sorts_filters_and_links_the_reports(page: Any, pages: dict, tmp_path: Path) -> None:
    page.goto(Path(pages["index"]).as_uri())
    names = lambda: page.evaluate(  # noqa: E731
        "() => [...document.querySelectorAll('#videos tbody tr')].filter(r => !r.hidden).map(r => r.cells[0].textContent)"
    )
    assert names() == ["broken.mp4", "dialogue0000000a.mp4", "dialogue0000000b.mp4"]
    page.locator("th", has_text="duration").click()
    assert names() == ["broken.mp4", "dialogue0000000b.mp4", "dialogue0000000a.mp4"]  # 0, 25, 40 s
    page.locator("th", has_text="duration").click()
    assert names() == ["dialogue0000000a.mp4", "dialogue0000000b.mp4", "broken.mp4"]
    page.fill("#filter", "moov")
    assert names() == ["broken.mp4"]  # its error matches
    page.fill("#filter", "")
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
    page.locator("a", has_text="dialogue0000000a.mp4").click()
    page.wait_for_function(READY, timeout=20_000)
    assert page.url.endswith("dialogue0000000a.html") and page.problems == []
