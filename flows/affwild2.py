"""The official Aff-Wild2 release → the training features cache, through the pipeline's own stages.

``train_flow`` maps its ``extract-features`` task over the annotated subjects with a
``ReleaseFeatures``. For each subject: its source video (found under the release by name,
``_left`` / ``_right`` stripped) → probe (the video's own frame rate) → the 16 kHz WAV
(tasks/media/audio.py) → the pipeline's transcription (tasks/speech/transcribe.py) → features
on the video's frame grid (tasks/features/affwild2.py), the visual ones from the release's
cropped-aligned faces. The two subjects of a video share its soundtrack: it is computed once
per video (under a lock per video) and kept beside the cache in ``.soundtracks/<video>/``.

Models load at the first subject that needs extracting, so a run over a built cache loads none.
``features.json`` records each modality's extractor name and dim (what ``check_features``
compares at inference), the registry names chosen and the transcription backend; a cache
built with other extractors is refused rather than mixed.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affectflow.model.data import FRAMES_DIR, DataError, face_frames, fit_length, read_annotation, save_features
from affectflow.tasks.defaults import VIDEO_EXTENSIONS
from affectflow.tasks.emotions.infer import EmotionConfig
from affectflow.tasks.features.affwild2 import faces_track, soundtrack
from affectflow.tasks.features.timeline import MODALITIES, ExtractorOptions, Extractors, load_extractors
from affectflow.tasks.media.audio import extract_audio
from affectflow.tasks.media.probe import probe
from affectflow.tasks.progress import Hook, no_progress
from affectflow.tasks.speech.transcribe import TranscribeConfig, describe_model, transcribe

SUBJECTS = ("_left", "_right")  # two-person videos: one annotation per subject, one video and soundtrack
DESCRIPTION = "features.json"
SOUNDTRACKS = ".soundtracks"  # a dot folder: the release reader never descends into it
PIPELINE = EmotionConfig  # the extractor defaults are the emotions stage's


@dataclass(frozen=True)
class ExtractionConfig:
    """Which of the pipeline's extractors make the cache, and where they run (defaults: ``affectflow run``'s)."""

    visual: str = PIPELINE.visual
    audio: str = PIPELINE.audio
    text: str = PIPELINE.text
    device: str = "auto"  # tasks/devices.py: CUDA when present
    transcribe: TranscribeConfig = field(default_factory=TranscribeConfig)

    @property
    def choice(self) -> dict[str, str]:
        return {"visual": self.visual, "audio": self.audio, "text": self.text}


def source_name(subject: str) -> str:
    """The video a subject's annotation belongs to: ``10-60-1280x720_left`` → ``10-60-1280x720``."""
    return next((subject.removesuffix(s) for s in SUBJECTS if subject.endswith(s)), subject)


def find_sources(root: Path) -> dict[str, Path]:
    """{video stem: file} of the release's videos, wherever they sit (``videos/``, ``batch1/`` …).

    Frame folders, dot folders and the features cache are not walked (millions of files).
    """
    sources: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", FRAMES_DIR, "affectflow-features")))
        for name in sorted(files):
            path = Path(folder) / name
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                sources.setdefault(path.stem, path)
    return sources


def default_cache(root: Path, config: ExtractionConfig) -> Path:
    """``<root>/affectflow-features-<visual>-<audio>-<text>``: other extractors, another cache."""
    return root / f"affectflow-features-{config.visual}-{config.audio}-{config.text}"


