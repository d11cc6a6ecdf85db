"""Which voice is each face's own: audio-visual evidence per (track, speaker), then one global assignment.

Evidence for face track i and diarized speaker s, from the mouth signal (signal.py):

- **contrast**: does i's mouth move more inside s's turns than outside them? 2·AUC − 1 of
  i's mouth activity (the rolling standard deviation of its opening, ``activity_s`` wide)
  at samples inside s's turns against samples outside them (away from them by ``guard_s``):
  1 = always more, 0 = no difference, −1 = always less. Needs ``min_seen_s`` on each side.
- **sync**: does i's mouth open when s's voice is loud? The correlation of i's opening with
  the audio's loudness inside s's turns, the best over mouth leads of 0 to ``max_lead_s``
  (lips lead the sound). Works without any "outside" (one face, one voice, speaking all along).

A pair's score is the mean of the two it has. Every pair whose face's mouth moves inside
the turns (median activity ≥ ``min_activity``), seen long enough and scoring at least
``min_score`` may be linked; ``scipy.optimize.linear_sum_assignment`` then gives each face
at most one voice and each voice at most one face, maximising the total score. A link that
another candidate comes within ``margin`` of is ambiguous and dropped: no guess. A track
left over whose best voice went to a track it never shares the screen with (the same person
after a cut, or re-tracked) takes that voice too. A still face (a photo over speech) has no
mouth evidence, so it is never linked, even when it is the only face and that is the only
voice (docs/speaking.md says why; fusion keeps scene audio for that case).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from affectflow.tasks.records import SpeakerTurn

UNLINKABLE = 1e6  # the cost of a pair that may not be linked


@dataclass(frozen=True)
class LinkRules:
    """The evidence thresholds (SpeakingConfig carries them; measured in docs/speaking.md)."""

    activity_s: float = 0.5  # s, window of the mouth-activity rolling std
    guard_s: float = 0.3  # s around a speaker's turns that count neither inside nor outside
    max_lead_s: float = 0.2  # s, the longest mouth lead over the sound tried by sync
    min_seen_s: float = 1.5  # s of measured mouth needed inside (and, for contrast, outside) the turns
    min_activity: float = 0.006  # median mouth activity inside the turns below which a mouth "does not move"
    min_score: float = 0.35  # a pair scoring less is never linked
    margin: float = 0.15  # a link another candidate comes this close to is ambiguous


@dataclass(frozen=True)
class Evidence:
    track_id: int
    speaker: str
    contrast: float | None  # 2·AUC − 1 of activity inside vs outside the speaker's turns
    sync: float | None  # best correlation of opening with loudness inside the turns
    activity: float  # median mouth activity inside the turns (NaN when never seen there)
    seen_s: float  # s of the speaker's turns during which this face's mouth was measured

    @property
    def score(self) -> float | None:
        parts = [x for x in (self.contrast, self.sync) if x is not None]
        return float(np.mean(parts)) if parts else None


def mouth_activity(opening: np.ndarray, rate: float, window_s: float) -> np.ndarray:
    """(tracks, K) opening → (tracks, K) rolling standard deviation over ``window_s`` (NaN where unseen)."""
    import pandas as pd  # here: 0.2 s at import, for one rolling window

    window = max(round(window_s * rate), 3)
    frame = pd.DataFrame(opening.T.astype(np.float64))
    return frame.rolling(window, center=True, min_periods=window // 2 + 1).std().to_numpy().T


def turn_mask(turns: Sequence[SpeakerTurn], speaker: str | None, t: np.ndarray, widen_s: float = 0.0) -> np.ndarray:
    """(K,) bool: grid times ``t`` inside a turn of ``speaker`` (any speaker when None), widened by ``widen_s``."""
    mask = np.zeros(t.shape, bool)
    for turn in turns:
        if speaker is None or turn.speaker == speaker:
            mask |= (t >= turn.start - widen_s) & (t < turn.end + widen_s)
    return mask


def evidence(
    opening: np.ndarray,
    track_ids: Sequence[int],
    loudness_db: np.ndarray,
    turns: Sequence[SpeakerTurn],
    rate: float,
    rules: LinkRules,
) -> list[Evidence]:
    """Evidence for every (track, speaker) pair; ``opening`` (tracks, K) and ``loudness_db`` (K,) on the grid k / rate."""
    t = np.arange(opening.shape[1]) / rate
    activity = mouth_activity(opening, rate, rules.activity_s)
    from scipy.stats import mannwhitneyu  # here, as below: scipy.stats and .optimize cost every command 0.4 s

    loudness = 10 ** (loudness_db.astype(np.float64) / 20)  # linear: follows the jaw better than dB
    leads = range(0, round(rules.max_lead_s * rate) + 1)
    found = []
    for speaker in sorted({turn.speaker for turn in turns}):
        inside = turn_mask(turns, speaker, t)
        outside = ~turn_mask(turns, speaker, t, rules.guard_s)
        for row, track_id in enumerate(track_ids):
            seen = ~np.isnan(activity[row])
            active_in, active_out = activity[row, inside & seen], activity[row, outside & seen]
            seen_s = active_in.size / rate
            contrast = None
            if seen_s >= rules.min_seen_s and active_out.size / rate >= rules.min_seen_s:
                auc = mannwhitneyu(active_in, active_out).statistic / (active_in.size * active_out.size)
                contrast = float(2 * auc - 1)
            sync = _sync(opening[row], loudness, inside, leads) if seen_s >= rules.min_seen_s else None
            level = float(np.median(active_in)) if active_in.size else float("nan")
            found.append(Evidence(track_id, speaker, contrast, sync, level, seen_s))
    return found


def _sync(opening: np.ndarray, loudness: np.ndarray, inside: np.ndarray, leads: range) -> float | None:
    """The best Pearson correlation of ``opening`` (K,) with ``loudness`` (K,) shifted later by each lead."""
    best = None
    for lead in leads:
        later = np.roll(loudness, -lead)  # loudness `lead` samples after the mouth sample
        use = inside & ~np.isnan(opening)
        if lead:
            use[-lead:] = False
        x, y = opening[use].astype(np.float64), later[use]
        if x.size < 3 or x.std() == 0 or y.std() == 0:
            continue
        r = float(np.corrcoef(x, y)[0, 1])
        best = r if best is None else max(best, r)
    return best


@dataclass
class Assignment:
    links: dict[int, tuple[str, float]]  # track -> (speaker, score)
    ambiguous: set[int]  # tracks whose link was dropped as ambiguous


def assign(found: Sequence[Evidence], together: set[frozenset[int]], rules: LinkRules) -> Assignment:
    """The links the evidence supports (see the module docstring).

    ``together``: pairs of tracks that are on screen at the same time (they cannot share a voice).
    """
    tracks = sorted({e.track_id for e in found})
    speakers = sorted({e.speaker for e in found})
    score = np.full((len(tracks), len(speakers)), np.nan)
    for e in found:
        if _eligible(e, rules):
            score[tracks.index(e.track_id), speakers.index(e.speaker)] = e.score
    result = Assignment({}, set())
    if not np.isfinite(score).any():
        return result
    from scipy.optimize import linear_sum_assignment

    links = result.links
    rows, cols = linear_sum_assignment(np.where(np.isfinite(score), -score, UNLINKABLE))
    for i, j in zip(rows, cols, strict=True):
        if not np.isfinite(score[i, j]):
            continue
        if _ambiguous(score, i, j, tracks, together, rules.margin):
            result.ambiguous.add(tracks[i])
        else:
            links[tracks[i]] = (speakers[j], float(score[i, j]))
    for i, track in enumerate(tracks):  # the same person again: a voice whose face it never meets
        if track in links or not np.isfinite(score[i]).any():
            continue
        j = int(np.nanargmax(score[i]))
        owners = [other for other, (speaker, _) in links.items() if speaker == speakers[j]]
        apart = owners and all(frozenset((track, other)) not in together for other in owners)
        if apart and not _ambiguous(score, i, j, tracks, together, rules.margin, ignore=set(owners)):
            links[track] = (speakers[j], float(score[i, j]))
            result.ambiguous.discard(track)
    return result


def _eligible(e: Evidence, rules: LinkRules) -> bool:
    score = e.score
    return (
        score is not None
        and score >= rules.min_score
        and e.seen_s >= rules.min_seen_s
        and bool(e.activity >= rules.min_activity)
    )


def _ambiguous(
    score: np.ndarray,
    i: int,
    j: int,
    tracks: Sequence[int],
    together: set[frozenset[int]],
    margin: float,
    ignore: set[int] | None = None,
) -> bool:
    """Another voice for track i, or another track on screen with it for voice j, comes within ``margin``."""
    best = score[i, j]
    others = np.delete(score[i], j)
    if np.isfinite(others).any() and np.nanmax(others) > best - margin:
        return True
    for k, track in enumerate(tracks):
        if k == i or track in (ignore or set()) or frozenset((tracks[i], track)) not in together:
            continue
        if np.isfinite(score[k, j]) and score[k, j] > best - margin:
            return True
    return False
