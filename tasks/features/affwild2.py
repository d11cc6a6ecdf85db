"""Features on a video's own frame grid (Aff-Wild2: one label per video frame), by the pipeline's extractors.

The rules, so a checkpoint trained on these features fits what ``affectflow run`` feeds it:

- the extractors are the pipeline's own (``timeline.load_extractors``, by registry name);
- frame i (0-based) lies at i / fps seconds, fps being the video's own rate;
- visual: the extractor on the release's cropped-aligned face of each frame (112×112 like the
  faces stage's crops); a frame without a face is zero and masked, never interpolated;
- audio: ``timeline.audio_features`` at every frame time (masked past the track's end or without a track);
- text: the words around each frame (``text.window_texts``), masked where nobody speaks.

Audio and text depend only on the soundtrack, so two subjects of one video (``_left`` /
``_right``) share them (``soundtrack``); visual is per subject (``faces_track``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from affectflow.tasks.features import text as features_text
from affectflow.tasks.features.timeline import CHUNK, Extractors, VisualExtractor, audio_features
from affectflow.tasks.features.visual import FaceBatch, FeatureError
from affectflow.tasks.progress import Hook, no_progress

CROP = 112  # px: the faces stage's aligned crop side, which the visual extractors expect


def frame_times(n_frames: int, fps: float) -> np.ndarray:
    """(T,) s: the time of each video frame."""
    return np.arange(n_frames) / fps


def faces_track(
    n_frames: int, faces: Mapping[int, Path], extractor: VisualExtractor, hook: Hook = no_progress
) -> tuple[np.ndarray, np.ndarray]:
    """(T, D) visual features and (T,) mask from ``faces`` {0-based frame: face image}, CHUNK faces at a time."""
    out = np.zeros((n_frames, extractor.dim), np.float32)
    mask = np.zeros(n_frames, bool)
    frames = [f for f in faces if f < n_frames]
    for start in range(0, len(frames), CHUNK):
        chunk = frames[start : start + CHUNK]
        crops = np.stack([read_crop(faces[f]) for f in chunk])  # (≤ CHUNK, 112, 112, 3) uint8 BGR
        out[chunk] = extractor(FaceBatch(crops))
        mask[chunk] = True
        hook("visual", start + len(chunk), len(frames))
    return out, mask


def read_crop(path: Path) -> np.ndarray:
    """(112, 112, 3) uint8 BGR; other sizes are resized (the release's crops are 112×112)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FeatureError(f"{path}: not a readable face image; delete it or re-extract the cropped_aligned folder")
    return image if image.shape[:2] == (CROP, CROP) else cv2.resize(image, (CROP, CROP), interpolation=cv2.INTER_AREA)


def soundtrack(
    n_frames: int,
    fps: float,
    wav: Path | None,
    words: Sequence[Any],
    extractors: Extractors,
    hook: Hook = no_progress,
) -> dict[str, np.ndarray]:
    """Audio and text of every frame: ``audio`` (T, D_a), ``text`` (T, D_t) and their (T,) ``*_mask``.

    ``words`` are the pipeline's transcription (records.Word: start/end in s); without audio none.
    """
    times = frame_times(n_frames, fps)
    audio, audio_mask = audio_features(wav, times, extractors.audio)
    hook("audio", 1, 1)
    texts = features_text.window_texts(list(words), times) if wav is not None else [""] * n_frames
    text, text_mask = extractors.text(texts) if n_frames else (np.zeros((0, extractors.text.dim)), np.zeros(0, bool))
    hook("text", 1, 1)
    return {
        "audio": np.asarray(audio, np.float32),
        "audio_mask": np.asarray(audio_mask, bool),
        "text": np.asarray(text, np.float32),
        "text_mask": np.asarray(text_mask, bool),
    }
