"""Small real inputs for the emotions tests: aligned real faces, espeak-ng speech, one timeline.

A clip is a list of segments; each segment shows one face crop (or none) for its
duration and may carry one utterance, spoken from its start.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectflow.flows.distill import (
    FPS,
    SAMPLE_RATE,
    SimpleWord,
    Utterance,
    face_crops,
    jitter,
    spread_words,
    synthesize,
)
from affectflow.tasks.features.timeline import FaceRows
from affectflow.tasks.synth.faces import photo
from affectflow.tasks.synth.speech import write_wav


@dataclass(frozen=True)
class Segment:
    seconds: float
    face: np.ndarray | None  # (112, 112, 3) aligned crop; None = no face
    text: str = ""
    voice: str = "en-us+m3"
    pitch: int = 50
    speed: int = 170
    amplitude: int = 100


@dataclass(frozen=True)
class GeneratedClip:
    faces: FaceRows
    wav: Path
    words: list[SimpleWord]
    segments: list[tuple[float, float]]  # (start, end) s of each segment


@functools.cache
def astronaut_crop() -> np.ndarray:
    (crop,) = face_crops(photo("astronaut"))
    return crop


def make_clip(segments: list[Segment], directory: Path, seed: int = 0) -> GeneratedClip:
    rng = np.random.default_rng(seed)
    audio, words, crops, times, spans = [], [], [], [], []
    t = 0.0
    for seg in segments:
        n = round(seg.seconds * SAMPLE_RATE)
        piece = np.zeros(n, np.float32)
        if seg.text:
            speech = synthesize(Utterance(seg.text, seg.voice, seg.pitch, seg.speed, seg.amplitude))[
                : n - SAMPLE_RATE // 5
            ]
            piece[: len(speech)] = speech
            words += spread_words(seg.text, t, len(speech) / SAMPLE_RATE, seg.voice)
        if seg.face is not None:
            for k in range(round(seg.seconds * FPS)):
                times.append(t + k / FPS)
                crops.append(jitter(seg.face, rng))
        audio.append(piece)
        spans.append((t, t + seg.seconds))
        t += seg.seconds
    wav = directory / "clip.wav"
    write_wav(wav, np.concatenate(audio), SAMPLE_RATE)
    np.save(directory / "crops.npy", np.stack(crops))
    faces = FaceRows(
        track_id=np.zeros(len(times), np.int64),
        frame=np.round(np.array(times) * 25).astype(np.int64),  # as if the source ran at 25 fps
        t=np.array(times),
        crops_path=directory / "crops.npy",
    )
    return GeneratedClip(faces, wav, words, spans)
