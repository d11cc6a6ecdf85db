"""Each face track's mouth opening, sampled faster than the analysis rate where someone speaks.

Lips move at syllable rate (3–8 Hz), which 5 analysed frames per second cannot follow, so
this pass decodes the video again, at ``SpeakingConfig.rate`` (15 fps), but only in the
spans where a diarized turn is (with a margin): ``tasks/media/frames.iter_frames`` with a
time range, no second decoder. A face is placed in every decoded frame by interpolating
its track's boxes and eye line between the analysed frames (FaceTracks rows, source
pixels), cropped square with a margin, levelled, and run through the face mesh.

Everything lands on one regular grid ``t_k = k / rate`` over the whole video (NaN where
not measured), so the evidence in link.py compares samples by index. The audio's
loudness is put on the same grid.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from affectflow.tasks.media.audio import AUDIO_SAMPLE_RATE
from affectflow.tasks.media.frames import FrameSource, iter_frames
from affectflow.tasks.progress import Hook, no_progress
from affectflow.tasks.records import FaceTracks, MediaInfo, SpeakerTurn
from affectflow.tasks.speaking.mouth import INPUT, FaceMesh, crop_matrix, mouth_opening

Span = tuple[float, float]  # (start, end) s


@dataclass
class MouthSignal:
    """Mouth opening of every track on the grid ``t_k = k / rate`` (NaN where not measured)."""

    rate: float  # samples per second
    track_ids: list[int]  # the rows of ``opening``
    opening: np.ndarray  # (tracks, K) float32: inner-lip distance / face height
    spans: list[Span]  # the decoded time ranges
    n_frames: int = 0  # frames decoded
    n_faces: int = 0  # crops run through the mesh
    decode_s: float = 0.0  # s waiting for decoded frames
    mesh_s: float = 0.0  # s cropping and running the mesh

    @property
    def t(self) -> np.ndarray:
        return np.arange(self.opening.shape[1]) / self.rate


def speech_spans(turns: Sequence[SpeakerTurn], margin_s: float, duration: float) -> list[Span]:
    """The turns widened by ``margin_s`` on each side, clipped to the video and merged where they touch."""
    spans: list[list[float]] = []
    for turn in sorted(turns, key=lambda turn: turn.start):
        start, end = max(turn.start - margin_s, 0.0), min(turn.end + margin_s, duration)
        if end <= start:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    return [(start, end) for start, end in spans]


@dataclass(frozen=True)
class TrackPath:
    """One track's analysed rows: times (n,) s, boxes (n, 4) and eye-line roll (n,) degrees, source pixels."""

    t: np.ndarray
    boxes: np.ndarray
    roll: np.ndarray

    def at(self, t: float, max_gap_s: float, hold_s: float) -> tuple[np.ndarray, float] | None:
        """The box (4,) and roll at ``t``, interpolated between rows; None where the track is not seen."""
        k = int(np.searchsorted(self.t, t))
        before, after = self.t[max(k - 1, 0)], self.t[min(k, len(self.t) - 1)]
        if t < self.t[0] - hold_s or t > self.t[-1] + hold_s:
            return None
        if before <= t <= after and after - before > max_gap_s:
            return None  # the face was lost in between
        box = np.array([np.interp(t, self.t, self.boxes[:, j]) for j in range(4)])
        return box, float(np.interp(t, self.t, self.roll))


def track_paths(faces: FaceTracks) -> dict[int, TrackPath]:
    """Every track's rows in time order (the faces rows are in frame order, tracks interleaved)."""
    track = np.asarray(faces.track_id, int)
    t = np.asarray(faces.t, float)
    boxes = np.stack([faces.x1, faces.y1, faces.x2, faces.y2], axis=1).astype(float).reshape(-1, 4)
    landmarks = np.asarray(faces.landmarks, float).reshape(-1, 10)  # 5 points: two eyes first
    roll = np.degrees(np.arctan2(landmarks[:, 3] - landmarks[:, 1], landmarks[:, 2] - landmarks[:, 0]))
    roll = (roll + 90) % 180 - 90  # the eye line, whichever eye a backend lists first: never upside down
    paths = {}
    for track_id in np.unique(track):
        rows = np.flatnonzero(track == track_id)
        rows = rows[np.argsort(t[rows], kind="stable")]
        paths[int(track_id)] = TrackPath(t[rows], boxes[rows], roll[rows])
    return paths


def measure_mouths(
    video: Path,
    info: MediaInfo,
    faces: FaceTracks,
    spans: Sequence[Span],
    mesh: FaceMesh,
    *,
    rate: float,
    margin: float,
    min_face_logit: float,
    max_gap_s: float,
    max_side: int | None,
    frames: FrameSource = iter_frames,
    hook: Hook = no_progress,
) -> MouthSignal:
    """Decode ``spans`` of ``video`` at ``rate`` and measure each visible track's mouth in every frame."""
    paths = track_paths(faces)
    track_ids = sorted(paths)
    n_samples = int(np.ceil(info.duration_s * rate)) + 1
    signal = MouthSignal(rate, track_ids, np.full((len(track_ids), n_samples), np.nan, np.float32), list(spans))
    hold_s = 0.6 / max(rate, 1e-6) + 0.1  # a face is also placed just before its first and after its last row
    for start, end in spans:
        wanted = [
            (row, paths[track_id])
            for row, track_id in enumerate(track_ids)
            if paths[track_id].t[0] - hold_s <= end and paths[track_id].t[-1] + hold_s >= start
        ]
        if not wanted:
            continue
        waited = time.perf_counter()
        for frame in frames(video, info, rate, max_side=max_side, start=start, end=end):
            now = time.perf_counter()
            signal.decode_s += now - waited
            k = round(frame.t * rate)
            if 0 <= k < n_samples:
                for row, path in wanted:
                    placed = path.at(frame.t, max_gap_s, hold_s)
                    if placed is None:
                        continue
                    box, roll = placed
                    crop = cv2.warpAffine(frame.bgr, crop_matrix(box * frame.scale, roll, margin), (INPUT, INPUT))
                    landmarks, logit = mesh.run(crop)
                    signal.n_faces += 1
                    if logit >= min_face_logit:
                        signal.opening[row, k] = mouth_opening(landmarks)
            signal.n_frames += 1
            if signal.n_frames % 25 == 0:
                hook("speaking", signal.n_frames, None)
            waited = time.perf_counter()
            signal.mesh_s += waited - now
    return signal


def loudness_db(audio: np.ndarray, rate: float, n_samples: int) -> np.ndarray:
    """(samples,) 16 kHz audio → (n_samples,) RMS level in dB over 1 / rate around each grid time."""
    hop = AUDIO_SAMPLE_RATE / rate
    window = round(hop)
    centres = np.round(np.arange(n_samples) * hop).astype(int)
    power = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])  # prefix sums: any window in O(1)
    lo = np.clip(centres - window // 2, 0, audio.size)
    hi = np.clip(centres + window // 2, 0, audio.size)
    mean = (power[hi] - power[lo]) / np.maximum(hi - lo, 1)
    return (10 * np.log10(mean + 1e-10)).astype(np.float32)
