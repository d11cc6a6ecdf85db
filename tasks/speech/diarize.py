"""Speaker diarization: who spoke when, as speaker turns in seconds.

Two backends behind :func:`diarize`, both pyannote.audio's ``SpeakerDiarization``
algorithm (segmentation → speaker counting → embeddings → clustering → reconstruction):

- ``"pyannote"``: ``Pipeline.from_pretrained(<local pipeline dir>)`` — a
  speaker-diarization-community-1 / 3.1 layout whose config.yaml points at local
  checkpoints (``$model/segmentation`` …). Production quality; the weights are the user's.
- ``"default"``: the same pipeline class built from weights that ship in registry
  packages: the pyannote segmentation model bundled in the whisperx wheel, Resemblyzer's
  GE2E voice encoder as the embedding model, and spectral clustering that estimates the
  number of speakers from the eigengap of the affinity graph (both in tasks/speech/clustering.py).
- ``"constrained"``: the default's models with agglomerative clustering of centred embeddings
  under cannot-link constraints, calibrated on generated conversations (ge2e_calibration.npz),
  turns cut at silences, then the speakers found again from one embedding per turn
  (turn_clustering.py, ge2e_turn_calibration.npz). Better speaker counts on the generated benchmark, but one
  dialogue of the test suite gets too many words' speakers wrong (docs/speech.md), so opt-in.

Models load once per process (:func:`load_pipeline` is cached by its arguments).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from affectflow.tasks.devices import resolve_device
from affectflow.tasks.media.audio import read_wav
from affectflow.tasks.progress import Hook
from affectflow.tasks.records import Diarization, SpeakerTurn
from affectflow.tasks.settings import env_name, settings
from affectflow.tasks.speech import DIARIZERS as BACKENDS
from affectflow.tasks.speech.heap import mmap_large_allocations

SAMPLE_RATE = 16000
SILENCE_PEAK = 1e-3  # a track whose |amplitude| never exceeds this is silent: no speech to diarize
PIPELINE_DIR_ENV = env_name("pyannote_dir")

# Default pipeline hyper-parameters, tuned on espeak-ng dialogues (tests/test_speech_quality.py).
SEGMENTATION_STEP = 0.2  # segmentation windows (5 s) hop by 20 % of their length
SEGMENTATION_THRESHOLD = 0.5  # multilabel segmentation: local speaker active above this
NEIGHBOUR_FRACTION = 0.35  # default: spectral affinity keeps each embedding's 35 % nearest neighbours
MERGE_DISTANCE = 0.5  # default: clusters whose unit centroids are closer than this are one speaker
CALIBRATION = Path(__file__).with_name("ge2e_calibration.npz")  # benchmarks/bench_diarization.py --calibrate
QUIET_RMS = 1e-3  # RMS (of full scale) under which a 20 ms frame holds no speech: about −60 dBFS
QUIET_MIN_S = 0.1  # quiet stretches at least this long are cut out of the turns
MAX_SPEAKERS = 8  # at most this many speakers are found unless max_speakers / num_speakers say more


@dataclass(frozen=True)
class DiarizeConfig:
    backend: str = BACKENDS[0]  # default | pyannote
    pipeline_dir: str | None = field(default_factory=lambda: settings().pyannote_dir)
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    device: str = "auto"  # tasks/devices.py: auto (CUDA when present, else CPU) | cpu | cuda | cuda:N

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown diarization backend {self.backend!r}; choose from {', '.join(BACKENDS)}")
        if self.backend == "pyannote" and not self.pipeline_dir:
            raise ValueError(
                f"the pyannote backend needs a local pipeline directory: set {PIPELINE_DIR_ENV} or pipeline_dir"
            )
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ValueError(f"min_speakers ({self.min_speakers}) is larger than max_speakers ({self.max_speakers})")


def diarize(wav: Path | None, config: DiarizeConfig, hook: Hook | None = None) -> Diarization:
    """Speaker turns of a 16 kHz mono WAV; empty for no audio (None) or a silent track."""
    backend = describe(config)
    if wav is None:
        return Diarization([], backend)
    audio = read_wav(wav)  # shape: (num_samples,) float32 at 16 kHz
    if audio.size == 0 or np.abs(audio).max() < SILENCE_PEAK:
        return Diarization([], backend)
    import torch

    pipeline = pipeline_for(config)
    with warnings.catch_warnings(), mmap_large_allocations():
        # pyannote's clustering averages an empty set when no window holds speech (music, tones):
        # numpy warns, the result is simply no turns.
        warnings.filterwarnings("ignore", "Mean of empty slice|invalid value encountered", RuntimeWarning)
        output = pipeline(
            {"waveform": torch.from_numpy(audio)[None], "sample_rate": SAMPLE_RATE},
            num_speakers=config.num_speakers,
            min_speakers=config.min_speakers,
            max_speakers=config.max_speakers,
            hook=pyannote_hook(hook),
        )
    annotation = getattr(output, "speaker_diarization", output)  # pyannote 3.x pipelines return the Annotation
    quiet = quiet_regions(audio) if config.backend == "constrained" else []
    turns = [
        SpeakerTurn(str(speaker), round(start, 3), round(end, 3))
        for segment, _, speaker in annotation.itertracks(yield_label=True)
        for start, end in without_quiet(segment.start, segment.end, quiet)
    ]
    turns.sort(key=lambda turn: (turn.start, turn.speaker))
    second_pass = getattr(pipeline, "turn_reclustering", None)  # the constrained diarizer's (turn_clustering.py)
    if second_pass is not None and turns:
        low = config.num_speakers or config.min_speakers or 1
        high = config.num_speakers or config.max_speakers or MAX_SPEAKERS
        turns = [
            SpeakerTurn(t.speaker, round(t.start, 3), round(t.end, 3)) for t in second_pass(audio, turns, low, high)
        ]
    return Diarization(turns, backend)


def quiet_regions(audio: np.ndarray, frame_s: float = 0.02) -> list[tuple[float, float]]:
    """(start, end) seconds of stretches ≥ QUIET_MIN_S whose 20 ms frames are all under QUIET_RMS.

    pyannote's turns end on its 1 s window grid: on the benchmark's conversations they ran on
    through the silence after a turn (up to ~0.9 s of false alarm per turn end).
    """
    frame = round(frame_s * SAMPLE_RATE)
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)  # (num_frames, 320)
    quiet = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)) < QUIET_RMS
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    runs = edges.reshape(-1, 2) * frame_s  # (num_runs, 2) start, end in s
    return [(float(a), float(b)) for a, b in runs if b - a >= QUIET_MIN_S]


def without_quiet(start: float, end: float, quiet: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of [start, end] outside the quiet regions (seconds), shorter than 20 ms dropped."""
    pieces, cursor = [], start
    for a, b in quiet:
        if b <= cursor or a >= end:
            continue
        if a > cursor:
            pieces.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end:
        pieces.append((cursor, end))
    return [(a, b) for a, b in pieces if b - a >= 0.02]


