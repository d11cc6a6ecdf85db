"""Aff-Wild2 valence/arousal data: the official layout, a per-video features cache, training windows.

Official layout (any depth ≤ 3 under the root)::

    <root>/…/VA_Estimation_Challenge/Train_Set/<video>.txt       (ABAW2–5: VA_Set/…)
    <root>/…/VA_Estimation_Challenge/Validation_Set/<video>.txt
    <root>/cropped_aligned/<video>/00001.jpg …                   (frame i is 0000{i+1}.jpg)

An annotation has the header ``valence,arousal`` and one line per video frame, ``-5,-5``
where no label is valid. Two-person videos have one file per subject (``_left``/``_right``),
each with its own frames folder. The features cache holds, per video::

    <cache>/<video>/<modality>.npy        (T, D_m) float32, one row per video frame
    <cache>/<video>/<modality>_mask.npy   (T,) bool, True = a real feature (optional: all valid)
    <cache>/<video>/meta.json             {"fps": the video's frame rate} (optional: rate unknown)

Training and scoring run at the rate ``affectflow run`` analyses (``at_rate``): the labels and
features are taken at the frames nearest to k / fps seconds, and scoring interpolates the
predictions back to every annotated frame, so the challenge's metric sees every frame.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from affectflow.model.metrics import INVALID_LABEL
from affectflow.model.rcma import MODALITIES
from affectflow.model.windows import window_starts

SPLITS = {"train": "Train_Set", "validation": "Validation_Set"}
TARGETS = ("valence", "arousal")
FRAMES_DIR = "cropped_aligned"
META = "meta.json"


class DataError(Exception):
    """The data on disk is not what the reader expects; the message says which file and why."""


@dataclass(frozen=True)
class AffWild2Video:
    name: str  # annotation stem = frames folder = cache key, e.g. "10-60-1280x720_right"
    split: str  # "train" | "validation"
    annotation: Path
    frames_dir: Path | None  # cropped-aligned faces; None when the folder is absent


@dataclass
class VideoData:
    """One video ready for windowing: everything has T rows, one per video frame."""

    name: str
    features: dict[str, np.ndarray]  # modality -> (T, D_m) float32
    masks: dict[str, np.ndarray]  # modality -> (T,) bool
    labels: np.ndarray  # (T, K) float32 in [-1, 1], -5 where invalid
    fps: float | None = None  # rows per second (None: unknown, the video's own rate)
    annotated: AnnotatedFrames | None = None  # set by at_rate: the annotation's own frames, for scoring

    @property
    def n_frames(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class AnnotatedFrames:
    """What a resampled video is scored against: its annotation frame by frame."""

    frame: np.ndarray  # (T,) int: the annotation frame each resampled row was taken from
    labels: np.ndarray  # (N, K): every annotated frame's labels, -5 where invalid

    def upsample(self, predictions: np.ndarray) -> np.ndarray:
        """(T, K) predictions at the rows → (N, K) at every annotated frame (linear, held at the ends)."""
        every = np.arange(len(self.labels))
        return np.stack([np.interp(every, self.frame, predictions[:, k]) for k in range(predictions.shape[1])], 1)


# -- the official layout ----------------------------------------------------------------


def read_annotation(path: Path) -> np.ndarray:
    """(T, 2) float32 valence, arousal per frame; -5 marks frames without a valid label."""
    with open(path) as handle:
        header = handle.readline().strip().replace(" ", "").lower()
        if header != "valence,arousal":
            raise DataError(f"{path}: first line must be 'valence,arousal', got {header!r}")
        try:
            values = np.loadtxt(handle, delimiter=",", dtype=np.float32, ndmin=2)
        except ValueError as err:
            raise DataError(f"{path}: not two comma-separated numbers per line ({err})") from err
    if values.size == 0:
        raise DataError(f"{path}: no frames after the header")
    if values.shape[1] != 2:
        raise DataError(f"{path}: expected 2 columns (valence, arousal), got {values.shape[1]}")
    return values


def find_videos(root: Path, split: str) -> list[AffWild2Video]:
    """The videos of one official split (``train`` or ``validation``), sorted by name."""
    annotations = _find_dir(root, SPLITS[split], prefer="VA")
    frames_root = _find_optional_dir(root, FRAMES_DIR)
    videos = []
    for path in sorted(annotations.glob("*.txt")):
        frames = frames_root / path.stem if frames_root else None
        videos.append(AffWild2Video(path.stem, split, path, frames if frames and frames.is_dir() else None))
    if not videos:
        raise DataError(f"{annotations}: no annotation .txt files")
    return videos


def face_frames(frames_dir: Path | None, n_frames: int) -> dict[int, Path]:
    """{0-based frame: its cropped-aligned face ``%05d.jpg`` (1-based name)} for frames < ``n_frames``."""
    faces: dict[int, Path] = {}
    if frames_dir is None:
        return faces
    for entry in os.scandir(frames_dir):
        name = Path(entry.name)
        if name.suffix.lower() in (".jpg", ".png") and name.stem.isdigit() and 1 <= int(name.stem) <= n_frames:
            faces[int(name.stem) - 1] = Path(entry.path)
    return dict(sorted(faces.items()))


def frame_presence(frames_dir: Path | None, n_frames: int) -> np.ndarray:
    """(T,) bool: True where the cropped-aligned face ``%05d.jpg`` (1-based) exists."""
    present = np.zeros(n_frames, dtype=bool)
    present[list(face_frames(frames_dir, n_frames))] = True
    return present


def _walk_dirs(root: Path, depth: int = 3) -> Iterator[Path]:
    """Folders up to ``depth`` below root, not descending into frame folders (millions of files)."""
    level = [root]
    for _ in range(depth):
        below = []
        for folder in level:
            for entry in os.scandir(folder):
                if entry.is_dir() and not entry.name.startswith((".", FRAMES_DIR)):
                    below.append(Path(entry.path))
                    yield Path(entry.path)
        level = below


def _find_dir(root: Path, name: str, prefer: str) -> Path:
    if not root.is_dir():
        raise DataError(f"{root}: no such Aff-Wild2 folder")
    found = [p for p in _walk_dirs(root) if p.name == name]
    preferred = [p for p in found if prefer in p.parent.name]
    if len(preferred) == 1 or len(found) == 1:
        return (preferred or found)[0]
    if not found:
        raise DataError(f"{root}: no {name} folder (expected …/VA_Estimation_Challenge/{name}/*.txt)")
    raise DataError(f"{root}: several {name} folders ({', '.join(map(str, found))}); pass the one for VA")


def _find_optional_dir(root: Path, name: str) -> Path | None:
    for candidate in (root / name, *(p / name for p in _walk_dirs(root, depth=1))):
        if candidate.is_dir():
            return candidate
    return None


# -- the features cache -----------------------------------------------------------------


def save_features(
    directory: Path,
    features: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray] | None = None,
    fps: float | None = None,
) -> None:
    """Write one video's cache (``fps``: its frame rate); each file appears whole (written aside, then renamed)."""
    directory.mkdir(parents=True, exist_ok=True)
    for m, x in features.items():
        _save_npy(directory / f"{m}.npy", np.asarray(x, dtype=np.float32))
        if masks and m in masks:
            _save_npy(directory / f"{m}_mask.npy", np.asarray(masks[m], dtype=bool))
    if fps is not None:
        tmp = directory / ".meta.json.tmp"
        tmp.write_text(json.dumps({"fps": float(fps)}))
        tmp.replace(directory / META)


