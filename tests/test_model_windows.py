"""The windowed predictor (model/windows.py) against hand-computed references, no network."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pytest

from affectflow.model.windows import blend, hann_weights, predict_sequences, window_batch, window_starts

pytestmark = pytest.mark.unit

L = 8  # window length of these tests
MODALITIES = ("visual", "audio")


@dataclass(frozen=True)
class Seq:
    features: dict[str, np.ndarray]  # (T, D_m)
    masks: dict[str, np.ndarray]  # (T,)


def sequence(n: int, rng: np.random.Generator) -> Seq:
    features = {
        "visual": rng.normal(size=(n, 3)).astype(np.float32),
        "audio": rng.normal(size=(n, 2)).astype(np.float32),
    }
    return Seq(features, {m: rng.random(n) > 0.2 for m in MODALITIES})


def reference_blend(n: int, starts: list[int], predictions: np.ndarray) -> np.ndarray:
    """Step by step: the Hann-weighted mean over the windows covering the step."""
    w = np.hanning(L + 2)[1:-1]
    out = np.zeros((n, predictions.shape[2]))
    for t in range(n):
        covering = [(k, t - s) for k, s in enumerate(starts) if s <= t < s + L]
        weights = np.array([w[p] for _, p in covering])
        values = np.array([predictions[k, p] for k, p in covering])
        out[t] = (weights[:, None] * values).sum(0) / weights.sum()
    return out


def test_windows_overlap_by_half_and_cover_every_step() -> None:
    for n in (1, 40, 64, 65, 100, 333):
        starts = window_starts(n, 64)
        covered = np.zeros(n, bool)
        for s in starts:
            covered[s : s + 64] = True
        assert covered.all() and starts[0] == 0
        assert all(b - a <= 32 for a, b in pairwise(starts))
        assert n <= 64 or starts[-1] + 64 == n  # only a sequence shorter than a window is padded
    assert window_starts(331, 300, 200) == [0, 31]
    assert window_starts(7, 300, 200) == [0]


def test_hann_weights_are_positive_and_peak_mid_window() -> None:
    w = hann_weights(L)
    assert w.shape == (L,) and (w > 0).all()
    assert w.argmax() in (L // 2 - 1, L // 2) and w[0] == w[-1] < w[1]


def test_blending_is_the_hann_weighted_mean_of_the_covering_windows() -> None:
    rng = np.random.default_rng(0)
    for n in (3, 8, 13, 30):
        starts = window_starts(n, L)
        predictions = rng.normal(size=(len(starts), L, 2))
        np.testing.assert_allclose(blend(n, starts, predictions), reference_blend(n, starts, predictions), atol=1e-12)


def test_windows_carry_each_steps_features_and_mask_the_padding() -> None:
    rng = np.random.default_rng(1)
    seq = sequence(5, rng)  # shorter than one window
    batch = window_batch([(seq, 0)], L, MODALITIES)
    assert batch["visual"].shape == (1, L, 3) and batch["audio_mask"].shape == (1, L)
    np.testing.assert_array_equal(batch["visual"][0, :5], seq.features["visual"])
    np.testing.assert_array_equal(batch["audio_mask"][0, :5], seq.masks["audio"])
    assert not batch["visual_mask"][0, 5:].any() and (batch["visual"][0, 5:] == 0).all()


def test_a_per_step_network_is_reproduced_exactly_whatever_the_batching() -> None:
    """A "network" that reads each step's own features must come back step for step."""
    rng = np.random.default_rng(2)
    sequences = [sequence(n, rng) for n in (30, 5, 8, 17)]
    seen: list[int] = []

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:  # (B, L, D) → (B, L, 2)
        seen.append(len(batch["visual"]))
        return batch["visual"][..., :2] * batch["audio_mask"][..., None]

    for batch_size in (1, 3, 64):
        seen.clear()
        out = predict_sequences(sequences, run, L, MODALITIES, batch_size)
        assert max(seen) <= batch_size and sum(seen) == sum(len(window_starts(n, L)) for n in (30, 5, 8, 17))
        for seq, pred in zip(sequences, out, strict=True):
            expected = seq.features["visual"][:, :2] * seq.masks["audio"][:, None]
            np.testing.assert_allclose(pred, expected, atol=1e-6)


def test_a_position_dependent_network_is_blended_as_the_reference_says() -> None:
    """Window position p predicts p: each step's value is then decided by the weights alone."""
    rng = np.random.default_rng(3)
    sequences = [sequence(n, rng) for n in (21, 6)]
    positions = np.broadcast_to(np.arange(L, dtype=float)[None, :, None], (1, L, 1))
    done: list[tuple[int, int]] = []
    out = predict_sequences(
        sequences,
        lambda batch: np.repeat(positions, len(batch["visual"]), axis=0),
        L,
        MODALITIES,
        batch_size=2,
        on_batch=lambda d, total: done.append((d, total)),
    )
    for seq, pred in zip(sequences, out, strict=True):
        n = len(seq.masks["visual"])
        starts = window_starts(n, L)
        expected = reference_blend(n, starts, np.repeat(positions, len(starts), axis=0))
        np.testing.assert_allclose(pred, expected, atol=1e-12)
    assert done[-1] == (done[-1][1], len(window_starts(21, L)) + 1)
