"""The constrained diarizer's second pass: the speakers again, from one voice embedding per turn.

pyannote clusters one GE2E embedding per (5 s window, local speaker): at most three 1.6 s
partials of a window's speech. Those are noisy, and a window's embedding is cut at the
window's edges, not the turn's. Once pyannote has found the turns, each turn's own speech —
the part no other speaker's turn overlaps — is a steadier unit: its embedding averages every
partial of it (one each 0.4 s). Clustering those units again, weighted by their seconds of
speech, is what decides the speakers (docs/speech.md, issue 22: on the benchmark's held-out
half 79.2 % → 92.5 % of counts right, measured on 120 conversations).

The clustering is :func:`~affectflow.tasks.speech.agglomeration.cluster_calibrated` again, as in the window pass (centroid linkage
with a size bonus, in seconds), with cannot-links between the units of turns that overlap in
time (two voices at once are two speakers) and a :class:`Calibration` of its own
(``ge2e_turn_calibration.npz``, chosen on the benchmark's tuning half only). Short turns,
overlapped stretches and turns too short to embed keep their place in the timeline and take
the speaker of their turn's units, else of their first-pass speaker's units, else of the
nearest unit in time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from affectflow.tasks.records import SpeakerTurn
from affectflow.tasks.speech.agglomeration import Calibration, cluster_calibrated, unit_centroids

SAMPLE_RATE = 16000
MIN_UNIT_S = 0.4  # s of a turn's own speech that make a unit: shorter stretches are too short to embed
MIN_OVERLAP_S = 0.05  # s two turns of different first-pass speakers must share to be cannot-linked
MAX_UNITS = 1500  # units clustered at once (similarities are n × n); a longer recording's shorter turns are assigned
TURN_CALIBRATION = Path(__file__).with_name("ge2e_turn_calibration.npz")  # bench_diarization.py --calibrate turns


class SpeechEmbedder(Protocol):
    def embeddable(self, speech: np.ndarray) -> bool: ...

    def embed_speeches(self, speeches: list[np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class TurnUnit:
    """The part of one turn that no other speaker's turn overlaps, in seconds."""

    turn: int  # index into the turns
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class TurnReclustering:
    """Relabel a first-pass diarization from its turns' embeddings (module docstring)."""

    embedder: SpeechEmbedder
    calibration: Calibration

    def __call__(
        self, audio: np.ndarray, turns: list[SpeakerTurn], min_speakers: int = 1, max_speakers: int | None = None
    ) -> list[SpeakerTurn]:
        """audio: (num_samples,) float32 at 16 kHz; turns in seconds → the same stretches, relabelled."""
        units, embeddings = self.embed(audio, turns)
        if not units:
            return turns
        labels = cluster_units(embeddings, units, turns, self.calibration, min_speakers, max_speakers)
        return relabel(turns, units, labels)

    def embed(self, audio: np.ndarray, turns: list[SpeakerTurn]) -> tuple[list[TurnUnit], np.ndarray]:
        """The turns' embeddable units and their (n, 256) embeddings."""
        units = [u for u in turn_units(turns) if self.embedder.embeddable(clip(audio, u))]
        if not units:
            return [], np.zeros((0, 256), np.float32)
        return units, self.embedder.embed_speeches([clip(audio, u) for u in units])


def clip(audio: np.ndarray, unit: TurnUnit) -> np.ndarray:
    return audio[round(unit.start * SAMPLE_RATE) : round(unit.end * SAMPLE_RATE)]


def turn_units(turns: list[SpeakerTurn], min_s: float = MIN_UNIT_S) -> list[TurnUnit]:
    """Each turn's stretches of at least ``min_s`` that no other speaker's turn overlaps, in time order."""
    units = []
    for index, turn in enumerate(turns):
        others = sorted((o.start, o.end) for o in turns if o.speaker != turn.speaker)
        free, cursor = [], turn.start  # the turn minus the others, left to right
        for start, end in others:
            if end <= cursor or start >= turn.end:
                continue
            free.append((cursor, start))
            cursor = max(cursor, end)
        free.append((cursor, turn.end))
        units += [TurnUnit(index, start, end) for start, end in free if end - start >= min_s]
    return sorted(units, key=lambda u: (u.start, u.turn))


