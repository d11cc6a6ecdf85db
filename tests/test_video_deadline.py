"""The per-video timeout also bounds the child processes a video waits on (ffprobe, ffmpeg).

Between steps the deadline is a progress hook; a child that never finishes would never reach
one, so ffprobe and ffmpeg are waited on for at most the video's time left, then killed.
Stuck tools are stand-ins (AFFECTFLOW_FFPROBE / AFFECTFLOW_FFMPEG: a script that sleeps).
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from affectflow.flows.video import VideoSteps, run_video
from affectflow.tasks.config import PipelineConfig
from affectflow.tasks.media.frames import iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.progress import VideoTimeoutError, time_left, video_deadline
from affectflow.tasks.records import MediaInfo, SourceFile, StagedVideo

pytestmark = pytest.mark.unit


def stuck_tool(folder: Path, name: str) -> tuple[Path, Path]:
    """A ``name`` that writes its pid and sleeps for a minute; (the script, its pid file)."""
    pid_file = folder / f"{name}.pid"
    script = folder / name
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    script.chmod(0o755)
    return script, pid_file


def gone(pid_file: Path) -> bool:
    try:
        return psutil.Process(int(pid_file.read_text())).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_stuck_ffprobe_is_killed_at_the_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script, pid_file = stuck_tool(tmp_path, "ffprobe")
    monkeypatch.setenv("AFFECTFLOW_FFPROBE", str(script))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 1000)
    started = time.monotonic()
    with video_deadline(1.0), pytest.raises(VideoTimeoutError, match=r"after 1 s \(during probe: ffprobe did not"):
        probe(clip)
    assert time.monotonic() - started < 3.0
    assert gone(pid_file)


def test_a_decoder_that_gives_no_frame_is_stopped_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script, pid_file = stuck_tool(tmp_path, "ffmpeg")
    monkeypatch.setenv("AFFECTFLOW_FFMPEG", str(script))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 1000)
    info = MediaInfo(10.0, 25.0, 64, 48, 250, False, None, 0)
    started = time.monotonic()
    with video_deadline(1.0), pytest.raises(VideoTimeoutError, match="during decode: ffmpeg gave no frame"):
        next(iter_frames(clip, info, 5.0))
    assert time.monotonic() - started < 3.0
    assert gone(pid_file)


def test_run_video_gives_its_steps_the_videos_time_left(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not really a video")
    seen: list[float | None] = []

    def probe_step(staged: StagedVideo) -> MediaInfo:
        seen.append(time_left())
        raise VideoTimeoutError("stop here")

    steps = VideoSteps(
        stage=lambda uri, work_dir: StagedVideo(clip, uri, "ab" * 32, clip.stat().st_size),
        probe=probe_step,
        audio=lambda staged, info, work_dir: None,
        write=lambda out, video_id, tables, row, manifest=None: None,
    )
    source = SourceFile(str(clip), clip.stat().st_size, "v1")
    result = run_video(source, str(tmp_path / "out"), PipelineConfig(), "run-1", timeout_s=30.0, steps=steps)
    assert result.status == "failed" and "stop here" in result.error
    assert seen and seen[0] is not None and 25.0 < seen[0] <= 30.0
    assert time_left() is None  # the deadline was the video's only


def test_an_ffprobe_killed_by_a_signal_is_an_interrupted_decode_not_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from affectflow.flows.video import failure_status
    from affectflow.tasks.media.tools import DecodeInterruptedError

    script = tmp_path / "ffprobe"
    script.write_text("#!/bin/sh\nkill -9 $$\n")  # as the OOM killer or a signal to the group would
    script.chmod(0o755)
    monkeypatch.setenv("AFFECTFLOW_FFPROBE", str(script))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 1000)
    with pytest.raises(DecodeInterruptedError, match=r"ffprobe was stopped \(SIGKILL\)") as raised:
        probe(clip)
    status, error = failure_status(raised.value)
    assert status == "failed" and not error.startswith("bad input")  # so its manifest says retry
