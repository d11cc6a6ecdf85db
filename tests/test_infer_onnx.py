"""RCMA on CPU runs in ONNX Runtime: the same predictions as PyTorch, and PyTorch when that is impossible."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch

from affectflow.model.checkpoint import load_checkpoint
from affectflow.model.data import VideoData
from affectflow.model.rcma import RCMA
from affectflow.model.train import TrainConfig, predict
from affectflow.model.windows import torch_runner
from affectflow.tasks.emotions.infer import (
    SHIPPED_CHECKPOINT,
    RCMAPredictor,
    _sample_inputs,
    onnx_runner,
    onnx_session,
)
from affectflow.tasks.features.timeline import TrackFeatures

pytestmark = pytest.mark.models

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
    onnx.model_net, onnx.info, onnx.batch_size, onnx.seq_len = shipped, info, 16, info.seq_len
    onnx.session, onnx.run = session, onnx_runner(session)
    eager = copy.copy(onnx)
    eager.session, eager.run = None, torch_runner(shipped, "cpu")
    return onnx, eager


def random_tracks(net: RCMA, lengths: tuple[int, ...], seed: int) -> list[TrackFeatures]:
    """Tracks of ``lengths`` steps with features at the checkpoint's training statistics, 20 % masked."""
    rng = np.random.default_rng(seed)
    tracks = []
    for track_id, steps in enumerate(lengths):
        features, masks = {}, {}
        for m in ("visual", "audio", "text"):
            mean, std = net.encoders[m].mean.numpy(), net.encoders[m].std.numpy()
            features[m] = (mean + std * rng.standard_normal((steps, len(mean)))).astype(np.float32)
            masks[m] = rng.random(steps) > 0.2
        tracks.append(TrackFeatures(track_id, np.arange(steps) / 5, np.arange(steps), features, masks, []))
    return tracks


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
    tracks = random_tracks(onnx.model_net, (700, 41, 64), seed=3)  # several windows, shorter than one, exactly one
    for got, expected in zip(onnx.predict(tracks), eager.predict(tracks), strict=True):
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= TOLERANCE


def test_evaluation_scores_the_predictions_inference_makes(
    shipped: RCMA, predictors: tuple[RCMAPredictor, RCMAPredictor]
) -> None:
    """``affectflow evaluate`` (model.train.predict) and ``affectflow run`` blend the same windows."""
    tracks = random_tracks(shipped, (200, 41, 64, 97), seed=4)
    videos = [
        VideoData(str(tr.track_id), tr.features, tr.masks, np.zeros((tr.n_steps, 2), np.float32)) for tr in tracks
    ]
    scored = predict(shipped, videos, TrainConfig(hop=16, batch_size=5))  # the training hop plays no part
    for runner in predictors:
        for got, expected in zip(runner.predict(tracks), scored, strict=True):
            assert got.shape == expected.shape == (len(expected), 2)
            assert np.abs(got - expected).max() <= TOLERANCE
    assert np.concatenate(scored).std(0).min() > 0.01  # the network answers (a zero output would match itself)


def test_a_graph_that_cannot_be_built_falls_back_to_pytorch(
    shipped: RCMA, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(model: RCMA) -> bytes:
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr("affectflow.model.export.to_onnx", broken)
    assert onnx_session(shipped, threads=1) is None
    assert "RCMA runs in PyTorch" in caplog.text and "exporter unavailable" in caplog.text
