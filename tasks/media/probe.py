"""Probing: the container's facts (duration, rate, size, rotation, audio) from ffprobe."""

from __future__ import annotations

import json
from pathlib import Path

from affectflow.tasks.media.tools import (
    DecodeInterruptedError,
    MediaError,
    ffprobe_exe,
    input_url,
    last_line,
    run_tool,
    signal_name,
)
from affectflow.tasks.records import MediaInfo


def probe(path: Path) -> MediaInfo:
    """Read the container's facts with ffprobe; raise MediaError for unusable files."""
    if path.stat().st_size == 0:
        raise MediaError("empty file (0 bytes)")
    command = [ffprobe_exe(), "-show_format", "-show_streams", "-of", "json", input_url(path)]
    done = run_tool(command, "probe")  # bounded by the video's time left
    if done.returncode < 0:  # killed (a signal to the run, OOM): not the file's fault, redone next run
        raise DecodeInterruptedError(f"ffprobe was stopped ({signal_name(-done.returncode)}) while probing")
    if done.returncode != 0:
        raise MediaError(f"not a readable media file: {last_line(done.stderr)}")
    try:
        info = json.loads(done.stdout.decode("utf-8", errors="replace"))
    except ValueError:
        raise MediaError("not a readable media file: ffprobe gave no JSON") from None
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover(s)), None)
    if video is None:
        raise MediaError("no video stream")
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    duration = _stream_duration(video) or _float(info.get("format", {}).get("duration"))
    if not fps or not duration:
        raise MediaError("video stream has no frame rate or duration (truncated or corrupt file)")
    rotation = _rotation(video)
    width, height = int(video["width"]), int(video["height"])
    if rotation % 180 == 90:
        width, height = height, width
    n_frames = int(video.get("nb_frames") or 0) or round(duration * fps)
    audio_duration = (_stream_duration(audio) or None) if audio else None
    return MediaInfo(duration, fps, width, height, n_frames, audio is not None, audio_duration, rotation)


def _is_cover(stream: dict) -> bool:
    return bool(stream.get("disposition", {}).get("attached_pic"))


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "0"):
        return 0.0
    num, _, den = text.partition("/")
    return float(num) / float(den or 1)


def _stream_duration(stream: dict) -> float:
    """Seconds of one stream (0 when unknown): its ``duration``, else Matroska's ``DURATION`` tag.

    Matroska/WebM keep per-stream durations only in that tag; the container's duration is the
    longest stream's, so a video under a longer sound track would promise frames it never had.
    """
    tags = {key.upper(): value for key, value in stream.get("tags", {}).items()}
    return _float(stream.get("duration")) or _clock(tags.get("DURATION"))


def _clock(text: str | None) -> float:
    """``HH:MM:SS.fffffffff`` → seconds (0 when absent or malformed)."""
    try:
        hours, minutes, seconds = (text or "").split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return 0.0


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(float(side["rotation"])) % 360
    return int(float(stream.get("tags", {}).get("rotate", 0))) % 360
