"""Faces stage: detect faces in streamed frames, track identities, keep aligned crops.

Per analysed frame: detect (on a copy shrunk to ``detect_max_side``), align every face to
112×112, embed only the faces tracking needs (``Identities``), assign track ids
(tasks/tracking.py). Crops and embeddings are appended to ``.npy`` files in the work
dir, row-aligned with the faces rows, so the features stage reads them without decoding
the video again and memory stays flat however long the video.

The recognizer is the expensive step, so a face that continues a track beyond doubt
(its box overlaps the track's box of the previous frame and nothing else, and its crop
still looks like the track's last crop) reuses the track's running embedding; each
track gets a fresh one at least every ``TrackerConfig.refresh_s``. Such rows carry the
track's embedding in ``embeddings.npy``; the others carry their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from affectflow.tasks.devices import check_device
from affectflow.tasks.faces.backends import (
    BACKENDS,
    CROP,
    Detection,
    FaceBackend,
    FaceBackendError,
    load_backend,
)
from affectflow.tasks.faces.tracking import Tracker, TrackerConfig
from affectflow.tasks.progress import Hook, no_progress
from affectflow.tasks.records import FaceTracks, Frame
from affectflow.tasks.settings import settings

__all__ = ["FaceBackendError", "FaceTracks", "FacesConfig", "Identities", "detect_faces", "track_faces"]

SAME_LOOK = 0.8  # correlation of 16×16 grey crops above which a continued face may keep its track's embedding


@dataclass(frozen=True)
class FacesConfig:
    backend: str = BACKENDS[0]  # yunet-sface | insightface
    insightface_dir: str | None = field(default_factory=lambda: settings().insightface_dir)
    min_score: float = 0.6  # detector confidence
    min_size: int = 20  # smallest face side kept, analysis pixels
    detect_max_side: int | None = 640  # detect on a copy shrunk to this longer side (None: full analysis size)
    device: str = "auto"  # tasks/devices.py: auto | cpu | cuda (onnxruntime's CUDA provider)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown faces backend {self.backend!r}: use one of {', '.join(BACKENDS)}")
        if not 0.0 < self.min_score < 1.0:
            raise ValueError(f"faces min_score must be in (0, 1), got {self.min_score}")
        if self.min_size < 1:
            raise ValueError(f"faces min_size must be at least 1 pixel, got {self.min_size}")
        if self.detect_max_side is not None and self.detect_max_side < 64:
            raise ValueError(f"faces detect_max_side must be at least 64 pixels (or None), got {self.detect_max_side}")
        check_device(self.device)


def faces_backend(config: FacesConfig) -> FaceBackend:
    """The configured backend, loaded once per process (``load_backend`` is cached by these arguments)."""
    return load_backend(config.backend, config.insightface_dir, config.min_score, config.device)


def track_faces(
    frames: Iterable[Frame],
    config: FacesConfig,
    work_dir: Path,
    hook: Hook = no_progress,
    expected_frames: int | None = None,
) -> FaceTracks:
    """Detect, track and align every face of a frame stream, holding one frame at a time.

    ``expected_frames`` (what the probe promises at the analysis rate) is the progress total.
    """
    backend = faces_backend(config)
    tracker = Tracker(config.tracker)
    identities = Identities(backend, tracker)
    work_dir.mkdir(parents=True, exist_ok=True)
    rows = FaceTracks([], [], [], [], [], [], [], [], [], work_dir / "crops.npy", work_dir / "embeddings.npy", "", 0)
    with (
        _NpyRows(rows.crops_path, (CROP, CROP, 3), np.uint8) as crops_file,
        _NpyRows(rows.embeddings_path, (backend.embedding_dim,), np.float32) as embeddings_file,
    ):
        for n_frames, frame in enumerate(frames, start=1):
            detections = detect_faces(backend, frame.bgr, config)
            crops = [backend.align(frame.bgr, d) for d in detections]  # each (112, 112, 3)
            boxes = np.array([d.box for d in detections], np.float32).reshape(-1, 4)
            embeddings, fresh = identities.embed(frame.t, boxes, crops)  # (N, E), (N,)
            track_ids = tracker.update(frame.t, boxes, embeddings, fresh)
            identities.remember(track_ids, crops)
            for track_id, detection, crop, embedding in zip(track_ids, detections, crops, embeddings, strict=True):
                _append_row(rows, track_id, frame, detection)
                crops_file.append(crop)
                embeddings_file.append(embedding)
            rows.n_frames_analysed = n_frames
            if n_frames % 25 == 0:
                hook("faces", n_frames, expected_frames)
    rows.backend = backend.description
    return rows


def detect_faces(backend: FaceBackend, bgr: np.ndarray, config: FacesConfig) -> list[Detection]:
    """Faces of at least ``min_size`` in ``bgr`` (H, W, 3), found on a copy shrunk to ``detect_max_side``."""
    height, width = bgr.shape[:2]
    shrink = min(1.0, config.detect_max_side / max(height, width)) if config.detect_max_side else 1.0
    if shrink < 1.0:
        small = cv2.resize(bgr, (round(width * shrink), round(height * shrink)), interpolation=cv2.INTER_AREA)
        found = [d.scaled(1.0 / shrink) for d in backend.detect(small)]
    else:
        found = backend.detect(bgr)
    return [d for d in found if min(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= config.min_size]


def _append_row(rows: FaceTracks, track_id: int, frame: Frame, detection: Detection) -> None:
    x1, y1, x2, y2 = (float(v) for v in detection.box / frame.scale)  # back to source pixels
    rows.track_id.append(track_id)
    rows.frame.append(frame.index)
    rows.t.append(frame.t)
    rows.x1.append(x1)
    rows.y1.append(y1)
    rows.x2.append(x2)
    rows.y2.append(y2)
    rows.score.append(detection.score)
    rows.landmarks.append((detection.landmarks / frame.scale).ravel().tolist())


class Identities:
    """Identity embeddings for each frame's faces, running the recognizer only where needed."""

    def __init__(self, backend: FaceBackend, tracker: Tracker):
        self.backend, self.tracker = backend, tracker
        self.looks: dict[int, np.ndarray] = {}  # track id -> (256,) look of its last crop

    def embed(self, t: float, boxes: np.ndarray, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(N, E) embeddings and (N,) bool: computed now (True) or the continued track's own (False)."""
        continued = self.tracker.continued_track(t, boxes)
        reused = {
            n: track.embedding
            for n, (track, crop) in enumerate(zip(continued, crops, strict=True))
            if track is not None and float(_look(crop) @ self.looks[track.track_id]) >= SAME_LOOK
        }
        fresh = np.array([n not in reused for n in range(len(crops))], bool)
        embeddings = np.zeros((len(crops), self.backend.embedding_dim), np.float32)
        if fresh.any():
            embeddings[fresh] = self.backend.embed([crop for crop, new in zip(crops, fresh, strict=True) if new])
        for n, embedding in reused.items():
            embeddings[n] = embedding
        return embeddings, fresh

    def remember(self, track_ids: list[int], crops: list[np.ndarray]) -> None:
        for track_id, crop in zip(track_ids, crops, strict=True):
            self.looks[track_id] = _look(crop)


def _look(crop: np.ndarray) -> np.ndarray:
    """(256,) zero-mean, unit-norm 16×16 grey thumbnail: a cheap 'same face as before?' check."""
    grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (16, 16), interpolation=cv2.INTER_AREA)
    values = grey.astype(np.float32).ravel()
    values -= values.mean()
    return values / (np.linalg.norm(values) + 1e-6)


class _NpyRows:
    """An .npy file written a row at a time; its header's row count is fixed in place on close.

    numpy pads .npy headers so that the first dimension can grow without moving the data.
    """

    def __init__(self, path: Path, row_shape: tuple[int, ...], dtype: type[np.generic]):
        self.path, self.row_shape, self.dtype = path, row_shape, np.dtype(dtype)
        self.n_rows = 0
        self.file = open(path, "wb")  # noqa: SIM115 - closed in __exit__
        self.header_size = self._write_header()

    def _write_header(self) -> int:
        self.file.seek(0)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(self.file, {**header, "shape": (self.n_rows, *self.row_shape)})
        return self.file.tell()

    def append(self, row: np.ndarray) -> None:
        if row.shape != self.row_shape:
            raise ValueError(f"{self.path.name}: row of shape {row.shape}, expected {self.row_shape}")
        self.file.write(np.ascontiguousarray(row, self.dtype).tobytes())
        self.n_rows += 1

    def __enter__(self) -> _NpyRows:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        end = self.file.tell()
        if self._write_header() != self.header_size:
            raise RuntimeError(f"{self.path}: .npy header grew while fixing its row count")
        self.file.seek(end)
        self.file.close()