def overlap(a: SpeakerTurn, b: SpeakerTurn) -> float:
    """Seconds two turns share (≤ 0: none)."""
    return min(a.end, b.end) - max(a.start, b.start)


def cannot_links(units: list[TurnUnit], turns: list[SpeakerTurn], min_overlap_s: float = MIN_OVERLAP_S) -> np.ndarray:
    """(n, n) bool: the units' turns are of different first-pass speakers and overlap by ``min_overlap_s``."""
    speakers = np.array([turns[u.turn].speaker for u in units])
    starts = np.array([turns[u.turn].start for u in units])
    ends = np.array([turns[u.turn].end for u in units])
    shared = np.minimum(ends[:, None], ends[None]) - np.maximum(starts[:, None], starts[None])  # (n, n) s
    return (speakers[:, None] != speakers[None]) & (shared >= min_overlap_s)


def cluster_units(
    embeddings: np.ndarray,
    units: list[TurnUnit],
    turns: list[SpeakerTurn],
    calibration: Calibration,
    min_k: int = 1,
    max_k: int | None = None,
) -> np.ndarray:
    """Speaker index (n,) of each unit: (n, 256) embeddings centred and clustered as calibrated."""
    centred = embeddings - calibration.centre
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    seconds = np.array([u.seconds for u in units])
    if len(units) > MAX_UNITS:  # n × n similarities: cluster the longest turns, give the rest their nearest speaker
        longest = np.sort(np.argsort(-seconds, kind="stable")[:MAX_UNITS])
        chosen = cluster_units(embeddings[longest], [units[i] for i in longest], turns, calibration, min_k, max_k)
        return np.argmax(unit @ unit_centroids(unit[longest], chosen, seconds[longest]).T, axis=1)
    return cluster_calibrated(
        unit, cannot_links(units, turns), calibration, min(min_k, len(units)), max_k or len(units), seconds
    )


def relabel(turns: list[SpeakerTurn], units: list[TurnUnit], labels: np.ndarray) -> list[SpeakerTurn]:
    """The turns with each unit's speaker; a turn whose units differ is cut halfway between them.

    Speakers are named ``SPEAKER_00``, ``SPEAKER_01`` … in order of first appearance, as pyannote names them.
    """
    seconds = np.array([u.seconds for u in units])
    by_first_pass: dict[str, int] = {}
    for speaker in {t.speaker for t in turns}:
        mine = np.array([turns[u.turn].speaker == speaker for u in units])
        if mine.any():
            by_first_pass[speaker] = int(np.argmax(np.bincount(labels[mine], weights=seconds[mine])))
    middles = np.array([(u.start + u.end) / 2 for u in units])
    of_turn: dict[int, list[tuple[TurnUnit, int]]] = {}
    for u, label in zip(units, labels, strict=True):
        of_turn.setdefault(u.turn, []).append((u, int(label)))
    pieces: list[tuple[int, float, float]] = []
    for index, turn in enumerate(turns):
        own = of_turn.get(index, [])
        if not own:
            fallback = by_first_pass.get(turn.speaker)
            if fallback is None:  # the nearest unit in time whose speaker is not talking over this turn
                talking = {int(labels[k]) for k, u in enumerate(units) if overlap(turns[u.turn], turn) > 0}
                nearest = [int(labels[k]) for k in np.argsort(np.abs(middles - (turn.start + turn.end) / 2))]
                fallback = next((label for label in nearest if label not in talking), nearest[0])
            pieces.append((fallback, turn.start, turn.end))
            continue
        start = turn.start
        for (previous, a), (following, b) in itertools.pairwise(own):
            if a != b:
                cut = (previous.end + following.start) / 2
                pieces.append((a, start, cut))
                start = cut
        pieces.append((own[-1][1], start, turn.end))
    order = {label: rank for rank, label in enumerate(dict.fromkeys(p[0] for p in sorted(pieces, key=lambda p: p[1])))}
    return sorted(
        (SpeakerTurn(f"SPEAKER_{order[label]:02d}", start, end) for label, start, end in pieces),
        key=lambda t: (t.start, t.speaker),
    )
