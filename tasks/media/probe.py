"""Probing: the container's facts (duration, rate, size, rotation, audio) from ffprobe."""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from affectflow.tasks.media.tools import MediaError, ffprobe_exe, last_line
from affectflow.tasks.records import MediaInfo


def probe(path: Path) -> MediaInfo:
    """Read the container's facts with ffprobe; raise MediaError for unusable files."""
    if path.stat().st_size == 0:
        raise MediaError("empty file (0 bytes)")
    try:
        info = ffmpeg.probe(str(path), cmd=ffprobe_exe())
    except ffmpeg.Error as err:
        raise MediaError(f"not a readable media file: {last_line(err.stderr)}") from None
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover(s)), None)
    if video is None:
        raise MediaError("no video stream")
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    duration = _float(video.get("duration")) or _float(info.get("format", {}).get("duration"))
    if not fps or not duration:
        raise MediaError("video stream has no frame rate or duration (truncated or corrupt file)")
    rotation = _rotation(video)
    width, height = int(video["width"]), int(video["height"])
    if rotation % 180 == 90:
        width, height = height, width
    n_frames = int(video.get("nb_frames") or 0) or round(duration * fps)
    audio_duration = _float(audio.get("duration")) if audio else None
    return MediaInfo(duration, fps, width, height, n_frames, audio is not None, audio_duration, rotation)


def _is_cover(stream: dict) -> bool:
    return bool(stream.get("disposition", {}).get("attached_pic"))


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "0"):
        return 0.0
    num, _, den = text.partition("/")
    return float(num) / float(den or 1)


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
