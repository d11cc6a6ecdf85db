"""A synthetic valence/arousal task that needs all three modalities and temporal context.

Each modality carries one informative feature (dim 0) among noise dims:
visual v(t) a smooth random signal, audio a(t) an energy envelope, text w(t) a value held
for a word's duration. valence = tanh(mean of v over the past 12 frames + w);
arousal = tanh(a 8 frames earlier + 0.8 w) — so no single modality explains both.
"""

from __future__ import annotations

import numpy as np

from affectflow.model.data import VideoData

DIM = 6  # features per modality: dim 0 informative, the rest noise


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    kernel = np.ones(width) / width
    return np.convolve(x, kernel, mode="full")[: len(x)]  # causal moving average


def make_video(rng: np.random.Generator, name: str, n_frames: int) -> VideoData:
    v = _smooth(rng.normal(size=n_frames), 6) * 2.5
    a = np.abs(_smooth(rng.normal(size=n_frames), 4)) * 3.0 - 1.0
    word_ends = np.cumsum(rng.integers(10, 40, size=n_frames))
    w = rng.uniform(-1, 1, size=len(word_ends))[np.searchsorted(word_ends, np.arange(n_frames), side="right")]
    valence = np.tanh(_smooth(v, 12) + w)
    a_lag = np.concatenate([np.full(8, a[0]), a[:-8]])
    arousal = np.tanh(a_lag + 0.8 * w)
    features = {}
    for m, signal in (("visual", v), ("audio", a), ("text", w)):
        x = rng.normal(size=(n_frames, DIM)).astype(np.float32)
        x[:, 0] = signal + 0.05 * rng.normal(size=n_frames)
        features[m] = x
    masks = {m: np.ones(n_frames, dtype=bool) for m in features}
    labels = np.stack([valence, arousal], axis=1).astype(np.float32)
    return VideoData(name, features, masks, labels)


def make_split(seed: int, n_videos: int, n_frames: int) -> list[VideoData]:
    rng = np.random.default_rng(seed)
    return [make_video(rng, f"video{seed}-{i}", n_frames + int(rng.integers(0, 50))) for i in range(n_videos)]
