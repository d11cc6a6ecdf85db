"""CCC (metric and loss) against the textbook formula, on real-looking series."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectflow.model import ccc, ccc_loss

pytestmark = pytest.mark.models  # the loss on torch tensors: the unit tier never imports torch


def reference_ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin (1989) via Pearson's r: 2 r σx σy / (σx² + σy² + (μx − μy)²)."""
    r = np.corrcoef(x, y)[0, 1]
    return 2 * r * x.std() * y.std() / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


@pytest.fixture
def series() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    target = np.tanh(np.cumsum(rng.normal(size=500)) / 10)
    pred = 0.7 * target + 0.1 + 0.2 * rng.normal(size=500)
    return pred, target


def test_matches_the_reference_formula(series: tuple[np.ndarray, np.ndarray]) -> None:
    pred, target = series
    assert ccc(pred, target) == pytest.approx(reference_ccc(pred, target), abs=1e-12)
    assert 0.3 < ccc(pred, target) < 0.95  # a real, imperfect agreement


def test_identical_is_one_and_mirrored_is_minus_one(series: tuple[np.ndarray, np.ndarray]) -> None:
    _, target = series
    centred = target - target.mean()
    assert ccc(target, target) == pytest.approx(1.0)
    assert ccc(-centred, centred) == pytest.approx(-1.0)


def test_frames_labelled_minus_five_are_ignored(series: tuple[np.ndarray, np.ndarray]) -> None:
    pred, target = series
    labelled = target.copy()
    labelled[100:180] = -5.0
    keep = np.ones(500, dtype=bool)
    keep[100:180] = False
    expected = reference_ccc(pred[keep], target[keep])
    assert ccc(pred, labelled) == pytest.approx(expected)
    assert ccc(pred, target, valid=keep) == pytest.approx(expected)


def test_columns_are_scored_separately_and_torch_tensors_work(series: tuple[np.ndarray, np.ndarray]) -> None:
    pred, target = series
    two = np.stack([pred, target], 1), np.stack([target, target], 1)
    np.testing.assert_allclose(ccc(*two), [reference_ccc(pred, target), 1.0])
    np.testing.assert_allclose(ccc(*(torch.from_numpy(a) for a in two)), ccc(*two))
    assert np.isnan(ccc(np.ones(3), np.ones(3)))  # undefined for constant series


def test_loss_is_one_minus_the_metric_over_valid_frames(series: tuple[np.ndarray, np.ndarray]) -> None:
    pred, target = series
    valid = np.ones(500, dtype=bool)
    valid[:50] = False
    p = torch.tensor(np.stack([pred, -pred], 1), requires_grad=True)
    t = torch.tensor(np.stack([target, target], 1))
    loss = ccc_loss(p.reshape(5, 100, 2), t.reshape(5, 100, 2), torch.from_numpy(valid).reshape(5, 100))
    expected = 1 - np.mean([ccc(pred, target, valid), ccc(-pred, target, valid)])
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert p.grad is not None and p.grad[:50].abs().max() == 0 and p.grad[50:].abs().max() > 0
