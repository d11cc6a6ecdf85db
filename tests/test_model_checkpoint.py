"""Checkpoints describe themselves and fail with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from affectflow.model import RCMA
from affectflow.model.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    check_features,
    load_checkpoint,
    save_checkpoint,
)
from tests.test_model_rcma import SMALL, inputs

pytestmark = pytest.mark.models

FEATURES = {
    "visual": {"extractor": "sface", "dim": 10},
    "audio": {"extractor": "vggish", "dim": 6},
    "text": {"extractor": "bert", "dim": 12},
}


def saved(path: Path) -> RCMA:
    model = RCMA(**SMALL, iterations=3).eval()
    model.set_feature_stats({"audio": (torch.full((6,), 0.5), torch.full((6,), 2.0))})
    info = CheckpointInfo(
        config={},
        features=FEATURES,
        fps=None,
        targets=["valence", "arousal"],
        training={"dataset": "Aff-Wild2 (VA)"},
        metrics={"validation_ccc": {"mean": 0.5}},
    )
    save_checkpoint(path, model, info)
    return model


def test_round_trip_gives_the_same_predictions_and_description(tmp_path: Path) -> None:
    path = tmp_path / "rcma.pt"
    model = saved(path)
    loaded, info = load_checkpoint(path)
    assert torch.equal(loaded(**inputs()), model(**inputs()))
    assert loaded.config == model.config and info.seq_len == 20 and info.config["iterations"] == 3
    assert info.features == FEATURES and info.targets == ["valence", "arousal"]
    assert info.metrics == {"validation_ccc": {"mean": 0.5}} and info.training["dataset"] == "Aff-Wild2 (VA)"
    assert set(info.code_version) == {"package", "model_code"} and info.created
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_missing_corrupt_and_foreign_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"nope\.pt: no such checkpoint file; train one"):
        load_checkpoint(tmp_path / "nope.pt")
    path = tmp_path / "rcma.pt"
    saved(path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match=r"rcma\.pt: corrupt or truncated checkpoint") as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value)
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an affectflow RCMA checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "rcma.pt"
    saved(path)
    payload = torch.load(path, weights_only=True)
    payload["info"]["config"]["iterations"] = 2
    payload["info"]["config"]["share_weights"] = True
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="weights do not fit the recorded configuration"):
        load_checkpoint(path)


def test_features_from_another_extractor_or_dim_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "rcma.pt"
    saved(path)
    _, info = load_checkpoint(path)
    check_features(info, FEATURES, path)
    check_features(info, {**FEATURES, "visual": {"extractor": "unknown", "dim": 10}}, path)
    with pytest.raises(CheckpointError, match="expects audio features of dim 6 \\(vggish\\), the cache has dim 8"):
        check_features(info, {**FEATURES, "audio": {"extractor": "vggish", "dim": 8}}, path)
    with pytest.raises(CheckpointError, match="trained on text features from bert, the cache has minilm"):
        check_features(info, {**FEATURES, "text": {"extractor": "minilm", "dim": 12}}, path)
