"""The emotions stage: per-frame valence/arousal for every face track of a video.

features (tasks/features.py, one timeline per track at the model's frame rate) →
model (an RCMA checkpoint, or the teacher ensemble baseline) → one emotions row per
face row of the track (never for a frame without the face), with the speaker active at t.

RCMA takes windows of exactly ``seq_len`` steps: each track is cut into windows that
overlap by half, all tracks' windows are run in batches, and overlapping predictions are
blended with a Hann weight so window edges (where the TCN has the least context) count least.
The checkpoint loads once per process and refuses features it was not trained on.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from affectflow.tasks.features.audio import VGGISH_ENV
from affectflow.tasks.features.text import TEXT_MODEL_ENV
from affectflow.tasks.features.timeline import (
    MAX_GAP_S,
    ExtractorOptions,
    Extractors,
    TrackFeatures,
    extract_tracks,
    load_extractors,
)
from affectflow.tasks.features.visual import HSEMOTION_ENV
from affectflow.tasks.progress import Hook, no_progress
from affectflow.tasks.records import Emotions, FaceTracks, SpeakerTurn, Word

CHECKPOINT_ENV = "AFFECTFLOW_RCMA_CHECKPOINT"
SHIPPED_CHECKPOINT = Path(str(resources.files("affectflow.model") / "checkpoints" / "rcma-distilled-v0.pt"))
MODELS = ("rcma", "teachers")


def _env(name: str) -> Any:
    return field(default_factory=lambda: os.environ.get(name) or None)


@dataclass(frozen=True)
class EmotionConfig:
    model: str = "rcma"  # "rcma": the checkpoint below; "teachers": the teacher ensemble baseline
    checkpoint: str = field(default_factory=lambda: os.environ.get(CHECKPOINT_ENV) or str(SHIPPED_CHECKPOINT))
    visual: str = "fer"  # fer | hsemotion | face-embedding
    audio: str = "egemaps"  # egemaps | vggish
    text: str = "minilm"  # minilm | bert
    hsemotion_onnx: str | None = _env(HSEMOTION_ENV)
    vggish_model: str | None = _env(VGGISH_ENV)
    text_model_dir: str | None = _env(TEXT_MODEL_ENV)
    device: str = "auto"  # "auto" = CUDA when present, else CPU
    max_gap_s: float = MAX_GAP_S  # face gaps up to this are interpolated, longer ones masked
    batch_size: int = 16  # RCMA windows per forward pass

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown emotions model {self.model!r}; choose from {', '.join(MODELS)}")
        if self.max_gap_s < 0 or self.batch_size < 1:
            raise ValueError("max_gap_s must be ≥ 0 and batch_size ≥ 1")


# -- predictors --------------------------------------------------------------------------


class RCMAPredictor:
    """An RCMA checkpoint with the extractors it was trained on."""

    def __init__(self, path: Path, extractors: Extractors, device: str, batch_size: int) -> None:
        import torch

        from affectflow.model.checkpoint import check_features, load_checkpoint

        self.torch = torch
        self.model_net, self.info = load_checkpoint(path, map_location=device)
        check_features(self.info, extractors.describe(), path)
        self.model_net.to(device)
        self.extractors, self.device, self.batch_size = extractors, device, batch_size
        self.fps: float | None = self.info.fps
        self.seq_len = self.info.seq_len
        self.model = model_label(path, self.info.training)
        self.session = onnx_session(self.model_net, torch.get_num_threads()) if device == "cpu" else None
        self.runtime = "onnxruntime" if self.session is not None else f"torch ({device})"

    def predict(self, tracks: Sequence[TrackFeatures], hook: Hook = no_progress) -> list[np.ndarray]:
        """(T, 2) valence, arousal per track timeline."""
        L = self.seq_len
        windows = [(i, s) for i, tr in enumerate(tracks) for s in window_starts(tr.n_steps, L)]
        weight = np.hanning(L + 2)[1:-1]  # (L,) > 0 everywhere, highest mid-window
        sums = [np.zeros((tr.n_steps, 2)) for tr in tracks]
        weights = [np.zeros((tr.n_steps, 1)) for tr in tracks]
        for b in range(0, len(windows), self.batch_size):
            batch = windows[b : b + self.batch_size]
            out = self._forward(self._inputs([(tracks[i], s) for i, s in batch]))  # (B, L, 2)
            for (i, s), pred in zip(batch, out, strict=True):
                n = min(L, tracks[i].n_steps - s)
                sums[i][s : s + n] += weight[:n, None] * pred[:n]
                weights[i][s : s + n] += weight[:n, None]
            hook("emotions: rcma", min(b + self.batch_size, len(windows)), len(windows))
        return [s / np.maximum(w, 1e-9) for s, w in zip(sums, weights, strict=True)]

    def _inputs(self, windows: list[tuple[TrackFeatures, int]]) -> dict[str, np.ndarray]:
        L = self.seq_len
        inputs: dict[str, np.ndarray] = {}
        for m in ("visual", "audio", "text"):
            x = np.zeros((len(windows), L, self.info.features[m]["dim"]), np.float32)  # (B, L, D_m)
            mask = np.zeros((len(windows), L), bool)  # (B, L): padding past a track's end is masked
            for j, (tr, s) in enumerate(windows):
                n = min(L, tr.n_steps - s)
                x[j, :n], mask[j, :n] = tr.features[m][s : s + n], tr.masks[m][s : s + n]
            inputs[m], inputs[f"{m}_mask"] = x, mask
        return inputs

    def _forward(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """(B, L, 2) predictions: ONNX Runtime on CPU, else the PyTorch network."""
        if self.session is not None:
            return np.asarray(self.session.run(None, inputs)[0])
        torch = self.torch
        with torch.inference_mode():
            tensors = {name: torch.from_numpy(value).to(self.device) for name, value in inputs.items()}
            return self.model_net(**tensors).float().cpu().numpy()


ONNX_TOLERANCE = 1e-4  # max |ONNX Runtime − PyTorch| on the load-time sample; measured ~1e-6


def onnx_session(net: Any, threads: int) -> Any | None:
    """An ONNX Runtime session of ``net`` (about twice eager PyTorch's speed on CPU; see model/export.py).

    Checked against PyTorch on a sample of inputs at the training statistics before it is used;
    None (eager PyTorch, the same numbers) when the graph cannot be exported, run or matched.
    """
    import torch

    try:
        import onnxruntime as ort

        from affectflow.model.export import to_onnx

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-wait between batches
        session = ort.InferenceSession(to_onnx(net), options, providers=["CPUExecutionProvider"])
        sample = _sample_inputs(net, batch=3)
        with torch.inference_mode():
            expected = net(**{k: torch.from_numpy(v) for k, v in sample.items()}).numpy()
        error = float(np.abs(session.run(None, sample)[0] - expected).max())
    except Exception as err:  # noqa: BLE001 - any exporter/runtime failure: PyTorch computes the same numbers
        _log().warning("RCMA runs in PyTorch: no ONNX Runtime session (%s: %s)", type(err).__name__, err)
        return None
    if not error <= ONNX_TOLERANCE:
        _log().warning("RCMA runs in PyTorch: ONNX Runtime differs by %.2g on the check sample", error)
        return None
    return session


def _sample_inputs(net: Any, batch: int) -> dict[str, np.ndarray]:
    """Random windows at the checkpoint's training feature statistics, some frames masked."""
    rng = np.random.default_rng(0)
    inputs: dict[str, np.ndarray] = {}
    for m, encoder in net.encoders.items():
        mean, std = encoder.mean.cpu().numpy(), encoder.std.cpu().numpy()
        shape = (batch, net.seq_len, len(mean))
        inputs[m] = (mean + std * rng.standard_normal(shape)).astype(np.float32)
        inputs[f"{m}_mask"] = rng.random(shape[:2]) > 0.2
    return inputs


def _log() -> Any:
    import logging

    return logging.getLogger("affectflow")


class TeacherPredictor:
    """The teacher ensemble baseline (tasks/teachers.py) on the default extractors."""

    def __init__(self, extractors: Extractors, fps: float | None) -> None:
        from affectflow.tasks.emotions.teachers import NAME, check_extractors

        check_extractors(extractors.describe())
        self.extractors, self.fps = extractors, fps
        self.model = f"{NAME} (baseline: FER→circumplex, prosody→arousal, VADER→valence)"

    def predict(self, tracks: Sequence[TrackFeatures], hook: Hook = no_progress) -> list[np.ndarray]:
        from affectflow.tasks.emotions.teachers import teacher_va

        return [np.nan_to_num(teacher_va(tr)) for tr in tracks]  # NaN (no teacher) reads as neutral


Predictor = RCMAPredictor | TeacherPredictor


def window_starts(n_steps: int, seq_len: int) -> list[int]:
    """Starts of windows overlapping by half; the last ends at the track's end when it is long enough."""
    hop = max(seq_len // 2, 1)
    starts = list(range(0, max(n_steps - seq_len, 0) + 1, hop))
    if n_steps > seq_len and starts[-1] + seq_len < n_steps:
        starts.append(n_steps - seq_len)
    return starts


def model_label(path: Path, training: dict[str, Any]) -> str:
    """What the emotions rows' ``model`` column says: the checkpoint's id, hash and, if any, its caveat."""
    model_id = training.get("model_id") or path.stem
    label = f"{model_id} sha256:{file_sha256(path)[:12]}"
    return f"{label} ({training['label']})" if training.get("label") else label


@functools.cache
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.cache
def load_predictor(config: EmotionConfig, face_embedding_dim: int = 128) -> Predictor:
    """Extractors + model, once per process per configuration (loading takes seconds)."""
    device = resolve_device(config.device)
    options = ExtractorOptions(
        config.hsemotion_onnx, config.vggish_model, config.text_model_dir, face_embedding_dim, device
    )
    extractors = load_extractors(config.visual, config.audio, config.text, options)
    if config.model == "teachers":
        return TeacherPredictor(extractors, fps=None)
    return RCMAPredictor(Path(config.checkpoint), extractors, device, config.batch_size)


# -- the stage ----------------------------------------------------------------------------


def infer_emotions(
    faces: FaceTracks,
    wav: Path | None,
    words: Sequence[Word] | None,
    turns: Sequence[SpeakerTurn] | None,
    config: EmotionConfig,
    analysis_fps: float,
    hook: Hook = no_progress,
) -> Emotions:
    """The emotions of one video from the earlier stages' records."""
    predictor = load_predictor(config, _embedding_dim(faces))
    fps = predictor.fps or analysis_fps  # Aff-Wild2 checkpoints (fps None) run at the analysis rate
    return emotions_for(faces, wav, words, turns, predictor, fps, config, hook)


def emotions_for(
    faces: FaceTracks,
    wav: Path | None,
    words: Sequence[Word] | None,
    turns: Sequence[SpeakerTurn] | None,
    predictor: Predictor,
    fps: float,
    config: EmotionConfig,
    hook: Hook = no_progress,
) -> Emotions:
    face_t = np.asarray(faces.t, np.float64)
    n = len(face_t)
    va = np.zeros((n, 2), np.float32)
    tracks = []
    if n:  # a video without faces has no crops to read and no rows to write
        tracks = extract_tracks(faces, wav, words, predictor.extractors, fps, max_gap_s=config.max_gap_s, hook=hook)
    grids = predictor.predict(tracks, hook)  # per track (T, 2)
    for tr, pred in zip(tracks, grids, strict=True):
        for k in range(2):
            va[tr.rows, k] = np.interp(face_t[tr.rows], tr.t, pred[:, k])
    return Emotions(
        model=predictor.model,
        track_id=np.asarray(faces.track_id, np.int32),
        frame=np.asarray(faces.frame, np.int64),
        t=face_t,
        valence=np.clip(va[:, 0], -1, 1),
        arousal=np.clip(va[:, 1], -1, 1),
        speaker=speakers_at(face_t, turns, words),
    )


def speakers_at(
    times: np.ndarray, turns: Sequence[SpeakerTurn] | None, words: Sequence[Word] | None
) -> list[str | None]:
    """The speaker whose turn (else whose word) covers each time; None where nobody speaks."""
    spans = [(t.start, t.end, t.speaker) for t in turns or []]
    if not spans:
        spans = [(w.start, w.end, w.speaker) for w in words or [] if w.speaker]
    out: list[str | None] = [None] * len(times)
    for start, end, speaker in sorted(spans, key=lambda s: s[1] - s[0]):  # shortest first: overlaps → the turn taker
        for i in np.flatnonzero((times >= start) & (times < end)):
            if out[i] is None:
                out[i] = str(speaker)
    return out


def _embedding_dim(faces: FaceTracks) -> int:
    return int(np.load(faces.embeddings_path, mmap_mode="r").shape[1])
