"""The shared timeline: face gaps, text windows, whose speech each face hears, extractor names.

(RCMA windows: test_model_windows.py.)
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from affectflow.tasks.emotions.infer import EmotionConfig, emotions_backend, emotions_for
from affectflow.tasks.features.text import window_texts
from affectflow.tasks.features.timeline import (
    Extractors,
    FaceRows,
    FeatureError,
    extract_tracks,
    hearings,
    interpolate_rows,
    load_extractors,
    track_grid,
)
from affectflow.tasks.records import Emotions, SpeakerTurn, Speaking, TrackLink

pytestmark = pytest.mark.unit


def test_short_face_gaps_are_interpolated_and_long_ones_masked() -> None:
    row_t = np.array([0.0, 0.2, 0.6, 3.0])  # a 0.4 s gap, then a 2.4 s gap
    x = np.array([[0.0], [1.0], [3.0], [5.0]])
    grid = track_grid(row_t, fps=5.0)
    out, valid = interpolate_rows(row_t, x, grid, max_gap_s=1.0)
    assert grid[0] == 0.0 and grid[-1] == pytest.approx(3.0) and len(grid) == 16
    assert out[2, 0] == pytest.approx(2.0) and valid[2]  # t = 0.4 s, between 1.0 and 3.0
    long_gap = (grid > 0.61) & (grid < 2.99)
    assert not valid[long_gap].any() and (out[long_gap] == 0).all()
    assert valid[~long_gap].all()


def test_text_window_never_takes_words_from_another_moment() -> None:
    word = lambda w, a, b: SimpleNamespace(word=w, start=a, end=b)  # noqa: E731
    words = [word("good", 1.0, 1.3), word("news", 1.3, 1.6), word("later", 9.0, 9.4)]
    texts = window_texts(words, np.array([0.0, 1.2, 2.9, 3.2, 5.0, 9.2]), context_s=1.5)
    assert texts == ["good news", "good news", "news", "", "", "later"]


# A and B talk in turn (overlapping on [3.5, 4)), then silence, then C (a third voice).
TURNS = [SpeakerTurn("A", 0.0, 4.0), SpeakerTurn("B", 3.5, 6.0), SpeakerTurn("C", 8.0, 9.0)]
WORDS = [
    SimpleNamespace(word=w, start=a, end=a + 0.4, speaker=s)
    for w, a, s in [("good", 0.5, "A"), ("day", 1.0, "A"), ("bad", 4.5, "B"), ("news", 5.0, "B"), ("hi", 8.2, "C")]
]
T = np.arange(0, 10, 0.5)  # (20,) s: the times to check


def _rows(*tracks: tuple[int, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Face rows (track_id, t) at 5 fps for each (track, first_t, last_t)."""
    rows = [(k, t) for k, a, b in tracks for t in np.arange(a, b + 1e-9, 0.2)]
    return np.array([k for k, _ in rows]), np.array([t for _, t in rows])


def test_a_linked_face_hears_its_own_voice_and_is_muted_while_others_speak() -> None:
    heard = hearings(*_rows((0, 0, 10), (1, 0, 10)), {0: "A", 1: "B"}, TURNS, WORDS)
    a, b = heard[0], heard[1]
    assert [w.word for w in a.words] == ["good", "day"] and [w.word for w in b.words] == ["bad", "news"]
    assert a.muted(np.array([1.0, 3.7, 4.5, 7.0, 8.5])).tolist() == [False, False, True, False, True]
    # A speaks at 1 s; both at 3.7 s (its own voice is there); B alone at 4.5 s; silence at 7 s; C at 8.5 s
    assert b.muted(np.array([1.0, 3.7, 4.5, 7.0, 8.5])).tolist() == [True, False, False, False, True]


def test_a_face_without_a_voice_hears_the_scene_only_with_one_face_and_one_voice() -> None:
    one_voice = [TURNS[0]]
    alone = hearings(*_rows((0, 0, 10)), {}, one_voice, WORDS[:2])[0]  # one face, one voice, no link
    assert not alone.muted(T).any() and len(alone.words) == 2
    cut = hearings(*_rows((0, 0, 4), (1, 4.2, 10)), {}, one_voice, WORDS[:2])  # a cut: never two faces at once
    assert all(not h.muted(T).any() and len(h.words) == 2 for h in cut.values())
    for voices, turns in [({}, TURNS), ({1: "A"}, one_voice)]:  # one face, three voices; two faces on screen, one voice
        rows = _rows((0, 0, 10)) if not voices else _rows((0, 0, 10), (1, 0, 10))
        listener = hearings(*rows, voices, turns, WORDS)[0]
        speech = np.array([any(turn.start <= t < turn.end for turn in turns) for t in T])
        assert listener.words == [] and (listener.muted(T) == speech).all()  # nobody's speech is its own


def test_without_diarization_the_words_are_the_speech() -> None:
    words = [SimpleNamespace(word="hello", start=1.0, end=1.5, speaker=None)]
    h = hearings(*_rows((0, 0, 5), (1, 0, 5)), {}, None, words)[0]  # two faces, no link
    assert h.muted(np.array([0.5, 1.2, 2.0])).tolist() == [False, True, False] and h.words == []
    single = hearings(*_rows((0, 0, 5)), {}, [], words)[0]  # one face, one (unnamed) voice: the scene
    assert not single.muted(np.array([1.2])).any() and single.words == words


