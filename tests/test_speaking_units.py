"""The who-is-speaking rules on synthetic mouth signals: evidence, assignment, the audio-visual split,
and the face-mesh file's lookup.

No model and no media: mouths are made-up openings on the stage's grid (15 samples per
second), voices are turn lists, loudness follows the speaking mouth. Each test states one
rule of tasks/speaking/link.py or split.py and the case that would break it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from affectflow.tasks.records import FaceTracks, SpeakerTurn
from affectflow.tasks.speaking.link import LinkRules, assign, evidence, mouth_activity, turn_mask
from affectflow.tasks.speaking.signal import TrackPath, loudness_db, speech_spans, track_paths
from affectflow.tasks.speaking.split import SplitRules, _next_label, split_turns
from affectflow.tasks.speaking.stage import on_screen_together, speaking_rows

pytestmark = pytest.mark.unit

RATE = 15.0  # mouth samples per second
RULES = LinkRules()


def alternating(speakers: list[str], n_turns: int, turn_s: float = 4.0, pause_s: float = 0.6) -> list[SpeakerTurn]:
    turns, t = [], 0.5
    for k in range(n_turns):
        turns.append(SpeakerTurn(speakers[k % len(speakers)], t, t + turn_s))
        t += turn_s + pause_s
    return turns


def grid(turns: list[SpeakerTurn]) -> np.ndarray:
    return np.arange(int((max(t.end for t in turns) + 1.0) * RATE)) / RATE


def talking(t: np.ndarray, turns: list[SpeakerTurn], voice: str | None, seed: int, rest: float = 0.01) -> np.ndarray:
    """(K,) opening: syllable-rate motion inside ``voice``'s turns, a near-still mouth elsewhere."""
    rng = np.random.default_rng(seed)
    opening = rest + 0.0005 * rng.standard_normal(t.size)
    if voice is not None:
        inside = turn_mask(turns, voice, t)
        syllables = np.abs(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6))) * rng.uniform(0.5, 1.0, t.size)
        opening[inside] += 0.1 * syllables[inside]
    return opening.astype(np.float32)


def loudness_of(t: np.ndarray, mouths: list[np.ndarray], turns: list[SpeakerTurn]) -> np.ndarray:
    """(K,) dB: loud where someone speaks, following the speaking mouth's opening."""
    level = np.full(t.size, 1e-4)
    speech = turn_mask(turns, None, t)
    level[speech] = 0.02 + np.sum([np.clip(m - 0.01, 0, None) for m in mouths], axis=0)[speech]
    return (20 * np.log10(level)).astype(np.float32)


def test_each_face_gets_its_own_voice_and_the_off_screen_voice_none() -> None:
    turns = alternating(["A", "B", "A", "N", "B", "A", "B", "N"], 8)
    t = grid(turns)
    mouths = [talking(t, turns, "A", 0), talking(t, turns, "B", 1)]
    found = evidence(np.stack(mouths), [7, 9], loudness_of(t, mouths, turns), turns, RATE, RULES)
    result = assign(found, {frozenset((7, 9))}, RULES)
    assert {track: speaker for track, (speaker, _) in result.links.items()} == {7: "A", 9: "B"}
    contrast = {(e.track_id, e.speaker): e.contrast for e in found}
    assert contrast[7, "A"] is not None and contrast[7, "A"] > 0.8
    assert all((c or 0) < 0 for (track, speaker), c in contrast.items() if (track, speaker) not in ((7, "A"), (9, "B")))


def test_one_face_speaking_all_along_is_linked_by_sync_alone() -> None:
    turns = [SpeakerTurn("A", 0.0, 20.0)]
    t = grid(turns)
    mouth = talking(t, turns, "A", 2)
    (found,) = evidence(mouth[None], [0], loudness_of(t, [mouth], turns), turns, RATE, RULES)
    assert found.contrast is None and found.sync is not None and found.sync > 0.5
    assert assign([found], set(), RULES).links == {0: ("A", pytest.approx(found.sync))}


