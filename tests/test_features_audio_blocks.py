"""eGeMAPS descriptors of a long track, computed in blocks, equal the whole-track ones exactly."""

from __future__ import annotations

import numpy as np
import pytest

from affectflow.tasks.features import audio as features_audio
from affectflow.tasks.features.audio import SAMPLE_RATE, egemaps_lld
from affectflow.tasks.synth.speech import synthesise

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """About 11 s of speech with pauses (voiced frames matter: the F0 family is smoothed over time)."""
    pause = np.zeros(SAMPLE_RATE // 2, np.float32)
    parts = [
        synthesise("the museum opens at ten and closes at six", voice, SAMPLE_RATE)
        for voice in ("en-us+m3", "en-us+f2")
    ]
    audio = np.concatenate([parts[0], pause, parts[1], pause, parts[0]])
    return np.concatenate([audio, np.zeros(1234, np.float32)])  # not a whole number of blocks or frames


def test_blocked_descriptors_equal_the_whole_track(speech: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = features_audio._smile().process_signal(speech, SAMPLE_RATE)  # type: ignore[attr-defined]
    monkeypatch.setattr(features_audio, "LLD_BLOCK_S", 3)  # four blocks with 2 s margins
    names, blocked = egemaps_lld(speech)
    assert names == list(whole.columns)
    expected = whole.to_numpy(np.float64)
    assert blocked.shape == expected.shape
    assert np.array_equal(blocked, expected, equal_nan=True)
    assert (expected[:, names.index("F0semitoneFrom27.5Hz_sma3nz")] > 0).mean() > 0.3  # it did see voiced speech