class _Fake:
    """Extractors that show what reached them: audio is all ones, text is its length."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def __call__(self, *args: object) -> object:
        if self.name == "text":
            (texts,) = args
            return np.array([[len(t)] for t in texts], np.float32), np.array([bool(t) for t in texts])
        if self.name == "audio":
            return np.ones((len(args[1]), 1), np.float32)  # type: ignore[arg-type]
        return np.zeros((len(args[0].crops), 1), np.float32)  # type: ignore[attr-defined]


def test_features_of_a_muted_face_are_masked_and_its_text_is_its_own(tmp_path: Path) -> None:
    track_id, t = _rows((0, 0, 9.8), (1, 0, 9.8))
    np.save(tmp_path / "crops.npy", np.zeros((len(t), 112, 112, 3), np.uint8))
    soundfile.write(tmp_path / "a.wav", np.zeros(16000 * 10, np.float32), 16000, subtype="PCM_16")
    faces = FaceRows(track_id, np.round(t * 5).astype(int), t, tmp_path / "crops.npy")
    fake = Extractors(_Fake("visual", 1), _Fake("audio", 1), _Fake("text", 1))
    voices = {0: "A", 1: "B"}
    own = extract_tracks(
        faces, tmp_path / "a.wav", WORDS, fake, 5.0, hearing=hearings(track_id, t, voices, TURNS, WORDS)
    )
    scene = extract_tracks(faces, tmp_path / "a.wav", WORDS, fake, 5.0)
    for track, voice in voices.items():
        tr = own[track]
        muted = hearings(track_id, t, voices, TURNS, WORDS)[track].muted(tr.t)
        assert muted.sum() >= 10  # the other voice's turn (and C's)
        assert (tr.masks["audio"] == ~muted).all() and (tr.features["audio"][muted] == 0).all()
        assert not tr.masks["text"][muted].any() and all(tr.texts[i] == "" for i in np.flatnonzero(muted))
        spoken = " ".join(tr.texts).split()
        assert set(spoken) == {w.word for w in WORDS if w.speaker == voice}  # its own words, nobody else's
        assert scene[track].masks["audio"].all()  # the scene: everything heard, as before
        assert {"good", "bad", "hi"} <= set(" ".join(scene[track].texts).split())


def test_each_face_is_fused_with_its_own_voice_and_carries_it(tmp_path: Path) -> None:
    """emotions_for with the links: own-voice features reach the model, rows say whose face and when it speaks."""
    track_id, t = _rows((0, 0, 9.8), (1, 0, 9.8))
    np.save(tmp_path / "crops.npy", np.zeros((len(t), 112, 112, 3), np.uint8))
    np.save(tmp_path / "embeddings.npy", np.zeros((len(t), 4), np.float32))
    soundfile.write(tmp_path / "a.wav", np.zeros(16000 * 10, np.float32), 16000, subtype="PCM_16")
    faces = FaceRows(track_id, np.round(t * 5).astype(int), t, tmp_path / "crops.npy", tmp_path / "embeddings.npy")
    fake = Extractors(_Fake("visual", 1), _Fake("audio", 1), _Fake("text", 1))
    predictor = SimpleNamespace(  # valence = "text heard", arousal = "audio heard", per step
        model="fake",
        extractors=fake,
        predict=lambda tracks, hook: [
            np.stack([tr.masks["text"], tr.masks["audio"]], 1).astype(float) for tr in tracks
        ],
    )
    links = [TrackLink(k, 0.0, 9.8, 50, v, 0.9, 2.0, "hand-made") for k, v in [(0, "A"), (1, None)]]
    speaking = Speaking(links, (track_id == 0) & (t < 4), TURNS, "hand-made")

    def run(config: EmotionConfig) -> Emotions:
        return emotions_for(faces, tmp_path / "a.wav", WORDS, TURNS, predictor, 5.0, config, speaking=speaking)  # type: ignore[arg-type]

    own = run(EmotionConfig())
    assert own.speaker == ["A" if k == 0 else None for k in track_id]
    assert own.speaking is not None and (own.speaking == speaking.speaking).all()
    a_heard = (t < 4) | ((t >= 6) & (t < 8)) | (t >= 9)  # A's turn, or silence
    np.testing.assert_allclose(own.arousal[track_id == 0], a_heard[track_id == 0], atol=1e-6)  # muted: B or C speak
    speech = (t < 6) | ((t >= 8) & (t < 9))
    np.testing.assert_allclose(own.arousal[track_id == 1], ~speech[track_id == 1], atol=1e-6)  # no voice: all muted
    scene = run(EmotionConfig(audio_scope="scene"))
    assert (
        np.allclose(scene.arousal, 1) and scene.speaker == own.speaker
    )  # everyone hears everything; faces stay theirs
    assert "own voice" in emotions_backend("fake", EmotionConfig())
    assert "scene" in emotions_backend("fake", EmotionConfig(audio_scope="scene"))


def test_the_audio_scope_is_checked() -> None:
    assert EmotionConfig().audio_scope == "own"
    with pytest.raises(ValueError, match="unknown audio_scope 'mine'; choose from own, scene"):
        EmotionConfig(audio_scope="mine")


def test_an_unknown_extractor_name_lists_the_choices() -> None:
    with pytest.raises(FeatureError, match="unknown visual extractor 'vgg'; choose from fer, hsemotion"):
        load_extractors("vgg", "egemaps", "minilm")
