"""Prefect flows that train RCMA on Aff-Wild2 and evaluate a checkpoint.

``train-rcma``: (optionally) extract per-frame features of every video into a cache
(``extract``: flows/affwild2.py runs the pipeline's own extractors on the official release;
videos already cached are skipped), load the official Train/Validation splits from it, fit,
and keep the best checkpoint by validation CCC. ``evaluate-rcma``: score a checkpoint on a
split, per video and overall, on the predictions ``affectflow run`` makes (model/windows.py),
and write them in the challenge's submission layout. Both read the features cache only::

    <cache>/features.json                 {"visual": {"extractor": …, "dim": …}, …, "fps": …, "choice": …}
    <cache>/<video>/<modality>.npy        (T, D) float32, one row per video frame
    <cache>/<video>/<modality>_mask.npy   (T,) bool, optional
    <cache>/<video>/meta.json             {"fps": the video's frame rate}

Training at ``fps`` (``affectflow train --fps``, default the pipeline's 5) takes each video's
rows at that rate (model/data.at_rate), and the checkpoint records it, so ``affectflow run``
extracts at the rate the model was trained on; scoring interpolates back to every frame.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import torch
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from affectflow.model.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    check_features,
    load_checkpoint,
    save_checkpoint,
)
from affectflow.model.data import (
    TARGETS,
    AffWild2Video,
    DataError,
    VideoData,
    at_rate,
    feature_stats,
    find_videos,
    load_video,
    save_features,
)
from affectflow.model.rcma import MODALITIES, RCMA, RCMAConfig
from affectflow.model.train import EpochLog, TrainConfig, evaluate, fit
from affectflow.tasks.progress import Hook

DESCRIPTION = "features.json"

# Who hears the flow's progress lines: the features built, each finished epoch (the CLI prints
# them). A context variable, not a flow parameter: a callback is not a parameter a deployment can carry.
progress_listener: ContextVar[Hook | None] = ContextVar("progress_listener", default=None)


@runtime_checkable
class FeatureExtractor(Protocol):
    """Per-frame features of one Aff-Wild2 video (flows/affwild2.py ``ReleaseFeatures`` is the real one).

    Returns ``{modality: (T, D) float array}`` with T = the annotation's frame count, and
    optionally ``{modality}_mask`` (T,) bool where a frame has no real feature.
    ``names`` says which extractor made each modality; checkpoints record it. An extractor
    with ``frame_rate(annotation) -> fps`` has the video's rate recorded in the cache, which
    training at the pipeline's rate (``fps``) needs.
    """

    @property
    def names(self) -> Mapping[str, str]: ...

    def __call__(self, video_frames_dir: Path | None, annotation: Path, /) -> Mapping[str, np.ndarray]: ...


# -- tasks ----------------------------------------------------------------------------------


@task(name="extract-features", retries=1, cache_policy=NO_CACHE)
def extract_features(video: AffWild2Video, cache: Path, extract: FeatureExtractor) -> bool:
    """Fill the cache for one video; False when it was already there."""
    directory = cache / video.name
    if all((directory / f"{m}.npy").is_file() for m in MODALITIES):
        return False
    arrays = extract(video.frames_dir, video.annotation)
    features = {m: arrays[m] for m in MODALITIES}
    masks = {m: arrays[f"{m}_mask"] for m in MODALITIES if f"{m}_mask" in arrays}
    rate = getattr(extract, "frame_rate", None)
    save_features(directory, features, masks, fps=rate(video.annotation) if rate else None)
    return True


@task(name="load-split", cache_policy=NO_CACHE)
def load_split(
    videos: list[AffWild2Video], cache: Path, targets: tuple[str, ...], fps: float | None = None
) -> list[VideoData]:
    """The split's videos from the cache, at ``fps`` rows per second (None: each video's own rate)."""
    loaded = [load_video(video, cache, targets) for video in videos]
    return loaded if fps is None else [at_rate(video, fps) for video in loaded]


@task(name="fit-rcma", cache_policy=NO_CACHE)
def fit_rcma(
    model: RCMA,
    data: dict[str, list[VideoData]],
    config: TrainConfig,
    info: CheckpointInfo,
    out: Path,
    resume: dict[str, Any] | None,
) -> CheckpointInfo:
    """Train, saving the best checkpoint and the resume state after every epoch."""
    hook = progress_listener.get()

    def on_epoch(log: EpochLog, state: dict[str, Any]) -> None:
        if log.improved:
            info.metrics = {"validation_ccc": log.val_ccc, "epoch": log.epoch}
            save_checkpoint(out, model, info)
        _save_resume(out, {**state, "model_config": asdict(model.config)})
        if hook:
            hook(_epoch_line(log), log.epoch, config.epochs)

    result = fit(
        model, data["train"], data["validation"], config, targets=tuple(info.targets), resume=resume, on_epoch=on_epoch
    )
    info.training.update(
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        stopped_early=result.stopped_early,
        history=result.history,
    )
    info.metrics = {"validation_ccc": result.best_ccc, "epoch": result.best_epoch}
    save_checkpoint(out, model, info)  # the best weights, with the whole run described
    return info


# -- flows ----------------------------------------------------------------------------------


@flow(name="train-rcma", validate_parameters=False)
def train_flow(
    affwild2: str,
    features_cache: str,
    out: str,
    model: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    targets: tuple[str, ...] = TARGETS,
    resume: bool = False,
    extract: FeatureExtractor | None = None,
    extract_only: bool = False,
    fps: float | None = None,
) -> dict[str, Any]:
    """Train RCMA; ``model`` / ``train`` override RCMAConfig / TrainConfig fields (paper defaults).

    Returns the best validation metrics and ``features``: how many videos were extracted and
    how many found cached (``extract_only``: only that, nothing is trained).
    """
    root, cache, out_path = Path(affwild2), Path(features_cache), Path(out)
    videos = {split: find_videos(root, split) for split in ("train", "validation")}
    counts = {"extracted": 0, "cached": sum(map(len, videos.values())), "seconds": 0.0}
    if extract is not None:
        started = time.perf_counter()
        extracted = [done for v in videos.values() for done in extract_features.map(v, cache, extract).result()]
        if any(extracted) or not (cache / DESCRIPTION).is_file():
            _write_description(cache, extract, videos["train"][0].name)
        seconds = round(time.perf_counter() - started, 1)
        counts = {"extracted": sum(extracted), "cached": len(extracted) - sum(extracted), "seconds": seconds}
        if hook := progress_listener.get():
            hook(f"features: {counts['extracted']} extracted, {counts['cached']} cached, {seconds} s; {cache}", 1, 1)
    if extract_only:
        return {"features": counts}
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive (None: each video's own rate), got {fps}")
    data = {split: load_split(v, cache, targets, fps) for split, v in videos.items()}
    features = describe_cache(cache, data["train"][0])

    config = TrainConfig(**(train or {}))
    resume_state = _load_resume(out_path) if resume else None
    if resume_state:
        rcma = RCMA(RCMAConfig.from_dict(resume_state["model_config"]))
    else:
        dims = {f"{m}_dim": features[m]["dim"] for m in MODALITIES}
        rcma = RCMA(**{**(model or {}), **dims, "outputs": len(targets)})
        rcma.set_feature_stats(feature_stats(data["train"]))
    info = CheckpointInfo(
        config=asdict(rcma.config),
        features={m: features[m] for m in MODALITIES},
        fps=fps if fps is not None else features.get("fps"),
        targets=list(targets),
        training=_describe_training(root, cache, data, config),
    )
    info = fit_rcma(rcma, data, config, info, out_path, resume_state)
    return {**info.metrics, "features": counts}


@flow(name="evaluate-rcma", validate_parameters=False)
def evaluate_flow(
    checkpoint: str,
    affwild2: str,
    features_cache: str | None = None,
    out_table: str | None = None,
    split: str = "validation",
    device: str = "cpu",
    predictions: str | None = None,
) -> dict[str, Any]:
    """CCC per video and overall on one split; also written to ``out_table`` (.csv or .parquet).

    ``features_cache`` defaults to the one the checkpoint was trained from; ``predictions``: a
    folder for the per-frame predictions in the challenge's submission layout (``write_submission``).
    """
    path = Path(checkpoint)
    model, info = load_checkpoint(path, map_location=device)
    cache_dir = features_cache or info.training.get("features_cache")
    if not cache_dir:
        raise CheckpointError(f"{path}: records no features cache; pass --features-cache")
    cache = Path(cache_dir)
    data = load_split(find_videos(Path(affwild2), split), cache, tuple(info.targets))
    check_features(info, describe_cache(cache, data[0]), path)
    if info.fps is not None:  # scored as it runs: at the trained rate, interpolated back to every frame
        data = [at_rate(video, info.fps) for video in data]
    trained = info.training.get("config", {})  # its batch size and ablation; windows are model/windows.py's
    config = TrainConfig(device=device, **{k: trained[k] for k in ("batch_size", "modalities") if k in trained})
    scores = evaluate(model.to(device), data, tuple(info.targets), config)
    if out_table:
        write_scores(Path(out_table), [*scores["videos"], scores["overall"]])
    if predictions:
        for name, frames in scores["predictions"].items():
            write_submission(Path(predictions) / f"{name}.txt", frames, tuple(info.targets))
    return scores


# -- helpers --------------------------------------------------------------------------------


def describe_cache(cache: Path, example: VideoData) -> dict[str, Any]:
    """Extractor name and dim per modality (from features.json, else from the arrays), and fps."""
    described = json.loads((cache / DESCRIPTION).read_text()) if (cache / DESCRIPTION).is_file() else {}
    features: dict[str, Any] = {"fps": described.get("fps")}
    for m in MODALITIES:
        dim = int(example.features[m].shape[1])
        entry = described.get(m, {})
        if entry.get("dim", dim) != dim:
            raise DataError(f"{cache / DESCRIPTION}: says {m} dim {entry['dim']}, the cached arrays have {dim}")
        features[m] = {"extractor": entry.get("extractor", "unknown"), "dim": dim}
    return features


def write_scores(path: Path, rows: list[dict[str, Any]]) -> None:
    """The scores table: CSV, or Parquet through the store (the only module that writes Parquet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix.lower() == ".parquet":
        from affectflow.tasks.storage.store import write_file

        write_file(str(path), pa.Table.from_pylist(rows))
    else:
        raise ValueError(f"{path}: the scores table must end in .csv or .parquet")


def write_submission(path: Path, frames: np.ndarray, targets: tuple[str, ...]) -> None:
    """One video's predictions as the challenge takes them: a header of the targets, one row per frame.

    ``frames`` (T, K) in [-1, 1] (clipped: the labels' range), T = the annotation's frame count.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [",".join(targets), *(",".join(f"{v:.6f}" for v in row) for row in np.clip(frames, -1, 1))]
    path.write_text("\n".join(rows) + "\n")


def _write_description(cache: Path, extract: FeatureExtractor, example: str) -> None:
    names = getattr(extract, "names", {})
    description: dict[str, Any] = {"fps": getattr(extract, "fps", None)}
    for m in MODALITIES:
        dim = int(np.load(cache / example / f"{m}.npy", mmap_mode="r").shape[1])
        description[m] = {"extractor": names.get(m, "unknown"), "dim": dim}
    description.update(getattr(extract, "details", {}))  # flows/affwild2.py: registry names, transcription
    (cache / DESCRIPTION).write_text(json.dumps(description, indent=2))


def _describe_training(
    root: Path, cache: Path, data: dict[str, list[VideoData]], config: TrainConfig
) -> dict[str, Any]:
    def frames(videos: list[VideoData]) -> dict[str, int]:
        valid = sum(int(((v.labels >= -1) & (v.labels <= 1)).all(1).sum()) for v in videos)
        return {"videos": len(videos), "frames": sum(v.n_frames for v in videos), "valid_frames": valid}

    described = json.loads((cache / DESCRIPTION).read_text()) if (cache / DESCRIPTION).is_file() else {}
    return {
        "dataset": "Aff-Wild2 (VA)",
        "root": str(root.resolve()),
        "features_cache": str(cache.resolve()),
        "extraction": {k: described[k] for k in ("choice", "transcription") if k in described},
        "train": frames(data["train"]),
        "validation": frames(data["validation"]),
        "config": {k: v for k, v in asdict(config).items() if k != "device"},
    }


def _resume_path(out: Path) -> Path:
    return out.with_name(out.name + ".resume")


def _save_resume(out: Path, state: dict[str, Any]) -> None:
    path = _resume_path(out)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load_resume(out: Path) -> dict[str, Any]:
    path = _resume_path(out)
    if not path.is_file():
        raise CheckpointError(f"{path}: nothing to resume from; run `affectflow train` without --resume first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path}: corrupt resume state ({type(err).__name__}); delete it and train again"
        ) from err


def _epoch_line(log: EpochLog) -> str:
    scores = " ".join(f"{k}={v:.3f}" for k, v in log.val_ccc.items())
    mark = " *best" if log.improved else ""
    return f"epoch {log.epoch}: loss {log.train_loss:.4f}, val CCC {scores}, lr {log.lr:.1e}, {log.seconds:.1f}s{mark}"