def test_a_still_face_is_never_linked_even_as_the_only_face_of_the_only_voice() -> None:
    turns = alternating(["A", "B"], 6)
    t = grid(turns)
    loud = loudness_of(t, [talking(t, turns, "A", 4)], turns)  # someone speaks; this mouth does not move …
    flicker = 0.0015 * (loud - loud.mean()) / loud.std()  # … but its landmarks jitter with the sound (compression)
    still = (talking(t, turns, None, 3) + flicker).astype(np.float32)
    found = evidence(still[None], [0], loud, turns, RATE, RULES)
    evidence_for_a = next(e for e in found if e.speaker == "A")
    assert evidence_for_a.score is not None and evidence_for_a.score > RULES.min_score  # it looks in sync …
    assert evidence_for_a.activity < RULES.min_activity  # … yet the mouth never moves
    assert assign(found, set(), RULES).links == {}


def test_two_faces_moving_alike_in_one_voice_are_ambiguous_and_stay_unlinked() -> None:
    turns = alternating(["A", "B"], 6)
    t = grid(turns)
    a = talking(t, turns, "A", 5)
    twin = a + 0.0005 * np.random.default_rng(6).standard_normal(t.size).astype(np.float32)
    found = evidence(np.stack([a, twin]), [0, 1], loudness_of(t, [a], turns), turns, RATE, RULES)
    result = assign(found, {frozenset((0, 1))}, RULES)
    assert result.links == {} and result.ambiguous == {0}


def test_the_same_person_after_a_cut_keeps_the_voice_on_both_tracks() -> None:
    turns = alternating(["A", "N"], 10)
    t = grid(turns)
    mouth = talking(t, turns, "A", 7)
    first, second = mouth.copy(), mouth.copy()
    first[t >= 23.0], second[t < 23.0] = np.nan, np.nan  # one track before the cut, one after: never together
    found = evidence(np.stack([first, second]), [0, 1], loudness_of(t, [mouth], turns), turns, RATE, RULES)
    assert {k: s for k, (s, _) in assign(found, set(), RULES).links.items()} == {0: "A", 1: "A"}
    together = assign(found, {frozenset((0, 1))}, RULES)  # on screen together, alike: which one speaks?
    assert together.links == {} and together.ambiguous == {0}


def test_evidence_needs_enough_seen_mouth() -> None:
    turns = alternating(["A", "B"], 6)
    t = grid(turns)
    mouth = talking(t, turns, "A", 8)
    mouth[t > 1.5] = np.nan  # seen for one second only
    found = evidence(mouth[None], [0], loudness_of(t, [mouth], turns), turns, RATE, RULES)
    assert all(e.score is None for e in found) and assign(found, set(), RULES).links == {}


def test_two_alternating_faces_split_one_voice_cluster_and_then_link() -> None:
    truth = alternating(["A", "B"], 8)
    t = grid(truth)
    mouths = np.stack([talking(t, truth, "A", 9), talking(t, truth, "B", 10)])
    merged = [SpeakerTurn("SPEAKER_00", x.start, x.end) for x in truth]
    turns, splits = split_turns(mouths, [0, 1], merged, RATE, RULES.activity_s, SplitRules(), {frozenset((0, 1))})
    assert splits == {"SPEAKER_00": ["SPEAKER_00", "SPEAKER_01"]}
    assert [x.speaker for x in turns] == ["SPEAKER_00", "SPEAKER_01"] * 4
    found = evidence(mouths, [0, 1], loudness_of(t, list(mouths), truth), turns, RATE, RULES)
    links = assign(found, {frozenset((0, 1))}, RULES).links
    assert {k: s for k, (s, _) in links.items()} == {0: "SPEAKER_00", 1: "SPEAKER_01"}


def test_a_talking_face_pausing_between_syllables_still_anchors_its_turns() -> None:
    truth = alternating(["A", "B"], 8)
    t = grid(truth)
    mouths = np.stack([talking(t, truth, "A", 9), talking(t, truth, "B", 10)])
    mouths[:, (t % 0.9) < 0.5] = 0.01  # still for half of every 0.9 s: dominance flickers
    merged = [SpeakerTurn("S", x.start, x.end) for x in truth]
    turns, _ = split_turns(mouths, [0, 1], merged, RATE, RULES.activity_s, SplitRules(), {frozenset((0, 1))})
    assert [x.speaker for x in turns] == ["S", "S_1"] * 4


