"""A still of each face track: its most confident face, cut from the source video, as a small JPEG."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from affectflow.tasks.media.tools import ffmpeg_exe

THUMB_SIDE = 96  # px
MARGIN = 0.25  # of the box, around it


def local_source(uri: str) -> Path | None:
    """The source file when it is on this machine (a path or file:// URI), else None."""
    path = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
    return path if "://" not in uri.replace("file://", "", 1) and path.is_file() else None


def track_thumbnails(source: Path, faces: pd.DataFrame) -> dict[int, str]:
    """{track_id: data URI of a JPEG} for each track of ``faces`` (boxes in source pixels)."""
    thumbs = {}
    for track_id, boxes in faces.groupby("track_id", sort=True):
        best = boxes.loc[boxes.score.idxmax()]
        frame = _frame_at(source, float(best.t))
        if frame is None:
            continue
        crop = _crop(frame, best)
        ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            thumbs[int(track_id)] = "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()
    return thumbs


def _frame_at(source: Path, t: float) -> np.ndarray | None:
    """The decoded frame at ``t`` s (BGR), or None when ffmpeg cannot give it."""
    command = [ffmpeg_exe(), "-v", "error", "-ss", f"{t:.3f}", "-i", str(source), "-frames:v", "1"]
    command += ["-f", "image2pipe", "-c:v", "png", "-"]
    done = subprocess.run(command, capture_output=True, timeout=30, check=False)
    if done.returncode != 0 or not done.stdout:
        return None
    return cv2.imdecode(np.frombuffer(done.stdout, np.uint8), cv2.IMREAD_COLOR)


def _crop(frame: np.ndarray, box: pd.Series) -> np.ndarray:
    h, w = frame.shape[:2]
    pad_x, pad_y = MARGIN * (box.x2 - box.x1), MARGIN * (box.y2 - box.y1)
    x1, y1 = max(int(box.x1 - pad_x), 0), max(int(box.y1 - pad_y), 0)
    x2, y2 = min(int(box.x2 + pad_x), w), min(int(box.y2 + pad_y), h)
    crop = frame[y1:y2, x1:x2] if x2 > x1 and y2 > y1 else frame
    scale = THUMB_SIDE / max(crop.shape[:2])
    return cv2.resize(crop, (max(round(crop.shape[1] * scale), 1), max(round(crop.shape[0] * scale), 1)))
