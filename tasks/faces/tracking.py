"""Face tracks: detections of successive analysed frames joined into stable identities.

One Hungarian assignment per frame over every track ever seen. A track seen within
``max_gap_s`` (active) takes a detection whose box overlaps its last box and whose face
does not look like someone else, or whose face clearly is the same person; a lapsed
track takes a detection only by identity (a person who left and came back). Anything
unassigned starts a new track. Two detections of one frame never share a track, so two
people on screen together are never merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_FORBIDDEN = 1e6  # cost of a pairing the rules exclude


@dataclass(frozen=True)
class TrackerConfig:
    match_iou: float = 0.25  # box overlap with an active track's last box that continues it
    min_similarity: float = 0.2  # below this cosine similarity an overlapping box is someone else
    same_person: float = 0.5  # cosine similarity that continues a track whatever the boxes (re-entry)
    max_gap_s: float = 2.0  # a track unseen for longer only comes back by identity
    momentum: float = 0.8  # weight of a track's running embedding against a new one
    continue_iou: float = 0.5  # overlap at which a box continues a track without a new embedding
    refresh_s: float = 1.0  # a continued track's embedding is recomputed at least this often

    def __post_init__(self) -> None:
        for name in ("match_iou", "continue_iou", "momentum"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"tracker {name} must be in [0, 1), got {getattr(self, name)}")
        if not -1.0 <= self.min_similarity <= self.same_person <= 1.0:
            raise ValueError(
                f"tracker similarities must satisfy -1 <= min_similarity <= same_person <= 1, "
                f"got {self.min_similarity} and {self.same_person}"
            )
        if self.continue_iou < self.match_iou:
            raise ValueError(f"tracker continue_iou ({self.continue_iou}) must be >= match_iou ({self.match_iou})")
        if self.max_gap_s <= 0 or self.refresh_s <= 0:
            raise ValueError(
                f"tracker max_gap_s and refresh_s must be positive, got {self.max_gap_s}, {self.refresh_s}"
            )


@dataclass
class Track:
    track_id: int
    box: np.ndarray  # (4,) x1, y1, x2, y2 of the last detection, analysis pixels
    embedding: np.ndarray  # (E,) running identity embedding, L2-normalised
    last_t: float  # s, last frame the track was seen in
    embedded_t: float  # s, last frame that gave it a fresh embedding


class Tracker:
    """Stable track ids for the detections of successive frames (boxes + identity embeddings)."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []  # index == track_id
        self.last_t: float | None = None  # s, the previous frame

    def update(self, t: float, boxes: np.ndarray, embeddings: np.ndarray, fresh: np.ndarray | None = None) -> list[int]:
        """Track ids for one frame's detections: boxes (N, 4), embeddings (N, E) L2-normalised.

        ``fresh`` (N,) bool marks embeddings the recognizer computed for this frame; the
        others are a track's own embedding reused (see ``continued_track``) and do not
        update it.
        """
        from scipy.optimize import linear_sum_assignment  # here: scipy.optimize costs every command 0.2 s at import

        fresh = np.ones(len(boxes), bool) if fresh is None else fresh
        ids = [-1] * len(boxes)
        if self.tracks and len(boxes):
            cost = self._cost(t, boxes, embeddings)  # (T, N)
            for k, n in zip(*linear_sum_assignment(cost), strict=True):
                if cost[k, n] < _FORBIDDEN:
                    ids[n] = int(k)
        for n, track_id in enumerate(ids):
            if track_id < 0:
                ids[n] = len(self.tracks)
                self.tracks.append(Track(ids[n], boxes[n], embeddings[n], t, t))
            else:
                self._extend(self.tracks[track_id], t, boxes[n], embeddings[n], bool(fresh[n]))
        self.last_t = t
        return ids

    def continued_track(self, t: float, boxes: np.ndarray) -> list[Track | None]:
        """Per box (N, 4): the track it continues beyond doubt, if that track's embedding is recent.

        Beyond doubt: the track was in the previous frame, the two boxes overlap by at
        least ``continue_iou``, and neither overlaps anything else by ``match_iou``. Such a
        box can reuse the track's embedding instead of running the recognizer.
        """
        previous = [k for k in self.tracks if k.last_t == self.last_t and t - k.embedded_t < self.config.refresh_s]
        found: list[Track | None] = [None] * len(boxes)
        if not previous or not len(boxes):
            return found
        iou = box_iou(np.stack([k.box for k in previous]), boxes)  # (P, N)
        for n in range(len(boxes)):
            k = int(iou[:, n].argmax())
            alone = (iou[:, n] >= self.config.match_iou).sum() == 1 and (iou[k] >= self.config.match_iou).sum() == 1
            if iou[k, n] >= self.config.continue_iou and alone:
                found[n] = previous[k]
        return found

    def _cost(self, t: float, boxes: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        """(T, N) assignment cost; ``_FORBIDDEN`` where the rules exclude the pairing."""
        config = self.config
        active = np.array([t - k.last_t <= config.max_gap_s for k in self.tracks])[:, None]  # (T, 1)
        iou = box_iou(np.stack([k.box for k in self.tracks]), boxes)  # (T, N)
        similarity = np.stack([k.embedding for k in self.tracks]) @ embeddings.T  # (T, N)
        overlaps = (iou >= config.match_iou) & (similarity >= config.min_similarity)
        same_person = similarity >= config.same_person
        allowed = (active & (overlaps | same_person)) | (~active & same_person)
        # Active tracks first (cost < 2), lapsed ones only when no active track fits (cost >= 2).
        cost = np.where(active, (1.0 - iou) + (1.0 - similarity), 3.0 - similarity)
        return np.where(allowed, cost, _FORBIDDEN)

    def _extend(self, track: Track, t: float, box: np.ndarray, embedding: np.ndarray, fresh: bool) -> None:
        track.box, track.last_t = box, t
        if fresh:
            mean = self.config.momentum * track.embedding + (1.0 - self.config.momentum) * embedding
            track.embedding = mean / (np.linalg.norm(mean) + 1e-9)
            track.embedded_t = t


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