def describe(config: DiarizeConfig) -> str:
    """What made the turns: backend and weights (without loading anything)."""
    if config.backend == "pyannote":
        return f"pyannote.audio {version('pyannote.audio')}: {Path(str(config.pipeline_dir)).name} (local pipeline)"
    clustering = (
        "calibrated constrained agglomerative clustering, turns cut at silences, then clustered again per turn"
        if config.backend == "constrained"
        else "eigengap spectral clustering"
    )
    return (
        f"affectflow-{config.backend}: pyannote-segmentation (whisperx {version('whisperx')} asset)"
        f" + resemblyzer {version('resemblyzer')} GE2E + {clustering}"
    )


def pyannote_hook(hook: Hook | None) -> Callable[..., None] | None:
    """Adapt pyannote's ``hook(step, artefact, file=, total=, completed=)`` to ours."""
    if hook is None:
        return None

    def adapted(
        step: str, artefact: Any, file: Any = None, total: int | None = None, completed: int | None = None
    ) -> None:
        hook(step, 1 if completed is None else completed, 1 if completed is None else total)

    return adapted


def pipeline_for(config: DiarizeConfig) -> Any:
    """The configured pipeline, loaded once per process (``load_pipeline`` is cached by these arguments)."""
    return load_pipeline(config.backend, config.pipeline_dir, resolve_device(config.device))