class ReleaseFeatures:
    """``flows/train.py``'s FeatureExtractor for an official release: (frames folder, annotation) → arrays."""

    def __init__(self, root: Path, cache: Path, config: ExtractionConfig, hook: Hook = no_progress) -> None:
        check_cache(cache, config)
        self.root, self.cache, self.config, self.hook = root, cache, config, hook
        self.sources = find_sources(root)
        self.fps = None  # each video's cache rows are its own frames; frame_rate() says at what rate
        self._extractors: Extractors | None = None
        self._load = threading.Lock()
        self._sound_locks: defaultdict[Path, threading.Lock] = defaultdict(threading.Lock)

    @property
    def extractors(self) -> Extractors:
        """The pipeline's extractors, loaded once, at the first subject that needs them."""
        with self._load:
            if self._extractors is None:
                c = self.config
                self._extractors = load_extractors(c.visual, c.audio, c.text, ExtractorOptions(device=c.device))
            return self._extractors

    @property
    def names(self) -> dict[str, str]:
        return {m: e["extractor"] for m, e in self.extractors.describe().items()}

    @property
    def details(self) -> dict[str, Any]:
        """What features.json records beyond names and dims: the registry names and the transcription."""
        return {"choice": self.config.choice, "transcription": describe_model(self.config.transcribe.model_dir)}

    def frame_rate(self, annotation: Path) -> float:
        """The frame rate of the video ``annotation`` labels (its rows are that video's frames)."""
        return probe(self._source(annotation.stem)).fps

    def _source(self, subject: str) -> Path:
        source = self.sources.get(source_name(subject))
        if source is None:
            raise DataError(
                f"{subject}: no video {source_name(subject)}.* under {self.root}; "
                "put the release's videos (batch folders or videos/) under the root"
            )
        return source

    def __call__(self, frames_dir: Path | None, annotation: Path) -> dict[str, np.ndarray]:
        subject = annotation.stem
        n_frames = len(read_annotation(annotation))  # T: one label row per video frame
        hook = _prefixed(self.hook, subject)
        source = self._source(subject)
        sound = self.soundtrack(source, n_frames, hook)
        visual, visual_mask = faces_track(n_frames, face_frames(frames_dir, n_frames), self.extractors.visual, hook)
        return {"visual": visual, "visual_mask": visual_mask, **sound}

    def soundtrack(self, source: Path, n_frames: int, hook: Hook) -> dict[str, np.ndarray]:
        """Audio and text of ``source`` at its frame rate, (T, ·) and (T,) masks: once per video."""
        kept = self.cache / SOUNDTRACKS / source.stem
        names = ("audio", "audio_mask", "text", "text_mask")
        with self._sound_locks[source]:
            if all((kept / f"{name}.npy").is_file() for name in names):
                arrays = {name: np.load(kept / f"{name}.npy") for name in names}
            else:
                arrays = self._compute_soundtrack(source, n_frames, hook)
                sound = ("audio", "text")
                save_features(kept, {m: arrays[m] for m in sound}, {m: arrays[f"{m}_mask"] for m in sound})
        fitted: dict[str, np.ndarray] = {}
        for m in ("audio", "text"):  # a subject's annotation may be a frame longer or shorter
            fitted[m], fitted[f"{m}_mask"] = fit_length(arrays[m], arrays[f"{m}_mask"], n_frames)
        return fitted

    def _compute_soundtrack(self, source: Path, n_frames: int, hook: Hook) -> dict[str, np.ndarray]:
        info = probe(source)
        with tempfile.TemporaryDirectory(prefix="affwild2-") as scratch:
            wav = extract_audio(source, info, Path(scratch) / "audio.wav")  # None: no audio track
            words = transcribe(wav, self.config.transcribe, hook).words if wav else []
            return soundtrack(n_frames, info.fps, wav, words, self.extractors, hook)


def check_cache(cache: Path, config: ExtractionConfig) -> None:
    """Refuse a cache that other extractors built (it would mix features the model cannot tell apart)."""
    path = cache / DESCRIPTION
    if not path.is_file():
        return
    built = json.loads(path.read_text()).get("choice")
    if built is not None and built != config.choice:
        chosen = ", ".join(f"{m} {built[m]}" for m in MODALITIES)
        raise DataError(
            f"{path}: this cache was built with {chosen}; pass those extractors or another --features-cache"
        )


def _prefixed(hook: Hook, subject: str) -> Hook:
    def report(step: str, completed: int, total: int | None) -> None:
        hook(f"{subject}: {step}", completed, total)

    return report
