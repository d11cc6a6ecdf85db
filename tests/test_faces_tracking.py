"""The tracker on synthetic boxes and identity embeddings: ids survive gaps, people never merge."""

from __future__ import annotations

import numpy as np
import pytest

from affectflow.tasks.faces.tracking import Tracker, TrackerConfig, box_iou

pytestmark = pytest.mark.unit

DIM = 128
FPS = 5.0


PEOPLE = np.linalg.qr(np.random.default_rng(0).normal(size=(DIM, DIM)))[0].T  # (DIM, DIM) orthonormal rows


def person(k: int) -> np.ndarray:
    """Identity ``k``: different people are orthogonal (cos 0), as unrelated faces roughly are."""
    return PEOPLE[k]


def seen(identity: np.ndarray, seed: int, noise: float = 0.5) -> np.ndarray:
    """One noisy observation of ``identity`` (cos to it ~0.9 at noise 0.5, to others ~±0.05)."""
    vector = identity + noise * np.random.default_rng(seed).normal(size=DIM) / np.sqrt(DIM)
    return vector / np.linalg.norm(vector)


def box(x: float, y: float = 100.0, side: float = 80.0) -> np.ndarray:
    return np.array([x, y, x + side, y + side], np.float32)


def step(tracker: Tracker, t: float, faces: list[tuple[np.ndarray, np.ndarray]]) -> list[int]:
    boxes = np.array([b for b, _ in faces], np.float32).reshape(-1, 4)
    embeddings = np.array([e for _, e in faces], np.float32).reshape(-1, DIM)
    return tracker.update(t, boxes, embeddings)


def test_a_face_moving_steadily_keeps_one_id() -> None:
    tracker, alice = Tracker(), person(1)
    ids = [step(tracker, k / FPS, [(box(100 + 8 * k), seen(alice, k))]) for k in range(50)]
    assert ids == [[0]] * 50


def test_missed_detections_within_the_gap_keep_the_id() -> None:
    tracker, alice = Tracker(), person(1)
    ids = []
    for k in range(30):
        missed = k % 4 == 3 or 10 <= k < 17  # single misses and a 1.4 s hole
        ids += step(tracker, k / FPS, [] if missed else [(box(100 + 4 * k), seen(alice, k))])
    assert set(ids) == {0}


def test_a_face_that_jumps_during_a_short_gap_keeps_its_id_by_identity() -> None:
    tracker, alice = Tracker(), person(1)
    first = step(tracker, 0.0, [(box(50), seen(alice, 0))])
    after = step(tracker, 1.0, [(box(400), seen(alice, 1))])  # no overlap at all
    assert first == after == [0]


def test_a_person_who_leaves_and_returns_gets_the_old_id() -> None:
    tracker, alice = Tracker(), person(1)
    before = [step(tracker, k / FPS, [(box(100 + 4 * k), seen(alice, k))])[0] for k in range(10)]
    back = [step(tracker, 10.0 + k / FPS, [(box(500 - 4 * k), seen(alice, 100 + k))])[0] for k in range(10)]
    assert set(before) == set(back) == {0}


def test_a_new_person_in_the_same_place_gets_a_new_id() -> None:
    tracker, alice, bob = Tracker(), person(1), person(2)
    first = step(tracker, 0.0, [(box(100), seen(alice, 0))])
    cut = step(tracker, 0.2, [(box(100), seen(bob, 1))])  # same box, someone else
    assert first == [0] and cut == [1]


def test_a_stranger_after_a_long_absence_is_not_given_the_old_id() -> None:
    tracker, alice, bob = Tracker(), person(1), person(2)
    step(tracker, 0.0, [(box(100), seen(alice, 0))])
    assert step(tracker, 10.0, [(box(100), seen(bob, 1))]) == [1]


def test_two_faces_in_one_frame_never_share_an_id_even_when_they_look_alike() -> None:
    tracker, alice = Tracker(), person(1)
    step(tracker, 0.0, [(box(100), seen(alice, 0))])
    twins = step(tracker, 0.2, [(box(100), seen(alice, 1)), (box(300), seen(alice, 2))])
    assert sorted(twins) == [0, 1]


