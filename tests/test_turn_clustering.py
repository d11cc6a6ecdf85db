"""The constrained diarizer's second pass (tasks/speech/turn_clustering.py), without models.

The voices are directions in the embedding space; ``VoiceTags`` stands in for the GE2E
encoder by reading which voice a stretch of generated "audio" carries (its samples hold the
voice's number), so what is measured is the turn logic: units, cannot-links, clustering
weighted by seconds, and the relabelled timeline.
"""

from __future__ import annotations

import numpy as np
import pytest

from affectflow.tasks.records import SpeakerTurn
from affectflow.tasks.speech.agglomeration import Calibration
from affectflow.tasks.speech.turn_clustering import (
    SAMPLE_RATE,
    TurnReclustering,
    TurnUnit,
    cannot_links,
    cluster_units,
    relabel,
    turn_units,
)

pytestmark = pytest.mark.unit

DIRECTIONS = np.linalg.qr(np.random.default_rng(0).normal(size=(256, 6)))[0].T  # (6, 256) orthonormal voices
CALIBRATION = Calibration(np.zeros(256), threshold=0.65, size_bonus=0.6, min_cluster_size=2.0, cannot_tolerance=0.5)


class VoiceTags:
    """Embeds a stretch as its voice's direction plus noise; the stretch's samples hold the voice's number."""

    def __init__(self, noise: float = 0.05) -> None:
        self.rng = np.random.default_rng(1)
        self.noise = noise

    def embeddable(self, speech: np.ndarray) -> bool:
        return len(speech) > 0 and float(np.max(speech)) > 0

    def embed_speeches(self, speeches: list[np.ndarray]) -> np.ndarray:
        out = []
        for speech in speeches:
            voice = int(np.bincount(speech.astype(int)).argmax())  # the stretch's main voice
            vector = DIRECTIONS[voice] + self.noise * self.rng.normal(size=256)
            out.append(vector / np.linalg.norm(vector))
        return np.stack(out)


def audio_of(spans: list[tuple[int, float, float]], duration: float) -> np.ndarray:
    """(num_samples,) with voice v's number in its [start, end) seconds, 0 (silence) elsewhere."""
    audio = np.zeros(round(duration * SAMPLE_RATE), np.float32)
    for voice, start, end in spans:
        audio[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)] = voice
    return audio


def test_units_are_the_parts_of_turns_no_other_speaker_overlaps() -> None:
    turns = [SpeakerTurn("A", 0.0, 3.0), SpeakerTurn("B", 2.5, 6.0), SpeakerTurn("A", 6.1, 6.3)]
    assert turn_units(turns) == [TurnUnit(0, 0.0, 2.5), TurnUnit(1, 3.0, 6.0)]  # the 0.2 s turn is too short
    same_speaker = [SpeakerTurn("A", 0.0, 3.0), SpeakerTurn("A", 2.0, 4.0)]  # a speaker never overlaps itself
    assert turn_units(same_speaker) == [TurnUnit(0, 0.0, 3.0), TurnUnit(1, 2.0, 4.0)]


def test_turns_of_two_first_pass_speakers_that_overlap_are_cannot_linked() -> None:
    turns = [SpeakerTurn("A", 0.0, 3.0), SpeakerTurn("B", 2.5, 6.0), SpeakerTurn("A", 7.0, 9.0)]
    linked = cannot_links(turn_units(turns), turns)
    assert linked.tolist() == [[False, True, False], [True, False, False], [False, False, False]]


def test_a_first_pass_speaker_holding_two_voices_is_split_along_its_turns() -> None:
    # truth: voice 1 at 0–3 s and 8–11 s, voice 2 at 4–7 s and 12–15 s; the first pass heard one speaker
    spans = [(1, 0.0, 3.0), (2, 4.0, 7.0), (1, 8.0, 11.0), (2, 12.0, 15.0)]
    turns = [SpeakerTurn("SPEAKER_00", start, end) for _, start, end in spans]
    out = TurnReclustering(VoiceTags(), CALIBRATION)(audio_of(spans, 16.0), turns)
    assert [(t.speaker, t.start, t.end) for t in out] == [
        ("SPEAKER_00", 0.0, 3.0),
        ("SPEAKER_01", 4.0, 7.0),
        ("SPEAKER_00", 8.0, 11.0),
        ("SPEAKER_01", 12.0, 15.0),
    ]


def test_one_voice_the_first_pass_split_in_two_is_joined_and_short_turns_follow_their_speaker() -> None:
    spans = [(3, 0.0, 4.0), (3, 5.0, 9.0), (3, 10.0, 10.2)]  # the last turn is too short to embed
    turns = [
        SpeakerTurn("SPEAKER_00", 0.0, 4.0),
        SpeakerTurn("SPEAKER_01", 5.0, 9.0),
        SpeakerTurn("SPEAKER_01", 10.0, 10.2),
    ]
    out = TurnReclustering(VoiceTags(), CALIBRATION)(audio_of(spans, 11.0), turns)
    assert {t.speaker for t in out} == {"SPEAKER_00"} and len(out) == 3


