"""Report pages as files: what they hold, that data is escaped, how big they get (no browser here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectflow.tasks.reports import ReportError, write_reports
from tests.report_pages import FAILED_ERROR, make_clip, write_root

pytestmark = pytest.mark.models  # ffmpeg makes the clip and the thumbnails

EVIL = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reports")
    clip = make_clip(folder / "clip.mp4", 40.0)
    words = [
        dict(word=w, start=1.0 + i, end=1.5 + i, score=0.9, speaker="SPEAKER_00", segment=0)
        for i, w in enumerate(["hello", EVIL, "bye"])
    ]
    write_root(folder / "out", clip, words)
    return folder


def test_a_page_per_ok_video_and_an_index_with_every_video(root: Path) -> None:
    written = write_reports(str(root / "out"))
    assert set(written) == {"dialogue0000000a", "dialogue0000000b", "index"}
    index = Path(written["index"]).read_text()
    assert 'href="dialogue0000000a.html"' in index and 'href="dialogue0000000b.html"' in index
    assert "broken.mp4" in index and FAILED_ERROR.split(":")[1].strip() in index and 'href="broken' not in index


def test_the_page_escapes_transcripts_links_the_video_and_inlines_its_scripts(root: Path) -> None:
    page = Path(write_reports(str(root / "out"), ["dialogue0000000a"])["dialogue0000000a"]).read_text()
    assert EVIL not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert 'src="../../clip.mp4"' in page  # <out>/reports/ → the clip beside <out>: relative, so both can move
    assert "<script src=" not in page and "cdn.bokeh.org" not in page  # works offline
    assert "distilled demonstration model" in page


def test_an_unknown_video_is_one_error_and_writes_nothing(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no video nosuch in this output root"):
        write_reports(str(root / "out"), ["nosuch"])
