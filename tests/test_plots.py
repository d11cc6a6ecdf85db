"""Timeline plots: a readable PNG for a short clip and for an hour-long video, and the HTML report."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.cli import main
from tasks.plots import MAX_POINTS, PlotError, choose_bin, plot_timeline
from tasks.store import Store
from tests.tablegen import write_video


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("out")
    store = Store(str(root))
    write_video(store, "clip", duration_s=30, seed=1)
    write_video(store, "hour", duration_s=3600, seed=2)
    return str(root)


def assert_readable_png(path: Path) -> None:
    image = np.asarray(Image.open(path).convert("L"), dtype=float)  # shape: (height, width) grey levels
    assert image.shape[1] >= 1200 and image.shape[0] >= 700
    assert (image < 200).mean() > 0.02  # lines, bands and text, not a blank canvas (a 3 s silent clip: 2.5 %)
    assert image.std() > 20


def test_short_clip_plot_is_drawn_frame_by_frame(out: str, tmp_path: Path) -> None:
    png = plot_timeline(out, "clip", str(tmp_path / "clip.png"))
    assert png == str(tmp_path / "clip.png")
    assert_readable_png(tmp_path / "clip.png")


def test_hour_long_video_is_binned_and_plots_quickly(out: str, tmp_path: Path) -> None:
    assert choose_bin(3600, 3600 * 5) == 10  # 360 points per track
    assert choose_bin(30, 150) is None
    started = time.perf_counter()
    plot_timeline(out, "hour", str(tmp_path / "hour.png"))
    assert time.perf_counter() - started < 15
    assert_readable_png(tmp_path / "hour.png")
    assert 3600 / choose_bin(3600, 3600 * 5) <= MAX_POINTS


def test_html_report_embeds_the_plot_and_the_transcript(out: str, tmp_path: Path) -> None:
    plot_timeline(out, "clip", str(tmp_path / "clip.png"), html_path=str(tmp_path / "clip.html"))
    page = (tmp_path / "clip.html").read_text()
    assert "data:image/png;base64," in page and "Transcript" in page and "SPEAKER_00" in page


def test_plot_command_writes_the_png(capsys, out: str, tmp_path: Path) -> None:
    assert main(["plot", "clip", "--out", out, "--png", str(tmp_path / "p.png")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "p.png")
    assert_readable_png(tmp_path / "p.png")


def test_unknown_video_is_a_one_line_error(capsys, out: str, tmp_path: Path) -> None:
    with pytest.raises(PlotError, match="no committed video"):
        plot_timeline(out, "missing", str(tmp_path / "x.png"))
    assert main(["plot", "missing", "--out", out, "--png", str(tmp_path / "x.png")]) == 3
    assert "SELECT video_id, name FROM videos" in capsys.readouterr().err


def test_video_without_faces_or_speech_still_plots(tmp_path: Path) -> None:
    Store(str(tmp_path)).write_video(
        "silent", {}, dict(video_id="silent", duration_s=5.0, analysis_fps=5.0, status="ok")
    )
    plot_timeline(str(tmp_path), "silent", str(tmp_path / "silent.png"))
    assert Image.open(tmp_path / "silent.png").size[0] >= 1200


def test_pipeline_videos_plot(pipeline_out: str, tmp_path: Path) -> None:
    from tasks.query import connect

    for (video,) in connect(pipeline_out).execute("SELECT video_id FROM videos WHERE status = 'ok'").fetchall():
        assert_readable_png(Path(plot_timeline(pipeline_out, video, str(tmp_path / f"{video}.png"))))
