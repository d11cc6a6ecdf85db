"""RCMA on CPU runs in ONNX Runtime: the same predictions as PyTorch, and PyTorch when that is impossible."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch

from model.checkpoint import load_checkpoint
from model.rcma import RCMA
from tasks.features import TrackFeatures
from tasks.infer import SHIPPED_CHECKPOINT, RCMAPredictor, _sample_inputs, onnx_session

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def shipped() -> RCMA:
    net, _ = load_checkpoint(SHIPPED_CHECKPOINT)
    return net


@pytest.fixture(scope="module")
def session(shipped: RCMA) -> object:
    built = onnx_session(shipped, threads=1)
    assert built is not None
    return built


@pytest.fixture(scope="module")
def predictors(shipped: RCMA, session: object) -> tuple[RCMAPredictor, RCMAPredictor]:
    """The shipped checkpoint behind ONNX Runtime and behind PyTorch (no extractors needed to predict)."""
    onnx = RCMAPredictor.__new__(RCMAPredictor)
    _, info = load_checkpoint(SHIPPED_CHECKPOINT)
    onnx.torch, onnx.model_net, onnx.info, onnx.device, onnx.batch_size = torch, shipped, info, "cpu", 16
    onnx.seq_len, onnx.session = info.seq_len, session
    eager = copy.copy(onnx)
    eager.session = None
    return onnx, eager


def test_the_graph_matches_pytorch_at_any_batch_size(shipped: RCMA, session: Any) -> None:
    for batch in (1, 7, 16):
        sample = _sample_inputs(shipped, batch)
        with torch.inference_mode():
            expected = shipped(**{k: torch.from_numpy(v) for k, v in sample.items()}).numpy()
        got = session.run(None, sample)[0]
        assert got.shape == (batch, shipped.seq_len, 2)
        assert np.abs(got - expected).max() <= TOLERANCE


def test_track_predictions_are_unchanged(predictors: tuple[RCMAPredictor, RCMAPredictor]) -> None:
    onnx, eager = predictors
    assert onnx.session is not None and eager.session is None
    rng = np.random.default_rng(3)
    tracks = []
    for track_id, steps in enumerate((700, 41, 64)):  # several windows, shorter than one, exactly one
        features, masks = {}, {}
        for m in ("visual", "audio", "text"):
            encoder = onnx.model_net.encoders[m]
            mean, std = encoder.mean.numpy(), encoder.std.numpy()
            features[m] = (mean + std * rng.standard_normal((steps, len(mean)))).astype(np.float32)
            masks[m] = rng.random(steps) > 0.2
        tracks.append(TrackFeatures(track_id, np.arange(steps) / 5, np.arange(steps), features, masks, []))
    for got, expected in zip(onnx.predict(tracks), eager.predict(tracks), strict=True):
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= TOLERANCE


def test_a_graph_that_cannot_be_built_falls_back_to_pytorch(
    shipped: RCMA, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(model: RCMA) -> bytes:
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr("model.export.to_onnx", broken)
    assert onnx_session(shipped, threads=1) is None
    assert "RCMA runs in PyTorch" in caplog.text and "exporter unavailable" in caplog.text
