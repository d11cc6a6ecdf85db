"""Bad inputs every corpus has: each must end as a recorded status, never a crash."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def make_bad_files(directory: Path) -> dict[str, str]:
    """Write the bad files; return {file name: the error text a user should see (a substring)}."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "zero_bytes.mp4").write_bytes(b"")
    (directory / "not_a_video.mp4").write_text("this is a text file with a video extension\n")
    whole = directory / ".whole.mp4"  # hidden: discovery ignores dot-files
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(whole),
    )
    data = whole.read_bytes()
    (directory / "truncated.mp4").write_bytes(data[: len(data) // 2])  # mp4 index (moov) is at the end: lost
    whole.unlink()
    return {
        "zero_bytes.mp4": "empty file",
        "not_a_video.mp4": "not a readable media file",
        "truncated.mp4": "not a readable media file",
    }


def make_testsrc_video(
    path: Path, seconds: float = 2.0, *, audio: bool = True, size: str = "320x240", fps: int = 25
) -> Path:
    """A faceless synthetic clip (colour bars + tone), for checks that need no faces."""
    inputs = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    codecs = ["-c:v", "libx264", "-pix_fmt", "yuv420p"] + (["-c:a", "aac"] if audio else [])
    ffmpeg(*inputs, "-t", str(seconds), *codecs, str(path))
    return path
