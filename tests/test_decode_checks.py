"""Decodes are verified: a file that probes well but decodes short, fails or is killed is never an ``ok`` video.

Issue 21: before, ``iter_frames`` took a short read for the end of the video and never looked
at ffmpeg's exit status, so random frames, an absurd frame size or a killed decoder gave
``ok`` rows with part (or none) of the frames, and re-runs skipped them.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import psutil
import pytest

from affectflow.flows.cli import main
from affectflow.flows.video import failure_status
from affectflow.tasks.media.audio import extract_audio
from affectflow.tasks.media.frames import check_frame_count, iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.media.tools import DecodeInterruptedError, MediaError
from affectflow.tasks.query.views import connect
from affectflow.tasks.synth.bad import ffmpeg, make_testsrc_video, make_undecodable_videos

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def undecodable(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    directory = tmp_path_factory.mktemp("undecodable")
    return directory, make_undecodable_videos(directory)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_testsrc_video(tmp_path_factory.mktemp("clip") / "clip.mp4", seconds=4.0)


@pytest.mark.parametrize("name", ["random_frames.mp4", "truncated_download.mp4", "huge_mjpeg.avi"])
def test_a_file_that_probes_but_does_not_decode_is_a_media_error(
    undecodable: tuple[Path, dict[str, str]], name: str
) -> None:
    directory, expected = undecodable
    info = probe(directory / name)  # the container's promise is intact...
    assert info.n_frames >= 4
    with pytest.raises(MediaError, match=expected[name]) as raised:
        list(iter_frames(directory / name, info, 5))  # ...the frames are not there
    assert "\n" not in str(raised.value)
    if info.has_audio:
        with pytest.raises(MediaError, match="audio decode"):
            extract_audio(directory / name, info, directory / f".{name}.wav")


def test_the_reason_is_ffmpeg_s_first_error_line(undecodable: tuple[Path, dict[str, str]]) -> None:
    directory, _ = undecodable
    with pytest.raises(MediaError, match=r"after 0 of 20 frames: Invalid NAL unit size"):
        list(iter_frames(directory / "random_frames.mp4", probe(directory / "random_frames.mp4"), 5))


def test_a_complete_decode_passes_and_a_short_count_does_not(clip: Path) -> None:
    info = probe(clip)
    assert len(list(iter_frames(clip, info, 5))) == 20
    check_frame_count(18, 20, 5.0)  # max(2 frames, 2 %) may be missing
    with pytest.raises(MediaError, match="video decode stopped early: 17 of 20 frames at 5 fps"):
        check_frame_count(17, 20, 5.0)
    check_frame_count(980, 1000, 5.0)
    with pytest.raises(MediaError, match="979 of 1000"):
        check_frame_count(979, 1000, 5.0)


@pytest.mark.parametrize(
    ("container", "codecs"), [("mkv", ["-c:a", "aac"]), ("webm", ["-c:v", "libvpx", "-c:a", "libopus"])]
)
def test_a_matroska_picture_under_a_longer_sound_track_decodes_whole(
    tmp_path: Path, container: str, codecs: list[str]
) -> None:
    """Matroska keeps stream durations in tags: the container's 3 s must not be the picture's promise."""
    path = tmp_path / f"long_sound.{container}"
    ffmpeg(
        "-t", "1", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
        "-t", "3", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000",
        "-map", "0:v", "-map", "1:a", *codecs, str(path),
    )  # fmt: skip
    info = probe(path)
    assert info.duration_s == pytest.approx(1.0, abs=0.1) and info.audio_duration_s == pytest.approx(3.0, abs=0.1)
    assert len(list(iter_frames(path, info, 5))) == 5
    assert extract_audio(path, info, tmp_path / "a.wav") is not None


def _ffmpeg_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.name().startswith("ffmpeg")]


@pytest.mark.parametrize(("sig", "words"), [(signal.SIGKILL, "SIGKILL"), (signal.SIGINT, "SIGINT/SIGTERM")])
def test_a_decoder_stopped_mid_way_is_an_interruption_not_a_short_video(
    clip: Path, sig: signal.Signals, words: str
) -> None:
    info = probe(clip)
    seen = 0
    with pytest.raises(DecodeInterruptedError, match=rf"ffmpeg was stopped \({words}\) while decoding video"):
        for seen, _frame in enumerate(iter_frames(clip, info, 25, read_ahead=1), 1):  # 100 frames
            if seen == 3:
                (decoder,) = _ffmpeg_children()
                decoder.send_signal(sig)
    assert 3 <= seen < 100
    assert not _ffmpeg_children()
    status, error = failure_status(DecodeInterruptedError("x"))
    assert status == "failed" and not error.startswith("bad input")  # so its manifest says retry: redone next run


def test_a_killed_audio_decode_is_an_interruption(clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    killed = tmp_path / "ffmpeg-killed"
    killed.write_text("#!/bin/sh\nkill -KILL $$\n")  # an ffmpeg the OOM killer takes at once
    killed.chmod(killed.stat().st_mode | stat.S_IXUSR)
    info = probe(clip)
    monkeypatch.setenv("AFFECTFLOW_FFMPEG", str(killed))
    with pytest.raises(DecodeInterruptedError, match=r"\(SIGKILL\) while decoding audio"):
        extract_audio(clip, info, tmp_path / "a.wav")


def test_undecodable_videos_fail_as_bad_input_and_are_not_retried(
    undecodable: tuple[Path, dict[str, str]], clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, expected = undecodable
    os.link(clip, directory / "good.mp4")
    out = tmp_path / "out"
    try:
        assert main(["run", str(directory), "--out", str(out), "--stages", "faces"]) == 1
    finally:
        (directory / "good.mp4").unlink()
    rows = {
        name: (status, error, analysed)
        for name, status, error, analysed in connect(str(out))
        .execute("SELECT name, status, error, n_frames_analysed FROM videos")
        .fetchall()
    }
    assert rows.pop("good.mp4") == ("ok", None, 20)
    assert set(rows) == set(expected)
    for name, (status, error, analysed) in rows.items():
        assert status == "failed" and analysed is None, name  # never ok, never a count of frames
        assert error.startswith("bad input: ") and expected[name] in error and "\n" not in error, error
    manifests = [json.loads(p.read_text()) for p in (out / "_manifest").glob("*.json")]
    assert {m["uri"].rsplit("/", 1)[-1]: m["retry"] for m in manifests if m["status"] == "failed"} == dict.fromkeys(
        expected, False
    )
