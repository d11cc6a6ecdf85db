"""The teacher ensemble: published placements, lexicon valence, prosodic arousal, averaging."""

from __future__ import annotations

import numpy as np
import pytest

from affectflow.flows.distill import Utterance, synthesize
from affectflow.tasks.emotions.teachers import circumplex, teacher_va, voice_arousal, words_valence
from affectflow.tasks.features.audio import EGeMAPSProsody
from affectflow.tasks.features.timeline import TrackFeatures
from affectflow.tasks.features.visual import FER_CLASSES

pytestmark = pytest.mark.models


def logits_for(name: str, strength: float = 8.0) -> np.ndarray:
    """(1, 135) FER features whose class logits say ``name``."""
    x = np.zeros((1, 128 + 7), np.float32)
    x[0, 128 + FER_CLASSES.index(name)] = strength
    return x


def test_expression_classes_sit_in_their_circumplex_quadrants() -> None:
    va = dict(zip(FER_CLASSES, circumplex(), strict=True))
    assert va["happy"][0] > 0.7 and abs(va["happy"][1]) < 0.2
    assert va["angry"][0] < 0 < va["angry"][1] and va["fear"][0] < 0 < va["fear"][1]
    assert va["sad"][0] < 0 and va["sad"][1] < 0
    assert va["surprise"][1] > 0.7 and va["disgust"][0] < 0
    assert (va["neutral"] == 0).all()
    assert np.abs(circumplex()).max() <= 0.8 + 1e-9


def test_vader_scores_positive_words_above_negative_and_silence_not_at_all() -> None:
    valence, spoken = words_valence(["what a wonderful happy day", "this is awful and sad", ""])
    assert valence[0] > 0.5 > -0.5 > valence[1]
    assert spoken.tolist() == [True, True, False]


def test_loud_fast_high_speech_is_more_aroused_than_soft_slow_low_speech() -> None:
    text = "the children played football in the park after school"
    excited = synthesize(Utterance(text, "en-us+m3", 80, 230, 180))
    calm = synthesize(Utterance(text, "en-us+m3", 20, 120, 50))
    extractor = EGeMAPSProsody()
    a, a_ok = voice_arousal(extractor(excited, np.array([1.0])))
    b, b_ok = voice_arousal(extractor(calm, np.array([1.0])))
    assert a_ok[0] and b_ok[0] and a[0] > b[0] + 0.5


def test_the_ensemble_averages_only_the_teachers_that_have_an_opinion() -> None:
    visual = np.concatenate([logits_for("happy"), logits_for("happy"), logits_for("sad")])  # (3, 135)
    audio = np.zeros((3, 29), np.float32)  # unvoiced: no prosodic opinion
    track = TrackFeatures(
        track_id=0,
        t=np.arange(3) / 5,
        rows=np.arange(3),
        features={"visual": visual, "audio": audio, "text": np.zeros((3, 4), np.float32)},
        masks={"visual": np.array([True, True, False]), "audio": np.ones(3, bool), "text": np.zeros(3, bool)},
        texts=["", "this is terrible", ""],
    )
    va = teacher_va(track)
    face = circumplex()[FER_CLASSES.index("happy")]
    assert np.allclose(va[0], face, atol=0.02)  # the face alone
    assert va[1, 0] < va[0, 0] and np.isclose(va[1, 1], va[0, 1], atol=0.02)  # words pull valence only
    assert np.isnan(va[2]).all()  # no face, no voice, no words: no opinion
