"""Training: resuming is exact, and RCMA learns a task that needs all three modalities."""

from __future__ import annotations

import time
from typing import Any

import pytest
import torch

from affectflow.model import RCMA
from affectflow.model.data import feature_stats
from affectflow.model.train import EpochLog, TrainConfig, evaluate, fit
from tests.synthetic_va import DIM, make_split

pytestmark = pytest.mark.models

TARGETS = ("valence", "arousal")
# Small enough for 2 CPU cores: every size is a config field, the architecture is the paper's.
SMALL = dict(
    visual_dim=DIM,
    audio_dim=DIM,
    text_dim=DIM,
    visual_channels=(16, 16),
    audio_channels=(16, 16),
    text_channels=(16, 16),
    seq_len=64,
    dropout=0.1,
    head_dim=32,
)


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """Models this small run fastest on one thread, and a busy CI box does not stall them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train(train_set: list, val_set: list, config: TrainConfig, **fit_args: Any) -> tuple[RCMA, Any]:
    torch.manual_seed(config.seed)
    model = RCMA(**SMALL)
    model.set_feature_stats(feature_stats(train_set))
    return model, fit(model, train_set, val_set, config, targets=TARGETS, **fit_args)


def test_resuming_continues_exactly_where_training_stopped() -> None:
    data = make_split(0, 4, 150), make_split(1, 2, 150)
    config = TrainConfig(epochs=4, lr=3e-3, batch_size=4, hop=48, min_epochs=0, reload_best=False)
    _, straight = train(*data, config)

    saved: dict[str, Any] = {}

    def keep(log: EpochLog, state: dict[str, Any]) -> None:
        if log.epoch == 2:
            saved.update(state)

    train(*data, TrainConfig(**{**config.__dict__, "epochs": 2}), on_epoch=keep)
    _, resumed = train(*data, config, resume=saved)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]
    assert resumed.best_ccc == straight.best_ccc


def test_early_stopping_waits_for_min_epochs_then_patience(monkeypatch: pytest.MonkeyPatch) -> None:
    validation_ccc = iter([0.5, 0.6, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4])  # best at epoch 2, never again
    monkeypatch.setattr(
        "affectflow.model.train.evaluate",
        lambda *_: {"overall": dict.fromkeys((*TARGETS, "mean"), next(validation_ccc))},
    )
    data = make_split(0, 2, 100), make_split(1, 1, 100)
    config = TrainConfig(epochs=30, batch_size=4, hop=64, min_epochs=4, early_stopping=2)
    _, result = train(*data, config)
    # epochs 3, 4 are within min_epochs and do not count; 5 and 6 use up the patience
    assert result.stopped_early and result.epochs_run == 6 and result.best_epoch == 2
    assert result.best_ccc["mean"] == 0.6


def test_rcma_learns_a_task_that_needs_all_modalities_and_beats_each_one_alone() -> None:
    started = time.perf_counter()
    train_set, val_set, test_set = make_split(0, 24, 300), make_split(1, 8, 300), make_split(2, 8, 300)
    scores = {}
    for modalities in (("visual", "audio", "text"), ("visual",), ("audio",), ("text",)):
        config = TrainConfig(epochs=12, lr=3e-3, batch_size=16, hop=32, min_epochs=12, modalities=modalities)
        model, _ = train(train_set, val_set, config)
        scores[modalities] = evaluate(model, test_set, TARGETS, config)["overall"]  # held out: not used to select
    print({"+".join(m): {t: round(s[t], 3) for t in (*TARGETS, "mean")} for m, s in scores.items()})
    print(f"synthetic task: {time.perf_counter() - started:.0f}s")
    multimodal = scores[("visual", "audio", "text")]
    assert multimodal["valence"] >= 0.9 and multimodal["arousal"] >= 0.9
    for modalities, single in scores.items():
        if len(modalities) == 1:
            assert multimodal["mean"] > single["mean"] + 0.15, modalities