def test_a_turn_whose_units_are_two_voices_is_cut_halfway_between_them() -> None:
    # first pass: one long turn of A (0–10 s) with B's short turn inside (4–5 s, wholly overlapped:
    # no unit of its own); A's speech before B is one voice, after it another
    turns = [SpeakerTurn("A", 0.0, 10.0), SpeakerTurn("B", 4.0, 5.0), SpeakerTurn("C", 11.0, 14.0)]
    units = turn_units(turns)
    assert [(u.turn, u.start, u.end) for u in units] == [(0, 0.0, 4.0), (0, 5.0, 10.0), (2, 11.0, 14.0)]
    out = relabel(turns, units, np.array([1, 0, 2]))
    assert [(t.speaker, t.start, t.end) for t in out] == [
        ("SPEAKER_00", 0.0, 4.5),  # speakers are named in order of appearance
        ("SPEAKER_01", 4.0, 5.0),  # B: the nearest voice that is not talking over it (C's)
        ("SPEAKER_02", 4.5, 10.0),
        ("SPEAKER_01", 11.0, 14.0),
    ]


def test_overlapping_turns_stay_apart_even_when_the_voices_sound_alike() -> None:
    rng = np.random.default_rng(2)
    turns = [
        SpeakerTurn("A", 0.0, 3.0),
        SpeakerTurn("B", 2.0, 5.0),
        SpeakerTurn("A", 4.5, 8.0),
        SpeakerTurn("B", 7.5, 11.0),
    ]
    units = turn_units(turns)  # four units, each overlapping the next turn of the other speaker
    alike = DIRECTIONS[0] + 0.01 * rng.normal(size=(len(units), 256))  # one voice by its embeddings
    alike /= np.linalg.norm(alike, axis=1, keepdims=True)
    assert len(set(cluster_units(alike, units, turns, CALIBRATION))) == 2
    no_links = Calibration(np.zeros(256), 0.65, 0.6, 2.0, cannot_tolerance=10.0)
    assert len(set(cluster_units(alike, units, turns, no_links))) == 1


def test_a_short_stray_voice_is_no_speaker_and_the_bounds_are_kept() -> None:
    spans = [(1, 0.0, 5.0), (2, 6.0, 11.0), (1, 12.0, 17.0), (4, 18.0, 19.0), (2, 20.0, 25.0)]
    turns = [SpeakerTurn(f"S{k}", start, end) for k, (_, start, end) in enumerate(spans)]
    units = turn_units(turns)
    embeddings = VoiceTags().embed_speeches(
        [audio_of(spans, 26.0)[round(u.start * 16000) : round(u.end * 16000)] for u in units]
    )
    labels = cluster_units(embeddings, units, turns, CALIBRATION)
    assert len(set(labels)) == 2  # voice 4 speaks 1 s < min_cluster_size (2 s): given to its nearest voice
    assert len(set(cluster_units(embeddings, units, turns, CALIBRATION, min_k=3))) == 3
    assert len(set(cluster_units(embeddings, units, turns, CALIBRATION, max_k=1))) == 1


def test_speech_too_short_or_silent_everywhere_keeps_the_first_pass() -> None:
    turns = [SpeakerTurn("SPEAKER_00", 0.0, 0.3), SpeakerTurn("SPEAKER_01", 1.0, 3.0)]
    silent = np.zeros(4 * SAMPLE_RATE, np.float32)
    assert TurnReclustering(VoiceTags(), CALIBRATION)(silent, turns) == turns


@pytest.mark.parametrize(("weights", "speakers"), [(None, 1), (np.array([25.0, 25.0]), 2)])
def test_the_size_bonus_counts_seconds_of_speech_when_weighted(weights: np.ndarray | None, speakers: int) -> None:
    from affectflow.tasks.speech.agglomeration import merge

    # two embeddings with similarity 0.5: as one embedding each the bonus 0.6 / √1 merges them;
    # as 25 s of speech each it is 0.6 / √25 = 0.12, and 0.62 stays under the threshold 0.65
    unit = np.stack([DIRECTIONS[0], 0.5 * DIRECTIONS[0] + np.sqrt(0.75) * DIRECTIONS[1]])
    clusters = merge(unit, np.array([0, 1]), np.zeros((2, 2), bool), 1, 0.65, 0.6, weights=weights)
    assert len(set(clusters)) == speakers


def test_long_recordings_cluster_their_longest_turns_and_give_every_turn_a_speaker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import affectflow.tasks.speech.turn_clustering as turn_clustering

    monkeypatch.setattr(turn_clustering, "MAX_UNITS", 4)  # n × n similarities: at most 4 units at once here
    sizes = []

    def cluster_calibrated(unit: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        sizes.append(len(unit))
        return original(unit, *args, **kwargs)  # type: ignore[arg-type]

    original = turn_clustering.cluster_calibrated
    monkeypatch.setattr(turn_clustering, "cluster_calibrated", cluster_calibrated)
    spans = [(1 + k % 2, 3.0 * k, 3.0 * k + (2.5 if k < 4 else 1.0)) for k in range(10)]  # two voices alternating
    turns = [SpeakerTurn("SPEAKER_00", start, end) for _, start, end in spans]
    out = TurnReclustering(VoiceTags(), CALIBRATION)(audio_of(spans, 31.0), turns)
    assert len(out) == 10 and [t.speaker for t in out] == ["SPEAKER_00", "SPEAKER_01"] * 5
    assert sizes and max(sizes) == 4  # the four longest turns were clustered, the six short ones assigned
