"""The language is detected from the first chunk's encoding, which the decoding then reuses (tasks/speech/language.py).

Before, faster-whisper detected the language with an encoder pass of its own and then encoded
the same window again to decode it. On a short clip that was a third of the transcription.
These tests run the shipped Whisper base on espeak-ng speech and count its encoder calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from affectflow.tasks.speech.language import FirstWindow, SharedFirstWindow
from affectflow.tasks.speech.transcribe import TranscribeConfig, asr_for, transcribe
from affectflow.tasks.synth.speech import synthesise, write_wav

pytestmark = pytest.mark.models

SPEECH = {
    "en": ("en-us", "The weather was warm today, so we walked along the river and talked for an hour."),
    # espeak-ng's French is heard as Hungarian by Whisper base, by faster-whisper's own detection too
    "de": ("de", "Das Wetter war heute warm, also sind wir eine Stunde am Fluss entlang gegangen und haben geredet."),
}


def _clip(tmp_path: Path, language: str) -> Path:
    voice, text = SPEECH[language]
    speech = synthesise(text, voice)
    pause = np.zeros(8000, np.float32)  # 0.5 s on each side
    return write_wav(tmp_path / f"{language}.wav", np.concatenate([pause, speech, pause]), 16000)


def _encoder_calls(monkeypatch: pytest.MonkeyPatch, config: TranscribeConfig) -> list[tuple[int, ...]]:
    """The shapes of every Whisper encoder call the transcription of ``config`` makes."""
    model = asr_for(config).model
    real = model.encode
    calls: list[tuple[int, ...]] = []

    def counting(features: np.ndarray) -> Any:
        calls.append(features.shape)
        return real(features)

    monkeypatch.setattr(model, "encode", counting)
    return calls


@pytest.mark.parametrize("language", sorted(SPEECH))
def test_a_short_clip_is_encoded_once_and_its_language_detected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, language: str
) -> None:
    wav = _clip(tmp_path, language)
    detected = TranscribeConfig()
    calls = _encoder_calls(monkeypatch, detected)
    transcript = transcribe(wav, detected)
    assert transcript.language == language
    assert calls == [(1, 80, 3000)]  # one window, encoded once: for the language and for the words
    told = transcribe(wav, TranscribeConfig(language=language))
    assert [w.word for w in transcript.words] == [w.word for w in told.words] and len(told.words) >= 8


class _Model:
    """Stands in for a WhisperModel: records what it is asked to encode."""

    def __init__(self) -> None:
        self.encoded: list[np.ndarray] = []
        self.feature_extractor = "the model's own"

    def encode(self, features: np.ndarray) -> str:
        self.encoded.append(features)
        return f"encoded {features.sum():g}"


def test_the_detection_s_window_is_handed_over_once_and_only_for_the_same_features() -> None:
    model, window = _Model(), np.ones((1, 80, 3000), np.float32)
    shared = SharedFirstWindow(model, FirstWindow(window.copy(), "the detection's encoding"))
    other = window.copy()
    other[0, 0, -1] = 0.5  # one frame differs: not the detection's window
    assert shared.encode(other) == f"encoded {other.sum():g}"
    assert shared.encode(np.stack([window[0], window[0]])) == "encoded 480000"  # a batch of two: not it either
    assert shared.encode(window.copy()) == "the detection's encoding"
    assert shared.encode(window.copy()) == "encoded 240000"  # the second time it is the model's again
    assert len(model.encoded) == 3 and shared.feature_extractor == "the model's own"
    assert SharedFirstWindow(model, None).encode(window) == "encoded 240000"  # a language given: nothing to hand over