@functools.lru_cache(maxsize=4)
def load_pipeline(backend: str, pipeline_dir: str | None, device: str) -> Any:
    """The pyannote pipeline of a backend on a device, loaded once per process."""
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")  # pyannote 4 phones home otherwise
    import torch

    if backend == "pyannote":
        pipeline = local_pipeline(Path(str(pipeline_dir)))
    else:
        pipeline = default_pipeline(constrained=backend == "constrained")
    return pipeline.to(torch.device(device))


def local_pipeline(pipeline_dir: Path) -> Any:
    """``Pipeline.from_pretrained`` on a local directory, after checking it can load offline."""
    check_pipeline_dir(pipeline_dir)
    from pyannote.audio import Pipeline

    return Pipeline.from_pretrained(pipeline_dir)


def check_pipeline_dir(pipeline_dir: Path) -> None:
    """Fail with a fix when config.yaml is missing or names weights that are not on disk.

    pyannote resolves anything that is not a local path on the Hugging Face hub; a hub id
    here would mean a download attempt, so it is refused before loading.
    """
    import yaml

    config_yml = pipeline_dir / "config.yaml"
    if not config_yml.is_file():
        raise FileNotFoundError(f"{config_yml} not found: {PIPELINE_DIR_ENV} must be a pyannote pipeline directory")
    params = (yaml.safe_load(config_yml.read_text()) or {}).get("pipeline", {}).get("params", {})
    for key in ("segmentation", "embedding", "plda"):
        if key == "plda" and params.get("clustering", "VBxClustering") != "VBxClustering" and key not in params:
            raise ValueError(
                f"{config_yml}: pyannote.audio 4 loads a PLDA even for {params['clustering']}; "
                "add 'plda: <local dir with xvec_transform.npz and plda.npz>' to its params"
            )
        reference = params.get(key)
        if isinstance(reference, dict):
            reference = str(Path(reference["checkpoint"]) / reference.get("subfolder", ""))
        if reference is None:
            raise ValueError(f"{config_yml}: params.{key} is missing; point it at a local checkpoint")
        local = pipeline_dir / reference.removeprefix("$model/") if reference.startswith("$model/") else Path(reference)
        if not local.exists():
            raise FileNotFoundError(
                f"{config_yml}: params.{key} = {reference!r} is not a local file or directory; "
                "download the weights once and point config.yaml at them ($model/<subfolder> or an absolute path)"
            )


def default_pipeline(constrained: bool = False) -> Any:
    """pyannote's SpeakerDiarization on shipped weights (see the module docstring)."""
    from pyannote.audio.core.plda import PLDA
    from pyannote.audio.pipelines import SpeakerDiarization

    from affectflow.tasks.speech.clustering import (
        Calibration,
        ConstrainedClustering,
        EigengapClustering,
        ResemblyzerEmbedding,
    )
    from affectflow.tasks.speech.turn_clustering import TURN_CALIBRATION, TurnReclustering

    embedding = ResemblyzerEmbedding()
    pipeline = SpeakerDiarization(
        segmentation=str(segmentation_checkpoint()),
        segmentation_step=SEGMENTATION_STEP,
        embedding=embedding,
        embedding_exclude_overlap=True,
        plda=PLDA.__new__(PLDA),  # pyannote 4 requires a PLDA instance; only VBx clustering reads it
        clustering="AgglomerativeClustering",  # replaced below; pyannote names its clusterings in an enum
        embedding_batch_size=32,
        segmentation_batch_size=32,
    )
    pipeline.clustering = (
        ConstrainedClustering(Calibration.load(CALIBRATION), MAX_SPEAKERS)
        if constrained
        else EigengapClustering(NEIGHBOUR_FRACTION, MERGE_DISTANCE, MAX_SPEAKERS)
    )
    if constrained:  # read by diarize(): the turns clustered again from one embedding per turn
        pipeline.turn_reclustering = TurnReclustering(embedding, Calibration.load(TURN_CALIBRATION))
    pipeline.instantiate({"segmentation": {"threshold": SEGMENTATION_THRESHOLD, "min_duration_off": 0.0}})
    return pipeline


def segmentation_checkpoint() -> Path:
    """pyannote/segmentation (multilabel, 5 s windows, 3 local speakers) as shipped in the whisperx wheel."""
    import whisperx

    path = Path(whisperx.__file__).parent / "assets" / "pytorch_model.bin"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: reinstall whisperx==3.8.6 (it ships the segmentation model)")
    return path
