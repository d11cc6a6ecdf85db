"""Videos with real, moving faces of two different people that ship in packages.

- ``astronaut``: scikit-image's ``data.astronaut()`` (Eileen Collins, public domain);
- ``hopper``: matplotlib's sample ``grace_hopper.jpg`` (Grace Hopper, public domain).

Faces pan and zoom so tracking matters; ``leave_and_return`` takes the face off screen for
a while so re-identification matters; ``one_after_other`` shows the first person, then the
second in the same place, so merging two people into one track would show.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
from matplotlib import cbook
from skimage import data

from affectflow.tasks.media.tools import ffmpeg_exe

PEOPLE = ("astronaut", "hopper")


def photo(person: str = "astronaut") -> np.ndarray:
    """The whole photo of ``person`` as BGR: astronaut (512, 512, 3), hopper (600, 512, 3)."""
    if person == "astronaut":
        return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    if person == "hopper":
        bgr = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
        if bgr is None:
            raise RuntimeError("matplotlib's sample data lacks grace_hopper.jpg: reinstall matplotlib")
        return bgr
    raise ValueError(f"unknown person {person!r}: use one of {', '.join(PEOPLE)}")


def face_patch(person: str = "astronaut") -> np.ndarray:
    """Head and shoulders of ``person`` as BGR, about 260×300 with a ~90 px wide face."""
    if person == "astronaut":
        return photo(person)[0:300, 110:370]
    return cv2.resize(photo(person)[0:560, 20:500], None, fx=0.53, fy=0.53, interpolation=cv2.INTER_AREA)


def make_face_video(
    path: Path,
    *,
    n_faces: int = 1,
    seconds: float = 6.0,
    fps: int = 25,
    size: tuple[int, int] = (640, 480),
    leave_and_return: bool = False,
    faceless: bool = False,
    one_after_other: bool = False,
) -> Path:
    """Write an H.264 mp4 (no audio) of ``n_faces`` different people moving on a plain background.

    ``one_after_other``: one lane, the astronaut in the first half and Grace Hopper in the second.
    """
    width, height = size
    patches = [face_patch(person) for person in PEOPLE[: 2 if one_after_other else n_faces]]
    n_frames = round(seconds * fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24"]
    command += ["-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:"]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", str(path)]
    with subprocess.Popen(command, stdin=subprocess.PIPE) as ffmpeg:
        assert ffmpeg.stdin is not None
        for i in range(n_frames):
            phase = i / max(n_frames - 1, 1)
            canvas = np.full((height, width, 3), (90, 110, 95), np.uint8)
            away = leave_and_return and 0.35 < phase < 0.6
            if one_after_other:
                _paste(canvas, patches[int(phase >= 0.5)], phase, 0, 1)
            elif not faceless and not away:
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
