"""An output root for the report tests: two dialogues with a real, playable source video, and a failed file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import tests.tablegen as tablegen
from affectflow.tasks.storage.store import Store

FAILED_ERROR = "bad input: moov atom not found (not a complete video file)"


def make_clip(path: Path, seconds: float) -> Path:
    """A test-pattern H.264/AAC mp4 (ffmpeg's lavfi sources) that a browser plays."""
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"]
    command += ["-f", "lavfi", "-i", "sine=f=440", "-t", f"{seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    subprocess.run([*command, "-c:a", "aac", "-shortest", str(path)], check=True)
    return path


def write_root(root: Path, clip: Path, words: list[dict] | None = None) -> dict[str, float]:
    """Write the videos; returns {video_id: duration_s} of the ok ones."""
    store, durations = Store(str(root)), {"dialogue0000000a": 40.0, "dialogue0000000b": 25.0}
    original = tablegen._video_row

    def with_source(video_id: str, duration_s: float, fps: float, run_id: str) -> dict:
        row = original(video_id, duration_s, fps, run_id)
        return {**row, "uri": str(clip), "name": f"{video_id}.mp4", "backends": '{"emotions": "rcma-distilled-v0"}'}

    tablegen._video_row = with_source  # type: ignore[assignment]
    try:
        for k, (video_id, duration) in enumerate(durations.items()):
            tablegen.write_video(
                store, video_id, duration_s=duration, n_tracks=2 + k, seed=k, words=words if k == 0 else None
            )
    finally:
        tablegen._video_row = original  # type: ignore[assignment]
    failed = {**original("broken0000000000", 0.0, 5.0, "run-synthetic"), "status": "failed", "error": FAILED_ERROR}
    store.write_video("broken0000000000", {}, {**failed, "name": "broken.mp4"})
    return durations
