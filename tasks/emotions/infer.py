"""The emotions stage: per-frame valence/arousal for every face track of a video.

features (tasks/features.py, one timeline per track at the model's frame rate) →
model (an RCMA checkpoint, or the teacher ensemble baseline) → one emotions row per
face row of the track (never for a frame without the face), with the face's own voice
(its track's link from the who-is-speaking stage) and whether it is speaking at t.

Whose speech a face hears is ``EmotionConfig.audio_scope``: "own" (the default) gives each
track its own voice's audio and words and masks them while another person speaks
(tasks/features/timeline.py ``hearings``); "scene" gives every face everything heard.

RCMA takes windows of exactly ``seq_len`` steps: model/windows.py cuts each track into
windows that overlap by half, runs all tracks' windows in batches and blends overlapping
predictions with a Hann weight — the same procedure ``affectflow evaluate`` scores.
The checkpoint loads once per process and refuses features it was not trained on.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from affectflow.model.windows import RunWindows, predict_sequences, torch_runner
from affectflow.tasks.devices import onnx_providers, resolve_device
from affectflow.tasks.emotions import MODELS
from affectflow.tasks.features.timeline import (
    MAX_GAP_S,
    ExtractorOptions,
    Extractors,
    FaceRows,
    TrackFeatures,
    extract_tracks,
    hearings,
    load_extractors,
)
from affectflow.tasks.progress import Hook, no_progress
from affectflow.tasks.records import Emotions, FaceTracks, SpeakerTurn, Speaking, Word
from affectflow.tasks.settings import settings

SHIPPED_CHECKPOINT = Path(str(resources.files("affectflow.model") / "checkpoints" / "rcma-distilled-v0.pt"))
AUDIO_SCOPES = ("own", "scene")  # whose voice and words a face's audio and text features read


@dataclass(frozen=True)
class EmotionConfig:
    model: str = MODELS[0]  # "rcma": the checkpoint below; "teachers": the teacher ensemble baseline
    checkpoint: str = field(default_factory=lambda: settings().rcma_checkpoint or str(SHIPPED_CHECKPOINT))
    visual: str = "fer"  # fer | hsemotion | face-embedding
    audio: str = "egemaps"  # egemaps | vggish
    text: str = "minilm"  # minilm | bert
    hsemotion_onnx: str | None = field(default_factory=lambda: settings().hsemotion_onnx)
    vggish_model: str | None = field(default_factory=lambda: settings().vggish_model)
    text_model_dir: str | None = field(default_factory=lambda: settings().text_model_dir)
    device: str = "auto"  # tasks/devices.py: auto (CUDA when present, else CPU) | cpu | cuda | cuda:N
    max_gap_s: float = MAX_GAP_S  # face gaps up to this are interpolated, longer ones masked
    batch_size: int = 16  # RCMA windows per forward pass
    audio_scope: str = "own"  # "own": each face its own voice, masked while others speak; "scene": everyone's

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown emotions model {self.model!r}; choose from {', '.join(MODELS)}")
        if self.audio_scope not in AUDIO_SCOPES:
            raise ValueError(f"unknown audio_scope {self.audio_scope!r}; choose from {', '.join(AUDIO_SCOPES)}")
        if self.max_gap_s < 0 or self.batch_size < 1:
            raise ValueError("max_gap_s must be ≥ 0 and batch_size ≥ 1")


# -- predictors --------------------------------------------------------------------------


class RCMAPredictor:
    """An RCMA checkpoint with the extractors it was trained on."""

    def __init__(self, path: Path, extractors: Extractors, device: str, batch_size: int) -> None:
        import torch

        from affectflow.model.checkpoint import check_features, load_checkpoint

        self.model_net, self.info = load_checkpoint(path, map_location=device)
        check_features(self.info, extractors.describe(), path)
        self.model_net.to(device)
        self.extractors, self.device, self.batch_size = extractors, device, batch_size
        self.fps: float | None = self.info.fps
        self.seq_len = self.info.seq_len
        self.model = model_label(path, self.info.training)
        self.session = onnx_session(self.model_net, torch.get_num_threads()) if device == "cpu" else None
        self.runtime = "onnxruntime" if self.session is not None else f"torch ({device})"
        # a batch of windows (B, L, ·) → (B, L, 2): ONNX Runtime on CPU, else the PyTorch network
        self.run = onnx_runner(self.session) if self.session is not None else torch_runner(self.model_net, device)

    def predict(self, tracks: Sequence[TrackFeatures], hook: Hook = no_progress) -> list[np.ndarray]:
        """(T, 2) valence, arousal per track timeline: model/windows.py's procedure, as evaluation scores it."""
        return predict_sequences(
            tracks,
            self.run,
            self.seq_len,
            list(self.info.features),
            self.batch_size,
            on_batch=lambda done, total: hook("emotions: rcma", done, total),
        )


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
        session = ort.InferenceSession(to_onnx(net), options, providers=onnx_providers("cpu"))
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


