"""The records the stages hand each other, typed once (whisperx's schema.py is the model).

Small frozen facts and paths only: frames stream from ffmpeg, crops and embeddings sit in
``.npy`` files in the video's work dir. Times are seconds from the start of the video,
``frame`` is an index into the source video, boxes are source pixels unless noted.
Turning records into table rows is ``storage/tables.py``'s job, beside the schemas.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class SourceFile:
    uri: str
    size_bytes: int
    version: str  # mtime (local) or ETag (object stores): changes when the bytes change

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class StagedVideo:
    path: Path  # local copy (or the original file when it is already local)
    uri: str  # where it came from
    sha256: str  # content hash of the whole file
    size_bytes: int

    @property
    def video_id(self) -> str:
        """One id per source file and version: a hash of its URI and of its bytes.

        Two files with the same bytes are two videos (each its own rows, so changing or
        removing one never touches the other's); a file whose bytes change gets a new id.
        """
        return hashlib.sha256(f"{self.uri}\n{self.sha256}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    fps: float  # average frame rate of the video stream
    width: int  # displayed size (rotation applied)
    height: int
    n_frames: int  # counted by the container, else estimated from duration × fps
    has_audio: bool
    audio_duration_s: float | None
    rotation: int  # degrees, from the display matrix; ffmpeg auto-rotates frames


@dataclass(frozen=True)
class Frame:
    index: int  # frame index in the source video
    t: float  # seconds from the start
    bgr: np.ndarray  # (H, W, 3) uint8, OpenCV channel order, at analysis size
    scale: float  # analysis pixels per source pixel (boxes / scale = source pixels)


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
    embeddings_path: Path  # .npy (N, E) float32, L2-normalised (see the module docstring)
    backend: str
    n_frames_analysed: int


@dataclass(frozen=True)
class SpeakerTurn:
    speaker: str
    start: float  # seconds
    end: float


@dataclass
class Diarization:
    turns: list[SpeakerTurn]
    backend: str  # backend + weights, recorded in the output's model column


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds
    end: float
    score: float | None  # alignment / decoding probability in [0, 1]
    segment: int  # index of the VAD chunk (≤ 30 s) the word was decoded in
    speaker: str | None = None


@dataclass
class Transcript:
    words: list[Word]
    language: str
    backend: str  # ASR + VAD + weights, recorded in the output's model column
    alignment: str  # how word times were found


@dataclass(frozen=True)
class TrackLink:
    """One face track and its own voice: the ``tracks`` table's row (who is speaking)."""

    track_id: int
    first_t: float  # s, the track's first analysed face
    last_t: float  # s, its last
    n_faces: int  # face rows of the track
    speaker: str | None  # the diarized label of this face's own voice; None when it has none (listener, no audio)
    link_score: float | None  # evidence for the link (higher is surer; None when not linked)
    speaking_s: float  # seconds this face speaks
    method: str  # how the link was found (e.g. "mouth-activity", "only-face-only-voice")


@dataclass
class Speaking:
    """The who-is-speaking stage's result: each track's link, and per face row whether it speaks."""

    links: list[TrackLink]
    speaking: np.ndarray  # (N,) bool, row-aligned with FaceTracks: this face is the one speaking at t
    turns: list[SpeakerTurn]  # the diarization's turns, split along the faces where audio+video disagreed
    backend: str  # mouth model + evidence rule, recorded in videos.backends


@dataclass
class Emotions:
    """The stage's result: one row per face row of every track."""

    model: str
    track_id: np.ndarray  # (N,) int
    frame: np.ndarray  # (N,) source frame index
    t: np.ndarray  # (N,) s
    valence: np.ndarray  # (N,) in [-1, 1]
    arousal: np.ndarray  # (N,) in [-1, 1]
    speaker: list[str | None]  # (N,) this face's own voice (its track's linked speaker), None when it has none
    speaking: np.ndarray | None = None  # (N,) bool: this face is the one speaking at t; None: not determined
