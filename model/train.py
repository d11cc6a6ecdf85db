"""Training and evaluation loops for RCMA, following the authors' recipe.

1 − CCC loss; Adam with ReduceLROnPlateau on the validation CCC; the best weights by
validation CCC are kept (and, as the authors do, reloaded after an epoch that did not
improve); early stopping counts only after ``min_epochs``. Metrics are the challenge's:
CCC over all valid frames of all videos concatenated, per target and their mean, of the
predictions ``affectflow run`` would make (model/windows.py's blended windows).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from affectflow.model.data import VideoData, WindowDataset, leave_out
from affectflow.model.losses import ccc_loss
from affectflow.model.metrics import ccc
from affectflow.model.rcma import MODALITIES, RCMA
from affectflow.model.windows import predict_sequences, torch_runner


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    batch_size: int = 12
    lr: float = 1e-5
    lr_patience: int = 5  # epochs without a better validation CCC before the lr is cut
    lr_factor: float = 0.1
    min_lr: float = 1e-8
    early_stopping: int = 50  # epochs without improvement (after min_epochs) before stopping
    min_epochs: int = 5
    reload_best: bool = True  # after an epoch that did not improve, continue from the best weights
    seed: int = 3407
    hop: int = 200  # frames between training window starts (scoring: model/windows.py, half overlap)
    modalities: tuple[str, ...] = MODALITIES  # the others are fed as missing (an ablation)
    device: str = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(self.modalities))
        unknown = set(self.modalities) - set(MODALITIES)
        if unknown or not self.modalities:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {self.modalities}")


@dataclass
class EpochLog:
    epoch: int  # 1-based
    train_loss: float
    val_ccc: dict[str, float]  # per target and "mean"
    lr: float
    seconds: float
    improved: bool


@dataclass
class TrainResult:
    best_ccc: dict[str, float]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)


OnEpoch = Callable[[EpochLog, dict[str, Any]], None]  # (log, resume state) after every epoch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def fit(
    model: RCMA,
    train_videos: list[VideoData],
    val_videos: list[VideoData],
    config: TrainConfig,
    *,
    targets: tuple[str, ...],
    resume: dict[str, Any] | None = None,
    on_epoch: OnEpoch | None = None,
) -> TrainResult:
    """Train ``model`` in place; it ends holding the best weights by validation CCC."""
    seed_everything(config.seed)
    device = torch.device(config.device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.lr_factor, patience=config.lr_patience, min_lr=config.min_lr
    )
    shuffle = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(
        WindowDataset(train_videos, model.seq_len, config.hop, config.modalities),
        batch_size=config.batch_size,
        shuffle=True,
        generator=shuffle,
    )
    state: dict[str, Any] = {
        "epoch": 0,
        "best_ccc": -math.inf,
        "best_epoch": 0,
        "patience_left": config.early_stopping,
        "history": [],
    }
    state["best_state"] = copy.deepcopy(model.state_dict())
    if resume:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        shuffle.set_state(resume["shuffle"])
        _set_rng_state(resume["rng"], device)
        state.update({k: resume[k] for k in state})

    stopped_early = False
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        started = time.perf_counter()
        train_loss = train_epoch(model, loader, optimizer, device)
        overall = evaluate(model, val_videos, targets, config)["overall"]
        scores = {k: overall[k] for k in (*targets, "mean")}
        improved = scores["mean"] > state["best_ccc"]
        if improved:
            state.update(best_ccc=scores["mean"], best_epoch=epoch, best_state=copy.deepcopy(model.state_dict()))
            state["patience_left"] = config.early_stopping
        elif epoch > config.min_epochs:
            state["patience_left"] -= 1
        scheduler.step(scores["mean"])
        if config.reload_best and not improved:
            model.load_state_dict(state["best_state"])
        log = EpochLog(
            epoch, train_loss, scores, optimizer.param_groups[0]["lr"], time.perf_counter() - started, improved
        )
        state["history"].append(asdict(log))
        state["epoch"] = epoch
        if on_epoch:
            resume_state = {**state, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
            resume_state.update(scheduler=scheduler.state_dict(), shuffle=shuffle.get_state(), rng=_rng_state(device))
            on_epoch(log, resume_state)
        if config.early_stopping and state["patience_left"] <= 0:
            stopped_early = True
            break

    model.load_state_dict(state["best_state"])
    best = state["history"][state["best_epoch"] - 1]["val_ccc"] if state["best_epoch"] else {}
    return TrainResult(best, state["best_epoch"], state["epoch"], stopped_early, state["history"])


def train_epoch(model: RCMA, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device) -> float:
    """One pass over the training windows; the mean loss."""
    model.train()
    losses = []
    for batch in loader:
        pred = model(**model_inputs(batch, device))  # (B, T, K)
        loss = ccc_loss(pred, batch["labels"].to(device), batch["label_valid"].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses)) if losses else float("nan")


def predict(
    model: RCMA, videos: list[VideoData], config: TrainConfig, batch_size: int | None = None
) -> list[np.ndarray]:
    """Per-video predictions (T, K) by the procedure ``affectflow run`` uses (model/windows.py:
    half-overlapping windows, Hann-blended); modalities left out in ``config`` are fed as missing."""
    model.eval()
    fed = [leave_out(video, config.modalities) for video in videos]
    run = torch_runner(model)
    return predict_sequences(fed, run, model.seq_len, MODALITIES, batch_size or config.batch_size)


def evaluate(model: RCMA, videos: list[VideoData], targets: tuple[str, ...], config: TrainConfig) -> dict[str, Any]:
    """CCC per video and overall (all valid frames concatenated, as the challenge scores).

    Also ``predictions``: {video: (T, K)} the per-frame predictions that were scored.
    """
    # a resampled video (model/data.at_rate) is scored on every annotated frame, its predictions interpolated
    predictions = [
        p if v.annotated is None else v.annotated.upsample(p)
        for v, p in zip(videos, predict(model, videos, config), strict=True)
    ]
    labels = [v.labels if v.annotated is None else v.annotated.labels for v in videos]
    rows = [_scores(v.name, p, y, targets) for v, p, y in zip(videos, predictions, labels, strict=True)]
    overall = _scores("ALL", np.concatenate(predictions), np.concatenate(labels), targets)
    named = {video.name: p for video, p in zip(videos, predictions, strict=True)}
    return {"videos": rows, "overall": overall, "predictions": named}


def model_inputs(batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
    names = [*MODALITIES, *(f"{m}_mask" for m in MODALITIES)]
    return {name: batch[name].to(device) for name in names}


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The generators dropout draws from, so a resumed run continues the same random sequence."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _scores(name: str, pred: np.ndarray, labels: np.ndarray, targets: tuple[str, ...]) -> dict[str, Any]:
    valid = (labels >= -1) & (labels <= 1)  # (T, K)
    per_target = np.atleast_1d(ccc(pred, labels, valid))
    row: dict[str, Any] = {"video": name, "frames": len(labels), "valid_frames": int(valid.all(1).sum())}
    row.update({t: float(c) for t, c in zip(targets, per_target, strict=True)})
    row["mean"] = float(np.mean(per_target))
    return row