def onnx_runner(session: Any) -> RunWindows:
    """model/windows.py's ``run`` for an ONNX Runtime session of the network."""
    return lambda batch: np.asarray(session.run(None, batch)[0])


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


@functools.cache
def load_predictor(config: EmotionConfig, face_embedding_dim: int = 128) -> Predictor:
    """Extractors + model, once per process per configuration (loading takes seconds)."""
    device = resolve_device(config.device)
    options = ExtractorOptions(
        config.hsemotion_onnx, config.vggish_model, config.text_model_dir, face_embedding_dim, config.device
    )
    extractors = load_extractors(config.visual, config.audio, config.text, options)
    if config.model == "teachers":
        return TeacherPredictor(extractors, fps=None)
    return RCMAPredictor(Path(config.checkpoint), extractors, device, config.batch_size)


# -- the stage ----------------------------------------------------------------------------


def infer_emotions(
    faces: FaceTracks | FaceRows,
    wav: Path | None,
    words: Sequence[Word] | None,
    turns: Sequence[SpeakerTurn] | None,
    config: EmotionConfig,
    analysis_fps: float,
    hook: Hook = no_progress,
    speaking: Speaking | None = None,
) -> Emotions:
    """The emotions of one video from the earlier stages' records (``speaking``: each face's own voice)."""
    predictor = load_predictor(config, _embedding_dim(faces))
    fps = predictor.fps or analysis_fps  # Aff-Wild2 checkpoints (fps None) run at the analysis rate
    return emotions_for(faces, wav, words, turns, predictor, fps, config, hook, speaking)


def emotions_for(
    faces: FaceTracks | FaceRows,
    wav: Path | None,
    words: Sequence[Word] | None,
    turns: Sequence[SpeakerTurn] | None,
    predictor: Predictor,
    fps: float,
    config: EmotionConfig,
    hook: Hook = no_progress,
    speaking: Speaking | None = None,
) -> Emotions:
    face_t = np.asarray(faces.t, np.float64)
    track_id = np.asarray(faces.track_id, np.int64)
    n = len(face_t)
    voices = {link.track_id: link.speaker for link in speaking.links} if speaking else {}  # track -> own voice
    va = np.zeros((n, 2), np.float32)
    tracks = []
    if n:  # a video without faces has no crops to read and no rows to write
        heard = speaking.turns if speaking else turns  # the links name these turns' speakers
        hearing = hearings(track_id, face_t, voices, heard, words) if config.audio_scope == "own" else None
        tracks = extract_tracks(
            faces, wav, words, predictor.extractors, fps, max_gap_s=config.max_gap_s, hook=hook, hearing=hearing
        )
    grids = predictor.predict(tracks, hook)  # per track (T, 2)
    for tr, pred in zip(tracks, grids, strict=True):
        for k in range(2):
            va[tr.rows, k] = np.interp(face_t[tr.rows], tr.t, pred[:, k])
    return Emotions(
        model=predictor.model,
        track_id=track_id.astype(np.int32),
        frame=np.asarray(faces.frame, np.int64),
        t=face_t,
        valence=np.clip(va[:, 0], -1, 1),
        arousal=np.clip(va[:, 1], -1, 1),
        speaker=[voices.get(int(k)) for k in track_id],
        speaking=None if speaking is None else np.asarray(speaking.speaking, bool),
    )


def emotions_backend(model: str, config: EmotionConfig) -> str:
    """What ``videos.backends`` says of the emotions stage: the model and whose speech each face heard."""
    heard = {"own": "each face its own voice (masked while others speak)", "scene": "every face the whole scene"}
    return f"{model}; audio+text: {heard[config.audio_scope]}"


def _embedding_dim(faces: FaceTracks | FaceRows) -> int:
    """The identity embeddings' width; SFace's 128 where there are none (distillation's FaceRows)."""
    if faces.embeddings_path is None:
        return 128
    return int(np.load(faces.embeddings_path, mmap_mode="r").shape[1])
