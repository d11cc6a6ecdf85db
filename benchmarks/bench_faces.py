"""Faces stage cost per analysed frame: detection, align+embed, tracking, at 640×480 and 1280×720.

Run: .venv/bin/python benchmarks/bench_faces.py   (prints ms/frame; not a test)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks import media
from tasks.faces import FacesConfig, Tracker, load_backend
from tests.mediagen.faces import make_face_video


def bench(size: tuple[int, int], n_faces: int, directory: Path) -> None:
    clip = make_face_video(directory / f"{size[0]}x{size[1]}-{n_faces}.mp4", n_faces=n_faces, seconds=10, size=size)
    info = media.probe(clip)
    frames = list(media.iter_frames(clip, info, fps=5))
    config = FacesConfig()
    backend = load_backend(config)
    tracker = Tracker(config)
    detect_s = embed_s = track_s = 0.0
    n_faces_seen = 0
    for frame in frames:
        begin = time.perf_counter()
        detections = backend.detect(frame.bgr)
        detect_s += time.perf_counter() - begin
        begin = time.perf_counter()
        aligned = [backend.align_embed(frame.bgr, d) for d in detections]
        embed_s += time.perf_counter() - begin
        begin = time.perf_counter()
        boxes = np.array([d.box for d in detections], np.float32).reshape(-1, 4)
        vectors = np.stack([e for _, e in aligned]) if aligned else np.zeros((0, 1), np.float32)
        tracker.update(frame.t, boxes, vectors)
        track_s += time.perf_counter() - begin
        n_faces_seen += len(detections)
    n = len(frames)
    print(
        f"{size[0]}x{size[1]} {n_faces} face(s): detect {1000 * detect_s / n:6.1f} ms/frame  "
        f"align+embed {1000 * embed_s / n:6.1f} ms/frame ({1000 * embed_s / max(n_faces_seen, 1):.1f} ms/face)  "
        f"track {1000 * track_s / n:5.2f} ms/frame  total {1000 * (detect_s + embed_s + track_s) / n:6.1f} ms/frame"
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for size in ((640, 480), (1280, 720)):
            for n_faces in (1, 2):
                bench(size, n_faces, Path(tmp))
