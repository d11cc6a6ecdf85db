"""Language detection that shares its Whisper encoding with the transcription of the first chunk.

Given no language, faster-whisper's ``BatchedInferencePipeline`` runs an encoder pass of its
own to detect one, then encodes every chunk again to decode it. On a clip whose speech fits
one chunk (under 30 s) that is the same window encoded twice. Measured on 2 cores: 0.43 of
1.29 s per 6.5 s clip, and RTF 0.500 against 0.391 with ``--language en`` on 20 talking
clips (``benchmarks/bench_clips.py``). Here the language is detected from the first chunk,
encoded exactly as the pipeline will encode it, and the pipeline gets that encoding back when
it asks for those features. Longer speech costs what it did: one pass to detect, then the
batches.

One difference from faster-whisper: it detects from the first 30 s of all speech joined
together, and this detects from the first chunk alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FirstWindow:
    """The first chunk's log-mel features (1, n_mels, 3000), padded as the pipeline pads them, and their encoding."""

    features: np.ndarray
    encoded: Any  # ctranslate2.StorageView: the encoder output for ``features``


def detect_language(
    model: Any, audio: np.ndarray, first_chunk: dict[str, float], sample_rate: int
) -> tuple[str, FirstWindow | None]:
    """The most likely language of ``first_chunk`` (seconds) of ``audio``, and the window it was read from.

    ``model``: a faster-whisper ``WhisperModel``. An English-only model is ``"en"`` without a look.
    """
    if not model.model.is_multilingual:
        return "en", None
    from faster_whisper.audio import pad_or_trim

    # as BatchedInferencePipeline cuts and pads a given clip_timestamps chunk, to the sample
    start, end = int(first_chunk["start"] * sample_rate), int(first_chunk["end"] * sample_rate)
    features = np.stack([pad_or_trim(model.feature_extractor(audio[start:end])[..., :-1])])
    encoded = model.encode(features)
    ranked = model.model.detect_language(encoded)[0]  # [("<|en|>", probability), …], most likely first
    return ranked[0][0][2:-2], FirstWindow(features, encoded)


class SharedFirstWindow:
    """A ``WhisperModel`` for ``BatchedInferencePipeline`` whose first encoding of ``first.features`` is ``first.encoded``.

    Everything else goes to the model. The hand-over happens only if the pipeline's batch is
    exactly that window: a batch of several chunks is encoded as before.
    """

    def __init__(self, model: Any, first: FirstWindow | None) -> None:
        self._model = model
        self._first = first

    def encode(self, features: np.ndarray) -> Any:  # the pipeline's call: whisperx's WhisperModel takes no more
        first = self._first
        if first is not None and features.shape == first.features.shape and np.array_equal(features, first.features):
            self._first = None
            return first.encoded
        return self._model.encode(features)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)
