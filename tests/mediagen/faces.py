"""Videos with real, moving faces: scikit-image's astronaut photo (public domain).

Faces pan and zoom so tracking matters; a second person is the same photo mirrored and
tinted (a different box, so two tracks), and ``leave_and_return`` takes the face off
screen for a while so re-identification matters.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
from skimage import data

FACE_BOX = (150, 20, 330, 230)  # x1, y1, x2, y2 of the astronaut's head in the 512×512 photo


def face_patch(mirror: bool = False) -> np.ndarray:
    """The astronaut's head and shoulders as BGR, optionally mirrored and tinted."""
    rgb = data.astronaut()[0:300, 110:370]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if mirror:
        bgr = cv2.flip(bgr, 1)
        bgr = cv2.convertScaleAbs(bgr, alpha=0.9, beta=15)
    return bgr


def make_face_video(
    path: Path,
    *,
    n_faces: int = 1,
    seconds: float = 6.0,
    fps: int = 25,
    size: tuple[int, int] = (640, 480),
    leave_and_return: bool = False,
    faceless: bool = False,
) -> Path:
    """Write an H.264 mp4 (no audio) of ``n_faces`` moving faces on a plain background."""
    width, height = size
    patches = [face_patch(mirror=k == 1) for k in range(n_faces)]
    n_frames = round(seconds * fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        "ffmpeg",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "pipe:",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-preset",
        "veryfast",
        str(path),
    ]
    with subprocess.Popen(command, stdin=subprocess.PIPE) as ffmpeg:
        assert ffmpeg.stdin is not None
        for i in range(n_frames):
            phase = i / max(n_frames - 1, 1)
            canvas = np.full((height, width, 3), (90, 110, 95), np.uint8)
            away = leave_and_return and 0.35 < phase < 0.6
            if not faceless and not away:
                for k, patch in enumerate(patches):
                    _paste(canvas, patch, phase, k, n_faces)
            ffmpeg.stdin.write(canvas.tobytes())
        ffmpeg.stdin.close()
    if ffmpeg.returncode:
        raise RuntimeError(f"ffmpeg failed writing {path}")
    return path


def _paste(canvas: np.ndarray, patch: np.ndarray, phase: float, k: int, n_faces: int) -> None:
    """Place face ``k`` along a slow pan with a gentle zoom."""
    height, width = canvas.shape[:2]
    zoom = (0.55 + 0.15 * np.sin(2 * np.pi * phase)) * height / 480 * (0.8 if n_faces > 1 else 1.0)
    scaled = cv2.resize(patch, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_AREA)
    h, w = scaled.shape[:2]
    lane = width / n_faces
    x = int(lane * k + (lane - w) * (0.2 + 0.6 * phase if k == 0 else 0.8 - 0.6 * phase))
    y = int((height - h) * (0.3 + 0.2 * np.sin(np.pi * phase)))
    x, y = max(0, min(x, width - w)), max(0, min(y, height - h))
    canvas[y : y + h, x : x + w] = scaled