def test_two_people_keep_their_ids_when_they_cross() -> None:
    tracker, alice, bob = Tracker(), person(1), person(2)
    for k in range(21):  # alice walks right, bob left; their boxes overlap around k = 10
        ids = step(tracker, k / FPS, [(box(100 + 20 * k), seen(alice, k)), (box(500 - 20 * k), seen(bob, 50 + k))])
        assert ids == [0, 1], f"frame {k}: {ids}"


def test_returning_people_are_told_apart_by_identity() -> None:
    tracker, alice, bob = Tracker(), person(1), person(2)
    assert step(tracker, 0.0, [(box(100), seen(alice, 0)), (box(300), seen(bob, 1))]) == [0, 1]
    # Both leave; they come back 5 s later on swapped sides.
    assert step(tracker, 5.0, [(box(100), seen(bob, 2)), (box(300), seen(alice, 3))]) == [1, 0]


def test_continued_track_only_when_beyond_doubt_and_recent() -> None:
    tracker, alice, bob = Tracker(), person(1), person(2)
    step(tracker, 0.0, [(box(100), seen(alice, 0)), (box(400), seen(bob, 1))])
    found = tracker.continued_track(0.2, np.stack([box(104), box(250), box(402), box(440)]))
    assert [k.track_id if k else None for k in found] == [0, None, None, None]  # 402 and 440 both overlap bob
    stale = tracker.continued_track(0.2 + tracker.config.refresh_s, np.stack([box(100)]))
    assert stale == [None]  # alice's embedding is older than refresh_s: compute a new one


def test_reused_embeddings_do_not_update_the_track() -> None:
    tracker, alice = Tracker(), person(1)
    step(tracker, 0.0, [(box(100), seen(alice, 0))])
    before = tracker.tracks[0].embedding.copy()
    reused = seen(alice, 1)[None]  # alice, but not the track's own vector: an update would move it
    assert tracker.update(0.2, box(102)[None], reused, fresh=np.array([False])) == [0]
    track = tracker.tracks[0]
    assert np.array_equal(track.embedding, before) and track.embedded_t == 0.0
    assert np.array_equal(track.box, box(102)) and track.last_t == 0.2  # the box still follows the face
    assert tracker.update(0.4, box(104)[None], reused, fresh=np.array([True])) == [0]
    assert not np.allclose(track.embedding, before) and track.embedded_t == 0.4  # a fresh one does update


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.8])
def test_the_running_embedding_turns_towards_each_fresh_one_by_the_momentum(momentum: float) -> None:
    """Checked with plane geometry: every embedding lies in the plane of two orthonormal people.

    The track starts at angle 0 (alice); each fresh embedding is at 60° from her. The running
    embedding is the normalised weighted mean ``momentum · running + (1 - momentum) · new``,
    whose angle follows from the two vectors' 2-D coordinates.
    """
    tracker, alice, other = Tracker(TrackerConfig(momentum=momentum)), person(1), person(2)
    new = np.array([np.cos(np.radians(60)), np.sin(np.radians(60))])  # (alice, other) coordinates
    step(tracker, 0.0, [(box(100), alice)])
    expected = np.array([1.0, 0.0])  # the running embedding, same coordinates
    for k in range(1, 4):
        assert step(tracker, k / FPS, [(box(100), new[0] * alice + new[1] * other)]) == [0]
        mean = momentum * expected + (1 - momentum) * new
        expected = mean / np.hypot(*mean)
        embedding = tracker.tracks[0].embedding
        np.testing.assert_allclose([embedding @ alice, embedding @ other], expected, atol=1e-6)
        np.testing.assert_allclose(np.linalg.norm(embedding), 1.0, atol=1e-6)


def test_box_iou() -> None:
    iou = box_iou(np.stack([box(0, 0, 10)]), np.stack([box(0, 0, 10), box(5, 0, 10), box(20, 0, 10)]))
    assert np.allclose(iou, [[1.0, 1 / 3, 0.0]], atol=1e-6)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"match_iou": 1.5}, "match_iou"),
        ({"min_similarity": 0.6, "same_person": 0.5}, "min_similarity <= same_person"),
        ({"continue_iou": 0.1}, "continue_iou"),
        ({"max_gap_s": 0}, "max_gap_s"),
        ({"momentum": -0.1}, "momentum"),
    ],
)
def test_bad_tracker_settings_are_refused_with_the_setting_named(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrackerConfig(**settings)