def test_a_merged_turn_is_cut_between_the_faces() -> None:
    truth = [SpeakerTurn("A", 0.5, 4.5), SpeakerTurn("B", 4.6, 9.0)]  # no pause: the diarizer made one turn
    t = grid(truth)
    mouths = np.stack([talking(t, truth, "A", 11), talking(t, truth, "B", 12)])
    turns, _ = split_turns(
        mouths, [0, 1], [SpeakerTurn("S", 0.5, 9.0)], RATE, RULES.activity_s, SplitRules(), {frozenset((0, 1))}
    )
    assert [x.speaker for x in turns] == ["S_1", "S"]  # B speaks longer, so B keeps the label
    assert turns[0].start == 0.5 and turns[1].end == 9.0 and abs(turns[0].end - 4.55) < 0.3


def test_clusters_that_are_one_face_each_and_an_off_screen_voice_are_not_split() -> None:
    turns = alternating(["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"], 9)
    t = grid(turns)
    mouths = np.stack([talking(t, turns, "SPEAKER_00", 13), talking(t, turns, "SPEAKER_01", 14)])
    result, splits = split_turns(mouths, [0, 1], turns, RATE, RULES.activity_s, SplitRules(), {frozenset((0, 1))})
    assert splits == {} and result == turns


def test_turns_a_visible_speaker_watches_with_a_still_mouth_are_split_off_as_another_voice() -> None:
    truth = alternating(["A", "N"], 8)
    t = grid(truth)
    mouth = talking(t, truth, "A", 15)[None]
    merged = [SpeakerTurn("SPEAKER_03", x.start, x.end) for x in truth]
    turns, splits = split_turns(mouth, [0], merged, RATE, RULES.activity_s, SplitRules(), set())
    assert splits == {"SPEAKER_03": ["SPEAKER_03", "SPEAKER_04"]}
    assert [x.speaker for x in turns] == ["SPEAKER_03", "SPEAKER_04"] * 4
    unchanged, none = split_turns(mouth, [0], merged, RATE, RULES.activity_s, SplitRules(off_screen=False), set())
    assert none == {} and unchanged == merged


def test_a_face_that_is_not_seen_does_not_make_its_voice_off_screen() -> None:
    truth = alternating(["A"], 6)
    t = grid(truth)
    mouth = talking(t, truth, "A", 16)
    for turn in truth[3:]:  # the face leaves: in its last turns it is seen only at the start, mouth still
        mouth[(t >= turn.start) & (t < turn.start + 0.6)] = 0.01
        mouth[(t >= turn.start + 0.6) & (t < turn.end + 0.6)] = np.nan
    turns, splits = split_turns(mouth[None], [0], truth, RATE, RULES.activity_s, SplitRules(), set())
    assert splits == {} and turns == truth


def test_next_labels_follow_the_diarizer() -> None:
    assert _next_label(["SPEAKER_00", "SPEAKER_02"]) == "SPEAKER_03"
    assert _next_label(["alice", "bob"]) == "alice_1"
    assert _next_label(["alice", "alice_1"]) == "alice_2"


def test_mouth_activity_is_the_rolling_spread_of_the_opening() -> None:
    opening = np.array([[0.01] * 30 + [0.01, 0.05] * 15, [np.nan] * 60], np.float32)
    activity = mouth_activity(opening, RATE, 0.5)
    assert activity[0, 10] == pytest.approx(0.0, abs=1e-9) and activity[0, 45] > 0.015
    assert np.isnan(activity[1]).all()


def test_speech_spans_widen_merge_and_clip() -> None:
    turns = [SpeakerTurn("A", 0.2, 2.0), SpeakerTurn("B", 2.5, 4.0), SpeakerTurn("A", 8.0, 9.9)]
    assert speech_spans(turns, 0.5, 10.0) == [(0.0, 4.5), (7.5, 10.0)]
    assert speech_spans([], 0.5, 10.0) == []


