"""Split a voice cluster along the faces when its turns are not all one face's (issue 22 item 3).

Diarization counts voices from audio alone and sometimes hears two similar voices as one.
When one cluster's turns are spoken, in alternation, by two faces on screen together — one
face's mouth clearly moves while the other's is still, then the other way round — the
faces are the better count. At every mouth sample inside the cluster's turns, a face
*dominates* when its mouth activity is at least ``active`` and ``ratio`` times every other
measured face's. Runs of one dominant face (interruptions shorter than ``close_s`` closed) of
at least ``min_piece_s`` anchor it; a turn is
cut halfway between anchors of different faces, and a stretch of ``min_gap_s`` or more that
no face anchors becomes a piece of its own.

If two or more faces each dominate at least ``min_face_s`` of the cluster, the face with the
most keeps the label and each other face's pieces get the next free label. With
``off_screen``, the pieces that every such face watched (measured through ``min_seen`` of
the piece) with a still mouth also get a label of their own when they add up to
``min_face_s``: a voice nobody on screen speaks, merged into a visible speaker's cluster.
Nothing else changes: a cluster spoken by one face, by no face, or by faces that never
alternate keeps its turns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from affectflow.tasks.records import SpeakerTurn
from affectflow.tasks.speaking.link import mouth_activity

PYANNOTE_LABEL = re.compile(r"SPEAKER_(\d+)")


@dataclass(frozen=True)
class SplitRules:
    enabled: bool = True
    active: float = 0.012  # mouth activity (rolling std of the opening) of a face that is talking
    ratio: float = 3.0  # ... and that many times the activity of every other face measured then
    min_piece_s: float = 1.0  # s, shortest run of one dominant face that anchors it
    min_face_s: float = 2.0  # s a second face (or the off-screen part) must have before the cluster is split
    min_gap_s: float = 1.5  # s without an anchor inside a turn that make a piece of their own
    close_s: float = 0.4  # s: a face's dominance interrupted for less than this counts as unbroken
    off_screen: bool = True  # also split off the turns its faces watch with still mouths (another, unseen voice)
    still: float = 0.006  # mouth activity under which a measured mouth is still
    min_seen: float = 0.8  # part of a piece a face must be measured in to count as watching it


def split_turns(
    opening: np.ndarray,
    track_ids: Sequence[int],
    turns: Sequence[SpeakerTurn],
    rate: float,
    activity_s: float,
    rules: SplitRules,
    together: set[frozenset[int]],
) -> tuple[list[SpeakerTurn], dict[str, list[str]]]:
    """The turns with clusters split along faces, and {split label: the labels it became}.

    ``opening`` (tracks, K) is the mouth signal on the grid k / ``rate``; ``together`` the
    pairs of tracks that are on screen at the same time.
    """
    turns = list(turns)
    if not rules.enabled or not len(track_ids) or not turns:
        return turns, {}
    activity = mouth_activity(opening, rate, activity_s)  # (tracks, K)
    dominant = _dominant(activity, rules)  # (K,) row of the dominant face, -1
    taken = sorted({turn.speaker for turn in turns})
    result: list[SpeakerTurn] = []
    splits: dict[str, list[str]] = {}
    for speaker in sorted({turn.speaker for turn in turns}):
        own = [turn for turn in turns if turn.speaker == speaker]
        pieces = [piece for turn in own for piece in _pieces(turn, dominant, rate, rules)]
        owners = _owners(pieces, track_ids, together, rules.min_face_s)
        silent = [k for k, (start, end, row) in enumerate(pieces) if row < 0 and owners and rules.off_screen]
        silent = [k for k in silent if all(_still(activity[o], *pieces[k][:2], rate, rules) for o in owners)]
        if sum(pieces[k][1] - pieces[k][0] for k in silent) < rules.min_face_s:
            silent = []
        if len(owners) < 2 and not silent:
            result += own
            continue
        names = {owners[0]: speaker}
        for row in [*owners[1:], -2 if silent else None]:
            if row is not None:
                names[row] = _next_label(taken)
                taken.append(names[row])
        splits[speaker] = list(names.values())
        rows = [-2 if k in silent else row for k, (_, _, row) in enumerate(pieces)]
        result += [
            SpeakerTurn(names.get(row, speaker), start, end) for (start, end, _), row in zip(pieces, rows, strict=True)
        ]
    return sorted(result, key=lambda turn: (turn.start, turn.speaker)), splits


def _owners(
    pieces: Sequence[tuple[float, float, int]], track_ids: Sequence[int], together: set[frozenset[int]], min_s: float
) -> list[int]:
    """Rows of the faces that dominate at least ``min_s`` of the pieces, most first; each on screen with the others."""
    time_of: dict[int, float] = {}
    for start, end, row in pieces:
        if row >= 0:
            time_of[row] = time_of.get(row, 0.0) + end - start
    owners: list[int] = []
    for row in sorted((r for r, s in time_of.items() if s >= min_s), key=lambda r: -time_of[r]):
        if all(frozenset((track_ids[row], track_ids[o])) in together for o in owners):
            owners.append(row)
    return owners


def _still(activity: np.ndarray, start: float, end: float, rate: float, rules: SplitRules) -> bool:
    """The face was measured through most of [start, end) and its mouth did not move."""
    seen = activity[int(np.ceil(start * rate)) : int(np.floor(end * rate)) + 1]
    measured = seen[~np.isnan(seen)]
    return bool(measured.size >= rules.min_seen * max(seen.size, 1) and np.median(measured) < rules.still)


def _dominant(activity: np.ndarray, rules: SplitRules) -> np.ndarray:
    """(tracks, K) activity → (K,) the row of the face dominating each sample, -1 where none does."""
    filled = np.where(np.isnan(activity), -np.inf, activity)
    order = np.argsort(-filled, axis=0)
    top = np.take_along_axis(filled, order[:1], axis=0)[0]
    second = np.take_along_axis(filled, order[1:2], axis=0)[0] if len(filled) > 1 else np.full_like(top, -np.inf)
    wins = (top >= rules.active) & (top >= rules.ratio * np.maximum(second, 0.0))
    return np.where(wins, order[0], -1)


def _pieces(turn: SpeakerTurn, dominant: np.ndarray, rate: float, rules: SplitRules) -> list[tuple[float, float, int]]:
    """The turn as (start, end, row) pieces: one per anchor (a face dominating ≥ ``min_piece_s``), cut
    halfway between anchors, plus a piece with row -1 for each stretch of ≥ ``min_gap_s`` no face anchors."""
    first, last = int(np.ceil(turn.start * rate)), min(int(np.floor(turn.end * rate)), dominant.size - 1)
    if last < first:
        return [(turn.start, turn.end, -1)]
    rows = dominant[first : last + 1]
    change = np.flatnonzero(np.diff(rows)) + 1
    runs = [(s, e, int(rows[s])) for s, e in zip([0, *change], [*change, rows.size], strict=True)]
    runs = _closed(runs, rules.close_s * rate)
    gap = rules.min_gap_s * rate  # samples
    anchors: list[tuple[float, float, int]] = []
    for s, e, row in runs:
        if row < 0 or (e - s) / rate < rules.min_piece_s:
            continue
        if anchors and anchors[-1][2] == row and s - anchors[-1][1] < gap:
            anchors[-1] = (anchors[-1][0], e, row)  # the same face after a short pause
        else:
            anchors.append((s, e, row))
    times = [((first + s) / rate, (first + e) / rate, row) for s, e, row in anchors]
    pieces: list[tuple[float, float, int]] = []
    cursor = turn.start
    for start, end, row in times:
        if start - cursor >= rules.min_gap_s:  # a long stretch no face anchors: a piece of its own
            pieces.append((cursor, start, -1))
        elif pieces:  # a short stretch after the previous anchor: halved between the two
            start = (cursor + start) / 2
            pieces[-1] = (pieces[-1][0], start, pieces[-1][2])
        else:  # a short stretch at the turn's start: this anchor's
            start = cursor
        pieces.append((start, end, row))
        cursor = end
    if not pieces:
        return [(turn.start, turn.end, -1)]
    if turn.end - cursor >= rules.min_gap_s:
        pieces.append((cursor, turn.end, -1))
    else:
        pieces[-1] = (pieces[-1][0], turn.end, pieces[-1][2])
    return pieces


def _closed(runs: list[tuple[int, int, int]], shortest: float) -> list[tuple[int, int, int]]:
    """Runs (start, end, row) with short flickers (< ``shortest`` samples) inside one face's run joined to it."""
    joined: list[tuple[int, int, int]] = []
    for k, (s, e, row) in enumerate(runs):
        between = 0 < k < len(runs) - 1 and runs[k - 1][2] == runs[k + 1][2] >= 0
        if between and e - s < shortest:
            row = runs[k - 1][2]
        if joined and joined[-1][2] == row:
            joined[-1] = (joined[-1][0], e, row)
        else:
            joined.append((s, e, row))
    return joined


def _next_label(taken: Sequence[str]) -> str:
    """The next free diarizer-style label: SPEAKER_NN after the largest NN (else the first label + _1, _2 …)."""
    numbers = [int(m.group(1)) for label in taken if (m := PYANNOTE_LABEL.fullmatch(label))]
    if numbers and len(numbers) == len(taken):
        return f"SPEAKER_{max(numbers) + 1:02d}"
    base = sorted(taken)[0] if taken else "SPEAKER"
    suffix = 1
    while f"{base}_{suffix}" in taken:
        suffix += 1
    return f"{base}_{suffix}"