def cached_fps(directory: Path) -> float | None:
    """The frame rate a video's cache records (None: an older cache, or a rate never recorded)."""
    path = directory / META
    if not path.is_file():
        return None
    try:
        fps = json.loads(path.read_text()).get("fps")
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable ({err}); delete it and extract again") from err
    return float(fps) if fps else None


def load_features(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(features, masks) of one cached video; arrays are memory-mapped, not read."""
    features, masks = {}, {}
    for m in MODALITIES:
        path = directory / f"{m}.npy"
        if not path.is_file():
            raise DataError(f"{path}: missing cached {m} features; run feature extraction for this video first")
        try:
            features[m] = np.load(path, mmap_mode="r")
            mask_path = directory / f"{m}_mask.npy"
            masks[m] = np.load(mask_path) if mask_path.is_file() else np.ones(len(features[m]), dtype=bool)
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: unreadable cache file ({err}); delete it and extract again") from err
        if features[m].ndim != 2 or masks[m].shape != (len(features[m]),):
            raise DataError(f"{path}: expected (T, D) features and a (T,) mask, got {features[m].shape}")
    return features, masks


def load_video(video: AffWild2Video, cache: Path, targets: tuple[str, ...] = TARGETS) -> VideoData:
    """Labels and cached features of a video, aligned to the annotation's frame count.

    Feature rows beyond the labels are dropped; missing rows are padded and masked out,
    as are visual rows whose cropped-aligned face is missing (when the folder exists).
    """
    labels = read_annotation(video.annotation)[:, [TARGETS.index(t) for t in targets]]  # (T, K)
    n = len(labels)
    features, masks = load_features(cache / video.name)
    for m in MODALITIES:
        features[m], masks[m] = fit_length(features[m], masks[m], n)
    if video.frames_dir is not None:
        masks["visual"] = masks["visual"] & frame_presence(video.frames_dir, n)
    return VideoData(video.name, features, masks, labels, fps=cached_fps(cache / video.name))


def at_rate(video: VideoData, fps: float) -> VideoData:
    """``video`` at ``fps`` rows per second: each row the frame nearest to k / fps s (capped at its own rate).

    What ``affectflow run --fps`` feeds the model, so a checkpoint trained this way sees in
    ``affectflow run`` the step its temporal convolutions were trained on. ``annotated`` keeps
    the original frames for scoring.
    """
    if video.fps is None:
        raise DataError(
            f"{video.name}: its features cache records no frame rate; rebuild it with "
            "`affectflow train --affwild2 ROOT` (a new --features-cache) or train at the videos' own rate (--fps 0)"
        )
    if fps >= video.fps:
        frame = np.arange(video.n_frames)
    else:
        n = int(np.floor((video.n_frames - 1) * fps / video.fps)) + 1  # steps k/fps within the video
        frame = np.minimum(np.rint(np.arange(n) * video.fps / fps).astype(np.int64), video.n_frames - 1)
    return VideoData(
        video.name,
        {m: np.asarray(x)[frame] for m, x in video.features.items()},
        {m: mask[frame] for m, mask in video.masks.items()},
        video.labels[frame],
        fps=min(fps, video.fps),
        annotated=AnnotatedFrames(frame, video.labels),
    )


def fit_length(x: np.ndarray, mask: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, D) rows and (n,) mask: extra rows dropped, missing ones zero and masked out."""
    if len(x) >= n:
        return x[:n], mask[:n].astype(bool)
    pad = n - len(x)
    return (
        np.concatenate([x, np.zeros((pad, x.shape[1]), dtype=x.dtype)]),
        np.concatenate([mask.astype(bool), np.zeros(pad, dtype=bool)]),
    )


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    tmp.replace(path)


# -- training windows -----------------------------------------------------------------------


def leave_out(video: VideoData, modalities: tuple[str, ...]) -> VideoData:
    """``video`` with every modality not in ``modalities`` fed as missing (an ablation)."""
    masks = {m: mask if m in modalities else np.zeros_like(mask) for m, mask in video.masks.items()}
    return replace(video, masks=masks)


class WindowDataset(Dataset):
    """Fixed-length training windows over videos, starting every ``hop`` frames (model/windows.py).

    The last window of a video ends at its end; a video shorter than ``seq_len`` is one window
    whose frames past the end are zero and masked out. An item: ``<modality>`` (L, D_m) float32,
    ``<modality>_mask`` (L,) bool, ``labels`` (L, K), ``label_valid`` (L, K) bool, ``video``
    (index into ``videos``) and ``start`` (first frame). Scoring does not use these windows:
    it predicts with model/windows.py's blended half-overlapping windows, as inference does.
    """

    def __init__(self, videos: list[VideoData], seq_len: int, hop: int, modalities: tuple[str, ...] = MODALITIES):
        self.videos, self.seq_len = [leave_out(video, modalities) for video in videos], seq_len
        self.items = [(v, s) for v, video in enumerate(videos) for s in window_starts(video.n_frames, seq_len, hop)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        v, start = self.items[i]
        video = self.videos[v]
        span = slice(start, min(start + self.seq_len, video.n_frames))
        item: dict[str, torch.Tensor | int] = {"video": v, "start": start}
        for m in MODALITIES:
            item[m] = self._pad(np.asarray(video.features[m][span], dtype=np.float32))
            item[f"{m}_mask"] = self._pad(video.masks[m][span])
        labels = video.labels[span]
        item["labels"] = self._pad(labels, fill=INVALID_LABEL)
        item["label_valid"] = self._pad((labels >= -1) & (labels <= 1))
        return item

    def _pad(self, a: np.ndarray, fill: float = 0) -> torch.Tensor:
        out = np.full((self.seq_len, *a.shape[1:]), fill, dtype=a.dtype)
        out[: len(a)] = a
        return torch.from_numpy(out)


def feature_stats(videos: list[VideoData]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-modality mean and std over the valid frames of ``videos`` (the training set)."""
    stats = {}
    for m in MODALITIES:
        total, total_sq, count = 0.0, 0.0, 0
        for video in videos:
            x = np.asarray(video.features[m], dtype=np.float64)[video.masks[m]]  # (T_valid, D)
            total, total_sq, count = total + x.sum(0), total_sq + (x**2).sum(0), count + len(x)
        mean = np.asarray(total) / max(count, 1)
        var = np.asarray(total_sq) / max(count, 1) - mean**2
        std = np.sqrt(np.maximum(var, 0))
        dim = videos[0].features[m].shape[1]
        if count == 0:
            mean, std = np.zeros(dim), np.ones(dim)
        stats[m] = (torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32))
    return stats