def faces_rows(rows: Sequence[tuple[int, int, float, tuple[float, float, float, float]]]) -> FaceTracks:
    """FaceTracks of (track, frame, t, box) rows, eyes level (no files: nothing reads crops here)."""
    tracks = FaceTracks([], [], [], [], [], [], [], [], [], None, None, "test", 0)  # type: ignore[arg-type]
    for track, frame, t, (x1, y1, x2, y2) in rows:
        tracks.track_id.append(track)
        tracks.frame.append(frame)
        tracks.t.append(t)
        for name, value in zip(("x1", "y1", "x2", "y2"), (x1, y1, x2, y2), strict=True):
            getattr(tracks, name).append(value)
        tracks.score.append(0.9)
        tracks.landmarks.append([x2 - 3, y1 + 3, x1 + 3, y1 + 3, 0, 0, 0, 0, 0, 0])  # eyes listed right to left
    return tracks


def test_tracks_are_placed_between_their_rows_and_not_across_gaps() -> None:
    faces = faces_rows(
        [
            (0, 0, 0.0, (0, 0, 10, 10)),
            (1, 0, 0.0, (50, 0, 60, 10)),
            (0, 5, 0.2, (10, 0, 20, 10)),
            (0, 50, 2.0, (0, 0, 10, 10)),
        ]
    )
    paths = track_paths(faces)
    box, roll = paths[0].at(0.1, max_gap_s=0.5, hold_s=0.1)  # type: ignore[misc]
    assert box.tolist() == pytest.approx([5, 0, 15, 10]) and roll == pytest.approx(0.0)
    assert paths[0].at(1.0, max_gap_s=0.5, hold_s=0.1) is None  # lost between 0.2 s and 2.0 s
    assert paths[1].at(0.05, max_gap_s=0.5, hold_s=0.1) is not None and paths[1].at(0.5, 0.5, 0.1) is None
    assert isinstance(paths[0], TrackPath) and on_screen_together(faces) == {frozenset((0, 1))}


def test_a_face_speaks_where_its_own_voice_has_a_turn() -> None:
    faces = faces_rows([(0, k, k / 5, (0, 0, 10, 10)) for k in range(20)] + [(1, 3, 0.6, (50, 0, 60, 10))])
    turns = [SpeakerTurn("A", 1.0, 2.0), SpeakerTurn("B", 0.0, 4.0)]
    speaking = speaking_rows(faces, {0: ("A", 0.9)}, turns)
    times = np.asarray(faces.t)
    assert speaking.tolist() == ((times >= 1.0) & (times < 2.0) & (np.asarray(faces.track_id) == 0)).tolist()


def test_loudness_is_the_level_of_the_audio_around_each_sample() -> None:
    sample_rate = 16_000
    tone = np.zeros(sample_rate * 2, np.float32)
    tone[sample_rate:] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(sample_rate) / sample_rate)
    level = loudness_db(tone, RATE, 30)
    assert level[5] < -90 and level[20] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.5)


def test_the_face_mesh_file_comes_from_the_wheel_or_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from affectflow.tasks.settings import SettingsError
    from affectflow.tasks.speaking import mouth

    monkeypatch.setenv("AFFECTFLOW_FACE_MESH", str(tmp_path / "nowhere.tflite"))
    with pytest.raises(SettingsError, match=r"AFFECTFLOW_FACE_MESH=.*no such file"):
        mouth.mesh_path()
    (tmp_path / "mesh.tflite").write_bytes(b"")
    monkeypatch.setenv("AFFECTFLOW_FACE_MESH", str(tmp_path / "mesh.tflite"))
    assert mouth.mesh_path() == tmp_path / "mesh.tflite"
    monkeypatch.delenv("AFFECTFLOW_FACE_MESH")

    def missing(name: str) -> None:
        raise mouth.PackageNotFoundError(name)

    monkeypatch.setattr(mouth, "distribution", missing)
    with pytest.raises(mouth.FaceMeshMissingError, match=r"pip install --no-deps mediapipe==0\.10\.14"):
        mouth.mesh_path()
